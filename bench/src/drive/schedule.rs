//! When each request of an open-loop run is due.
//!
//! An open-loop generator sends on a schedule fixed in advance, whatever the server does; if
//! the server stalls, requests keep coming due, and their latency is counted from when they were
//! *due*, not from when they happened to be sent. That is what keeps coordinated omission from
//! hiding stalls (Gil Tene; wrk2). This module computes the due times, and the seeds each
//! repetition draws its schedule and its requests from ([`RepetitionSeeds`]).

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Exp};
use serde::{Deserialize, Serialize};

/// How arrivals are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Arrivals {
    /// Evenly spaced, 1/rate apart.
    Constant,
    /// A Poisson process: exponentially distributed gaps with mean 1/rate (bursty, like
    /// independent users).
    Poisson,
}

/// The due times (offsets from the start) of an open-loop run at `rate` requests per second.
///
/// With a ramp of length `R` ([`OpenLoopSchedule::ramped`]) the rate grows linearly from 0 to
/// `rate` over `[0, R]` and stays there: a cold system (empty caches, new database connections)
/// is not hit at full rate before it warms up, so the measured window after the warm-up does not
/// start with a backlog the cold start built (at a rate near capacity such a backlog drains
/// slowly, and failed steps that a warm system sustains). The ramp is a time change of the
/// full-rate process: its cumulative intensity `Λ(t) = rate·t²/2R` below `R`, `rate·(t − R/2)`
/// above, so a full-rate offset `s` becomes `t = √(2Rs)` for `s ≤ R/2` and `t = s + R/2` after;
/// Poisson stays Poisson (with the ramped rate), constant spacing stays exact after `R`.
#[derive(Debug)]
pub struct OpenLoopSchedule {
    rate: f64,
    arrivals: Arrivals,
    gaps: Exp<f64>,
    rng: StdRng,
    issued: u64,
    next_offset_secs: f64,
    ramp_secs: f64,
}

impl OpenLoopSchedule {
    pub fn new(rate: f64, arrivals: Arrivals, seed: u64) -> anyhow::Result<Self> {
        anyhow::ensure!(rate.is_finite() && rate > 0.0, "the rate must be positive");
        Ok(Self {
            rate,
            arrivals,
            gaps: Exp::new(rate)?,
            rng: StdRng::seed_from_u64(seed),
            issued: 0,
            next_offset_secs: 0.0,
            ramp_secs: 0.0,
        })
    }

    /// The same schedule, its rate ramped linearly from 0 over the first `ramp` (see above).
    pub fn ramped(mut self, ramp: Duration) -> Self {
        self.ramp_secs = ramp.as_secs_f64();
        self
    }

    /// The due time of full-rate offset `s` on the ramped clock.
    fn ramp(&self, s: f64) -> f64 {
        let r = self.ramp_secs;
        if s <= r / 2.0 { (2.0 * r * s).sqrt() } else { s + r / 2.0 }
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }
}

impl Iterator for OpenLoopSchedule {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let offset = match self.arrivals {
            // Computed from the index, not accumulated, so rounding never drifts.
            Arrivals::Constant => self.issued as f64 / self.rate,
            Arrivals::Poisson => {
                let offset = self.next_offset_secs;
                self.next_offset_secs += self.gaps.sample(&mut self.rng);
                offset
            }
        };
        self.issued += 1;
        Some(Duration::from_secs_f64(self.ramp(offset)))
    }
}

/// The seeds of one repetition. Both architectures get the same ones within a repetition (a
/// fair pair: the same due times, the same requests), and every repetition new ones, so that
/// repeating a measurement also samples a new schedule instead of replaying one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepetitionSeeds {
    pub repetition: u32,
    /// Seeds the [`OpenLoopSchedule`] (Poisson gaps; constant arrivals do not use it).
    pub schedule: u64,
    /// Seeds the [`super::Workload`] (which endpoint, product, user).
    pub workload: u64,
}

impl RepetitionSeeds {
    /// The seeds of `repetition` (from 1) derived from the base seed (`--seed`).
    pub fn derive(base: u64, repetition: u32) -> Self {
        Self {
            repetition,
            // Mixed, not `base + repetition`: that is the workload's seed, and two generators
            // seeded alike would draw the same numbers (short gaps would go with the same
            // endpoints every time).
            schedule: splitmix64(base ^ splitmix64(u64::from(repetition))),
            // As before per-repetition seeds existed, so the requests of a repetition are unchanged.
            workload: base.wrapping_add(u64::from(repetition)),
        }
    }
}

impl RepetitionSeeds {
    /// The seeds of a sweep step's `attempt` (from 1): the first attempt keeps the repetition's
    /// seeds; a re-test draws its own schedule and requests (a re-test replaying the very
    /// bursts that failed the first attempt would only re-measure the machine's noise). Derived
    /// from the repetition's seeds alone, so both architectures get the same ones.
    pub fn for_attempt(self, attempt: u32) -> Self {
        if attempt <= 1 {
            return self;
        }
        let salt = splitmix64(u64::from(attempt) << 32);
        Self {
            repetition: self.repetition,
            schedule: splitmix64(self.schedule ^ salt),
            workload: splitmix64(self.workload ^ salt),
        }
    }
}

/// One step of SplitMix64 (Steele, Lea and Flood): a bijection that spreads nearby inputs far
/// apart.
fn splitmix64(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retest_draws_its_own_seeds_the_same_for_both_architectures() {
        let seeds = RepetitionSeeds::derive(7, 2);
        assert_eq!(seeds.for_attempt(1), seeds, "the first attempt keeps the repetition's seeds");
        let second = seeds.for_attempt(2);
        assert_ne!(second.schedule, seeds.schedule);
        assert_ne!(second.workload, seeds.workload);
        assert_ne!(seeds.for_attempt(3), second);
        assert_eq!(seeds.for_attempt(2), second, "derived, not drawn: the same for every architecture");
        assert_eq!(second.repetition, 2);
    }

    #[test]
    fn constant_arrivals_are_evenly_spaced() {
        let due: Vec<Duration> = OpenLoopSchedule::new(1000.0, Arrivals::Constant, 1).expect("valid").take(4).collect();
        assert_eq!(
            due,
            vec![Duration::ZERO, Duration::from_millis(1), Duration::from_millis(2), Duration::from_millis(3)]
        );
    }

    #[test]
    fn a_ramped_schedule_grows_linearly_then_keeps_the_full_rate() {
        let ramp = Duration::from_secs(2);
        let count = |arrivals, from: f64, to: f64| {
            OpenLoopSchedule::new(1000.0, arrivals, 9)
                .expect("valid")
                .ramped(ramp)
                .take_while(|d| d.as_secs_f64() < to)
                .filter(|d| d.as_secs_f64() >= from)
                .count()
        };
        // Constant arrivals: Λ(t) = 1000·t²/4 below 2 s, so 250 in the first second, 750 in the second.
        assert_eq!(count(Arrivals::Constant, 0.0, 1.0), 250);
        assert_eq!(count(Arrivals::Constant, 1.0, 2.0), 750);
        // After the ramp, the full rate, evenly spaced as before.
        assert_eq!(count(Arrivals::Constant, 2.0, 12.0), 10_000);
        let after: Vec<Duration> = OpenLoopSchedule::new(1000.0, Arrivals::Constant, 1)
            .expect("valid")
            .ramped(ramp)
            .skip_while(|d| *d < ramp)
            .take(3)
            .collect();
        let gaps = [after[1] - after[0], after[2] - after[1]].map(|g| g.as_secs_f64());
        assert!(gaps.iter().all(|g| (g - 0.001).abs() < 1e-9), "{gaps:?}");
        // Poisson: the ramp's first half carries about a quarter of a full second's requests.
        let first = count(Arrivals::Poisson, 0.0, 1.0) as f64;
        assert!((150.0..350.0).contains(&first), "{first}");
        let full = count(Arrivals::Poisson, 2.0, 12.0) as f64;
        assert!((9_500.0..10_500.0).contains(&full), "{full}");
        // No ramp: the schedule as it always was.
        let plain: Vec<Duration> =
            OpenLoopSchedule::new(1000.0, Arrivals::Poisson, 3).expect("valid").take(5).collect();
        let zero: Vec<Duration> = OpenLoopSchedule::new(1000.0, Arrivals::Poisson, 3)
            .expect("valid")
            .ramped(Duration::ZERO)
            .take(5)
            .collect();
        assert_eq!(plain, zero);
    }

    #[test]
    fn constant_arrivals_fill_the_duration_at_the_rate() {
        let schedule = OpenLoopSchedule::new(250.0, Arrivals::Constant, 1).expect("valid");
        let within = schedule.take_while(|d| *d < Duration::from_secs(10)).count();
        assert_eq!(within, 2500);
    }

    #[test]
    fn poisson_arrivals_average_the_rate_and_vary() {
        let due: Vec<Duration> =
            OpenLoopSchedule::new(2000.0, Arrivals::Poisson, 7).expect("valid").take(200_001).collect();
        let mean_gap = due[200_000].as_secs_f64() / 200_000.0;
        assert!((mean_gap - 0.0005).abs() < 0.0005 * 0.02, "mean gap {mean_gap}");
        let gaps: Vec<f64> = due.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
        let (min, max) = gaps.iter().fold((f64::MAX, 0f64), |(lo, hi), g| (lo.min(*g), hi.max(*g)));
        assert!(min < 0.0001 && max > 0.002, "exponential gaps spread out: {min} .. {max}");
        assert!(due.windows(2).all(|w| w[0] <= w[1]), "due times never go back");
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        let a: Vec<Duration> = OpenLoopSchedule::new(100.0, Arrivals::Poisson, 3).expect("valid").take(50).collect();
        let b: Vec<Duration> = OpenLoopSchedule::new(100.0, Arrivals::Poisson, 3).expect("valid").take(50).collect();
        assert_eq!(a, b);
    }

    #[test]
    fn each_repetition_draws_a_new_schedule_from_the_base_seed() {
        let seeds: Vec<RepetitionSeeds> = (1..=20).map(|r| RepetitionSeeds::derive(1, r)).collect();
        let mut schedules: Vec<u64> = seeds.iter().map(|s| s.schedule).collect();
        schedules.sort_unstable();
        schedules.dedup();
        assert_eq!(schedules.len(), 20, "every repetition its own schedule seed");
        assert!(seeds.iter().all(|s| s.schedule != s.workload), "schedule and workload never seeded alike");
        assert_eq!(RepetitionSeeds::derive(1, 3), seeds[2], "derived, not drawn: a rerun gets the same seeds");
        assert_ne!(RepetitionSeeds::derive(2, 3).schedule, seeds[2].schedule, "the base seed matters");
        assert_eq!(seeds[0].workload, 2, "the workload seed is base + repetition, as before");

        // And new seeds make new Poisson schedules.
        let due = |seed| -> Vec<Duration> {
            OpenLoopSchedule::new(100.0, Arrivals::Poisson, seed).expect("valid").take(20).collect()
        };
        assert_ne!(due(seeds[0].schedule), due(seeds[1].schedule));
    }

    #[test]
    fn a_non_positive_rate_is_refused() {
        assert!(OpenLoopSchedule::new(0.0, Arrivals::Constant, 1).is_err());
        assert!(OpenLoopSchedule::new(f64::NAN, Arrivals::Poisson, 1).is_err());
    }
}
