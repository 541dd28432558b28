//! The payments process. Flags: `--help`.

fn main() -> anyhow::Result<()> {
    microservices::main("payments")
}
