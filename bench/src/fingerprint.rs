//! The environment a run measured: code, build, machine. Stored with every result.

use crate::report::data::Fingerprint;

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let output = std::process::Command::new(program).args(args).output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

fn first_line_with(path: &str, prefix: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(prefix))?;
    Some(line.split_once([':', '=']).map_or(line, |(_, v)| v).trim().trim_matches('"').to_string())
}

/// Reads the fingerprint of this machine and checkout.
pub fn collect() -> Fingerprint {
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let workspace = workspace.to_string_lossy();
    let unknown = || "unknown".to_string();
    Fingerprint {
        commit: command_output("git", &["-C", &workspace, "rev-parse", "HEAD"]).unwrap_or_else(unknown),
        // Code that differs from the commit; the results directory itself is not code.
        dirty: command_output(
            "git",
            &["-C", &workspace, "status", "--porcelain", "--untracked-files=no", "--", ".", ":!results"],
        )
        .is_some_and(|s| !s.is_empty()),
        build_profile: if cfg!(debug_assertions) { "debug".into() } else { "release".into() },
        rustc: command_output("rustc", &["--version"]).unwrap_or_else(unknown),
        cpu_model: first_line_with("/proc/cpuinfo", "model name").unwrap_or_else(unknown),
        // Counted from /proc/cpuinfo: `available_parallelism` would give this process's
        // affinity, which is one core once the generator thread has been pinned.
        cpu_count: std::fs::read_to_string("/proc/cpuinfo")
            .map(|text| text.lines().filter(|l| l.starts_with("processor")).count())
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        os: first_line_with("/etc/os-release", "PRETTY_NAME").unwrap_or_else(unknown),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| unknown(), |s| s.trim().to_string()),
        hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map_or_else(|_| unknown(), |s| s.trim().to_string()),
        started_at: command_output("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]).unwrap_or_else(unknown),
    }
}
