//! The environment a run measured and what it cost in memory: binaries by hash, kernel command
//! line, CPU topology, CPU taken by processes outside the run, PSS per second. Built from
//! committed runs and synthetic numbers; nothing here depends on this machine's load.

use std::path::{Path, PathBuf};
use std::process::Command;

use splitbench::report::data::{
    BinaryHash, CoreActivity, CoreWindow, CpuCore, CpuTopology, MemorySamples, PssSeries, RunData, SCHEMA_VERSION,
};

/// A committed schema 2 run: a compare with a head-to-head window per architecture.
fn committed_run() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/20261127T095639Z-compare/run.json")
}

/// `run.json` copied into a fresh directory (the committed one stays untouched).
fn copy_of(run_json: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::copy(run_json, dir.path().join("run.json")).expect("copied");
    dir
}

fn report_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("report.md")).expect("report.md was written")
}

#[test]
fn a_run_recorded_before_schema_4_rebuilds_with_the_new_rows_marked_not_recorded() {
    let dir = copy_of(&committed_run());
    let output =
        Command::new(env!("CARGO_BIN_EXE_splitbench")).arg("report").arg(dir.path()).output().expect("splitbench runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report = report_of(dir.path());
    for row in [
        "| binaries (SHA-256) | not recorded |",
        "| kernel command line | not recorded |",
        "| CPU topology | not recorded |",
    ] {
        assert!(report.contains(row), "{row} missing from:\n{report}");
    }
    // The memory columns are there, empty; the old VmHWM sum is kept and labelled.
    assert!(report.contains("| SUT PSS mean | SUT PSS max | sum of peak RSS |"), "{report}");
    assert!(report.contains("| n/a | n/a |"), "{report}");
    assert!(!report.contains("## CPU outside the run"), "no core samples, no section");
}

/// The committed run as a schema 4 run would hold it: binaries, kernel command line and
/// topology in the fingerprint; on the monolith's head-to-head window (20 s, 3.31 CPU s in the
/// monolith, 10.99 in the generator) cores where something else took 2 s on core 1 and the
/// hypervisor 1.5 s of core 0; PSS of every process at three samples.
fn schema_4_run() -> RunData {
    let mut run = RunData::read(&committed_run()).expect("the committed run reads");
    run.schema_version = SCHEMA_VERSION;
    let f = &mut run.fingerprint;
    f.binaries =
        vec![BinaryHash { name: "monolith".into(), path: "/target/release/monolith".into(), sha256: "ab".repeat(32) }];
    f.kernel_cmdline = Some("console=ttyS0 isolcpus=1 a|b".into());
    f.cpu_topology = Some(CpuTopology {
        online: "0-1".into(),
        cores: (0..2)
            .map(|cpu| CpuCore {
                cpu,
                model: "AMD EPYC".into(),
                mhz: Some(2596.1),
                package: Some(0),
                core_id: Some(cpu as u32),
                smt_siblings: Some(cpu.to_string()),
            })
            .collect(),
    });
    let mib = 1u64 << 20;
    for m in run.measurements.iter_mut().filter(|m| m.phase == "main") {
        let monolith = m.architecture == "monolith";
        let (generator_cpu, sut_cpu) = (m.generator.cpu_seconds, m.sut_cpu_seconds());
        let (generator_steal, sut_extra) = if monolith { (1.5, 2.0) } else { (0.0, 0.0) };
        m.cores = Some(CoreActivity {
            generator_cores: vec![0],
            system_under_test_cores: vec![1],
            cores: vec![
                CoreWindow { core: 0, busy_seconds: generator_cpu, steal_seconds: generator_steal },
                CoreWindow { core: 1, busy_seconds: sut_cpu + sut_extra, steal_seconds: 0.0 },
            ],
        });
        // Each process 10, 20 and 30 MiB: the per-second sums are n × 10, 20, 30 MiB.
        m.memory = Some(MemorySamples {
            at_secs: vec![0.0, 1.0, 2.0],
            processes: m
                .processes
                .iter()
                .map(|p| PssSeries { name: p.name.clone(), pss_bytes: vec![10 * mib, 20 * mib, 30 * mib] })
                .collect(),
            generator: PssSeries { name: "generator".into(), pss_bytes: vec![4 * mib, 4 * mib, 4 * mib] },
        });
    }
    run
}

#[test]
fn the_report_shows_hashes_topology_pss_and_warns_about_cpu_used_outside_the_run() {
    let run = schema_4_run();
    let dir = tempfile::tempdir().expect("a temp dir");
    splitbench::report::write_run(dir.path(), &run).expect("written");
    assert_eq!(RunData::read(&dir.path().join("run.json")).expect("reads back"), run, "stored whole");
    let report = report_of(dir.path());

    assert!(report.contains(&format!("| binaries (SHA-256) | monolith `{}` |", "ab".repeat(32))), "{report}");
    assert!(report.contains("| kernel command line | `console=ttyS0 isolcpus=1 a\\|b` |"), "{report}");
    assert!(report.contains("| CPU topology | online 0-1; cpu0: AMD EPYC @ 2596 MHz, no SMT sibling;"), "{report}");

    // Head to head: the mean and max of the per-second sums (monolith 1 process, microservices 7).
    assert!(report.contains("| 20.0 MiB | 30.0 MiB |"), "monolith: {report}");
    assert!(report.contains("| 140.0 MiB | 210.0 MiB |"), "microservices: {report}");
    // Per process, and the generator's own.
    assert!(report.contains("| microservices | gateway |"), "{report}");
    assert!(report.contains("| 4.0 MiB | 4.0 MiB |"), "the generator's PSS: {report}");

    // 2 s of 20 s on the system's core is 10% of a core; 1.5 s of steal is 7.5%.
    assert!(report.contains("## CPU outside the run"), "{report}");
    assert!(report.contains("| monolith | system under test [1] |"), "{report}");
    let warnings = &report[report.find("## Warnings").expect("a warnings section")..];
    assert!(
        warnings
            .contains("monolith: processes outside the run used 10.0% of a core on the system under test core(s) [1]"),
        "{warnings}"
    );
    assert!(warnings.contains("monolith: the hypervisor stole up to 7.5% of a core on the generator core(s) [0]"));
    assert!(!warnings.contains("microservices: processes outside the run"), "nothing else ran there: {warnings}");
}

#[test]
fn the_terminal_summary_repeats_the_interference_warning() {
    let dir = tempfile::tempdir().expect("a temp dir");
    splitbench::report::write_run(dir.path(), &schema_4_run()).expect("written");
    let output =
        Command::new(env!("CARGO_BIN_EXE_splitbench")).arg("report").arg(dir.path()).output().expect("splitbench runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("warning: monolith: processes outside the run used 10.0% of a core"), "{stdout}");
}
