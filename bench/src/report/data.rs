//! The raw data of a run, as written to `results/<run-id>/run.json`.
//!
//! Everything a report shows is computed from this file: histograms are stored whole
//! (HdrHistogram V2 + DEFLATE, base64), never as precomputed percentiles, so `splitbench report`
//! rebuilds the same numbers without rerunning. The schema is versioned; a reader refuses a
//! version it does not know, and reads every older one:
//!
//! - version 7 added the saturation stage: closed-loop windows of phase `saturation`, the
//!   architectures alternating round by round, summarised in [`RunData::saturation`] (each
//!   architecture's throughput and CPU per request, the ratios per round), its settings
//!   (`config.saturation_*`), and each architecture's sweep grid as run
//!   (`config.sweep_grids`, which the saturation throughput places). Older files read without
//!   them.
//! - version 6 added, in each second of a window, every endpoint's own counts and histograms
//!   ([`SecondData::endpoints`]: ok, degraded, failures by kind, the successes' and every
//!   request's latency; an endpoint with no request due in that second is left out) and the
//!   second's failures by kind over every endpoint ([`SecondData::failures`]). The merged
//!   fields of a second stay as they were. Older files read with both `None`: not recorded.
//!   Also new in 6: the sweep's rule for disturbed attempts ([`SweepStep::disturbed`],
//!   `config.sweep_sets_aside_disturbed`), the warm-up's ramp (`config.warmup_ramped`), the
//!   latency the connection pool was sized for (`config.pool_latency_ms`; 20 ms before) and
//!   the run's measuring time ([`RunData::measuring_secs`]).
//! - version 5 added the sweep's refinement and re-tests: each sweep window says which step
//!   and attempt it was ([`Measurement::sweep_step`]: grid or refinement, attempt 1, 2, ...),
//!   `config.sweep_attempts` and `config.sweep_resolution` say how steps were decided and how
//!   far the search refined, and two derived summaries are stored for readers of the JSON
//!   (the report recomputes both from the histograms): each sweep window's 95% interval of its
//!   p99 ([`Measurement::p99_interval`]) and each architecture's capacity interval with the
//!   ratio's ([`RunData::capacity`]). Older files read as one attempt per step, all on the
//!   grid, unrefined.
//! - version 4 added, in the fingerprint, the SHA-256 of every binary that ran, the kernel
//!   command line and the CPU topology ([`Fingerprint::binaries`], ...), and per window what
//!   every core did ([`Measurement::cores`]: busy and steal time, so the CPU used by processes
//!   outside the run) and the PSS of every process once a second ([`Measurement::memory`]).
//!   Older files read without them (the report says "not recorded").
//! - after version 3 came the generator's lag per second ([`SecondData::generator_lag`]), the
//!   connections it opened and had open per second ([`SecondData::connections_opened`],
//!   [`SecondData::connections_open`]) and the pool it opened before the window
//!   ([`Measurement::connections_preopened`]); older files read without them ("not recorded").
//!   `generator_lag` is measured from due to the request's last byte written since then; older
//!   files measured it from due to dispatch.
//! - version 3 added degraded answers (`degraded` per endpoint and per second), every request's
//!   latency (`all_latency` per endpoint and per second: failures, timeouts and overflows
//!   included), the seeds of each window ([`Measurement::seeds`]) and `config.degraded_ok`.
//!   Older files read with no degraded answers; their all-requests latency is their successes'
//!   where nothing failed, and unknown otherwise.
//! - version 2 added each system's consistency check ([`Measurement::consistency`]); version 1
//!   files read as runs that were not checked.

use std::collections::BTreeMap;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

use crate::analyse::{
    AttemptFate, CapacityInterval, CapacityRatio, Objective, Percentiles, QuantileInterval, Resolution, Spread,
    StepAttempts, StepVerdict, SweepStage,
};
use crate::check::ConsistencyReport;
use crate::drive::RepetitionSeeds;
use crate::record::{Recorder, SecondRecord, Verdicts, latency_histogram};

pub const SCHEMA_VERSION: u32 = 7;

/// The oldest schema version this splitbench still reads.
pub const OLDEST_READABLE_SCHEMA_VERSION: u32 = 1;

/// A histogram stored as text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EncodedHistogram(pub String);

impl EncodedHistogram {
    pub fn encode(histogram: &Histogram<u64>) -> Self {
        let mut bytes = Vec::new();
        V2DeflateSerializer::new().serialize(histogram, &mut bytes).expect("serialising into memory cannot fail");
        Self(STANDARD.encode(bytes))
    }

    pub fn decode(&self) -> anyhow::Result<Histogram<u64>> {
        let bytes = STANDARD.decode(&self.0).context("histogram is not base64")?;
        let histogram: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| anyhow::anyhow!("bad histogram: {e:?}"))?;
        // Re-home into the standard bounds so histograms from any run merge.
        let mut standard = latency_histogram();
        standard.add(&histogram).map_err(|e| anyhow::anyhow!("histogram out of bounds: {e:?}"))?;
        Ok(standard)
    }
}

/// The machine, build and code a run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub commit: String,
    /// Whether the checkout's code (everything outside `results/`) differed from the commit.
    pub dirty: bool,
    pub build_profile: String,
    pub rustc: String,
    pub cpu_model: String,
    pub cpu_count: usize,
    pub os: String,
    pub kernel: String,
    pub hostname: String,
    pub started_at: String,
    /// The SHA-256 of every binary that ran: the harness and each binary the launcher started
    /// (hashed when started; a binary rebuilt during the run appears once per version). The
    /// commit says which source was checked out, not what was built from it (schema 4).
    #[serde(default)]
    pub binaries: Vec<BinaryHash>,
    /// `/proc/cmdline`: boot options such as `isolcpus`, `nohz_full` or `mitigations` change
    /// what a core costs (schema 4; `None` before or where unreadable).
    #[serde(default)]
    pub kernel_cmdline: Option<String>,
    /// Which cores were online, what each is, and which share a physical core (schema 4).
    #[serde(default)]
    pub cpu_topology: Option<CpuTopology>,
}

/// One binary that ran, by content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinaryHash {
    /// `splitbench` (the harness) or the process name (`monolith`, `gateway`, ...).
    pub name: String,
    pub path: String,
    /// Lower-case hex.
    pub sha256: String,
}

/// The machine's cores as Linux describes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuTopology {
    /// `/sys/devices/system/cpu/online`, e.g. `0-1`.
    pub online: String,
    pub cores: Vec<CpuCore>,
}

/// One logical CPU (a hardware thread).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuCore {
    pub cpu: usize,
    pub model: String,
    /// The clock when the fingerprint was read (it may change under load).
    pub mhz: Option<f64>,
    /// Physical package and core (`physical id`, `core id`), where the kernel says.
    pub package: Option<u32>,
    pub core_id: Option<u32>,
    /// The logical CPUs sharing this one's physical core (SMT siblings, itself included), as
    /// in `topology/thread_siblings_list`: `0` alone means no sibling.
    pub smt_siblings: Option<String>,
}

/// Everything that was configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub command_line: Vec<String>,
    pub mode: String,
    pub mix: String,
    pub mix_weights: Vec<(String, u32)>,
    pub arrivals: String,
    pub rate: Option<f64>,
    pub users: Option<usize>,
    pub think_time_ms: Option<u64>,
    pub warmup_secs: f64,
    /// Whether open loops (the sweep's steps, an open-loop head-to-head run) ramped their rate
    /// linearly from 0 over the first half of each warm-up (schema 6; `None` before, when they
    /// ran at the full rate from the start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup_ramped: Option<bool>,
    /// The latency an open loop's pre-opened connection pool was sized for, ms (`--pool-latency`;
    /// schema 6, `None` before: 20 ms in runs that pre-opened a pool at all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_latency_ms: Option<f64>,
    pub duration_secs: f64,
    /// `None`: the default, 1,024 or 40 ms of the offered rate when that is more.
    pub max_in_flight: Option<usize>,
    pub request_timeout_ms: u64,
    pub logged_in_users: u32,
    /// The base seed; each repetition's seeds are derived from it ([`Measurement::seeds`]).
    pub seed: u64,
    /// Whether degraded answers counted as successes for the error budget and the thresholds
    /// (`--degraded-ok`); by default they count against them (absent before schema 3: false).
    #[serde(default)]
    pub degraded_ok: bool,
    pub database: String,
    pub core_layout: String,
    /// The flags every shop process was started with (ports and database URLs aside).
    pub shop_settings: Vec<String>,
    pub objective: Option<Objective>,
    /// The sweep's rates when given (`--sweep-rates`); empty when each architecture's grid was
    /// placed by its saturation throughput ([`RunConfig::sweep_grids`]).
    pub sweep_rates: Vec<f64>,
    /// Each architecture's sweep grid as run (schema 7; empty before).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sweep_grids: BTreeMap<String, Vec<f64>>,
    /// The saturation stage: closed-loop users, rounds, warm-up and measured window (schema 7;
    /// `None` without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saturation_users: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saturation_rounds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saturation_warmup_secs: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saturation_duration_secs: Option<f64>,
    pub repeat: u32,
    /// Attempts a failing sweep step may take before it is decided (`--sweep-attempts`): it
    /// fails when a majority of them fail (schema 5; `None` before: one attempt, no re-test).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep_attempts: Option<u32>,
    /// Whether a failed attempt disturbed from outside the run was set aside and its step run
    /// again (`--set-aside-disturbed`; schema 6, `None` before: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep_sets_aside_disturbed: Option<bool>,
    /// How far the sweep refined between its highest passing and lowest failing rate
    /// (`--sweep-resolution`; schema 5, `None` before: the grid alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep_resolution: Option<Resolution>,
    /// Each sweep step's unmeasured warm-up and measured window (`--sweep-warmup`,
    /// `--sweep-duration`); `None` in runs recorded before they were stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep_warmup_secs: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep_duration_secs: Option<f64>,
}

/// What one core did over a measured window, from `/proc/stat` (schema 4).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CoreWindow {
    pub core: usize,
    /// Seconds it ran anything (user, nice, system, irq, softirq), this run's processes or not.
    pub busy_seconds: f64,
    /// Seconds the hypervisor ran something else while this virtual core wanted to run.
    pub steal_seconds: f64,
}

/// Every core over a window, and which ones the run used for what (schema 4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoreActivity {
    /// The generator's cores; empty when nothing was pinned (everything shared every core).
    pub generator_cores: Vec<usize>,
    pub system_under_test_cores: Vec<usize>,
    pub cores: Vec<CoreWindow>,
}

/// CPU on a group of cores used by everything but this run's processes over a window.
#[derive(Debug, Clone, PartialEq)]
pub struct Interference {
    /// `generator`, `system under test`, or `all` when nothing was pinned.
    pub group: &'static str,
    pub cores: Vec<usize>,
    /// Busy seconds of those cores ([`CoreWindow::busy_seconds`]), summed.
    pub busy_seconds: f64,
    /// CPU seconds of this run's processes that belong on those cores.
    pub ours_seconds: f64,
    /// Busy minus ours, never below 0 (`/proc` counts in 10 ms ticks, so small negative
    /// differences are rounding).
    pub outside_seconds: f64,
    /// `outside_seconds` over the window's length: the share of one core.
    pub outside_share_of_a_core: f64,
    /// The most any one of those cores was stolen, as a share of that core over the window.
    pub max_steal_share: f64,
}

/// Proportional set size of every process, sampled once a second over the measured window
/// (schema 4). PSS splits each shared page among the processes mapping it, so the sum over
/// processes is what they take together (a sum of RSS or `VmHWM` counts shared pages once per
/// process, and `VmHWM` is a peak over the process's whole life, start-up included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemorySamples {
    /// Seconds from the start of the measured window to each sample.
    pub at_secs: Vec<f64>,
    /// Each process of the system under test: its PSS at each sample, in bytes.
    pub processes: Vec<PssSeries>,
    /// The harness's own PSS at each sample (not part of the system under test).
    pub generator: PssSeries,
}

/// One process's PSS samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PssSeries {
    pub name: String,
    pub pss_bytes: Vec<u64>,
}

/// Mean and maximum of a series of samples, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MemoryStats {
    pub mean_bytes: u64,
    pub max_bytes: u64,
}

impl MemoryStats {
    /// `None` for no samples.
    pub fn of(samples: &[u64]) -> Option<Self> {
        let max_bytes = *samples.iter().max()?;
        let sum: u128 = samples.iter().map(|&b| u128::from(b)).sum();
        Some(Self { mean_bytes: (sum / samples.len() as u128) as u64, max_bytes })
    }
}

impl PssSeries {
    pub fn stats(&self) -> Option<MemoryStats> {
        MemoryStats::of(&self.pss_bytes)
    }
}

impl MemorySamples {
    /// The system under test's PSS at each sample: its processes' summed.
    pub fn system_under_test(&self) -> Vec<u64> {
        (0..self.at_secs.len())
            .map(|i| self.processes.iter().map(|p| p.pss_bytes.get(i).copied().unwrap_or(0)).sum())
            .collect()
    }

    /// Mean and maximum of the per-second sum over the system under test.
    pub fn system_under_test_stats(&self) -> Option<MemoryStats> {
        MemoryStats::of(&self.system_under_test())
    }

    /// A process's series, by name (`generator` for the harness).
    pub fn process(&self, name: &str) -> Option<&PssSeries> {
        if name == self.generator.name {
            return Some(&self.generator);
        }
        self.processes.iter().find(|p| p.name == name)
    }
}

/// Resource use of one process over the measured window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessCost {
    pub name: String,
    pub cpu_seconds: f64,
    pub peak_rss_bytes: u64,
    /// Context switches of its threads during the window (absent, so 0, in runs recorded
    /// before they were sampled).
    #[serde(default)]
    pub context_switches: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointData {
    pub ok: u64,
    /// Correct but partial answers (schema 3; absent before, so 0).
    #[serde(default)]
    pub degraded: u64,
    pub failures: BTreeMap<String, u64>,
    /// Latency of the ok answers.
    pub latency: EncodedHistogram,
    /// Latency of every request: ok, degraded and failed (schema 3; `None` before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_latency: Option<EncodedHistogram>,
    pub service_time: EncodedHistogram,
}

impl EndpointData {
    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    /// Every request's latency; `None` in a run recorded before it was kept, unless nothing
    /// failed there (then the successes were every request).
    pub fn all_requests(&self) -> anyhow::Result<Option<Histogram<u64>>> {
        all_requests(self.all_latency.as_ref(), &self.latency, self.failed() + self.degraded)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecondData {
    pub due: u64,
    pub ok: u64,
    /// Correct but partial answers (schema 3; absent before, so 0).
    #[serde(default)]
    pub degraded: u64,
    pub failed: u64,
    /// All endpoints' latency (from due) of the ok answers due in this second.
    pub latency: EncodedHistogram,
    /// All endpoints' latency of every request due in this second (schema 3; `None` before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_latency: Option<EncodedHistogram>,
    /// The generator's lag at send (due to last byte written) of the requests due in this
    /// second; the seconds merge exactly into [`Measurement::generator_lag`] (`None` in runs
    /// recorded before it was kept per second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_lag: Option<EncodedHistogram>,
    /// Connections the generator opened during this second; each one's connect was inside a
    /// request's latency unless it replaced a retired idle one (`None`: not recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections_opened: Option<u64>,
    /// The most connections the generator had open in this second (`None`: not recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections_open: Option<u64>,
    /// Failed requests due in this second by kind, every endpoint's summed (schema 6; `None`
    /// before: not recorded). The same kind names as [`EndpointData::failures`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures: Option<BTreeMap<String, u64>>,
    /// Each endpoint's requests due in this second, by endpoint name (schema 6; `None` before:
    /// not recorded). Endpoints with no request due in this second are left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<BTreeMap<String, SecondEndpointData>>,
}

impl SecondData {
    /// The second as stored: its merged fields and, per endpoint, its own.
    fn from_record(second: &SecondRecord) -> Self {
        let endpoints = second
            .endpoints
            .iter()
            .filter(|(_, record)| record.requests() > 0)
            .map(|(endpoint, record)| (endpoint.name().to_string(), SecondEndpointData::from_record(record)))
            .collect();
        Self {
            due: second.due,
            ok: second.ok,
            degraded: second.degraded,
            failed: second.failed,
            latency: EncodedHistogram::encode(&second.merged_latency()),
            all_latency: Some(EncodedHistogram::encode(&second.merged_all_latency())),
            generator_lag: Some(EncodedHistogram::encode(&second.generator_lag)),
            connections_opened: Some(second.connections_opened),
            connections_open: Some(second.connections_open),
            failures: Some(second.failures()),
            endpoints: Some(endpoints),
        }
    }

    /// Every request's latency (see [`EndpointData::all_requests`]).
    pub fn all_requests(&self) -> anyhow::Result<Option<Histogram<u64>>> {
        all_requests(self.all_latency.as_ref(), &self.latency, self.failed + self.degraded)
    }
}

/// One endpoint's requests due in one second (schema 6): the shape of [`EndpointData`]
/// without the service time, and with every request's latency left out where it equals the
/// successes' (every request ok), to keep `run.json` small.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecondEndpointData {
    pub ok: u64,
    pub degraded: u64,
    /// Failed requests by kind; absent when none failed ([`SecondEndpointData::failed`] is
    /// their sum, as [`EndpointData::failed`] is over the window).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failures: BTreeMap<String, u64>,
    /// Latency (from due) of the ok answers.
    pub latency: EncodedHistogram,
    /// Latency (from due) of every request; absent when every request was ok, so the same as
    /// `latency` ([`SecondEndpointData::all_requests`] reads either way).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_latency: Option<EncodedHistogram>,
}

impl SecondEndpointData {
    fn from_record(record: &Verdicts) -> Self {
        let every_request_ok = record.degraded == 0 && record.failed() == 0;
        Self {
            ok: record.ok,
            degraded: record.degraded,
            failures: record.failures.clone(),
            latency: EncodedHistogram::encode(&record.latency),
            all_latency: (!every_request_ok).then(|| EncodedHistogram::encode(&record.all_latency)),
        }
    }

    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    /// Requests of this endpoint due in the second: ok, degraded and failed.
    pub fn requests(&self) -> u64 {
        self.ok + self.degraded + self.failed()
    }

    /// Every request's latency (stored, or the successes' where every request was ok).
    pub fn all_requests(&self) -> anyhow::Result<Histogram<u64>> {
        let all = all_requests(self.all_latency.as_ref(), &self.latency, self.failed() + self.degraded)?;
        all.context("every request's latency is stored wherever a request was not ok")
    }
}

/// `all` decoded; for older runs without it, the successes when nothing else happened.
fn all_requests(
    all: Option<&EncodedHistogram>,
    successes: &EncodedHistogram,
    not_ok: u64,
) -> anyhow::Result<Option<Histogram<u64>>> {
    match all {
        Some(all) => all.decode().map(Some),
        None if not_ok == 0 => successes.decode().map(Some),
        None => Ok(None),
    }
}

/// The books of a system, checked after its last window (see [`crate::check`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsistencyCheck {
    /// How long the harness waited for unfinished checkouts to settle before checking.
    pub waited_ms: u64,
    /// What the checker found; at most [`ConsistencyReport::STORED_VIOLATIONS`] violations are
    /// kept, the counts are complete. `None` when the check could not run (see `error`).
    pub report: Option<ConsistencyReport>,
    pub error: Option<String>,
    /// Checkouts the shop's recovery loop settled during the system's life (the sum of
    /// `splitbench_checkout_recoveries_total` over its processes' `/metrics`); `None` if not
    /// read (runs recorded before it was).
    #[serde(default)]
    pub recoveries: Option<u64>,
}

impl ConsistencyCheck {
    /// Adds another check of the same kind of system (the sweep's steps, each on a fresh
    /// system): counts summed, the longest wait kept, any error kept.
    pub fn absorb(&mut self, other: &ConsistencyCheck) {
        self.waited_ms = self.waited_ms.max(other.waited_ms);
        match (&mut self.report, &other.report) {
            (Some(mine), Some(theirs)) => mine.absorb(theirs),
            (None, Some(_)) => {}
            (_, None) => {}
        }
        if self.error.is_none() {
            self.error.clone_from(&other.error);
        }
        if other.report.is_none() {
            self.report = None;
        }
        self.recoveries = match (self.recoveries, other.recoveries) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
    }
}

/// The consistency checks of a run, one per checked system kind (`report::checked_system`:
/// an architecture's head-to-head run, or its sweep in one repetition, whose steps each ran
/// on a fresh system and are summed here), in the order they were measured.
pub fn merged_checks(run: &RunData) -> Vec<(String, ConsistencyCheck, usize)> {
    let mut merged: Vec<(String, ConsistencyCheck, usize)> = Vec::new();
    for m in &run.measurements {
        let Some(check) = &m.consistency else { continue };
        let system = crate::report::checked_system(m);
        match merged.iter_mut().find(|(name, _, _)| *name == system) {
            Some((_, total, systems)) => {
                total.absorb(check);
                *systems += 1;
            }
            None => merged.push((system, check.clone(), 1)),
        }
    }
    merged
}

/// One measured window: one architecture at one load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub architecture: String,
    /// `main` for the head-to-head run, `sweep` for a sweep step.
    pub phase: String,
    pub offered_rate: Option<f64>,
    pub repetition: u32,
    pub duration_secs: f64,
    pub endpoints: BTreeMap<String, EndpointData>,
    /// The generator's lag over the window: from due to the request's last byte written (to
    /// dispatch in runs recorded before the lag was kept per second).
    pub generator_lag: EncodedHistogram,
    /// Connections the generator opened before the schedule started, so outside every
    /// request's latency (`None` in runs recorded before the pool was opened ahead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections_preopened: Option<u64>,
    pub timeline: Vec<SecondData>,
    pub processes: Vec<ProcessCost>,
    pub generator: ProcessCost,
    /// The seeds this window's schedule and requests were drawn from: the same for both
    /// architectures within a repetition. Absent before schema 3, when every window used
    /// `config.seed` for its schedule and `config.seed + repetition` for its requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seeds: Option<RepetitionSeeds>,
    /// Set on the last window of each started system: its books, checked once it was quiet.
    /// Absent in runs recorded before checking existed (schema version 1) and for the null server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<ConsistencyCheck>,
    /// What every core did during the window (schema 4; absent before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cores: Option<CoreActivity>,
    /// PSS once a second during the window (schema 4; absent before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemorySamples>,
    /// A sweep window's place in the search: grid or refinement, and which attempt at its rate
    /// (schema 5; absent before and for head-to-head windows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep_step: Option<SweepStep>,
    /// The 95% confidence interval of the p99 of every request (derived from the histograms
    /// when written, for readers of the JSON; schema 5, absent before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_interval: Option<QuantileInterval>,
}

/// Which sweep step, and which attempt at it, a window was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepStep {
    pub stage: SweepStage,
    /// 1 for the first attempt; a failing first attempt is followed by re-tests.
    pub attempt: u32,
    /// The attempt failed while something outside the run took more than
    /// [`crate::report::INTERFERENCE_WARNING_SHARE`] of a core on the run's cores (or the
    /// hypervisor stole that much): it is kept, but does not count towards the step's decision,
    /// and the step was re-run (schema 6; absent, so false, before).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disturbed: bool,
}

/// One sweep step of an architecture in a repetition: its attempts' verdicts, in order, and the
/// decision they reached ([`StepAttempts`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DecidedStep {
    pub architecture: String,
    pub repetition: u32,
    pub rate: f64,
    pub stage: SweepStage,
    pub attempts: Vec<StepVerdict>,
    /// `None`: the attempts stopped before deciding (an interrupted run).
    pub passed: Option<bool>,
}

/// Every architecture's capacity as an interval, and the ratio of two (schema 5; derived).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    /// The confidence of the step intervals (0.95); the capacity interval itself is the
    /// bracket the search found, `[highest passing, lowest failing above it)`.
    pub confidence: f64,
    pub resolution: Option<Resolution>,
    pub attempts: u32,
    pub architectures: Vec<ArchitectureCapacity>,
    /// monolith / microservices, when both were swept.
    pub ratio: Option<CapacityRatio>,
}

/// One architecture's capacity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchitectureCapacity {
    pub architecture: String,
    /// Every repetition's interval, hulled: from the lowest `low` to the highest `high`.
    pub interval: CapacityInterval,
    /// Each repetition's interval, in order.
    pub repetitions: Vec<CapacityInterval>,
    /// Median and spread of the repetitions' highest passing rates.
    pub highest_passing: Spread,
}

/// The saturation stage's answer (schema 7; derived): each architecture's throughput in
/// closed loop, its one core never idle, in each round, and the monolith / microservices
/// ratios within each round (its windows ran back to back).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Saturation {
    pub users: Option<usize>,
    pub architectures: Vec<ArchitectureSaturation>,
    /// Per round, monolith / microservices throughput (answered requests per second).
    pub throughput_ratio: Option<RoundRatio>,
    /// Per round, microservices / monolith CPU per answered request.
    pub cpu_ratio: Option<RoundRatio>,
}

/// One architecture's saturation windows, one per round, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchitectureSaturation {
    pub architecture: String,
    /// The round of each window (the ratios pair windows by it; empty in the first schema-7
    /// files, which paired by order).
    #[serde(default)]
    pub rounds: Vec<u32>,
    /// Requests answered (ok, or degraded with `--degraded-ok`) per second of each window.
    pub throughput: Vec<f64>,
    pub throughput_spread: Spread,
    /// CPU of the system under test per answered request, µs.
    pub cpu_us_per_request: Vec<f64>,
    /// p99 of every request, µs.
    pub p99_us: Vec<u64>,
    /// Failed (and, unless `--degraded-ok`, degraded) requests over all of each window's.
    pub error_rate: Vec<f64>,
}

/// A ratio measured once per round: its median over the rounds, with a distribution-free 95%
/// interval of that median, and its spread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundRatio {
    pub each: Vec<f64>,
    pub spread: Spread,
    /// `[X_(l), X_(u)]` of the sorted ratios: holds the median of the ratio's distribution with
    /// probability ≥ 95% (order statistics, [`crate::analyse::quantile_confidence_ranks`]);
    /// `None` with fewer than 6 rounds, too few to bound it at 95%. It assumes independent
    /// rounds (each round runs on systems of its own; they share the machine).
    pub median_interval: Option<(f64, f64)>,
    /// The medians of the first and the second half of the rounds (in order; with 4 rounds or
    /// more): far apart, the rounds drifted, and the interval, which takes them as
    /// exchangeable, understates the uncertainty ([`RoundRatio::drifted`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub halves: Option<(f64, f64)>,
}

impl RoundRatio {
    /// How far apart the halves' medians may be, as a share of the whole median, before the
    /// report warns of a drift.
    pub const DRIFT_WARNING: f64 = 0.10;

    /// `numerator[i] / denominator[i]` per round, in round order; a round whose denominator is
    /// zero (one side answered nothing) is infinite, so it sorts last rather than vanishing.
    /// `None` without rounds.
    pub fn of(numerator: &[f64], denominator: &[f64]) -> Option<Self> {
        let each: Vec<f64> =
            numerator.iter().zip(denominator).map(|(n, d)| if *d > 0.0 { n / d } else { f64::INFINITY }).collect();
        let spread = Spread::of(&each)?;
        let half = each.len() / 2;
        let halves = (each.len() >= 4)
            .then(|| Some((Spread::of(&each[..half])?.median, Spread::of(&each[each.len() - half..])?.median)))
            .flatten();
        let median_interval = crate::analyse::median_interval(&each);
        Some(Self { each, spread, median_interval, halves })
    }

    /// The halves' medians when they differ by more than [`Self::DRIFT_WARNING`] of the median.
    pub fn drifted(&self) -> Option<(f64, f64)> {
        let (first, second) = self.halves?;
        ((first - second).abs() > Self::DRIFT_WARNING * self.spread.median).then_some((first, second))
    }

    pub fn describe(&self) -> String {
        let each: Vec<String> = self.each.iter().map(|r| format!("{r:.2}")).collect();
        let interval = self.median_interval.map_or_else(
            || "too few rounds for its 95% interval".to_string(),
            |(l, h)| format!("95% interval [{l:.2}, {h:.2}]"),
        );
        format!(
            "median {:.2} ({interval}), {:.2}..{:.2} over {} rounds ({})",
            self.spread.median,
            self.spread.min,
            self.spread.max,
            self.each.len(),
            each.join(", ")
        )
    }
}

impl RunData {
    pub fn saturation_measurements(&self) -> impl Iterator<Item = &Measurement> {
        self.measurements.iter().filter(|m| m.phase == "saturation")
    }

    /// The saturation stage's throughput and cost per architecture, and the ratios per round;
    /// `None` without a saturation stage.
    pub fn saturation_summary(&self) -> anyhow::Result<Option<Saturation>> {
        let degraded_ok = self.config.degraded_ok;
        let mut architectures = Vec::new();
        for name in crate::report::distinct_in_order(self.saturation_measurements().map(|m| &m.architecture)) {
            let windows: Vec<&Measurement> =
                self.saturation_measurements().filter(|m| m.architecture == *name).collect();
            let throughput: Vec<f64> = windows.iter().map(|m| m.achieved_rate(degraded_ok)).collect();
            let mut p99_us = Vec::new();
            for m in &windows {
                p99_us.push(m.all_requests_percentiles()?.map_or(0, |p| p.p99));
            }
            architectures.push(ArchitectureSaturation {
                architecture: name.clone(),
                rounds: windows.iter().map(|m| m.repetition).collect(),
                throughput_spread: Spread::of(&throughput).expect("one window at least"),
                throughput,
                cpu_us_per_request: windows.iter().map(|m| m.cpu_ms_per_request() * 1000.0).collect(),
                p99_us,
                error_rate: windows.iter().map(|m| m.error_rate(degraded_ok)).collect(),
            });
        }
        if architectures.is_empty() {
            return Ok(None);
        }
        let find = |name: &str| architectures.iter().find(|a| a.architecture == name);
        let (throughput_ratio, cpu_ratio) = match (find("monolith"), find("microservices")) {
            (Some(mono), Some(micro)) => {
                // Paired by round number: each round both ran, as (monolith's, microservices') index.
                let pairs: Vec<(usize, usize)> = mono
                    .rounds
                    .iter()
                    .enumerate()
                    .filter_map(|(i, round)| Some((i, micro.rounds.iter().position(|r| r == round)?)))
                    .collect();
                let of = |a: &[f64], pick: fn(&(usize, usize)) -> usize| -> Vec<f64> {
                    pairs.iter().map(|pair| a[pick(pair)]).collect()
                };
                (
                    RoundRatio::of(&of(&mono.throughput, |p| p.0), &of(&micro.throughput, |p| p.1)),
                    RoundRatio::of(&of(&micro.cpu_us_per_request, |p| p.1), &of(&mono.cpu_us_per_request, |p| p.0)),
                )
            }
            _ => (None, None),
        };
        Ok(Some(Saturation { users: self.config.saturation_users, architectures, throughput_ratio, cpu_ratio }))
    }

    /// The sweep's steps, each with its attempts and decision, in the order measured.
    pub fn decided_sweep_steps(&self, objective: &Objective) -> anyhow::Result<Vec<DecidedStep>> {
        let attempts = self.config.sweep_attempts.unwrap_or(1);
        let mut steps: Vec<(DecidedStep, StepAttempts)> = Vec::new();
        for m in self.sweep_measurements() {
            let verdict = m.verdict(objective, self.config.degraded_ok)?;
            let rate = m.offered_rate.unwrap_or(0.0);
            let same = |s: &&mut (DecidedStep, StepAttempts)| {
                s.0.architecture == m.architecture && s.0.repetition == m.repetition && s.0.rate == rate
            };
            let step = match steps.iter_mut().find(same) {
                Some(step) => step,
                None => {
                    let stage = m.sweep_step.map_or(SweepStage::Grid, |s| s.stage);
                    let step = DecidedStep {
                        architecture: m.architecture.clone(),
                        repetition: m.repetition,
                        rate,
                        stage,
                        attempts: Vec::new(),
                        passed: None,
                    };
                    let rule = StepAttempts::new(attempts)
                        .setting_aside_disturbed(self.config.sweep_sets_aside_disturbed == Some(true));
                    steps.push((step, rule));
                    steps.last_mut().expect("just pushed")
                }
            };
            // The same rule the sweep applied as it ran, on the flag it stored.
            let disturbed = m.sweep_step.is_some_and(|s| s.disturbed);
            if step.1.record(verdict.sustainable, disturbed) == AttemptFate::Counted {
                step.0.attempts.push(verdict);
            }
            step.0.passed = step.1.decision();
        }
        Ok(steps.into_iter().map(|(step, _)| step).collect())
    }

    /// Each swept architecture's capacity interval, and the monolith / microservices ratio;
    /// `None` without a sweep (or an objective).
    pub fn capacity_summary(&self) -> anyhow::Result<Option<Capacity>> {
        let Some(objective) = self.config.objective else { return Ok(None) };
        let steps = self.decided_sweep_steps(&objective)?;
        if steps.is_empty() {
            return Ok(None);
        }
        // Per architecture (in the order swept), per repetition, the decided steps.
        type Decided = BTreeMap<u32, Vec<(f64, bool)>>;
        let mut by_architecture: Vec<(String, Decided)> = Vec::new();
        for step in &steps {
            let index = match by_architecture.iter().position(|(a, _)| *a == step.architecture) {
                Some(i) => i,
                None => {
                    by_architecture.push((step.architecture.clone(), BTreeMap::new()));
                    by_architecture.len() - 1
                }
            };
            let repetition = by_architecture[index].1.entry(step.repetition).or_default();
            if let Some(passed) = step.passed {
                repetition.push((step.rate, passed));
            }
        }
        let architectures: Vec<ArchitectureCapacity> = by_architecture
            .into_iter()
            .filter_map(|(architecture, repetitions)| {
                let repetitions: Vec<CapacityInterval> =
                    repetitions.values().filter_map(|steps| CapacityInterval::of(steps)).collect();
                let interval = CapacityInterval::hull(&repetitions)?;
                let lows: Vec<f64> = repetitions.iter().map(|r| r.low).collect();
                let highest_passing = Spread::of(&lows)?;
                Some(ArchitectureCapacity { architecture, interval, repetitions, highest_passing })
            })
            .collect();
        let find = |name: &str| architectures.iter().find(|a| a.architecture == name);
        let ratio = match (find("monolith"), find("microservices")) {
            (Some(mono), Some(micro)) => {
                Some(CapacityRatio::of((&mono.architecture, &mono.interval), (&micro.architecture, &micro.interval)))
            }
            _ => None,
        };
        Ok(Some(Capacity {
            confidence: crate::analyse::CONFIDENCE,
            resolution: self.config.sweep_resolution,
            attempts: self.config.sweep_attempts.unwrap_or(1),
            architectures,
            ratio,
        }))
    }

    /// Fills the derived summaries ([`Measurement::p99_interval`], [`RunData::capacity`])
    /// from the raw data, before the file is written.
    pub fn derive_summaries(&mut self) -> anyhow::Result<()> {
        for m in self.measurements.iter_mut().filter(|m| m.phase == "sweep") {
            m.p99_interval = QuantileInterval::p99(&m.judged_latency()?);
        }
        self.capacity = self.capacity_summary()?;
        self.saturation = self.saturation_summary()?;
        Ok(())
    }
}

impl Measurement {
    #[allow(clippy::too_many_arguments)]
    pub fn from_recorder(
        architecture: &str,
        phase: &str,
        offered_rate: Option<f64>,
        repetition: u32,
        duration_secs: f64,
        recorder: &Recorder,
        processes: Vec<ProcessCost>,
        generator: ProcessCost,
    ) -> Self {
        let endpoints = recorder
            .endpoints
            .iter()
            .map(|(endpoint, record)| {
                (
                    endpoint.name().to_string(),
                    EndpointData {
                        ok: record.verdicts.ok,
                        degraded: record.verdicts.degraded,
                        failures: record.verdicts.failures.clone(),
                        latency: EncodedHistogram::encode(&record.verdicts.latency),
                        all_latency: Some(EncodedHistogram::encode(&record.verdicts.all_latency)),
                        service_time: EncodedHistogram::encode(&record.service_time),
                    },
                )
            })
            .collect();
        let timeline = recorder.seconds.iter().map(SecondData::from_record).collect();
        Self {
            architecture: architecture.to_string(),
            phase: phase.to_string(),
            offered_rate,
            repetition,
            duration_secs,
            endpoints,
            generator_lag: EncodedHistogram::encode(&recorder.generator_lag),
            connections_preopened: Some(recorder.connections_preopened),
            timeline,
            processes,
            generator,
            seeds: None,
            consistency: None,
            cores: None,
            memory: None,
            sweep_step: None,
            p99_interval: None,
        }
    }

    /// Complete, correct answers.
    pub fn ok(&self) -> u64 {
        self.endpoints.values().map(|e| e.ok).sum()
    }

    /// Correct but partial answers.
    pub fn degraded(&self) -> u64 {
        self.endpoints.values().map(|e| e.degraded).sum()
    }

    pub fn failed(&self) -> u64 {
        self.endpoints.values().map(EndpointData::failed).sum()
    }

    /// Requests that ended one way or another (answered, failed or given up).
    pub fn attempted(&self) -> u64 {
        self.ok() + self.degraded() + self.failed()
    }

    /// Answers the server gave, complete or degraded: what its costs are divided by.
    pub fn answered(&self) -> u64 {
        self.ok() + self.degraded()
    }

    /// Requests that succeeded: the ok ones, and the degraded ones too when `degraded_ok`.
    pub fn succeeded(&self, degraded_ok: bool) -> u64 {
        if degraded_ok { self.answered() } else { self.ok() }
    }

    pub fn due(&self) -> u64 {
        self.timeline.iter().map(|s| s.due).sum()
    }

    /// Connections the generator opened during the window (`None`: not recorded).
    pub fn connections_opened(&self) -> Option<u64> {
        self.timeline.iter().map(|s| s.connections_opened).sum()
    }

    /// The most connections opened in one second of the window (`None`: not recorded).
    pub fn most_connections_opened_in_a_second(&self) -> Option<u64> {
        let per_second: Option<Vec<u64>> = self.timeline.iter().map(|s| s.connections_opened).collect();
        Some(per_second?.into_iter().max().unwrap_or(0))
    }

    /// The most connections open at once (`None`: not recorded).
    pub fn peak_connections_open(&self) -> Option<u64> {
        let per_second: Option<Vec<u64>> = self.timeline.iter().map(|s| s.connections_open).collect();
        Some(per_second?.into_iter().max().unwrap_or(0))
    }

    /// The generator's lag per second, decoded (`None` for a second, or every second, of a run
    /// recorded before it was kept per second).
    pub fn lag_per_second(&self) -> anyhow::Result<Vec<Option<Histogram<u64>>>> {
        self.timeline.iter().map(|s| s.generator_lag.as_ref().map(EncodedHistogram::decode).transpose()).collect()
    }

    /// The share of requests that did not succeed: failures, and degraded answers unless
    /// `degraded_ok`.
    pub fn error_rate(&self, degraded_ok: bool) -> f64 {
        let attempted = self.attempted();
        if attempted == 0 { 0.0 } else { (attempted - self.succeeded(degraded_ok)) as f64 / attempted as f64 }
    }

    /// Failed requests / requests.
    pub fn failure_rate(&self) -> f64 {
        self.failed() as f64 / self.attempted().max(1) as f64
    }

    /// Degraded answers / requests.
    pub fn degraded_rate(&self) -> f64 {
        self.degraded() as f64 / self.attempted().max(1) as f64
    }

    /// Requests that came due per second over the window: the offered load as actually
    /// scheduled (a Poisson schedule offers slightly more or less than its nominal rate).
    pub fn due_rate(&self) -> f64 {
        self.due() as f64 / self.duration_secs.max(f64::EPSILON)
    }

    /// Judges this window against a sweep objective, on the p99 of every request
    /// ([`Measurement::judged_latency`]).
    pub fn verdict(&self, objective: &Objective, degraded_ok: bool) -> anyhow::Result<StepVerdict> {
        let p99 = Percentiles::of(&self.judged_latency()?).p99;
        let mut verdict =
            objective.judge(self.due_rate(), self.achieved_rate(degraded_ok), self.error_rate(degraded_ok), p99);
        verdict.offered_rate = self.offered_rate.unwrap_or(verdict.offered_rate);
        Ok(verdict)
    }

    /// Successful requests per second over the window (see [`Measurement::succeeded`]).
    pub fn achieved_rate(&self, degraded_ok: bool) -> f64 {
        self.succeeded(degraded_ok) as f64 / self.duration_secs.max(f64::EPSILON)
    }

    /// The ok answers' latency, all endpoints merged exactly.
    pub fn total_latency(&self) -> anyhow::Result<Histogram<u64>> {
        let mut all = latency_histogram();
        for endpoint in self.endpoints.values() {
            all.add(endpoint.latency.decode()?).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        }
        Ok(all)
    }

    /// The ok answers' percentiles.
    pub fn total_percentiles(&self) -> anyhow::Result<Percentiles> {
        Ok(Percentiles::of(&self.total_latency()?))
    }

    /// Every request's latency, all endpoints merged exactly; `None` for a run recorded before
    /// it was kept where something failed (see [`EndpointData::all_requests`]).
    pub fn all_requests_latency(&self) -> anyhow::Result<Option<Histogram<u64>>> {
        let mut all = latency_histogram();
        for endpoint in self.endpoints.values() {
            let Some(histogram) = endpoint.all_requests()? else { return Ok(None) };
            all.add(histogram).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        }
        Ok(Some(all))
    }

    /// Every request's percentiles, if known.
    pub fn all_requests_percentiles(&self) -> anyhow::Result<Option<Percentiles>> {
        Ok(self.all_requests_latency()?.as_ref().map(Percentiles::of))
    }

    /// The latency the sweep's objective and the thresholds judge: every request's, or, in a
    /// run recorded before that was kept, the successes' (what those runs were judged on).
    pub fn judged_latency(&self) -> anyhow::Result<Histogram<u64>> {
        match self.all_requests_latency()? {
            Some(all) => Ok(all),
            None => self.total_latency(),
        }
    }

    pub fn sut_cpu_seconds(&self) -> f64 {
        self.processes.iter().map(|p| p.cpu_seconds).sum()
    }

    /// The sum of the processes' lifetime RSS peaks (`VmHWM`): shared pages counted once per
    /// process, start-up included. [`Measurement::sut_pss`] is what they took together.
    pub fn sut_peak_rss_bytes(&self) -> u64 {
        self.processes.iter().map(|p| p.peak_rss_bytes).sum()
    }

    /// Mean and maximum of the system under test's per-second PSS sum (`None`: not sampled).
    pub fn sut_pss(&self) -> Option<MemoryStats> {
        self.memory.as_ref()?.system_under_test_stats()
    }

    /// CPU used on the run's cores by everything outside the run, per group of cores: with the
    /// generator and the system under test pinned apart, the generator's cores against the
    /// generator's CPU and the system's cores against its processes' CPU; unpinned, every core
    /// against all of them. `None` where the cores were not sampled (runs before schema 4).
    ///
    /// It is an upper bound: kernel work done for the run but not charged to its processes
    /// (loopback packets processed in `ksoftirqd`, interrupts) counts as outside.
    pub fn interference(&self) -> Option<Vec<Interference>> {
        let activity = self.cores.as_ref()?;
        let sut_cpu = self.sut_cpu_seconds();
        let groups: Vec<(&'static str, &[usize], f64)> = if activity.generator_cores.is_empty() {
            let all: &[usize] = &[];
            vec![("all", all, sut_cpu + self.generator.cpu_seconds)]
        } else {
            vec![
                ("generator", &activity.generator_cores, self.generator.cpu_seconds),
                ("system under test", &activity.system_under_test_cores, sut_cpu),
            ]
        };
        let window = self.duration_secs.max(f64::EPSILON);
        Some(
            groups
                .into_iter()
                .map(|(group, cores, ours)| {
                    // An empty list (unpinned) means every core.
                    let in_group: Vec<&CoreWindow> =
                        activity.cores.iter().filter(|c| cores.is_empty() || cores.contains(&c.core)).collect();
                    let busy: f64 = in_group.iter().map(|c| c.busy_seconds).sum();
                    let outside = (busy - ours).max(0.0);
                    Interference {
                        group,
                        cores: in_group.iter().map(|c| c.core).collect(),
                        busy_seconds: busy,
                        ours_seconds: ours,
                        outside_seconds: outside,
                        outside_share_of_a_core: outside / window,
                        max_steal_share: in_group.iter().map(|c| c.steal_seconds / window).fold(0.0, f64::max),
                    }
                })
                .collect(),
        )
    }

    /// Whether context switches were sampled (runs recorded before they were have none).
    fn switches_sampled(&self) -> bool {
        self.processes.iter().chain([&self.generator]).any(|p| p.context_switches > 0)
    }

    /// A process's CPU microseconds and context switches per answered request (complete or
    /// degraded: a partial page is still work done); the switches are `None` in runs recorded
    /// before they were sampled.
    pub fn per_request(&self, process: &ProcessCost) -> (f64, Option<f64>) {
        let answered = self.answered().max(1) as f64;
        (
            process.cpu_seconds * 1e6 / answered,
            self.switches_sampled().then(|| process.context_switches as f64 / answered),
        )
    }

    /// The system under test's context switches per answered request (`None`: not sampled).
    pub fn sut_context_switches_per_request(&self) -> Option<f64> {
        let total: u64 = self.processes.iter().map(|p| p.context_switches).sum();
        self.switches_sampled().then(|| total as f64 / self.answered().max(1) as f64)
    }

    /// CPU milliseconds the system under test spent per answered request.
    pub fn cpu_ms_per_request(&self) -> f64 {
        let answered = self.answered();
        if answered == 0 { 0.0 } else { self.sut_cpu_seconds() * 1000.0 / answered as f64 }
    }

    pub fn failures_by_kind(&self) -> BTreeMap<String, u64> {
        let mut all = BTreeMap::new();
        for endpoint in self.endpoints.values() {
            for (kind, n) in &endpoint.failures {
                *all.entry(kind.clone()).or_insert(0) += n;
            }
        }
        all
    }
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunData {
    pub schema_version: u32,
    pub run_id: String,
    pub fingerprint: Fingerprint,
    pub config: RunConfig,
    pub measurements: Vec<Measurement>,
    /// Each architecture's capacity interval and their ratio (schema 5; derived from the
    /// measurements when written, see [`RunData::capacity_summary`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Capacity>,
    /// The saturation stage's throughput and ratios (schema 7; derived from the measurements
    /// when written, see [`RunData::saturation_summary`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saturation: Option<Saturation>,
    /// Wall-clock seconds from the start of the first system measured to the stop of the last,
    /// its checks included, building not (schema 6; `None` before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measuring_secs: Option<f64>,
}

impl RunData {
    pub fn read(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let version = value["schema_version"].as_u64().context("run.json has no schema_version")?;
        anyhow::ensure!(
            (u64::from(OLDEST_READABLE_SCHEMA_VERSION)..=u64::from(SCHEMA_VERSION)).contains(&version),
            "run.json has schema version {version}; this splitbench reads {OLDEST_READABLE_SCHEMA_VERSION} to {SCHEMA_VERSION}"
        );
        serde_json::from_value(value).with_context(|| format!("reading {}", path.display()))
    }

    pub fn main_measurements(&self) -> impl Iterator<Item = &Measurement> {
        self.measurements.iter().filter(|m| m.phase == "main")
    }

    pub fn sweep_measurements(&self) -> impl Iterator<Item = &Measurement> {
        self.measurements.iter().filter(|m| m.phase == "sweep")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_ratio_has_the_median_and_its_order_statistic_interval() {
        let numerator = [10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, 19.0];
        let ratio = RoundRatio::of(&numerator, &[10.0; 10]).expect("ten rounds");
        assert_eq!(ratio.each.len(), 10);
        assert!((ratio.spread.median - 1.45).abs() < 1e-9);
        // Ten rounds: P(X_(2) <= median <= X_(9)) = 1 - 2 * 11/1024 >= 95%, while X_(3)..X_(8)
        // covers only 89%: the second smallest and the second largest.
        assert_eq!(ratio.median_interval, Some((1.1, 1.8)));
        // Five rounds cannot bound a median at 95% (even min..max covers 1 - 2/32 = 93.75%).
        assert_eq!(RoundRatio::of(&numerator[..5], &[10.0; 5]).expect("five rounds").median_interval, None);
        // A round with nothing in the denominator is infinite (it sorts last), no round at all
        // is no ratio.
        assert_eq!(RoundRatio::of(&[1.0, 2.0], &[0.0, 1.0]).expect("two rounds").each, vec![f64::INFINITY, 2.0]);
        assert_eq!(RoundRatio::of(&[], &[]), None);
        // Rounds rising from 1.0 to 1.9 drifted (halves 1.2 and 1.7, over 10% of 1.45 apart);
        // rounds alternating between two values did not.
        assert_eq!(ratio.halves, Some((1.2, 1.7)));
        assert_eq!(ratio.drifted(), Some((1.2, 1.7)));
        let steady = RoundRatio::of(&[1.0, 1.1, 1.0, 1.1], &[1.0; 4]).expect("four rounds");
        assert_eq!(steady.drifted(), None, "{steady:?}");
    }

    #[test]
    fn histograms_survive_encoding_exactly() {
        let mut histogram = latency_histogram();
        for v in [1, 10, 100, 1_000, 10_000, 12_345_678] {
            histogram.record(v).expect("in range");
        }
        let decoded = EncodedHistogram::encode(&histogram).decode().expect("decodes");
        assert_eq!(decoded, histogram);
    }

    use std::time::Duration;

    use crate::record::{Endpoint, Failure, Outcome, Verdict};

    /// One second of requests ending as `verdicts` (latency in microseconds).
    fn window(verdicts: &[(u64, Verdict)]) -> Measurement {
        let mut recorder = Recorder::new(Duration::ZERO);
        for (i, (latency_us, verdict)) in verdicts.iter().enumerate() {
            let due = Duration::from_millis(i as u64);
            recorder.record_due(due, Duration::ZERO);
            let latency = Duration::from_micros(*latency_us);
            let endpoint = Endpoint::ProductPage;
            recorder.record(&Outcome { endpoint, due, latency, service_time: latency, verdict: *verdict });
        }
        let generator =
            ProcessCost { name: "generator".into(), cpu_seconds: 0.0, peak_rss_bytes: 0, context_switches: 0 };
        Measurement::from_recorder("monolith", "sweep", Some(100.0), 1, 1.0, &recorder, vec![], generator)
    }

    fn objective(error_budget: f64) -> Objective {
        Objective { p99_us: 100_000, error_budget, min_achieved_fraction: 0.95 }
    }

    #[test]
    fn degraded_answers_count_against_the_error_budget_unless_degraded_ok() {
        let mut verdicts = vec![(1_000, Verdict::Ok); 96];
        verdicts.extend([(1_000, Verdict::Degraded); 3]);
        verdicts.push((1_000, Verdict::Failed(Failure::Status(503))));
        let m = window(&verdicts);
        assert_eq!((m.ok(), m.degraded(), m.failed(), m.attempted(), m.answered()), (96, 3, 1, 100, 99));
        assert_eq!((m.succeeded(false), m.succeeded(true)), (96, 99));
        assert!((m.error_rate(false) - 0.04).abs() < 1e-9 && (m.error_rate(true) - 0.01).abs() < 1e-9);
        assert!((m.achieved_rate(false) - 96.0).abs() < 1e-9 && (m.achieved_rate(true) - 99.0).abs() < 1e-9);
        let budget = objective(0.02);
        assert!(!m.verdict(&budget, false).expect("judged").sustainable, "4% > 2% with degraded answers");
        assert!(m.verdict(&budget, true).expect("judged").sustainable, "1% ≤ 2% without them");
    }

    #[test]
    fn the_sweep_verdict_judges_the_p99_of_every_request() {
        // 97 fast answers and 3 timeouts at 10 s: the successes' p99 is 1 ms, every request's 10 s.
        let mut verdicts = vec![(1_000, Verdict::Ok); 97];
        verdicts.extend([(10_000_000, Verdict::Failed(Failure::Timeout)); 3]);
        let m = window(&verdicts);
        assert_eq!(m.total_percentiles().expect("decodes").p99, 1_000);
        let all = m.all_requests_percentiles().expect("decodes").expect("recorded");
        assert_eq!((all.count, all.p99 >= 10_000_000), (100, true));
        let verdict = m.verdict(&objective(0.05), false).expect("judged");
        assert_eq!(verdict.p99_us, all.p99);
        assert!(!verdict.sustainable, "within the error budget, but not the latency objective");
    }

    #[test]
    fn runs_without_every_requests_latency_fall_back_only_where_nothing_failed() {
        let mut clean = window(&[(1_000, Verdict::Ok), (2_000, Verdict::Ok)]);
        let mut failed = window(&[(1_000, Verdict::Ok), (50, Verdict::Failed(Failure::Overflow))]);
        // As a schema 2 run.json reads: no all-requests histograms.
        for m in [&mut clean, &mut failed] {
            m.endpoints.values_mut().for_each(|e| e.all_latency = None);
            m.timeline.iter_mut().for_each(|s| s.all_latency = None);
        }
        let successes = clean.total_latency().expect("decodes");
        assert_eq!(clean.all_requests_latency().expect("decodes"), Some(successes), "nothing failed: the same");
        assert_eq!(clean.timeline[0].all_requests().expect("decodes").map(|h| h.len()), Some(2));
        assert_eq!(failed.all_requests_latency().expect("decodes"), None, "unknown, not made up");
        assert_eq!(failed.timeline[0].all_requests().expect("decodes"), None);
        assert_eq!(failed.judged_latency().expect("decodes").len(), 1, "judged on the successes, as it was then");
    }

    #[test]
    fn the_lag_per_second_and_the_connections_are_stored_and_the_seconds_merge_into_the_window() {
        let mut recorder = Recorder::new(Duration::ZERO);
        recorder.connections_preopened = 16;
        for (due_ms, lag_us) in [(10, 5), (20, 3_000), (1_010, 7), (1_020, 20_000)] {
            let due = Duration::from_millis(due_ms);
            recorder.record_due(due, Duration::from_micros(lag_us));
            recorder.record_connections(due, u64::from(due_ms == 1_020), 17);
        }
        let generator =
            ProcessCost { name: "generator".into(), cpu_seconds: 0.0, peak_rss_bytes: 0, context_switches: 0 };
        let m = Measurement::from_recorder("monolith", "main", Some(2.0), 1, 2.0, &recorder, vec![], generator);
        let json = serde_json::to_string(&m).expect("serialises");
        let m: Measurement = serde_json::from_str(&json).expect("reads back");
        let per_second = m.lag_per_second().expect("decodes");
        let mut merged = latency_histogram();
        for second in &per_second {
            merged.add(second.as_ref().expect("recorded")).expect("equal bounds");
        }
        assert_eq!(per_second.iter().map(|s| s.as_ref().map(|h| h.len())).collect::<Vec<_>>(), vec![Some(2), Some(2)]);
        assert_eq!(merged, m.generator_lag.decode().expect("decodes"), "the seconds add up to the window");
        assert_eq!(m.connections_preopened, Some(16));
        assert_eq!(
            (m.connections_opened(), m.most_connections_opened_in_a_second(), m.peak_connections_open()),
            (Some(1), Some(1), Some(17))
        );
    }

    #[test]
    fn each_endpoints_seconds_survive_run_json_exactly() {
        // Three endpoints over three seconds, ending every way; search has nothing due in the
        // second second, and the product pages of the first are all ok.
        let mut recorder = Recorder::new(Duration::ZERO);
        let requests = [
            (Endpoint::ProductPage, 10, 900, Verdict::Ok),
            (Endpoint::ProductPage, 20, 1_100, Verdict::Ok),
            (Endpoint::Search, 30, 2_000, Verdict::Ok),
            (Endpoint::Search, 40, 10_000_000, Verdict::Failed(Failure::Timeout)),
            (Endpoint::ProductPage, 1_010, 3_000, Verdict::Degraded),
            (Endpoint::Checkout, 1_020, 5_000, Verdict::Failed(Failure::Status(503))),
            (Endpoint::Checkout, 1_030, 6_000, Verdict::Failed(Failure::Status(503))),
            (Endpoint::Checkout, 1_040, 7_000, Verdict::Ok),
            (Endpoint::Search, 2_010, 1_000_000, Verdict::Failed(Failure::Overflow)),
            (Endpoint::ProductPage, 2_020, 800, Verdict::Ok),
        ];
        for (endpoint, due_ms, latency_us, verdict) in requests {
            let (due, latency) = (Duration::from_millis(due_ms), Duration::from_micros(latency_us));
            recorder.record_due(due, Duration::from_micros(3));
            recorder.record(&Outcome { endpoint, due, latency, service_time: latency, verdict });
        }
        let generator =
            ProcessCost { name: "generator".into(), cpu_seconds: 0.0, peak_rss_bytes: 0, context_switches: 0 };
        let written =
            Measurement::from_recorder("microservices", "main", Some(10.0), 1, 3.0, &recorder, vec![], generator);
        let json = serde_json::to_string_pretty(&written).expect("serialises");
        let m: Measurement = serde_json::from_str(&json).expect("reads back");
        assert_eq!(m, written);

        assert_eq!(m.timeline.len(), recorder.seconds.len());
        let mut failures_over_the_seconds: BTreeMap<String, u64> = BTreeMap::new();
        for (second, record) in m.timeline.iter().zip(&recorder.seconds) {
            let endpoints = second.endpoints.as_ref().expect("recorded per endpoint");
            let mut names: Vec<&str> = record.endpoints.keys().map(|e| e.name()).collect();
            names.sort();
            assert_eq!(endpoints.keys().map(String::as_str).collect::<Vec<_>>(), names, "only endpoints with requests");
            for (endpoint, recorded) in &record.endpoints {
                let stored = &endpoints[endpoint.name()];
                assert_eq!(
                    (stored.ok, stored.degraded, &stored.failures),
                    (recorded.ok, recorded.degraded, &recorded.failures)
                );
                assert_eq!(stored.latency.decode().expect("decodes"), recorded.latency);
                assert_eq!(stored.all_requests().expect("decodes"), recorded.all_latency);
                assert_eq!(
                    stored.all_latency.is_none(),
                    recorded.ok == recorded.requests(),
                    "left out only when equal"
                );
            }
            let failures = second.failures.as_ref().expect("recorded by kind");
            assert_eq!(*failures, record.failures());
            for (kind, n) in failures {
                *failures_over_the_seconds.entry(kind.clone()).or_default() += n;
            }
        }
        assert_eq!(failures_over_the_seconds, m.failures_by_kind(), "the seconds add up to the window");
        assert_eq!(
            m.timeline[1].failures.as_ref().map(|f| f.get("status_503").copied()),
            Some(Some(2)),
            "the checkout's 503s in their second"
        );
        assert!(!m.timeline[1].endpoints.as_ref().expect("recorded").contains_key("search"));
        let value: serde_json::Value = serde_json::from_str(&json).expect("JSON");
        let empty_failure_maps = value["timeline"]
            .as_array()
            .expect("seconds")
            .iter()
            .flat_map(|second| second["endpoints"].as_object().into_iter().flat_map(|e| e.values()))
            .filter(|endpoint| endpoint.get("failures").is_some_and(|f| f.as_object().is_some_and(|f| f.is_empty())))
            .count();
        assert_eq!(empty_failure_maps, 0, "no empty failure maps per endpoint");
    }

    #[test]
    fn runs_before_schema_6_read_without_seconds_per_endpoint_or_failures_by_kind() {
        let committed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../results");
        for (run, version) in [
            ("20261127-product-page-2000", 1),
            ("20261127T095639Z-compare", 2),
            ("20261127T110408Z-compare", 4),
            ("20261127T112253Z-compare", 5),
        ] {
            let data = RunData::read(&committed.join(run).join("run.json")).expect("an older schema reads");
            assert_eq!(data.schema_version, version);
            for second in data.measurements.iter().flat_map(|m| &m.timeline) {
                assert_eq!((&second.endpoints, &second.failures), (&None, &None), "{run}: not recorded, not empty");
            }
        }
    }

    #[test]
    fn older_runs_read_without_lag_per_second_or_connections() {
        let committed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../results");
        for run in ["20261127-product-page-2000", "20261127T095639Z-compare"] {
            let data = RunData::read(&committed.join(run).join("run.json")).expect("an older schema reads");
            for m in &data.measurements {
                assert_eq!(m.connections_preopened, None, "{run}");
                assert_eq!((m.connections_opened(), m.peak_connections_open()), (None, None), "{run}");
                assert!(m.lag_per_second().expect("decodes").iter().all(Option::is_none), "{run}");
                m.generator_lag.decode().expect("the window's lag is still there");
            }
        }
    }

    #[test]
    fn older_schemas_read_with_no_degraded_answers_and_no_seeds() {
        let committed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../results");
        for (run, version) in [("20261127-product-page-2000", 1), ("20261127T095639Z-compare", 2)] {
            let data = RunData::read(&committed.join(run).join("run.json")).expect("an older schema reads");
            assert_eq!(data.schema_version, version);
            assert!(!data.config.degraded_ok);
            for m in &data.measurements {
                assert_eq!((m.degraded(), m.seeds), (0, None), "{run}");
                assert!(m.endpoints.values().all(|e| e.all_latency.is_none()), "{run}");
                m.verdict(&objective(0.001), false).expect("still judged");
            }
        }
    }

    /// A 10 s window of `monolith` (`sut_cpu` CPU seconds) and the generator (`generator_cpu`).
    fn costed_window(sut_cpu: f64, generator_cpu: f64, cores: CoreActivity) -> Measurement {
        let mut m = window(&[(1_000, Verdict::Ok)]);
        m.duration_secs = 10.0;
        m.processes =
            vec![ProcessCost { name: "monolith".into(), cpu_seconds: sut_cpu, peak_rss_bytes: 0, context_switches: 0 }];
        m.generator.cpu_seconds = generator_cpu;
        m.cores = Some(cores);
        m
    }

    #[test]
    fn interference_is_busy_time_minus_the_runs_own_cpu_per_group_of_cores() {
        let cores = CoreActivity {
            generator_cores: vec![0],
            system_under_test_cores: vec![1, 2],
            cores: vec![
                CoreWindow { core: 0, busy_seconds: 9.9, steal_seconds: 0.1 },
                CoreWindow { core: 1, busy_seconds: 6.0, steal_seconds: 0.0 },
                CoreWindow { core: 2, busy_seconds: 5.0, steal_seconds: 0.8 },
            ],
        };
        let m = costed_window(10.2, 9.5, cores);
        let groups = m.interference().expect("cores were sampled");
        assert_eq!(groups.len(), 2);
        let (generator, sut) = (&groups[0], &groups[1]);
        assert_eq!((generator.group, generator.cores.clone()), ("generator", vec![0]));
        assert!((generator.outside_seconds - 0.4).abs() < 1e-9, "9.9 busy - 9.5 ours: {generator:?}");
        assert!((generator.outside_share_of_a_core - 0.04).abs() < 1e-9);
        assert!((generator.max_steal_share - 0.01).abs() < 1e-9);
        assert_eq!((sut.group, sut.cores.clone()), ("system under test", vec![1, 2]));
        assert!((sut.busy_seconds - 11.0).abs() < 1e-9 && (sut.ours_seconds - 10.2).abs() < 1e-9);
        assert!((sut.outside_seconds - 0.8).abs() < 1e-9 && (sut.outside_share_of_a_core - 0.08).abs() < 1e-9);
        assert!((sut.max_steal_share - 0.08).abs() < 1e-9, "core 2's 0.8 s of 10 s");
    }

    #[test]
    fn unpinned_interference_counts_every_core_against_every_process_and_never_goes_negative() {
        let cores = CoreActivity {
            generator_cores: vec![],
            system_under_test_cores: vec![],
            cores: vec![
                CoreWindow { core: 0, busy_seconds: 4.0, steal_seconds: 0.0 },
                CoreWindow { core: 1, busy_seconds: 3.0, steal_seconds: 0.0 },
            ],
        };
        let groups = costed_window(4.0, 2.5, cores.clone()).interference().expect("sampled");
        assert_eq!((groups.len(), groups[0].group, groups[0].cores.clone()), (1, "all", vec![0, 1]));
        assert!((groups[0].outside_seconds - 0.5).abs() < 1e-9, "7 busy - 6.5 ours");
        // Tick rounding can make ours exceed busy: that is no interference, not a negative one.
        let rounded = costed_window(4.6, 2.5, cores).interference().expect("sampled");
        assert_eq!(rounded[0].outside_seconds, 0.0);
        assert_eq!(window(&[]).interference(), None, "not sampled");
    }

    #[test]
    fn pss_is_summed_over_the_system_per_sample_then_averaged() {
        let mib = 1 << 20;
        let memory = MemorySamples {
            at_secs: vec![0.0, 1.0, 2.0],
            processes: vec![
                PssSeries { name: "gateway".into(), pss_bytes: vec![10 * mib, 12 * mib, 11 * mib] },
                PssSeries { name: "catalog".into(), pss_bytes: vec![20 * mib, 20 * mib, 26 * mib] },
            ],
            generator: PssSeries { name: "generator".into(), pss_bytes: vec![5 * mib, 5 * mib, 5 * mib] },
        };
        assert_eq!(memory.system_under_test(), vec![30 * mib, 32 * mib, 37 * mib], "the generator is not in it");
        let sut = memory.system_under_test_stats().expect("samples");
        assert_eq!(sut, MemoryStats { mean_bytes: 33 * mib, max_bytes: 37 * mib }, "max of sums, not sum of maxes");
        let catalog = memory.process("catalog").and_then(PssSeries::stats).expect("samples");
        assert_eq!(catalog, MemoryStats { mean_bytes: 22 * mib, max_bytes: 26 * mib });
        assert_eq!(memory.process("generator").map(|g| g.pss_bytes.len()), Some(3));
        assert_eq!(MemoryStats::of(&[]), None);
        let mut m = window(&[(1_000, Verdict::Ok)]);
        assert_eq!(m.sut_pss(), None, "not sampled");
        m.memory = Some(memory);
        assert_eq!(m.sut_pss(), Some(sut));
    }

    #[test]
    fn runs_before_schema_4_read_without_binaries_cores_or_memory() {
        let committed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../results");
        for run in ["20261127-product-page-2000", "20261127T095639Z-compare"] {
            let data = RunData::read(&committed.join(run).join("run.json")).expect("an older schema reads");
            let f = &data.fingerprint;
            assert!(f.binaries.is_empty() && f.kernel_cmdline.is_none() && f.cpu_topology.is_none(), "{run}");
            for m in &data.measurements {
                assert_eq!((m.interference(), m.sut_pss()), (None, None), "{run}");
            }
        }
    }

    #[test]
    fn garbage_is_not_a_histogram() {
        assert!(EncodedHistogram("not base64!".into()).decode().is_err());
        assert!(EncodedHistogram(STANDARD.encode(b"junk")).decode().is_err());
    }
}
