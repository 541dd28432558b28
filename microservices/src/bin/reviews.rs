//! The reviews process. Flags: `--help`.

fn main() -> anyhow::Result<()> {
    microservices::main("reviews")
}
