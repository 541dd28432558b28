//! Every class of bad input gets a clear JSON error with a 4xx status, the same in both
//! architectures.

use reqwest::Method;

use crate::helpers::{TestApp, conformance};

const JSON: (&str, &str) = ("content-type", "application/json");

async fn post_raw(app: &TestApp, path: &str, headers: &[(&str, &str)], body: &[u8]) -> crate::helpers::Reply {
    app.send(Method::POST, path, headers, Some(body.to_vec())).await
}

#[tokio::test]
async fn malformed_json_returns_400() {
    conformance(async |app: &TestApp| {
        for body in [&b"{"[..], b"{\"email\": }", b"not json", b""] {
            let reply = post_raw(app, "/api/accounts", &[JSON], body).await;
            assert_eq!(reply.status, 400, "{:?}", String::from_utf8_lossy(body));
            assert!(matches!(reply.code(), "malformed_json" | "invalid_body"), "{:?}", reply.body);
            assert!(reply.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
    })
    .await;
}

#[tokio::test]
async fn missing_fields_and_wrong_types_return_400() {
    conformance(async |app: &TestApp| {
        let token = app.token_of_user(1).await;
        let bearer = format!("Bearer {token}");
        let auth = ("authorization", bearer.as_str());
        for body in [
            r#"{"email": "a@b.co", "password": "long enough"}"#,
            r#"{"email": 5, "password": "long enough", "name": "A"}"#,
            r#"[]"#,
        ] {
            let reply = post_raw(app, "/api/accounts", &[JSON], body.as_bytes()).await;
            assert_eq!((reply.status, reply.code()), (400, "invalid_body"), "{body}");
        }
        for body in [
            r#"{"card_number": "4242424242424242"}"#,
            r#"{"items": [{"product_id": "one", "quantity": 1}], "card_number": "4242424242424242"}"#,
            r#"{"items": [{"product_id": 1, "quantity": 1e30}], "card_number": "4242424242424242"}"#,
            r#"{"items": [{"product_id": 1, "quantity": 99999999999999999999}], "card_number": "4242424242424242"}"#,
            r#"{"items": {}, "card_number": 4242424242424242}"#,
        ] {
            let reply = post_raw(app, "/api/orders", &[JSON, auth, ("idempotency-key", "k")], body.as_bytes()).await;
            assert_eq!((reply.status, reply.code()), (400, "invalid_body"), "{body}");
        }
        let review =
            post_raw(app, "/api/products/1/reviews", &[JSON, auth], br#"{"rating": "five", "body": "x"}"#).await;
        assert_eq!((review.status, review.code()), (400, "invalid_body"));
    })
    .await;
}

#[tokio::test]
async fn an_oversized_body_returns_413() {
    conformance(async |app: &TestApp| {
        let token = app.token_of_user(1).await;
        let bearer = format!("Bearer {token}");
        let huge = format!(r#"{{"email": "a@b.co", "password": "long enough", "name": "{}"}}"#, "x".repeat(20_000));
        let reply = post_raw(app, "/api/accounts", &[JSON], huge.as_bytes()).await;
        assert_eq!((reply.status, reply.code()), (413, "payload_too_large"));
        let order = post_raw(
            app,
            "/api/orders",
            &[JSON, ("authorization", &bearer), ("idempotency-key", "big")],
            huge.as_bytes(),
        )
        .await;
        assert_eq!((order.status, order.code()), (413, "payload_too_large"));
    })
    .await;
}

#[tokio::test]
async fn a_body_that_is_not_json_returns_415() {
    conformance(async |app: &TestApp| {
        let reply = post_raw(app, "/api/sessions", &[("content-type", "text/plain")], b"{}").await;
        assert_eq!((reply.status, reply.code()), (415, "unsupported_media_type"));
    })
    .await;
}

#[tokio::test]
async fn unknown_routes_return_404_and_wrong_methods_405() {
    conformance(async |app: &TestApp| {
        for path in ["/api/nothing", "/api", "/internal/products/1", "/api/products/1/reviews/2"] {
            let reply = app.send(Method::GET, path, &[], None).await;
            assert_eq!((reply.status, reply.code()), (404, "not_found"), "{path}");
        }
        for (method, path) in [
            (Method::DELETE, "/api/products/1"),
            (Method::PUT, "/api/orders"),
            (Method::GET, "/api/accounts"),
            (Method::PATCH, "/api/categories"),
        ] {
            let reply = app.send(method.clone(), path, &[], None).await;
            assert_eq!((reply.status, reply.code()), (405, "method_not_allowed"), "{method} {path}");
        }
    })
    .await;
}
