//! CPU quotas through cgroup v1's `cpu` controller (`/sys/fs/cgroup/cpu`), as container runtimes
//! set them: in every `cpu.cfs_period_us` the group's threads may run `cpu.cfs_quota_us` in
//! total, then wait for the next period. A fault run uses one to starve a process (the trigger
//! of metastable failures in Huang et al., OSDI '22). Needs root and a mounted v1 `cpu`
//! hierarchy; [`CpuQuota::available`] says whether this machine has both.

use std::path::{Path, PathBuf};

use anyhow::Context;

const CPU_ROOT: &str = "/sys/fs/cgroup/cpu";

/// The smallest quota the kernel accepts, in microseconds.
pub const MIN_QUOTA_US: u64 = 1000;

/// A cgroup of the `cpu` controller made by this run, removed on drop (its processes moved
/// back to the groups they came from first).
#[derive(Debug)]
pub struct CpuQuota {
    dir: PathBuf,
    /// Each process moved in, and the group it came from.
    origins: Vec<(u32, PathBuf)>,
}

/// The group's throttling counters (`cpu.stat`): evidence the quota bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Throttling {
    /// Periods in which the group had runnable threads.
    pub periods: u64,
    /// Of those, periods in which it ran out of quota.
    pub throttled_periods: u64,
    /// Time its threads waited for the next period, nanoseconds.
    pub throttled_ns: u64,
}

impl CpuQuota {
    /// Whether quotas can be set here: the v1 `cpu` hierarchy is mounted and writable.
    pub fn available() -> bool {
        let root = Path::new(CPU_ROOT);
        // Opening the root group's process list for writing succeeds only with the right to
        // move processes between groups (root); nothing is written.
        root.join("cpu.cfs_quota_us").is_file()
            && std::fs::OpenOptions::new().write(true).open(root.join("cgroup.procs")).is_ok()
    }

    /// Makes the group `splitbench-<this process's pid>-<name>`.
    pub fn create(name: &str) -> anyhow::Result<Self> {
        anyhow::ensure!(
            Self::available(),
            "CPU quotas need root and cgroup v1's cpu controller at {CPU_ROOT} (not available here)"
        );
        let dir = Path::new(CPU_ROOT).join(format!("splitbench-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self { dir, origins: Vec::new() })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Moves process `pid` (every thread of it) into the group, remembering where it was.
    pub fn add_process(&mut self, pid: u32) -> anyhow::Result<()> {
        let origin = cpu_group_of(pid)?;
        write(&self.dir.join("cgroup.procs"), &pid.to_string())?;
        self.origins.push((pid, origin));
        Ok(())
    }

    /// Limits the group to `quota_us` of CPU time in every `period_us` (`None`: no limit).
    pub fn limit(&self, period_us: u64, quota_us: Option<u64>) -> anyhow::Result<()> {
        // Lift the quota first: a period below the current quota would be refused.
        write(&self.dir.join("cpu.cfs_quota_us"), "-1")?;
        write(&self.dir.join("cpu.cfs_period_us"), &period_us.to_string())?;
        if let Some(quota) = quota_us {
            anyhow::ensure!(quota >= MIN_QUOTA_US, "a CPU quota is at least {MIN_QUOTA_US} µs per period");
            write(&self.dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
        }
        Ok(())
    }

    /// The period and quota as the kernel has them (`None`: unlimited).
    pub fn read_limit(&self) -> anyhow::Result<(u64, Option<u64>)> {
        let period: u64 = read(&self.dir.join("cpu.cfs_period_us"))?.parse()?;
        let quota: i64 = read(&self.dir.join("cpu.cfs_quota_us"))?.parse()?;
        Ok((period, u64::try_from(quota).ok()))
    }

    pub fn throttling(&self) -> anyhow::Result<Throttling> {
        let mut t = Throttling::default();
        for line in read(&self.dir.join("cpu.stat"))?.lines() {
            let mut parts = line.split_whitespace();
            let (Some(key), Some(value)) = (parts.next(), parts.next().and_then(|v| v.parse().ok())) else {
                continue;
            };
            match key {
                "nr_periods" => t.periods = value,
                "nr_throttled" => t.throttled_periods = value,
                "throttled_time" => t.throttled_ns = value,
                _ => {}
            }
        }
        Ok(t)
    }

    /// The pids in the group.
    pub fn processes(&self) -> anyhow::Result<Vec<u32>> {
        Ok(read(&self.dir.join("cgroup.procs"))?.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }
}

impl Drop for CpuQuota {
    fn drop(&mut self) {
        // A group with processes in it cannot be removed: hand them back to where they were
        // (or the root group, for a process that came in some other way).
        let _ = self.limit(100_000, None);
        if let Ok(pids) = self.processes() {
            for pid in pids {
                let origin = self
                    .origins
                    .iter()
                    .find(|(p, _)| *p == pid)
                    .map_or_else(|| PathBuf::from(CPU_ROOT), |(_, origin)| origin.clone());
                let _ = write(&origin.join("cgroup.procs"), &pid.to_string());
            }
        }
        if let Err(err) = std::fs::remove_dir(&self.dir) {
            eprintln!("warning: could not remove {}: {err}", self.dir.display());
        }
    }
}

/// The directory of `pid`'s group in the v1 `cpu` hierarchy, from `/proc/<pid>/cgroup`
/// (a line such as `4:cpu:/some/group`; the controller may share a line, `cpu,cpuacct`).
fn cpu_group_of(pid: u32) -> anyhow::Result<PathBuf> {
    let text = read(Path::new(&format!("/proc/{pid}/cgroup")))?;
    let relative = text
        .lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, ':').skip(1);
            fields.next().zip(fields.next())
        })
        .find(|(controllers, _)| controllers.split(',').any(|c| c == "cpu"))
        .map(|(_, path)| path.trim_start_matches('/').to_string())
        .with_context(|| format!("process {pid} is in no cpu cgroup"))?;
    Ok(Path::new(CPU_ROOT).join(relative))
}

fn write(path: &Path, value: &str) -> anyhow::Result<()> {
    std::fs::write(path, value).with_context(|| format!("writing {value} to {}", path.display()))
}

fn read(path: &Path) -> anyhow::Result<String> {
    Ok(std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A child that is killed however the test ends.
    struct Busy(std::process::Child);

    impl Drop for Busy {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// Runs where quotas can be set (as root: CI); elsewhere it says it did not.
    #[test]
    fn a_quota_is_applied_read_back_and_the_group_removed_with_its_process_handed_back() {
        if !CpuQuota::available() {
            eprintln!("skipped: CPU quotas need root and cgroup v1's cpu controller");
            return;
        }
        let busy =
            Busy(std::process::Command::new("sh").args(["-c", "while :; do :; done"]).spawn().expect("a busy child"));
        let pid = busy.0.id();
        let origin = cpu_group_of(pid).expect("its group");
        let dir;
        {
            let mut group = CpuQuota::create("test-quota").expect("a group");
            dir = group.path().to_path_buf();
            group.add_process(pid).expect("moved in");
            group.limit(10_000, Some(1_000)).expect("limited");
            assert_eq!(group.read_limit().expect("read back"), (10_000, Some(1_000)));
            assert_eq!(group.processes().expect("listed"), vec![pid]);
            assert_eq!(cpu_group_of(pid).expect("its group"), dir);
            // A busy loop at 10% of a core runs out of quota in its first periods.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while group.throttling().expect("cpu.stat").throttled_periods == 0 {
                assert!(std::time::Instant::now() < deadline, "never throttled");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            assert!(group.limit(10_000, Some(10)).is_err(), "below the kernel's minimum");
        }
        assert!(!dir.exists(), "the group is removed on drop");
        assert_eq!(cpu_group_of(pid).expect("its group"), origin, "the process is back where it was");
    }

    #[test]
    fn a_process_s_cpu_group_is_read_from_proc() {
        let own = cpu_group_of(std::process::id()).expect("this process has a cpu group");
        assert!(own.starts_with(CPU_ROOT), "{}", own.display());
    }
}
