//! The catalog process. Flags: `--help`.

fn main() -> anyhow::Result<()> {
    microservices::main(microservices::Service::Catalog)
}
