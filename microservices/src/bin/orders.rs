//! The orders process. Flags: `--help`.

fn main() -> anyhow::Result<()> {
    microservices::main(microservices::Service::Orders)
}
