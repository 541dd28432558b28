//! `/health`, `/ready` and `/metrics` on every process of both architectures.

use splitbench::{Architecture, Backend};

use crate::helpers::TestApp;

#[tokio::test]
async fn every_process_answers_health_ready_and_metrics() {
    let client = reqwest::Client::new();
    for architecture in Architecture::ALL {
        let app = TestApp::spawn(architecture, &Backend::Sqlite).await;
        // Traffic first, so the public process has something to count.
        assert_eq!(app.product_page(1).await.status, 200);
        for (process, port) in &app.shop.ports {
            let base = format!("http://127.0.0.1:{port}");
            let health = client.get(format!("{base}/health")).send().await.expect("health answers");
            assert_eq!(health.status(), 200, "{process} /health");
            let ready = client.get(format!("{base}/ready")).send().await.expect("ready answers");
            assert_eq!(ready.status(), 200, "{process} /ready");
            let metrics = client.get(format!("{base}/metrics")).send().await.expect("metrics answer");
            assert_eq!(metrics.status(), 200);
            let text = metrics.text().await.expect("metrics text");
            assert!(text.contains("splitbench_http_requests_total"), "{process} exposes request counts");
            assert!(text.contains(&format!("process=\"{process}\"")), "{process} labels its metrics");
        }
        let public = if architecture == Architecture::Monolith { "monolith" } else { "gateway" };
        let text = client
            .get(format!("http://127.0.0.1:{}/metrics", app.shop.ports[public]))
            .send()
            .await
            .expect("metrics answer")
            .text()
            .await
            .expect("metrics text");
        assert!(text.contains("route=\"/api/products/{id}\""), "{public} counts the product page by route pattern");
        app.shop.stop().await;
    }
}
