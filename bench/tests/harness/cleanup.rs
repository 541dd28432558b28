//! No process the harness starts outlives it: not on SIGTERM, not on Ctrl-C (SIGINT).
//!
//! The harness is pointed (`--bin-dir`) at stand-in "services": scripts that announce a port,
//! record their pid and then sleep, never becoming ready. The harness waits for readiness;
//! the test signals it meanwhile and then checks every recorded pid.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SERVICES: [&str; 7] = ["accounts", "catalog", "inventory", "payments", "reviews", "orders", "gateway"];

fn write_stand_ins(bin_dir: &Path, pid_dir: &Path) {
    for name in SERVICES.iter().chain(std::iter::once(&"monolith")) {
        let script = format!(
            "#!/bin/sh\necho \"{name}: listening on 127.0.0.1:9;\" >&2\necho $$ > {}/{name}.pid\nexec sleep 300\n",
            pid_dir.display()
        );
        let path = bin_dir.join(name);
        std::fs::write(&path, script).expect("script written");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("made executable");
    }
}

/// Alive means present and not a zombie waiting to be reaped.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal_harness_and_check_children(arch: &str, expected: &[&str], signal: nix::sys::signal::Signal) {
    let bin_dir = tempfile::tempdir().expect("a temp dir");
    let pid_dir = tempfile::tempdir().expect("a temp dir");
    let out = tempfile::tempdir().expect("a temp dir");
    write_stand_ins(bin_dir.path(), pid_dir.path());
    let mut harness = Command::new(env!("CARGO_BIN_EXE_splitbench"))
        .args(["run", "--arch", arch, "--no-pin", "--mix", "read-only"])
        .arg("--bin-dir")
        .arg(bin_dir.path())
        .arg("--out")
        .arg(out.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("splitbench starts");

    let pid_file = |name: &str| pid_dir.path().join(format!("{name}.pid"));
    wait_for("every stand-in to start", || expected.iter().all(|name| pid_file(name).exists()));
    let pids: Vec<i32> = expected
        .iter()
        .map(|name| {
            let mut text = String::new();
            wait_for("the pid to be written", || {
                text = std::fs::read_to_string(pid_file(name)).unwrap_or_default();
                text.ends_with('\n')
            });
            text.trim().parse().expect("a pid")
        })
        .collect();
    assert!(pids.iter().all(|pid| alive(*pid)), "the stand-ins run before the signal");

    nix::sys::signal::kill(nix::unistd::Pid::from_raw(harness.id() as i32), signal).expect("signal sent");
    let status = harness.wait().expect("the harness exits");
    assert_eq!(status.code(), Some(130), "an interrupted run says so");
    wait_for("every child to be gone", || pids.iter().all(|pid| !alive(*pid)));
}

#[test]
fn sigterm_leaves_no_child_of_the_monolith_run_behind() {
    signal_harness_and_check_children("monolith", &["monolith"], nix::sys::signal::Signal::SIGTERM);
}

#[test]
fn ctrl_c_leaves_none_of_the_seven_microservices_behind() {
    signal_harness_and_check_children("microservices", &SERVICES, nix::sys::signal::Signal::SIGINT);
}
