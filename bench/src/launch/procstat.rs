//! CPU time, memory and context switches of a process, read from Linux's `/proc`.
//!
//! `utime + stime` in `/proc/<pid>/stat` is the CPU time of all the process's threads; the
//! difference of two samples is what the process spent in between. `VmHWM` in
//! `/proc/<pid>/status` is its peak resident set size since it started. Context switches are
//! counted per thread (`/proc/<pid>/task/<tid>/status`), so they are summed over the threads
//! alive at the sample; a thread that ends between two samples takes its count with it (the
//! shop's threads live as long as their process).
//!
//! Two more readings describe memory and the machine rather than one process's CPU:
//! - PSS (proportional set size, `Pss` in `/proc/<pid>/smaps_rollup`) charges each shared page
//!   to the processes mapping it in proportion, so the PSS of seven processes sums to the memory
//!   they take together; their RSS or `VmHWM` sums count the shared pages (the binary's text,
//!   shared libraries) seven times, and `VmHWM` is a lifetime peak, not the window's.
//! - Per-core times in `/proc/stat` (busy, steal) say what each core did, whoever did it.

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

/// The fields of `/proc/<pid>/stat` from field 3 (state) on: the command name (field 2) may
/// contain spaces and parentheses, so they are the ones after its last ')'.
fn fields_after_name(stat: &str) -> Option<Vec<&str>> {
    Some(stat[stat.rfind(')')? + 1..].split_whitespace().collect())
}

/// CPU seconds from the text of `/proc/<pid>/stat`.
pub fn parse_cpu_seconds(stat: &str, ticks_per_second: f64) -> Option<f64> {
    // utime (field 14) and stime (15) are at 11 and 12 after the name.
    let fields = fields_after_name(stat)?;
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks_per_second)
}

/// A process's start time from the text of `/proc/<pid>/stat` (field 22, clock ticks after
/// boot): with its pid, it names one process for good, as a pid alone (reused) does not.
pub fn parse_start_time(stat: &str) -> Option<u64> {
    fields_after_name(stat)?.get(19)?.parse().ok()
}

/// [`parse_start_time`] of the running process `pid`.
pub fn start_time(pid: u32) -> std::io::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_start_time(&stat)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("unexpected /proc/{pid}/stat")))
}

/// Whether the stat text is of a process that has exited and waits to be reaped (state `Z`,
/// the first field after the name).
pub fn parse_exited(stat: &str) -> bool {
    fields_after_name(stat).and_then(|f| f.first().copied()) == Some("Z")
}

/// Whether process `pid` is gone or has exited (a zombie): a child that died during start-up.
pub fn exited(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| parse_exited(&stat))
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

/// The `Pss` field of `/proc/<pid>/smaps_rollup`, in bytes.
pub fn parse_pss(smaps_rollup: &str) -> Option<u64> {
    parse_status_kb(smaps_rollup, "Pss:")
}

/// The proportional set size of process `pid` (`None` for this process), in bytes.
///
/// The kernel walks the process's page tables to answer, so a read costs about as much as
/// the process has mapped (well under a millisecond for a shop process); it is charged to the
/// reader, the generator.
pub fn pss(pid: Option<u32>) -> std::io::Result<u64> {
    let path = pid.map_or_else(|| "/proc/self/smaps_rollup".to_string(), |p| format!("/proc/{p}/smaps_rollup"));
    let text = std::fs::read_to_string(&path)?;
    parse_pss(&text)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("no Pss line in {path}")))
}

/// One core's cumulative times since boot, from its `cpuN` line of `/proc/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CoreTimes {
    pub core: usize,
    /// user + nice + system + irq + softirq (guest time is already inside user and nice):
    /// time the core ran anything, this run's processes or not. Idle and iowait are not busy,
    /// and steal is time the hypervisor gave to someone else.
    pub busy_seconds: f64,
    /// Time this virtual core wanted to run but the hypervisor ran something else.
    pub steal_seconds: f64,
}

/// Every core's line of the text of `/proc/stat` (the aggregate `cpu` line is skipped).
/// Columns a kernel does not have (steal before 2.6.11) read as 0.
pub fn parse_proc_stat(stat: &str, ticks_per_second: f64) -> Vec<CoreTimes> {
    stat.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let core: usize = fields.next()?.strip_prefix("cpu")?.parse().ok()?;
            let ticks: Vec<f64> = fields.map(|f| f.parse().unwrap_or(0.0)).collect();
            let column = |i: usize| ticks.get(i).copied().unwrap_or(0.0);
            // user nice system idle iowait irq softirq steal guest guest_nice
            let busy = column(0) + column(1) + column(2) + column(5) + column(6);
            Some(CoreTimes { core, busy_seconds: busy / ticks_per_second, steal_seconds: column(7) / ticks_per_second })
        })
        .collect()
}

/// Every online core's cumulative times, now.
pub fn sample_cores() -> std::io::Result<Vec<CoreTimes>> {
    Ok(parse_proc_stat(&std::fs::read_to_string("/proc/stat")?, clock_ticks_per_second()))
}

/// What each core did between two [`sample_cores`] readings (cores present in both).
pub fn core_deltas(before: &[CoreTimes], after: &[CoreTimes]) -> Vec<CoreTimes> {
    after
        .iter()
        .filter_map(|end| {
            let start = before.iter().find(|s| s.core == end.core)?;
            Some(CoreTimes {
                core: end.core,
                busy_seconds: (end.busy_seconds - start.busy_seconds).max(0.0),
                steal_seconds: (end.steal_seconds - start.steal_seconds).max(0.0),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_after_a_command_name_with_spaces() {
        let stat = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 100 1000 200";
        assert_eq!(parse_cpu_seconds(stat, 100.0), Some(3.0));
        assert_eq!(parse_start_time(stat), Some(100));
        assert_eq!(parse_cpu_seconds("garbage", 100.0), None);
        assert!(!parse_exited(stat), "sleeping (S) is alive");
        assert!(parse_exited(&stat.replace(") S ", ") Z ")), "a zombie has exited");
    }

    #[test]
    fn a_process_that_exited_is_told_from_a_running_one() {
        assert!(!exited(std::process::id()));
        assert!(exited(u32::MAX), "no such process");
        let mut child = std::process::Command::new("true").spawn().expect("true runs");
        let pid = child.id();
        // Not reaped yet: a zombie.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !exited(pid) {
            assert!(std::time::Instant::now() < deadline, "`true` exits");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        child.wait().expect("reaped");
        assert!(exited(pid), "reaped: gone");
    }

    #[test]
    fn a_process_start_time_is_read_and_stays_the_same() {
        let me = std::process::id();
        let first = start_time(me).expect("readable");
        assert_eq!(start_time(me).expect("readable"), first);
        assert!(start_time(u32::MAX).is_err(), "no such process");
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
    fn pss_is_read_from_smaps_rollup_in_bytes() {
        let rollup = "5634ff623000-7ffd88ef4000 ---p 00000000 00:00 0                          [rollup]\n\
                      Rss:                1704 kB\n\
                      Pss:                 412 kB\n\
                      Pss_Dirty:           116 kB\n\
                      Pss_Anon:            116 kB\n\
                      Shared_Clean:       1528 kB\n";
        assert_eq!(parse_pss(rollup), Some(412 * 1024), "Pss, not Pss_Dirty or Pss_Anon");
        assert_eq!(parse_pss("Rss: 1704 kB\n"), None);
        assert!(pss(None).expect("/proc/self/smaps_rollup is readable") > 0);
    }

    #[test]
    fn busy_and_steal_time_are_read_per_core_from_proc_stat() {
        let stat = "cpu  356473 421 96119 298127 7296 0 6972 82 0 0\n\
                    cpu0 1000 10 300 5000 40 5 20 7 0 0\n\
                    cpu1 2000 0 500 4000 60 0 80 150 0 0\n\
                    intr 123456 0 0\n\
                    ctxt 98765\n";
        let cores = parse_proc_stat(stat, 100.0);
        assert_eq!(cores.len(), 2, "the aggregate line and the other counters are not cores");
        // busy = user + nice + system + irq + softirq; idle, iowait and steal are not busy.
        assert_eq!(cores[0], CoreTimes { core: 0, busy_seconds: 13.35, steal_seconds: 0.07 });
        assert_eq!(cores[1], CoreTimes { core: 1, busy_seconds: 25.8, steal_seconds: 1.5 });
        // A kernel without the steal column reads as no steal.
        let old = parse_proc_stat("cpu0 100 0 100 800\n", 100.0);
        assert_eq!(old, vec![CoreTimes { core: 0, busy_seconds: 2.0, steal_seconds: 0.0 }]);
    }

    #[test]
    fn core_deltas_pair_cores_by_number() {
        let before = [CoreTimes { core: 0, busy_seconds: 10.0, steal_seconds: 1.0 }];
        let after = [
            CoreTimes { core: 1, busy_seconds: 3.0, steal_seconds: 0.0 },
            CoreTimes { core: 0, busy_seconds: 14.5, steal_seconds: 1.25 },
        ];
        assert_eq!(core_deltas(&before, &after), vec![CoreTimes { core: 0, busy_seconds: 4.5, steal_seconds: 0.25 }]);
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
