//! CPU time, memory and context switches of a process, read from Linux's `/proc`.
//!
//! `utime + stime` in `/proc/<pid>/stat` is the CPU time of all the process's threads; the
//! difference of two samples is what the process spent in between. `VmHWM` in
//! `/proc/<pid>/status` is its peak resident set size since it started. Context switches are
//! counted per thread (`/proc/<pid>/task/<tid>/status`), so they are summed over the threads
//! alive at the sample; a thread that ends between two samples takes its count with it (the
//! shop's threads live as long as their process).

use std::sync::OnceLock;

/// One reading of a process's resource use.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProcessSample {
    pub cpu_seconds: f64,
    pub rss_bytes: u64,
    pub peak_rss_bytes: u64,
    /// Voluntary plus involuntary context switches of the live threads.
    pub context_switches: u64,
}

/// Clock ticks per second of `/proc` CPU times (almost always 100).
fn clock_ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Reads the clock tick rate now (it runs `getconf`), so that the first sample taken at the
/// edge of a measured window does not spawn a process on the generator's thread.
pub fn init() {
    clock_ticks_per_second();
}

/// CPU seconds from the text of `/proc/<pid>/stat`.
pub fn parse_cpu_seconds(stat: &str, ticks_per_second: f64) -> Option<f64> {
    // The command name (field 2) may contain spaces and parentheses; fields after the last ')'
    // start at field 3 (state), so utime (14) and stime (15) are at 11 and 12.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks_per_second)
}

/// A `kB` field of `/proc/<pid>/status`, in bytes.
pub fn parse_status_kb(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line[field.len()..].trim_start_matches(':').split_whitespace().next()?.parse().ok()?;
    Some(kb * 1024)
}

/// Voluntary plus involuntary context switches in the text of a thread's `status`.
pub fn parse_context_switches(status: &str) -> u64 {
    status
        .lines()
        .filter(|l| l.starts_with("voluntary_ctxt_switches") || l.starts_with("nonvoluntary_ctxt_switches"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum()
}

/// Context switches of every live thread of the process whose `/proc` directory is `dir`.
fn context_switches(dir: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("{dir}/task")) else { return 0 };
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("status")).ok())
        .map(|status| parse_context_switches(&status))
        .sum()
}

/// Samples process `pid` (`None` for this process).
pub fn sample(pid: Option<u32>) -> std::io::Result<ProcessSample> {
    let dir = pid.map_or_else(|| "/proc/self".to_string(), |p| format!("/proc/{p}"));
    let stat = std::fs::read_to_string(format!("{dir}/stat"))?;
    let status = std::fs::read_to_string(format!("{dir}/status"))?;
    let invalid = || std::io::Error::new(std::io::ErrorKind::InvalidData, format!("unexpected {dir}/stat"));
    Ok(ProcessSample {
        cpu_seconds: parse_cpu_seconds(&stat, clock_ticks_per_second()).ok_or_else(invalid)?,
        rss_bytes: parse_status_kb(&status, "VmRSS").unwrap_or(0),
        peak_rss_bytes: parse_status_kb(&status, "VmHWM").unwrap_or(0),
        context_switches: context_switches(&dir),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_after_a_command_name_with_spaces() {
        let stat = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 100 1000 200";
        assert_eq!(parse_cpu_seconds(stat, 100.0), Some(3.0));
        assert_eq!(parse_cpu_seconds("garbage", 100.0), None);
    }

    #[test]
    fn memory_fields_are_read_in_bytes() {
        let status = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(parse_status_kb(status, "VmHWM"), Some(2048 * 1024));
        assert_eq!(parse_status_kb(status, "VmRSS"), Some(1024 * 1024));
        assert_eq!(parse_status_kb(status, "VmSwap"), None);
    }

    #[test]
    fn context_switches_add_both_kinds() {
        let status = "Name:\tx\nvoluntary_ctxt_switches:\t120\nnonvoluntary_ctxt_switches:\t7\n";
        assert_eq!(parse_context_switches(status), 127);
        assert_eq!(parse_context_switches("Name:\tx\n"), 0);
    }

    #[test]
    fn this_process_can_be_sampled() {
        let first = sample(None).expect("/proc/self is readable");
        assert!(first.peak_rss_bytes >= first.rss_bytes && first.rss_bytes > 0);
        // Sleeping blocks this thread: at least one more voluntary switch is counted.
        std::thread::sleep(std::time::Duration::from_millis(5));
        let second = sample(None).expect("/proc/self is readable");
        assert!(second.context_switches > first.context_switches, "{first:?} then {second:?}");
    }
}
