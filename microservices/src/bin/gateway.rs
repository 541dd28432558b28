//! The gateway process: the edge, hosting no module. Flags: `--help`.

fn main() -> anyhow::Result<()> {
    microservices::main("edge")
}
