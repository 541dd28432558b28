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
