//! The main job until the load harness lands: start both architectures on the embedded
//! default (SQLite), ask each for the same product page, print both, stop everything.

use anyhow::Context;
use shop::Settings;

use crate::topology::{Architecture, Backend, RunningShop};

/// Starts each architecture in turn and prints its answer for `GET /api/products/{product_id}`.
pub async fn run(settings: &Settings, product_id: i64) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    for architecture in Architecture::ALL {
        let started = std::time::Instant::now();
        let shop = RunningShop::start(architecture, &Backend::Sqlite, settings).await?;
        let ready_ms = started.elapsed().as_millis();
        let url = format!("{}/api/products/{product_id}", shop.base_url);
        let answer = async {
            let response = client.get(&url).send().await.with_context(|| format!("GET {url}"))?;
            let status = response.status();
            let body: serde_json::Value = response.json().await.context("reading the product page")?;
            anyhow::Ok((status, body))
        }
        .await;
        let processes = shop.ports.len();
        shop.stop().await;
        let (status, body) = answer?;
        println!(
            "== {} ({processes} process{}, started with seed data in {ready_ms} ms) GET /api/products/{product_id} -> {status}",
            architecture.name(),
            if processes == 1 { "" } else { "es" }
        );
        println!("{}", serde_json::to_string_pretty(&body)?);
    }
    Ok(())
}
