//! The monolith binary: parse flags, build, serve until SIGINT/SIGTERM.

use anyhow::Context;
use clap::Parser;

fn main() -> anyhow::Result<()> {
    let settings = shop::Settings::parse();
    shop::telemetry::init_tracing(&settings.server.log_level);
    actix_web::rt::System::new().block_on(async move {
        let app = monolith::build(&settings).await.context("starting the monolith")?;
        app.run_until_signalled().await.context("serving")
    })
}
