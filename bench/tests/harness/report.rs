//! Reports are rebuilt from raw data alone; thresholds decide the exit code.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use splitbench::drive::RepetitionSeeds;
use splitbench::record::{Endpoint, Failure, Outcome, Recorder};
use splitbench::report::data::{Fingerprint, Measurement, ProcessCost, RunConfig, RunData, SCHEMA_VERSION};

/// A run with known numbers: per architecture, 1,000 requests over 10 s, one failure.
fn synthetic_run() -> RunData {
    let mut measurements = Vec::new();
    for (architecture, base_us) in [("monolith", 500u64), ("microservices", 1_200)] {
        let mut recorder = Recorder::new(Duration::ZERO);
        for i in 0..1_000u64 {
            let due = Duration::from_millis(i * 10);
            recorder.record_due(due, Duration::from_micros(5));
            let endpoint = if i % 2 == 0 { Endpoint::ProductPage } else { Endpoint::Search };
            let failure = (i == 7).then_some(Failure::Status(503));
            let latency = Duration::from_micros(base_us + i % 100);
            recorder.record(&Outcome { endpoint, due, latency, service_time: latency, failure });
        }
        let processes = vec![ProcessCost {
            name: architecture.into(),
            cpu_seconds: 1.5,
            peak_rss_bytes: 50 << 20,
            context_switches: 12_000,
        }];
        let generator = ProcessCost {
            name: "generator".into(),
            cpu_seconds: 0.5,
            peak_rss_bytes: 20 << 20,
            context_switches: 3_000,
        };
        let mut main = Measurement::from_recorder(
            architecture,
            "main",
            Some(100.0),
            1,
            10.0,
            &recorder,
            processes.clone(),
            generator.clone(),
        );
        main.seeds = Some(RepetitionSeeds::derive(1, 1));
        measurements.push(main);
        for repetition in [1, 2] {
            for rate in [100.0, 200.0] {
                let mut step = Measurement::from_recorder(
                    architecture,
                    "sweep",
                    Some(rate),
                    repetition,
                    10.0,
                    &recorder,
                    processes.clone(),
                    generator.clone(),
                );
                step.seeds = Some(RepetitionSeeds::derive(1, repetition));
                measurements.push(step);
            }
        }
    }
    RunData {
        schema_version: SCHEMA_VERSION,
        run_id: "synthetic".into(),
        fingerprint: Fingerprint {
            commit: "0".repeat(40),
            dirty: false,
            build_profile: "test".into(),
            rustc: "rustc".into(),
            cpu_model: "cpu".into(),
            cpu_count: 2,
            os: "os".into(),
            kernel: "kernel".into(),
            hostname: "host".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
        },
        config: RunConfig {
            command_line: vec!["splitbench".into(), "compare".into()],
            mode: "open".into(),
            mix: "shop".into(),
            mix_weights: vec![("product_page".into(), 1), ("search".into(), 1)],
            arrivals: "poisson".into(),
            rate: Some(100.0),
            users: None,
            think_time_ms: None,
            warmup_secs: 0.0,
            duration_secs: 10.0,
            max_in_flight: Some(64),
            request_timeout_ms: 1000,
            logged_in_users: 0,
            seed: 1,
            database: "SQLite".into(),
            core_layout: "not pinned".into(),
            shop_settings: vec!["--workers".into(), "1".into()],
            objective: Some(splitbench::analyse::Objective {
                p99_us: 100_000,
                error_budget: 0.01,
                min_achieved_fraction: 0.95,
            }),
            sweep_rates: vec![100.0, 200.0],
            repeat: 2,
        },
        measurements,
    }
}

fn files(dir: &Path) -> BTreeMap<String, String> {
    let mut all = BTreeMap::new();
    for entry in walk(dir) {
        if entry.extension().is_some_and(|e| e == "hlog") {
            continue; // interval logs carry a wall-clock start time in their header
        }
        let name = entry.strip_prefix(dir).expect("inside").display().to_string();
        all.insert(name, std::fs::read_to_string(&entry).expect("readable"));
    }
    all
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("a directory") {
        let path = entry.expect("an entry").path();
        if path.is_dir() { found.extend(walk(&path)) } else { found.push(path) }
    }
    found
}

fn splitbench() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_splitbench"));
    command.stdout(std::process::Stdio::null());
    command
}

#[test]
fn the_report_is_rebuilt_identically_from_the_raw_data_alone() {
    let dir = tempfile::tempdir().expect("a temp dir");
    splitbench::report::write_run(dir.path(), &synthetic_run()).expect("the run is written");
    let first = files(dir.path());
    for expected in [
        "report.md",
        "run.json",
        "latency_per_endpoint.svg",
        "cpu_per_request.svg",
        "timeline.svg",
        "latency_vs_throughput.svg",
    ] {
        assert!(first.contains_key(expected), "{expected} is written");
    }
    let report = &first["report.md"];
    assert!(report.contains("| monolith | 100 |"), "the head-to-head table lists the monolith");
    assert!(report.contains("status_503 × 1"), "failures are listed by kind");
    // 1.5 CPU seconds and 12,000 context switches over 999 successful requests.
    assert!(report.contains("| monolith | monolith | 1.50 | 1502 | 12.0 |"), "cost per request by process");
    assert!(report.contains("### Cost per request at each step"), "the sweep's cost table");
    let (first_seeds, second_seeds) = (RepetitionSeeds::derive(1, 1), RepetitionSeeds::derive(1, 2));
    assert!(
        report.contains(&format!("repetition 1: schedule {}, workload 2", first_seeds.schedule))
            && report.contains(&format!("repetition 2: schedule {}, workload 3", second_seeds.schedule)),
        "the seeds of every repetition: {report}"
    );

    // Keep only the raw data, rebuild with the binary, and get the same files back.
    for name in first.keys() {
        if name != "run.json" {
            std::fs::remove_file(dir.path().join(name)).expect("removable");
        }
    }
    let status = splitbench()
        .arg("report")
        .arg(dir.path())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("splitbench runs");
    assert!(status.success());
    assert_eq!(files(dir.path()), first);
}

#[test]
fn a_breached_threshold_makes_the_exit_code_3() {
    let dir = tempfile::tempdir().expect("a temp dir");
    splitbench::report::write_run(dir.path(), &synthetic_run()).expect("the run is written");
    let exit = |threshold: &str| {
        splitbench()
            .arg("report")
            .arg(dir.path())
            .args(["--threshold", threshold])
            .stderr(std::process::Stdio::null())
            .status()
            .expect("runs")
            .code()
    };
    // The synthetic latencies are 0.5-1.3 ms with one failure in a thousand.
    assert_eq!(exit("p99=10ms"), Some(0));
    assert_eq!(exit("p50=100us"), Some(3));
    assert_eq!(exit("errors=1%"), Some(0));
    assert_eq!(exit("errors=0.01%"), Some(3));
    assert_eq!(exit("p42=1ms"), Some(1), "a malformed threshold is an error, not a pass");
}

#[test]
fn an_unknown_schema_version_is_refused() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut run = serde_json::to_value(synthetic_run()).expect("serialisable");
    run["schema_version"] = serde_json::json!(999);
    std::fs::write(dir.path().join("run.json"), run.to_string()).expect("writable");
    let output = splitbench().arg("report").arg(dir.path()).output().expect("runs");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("schema version 999"));
}
