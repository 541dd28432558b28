//! The accounts process. Flags: `--help`.

fn main() -> anyhow::Result<()> {
    microservices::main("accounts")
}
