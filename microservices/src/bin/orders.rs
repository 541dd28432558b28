//! The orders process. Flags: `--help`.

fn main() -> anyhow::Result<()> {
    microservices::main("orders")
}
