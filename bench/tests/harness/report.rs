//! Reports are rebuilt from raw data alone (older schemas too); thresholds decide the exit code.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use splitbench::analyse::{CapacityInterval, SweepStage};
use splitbench::drive::RepetitionSeeds;
use splitbench::record::{Endpoint, Failure, Outcome, Recorder, Verdict};
use splitbench::report::data::{Fingerprint, Measurement, ProcessCost, RunConfig, RunData, SCHEMA_VERSION, SweepStep};

/// A run with known numbers: per architecture, 1,000 requests over 10 s, one failure and ten
/// degraded product pages.
fn synthetic_run() -> RunData {
    synthetic_run_with(|i| match i {
        7 => Verdict::Failed(Failure::Status(503)),
        i if i % 100 == 50 => Verdict::Degraded,
        _ => Verdict::Ok,
    })
}

/// A run of 1,000 requests per architecture (even ones product pages, odd ones searches, 0.5-1.3
/// ms each), the `i`th ending as `verdict(i)`.
fn synthetic_run_with(verdict: impl Fn(u64) -> Verdict) -> RunData {
    let mut measurements = Vec::new();
    for (architecture, base_us) in [("monolith", 500u64), ("microservices", 1_200)] {
        let mut recorder = Recorder::new(Duration::ZERO);
        for i in 0..1_000u64 {
            let due = Duration::from_millis(i * 10);
            recorder.record_due(due, Duration::from_micros(5));
            let endpoint = if i % 2 == 0 { Endpoint::ProductPage } else { Endpoint::Search };
            let latency = Duration::from_micros(base_us + i % 100);
            recorder.record(&Outcome { endpoint, due, latency, service_time: latency, verdict: verdict(i) });
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
            binaries: Vec::new(),
            kernel_cmdline: None,
            cpu_topology: None,
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
            warmup_ramped: None,
            pool_latency_ms: None,
            duration_secs: 10.0,
            max_in_flight: Some(64),
            request_timeout_ms: 1000,
            logged_in_users: 0,
            seed: 1,
            degraded_ok: false,
            database: "SQLite".into(),
            core_layout: "not pinned".into(),
            shop_settings: vec!["--workers".into(), "1".into()],
            objective: Some(splitbench::analyse::Objective {
                p99_us: 100_000,
                error_budget: 0.01,
                min_achieved_fraction: 0.95,
            }),
            sweep_rates: vec![100.0, 200.0],
            sweep_grids: Default::default(),
            saturation_users: None,
            saturation_rounds: None,
            saturation_warmup_secs: None,
            saturation_duration_secs: None,
            repeat: 2,
            sweep_attempts: None,
            sweep_sets_aside_disturbed: None,
            sweep_resolution: None,
            sweep_warmup_secs: None,
            sweep_duration_secs: None,
        },
        measurements,
        capacity: None,
        saturation: None,
        measuring_secs: Some(227.4),
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
    // 989 ok answers over 10 s; 1 failure and 10 degraded pages of 1,000 requests.
    assert!(
        report.contains("| monolith | 100 | 98.9 | 1 (0.100%) | 10 (1.000%) |"),
        "the head-to-head table lists errors and degraded answers side by side: {report}"
    );
    assert!(report.contains("| all p50 | all p90 | all p99 | all p99.9 | all max |"), "every request's percentiles");
    assert!(report.contains("| product_page | monolith | 490 | 10 | 0 |"), "degraded per endpoint: {report}");
    assert!(report.contains("status_503 × 1; and 10 degraded answers"), "failures are listed by kind");
    // 1.5 CPU seconds and 12,000 context switches over 999 answered requests (ok or degraded).
    assert!(report.contains("| monolith | monolith | 1.50 | 1502 | 12.0 |"), "cost per request by process");
    assert!(report.contains("### Cost per request at each step"), "the sweep's cost table");
    assert!(report.contains("p99 (all requests)"), "the sweep shows the p99 it judges");
    let (first_seeds, second_seeds) = (RepetitionSeeds::derive(1, 1), RepetitionSeeds::derive(1, 2));
    assert!(
        report.contains(&format!("repetition 1: schedule {}, workload 2", first_seeds.schedule))
            && report.contains(&format!("repetition 2: schedule {}, workload 3", second_seeds.schedule)),
        "the seeds of every repetition: {report}"
    );
    let timeline = &first["timelines/monolith-main-100rps-r1.csv"];
    assert!(timeline.starts_with("second,due,ok,degraded,failed,"), "{timeline}");

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
    // The synthetic latencies are 0.5-1.3 ms with one failure and ten degraded pages in a thousand.
    assert_eq!(exit("p99=10ms"), Some(0));
    assert_eq!(exit("p50=100us"), Some(3));
    assert_eq!(exit("errors=2%"), Some(0));
    assert_eq!(exit("errors=0.01%"), Some(3));
    assert_eq!(exit("p42=1ms"), Some(1), "a malformed threshold is an error, not a pass");
}

fn report_exit(dir: &Path, args: &[&str]) -> Option<i32> {
    splitbench().arg("report").arg(dir).args(args).stderr(std::process::Stdio::null()).status().expect("runs").code()
}

#[test]
fn degraded_answers_count_against_the_error_threshold_unless_degraded_ok() {
    let dir = tempfile::tempdir().expect("a temp dir");
    splitbench::report::write_run(dir.path(), &synthetic_run()).expect("the run is written");
    // 1 failure + 10 degraded of 1,000: 1.1% by default, 0.1% with --degraded-ok.
    assert_eq!(report_exit(dir.path(), &["--threshold", "errors=1%"]), Some(3));
    assert_eq!(report_exit(dir.path(), &["--threshold", "errors=1%", "--degraded-ok"]), Some(0));
    assert_eq!(report_exit(dir.path(), &["--threshold", "errors=0.05%", "--degraded-ok"]), Some(3));

    // A run recorded with --degraded-ok is judged so without the flag.
    let mut run = synthetic_run();
    run.config.degraded_ok = true;
    splitbench::report::write_run(dir.path(), &run).expect("the run is written");
    assert_eq!(report_exit(dir.path(), &["--threshold", "errors=1%"]), Some(0));
    let report = std::fs::read_to_string(dir.path().join("report.md")).expect("report.md");
    assert!(report.contains("| degraded answers | count as successes (`--degraded-ok`) |"), "{report}");
}

#[test]
fn a_p99_threshold_fails_when_every_request_failed() {
    // Every request given up at once: the fastest all-requests p99 there is, and nothing served.
    let dir = tempfile::tempdir().expect("a temp dir");
    let run = synthetic_run_with(|_| Verdict::Failed(Failure::Overflow));
    splitbench::report::write_run(dir.path(), &run).expect("the run is written");
    assert_eq!(report_exit(dir.path(), &["--threshold", "p99=1s"]), Some(3));
    assert_eq!(report_exit(dir.path(), &["--threshold", "p99=1s", "--degraded-ok"]), Some(3));

    // Nothing but degraded pages: no success by default, successes with --degraded-ok.
    let run = synthetic_run_with(|_| Verdict::Degraded);
    splitbench::report::write_run(dir.path(), &run).expect("the run is written");
    assert_eq!(report_exit(dir.path(), &["--threshold", "p99=1s"]), Some(3));
    assert_eq!(report_exit(dir.path(), &["--threshold", "p99=1s", "--degraded-ok"]), Some(0));
}

#[test]
fn a_p99_threshold_judges_every_request_not_only_the_survivors() {
    // 97 of 100 requests answer in about 1 ms; 3 time out after 5 s. The successes' p99 is
    // about 1 ms, every request's 5 s.
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut run = synthetic_run();
    // A budget the 3% of timeouts meet, so that only the latency can fail a step.
    run.config.objective.as_mut().expect("a sweep objective").error_budget = 0.05;
    for m in &mut run.measurements {
        let mut recorder = Recorder::new(Duration::ZERO);
        for i in 0..100u64 {
            let due = Duration::from_millis(i * 10);
            recorder.record_due(due, Duration::ZERO);
            let (latency, verdict) = if i % 40 == 39 || i == 0 {
                (Duration::from_secs(5), Verdict::Failed(Failure::Timeout))
            } else {
                (Duration::from_millis(1), Verdict::Ok)
            };
            recorder.record(&Outcome { endpoint: Endpoint::Search, due, latency, service_time: latency, verdict });
        }
        let judged = Measurement::from_recorder(
            &m.architecture,
            &m.phase,
            m.offered_rate,
            m.repetition,
            1.0,
            &recorder,
            m.processes.clone(),
            m.generator.clone(),
        );
        *m = judged;
    }
    splitbench::report::write_run(dir.path(), &run).expect("the run is written");
    assert_eq!(report_exit(dir.path(), &["--threshold", "p99=50ms"]), Some(3));
    assert_eq!(report_exit(dir.path(), &["--threshold", "p90=50ms"]), Some(0));
    let report = std::fs::read_to_string(dir.path().join("report.md")).expect("report.md");
    // Every step met the error budget and its successes met the objective's 100 ms, but every
    // request's p99 did not: none is sustainable.
    assert!(
        report.contains(
            "| monolith | 1 | 100 | grid | 1 | 97.0 | 3.000% | 0.000% | 1.0 ms | 1.0 ms | 5.00 s | [1.0 ms, ∞) | no: overload: every second from 0 to the end missed (1 of 1 missed) | failed (1 of 1 attempts) |"
        ),
        "{report}"
    );
    assert!(!report.contains("| yes |"), "{report}");
}

#[test]
fn committed_runs_of_every_older_schema_still_rebuild() {
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results");
    // Schema 1 (before consistency checks) and 2 (before degraded answers and every request's latency).
    for (run, schema) in [("20261127-product-page-2000", 1), ("20261127T095639Z-compare", 2)] {
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::copy(committed.join(run).join("run.json"), dir.path().join("run.json")).expect("copied");
        let old = RunData::read(&dir.path().join("run.json")).expect("an older schema reads");
        assert_eq!(old.schema_version, schema);
        assert!(!old.config.degraded_ok && old.measurements.iter().all(|m| m.seeds.is_none() && m.degraded() == 0));
        let output =
            splitbench().arg("report").arg(dir.path()).stderr(std::process::Stdio::piped()).output().expect("runs");
        assert!(output.status.success(), "{run}: {}", String::from_utf8_lossy(&output.stderr));
        let report = std::fs::read_to_string(dir.path().join("report.md")).expect("report.md");
        assert!(report.contains("| errors | degraded |"), "{run}: the new columns");
        assert!(report.contains("schedule seed 1 in every window"), "{run}: the seeds it used then");
    }
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

#[test]
fn a_failed_attempt_disturbed_from_outside_the_run_is_listed_but_not_counted() {
    // Repetition 1 of the monolith: before its passing attempt at 200 req/s, one that failed
    // (every request overflowed) while, say, a compiler ran on its cores.
    let build = |disturbed: bool| {
        let mut run = synthetic_run_with(|_| Verdict::Ok);
        let failing = synthetic_run_with(|_| Verdict::Failed(Failure::Overflow));
        let mut failed = failing
            .sweep_measurements()
            .find(|m| m.architecture == "monolith" && m.repetition == 1 && m.offered_rate == Some(200.0))
            .expect("a step at 200 req/s")
            .clone();
        failed.sweep_step = Some(SweepStep { stage: SweepStage::Grid, attempt: 1, disturbed });
        let passing = run
            .measurements
            .iter()
            .position(|m| {
                m.phase == "sweep" && m.architecture == "monolith" && m.repetition == 1 && m.offered_rate == Some(200.0)
            })
            .expect("its passing attempt");
        run.measurements[passing].sweep_step =
            Some(SweepStep { stage: SweepStage::Grid, attempt: 2, disturbed: false });
        run.measurements.insert(passing, failed);
        run.config.sweep_sets_aside_disturbed = Some(true);
        run.derive_summaries().expect("derived");
        run
    };
    let monolith_repetition_1 = |run: &RunData| {
        let capacity = run.capacity.as_ref().expect("a capacity");
        capacity.architectures.iter().find(|a| a.architecture == "monolith").expect("the monolith").repetitions[0]
    };

    let set_aside = build(true);
    assert_eq!(monolith_repetition_1(&set_aside), CapacityInterval { low: 200.0, high: None }, "only the pass counts");
    let dir = tempfile::tempdir().expect("a temp dir");
    splitbench::report::write_run(dir.path(), &set_aside).expect("the run is written");
    let report = std::fs::read_to_string(dir.path().join("report.md")).expect("a report");
    assert!(report.contains("set aside: disturbed from outside the run, not counted"), "{report}");
    assert!(report.contains("was set aside (listed, marked, not counted)"), "{report}");
    assert!(!report.contains("### How the failed attempts failed"), "a set-aside failure is not counted there either");

    // The same attempt, not marked: it decides the step (one attempt allowed), which fails.
    let counted = build(false);
    assert_eq!(monolith_repetition_1(&counted), CapacityInterval { low: 100.0, high: Some(200.0) });
    splitbench::report::write_run(dir.path(), &counted).expect("the run is written");
    let report = std::fs::read_to_string(dir.path().join("report.md")).expect("a report");
    assert!(report.contains("### How the failed attempts failed"), "{report}");
    assert!(report.contains("| monolith | 1 | 0 | 0 |"), "one overload, counted once: {report}");
}

#[test]
fn the_cpu_per_request_of_both_at_the_highest_rate_both_passed_is_reported() {
    // Every request ok: both architectures pass 100 and 200 req/s in both repetitions; the
    // monolith's process costs 1.5 CPU s and the microservices' 1.5 too, over 1,000 answers.
    let mut run = synthetic_run_with(|_| Verdict::Ok);
    // The microservices' step at 200 req/s of repetition 2 costs twice as much.
    for m in run.measurements.iter_mut() {
        if m.phase == "sweep" && m.architecture == "microservices" && m.repetition == 2 && m.offered_rate == Some(200.0)
        {
            m.processes[0].cpu_seconds = 3.0;
        }
    }
    let dir = tempfile::tempdir().expect("a temp dir");
    splitbench::report::write_run(dir.path(), &run).expect("the run is written");
    let report = std::fs::read_to_string(dir.path().join("report.md")).expect("a report");
    assert!(
        report.contains(
            "repetition 1, 200 req/s: monolith 1500 µs, microservices 1500 µs, ratio 1.00; repetition 2, 200 req/s: monolith 1500 µs, microservices 3000 µs, ratio 2.00."
        ),
        "{report}"
    );
}
