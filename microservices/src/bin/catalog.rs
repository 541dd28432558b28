//! The catalog process. Flags: `--help`.

fn main() -> anyhow::Result<()> {
    microservices::main("catalog")
}
