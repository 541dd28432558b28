//! How a process treats failing calls to another (`--resilience`), so a fault run can show
//! what each choice buys. Timeouts on every call hold in every profile.
//!
//! - `none`: one attempt per call.
//! - `naive-retries`: an idempotent call (a GET) that fails is tried again at once, up to 3
//!   more times, without limit on how many retries the process sends in all: the textbook way
//!   to turn a slow dependency into an overloaded one.
//! - `full`: a circuit breaker per upstream (after [`BREAKER_FAILURES`] calls in a row that got
//!   no answer, refused, reset or timed out, the upstream is not called for
//!   [`BREAKER_COOLDOWN`]; then one call probes it, and its answer closes or reopens the
//!   breaker; an answer, even a 5xx, is a sign of life), and retries of idempotent calls with jittered exponential
//!   backoff under a retry budget (tower's: retries at most 10% of the calls of the last 10 s,
//!   plus 10 a second), so a failing upstream costs one fast failure, not a timeout per call;
//!   a bulkhead per upstream (a call that finds all [`crate::http_client::MAX_CALLS_IN_FLIGHT`]
//!   slots to that upstream taken waits at most [`BULKHEAD_WAIT`], then fails as unavailable,
//!   so one stuck upstream cannot hold the caller's requests for a whole timeout each); and
//!   load shedding at the gateway ([`crate::admission`]).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tower::retry::budget::{Budget, TpsBudget};

/// The resilience profile of every call between services.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Resilience {
    #[default]
    None,
    NaiveRetries,
    Full,
}

impl Resilience {
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::NaiveRetries => "naive-retries",
            Self::Full => "full",
        }
    }
}

/// Failures in a row that open a breaker.
pub const BREAKER_FAILURES: u32 = 5;
/// How long an open breaker refuses calls before it lets one probe through.
pub const BREAKER_COOLDOWN: Duration = Duration::from_millis(500);
/// Attempts of one idempotent call at most (the first and its retries).
pub const MAX_ATTEMPTS: u32 = 4;
/// `full`: how long a call waits for one of its upstream's slots before it fails.
pub const BULKHEAD_WAIT: Duration = Duration::from_millis(10);
/// The first backoff of `full`; each retry doubles it, with full jitter.
pub const BASE_BACKOFF: Duration = Duration::from_millis(5);

/// A consecutive-failure circuit breaker.
#[derive(Debug, Default)]
pub struct CircuitBreaker {
    state: Mutex<BreakerState>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
enum BreakerState {
    #[default]
    Closed,
    /// Counting failures in a row.
    Failing(u32),
    /// Refusing calls until then.
    Open(Instant),
    /// One probe is out; others are refused until it answers.
    Probing,
}

impl CircuitBreaker {
    /// Whether a call may go out now (`now` passed in, so tests need not wait).
    pub fn allow(&self, now: Instant) -> bool {
        let mut state = self.state.lock().expect("breaker lock");
        match *state {
            BreakerState::Closed | BreakerState::Failing(_) => true,
            BreakerState::Open(until) if now >= until => {
                *state = BreakerState::Probing;
                true
            }
            BreakerState::Open(_) | BreakerState::Probing => false,
        }
    }

    /// Records how an allowed call ended.
    pub fn record(&self, succeeded: bool, now: Instant) {
        let mut state = self.state.lock().expect("breaker lock");
        *state = match *state {
            _ if succeeded => BreakerState::Closed,
            still_open @ BreakerState::Open(_) => still_open,
            BreakerState::Closed if BREAKER_FAILURES > 1 => BreakerState::Failing(1),
            BreakerState::Failing(n) if n + 1 < BREAKER_FAILURES => BreakerState::Failing(n + 1),
            // A failed probe, or the failures in a row reached the threshold.
            _ => BreakerState::Open(now + BREAKER_COOLDOWN),
        };
    }

    pub fn is_open(&self) -> bool {
        matches!(*self.state.lock().expect("breaker lock"), BreakerState::Open(_) | BreakerState::Probing)
    }
}

/// What one upstream's calls share: the profile, the breaker and the retry budget.
#[derive(Debug)]
pub struct CallPolicy {
    pub resilience: Resilience,
    pub breaker: CircuitBreaker,
    budget: TpsBudget,
}

impl CallPolicy {
    pub fn new(resilience: Resilience) -> Self {
        Self {
            resilience,
            breaker: CircuitBreaker::default(),
            budget: TpsBudget::new(Duration::from_secs(10), 10, 0.1),
        }
    }

    /// Whether a call may go out (the breaker, in `full`).
    pub fn may_call(&self) -> bool {
        self.resilience != Resilience::Full || self.breaker.allow(Instant::now())
    }

    /// Records a call's end (for the breaker).
    pub fn ended(&self, succeeded: bool) {
        if self.resilience == Resilience::Full {
            self.breaker.record(succeeded, Instant::now());
        }
    }

    /// A new idempotent call begins: it earns the budget its share of retries.
    pub fn call_begins(&self) {
        if self.resilience == Resilience::Full {
            self.budget.deposit();
        }
    }

    /// How long a call may wait for a free slot to its upstream, given `timeout` for the call.
    pub fn slot_wait(&self, timeout: Duration) -> Duration {
        match self.resilience {
            Resilience::Full => timeout.min(BULKHEAD_WAIT),
            Resilience::None | Resilience::NaiveRetries => timeout,
        }
    }

    /// Whether attempt `attempt` (from 1) may be followed by a retry, and after how long.
    pub fn retry_after(&self, attempt: u32) -> Option<Duration> {
        if attempt >= MAX_ATTEMPTS {
            return None;
        }
        match self.resilience {
            Resilience::None => None,
            Resilience::NaiveRetries => Some(Duration::ZERO),
            Resilience::Full => self.budget.withdraw().then(|| {
                let ceiling = BASE_BACKOFF * 2u32.pow(attempt - 1);
                ceiling.mul_f64(rand::random::<f64>())
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_opens_after_failures_in_a_row_probes_after_the_cooldown_and_closes_on_success() {
        let breaker = CircuitBreaker::default();
        let t0 = Instant::now();
        for _ in 0..BREAKER_FAILURES - 1 {
            assert!(breaker.allow(t0));
            breaker.record(false, t0);
        }
        breaker.record(true, t0);
        assert!(!breaker.is_open(), "a success resets the count");
        for _ in 0..BREAKER_FAILURES {
            assert!(breaker.allow(t0));
            breaker.record(false, t0);
        }
        assert!(breaker.is_open() && !breaker.allow(t0), "open: calls refused");
        let later = t0 + BREAKER_COOLDOWN;
        assert!(breaker.allow(later), "one probe after the cooldown");
        assert!(!breaker.allow(later), "and only one");
        breaker.record(false, later);
        assert!(!breaker.allow(later), "a failed probe reopens it");
        let again = later + BREAKER_COOLDOWN;
        assert!(breaker.allow(again));
        breaker.record(true, again);
        assert!(!breaker.is_open() && breaker.allow(again), "a good probe closes it");
    }

    #[test]
    fn naive_retries_always_retry_and_the_budget_bounds_full_ones() {
        let naive = CallPolicy::new(Resilience::NaiveRetries);
        assert_eq!(naive.retry_after(1), Some(Duration::ZERO));
        assert_eq!(naive.retry_after(MAX_ATTEMPTS), None);
        assert_eq!(CallPolicy::new(Resilience::None).retry_after(1), None);

        // 1,000 calls that all fail, each wanting every retry it may have.
        let full = CallPolicy::new(Resilience::Full);
        let mut retries = 0;
        for _ in 0..1000 {
            full.call_begins();
            let mut attempt = 1;
            while let Some(wait) = full.retry_after(attempt) {
                assert!(wait <= BASE_BACKOFF * 2u32.pow(attempt - 1), "jittered backoff within its ceiling");
                retries += 1;
                attempt += 1;
            }
        }
        // 10% of the calls plus the 10 a second for the budget's 10 s window.
        assert!(retries <= 100 + 10 * 10, "the budget bounds retries: {retries}");
        assert!(retries >= 100, "and allows its share: {retries}");
    }
}
