//! Logs, metrics and the operations endpoints (`/health`, `/ready`, `/metrics`) of every process.
//!
//! Logs are structured (`tracing`) and quiet by default (`warn`). Metrics are Prometheus text:
//! a request counter and a latency histogram per route pattern, method and status.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};

use crate::db::Database;
use crate::http_client::ServiceClient;

/// Installs the global tracing subscriber once; later calls (tests) are no-ops.
pub fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).try_init();
}

/// The per-process Prometheus registry and its request metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
}

impl Metrics {
    pub fn new(process: &str) -> Self {
        let registry = Registry::new_custom(Some("splitbench".into()), None).expect("static registry prefix is valid");
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests answered").const_label("process", process),
            &["route", "method", "status"],
        )
        .expect("static metric definition is valid");
        let latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "Time to answer an HTTP request")
                .const_label("process", process)
                // 50 µs .. ~1.6 s in powers of two: loopback calls are sub-millisecond.
                .buckets(prometheus::exponential_buckets(0.000_05, 2.0, 16).expect("valid buckets")),
            &["route", "method"],
        )
        .expect("static metric definition is valid");
        registry.register(Box::new(requests.clone())).expect("registered once");
        registry.register(Box::new(CHECKOUT_RECOVERIES.clone())).expect("registered once per registry");
        registry.register(Box::new(UPSTREAM_CALLS.clone())).expect("registered once per registry");
        registry.register(Box::new(SHED_REQUESTS.clone())).expect("registered once per registry");
        registry.register(Box::new(latency.clone())).expect("registered once");
        Self { registry, requests, latency }
    }

    fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// Checkouts the recovery loop settled, by the status they settled to (`failed`: an interrupted
/// checkout compensated; `confirmed`/`declined`/`rejected`: a decided one finished). Process-wide:
/// recovery runs outside any request.
static CHECKOUT_RECOVERIES: std::sync::LazyLock<IntCounterVec> = std::sync::LazyLock::new(|| {
    IntCounterVec::new(
        Opts::new("checkout_recoveries_total", "Checkouts finished or compensated by the recovery loop"),
        &["settled_as"],
    )
    .expect("static metric definition is valid")
});

/// Calls this process made to other processes of the shop, by upstream and outcome
/// (`answered`: an HTTP answer came back, whatever its status; `failed`: none did). Only calls
/// that were sent: one given up before (no slot, no time left, the breaker open) is not a
/// call. Counted by the caller, so a call to a dead or frozen upstream counts too: the load a
/// process puts on the others, retries included.
static UPSTREAM_CALLS: std::sync::LazyLock<IntCounterVec> = std::sync::LazyLock::new(|| {
    IntCounterVec::new(Opts::new("upstream_calls_total", "Calls made to other processes"), &["upstream", "outcome"])
        .expect("static metric definition is valid")
});

/// Public requests the gateway's admission control answered `503 overloaded` without handling
/// them ([`crate::admission`]).
static SHED_REQUESTS: std::sync::LazyLock<prometheus::IntCounter> = std::sync::LazyLock::new(|| {
    prometheus::IntCounter::new("shed_requests_total", "Requests shed by admission control")
        .expect("static metric definition is valid")
});

/// Counts one request shed by admission control.
pub fn count_shed() {
    SHED_REQUESTS.inc();
}

/// The counters of calls to `upstream` that were answered and that failed, looked up once (a
/// client keeps them, so counting a call costs an atomic add, not a label lookup).
pub fn upstream_call_counters(upstream: &str) -> UpstreamCallCounters {
    UpstreamCallCounters {
        answered: UPSTREAM_CALLS.with_label_values(&[upstream, "answered"]),
        failed: UPSTREAM_CALLS.with_label_values(&[upstream, "failed"]),
    }
}

/// One upstream's call counters ([`upstream_call_counters`]).
#[derive(Clone, Debug)]
pub struct UpstreamCallCounters {
    answered: prometheus::IntCounter,
    failed: prometheus::IntCounter,
}

impl UpstreamCallCounters {
    /// Counts one call that ended.
    pub fn count(&self, answered: bool) {
        if answered { &self.answered } else { &self.failed }.inc();
    }
}

/// Calls made to `upstream` so far by this process (every outcome).
pub fn upstream_calls(upstream: &str) -> u64 {
    let counters = upstream_call_counters(upstream);
    counters.answered.get() + counters.failed.get()
}

/// Counts one checkout settled by recovery.
pub fn count_recovery(settled_as: crate::orders::OrderStatus) {
    CHECKOUT_RECOVERIES.with_label_values(&[settled_as.as_str()]).inc();
}

/// Middleware recording every request's route, status and latency.
pub async fn record_metrics(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let method = req.method().clone();
    let result = next.call(req).await;
    if let Some(metrics) = metrics {
        let (route, status) = match &result {
            Ok(res) => (res.request().match_pattern(), res.status()),
            Err(err) => (None, err.as_response_error().status_code()),
        };
        let route = route.unwrap_or_else(|| "unmatched".to_string());
        metrics.requests.with_label_values(&[route.as_str(), method.as_str(), status.as_str()]).inc();
        metrics.latency.with_label_values(&[route.as_str(), method.as_str()]).observe(started.elapsed().as_secs_f64());
    }
    result
}

/// What `/ready` checks: the process's database, or (the gateway) its upstream services.
#[derive(Clone, Debug)]
pub enum Readiness {
    Database(Database),
    Upstreams(Vec<ServiceClient>),
}

impl Readiness {
    async fn check(&self) -> Result<(), String> {
        match self {
            Readiness::Database(db) => db.ping().await.map_err(|e| format!("database: {e}")),
            Readiness::Upstreams(clients) => {
                for client in clients {
                    client.health().await.map_err(|e| e.to_string())?;
                }
                Ok(())
            }
        }
    }
}

/// Mounts `/health`, `/ready` and `/metrics`.
pub fn configure_ops(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health))
        .route("/ready", web::get().to(ready))
        .route("/metrics", web::get().to(metrics));
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

async fn ready(readiness: web::Data<Readiness>) -> HttpResponse {
    match readiness.check().await {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })),
        Err(reason) => HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({ "error": { "code": "not_ready", "message": reason } })),
    }
}

async fn metrics(metrics: web::Data<Metrics>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(metrics.render())
}
