//! Starting and stopping the system under test as real processes.
//!
//! [`Launcher::start`] runs an architecture (and [`Launcher::start_topology`] any topology) from
//! its release binaries (building them first if needed, `cargo` decides what is stale), on
//! loopback ports chosen before any process starts ([`crate::deployment`]; each process reports
//! the port it bound on its first line), with fresh databases, each process's output kept in the
//! run directory. [`SystemUnderTest::stop`] sends SIGTERM and then SIGKILL to every
//! process; dropping a [`SystemUnderTest`] (an error, a panic, Ctrl-C) kills them all, so no
//! child outlives the harness. Every binary started is hashed first ([`StartedBinaries`]), so
//! the results say exactly what ran.

pub mod balancer;
pub mod cgroup;
pub mod procstat;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use shop::Settings;
use shop::topology::{Module, ProcessSpec, Topology};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::deployment::{Deployment, free_ports, free_ports_for};
use crate::report::data::BinaryHash;
use crate::topology::{Architecture, create_postgres_database, drop_postgres_database, with_database};

/// Which cores the generator and the system under test may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoreLayout {
    /// Empty: not pinned.
    pub generator: Vec<usize>,
    pub system_under_test: Vec<usize>,
}

impl CoreLayout {
    /// With two or more cores: the generator on core 0, the system under test on the rest, so
    /// neither steals the other's CPU. With one core, or `pin == false`: no pinning.
    pub fn auto(pin: bool) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if pin && cores >= 2 && which("taskset") {
            Self { generator: vec![0], system_under_test: (1..cores).collect() }
        } else {
            Self { generator: vec![], system_under_test: vec![] }
        }
    }

    pub fn describe(&self) -> String {
        if self.generator.is_empty() {
            "not pinned (generator and system under test share all cores)".into()
        } else {
            format!(
                "generator on core(s) {:?}, system under test on core(s) {:?}",
                self.generator, self.system_under_test
            )
        }
    }

    /// Pins the calling thread to the generator's cores.
    pub fn pin_generator_thread(&self) {
        if let Some(core) = self.generator.first() {
            let _ = core_affinity::set_for_current(core_affinity::CoreId { id: *core });
        }
    }
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Where the databases of a run live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseChoice {
    /// SQLite files in the run directory.
    Sqlite,
    /// One fresh database per process on this PostgreSQL server, dropped afterwards.
    Postgres(String),
}

/// PostgreSQL databases created by the harness, dropped on every exit path (also Ctrl-C).
#[derive(Debug, Clone, Default)]
pub struct CreatedDatabases(Arc<Mutex<Vec<(String, String)>>>);

impl CreatedDatabases {
    fn add(&self, server_url: &str, name: &str) {
        self.0.lock().expect("lock").push((server_url.to_string(), name.to_string()));
    }

    pub async fn drop_all(&self) {
        let created = std::mem::take(&mut *self.0.lock().expect("lock"));
        for (server, name) in created {
            if let Err(err) = drop_postgres_database(&server, &name).await {
                eprintln!("warning: could not drop database {name}: {err:#}");
            }
        }
    }
}

/// The binaries a launcher started, by content (for the fingerprint). A file is hashed again
/// only when its size or modification time changed, so a sweep that restarts the same binary
/// (or stand-ins linked to one file) hashes it once, and one rebuilt in the middle of a run
/// shows both versions.
#[derive(Debug, Clone, Default)]
pub struct StartedBinaries(Arc<Mutex<StartedBinariesInner>>);

#[derive(Debug, Default)]
struct StartedBinariesInner {
    hashes: Vec<BinaryHash>,
    /// The files already hashed, and their SHA-256.
    seen: Vec<(FileVersion, String)>,
}

/// A file as hashed: canonical path, size, modification time.
type FileVersion = (PathBuf, u64, Option<std::time::SystemTime>);

impl StartedBinaries {
    /// Hashes `path` (started as `name`) unless this version of the file was hashed already.
    pub fn record(&self, name: &str, path: &Path) -> anyhow::Result<()> {
        let file = std::fs::canonicalize(path).with_context(|| format!("reading {}", path.display()))?;
        let metadata = std::fs::metadata(&file).with_context(|| format!("reading {}", path.display()))?;
        let version = (file, metadata.len(), metadata.modified().ok());
        let known = self.0.lock().expect("lock").seen.iter().find(|(v, _)| *v == version).map(|(_, h)| h.clone());
        let sha256 = match known {
            Some(sha256) => sha256,
            None => {
                let sha256 = crate::fingerprint::sha256_file(&version.0)
                    .with_context(|| format!("hashing {}", path.display()))?;
                self.0.lock().expect("lock").seen.push((version, sha256.clone()));
                sha256
            }
        };
        let hash = BinaryHash { name: name.to_string(), path: path.display().to_string(), sha256 };
        let mut inner = self.0.lock().expect("lock");
        if !inner.hashes.contains(&hash) {
            inner.hashes.push(hash);
        }
        Ok(())
    }

    /// Every binary started so far, in the order first started.
    pub fn list(&self) -> Vec<BinaryHash> {
        self.0.lock().expect("lock").hashes.clone()
    }
}

/// How to start systems under test.
#[derive(Debug, Clone)]
pub struct Launcher {
    /// Directory holding `monolith`, `gateway`, `accounts`, ... binaries.
    pub bin_dir: PathBuf,
    pub cores: CoreLayout,
    pub database: DatabaseChoice,
    pub created_databases: CreatedDatabases,
    /// How long a process may take to become ready (seeding included).
    pub ready_timeout: Duration,
    /// Where SQLite files go (a temporary directory: databases are not results).
    pub scratch: Arc<tempfile::TempDir>,
    /// Every binary started, hashed (for the fingerprint).
    pub binaries: StartedBinaries,
    /// A CPU budget for the whole system under test (every process, the balancer included),
    /// in cores: one cgroup quota over them all (`splitbench scale`); `None`: none.
    pub system_budget: Option<f64>,
}

/// The workspace's release binaries, built with cargo (which rebuilds only what is stale).
pub fn build_release_binaries() -> anyhow::Result<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("the bench crate is in a workspace")?;
    eprintln!("building release binaries of monolith and microservices (cargo skips what is fresh)...");
    let status = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        // The same package set as `cargo run --release -p bench` resolves features for, so
        // nothing is rebuilt with different features.
        .args(["build", "--release", "--quiet", "-p", "bench", "-p", "monolith", "-p", "microservices", "--bins"])
        .current_dir(workspace)
        .status()
        .context("running cargo build (is cargo on PATH? otherwise pass --bin-dir)")?;
    anyhow::ensure!(status.success(), "cargo build --release failed");
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace.join("target"), PathBuf::from);
    Ok(target.join("release"))
}

/// Systems started by this process so far: numbers each start's log files.
static SYSTEMS_STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Where one started system's processes log: `logs/<start>-<architecture>-<process>.log`.
struct LogNames {
    dir: PathBuf,
    prefix: String,
}

impl LogNames {
    fn path_of(&self, process: &str) -> PathBuf {
        self.dir.join(format!("{}-{process}.log", self.prefix))
    }
}

/// One started process.
pub struct ChildProcess {
    pub name: String,
    /// What it runs: a shop binary, or the load balancer.
    program: Program,
    pub pid: u32,
    pub port: u16,
    pub log: PathBuf,
    /// The settings it was started with, its port fixed: a restart (a fault run's crash) brings
    /// it back where its callers expect it, on its own database.
    settings: Settings,
    /// How many times it was started again.
    pub restarts: u32,
    /// Killed and reaped (a fault run's crash, not restarted yet): its pid may belong to
    /// another process by now, so no signal goes to it.
    reaped: bool,
    child: Child,
}

/// A started system: an architecture, another topology, or the null server.
pub struct SystemUnderTest {
    /// What was started: the architecture's or topology's name (`monolith`, `catalog-reviews`).
    pub name: String,
    /// The architecture, if one was started (`None`: another topology).
    pub architecture: Option<Architecture>,
    /// Which process hosts which module (`None`: the null server, not a shop).
    pub topology: Option<Topology>,
    pub base_url: String,
    pub processes: Vec<ChildProcess>,
    /// Every process's database URL, by the topology's process name (replicas share their
    /// process's; the gateway and the null server have none), so the books can be checked
    /// before the scratch databases go.
    pub database_urls: BTreeMap<String, String>,
    /// The CPU budgets of the processes that have one (the topology's `@cores`).
    pub budgets: Vec<CpuBudget>,
}

/// Period of every CPU budget's quota: 10 ms, a tenth of the 100 ms container runtimes use by
/// default, so a process over its budget waits at most a few milliseconds for its next share
/// instead of up to 100 ms (which alone would dominate a p99). The smallest budget is then
/// 0.1 core (the kernel's smallest quota is 1 ms).
pub const BUDGET_PERIOD_US: u64 = 10_000;

/// The name of the budget of the whole system under test ([`Launcher::system_budget`]).
pub const SYSTEM_BUDGET: &str = "system";

static BUDGETS_MADE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// One process's CPU budget: `cores` of CPU time per period, enforced by a cgroup v1 quota
/// when this machine allows it (root, the `cpu` controller mounted).
#[derive(Debug)]
pub struct CpuBudget {
    pub process: String,
    pub cores: f64,
    /// The quota's group; `None`: the budget could not be enforced here.
    pub quota: Option<cgroup::CpuQuota>,
}

impl CpuBudget {
    /// Puts processes `pids` under one quota of `cores`, or says why it cannot (and runs
    /// without). `process` names the budget: a process, or [`SYSTEM_BUDGET`].
    fn apply(process: &str, pids: &[u32], cores: f64) -> anyhow::Result<Self> {
        let quota_us = Self::quota_us(process, cores)?;
        if !cgroup::CpuQuota::available() {
            eprintln!(
                "warning: {process}'s budget of {cores} core is NOT enforced (needs root and cgroup v1's cpu controller)"
            );
            return Ok(Self { process: process.to_string(), cores, quota: None });
        }
        let group: String = process.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        // Numbered: a system started while another stops must not meet its groups.
        let number = BUDGETS_MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut quota = cgroup::CpuQuota::create(&format!("budget{number}-{group}"))?;
        quota.limit(BUDGET_PERIOD_US, Some(quota_us))?;
        for &pid in pids {
            quota.add_process(pid)?;
        }
        Ok(Self { process: process.to_string(), cores, quota: Some(quota) })
    }

    /// The quota per period of a budget of `cores`; refused below the kernel's smallest.
    fn quota_us(process: &str, cores: f64) -> anyhow::Result<u64> {
        let quota_us = (cores * BUDGET_PERIOD_US as f64).round() as u64;
        anyhow::ensure!(
            quota_us >= cgroup::MIN_QUOTA_US,
            "{process}: a budget of {cores} core is below the smallest quota ({} µs per {} µs period)",
            cgroup::MIN_QUOTA_US,
            BUDGET_PERIOD_US
        );
        Ok(quota_us)
    }

    pub fn enforced(&self) -> bool {
        self.quota.is_some()
    }
}

impl Launcher {
    /// Starts `architecture` with `settings`, logging to `<run_dir>/logs/`.
    pub async fn start(
        &self,
        architecture: Architecture,
        settings: &Settings,
        run_dir: &Path,
    ) -> anyhow::Result<SystemUnderTest> {
        Ok(self.start_proxied(architecture, settings, run_dir, None).await?.0)
    }

    /// [`Launcher::start`], with every call to the module `proxied` (the microservices only)
    /// going through a fault proxy ([`crate::faults::proxy`], seeded with `seed`) in front of
    /// the process hosting it, which comes back with the system; it adds a loopback hop to
    /// those calls in every phase of the run.
    pub async fn start_proxied(
        &self,
        architecture: Architecture,
        settings: &Settings,
        run_dir: &Path,
        proxied: Option<(&str, u64)>,
    ) -> anyhow::Result<(SystemUnderTest, Option<crate::faults::proxy::Proxy>)> {
        anyhow::ensure!(
            proxied.is_none() || architecture == Architecture::Microservices,
            "only the microservices call between processes: nothing to proxy in the {}",
            architecture.name()
        );
        match architecture.topology() {
            Some(topology) => {
                let (mut sut, proxy) =
                    self.start_topology(architecture.name(), &topology, settings, run_dir, proxied).await?;
                sut.architecture = Some(architecture);
                Ok((sut, proxy))
            }
            None => {
                let mut settings = settings.clone();
                settings.server.host = "127.0.0.1".into();
                settings.server.port = Some(0);
                let logs = self.log_names(run_dir, architecture.name()).await?;
                let program = Program::Shop { binary: "null-server".into(), args: Vec::new() };
                let process = self.spawn("null-server", &program, &settings, logs.path_of("null-server")).await?;
                let sut = SystemUnderTest {
                    name: architecture.name().into(),
                    architecture: Some(architecture),
                    topology: None,
                    base_url: format!("http://127.0.0.1:{}", process.port),
                    processes: vec![process],
                    database_urls: BTreeMap::new(),
                    budgets: Vec::new(),
                };
                self.wait_until_ready(&sut).await?;
                Ok((sut, None))
            }
        }
    }

    /// Starts every process of `topology` (as [`Deployment::plan`] plans them) from the
    /// release binaries: each preset process from its own binary (`monolith`, `gateway`,
    /// `catalog`, ...), any other grouping from `shop-process --hosts <members>`. `name` names
    /// the logs and the system in results.
    pub async fn start_topology(
        &self,
        name: &str,
        topology: &Topology,
        settings: &Settings,
        run_dir: &Path,
        proxied: Option<(&str, u64)>,
    ) -> anyhow::Result<(SystemUnderTest, Option<crate::faults::proxy::Proxy>)> {
        for spec in &topology.processes {
            if let Some(cores) = spec.cores {
                CpuBudget::quota_us(&spec.process_name(), cores)?;
                // cgroup v1 membership is exclusive: a process's own group would take it out
                // of the system's.
                anyhow::ensure!(
                    self.system_budget.is_none(),
                    "{}: a budget per process (@{cores}) and one for the whole system do not combine",
                    spec.process_name()
                );
            }
        }
        let proxied_process = match proxied {
            Some((name, seed)) => {
                let module = Module::parse(name).with_context(|| format!("no module named {name} to proxy"))?;
                let host = topology.host_of(module);
                // One proxy fronts one process: the proxy stands for the whole host (every
                // module in it), and a host with replicas would send every call to one.
                anyhow::ensure!(
                    topology.processes[host].replicas == 1,
                    "a fault proxy fronts one process; {} has replicas",
                    topology.processes[host].process_name()
                );
                Some((host, seed))
            }
            None => None,
        };
        let listen = free_ports_for(topology)?;
        // The proxy listens first, so the plan can point the callers at it.
        let mut proxy = None;
        if let Some((index, seed)) = proxied_process {
            let upstream = std::net::SocketAddr::from(([127, 0, 0, 1], listen[index][0]));
            let started = crate::faults::proxy::Proxy::start(upstream, seed).await.with_context(|| {
                format!("starting the proxy in front of {}", topology.processes[index].process_name())
            })?;
            proxy = Some(started);
        }
        let proxy_port = proxy.as_ref().map(|p| p.port);
        let deployment = Deployment::plan(
            topology,
            settings,
            |index, replica| listen[index][replica as usize],
            |index, port| match (proxied_process, proxy_port) {
                (Some((proxied, _)), Some(proxy_port)) if proxied == index => proxy_port,
                _ => port,
            },
        )?;

        let logs = self.log_names(run_dir, name).await?;
        let databases = self.scratch.path().join(name);
        let mut sut = SystemUnderTest {
            name: name.to_string(),
            architecture: None,
            topology: Some(topology.clone()),
            base_url: format!("http://127.0.0.1:{}", deployment.edge().port),
            processes: Vec::new(),
            database_urls: BTreeMap::new(),
            budgets: Vec::new(),
        };
        // Each budgeted process (name, pid, cores), given its quota once all are ready.
        let mut budgeted = Vec::new();
        let edges: Vec<u16> = deployment.edge_replicas().map(|p| p.port).collect();
        for mut planned in deployment.processes {
            if !planned.spec.modules.is_empty() {
                // One database per process of the topology, its replicas' shared one.
                let key = planned.spec.process_name();
                let url = match sut.database_urls.get(&key) {
                    Some(url) => url.clone(),
                    None => self.database_url(&planned.database_name(), &databases).await?,
                };
                sut.database_urls.insert(key, url.clone());
                planned.settings.database.database_url = Some(url);
            }
            let log = logs.path_of(&planned.name);
            let process = self.spawn(&planned.name, &program_of(&planned.spec), &planned.settings, log).await?;
            if let Some(cores) = planned.spec.cores {
                budgeted.push((planned.name, process.pid, cores));
            }
            sut.processes.push(process);
        }
        // Replicas of the edge: HAProxy in front of them is the public entry point.
        if edges.len() > 1 {
            let port = free_ports(1)?[0];
            let config = logs.dir.join(format!("{}-haproxy.cfg", logs.prefix));
            balancer::write_config(&config, port, &edges)?;
            let program = Program::Balancer { config, port };
            let log = logs.path_of(balancer::PROCESS);
            sut.processes.push(self.spawn(balancer::PROCESS, &program, settings, log).await?);
            sut.base_url = format!("http://127.0.0.1:{port}");
        }
        self.wait_until_ready(&sut).await?;
        // Budgets start once every process is ready: seeding is not what they limit.
        if let Some(cores) = self.system_budget {
            let pids: Vec<u32> = sut.processes.iter().map(|p| p.pid).collect();
            sut.budgets.push(CpuBudget::apply(SYSTEM_BUDGET, &pids, cores)?);
        }
        for (name, pid, cores) in budgeted {
            sut.budgets.push(CpuBudget::apply(&name, &[pid], cores)?);
        }
        Ok((sut, proxy))
    }

    async fn log_names(&self, run_dir: &Path, system: &str) -> anyhow::Result<LogNames> {
        let dir = run_dir.join("logs");
        tokio::fs::create_dir_all(&dir).await?;
        // Numbered per start, so a system started later (the next sweep step) never overwrites
        // the logs of an earlier one (whose stall may be what failed its step).
        let start = SYSTEMS_STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        Ok(LogNames { dir, prefix: format!("{start:03}-{system}") })
    }

    async fn database_url(&self, process: &str, dir: &Path) -> anyhow::Result<String> {
        match &self.database {
            DatabaseChoice::Sqlite => {
                tokio::fs::create_dir_all(dir).await?;
                let file = dir.join(format!("{process}.db"));
                for suffix in ["", "-wal", "-shm"] {
                    let _ = tokio::fs::remove_file(format!("{}{suffix}", file.display())).await;
                }
                Ok(format!("sqlite:{}", file.display()))
            }
            DatabaseChoice::Postgres(server) => {
                // At most 11 + 24 + 1 + 7 + 1 + 8 bytes: within PostgreSQL's 63.
                let name = format!("splitbench_{process}_{}_{:x}", std::process::id(), rand::random::<u32>());
                create_postgres_database(server, &name).await?;
                self.created_databases.add(server, &name);
                with_database(server, &name)
            }
        }
    }

    async fn spawn(
        &self,
        name: &str,
        program: &Program,
        settings: &Settings,
        log_path: PathBuf,
    ) -> anyhow::Result<ChildProcess> {
        let (binary, args) = match program {
            Program::Shop { binary, args } => {
                let binary = binary.as_str();
                let path = self.bin_dir.join(binary);
                anyhow::ensure!(path.is_file(), "{} does not exist (build it, or pass --bin-dir)", path.display());
                self.binaries.record(binary, &path)?;
                let mut args = args.clone();
                args.extend(settings.to_args());
                (path, args)
            }
            Program::Balancer { config, .. } => {
                let path = balancer::haproxy_path()?;
                self.binaries.record(balancer::PROCESS, &path)?;
                (path, vec!["-db".into(), "-f".into(), config.display().to_string()])
            }
        };
        let mut command = if self.cores.system_under_test.is_empty() {
            Command::new(&binary)
        } else {
            let cores: Vec<String> = self.cores.system_under_test.iter().map(ToString::to_string).collect();
            let mut taskset = Command::new("taskset");
            taskset.arg("-c").arg(cores.join(",")).arg(&binary);
            taskset
        };
        let log = std::fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        command
            .args(&args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().with_context(|| format!("starting {}", binary.display()))?;
        let pid = child.id().context("a started child has a pid")?;
        let stderr = child.stderr.take().context("stderr is piped")?;
        let mut lines = BufReader::new(stderr).lines();
        let mut log = tokio::fs::File::from_std(log);

        // The first line a shop process prints says where it listens; the balancer listens
        // where its configuration says.
        let announce = tokio::time::timeout(self.ready_timeout, async {
            if let Program::Balancer { port, .. } = program {
                return Ok(Some(*port));
            }
            while let Some(line) = lines.next_line().await? {
                log.write_all(format!("{line}\n").as_bytes()).await?;
                if let Some(port) = listening_port(&line) {
                    return Ok(Some(port));
                }
            }
            anyhow::Ok(None)
        })
        .await;
        let port = match announce {
            Ok(Ok(Some(port))) => port,
            Ok(Ok(None)) => anyhow::bail!("{name} exited before listening; see {}", log_path.display()),
            Ok(Err(err)) => return Err(err.context(format!("reading {name}'s output"))),
            Err(_) => anyhow::bail!("{name} did not start listening within {:?}", self.ready_timeout),
        };
        // Keep copying its output into the log until it exits.
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if log.write_all(format!("{line}\n").as_bytes()).await.is_err() {
                    break;
                }
            }
        });
        let mut settings = settings.clone();
        settings.server.port = Some(port);
        Ok(ChildProcess {
            name: name.to_string(),
            program: program.clone(),
            pid,
            port,
            log: log_path,
            settings,
            restarts: 0,
            reaped: false,
            child,
        })
    }

    /// Starts `sut`'s process `name` again, after it died: the same binary, settings, port and
    /// database, its output in a log of its own (`...-restart1.log`); returns once it is ready.
    pub async fn restart(&self, sut: &mut SystemUnderTest, name: &str) -> anyhow::Result<()> {
        let index = sut.index_of(name)?;
        let old = &sut.processes[index];
        let restarts = old.restarts + 1;
        let log = old.log.with_file_name(format!(
            "{}-restart{restarts}.log",
            old.log.file_stem().and_then(|s| s.to_str()).unwrap_or(name)
        ));
        let (name, program, settings) = (old.name.clone(), old.program.clone(), old.settings.clone());
        let mut process = self.spawn(&name, &program, &settings, log).await?;
        process.restarts = restarts;
        // The new process keeps its predecessor's budget (its own, or the whole system's).
        for budget in sut.budgets.iter_mut().filter(|b| b.process == name || b.process == SYSTEM_BUDGET) {
            if let Some(quota) = budget.quota.as_mut() {
                quota.add_process(process.pid)?;
            }
        }
        sut.processes[index] = process;
        let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
        self.wait_until_ready_one(&client, &sut.processes[index], Instant::now() + self.ready_timeout).await
    }

    async fn wait_until_ready(&self, sut: &SystemUnderTest) -> anyhow::Result<()> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
        let deadline = Instant::now() + self.ready_timeout;
        for process in &sut.processes {
            self.wait_until_ready_one(&client, process, deadline).await?;
        }
        Ok(())
    }

    async fn wait_until_ready_one(
        &self,
        client: &reqwest::Client,
        process: &ChildProcess,
        deadline: Instant,
    ) -> anyhow::Result<()> {
        let url = format!("http://127.0.0.1:{}/ready", process.port);
        loop {
            if client.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            // A process that died (HAProxy refusing its configuration, a shop process failing
            // after its first line) will never be ready: say so now, not at the deadline.
            anyhow::ensure!(
                !procstat::exited(process.pid),
                "{} exited while starting; see {}",
                process.name,
                process.log.display()
            );
            anyhow::ensure!(
                Instant::now() < deadline,
                "{} was not ready within {:?}; see {}",
                process.name,
                self.ready_timeout,
                process.log.display()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// What a started process runs.
#[derive(Debug, Clone)]
enum Program {
    /// A binary of the bin directory, with these arguments before the shop's settings.
    Shop { binary: String, args: Vec<String> },
    /// HAProxy with this configuration, listening on `port`.
    Balancer { config: PathBuf, port: u16 },
}

/// The binary that runs a process hosting `spec`: the presets' processes have binaries of their
/// own, any other grouping runs `shop-process --hosts <members>`.
fn program_of(spec: &ProcessSpec) -> Program {
    // A preset process's name (`monolith`, `gateway`, `catalog`) is its binary's; a grouping's
    // (`catalog+reviews`) is its members.
    let name = spec.process_name();
    if name.contains('+') {
        Program::Shop { binary: "shop-process".into(), args: vec!["--hosts".into(), name] }
    } else {
        Program::Shop { binary: name, args: Vec::new() }
    }
}

/// The port in a start-up line such as `catalog: listening on 127.0.0.1:41235; workers=1 ...`.
pub fn listening_port(line: &str) -> Option<u16> {
    let rest = &line[line.find("listening on ")? + "listening on ".len()..];
    let address = rest.split([';', ' ']).next()?;
    address.rsplit_once(':')?.1.parse().ok()
}

impl SystemUnderTest {
    /// The URL of the database holding `module`'s tables (`None` for the null server).
    pub fn database_of(&self, module: Module) -> Option<&str> {
        let topology = self.topology.as_ref()?;
        self.database_urls.get(&topology.host(module).process_name()).map(String::as_str)
    }

    /// Resource samples of every process, by name.
    pub fn sample(&self) -> Vec<(String, procstat::ProcessSample)> {
        self.processes.iter().filter_map(|p| procstat::sample(Some(p.pid)).ok().map(|s| (p.name.clone(), s))).collect()
    }

    fn index_of(&self, name: &str) -> anyhow::Result<usize> {
        self.processes
            .iter()
            .position(|p| p.name == name)
            .with_context(|| format!("no process {name} in the {}", self.name))
    }

    /// The pid of the process `name`.
    pub fn pid_of(&self, name: &str) -> anyhow::Result<u32> {
        let process = &self.processes[self.index_of(name)?];
        anyhow::ensure!(!process.reaped, "{name} was killed and not restarted");
        Ok(process.pid)
    }

    /// The port and service credential of the process `name`, for its admin routes.
    pub fn admin_of(&self, name: &str) -> anyhow::Result<(u16, String)> {
        let process = &self.processes[self.index_of(name)?];
        anyhow::ensure!(process.settings.server.faults_enabled, "{name} was started without --faults-enabled");
        Ok((process.port, process.settings.security.service_token.clone()))
    }

    /// Sends `signal` to the process `name` (a fault run's SIGSTOP and SIGCONT).
    pub fn signal(&self, name: &str, signal: Signal) -> anyhow::Result<()> {
        let pid = self.pid_of(name)?;
        kill(Pid::from_raw(pid as i32), signal).with_context(|| format!("sending {signal} to {name}"))
    }

    /// Kills the process `name` with SIGKILL (no chance to clean up, as a crash) and waits until
    /// it is gone, so its port is free for [`Launcher::restart`].
    pub async fn kill_process(&mut self, name: &str) -> anyhow::Result<()> {
        let index = self.index_of(name)?;
        let process = &mut self.processes[index];
        process.child.start_kill().with_context(|| format!("killing {name}"))?;
        process.child.wait().await.with_context(|| format!("waiting for {name} to die"))?;
        process.reaped = true;
        Ok(())
    }

    /// Stops every process: SIGTERM, up to 5 s to finish, then SIGKILL. A frozen process
    /// (a fault run's SIGSTOP) is thawed first, or it could not act on SIGTERM.
    pub async fn stop(mut self) {
        for process in self.processes.iter().filter(|p| !p.reaped) {
            let _ = kill(Pid::from_raw(process.pid as i32), Signal::SIGCONT);
            let _ = kill(Pid::from_raw(process.pid as i32), Signal::SIGTERM);
        }
        for process in &mut self.processes {
            if tokio::time::timeout(Duration::from_secs(5), process.child.wait()).await.is_err() {
                let _ = process.child.kill().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_is_read_from_the_start_up_line() {
        assert_eq!(listening_port("catalog: listening on 127.0.0.1:41235; workers=1 db_pool_size=4"), Some(41235));
        assert_eq!(listening_port("[INFO] something else"), None);
    }

    #[test]
    fn a_started_binary_is_hashed_once_per_version() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("monolith");
        std::fs::write(&path, b"abc").expect("written");
        let started = StartedBinaries::default();
        started.record("monolith", &path).expect("hashed");
        started.record("monolith", &path).expect("hashed");
        let list = started.list();
        assert_eq!(list.len(), 1, "the same version once: {list:?}");
        assert_eq!(list[0].sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        // Rebuilt during the run (another size): both versions are listed.
        std::fs::write(&path, b"abcd").expect("written");
        started.record("monolith", &path).expect("hashed");
        assert_eq!(started.list().len(), 2);
        // A stand-in linked to the same file is listed under its name, with the same hash.
        let link = dir.path().join("gateway");
        std::os::unix::fs::symlink(&path, &link).expect("a link");
        started.record("gateway", &link).expect("hashed");
        let list = started.list();
        assert_eq!((list.len(), list[2].name.as_str(), &list[2].sha256), (3, "gateway", &list[1].sha256));
        assert!(started.record("orders", &dir.path().join("orders")).is_err(), "a missing binary");
    }

    #[test]
    fn the_core_layout_is_described() {
        let pinned = CoreLayout { generator: vec![0], system_under_test: vec![1] };
        assert!(pinned.describe().contains("generator on core(s) [0]"));
        assert!(CoreLayout { generator: vec![], system_under_test: vec![] }.describe().contains("not pinned"));
    }
}
