//! The raw data of a run, as written to `results/<run-id>/run.json`.
//!
//! Everything a report shows is computed from this file: histograms are stored whole
//! (HdrHistogram V2 + DEFLATE, base64), never as precomputed percentiles, so `splitbench report`
//! rebuilds the same numbers without rerunning. The schema is versioned; a reader refuses a
//! version it does not know, and reads every older one:
//!
//! - version 3 added the seeds of each window ([`Measurement::seeds`]).
//! - version 2 added each system's consistency check ([`Measurement::consistency`]); version 1
//!   files read as runs that were not checked.

use std::collections::BTreeMap;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

use crate::analyse::{Objective, Percentiles};
use crate::check::ConsistencyReport;
use crate::drive::RepetitionSeeds;
use crate::record::{Recorder, latency_histogram};

pub const SCHEMA_VERSION: u32 = 3;

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
    pub duration_secs: f64,
    /// `None`: the default, 1,024 or 40 ms of the offered rate when that is more.
    pub max_in_flight: Option<usize>,
    pub request_timeout_ms: u64,
    pub logged_in_users: u32,
    /// The base seed; each repetition's seeds are derived from it ([`Measurement::seeds`]).
    pub seed: u64,
    pub database: String,
    pub core_layout: String,
    /// The flags every shop process was started with (ports and database URLs aside).
    pub shop_settings: Vec<String>,
    pub objective: Option<Objective>,
    pub sweep_rates: Vec<f64>,
    pub repeat: u32,
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
    pub failures: BTreeMap<String, u64>,
    pub latency: EncodedHistogram,
    pub service_time: EncodedHistogram,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecondData {
    pub due: u64,
    pub ok: u64,
    pub failed: u64,
    /// All endpoints' latency (from due) of the requests due in this second.
    pub latency: EncodedHistogram,
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
    pub generator_lag: EncodedHistogram,
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
                        ok: record.ok,
                        failures: record.failures.clone(),
                        latency: EncodedHistogram::encode(&record.latency),
                        service_time: EncodedHistogram::encode(&record.service_time),
                    },
                )
            })
            .collect();
        let timeline = recorder
            .seconds
            .iter()
            .map(|s| SecondData {
                due: s.due,
                ok: s.ok,
                failed: s.failed,
                latency: EncodedHistogram::encode(&s.merged_latency()),
            })
            .collect();
        Self {
            architecture: architecture.to_string(),
            phase: phase.to_string(),
            offered_rate,
            repetition,
            duration_secs,
            endpoints,
            generator_lag: EncodedHistogram::encode(&recorder.generator_lag),
            timeline,
            processes,
            generator,
            seeds: None,
            consistency: None,
        }
    }

    pub fn ok(&self) -> u64 {
        self.endpoints.values().map(|e| e.ok).sum()
    }

    pub fn failed(&self) -> u64 {
        self.endpoints.values().map(|e| e.failures.values().sum::<u64>()).sum()
    }

    pub fn due(&self) -> u64 {
        self.timeline.iter().map(|s| s.due).sum()
    }

    pub fn error_rate(&self) -> f64 {
        let attempted = self.ok() + self.failed();
        if attempted == 0 { 0.0 } else { self.failed() as f64 / attempted as f64 }
    }

    /// Requests that came due per second over the window: the offered load as actually
    /// scheduled (a Poisson schedule offers slightly more or less than its nominal rate).
    pub fn due_rate(&self) -> f64 {
        self.due() as f64 / self.duration_secs.max(f64::EPSILON)
    }

    /// Judges this window against a sweep objective.
    pub fn verdict(&self, objective: &crate::analyse::Objective) -> anyhow::Result<crate::analyse::StepVerdict> {
        let mut verdict =
            objective.judge(self.due_rate(), self.achieved_rate(), self.error_rate(), self.total_percentiles()?.p99);
        verdict.offered_rate = self.offered_rate.unwrap_or(verdict.offered_rate);
        Ok(verdict)
    }

    /// Successful requests per second over the window.
    pub fn achieved_rate(&self) -> f64 {
        self.ok() as f64 / self.duration_secs.max(f64::EPSILON)
    }

    /// All endpoints' latency, merged exactly.
    pub fn total_latency(&self) -> anyhow::Result<Histogram<u64>> {
        let mut all = latency_histogram();
        for endpoint in self.endpoints.values() {
            all.add(endpoint.latency.decode()?).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        }
        Ok(all)
    }

    pub fn total_percentiles(&self) -> anyhow::Result<Percentiles> {
        Ok(Percentiles::of(&self.total_latency()?))
    }

    pub fn sut_cpu_seconds(&self) -> f64 {
        self.processes.iter().map(|p| p.cpu_seconds).sum()
    }

    pub fn sut_peak_rss_bytes(&self) -> u64 {
        self.processes.iter().map(|p| p.peak_rss_bytes).sum()
    }

    /// Whether context switches were sampled (runs recorded before they were have none).
    fn switches_sampled(&self) -> bool {
        self.processes.iter().chain([&self.generator]).any(|p| p.context_switches > 0)
    }

    /// A process's CPU microseconds and context switches per successful request; the
    /// switches are `None` in runs recorded before they were sampled.
    pub fn per_request(&self, process: &ProcessCost) -> (f64, Option<f64>) {
        let ok = self.ok().max(1) as f64;
        (process.cpu_seconds * 1e6 / ok, self.switches_sampled().then(|| process.context_switches as f64 / ok))
    }

    /// The system under test's context switches per successful request (`None`: not sampled).
    pub fn sut_context_switches_per_request(&self) -> Option<f64> {
        let total: u64 = self.processes.iter().map(|p| p.context_switches).sum();
        self.switches_sampled().then(|| total as f64 / self.ok().max(1) as f64)
    }

    /// CPU milliseconds the system under test spent per successful request.
    pub fn cpu_ms_per_request(&self) -> f64 {
        let ok = self.ok();
        if ok == 0 { 0.0 } else { self.sut_cpu_seconds() * 1000.0 / ok as f64 }
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
    fn histograms_survive_encoding_exactly() {
        let mut histogram = latency_histogram();
        for v in [1, 10, 100, 1_000, 10_000, 12_345_678] {
            histogram.record(v).expect("in range");
        }
        let decoded = EncodedHistogram::encode(&histogram).decode().expect("decodes");
        assert_eq!(decoded, histogram);
    }

    #[test]
    fn garbage_is_not_a_histogram() {
        assert!(EncodedHistogram("not base64!".into()).decode().is_err());
        assert!(EncodedHistogram(STANDARD.encode(b"junk")).decode().is_err());
    }
}
