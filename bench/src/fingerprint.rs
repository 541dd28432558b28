//! The environment a run measured: code, build, machine. Stored with every result.
//!
//! Beside the commit, the SHA-256 of every binary that ran says what was measured (a checkout
//! builds differently with other flags or toolchains, or with uncommitted changes), and the
//! kernel command line and CPU topology say on what (`isolcpus`, `mitigations`, SMT siblings
//! sharing a physical core, the clock).

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::report::data::{BinaryHash, CpuCore, CpuTopology, Fingerprint};

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
        // The harness itself; the launcher adds what it starts.
        binaries: std::env::current_exe()
            .ok()
            .and_then(|exe| hash_binary("splitbench", &exe).ok())
            .into_iter()
            .collect(),
        kernel_cmdline: std::fs::read_to_string("/proc/cmdline").ok().map(|s| s.trim().to_string()),
        cpu_topology: cpu_topology(),
    }
}

/// The SHA-256 of a file's contents, in lower-case hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// `path` under `name`, hashed.
pub fn hash_binary(name: &str, path: &Path) -> std::io::Result<BinaryHash> {
    Ok(BinaryHash { name: name.to_string(), path: path.display().to_string(), sha256: sha256_file(path)? })
}

/// One `processor` block of `/proc/cpuinfo`, before the SMT siblings are added from `/sys`.
pub fn parse_cpuinfo(cpuinfo: &str) -> Vec<CpuCore> {
    cpuinfo
        .split("\n\n")
        .filter_map(|block| {
            let field = |name: &str| {
                block.lines().find_map(|line| {
                    let (key, value) = line.split_once(':')?;
                    (key.trim() == name).then(|| value.trim().to_string())
                })
            };
            Some(CpuCore {
                cpu: field("processor")?.parse().ok()?,
                // x86 says `model name`; some ARM kernels only `CPU part` and friends.
                model: field("model name").or_else(|| field("Processor")).unwrap_or_else(|| "unknown".into()),
                mhz: field("cpu MHz").and_then(|v| v.parse().ok()),
                package: field("physical id").and_then(|v| v.parse().ok()),
                core_id: field("core id").and_then(|v| v.parse().ok()),
                smt_siblings: None,
            })
        })
        .collect()
}

/// Online CPUs and what each one is, from `/proc/cpuinfo` and `/sys/devices/system/cpu`.
fn cpu_topology() -> Option<CpuTopology> {
    let sys = Path::new("/sys/devices/system/cpu");
    let online = std::fs::read_to_string(sys.join("online")).map_or_else(|_| "unknown".into(), |s| s.trim().into());
    let mut cores = parse_cpuinfo(&std::fs::read_to_string("/proc/cpuinfo").ok()?);
    for core in &mut cores {
        let siblings = sys.join(format!("cpu{}/topology/thread_siblings_list", core.cpu));
        core.smt_siblings = std::fs::read_to_string(siblings).ok().map(|s| s.trim().to_string());
    }
    Some(CpuTopology { online, cores })
}

/// One line for the report: online CPUs, then each distinct model and clock, and which CPUs
/// share a physical core.
pub fn describe_topology(topology: &CpuTopology) -> String {
    let cpus: Vec<String> = topology
        .cores
        .iter()
        .map(|c| {
            let mhz = c.mhz.map_or_else(String::new, |m| format!(" @ {m:.0} MHz"));
            let siblings = match c.smt_siblings.as_deref() {
                Some(list) if list != c.cpu.to_string() => format!(", SMT siblings {list}"),
                Some(_) => ", no SMT sibling".to_string(),
                None => String::new(),
            };
            format!("cpu{}: {}{mhz}{siblings}", c.cpu, c.model)
        })
        .collect();
    format!("online {}; {}", topology.online, cpus.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_files_hash_is_its_sha256() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let abc = dir.path().join("abc");
        std::fs::write(&abc, b"abc").expect("written");
        // FIPS 180-2's example, and the empty input.
        assert_eq!(
            sha256_file(&abc).expect("hashed"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let empty = dir.path().join("empty");
        std::fs::write(&empty, b"").expect("written");
        let hash = hash_binary("empty", &empty).expect("hashed");
        assert_eq!(hash.sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(hash.name, "empty");
        assert!(sha256_file(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn a_hash_spanning_several_reads_is_the_whole_files() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let big = dir.path().join("big");
        // 3 MiB of 'a' (three reads of the 1 MiB buffer); compare with hashing it in one go.
        let contents = vec![b'a'; 3 << 20];
        std::fs::write(&big, &contents).expect("written");
        let whole: String = Sha256::digest(&contents).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(sha256_file(&big).expect("hashed"), whole);
    }

    #[test]
    fn each_cpu_of_cpuinfo_is_read_with_its_model_clock_and_core() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\ncpu MHz\t\t: 2596.098\n\
                       physical id\t: 0\nsiblings\t: 2\ncore id\t\t: 0\n\n\
                       processor\t: 1\nmodel name\t: AMD EPYC\ncpu MHz\t\t: 2596.098\nphysical id\t: 0\ncore id\t\t: 1\n\n";
        let cores = parse_cpuinfo(cpuinfo);
        assert_eq!(cores.len(), 2);
        assert_eq!(
            cores[1],
            CpuCore {
                cpu: 1,
                model: "AMD EPYC".into(),
                mhz: Some(2596.098),
                package: Some(0),
                core_id: Some(1),
                smt_siblings: None
            }
        );
        // A block without a clock or core ids (some VMs and ARM kernels).
        let bare = parse_cpuinfo("processor\t: 3\nmodel name\t: Some CPU\n");
        assert_eq!((bare[0].cpu, bare[0].mhz, bare[0].core_id), (3, None, None));
    }

    #[test]
    fn the_topology_line_names_smt_siblings() {
        let core = |cpu, siblings: &str| CpuCore {
            cpu,
            model: "X".into(),
            mhz: Some(2000.4),
            package: Some(0),
            core_id: Some(0),
            smt_siblings: Some(siblings.into()),
        };
        let topology = CpuTopology { online: "0-2".into(), cores: vec![core(0, "0,2"), core(1, "1"), core(2, "0,2")] };
        let line = describe_topology(&topology);
        assert!(
            line.starts_with("online 0-2; cpu0: X @ 2000 MHz, SMT siblings 0,2; cpu1: X @ 2000 MHz, no SMT sibling"),
            "{line}"
        );
    }

    #[test]
    fn this_machine_has_a_topology_and_a_kernel_command_line() {
        let f = collect();
        let topology = f.cpu_topology.expect("/proc/cpuinfo is readable");
        assert!(!topology.cores.is_empty());
        assert!(f.kernel_cmdline.is_some());
        assert_eq!(f.binaries.first().map(|b| (b.name.as_str(), b.sha256.len())), Some(("splitbench", 64)));
    }
}
