//! Driving load: the open-loop generator (default) and the closed-loop one.
//!
//! Open loop: a dispatcher walks an [`OpenLoopSchedule`] and at each due time spawns the
//! request as a task. It waits with tokio's timer while the next due time is far and yields to
//! the runtime while it is near, so requests leave within microseconds of their due time; how
//! late each one actually left is recorded as the generator's lag. In-flight requests are bounded; a request that comes due when the bound is
//! reached is not sent and counts as an `overflow` failure, never a silent skip. Every request
//! is recorded with its latency from its due time, failures included: a failure when its answer
//! arrived, a timeout when it timed out, an overflow at the request timeout (never sent, it
//! counts as a client that waited its whole timeout in vain: recording it at the moment it was
//! given up, about zero, would pull the all-requests percentiles *down* exactly when the
//! generator falls behind).
//!
//! Closed loop: N virtual users, each sending its next request when the previous one answered
//! (plus an optional think time). Useful to probe capacity; it cannot show queueing delay,
//! which is why it is not the default.

pub mod http1;
pub mod schedule;
pub mod workload;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::Semaphore;

pub use http1::LoadClient;
pub use schedule::{Arrivals, OpenLoopSchedule, RepetitionSeeds};
pub use workload::{Correct, Mix, PlannedRequest, Scale, Session, Workload, check_response};

use crate::record::{Failure, Outcome, Recorder, Verdict};

/// Timing of a run.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub warmup: Duration,
    pub duration: Duration,
}

impl Window {
    pub fn end(&self) -> Duration {
        self.warmup + self.duration
    }
}

/// How an open-loop run paces its requests.
#[derive(Debug, Clone, Copy)]
pub struct OpenLoop {
    pub rate: f64,
    pub arrivals: Arrivals,
    pub max_in_flight: usize,
}

impl OpenLoop {
    /// The least in-flight bound when none is given.
    pub const MIN_DEFAULT_IN_FLIGHT: usize = 1024;
    /// ... raised to this much of the offered schedule at high rates.
    pub const DEFAULT_IN_FLIGHT_QUEUE_MS: f64 = 40.0;

    /// `rate` with `max_in_flight`, or the default bound: 1,024, or 40 ms of the offered rate
    /// when that is more. A fixed bound would be 10 ms of schedule at 100,000 requests/s, so any
    /// stall of the machine that long would count as failures, while at the shop's rates 1,024
    /// in flight already means a queue far beyond any latency objective.
    pub fn new(rate: f64, arrivals: Arrivals, max_in_flight: Option<usize>) -> Self {
        let default =
            || Self::MIN_DEFAULT_IN_FLIGHT.max((rate * Self::DEFAULT_IN_FLIGHT_QUEUE_MS / 1000.0).ceil() as usize);
        Self { rate, arrivals, max_in_flight: max_in_flight.unwrap_or_else(default) }
    }

    /// How the default bound is described in reports.
    pub fn describe_default_in_flight() -> String {
        format!(
            "{} (or {} ms of the offered rate if more)",
            Self::MIN_DEFAULT_IN_FLIGHT,
            Self::DEFAULT_IN_FLIGHT_QUEUE_MS
        )
    }
}

/// An HTTP client for setting up a run (logging users in), not for the measured load.
pub fn setup_client(request_timeout: Duration) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(request_timeout)
        .connect_timeout(request_timeout)
        .pool_idle_timeout(shop::app::CLIENT_IDLE_TIMEOUT)
        .tcp_nodelay(true)
        .build()?)
}

/// The ids of the orders the load was told are confirmed (201 to `POST /api/orders`, replays
/// included), warm-up included: what the books must show afterwards ([`crate::check`]).
/// Shared by every window run against one started system.
#[derive(Debug, Clone, Default)]
pub struct AcknowledgedOrders(Arc<Mutex<Vec<i64>>>);

impl AcknowledgedOrders {
    pub fn record(&self, order_id: i64) {
        self.0.lock().expect("acknowledged orders lock").push(order_id);
    }

    /// Every acknowledged id once, in order.
    pub fn ids(&self) -> Vec<i64> {
        let mut ids = self.0.lock().expect("acknowledged orders lock").clone();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// Sends one planned request and judges the answer, noting the order a checkout confirmed.
async fn send(client: &LoadClient, request: &PlannedRequest, acknowledged: &AcknowledgedOrders) -> Verdict {
    let answer = match client.send(&client.encode(request)).await {
        Ok(answer) => answer,
        Err(failure) => return Verdict::Failed(failure),
    };
    match check_response(request, answer.status, &answer.body) {
        Ok(correct) => {
            if let Correct::Confirmed(order_id) = correct {
                acknowledged.record(order_id);
            }
            correct.verdict()
        }
        Err(failure) => Verdict::Failed(failure),
    }
}

/// Waits until `deadline` without returning early: tokio's timer while the deadline is far
/// (it has millisecond granularity), then yielding to the runtime, which polls the sockets of
/// the requests in flight between two checks of the clock. The wait is precise to microseconds
/// and the dispatcher never blocks the thread the requests run on; while idle it keeps that
/// core busy, so generator CPU is reported but says little about its load.
async fn wait_until(deadline: Instant) {
    // tokio's timer rounds to milliseconds and the runtime may notice the expiry a tick later:
    // sleeping until 2 ms before the deadline never oversleeps it.
    const TIMER_SLACK: Duration = Duration::from_millis(2);
    loop {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        let remaining = deadline - now;
        if remaining > TIMER_SLACK + Duration::from_millis(1) {
            tokio::time::sleep(remaining - TIMER_SLACK).await;
        } else {
            tokio::task::yield_now().await;
        }
    }
}

/// Runs an open-loop load of `workload` against `base_url` for `window` on the schedule drawn
/// from `schedule_seed`, recording into `recorder` (and confirmed orders into `acknowledged`),
/// and returns a copy of the recording.
///
/// Everything runs on the current tokio runtime; the harness gives it one worker thread pinned
/// to the generator's core, so dispatching a request is a task spawn on the same thread, with
/// no cross-thread wake-up.
#[allow(clippy::too_many_arguments)]
pub async fn run_open_loop(
    client: LoadClient,
    mut workload: Workload,
    pace: OpenLoop,
    window: Window,
    schedule_seed: u64,
    recorder: Arc<Mutex<Recorder>>,
    acknowledged: AcknowledgedOrders,
) -> anyhow::Result<Recorder> {
    let in_flight = Arc::new(Semaphore::new(pace.max_in_flight));
    let schedule = OpenLoopSchedule::new(pace.rate, pace.arrivals, schedule_seed)?;
    const DISPATCH_BATCH: u32 = 16;
    let mut dispatched_without_yield = 0;
    let start = Instant::now();
    for offset in schedule {
        if offset >= window.end() {
            break;
        }
        let due = start + offset;
        if Instant::now() < due {
            dispatched_without_yield = 0;
            wait_until(due).await;
        }
        let lag = Instant::now().saturating_duration_since(due);
        let request = workload.next_request();
        recorder.lock().expect("recorder lock").record_due(offset, lag);
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            // Never sent: it counts as waiting the whole request timeout (see the module doc).
            let outcome = Outcome {
                endpoint: request.endpoint,
                due: offset,
                latency: client.timeout().max(Instant::now().saturating_duration_since(due)),
                service_time: Duration::ZERO,
                verdict: Verdict::Failed(Failure::Overflow),
            };
            recorder.lock().expect("recorder lock").record(&outcome);
            continue;
        };
        let (client, recorder, acknowledged) = (client.clone(), recorder.clone(), acknowledged.clone());
        tokio::spawn(async move {
            let sent = Instant::now();
            let verdict = send(&client, &request, &acknowledged).await;
            // When the answer arrived, or the client's timeout fired.
            let done = Instant::now();
            drop(permit);
            let outcome = Outcome {
                endpoint: request.endpoint,
                due: offset,
                latency: done - due,
                service_time: done - sent,
                verdict,
            };
            recorder.lock().expect("recorder lock").record(&outcome);
        });
        // Behind schedule, the loop would spawn without ever giving up the thread; let the
        // requests in flight run every few dispatches (a yield per dispatch costs a poll of the
        // sockets each time).
        dispatched_without_yield += 1;
        if dispatched_without_yield >= DISPATCH_BATCH {
            dispatched_without_yield = 0;
            tokio::task::yield_now().await;
        }
    }
    // Wait for the requests still in flight (each is bounded by the client's timeout).
    let all = u32::try_from(pace.max_in_flight).context("max in flight fits in u32")?;
    let _drained = in_flight.acquire_many(all).await?;
    let recorder = recorder.lock().expect("recorder lock").clone();
    Ok(recorder)
}

/// How a closed-loop run behaves.
#[derive(Debug, Clone, Copy)]
pub struct ClosedLoop {
    pub users: usize,
    pub think_time: Duration,
}

/// Runs `users` virtual users, each sending its next request when the last one answered
/// (confirmed orders go into `acknowledged`).
/// Latency is service time here: there is no schedule to be late against.
pub async fn run_closed_loop(
    client: LoadClient,
    workload: Workload,
    users: ClosedLoop,
    window: Window,
    recorder: Arc<Mutex<Recorder>>,
    acknowledged: AcknowledgedOrders,
) -> anyhow::Result<Recorder> {
    let workload = Arc::new(Mutex::new(workload));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(users.users);
    for _ in 0..users.users {
        let (client, recorder, workload, acknowledged) =
            (client.clone(), recorder.clone(), workload.clone(), acknowledged.clone());
        tasks.push(tokio::spawn(async move {
            while start.elapsed() < window.end() {
                let request = workload.lock().expect("workload lock").next_request();
                let sent = Instant::now();
                let offset = sent - start;
                let verdict = send(&client, &request, &acknowledged).await;
                let took = sent.elapsed();
                let outcome =
                    Outcome { endpoint: request.endpoint, due: offset, latency: took, service_time: took, verdict };
                {
                    let mut recorder = recorder.lock().expect("recorder lock");
                    recorder.record_due(offset, Duration::ZERO);
                    recorder.record(&outcome);
                }
                if !users.think_time.is_zero() {
                    tokio::time::sleep(users.think_time).await;
                }
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    let recorder = recorder.lock().expect("recorder lock").clone();
    Ok(recorder)
}

/// Logs in `count` seeded users (before the measured window) and returns their sessions.
pub async fn log_in_users(client: &reqwest::Client, base_url: &str, count: u32) -> anyhow::Result<Vec<Session>> {
    let mut sessions = Vec::with_capacity(count as usize);
    for user_id in 1..=i64::from(count) {
        let email = shop::seed::email_of_user(user_id);
        let response = client
            .post(format!("{base_url}/api/sessions"))
            .json(&serde_json::json!({"email": email, "password": shop::seed::SEED_PASSWORD}))
            .send()
            .await
            .with_context(|| format!("logging in {email}"))?;
        anyhow::ensure!(response.status().is_success(), "logging in {email}: {}", response.status());
        let body: serde_json::Value = response.json().await?;
        let token = body["token"].as_str().context("a token in the log-in answer")?;
        sessions.push(Session { user_id, email, authorization: Arc::from(format!("Bearer {token}")) });
    }
    Ok(sessions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_in_flight_bound_grows_with_the_rate_above_25600_per_second() {
        let bound = |rate| OpenLoop::new(rate, Arrivals::Constant, None).max_in_flight;
        assert_eq!(bound(500.0), 1024);
        assert_eq!(bound(25_600.0), 1024);
        assert_eq!(bound(100_000.0), 4000);
        assert_eq!(bound(140_000.0), 5600);
        assert_eq!(OpenLoop::new(100_000.0, Arrivals::Constant, Some(64)).max_in_flight, 64);
    }

    #[test]
    fn acknowledged_orders_are_listed_once_in_order() {
        let acknowledged = AcknowledgedOrders::default();
        for id in [5, 2, 5, 9] {
            acknowledged.clone().record(id);
        }
        assert_eq!(acknowledged.ids(), vec![2, 5, 9]);
    }
}
