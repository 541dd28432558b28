//! The `splitbench` command line: flags in, an experiment plan out, results written.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::analyse::{Objective, Resolution, Threshold, parse_duration_us};
use crate::drive::{Arrivals, ClosedLoop, Mix, OpenLoop, Window};
use crate::experiment::{DEFAULT_SWEEP_RATES, Load, Plan, SaturationPlan, SweepGrid};
use crate::launch::{CoreLayout, CreatedDatabases, DatabaseChoice, Launcher};
use crate::record::Endpoint;
use crate::report::data::{RunConfig, RunData, SCHEMA_VERSION};
use crate::topology::Architecture;

#[derive(Debug, Parser)]
#[command(version, about = "Measure what splitting a monolith into microservices costs and buys")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The main job: a rate sweep and a head-to-head run of both architectures, one report.
    Compare(BenchArgs),
    /// One head-to-head run at a fixed rate (or closed loop with --users).
    Run(BenchArgs),
    /// Only the rate sweep: each architecture's maximum sustainable rate.
    Sweep(BenchArgs),
    /// Rebuild report.md and the plots of a results directory from its raw data (run.json), or
    /// a fault run's faults.md, timelines and plots from its faults.json.
    Report {
        /// A results directory (holding run.json).
        dir: PathBuf,
        /// Exit 3 when the head-to-head measurements breach this, e.g. p99=50ms or errors=1%.
        /// Latency thresholds judge every request, failures included.
        #[arg(long)]
        threshold: Vec<String>,
        /// Count degraded answers as successes for the thresholds (a run recorded with
        /// --degraded-ok counts them so anyway).
        #[arg(long)]
        degraded_ok: bool,
    },
    /// Record the last `cargo bench` run (target/criterion) under results/ with its environment.
    CriterionReport {
        /// criterion's output directory.
        #[arg(long, default_value = "target/criterion")]
        criterion_dir: PathBuf,
        /// Where run directories go.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Name of the run directory (default: a timestamp and "cargo-bench").
        #[arg(long)]
        run_id: Option<String>,
        /// The command that produced the benchmarks, for the report.
        #[arg(long, default_value = "cargo bench -p bench --bench costs")]
        command: String,
    },
    /// Check the shop's books in its databases (stock, reservations, charges, orders) once it
    /// is quiet; exit 4 if an invariant is violated.
    Check(CheckArgs),
    /// Fault runs: the same fault aimed at the same module of both architectures under the same
    /// steady load; what the users saw (per 100 ms), the blast radius, the time to recover, and
    /// the books afterwards.
    Faults(FaultsArgs),
    /// Capacity against the CPU budget of the system under test, for several topologies
    /// (replicas, groupings): capacity per core, scaling efficiency, CPU and memory per
    /// request, a Universal Scalability Law fit per topology.
    Scale(ScaleArgs),
    /// Start both architectures in-process and show the same product page from each.
    Demo {
        #[arg(long, default_value_t = 1)]
        product: i64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ArchitectureChoice {
    Both,
    Monolith,
    Microservices,
    /// Not the shop: a minimal HTTP server that answers every request with 200 (`--mix health`
    /// only), to measure the generator's own ceiling.
    NullServer,
}

/// `splitbench scale`: budgets and scenarios, then the flags `run` takes (`--mix`, `--db`,
/// `--saturation-users`, `--saturation-duration`, ...).
#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// Total CPU budgets of the system under test, in cores (each at least 0.1: the kernel's
    /// smallest quota in the 10 ms period).
    #[arg(long, value_delimiter = ',', default_value = "0.2,0.4,0.6,0.8")]
    pub budgets: Vec<f64>,
    /// Scenarios: monolith (one process), monolith-replicated, microservices,
    /// microservices-hottest (the process with the most CPU in a calibration window
    /// replicated), microservices-even (every process replicated), catalog-reviews,
    /// all-but-orders, or name=topology with `{n}` for the replica count
    /// (`cat=catalog*{n}|rest`).
    #[arg(long, value_delimiter = ',', default_values_t = crate::scale::DEFAULT_SCENARIOS.map(String::from))]
    pub scenario: Vec<String>,
    /// Cores of budget per replica in the replicated scenarios (replicas = budget / this,
    /// rounded, at least 1).
    #[arg(long, default_value_t = 0.2)]
    pub replica_cores: f64,
    /// Saturation rounds per point (6 or more give the median a 95% interval); it replaces
    /// --saturation-rounds here.
    #[arg(long, default_value_t = 6)]
    pub rounds: u32,
    #[command(flatten)]
    pub bench: BenchArgs,
}

/// A `--topology` value: `name=description`, or a preset's name or a description (named by
/// itself).
pub fn parse_topology_arg(value: &str) -> anyhow::Result<Architecture> {
    let (name, description) = value.split_once('=').unwrap_or((value, value));
    anyhow::ensure!(!name.trim().is_empty(), "--topology {value}: an empty name");
    Architecture::topology_named(name.trim(), description.trim()).with_context(|| format!("--topology {value}"))
}

/// `splitbench faults`: the scenarios and their timing, then the flags `run` takes (`--rate`,
/// `--mix`, `--arch`, `--db`, ...).
#[derive(Debug, Args)]
pub struct FaultsArgs {
    /// A scenario, fault:module; repeat for several. Faults: crash (SIGKILL, restart on the same
    /// port after --fault-for), hang (SIGSTOP for --fault-for, then SIGCONT), starve (a CPU
    /// quota of --starve-share; root and cgroup v1), db-outage (the module's database locked
    /// for writes on SQLite, closed on PostgreSQL); network faults on every call to the
    /// module's service, through a proxy with Toxiproxy's toxics (microservices only): latency
    /// (answers 100 ± 20 ms late), bandwidth (100 kB/s per connection), slicer (64 ± 16 byte
    /// segments),
    /// partition (nothing through, connections held), reset-peer (connections reset), drop
    /// (--drop-share of the packets lost, nftables; root); at the
    /// product page's seam, in both architectures (catalog, inventory or reviews only): slow
    /// (calls 200 ms later), failing (half the calls fail as a 503). Modules: accounts,
    /// catalog, inventory, reviews, payments, orders. Default: crash:inventory,
    /// hang:inventory, starve:catalog, db-outage:orders, drop:inventory.
    #[arg(long)]
    pub scenario: Vec<String>,
    /// The microservices' resilience profiles to compare, each a run of every scenario (the
    /// monolith makes no calls between processes: it runs once per scenario).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [
        shop::resilience::Resilience::None,
        shop::resilience::Resilience::NaiveRetries,
        shop::resilience::Resilience::Full,
    ])]
    pub resilience: Vec<shop::resilience::Resilience>,
    /// starve: the share of one core the process may use, in 50 ms periods (at least 2%).
    /// Several (2%,10%,25%) run each starve scenario once per share: with several
    /// --fault-for lengths too, the report draws a phase diagram of which runs recovered (a
    /// metastability experiment: the trigger's size against its length).
    #[arg(long, value_delimiter = ',', default_value = "2%")]
    pub starve_share: Vec<String>,
    /// drop: the share of TCP packets to and from the faulted service that is lost.
    #[arg(long, default_value = "5%")]
    pub drop_share: String,
    /// Steady load after the warm-up, before the fault.
    #[arg(long, default_value = "5s")]
    pub before: String,
    /// How long the fault is held; several (1s,3s,6s) run each scenario once per length.
    #[arg(long, value_delimiter = ',', default_value = "5s")]
    pub fault_for: Vec<String>,
    /// Load after the fault ends, to see whether and when the system recovers.
    #[arg(long, default_value = "10s")]
    pub after: String,
    #[command(flatten)]
    pub bench: BenchArgs,
}

/// Flags shared by `compare`, `run` and `sweep`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Which architecture(s) to measure.
    #[arg(long, value_enum, default_value = "both")]
    pub arch: ArchitectureChoice,
    /// Measure this topology instead of --arch (repeat for several): a preset (monolith,
    /// microservices, all-but-orders, catalog-reviews) or a description such as
    /// `catalog+reviews*2@0.3|rest`, optionally named `name=description`.
    #[arg(long)]
    pub topology: Vec<String>,
    /// A CPU budget for the whole system under test, in cores: one cgroup v1 quota (10 ms
    /// period) over all its processes (root; at least 0.1). `scale` sets its own per point.
    #[arg(long)]
    pub system_budget: Option<f64>,
    /// Offered rate of the head-to-head run, requests per second (open loop).
    #[arg(long, default_value_t = 500.0)]
    pub rate: f64,
    /// Closed loop instead: this many virtual users, each waiting for its answer.
    #[arg(long)]
    pub users: Option<usize>,
    /// Think time of each closed-loop user between requests.
    #[arg(long, default_value = "0ms")]
    pub think_time: String,
    #[arg(long, value_enum, default_value = "poisson")]
    pub arrivals: Arrivals,
    /// Measured window of the head-to-head run.
    #[arg(long, default_value = "15s")]
    pub duration: String,
    /// Unmeasured warm-up before it.
    #[arg(long, default_value = "3s")]
    pub warmup: String,
    /// Request mix: a profile (shop, read-only, product-page, checkout-heavy, health) or
    /// weights such as product_page=70,checkout=30.
    #[arg(long, default_value = "shop")]
    pub mix: String,
    /// Sweep rates, comma-separated, the same for every architecture (compare and sweep).
    /// Default: 0.7, 0.85, 0.95, 1.05, 1.2 and 1.4 times each architecture's median
    /// saturation throughput, or 1000,2000,3000,4000,5000,6000,8000 with --saturation-rounds 0.
    #[arg(long, value_delimiter = ',')]
    pub sweep_rates: Option<Vec<f64>>,
    /// Saturation stage of compare and sweep: this many rounds of one closed-loop window per
    /// architecture, back to back, each round on systems started afresh; the median of the
    /// rounds' ratios of throughput and of CPU per request is the run's headline. 0: none.
    #[arg(long, default_value_t = 10)]
    pub saturation_rounds: u32,
    /// Closed-loop users of each saturation window: enough to keep the system's core busy.
    #[arg(long, default_value_t = 64)]
    pub saturation_users: usize,
    /// Measured window of each saturation window.
    #[arg(long, default_value = "2s")]
    pub saturation_duration: String,
    /// Unmeasured warm-up before each saturation window (the users' connections open in it).
    #[arg(long, default_value = "500ms")]
    pub saturation_warmup: String,
    /// Measured window of each sweep step.
    #[arg(long, default_value = "5s")]
    pub sweep_duration: String,
    /// Warm-up of each sweep step: the rate ramps up over its first half and holds for the
    /// second. 4 s because a fresh system's catalog answered its first seconds at full rate
    /// slowly (p50 over 200 ms in the first measured second after a 2 s warm-up, at 75% of
    /// capacity), and near capacity such a start tipped the microservices into a backlog they
    /// never drained (results/20261127T133101Z-compare, 2,500 requests/s).
    #[arg(long, default_value = "4s")]
    pub sweep_warmup: String,
    /// After the grid, bisect between the highest passing and the lowest failing rate until
    /// they are this close: a share of the passing rate (5%) or requests per second (50).
    /// Finer buys little: near its knee a system passes an attempt with a probability that
    /// falls over a band wider than 5% (README, "Known limits").
    #[arg(long, default_value = "5%")]
    pub sweep_resolution: String,
    /// Attempts a sweep step may take: a passing first attempt passes at once; after a failing
    /// one the step is re-tested and fails only when a majority of these attempts fail (2 of 3).
    /// 1: no re-test (attempts set aside by --set-aside-disturbed are not counted).
    #[arg(long, default_value_t = 3)]
    pub sweep_attempts: u32,
    /// Set aside a sweep attempt that failed while more than 5% of a core on the run's cores went
    /// to anything but the run's processes (other processes, the kernel's own work for the run,
    /// an external database) or was stolen by the hypervisor, and run it again with the same
    /// schedule (at most --sweep-attempts times per step). Off by default: on a quiet machine
    /// it never fires, and the share it measures includes work the run causes.
    #[arg(long)]
    pub set_aside_disturbed: bool,
    /// Open rate × this many connections before an open loop's schedule starts (at least 16,
    /// at most --max-in-flight): the requests in flight while each takes this long.
    #[arg(long, default_value = "100ms")]
    pub pool_latency: String,
    /// Sweep repetitions (the report gives their median and spread); `faults`: runs of each
    /// scenario, trigger and architecture (each repetition a schedule of its own, the
    /// architectures of one repetition back to back on the same one).
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// p99 objective of the sweep.
    #[arg(long, default_value = "100ms")]
    pub p99_objective: String,
    /// Error budget of the sweep, e.g. 0.1%: failures and (unless --degraded-ok) degraded
    /// answers over all requests.
    #[arg(long, default_value = "0.1%")]
    pub error_budget: String,
    /// Fail (exit 3) when the head-to-head run breaches this, e.g. p99=50ms or errors=1%.
    /// Latency thresholds judge every request, failures included, and fail if none succeeded.
    #[arg(long)]
    pub threshold: Vec<String>,
    /// Count degraded answers (product pages missing inventory or reviews) as successes for
    /// the error budget, the thresholds and the achieved rate. By default they count against them.
    #[arg(long)]
    pub degraded_ok: bool,
    /// Requests in flight at most; beyond it a due request counts as an overflow failure.
    /// Default: 1024, or 40 ms of the offered rate when that is more (4,000 at 100,000 req/s).
    #[arg(long)]
    pub max_in_flight: Option<usize>,
    /// Timeout of each request.
    #[arg(long, default_value = "10s")]
    pub request_timeout: String,
    /// Seeded users logged in before measuring (the workload's user pool).
    #[arg(long, default_value_t = 100)]
    pub logged_in_users: u32,
    /// Base seed: each repetition derives its arrival schedule's and its workload's seeds from
    /// it (the same for both architectures within a repetition).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// PostgreSQL server URL: one fresh database per process, dropped afterwards. Default: SQLite files.
    #[arg(long)]
    pub db: Option<String>,
    /// Do not pin the generator and the system under test to separate cores.
    #[arg(long)]
    pub no_pin: bool,
    /// Use binaries from this directory instead of building them.
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Where run directories go.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Name of the run directory (default: a timestamp and the command).
    #[arg(long)]
    pub run_id: Option<String>,
    /// actix workers per process (same for every process).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Database connections per process.
    #[arg(long, default_value_t = 2)]
    pub db_pool_size: u32,
    /// Simulated payment processor latency, milliseconds.
    #[arg(long, default_value_t = 10)]
    pub payment_latency_ms: u64,
    /// Timeout of calls between services, milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub upstream_timeout_ms: u64,
    /// Seed data scale: products.
    #[arg(long, default_value_t = 10_000)]
    pub products: u32,
    /// Seed data scale: registered users.
    #[arg(long, default_value_t = 1_000)]
    pub registered_users: u32,
    /// Seed of the shop's data generator.
    #[arg(long, default_value_t = 42)]
    pub data_seed: u64,
    /// Log level of the shop processes.
    #[arg(long, default_value = "warn")]
    pub log_level: String,
}

/// Flags of `check`: where the databases are and what the client was told.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// A directory of SQLite files: monolith.db, or inventory.db, payments.db and orders.db.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The monolith's database URL (sqlite:... or postgres://...), holding every table.
    #[arg(long, conflicts_with_all = ["dir", "inventory_db", "payments_db", "orders_db"])]
    pub db: Option<String>,
    /// The inventory service's database URL (instead of the one in --dir).
    #[arg(long)]
    pub inventory_db: Option<String>,
    /// The payments service's database URL (instead of the one in --dir).
    #[arg(long)]
    pub payments_db: Option<String>,
    /// The orders service's database URL (instead of the one in --dir).
    #[arg(long)]
    pub orders_db: Option<String>,
    /// A file of order ids the client was told are confirmed (201), one per line.
    #[arg(long)]
    pub acknowledged: Option<PathBuf>,
    /// The shop's recovery deadline: an order still unfinished this long after its lease ended
    /// is a violation; a younger one is in progress.
    #[arg(long, default_value_t = shop::Settings::defaults().checkout.recovery_deadline_ms)]
    pub recovery_deadline_ms: u64,
    /// First wait (at most three recovery deadlines) until no order is in progress.
    #[arg(long)]
    pub wait: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

impl CheckArgs {
    /// The databases to check: --db, or each part from its own flag or else from --dir.
    pub fn deployment(&self) -> anyhow::Result<crate::check::Deployment> {
        if let Some(url) = &self.db {
            return Ok(crate::check::Deployment::monolith(url.clone()));
        }
        let part = |flag: &Option<String>, name: &str| {
            let in_dir = || self.dir.as_deref().and_then(|dir| crate::check::Deployment::sqlite_file_in(dir, name));
            flag.clone().or_else(in_dir).with_context(|| {
                format!(
                    "no {name} database: give --dir (holding monolith.db, or inventory.db, payments.db and \
                     orders.db), --db, or --{name}-db"
                )
            })
        };
        Ok(crate::check::Deployment {
            inventory: part(&self.inventory_db, "inventory")?,
            payments: part(&self.payments_db, "payments")?,
            orders: part(&self.orders_db, "orders")?,
        })
    }
}

/// Order ids, one per line; blank lines and `#` comments are skipped.
fn read_acknowledged(path: &std::path::Path) -> anyhow::Result<Vec<i64>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .map(|(n, line)| (n, line.split('#').next().unwrap_or("").trim()))
        .filter(|(_, line)| !line.is_empty())
        .map(|(n, line)| {
            line.parse().with_context(|| format!("{} line {}: '{line}' is not an order id", path.display(), n + 1))
        })
        .collect()
}

/// `splitbench check`: prints the report (or its JSON) and says whether the books are clean.
async fn check_books(args: CheckArgs) -> anyhow::Result<Finished> {
    let deployment = args.deployment()?;
    let options = crate::check::CheckOptions {
        recovery_deadline: Duration::from_millis(args.recovery_deadline_ms),
        acknowledged_orders: match &args.acknowledged {
            Some(path) => read_acknowledged(path)?,
            None => Vec::new(),
        },
    };
    if args.wait {
        let quiet = crate::check::wait_for_quiet(&deployment, options.recovery_deadline).await?;
        if quiet.in_progress > 0 {
            eprintln!(
                "warning: {} orders still in progress after waiting {:.1} s",
                quiet.in_progress,
                quiet.waited.as_secs_f64()
            );
        }
    }
    let report = crate::check::check(&deployment, &options).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(if report.is_clean() {
        Finished::Ok
    } else {
        Finished::Inconsistent { violations: vec![report.summary()], breaches: Vec::new() }
    })
}

fn duration(value: &str) -> anyhow::Result<Duration> {
    Ok(Duration::from_micros(parse_duration_us(value)?))
}

fn percent(value: &str) -> anyhow::Result<f64> {
    let value = value.trim();
    Ok(match value.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>()? / 100.0,
        None => value.parse::<f64>()?,
    })
}

fn workspace_results() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("results")
}

/// What a finished command reports to `main`.
#[derive(Debug)]
pub enum Finished {
    Ok,
    /// A `--threshold` was breached (exit 3).
    ThresholdBreached(Vec<String>),
    /// The books of a checked system violate an invariant (exit 4): one summary per system.
    /// Wrong books outrank slow answers; any threshold breaches are listed too.
    Inconsistent {
        violations: Vec<String>,
        breaches: Vec<String>,
    },
}

/// Runs a parsed command line.
/// `cores` is the machine's core layout, decided before the generator thread was pinned.
pub async fn run(cli: Cli, cores: CoreLayout, created_databases: CreatedDatabases) -> anyhow::Result<Finished> {
    match cli.command {
        Command::Report { dir, threshold, degraded_ok } => {
            let thresholds = parse_thresholds(&threshold)?;
            if !dir.join("run.json").exists() && dir.join("scale.json").exists() {
                anyhow::ensure!(thresholds.is_empty(), "a scaling report judges no --threshold");
                crate::scale::ScaleRun::read(&dir)?.write_report(&dir)?;
                println!("rebuilt {}", dir.join("scale.md").display());
                return Ok(Finished::Ok);
            }
            if !dir.join("run.json").exists() && dir.join("faults.json").exists() {
                anyhow::ensure!(thresholds.is_empty(), "a fault report judges no --threshold");
                crate::faults::report::rebuild(&dir)?;
                println!("rebuilt {}", dir.join("faults.md").display());
                return Ok(Finished::Ok);
            }
            crate::report::write_report(&dir)?;
            println!("rebuilt {}", dir.join("report.md").display());
            let run = RunData::read(&dir.join("run.json"))?;
            print_summary(&run)?;
            judge(&run, &thresholds, degraded_ok || run.config.degraded_ok)
        }
        Command::CriterionReport { criterion_dir, out, run_id, command } => {
            let started = crate::fingerprint::collect().started_at.replace([':', '-'], "");
            let run_dir =
                out.unwrap_or_else(workspace_results).join(run_id.unwrap_or_else(|| format!("{started}-cargo-bench")));
            std::fs::create_dir_all(&run_dir)?;
            let count = crate::criterion_report::write(&criterion_dir, &run_dir, &command)?;
            println!("recorded {count} benchmarks in {}", run_dir.join("report.md").display());
            Ok(Finished::Ok)
        }
        Command::Check(args) => check_books(args).await,
        Command::Demo { product } => {
            crate::demo::run(&shop::Settings::defaults(), product).await?;
            Ok(Finished::Ok)
        }
        Command::Faults(args) => faults(args, cores, created_databases).await,
        Command::Scale(args) => scale(args, cores, created_databases).await,
        Command::Compare(args) => bench("compare", args, true, true, cores, created_databases).await,
        Command::Run(args) => bench("run", args, false, true, cores, created_databases).await,
        Command::Sweep(args) => bench("sweep", args, true, false, cores, created_databases).await,
    }
}

/// What every measuring command starts from: the plan its flags give, the launcher, the
/// fingerprint of the machine and build, and the run's name (its directory is `plan.run_dir`).
pub(crate) struct Setup {
    pub plan: Plan,
    pub launcher: Launcher,
    pub fingerprint: crate::report::data::Fingerprint,
    pub run_id: String,
}

/// Flags to plan: validates them, builds the binaries (unless `--bin-dir`), creates the run's
/// directory. `sweep` and `main` say whether the command sweeps and runs the head-to-head.
pub(crate) fn setup(
    kind: &str,
    args: &BenchArgs,
    sweep: bool,
    main: bool,
    cores: &CoreLayout,
    created_databases: CreatedDatabases,
) -> anyhow::Result<Setup> {
    // A drop table left by a harness killed outright would slow this run's connections on a
    // reused port: remove them first.
    for table in crate::faults::drops::remove_orphaned_tables()? {
        eprintln!("removed the nftables table {table}, left by a splitbench run that no longer runs");
    }
    let mix = Mix::parse(&args.mix)?;
    anyhow::ensure!(args.rate > 0.0 && args.rate.is_finite(), "--rate must be positive");
    anyhow::ensure!(
        args.sweep_rates.iter().flatten().all(|r| *r > 0.0 && r.is_finite()),
        "--sweep-rates must be positive"
    );
    anyhow::ensure!(args.sweep_rates.as_ref().is_none_or(|r| !r.is_empty()), "--sweep-rates needs a rate");
    anyhow::ensure!(args.saturation_users > 0, "--saturation-users must be positive");
    anyhow::ensure!(args.max_in_flight != Some(0), "--max-in-flight must be positive");
    anyhow::ensure!(args.sweep_attempts > 0, "--sweep-attempts must be positive");
    let sweep_resolution = Resolution::parse(&args.sweep_resolution).context("--sweep-resolution")?;
    anyhow::ensure!(args.users != Some(0), "--users must be positive");
    anyhow::ensure!(
        args.system_budget.is_none_or(|b| b.is_finite() && b >= 0.1),
        "--system-budget must be at least 0.1 core (the kernel's smallest quota in a 10 ms period)"
    );
    let architectures = match args.arch {
        _ if !args.topology.is_empty() => {
            args.topology.iter().map(|t| parse_topology_arg(t)).collect::<Result<_, _>>()?
        }
        ArchitectureChoice::Both => Architecture::ALL.to_vec(),
        ArchitectureChoice::Monolith => vec![Architecture::Monolith],
        ArchitectureChoice::Microservices => vec![Architecture::Microservices],
        ArchitectureChoice::NullServer => vec![Architecture::NullServer],
    };
    anyhow::ensure!(
        args.arch != ArchitectureChoice::NullServer
            || mix.weights.iter().all(|(e, w)| *w == 0 || *e == Endpoint::Health),
        "--arch null-server answers every request with the same 200; measure it with --mix health"
    );

    let mut shop_settings = shop::Settings::defaults();
    shop_settings.server.workers = args.workers;
    shop_settings.server.log_level = args.log_level.clone();
    shop_settings.database.db_pool_size = args.db_pool_size;
    shop_settings.payments.payment_latency_ms = args.payment_latency_ms;
    shop_settings.upstreams.upstream_timeout_ms = args.upstream_timeout_ms;
    shop_settings.seed.products = args.products;
    shop_settings.seed.users = args.registered_users;
    shop_settings.seed.seed = args.data_seed;

    let fingerprint = crate::fingerprint::collect();
    let run_id =
        args.run_id.clone().unwrap_or_else(|| format!("{}-{kind}", fingerprint.started_at.replace([':', '-'], "")));
    let run_dir = args.out.clone().unwrap_or_else(workspace_results).join(&run_id);
    std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;

    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => crate::launch::build_release_binaries()?,
    };
    let database = match &args.db {
        Some(url) => DatabaseChoice::Postgres(url.clone()),
        None => DatabaseChoice::Sqlite,
    };
    let launcher = Launcher {
        bin_dir,
        cores: cores.clone(),
        database: database.clone(),
        created_databases,
        ready_timeout: Duration::from_secs(120),
        scratch: std::sync::Arc::new(tempfile::Builder::new().prefix("splitbench-db-").tempdir()?),
        binaries: Default::default(),
        system_budget: args.system_budget,
    };
    let objective = Objective {
        p99_us: parse_duration_us(&args.p99_objective)?,
        error_budget: percent(&args.error_budget)?,
        min_achieved_fraction: 0.95,
    };
    let think_time = duration(&args.think_time)?;
    let pool_latency = duration(&args.pool_latency).context("--pool-latency")?;
    let main_load = main.then_some(match args.users {
        Some(users) => Load::Closed(ClosedLoop { users, think_time }),
        None => Load::Open(OpenLoop::new(args.rate, args.arrivals, args.max_in_flight).with_pool_latency(pool_latency)),
    });
    let plan = Plan {
        architectures,
        shop: shop_settings.clone(),
        mix: mix.clone(),
        main_load,
        main_window: Window { warmup: duration(&args.warmup)?, duration: duration(&args.duration)? },
        sweep_grid: sweep.then(|| match &args.sweep_rates {
            Some(rates) => SweepGrid::Rates(rates.clone()),
            None if args.saturation_rounds > 0 => SweepGrid::FromSaturation,
            None => SweepGrid::Rates(DEFAULT_SWEEP_RATES.to_vec()),
        }),
        saturation: (sweep && args.saturation_rounds > 0)
            .then(|| -> anyhow::Result<SaturationPlan> {
                Ok(SaturationPlan {
                    users: args.saturation_users,
                    rounds: args.saturation_rounds,
                    window: Window {
                        warmup: duration(&args.saturation_warmup).context("--saturation-warmup")?,
                        duration: duration(&args.saturation_duration).context("--saturation-duration")?,
                    },
                })
            })
            .transpose()?,
        sweep_window: Window { warmup: duration(&args.sweep_warmup)?, duration: duration(&args.sweep_duration)? },
        sweep_resolution,
        sweep_attempts: args.sweep_attempts,
        set_aside_disturbed: args.set_aside_disturbed,
        pool_latency,
        objective,
        degraded_ok: args.degraded_ok,
        repeat: args.repeat.max(1),
        arrivals: args.arrivals,
        max_in_flight: args.max_in_flight,
        request_timeout: duration(&args.request_timeout)?,
        logged_in_users: args.logged_in_users,
        seed: args.seed,
        run_dir: run_dir.clone(),
        cores: cores.clone(),
    };
    eprintln!("splitbench {kind}: results in {}; {}", run_dir.display(), cores.describe());
    Ok(Setup { plan, launcher, fingerprint, run_id })
}

async fn bench(
    kind: &str,
    args: BenchArgs,
    sweep: bool,
    main: bool,
    cores: CoreLayout,
    created_databases: CreatedDatabases,
) -> anyhow::Result<Finished> {
    let thresholds = parse_thresholds(&args.threshold)?;
    let Setup { plan, launcher, mut fingerprint, run_id } = setup(kind, &args, sweep, main, &cores, created_databases)?;
    let run_dir = plan.run_dir.clone();
    let think_time = duration(&args.think_time)?;

    let measuring = std::time::Instant::now();
    let crate::experiment::Executed { measurements, sweep_grids } =
        crate::experiment::execute(&plan, &launcher).await?;
    let measuring_secs = measuring.elapsed().as_secs_f64();
    // Beside the harness: every binary the launcher started, as it was when started.
    fingerprint.binaries.extend(launcher.binaries.list());

    let shop_args = shop_args_of(&plan);
    let mut run = RunData {
        schema_version: SCHEMA_VERSION,
        run_id,
        fingerprint,
        config: RunConfig {
            command_line: std::env::args().collect(),
            mode: match (main, args.users) {
                (false, _) => "sweep".into(),
                (true, Some(_)) => "closed".into(),
                (true, None) => "open".into(),
            },
            mix: plan.mix.name.clone(),
            mix_weights: plan.mix.weights.iter().map(|(e, w)| (e.name().to_string(), *w)).collect(),
            arrivals: format!("{:?}", args.arrivals).to_lowercase(),
            rate: (main && args.users.is_none()).then_some(args.rate),
            users: args.users,
            think_time_ms: args.users.map(|_| think_time.as_millis() as u64),
            warmup_secs: plan.main_window.warmup.as_secs_f64(),
            warmup_ramped: Some(true),
            pool_latency_ms: Some(plan.pool_latency.as_secs_f64() * 1000.0),
            duration_secs: plan.main_window.duration.as_secs_f64(),
            max_in_flight: args.max_in_flight,
            request_timeout_ms: plan.request_timeout.as_millis() as u64,
            logged_in_users: args.logged_in_users,
            seed: args.seed,
            degraded_ok: args.degraded_ok,
            database: database_description(&launcher.database),
            core_layout: cores.describe(),
            shop_settings: shop_args,
            objective: sweep.then_some(plan.objective),
            sweep_rates: match &plan.sweep_grid {
                Some(SweepGrid::Rates(rates)) => rates.clone(),
                _ => Vec::new(),
            },
            sweep_grids: sweep_grids
                .into_iter()
                .map(|(architecture, rates)| (architecture.name().to_string(), rates))
                .collect(),
            saturation_users: plan.saturation.map(|s| s.users),
            saturation_rounds: plan.saturation.map(|s| s.rounds),
            saturation_warmup_secs: plan.saturation.map(|s| s.window.warmup.as_secs_f64()),
            saturation_duration_secs: plan.saturation.map(|s| s.window.duration.as_secs_f64()),
            repeat: plan.repeat,
            sweep_attempts: sweep.then_some(plan.sweep_attempts),
            sweep_sets_aside_disturbed: sweep.then_some(plan.set_aside_disturbed),
            sweep_resolution: sweep.then_some(plan.sweep_resolution),
            sweep_warmup_secs: sweep.then_some(plan.sweep_window.warmup.as_secs_f64()),
            sweep_duration_secs: sweep.then_some(plan.sweep_window.duration.as_secs_f64()),
        },
        measurements,
        capacity: None,
        saturation: None,
        measuring_secs: Some(measuring_secs),
    };
    run.derive_summaries()?;
    crate::report::write_run(&run_dir, &run)?;
    print_summary(&run)?;
    println!("\nreport: {}", run_dir.join("report.md").display());

    judge(&run, &thresholds, args.degraded_ok)
}

/// `splitbench scale`: every budget, every scenario, saturation rounds ([`crate::scale`]).
async fn scale(args: ScaleArgs, cores: CoreLayout, created_databases: CreatedDatabases) -> anyhow::Result<Finished> {
    use crate::scale::{Calibration, ScalePoint, ScaleRun, ScenarioSpec, replicas_at};
    let mut budgets = args.budgets.clone();
    budgets.sort_by(f64::total_cmp);
    budgets.dedup();
    anyhow::ensure!(!budgets.is_empty(), "--budgets needs a budget");
    let period = crate::launch::BUDGET_PERIOD_US as f64;
    anyhow::ensure!(
        budgets.iter().all(|b| b.is_finite() && b * period >= crate::launch::cgroup::MIN_QUOTA_US as f64),
        "--budgets must be at least 0.1 core each (the kernel's smallest quota in a {} µs period)",
        crate::launch::BUDGET_PERIOD_US
    );
    anyhow::ensure!(args.replica_cores > 0.0 && args.replica_cores.is_finite(), "--replica-cores must be positive");
    anyhow::ensure!(args.rounds > 0, "--rounds must be positive");
    anyhow::ensure!(args.bench.topology.is_empty(), "scale takes its topologies as --scenario");
    anyhow::ensure!(args.bench.system_budget.is_none(), "scale takes its budgets as --budgets");
    anyhow::ensure!(!args.bench.degraded_ok, "scale counts complete answers only (no --degraded-ok)");
    let Setup { mut plan, launcher, fingerprint, run_id } =
        setup("scale", &args.bench, true, false, &cores, created_databases)?;
    plan.sweep_grid = None;
    plan.main_load = None;
    let saturation = SaturationPlan {
        users: args.bench.saturation_users,
        rounds: args.rounds,
        window: Window {
            warmup: duration(&args.bench.saturation_warmup).context("--saturation-warmup")?,
            duration: duration(&args.bench.saturation_duration).context("--saturation-duration")?,
        },
    };
    let enforced = crate::launch::cgroup::CpuQuota::available();
    if !enforced {
        eprintln!(
            "warning: CPU budgets cannot be enforced here (root and cgroup v1 needed): the points differ only in replicas"
        );
    }
    eprintln!("splitbench scale: results in {}; {}", plan.run_dir.display(), cores.describe());
    let measuring = std::time::Instant::now();

    // The hottest microservice, from one window at the largest budget.
    let largest = *budgets.last().expect("checked non-empty");
    let calibration = if args.scenario.iter().any(|s| s == "microservices-hottest") {
        let calibrating = Plan {
            architectures: vec![Architecture::Microservices],
            saturation: Some(SaturationPlan { rounds: 1, ..saturation }),
            ..plan.clone()
        };
        let budgeted = Launcher { system_budget: Some(largest), ..launcher.clone() };
        let executed = crate::experiment::execute(&calibrating, &budgeted).await.context("the calibration window")?;
        let window = executed.measurements.first().context("the calibration measured a window")?;
        let found = Calibration::of(largest, window).context("the calibration saw no process")?;
        eprintln!("calibration: the hottest microservice is {}", found.hottest);
        Some(found)
    } else {
        None
    };
    let hottest = calibration.as_ref().map(|c| c.hottest.as_str());
    let specs = args.scenario.iter().map(|s| ScenarioSpec::parse(s, hottest)).collect::<anyhow::Result<Vec<_>>>()?;
    let mut names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    anyhow::ensure!(names.windows(2).all(|w| w[0] != w[1]), "--scenario: every scenario needs a name of its own");

    // The harness's own hash, then every binary the launcher starts (added as they start).
    let harness_binaries = fingerprint.binaries.clone();
    let mut run = ScaleRun {
        fingerprint,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        budgets: budgets.clone(),
        scenarios: specs.clone(),
        replica_cores: args.replica_cores,
        rounds: args.rounds,
        users: saturation.users,
        warmup_secs: saturation.window.warmup.as_secs_f64(),
        window_secs: saturation.window.duration.as_secs_f64(),
        budget_period_us: crate::launch::BUDGET_PERIOD_US,
        budgets_enforced: enforced,
        mix: plan.mix.name.clone(),
        database: database_description(&launcher.database),
        core_layout: cores.describe(),
        calibration,
        points: Vec::new(),
        took_secs: 0.0,
    };
    for &budget in &budgets {
        let mut systems = Vec::new();
        for spec in &specs {
            let replicas = if spec.replicated() { replicas_at(budget, args.replica_cores) } else { 1 };
            let topology = spec.topology(replicas)?;
            let architecture = Architecture::topology_named(&spec.name, &topology.to_string())?;
            systems.push((spec, replicas, architecture));
        }
        let at_budget = Plan {
            architectures: systems.iter().map(|(_, _, a)| *a).collect(),
            saturation: Some(saturation),
            ..plan.clone()
        };
        eprintln!(
            "budget {budget} core(s): {}",
            systems.iter().map(|(s, n, _)| format!("{} x{n}", s.name)).collect::<Vec<_>>().join(", ")
        );
        let budgeted = Launcher { system_budget: Some(budget), ..launcher.clone() };
        let executed = crate::experiment::execute(&at_budget, &budgeted).await?;
        for (spec, replicas, architecture) in &systems {
            let windows: Vec<&crate::report::data::Measurement> =
                executed.measurements.iter().filter(|m| m.architecture == architecture.name()).collect();
            run.points.push(ScalePoint::of(spec, budget, *replicas, &windows));
        }
        // What is measured so far is kept: a run stopped later still leaves these points.
        run.took_secs = measuring.elapsed().as_secs_f64();
        run.fingerprint.binaries = harness_binaries.iter().cloned().chain(launcher.binaries.list()).collect();
        run.write(&plan.run_dir)?;
    }
    eprintln!("\nscaling report ({run_id}): {}", plan.run_dir.join("scale.md").display());
    for spec in &run.scenarios {
        let line: Vec<String> = run
            .points
            .iter()
            .filter(|p| p.scenario == spec.name)
            .filter_map(|p| Some(format!("{}: {:.0}", p.budget_cores, p.capacity()?.median)))
            .collect();
        println!("{:<24} capacity req/s by budget  {}", spec.name, line.join("  "));
    }
    let violations: Vec<String> = run
        .points
        .iter()
        .filter(|p| !p.books_clean)
        .map(|p| format!("{} at {} core(s): books not clean", p.scenario, p.budget_cores))
        .collect();
    if violations.is_empty() {
        Ok(Finished::Ok)
    } else {
        Ok(Finished::Inconsistent { violations, breaches: Vec::new() })
    }
}

/// The shop's settings as flags, without the per-process values (ports, database URLs,
/// upstream URLs: the launcher's choice) and the secrets.
fn shop_args_of(plan: &Plan) -> Vec<String> {
    let mut shop_args = plan.shop.to_args();
    strip_flags(
        &mut shop_args,
        &[
            "--accounts-url",
            "--catalog-url",
            "--inventory-url",
            "--reviews-url",
            "--payments-url",
            "--orders-url",
            "--token-secret",
            "--service-token",
        ],
    );
    shop_args
}

fn database_description(database: &DatabaseChoice) -> String {
    match database {
        DatabaseChoice::Sqlite => "SQLite (a file per process, WAL)".into(),
        DatabaseChoice::Postgres(url) => format!("PostgreSQL {}", shop::settings::redact_password(url)),
    }
}

/// `splitbench faults`: every scenario on every architecture chosen, one report.
async fn faults(args: FaultsArgs, cores: CoreLayout, created_databases: CreatedDatabases) -> anyhow::Result<Finished> {
    use crate::faults::inject::FaultParameters;
    use crate::faults::{FaultKind, FaultTiming, Scenario, report, run};
    anyhow::ensure!(
        args.bench.topology.is_empty(),
        "fault runs start the two architectures (--arch), not other topologies (--topology)"
    );
    // The starve fault puts a process in a CPU group of its own, which would take it out of
    // the system's.
    anyhow::ensure!(args.bench.system_budget.is_none(), "fault runs take no --system-budget");
    let scenarios = if args.scenario.is_empty() {
        Scenario::defaults()
    } else {
        args.scenario.iter().map(|s| Scenario::parse(s)).collect::<anyhow::Result<Vec<_>>>()?
    };
    let (before, after) = (duration(&args.before).context("--before")?, duration(&args.after).context("--after")?);
    let timings = args
        .fault_for
        .iter()
        .map(|length| {
            let during = duration(length).context("--fault-for")?;
            anyhow::ensure!(!during.is_zero(), "--fault-for must be positive");
            Ok(FaultTiming { before, during, after })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let period_us = FaultParameters::default().cpu_period_us;
    let drop_share = percent(&args.drop_share).context("--drop-share")?;
    anyhow::ensure!(drop_share > 0.0 && drop_share <= 1.0, "--drop-share must be above 0% and at most 100%");
    let all_parameters = args
        .starve_share
        .iter()
        .map(|share| {
            let share = percent(share).context("--starve-share")?;
            let parameters = FaultParameters {
                cpu_period_us: period_us,
                cpu_quota_us: (share * period_us as f64).round() as u64,
                drop_share,
            };
            anyhow::ensure!(
                parameters.cpu_quota_us >= crate::launch::cgroup::MIN_QUOTA_US && share <= 1.0,
                "--starve-share must be between 2% (the kernel's smallest quota in a 50 ms period) and 100%"
            );
            Ok(parameters)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (timing, parameters) = (timings[0], all_parameters[0]);
    anyhow::ensure!(
        scenarios.iter().all(|s| s.fault != FaultKind::Starve) || crate::launch::cgroup::CpuQuota::available(),
        "starve needs root and cgroup v1's cpu controller (/sys/fs/cgroup/cpu); leave it out here"
    );
    if scenarios.iter().any(|s| s.fault == FaultKind::Drop) {
        anyhow::ensure!(
            crate::faults::drops::available(),
            "drop needs root and nft (Debian package nftables); leave it out here"
        );
    }
    anyhow::ensure!(
        timing.after >= Duration::from_secs(1),
        "--after must be at least 1s: recovery is judged over seconds of it"
    );
    anyhow::ensure!(args.bench.users.is_none(), "fault runs use the open loop (--rate), not --users");
    anyhow::ensure!(args.bench.threshold.is_empty(), "fault runs judge no --threshold: their report is the verdict");
    anyhow::ensure!(
        args.bench.arch != ArchitectureChoice::NullServer,
        "fault runs need the shop: --arch both, monolith or microservices"
    );
    let Setup { plan, launcher, mut fingerprint, run_id } =
        setup("faults", &args.bench, false, true, &cores, created_databases)?;
    // The open loop keeps a connection per request in flight, and a fault run allows every
    // request of a timeout's worth: take every file descriptor the hard limit allows.
    if let Ok((_, hard)) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
        let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard);
    }
    let measuring = std::time::Instant::now();
    let (mut runs, mut failed) = (Vec::new(), Vec::new());
    // Every scenario on the monolith once, and on the microservices once per profile.
    let mut profiles = args.resilience.clone();
    profiles.dedup();
    anyhow::ensure!(!profiles.is_empty(), "--resilience needs at least one profile");
    let runs_of = |architecture: Architecture| -> Vec<Option<shop::resilience::Resilience>> {
        match architecture {
            Architecture::Microservices => profiles.iter().copied().map(Some).collect(),
            _ => vec![None],
        }
    };
    // Each scenario's triggers: every length, and for starve every share too.
    let triggers_of = |scenario: &Scenario| -> Vec<(FaultTiming, FaultParameters)> {
        let shares = if scenario.fault == FaultKind::Starve { &all_parameters[..] } else { &all_parameters[..1] };
        shares.iter().flat_map(|p| timings.iter().map(move |t| (*t, *p))).collect()
    };
    // A network fault needs a network between processes: the monolith has none.
    let applies = |scenario: &Scenario, architecture: Architecture| {
        !scenario.fault.is_network() || architecture == Architecture::Microservices
    };
    let repetitions = args.bench.repeat;
    anyhow::ensure!(repetitions >= 1, "--repeat must be at least 1");
    let mut not_run = Vec::new();
    for scenario in &scenarios {
        for &architecture in plan.architectures.iter().filter(|a| !applies(scenario, **a)) {
            not_run.push(report::FailedRun {
                scenario: scenario.clone(),
                architecture: architecture.name().to_string(),
                error: "its modules call each other inside one process: there is no network between them to fault"
                    .into(),
            });
        }
    }
    let total: usize = scenarios
        .iter()
        .map(|s| {
            let per_trigger: usize =
                plan.architectures.iter().filter(|a| applies(s, **a)).map(|a| runs_of(*a).len()).sum();
            triggers_of(s).len() * per_trigger * repetitions as usize
        })
        .sum();
    for scenario in &scenarios {
        for ((timing, parameters), repetition) in
            triggers_of(scenario).into_iter().flat_map(|trigger| (1..=repetitions).map(move |r| (trigger, r)))
        {
            for &architecture in plan.architectures.iter().filter(|a| applies(scenario, **a)) {
                for resilience in runs_of(architecture) {
                    let mut plan = plan.clone();
                    if let Some(profile) = resilience {
                        plan.shop.upstreams.resilience = profile;
                    }
                    // The seam's fault layer, in both architectures alike, for seam faults only.
                    plan.shop.server.faults_enabled = scenario.fault.is_seam();
                    let label = run::label(architecture.name(), resilience);
                    let trigger = run::Trigger::of(scenario.fault, &timing, &parameters);
                    let of_repetitions = if repetitions > 1 {
                        format!(", repetition {repetition}/{repetitions}")
                    } else {
                        String::new()
                    };
                    eprintln!(
                        "\n[{}/{total}] {scenario} ({}{of_repetitions}) on the {label}",
                        runs.len() + failed.len() + 1,
                        trigger.describe()
                    );
                    let fault = run::FaultPlan { scenario, timing, parameters, rate: args.bench.rate, repetition };
                    // One run that fails (a restart that never got ready) does not lose the others.
                    let result = run::run_scenario(&plan, &launcher, architecture, &fault).await;
                    match result {
                        Ok(run) => runs.push(run),
                        Err(err) => {
                            eprintln!("error: {scenario} on the {label}: {err:#}");
                            failed.push(report::FailedRun {
                                scenario: scenario.clone(),
                                architecture: format!("{label}, {}{of_repetitions}", trigger.describe()),
                                error: format!("{err:#}"),
                            });
                        }
                    }
                }
            }
        }
    }
    fingerprint.binaries.extend(launcher.binaries.list());
    let faults = report::FaultReport {
        schema_version: report::FAULT_SCHEMA_VERSION,
        run_id,
        fingerprint,
        command_line: std::env::args().collect(),
        rate: args.bench.rate,
        max_in_flight: run::max_in_flight(&plan, args.bench.rate),
        request_timeout_ms: plan.request_timeout.as_millis() as u64,
        mix: plan.mix.name.clone(),
        timing,
        parameters,
        objective: plan.objective,
        degraded_ok: plan.degraded_ok,
        database: database_description(&launcher.database),
        core_layout: cores.describe(),
        shop_settings: shop_args_of(&plan),
        runs,
        failed,
        not_run,
        measuring_secs: measuring.elapsed().as_secs_f64(),
        repeat: repetitions,
    };
    report::write(&plan.run_dir, &faults)?;
    let mut violations = Vec::new();
    println!();
    for run in &faults.runs {
        let recovered = run
            .outcome
            .recovered_ms
            .map_or_else(|| "did not recover".into(), |ms| format!("recovered after {:.1} s", ms / 1000.0));
        let blast: Vec<&str> = run.outcome.blast_radius.iter().map(|e| e.name()).collect();
        println!(
            "{:<16} {:<24} {:<32} blast radius: {:<40} {recovered}",
            run.scenario.to_string(),
            run.trigger(&faults.parameters).describe(),
            report::run_name(&faults, run),
            if blast.is_empty() { "none".to_string() } else { blast.join(", ") }
        );
        match run.consistency.as_ref().map(|c| (&c.report, &c.error)) {
            Some((Some(books), _)) if !books.is_clean() => {
                violations.push(format!("{} {}: {}", run.scenario, run.label(), books.summary()));
            }
            Some((None, error)) => violations.push(format!(
                "{} {}: the books could not be checked: {}",
                run.scenario,
                run.label(),
                error.as_deref().unwrap_or("unknown error")
            )),
            _ => {}
        }
    }
    println!("\nreport: {}", plan.run_dir.join("faults.md").display());
    anyhow::ensure!(
        faults.failed.is_empty(),
        "{} of {total} scenario runs failed (listed in faults.md)",
        faults.failed.len()
    );
    Ok(if violations.is_empty() { Finished::Ok } else { Finished::Inconsistent { violations, breaches: Vec::new() } })
}

fn parse_thresholds(specs: &[String]) -> anyhow::Result<Vec<Threshold>> {
    specs.iter().map(|t| Threshold::parse(t)).collect()
}

/// Checks the head-to-head measurements against the thresholds (degraded answers counting as
/// successes when `degraded_ok`) and every checked system's books for violations. A check that
/// could not run is an error (exit 1).
fn judge(run: &RunData, thresholds: &[Threshold], degraded_ok: bool) -> anyhow::Result<Finished> {
    let mut breaches = Vec::new();
    for m in run.main_measurements() {
        // Every request's latency, so failures cannot flatter it (the successes' in old runs).
        let latency = m.judged_latency()?;
        for threshold in thresholds {
            if let Some(breach) = threshold.breach(&latency, m.succeeded(degraded_ok), m.error_rate(degraded_ok)) {
                breaches.push(format!("{}: {breach}", m.architecture));
            }
        }
    }
    let mut violations = Vec::new();
    let mut unchecked = Vec::new();
    for (system, check, _) in crate::report::data::merged_checks(run) {
        match (&check.report, &check.error) {
            (Some(report), _) if !report.is_clean() => violations.push(format!("{system}: {}", report.summary())),
            (None, error) => unchecked.push(format!("{system}: {}", error.as_deref().unwrap_or("unknown error"))),
            _ => {}
        }
    }
    anyhow::ensure!(unchecked.is_empty(), "the books could not be checked: {}", unchecked.join("; "));
    Ok(match (violations.is_empty(), breaches.is_empty()) {
        (false, _) => Finished::Inconsistent { violations, breaches },
        (true, false) => Finished::ThresholdBreached(breaches),
        (true, true) => Finished::Ok,
    })
}

fn strip_flags(args: &mut Vec<String>, flags: &[&str]) {
    let mut kept = Vec::with_capacity(args.len());
    let mut iter = args.drain(..);
    while let Some(arg) = iter.next() {
        if flags.contains(&arg.as_str()) {
            iter.next();
        } else {
            kept.push(arg);
        }
    }
    drop(iter);
    *args = kept;
}

fn print_summary(run: &RunData) -> anyhow::Result<()> {
    use crate::analyse::human_micros;
    println!();
    if let Some(secs) = run.measuring_secs {
        println!(
            "measuring took {:.0} s (systems started, measured, checked and stopped; building not included)",
            secs
        );
    }
    if let Some(saturation) = &run.saturation {
        for a in &saturation.architectures {
            let s = a.throughput_spread;
            let cpu: Vec<String> = a.cpu_us_per_request.iter().map(|c| format!("{c:.0}")).collect();
            println!(
                "{:<14} saturation throughput {:.0} req/s ({:.0}..{:.0} over {} windows), CPU µs/request {}",
                a.architecture,
                s.median,
                s.min,
                s.max,
                s.n,
                cpu.join(", ")
            );
        }
        if let Some(ratio) = &saturation.throughput_ratio {
            println!("saturation throughput, monolith / microservices: {}", ratio.describe());
        }
        if let Some(ratio) = &saturation.cpu_ratio {
            println!("CPU per request, microservices / monolith: {}", ratio.describe());
        }
    }
    for m in run.main_measurements() {
        let p = m.total_percentiles()?;
        let all = match m.all_requests_percentiles()? {
            Some(a) => format!(
                "p50 {:>9}, p99 {:>9}, p99.9 {:>9}",
                human_micros(a.p50),
                human_micros(a.p99),
                human_micros(a.p999)
            ),
            None => "not recorded".into(),
        };
        println!(
            "{:<14} {:>8.1} req/s ok, {:.3}% errors, {:.3}% degraded; successes: p50 {:>9}, p99 {:>9}, p99.9 {:>9}; all requests: {all}; {:.3} CPU-ms/request, peak RSS {:.1} MiB",
            m.architecture,
            m.achieved_rate(run.config.degraded_ok),
            m.failure_rate() * 100.0,
            m.degraded_rate() * 100.0,
            human_micros(p.p50),
            human_micros(p.p99),
            human_micros(p.p999),
            m.cpu_ms_per_request(),
            m.sut_peak_rss_bytes() as f64 / (1024.0 * 1024.0),
        );
        for warning in crate::report::warnings(m)? {
            println!("  warning: {warning}");
        }
    }
    for (system, check, systems) in crate::report::data::merged_checks(run) {
        let systems = if systems > 1 { format!(" ({systems} systems)") } else { String::new() };
        match (&check.report, &check.error) {
            (Some(report), _) => println!("consistency: {system}{systems} {}", report.summary()),
            (None, error) => {
                println!("consistency: {system}{systems} not checked: {}", error.as_deref().unwrap_or("unknown error"))
            }
        }
    }
    if let Some(capacity) = run.capacity_summary()? {
        for line in capacity_lines(&capacity) {
            println!("{line}");
        }
    }
    Ok(())
}

/// The terminal's capacity lines: each architecture's interval (and with repetitions each
/// one's), then the ratio with its interval.
fn capacity_lines(capacity: &crate::report::data::Capacity) -> Vec<String> {
    let mut lines = Vec::new();
    for a in &capacity.architectures {
        let mut line = format!("{:<14} capacity {}", a.architecture, a.interval.describe());
        let s = a.highest_passing;
        if a.repetitions.len() > 1 {
            let each: Vec<String> = a.repetitions.iter().map(|r| r.describe()).collect();
            line.push_str(&format!(
                "; over {} repetitions (highest passing: median {:.0}, {:.0}..{:.0}): {}",
                a.repetitions.len(),
                s.median,
                s.min,
                s.max,
                each.join(", ")
            ));
        }
        if a.interval.low == 0.0 {
            line.push_str("; even the lowest swept rate failed");
        }
        lines.push(line);
    }
    if let Some(ratio) = &capacity.ratio {
        lines.push(ratio.describe());
        if capacity.architectures.iter().all(|a| a.repetitions.len() < 2) {
            lines.push(
                "  (one repetition: each interval brackets this run's search, not the variation between runs; \
                 --repeat N measures that)"
                    .into(),
            );
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_process_flags_are_stripped_with_their_values() {
        let mut args: Vec<String> =
            ["--workers", "1", "--orders-url", "http://x", "--seed", "2"].iter().map(|s| s.to_string()).collect();
        strip_flags(&mut args, &["--orders-url"]);
        assert_eq!(args, vec!["--workers", "1", "--seed", "2"]);
    }

    #[test]
    fn acknowledged_files_hold_one_order_id_per_line() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("acknowledged.txt");
        std::fs::write(&path, "12\n\n 7 \n# a comment\n9 # trailing\n").expect("written");
        assert_eq!(read_acknowledged(&path).ok(), Some(vec![12, 7, 9]));
        std::fs::write(&path, "12\nseven\n").expect("written");
        let err = read_acknowledged(&path).expect_err("not an id");
        assert!(format!("{err:#}").contains("line 2"), "{err:#}");
    }

    #[test]
    fn a_check_needs_every_database() {
        let args = |argv: &[&str]| match Cli::try_parse_from([&["splitbench", "check"], argv].concat()) {
            Ok(Cli { command: Command::Check(args) }) => args,
            other => panic!("not a check command line: {other:?}"),
        };
        let monolith = args(&["--db", "sqlite:m.db"]).deployment().expect("one database");
        assert_eq!((monolith.inventory.as_str(), monolith.orders.as_str()), ("sqlite:m.db", "sqlite:m.db"));
        let split =
            args(&["--inventory-db", "sqlite:i.db", "--payments-db", "sqlite:p.db", "--orders-db", "sqlite:o.db"])
                .deployment()
                .expect("three databases");
        assert_eq!(split.payments, "sqlite:p.db");
        let missing = args(&["--inventory-db", "sqlite:i.db"]).deployment().expect_err("payments and orders missing");
        assert!(format!("{missing:#}").contains("--payments-db"), "{missing:#}");
        assert!(Cli::try_parse_from(["splitbench", "check", "--db", "sqlite:m.db", "--orders-db", "x"]).is_err());
    }

    #[test]
    fn degraded_answers_count_as_errors_unless_degraded_ok() {
        let degraded_ok = |argv: &[&str]| match Cli::try_parse_from(argv) {
            Ok(Cli { command: Command::Run(args) | Command::Sweep(args) | Command::Compare(args) }) => args.degraded_ok,
            Ok(Cli { command: Command::Report { degraded_ok, .. } }) => degraded_ok,
            other => panic!("unexpected: {other:?}"),
        };
        assert!(!degraded_ok(&["splitbench", "run"]));
        assert!(degraded_ok(&["splitbench", "run", "--degraded-ok"]));
        assert!(degraded_ok(&["splitbench", "sweep", "--degraded-ok"]));
        assert!(!degraded_ok(&["splitbench", "report", "results/x"]));
        assert!(degraded_ok(&["splitbench", "report", "results/x", "--degraded-ok"]));
    }

    #[test]
    fn percentages_parse() {
        assert_eq!(percent("0.1%").ok(), Some(0.001));
        assert_eq!(percent("0.02").ok(), Some(0.02));
    }
}
