use crate::helpers::{DECLINED_CARD, GOOD_CARD, SCARCE_PRODUCT, TestApp, conformance, order_body};

#[tokio::test]
async fn a_checkout_confirms_the_order_takes_stock_and_charges_once() {
    conformance(async |app: &TestApp| {
        let token = app.token_of_user(1).await;
        let stock_before = (app.stock_of(10).await, app.stock_of(11).await);

        let placed = app.checkout(Some(&token), Some("order-1"), &order_body(&[(10, 2), (11, 1)], GOOD_CARD)).await;
        assert_eq!(placed.status, 201, "{:?}", placed.body);
        assert_eq!(placed.body["status"], "confirmed");
        let lines = placed.body["lines"].as_array().expect("lines");
        assert_eq!(lines.len(), 2);
        let total: i64 = lines
            .iter()
            .map(|l| l["unit_price_cents"].as_i64().unwrap_or(0) * l["quantity"].as_i64().unwrap_or(0))
            .sum();
        assert_eq!(placed.body["total_cents"].as_i64(), Some(total));

        assert_eq!((app.stock_of(10).await, app.stock_of(11).await), (stock_before.0 - 2, stock_before.1 - 1));
        assert_eq!(app.approved_charges().await, (1, total));

        let history = app.orders(Some(&token)).await;
        assert_eq!(history.status, 200);
        assert_eq!(history.body["total"], 1);
        assert_eq!(history.body["items"][0]["id"], placed.body["id"]);
        let id = placed.body["id"].as_i64().expect("an order id");
        let one = app.order(Some(&token), id).await;
        assert_eq!(one.status, 200);
        assert_eq!(one.body, placed.body);
    })
    .await;
}

#[tokio::test]
async fn checkout_with_insufficient_stock_returns_409_and_leaves_stock_unchanged() {
    conformance(async |app: &TestApp| {
        let token = app.token_of_user(2).await;
        let before = (app.stock_of(12).await, app.stock_of(SCARCE_PRODUCT).await);
        assert_eq!(before.1, 3);
        // The first line could be reserved; the scarce one cannot, so neither is.
        let reply =
            app.checkout(Some(&token), Some("too-many"), &order_body(&[(12, 1), (SCARCE_PRODUCT, 4)], GOOD_CARD)).await;
        assert_eq!((reply.status, reply.code()), (409, "insufficient_stock"));
        assert_eq!((app.stock_of(12).await, app.stock_of(SCARCE_PRODUCT).await), before);
        assert_eq!(app.approved_charges().await, (0, 0));
        assert_eq!(app.orders(Some(&token)).await.body["total"], 0);

        // The outcome is stored under the key: a replay answers the same.
        let replay =
            app.checkout(Some(&token), Some("too-many"), &order_body(&[(12, 1), (SCARCE_PRODUCT, 4)], GOOD_CARD)).await;
        assert_eq!((replay.status, replay.code()), (409, "insufficient_stock"));

        // Exactly the remaining stock can be bought; then none is left.
        let all = app.checkout(Some(&token), Some("all-three"), &order_body(&[(SCARCE_PRODUCT, 3)], GOOD_CARD)).await;
        assert_eq!(all.status, 201);
        assert_eq!(app.stock_of(SCARCE_PRODUCT).await, 0);
        let more = app.checkout(Some(&token), Some("one-more"), &order_body(&[(SCARCE_PRODUCT, 1)], GOOD_CARD)).await;
        assert_eq!(more.status, 409);
    })
    .await;
}

#[tokio::test]
async fn a_declined_payment_returns_402_releases_the_reservation_and_charges_nothing() {
    conformance(async |app: &TestApp| {
        let token = app.token_of_user(3).await;
        let before = app.stock_of(13).await;
        let reply = app.checkout(Some(&token), Some("declined"), &order_body(&[(13, 2)], DECLINED_CARD)).await;
        assert_eq!((reply.status, reply.code()), (402, "payment_declined"));
        assert_eq!(app.stock_of(13).await, before);
        assert_eq!(app.approved_charges().await, (0, 0));
        assert_eq!(app.orders(Some(&token)).await.body["total"], 0);
        let replay = app.checkout(Some(&token), Some("declined"), &order_body(&[(13, 2)], DECLINED_CARD)).await;
        assert_eq!((replay.status, replay.code()), (402, "payment_declined"));
        assert_eq!(app.stock_of(13).await, before);
    })
    .await;
}

#[tokio::test]
async fn replaying_a_checkout_returns_the_same_order_and_charges_once() {
    conformance(async |app: &TestApp| {
        let token = app.token_of_user(4).await;
        let before = app.stock_of(14).await;
        let body = order_body(&[(14, 1)], GOOD_CARD);
        let first = app.checkout(Some(&token), Some("same-key"), &body).await;
        assert_eq!(first.status, 201);
        assert!(!first.replayed);
        let again = app.checkout(Some(&token), Some("same-key"), &body).await;
        assert_eq!(again.status, 201);
        assert!(again.replayed);
        assert_eq!(again.body, first.body, "the very same order, id included");
        assert_eq!(app.stock_of(14).await, before - 1);
        assert_eq!(app.approved_charges().await.0, 1);
        assert_eq!(app.orders(Some(&token)).await.body["total"], 1);

        let other_body = app.checkout(Some(&token), Some("same-key"), &order_body(&[(14, 2)], GOOD_CARD)).await;
        assert_eq!((other_body.status, other_body.code()), (422, "idempotency_key_reused"));

        // Keys belong to users: another user's same key is a new order.
        let other_user = app.token_of_user(5).await;
        let theirs = app.checkout(Some(&other_user), Some("same-key"), &body).await;
        assert_eq!(theirs.status, 201);
        assert_ne!(theirs.body["id"], first.body["id"]);
        assert_eq!(app.approved_charges().await.0, 2);
    })
    .await;
}

#[tokio::test]
async fn another_users_order_returns_404() {
    conformance(async |app: &TestApp| {
        let owner = app.token_of_user(6).await;
        let placed = app.checkout(Some(&owner), Some("mine"), &order_body(&[(15, 1)], GOOD_CARD)).await;
        let id = placed.body["id"].as_i64().expect("an order id");
        let intruder = app.token_of_user(7).await;
        let peek = app.order(Some(&intruder), id).await;
        assert_eq!((peek.status, peek.code()), (404, "not_found"));
        let absent = app.order(Some(&owner), id + 1000).await;
        assert_eq!(absent.status, 404, "unknown and foreign orders look the same");
        assert_eq!(app.orders(Some(&intruder)).await.body["total"], 0);
    })
    .await;
}

#[tokio::test]
async fn orders_without_a_valid_token_return_401() {
    conformance(async |app: &TestApp| {
        for reply in [
            app.orders(None).await,
            app.order(None, 1).await,
            app.checkout(None, Some("k"), &order_body(&[(1, 1)], GOOD_CARD)).await,
        ] {
            assert_eq!((reply.status, reply.code()), (401, "missing_token"));
        }
        let garbage = app.orders(Some("garbage")).await;
        assert_eq!((garbage.status, garbage.code()), (401, "invalid_token"));
        let raw = app.send(reqwest::Method::GET, "/api/orders", &[("authorization", "Basic dXNlcjpwYXNz")], None).await;
        assert_eq!(raw.status, 401);
    })
    .await;
}

#[tokio::test]
async fn checkout_needs_a_valid_idempotency_key_and_valid_items() {
    conformance(async |app: &TestApp| {
        let token = app.token_of_user(8).await;
        let missing = app.checkout(Some(&token), None, &order_body(&[(1, 1)], GOOD_CARD)).await;
        assert_eq!((missing.status, missing.code()), (400, "missing_idempotency_key"));
        let long_key = "k".repeat(129);
        let too_long = app.checkout(Some(&token), Some(&long_key), &order_body(&[(1, 1)], GOOD_CARD)).await;
        assert_eq!((too_long.status, too_long.code()), (400, "invalid_idempotency_key"));

        for (n, body) in [
            order_body(&[], GOOD_CARD),
            order_body(&[(1, 0)], GOOD_CARD),
            order_body(&[(1, 11)], GOOD_CARD),
            order_body(&[(0, 1)], GOOD_CARD),
            order_body(&[(1, 1), (1, 2)], GOOD_CARD),
            order_body(&[(1, 1)], "1234"),
        ]
        .into_iter()
        .enumerate()
        {
            let reply = app.checkout(Some(&token), Some(&format!("bad-{n}")), &body).await;
            assert_eq!((reply.status, reply.code()), (422, "validation_failed"), "{body}");
        }
        let unknown = app.checkout(Some(&token), Some("unknown"), &order_body(&[(999_999, 1)], GOOD_CARD)).await;
        assert_eq!((unknown.status, unknown.code()), (422, "unknown_product"));
        assert_eq!(app.approved_charges().await, (0, 0));
    })
    .await;
}
