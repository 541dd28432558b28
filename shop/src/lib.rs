//! # shop: the whole feature set of the benchmark's online shop, written once
//!
//! Six modules, each owning its tables, its SQL, its HTTP handlers and an HTTP client:
//! [`accounts`], [`catalog`], [`inventory`], [`reviews`], [`payments`], [`orders`], plus the
//! composite [`product_page`]. A module that needs another goes through a trait
//! ([`catalog::Catalog`], [`inventory::Inventory`], [`reviews::Reviews`],
//! [`payments::Payments`], [`orders::Checkout`]) with two implementations: in-process (`Local*`)
//! and over HTTP (`*Client`, or the checkout saga).
//!
//! The `monolith` crate plugs the in-process implementations into one server; the
//! `microservices` crate plugs the HTTP ones into seven. Neither holds SQL or business rules:
//! only this crate does, so the two architectures differ in wiring alone.

pub mod accounts;
pub mod admission;
pub mod app;
pub mod auth;
pub mod catalog;
pub mod db;
pub mod deadline;
pub mod error;
pub mod gateway;
pub mod http_client;
pub mod inventory;
pub mod orders;
pub mod pagination;
pub mod payments;
pub mod process;
pub mod product_page;
pub mod resilience;
pub mod reviews;
pub mod seam;
pub mod seam_faults;
pub mod seed;
pub mod settings;
pub mod telemetry;
pub mod topology;

pub use app::Application;
pub use db::{Database, DatabaseSettings, Schema};
pub use error::ApiError;
pub use settings::Settings;

/// Opens a process's database, applies the schemas of the modules it holds and seeds them.
pub async fn open_database(settings: &Settings, default_url: &str, modules: &[Schema]) -> anyhow::Result<Database> {
    use anyhow::Context;
    let db_settings = DatabaseSettings {
        url: settings.database.database_url.clone().unwrap_or_else(|| default_url.to_string()),
        pool_size: settings.database.db_pool_size.max(1),
    };
    let db = Database::connect(&db_settings, modules)
        .await
        .with_context(|| format!("opening {}", settings::redact_password(&db_settings.url)))?;
    if seed::wanted(&settings.seed) {
        let started = std::time::Instant::now();
        for module in modules {
            seed_module(&db, *module, &settings.seed).await.with_context(|| format!("seeding {module:?}"))?;
        }
        tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "seed data ready");
    }
    Ok(db)
}

async fn seed_module(db: &Database, module: Schema, seed: &settings::SeedSettings) -> anyhow::Result<()> {
    match module {
        Schema::Accounts => accounts::seed(db, seed).await?,
        Schema::Catalog => catalog::seed(db, seed).await?,
        Schema::Inventory => inventory::seed(db, seed).await?,
        Schema::Reviews => reviews::seed(db, seed).await?,
        // Payments and orders start empty: they hold only what checkouts create.
        Schema::Payments | Schema::Orders => {}
    }
    Ok(())
}
