use serde_json::json;

use crate::helpers::{TestApp, conformance};

#[tokio::test]
async fn posting_a_review_updates_the_list_and_the_rating() {
    conformance(async |app: &TestApp| {
        let token = app.token_of_user(7).await;
        let before = app.product_page(3).await;
        let count_before = before.body["rating"]["count"].as_i64().expect("count");

        let created = app.post_review(Some(&token), 3, &json!({"rating": 4, "body": "  Solid kettle.  "})).await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        assert_eq!(created.body["body"], "Solid kettle.");
        assert_eq!(created.body["user_id"], 7);

        let after = app.product_page(3).await;
        assert_eq!(after.body["rating"]["count"].as_i64(), Some(count_before + 1));
        assert_eq!(after.body["recent_reviews"][0]["body"], "Solid kettle.");

        let listed = app.reviews(3, "?per_page=1").await;
        assert_eq!(listed.status, 200);
        assert_eq!(listed.body["total"].as_i64(), Some(count_before + 1));
        assert_eq!(listed.body["items"][0]["rating"], 4);

        // Past the last page the items run out but the total does not.
        let beyond = app.reviews(3, "?per_page=100&page=1000").await;
        assert_eq!(beyond.status, 200);
        assert_eq!(beyond.body["items"].as_array().map(Vec::len), Some(0));
        assert_eq!(beyond.body["total"].as_i64(), Some(count_before + 1));
        // The average is the totals' average, whichever query produced them.
        let average = after.body["rating"]["average"].as_f64().expect("an average");
        assert!((1.0..=5.0).contains(&average), "{average}");
    })
    .await;
}

#[tokio::test]
async fn a_second_review_of_the_same_product_returns_409() {
    conformance(async |app: &TestApp| {
        let token = app.token_of_user(8).await;
        let first = app.post_review(Some(&token), 4, &json!({"rating": 5, "body": "Great"})).await;
        assert_eq!(first.status, 201);
        let second = app.post_review(Some(&token), 4, &json!({"rating": 1, "body": "Changed my mind"})).await;
        assert_eq!((second.status, second.code()), (409, "review_exists"));
    })
    .await;
}

#[tokio::test]
async fn reviews_of_unknown_products_return_404_and_bad_reviews_422() {
    conformance(async |app: &TestApp| {
        let token = app.token_of_user(9).await;
        let listed = app.reviews(999_999, "").await;
        assert_eq!((listed.status, listed.code()), (404, "not_found"));
        let posted = app.post_review(Some(&token), 999_999, &json!({"rating": 3, "body": "?"})).await;
        assert_eq!((posted.status, posted.code()), (404, "not_found"));
        for bad in
            [json!({"rating": 0, "body": "x"}), json!({"rating": 6, "body": "x"}), json!({"rating": 3, "body": " "})]
        {
            let reply = app.post_review(Some(&token), 5, &bad).await;
            assert_eq!((reply.status, reply.code()), (422, "validation_failed"), "{bad}");
        }
        let bad_page = app.reviews(5, "?per_page=500").await;
        assert_eq!(bad_page.status, 422);
    })
    .await;
}

#[tokio::test]
async fn posting_a_review_without_a_valid_token_returns_401() {
    conformance(async |app: &TestApp| {
        let anonymous = app.post_review(None, 5, &json!({"rating": 3, "body": "x"})).await;
        assert_eq!((anonymous.status, anonymous.code()), (401, "missing_token"));
        let forged = app.post_review(Some("v1.1.99999999999999.AAAA"), 5, &json!({"rating": 3, "body": "x"})).await;
        assert_eq!((forged.status, forged.code()), (401, "invalid_token"));
    })
    .await;
}
