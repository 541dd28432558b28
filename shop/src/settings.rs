//! Settings of every process, as clap flags with environment fallbacks.
//!
//! Every binary (monolith, gateway, the six services) parses the same [`Settings`], so both
//! architectures are configured by the same flags with the same defaults; each process prints the
//! values it runs with at start-up ([`Settings::summary`]), and the harness records them.

use std::time::Duration;

use clap::{Args, Parser};

/// Default ports when started by hand; the harness and the tests always pick free ports.
pub mod default_port {
    pub const PUBLIC: u16 = 8080;
    pub const ACCOUNTS: u16 = 8081;
    pub const CATALOG: u16 = 8082;
    pub const INVENTORY: u16 = 8083;
    pub const REVIEWS: u16 = 8084;
    pub const PAYMENTS: u16 = 8085;
    pub const ORDERS: u16 = 8086;
}

#[derive(Debug, Clone, Parser)]
#[command(version, about = "A splitbench shop process")]
pub struct Settings {
    #[command(flatten)]
    pub server: ServerSettings,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub security: SecuritySettings,
    #[command(flatten)]
    pub payments: PaymentSettings,
    #[command(flatten)]
    pub upstreams: UpstreamSettings,
    #[command(flatten)]
    pub checkout: CheckoutSettings,
    #[command(flatten)]
    pub seed: SeedSettings,
}

#[derive(Debug, Clone, Args)]
pub struct ServerSettings {
    /// Address to listen on.
    #[arg(long, env = "SPLITBENCH_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 picks a free one); each binary has its own default.
    #[arg(long, env = "SPLITBENCH_PORT")]
    pub port: Option<u16>,
    /// actix worker threads of this process. Set explicitly: actix's default (one per core per
    /// process) would give seven microservices seven times the monolith's threads.
    #[arg(long, env = "SPLITBENCH_WORKERS", default_value_t = 1)]
    pub workers: usize,
    /// tracing filter (e.g. warn, info, shop=debug); quiet by default.
    #[arg(long, env = "SPLITBENCH_LOG", default_value = "warn")]
    pub log_level: String,
    /// Wrap the product page's module seams in the fault layer and serve its admin routes
    /// (`/admin/faults`, behind the service credential): for fault runs only.
    #[arg(long, env = "SPLITBENCH_FAULTS_ENABLED")]
    pub faults_enabled: bool,
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// sqlite:<file> (default: a file per process in the working directory) or postgres://...
    #[arg(long, env = "SPLITBENCH_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Connections in this process's database pool. Small by default: each SQLite connection
    /// is a thread in sqlx, and on a small machine more threads mean more switching between
    /// them (`splitbench run --db-pool-size N` measures the effect).
    #[arg(long, env = "SPLITBENCH_DB_POOL_SIZE", default_value_t = 2)]
    pub db_pool_size: u32,
}

#[derive(Debug, Clone, Args)]
pub struct SecuritySettings {
    /// HMAC key that signs user tokens. The default is for local benchmarking only.
    #[arg(long, env = "SPLITBENCH_TOKEN_SECRET", default_value = "splitbench-dev-token-secret")]
    pub token_secret: String,
    /// Lifetime of a user token.
    #[arg(long, env = "SPLITBENCH_TOKEN_TTL_SECS", default_value_t = 3600)]
    pub token_ttl_secs: u64,
    /// Credential that services require on internal routes (microservices only).
    #[arg(long, env = "SPLITBENCH_SERVICE_TOKEN", default_value = "splitbench-dev-service-token")]
    pub service_token: String,
}

#[derive(Debug, Clone, Args)]
pub struct PaymentSettings {
    /// Simulated card processor latency per charge, in milliseconds. 10 ms by default: a fast
    /// processor on a nearby network. It is spent outside any database transaction.
    #[arg(long, env = "SPLITBENCH_PAYMENT_LATENCY_MS", default_value_t = 10)]
    pub payment_latency_ms: u64,
}

#[derive(Debug, Clone, Args)]
pub struct UpstreamSettings {
    #[arg(long, env = "SPLITBENCH_ACCOUNTS_URL", default_value = "http://127.0.0.1:8081")]
    pub accounts_url: String,
    #[arg(long, env = "SPLITBENCH_CATALOG_URL", default_value = "http://127.0.0.1:8082")]
    pub catalog_url: String,
    #[arg(long, env = "SPLITBENCH_INVENTORY_URL", default_value = "http://127.0.0.1:8083")]
    pub inventory_url: String,
    #[arg(long, env = "SPLITBENCH_REVIEWS_URL", default_value = "http://127.0.0.1:8084")]
    pub reviews_url: String,
    #[arg(long, env = "SPLITBENCH_PAYMENTS_URL", default_value = "http://127.0.0.1:8085")]
    pub payments_url: String,
    #[arg(long, env = "SPLITBENCH_ORDERS_URL", default_value = "http://127.0.0.1:8086")]
    pub orders_url: String,
    /// Timeout of every call between services (covers connect, send and the whole answer).
    /// Must exceed the payment latency.
    #[arg(long, env = "SPLITBENCH_UPSTREAM_TIMEOUT_MS", default_value_t = 2000)]
    pub upstream_timeout_ms: u64,
    /// What a process does about failing calls to another: none (one attempt), naive-retries
    /// (GETs retried at once, up to 3 times, no limit), full (a circuit breaker per upstream,
    /// GETs retried with jittered backoff under a retry budget).
    #[arg(long, env = "SPLITBENCH_RESILIENCE", value_enum, default_value = "none")]
    pub resilience: crate::resilience::Resilience,
    /// `full` only: public requests the gateway handles at once before it queues and sheds
    /// (`shop::admission`). Keep it above the 64 calls one process may have in flight to one
    /// upstream, so the requests stuck on one upstream cannot take every slot.
    #[arg(long, env = "SPLITBENCH_GATEWAY_MAX_IN_FLIGHT", default_value_t = crate::admission::DEFAULT_MAX_IN_FLIGHT)]
    pub gateway_max_in_flight: usize,
}

impl UpstreamSettings {
    /// Where the process hosting `module` listens.
    pub fn url_of(&self, module: crate::topology::Module) -> &str {
        use crate::topology::Module;
        match module {
            Module::Accounts => &self.accounts_url,
            Module::Catalog => &self.catalog_url,
            Module::Inventory => &self.inventory_url,
            Module::Reviews => &self.reviews_url,
            Module::Payments => &self.payments_url,
            Module::Orders => &self.orders_url,
        }
    }

    /// Points calls to `module` at `url` (a runner, once it knows the host's port).
    pub fn set_url_of(&mut self, module: crate::topology::Module, url: String) {
        use crate::topology::Module;
        let field = match module {
            Module::Accounts => &mut self.accounts_url,
            Module::Catalog => &mut self.catalog_url,
            Module::Inventory => &mut self.inventory_url,
            Module::Reviews => &mut self.reviews_url,
            Module::Payments => &mut self.payments_url,
            Module::Orders => &mut self.orders_url,
        };
        *field = url;
    }
}

/// Deadlines of a request and of the checkouts it starts; they nest (validated at start-up):
/// upstream call timeout <= request deadline < recovery deadline.
#[derive(Debug, Clone, Args)]
pub struct CheckoutSettings {
    /// Time a public request may take in all, from its arrival at the entry point (monolith or
    /// gateway). The gateway passes what is left to the services (header `splitbench-deadline-ms`);
    /// every call between services uses at most the time left, and a checkout past its deadline
    /// starts no new step and compensates.
    #[arg(long, env = "SPLITBENCH_REQUEST_DEADLINE_MS", default_value_t = 3000)]
    pub request_deadline_ms: u64,
    /// A checkout not finished this long after it was claimed is finished or compensated by the
    /// orders module's recovery (at start-up, then every fifth of this period). Longer than the
    /// request deadline, so recovery never races a checkout that may still act.
    #[arg(long, env = "SPLITBENCH_RECOVERY_DEADLINE_MS", default_value_t = 5000)]
    pub recovery_deadline_ms: u64,
    /// Test hook: abandon every checkout at this step without compensating, as a process that
    /// died there would (the crash tests and fault runs use it; never set it otherwise).
    #[arg(long, env = "SPLITBENCH_CRASH_AT", value_enum, hide = true)]
    pub crash_at: Option<CrashPoint>,
}

/// Where a checkout can be abandoned by the `--crash-at` test hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CrashPoint {
    /// The order is claimed (pending); nothing reserved yet (the monolith claims and reserves in
    /// one transaction, so for it this is the same as `after-reserve`).
    AfterClaim,
    /// Stock is reserved; nothing charged.
    AfterReserve,
    /// The charge is decided; the order is still pending.
    AfterCharge,
    /// The order is confirmed; the reservation may not be committed yet.
    AfterConfirm,
}

impl CrashPoint {
    pub fn name(self) -> &'static str {
        match self {
            Self::AfterClaim => "after-claim",
            Self::AfterReserve => "after-reserve",
            Self::AfterCharge => "after-charge",
            Self::AfterConfirm => "after-confirm",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct SeedSettings {
    /// Seed of the deterministic data generator.
    #[arg(long, env = "SPLITBENCH_SEED", default_value_t = 42)]
    pub seed: u64,
    #[arg(long, env = "SPLITBENCH_PRODUCTS", default_value_t = 10_000)]
    pub products: u32,
    #[arg(long, env = "SPLITBENCH_CATEGORIES", default_value_t = 20)]
    pub categories: u32,
    #[arg(long, env = "SPLITBENCH_USERS", default_value_t = 1_000)]
    pub users: u32,
    /// Start with empty tables (no seed data).
    #[arg(long, env = "SPLITBENCH_NO_SEED")]
    pub no_seed: bool,
}

impl Settings {
    /// The defaults, as a process started without flags or environment would get them.
    pub fn defaults() -> Self {
        Self::parse_from(["splitbench"])
    }

    pub fn upstream_timeout(&self) -> Duration {
        Duration::from_millis(self.upstreams.upstream_timeout_ms)
    }

    pub fn payment_latency(&self) -> Duration {
        Duration::from_millis(self.payments.payment_latency_ms)
    }

    pub fn request_deadline(&self) -> Duration {
        Duration::from_millis(self.checkout.request_deadline_ms)
    }

    pub fn recovery_deadline(&self) -> Duration {
        Duration::from_millis(self.checkout.recovery_deadline_ms)
    }

    /// Checks that the timeouts nest: a payment fits in one call, one call fits in a request,
    /// and a request ends before recovery may take its checkout over.
    pub fn validate(&self) -> Result<(), String> {
        let (payment, call) = (self.payments.payment_latency_ms, self.upstreams.upstream_timeout_ms);
        let (request, recovery) = (self.checkout.request_deadline_ms, self.checkout.recovery_deadline_ms);
        if payment >= call {
            return Err(format!("--payment-latency-ms ({payment}) must be below --upstream-timeout-ms ({call})"));
        }
        if call > request {
            return Err(format!("--upstream-timeout-ms ({call}) must not exceed --request-deadline-ms ({request})"));
        }
        if request < 200 {
            return Err(format!("--request-deadline-ms ({request}) must be at least 200: hops keep margins of 50 ms"));
        }
        if request >= recovery {
            return Err(format!(
                "--request-deadline-ms ({request}) must be below --recovery-deadline-ms ({recovery}): recovery \
                 would take over checkouts that may still be running"
            ));
        }
        if self.upstreams.gateway_max_in_flight == 0 {
            return Err("--gateway-max-in-flight must be at least 1".into());
        }
        if self.server.workers == 0 {
            return Err("--workers must be at least 1".into());
        }
        Ok(())
    }

    /// One line with every setting that can change a measurement, printed at start-up.
    pub fn summary(&self, process: &str, port: u16) -> String {
        let db =
            self.database.database_url.as_deref().map_or_else(|| "(default sqlite file)".to_string(), redact_password);
        format!(
            "{process}: listening on {}:{port}; workers={} db_pool_size={} database={db} log_level={} \
             tcp_nodelay=true payment_latency_ms={} upstream_timeout_ms={} resilience={} request_deadline_ms={} \
             recovery_deadline_ms={} seed={} products={} categories={} users={}",
            self.server.host,
            self.server.workers,
            self.database.db_pool_size,
            self.server.log_level,
            self.payments.payment_latency_ms,
            self.upstreams.upstream_timeout_ms,
            self.upstreams.resilience.name(),
            self.checkout.request_deadline_ms,
            self.checkout.recovery_deadline_ms,
            self.seed.seed,
            self.seed.products,
            self.seed.categories,
            self.seed.users,
        )
    }
}

impl Settings {
    /// These settings as command-line flags, so a launcher can start a process with exactly
    /// them (every field is rendered; none is left to the child's environment or defaults).
    pub fn to_args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "--host".into(),
            self.server.host.clone(),
            "--workers".into(),
            self.server.workers.to_string(),
            "--log-level".into(),
            self.server.log_level.clone(),
            "--db-pool-size".into(),
            self.database.db_pool_size.to_string(),
            "--token-secret".into(),
            self.security.token_secret.clone(),
            "--token-ttl-secs".into(),
            self.security.token_ttl_secs.to_string(),
            "--service-token".into(),
            self.security.service_token.clone(),
            "--payment-latency-ms".into(),
            self.payments.payment_latency_ms.to_string(),
            "--accounts-url".into(),
            self.upstreams.accounts_url.clone(),
            "--catalog-url".into(),
            self.upstreams.catalog_url.clone(),
            "--inventory-url".into(),
            self.upstreams.inventory_url.clone(),
            "--reviews-url".into(),
            self.upstreams.reviews_url.clone(),
            "--payments-url".into(),
            self.upstreams.payments_url.clone(),
            "--orders-url".into(),
            self.upstreams.orders_url.clone(),
            "--upstream-timeout-ms".into(),
            self.upstreams.upstream_timeout_ms.to_string(),
            "--resilience".into(),
            self.upstreams.resilience.name().into(),
            "--gateway-max-in-flight".into(),
            self.upstreams.gateway_max_in_flight.to_string(),
            "--request-deadline-ms".into(),
            self.checkout.request_deadline_ms.to_string(),
            "--recovery-deadline-ms".into(),
            self.checkout.recovery_deadline_ms.to_string(),
            "--seed".into(),
            self.seed.seed.to_string(),
            "--products".into(),
            self.seed.products.to_string(),
            "--categories".into(),
            self.seed.categories.to_string(),
            "--users".into(),
            self.seed.users.to_string(),
        ];
        if let Some(port) = self.server.port {
            args.extend(["--port".into(), port.to_string()]);
        }
        if let Some(url) = &self.database.database_url {
            args.extend(["--database-url".into(), url.clone()]);
        }
        if self.seed.no_seed {
            args.push("--no-seed".into());
        }
        if self.server.faults_enabled {
            args.push("--faults-enabled".into());
        }
        if let Some(point) = self.checkout.crash_at {
            args.extend(["--crash-at".into(), point.name().into()]);
        }
        args
    }
}

/// Hides the password of a database URL before it is printed.
pub fn redact_password(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.find(':') {
                Some(colon) => format!("{}{}:***{}", &url[..scheme_end + 3], &credentials[..colon], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_database_urls() {
        assert_eq!(redact_password("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact_password("sqlite:shop.db"), "sqlite:shop.db");
    }

    #[test]
    fn settings_survive_a_round_trip_through_flags() {
        let mut settings = Settings::defaults();
        settings.server.port = Some(1234);
        settings.server.workers = 3;
        settings.database.database_url = Some("sqlite:x.db".into());
        settings.payments.payment_latency_ms = 77;
        settings.upstreams.orders_url = "http://127.0.0.1:9".into();
        settings.seed.no_seed = true;
        let args = std::iter::once("p".to_string()).chain(settings.to_args());
        let parsed = Settings::parse_from(args);
        assert_eq!(format!("{parsed:?}"), format!("{settings:?}"));
    }

    #[test]
    fn deadlines_must_nest() {
        assert_eq!(Settings::defaults().validate(), Ok(()));
        let mut settings = Settings::defaults();
        settings.upstreams.upstream_timeout_ms = settings.checkout.request_deadline_ms + 1;
        assert!(settings.validate().expect_err("call longer than request").contains("--upstream-timeout-ms"));
        let mut settings = Settings::defaults();
        settings.checkout.recovery_deadline_ms = settings.checkout.request_deadline_ms;
        assert!(settings.validate().expect_err("recovery within request").contains("--recovery-deadline-ms"));
        let mut settings = Settings::defaults();
        settings.payments.payment_latency_ms = settings.upstreams.upstream_timeout_ms;
        assert!(settings.validate().expect_err("payment longer than call").contains("--payment-latency-ms"));
    }

    #[test]
    fn defaults_parse_without_flags() {
        let settings = Settings::defaults();
        assert_eq!(settings.server.workers, 1);
        assert_eq!(settings.seed.products, 10_000);
    }
}
