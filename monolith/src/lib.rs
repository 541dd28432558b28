//! # monolith: the whole shop in one process
//!
//! Wiring only: one database holding every module's tables, every module's in-process
//! implementation plugged into the others, one actix-web server serving the public API.
//! Checkout uses [`shop::orders::LocalCheckout`] (local transactions, no network).
//!
//! Run it: `cargo run --release -p monolith -- --port 8080` (flags: `--help`).

use std::sync::Arc;

use actix_web::web;
use shop::accounts::AccountsState;
use shop::auth::ServiceCredential;
use shop::auth::TokenKeys;
use shop::catalog::{CatalogState, LocalCatalog, SharedCatalog};
use shop::inventory::{LocalInventory, SharedInventory};
use shop::orders::{CheckoutPolicy, LocalCheckout, OrdersState, SharedCheckout};
use shop::payments::LocalPayments;
use shop::product_page::ProductPages;
use shop::reviews::{LocalReviews, ReviewsState};
use shop::seam_faults::SeamFaults;
use shop::settings::default_port;
use shop::telemetry::Readiness;
use shop::{Application, Schema, Settings};

/// The default database when no `--database-url` is given.
pub const DEFAULT_DATABASE_URL: &str = "sqlite:monolith.db";

/// Opens (and seeds) the database and binds the server.
pub async fn build(settings: &Settings) -> anyhow::Result<Application> {
    let db = shop::open_database(settings, DEFAULT_DATABASE_URL, &Schema::ALL).await?;

    let catalog: SharedCatalog = Arc::new(LocalCatalog(db.clone()));
    let inventory = LocalInventory(db.clone());
    let shared_inventory: SharedInventory = Arc::new(inventory.clone());
    let payments = LocalPayments { db: db.clone(), latency: settings.payment_latency() };

    let token_keys = web::Data::new(TokenKeys::new(
        &settings.security.token_secret,
        std::time::Duration::from_secs(settings.security.token_ttl_secs),
    ));
    let readiness = web::Data::new(Readiness::Database(db.clone()));
    let accounts = web::Data::new(AccountsState { db: db.clone() });
    let catalog_state = web::Data::new(CatalogState { db: db.clone() });
    let reviews = web::Data::new(ReviewsState { db: db.clone(), catalog: catalog.clone() });
    let policy = CheckoutPolicy::from_settings(settings);
    let checkout: SharedCheckout = Arc::new(LocalCheckout { db: db.clone(), payments: payments.clone(), policy });
    let orders = web::Data::new(OrdersState { db: db.clone(), checkout: checkout.clone() });
    // With --faults-enabled, the page's seams pass through the fault layer (as the gateway's do).
    let seam_faults = settings.server.faults_enabled.then(|| SeamFaults::new(settings.seed.seed));
    let (page_catalog, page_inventory, page_reviews): (_, _, shop::reviews::SharedReviews) =
        (catalog.clone(), shared_inventory, Arc::new(LocalReviews(db.clone())));
    let (page_catalog, page_inventory, page_reviews) = match &seam_faults {
        Some(faults) => faults.wrap(page_catalog, page_inventory, page_reviews),
        None => (page_catalog, page_inventory, page_reviews),
    };
    let pages =
        web::Data::new(ProductPages { catalog: page_catalog, inventory: page_inventory, reviews: page_reviews });
    let credential = ServiceCredential(settings.security.service_token.clone());

    let mut app =
        Application::build("monolith", settings, default_port::PUBLIC, move |cfg: &mut web::ServiceConfig| {
            cfg.app_data(token_keys.clone())
                .app_data(readiness.clone())
                .app_data(accounts.clone())
                .app_data(catalog_state.clone())
                .app_data(reviews.clone())
                .app_data(orders.clone())
                .app_data(pages.clone())
                .configure(shop::telemetry::configure_ops)
                .configure(shop::accounts::configure_public)
                .configure(shop::catalog::configure_public)
                .configure(shop::product_page::configure_public)
                .configure(shop::reviews::configure_public)
                .configure(shop::orders::configure_public);
            if let Some(faults) = &seam_faults {
                shop::seam_faults::configure_admin(cfg, faults.clone(), credential.clone());
            }
        })?;
    app.run_beside(shop::orders::recovery::run(checkout, policy.recovery_deadline));
    Ok(app)
}
