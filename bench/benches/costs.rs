//! `cargo bench`: the micro-costs that explain the architectures' difference.
//!
//! Group and function names read as comparisons in criterion's report
//! (`target/criterion/report/index.html`):
//! - `boundary_*`: the same operation through the in-process implementation (`in_process`) and
//!   through the HTTP client to a real service on loopback (`http`): a stock lookup, composing a
//!   product page, a checkout; plus `boundary_hop`, one bare round trip taken apart: a TCP
//!   echo and an HTTP `/health`, each with the far end on the same core and on another core.
//! - `cpu_*`: the same pairs, but what is reported is CPU time (this process's user + system
//!   time per call, from `getrusage`): with the services in this process, that is the client's
//!   and the server's work together, without the waiting.
//! - `json_*`: encoding and decoding the main payloads.
//! - `endpoint_*`: one request to the public API of each architecture (`monolith`,
//!   `microservices`), release builds, both started once.
//! - `db_sqlite_*` (and `db_postgres_*` when `SPLITBENCH_TEST_POSTGRES` is set): the main
//!   queries.
//!
//! Async code runs on a current-thread tokio runtime, so a measurement is the operation and
//! not a hand-off between runtime threads. The servers run on their own actix threads. Every
//! thread of the benchmark is pinned to one core (the last one), as the harness gives the system
//! under test one core: on a VM whose idle cores halt, a wake-up across cores costs more than
//! the work of a small request, and unpinned threads would measure that instead (the
//! `boundary_hop/*_cross_core` functions show how much).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use shop::catalog::{CatalogClient, LocalCatalog, ProductSummary};
use shop::http_client::ServiceClient;
use shop::inventory::{Inventory, InventoryClient, LocalInventory};
use shop::orders::{Checkout, CheckoutRequest, IdempotencyKey, LineRequest, LocalCheckout, Order, SagaCheckout};
use shop::pagination::{Page, PageRequest};
use shop::payments::{LocalPayments, PaymentsClient};
use shop::product_page::{ProductPage, ProductPages};
use shop::reviews::{LocalReviews, ReviewsClient};
use shop::{Database, DatabaseSettings, Schema, Settings};
use splitbench::{Architecture, Backend, RunningShop};
use tokio::runtime::Runtime;

const PRODUCTS: u32 = 2_000;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime")
}

fn settings() -> Settings {
    let mut settings = Settings::defaults();
    settings.seed.products = PRODUCTS;
    settings.seed.users = 100;
    // The processor's simulated latency is a constant, not a cost of the architecture.
    settings.payments.payment_latency_ms = 0;
    settings.server.log_level = "off".into();
    settings
}

/// Both architectures, started once, with pools and clients for direct module calls.
struct Shops {
    cores: Cores,
    monolith: RunningShop,
    microservices: RunningShop,
    monolith_db: Database,
    orders_db: Database,
}

async fn open(url: &str) -> Database {
    Database::connect(&DatabaseSettings { url: url.to_string(), pool_size: 4 }, &[]).await.expect("the database opens")
}

impl Shops {
    async fn start(cores: Cores) -> Self {
        let settings = settings();
        let monolith =
            RunningShop::start(Architecture::Monolith, &Backend::Sqlite, &settings).await.expect("monolith starts");
        let microservices = RunningShop::start(Architecture::Microservices, &Backend::Sqlite, &settings)
            .await
            .expect("microservices start");
        let monolith_db = open(monolith.database_of(Schema::Orders).expect("a database")).await;
        let orders_db = open(microservices.database_of(Schema::Orders).expect("a database")).await;
        Shops { cores, monolith, microservices, monolith_db, orders_db }
    }

    fn client(&self, service: &'static str) -> ServiceClient {
        let url = format!("http://127.0.0.1:{}", self.microservices.ports[service]);
        ServiceClient::new(service, &url, &settings().security.service_token, Duration::from_secs(5)).expect("a client")
    }

    fn local_pages(&self) -> ProductPages {
        let db = self.monolith_db.clone();
        ProductPages {
            catalog: Arc::new(LocalCatalog(db.clone())),
            inventory: Arc::new(LocalInventory(db.clone())),
            reviews: Arc::new(LocalReviews(db)),
        }
    }

    fn http_pages(&self) -> ProductPages {
        ProductPages {
            catalog: Arc::new(CatalogClient(self.client("catalog"))),
            inventory: Arc::new(InventoryClient(self.client("inventory"))),
            reviews: Arc::new(ReviewsClient(self.client("reviews"))),
        }
    }

    fn local_checkout(&self) -> LocalCheckout {
        let db = self.monolith_db.clone();
        let policy = shop::orders::CheckoutPolicy::from_settings(&shop::Settings::defaults());
        LocalCheckout { db: db.clone(), payments: LocalPayments { db, latency: Duration::ZERO }, policy }
    }

    fn saga_checkout(&self) -> SagaCheckout {
        SagaCheckout {
            db: self.orders_db.clone(),
            catalog: Arc::new(CatalogClient(self.client("catalog"))),
            inventory: Arc::new(InventoryClient(self.client("inventory"))),
            payments: Arc::new(PaymentsClient(self.client("payments"))),
            policy: shop::orders::CheckoutPolicy::from_settings(&shop::Settings::defaults()),
        }
    }
}

/// Cycles through products that start with plenty of stock (not the scarce ones).
fn next_product(counter: &AtomicU64) -> i64 {
    loop {
        let id = (counter.fetch_add(1, Ordering::Relaxed) % u64::from(PRODUCTS)) as i64 + 1;
        if !shop::seed::is_scarce(id) {
            return id;
        }
    }
}

fn checkout_request(product_id: i64) -> CheckoutRequest {
    CheckoutRequest { items: vec![LineRequest { product_id, quantity: 1 }], card_number: "4242424242424242".into() }
}

fn boundary(c: &mut Criterion, rt: &Runtime, shops: &Shops) {
    let local_inventory = LocalInventory(shops.monolith_db.clone());
    let http_inventory = InventoryClient(shops.client("inventory"));
    let mut group = c.benchmark_group("boundary_stock_lookup");
    group.bench_function("in_process", |b| b.to_async(rt).iter(|| local_inventory.available(7)));
    group.bench_function("http", |b| b.to_async(rt).iter(|| http_inventory.available(7)));
    group.finish();

    let (local, http) = (shops.local_pages(), shops.http_pages());
    let mut group = c.benchmark_group("boundary_product_page");
    group.bench_function("in_process", |b| b.to_async(rt).iter(|| local.compose(7)));
    group.bench_function("http", |b| b.to_async(rt).iter(|| http.compose(7)));
    group.finish();

    let (local, saga) = (shops.local_checkout(), shops.saga_checkout());
    let (next, keys) = (AtomicU64::new(0), AtomicU64::new(0));
    let mut group = c.benchmark_group("boundary_checkout");
    for (name, checkout) in [("in_process", &local as &dyn Checkout), ("http", &saga as &dyn Checkout)] {
        group.bench_function(name, |b| {
            b.to_async(rt).iter(|| async {
                let key = IdempotencyKey(format!("bench-{}", keys.fetch_add(1, Ordering::Relaxed)));
                checkout.checkout(1, &key, checkout_request(next_product(&next))).await.expect("checkout succeeds")
            })
        });
    }
    group.finish();

    hop_anatomy(c, rt, shops);
}

/// One bare round trip, taken apart: a TCP echo of 4 bytes (the kernel's share) and an HTTP
/// `/health` through the services' client and server stack, each with the far end on this
/// process's core (`same_core`, as in the harness, where the whole system under test shares one
/// core) and on another core (`cross_core`, where every round trip wakes an idle core twice).
fn hop_anatomy(c: &mut Criterion, rt: &Runtime, shops: &Shops) {
    let mut group = c.benchmark_group("boundary_hop");
    let mut far_ends = vec![("same_core", Some(shops.cores.home))];
    if let Some(other) = shops.cores.other {
        far_ends.push(("cross_core", Some(other)));
    }
    for (layout, core) in &far_ends {
        let mut echo = tcp_echo_client(*core);
        group.bench_function(format!("tcp_{layout}"), |b| b.iter(|| ping(&mut echo)));
    }
    let same_core = shops.client("catalog");
    group.bench_function("http_same_core", |b| b.to_async(rt).iter(|| same_core.health()));
    let cross_core = shops.cores.other.map(|core| {
        let port = ops_server_on(core);
        let url = format!("http://127.0.0.1:{port}");
        ServiceClient::new("ops", &url, &settings().security.service_token, Duration::from_secs(5)).expect("a client")
    });
    if let Some(cross_core) = &cross_core {
        group.bench_function("http_cross_core", |b| b.to_async(rt).iter(|| cross_core.health()));
    }
    group.finish();

    let mut group = c.benchmark_group("cpu_hop");
    for (layout, core) in &far_ends {
        let mut echo = tcp_echo_client(*core);
        group.bench_function(format!("tcp_{layout}"), |b| {
            b.iter_custom(|iterations| {
                let start = cpu_time();
                for _ in 0..iterations {
                    ping(&mut echo);
                }
                cpu_time() - start
            })
        });
    }
    group.bench_function("http_same_core", |b| {
        cpu_per_call(b, rt, async || {
            same_core.health().await.expect("healthy");
        })
    });
    if let Some(cross_core) = &cross_core {
        group.bench_function("http_cross_core", |b| {
            cpu_per_call(b, rt, async || {
                cross_core.health().await.expect("healthy");
            })
        });
    }
    group.finish();
}

/// Four bytes there and back.
fn ping(echo: &mut TcpStream) {
    let mut reply = [0u8; 4];
    echo.write_all(b"ping").expect("the echo server reads");
    echo.read_exact(&mut reply).expect("the echo server answers");
}

/// A connection to a blocking echo server on its own thread, pinned to `core`. The server
/// thread ends when the connection closes.
fn tcp_echo_client(core: Option<usize>) -> TcpStream {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let address = listener.local_addr().expect("a bound address");
    std::thread::spawn(move || {
        pin_current_thread(core);
        let (mut stream, _) = listener.accept().expect("the client connects");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let mut buffer = [0u8; 64];
        while let Ok(read @ 1..) = stream.read(&mut buffer) {
            if stream.write_all(&buffer[..read]).is_err() {
                break;
            }
        }
    });
    let stream = TcpStream::connect(address).expect("the echo server accepts");
    stream.set_nodelay(true).expect("TCP_NODELAY");
    stream
}

/// A process's operations endpoints (`/health`, ...) served by the shop's own server stack on
/// a thread (and actix worker) pinned to `core`; it lives until the benchmark process exits.
fn ops_server_on(core: usize) -> u16 {
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        pin_current_thread(Some(core));
        let mut settings = settings();
        settings.server.host = "127.0.0.1".into();
        settings.server.port = Some(0);
        actix_web::rt::System::new().block_on(async move {
            let app = shop::Application::build("ops", &settings, 0, shop::telemetry::configure_ops).expect("binds");
            port_tx.send(app.port()).expect("the benchmark waits for the port");
            app.run_until_stopped().await.expect("serves");
        });
    });
    port_rx.recv().expect("the server starts")
}

/// Which cores the benchmark uses: every thread of this process (client, in-process servers,
/// SQLite threads) on `home`, so a call is measured as it runs in the harness, where the
/// system under test has one core; `other` only hosts the far end of the `cross_core` hops.
#[derive(Clone, Copy)]
struct Cores {
    home: usize,
    other: Option<usize>,
}

impl Cores {
    /// Pins the calling thread, before it starts anything, so every thread it creates inherits
    /// the pin (Linux threads start with their creator's affinity).
    fn pin_this_process() -> Self {
        let ids: Vec<usize> = core_affinity::get_core_ids().unwrap_or_default().into_iter().map(|c| c.id).collect();
        let home = ids.last().copied().unwrap_or(0);
        let other = ids.first().copied().filter(|first| *first != home);
        pin_current_thread(Some(home));
        Cores { home, other }
    }
}

fn pin_current_thread(core: Option<usize>) {
    if let Some(id) = core {
        core_affinity::set_for_current(core_affinity::CoreId { id });
    }
}

/// CPU time (user + system) this process has used so far: with the servers in-process, it
/// covers both ends of a call.
fn cpu_time() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage works on Linux");
    let micros =
        |t: nix::sys::time::TimeVal| Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64);
    micros(usage.user_time()) + micros(usage.system_time())
}

/// Like `boundary`, but reports CPU time per call instead of wall time.
fn cpu(c: &mut Criterion, rt: &Runtime, shops: &Shops) {
    let local_inventory = LocalInventory(shops.monolith_db.clone());
    let http_inventory = InventoryClient(shops.client("inventory"));
    let (local_pages, http_pages) = (shops.local_pages(), shops.http_pages());
    let mut group = c.benchmark_group("cpu_stock_lookup");
    group.bench_function("in_process", |b| {
        cpu_per_call(b, rt, async || {
            local_inventory.available(7).await.expect("stock");
        })
    });
    group.bench_function("http", |b| {
        cpu_per_call(b, rt, async || {
            http_inventory.available(7).await.expect("stock");
        })
    });
    group.finish();
    let mut group = c.benchmark_group("cpu_product_page");
    group.bench_function("in_process", |b| {
        cpu_per_call(b, rt, async || {
            local_pages.compose(7).await.expect("a page");
        })
    });
    group.bench_function("http", |b| {
        cpu_per_call(b, rt, async || {
            http_pages.compose(7).await.expect("a page");
        })
    });
    group.finish();
}

/// Runs `call` the number of times criterion asks for and reports the CPU time they took.
fn cpu_per_call(b: &mut criterion::Bencher<'_>, rt: &Runtime, call: impl AsyncFn()) {
    b.iter_custom(|iterations| {
        rt.block_on(async {
            let start = cpu_time();
            for _ in 0..iterations {
                call().await;
            }
            cpu_time() - start
        })
    })
}

fn json(c: &mut Criterion, rt: &Runtime, shops: &Shops) {
    let page: ProductPage = rt.block_on(shops.local_pages().compose(1)).expect("a product page");
    let search = rt.block_on(shop::catalog::repo::search(
        &shops.monolith_db,
        &shop::catalog::Search { text: None, category: None, page: PageRequest { page: 1, per_page: 20 } },
    ));
    let search: Page<ProductSummary> = search.expect("a search page");
    let order: Order = rt
        .block_on(shops.local_checkout().checkout(2, &IdempotencyKey("json-sample".into()), checkout_request(3)))
        .expect("an order")
        .order;

    let mut group = c.benchmark_group("json_encode");
    group.bench_function("product_page", |b| b.iter(|| serde_json::to_vec(&page).expect("encodes")));
    group.bench_function("search_page", |b| b.iter(|| serde_json::to_vec(&search).expect("encodes")));
    group.bench_function("order", |b| b.iter(|| serde_json::to_vec(&order).expect("encodes")));
    group.finish();

    let (page, search, order) = (
        serde_json::to_vec(&page).expect("encodes"),
        serde_json::to_vec(&search).expect("encodes"),
        serde_json::to_vec(&order).expect("encodes"),
    );
    let mut group = c.benchmark_group("json_decode");
    group.bench_function("product_page", |b| b.iter(|| serde_json::from_slice::<ProductPage>(&page).expect("decodes")));
    group.bench_function("search_page", |b| {
        b.iter(|| serde_json::from_slice::<Page<ProductSummary>>(&search).expect("decodes"))
    });
    group.bench_function("order", |b| b.iter(|| serde_json::from_slice::<Order>(&order).expect("decodes")));
    group.finish();
}

fn endpoints(c: &mut Criterion, rt: &Runtime, shops: &Shops) {
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_idle_timeout(shop::app::CLIENT_IDLE_TIMEOUT)
        .build()
        .expect("a client");
    let token_of = |base: &str, user: u32| -> String {
        rt.block_on(async {
            let email = format!("user{user}@example.com");
            let body = serde_json::json!({"email": email, "password": shop::seed::SEED_PASSWORD});
            let session: serde_json::Value = client
                .post(format!("{base}/api/sessions"))
                .json(&body)
                .send()
                .await
                .expect("log-in")
                .json()
                .await
                .expect("json");
            format!("Bearer {}", session["token"].as_str().expect("a token"))
        })
    };
    let targets: Vec<(&str, String, String)> = [("monolith", &shops.monolith), ("microservices", &shops.microservices)]
        .into_iter()
        .map(|(name, shop)| (name, shop.base_url.clone(), token_of(&shop.base_url, 5)))
        .collect();
    let get = |url: String, auth: Option<String>| {
        let client = client.clone();
        async move {
            let mut request = client.get(url);
            if let Some(auth) = auth {
                request = request.header("authorization", auth);
            }
            let response = request.send().await.expect("answers");
            assert!(response.status().is_success());
            response.bytes().await.expect("a body")
        }
    };
    for (endpoint, path, authorised) in [
        ("product_page", "/api/products/7", false),
        ("search", "/api/products?q=lamp", false),
        ("category_listing", "/api/products?category=3", false),
        ("reviews_read", "/api/products/7/reviews", false),
        ("categories", "/api/categories", false),
        ("order_history", "/api/orders", true),
    ] {
        let mut group = c.benchmark_group(format!("endpoint_{endpoint}"));
        for (name, base, auth) in &targets {
            let url = format!("{base}{path}");
            let auth = authorised.then(|| auth.clone());
            group.bench_function(*name, |b| b.to_async(rt).iter(|| get(url.clone(), auth.clone())));
        }
        group.finish();
    }
    let next = AtomicU64::new(500);
    let keys = AtomicU64::new(0);
    let mut group = c.benchmark_group("endpoint_checkout");
    for (name, base, auth) in &targets {
        group.bench_function(*name, |b| {
            b.to_async(rt).iter(|| async {
                let body = serde_json::json!({"items": [{"product_id": next_product(&next), "quantity": 1}], "card_number": "4242424242424242"});
                let response = client
                    .post(format!("{base}/api/orders"))
                    .header("authorization", auth)
                    .header("idempotency-key", format!("endpoint-{}", keys.fetch_add(1, Ordering::Relaxed)))
                    .json(&body)
                    .send()
                    .await
                    .expect("answers");
                assert_eq!(response.status(), 201);
                response.bytes().await.expect("a body")
            })
        });
    }
    group.finish();
    // One order of user 5 per architecture, read back by id.
    let mut group = c.benchmark_group("endpoint_order_by_id");
    for (name, base, auth) in &targets {
        let order_id = rt.block_on(async {
            let body =
                serde_json::json!({"items": [{"product_id": 2, "quantity": 1}], "card_number": "4242424242424242"});
            let order: serde_json::Value = client
                .post(format!("{base}/api/orders"))
                .header("authorization", auth)
                .header("idempotency-key", "endpoint-order-by-id")
                .json(&body)
                .send()
                .await
                .expect("answers")
                .json()
                .await
                .expect("an order");
            order["id"].as_i64().expect("an order id")
        });
        let url = format!("{base}/api/orders/{order_id}");
        group.bench_function(*name, |b| b.to_async(rt).iter(|| get(url.clone(), Some(auth.clone()))));
    }
    group.finish();

    // Each write is a review nobody has written yet: (user, product) pairs without a seeded
    // review, the same pairs on both architectures (same seed).
    let unreviewed = rt.block_on(unreviewed_pairs(&shops.monolith_db, REVIEW_WRITERS));
    let mut group = c.benchmark_group("endpoint_review_write");
    for (name, base, _) in &targets {
        let tokens: Vec<String> = (1..=REVIEW_WRITERS).map(|user| token_of(base, user)).collect();
        let next = AtomicU64::new(0);
        group.bench_function(*name, |b| {
            b.to_async(rt).iter(|| async {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let (user, product) = unreviewed[i % unreviewed.len()];
                let body = serde_json::json!({"rating": 4, "body": "Written by the benchmark."});
                let response = client
                    .post(format!("{base}/api/products/{product}/reviews"))
                    .header("authorization", &tokens[user as usize - 1])
                    .json(&body)
                    .send()
                    .await
                    .expect("answers");
                assert_eq!(response.status(), 201, "user {user} reviews product {product} once");
                response.bytes().await.expect("a body")
            })
        });
    }
    group.finish();

    let registrations = AtomicU64::new(0);
    let mut group = c.benchmark_group("endpoint_register");
    group.sample_size(10);
    for (name, base, _) in &targets {
        group.bench_function(*name, |b| {
            b.to_async(rt).iter(|| async {
                let n = registrations.fetch_add(1, Ordering::Relaxed);
                let body = serde_json::json!({"email": format!("bench{n}@example.com"), "password": "benchmark-password", "name": "Bench"});
                let response = client.post(format!("{base}/api/accounts")).json(&body).send().await.expect("answers");
                assert_eq!(response.status(), 201);
                response.bytes().await.expect("a body")
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("endpoint_login");
    group.sample_size(10);
    for (name, base, _) in &targets {
        group.bench_function(*name, |b| {
            b.to_async(rt).iter(|| async {
                let body = serde_json::json!({"email": "user9@example.com", "password": shop::seed::SEED_PASSWORD});
                let response = client.post(format!("{base}/api/sessions")).json(&body).send().await.expect("answers");
                assert_eq!(response.status(), 200);
                response.bytes().await.expect("a body")
            })
        });
    }
    group.finish();
}

/// Seeded users whose reviews `endpoint_review_write` writes.
const REVIEW_WRITERS: u32 = 20;

/// (user, product) pairs of users `1..=users` with no review yet, user by user.
async fn unreviewed_pairs(db: &Database, users: u32) -> Vec<(u32, i64)> {
    use sqlx::Row;
    let rows = sqlx::query("SELECT user_id, product_id FROM reviews WHERE user_id <= $1")
        .bind(i64::from(users))
        .fetch_all(&db.pool)
        .await
        .expect("the seeded reviews");
    let reviewed: std::collections::HashSet<(i64, i64)> =
        rows.iter().map(|row| (row.get::<i64, _>("user_id"), row.get::<i64, _>("product_id"))).collect();
    (1..=users)
        .flat_map(|user| (1..=i64::from(PRODUCTS)).map(move |product| (user, product)))
        .filter(|(user, product)| !reviewed.contains(&(i64::from(*user), *product)))
        .collect()
}

/// The main queries, one group per query, one function per backend (`db_search_text/sqlite`
/// vs `db_search_text/postgres`).
fn database(c: &mut Criterion, rt: &Runtime, backends: &[(&str, &Database)]) {
    let search = shop::catalog::Search {
        text: Some("lamp".into()),
        category: None,
        page: PageRequest { page: 1, per_page: 20 },
    };
    let mut group = c.benchmark_group("db_product_by_id");
    for (name, db) in backends {
        group.bench_function(*name, |b| b.to_async(rt).iter(|| shop::catalog::repo::product(&db.pool, 7)));
    }
    group.finish();
    let mut group = c.benchmark_group("db_stock_by_product");
    for (name, db) in backends {
        group.bench_function(*name, |b| b.to_async(rt).iter(|| shop::inventory::repo::available(&db.pool, 7)));
    }
    group.finish();
    let mut group = c.benchmark_group("db_reviews_digest");
    for (name, db) in backends {
        group.bench_function(*name, |b| b.to_async(rt).iter(|| shop::reviews::repo::digest(db, 7, 5)));
    }
    group.finish();
    let mut group = c.benchmark_group("db_search_text");
    for (name, db) in backends {
        group.bench_function(*name, |b| b.to_async(rt).iter(|| shop::catalog::repo::search(db, &search)));
    }
    group.finish();
}

fn all(c: &mut Criterion) {
    let cores = Cores::pin_this_process();
    let rt = runtime();
    let shops = rt.block_on(Shops::start(cores));
    boundary(c, &rt, &shops);
    cpu(c, &rt, &shops);
    json(c, &rt, &shops);
    endpoints(c, &rt, &shops);
    // PostgreSQL too when SPLITBENCH_TEST_POSTGRES names a server: a seeded monolith database.
    let postgres = Backend::for_tests().into_iter().find(|b| b.name() == "postgres").map(|backend| {
        let shop = rt
            .block_on(RunningShop::start(Architecture::Monolith, &backend, &settings()))
            .expect("monolith on PostgreSQL");
        let db = rt.block_on(open(shop.database_of(Schema::Orders).expect("a database")));
        (shop, db)
    });
    let mut backends = vec![("sqlite", &shops.monolith_db)];
    if let Some((_, db)) = &postgres {
        backends.push(("postgres", db));
    }
    database(c, &rt, &backends);
    if let Some((shop, db)) = postgres {
        rt.block_on(async {
            db.pool.close().await;
            shop.stop().await;
        });
    }
    rt.block_on(async {
        shops.monolith.stop().await;
        shops.microservices.stop().await;
    });
}

criterion_group! {
    name = benches;
    // Short windows keep a default `cargo bench` within minutes; criterion still reports the
    // spread, and `--measurement-time` overrides them.
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(30);
    targets = all
}
criterion_main!(benches);
