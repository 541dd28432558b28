//! Any process of any topology: `shop-process --hosts catalog+reviews`. Flags: `--help`.

fn main() -> anyhow::Result<()> {
    microservices::main_any()
}
