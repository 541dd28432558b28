//! Experiments: what `splitbench run`, `sweep` and `compare` do, from starting the system
//! under test to the raw data of every measured window.
//!
//! Each repetition draws its own seeds ([`RepetitionSeeds`]) before its first architecture
//! starts, so both architectures of a repetition face the same schedule and requests (a fair
//! pair) and repetitions sample different ones.
//!
//! Before a started system is stopped, its books are checked ([`crate::check`]): the harness
//! waits until no checkout is in progress, then verifies stock, charges, reservations and
//! orders against each other and against every order the load was told is confirmed. The
//! report goes with the system's last window; a violation makes the command exit 4.
//!
//! Around each measured window the harness reads every process's CPU time and every core's
//! busy and steal time (`/proc/stat`), so the report can say how much CPU something outside
//! the run took on the run's cores, and once a second every process's PSS
//! (`/proc/<pid>/smaps_rollup`), the memory the system under test took.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::analyse::{AttemptFate, Objective, QuantileInterval, Resolution, StepAttempts, SweepSearch, SweepStage};
use crate::check::{self, CheckOptions, ConsistencyReport, Deployment};
use crate::drive::{self, AcknowledgedOrders, ClosedLoop, Mix, OpenLoop, RepetitionSeeds, Scale, Window, Workload};
use crate::launch::procstat::{self, CoreTimes, ProcessSample};
use crate::launch::{CoreLayout, Launcher, SystemUnderTest};
use crate::record::Recorder;
use crate::report::data::{
    ConsistencyCheck, CoreActivity, CoreWindow, Measurement, MemorySamples, ProcessCost, PssSeries, SweepStep,
};
use crate::topology::Architecture;

/// How to load the system in one measured window.
#[derive(Debug, Clone, Copy)]
pub enum Load {
    Open(OpenLoop),
    Closed(ClosedLoop),
}

/// Where the sweep's grid comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum SweepGrid {
    /// These rates, the same for every architecture (`--sweep-rates`).
    Rates(Vec<f64>),
    /// [`SATURATION_GRID_FRACTIONS`] of each architecture's median saturation throughput, so
    /// the search starts near its knee instead of climbing a fixed grid to it (the default
    /// with a saturation stage).
    FromSaturation,
}

/// The fixed grid, when there is no saturation stage to place one.
pub const DEFAULT_SWEEP_RATES: [f64; 7] = [1000.0, 2000.0, 3000.0, 4000.0, 5000.0, 6000.0, 8000.0];

/// The grid relative to an architecture's saturation throughput. The open loop's knee lay at
/// 0.8-1.05 of it in trial runs, and once at 1.09 (the service rate moves between the stage and
/// the sweep; near it a Poisson load queues): one step below, steps of about a tenth across
/// it, then wider ones, run only if everything below passed.
pub const SATURATION_GRID_FRACTIONS: [f64; 6] = [0.7, 0.85, 0.95, 1.05, 1.2, 1.4];

/// The grid for a saturation throughput of `throughput` requests per second: its fractions,
/// rounded to 10 requests per second.
pub fn grid_from_saturation(throughput: f64) -> Vec<f64> {
    SATURATION_GRID_FRACTIONS.iter().map(|f| (f * throughput / 10.0).round() * 10.0).filter(|r| *r > 0.0).collect()
}

/// The saturation stage: rounds of one closed-loop window per architecture, each round on
/// systems started afresh ([`measure_saturation`]).
#[derive(Debug, Clone, Copy)]
pub struct SaturationPlan {
    pub users: usize,
    pub rounds: u32,
    pub window: Window,
}

/// Everything one experiment needs.
#[derive(Debug, Clone)]
pub struct Plan {
    pub architectures: Vec<Architecture>,
    pub shop: shop::Settings,
    pub mix: Mix,
    pub main_load: Option<Load>,
    pub main_window: Window,
    /// The sweep's grid; `None`: no sweep.
    pub sweep_grid: Option<SweepGrid>,
    pub sweep_window: Window,
    /// The saturation stage before the sweep; `None`: none.
    pub saturation: Option<SaturationPlan>,
    /// How close the refinement brings the highest passing and the lowest failing rate.
    pub sweep_resolution: Resolution,
    /// Attempts a failing step may take ([`StepAttempts`]: a majority of failures fails it).
    pub sweep_attempts: u32,
    /// Set aside a failed attempt disturbed from outside the run and run its step again.
    pub set_aside_disturbed: bool,
    /// The latency an open loop's pre-opened pool is sized for ([`OpenLoop::pool_size`]).
    pub pool_latency: Duration,
    pub objective: Objective,
    /// Count degraded answers as successes for the objective (`--degraded-ok`).
    pub degraded_ok: bool,
    pub repeat: u32,
    pub arrivals: drive::Arrivals,
    /// `None`: the default bound of each rate ([`OpenLoop::new`]).
    pub max_in_flight: Option<usize>,
    pub request_timeout: Duration,
    pub logged_in_users: u32,
    /// The base seed each repetition's seeds are derived from.
    pub seed: u64,
    pub run_dir: PathBuf,
    pub cores: CoreLayout,
}

/// Prints progress while a window runs: once a second, the last full second's numbers.
fn spawn_progress(label: String, recorder: Arc<Mutex<Recorder>>, window: Window) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let started = Instant::now();
        let total = window.end().as_secs();
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let elapsed = started.elapsed().as_secs();
            if elapsed > total {
                break;
            }
            let line = {
                let recorder = recorder.lock().expect("recorder lock");
                let phase = if started.elapsed() < window.warmup { "warm-up" } else { "measuring" };
                let last = recorder.seconds.len().checked_sub(2).and_then(|i| recorder.seconds.get(i));
                match last {
                    Some(second) => {
                        // Every request's p99: what the sweep judges.
                        let latency = second.merged_all_latency();
                        let p99 = if latency.is_empty() { 0 } else { latency.value_at_quantile(0.99) };
                        format!(
                            "{phase} {elapsed:>3}/{total}s  due {:>6}/s  ok {:>6}/s  degraded {:>4}  failed {:>4}  p99 {}",
                            second.due,
                            second.ok,
                            second.degraded,
                            second.failed,
                            crate::analyse::human_micros(p99)
                        )
                    }
                    None => format!("{phase} {elapsed:>3}/{total}s"),
                }
            };
            eprint!("\r[{label}] {line}        ");
        }
        eprintln!();
    })
}

/// Every process's CPU and memory counters, the harness's, and every core's times, read
/// back to back at one edge of a window.
fn sample_all(sut: &SystemUnderTest) -> (Vec<(String, ProcessSample)>, ProcessSample, Vec<CoreTimes>) {
    (sut.sample(), procstat::sample(None).unwrap_or_default(), procstat::sample_cores().unwrap_or_default())
}

/// PSS of each system-under-test process (by pid) and of the harness, read on a blocking
/// thread (the kernel walks each process's page tables; the generator's event loop should not
/// wait for it). `None` if a process could not be read (it exited).
///
/// The thread shares the generator's core, and the generator never leaves it idle, so each read
/// takes the core from the generator for as long as the kernel walks that process (about a
/// millisecond). The reads are spaced [`PSS_READ_SPACING`] apart rather than back to back, so
/// the generator loses the core for one read at a time, and seven processes do not delay due
/// requests seven times as long as one.
async fn sample_pss(pids: Vec<u32>) -> Option<(Vec<u64>, u64)> {
    tokio::task::spawn_blocking(move || {
        let mut processes = Vec::with_capacity(pids.len());
        for &pid in &pids {
            processes.push(procstat::pss(Some(pid)).ok()?);
            std::thread::sleep(PSS_READ_SPACING);
        }
        Some((processes, procstat::pss(None).ok()?))
    })
    .await
    .ok()
    .flatten()
}

/// The pause between two processes' PSS reads (see [`sample_pss`]): eight reads span 0.35 s,
/// well within the second between samples.
const PSS_READ_SPACING: Duration = Duration::from_millis(50);

/// The PSS samples of a window, as stored: one series per process.
fn memory_samples(names: &[&str], samples: Vec<(f64, Vec<u64>, u64)>) -> Option<MemorySamples> {
    if samples.is_empty() {
        return None;
    }
    let processes = names
        .iter()
        .enumerate()
        .map(|(i, name)| PssSeries { name: name.to_string(), pss_bytes: samples.iter().map(|s| s.1[i]).collect() })
        .collect();
    Some(MemorySamples {
        at_secs: samples.iter().map(|s| (s.0 * 1000.0).round() / 1000.0).collect(),
        processes,
        generator: PssSeries { name: "generator".into(), pss_bytes: samples.iter().map(|s| s.2).collect() },
    })
}

/// Measures one window of a repetition (drawn from `seeds`) against a started system; the
/// orders it confirmed go into `acknowledged`.
#[allow(clippy::too_many_arguments)]
async fn measure(
    plan: &Plan,
    sut: &SystemUnderTest,
    sessions: &[drive::Session],
    load: Load,
    window: Window,
    phase: &str,
    seeds: RepetitionSeeds,
    acknowledged: &AcknowledgedOrders,
) -> anyhow::Result<Measurement> {
    let scale =
        Scale { products: i64::from(plan.shop.seed.products), categories: i64::from(plan.shop.seed.categories) };
    let workload = Workload::new(&plan.mix, scale, sessions.to_vec(), seeds.workload)?;
    let client = drive::LoadClient::new(&sut.base_url, plan.request_timeout)?;
    let recorder = Arc::new(Mutex::new(Recorder::new(window.warmup)));
    let label = match load {
        Load::Open(pace) => format!("{} {phase} {:.0} req/s", sut.name, pace.rate),
        Load::Closed(users) => format!("{} {phase} {} users", sut.name, users.users),
    };
    let progress = spawn_progress(label, recorder.clone(), window);

    // The generator's pool is opened before the clock starts, so the resource samples below
    // (timed from `started`) line up with the schedule, which starts once the pool is open.
    // The dispatcher counts it as the pool its schedule starts with.
    if let Load::Open(pace) = load {
        client.open_pool(pace.pool_size()).await;
    }
    // Resource samples at the edges of the measured window.
    let started = Instant::now();
    let run = async {
        match load {
            Load::Open(pace) => {
                let schedule_seed = seeds.schedule;
                drive::run_open_loop(
                    client,
                    workload,
                    pace,
                    window,
                    schedule_seed,
                    recorder.clone(),
                    acknowledged.clone(),
                )
                .await
            }
            Load::Closed(users) => {
                drive::run_closed_loop(client, workload, users, window, recorder.clone(), acknowledged.clone()).await
            }
        }
    };
    let names: Vec<&str> = sut.processes.iter().map(|p| p.name.as_str()).collect();
    let pids: Vec<u32> = sut.processes.iter().map(|p| p.pid).collect();
    let samples = async {
        let measured = started + window.warmup;
        let end = started + window.end();
        tokio::time::sleep_until(measured.into()).await;
        let first = sample_all(sut);
        // PSS at the window's start, then once a second, and at its end.
        let mut memory = Vec::new();
        let mut next = measured;
        loop {
            let now = Instant::now();
            if let Some((processes, generator)) = sample_pss(pids.clone()).await {
                memory.push((now.saturating_duration_since(measured).as_secs_f64(), processes, generator));
            }
            if next >= end {
                break;
            }
            next = (next + Duration::from_secs(1)).min(end);
            tokio::time::sleep_until(next.into()).await;
            if next == end {
                break;
            }
        }
        let last = sample_all(sut);
        if let Some((processes, generator)) = sample_pss(pids.clone()).await {
            memory.push((end.saturating_duration_since(measured).as_secs_f64(), processes, generator));
        }
        (first, last, memory)
    };
    let (recorded, ((before, generator_before, cores_before), (after, generator_after, cores_after), memory)) =
        tokio::join!(run, samples);
    let recorded = recorded?;
    progress.abort();
    eprintln!();

    let processes = after
        .iter()
        .filter_map(|(name, end)| {
            // Without a sample at the window's start, "end minus zero" would be the process's
            // whole life (start-up and seeding included): leave it out, and say so.
            let Some(start) = before.iter().find(|(n, _)| n == name).map(|(_, s)| *s) else {
                eprintln!(
                    "warning: no CPU sample of {name} at the window's start: its cost is left out of this window"
                );
                return None;
            };
            Some(ProcessCost {
                name: name.to_string(),
                cpu_seconds: end.cpu_seconds - start.cpu_seconds,
                peak_rss_bytes: end.peak_rss_bytes,
                context_switches: end.context_switches.saturating_sub(start.context_switches),
            })
        })
        .collect();
    let generator = ProcessCost {
        name: "generator".into(),
        cpu_seconds: generator_after.cpu_seconds - generator_before.cpu_seconds,
        peak_rss_bytes: generator_after.peak_rss_bytes,
        context_switches: generator_after.context_switches.saturating_sub(generator_before.context_switches),
    };
    let offered = match load {
        Load::Open(pace) => Some(pace.rate),
        Load::Closed(_) => None,
    };
    let mut measurement = Measurement::from_recorder(
        &sut.name,
        phase,
        offered,
        seeds.repetition,
        window.duration.as_secs_f64(),
        &recorded,
        processes,
        generator,
    );
    measurement.seeds = Some(seeds);
    let cores = procstat::core_deltas(&cores_before, &cores_after);
    if !cores.is_empty() {
        measurement.cores = Some(CoreActivity {
            generator_cores: plan.cores.generator.clone(),
            system_under_test_cores: plan.cores.system_under_test.clone(),
            cores: cores
                .iter()
                .map(|c| CoreWindow { core: c.core, busy_seconds: c.busy_seconds, steal_seconds: c.steal_seconds })
                .collect(),
        });
    }
    measurement.memory = memory_samples(&names, memory);
    // Said now as well as in the report: a reader watching a sweep should know at once.
    for warning in crate::report::interference_warnings(&measurement) {
        eprintln!("warning: {warning}");
    }
    Ok(measurement)
}

pub(crate) async fn start(
    plan: &Plan,
    launcher: &Launcher,
    architecture: Architecture,
) -> anyhow::Result<(SystemUnderTest, Vec<drive::Session>)> {
    let (sut, sessions, _) = start_proxied(plan, launcher, architecture, None).await?;
    Ok((sut, sessions))
}

/// [`start`], with the calls to one service through a fault proxy ([`Launcher::start_proxied`]).
pub(crate) async fn start_proxied(
    plan: &Plan,
    launcher: &Launcher,
    architecture: Architecture,
    proxied: Option<(&str, u64)>,
) -> anyhow::Result<(SystemUnderTest, Vec<drive::Session>, Option<crate::faults::proxy::Proxy>)> {
    let started = Instant::now();
    let (sut, proxy) = launcher.start_proxied(architecture, &plan.shop, &plan.run_dir, proxied).await?;
    eprintln!(
        "{} ready in {:.1} s ({} process(es))",
        architecture.name(),
        started.elapsed().as_secs_f64(),
        sut.processes.len()
    );
    let sessions = if plan.mix.needs_users() {
        let client = drive::setup_client(plan.request_timeout)?;
        let count = plan.logged_in_users.min(plan.shop.seed.users).max(1);
        drive::log_in_users(&client, &sut.base_url, count)
            .await
            .context("logging users in before the measured window")?
    } else {
        Vec::new()
    };
    Ok((sut, sessions, proxy))
}

/// Waits until the system's checkouts have settled, then checks its books against them and
/// against the orders the load was told are confirmed. `None` for the null server, which keeps
/// no books. A check that cannot run is recorded (and makes the command fail once the report
/// is written) rather than raised here, so the measurements are kept.
pub(crate) async fn check_books(
    plan: &Plan,
    sut: &SystemUnderTest,
    acknowledged: &AcknowledgedOrders,
) -> Option<ConsistencyCheck> {
    let deployment = Deployment::of_system_under_test(sut)?;
    let name = sut.name.as_str();
    let options =
        CheckOptions { recovery_deadline: plan.shop.recovery_deadline(), acknowledged_orders: acknowledged.ids() };
    eprintln!("{name}: waiting for checkouts in progress to settle, then checking the books");
    let started = Instant::now();
    let result = async {
        let quiet = check::wait_for_quiet(&deployment, options.recovery_deadline).await?;
        if quiet.in_progress > 0 {
            eprintln!(
                "warning: {name}: {} orders still in progress after waiting {:.1} s; checking anyway",
                quiet.in_progress,
                quiet.waited.as_secs_f64()
            );
        }
        anyhow::Ok((quiet, check::check(&deployment, &options).await?))
    }
    .await;
    let recoveries = recoveries_of(sut).await;
    Some(match result {
        Ok((quiet, mut report)) => {
            eprintln!("{name}: books {}", report.summary());
            report.violations.truncate(ConsistencyReport::STORED_VIOLATIONS);
            ConsistencyCheck {
                waited_ms: quiet.waited.as_millis() as u64,
                report: Some(report),
                error: None,
                recoveries,
            }
        }
        Err(err) => {
            eprintln!("warning: {name}: could not check the books: {err:#}");
            ConsistencyCheck {
                waited_ms: started.elapsed().as_millis() as u64,
                report: None,
                error: Some(format!("{err:#}")),
                recoveries,
            }
        }
    })
}

/// Checkouts settled by the recovery loop, summed over every process's `/metrics`; `None` if a
/// process did not answer.
async fn recoveries_of(sut: &SystemUnderTest) -> Option<u64> {
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(2)).build().ok()?;
    let mut total = 0;
    for process in &sut.processes {
        let url = format!("http://127.0.0.1:{}/metrics", process.port);
        let text = client.get(url).send().await.ok()?.text().await.ok()?;
        total += recoveries_in_metrics(&text);
    }
    Some(total)
}

/// The sum of the `splitbench_checkout_recoveries_total` samples in Prometheus text.
fn recoveries_in_metrics(text: &str) -> u64 {
    text.lines()
        .filter(|line| line.starts_with("splitbench_checkout_recoveries_total"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|value| value as u64)
        .sum()
}

/// One sweep step at `rate`: attempts, each on a system of its own, until the step is decided
/// ([`StepAttempts`]: a passing first attempt passes at once, a failing one is re-tested).
/// Every attempt's window goes into `measurements`; returns whether the step passed.
/// Starts `architecture` afresh, measures one window on it, checks its books and stops it
/// (also when the measurement failed).
async fn measure_fresh_system(
    plan: &Plan,
    launcher: &Launcher,
    architecture: Architecture,
    load: Load,
    window: Window,
    phase: &str,
    seeds: RepetitionSeeds,
) -> anyhow::Result<Measurement> {
    let (sut, sessions) = start(plan, launcher, architecture).await?;
    let acknowledged = AcknowledgedOrders::default();
    let result = measure(plan, &sut, &sessions, load, window, phase, seeds, &acknowledged).await;
    let result = match result {
        Ok(mut m) => {
            m.consistency = check_books(plan, &sut, &acknowledged).await;
            Ok(m)
        }
        Err(err) => Err(err),
    };
    sut.stop().await;
    result
}

async fn sweep_step(
    plan: &Plan,
    launcher: &Launcher,
    architecture: Architecture,
    rate: f64,
    stage: SweepStage,
    seeds: RepetitionSeeds,
    measurements: &mut Vec<Measurement>,
) -> anyhow::Result<bool> {
    let mut attempts = StepAttempts::new(plan.sweep_attempts).setting_aside_disturbed(plan.set_aside_disturbed);
    let mut attempt = 0;
    loop {
        // Each attempt on a system of its own (fresh databases, the same seeded data), so its
        // work is the same whatever ran before: review writes do not drift to 409 on pairs an
        // earlier step wrote, order histories do not grow from step to step.
        let pace = OpenLoop::new(rate, plan.arrivals, plan.max_in_flight).with_pool_latency(plan.pool_latency);
        attempt += 1;
        let seeds = seeds.for_attempt(attempts.next_counted());
        let mut m =
            measure_fresh_system(plan, launcher, architecture, Load::Open(pace), plan.sweep_window, "sweep", seeds)
                .await?;
        m.p99_interval = QuantileInterval::p99(&m.judged_latency()?);
        let verdict = m.verdict(&plan.objective, plan.degraded_ok)?;
        // How it failed: a backlog to the end, or one it drained (the report's table gives it
        // for every failed attempt).
        let shape = if verdict.sustainable {
            String::new()
        } else {
            crate::analyse::failure_shape(&m, &plan.objective, plan.degraded_ok)?
                .map_or_else(String::new, |shape| format!("; {}", shape.describe()))
        };
        let interference = crate::report::interference_warnings(&m);
        let fate = attempts.record(verdict.sustainable, !interference.is_empty());
        let disturbed = fate == AttemptFate::SetAside;
        m.sweep_step = Some(SweepStep { stage, attempt, disturbed });
        let interval = m.p99_interval.map_or_else(String::new, |i| format!(" (95% interval {})", i.describe()));
        measurements.push(m);
        eprintln!(
            "{} {rate:.0} req/s attempt {attempt}: {} (p99 {}{interval}{shape})",
            architecture.name(),
            if verdict.sustainable { "passed" } else { "failed" },
            crate::analyse::human_micros(verdict.p99_us)
        );
        if disturbed {
            eprintln!(
                "{} {rate:.0} req/s: attempt {attempt} set aside, disturbed from outside the run ({}): re-running it",
                architecture.name(),
                interference.join("; ")
            );
            continue;
        }
        if let Some(passed) = attempts.decision() {
            return Ok(passed);
        }
        eprintln!("{} {rate:.0} req/s failed once: re-testing", architecture.name());
    }
}

/// The saturation stage: rounds of one short closed-loop window per architecture. In closed
/// loop the generator sends a user's next request when the last one is answered, so with
/// enough users the system's core never waits for work and the throughput is its service
/// rate: unlike the open loop's knee, which a Poisson burst can tip either way, it has no coin
/// flip in it. What moves it is the machine: in a trial with 5 s windows and a fresh pair of
/// systems a minute apart, one pair's microservices cost 395 µs per request against 331-338 in
/// the other two, so a ratio of windows far apart carries a slow period into one side only.
/// So each round starts every architecture afresh (fresh databases, as every sweep attempt:
/// the monolith, answering more, would otherwise grow its order histories faster, and a page
/// of them costs more as it fills), then loads them one after the other, seconds apart (the
/// order reversed every other round, so neither always goes first), and the ratio is taken
/// within the round ([`RunData::saturation_summary`]); their median over the rounds is the
/// headline. Each round draws its own requests, the same for both.
async fn measure_saturation(
    plan: &Plan,
    launcher: &Launcher,
    saturation: SaturationPlan,
    measurements: &mut Vec<Measurement>,
) -> anyhow::Result<()> {
    let load = Load::Closed(ClosedLoop { users: saturation.users, think_time: Duration::ZERO });
    for round in 1..=saturation.rounds {
        let seeds = RepetitionSeeds::derive(plan.seed, round);
        let mut systems = Vec::new();
        let mut started = Ok(());
        for &architecture in &plan.architectures {
            match start(plan, launcher, architecture).await {
                Ok((sut, sessions)) => systems.push((sut, sessions, AcknowledgedOrders::default())),
                Err(err) => {
                    started = Err(err);
                    break;
                }
            }
        }
        if round % 2 == 0 {
            systems.reverse();
        }
        let measured = async {
            started?;
            let mut windows = Vec::new();
            for (sut, sessions, acknowledged) in &systems {
                let m =
                    measure(plan, sut, sessions, load, saturation.window, "saturation", seeds, acknowledged).await?;
                eprintln!(
                    "{} saturation round {round}/{}: {:.0} req/s answered, {:.0} µs CPU per request",
                    sut.name,
                    saturation.rounds,
                    m.achieved_rate(plan.degraded_ok),
                    m.cpu_ms_per_request() * 1000.0
                );
                windows.push(m);
            }
            // The books once both windows are measured, so the windows stay back to back.
            for ((sut, _, acknowledged), m) in systems.iter().zip(&mut windows) {
                m.consistency = check_books(plan, sut, acknowledged).await;
            }
            anyhow::Ok(windows)
        }
        .await;
        for (sut, _, _) in systems {
            sut.stop().await;
        }
        measurements.extend(measured?);
    }
    Ok(())
}

/// Each architecture's sweep grid: the given rates, or fractions of its median saturation
/// throughput (the fixed default grid if it has no saturation window).
fn sweep_grids(plan: &Plan, grid: &SweepGrid, measurements: &[Measurement]) -> Vec<(Architecture, Vec<f64>)> {
    plan.architectures
        .iter()
        .map(|&architecture| {
            let rates = match grid {
                SweepGrid::Rates(rates) => rates.clone(),
                SweepGrid::FromSaturation => {
                    let throughputs: Vec<f64> = measurements
                        .iter()
                        .filter(|m| m.phase == "saturation" && m.architecture == architecture.name())
                        .map(|m| m.achieved_rate(plan.degraded_ok))
                        .collect();
                    match crate::analyse::Spread::of(&throughputs) {
                        Some(spread) if spread.median > 0.0 => grid_from_saturation(spread.median),
                        _ => DEFAULT_SWEEP_RATES.to_vec(),
                    }
                }
            };
            (architecture, rates)
        })
        .collect()
}

/// What [`execute`] measured, and each architecture's sweep grid as it ran (placed by the
/// saturation stage unless the plan gave rates).
pub struct Executed {
    pub measurements: Vec<Measurement>,
    pub sweep_grids: Vec<(Architecture, Vec<f64>)>,
}

/// Runs the plan: the saturation stage (if any), the sweep (if any), then the head-to-head
/// window (if any).
/// Each started system's books are checked before it stops, with its last window.
pub async fn execute(plan: &Plan, launcher: &Launcher) -> anyhow::Result<Executed> {
    procstat::init();
    let mut measurements = Vec::new();
    if let Some(saturation) = plan.saturation {
        measure_saturation(plan, launcher, saturation, &mut measurements).await?;
    }
    let grids = plan.sweep_grid.as_ref().map(|grid| sweep_grids(plan, grid, &measurements));
    for (architecture, rates) in grids.iter().flatten() {
        let shown: Vec<String> = rates.iter().map(|r| format!("{r:.0}")).collect();
        eprintln!("{} sweep grid: {} req/s", architecture.name(), shown.join(", "));
    }
    for repetition in 1..=plan.repeat.max(1) {
        let Some(grids) = &grids else { break };
        // Drawn once per repetition, outside the loop over architectures: a fair pair.
        let seeds = RepetitionSeeds::derive(plan.seed, repetition);
        // Each architecture's search: the grid up to its first failing step, then bisection
        // between the highest passing and the lowest failing rate down to the resolution. The
        // searches advance in turns, a step each, so both sweeps run through the same minutes
        // of the machine: a slow period shows in both, not in one architecture's whole sweep
        // (swept one after the other, the capacity ratio moved from 1.58 to 1.97 between runs).
        let mut searches: Vec<(Architecture, SweepSearch)> = plan
            .architectures
            .iter()
            .map(|&architecture| {
                let grid = grids.iter().find(|(a, _)| *a == architecture).map_or(&[][..], |(_, g)| g);
                (architecture, SweepSearch::new(grid, plan.sweep_resolution))
            })
            .collect();
        loop {
            let mut stepped = false;
            for (architecture, search) in &mut searches {
                let Some((rate, stage)) = search.next() else { continue };
                stepped = true;
                let passed = sweep_step(plan, launcher, *architecture, rate, stage, seeds, &mut measurements).await?;
                search.record(rate, passed);
                if !passed && stage == SweepStage::Grid {
                    // Past the knee: higher grid rates only pile up queues and time.
                    eprintln!("{} stops the grid at {rate:.0} req/s (objective missed)", architecture.name());
                }
            }
            if !stepped {
                break;
            }
        }
        for (architecture, search) in &searches {
            if let Some(interval) = search.interval() {
                eprintln!("{} capacity {} (repetition {repetition})", architecture.name(), interval.describe());
            }
        }
    }
    if let Some(load) = plan.main_load {
        // The head-to-head run is one repetition, the first.
        let seeds = RepetitionSeeds::derive(plan.seed, 1);
        for &architecture in &plan.architectures {
            measurements
                .push(measure_fresh_system(plan, launcher, architecture, load, plan.main_window, "main", seeds).await?);
        }
    }
    Ok(Executed { measurements, sweep_grids: grids.unwrap_or_default() })
}

#[cfg(test)]
mod grid_tests {
    use super::grid_from_saturation;

    #[test]
    fn the_grid_is_placed_by_the_saturation_throughput_and_rounded_to_ten() {
        assert_eq!(grid_from_saturation(2965.0), vec![2080.0, 2520.0, 2820.0, 3110.0, 3560.0, 4150.0]);
        // 85 and 105 round half away from zero.
        assert_eq!(grid_from_saturation(100.0), vec![70.0, 90.0, 100.0, 110.0, 120.0, 140.0]);
        // Too low to place a step: a rate under 5 requests per second rounds to nothing.
        assert_eq!(grid_from_saturation(3.0), Vec::<f64>::new());
    }
}

#[cfg(test)]
mod memory_sample_tests {
    use super::memory_samples;

    #[test]
    fn samples_become_one_series_per_process() {
        let samples = vec![(0.0004, vec![10, 20], 5), (1.0012, vec![11, 21], 6)];
        let memory = memory_samples(&["catalog", "gateway"], samples).expect("samples");
        assert_eq!(memory.at_secs, vec![0.0, 1.001]);
        assert_eq!(memory.processes[1].name, "gateway");
        assert_eq!(memory.processes[1].pss_bytes, vec![20, 21]);
        assert_eq!(memory.generator.pss_bytes, vec![5, 6]);
        assert_eq!(memory.system_under_test(), vec![30, 32]);
        assert_eq!(memory_samples(&["x"], Vec::new()), None);
    }
}

#[cfg(test)]
mod recovery_metric_tests {
    use super::recoveries_in_metrics;

    #[test]
    fn recoveries_are_summed_over_their_labels_and_nothing_else() {
        let text = "# HELP splitbench_checkout_recoveries_total Checkouts\n\
                    splitbench_checkout_recoveries_total{settled_as=\"failed\"} 3\n\
                    splitbench_checkout_recoveries_total{settled_as=\"confirmed\"} 2\n\
                    splitbench_http_requests_total{route=\"/x\"} 40\n";
        assert_eq!(recoveries_in_metrics(text), 5);
        assert_eq!(recoveries_in_metrics(""), 0);
    }
}
