//! The fault layer at the product page's seams (`--faults-enabled`): absent by default, behind
//! the service credential when on, and the same fault gives the same page on both
//! architectures.

use shop::auth::SERVICE_TOKEN_HEADER;
use splitbench::{Architecture, Backend};

use crate::helpers::{TestApp, test_settings};

#[tokio::test]
async fn the_fault_admin_exists_only_with_faults_enabled_and_refuses_calls_without_the_credential() {
    let client = reqwest::Client::new();
    let credential = test_settings().security.service_token;
    let fail_inventory = serde_json::json!({"faults": [{"module": "inventory", "failure_share": 1.0}]});
    for architecture in Architecture::ALL {
        // Without the flag the routes do not exist.
        let plain = TestApp::spawn(architecture, &Backend::Sqlite).await;
        let url = format!("{}/admin/faults", plain.shop.base_url);
        let absent = client.post(&url).header(SERVICE_TOKEN_HEADER, &credential).json(&fail_inventory).send().await;
        assert_eq!(absent.expect("answers").status(), 404, "{architecture:?} without --faults-enabled");
        plain.shop.stop().await;

        let mut settings = test_settings();
        settings.server.faults_enabled = true;
        let app = TestApp::spawn_with(architecture, &Backend::Sqlite, settings).await;
        let url = format!("{}/admin/faults", app.shop.base_url);
        for (presented, what) in [(None, "no credential"), (Some("wrong"), "a wrong credential")] {
            let mut request = client.post(&url).json(&fail_inventory);
            if let Some(token) = presented {
                request = request.header(SERVICE_TOKEN_HEADER, token);
            }
            let refused = request.send().await.expect("answers");
            assert_eq!(refused.status(), 401, "{architecture:?} with {what}");
            let body: serde_json::Value = refused.json().await.expect("a JSON error");
            assert_eq!(body["error"]["code"], "service_credential_required");
        }
        assert_eq!(app.product_page(1).await.body["degraded"], serde_json::json!([]), "refused calls set nothing");

        let bad = serde_json::json!({"faults": [{"module": "inventory", "failure_share": 2.0}]});
        let refused = client.post(&url).header(SERVICE_TOKEN_HEADER, &credential).json(&bad).send().await;
        let refused = refused.expect("answers");
        assert_eq!(refused.status(), 400, "{architecture:?}: a share above 1");
        let body: serde_json::Value = refused.json().await.expect("a JSON error");
        assert_eq!(body["error"]["code"], "bad_share");

        // With the credential: every inventory call at the page's seam fails, so the page is
        // degraded the same way on both architectures, and whole again once the fault is gone.
        let set = client.post(&url).header(SERVICE_TOKEN_HEADER, &credential).json(&fail_inventory).send().await;
        assert_eq!(set.expect("answers").status(), 200);
        let page = app.product_page(1).await;
        assert_eq!(page.status, 200);
        assert_eq!(page.body["degraded"], serde_json::json!(["inventory"]), "{architecture:?}");
        let cleared = client.delete(&url).header(SERVICE_TOKEN_HEADER, &credential).send().await;
        assert_eq!(cleared.expect("answers").status(), 200);
        assert_eq!(app.product_page(1).await.body["degraded"], serde_json::json!([]), "{architecture:?}");
        app.shop.stop().await;
    }
}
