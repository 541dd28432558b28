use crate::helpers::{TestApp, conformance};

#[tokio::test]
async fn search_filters_by_text_and_category_and_paginates() {
    conformance(async |app: &TestApp| {
        let all = app.search("").await;
        assert_eq!(all.status, 200);
        assert_eq!(all.body["total"], 500);
        assert_eq!(all.body["per_page"], 20);
        assert_eq!(all.body["items"].as_array().map(Vec::len), Some(20));

        let lamps = app.search("?q=LAMP&per_page=100").await;
        assert_eq!(lamps.status, 200);
        let items = lamps.body["items"].as_array().expect("items");
        assert!(!items.is_empty());
        assert!(items.iter().all(|p| p["name"].as_str().is_some_and(|n| n.to_lowercase().contains("lamp"))));

        let category = app.search("?category=3&per_page=100").await;
        let items = category.body["items"].as_array().expect("items");
        assert!(!items.is_empty());
        assert!(items.iter().all(|p| p["category_id"] == 3));

        let both = app.search("?q=steel&category=3").await;
        assert_eq!(both.status, 200);

        let page2 = app.search("?page=2&per_page=5").await;
        assert_eq!(page2.body["items"][0]["id"], 6);
        let beyond = app.search("?page=1000&per_page=100").await;
        assert_eq!((beyond.status, beyond.body["items"].as_array().map(Vec::len)), (200, Some(0)));

        let wildcard = app.search("?q=%25").await;
        assert_eq!((wildcard.status, wildcard.body["total"].as_i64()), (200, Some(0)), "% matches literally");
        let unknown_category = app.search("?category=999").await;
        assert_eq!((unknown_category.status, unknown_category.body["total"].as_i64()), (200, Some(0)));
    })
    .await;
}

#[tokio::test]
async fn out_of_range_pagination_and_filters_are_rejected() {
    conformance(async |app: &TestApp| {
        for query in ["?page=0", "?page=1001", "?per_page=0", "?per_page=101", "?category=0", "?page=-1"] {
            let reply = app.search(query).await;
            assert_eq!((reply.status, reply.code()), (422, "validation_failed"), "{query}");
        }
        let long = format!("?q={}", "a".repeat(101));
        assert_eq!(app.search(&long).await.status, 422);
        for query in ["?page=abc", "?per_page=1.5", "?category=x", "?page=99999999999999999999"] {
            let reply = app.search(query).await;
            assert_eq!((reply.status, reply.code()), (400, "invalid_query"), "{query}");
        }
    })
    .await;
}

#[tokio::test]
async fn categories_are_listed() {
    conformance(async |app: &TestApp| {
        let reply = app.categories().await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body["categories"].as_array().map(Vec::len), Some(20));
        assert_eq!(reply.body["categories"][0]["name"], "Home");
    })
    .await;
}

#[tokio::test]
async fn the_product_page_shows_product_stock_rating_and_recent_reviews() {
    conformance(async |app: &TestApp| {
        let page = app.product_page(1).await;
        assert_eq!(page.status, 200);
        assert_eq!(page.body["product"]["id"], 1);
        assert!(page.body["product"]["price_cents"].as_i64().is_some_and(|p| p > 0));
        assert!(page.body["stock"]["available"].as_i64().is_some_and(|s| s >= 50));
        assert_eq!(page.body["degraded"], serde_json::json!([]));
        let count = page.body["rating"]["count"].as_i64().expect("a review count");
        let recent = page.body["recent_reviews"].as_array().expect("recent reviews");
        assert_eq!(recent.len() as i64, count.min(5));

        let scarce = app.product_page(50).await;
        assert_eq!(scarce.body["stock"]["available"], 3);
    })
    .await;
}

#[tokio::test]
async fn an_unknown_product_returns_404() {
    conformance(async |app: &TestApp| {
        for id in ["999999", "0", "-3", "abc"] {
            let reply = app.send(reqwest::Method::GET, &format!("/api/products/{id}"), &[], None).await;
            assert_eq!((reply.status, reply.code()), (404, "not_found"), "{id}");
        }
    })
    .await;
}

#[tokio::test]
async fn text_search_through_the_index_finds_exactly_the_names_containing_the_text() {
    conformance(async |app: &TestApp| {
        // Long and short texts, texts spanning words, digits, quotes and LIKE wildcards.
        for text in ["lamp", "oak", "steel ch", "12", "1", "el", "ss d", "\"", "o'", "%", "_a", "zzzz"] {
            let query: String = url_encode(text);
            let reply = app.search(&format!("?q={query}&per_page=100")).await;
            assert_eq!(reply.status, 200, "{text:?}");
            let (expected_total, expected_first_ids) = app.names_containing(text).await;
            assert_eq!(reply.body["total"].as_i64(), Some(expected_total), "{text:?}: total");
            let ids: Vec<i64> =
                reply.body["items"].as_array().expect("items").iter().filter_map(|p| p["id"].as_i64()).collect();
            assert_eq!(ids, expected_first_ids, "{text:?}: the first page, by id");
        }
    })
    .await;
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}
