//! What exists only when the shop is split: the service credential, and degradation.

use shop::auth::SERVICE_TOKEN_HEADER;

use crate::helpers::{GOOD_CARD, TestApp, microservices_only, order_body, test_settings};

#[tokio::test]
async fn internal_routes_refuse_calls_without_the_service_credential() {
    microservices_only(async |app: &mut TestApp| {
        let client = reqwest::Client::new();
        let credential = test_settings().security.service_token;
        let checks = [
            ("catalog", "/internal/products/1"),
            ("catalog", "/api/products"),
            ("inventory", "/internal/stock/1"),
            ("reviews", "/internal/reviews/1/digest"),
            ("accounts", "/api/accounts"),
            ("orders", "/api/orders"),
        ];
        for (service, path) in checks {
            let url = format!("http://127.0.0.1:{}{path}", app.shop.ports[service]);
            let anonymous = client.get(&url).send().await.expect("answers");
            assert_eq!(anonymous.status(), 401, "{service} {path} without credential");
            let body: serde_json::Value = anonymous.json().await.expect("a JSON error");
            assert_eq!(body["error"]["code"], "service_credential_required");
            let wrong = client.get(&url).header(SERVICE_TOKEN_HEADER, "wrong").send().await.expect("answers");
            assert_eq!(wrong.status(), 401, "{service} {path} with a wrong credential");
        }
        let url = format!("http://127.0.0.1:{}/internal/products/1", app.shop.ports["catalog"]);
        let allowed = client.get(&url).header(SERVICE_TOKEN_HEADER, &credential).send().await.expect("answers");
        assert_eq!(allowed.status(), 200);
        let charge = format!("http://127.0.0.1:{}/internal/charges", app.shop.ports["payments"]);
        let refused = client.post(&charge).json(&serde_json::json!({})).send().await.expect("answers");
        assert_eq!(refused.status(), 401, "no charge without the credential");
    })
    .await;
}

#[tokio::test]
async fn the_product_page_degrades_when_the_reviews_service_is_stopped() {
    microservices_only(async |app: &mut TestApp| {
        let healthy = app.product_page(1).await;
        assert_eq!(healthy.body["degraded"], serde_json::json!([]));

        app.shop.stop_process("reviews").await;
        let degraded = app.product_page(1).await;
        assert_eq!(degraded.status, 200, "{:?}", degraded.body);
        assert_eq!(degraded.body["degraded"], serde_json::json!(["reviews"]));
        assert_eq!(degraded.body["rating"], serde_json::Value::Null);
        assert_eq!(degraded.body["recent_reviews"], serde_json::json!([]));
        assert_eq!(degraded.body["product"], healthy.body["product"]);
        assert_eq!(degraded.body["stock"], healthy.body["stock"]);

        app.shop.stop_process("inventory").await;
        let both = app.product_page(1).await;
        assert_eq!(both.status, 200);
        assert_eq!(both.body["degraded"], serde_json::json!(["inventory", "reviews"]));
        assert_eq!(both.body["stock"], serde_json::Value::Null);
    })
    .await;
}

#[tokio::test]
async fn the_product_page_fails_when_the_catalog_is_down() {
    microservices_only(async |app: &mut TestApp| {
        app.shop.stop_process("catalog").await;
        let reply = app.product_page(1).await;
        assert_eq!((reply.status, reply.code()), (503, "upstream_unavailable"), "{:?}", reply.body);
    })
    .await;
}

#[tokio::test]
async fn a_checkout_interrupted_by_a_payments_outage_is_compensated_and_completes_on_retry() {
    microservices_only(async |app: &mut TestApp| {
        let token = app.token_of_user(1).await;
        let before = app.stock_of(20).await;
        let body = order_body(&[(20, 2)], GOOD_CARD);

        app.shop.stop_process("payments").await;
        let failed = app.checkout(Some(&token), Some("outage"), &body).await;
        assert_eq!((failed.status, failed.code()), (503, "upstream_unavailable"), "{:?}", failed.body);
        // Compensated: the reservation is released, and no order is shown.
        assert_eq!(app.stock_of(20).await, before);
        assert_eq!(app.orders(Some(&token)).await.body["total"], 0);

        // Payments is back: the retry with the same key completes the same order, charged once.
        app.shop.restart_process("payments").await.expect("payments restarts");
        let retried = app.checkout(Some(&token), Some("outage"), &body).await;
        assert_eq!(retried.status, 201, "{:?}", retried.body);
        assert_eq!(app.stock_of(20).await, before - 2);
        assert_eq!(app.approved_charges().await.0, 1);
        let again = app.checkout(Some(&token), Some("outage"), &body).await;
        assert!(again.replayed);
        assert_eq!(again.body, retried.body);
        assert_eq!(app.approved_charges().await.0, 1);
    })
    .await;
}

/// `burst` product pages at once while every catalog call at the page's seam takes 500 ms;
/// the statuses they got, and the codes of the errors.
async fn page_burst(resilience: shop::resilience::Resilience, admitted: usize) -> (Vec<u16>, Vec<String>) {
    let burst = 2 * admitted;
    let mut settings = test_settings();
    settings.server.faults_enabled = true;
    settings.upstreams.resilience = resilience;
    settings.upstreams.gateway_max_in_flight = admitted;
    let app =
        TestApp::spawn_with(splitbench::Architecture::Microservices, &splitbench::Backend::Sqlite, settings).await;
    let client = reqwest::Client::new();
    let credential = test_settings().security.service_token;
    let slow_catalog = serde_json::json!({"faults": [{"module": "catalog", "delay_ms": 500}]});
    let admin = format!("{}/admin/faults", app.shop.base_url);
    let set = client.post(&admin).header(SERVICE_TOKEN_HEADER, &credential).json(&slow_catalog).send().await;
    assert_eq!(set.expect("answers").status(), 200);
    let page = format!("{}/api/products/1", app.shop.base_url);
    let pages = (0..burst).map(|_| async {
        let answer = client.get(&page).send().await.expect("answers");
        let status = answer.status().as_u16();
        let retry_after = answer.headers().get("retry-after").cloned();
        let body: serde_json::Value = answer.json().await.expect("JSON");
        if status == 503 {
            assert_eq!(retry_after.expect("a shed request says when to retry"), "1");
        }
        (status, body["error"]["code"].as_str().unwrap_or_default().to_string())
    });
    // The operations routes answer during the burst: they are never shed.
    let health = async {
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        client.get(format!("{}/health", app.shop.base_url)).send().await.expect("answers").status().as_u16()
    };
    let (answers, health) = tokio::join!(futures_util::future::join_all(pages), health);
    assert_eq!(health, 200, "{resilience:?}: /health during the burst");
    app.shop.stop().await;
    answers.into_iter().unzip()
}

#[tokio::test]
async fn the_full_profiles_gateway_sheds_what_it_cannot_admit_and_the_others_queue_it() {
    use shop::resilience::Resilience;
    // Twice what the gateway admits: each admitted page holds its slot 500 ms, longer than a
    // waiting one may wait (100 ms), so the rest are shed at once.
    let admitted = 24;
    let burst = 2 * admitted;
    let (statuses, codes) = page_burst(Resilience::Full, admitted).await;
    let shed = codes.iter().filter(|code| *code == "overloaded").count();
    let whole = statuses.iter().filter(|s| **s == 200).count();
    assert!(shed > 0 && whole >= admitted, "full: {whole} pages, {shed} shed of {burst}");
    assert_eq!(whole + shed, burst, "full: every request a page or shed: {statuses:?} {codes:?}");
    assert!(statuses.iter().zip(&codes).all(|(s, c)| *s == 200 || (*s == 503 && c == "overloaded")));
    // Without `full` nothing is shed: every page waits its 500 ms.
    let (statuses, _) = page_burst(Resilience::None, admitted).await;
    assert!(statuses.iter().all(|s| *s == 200), "none: {statuses:?}");
}

#[tokio::test]
async fn replicas_share_their_processes_database_and_each_serves_calls() {
    for backend in splitbench::Backend::for_tests() {
        // Two catalogs and two inventories, each pair on one database; the rest beside the edge.
        let app = TestApp::spawn_topology("catalog*2|inventory*2|rest", &backend, test_settings()).await;
        let token = app.token_of_user(3).await;
        for id in 1..=40 {
            assert_eq!(app.product_page(id).await.status, 200, "[{}] page {id}", app.label());
        }
        let before = app.stock_of(7).await;
        let mut confirmed = Vec::new();
        for n in 0..6 {
            let reply =
                app.checkout(Some(&token), Some(&format!("replicas-{n}")), &order_body(&[(7, 1)], GOOD_CARD)).await;
            assert_eq!(reply.status, 201, "[{}] checkout {n}: {:?}", app.label(), reply.body);
            confirmed.push(reply.body["id"].as_i64().expect("an order id"));
        }
        // Every replica answered some of the calls (the edge balances over them) ...
        for replica in ["catalog-1", "catalog-2", "inventory-1", "inventory-2"] {
            let url = format!("http://127.0.0.1:{}/metrics", app.shop.ports[replica]);
            let metrics = reqwest::get(&url).await.expect("metrics").text().await.expect("text");
            let served: u64 = metrics
                .lines()
                .filter(|l| l.starts_with("splitbench_http_requests_total") && l.contains("/internal/"))
                .filter_map(|l| l.rsplit_once(' ').and_then(|(_, n)| n.parse::<u64>().ok()))
                .sum();
            assert!(served > 0, "[{}] {replica} served no call", app.label());
        }
        // ... on one database per module: six orders, each taking a unit of product 7 once.
        assert_eq!(app.stock_of(7).await, before - 6, "[{}]", app.label());
        app.assert_books_settle_clean(&confirmed).await;
        app.shop.stop().await;
    }
}
