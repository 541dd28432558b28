//! Recording what happened: HdrHistograms per endpoint and per second, and failures by kind.
//!
//! Latencies are recorded in microseconds. Each request contributes two numbers: its latency
//! from when it was *due* (what a user waiting on the schedule sees; includes any queueing in
//! the generator) and its service time from when it was actually sent. Requests due during the
//! warm-up are sent but not recorded. Recorders merge exactly (histogram addition), so
//! percentiles of merged data are never averages of percentiles.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest latency a histogram can hold: one minute (longer requests are clamped to it).
pub const MAX_LATENCY_US: u64 = 60_000_000;

/// A histogram for latencies in microseconds, 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("constant histogram bounds are valid")
}

fn record_duration(histogram: &mut Histogram<u64>, value: Duration) {
    let micros = (value.as_micros() as u64).clamp(1, MAX_LATENCY_US);
    histogram.saturating_record(micros);
}

/// The kinds of request the workload sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    ProductPage,
    Search,
    CategoryListing,
    ReviewsRead,
    ReviewWrite,
    Login,
    Checkout,
    OrderHistory,
    /// `/health`: no work at all; measures the generator and the HTTP stack.
    Health,
}

impl Endpoint {
    pub const ALL: [Endpoint; 9] = [
        Self::ProductPage,
        Self::Search,
        Self::CategoryListing,
        Self::ReviewsRead,
        Self::ReviewWrite,
        Self::Login,
        Self::Checkout,
        Self::OrderHistory,
        Self::Health,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::ProductPage => "product_page",
            Self::Search => "search",
            Self::CategoryListing => "category_listing",
            Self::ReviewsRead => "reviews_read",
            Self::ReviewWrite => "review_write",
            Self::Login => "login",
            Self::Checkout => "checkout",
            Self::OrderHistory => "order_history",
            Self::Health => "health",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }
}

/// Why a request counts as failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Failure {
    /// An unexpected HTTP status.
    Status(u16),
    /// No complete answer within the request timeout.
    Timeout,
    /// The connection could not be made.
    Connect,
    /// Another transport error (reset, broken pipe, ...).
    Transport,
    /// The expected status, but a body of the wrong shape: a fast wrong answer is an error.
    BadResponse,
    /// Not sent: the limit of requests in flight was reached when it came due.
    Overflow,
}

impl Failure {
    pub fn name(self) -> String {
        match self {
            Self::Status(code) => format!("status_{code}"),
            Self::Timeout => "timeout".into(),
            Self::Connect => "connect".into(),
            Self::Transport => "transport".into(),
            Self::BadResponse => "bad_response".into(),
            Self::Overflow => "overflow".into(),
        }
    }
}

/// One finished (or abandoned) request.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub endpoint: Endpoint,
    /// When it was due, as an offset from the start of the run (warm-up included).
    pub due: Duration,
    /// From due to done.
    pub latency: Duration,
    /// From sent to done (equal to `latency` when the generator kept up).
    pub service_time: Duration,
    pub failure: Option<Failure>,
}

/// Everything recorded for one endpoint over the measured window.
#[derive(Debug, Clone)]
pub struct EndpointRecord {
    pub latency: Histogram<u64>,
    pub service_time: Histogram<u64>,
    pub ok: u64,
    pub failures: BTreeMap<String, u64>,
}

impl Default for EndpointRecord {
    fn default() -> Self {
        Self { latency: latency_histogram(), service_time: latency_histogram(), ok: 0, failures: BTreeMap::new() }
    }
}

impl EndpointRecord {
    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    fn merge(&mut self, other: &EndpointRecord) {
        self.latency.add(&other.latency).expect("histograms with equal bounds merge");
        self.service_time.add(&other.service_time).expect("histograms with equal bounds merge");
        self.ok += other.ok;
        for (kind, n) in &other.failures {
            *self.failures.entry(kind.clone()).or_default() += n;
        }
    }
}

/// One second of the measured window, by due time.
#[derive(Debug, Clone, Default)]
pub struct SecondRecord {
    /// Requests that came due in this second (the offered load).
    pub due: u64,
    pub ok: u64,
    pub failed: u64,
    /// Latency (from due) of the requests due in this second, per endpoint.
    pub latency: BTreeMap<Endpoint, Histogram<u64>>,
}

impl SecondRecord {
    fn merge(&mut self, other: &SecondRecord) {
        self.due += other.due;
        self.ok += other.ok;
        self.failed += other.failed;
        for (endpoint, histogram) in &other.latency {
            self.latency.entry(*endpoint).or_insert_with(latency_histogram).add(histogram).expect("equal bounds");
        }
    }

    /// All endpoints of this second merged.
    pub fn merged_latency(&self) -> Histogram<u64> {
        let mut all = latency_histogram();
        for histogram in self.latency.values() {
            all.add(histogram).expect("equal bounds");
        }
        all
    }
}

/// The recorder of one run (or the exact merge of several).
#[derive(Debug, Clone)]
pub struct Recorder {
    warmup: Duration,
    pub endpoints: BTreeMap<Endpoint, EndpointRecord>,
    pub seconds: Vec<SecondRecord>,
    /// How late the generator sent requests relative to their due time.
    pub generator_lag: Histogram<u64>,
}

impl Recorder {
    pub fn new(warmup: Duration) -> Self {
        Self { warmup, endpoints: BTreeMap::new(), seconds: Vec::new(), generator_lag: latency_histogram() }
    }

    /// The second of the measured window `due` falls in; `None` during the warm-up.
    fn second_of(&mut self, due: Duration) -> Option<&mut SecondRecord> {
        let since = due.checked_sub(self.warmup)?;
        let index = since.as_secs() as usize;
        if self.seconds.len() <= index {
            self.seconds.resize_with(index + 1, SecondRecord::default);
        }
        Some(&mut self.seconds[index])
    }

    /// A request came due (whether or not it could be sent).
    pub fn record_due(&mut self, due: Duration, lag: Duration) {
        if due < self.warmup {
            return;
        }
        record_duration(&mut self.generator_lag, lag);
        if let Some(second) = self.second_of(due) {
            second.due += 1;
        }
    }

    pub fn record(&mut self, outcome: &Outcome) {
        let Some(second) = self.second_of(outcome.due) else { return };
        match outcome.failure {
            None => {
                second.ok += 1;
                record_duration(
                    second.latency.entry(outcome.endpoint).or_insert_with(latency_histogram),
                    outcome.latency,
                );
            }
            Some(_) => second.failed += 1,
        }
        let record = self.endpoints.entry(outcome.endpoint).or_default();
        match outcome.failure {
            None => {
                record.ok += 1;
                record_duration(&mut record.latency, outcome.latency);
                record_duration(&mut record.service_time, outcome.service_time);
            }
            Some(failure) => *record.failures.entry(failure.name()).or_default() += 1,
        }
    }

    /// Adds another recorder's data (same warm-up) to this one, exactly.
    pub fn merge(&mut self, other: &Recorder) {
        for (endpoint, record) in &other.endpoints {
            self.endpoints.entry(*endpoint).or_default().merge(record);
        }
        if self.seconds.len() < other.seconds.len() {
            self.seconds.resize_with(other.seconds.len(), SecondRecord::default);
        }
        for (mine, theirs) in self.seconds.iter_mut().zip(&other.seconds) {
            mine.merge(theirs);
        }
        self.generator_lag.add(&other.generator_lag).expect("equal bounds");
    }

    /// Successful requests' latency over all endpoints.
    pub fn total_latency(&self) -> Histogram<u64> {
        let mut all = latency_histogram();
        for record in self.endpoints.values() {
            all.add(&record.latency).expect("equal bounds");
        }
        all
    }

    pub fn ok(&self) -> u64 {
        self.endpoints.values().map(|r| r.ok).sum()
    }

    pub fn failed(&self) -> u64 {
        self.endpoints.values().map(EndpointRecord::failed).sum()
    }

    pub fn due(&self) -> u64 {
        self.seconds.iter().map(|s| s.due).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(endpoint: Endpoint, due_ms: u64, latency_us: u64, failure: Option<Failure>) -> Outcome {
        Outcome {
            endpoint,
            due: Duration::from_millis(due_ms),
            latency: Duration::from_micros(latency_us),
            service_time: Duration::from_micros(latency_us / 2),
            failure,
        }
    }

    #[test]
    fn warm_up_requests_are_not_recorded() {
        let mut recorder = Recorder::new(Duration::from_secs(1));
        recorder.record_due(Duration::from_millis(500), Duration::ZERO);
        recorder.record(&outcome(Endpoint::Search, 500, 100, None));
        assert_eq!((recorder.ok(), recorder.due()), (0, 0));
        recorder.record_due(Duration::from_millis(1500), Duration::ZERO);
        recorder.record(&outcome(Endpoint::Search, 1500, 100, None));
        assert_eq!((recorder.ok(), recorder.due()), (1, 1));
        assert_eq!(recorder.seconds.len(), 1);
    }

    #[test]
    fn outcomes_land_in_their_due_second_and_failures_are_counted_by_kind() {
        let mut recorder = Recorder::new(Duration::ZERO);
        recorder.record(&outcome(Endpoint::Checkout, 100, 1_000, None));
        recorder.record(&outcome(Endpoint::Checkout, 2_100, 1_000, Some(Failure::Status(503))));
        recorder.record(&outcome(Endpoint::Checkout, 2_200, 1_000, Some(Failure::Overflow)));
        assert_eq!(recorder.seconds.len(), 3);
        assert_eq!((recorder.seconds[0].ok, recorder.seconds[2].failed), (1, 2));
        let record = &recorder.endpoints[&Endpoint::Checkout];
        assert_eq!(record.failures["status_503"], 1);
        assert_eq!(record.failures["overflow"], 1);
        assert_eq!(record.latency.len(), 1, "failed requests stay out of the latency histogram");
    }

    #[test]
    fn merging_is_exact_not_an_average_of_percentiles() {
        // One recorder with 99 fast requests, another with 1 slow one. Averaging their p99s
        // would give (fast + slow) / 2; the exact merge's p99 is the fast value and its max the slow one.
        let mut fast = Recorder::new(Duration::ZERO);
        for i in 0..99 {
            fast.record(&outcome(Endpoint::ProductPage, i, 100, None));
        }
        let mut slow = Recorder::new(Duration::ZERO);
        slow.record(&outcome(Endpoint::ProductPage, 50, 100_000, None));
        let mut merged = fast.clone();
        merged.merge(&slow);
        let latency = &merged.endpoints[&Endpoint::ProductPage].latency;
        assert_eq!(latency.len(), 100);
        assert_eq!(latency.value_at_quantile(0.99), latency.highest_equivalent(100));
        assert_eq!(latency.max(), latency.highest_equivalent(100_000));
        assert_eq!(merged.seconds[0].ok, 100);
    }

    #[test]
    fn latencies_beyond_the_bound_are_clamped_not_lost() {
        let mut recorder = Recorder::new(Duration::ZERO);
        recorder.record(&outcome(Endpoint::Health, 0, MAX_LATENCY_US * 10, None));
        assert_eq!(recorder.endpoints[&Endpoint::Health].latency.len(), 1);
    }
}
