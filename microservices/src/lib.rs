//! # microservices: the same shop as a gateway plus one process per module
//!
//! Wiring only. Each service opens its own database with only its module's tables, plugs HTTP
//! clients in for the modules it depends on, and serves its routes behind the service
//! credential. The gateway is the only public entry point: it checks tokens, forwards requests
//! to the owning service and composes the product page.
//!
//! | process   | owns (tables)          | calls                         |
//! |-----------|------------------------|-------------------------------|
//! | gateway   | nothing                | all six, product page fan-out |
//! | accounts  | users                  | -                             |
//! | catalog   | categories, products   | -                             |
//! | inventory | stock, reservations    | -                             |
//! | reviews   | reviews, summaries     | catalog                       |
//! | payments  | charges                | -                             |
//! | orders    | orders, lines          | catalog, inventory, payments  |
//!
//! Run one: `cargo run --release -p microservices --bin catalog -- --port 8082`.

use std::sync::Arc;
use std::time::Duration;

use actix_web::middleware::from_fn;
use actix_web::web;
use shop::accounts::AccountsState;
use shop::auth::{ServiceCredential, TokenKeys, require_service_credential};
use shop::catalog::{CatalogClient, CatalogState, SharedCatalog};
use shop::gateway::Upstreams;
use shop::http_client::ServiceClient;
use shop::inventory::{InventoryClient, LocalInventory, SharedInventory};
use shop::orders::{CheckoutPolicy, OrdersState, SagaCheckout, SharedCheckout};
use shop::payments::{LocalPayments, PaymentsClient};
use shop::product_page::ProductPages;
use shop::resilience::Resilience;
use shop::reviews::{ReviewsClient, ReviewsState, SharedReviews};
use shop::seam_faults::SeamFaults;
use shop::settings::default_port;
use shop::telemetry::Readiness;
use shop::topology::Module;
use shop::{Application, Schema, Settings};

/// The seven processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Gateway,
    Accounts,
    Catalog,
    Inventory,
    Reviews,
    Payments,
    Orders,
}

impl Service {
    pub const ALL: [Service; 7] =
        [Self::Gateway, Self::Accounts, Self::Catalog, Self::Inventory, Self::Reviews, Self::Payments, Self::Orders];
    /// The six module services, in an order where each one's upstreams come before it.
    pub const MODULES: [Service; 6] =
        [Self::Accounts, Self::Catalog, Self::Inventory, Self::Payments, Self::Reviews, Self::Orders];

    /// The module the service hosts (the gateway hosts none).
    pub fn module(self) -> Option<Module> {
        match self {
            Self::Gateway => None,
            Self::Accounts => Some(Module::Accounts),
            Self::Catalog => Some(Module::Catalog),
            Self::Inventory => Some(Module::Inventory),
            Self::Reviews => Some(Module::Reviews),
            Self::Payments => Some(Module::Payments),
            Self::Orders => Some(Module::Orders),
        }
    }

    pub fn name(self) -> &'static str {
        self.module().map_or("gateway", Module::name)
    }

    pub fn default_port(self) -> u16 {
        match self {
            Self::Gateway => default_port::PUBLIC,
            Self::Accounts => default_port::ACCOUNTS,
            Self::Catalog => default_port::CATALOG,
            Self::Inventory => default_port::INVENTORY,
            Self::Reviews => default_port::REVIEWS,
            Self::Payments => default_port::PAYMENTS,
            Self::Orders => default_port::ORDERS,
        }
    }

    /// Tells the processes started later where this service listens: the launcher starts
    /// services in dependency order, each on a free port, and passes the URLs on.
    pub fn point_upstream(self, upstreams: &mut shop::settings::UpstreamSettings, url: String) {
        match self {
            Self::Accounts => upstreams.accounts_url = url,
            Self::Catalog => upstreams.catalog_url = url,
            Self::Inventory => upstreams.inventory_url = url,
            Self::Reviews => upstreams.reviews_url = url,
            Self::Payments => upstreams.payments_url = url,
            Self::Orders => upstreams.orders_url = url,
            Self::Gateway => {}
        }
    }
}

/// HTTP clients for the upstreams named in the settings, one per upstream.
struct Clients<'a>(&'a Settings);

impl Clients<'_> {
    fn client(&self, name: &'static str, url: &str) -> anyhow::Result<ServiceClient> {
        Ok(ServiceClient::new(name, url, &self.0.security.service_token, self.0.upstream_timeout())?
            .with_resilience(self.0.upstreams.resilience))
    }
    fn accounts(&self) -> anyhow::Result<ServiceClient> {
        self.client("accounts", &self.0.upstreams.accounts_url)
    }
    fn catalog(&self) -> anyhow::Result<ServiceClient> {
        self.client("catalog", &self.0.upstreams.catalog_url)
    }
    fn inventory(&self) -> anyhow::Result<ServiceClient> {
        self.client("inventory", &self.0.upstreams.inventory_url)
    }
    fn reviews(&self) -> anyhow::Result<ServiceClient> {
        self.client("reviews", &self.0.upstreams.reviews_url)
    }
    fn payments(&self) -> anyhow::Result<ServiceClient> {
        self.client("payments", &self.0.upstreams.payments_url)
    }
    fn orders(&self) -> anyhow::Result<ServiceClient> {
        self.client("orders", &self.0.upstreams.orders_url)
    }
}

/// One piece of a service's app: its shared state, or a module's routes.
type Mount = Box<dyn Fn(&mut web::ServiceConfig) + Send + Sync>;

/// Opens the service's database (if it has one) and binds its server.
pub async fn build(service: Service, settings: &Settings) -> anyhow::Result<Application> {
    let clients = Clients(settings);
    let token_keys = web::Data::new(TokenKeys::new(
        &settings.security.token_secret,
        Duration::from_secs(settings.security.token_ttl_secs),
    ));

    let Some(schema) = service.module() else {
        return build_gateway(settings, &clients, token_keys);
    };
    let default_url = format!("sqlite:{}.db", service.name());
    let db = shop::open_database(settings, &default_url, &[schema]).await?;
    let readiness = web::Data::new(Readiness::Database(db.clone()));
    let credential = web::Data::new(ServiceCredential(settings.security.service_token.clone()));

    // The orders service also runs checkout recovery beside its server.
    let mut recovery = None;
    // What this service's routes need, and which routes it serves.
    let state: Vec<Mount> = match schema {
        Schema::Accounts => {
            let state = web::Data::new(AccountsState { db });
            vec![
                Box::new(move |cfg| {
                    cfg.app_data(state.clone());
                }),
                Box::new(shop::accounts::configure_public),
            ]
        }
        Schema::Catalog => {
            let state = web::Data::new(CatalogState { db });
            vec![
                Box::new(move |cfg| {
                    cfg.app_data(state.clone());
                }),
                Box::new(shop::catalog::configure_public),
                Box::new(shop::catalog::configure_internal),
            ]
        }
        Schema::Inventory => {
            let state = web::Data::new(LocalInventory(db));
            vec![
                Box::new(move |cfg| {
                    cfg.app_data(state.clone());
                }),
                Box::new(shop::inventory::configure_internal),
            ]
        }
        Schema::Reviews => {
            let state = web::Data::new(ReviewsState { db, catalog: Arc::new(CatalogClient(clients.catalog()?)) });
            vec![
                Box::new(move |cfg| {
                    cfg.app_data(state.clone());
                }),
                Box::new(shop::reviews::configure_public),
                Box::new(shop::reviews::configure_internal),
            ]
        }
        Schema::Payments => {
            let state = web::Data::new(LocalPayments { db, latency: settings.payment_latency() });
            vec![
                Box::new(move |cfg| {
                    cfg.app_data(state.clone());
                }),
                Box::new(shop::payments::configure_internal),
            ]
        }
        Schema::Orders => {
            let policy = CheckoutPolicy::from_settings(settings);
            let saga: SharedCheckout = Arc::new(SagaCheckout {
                db: db.clone(),
                catalog: Arc::new(CatalogClient(clients.catalog()?)),
                inventory: Arc::new(InventoryClient(clients.inventory()?)),
                payments: Arc::new(PaymentsClient(clients.payments()?)),
                policy,
            });
            recovery = Some((saga.clone(), policy.recovery_deadline));
            let state = web::Data::new(OrdersState { db, checkout: saga });
            vec![
                Box::new(move |cfg| {
                    cfg.app_data(state.clone());
                }),
                Box::new(shop::orders::configure_public),
            ]
        }
    };
    let state = Arc::new(state);

    let mut app =
        Application::build(service.name(), settings, service.default_port(), move |cfg: &mut web::ServiceConfig| {
            cfg.app_data(token_keys.clone()).app_data(readiness.clone()).app_data(credential.clone());
            // Operations endpoints stay open; everything else needs the service credential.
            cfg.configure(shop::telemetry::configure_ops);
            let state = state.clone();
            cfg.service(web::scope("").wrap(from_fn(require_service_credential)).configure(move |scope| {
                for part in state.iter() {
                    part(scope);
                }
            }));
        })?;
    if let Some((checkout, deadline)) = recovery {
        app.run_beside(shop::orders::recovery::run(checkout, deadline));
    }
    Ok(app)
}

fn build_gateway(
    settings: &Settings,
    clients: &Clients<'_>,
    token_keys: web::Data<TokenKeys>,
) -> anyhow::Result<Application> {
    let upstreams = Upstreams {
        accounts: clients.accounts()?,
        catalog: clients.catalog()?,
        reviews: clients.reviews()?,
        orders: clients.orders()?,
    };
    // One client per upstream, shared by the product page and the readiness check.
    let inventory = clients.inventory()?;
    let (catalog, page_inventory, reviews): (SharedCatalog, SharedInventory, SharedReviews) = (
        Arc::new(CatalogClient(upstreams.catalog.clone())),
        Arc::new(InventoryClient(inventory.clone())),
        Arc::new(ReviewsClient(upstreams.reviews.clone())),
    );
    // With --faults-enabled, the page's seams pass through the fault layer (as the monolith's do).
    let seam_faults = settings.server.faults_enabled.then(|| SeamFaults::new(settings.seed.seed));
    let (catalog, page_inventory, reviews) = match &seam_faults {
        Some(faults) => faults.wrap(catalog, page_inventory, reviews),
        None => (catalog, page_inventory, reviews),
    };
    let pages = web::Data::new(ProductPages { catalog, inventory: page_inventory, reviews });
    let credential = ServiceCredential(settings.security.service_token.clone());
    let readiness = web::Data::new(Readiness::Upstreams(vec![
        upstreams.accounts.clone(),
        upstreams.catalog.clone(),
        inventory,
        upstreams.reviews.clone(),
        clients.payments()?,
        upstreams.orders.clone(),
    ]));
    let upstreams = web::Data::new(upstreams);
    // `full` sheds load at the gateway: bounded requests in flight, a controlled-delay queue.
    let admission = (settings.upstreams.resilience == Resilience::Full)
        .then(|| Arc::new(shop::admission::Admission::new(settings.upstreams.gateway_max_in_flight)));
    Application::build("gateway", settings, Service::Gateway.default_port(), move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(token_keys.clone())
            .app_data(readiness.clone())
            .app_data(upstreams.clone())
            .app_data(pages.clone())
            .configure(shop::telemetry::configure_ops);
        if let Some(faults) = &seam_faults {
            shop::seam_faults::configure_admin(cfg, faults.clone(), credential.clone());
        }
        match &admission {
            // Only the public routes pass admission; the operations routes above never wait.
            Some(admission) => {
                let admission = admission.clone();
                let admit = from_fn(move |req, next| shop::admission::admit_or_shed(admission.clone(), req, next));
                cfg.service(web::scope("").wrap(admit).configure(shop::gateway::configure));
            }
            None => {
                cfg.configure(shop::gateway::configure);
            }
        }
    })
}

/// The body of every service binary's `main`.
pub fn main(service: Service) -> anyhow::Result<()> {
    use anyhow::Context;
    use clap::Parser;
    let settings = Settings::parse();
    shop::telemetry::init_tracing(&settings.server.log_level);
    actix_web::rt::System::new().block_on(async move {
        let app = build(service, &settings).await.with_context(|| format!("starting {}", service.name()))?;
        app.run_until_signalled().await.context("serving")
    })
}
