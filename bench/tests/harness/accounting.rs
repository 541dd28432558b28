//! What the load generator is fed: the seeds of a repetition are shared by both architectures
//! and new in every repetition. None asserts on how fast anything was.

use splitbench::drive::RepetitionSeeds;
use splitbench::report::data::RunData;

#[test]
fn both_architectures_share_a_repetitions_seeds_and_each_repetition_draws_new_ones() {
    // Stand-ins for every shop binary: the null server, which answers /health and /ready and
    // accepts the shop's flags. It keeps no books, so checking them fails and the command
    // exits 1 once run.json is written; what is checked here is run.json.
    let bin_dir = tempfile::tempdir().expect("a temp dir");
    let null_server = env!("CARGO_BIN_EXE_null-server");
    for name in ["monolith", "accounts", "catalog", "inventory", "payments", "reviews", "orders", "gateway"] {
        std::os::unix::fs::symlink(null_server, bin_dir.path().join(name)).expect("a stand-in");
    }
    let out = tempfile::tempdir().expect("a temp dir");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_splitbench"))
        .args(["compare", "--arch", "both", "--mix", "health", "--no-pin", "--repeat", "2", "--seed", "7"])
        .args(["--sweep-rates", "20", "--sweep-warmup", "0s", "--sweep-duration", "1s"])
        .args(["--rate", "20", "--warmup", "0s", "--duration", "1s", "--run-id", "seeds"])
        .arg("--bin-dir")
        .arg(bin_dir.path())
        .arg("--out")
        .arg(out.path())
        .output()
        .expect("splitbench runs");
    let run = RunData::read(&out.path().join("seeds/run.json"))
        .unwrap_or_else(|err| panic!("{err:#}: {}", String::from_utf8_lossy(&output.stderr)));

    let seeds_of = |phase: &str, repetition: u32| -> Vec<(String, Option<RepetitionSeeds>)> {
        run.measurements
            .iter()
            .filter(|m| m.phase == phase && m.repetition == repetition)
            .map(|m| (m.architecture.clone(), m.seeds))
            .collect()
    };
    for (phase, repetition) in [("sweep", 1), ("sweep", 2), ("main", 1)] {
        let expected = Some(RepetitionSeeds::derive(7, repetition));
        assert_eq!(
            seeds_of(phase, repetition),
            vec![("monolith".to_string(), expected), ("microservices".to_string(), expected)],
            "{phase} repetition {repetition}: both architectures on the same seeds"
        );
    }
    assert_ne!(RepetitionSeeds::derive(7, 1).schedule, RepetitionSeeds::derive(7, 2).schedule);
    let report = std::fs::read_to_string(out.path().join("seeds/report.md")).expect("report.md");
    let second = RepetitionSeeds::derive(7, 2);
    assert!(report.contains(&format!("repetition 2: schedule {}, workload 9", second.schedule)), "{report}");
}
