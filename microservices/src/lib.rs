//! # microservices: the shop split into processes
//!
//! Wiring only. Every process is built by [`shop::process::build`] from the modules it hosts:
//! its own database with only those modules' tables, HTTP clients for the modules it calls
//! elsewhere, its routes behind the service credential. The edge (the gateway) is the only
//! public entry point: it checks tokens, forwards requests to the owning process and composes
//! the product page.
//!
//! Today's seven processes (the `microservices` topology preset) have a binary each:
//!
//! | binary    | owns (tables)          | calls                         |
//! |-----------|------------------------|-------------------------------|
//! | gateway   | nothing                | all six, product page fan-out |
//! | accounts  | users                  | -                             |
//! | catalog   | categories, products   | -                             |
//! | inventory | stock, reservations    | -                             |
//! | reviews   | reviews, summaries     | catalog                       |
//! | payments  | charges                | -                             |
//! | orders    | orders, lines          | catalog, inventory, payments  |
//!
//! `shop-process --hosts <members>` is any process of any topology (`catalog+reviews`,
//! `edge+accounts+payments+orders`, `edge+all` for the monolith); the harness starts the
//! preset processes above (and the monolith) from their own binaries and every other grouping
//! with it.
//!
//! Run one: `cargo run --release -p microservices --bin catalog -- --port 8082`.

use anyhow::Context;
use clap::Parser;
use shop::Settings;
use shop::topology::ProcessSpec;

/// The flags of `shop-process`: which modules it hosts, and every shop setting.
#[derive(Debug, Parser)]
#[command(version, about = "A splitbench shop process hosting any set of modules")]
struct ProcessArgs {
    /// The modules this process hosts, joined by `+` (accounts, catalog, inventory, reviews,
    /// payments, orders, or `all`), and `edge` if it is the public entry point.
    #[arg(long, env = "SPLITBENCH_HOSTS")]
    hosts: String,
    #[command(flatten)]
    settings: Settings,
}

/// The body of a fixed process's binary: `members` is what it hosts (`edge`, `catalog`).
pub fn main(members: &str) -> anyhow::Result<()> {
    let spec = ProcessSpec::parse_members(members).context("a binary's own members")?;
    serve(&spec, Settings::parse())
}

/// The body of `shop-process`: what it hosts comes from `--hosts`.
pub fn main_any() -> anyhow::Result<()> {
    let args = ProcessArgs::parse();
    let spec = ProcessSpec::parse_members(&args.hosts).context("--hosts")?;
    serve(&spec, args.settings)
}

fn serve(spec: &ProcessSpec, settings: Settings) -> anyhow::Result<()> {
    shop::telemetry::init_tracing(&settings.server.log_level);
    actix_web::rt::System::new().block_on(async move {
        let app =
            shop::process::build(spec, &settings).await.with_context(|| format!("starting {}", spec.process_name()))?;
        app.run_until_signalled().await.context("serving")
    })
}
