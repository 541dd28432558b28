//! Recording what happened: HdrHistograms per endpoint and per second, and outcomes by kind.
//!
//! Latencies are recorded in microseconds. Each request ends in one of three ways ([`Verdict`]):
//! ok (a complete, correct answer), degraded (correct but partial: a product page listing parts
//! it could not include) or failed (by kind). Its latency counts from when it was *due* (what a
//! user waiting on the schedule sees; includes any queueing in the generator) to when it ended,
//! and goes into two histograms: the successes-only one (ok answers) and the all-requests one
//! (every request, so a step where many requests failed or were never sent cannot show only its
//! survivors). The service time, from when its last byte was written to when its answer's last
//! byte arrived, is kept for ok answers. Each second of the window (by due time) keeps, per
//! endpoint, the same counts (ok, degraded, failed by kind) and both latency histograms, so a
//! stall or a burst of one kind of failure can be traced to its second and its endpoint. The
//! generator's lag, from when a request was due to when its last byte was written, is kept per
//! second and over the window (the first merged from the seconds exactly), with the
//! connections the generator opened per second. Requests due during the warm-up are sent but
//! not recorded. Recorders merge exactly
//! (histogram addition), so percentiles of merged data are never averages of percentiles.

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

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A complete, correct answer.
    Ok,
    /// A correct answer with parts missing: a product page whose `degraded` list is not empty
    /// (the microservices' gateway still answers 200 when inventory or reviews fail). Not ok:
    /// it counts against the error budget unless `--degraded-ok` says otherwise.
    Degraded,
    Failed(Failure),
}

/// One finished (or abandoned) request.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub endpoint: Endpoint,
    /// When it was due, as an offset from the start of the run (warm-up included).
    pub due: Duration,
    /// From due to when it ended: its answer arrived or it timed out; an overflow (never sent)
    /// counts as waiting the whole request timeout.
    pub latency: Duration,
    /// From its last byte written to done (`latency` minus the generator's lag at send).
    pub service_time: Duration,
    pub verdict: Verdict,
}

/// How a set of requests ended and how long they took (from due): one endpoint's requests over
/// the window ([`EndpointRecord`]) or over one second ([`SecondRecord::endpoints`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Verdicts {
    pub ok: u64,
    pub degraded: u64,
    /// Failed requests by kind ([`Failure::name`]).
    pub failures: BTreeMap<String, u64>,
    /// Latency of the ok answers (successes only).
    pub latency: Histogram<u64>,
    /// Latency of every request, whatever its verdict.
    pub all_latency: Histogram<u64>,
}

impl Default for Verdicts {
    fn default() -> Self {
        Self {
            ok: 0,
            degraded: 0,
            failures: BTreeMap::new(),
            latency: latency_histogram(),
            all_latency: latency_histogram(),
        }
    }
}

impl Verdicts {
    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    /// Requests that ended, one way or another.
    pub fn requests(&self) -> u64 {
        self.ok + self.degraded + self.failed()
    }

    /// Complete answers, and degraded ones when they count as success (`--degraded-ok`).
    pub fn succeeded(&self, degraded_ok: bool) -> u64 {
        self.ok + if degraded_ok { self.degraded } else { 0 }
    }

    fn record(&mut self, outcome: &Outcome) {
        // Every request, whatever its verdict, so failures cannot leave the percentiles.
        record_duration(&mut self.all_latency, outcome.latency);
        match outcome.verdict {
            Verdict::Ok => {
                self.ok += 1;
                record_duration(&mut self.latency, outcome.latency);
            }
            Verdict::Degraded => self.degraded += 1,
            Verdict::Failed(failure) => *self.failures.entry(failure.name()).or_default() += 1,
        }
    }

    /// Adds `other`'s counts and latencies (a second's into the window's, a fault run's slices
    /// into their phase's).
    pub(crate) fn merge(&mut self, other: &Verdicts) {
        self.ok += other.ok;
        self.degraded += other.degraded;
        add_failures(&mut self.failures, &other.failures);
        self.latency.add(&other.latency).expect("histograms with equal bounds merge");
        self.all_latency.add(&other.all_latency).expect("histograms with equal bounds merge");
    }
}

/// Everything recorded for one endpoint over the measured window: its verdicts, and the
/// service time of its ok answers (kept over the window only).
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointRecord {
    pub verdicts: Verdicts,
    /// Service time of the ok answers.
    pub service_time: Histogram<u64>,
}

impl Default for EndpointRecord {
    fn default() -> Self {
        Self { verdicts: Verdicts::default(), service_time: latency_histogram() }
    }
}

impl EndpointRecord {
    fn record(&mut self, outcome: &Outcome) {
        self.verdicts.record(outcome);
        if outcome.verdict == Verdict::Ok {
            record_duration(&mut self.service_time, outcome.service_time);
        }
    }

    fn merge(&mut self, other: &EndpointRecord) {
        self.verdicts.merge(&other.verdicts);
        self.service_time.add(&other.service_time).expect("histograms with equal bounds merge");
    }
}

/// Adds failure counts by kind into `total`.
fn add_failures(total: &mut BTreeMap<String, u64>, more: &BTreeMap<String, u64>) {
    for (kind, n) in more {
        *total.entry(kind.clone()).or_default() += n;
    }
}

/// The failures by kind of several sets of verdicts, summed.
fn summed_failures<'a>(verdicts: impl IntoIterator<Item = &'a Verdicts>) -> BTreeMap<String, u64> {
    let mut all = BTreeMap::new();
    for v in verdicts {
        add_failures(&mut all, &v.failures);
    }
    all
}

/// One second of the measured window, by due time.
#[derive(Debug, Clone, PartialEq)]
pub struct SecondRecord {
    /// Requests that came due in this second (the offered load).
    pub due: u64,
    /// The verdicts of the requests due in this second, over every endpoint (the sums of
    /// `endpoints`' counts).
    pub ok: u64,
    pub degraded: u64,
    pub failed: u64,
    /// Per endpoint that had a request due in this second: its verdicts, failures by kind and
    /// latencies (from due).
    pub endpoints: BTreeMap<Endpoint, Verdicts>,
    /// The generator's lag at send (due to last byte written) of the requests due in this
    /// second that were written.
    pub generator_lag: Histogram<u64>,
    /// Connections the generator opened during this second (noticed when it dispatched a
    /// request due in it): each one's connect was inside a request's latency, unless it
    /// replaced a retired idle connection in the background.
    pub connections_opened: u64,
    /// The most connections the generator had open when it dispatched a request in this second.
    pub connections_open: u64,
}

impl Default for SecondRecord {
    fn default() -> Self {
        Self {
            due: 0,
            ok: 0,
            degraded: 0,
            failed: 0,
            endpoints: BTreeMap::new(),
            generator_lag: latency_histogram(),
            connections_opened: 0,
            connections_open: 0,
        }
    }
}

impl SecondRecord {
    fn record(&mut self, outcome: &Outcome) {
        match outcome.verdict {
            Verdict::Ok => self.ok += 1,
            Verdict::Degraded => self.degraded += 1,
            Verdict::Failed(_) => self.failed += 1,
        }
        self.endpoints.entry(outcome.endpoint).or_default().record(outcome);
    }

    /// Adds `other` (the same second of another recorder, whose connections were open at the
    /// same time as these: the counts add up).
    fn merge(&mut self, other: &SecondRecord) {
        self.due += other.due;
        self.ok += other.ok;
        self.degraded += other.degraded;
        self.failed += other.failed;
        self.generator_lag.add(&other.generator_lag).expect("equal bounds");
        self.connections_opened += other.connections_opened;
        self.connections_open += other.connections_open;
        for (endpoint, record) in &other.endpoints {
            self.endpoints.entry(*endpoint).or_default().merge(record);
        }
    }

    /// Requests due in this second that ended, one way or another.
    pub fn requests(&self) -> u64 {
        self.ok + self.degraded + self.failed
    }

    /// Complete answers, and degraded ones when they count as success (`--degraded-ok`).
    pub fn succeeded(&self, degraded_ok: bool) -> u64 {
        self.ok + if degraded_ok { self.degraded } else { 0 }
    }

    /// The failed requests due in this second by kind, every endpoint's summed.
    pub fn failures(&self) -> BTreeMap<String, u64> {
        summed_failures(self.endpoints.values())
    }

    /// The ok answers' latency, all endpoints of this second merged.
    pub fn merged_latency(&self) -> Histogram<u64> {
        merged(self.endpoints.values().map(|r| &r.latency))
    }

    /// Every request's latency, all endpoints of this second merged.
    pub fn merged_all_latency(&self) -> Histogram<u64> {
        merged(self.endpoints.values().map(|r| &r.all_latency))
    }
}

/// The exact sum of `histograms`.
fn merged<'a>(histograms: impl IntoIterator<Item = &'a Histogram<u64>>) -> Histogram<u64> {
    let mut all = latency_histogram();
    for histogram in histograms {
        all.add(histogram).expect("equal bounds");
    }
    all
}

/// The recorder of one run (or the exact merge of several).
#[derive(Debug, Clone)]
pub struct Recorder {
    warmup: Duration,
    /// The length of each of `seconds`: one second, unless made [`Recorder::with_slices`].
    slice: Duration,
    pub endpoints: BTreeMap<Endpoint, EndpointRecord>,
    /// The measured window's seconds, by due time; slices of another length in a recorder made
    /// [`Recorder::with_slices`] (a fault run's 100 ms).
    pub seconds: Vec<SecondRecord>,
    /// How late the generator wrote requests relative to their due time (due to last byte
    /// written), over the measured window: the exact merge of the seconds' histograms.
    pub generator_lag: Histogram<u64>,
    /// Connections opened before the schedule started (the pool opened ahead of the window).
    pub connections_preopened: u64,
}

impl Recorder {
    pub fn new(warmup: Duration) -> Self {
        Self::with_slices(warmup, Duration::from_secs(1))
    }

    /// A recorder whose `seconds` are slices of `slice` each (a fault run keeps 100 ms ones, to
    /// see a crash and a restart at that resolution).
    pub fn with_slices(warmup: Duration, slice: Duration) -> Self {
        assert!(!slice.is_zero(), "a slice has a length");
        Self {
            warmup,
            slice,
            endpoints: BTreeMap::new(),
            seconds: Vec::new(),
            generator_lag: latency_histogram(),
            connections_preopened: 0,
        }
    }

    /// The second (slice) of the measured window `due` falls in; `None` during the warm-up.
    fn second_of(&mut self, due: Duration) -> Option<&mut SecondRecord> {
        let since = due.checked_sub(self.warmup)?;
        let index = (since.as_nanos() / self.slice.as_nanos()) as usize;
        if self.seconds.len() <= index {
            self.seconds.resize_with(index + 1, SecondRecord::default);
        }
        Some(&mut self.seconds[index])
    }

    /// A request came due and was written `lag` after it: both at once, for callers that know
    /// both (tests). The open loop records the two apart, [`Recorder::record_came_due`] at
    /// dispatch and [`Recorder::record_send_lag`] once the request's bytes are written.
    pub fn record_due(&mut self, due: Duration, lag: Duration) {
        self.record_came_due(due);
        self.record_send_lag(due, lag);
    }

    /// A request came due (whether or not it could be sent).
    pub fn record_came_due(&mut self, due: Duration) {
        if let Some(second) = self.second_of(due) {
            second.due += 1;
        }
    }

    /// The request due at `due` had its last byte written `lag` after it.
    pub fn record_send_lag(&mut self, due: Duration, lag: Duration) {
        let Some(second) = self.second_of(due) else { return };
        record_duration(&mut second.generator_lag, lag);
        record_duration(&mut self.generator_lag, lag);
    }

    /// At `at` (an offset like a due time), `opened` more connections had been opened since the
    /// last call, and `open` were open.
    pub fn record_connections(&mut self, at: Duration, opened: u64, open: u64) {
        let Some(second) = self.second_of(at) else { return };
        second.connections_opened += opened;
        second.connections_open = second.connections_open.max(open);
    }

    /// Connections opened during the measured window (the pool opened ahead excluded).
    pub fn connections_opened(&self) -> u64 {
        self.seconds.iter().map(|s| s.connections_opened).sum()
    }

    pub fn record(&mut self, outcome: &Outcome) {
        let Some(second) = self.second_of(outcome.due) else { return };
        second.record(outcome);
        self.endpoints.entry(outcome.endpoint).or_default().record(outcome);
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
        self.connections_preopened += other.connections_preopened;
    }

    /// Successful (ok) requests' latency over all endpoints.
    pub fn total_latency(&self) -> Histogram<u64> {
        merged(self.endpoints.values().map(|r| &r.verdicts.latency))
    }

    /// Every request's latency over all endpoints.
    pub fn total_all_latency(&self) -> Histogram<u64> {
        merged(self.endpoints.values().map(|r| &r.verdicts.all_latency))
    }

    pub fn ok(&self) -> u64 {
        self.endpoints.values().map(|r| r.verdicts.ok).sum()
    }

    pub fn degraded(&self) -> u64 {
        self.endpoints.values().map(|r| r.verdicts.degraded).sum()
    }

    pub fn failed(&self) -> u64 {
        self.endpoints.values().map(|r| r.verdicts.failed()).sum()
    }

    /// Failed requests by kind over the window, every endpoint's summed.
    pub fn failures(&self) -> BTreeMap<String, u64> {
        summed_failures(self.endpoints.values().map(|r| &r.verdicts))
    }

    pub fn due(&self) -> u64 {
        self.seconds.iter().map(|s| s.due).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(endpoint: Endpoint, due_ms: u64, latency_us: u64, verdict: Verdict) -> Outcome {
        Outcome {
            endpoint,
            due: Duration::from_millis(due_ms),
            latency: Duration::from_micros(latency_us),
            service_time: Duration::from_micros(latency_us / 2),
            verdict,
        }
    }

    #[test]
    fn warm_up_requests_are_not_recorded() {
        let mut recorder = Recorder::new(Duration::from_secs(1));
        recorder.record_due(Duration::from_millis(500), Duration::ZERO);
        recorder.record(&outcome(Endpoint::Search, 500, 100, Verdict::Ok));
        assert_eq!((recorder.ok(), recorder.due()), (0, 0));
        recorder.record_due(Duration::from_millis(1500), Duration::ZERO);
        recorder.record(&outcome(Endpoint::Search, 1500, 100, Verdict::Ok));
        assert_eq!((recorder.ok(), recorder.due()), (1, 1));
        assert_eq!(recorder.seconds.len(), 1);
    }

    #[test]
    fn outcomes_land_in_their_due_second_and_failures_are_counted_by_kind() {
        let mut recorder = Recorder::new(Duration::ZERO);
        recorder.record(&outcome(Endpoint::Checkout, 100, 1_000, Verdict::Ok));
        recorder.record(&outcome(Endpoint::Checkout, 2_100, 1_000, Verdict::Failed(Failure::Status(503))));
        recorder.record(&outcome(Endpoint::Checkout, 2_200, 1_000, Verdict::Failed(Failure::Overflow)));
        assert_eq!(recorder.seconds.len(), 3);
        assert_eq!((recorder.seconds[0].ok, recorder.seconds[2].failed), (1, 2));
        let record = &recorder.endpoints[&Endpoint::Checkout].verdicts;
        assert_eq!(record.failures["status_503"], 1);
        assert_eq!(record.failures["overflow"], 1);
        assert_eq!(record.latency.len(), 1, "the successes-only histogram holds the ok answer alone");
        assert_eq!(record.all_latency.len(), 3, "the all-requests histogram holds every request");
    }

    #[test]
    fn a_degraded_answer_counts_as_degraded_not_ok() {
        let mut recorder = Recorder::new(Duration::ZERO);
        recorder.record(&outcome(Endpoint::ProductPage, 100, 800, Verdict::Ok));
        recorder.record(&outcome(Endpoint::ProductPage, 1_100, 900, Verdict::Degraded));
        recorder.record(&outcome(Endpoint::ProductPage, 1_200, 950, Verdict::Degraded));
        assert_eq!((recorder.ok(), recorder.degraded(), recorder.failed()), (1, 2, 0));
        let record = &recorder.endpoints[&Endpoint::ProductPage];
        let verdicts = &record.verdicts;
        assert_eq!((verdicts.ok, verdicts.degraded), (1, 2));
        assert!(verdicts.failures.is_empty(), "a degraded answer is not a failure either");
        assert_eq!((verdicts.latency.len(), record.service_time.len()), (1, 1), "not among the successes");
        assert_eq!(verdicts.all_latency.len(), 3, "but among all requests");
        let second = &recorder.seconds[1];
        assert_eq!((second.ok, second.degraded, second.failed), (0, 2, 0));
        assert_eq!((second.merged_latency().len(), second.merged_all_latency().len()), (0, 2));
    }

    #[test]
    fn timeouts_and_overflows_land_in_the_all_requests_histogram_at_their_time() {
        let mut recorder = Recorder::new(Duration::ZERO);
        recorder.record(&outcome(Endpoint::Search, 10, 2_000, Verdict::Ok));
        // Timed out after 10 s; an overflow (recorded by the driver at the 1 s request timeout
        // of this example); a 503 after 5 ms.
        recorder.record(&outcome(Endpoint::Search, 20, 10_000_000, Verdict::Failed(Failure::Timeout)));
        recorder.record(&outcome(Endpoint::Search, 30, 1_000_000, Verdict::Failed(Failure::Overflow)));
        recorder.record(&outcome(Endpoint::Search, 40, 5_000, Verdict::Failed(Failure::Status(503))));
        let all = recorder.total_all_latency();
        assert_eq!(all.len(), 4);
        assert_eq!(all.max(), all.highest_equivalent(10_000_000), "the timeout at its timeout");
        assert_eq!(all.count_at(1_000_000), 1, "the overflow at its timeout");
        assert_eq!(all.count_at(5_000), 1, "the failure when its answer arrived");
        let ok = recorder.total_latency();
        assert_eq!((ok.len(), ok.max()), (1, ok.highest_equivalent(2_000)), "successes only: the survivor");
        assert_eq!(recorder.seconds[0].merged_all_latency(), all);
    }

    #[test]
    fn merging_is_exact_not_an_average_of_percentiles() {
        // One recorder with 99 fast requests, another with 1 slow one. Averaging their p99s
        // would give (fast + slow) / 2; the exact merge's p99 is the fast value and its max the slow one.
        let mut fast = Recorder::new(Duration::ZERO);
        for i in 0..99 {
            fast.record(&outcome(Endpoint::ProductPage, i, 100, Verdict::Ok));
        }
        let mut slow = Recorder::new(Duration::ZERO);
        slow.record(&outcome(Endpoint::ProductPage, 50, 100_000, Verdict::Ok));
        slow.record(&outcome(Endpoint::ProductPage, 60, 200_000, Verdict::Degraded));
        let mut merged = fast.clone();
        merged.merge(&slow);
        let latency = &merged.endpoints[&Endpoint::ProductPage].verdicts.latency;
        assert_eq!(latency.len(), 100);
        assert_eq!(latency.value_at_quantile(0.99), latency.highest_equivalent(100));
        assert_eq!(latency.max(), latency.highest_equivalent(100_000));
        assert_eq!((merged.seconds[0].ok, merged.seconds[0].degraded), (100, 1));
        assert_eq!((merged.degraded(), merged.total_all_latency().len()), (1, 101));
        assert_eq!(merged.seconds[0].merged_all_latency().len(), 101);
    }

    /// 600 requests over 6 s, across every endpoint, ending every way (deterministic).
    fn varied_outcomes() -> Vec<Outcome> {
        let kinds =
            [Failure::Status(503), Failure::Status(502), Failure::Timeout, Failure::Overflow, Failure::BadResponse];
        (0..600u64)
            .map(|i| {
                let verdict = match i % 10 {
                    0..=5 => Verdict::Ok,
                    6 => Verdict::Degraded,
                    _ => Verdict::Failed(kinds[(i as usize / 10) % kinds.len()]),
                };
                let endpoint = Endpoint::ALL[(i as usize * 7) % Endpoint::ALL.len()];
                outcome(endpoint, i * 10, (i * 7_919) % 50_000 + 1, verdict)
            })
            .collect()
    }

    #[test]
    fn each_second_counts_every_endpoints_verdicts_and_failures_by_kind_summing_to_the_window() {
        let mut recorder = Recorder::new(Duration::ZERO);
        recorder.record(&outcome(Endpoint::Search, 100, 1_000, Verdict::Ok));
        recorder.record(&outcome(Endpoint::Search, 200, 9_000, Verdict::Failed(Failure::Status(503))));
        recorder.record(&outcome(Endpoint::ProductPage, 300, 2_000, Verdict::Degraded));
        recorder.record(&outcome(Endpoint::ProductPage, 1_300, 4_000, Verdict::Failed(Failure::Timeout)));
        recorder.record(&outcome(Endpoint::Checkout, 1_400, 3_000, Verdict::Failed(Failure::Status(503))));
        let first = &recorder.seconds[0];
        assert_eq!(first.endpoints.keys().copied().collect::<Vec<_>>(), vec![Endpoint::ProductPage, Endpoint::Search]);
        let search = &first.endpoints[&Endpoint::Search];
        assert_eq!((search.ok, search.degraded, search.failed(), search.requests()), (1, 0, 1, 2));
        assert_eq!(search.failures, BTreeMap::from([("status_503".to_string(), 1)]));
        assert_eq!((search.latency.len(), search.all_latency.len()), (1, 2));
        let page = &first.endpoints[&Endpoint::ProductPage];
        assert_eq!(
            (page.ok, page.degraded, page.failed(), page.latency.len(), page.all_latency.len()),
            (0, 1, 0, 0, 1)
        );
        let second = &recorder.seconds[1];
        assert!(!second.endpoints.contains_key(&Endpoint::Search), "no request of it due in this second");
        assert_eq!(
            second.failures(),
            BTreeMap::from([("status_503".to_string(), 1), ("timeout".to_string(), 1)]),
            "the second's failures by kind, every endpoint's"
        );

        // Over many: the seconds' kinds add up to the window's, per endpoint and overall, and
        // the per-endpoint counts to the seconds' totals.
        let mut recorder = Recorder::new(Duration::ZERO);
        varied_outcomes().iter().for_each(|o| recorder.record(o));
        let mut by_kind: BTreeMap<String, u64> = BTreeMap::new();
        let mut by_endpoint: BTreeMap<Endpoint, BTreeMap<String, u64>> = BTreeMap::new();
        let mut all_latency: BTreeMap<Endpoint, Histogram<u64>> = BTreeMap::new();
        for second in &recorder.seconds {
            add_failures(&mut by_kind, &second.failures());
            let sum = |pick: fn(&Verdicts) -> u64| second.endpoints.values().map(pick).sum::<u64>();
            assert_eq!(
                (second.ok, second.degraded, second.failed),
                (sum(|e| e.ok), sum(|e| e.degraded), sum(|e| e.failed()))
            );
            for (endpoint, record) in &second.endpoints {
                add_failures(by_endpoint.entry(*endpoint).or_default(), &record.failures);
                all_latency
                    .entry(*endpoint)
                    .or_insert_with(latency_histogram)
                    .add(&record.all_latency)
                    .expect("bounds");
            }
        }
        assert_eq!(by_kind, recorder.failures());
        assert_eq!(by_kind.len(), 5, "every kind occurred: {by_kind:?}");
        assert_eq!(by_kind.values().sum::<u64>(), recorder.failed());
        for (endpoint, record) in &recorder.endpoints {
            assert_eq!(by_endpoint[endpoint], record.verdicts.failures, "{endpoint:?}");
            assert_eq!(all_latency[endpoint], record.verdicts.all_latency, "{endpoint:?}");
        }
    }

    #[test]
    fn merging_seconds_per_endpoint_is_exact() {
        // Recording every outcome in one recorder, or split over two and merged, gives the same data.
        let outcomes = varied_outcomes();
        let mut whole = Recorder::new(Duration::ZERO);
        let (mut odd, mut even) = (Recorder::new(Duration::ZERO), Recorder::new(Duration::ZERO));
        for (i, o) in outcomes.iter().enumerate() {
            whole.record(o);
            if i % 2 == 0 { even.record(o) } else { odd.record(o) }
        }
        // One half ends earlier, so merging also grows the seconds.
        let mut late = Recorder::new(Duration::ZERO);
        late.record(&outcome(Endpoint::Login, 9_500, 700, Verdict::Failed(Failure::Connect)));
        whole.record(&outcome(Endpoint::Login, 9_500, 700, Verdict::Failed(Failure::Connect)));
        let mut merged = even.clone();
        merged.merge(&odd);
        merged.merge(&late);
        assert_eq!(merged.seconds, whole.seconds, "every second, every endpoint, every count and histogram");
        assert_eq!(merged.endpoints, whole.endpoints);
        assert_eq!(merged.failures(), whole.failures());
        assert_eq!(merged.seconds[9].failures(), BTreeMap::from([("connect".to_string(), 1)]));
    }

    #[test]
    fn latencies_beyond_the_bound_are_clamped_not_lost() {
        let mut recorder = Recorder::new(Duration::ZERO);
        recorder.record(&outcome(Endpoint::Health, 0, MAX_LATENCY_US * 10, Verdict::Ok));
        assert_eq!(recorder.endpoints[&Endpoint::Health].verdicts.latency.len(), 1);
    }

    #[test]
    fn the_lag_at_send_is_kept_per_second_and_the_seconds_merge_exactly_into_the_total() {
        let mut recorder = Recorder::new(Duration::from_secs(1));
        // Warm-up: neither in a second nor in the total.
        recorder.record_came_due(Duration::from_millis(900));
        recorder.record_send_lag(Duration::from_millis(900), Duration::from_millis(50));
        for (due_ms, lag_us) in [(1_000, 5), (1_500, 2_000), (2_100, 7), (3_900, 40_000), (3_950, 9)] {
            recorder.record_came_due(Duration::from_millis(due_ms));
            recorder.record_send_lag(Duration::from_millis(due_ms), Duration::from_micros(lag_us));
        }
        // Came due but never written (an overflow): counted as due, no lag.
        recorder.record_came_due(Duration::from_millis(2_200));
        let lags: Vec<u64> = recorder.seconds.iter().map(|s| s.generator_lag.len()).collect();
        assert_eq!(lags, vec![2, 1, 2]);
        assert_eq!(recorder.due(), 6);
        assert_eq!(merged(recorder.seconds.iter().map(|s| &s.generator_lag)), recorder.generator_lag);
        assert_eq!(recorder.generator_lag.max(), recorder.generator_lag.highest_equivalent(40_000));
        assert_eq!(recorder.seconds[0].generator_lag.max(), recorder.generator_lag.highest_equivalent(2_000));

        let mut twice = recorder.clone();
        twice.merge(&recorder);
        assert_eq!(twice.generator_lag.len(), 10);
        assert_eq!(merged(twice.seconds.iter().map(|s| &s.generator_lag)), twice.generator_lag);
    }

    #[test]
    fn connections_are_counted_per_second_outside_the_warm_up() {
        let mut recorder = Recorder::new(Duration::from_secs(1));
        recorder.connections_preopened = 16;
        recorder.record_connections(Duration::from_millis(500), 3, 19);
        recorder.record_connections(Duration::from_millis(1_200), 0, 16);
        recorder.record_connections(Duration::from_millis(1_700), 2, 18);
        recorder.record_connections(Duration::from_millis(2_300), 1, 17);
        let per_second: Vec<(u64, u64)> =
            recorder.seconds.iter().map(|s| (s.connections_opened, s.connections_open)).collect();
        assert_eq!(per_second, vec![(2, 18), (1, 17)], "opened summed, open at its peak");
        assert_eq!(recorder.connections_opened(), 3);
        let mut both = recorder.clone();
        both.merge(&recorder);
        assert_eq!(
            (both.connections_opened(), both.connections_preopened, both.seconds[0].connections_open),
            (6, 32, 36)
        );
    }
}
