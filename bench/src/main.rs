//! `splitbench`: thin CLI over the `splitbench` library.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(version, about = "Measure what splitting a monolith into microservices costs and buys")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start both architectures on SQLite and show the same product page answered by each.
    Demo {
        /// Product whose page to fetch.
        #[arg(long, default_value_t = 1)]
        product: i64,
        /// Shop settings (workers, pool sizes, seed and scale, ...), as every shop process takes them.
        #[command(flatten)]
        shop: Box<shop::Settings>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo { product, shop } => {
            shop::telemetry::init_tracing(&shop.server.log_level);
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
            runtime.block_on(splitbench::demo::run(&shop, product))
        }
    }
}
