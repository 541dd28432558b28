//! Topologies other than the two architectures: the process runner and the in-process runner
//! start the same graph from one description, and CPU budgets are applied to the processes.
//!
//! The process runner is pointed at null-server stand-ins (they accept the shop's flags), so
//! what is checked is what each process was told: its `--hosts` and every upstream URL, read
//! back from `/proc/<pid>/cmdline`.

use std::collections::BTreeMap;

use shop::Settings;
use shop::topology::{Module, Topology};
use splitbench::{Backend, RunningShop};

use crate::stand_ins::stand_in_launcher;

/// For every process: which process each module's calls go to (by port, then by name).
type Graph = BTreeMap<String, BTreeMap<&'static str, String>>;

fn graph_of(processes: &[(String, u16, Settings)]) -> Graph {
    let by_port: BTreeMap<u16, &str> = processes.iter().map(|(name, port, _)| (*port, name.as_str())).collect();
    processes
        .iter()
        .map(|(name, _, settings)| {
            let calls = Module::ALL
                .iter()
                .map(|&module| {
                    let url = settings.upstreams.url_of(module);
                    let port: u16 = url.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).expect("a port");
                    (module.name(), by_port.get(&port).map_or(format!("?{port}"), |n| n.to_string()))
                })
                .collect();
            (name.clone(), calls)
        })
        .collect()
}

/// A process's command line, as the kernel has it.
fn args_of(pid: u32) -> Vec<String> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("a command line");
    cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
}

#[tokio::test]
async fn both_runners_start_the_same_graph_from_one_description() {
    let topology = Topology::parse("all-but-orders").expect("a preset");
    let mut settings = Settings::defaults();
    settings.seed.products = 100;
    settings.seed.users = 10;
    settings.server.log_level = "off".into();

    let in_process = RunningShop::start_topology("all-but-orders", &topology, &Backend::Sqlite, &settings)
        .await
        .expect("starts in-process");
    let planned: Vec<(String, u16, Settings)> =
        in_process.planned().map(|p| (p.name.clone(), in_process.ports[&p.name], p.settings.clone())).collect();
    let in_process_graph = graph_of(&planned);
    in_process.stop().await;

    let bin_dir = tempfile::tempdir().expect("a temp dir");
    let run_dir = tempfile::tempdir().expect("a temp dir");
    let launcher = stand_in_launcher(bin_dir.path());
    let (sut, _) =
        launcher.start_topology("all-but-orders", &topology, &settings, run_dir.path(), None).await.expect("started");
    let mut started = Vec::new();
    for process in &sut.processes {
        // The shop's flags, without the binary's own (`--hosts` of shop-process).
        let mut args: Vec<String> = args_of(process.pid).into_iter().filter(|a| !a.is_empty()).collect();
        if let Some(at) = args.iter().position(|a| a == "--hosts") {
            args.drain(at..at + 2);
        }
        let parsed = <Settings as clap::Parser>::try_parse_from(&args).expect("the shop's flags");
        started.push((process.name.clone(), process.port, parsed));
    }
    // The grouping runs as shop-process with its members, the lone orders module as `orders`.
    let edge = sut.processes.iter().find(|p| p.name.starts_with("edge+")).expect("the edge");
    let args = args_of(edge.pid);
    assert!(args[0].ends_with("shop-process"), "{args:?}");
    let hosts = args.iter().position(|a| a == "--hosts").map(|i| args[i + 1].clone());
    assert_eq!(hosts.as_deref(), Some("edge+accounts+catalog+inventory+reviews+payments"));
    assert!(args_of(sut.processes.iter().find(|p| p.name == "orders").expect("orders").pid)[0].ends_with("orders"));
    let process_graph = graph_of(&started);
    sut.stop().await;

    assert_eq!(in_process_graph, process_graph, "the same processes, each calling the same hosts");
    // And the graph is the description's: orders calls the edge's catalog, inventory and
    // payments; the edge reaches orders (forwarding) in the orders process.
    let edge_name = "edge+accounts+catalog+inventory+reviews+payments";
    assert_eq!(process_graph["orders"]["catalog"], edge_name);
    assert_eq!(process_graph["orders"]["payments"], edge_name);
    assert_eq!(process_graph[edge_name]["orders"], "orders");
    assert_eq!(process_graph.len(), 2);
}

#[tokio::test]
async fn cpu_budgets_are_quotas_read_back_from_the_cgroup() {
    let quotas = splitbench::launch::cgroup::CpuQuota::available();
    let bin_dir = tempfile::tempdir().expect("a temp dir");
    let run_dir = tempfile::tempdir().expect("a temp dir");
    let launcher = stand_in_launcher(bin_dir.path());
    let topology = Topology::parse("edge@0.5|catalog+reviews@0.25|rest").expect("parses");
    let (mut sut, _) = launcher
        .start_topology("budgets", &topology, &Settings::defaults(), run_dir.path(), None)
        .await
        .expect("started");
    let budgets: Vec<(&str, f64, bool)> =
        sut.budgets.iter().map(|b| (b.process.as_str(), b.cores, b.enforced())).collect();
    assert_eq!(budgets, [("gateway", 0.5, quotas), ("catalog+reviews", 0.25, quotas)], "the unbudgeted rest has none");
    if !quotas {
        eprintln!("cgroup v1 cpu quotas unavailable here (not root?): budgets reported as not enforced");
        assert!(std::env::var_os("SPLITBENCH_REQUIRE_CGROUP").is_none(), "CI requires enforced budgets");
    }
    for budget in &sut.budgets {
        let Some(quota) = &budget.quota else { continue };
        let expected_quota = (budget.cores * splitbench::launch::BUDGET_PERIOD_US as f64) as u64;
        assert_eq!(quota.read_limit().expect("readable"), (splitbench::launch::BUDGET_PERIOD_US, Some(expected_quota)));
        let pid = sut.pid_of(&budget.process).expect("running");
        assert_eq!(quota.processes().expect("readable"), [pid], "{} is in its group, alone", budget.process);
    }
    // A restarted process (a fault run's crash) keeps its budget.
    sut.kill_process("gateway").await.expect("killed");
    launcher.restart(&mut sut, "gateway").await.expect("restarted");
    if let Some(quota) = &sut.budgets[0].quota {
        let pid = sut.pid_of("gateway").expect("running again");
        assert_eq!(quota.processes().expect("readable"), [pid], "the new gateway is in the old one's group");
    }
    let groups: Vec<std::path::PathBuf> =
        sut.budgets.iter().filter_map(|b| b.quota.as_ref().map(|q| q.path().to_path_buf())).collect();
    sut.stop().await;
    for group in groups {
        assert!(!group.exists(), "{} is removed with the system", group.display());
    }
}

#[tokio::test]
async fn a_budget_below_the_smallest_quota_is_refused() {
    let bin_dir = tempfile::tempdir().expect("a temp dir");
    let run_dir = tempfile::tempdir().expect("a temp dir");
    let launcher = stand_in_launcher(bin_dir.path());
    let topology = Topology::parse("edge@0.05|rest").expect("parses");
    let refused = launcher.start_topology("tiny", &topology, &Settings::defaults(), run_dir.path(), None).await;
    let message = format!("{:#}", refused.err().expect("refused"));
    assert!(message.contains("below the smallest quota"), "{message}");
}

#[tokio::test]
async fn replicas_of_the_edge_get_haproxy_in_front_as_the_public_entry_point() {
    if splitbench::launch::balancer::haproxy_path().is_err() {
        eprintln!("HAProxy is not installed here: skipped");
        assert!(std::env::var_os("SPLITBENCH_REQUIRE_HAPROXY").is_none(), "CI requires HAProxy");
        return;
    }
    let bin_dir = tempfile::tempdir().expect("a temp dir");
    let run_dir = tempfile::tempdir().expect("a temp dir");
    let launcher = stand_in_launcher(bin_dir.path());
    let topology = Topology::parse("edge+rest*3").expect("three monoliths");
    let (sut, _) = launcher
        .start_topology("monoliths", &topology, &Settings::defaults(), run_dir.path(), None)
        .await
        .expect("started");
    let names: Vec<&str> = sut.processes.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["monolith-1", "monolith-2", "monolith-3", "haproxy"]);
    let balancer = sut.processes.last().expect("the balancer");
    assert_eq!(sut.base_url, format!("http://127.0.0.1:{}", balancer.port), "the public entry point");
    // Requests through it reach the replicas (stand-ins answer everything with 200).
    for _ in 0..6 {
        let answer = reqwest::get(format!("{}/health", sut.base_url)).await.expect("through HAProxy");
        assert!(answer.status().is_success());
    }
    // It runs as a process of the system, so its CPU is sampled with the others'.
    assert!(sut.sample().iter().any(|(name, _)| name == "haproxy"));
    sut.stop().await;
    // The in-process runner has no balancer: it refuses instead of serving one replica.
    let refused = RunningShop::start_topology("monoliths", &topology, &Backend::Sqlite, &Settings::defaults()).await;
    assert!(format!("{:#}", refused.err().expect("refused")).contains("HAProxy"));
}

#[test]
fn scale_measures_every_scenario_at_every_budget_and_its_report_rebuilds_from_the_data() {
    if splitbench::launch::balancer::haproxy_path().is_err() {
        eprintln!("HAProxy is not installed here: skipped");
        assert!(std::env::var_os("SPLITBENCH_REQUIRE_HAPROXY").is_none(), "CI requires HAProxy");
        return;
    }
    let args = "scale --no-pin --mix health --budgets 0.4,0.2 --rounds 1 --replica-cores 0.2 \
                --scenario monolith,monolith-replicated,microservices-even,cat=catalog*{n}|rest \
                --saturation-users 4 --saturation-warmup 100ms --saturation-duration 300ms";
    let (_out, dir, output) = crate::stand_ins::run_splitbench_against_stand_ins(args, "scale");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let run = splitbench::scale::ScaleRun::read(&dir).unwrap_or_else(|err| panic!("{err:#}: {stderr}"));
    assert_eq!(run.budgets, [0.2, 0.4], "sorted");
    let points: Vec<(&str, f64, u32)> =
        run.points.iter().map(|p| (p.scenario.as_str(), p.budget_cores, p.replicas)).collect();
    assert_eq!(
        points,
        [
            ("monolith", 0.2, 1),
            ("monolith-replicated", 0.2, 1),
            ("microservices-even", 0.2, 1),
            ("cat", 0.2, 1),
            ("monolith", 0.4, 1),
            ("monolith-replicated", 0.4, 2),
            ("microservices-even", 0.4, 2),
            ("cat", 0.4, 2),
        ]
    );
    // Each point measured its round; the replicated monolith had HAProxy in front, whose CPU
    // share is reported; the stand-ins keep no books, so none is clean (and the exit says so).
    assert!(run.points.iter().all(|p| p.throughput.len() == 1 && p.throughput[0] > 0.0), "{:?}", run.points);
    let two_monoliths = &run.points[5];
    assert_eq!(two_monoliths.topology, "edge+accounts+catalog+inventory+reviews+payments+orders*2");
    assert_eq!(two_monoliths.balancer_cpu_share.len(), 1);
    assert!(run.points[1].balancer_cpu_share.is_empty(), "one replica of the monolith, no balancer");
    assert!(run.points.iter().all(|p| !p.books_clean));
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert_eq!(run.budgets_enforced, splitbench::launch::cgroup::CpuQuota::available());
    // The fingerprint names the harness and every binary that ran, HAProxy included.
    let binaries: Vec<&str> = run.fingerprint.binaries.iter().map(|b| b.name.as_str()).collect();
    for name in ["splitbench", "monolith", "gateway", "haproxy"] {
        assert!(binaries.contains(&name), "{name} in {binaries:?}");
    }
    // The report is derived from scale.json alone.
    let written = std::fs::read_to_string(dir.join("scale.md")).expect("scale.md");
    assert!(written.contains("| monolith-replicated | 0.4 | 2 |"), "{written}");
    assert!(dir.join("scale.svg").is_file());
    std::fs::remove_file(dir.join("scale.md")).expect("removed");
    let rebuilt = std::process::Command::new(env!("CARGO_BIN_EXE_splitbench"))
        .arg("report")
        .arg(&dir)
        .output()
        .expect("splitbench report runs");
    assert!(rebuilt.status.success(), "{}", String::from_utf8_lossy(&rebuilt.stderr));
    assert_eq!(std::fs::read_to_string(dir.join("scale.md")).expect("rebuilt"), written);
}

#[tokio::test]
async fn a_system_budget_is_one_quota_over_every_process() {
    let quotas = splitbench::launch::cgroup::CpuQuota::available();
    let bin_dir = tempfile::tempdir().expect("a temp dir");
    let run_dir = tempfile::tempdir().expect("a temp dir");
    let launcher = splitbench::launch::Launcher { system_budget: Some(0.3), ..stand_in_launcher(bin_dir.path()) };
    let topology = Topology::parse("catalog-reviews").expect("a preset");
    let (sut, _) = launcher
        .start_topology("budgeted", &topology, &Settings::defaults(), run_dir.path(), None)
        .await
        .expect("started");
    assert_eq!(sut.budgets.len(), 1);
    let budget = &sut.budgets[0];
    assert_eq!(
        (budget.process.as_str(), budget.cores, budget.enforced()),
        (splitbench::launch::SYSTEM_BUDGET, 0.3, quotas)
    );
    assert!(quotas || std::env::var_os("SPLITBENCH_REQUIRE_CGROUP").is_none(), "CI requires enforced budgets");
    if let Some(quota) = &budget.quota {
        assert_eq!(quota.read_limit().expect("readable"), (splitbench::launch::BUDGET_PERIOD_US, Some(3000)));
        let mut inside = quota.processes().expect("readable");
        inside.sort_unstable();
        let mut pids: Vec<u32> = sut.processes.iter().map(|p| p.pid).collect();
        pids.sort_unstable();
        assert_eq!(inside, pids, "every process of the system, in one group");
    }
    let group = budget.quota.as_ref().map(|q| q.path().to_path_buf());
    sut.stop().await;
    assert!(group.is_none_or(|g| !g.exists()), "the system's group is removed with it");
    // A process's own budget would take it out of the system's group: refused.
    let both = Topology::parse("catalog@0.2|rest").expect("parses");
    let refused = launcher.start_topology("both", &both, &Settings::defaults(), run_dir.path(), None).await;
    assert!(format!("{:#}", refused.err().expect("refused")).contains("do not combine"));
}

#[tokio::test]
async fn a_process_that_dies_while_starting_is_reported_at_once_not_at_the_deadline() {
    use std::os::unix::fs::PermissionsExt;
    let bin_dir = tempfile::tempdir().expect("a temp dir");
    let run_dir = tempfile::tempdir().expect("a temp dir");
    let launcher = stand_in_launcher(bin_dir.path());
    // A monolith that says where it listens, then dies.
    let script = bin_dir.path().join("monolith");
    std::fs::remove_file(&script).expect("the stand-in removed");
    std::fs::write(&script, "#!/bin/sh\necho \"monolith: listening on 127.0.0.1:9;\" >&2\nexit 3\n").expect("written");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("executable");
    let failed =
        launcher.start_topology("dies", &Topology::monolith(), &Settings::defaults(), run_dir.path(), None).await;
    let message = format!("{:#}", failed.err().expect("it cannot start"));
    assert!(message.contains("monolith exited while starting"), "{message}");
}
