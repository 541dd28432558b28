//! The inventory process. Flags: `--help`.

fn main() -> anyhow::Result<()> {
    microservices::main("inventory")
}
