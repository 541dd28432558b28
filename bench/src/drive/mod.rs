//! Driving load: the open-loop generator (default) and the closed-loop one.
//!
//! Open loop: the pool of connections is opened first ([`OpenLoop::pool_size`]), then a
//! dispatcher walks an [`OpenLoopSchedule`]: it builds each request (body and bytes) before its
//! due time, and at the due time spawns it as a task. It waits with tokio's timer while the
//! next due time is far and yields to the runtime while it is near, so requests leave within
//! microseconds of their due time; how late each one's last byte was written is recorded, per
//! second, as the generator's lag, and so are the connections opened per second. The end of a
//! request is taken at its answer's last byte, inside the client; the answer is checked (JSON)
//! after that ([`exchange`]). In-flight requests are bounded; a request that comes due when the bound is
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

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::Semaphore;

pub use http1::{Answer, ConnectionCounts, Exchange, LoadClient};
pub use schedule::{Arrivals, OpenLoopSchedule, RepetitionSeeds};
pub use workload::{Correct, Mix, PlannedRequest, Scale, Session, Workload, check_response};

use crate::record::{Endpoint, Failure, Outcome, Recorder, Verdict};

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
    /// The latency the pool opened ahead of the run is sized for ([`OpenLoop::pool_size`]).
    pub pool_latency: Duration,
}

impl OpenLoop {
    /// The least in-flight bound when none is given.
    pub const MIN_DEFAULT_IN_FLIGHT: usize = 1024;
    /// ... raised to this much of the offered schedule at high rates.
    pub const DEFAULT_IN_FLIGHT_QUEUE_MS: f64 = 40.0;
    /// The latency the pool of connections is sized for by default (`--pool-latency`; see
    /// [`OpenLoop::pool_size`]).
    pub const DEFAULT_POOL_LATENCY: Duration = Duration::from_millis(100);
    /// The least pool opened ahead of a run.
    pub const MIN_POOL: usize = 16;

    /// How many connections are opened before the schedule starts: the requests in flight, by
    /// Little's law, when each takes `pool_latency` (by default rate × 100 ms, the default p99
    /// objective, so a step that meets the objective needs no more), at least
    /// [`OpenLoop::MIN_POOL`] (bursts of a Poisson schedule) and at most `max_in_flight` (no
    /// more requests can be in flight, so no more connections can be in use). A request that
    /// finds every connection busy still opens one, and it is counted per second. Sized for
    /// 20 ms (before), the pool ran out near capacity and the generator opened hundreds of
    /// connections within a second, their connects inside those requests' latency. Whether
    /// that decides a step was measured (results/20261127-pool-latency-{20,100}ms-microservices-2500,
    /// six attempts each at 2,500 requests/s): 1 of 6 failed with 20 ms (its missed second held
    /// 263 new connections), 2 of 6 with 100 ms (no new connection in the missed second); it
    /// does not, at that size of sample. The larger pool keeps connects out of the latencies.
    pub fn pool_size(&self) -> usize {
        let expected = (self.rate * self.pool_latency.as_secs_f64()).ceil() as usize;
        expected.max(Self::MIN_POOL).min(self.max_in_flight)
    }

    /// `rate` with `max_in_flight`, or the default bound: 1,024, or 40 ms of the offered rate
    /// when that is more. A fixed bound would be 10 ms of schedule at 100,000 requests/s, so any
    /// stall of the machine that long would count as failures, while at the shop's rates 1,024
    /// in flight already means a queue far beyond any latency objective.
    pub fn new(rate: f64, arrivals: Arrivals, max_in_flight: Option<usize>) -> Self {
        let default =
            || Self::MIN_DEFAULT_IN_FLIGHT.max((rate * Self::DEFAULT_IN_FLIGHT_QUEUE_MS / 1000.0).ceil() as usize);
        Self {
            rate,
            arrivals,
            max_in_flight: max_in_flight.unwrap_or_else(default),
            pool_latency: Self::DEFAULT_POOL_LATENCY,
        }
    }

    /// The same pace, its pool sized for `latency` instead.
    pub fn with_pool_latency(mut self, latency: Duration) -> Self {
        self.pool_latency = latency;
        self
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

/// How a request ended, and when: what its outcome is computed from.
#[derive(Debug, Clone, Copy)]
pub struct Timed {
    pub verdict: Verdict,
    /// Its last byte written ([`Exchange::written`]); `None` if it never was.
    pub written: Option<Instant>,
    /// Its answer's last byte read, or when it failed ([`Exchange::done`]).
    pub done: Instant,
}

impl Timed {
    /// The outcome of the request of `endpoint` due at `due` (`offset` into the run), and its
    /// lag at send if it was written: latency is due → done, service time written → done, lag
    /// due → written.
    pub fn outcome(&self, endpoint: Endpoint, offset: Duration, due: Instant) -> (Outcome, Option<Duration>) {
        let lag = self.written.map(|written| written.saturating_duration_since(due));
        let service_time = self.written.map_or(Duration::ZERO, |written| self.done.saturating_duration_since(written));
        let latency = self.done.saturating_duration_since(due);
        (Outcome { endpoint, due: offset, latency, service_time, verdict: self.verdict }, lag)
    }
}

/// Sends `wire` (the bytes of `request`) and only then judges the answer with `judge`: the
/// client took [`Timed::done`] at the answer's last byte, so the judging (JSON parsing and
/// shape checks) is in no latency or service time.
pub async fn exchange(
    client: &LoadClient,
    wire: &[u8],
    request: &PlannedRequest,
    judge: impl FnOnce(&PlannedRequest, &Answer) -> Verdict,
) -> Timed {
    let Exchange { answer, written, done } = client.send(wire).await;
    let verdict = match &answer {
        Ok(answer) => judge(request, answer),
        Err(failure) => Verdict::Failed(*failure),
    };
    Timed { verdict, written, done }
}

/// Judges an answer ([`check_response`]), noting the order a checkout confirmed.
fn judge_answer(request: &PlannedRequest, answer: &Answer, acknowledged: &AcknowledgedOrders) -> Verdict {
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

/// Turns the client's running count of opened connections into counts per second.
#[derive(Debug, Clone)]
struct ConnectionSampler {
    client: LoadClient,
    /// The count already recorded.
    seen: Arc<AtomicU64>,
}

impl ConnectionSampler {
    /// Counts from now on (connections opened so far, the pool, are not recorded per second).
    fn new(client: &LoadClient) -> Self {
        Self { client: client.clone(), seen: Arc::new(AtomicU64::new(client.connection_counts().opened)) }
    }

    /// Records at `at` the connections opened since the last call, and those open.
    fn record(&self, recorder: &mut Recorder, at: Duration) {
        let counts = self.client.connection_counts();
        let previous = self.seen.fetch_max(counts.opened, Ordering::Relaxed);
        recorder.record_connections(at, counts.opened.saturating_sub(previous), counts.open);
    }
}

/// Waits until `deadline` without returning early, yielding to the runtime in a loop: between
/// two checks of the clock the runtime polls the sockets of the requests in flight, so an answer
/// is read as soon as it arrives. It never parks the thread, however far the deadline: a parked
/// generator's core halts on this VM (`haltpoll.guest_halt_poll_ns=0`), and every answer that
/// arrives during the wait would first have to wake it, a cost a low rate pays on every request
/// and a high rate never (before, the generator slept on tokio's timer while the next request
/// was more than 3 ms away, and the p50 at 250 requests/s came out above the one at 500).
/// The price: the generator's core is always busy, so its CPU time says nothing about its load.
async fn wait_until(deadline: Instant) {
    while Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
}

/// Opens the pool up to `size` connections and records the connections waiting in it as
/// opened before the schedule: counted as the pool the schedule starts with, whoever opened it
/// (the harness opens it earlier, so its resource samples line up with the schedule).
async fn ready_pool(client: &LoadClient, size: usize, recorder: &Mutex<Recorder>) {
    client.open_pool(size).await;
    recorder.lock().expect("recorder lock").connections_preopened += client.idle_connections() as u64;
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
    // Ramped over the first half of the warm-up, so a cold system is not met at full rate (see
    // the schedule's doc), and at the full rate for the second half, so the measured window
    // starts from the steady state at that rate rather than from the ramp's end.
    let schedule = OpenLoopSchedule::new(pace.rate, pace.arrivals, schedule_seed)?.ramped(window.warmup / 2);
    // The pool, before the schedule (and so before the warm-up and the measured window).
    ready_pool(&client, pace.pool_size(), &recorder).await;
    let connections = ConnectionSampler::new(&client);
    const DISPATCH_BATCH: u32 = 16;
    let mut dispatched_without_yield = 0;
    let mut last_offset = Duration::ZERO;
    let start = Instant::now();
    for offset in schedule {
        if offset >= window.end() {
            break;
        }
        last_offset = offset;
        let due = start + offset;
        // Built before it is due: its JSON body and its bytes are not in its latency (behind
        // schedule they are in its lag, which is measured).
        let request = workload.next_request();
        let wire = client.encode(&request);
        if Instant::now() < due {
            dispatched_without_yield = 0;
            wait_until(due).await;
        }
        {
            let mut recorder = recorder.lock().expect("recorder lock");
            recorder.record_came_due(offset);
            connections.record(&mut recorder, offset);
        }
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
            let judge = |request: &PlannedRequest, answer: &Answer| judge_answer(request, answer, &acknowledged);
            let timed = exchange(&client, &wire, &request, judge).await;
            drop(permit);
            let (outcome, lag) = timed.outcome(request.endpoint, offset, due);
            let mut recorder = recorder.lock().expect("recorder lock");
            if let Some(lag) = lag {
                recorder.record_send_lag(offset, lag);
            }
            recorder.record(&outcome);
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
    let mut recorder = recorder.lock().expect("recorder lock");
    // Connections opened by the last requests, after the last dispatch.
    connections.record(&mut recorder, last_offset);
    Ok(recorder.clone())
}

/// How a closed-loop run behaves.
#[derive(Debug, Clone, Copy)]
pub struct ClosedLoop {
    pub users: usize,
    pub think_time: Duration,
}

/// Runs `users` virtual users, each sending its next request when the last one answered
/// (confirmed orders go into `acknowledged`).
/// Latency counts from when a user sent (there is no schedule to be late against); the lag is
/// then only the client's own time to write the request.
pub async fn run_closed_loop(
    client: LoadClient,
    workload: Workload,
    users: ClosedLoop,
    window: Window,
    recorder: Arc<Mutex<Recorder>>,
    acknowledged: AcknowledgedOrders,
) -> anyhow::Result<Recorder> {
    let workload = Arc::new(Mutex::new(workload));
    // One connection per user, opened before the window.
    ready_pool(&client, users.users, &recorder).await;
    let connections = ConnectionSampler::new(&client);
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(users.users);
    for _ in 0..users.users {
        let (client, recorder, workload, acknowledged, connections) =
            (client.clone(), recorder.clone(), workload.clone(), acknowledged.clone(), connections.clone());
        tasks.push(tokio::spawn(async move {
            while start.elapsed() < window.end() {
                let request = workload.lock().expect("workload lock").next_request();
                let wire = client.encode(&request);
                // A user sends when the last answer came: that is its due time.
                let sent = Instant::now();
                let offset = sent - start;
                let judge = |request: &PlannedRequest, answer: &Answer| judge_answer(request, answer, &acknowledged);
                let timed = exchange(&client, &wire, &request, judge).await;
                let (outcome, lag) = timed.outcome(request.endpoint, offset, sent);
                {
                    let mut recorder = recorder.lock().expect("recorder lock");
                    recorder.record_came_due(offset);
                    connections.record(&mut recorder, offset);
                    if let Some(lag) = lag {
                        recorder.record_send_lag(offset, lag);
                    }
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

    #[test]
    fn the_pool_is_the_expected_in_flight_count_bounded_by_max_in_flight() {
        let pool = |rate, max_in_flight| OpenLoop::new(rate, Arrivals::Poisson, max_in_flight).pool_size();
        assert_eq!(pool(100.0, None), OpenLoop::MIN_POOL, "at least the minimum");
        assert_eq!(pool(2_000.0, None), 200, "rate × 100 ms");
        assert_eq!(pool(100_000.0, None), 4_000, "at most the in-flight bound");
        assert_eq!(pool(100_000.0, Some(64)), 64, "never more than can be in flight");
        assert_eq!(pool(200.0, Some(4)), 4);
    }

    /// The waiting policy the docs state: the generator's thread never parks while it waits, so
    /// it spends the wait on its CPU (a sleeping thread would spend next to none of it). The
    /// bound is loose (a quarter of the wait) so a descheduled test thread does not fail it;
    /// sleeping until 2 ms before a 200 ms deadline, as the generator once did, spends about 1%.
    #[test]
    fn waiting_for_a_due_time_never_parks_the_thread() {
        use nix::sys::resource::{UsageWho, getrusage};
        let thread_cpu = || {
            let usage = getrusage(UsageWho::RUSAGE_THREAD).expect("getrusage works on Linux");
            let micros = |t: nix::sys::time::TimeVal| {
                Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
            };
            micros(usage.user_time()) + micros(usage.system_time())
        };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        let wait = Duration::from_millis(200);
        let cpu_before = thread_cpu();
        let started = Instant::now();
        runtime.block_on(wait_until(started + wait));
        let (waited, cpu) = (started.elapsed(), thread_cpu() - cpu_before);
        assert!(waited >= wait, "never returns early: {waited:?}");
        assert!(cpu >= wait / 4, "the thread spent {cpu:?} of CPU in a {waited:?} wait: it parked");
    }

    #[tokio::test]
    async fn the_end_time_is_taken_at_the_last_byte_before_the_answer_is_checked() {
        // A server answering one `/health` request.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let base_url = format!("http://{}", listener.local_addr().expect("an address"));
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut stream, _) = listener.accept().await.expect("a connection");
            let mut buffer = [0u8; 1024];
            let _ = stream.read(&mut buffer).await;
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 15\r\n\r\n{\"status\":\"ok\"}").await;
            let _ = stream.read(&mut buffer).await;
        });
        let client = LoadClient::new(&base_url, Duration::from_secs(10)).expect("a client");
        let request = PlannedRequest::get(Endpoint::Health, "/health");
        let due = Instant::now();
        let wire = client.encode(&request);
        // A slow check (as JSON parsing of a large answer would be): when did it start?
        let mut check_started = None;
        let slow_check = |request: &PlannedRequest, answer: &Answer| {
            check_started = Some(Instant::now());
            std::thread::sleep(Duration::from_millis(30));
            judge_answer(request, answer, &AcknowledgedOrders::default())
        };
        let timed = exchange(&client, &wire, &request, slow_check).await;
        let check_started = check_started.expect("the answer was checked");
        assert_eq!(timed.verdict, Verdict::Ok);
        let written = timed.written.expect("written");
        assert!(due <= written && written <= timed.done && timed.done <= check_started, "due, written, done, check");
        let (outcome, lag) = timed.outcome(Endpoint::Health, Duration::ZERO, due);
        assert_eq!(outcome.latency, timed.done - due, "latency ends at done, before the check");
        assert!(outcome.latency <= check_started - due);
        assert_eq!(lag, Some(written - due));
        assert_eq!(outcome.latency, lag.expect("a lag") + outcome.service_time, "lag + service time");
    }
}
