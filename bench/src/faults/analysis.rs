//! What a fault did to the users: per endpoint and phase (before, during, after the fault),
//! the blast radius, and the time to recover. Pure functions over the recorder's 100 ms
//! slices, so they are tested on made-up requests.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::analyse::{Objective, quantile};
use crate::record::{Endpoint, Recorder, SecondRecord, Verdicts};

/// The three phases of a fault run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Before,
    During,
    After,
}

impl Phase {
    pub const ALL: [Phase; 3] = [Phase::Before, Phase::During, Phase::After];

    pub fn name(self) -> &'static str {
        match self {
            Self::Before => "before",
            Self::During => "during",
            Self::After => "after",
        }
    }
}

/// When the fault was in force, from the start of the measured window, as the injector saw
/// it. A crash ends when the restart begins; the restart's own time is part of the recovery.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FaultWindow {
    pub started_ms: f64,
    pub ended_ms: f64,
    /// A crash: when the restarted process answered `/ready`.
    pub restart_ready_ms: Option<f64>,
}

/// A second of load after the fault "meets" when its p99 of every request is within the
/// objective and at least this share of its requests got complete answers (a looser share
/// than the error budget: one failure in a second of a few hundred requests is not a system
/// that has not recovered).
pub const RECOVERED_SHARE: f64 = 0.99;

/// How many slices the recovery judges together: one second of 100 ms slices.
pub const RECOVERY_WINDOW_SLICES: usize = 10;

/// One endpoint in one phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseStats {
    /// Requests due in the phase that ended (answered, failed, timed out or never sent).
    pub requests: u64,
    pub ok: u64,
    pub degraded: u64,
    pub failed: u64,
    /// The failed requests by kind (`overflow`: never sent, the generator's bound on requests
    /// in flight was full; `timeout`; `status_503`; ...).
    pub failures: BTreeMap<String, u64>,
    /// ok / requests.
    pub availability: f64,
    /// Latency of every request from its due time, failures included.
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
    /// Complete answers per second of the phase.
    pub goodput: f64,
    /// Missed the objective: more failed (and, unless degraded answers are ok, degraded)
    /// requests than the error budget allows, or a p99 above the objective.
    pub breached: bool,
}

impl PhaseStats {
    fn of(verdicts: &Verdicts, seconds: f64, objective: &Objective, degraded_ok: bool) -> Self {
        let requests = verdicts.requests();
        let bad = requests - verdicts.succeeded(degraded_ok);
        let p99_us = quantile(&verdicts.all_latency, 0.99);
        let breached = requests > 0
            && (bad as f64 / requests as f64 > objective.error_budget || p99_us.is_some_and(|p| p > objective.p99_us));
        Self {
            requests,
            ok: verdicts.ok,
            degraded: verdicts.degraded,
            failed: verdicts.failed(),
            failures: verdicts.failures.clone(),
            availability: if requests == 0 { 1.0 } else { verdicts.ok as f64 / requests as f64 },
            p50_us: quantile(&verdicts.all_latency, 0.5),
            p99_us,
            goodput: if seconds > 0.0 { verdicts.ok as f64 / seconds } else { 0.0 },
            breached,
        }
    }
}

/// One 100 ms slice of the window, all endpoints together (the timeline).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SliceStats {
    pub start_ms: f64,
    pub phase: Phase,
    pub requests: u64,
    pub ok: u64,
    pub degraded: u64,
    pub failed: u64,
    pub p99_us: Option<u64>,
}

/// What one architecture's users saw in one scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultOutcome {
    pub phases: BTreeMap<Endpoint, BTreeMap<Phase, PhaseStats>>,
    /// Endpoints that missed their objective during the fault although they do not need the
    /// faulted module.
    pub blast_radius: Vec<Endpoint>,
    /// Endpoints that need the module and missed their objective during the fault.
    pub breached_needing: Vec<Endpoint>,
    /// Whether the mix had an endpoint that needs the module (otherwise the first success is
    /// not measured).
    pub module_in_mix: bool,
    /// From the fault's end to the first complete answer of an endpoint that needs the module
    /// (`None`: none in the window after it).
    pub first_success_ms: Option<f64>,
    /// From the fault's end to the start of the first slice from which every second (all
    /// endpoints together) met the objective with [`RECOVERED_SHARE`] complete answers
    /// (`None`: the window ended before that: did not recover).
    pub recovered_ms: Option<f64>,
    pub timeline: Vec<SliceStats>,
}

/// Which phase a slice starting at `start` (of length `slice`) belongs to: `During` from the
/// slice holding the fault's start to the one holding its end (so the phase includes up to a
/// slice of healthy time at each edge). Requests belong to the slice they were due in: one due
/// just before the fault and caught in it counts as `Before`.
pub fn phase_of(start: Duration, slice: Duration, fault: &FaultWindow) -> Phase {
    let start_ms = start.as_secs_f64() * 1000.0;
    let end_ms = start_ms + slice.as_secs_f64() * 1000.0;
    if end_ms <= fault.started_ms {
        Phase::Before
    } else if start_ms < fault.ended_ms {
        Phase::During
    } else {
        Phase::After
    }
}

/// Whether a run of slices (a second of them), all endpoints together, looks recovered.
fn window_meets(slices: &[SecondRecord], objective: &Objective, degraded_ok: bool) -> bool {
    let (mut requests, mut complete) = (0, 0);
    let mut latency = crate::record::latency_histogram();
    for slice in slices {
        requests += slice.requests();
        complete += slice.succeeded(degraded_ok);
        latency.add(slice.merged_all_latency()).expect("equal bounds");
    }
    requests == 0
        || (complete as f64 / requests as f64 >= RECOVERED_SHARE && latency.value_at_quantile(0.99) <= objective.p99_us)
}

/// Analyses a fault run recorded in slices of `slice`, the faulted module `module`.
pub fn analyse(
    recorder: &Recorder,
    slice: Duration,
    fault: &FaultWindow,
    module: &str,
    objective: &Objective,
    degraded_ok: bool,
) -> FaultOutcome {
    let start_of = |i: usize| slice * i as u32;
    let slices = &recorder.seconds;
    let phase_at: Vec<Phase> = (0..slices.len()).map(|i| phase_of(start_of(i), slice, fault)).collect();
    // Per endpoint and phase: the verdicts merged over the phase's slices.
    let mut merged: BTreeMap<Endpoint, BTreeMap<Phase, Verdicts>> = BTreeMap::new();
    let mut phase_secs: BTreeMap<Phase, f64> = BTreeMap::new();
    for (record, &phase) in slices.iter().zip(&phase_at) {
        *phase_secs.entry(phase).or_default() += slice.as_secs_f64();
        for (endpoint, verdicts) in &record.endpoints {
            merged.entry(*endpoint).or_default().entry(phase).or_default().merge(verdicts);
        }
    }
    let phases: BTreeMap<Endpoint, BTreeMap<Phase, PhaseStats>> = merged
        .iter()
        .map(|(endpoint, by_phase)| {
            let stats = by_phase
                .iter()
                .map(|(phase, v)| {
                    (*phase, PhaseStats::of(v, phase_secs.get(phase).copied().unwrap_or(0.0), objective, degraded_ok))
                })
                .collect();
            (*endpoint, stats)
        })
        .collect();
    let needs = |e: &Endpoint| super::modules_needed(*e).contains(&module);
    let breached_during = |e: &&Endpoint| phases[*e].get(&Phase::During).is_some_and(|s| s.breached);
    let blast_radius = phases.keys().filter(breached_during).filter(|e| !needs(e)).copied().collect();
    let breached_needing = phases.keys().filter(breached_during).filter(|e| needs(e)).copied().collect();

    let first_after = phase_at.iter().position(|p| *p == Phase::After);
    let since_end = |i: usize| (start_of(i).as_secs_f64() * 1000.0 - fault.ended_ms).max(0.0);
    let module_in_mix = merged.keys().any(needs);
    let first_success_ms = first_after.and_then(|a| {
        (a..slices.len()).find(|i| slices[*i].endpoints.iter().any(|(e, v)| needs(e) && v.ok > 0)).map(since_end)
    });
    // The first slice from which every second-long run of slices met: scan back from the last
    // full second.
    let mut recovered_ms = None;
    if let Some(a) = first_after {
        let mut i = slices.len().saturating_sub(RECOVERY_WINDOW_SLICES);
        while i >= a && i + RECOVERY_WINDOW_SLICES <= slices.len() {
            if !window_meets(&slices[i..i + RECOVERY_WINDOW_SLICES], objective, degraded_ok) {
                break;
            }
            recovered_ms = Some(since_end(i));
            if i == 0 {
                break;
            }
            i -= 1;
        }
    }
    let timeline = slices
        .iter()
        .zip(&phase_at)
        .enumerate()
        .map(|(i, (r, &phase))| SliceStats {
            start_ms: start_of(i).as_secs_f64() * 1000.0,
            phase,
            requests: r.requests(),
            ok: r.ok,
            degraded: r.degraded,
            failed: r.failed,
            p99_us: quantile(&r.merged_all_latency(), 0.99),
        })
        .collect();
    FaultOutcome { phases, blast_radius, breached_needing, module_in_mix, first_success_ms, recovered_ms, timeline }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Failure, Outcome, Verdict};

    const SLICE: Duration = Duration::from_millis(100);
    const WARMUP: Duration = Duration::from_secs(1);

    fn objective() -> Objective {
        Objective { p99_us: 100_000, error_budget: 0.001, min_achieved_fraction: 0.95 }
    }

    /// One request of `endpoint` due `at_ms` into the window, taking `ms`.
    fn request(recorder: &mut Recorder, endpoint: Endpoint, at_ms: u64, ms: u64, verdict: Verdict) {
        recorder.record(&Outcome {
            endpoint,
            due: WARMUP + Duration::from_millis(at_ms),
            latency: Duration::from_millis(ms),
            service_time: Duration::from_millis(ms),
            verdict,
        });
    }

    /// 4 s window, fault from 1,000 to 2,000 ms: product pages degraded during it, search
    /// fine; `search_during` says how search fares during the fault.
    fn run(search_during: Verdict, slow_after_until_ms: u64) -> FaultOutcome {
        let mut recorder = Recorder::with_slices(WARMUP, SLICE);
        for at in (0..4000).step_by(20) {
            let during = (1000..2000).contains(&at);
            let page = if during { Verdict::Degraded } else { Verdict::Ok };
            let slow = (2000..slow_after_until_ms).contains(&at);
            request(&mut recorder, Endpoint::ProductPage, at, if slow { 500 } else { 2 }, page);
            let search = if during { search_during } else { Verdict::Ok };
            request(&mut recorder, Endpoint::Search, at + 5, 1, search);
        }
        let fault = FaultWindow { started_ms: 1000.0, ended_ms: 2000.0, restart_ready_ms: None };
        analyse(&recorder, SLICE, &fault, "inventory", &objective(), false)
    }

    #[test]
    fn phases_split_at_the_fault_and_a_contained_fault_has_no_blast_radius() {
        let outcome = run(Verdict::Ok, 0);
        let page = &outcome.phases[&Endpoint::ProductPage];
        assert_eq!(page[&Phase::Before].requests, 50);
        assert_eq!(page[&Phase::During].degraded, 50);
        assert_eq!(page[&Phase::During].availability, 0.0);
        assert!(page[&Phase::During].breached && !page[&Phase::Before].breached);
        assert!((page[&Phase::After].goodput - 50.0).abs() < 1e-9, "100 answers in 2 s");
        assert_eq!(outcome.breached_needing, vec![Endpoint::ProductPage]);
        assert!(outcome.blast_radius.is_empty(), "search does not need inventory and was fine");
        assert_eq!(outcome.first_success_ms, Some(0.0));
        assert_eq!(outcome.recovered_ms, Some(0.0));
        assert_eq!(outcome.timeline.len(), 40);
        assert_eq!(outcome.timeline[10].degraded, 5);
    }

    #[test]
    fn an_endpoint_that_does_not_need_the_module_but_failed_is_in_the_blast_radius() {
        let outcome = run(Verdict::Failed(Failure::Status(503)), 0);
        assert_eq!(outcome.blast_radius, vec![Endpoint::Search]);
    }

    #[test]
    fn recovery_waits_for_the_last_second_that_missed_and_none_means_not_recovered() {
        // Slow (500 ms) product pages until 2,500 ms: the first second-long run of slices
        // without them starts at 2,500.
        let outcome = run(Verdict::Ok, 2500);
        assert_eq!(outcome.recovered_ms, Some(500.0));
        assert_eq!(outcome.first_success_ms, Some(0.0), "slow answers are still answers");
        // Slow to the window's end: did not recover.
        assert_eq!(run(Verdict::Ok, 4000).recovered_ms, None);
    }

    #[test]
    fn one_failure_in_a_recovered_second_is_tolerated_two_percent_are_not() {
        let fault = FaultWindow { started_ms: 1000.0, ended_ms: 2000.0, restart_ready_ms: None };
        let mut recorder = Recorder::with_slices(WARMUP, SLICE);
        for at in (0..4000).step_by(5) {
            // 200 requests a second; after the fault, one fails.
            let verdict = if at == 3100 { Verdict::Failed(Failure::Status(503)) } else { Verdict::Ok };
            request(&mut recorder, Endpoint::Search, at, 1, verdict);
        }
        let outcome = analyse(&recorder, SLICE, &fault, "inventory", &objective(), false);
        assert_eq!(outcome.recovered_ms, Some(0.0));
        assert!(!outcome.module_in_mix && outcome.first_success_ms.is_none(), "search does not need inventory");

        let mut recorder = Recorder::with_slices(WARMUP, SLICE);
        for at in (0..4000).step_by(5) {
            // From 3,000 ms to the end, 2% fail.
            let verdict = if at >= 3000 && at % 250 == 0 { Verdict::Failed(Failure::Timeout) } else { Verdict::Ok };
            request(&mut recorder, Endpoint::Search, at, 1, verdict);
        }
        let outcome = analyse(&recorder, SLICE, &fault, "inventory", &objective(), false);
        assert_eq!(outcome.recovered_ms, None, "2% failing to the end is not recovered");
    }

    #[test]
    fn slices_straddling_the_fault_s_edges_belong_to_it() {
        let fault = FaultWindow { started_ms: 1050.0, ended_ms: 1950.0, restart_ready_ms: None };
        let phase = |ms: u64| phase_of(Duration::from_millis(ms), SLICE, &fault);
        assert_eq!(phase(900), Phase::Before, "ends at 1,000, before the fault began");
        assert_eq!(phase(1000), Phase::During, "holds the fault's start");
        assert_eq!(phase(1900), Phase::During, "holds the fault's end");
        assert_eq!(phase(2000), Phase::After);
    }
}
