//! Running one scenario on one architecture: a fresh system, the steady load, the fault at its
//! time, the books checked, the system stopped (also when something failed on the way).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::analysis::{self, FaultOutcome, FaultWindow, Phase};
use super::calls::{self, PhaseCalls};
use super::inject::{self, FaultEvidence, FaultParameters};
use super::proxy::Proxy;
use super::{FaultKind, FaultTiming, Scenario};
use crate::drive::{self, AcknowledgedOrders, OpenLoop, RepetitionSeeds, Scale, Window, Workload};
use crate::experiment::{self, Plan};
use crate::launch::{Launcher, SystemUnderTest};
use crate::record::Recorder;
use crate::report::data::ConsistencyCheck;
use crate::topology::Architecture;

/// The timeline's resolution: fine enough to see a restart's second, coarse enough that a
/// slice at a few hundred requests a second holds a few dozen.
pub const SLICE: Duration = Duration::from_millis(100);

/// The generator's bound on requests in flight in a fault run: `--max-in-flight`, or room for
/// every request due within one request timeout.
pub fn max_in_flight(plan: &Plan, rate: f64) -> usize {
    plan.max_in_flight.unwrap_or_else(|| every_request_in_flight(rate, plan.request_timeout))
}

/// Room for every request due within one request timeout, and never less than the open loop's
/// own default.
pub fn every_request_in_flight(rate: f64, request_timeout: Duration) -> usize {
    let default = OpenLoop::new(rate, crate::drive::Arrivals::Poisson, None).max_in_flight;
    default.max((rate * request_timeout.as_secs_f64()).ceil() as usize)
}

/// One scenario on one architecture: what was done and what the users saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRun {
    pub architecture: String,
    /// The microservices' resilience profile (`None`: the monolith, which makes no calls
    /// between processes).
    pub resilience: Option<shop::resilience::Resilience>,
    pub scenario: Scenario,
    /// Which repetition of its scenario, trigger and architecture this run was (from 1; each
    /// repetition has a schedule of its own, shared by the architectures).
    #[serde(default = "first_repetition")]
    pub repetition: u32,
    /// The process the fault hit.
    pub process: String,
    pub offered_rate: f64,
    pub timing: FaultTiming,
    /// The fault's parameters in this run (`None` in files written before runs could differ:
    /// the report's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<FaultParameters>,
    /// When the fault was in force, as it happened.
    pub fault: FaultWindow,
    /// What the injector saw: that the fault took hold.
    pub evidence: FaultEvidence,
    /// Calls between processes per user request, per phase (as the processes answered them;
    /// a phase is missing when a process could not be read at one of its edges).
    pub calls: Vec<PhaseCalls>,
    /// The same per second of the window (`None` for a second with a process unread at an
    /// edge, as a frozen one is; empty in files written before it was sampled).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls_per_second: Vec<Option<f64>>,
    pub outcome: FaultOutcome,
    /// The books after the run (`None`: the null server, which keeps none).
    pub consistency: Option<ConsistencyCheck>,
}

fn first_repetition() -> u32 {
    1
}

impl FaultRun {
    /// `monolith`, `microservices (full)`.
    pub fn label(&self) -> String {
        label(&self.architecture, self.resilience)
    }

    /// The trigger: how long the fault was held and, for `starve`, the CPU share left.
    pub fn trigger(&self, report_parameters: &FaultParameters) -> Trigger {
        Trigger::of(self.scenario.fault, &self.timing, &self.parameters.unwrap_or(*report_parameters))
    }

    /// `monolith`, `microservices-full`, for file names.
    pub fn slug(&self) -> String {
        match self.resilience {
            Some(profile) => format!("{}-{}", self.architecture, profile.name()),
            None => self.architecture.clone(),
        }
    }
}

/// A fault's size: how long it is held and, for `starve`, the share of a core left to the
/// process. A metastability experiment varies both ([`super::report`]'s phase diagram).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trigger {
    pub length: Duration,
    pub share: Option<f64>,
}

impl Trigger {
    /// The trigger of `fault` held as `timing` says with `parameters`.
    pub fn of(fault: FaultKind, timing: &FaultTiming, parameters: &FaultParameters) -> Self {
        let share =
            (fault == FaultKind::Starve).then(|| parameters.cpu_quota_us as f64 / parameters.cpu_period_us as f64);
        Self { length: timing.during, share }
    }

    /// `5.0 s`, `3.0 s at 10% of a core`.
    pub fn describe(&self) -> String {
        match self.share {
            Some(share) => format!("{:.1} s at {} of a core", self.length.as_secs_f64(), percent(share)),
            None => format!("{:.1} s", self.length.as_secs_f64()),
        }
    }

    /// `5000ms`, `3000ms-10pct`, for file names.
    pub fn slug(&self) -> String {
        match self.share {
            Some(share) => format!("{}ms-{}pct", self.length.as_millis(), percent(share).trim_end_matches('%')),
            None => format!("{}ms", self.length.as_millis()),
        }
    }
}

/// A share as a percentage, to a tenth where it has one: `2%`, `12.5%`.
pub(crate) fn percent(share: f64) -> String {
    let tenths = (share * 1000.0).round() / 10.0;
    if tenths.fract() == 0.0 { format!("{tenths:.0}%") } else { format!("{tenths:.1}%") }
}

/// `monolith`, `microservices (full)`: an architecture and, for the microservices, the
/// resilience profile it ran with.
pub fn label(architecture: &str, resilience: Option<shop::resilience::Resilience>) -> String {
    match resilience {
        Some(profile) => format!("{architecture} ({})", profile.name()),
        None => architecture.to_string(),
    }
}

/// What a fault run applies: the scenario, how long and how hard, at which offered rate, and
/// which repetition it is (its schedule's seed).
#[derive(Debug, Clone)]
pub struct FaultPlan<'a> {
    pub scenario: &'a Scenario,
    pub timing: FaultTiming,
    pub parameters: FaultParameters,
    pub rate: f64,
    pub repetition: u32,
}

/// Starts `architecture`, loads it at the fault plan's rate with its fault at its time, checks
/// its books, stops it.
pub async fn run_scenario(
    plan: &Plan,
    launcher: &Launcher,
    architecture: Architecture,
    fault: &FaultPlan<'_>,
) -> anyhow::Result<FaultRun> {
    let scenario = fault.scenario;
    // A network fault needs the proxy in front of the module's service from the start, so the
    // phases before and after it pass through the same hop.
    // Each repetition's proxy draws jitter and slice sizes of its own (the first keeps the
    // run's seed).
    let proxy_seed = plan.seed.wrapping_add(u64::from(fault.repetition.saturating_sub(1)));
    let proxied = scenario.fault.is_network().then_some((scenario.module.as_str(), proxy_seed));
    let (mut sut, sessions, proxy) = experiment::start_proxied(plan, launcher, architecture, proxied).await?;
    let result = measure(plan, launcher, &mut sut, &sessions, proxy.as_ref(), fault).await;
    sut.stop().await;
    result
}

async fn measure(
    plan: &Plan,
    launcher: &Launcher,
    sut: &mut SystemUnderTest,
    sessions: &[drive::Session],
    proxy: Option<&Proxy>,
    fault_plan: &FaultPlan<'_>,
) -> anyhow::Result<FaultRun> {
    let FaultPlan { scenario, timing, ref parameters, rate, repetition } = *fault_plan;
    let architecture = anyhow::Context::context(sut.architecture, "fault runs start an architecture")?;
    let scale =
        Scale { products: i64::from(plan.shop.seed.products), categories: i64::from(plan.shop.seed.categories) };
    // Both architectures of a scenario meet the same schedule and requests; each repetition
    // another.
    let seeds = RepetitionSeeds::derive(plan.seed, repetition);
    let workload = Workload::new(&plan.mix, scale, sessions.to_vec(), seeds.workload)?;
    let client = drive::LoadClient::new(&sut.base_url, plan.request_timeout)?;
    let window = Window { warmup: plan.main_window.warmup, duration: timing.window() };
    let recorder = Arc::new(Mutex::new(Recorder::with_slices(window.warmup, SLICE)));
    // Unless told otherwise, every request may wait its whole timeout: with the usual bound, the
    // requests stuck on the faulted module would fill it and the generator would give up
    // requests to healthy endpoints (overflows), a blast radius of the client's own making.
    let pace = OpenLoop::new(rate, plan.arrivals, Some(max_in_flight(plan, rate))).with_pool_latency(plan.pool_latency);
    client.open_pool(pace.pool_size()).await;
    let acknowledged = AcknowledgedOrders::default();
    let process = scenario.process(architecture).to_string();
    let name = architecture.name();

    // For the once-a-second sampler of calls between processes: the ports stay the same over
    // a restart, and the sampler must not hold the system the injector changes.
    let ports: Vec<(String, u16)> = sut.processes.iter().map(|p| (p.name.to_string(), p.port)).collect();
    let started = Instant::now();
    let load = drive::run_open_loop(client, workload, pace, window, seeds.schedule, recorder, acknowledged.clone());
    let inject = async {
        let measured = started + window.warmup;
        let since_window = |t: Instant| t.saturating_duration_since(measured).as_secs_f64() * 1000.0;
        tokio::time::sleep_until(measured.into()).await;
        let at_start = calls::snapshot(sut).await;
        tokio::time::sleep_until((measured + timing.before).into()).await;
        let at_fault = calls::snapshot(sut).await;
        let active = inject::begin(scenario.fault, &scenario.module, parameters, sut, &process, proxy).await?;
        // In force once its injector returns (a database lock may first wait for a write).
        let began = Instant::now();
        eprintln!("{name}: {scenario}: {} {process}", scenario.fault.name());
        tokio::time::sleep_until((measured + timing.before + timing.during).into()).await;
        // The fault ends as it is lifted; a crashed process's restart is part of the recovery.
        let ended = Instant::now();
        let evidence = inject::end(active, launcher, sut, &process, proxy).await?;
        let restart_ready_ms = (scenario.fault == FaultKind::Crash).then(|| since_window(Instant::now()));
        eprintln!("{name}: {scenario}: {process} back");
        let at_fault_end = calls::snapshot(sut).await;
        let window = FaultWindow { started_ms: since_window(began), ended_ms: since_window(ended), restart_ready_ms };
        anyhow::Ok((window, evidence, [at_start, at_fault, at_fault_end]))
    };
    let seconds = window.duration.as_secs_f64().ceil() as u32;
    let sampler = async {
        let measured = started + window.warmup;
        let mut snapshots = Vec::new();
        for second in 0..=seconds {
            tokio::time::sleep_until((measured + Duration::from_secs(u64::from(second))).into()).await;
            // Within the second, so a frozen process costs one missing second, not the schedule.
            snapshots.push(calls::snapshot_ports(&ports, Duration::from_millis(800)).await);
        }
        snapshots
    };
    let (recorded, fault, snapshots) = tokio::join!(load, inject, sampler);
    let recorded = recorded?;
    let (fault, evidence, [at_start, at_fault, at_fault_end]) = fault?;
    let at_end = calls::snapshot(sut).await;
    let outcome = analysis::analyse(&recorded, SLICE, &fault, &scenario.module, &plan.objective, plan.degraded_ok);
    // The users' requests the schedule made due in each phase (the timeline holds each slice's
    // phase).
    let offered = |phase: Phase| -> u64 {
        outcome.timeline.iter().zip(&recorded.seconds).filter(|(s, _)| s.phase == phase).map(|(_, r)| r.due).sum()
    };
    let calls = [
        calls::between(Phase::Before, offered(Phase::Before), &at_start, &at_fault),
        calls::between(Phase::During, offered(Phase::During), &at_fault, &at_fault_end),
        calls::between(Phase::After, offered(Phase::After), &at_fault_end, &at_end),
    ]
    .into_iter()
    .flatten()
    .collect();
    let slices_per_second = (Duration::from_secs(1).as_nanos() / SLICE.as_nanos()) as usize;
    let due_per_second: Vec<u64> =
        recorded.seconds.chunks(slices_per_second).map(|slices| slices.iter().map(|s| s.due).sum()).collect();
    let calls_per_second = calls::per_second(&snapshots, &due_per_second);
    let consistency = experiment::check_books(plan, sut, &acknowledged).await;
    Ok(FaultRun {
        architecture: name.to_string(),
        resilience: (architecture == Architecture::Microservices).then_some(plan.shop.upstreams.resilience),
        scenario: scenario.clone(),
        repetition,
        process,
        offered_rate: rate,
        timing,
        parameters: Some(*parameters),
        fault,
        evidence,
        calls,
        calls_per_second,
        outcome,
        consistency,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trigger_says_its_length_and_share() {
        let starve = Trigger { length: Duration::from_millis(3000), share: Some(0.1) };
        assert_eq!((starve.describe(), starve.slug()), ("3.0 s at 10% of a core".into(), "3000ms-10pct".into()));
        let hang = Trigger { length: Duration::from_millis(500), share: None };
        assert_eq!((hang.describe(), hang.slug()), ("0.5 s".into(), "500ms".into()));
        assert_eq!(percent(0.125), "12.5%");
    }

    #[test]
    fn every_request_due_within_a_timeout_fits_in_flight() {
        assert_eq!(every_request_in_flight(500.0, Duration::from_secs(10)), 5000);
        assert_eq!(every_request_in_flight(10.0, Duration::from_secs(10)), 1024, "the open loop's floor");
    }
}
