//! `TestApp`: a started architecture plus one helper per endpoint, recording every exchange
//! so the two architectures' transcripts can be compared.

use std::sync::Mutex;

use reqwest::Method;
use serde_json::{Value, json};
use shop::topology::Topology;
use shop::{Schema, Settings};
use splitbench::check::{CheckOptions, ConsistencyReport, Deployment, Invariant, check};
use splitbench::{Architecture, Backend, RunningShop};

/// The topologies every conformance scenario runs on: the two ends, and one between them
/// whose processes call each other both ways (orders calls the edge's catalog, inventory and
/// payments; the edge forwards checkouts to orders), so checkout is a saga whose participants
/// all live in one other process.
pub const TOPOLOGIES: [&str; 3] = ["monolith", "microservices", "all-but-orders"];
use sqlx::{Connection, Row};

/// A user every test can log in as (seeded: `user<N>@example.com`).
pub const SEED_PASSWORD: &str = shop::seed::SEED_PASSWORD;
pub const GOOD_CARD: &str = "4242424242424242";
pub const DECLINED_CARD: &str = shop::payments::DECLINED_CARD;
/// A scarce product (id multiple of 50): seeded with 3 units.
pub const SCARCE_PRODUCT: i64 = 50;

/// One HTTP answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub replayed: bool,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

pub struct TestApp {
    pub shop: RunningShop,
    client: reqwest::Client,
    transcript: Mutex<Vec<(String, Reply)>>,
    recovery_deadline: std::time::Duration,
}

/// Small scale keeps each start under a second in debug builds; the shape of the data is the
/// default one.
pub fn test_settings() -> Settings {
    let mut settings = Settings::defaults();
    settings.seed.products = 500;
    settings.seed.users = 50;
    settings.payments.payment_latency_ms = 1;
    settings.server.log_level = std::env::var("TEST_LOG").map(|_| "info".into()).unwrap_or_else(|_| "off".into());
    settings
}

impl TestApp {
    pub async fn spawn(architecture: Architecture, backend: &Backend) -> TestApp {
        Self::spawn_with(architecture, backend, test_settings()).await
    }

    pub async fn spawn_with(architecture: Architecture, backend: &Backend, settings: Settings) -> TestApp {
        Self::spawn_topology(architecture.name(), backend, settings).await
    }

    /// Starts a topology: an architecture's or another preset's name, or a description.
    pub async fn spawn_topology(topology: &str, backend: &Backend, settings: Settings) -> TestApp {
        shop::telemetry::init_tracing(&settings.server.log_level);
        let recovery_deadline = settings.recovery_deadline();
        let description = Topology::parse(topology).expect("a topology");
        let shop = RunningShop::start_topology(topology, &description, backend, &settings)
            .await
            .unwrap_or_else(|err| panic!("{topology} starts: {err:#}"));
        TestApp { shop, client: reqwest::Client::new(), transcript: Mutex::new(Vec::new()), recovery_deadline }
    }

    /// "monolith on sqlite", for assertion messages.
    pub fn label(&self) -> String {
        format!("{} on {}", self.shop.name, self.shop.backend.name())
    }

    /// Sends a request to the public API and records the answer.
    pub async fn send(&self, method: Method, path: &str, headers: &[(&str, &str)], body: Option<Vec<u8>>) -> Reply {
        let mut request = self.client.request(method.clone(), format!("{}{path}", self.shop.base_url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let replayed = response.headers().contains_key(shop::orders::REPLAYED_HEADER);
        let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(ToString::to_string);
        let bytes = response.bytes().await.expect("the body arrives");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("{method} {path}: body is not JSON: {bytes:?}"))
        };
        let reply = Reply { status, body, replayed, retry_after };
        self.transcript.lock().expect("not poisoned").push((format!("{method} {path}"), reply.clone()));
        reply
    }

    async fn send_json(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        extra: &[(&str, &str)],
        body: &Value,
    ) -> Reply {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &str)> = vec![("content-type", "application/json")];
        if let Some(bearer) = &bearer {
            headers.push(("authorization", bearer));
        }
        headers.extend_from_slice(extra);
        self.send(method, path, &headers, Some(serde_json::to_vec(body).expect("serialisable"))).await
    }

    async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer.iter().map(|b| ("authorization", b.as_str())).collect();
        self.send(Method::GET, path, &headers, None).await
    }

    pub async fn register(&self, email: &str, password: &str, name: &str) -> Reply {
        self.send_json(
            Method::POST,
            "/api/accounts",
            None,
            &[],
            &json!({"email": email, "password": password, "name": name}),
        )
        .await
    }

    pub async fn log_in(&self, email: &str, password: &str) -> Reply {
        self.send_json(Method::POST, "/api/sessions", None, &[], &json!({"email": email, "password": password})).await
    }

    /// A token for seeded user `n`.
    pub async fn token_of_user(&self, n: i64) -> String {
        let reply = self.log_in(&shop::seed::email_of_user(n), SEED_PASSWORD).await;
        assert_eq!(reply.status, 200, "seeded user {n} logs in: {:?}", reply.body);
        reply.body["token"].as_str().expect("a token").to_string()
    }

    pub async fn search(&self, query: &str) -> Reply {
        self.get(&format!("/api/products{query}"), None).await
    }

    pub async fn categories(&self) -> Reply {
        self.get("/api/categories", None).await
    }

    pub async fn product_page(&self, id: i64) -> Reply {
        self.get(&format!("/api/products/{id}"), None).await
    }

    /// Units available, read from the product page.
    pub async fn stock_of(&self, id: i64) -> i64 {
        let page = self.product_page(id).await;
        page.body["stock"]["available"].as_i64().unwrap_or_else(|| panic!("product {id} has stock: {:?}", page.body))
    }

    pub async fn reviews(&self, id: i64, query: &str) -> Reply {
        self.get(&format!("/api/products/{id}/reviews{query}"), None).await
    }

    pub async fn post_review(&self, token: Option<&str>, id: i64, body: &Value) -> Reply {
        self.send_json(Method::POST, &format!("/api/products/{id}/reviews"), token, &[], body).await
    }

    pub async fn checkout(&self, token: Option<&str>, key: Option<&str>, body: &Value) -> Reply {
        self.checkout_with(token, key, &[], body).await
    }

    /// A checkout with extra request headers (e.g. a shorter deadline).
    pub async fn checkout_with(
        &self,
        token: Option<&str>,
        key: Option<&str>,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> Reply {
        let mut extra: Vec<(&str, &str)> = key.iter().map(|k| ("idempotency-key", *k)).collect();
        extra.extend_from_slice(headers);
        self.send_json(Method::POST, "/api/orders", token, &extra, body).await
    }

    /// Products whose lower-cased name contains `text`, counted by a plain scan of the catalog
    /// table (no index): the total, and the first 100 ids.
    pub async fn names_containing(&self, text: &str) -> (i64, Vec<i64>) {
        let url = self.shop.database_of(Schema::Catalog).expect("a catalog database");
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(url).await.expect("the catalog database opens");
        let rows = sqlx::query("SELECT id, name_lower FROM products ORDER BY id")
            .fetch_all(&mut conn)
            .await
            .expect("products listed");
        let needle = text.to_lowercase();
        let ids: Vec<i64> = rows
            .iter()
            .filter(|row| row.get::<String, _>("name_lower").contains(&needle))
            .map(|row| row.get::<i64, _>("id"))
            .collect();
        (ids.len() as i64, ids.into_iter().take(100).collect())
    }

    /// Orders of any status in the orders database (users see only confirmed ones).
    pub async fn orders_in_database(&self) -> i64 {
        let url = self.shop.database_of(Schema::Orders).expect("an orders database");
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(url).await.expect("the orders database opens");
        sqlx::query("SELECT COUNT(*) AS n FROM orders").fetch_one(&mut conn).await.expect("orders counted").get("n")
    }

    /// Ends the lease of every unfinished order now, as if their runs had ended long ago, so the
    /// recovery loop's next round (a fifth of the recovery deadline away) takes them over. Tests
    /// use it instead of short deadlines, which a loaded machine could miss.
    pub async fn expire_leases(&self) {
        let url = self.shop.database_of(Schema::Orders).expect("an orders database");
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(url).await.expect("the orders database opens");
        sqlx::query("UPDATE orders SET lease_until = 0 WHERE finished_at IS NULL")
            .execute(&mut conn)
            .await
            .expect("leases can be ended");
    }

    /// A second, independent checkout of this shop (its own database pool and clients), as
    /// another process running the orders module would have.
    pub async fn another_checkout(&self, settings: &Settings) -> shop::orders::SharedCheckout {
        use std::sync::Arc;
        let connect = |schema: Schema| {
            let url = self.shop.database_of(schema).expect("a database").to_string();
            async move { shop::Database::connect(&shop::DatabaseSettings { url, pool_size: 4 }, &[]).await }
        };
        let policy = shop::orders::CheckoutPolicy::from_settings(settings);
        let topology = &self.shop.topology;
        let orders_host = topology.host(Schema::Orders);
        if [Schema::Catalog, Schema::Inventory, Schema::Payments].iter().all(|m| orders_host.hosts(*m)) {
            let db = connect(Schema::Orders).await.expect("the database opens");
            let payments = shop::payments::LocalPayments { db: db.clone(), latency: settings.payment_latency() };
            return Arc::new(shop::orders::LocalCheckout { db, payments, policy });
        }
        // The saga, every participant over HTTP (a participant beside orders would be local in
        // the orders process; over HTTP it reaches the same database).
        let client = |module: Schema| {
            let url = format!("http://127.0.0.1:{}", self.shop.ports[&self.shop.process_hosting(module)]);
            shop::http_client::ServiceClient::new(
                module.name(),
                &url,
                &settings.security.service_token,
                settings.upstream_timeout(),
            )
            .expect("a client")
        };
        Arc::new(shop::orders::SagaCheckout {
            db: connect(Schema::Orders).await.expect("the orders database opens"),
            catalog: Arc::new(shop::catalog::CatalogClient(client(Schema::Catalog))),
            inventory: Arc::new(shop::inventory::InventoryClient(client(Schema::Inventory))),
            payments: Arc::new(shop::payments::PaymentsClient(client(Schema::Payments))),
            policy,
        })
    }

    /// The consistency check of this shop's databases, `acknowledged` being the ids of the
    /// orders a client was told are confirmed.
    pub async fn check(&self, acknowledged: &[i64]) -> ConsistencyReport {
        let deployment = Deployment::of_running_shop(&self.shop).expect("a shop's databases");
        let options =
            CheckOptions { recovery_deadline: self.recovery_deadline, acknowledged_orders: acknowledged.to_vec() };
        check(&deployment, &options).await.expect("the databases can be checked")
    }

    /// Waits (at most 30 s) until no order is left unfinished (recovery and compensations
    /// done), then asserts that the books are consistent. Polls: how long recovery takes is
    /// not what is tested, only that it ends with clean books.
    pub async fn assert_books_settle_clean(&self, acknowledged: &[i64]) -> ConsistencyReport {
        let started = std::time::Instant::now();
        loop {
            let report = self.check(acknowledged).await;
            let settled = report.in_progress == 0 && report.count(Invariant::NothingLeftUnfinished) == 0;
            if settled || started.elapsed() > std::time::Duration::from_secs(30) {
                assert!(report.is_clean() && report.in_progress == 0, "the books settle clean: {report}");
                return report;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    pub async fn orders(&self, token: Option<&str>) -> Reply {
        self.get("/api/orders", token).await
    }

    pub async fn order(&self, token: Option<&str>, id: i64) -> Reply {
        self.get(&format!("/api/orders/{id}"), token).await
    }

    /// Approved charges and their total, read from the payments tables directly.
    pub async fn approved_charges(&self) -> (i64, i64) {
        let url = self.shop.database_of(Schema::Payments).expect("a payments database");
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(url).await.expect("the payments database opens");
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(amount_cents), 0) AS BIGINT) AS total FROM charges WHERE status = 'approved'",
        )
        .fetch_one(&mut conn)
        .await
        .expect("charges can be counted");
        (row.get("n"), row.get("total"))
    }

    pub fn transcript(&self) -> Vec<(String, Reply)> {
        self.transcript.lock().expect("not poisoned").clone()
    }
}

/// An order body for `items` as (product id, quantity) pairs.
pub fn order_body(items: &[(i64, i64)], card: &str) -> Value {
    let items: Vec<Value> = items.iter().map(|(p, q)| json!({"product_id": p, "quantity": q})).collect();
    json!({ "items": items, "card_number": card })
}

/// Blanks the fields that legitimately differ between two runs: ids, timestamps, tokens.
fn normalise(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let volatile = matches!(k.as_str(), "id" | "created_at" | "expires_at" | "token");
                    (k.clone(), if volatile { Value::String("<volatile>".into()) } else { normalise(v) })
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(normalise).collect()),
        other => other.clone(),
    }
}

/// Runs `scenario` against every topology of [`TOPOLOGIES`] on every test backend, then
/// checks that each answered every request as the monolith did.
pub async fn conformance(scenario: impl AsyncFn(&TestApp)) {
    conformance_with(test_settings(), scenario).await;
}

/// [`conformance`] with other settings.
pub async fn conformance_with(settings: Settings, scenario: impl AsyncFn(&TestApp)) {
    for backend in Backend::for_tests() {
        let mut transcripts = Vec::new();
        for topology in TOPOLOGIES {
            let app = TestApp::spawn_topology(topology, &backend, settings.clone()).await;
            scenario(&app).await;
            transcripts.push((topology, app.transcript()));
            app.shop.stop().await;
        }
        let (_, monolith) = &transcripts[0];
        for (topology, transcript) in &transcripts[1..] {
            assert_same_transcripts(&format!("{} {topology}", backend.name()), monolith, transcript);
        }
    }
}

/// Runs `scenario` against every topology of [`TOPOLOGIES`] on every test backend, without
/// comparing their answers (for concurrent scenarios, whose interleaving decides which request
/// gets which answer; each scenario asserts what must hold whatever the interleaving).
pub async fn each_architecture(settings: Settings, scenario: impl AsyncFn(&mut TestApp)) {
    for backend in Backend::for_tests() {
        for topology in TOPOLOGIES {
            let mut app = TestApp::spawn_topology(topology, &backend, settings.clone()).await;
            scenario(&mut app).await;
            app.shop.stop().await;
        }
    }
}

/// Runs `scenario` against the microservices only, on every test backend.
pub async fn microservices_only(scenario: impl AsyncFn(&mut TestApp)) {
    for backend in Backend::for_tests() {
        let mut app = TestApp::spawn(Architecture::Microservices, &backend).await;
        scenario(&mut app).await;
        app.shop.stop().await;
    }
}

/// `other` (named in `label`) answered every request as the monolith did.
fn assert_same_transcripts(label: &str, monolith: &[(String, Reply)], other: &[(String, Reply)]) {
    let backend = label;
    assert!(!monolith.is_empty(), "[{backend}] the scenario sent requests");
    assert_eq!(monolith.len(), other.len(), "[{backend}] both answered the same number of requests");
    for ((request, a), (_, b)) in monolith.iter().zip(other) {
        assert_eq!(
            a.status, b.status,
            "[{backend}] {request}: status differs (monolith {:?}, other {:?})",
            a.body, b.body
        );
        assert_eq!(a.replayed, b.replayed, "[{backend}] {request}: replay marker differs");
        assert_eq!(normalise(&a.body), normalise(&b.body), "[{backend}] {request}: body differs");
    }
}

#[test]
fn normalise_blanks_only_volatile_fields() {
    let value = json!({"id": 1, "product_id": 2, "items": [{"id": 3, "created_at": 4, "name": "x"}]});
    let expected = json!({"id": "<volatile>", "product_id": 2, "items": [{"id": "<volatile>", "created_at": "<volatile>", "name": "x"}]});
    assert_eq!(normalise(&value), expected);
}

#[test]
#[should_panic(expected = "body differs")]
fn differing_bodies_fail_the_comparison() {
    let reply = |body: Value| Reply { status: 200, body, replayed: false, retry_after: None };
    let a = vec![("GET /x".to_string(), reply(json!({"id": 1, "name": "a"})))];
    let b = vec![("GET /x".to_string(), reply(json!({"id": 2, "name": "b"})))];
    assert_same_transcripts("test", &a, &b);
}
