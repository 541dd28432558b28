//! `splitbench faults` end to end against stand-ins (null servers that answer `/health`): a
//! crashed process is killed and started again on its port, a frozen one is thawed, and the
//! report tells the monolith (the fault hits the one process) from the microservices (it hits
//! one service the `/health` route does not pass through). Only outcomes no noise can make:
//! refused connections, a 1 s freeze holding requests past 500 ms, answers again afterwards.

use splitbench::faults::FaultKind;
use splitbench::faults::analysis::Phase;
use splitbench::faults::report::FaultReport;
use splitbench::record::Endpoint;

use crate::stand_ins::run_splitbench_against_stand_ins;

/// The cpu cgroups splitbench processes made for `process` (`splitbench-<pid>-<process>`); each
/// test starves a process of its own, as tests run side by side.
fn splitbench_groups(process: &str) -> Vec<String> {
    std::fs::read_dir("/sys/fs/cgroup/cpu")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with("splitbench-") && name.ends_with(&format!("-{process}")))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn crashed_processes_restart_on_their_port_frozen_ones_thaw_and_only_the_monolith_shares_the_fault() {
    // Quotas need root and cgroup v1 (CI has both); elsewhere the run leaves starve out.
    let quotas = splitbench::launch::cgroup::CpuQuota::available();
    let groups_before = splitbench_groups("reviews");
    let args = format!(
        "{}{}",
        concat!(
            "faults --arch both --mix health --no-pin --rate 100 --warmup 0s --p99-objective 500ms ",
            "--before 1s --fault-for 1s --after 1s --scenario crash:inventory --scenario hang:catalog --resilience none"
        ),
        if quotas { " --scenario starve:reviews" } else { "" }
    );
    let (_out, dir, output) = run_splitbench_against_stand_ins(&args, "faults");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let json = std::fs::read_to_string(dir.join("faults.json")).unwrap_or_else(|err| panic!("{err}: {stderr}"));
    let report: FaultReport = serde_json::from_str(&json).expect("faults.json parses");
    let runs: Vec<(String, String, String)> =
        report.runs.iter().map(|r| (r.scenario.to_string(), r.architecture.clone(), r.process.clone())).collect();
    let expected: Vec<(String, String, String)> = [
        ("crash:inventory", "monolith", "monolith"),
        ("crash:inventory", "microservices", "inventory"),
        ("hang:catalog", "monolith", "monolith"),
        ("hang:catalog", "microservices", "catalog"),
    ]
    .map(|(s, a, p)| (s.to_string(), a.to_string(), p.to_string()))
    .to_vec();
    assert_eq!(runs[..4], expected, "every scenario on both architectures, the fault on the hosting process");
    let labels: Vec<String> = report.runs[..2].iter().map(|r| r.label()).collect();
    assert_eq!(labels, ["monolith", "microservices (none)"], "the microservices' runs name their profile");

    if quotas {
        let starved = &report.runs[4..];
        assert_eq!(starved.len(), 2);
        for run in starved {
            assert_eq!(run.evidence.cpu_limit, Some((50_000, Some(1_000))), "the quota, read back: {run:?}");
            assert!(run.evidence.throttling.is_some_and(|t| t.periods > 0), "{:?}", run.evidence);
        }
        assert_eq!(splitbench_groups("reviews"), groups_before, "no group left behind");
    }
    for run in report.runs.iter().filter(|r| r.scenario.fault != FaultKind::Starve) {
        let health = &run.outcome.phases[&Endpoint::Health];
        let during = &health[&Phase::During];
        assert!(run.fault.ended_ms > run.fault.started_ms, "the fault lasted: {:?}", run.fault);
        assert!(health[&Phase::After].ok > 0, "{} {}: answers again after the fault", run.scenario, run.architecture);
        assert!(!run.outcome.module_in_mix, "/health needs no module: no first success to measure");
        if run.architecture == "monolith" {
            // Killed: connections refused. Frozen for 1 s: the requests due in its first half
            // waited over 500 ms, more than 1% of the phase. Either way a miss of the fault's
            // making, whatever the machine's noise.
            match run.scenario.fault {
                FaultKind::Crash => assert!(during.failed > 0, "a killed monolith refuses: {during:?}"),
                _ => assert!(during.p99_us.is_some_and(|p| p > 500_000), "a frozen monolith holds: {during:?}"),
            }
            assert!(during.breached);
            assert_eq!(run.outcome.blast_radius, vec![Endpoint::Health], "/health needs no module");
        } else {
            assert_eq!(during.failed, 0, "{}: the gateway answers /health alone: {during:?}", run.scenario);
        }
    }
    assert!(report.runs[0].fault.restart_ready_ms.is_some_and(|ready| ready >= report.runs[0].fault.ended_ms));
    for run in &report.runs {
        // Calls between processes sampled at every second's edge of the 3 s window.
        assert_eq!(run.calls_per_second.len(), 3, "{} {}", run.scenario, run.label());
    }

    // The restarted processes logged apart, and came back on the port they had.
    let logs: Vec<String> = std::fs::read_dir(dir.join("logs"))
        .expect("logs")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    for process in ["monolith", "inventory"] {
        let restart = logs
            .iter()
            .find(|name| name.ends_with(&format!("-{process}-restart1.log")))
            .unwrap_or_else(|| panic!("no restart log of {process}: {logs:?}"));
        let first = restart.replace("-restart1", "");
        let port_in = |file: &str| {
            let text = std::fs::read_to_string(dir.join("logs").join(file)).expect("a log");
            splitbench::launch::listening_port(text.lines().next().expect("a first line")).expect("a port")
        };
        assert_eq!(port_in(restart), port_in(&first), "{process} restarted on its port");
    }
    for file in [
        "faults.md",
        "crash-inventory.svg",
        "hang-catalog.svg",
        "timelines/crash-inventory-monolith.csv",
        "timelines/crash-inventory-microservices-none.csv",
    ] {
        assert!(dir.join(file).is_file(), "{file} written");
    }
    let md = std::fs::read_to_string(dir.join("faults.md")).expect("faults.md");
    assert!(md.contains("| crash:inventory | 1.0 s | microservices (none) |"), "{md}");
    assert!(!md.contains("## Phase diagram"), "one trigger per scenario: no phase diagram");
}

#[test]
fn several_lengths_and_shares_run_each_trigger_and_draw_a_phase_diagram() {
    let quotas = splitbench::launch::cgroup::CpuQuota::available();
    let args = format!(
        "{}{}",
        concat!(
            "faults --arch microservices --mix health --no-pin --rate 100 --warmup 0s --p99-objective 500ms ",
            "--before 1s --fault-for 1s,2s --after 2s --scenario hang:catalog --resilience none"
        ),
        if quotas { " --scenario starve:payments --starve-share 2%,10%" } else { "" }
    );
    let (_out, dir, output) = run_splitbench_against_stand_ins(&args, "phase");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let json = std::fs::read_to_string(dir.join("faults.json")).unwrap_or_else(|err| panic!("{err}: {stderr}"));
    let report: FaultReport = serde_json::from_str(&json).expect("faults.json parses");
    let triggers: Vec<(String, String)> =
        report.runs.iter().map(|r| (r.scenario.to_string(), r.trigger(&report.parameters).describe())).collect();
    let mut expected = vec![("hang:catalog", "1.0 s"), ("hang:catalog", "2.0 s")];
    if quotas {
        expected.extend([
            ("starve:payments", "1.0 s at 2% of a core"),
            ("starve:payments", "2.0 s at 2% of a core"),
            ("starve:payments", "1.0 s at 10% of a core"),
            ("starve:payments", "2.0 s at 10% of a core"),
        ]);
        let limits: Vec<_> = report.runs[2..].iter().map(|r| r.evidence.cpu_limit).collect();
        let (two, ten) = (Some((50_000, Some(1_000))), Some((50_000, Some(5_000))));
        assert_eq!(limits, [two, two, ten, ten], "each run's own quota, read back from the cgroup");
    }
    let expected: Vec<(String, String)> = expected.into_iter().map(|(s, t)| (s.into(), t.into())).collect();
    assert_eq!(triggers, expected, "every length (and for starve every share), one run each");

    for file in ["hang-catalog-1000ms.svg", "hang-catalog-2000ms.svg", "phase-hang-catalog.svg"] {
        assert!(dir.join(file).is_file(), "{file} written");
    }
    assert!(dir.join("timelines/hang-catalog-2000ms-microservices-none.csv").is_file());
    let md = std::fs::read_to_string(dir.join("faults.md")).expect("faults.md");
    assert!(md.contains("## Phase diagram: hang:catalog"), "{md}");
    assert!(md.contains("| hang:catalog | 2.0 s | microservices (none) |"), "{md}");
    // /health does not pass through the catalog: the gateway answers it throughout, so each
    // cell of the diagram is a recovery, read from the run it names.
    let row = md
        .lines()
        .skip_while(|l| !l.starts_with("## Phase diagram: hang:catalog"))
        .find(|l| l.starts_with("| - |"))
        .expect("the diagram's one row (a hang has no share)");
    assert_eq!(row.matches("recovered ").count(), 2, "{row}");

    // `splitbench report` rebuilds the fault report from faults.json alone.
    let written = std::fs::read_to_string(dir.join("faults.md")).expect("faults.md");
    std::fs::remove_file(dir.join("faults.md")).expect("removed");
    std::fs::remove_file(dir.join("phase-hang-catalog.svg")).expect("removed");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_splitbench"))
        .arg("report")
        .arg(&dir)
        .status()
        .expect("splitbench report runs");
    assert!(status.success());
    assert_eq!(std::fs::read_to_string(dir.join("faults.md")).expect("rebuilt"), written);
    assert!(dir.join("phase-hang-catalog.svg").is_file(), "the phase diagram rebuilt");
    if quotas {
        assert!(dir.join("phase-starve-payments.svg").is_file());
        assert!(md.contains("| 10% |"), "{md}");
    }
}

#[tokio::test]
async fn a_proxied_service_is_reached_through_its_proxy_by_every_caller() {
    let bin_dir = tempfile::tempdir().expect("a temp dir");
    let run_dir = tempfile::tempdir().expect("a temp dir");
    let launcher = crate::stand_ins::stand_in_launcher(bin_dir.path());
    let architecture = splitbench::topology::Architecture::Microservices;
    let (sut, proxy) = launcher
        .start_proxied(architecture, &shop::Settings::defaults(), run_dir.path(), Some(("catalog", 7)))
        .await
        .expect("started");
    let proxy = proxy.expect("a proxy in front of the catalog");
    let catalog = sut.processes.iter().find(|p| p.name == "catalog").expect("a catalog").port;
    assert_ne!(proxy.port, catalog);
    // Every other process (any may call it) was told the proxy's address, not the catalog's.
    let proxied = format!("http://127.0.0.1:{}", proxy.port);
    for process in sut.processes.iter().filter(|p| p.name != "catalog") {
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", process.pid)).expect("a command line");
        let args: Vec<String> = cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        let url = args.iter().position(|a| a == "--catalog-url").and_then(|i| args.get(i + 1));
        assert_eq!(url, Some(&proxied), "{}: {args:?}", process.name);
    }
    // And the proxy reaches the catalog.
    let health = reqwest::get(format!("{proxied}/health")).await.expect("through the proxy");
    assert!(health.status().is_success());
    assert_eq!(proxy.counters.connections.load(std::sync::atomic::Ordering::Relaxed), 1);
    sut.stop().await;
    // The monolith has nothing to proxy.
    let refused = launcher
        .start_proxied(
            splitbench::topology::Architecture::Monolith,
            &shop::Settings::defaults(),
            run_dir.path(),
            Some(("catalog", 7)),
        )
        .await;
    assert!(refused.is_err());
}

#[test]
fn network_faults_run_on_the_microservices_alone_and_the_report_says_why() {
    let (_out, dir, output) = run_splitbench_against_stand_ins(
        concat!(
            "faults --arch both --mix health --no-pin --rate 100 --warmup 0s --p99-objective 500ms ",
            "--before 1s --fault-for 1s --after 1s --scenario partition:catalog --resilience none"
        ),
        "network",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let json = std::fs::read_to_string(dir.join("faults.json")).unwrap_or_else(|err| panic!("{err}: {stderr}"));
    let report: FaultReport = serde_json::from_str(&json).expect("faults.json parses");
    let ran: Vec<&str> = report.runs.iter().map(|r| r.architecture.as_str()).collect();
    assert_eq!(ran, ["microservices"]);
    assert_eq!(report.not_run.len(), 1);
    assert_eq!(report.not_run[0].architecture, "monolith");
    let evidence = report.runs[0].evidence.network.as_deref().expect("the proxy's evidence");
    assert!(evidence.contains("Timeout"), "{evidence}");
    let md = std::fs::read_to_string(dir.join("faults.md")).expect("faults.md");
    assert!(md.contains("| partition:catalog | - | monolith | not run: its modules call each other"), "{md}");
}

#[test]
fn repetitions_run_on_schedules_of_their_own_and_packet_drops_leave_no_table_behind() {
    // Packet drops need root and nft (CI has both); elsewhere a hang stands in for them.
    let drops = splitbench::faults::drops::available();
    assert!(
        drops || std::env::var_os("SPLITBENCH_REQUIRE_NFT").is_none(),
        "SPLITBENCH_REQUIRE_NFT is set, but nft is not usable"
    );
    let scenario = if drops { "drop:catalog --drop-share 100%" } else { "hang:catalog" };
    let args = format!(
        "faults --arch microservices --mix health --no-pin --rate 100 --warmup 0s --p99-objective 500ms \
         --before 1s --fault-for 1s --after 1s --resilience none --repeat 2 --scenario {scenario}"
    );
    let (_out, dir, output) = run_splitbench_against_stand_ins(&args, "repeat");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let json = std::fs::read_to_string(dir.join("faults.json")).unwrap_or_else(|err| panic!("{err}: {stderr}"));
    let report: FaultReport = serde_json::from_str(&json).expect("faults.json parses");
    let repetitions: Vec<u32> = report.runs.iter().map(|r| r.repetition).collect();
    assert_eq!(repetitions, [1, 2], "{stderr}");
    // A Poisson schedule of its own per repetition: the requests due per slice differ.
    let due = |run: usize| -> Vec<u64> { report.runs[run].outcome.timeline.iter().map(|s| s.requests).collect() };
    assert_ne!(due(0), due(1), "each repetition draws its own schedule");
    let slug = if drops { "drop-catalog" } else { "hang-catalog" };
    for r in [1, 2] {
        assert!(
            dir.join(format!("timelines/{slug}-microservices-none-r{r}.csv")).is_file(),
            "repetition {r}'s timeline"
        );
    }
    let md = std::fs::read_to_string(dir.join("faults.md")).expect("faults.md");
    assert!(md.contains("## Repetitions") && md.contains("| microservices (none) | 2 |"), "{md}");
    assert!(md.contains("microservices (none) #2"), "{md}");
    if drops {
        let evidence = report.runs[0].evidence.network.as_deref().expect("the drop table's evidence");
        assert!(evidence.contains("nftables table splitbench_"), "{evidence}");
        let table = evidence.split("nftables table ").nth(1).and_then(|rest| rest.split(' ').next()).expect("a name");
        let tables = std::process::Command::new("nft").args(["list", "tables"]).output().expect("nft runs");
        let tables = String::from_utf8_lossy(&tables.stdout);
        assert!(!tables.contains(table), "the run's table {table} is gone: {tables}");
    }
}
