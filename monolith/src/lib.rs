//! # monolith: the whole shop in one process
//!
//! Wiring only, and only one line of it: the process that hosts every module and is the
//! public entry point ([`shop::topology::Topology::monolith`]), built by
//! [`shop::process::build`] like every other process of every topology. Hosting all six
//! modules means one database holding every module's tables, the in-process implementations
//! plugged into each other, and checkout as local transactions
//! ([`shop::orders::LocalCheckout`], no network).
//!
//! Run it: `cargo run --release -p monolith -- --port 8080` (flags: `--help`).

use shop::topology::Topology;
use shop::{Application, Settings};

/// Opens (and seeds) the database (`sqlite:monolith.db` unless `--database-url` says
/// otherwise) and binds the server.
pub async fn build(settings: &Settings) -> anyhow::Result<Application> {
    shop::process::build(&Topology::monolith().processes[0], settings).await
}
