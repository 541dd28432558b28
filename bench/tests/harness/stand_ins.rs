//! Running `splitbench` with null-server stand-ins for every shop binary: the null server answers
//! `/health` and `/ready` and accepts the shop's flags, so the harness's own machinery (sweeps,
//! seeds, re-tests, reports) can be exercised in seconds. Stand-ins keep no books, so checking
//! them fails and the command exits 1 once run.json is written: run.json is what tests check.

use std::path::PathBuf;

use splitbench::report::data::RunData;

/// Every binary the launcher may start for a shop topology.
pub const SHOP_BINARIES: [&str; 9] =
    ["monolith", "gateway", "accounts", "catalog", "inventory", "reviews", "payments", "orders", "shop-process"];

/// A finished stand-in run: its results directory (removed on drop) and its raw data.
pub struct StandInRun {
    _out: tempfile::TempDir,
    pub dir: PathBuf,
    pub run: RunData,
}

impl StandInRun {
    pub fn report(&self) -> String {
        std::fs::read_to_string(self.dir.join("report.md")).expect("report.md")
    }
}

/// Runs `splitbench <args> --run-id <run_id>` against stand-ins and reads its run.json; `args`
/// are split at whitespace.
pub fn run_against_stand_ins(args: &str, run_id: &str) -> StandInRun {
    let (out, dir, output) = run_splitbench_against_stand_ins(args, run_id);
    let run = RunData::read(&dir.join("run.json"))
        .unwrap_or_else(|err| panic!("{err:#}: {}", String::from_utf8_lossy(&output.stderr)));
    StandInRun { _out: out, dir, run }
}

/// Runs `splitbench <args> --run-id <run_id>` against stand-ins: its output directory (removed
/// when the first value drops), the run's directory in it, and what it printed.
pub fn run_splitbench_against_stand_ins(
    args: &str,
    run_id: &str,
) -> (tempfile::TempDir, PathBuf, std::process::Output) {
    let bin_dir = tempfile::tempdir().expect("a temp dir");
    let null_server = env!("CARGO_BIN_EXE_null-server");
    for name in SHOP_BINARIES {
        std::os::unix::fs::symlink(null_server, bin_dir.path().join(name)).expect("a stand-in");
    }
    let out = tempfile::tempdir().expect("a temp dir");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_splitbench"))
        .args(args.split_whitespace())
        .args(["--run-id", run_id])
        .arg("--bin-dir")
        .arg(bin_dir.path())
        .arg("--out")
        .arg(out.path())
        .output()
        .expect("splitbench runs");
    let dir = out.path().join(run_id);
    (out, dir, output)
}

/// A process launcher whose every shop binary (`shop-process` included) is the null server,
/// linked into `bin_dir`: it starts any topology in milliseconds, each process answering
/// `/health` and `/ready` with the flags it was given on its command line.
pub fn stand_in_launcher(bin_dir: &std::path::Path) -> splitbench::launch::Launcher {
    let null_server = env!("CARGO_BIN_EXE_null-server");
    for name in SHOP_BINARIES {
        std::os::unix::fs::symlink(null_server, bin_dir.join(name)).expect("a stand-in");
    }
    splitbench::launch::Launcher {
        bin_dir: bin_dir.to_path_buf(),
        cores: splitbench::launch::CoreLayout::auto(false),
        database: splitbench::launch::DatabaseChoice::Sqlite,
        created_databases: Default::default(),
        ready_timeout: std::time::Duration::from_secs(60),
        scratch: std::sync::Arc::new(tempfile::tempdir().expect("a temp dir")),
        binaries: Default::default(),
        system_budget: None,
    }
}
