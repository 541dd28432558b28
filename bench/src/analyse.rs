//! Turning recordings into numbers: percentiles, rates, costs, the sweep's verdicts and the
//! thresholds. Pure functions of the raw data, so a report rebuilt later gets the same numbers.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

impl Percentiles {
    pub fn of(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        Self {
            count: histogram.len(),
            p50: histogram.value_at_quantile(0.50),
            p90: histogram.value_at_quantile(0.90),
            p99: histogram.value_at_quantile(0.99),
            p999: histogram.value_at_quantile(0.999),
            max: histogram.max(),
            mean: histogram.mean(),
        }
    }
}

/// The value at quantile `q` of `histogram`; `None` when it is empty.
pub fn quantile(histogram: &Histogram<u64>, q: f64) -> Option<u64> {
    (!histogram.is_empty()).then(|| histogram.value_at_quantile(q))
}

/// Formats microseconds for people: `850 µs`, `12.3 ms`, `1.20 s`.
pub fn human_micros(us: u64) -> String {
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        format!("{:.1} ms", us as f64 / 1_000.0)
    } else {
        format!("{:.2} s", us as f64 / 1_000_000.0)
    }
}

/// The service-level objective of a sweep: what "sustainable" means.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Objective {
    /// p99 latency (from due time) of every request, failures included, must not exceed
    /// this, in microseconds.
    pub p99_us: u64,
    /// Failed (and, unless `--degraded-ok`, degraded) requests / requests answered or given up
    /// must not exceed this fraction.
    pub error_budget: f64,
    /// Achieved / offered rate must reach this fraction (a generator or server that falls
    /// behind its schedule is not sustaining the rate).
    pub min_achieved_fraction: f64,
}

/// What one step of a sweep measured, and whether it met the objective.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepVerdict {
    pub offered_rate: f64,
    pub achieved_rate: f64,
    pub error_rate: f64,
    pub p99_us: u64,
    pub sustainable: bool,
}

impl Objective {
    pub fn judge(&self, offered_rate: f64, achieved_rate: f64, error_rate: f64, p99_us: u64) -> StepVerdict {
        let sustainable = p99_us <= self.p99_us
            && error_rate <= self.error_budget
            && achieved_rate >= offered_rate * self.min_achieved_fraction;
        StepVerdict { offered_rate, achieved_rate, error_rate, p99_us, sustainable }
    }
}

/// The highest offered rate that met the objective with every lower rate meeting it too (a
/// lucky pass above a failure does not count). `None` if even the lowest rate failed.
pub fn max_sustainable_rate(steps: &[StepVerdict]) -> Option<f64> {
    let mut sorted = steps.to_vec();
    sorted.sort_by(|a, b| a.offered_rate.total_cmp(&b.offered_rate));
    sorted.iter().take_while(|s| s.sustainable).last().map(|s| s.offered_rate)
}

/// The confidence of every interval the harness states: 95%.
pub const CONFIDENCE: f64 = 0.95;

/// The standard normal quantile of 97.5%: a two-sided 95% interval is ±this many deviations.
const Z_975: f64 = 1.959_963_984_540_054;

/// Up to this many samples the binomial sums are exact; above it the normal approximation
/// (with continuity correction) is within one rank of them and costs nothing.
const EXACT_BINOMIAL_UP_TO: u64 = 100_000;

/// The ranks `(l, u)` (1-based, in the sorted sample of `n`) such that the interval
/// `[X_(l), X_(u)]` holds the `p` quantile with probability ≥ 95%, whatever the distribution
/// (order statistics: the count of samples at or below the quantile is Binomial(n, p), so the
/// coverage is `B(u-1) - B(l-1)`; each tail gets at most 2.5%). `l` is 0 when no sample is
/// low enough (the bound is then 0) and `u` is `n + 1` when none is high enough (unbounded):
/// for the p99 at 95% that takes n ≥ 368 samples.
pub fn quantile_confidence_ranks(n: u64, p: f64) -> (u64, u64) {
    let tail = (1.0 - CONFIDENCE) / 2.0;
    if n == 0 {
        return (0, 1);
    }
    if n > EXACT_BINOMIAL_UP_TO {
        let (nf, sd) = (n as f64, (n as f64 * p * (1.0 - p)).sqrt());
        let l = (nf * p + 0.5 - Z_975 * sd).floor().max(0.0) as u64;
        let u = (nf * p + 0.5 + Z_975 * sd).ceil().min(nf + 1.0) as u64;
        return (l.min(n), u.max(1));
    }
    // The binomial probabilities from their logarithms, one from the last
    // (ln P(i+1) = ln P(i) + ln((n-i)/(i+1)) + ln(p/(1-p))), summed into the distribution
    // function: B(k) = P(K ≤ k). Terms far in the tails underflow to 0, harmlessly.
    let odds = (p / (1.0 - p)).ln();
    let mut ln_pmf = n as f64 * (1.0 - p).ln();
    let mut cdf = Vec::with_capacity(n as usize + 1);
    let mut sum = 0.0;
    for i in 0..=n {
        sum += ln_pmf.exp();
        cdf.push(sum);
        ln_pmf += ((n - i) as f64 / (i + 1) as f64).ln() + odds;
    }
    let below = |k: u64| if k == 0 { 0.0 } else { cdf[k as usize - 1] };
    // l: the largest rank with B(l-1) ≤ 2.5%; u: the smallest with B(u-1) ≥ 97.5%.
    let l = (1..=n).take_while(|&l| below(l) <= tail).last().unwrap_or(0);
    let u = (1..=n).find(|&u| below(u) >= 1.0 - tail).unwrap_or(n + 1);
    (l, u)
}

/// The value at a 1-based rank of a histogram's samples (its highest equivalent value, as
/// `value_at_quantile` gives); `None` past the last sample.
pub fn value_at_rank(histogram: &Histogram<u64>, rank: u64) -> Option<u64> {
    if rank == 0 || rank > histogram.len() {
        return None;
    }
    let mut seen = 0;
    for value in histogram.iter_recorded() {
        seen += value.count_at_value();
        if seen >= rank {
            return Some(histogram.highest_equivalent(value.value_iterated_to()));
        }
    }
    None
}

/// A distribution-free 95% confidence interval of a window's p99, from the order statistics of
/// its samples ([`quantile_confidence_ranks`]), read from the histogram by value at the rank
/// (so within the histogram's precision, 3 significant digits).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QuantileInterval {
    /// The samples it was drawn from.
    pub n: u64,
    /// The lower bound, microseconds: the value at rank `low_rank` (0 when `low_rank` is 0).
    pub low_us: u64,
    /// The upper bound, microseconds; `None` when the window has too few samples to bound the
    /// p99 from above (fewer than 368 at 95%).
    pub high_us: Option<u64>,
    pub low_rank: u64,
    pub high_rank: u64,
}

impl QuantileInterval {
    /// The 95% interval of the p99 of `histogram`; `None` for an empty one.
    pub fn p99(histogram: &Histogram<u64>) -> Option<Self> {
        let n = histogram.len();
        if n == 0 {
            return None;
        }
        let (low_rank, high_rank) = quantile_confidence_ranks(n, 0.99);
        Some(Self {
            n,
            low_us: value_at_rank(histogram, low_rank).unwrap_or(0),
            high_us: value_at_rank(histogram, high_rank),
            low_rank,
            high_rank,
        })
    }

    /// `[1.2 ms, 3.4 ms]`, or `[1.2 ms, ∞)` when unbounded.
    pub fn describe(&self) -> String {
        match self.high_us {
            Some(high) => format!("[{}, {}]", human_micros(self.low_us), human_micros(high)),
            None => format!("[{}, ∞)", human_micros(self.low_us)),
        }
    }
}

/// How finely the sweep's refinement brackets the capacity (`--sweep-resolution`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// A fraction of the highest passing rate (`5%`).
    Relative(f64),
    /// Requests per second (`50`).
    Absolute(f64),
}

impl Resolution {
    /// Parses `5%` (of the passing rate) or `50` (requests per second).
    pub fn parse(value: &str) -> anyhow::Result<Self> {
        let value = value.trim();
        let resolution = match value.strip_suffix('%') {
            Some(percent) => Self::Relative(percent.trim().parse::<f64>()? / 100.0),
            None => Self::Absolute(value.parse::<f64>()?),
        };
        let (Self::Relative(x) | Self::Absolute(x)) = resolution;
        anyhow::ensure!(x.is_finite() && x > 0.0, "a sweep resolution is positive, got '{value}'");
        Ok(resolution)
    }

    /// The widest capacity interval that needs no more refinement, above `passing`.
    pub fn width(&self, passing: f64) -> f64 {
        match *self {
            Self::Relative(fraction) => fraction * passing,
            Self::Absolute(rate) => rate,
        }
    }

    pub fn describe(&self) -> String {
        match *self {
            Self::Relative(fraction) => format!("{}% of the passing rate", fraction * 100.0),
            Self::Absolute(rate) => format!("{rate} req/s"),
        }
    }
}

/// One second of a window as the stall classifier sees it: the p99 of every request due in it
/// (`None`: no request) and how many of them were not ok (failed, or degraded when degraded
/// answers count against the budget).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SecondSummary {
    pub requests: u64,
    pub not_ok: u64,
    pub p99_us: Option<u64>,
}

impl Objective {
    /// Whether one second, taken alone, missed the objective: its p99 exceeds the objective's,
    /// or it alone holds more failures than the whole window's error budget allows (a per-second
    /// budget would call one failure among 250 requests a miss).
    pub fn second_missed(&self, second: &SecondSummary, window_requests: u64) -> bool {
        let over_latency = second.p99_us.is_some_and(|p99| p99 > self.p99_us);
        let over_budget = second.not_ok as f64 > self.error_budget * window_requests as f64;
        over_latency || over_budget
    }
}

/// How a window that missed its objective missed it, read from its seconds (numbered from 0,
/// as in the timelines), each judged alone ([`Objective::second_missed`]).
///
/// An open-loop system past its capacity builds a backlog that only grows, so the seconds from
/// some point to the end of the window all miss. One that drained its backlog before the end
/// recovered: after a pause of the machine, a burst of new connections, or, near capacity, a
/// burst of the Poisson schedule itself; the shape alone names no cause.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FailureShape {
    /// Seconds `from..` (to the end) all missed; `bad_seconds` counts every missed second.
    Overload { from: usize, bad_seconds: usize, seconds: usize },
    /// Seconds `first_bad..=last_bad` held every miss, and the window ended on seconds that met
    /// the objective.
    Recovered { first_bad: usize, last_bad: usize, bad_seconds: usize, seconds: usize, worst_p99_us: u64 },
    /// No second missed alone: the window did as a whole (failures spread thinly, or too few
    /// requests succeeded within the window).
    Spread,
}

impl FailureShape {
    /// The shape of a window's seconds (the window missed its objective; `None` for no seconds).
    pub fn of(seconds: &[SecondSummary], objective: &Objective) -> Option<Self> {
        let last = seconds.len().checked_sub(1)?;
        let window_requests = seconds.iter().map(|s| s.requests).sum();
        let missed: Vec<bool> = seconds.iter().map(|s| objective.second_missed(s, window_requests)).collect();
        let bad: Vec<usize> = (0..seconds.len()).filter(|&i| missed[i]).collect();
        let (Some(&first_bad), Some(&last_bad)) = (bad.first(), bad.last()) else {
            return Some(Self::Spread);
        };
        let (bad_seconds, count) = (bad.len(), seconds.len());
        if last_bad == last {
            // The run of missed seconds that reaches the end.
            let from = (0..=last).rev().take_while(|&i| missed[i]).last().unwrap_or(last);
            return Some(Self::Overload { from, bad_seconds, seconds: count });
        }
        let worst_p99_us = bad.iter().filter_map(|&i| seconds[i].p99_us).max().unwrap_or(0);
        Some(Self::Recovered { first_bad, last_bad, bad_seconds, seconds: count, worst_p99_us })
    }

    pub fn recovered(&self) -> bool {
        matches!(self, Self::Recovered { .. })
    }

    /// For a table cell; seconds numbered from 0, as in the timelines.
    pub fn describe(&self) -> String {
        match *self {
            Self::Overload { from, bad_seconds, seconds } => {
                format!("overload: every second from {from} to the end missed ({bad_seconds} of {seconds} missed)")
            }
            Self::Recovered { first_bad, last_bad, bad_seconds, seconds, worst_p99_us } => {
                let span = if first_bad == last_bad {
                    format!("second {first_bad}")
                } else {
                    format!("seconds {first_bad}-{last_bad}")
                };
                format!(
                    "recovered: {span} missed ({bad_seconds} of {seconds}, worst p99 {}), the last met the objective",
                    human_micros(worst_p99_us)
                )
            }
            Self::Spread => "spread: no second missed alone".to_string(),
        }
    }
}

/// The shape of a window's failure (see [`FailureShape`]), from its per-second timeline: each
/// second's p99 of every request due in it (the successes' in runs that kept no more).
pub fn failure_shape(
    window: &crate::report::data::Measurement,
    objective: &Objective,
    degraded_ok: bool,
) -> anyhow::Result<Option<FailureShape>> {
    let mut seconds = Vec::with_capacity(window.timeline.len());
    for second in &window.timeline {
        let latency = match second.all_requests()? {
            Some(all) => all,
            None => second.latency.decode()?,
        };
        seconds.push(SecondSummary {
            requests: second.ok + second.degraded + second.failed,
            not_ok: second.failed + if degraded_ok { 0 } else { second.degraded },
            p99_us: quantile(&latency, 0.99),
        });
    }
    Ok(FailureShape::of(&seconds, objective))
}

/// Where a sweep step's rate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepStage {
    /// One of `--sweep-rates`.
    Grid,
    /// A bisection between the highest passing and the lowest failing rate.
    Refinement,
}

/// The attempts of one sweep step and the rule that decides it: a passing first attempt passes
/// at once; after a failing one the step is re-tested, and fails only when a majority of
/// `max_attempts` attempts fail (2 of 3 by default). One attempt: no re-test.
///
/// With `set_aside_disturbed` (`--set-aside-disturbed`), a failed attempt that something outside
/// the run disturbed is set aside instead of counted, at most `max_attempts` of them per step,
/// and the next attempt replays its schedule. Both the sweep (as it runs) and the report (from
/// run.json) decide through [`StepAttempts::record`], so they cannot disagree.
#[derive(Debug, Clone, PartialEq)]
pub struct StepAttempts {
    pub max_attempts: u32,
    /// The counted attempts' verdicts, in order.
    pub passed: Vec<bool>,
    /// Failed attempts set aside as disturbed.
    pub set_aside: u32,
    set_aside_disturbed: bool,
}

/// What became of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptFate {
    Counted,
    SetAside,
}

impl StepAttempts {
    pub fn new(max_attempts: u32) -> Self {
        Self { max_attempts: max_attempts.max(1), passed: Vec::new(), set_aside: 0, set_aside_disturbed: false }
    }

    /// The same rule, setting aside disturbed failures.
    pub fn setting_aside_disturbed(mut self, on: bool) -> Self {
        self.set_aside_disturbed = on;
        self
    }

    /// Records an attempt's verdict and whether it was disturbed from outside the run; a pass
    /// always counts (a step that passes under interference would pass without it).
    pub fn record(&mut self, passed: bool, disturbed: bool) -> AttemptFate {
        if self.set_aside_disturbed && disturbed && !passed && self.set_aside < self.max_attempts {
            self.set_aside += 1;
            return AttemptFate::SetAside;
        }
        self.passed.push(passed);
        AttemptFate::Counted
    }

    /// The number (from 1) of the next counted attempt, whose seeds it draws: a re-run of a set
    /// aside attempt replays that attempt's schedule and requests, the same for both
    /// architectures (a fair pair).
    pub fn next_counted(&self) -> u32 {
        self.passed.len() as u32 + 1
    }

    /// Failures that fail the step: a majority of the attempts allowed.
    pub fn failures_to_fail(&self) -> usize {
        self.max_attempts as usize / 2 + 1
    }

    /// `Some(passed)` once decided; `None` while another attempt is needed.
    pub fn decision(&self) -> Option<bool> {
        let first = *self.passed.first()?;
        if first {
            return Some(true);
        }
        let failed = self.passed.iter().filter(|p| !**p).count();
        let passed = self.passed.len() - failed;
        let allowed = self.max_attempts as usize;
        if failed >= self.failures_to_fail() {
            Some(false)
        } else if passed > allowed - self.failures_to_fail() || self.passed.len() >= allowed {
            Some(true)
        } else {
            None
        }
    }
}

/// Where an architecture's capacity lies: `[low, high)`, `low` the highest rate that passed with
/// every lower rate passing too (0 if the lowest failed), `high` the lowest rate above it that
/// failed (`None`: none failed, the capacity is at least `low`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CapacityInterval {
    pub low: f64,
    pub high: Option<f64>,
}

impl CapacityInterval {
    /// From decided steps `(rate, passed)`, in any order. `None` for no steps.
    pub fn of(steps: &[(f64, bool)]) -> Option<Self> {
        let mut sorted = steps.to_vec();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        sorted.first()?;
        let passing = sorted.iter().take_while(|s| s.1).count();
        let low = passing.checked_sub(1).map_or(0.0, |i| sorted[i].0);
        let high = sorted.get(passing).map(|s| s.0);
        Some(Self { low, high })
    }

    /// Whether two capacities could be the same: the half-open intervals share a rate.
    pub fn overlaps(&self, other: &Self) -> bool {
        let below = |a: &Self, b: &Self| a.high.is_none_or(|high| b.low < high);
        below(self, other) && below(other, self)
    }

    /// The smallest interval holding every one of `intervals` (the spread over repetitions).
    pub fn hull(intervals: &[Self]) -> Option<Self> {
        let low = intervals.iter().map(|i| i.low).min_by(f64::total_cmp)?;
        let high = intervals.iter().map(|i| i.high).try_fold(0.0, |max: f64, h| h.map(|h| max.max(h)));
        Some(Self { low, high })
    }

    /// `[2,000, 2,250) req/s`, or `≥ 4,000 req/s` when nothing failed.
    pub fn describe(&self) -> String {
        match self.high {
            Some(high) => format!("[{}, {}) req/s", thousands_f(self.low), thousands_f(high)),
            None => format!("≥ {} req/s (no swept rate failed)", thousands_f(self.low)),
        }
    }
}

/// The capacity ratio of two architectures (`numerator / denominator`) as an interval: the
/// ratio of the intervals' ends, `[num.low / den.high, num.high / den.low]` (`None` ends are
/// unbounded). The capacities differ significantly only when their intervals do not overlap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityRatio {
    pub numerator: String,
    pub denominator: String,
    pub low: f64,
    /// `None`: unbounded (the numerator never failed, or the denominator never passed).
    pub high: Option<f64>,
    /// The two capacity intervals overlap: no difference can be claimed.
    pub overlap: bool,
}

impl CapacityRatio {
    pub fn of(numerator: (&str, &CapacityInterval), denominator: (&str, &CapacityInterval)) -> Self {
        let (num, den) = (numerator.1, denominator.1);
        let low = den.high.map_or(0.0, |high| num.low / high);
        let high = match (num.high, den.low) {
            (Some(high), low) if low > 0.0 => Some(high / low),
            _ => None,
        };
        Self {
            numerator: numerator.0.to_string(),
            denominator: denominator.0.to_string(),
            low,
            high,
            overlap: num.overlaps(den),
        }
    }

    /// `monolith / microservices capacity in [1.33, 2.00]: ...`.
    pub fn describe(&self) -> String {
        let high = self.high.map_or_else(|| "∞)".to_string(), |h| format!("{h:.2}]"));
        let verdict = if self.overlap {
            "no difference can be claimed (the capacity intervals overlap)"
        } else {
            "the capacity intervals do not overlap"
        };
        format!("{} / {} capacity ratio in [{:.2}, {high}: {verdict}", self.numerator, self.denominator, self.low)
    }
}

/// `12,345` for a rate (rounded to whole requests per second).
fn thousands_f(rate: f64) -> String {
    crate::check::thousands(rate.max(0.0).round() as usize)
}

/// The sweep's search, one decided step at a time: the grid (`--sweep-rates`, ascending) up to
/// its first failure, then bisection between the highest passing and the lowest failing rate
/// until they are at most a [`Resolution`] apart. Pure, so the plan is tested without running
/// anything; `experiment` runs each rate it asks for as a step of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepSearch {
    grid: Vec<f64>,
    resolution: Resolution,
    steps: Vec<(f64, bool)>,
}

impl SweepSearch {
    pub fn new(grid: &[f64], resolution: Resolution) -> Self {
        let mut grid = grid.to_vec();
        grid.sort_by(f64::total_cmp);
        grid.dedup();
        Self { grid, resolution, steps: Vec::new() }
    }

    /// The next rate to decide, and why; `None` when done.
    pub fn next(&self) -> Option<(f64, SweepStage)> {
        if self.steps.iter().all(|s| s.1)
            && let Some(&rate) = self.grid.get(self.steps.len())
        {
            return Some((rate, SweepStage::Grid));
        }
        let interval = self.interval()?;
        let high = interval.high?;
        // Nothing passed: no bracket to refine (the capacity is below the lowest rate).
        if interval.low <= 0.0 || high - interval.low <= self.resolution.width(interval.low) {
            return None;
        }
        let mid = ((interval.low + high) / 2.0).round();
        (mid > interval.low && mid < high).then_some((mid, SweepStage::Refinement))
    }

    /// Records a decided step.
    pub fn record(&mut self, rate: f64, passed: bool) {
        self.steps.push((rate, passed));
    }

    /// The capacity interval of the steps decided so far.
    pub fn interval(&self) -> Option<CapacityInterval> {
        CapacityInterval::of(&self.steps)
    }
}

/// Median and spread of repeated measurements.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

impl Spread {
    pub fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
        Some(Self { median, min: sorted[0], max: sorted[n - 1], n })
    }
}

/// `[X_(l), X_(u)]` of the sorted `values`: holds the median of their distribution with
/// probability ≥ 95% (order statistics, [`quantile_confidence_ranks`]), for independent
/// values; `None` with fewer than 6, too few to bound it at 95%.
pub fn median_interval(values: &[f64]) -> Option<(f64, f64)> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as u64;
    let (low, high) = quantile_confidence_ranks(n, 0.5);
    (low >= 1 && high <= n).then(|| (sorted[low as usize - 1], sorted[high as usize - 1]))
}

/// A limit that makes `splitbench` exit non-zero when a measurement breaches it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Threshold {
    /// p50/p90/p99/p999 latency of every request over all endpoints, microseconds.
    Latency { quantile_per_mille: u32, max_us: u64 },
    /// Failed (and degraded, unless `--degraded-ok`) / all requests, as a fraction.
    ErrorRate { max: f64 },
}

impl Threshold {
    /// Parses `p99=100ms`, `p50=800us`, `p999=1s`, `errors=0.1%`.
    pub fn parse(spec: &str) -> anyhow::Result<Self> {
        let (name, value) = spec.split_once('=').ok_or_else(|| anyhow::anyhow!("expected name=value, got '{spec}'"))?;
        let value = value.trim();
        match name.trim() {
            "errors" | "error_rate" => {
                let max = match value.strip_suffix('%') {
                    Some(percent) => percent.trim().parse::<f64>()? / 100.0,
                    None => value.parse::<f64>()?,
                };
                anyhow::ensure!((0.0..=1.0).contains(&max), "an error rate is between 0 and 100%");
                Ok(Self::ErrorRate { max })
            }
            quantile @ ("p50" | "p90" | "p99" | "p999") => {
                let per_mille = match quantile {
                    "p50" => 500,
                    "p90" => 900,
                    "p99" => 990,
                    _ => 999,
                };
                Ok(Self::Latency { quantile_per_mille: per_mille, max_us: parse_duration_us(value)? })
            }
            other => anyhow::bail!("unknown threshold '{other}' (use p50, p90, p99, p999 or errors)"),
        }
    }

    /// A description of the breach, if a window breaches this threshold. `latency` holds every
    /// request's latency (failures included), `succeeded` counts the requests that succeeded.
    pub fn breach(&self, latency: &Histogram<u64>, succeeded: u64, error_rate: f64) -> Option<String> {
        match *self {
            Self::Latency { quantile_per_mille, .. } if succeeded == 0 => Some(format!(
                "p{} cannot be met: no request succeeded ({} ended in failure)",
                quantile_name(quantile_per_mille),
                latency.len()
            )),
            Self::Latency { quantile_per_mille, max_us } => {
                let value = if latency.is_empty() {
                    0
                } else {
                    latency.value_at_quantile(f64::from(quantile_per_mille) / 1000.0)
                };
                (value > max_us).then(|| {
                    format!(
                        "p{} = {} exceeds {}",
                        quantile_name(quantile_per_mille),
                        human_micros(value),
                        human_micros(max_us)
                    )
                })
            }
            Self::ErrorRate { max } => {
                (error_rate > max).then(|| format!("error rate {:.3}% exceeds {:.3}%", error_rate * 100.0, max * 100.0))
            }
        }
    }
}

fn quantile_name(per_mille: u32) -> String {
    match per_mille {
        500 => "50".into(),
        900 => "90".into(),
        990 => "99".into(),
        _ => "99.9".into(),
    }
}

/// Parses `250us`, `1.5ms`, `2s` into microseconds.
pub fn parse_duration_us(value: &str) -> anyhow::Result<u64> {
    let (number, scale) = if let Some(n) = value.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = value.strip_suffix("µs") {
        (n, 1.0)
    } else if let Some(n) = value.strip_suffix("ms") {
        (n, 1_000.0)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1_000_000.0)
    } else {
        anyhow::bail!("'{value}' needs a unit: us, ms or s")
    };
    let number: f64 = number.trim().parse()?;
    anyhow::ensure!(number.is_finite() && number >= 0.0, "'{value}' is not a duration");
    Ok((number * scale).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::latency_histogram;

    fn step(rate: f64, ok: bool) -> StepVerdict {
        StepVerdict { offered_rate: rate, achieved_rate: rate, error_rate: 0.0, p99_us: 1, sustainable: ok }
    }

    #[test]
    fn the_objective_needs_latency_errors_and_throughput() {
        let objective = Objective { p99_us: 100_000, error_budget: 0.001, min_achieved_fraction: 0.95 };
        assert!(objective.judge(1000.0, 990.0, 0.0, 90_000).sustainable);
        assert!(!objective.judge(1000.0, 990.0, 0.0, 110_000).sustainable, "too slow");
        assert!(!objective.judge(1000.0, 990.0, 0.01, 90_000).sustainable, "too many errors");
        assert!(!objective.judge(1000.0, 800.0, 0.0, 90_000).sustainable, "fell behind the schedule");
    }

    #[test]
    fn the_maximum_sustainable_rate_ignores_lucky_passes_above_a_failure() {
        assert_eq!(max_sustainable_rate(&[step(100.0, true), step(200.0, true), step(400.0, false)]), Some(200.0));
        assert_eq!(max_sustainable_rate(&[step(400.0, true), step(100.0, true), step(200.0, false)]), Some(100.0));
        assert_eq!(max_sustainable_rate(&[step(100.0, false), step(200.0, true)]), None);
        assert_eq!(max_sustainable_rate(&[]), None);
    }

    #[test]
    fn order_statistic_ranks_match_the_exact_binomial() {
        // Computed independently (exact binomial sums in Python): each tail ≤ 2.5%.
        assert_eq!(quantile_confidence_ranks(1_000, 0.99), (983, 997));
        assert_eq!(quantile_confidence_ranks(10_000, 0.99), (9_880, 9_920));
        assert_eq!(quantile_confidence_ranks(50_000, 0.99), (49_456, 49_544));
        // The textbook median intervals: n = 10 gives X_(2)..X_(9), n = 100 gives X_(40)..X_(61).
        assert_eq!(quantile_confidence_ranks(10, 0.5), (2, 9));
        assert_eq!(quantile_confidence_ranks(100, 0.5), (40, 61));
        // Too few samples to bound the p99 from above: 367 is not enough, 368 is.
        assert_eq!(quantile_confidence_ranks(367, 0.99), (359, 368));
        assert_eq!(quantile_confidence_ranks(368, 0.99).1, 368);
        assert_eq!(quantile_confidence_ranks(20, 0.99), (19, 21));
    }

    #[test]
    fn the_normal_approximation_is_within_a_rank_of_the_exact_sums() {
        // 100,000 is still exact; one more sample switches to the approximation.
        let exact = quantile_confidence_ranks(100_000, 0.99);
        assert_eq!(exact, (98_938, 99_062));
        let approximate = quantile_confidence_ranks(100_001, 0.99);
        assert!(approximate.0.abs_diff(exact.0) <= 1 && approximate.1.abs_diff(exact.1) <= 2, "{approximate:?}");
        let (l, u) = quantile_confidence_ranks(10_000_000, 0.99);
        assert!(l < 9_900_000 && u > 9_900_000 && u <= 10_000_000, "({l}, {u})");
    }

    #[test]
    fn the_p99_interval_reads_values_at_the_ranks() {
        // 1,000 samples of 1..=1,000 µs: rank r holds r µs.
        let mut latency = latency_histogram();
        for v in 1..=1_000 {
            latency.record(v).expect("in range");
        }
        assert_eq!((value_at_rank(&latency, 1), value_at_rank(&latency, 1_001)), (Some(1), None));
        let interval = QuantileInterval::p99(&latency).expect("samples");
        assert_eq!((interval.n, interval.low_rank, interval.high_rank), (1_000, 983, 997));
        assert_eq!((interval.low_us, interval.high_us), (983, Some(997)), "exact below 2,048 µs");
        let p99 = Percentiles::of(&latency).p99;
        assert!(interval.low_us <= p99 && interval.high_us.is_some_and(|h| p99 <= h));
        // 100 samples cannot bound the p99 from above.
        let mut few = latency_histogram();
        for v in 1..=100 {
            few.record(v).expect("in range");
        }
        let unbounded = QuantileInterval::p99(&few).expect("samples");
        assert_eq!((unbounded.low_us, unbounded.high_us), (97, None));
        assert!(unbounded.describe().ends_with("∞)"), "{}", unbounded.describe());
        assert_eq!(QuantileInterval::p99(&latency_histogram()), None);
    }

    fn seconds(p99_ms: &[u64]) -> Vec<SecondSummary> {
        p99_ms.iter().map(|&ms| SecondSummary { requests: 1000, not_ok: 0, p99_us: Some(ms * 1000) }).collect()
    }

    fn objective() -> Objective {
        Objective { p99_us: 100_000, error_budget: 0.001, min_achieved_fraction: 0.95 }
    }

    #[test]
    fn a_window_that_ends_behind_is_an_overload_and_one_that_drains_recovered() {
        let shape = |p99_ms: &[u64]| FailureShape::of(&seconds(p99_ms), &objective()).expect("seconds");
        assert_eq!(shape(&[20, 30, 150, 400, 900]), FailureShape::Overload { from: 2, bad_seconds: 3, seconds: 5 });
        assert_eq!(
            shape(&[300, 20, 20, 150, 900]),
            FailureShape::Overload { from: 3, bad_seconds: 3, seconds: 5 },
            "from the start of the run of misses that reaches the end"
        );
        assert_eq!(
            shape(&[300, 20, 20, 20, 20]),
            FailureShape::Recovered { first_bad: 0, last_bad: 0, bad_seconds: 1, seconds: 5, worst_p99_us: 300_000 }
        );
        assert_eq!(
            shape(&[20, 250, 40, 180, 20]),
            FailureShape::Recovered { first_bad: 1, last_bad: 3, bad_seconds: 2, seconds: 5, worst_p99_us: 250_000 }
        );
        assert_eq!(shape(&[20, 30, 40, 50, 60]), FailureShape::Spread);
        assert_eq!(FailureShape::of(&[], &objective()), None);
        assert!(shape(&[300, 20]).describe().starts_with("recovered: second 0 missed (1 of 2, worst p99 300.0 ms)"));
        assert!(shape(&[20, 300]).describe().starts_with("overload: every second from 1 to the end missed (1 of 2"));
    }

    #[test]
    fn a_second_misses_on_errors_only_beyond_the_whole_windows_budget() {
        // 3 seconds of 1,000 requests with a 0.1% budget: the window may fail 3.
        let mut failing = seconds(&[20, 20, 20]);
        failing[1].not_ok = 3;
        assert_eq!(FailureShape::of(&failing, &objective()), Some(FailureShape::Spread), "3 ≤ 3");
        failing[1].not_ok = 4;
        assert_eq!(
            FailureShape::of(&failing, &objective()),
            Some(FailureShape::Recovered {
                first_bad: 1,
                last_bad: 1,
                bad_seconds: 1,
                seconds: 3,
                worst_p99_us: 20_000
            })
        );
    }

    #[test]
    fn a_step_fails_only_when_two_of_three_attempts_fail() {
        let decide = |attempts: &[bool]| {
            let mut step = StepAttempts::new(3);
            attempts.iter().for_each(|&passed| assert_eq!(step.record(passed, true), AttemptFate::Counted));
            step.decision()
        };
        assert_eq!(decide(&[]), None);
        assert_eq!(decide(&[true]), Some(true), "a passing first attempt passes at once");
        assert_eq!(decide(&[false]), None, "a failing one is re-tested");
        assert_eq!(decide(&[false, false]), Some(false), "two failures of three");
        assert_eq!(decide(&[false, true]), None, "one each: a third decides");
        assert_eq!(decide(&[false, true, true]), Some(true));
        assert_eq!(decide(&[false, true, false]), Some(false));
        let once = |passed: bool| {
            let mut step = StepAttempts::new(1);
            step.passed = vec![passed];
            step.decision()
        };
        assert_eq!((once(true), once(false)), (Some(true), Some(false)), "one attempt: no re-test");
        let mut five = StepAttempts::new(5);
        five.passed = vec![false, true, false, true];
        assert_eq!((five.failures_to_fail(), five.decision()), (3, None));
        five.passed.push(false);
        assert_eq!(five.decision(), Some(false));
    }

    #[test]
    fn disturbed_failures_are_set_aside_only_when_asked_and_at_most_max_attempts_times() {
        // Off (the default): a disturbed failure counts like any other.
        let mut off = StepAttempts::new(1);
        assert_eq!(off.record(false, true), AttemptFate::Counted);
        assert_eq!(off.decision(), Some(false));

        let mut one = StepAttempts::new(1).setting_aside_disturbed(true);
        assert_eq!(one.record(false, true), AttemptFate::SetAside, "set aside");
        assert_eq!((one.decision(), one.next_counted()), (None, 1), "undecided; the re-run replays attempt 1");
        assert_eq!(one.record(false, true), AttemptFate::Counted, "the budget (1) is used up: it counts");
        assert_eq!(one.decision(), Some(false));

        let mut three = StepAttempts::new(3).setting_aside_disturbed(true);
        assert_eq!(three.record(true, true), AttemptFate::Counted, "a pass under interference stands");
        assert_eq!(three.decision(), Some(true));

        let mut retest = StepAttempts::new(3).setting_aside_disturbed(true);
        assert_eq!(retest.record(false, false), AttemptFate::Counted, "undisturbed failures count");
        assert_eq!(retest.record(false, true), AttemptFate::SetAside);
        assert_eq!(retest.next_counted(), 2);
        retest.record(true, false);
        retest.record(true, false);
        assert_eq!((retest.decision(), retest.passed.len(), retest.set_aside), (Some(true), 3, 1));
    }

    /// Runs a search whose steps pass below `capacity`: the rates tried, and the interval.
    fn search(grid: &[f64], resolution: &str, capacity: f64) -> (Vec<(f64, SweepStage)>, Option<CapacityInterval>) {
        let mut search = SweepSearch::new(grid, Resolution::parse(resolution).expect("a resolution"));
        let mut tried = Vec::new();
        while let Some((rate, stage)) = search.next() {
            assert!(tried.len() < 100, "the search ends");
            tried.push((rate, stage));
            search.record(rate, rate < capacity);
        }
        (tried, search.interval())
    }

    #[test]
    fn the_sweep_bisects_between_the_last_passing_and_the_first_failing_rate() {
        use SweepStage::{Grid, Refinement};
        let (tried, interval) = search(&[1000.0, 500.0, 2000.0, 3000.0], "5%", 1_700.0);
        assert_eq!(
            tried,
            vec![
                (500.0, Grid),
                (1000.0, Grid),
                (2000.0, Grid),
                (1500.0, Refinement),
                (1750.0, Refinement),
                (1625.0, Refinement),
                (1688.0, Refinement),
            ]
        );
        assert_eq!(interval, Some(CapacityInterval { low: 1688.0, high: Some(1750.0) }), "62 ≤ 5% of 1,688");
        // An absolute resolution.
        let (tried, interval) = search(&[1000.0, 2000.0], "400", 1_700.0);
        assert_eq!(tried[2..], [(1500.0, Refinement), (1750.0, Refinement)], "500 > 400, then 250 ≤ 400");
        assert_eq!(interval, Some(CapacityInterval { low: 1500.0, high: Some(1750.0) }));
        // Nothing passed: no bracket to refine; nothing failed: no bracket either.
        assert_eq!(
            search(&[500.0, 1000.0], "5%", 100.0),
            (vec![(500.0, Grid)], Some(CapacityInterval { low: 0.0, high: Some(500.0) }))
        );
        let (tried, interval) = search(&[500.0, 1000.0], "5%", 10_000.0);
        assert_eq!((tried.len(), interval), (2, Some(CapacityInterval { low: 1000.0, high: None })));
        // Already within the resolution: the grid's answer stands.
        let (tried, interval) = search(&[1000.0, 1040.0], "5%", 1_020.0);
        assert_eq!((tried.len(), interval), (2, Some(CapacityInterval { low: 1000.0, high: Some(1040.0) })));
        assert!(Resolution::parse("0%").is_err() && Resolution::parse("x").is_err());
    }

    #[test]
    fn the_capacity_interval_ignores_lucky_passes_above_a_failure() {
        let interval = CapacityInterval::of(&[(100.0, true), (300.0, true), (200.0, false), (400.0, false)]);
        assert_eq!(interval, Some(CapacityInterval { low: 100.0, high: Some(200.0) }));
        assert_eq!(CapacityInterval::of(&[]), None);
        let reps =
            [CapacityInterval { low: 1000.0, high: Some(1100.0) }, CapacityInterval { low: 900.0, high: Some(1250.0) }];
        assert_eq!(CapacityInterval::hull(&reps), Some(CapacityInterval { low: 900.0, high: Some(1250.0) }));
        let open = CapacityInterval { low: 2000.0, high: None };
        assert_eq!(CapacityInterval::hull(&[reps[0], open]), Some(CapacityInterval { low: 1000.0, high: None }));
        assert_eq!(reps[0].describe(), "[1,000, 1,100) req/s");
    }

    #[test]
    fn the_capacity_ratio_divides_the_ends_and_overlap_means_no_significant_difference() {
        let mono = CapacityInterval { low: 2000.0, high: Some(2200.0) };
        let micro = CapacityInterval { low: 1000.0, high: Some(1100.0) };
        let ratio = CapacityRatio::of(("monolith", &mono), ("microservices", &micro));
        assert!((ratio.low - 2000.0 / 1100.0).abs() < 1e-12 && ratio.high == Some(2.2), "{ratio:?}");
        assert!(!ratio.overlap);
        assert!(ratio.describe().contains("[1.82, 2.20]"), "{}", ratio.describe());
        // Overlapping intervals: no difference can be claimed, whatever the ratio's middle.
        let close = CapacityInterval { low: 1050.0, high: Some(1150.0) };
        let tie = CapacityRatio::of(("monolith", &close), ("microservices", &micro));
        assert!(tie.overlap && tie.describe().contains("no difference can be claimed"), "{}", tie.describe());
        // Half-open: [1,000, 1,100) and [1,100, 1,200) share no rate.
        let next = CapacityInterval { low: 1100.0, high: Some(1200.0) };
        assert!(!next.overlaps(&micro) && !micro.overlaps(&next));
        // Unbounded ends: a numerator that never failed, a denominator that never passed.
        let never_failed = CapacityInterval { low: 4000.0, high: None };
        let never_passed = CapacityInterval { low: 0.0, high: Some(250.0) };
        let open = CapacityRatio::of(("monolith", &never_failed), ("microservices", &never_passed));
        assert_eq!((open.low, open.high, open.overlap), (16.0, None, false));
        assert!(never_failed.overlaps(&CapacityInterval { low: 3000.0, high: Some(5000.0) }));
    }

    #[test]
    fn spread_gives_median_and_range() {
        let spread = Spread::of(&[3.0, 1.0, 2.0]).expect("values");
        assert_eq!((spread.median, spread.min, spread.max, spread.n), (2.0, 1.0, 3.0, 3));
        assert_eq!(Spread::of(&[1.0, 2.0]).map(|s| s.median), Some(1.5));
        assert!(Spread::of(&[]).is_none());
    }

    #[test]
    fn thresholds_parse_and_detect_breaches() {
        assert_eq!(
            Threshold::parse("p99=100ms").ok(),
            Some(Threshold::Latency { quantile_per_mille: 990, max_us: 100_000 })
        );
        assert_eq!(Threshold::parse("errors=0.1%").ok(), Some(Threshold::ErrorRate { max: 0.001 }));
        assert!(Threshold::parse("p42=1ms").is_err());
        assert!(Threshold::parse("p99=100").is_err());
        assert!(Threshold::parse("errors=150%").is_err());

        let mut latency = latency_histogram();
        for _ in 0..100 {
            latency.record(200_000).expect("in range");
        }
        let p99 = Threshold::parse("p99=100ms").expect("valid");
        assert!(p99.breach(&latency, 100, 0.0).is_some());
        assert!(Threshold::parse("p99=1s").expect("valid").breach(&latency, 100, 0.0).is_none());
        assert!(Threshold::parse("errors=1%").expect("valid").breach(&latency, 100, 0.02).is_some());
        assert!(Threshold::parse("errors=1%").expect("valid").breach(&latency, 100, 0.005).is_none());
    }

    #[test]
    fn a_latency_threshold_fails_when_nothing_succeeded() {
        // Every request failed fast (e.g. refused connections, 20 µs each): a fast p99 of nothing.
        let mut latency = latency_histogram();
        for _ in 0..100 {
            latency.record(20).expect("in range");
        }
        let p99 = Threshold::parse("p99=50ms").expect("valid");
        let breach = p99.breach(&latency, 0, 1.0).expect("nothing succeeded: breached");
        assert!(breach.contains("no request succeeded"), "{breach}");
        assert!(p99.breach(&latency, 1, 0.99).is_none(), "one success and a fast p99 meet it");
        assert!(p99.breach(&latency_histogram(), 0, 0.0).is_some(), "nor does an empty window pass");
        // The error threshold judges its rate alone.
        assert!(Threshold::parse("errors=100%").expect("valid").breach(&latency, 0, 1.0).is_none());
    }

    #[test]
    fn durations_need_units() {
        assert_eq!(parse_duration_us("250us").ok(), Some(250));
        assert_eq!(parse_duration_us("1.5ms").ok(), Some(1_500));
        assert_eq!(parse_duration_us("2s").ok(), Some(2_000_000));
        assert!(parse_duration_us("12").is_err());
    }
}
