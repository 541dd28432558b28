//! Load shedding at the microservices' gateway (`--resilience full`): admission control with a
//! controlled-delay queue, as Facebook describes it in "Fail at Scale" (Maurer, ACM Queue 2015)
//! and folly's `Codel` implements it.
//!
//! At most `--gateway-max-in-flight` public requests ([`DEFAULT_MAX_IN_FLIGHT`]) are handled at
//! once; the rest wait for a slot. How long one may wait depends on whether the queue is
//! *standing*: CoDel's test is the smallest queueing delay seen in an interval
//! ([`INTERVAL`]). If some request of the last interval got its slot within [`TARGET`], the
//! queue still drains and a newcomer may wait [`BURST_WAIT`] (a burst that will pass); if even
//! the luckiest waited longer, requests arrive faster than the system finishes them, waiting
//! longer only turns the backlog into latency for everyone, and a newcomer may wait
//! [`STANDING_WAIT`] (folly's "slough timeout", twice the target). A request shed after its
//! wait counts its whole wait, so shedding never makes a standing queue look drained. A
//! request that gets no slot in time is answered `503 overloaded` with `Retry-After: 1`
//! before any work is done on it, so the requests that are admitted still finish within their
//! deadline.
//!
//! Only the public API is shed: the gateway wraps its `/api` routes alone in
//! [`admit_or_shed`], and only with `full`; `/health`, `/ready`, `/metrics` and the fault
//! admin routes always pass (the harness samples `/metrics` during a fault run), and no other
//! process, nor the gateway of another profile, has this layer at all.

use std::sync::Mutex;
use std::time::Duration;

use actix_web::ResponseError;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use tokio::sync::{Semaphore, SemaphorePermit};
// Tokio's clock, so tests can pause it.
use tokio::time::Instant;

use crate::error::ApiError;

/// Public requests the gateway handles at once by default: four times the calls one process
/// may have in flight to one upstream ([`crate::http_client::MAX_CALLS_IN_FLIGHT`]), so the
/// requests stuck on one hung upstream fill its bulkhead, not the gateway, and the others are
/// still admitted.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;
/// CoDel's target: a queue whose shortest wait in an interval exceeds this is standing.
pub const TARGET: Duration = Duration::from_millis(5);
/// CoDel's interval, over which the shortest wait is taken.
pub const INTERVAL: Duration = Duration::from_millis(100);
/// The longest wait for a slot while the queue drains.
pub const BURST_WAIT: Duration = Duration::from_millis(100);
/// The longest wait for a slot while the queue stands: twice the target, as folly's Codel.
pub const STANDING_WAIT: Duration = Duration::from_millis(10);

/// CoDel's state: the shortest queueing delay of the current interval, and whether the last
/// completed interval said the queue stands.
#[derive(Debug)]
struct Codel {
    interval_ends: Instant,
    shortest: Option<Duration>,
    standing: bool,
}

impl Codel {
    fn new(now: Instant) -> Self {
        Self { interval_ends: now + INTERVAL, shortest: None, standing: false }
    }

    /// Closes the interval if it is over: its shortest delay decides the next one's regime. An
    /// interval without any request says nothing stands (the state is rolled lazily, so a
    /// whole interval past the end of the one with the delays is such an interval).
    fn roll(&mut self, now: Instant) {
        if now >= self.interval_ends {
            let quiet_interval_since = now >= self.interval_ends + INTERVAL;
            self.standing = !quiet_interval_since && self.shortest.is_some_and(|shortest| shortest > TARGET);
            self.shortest = None;
            self.interval_ends = now + INTERVAL;
        }
    }

    /// A request left the queue after `delay` (admitted, or shed at the end of its wait).
    fn record(&mut self, delay: Duration, now: Instant) {
        self.roll(now);
        self.shortest = Some(self.shortest.map_or(delay, |shortest| shortest.min(delay)));
    }

    fn max_wait(&mut self, now: Instant) -> Duration {
        self.roll(now);
        if self.standing { STANDING_WAIT } else { BURST_WAIT }
    }
}

/// The gateway's admission state, shared by every request.
#[derive(Debug)]
pub struct Admission {
    slots: Semaphore,
    codel: Mutex<Codel>,
}

impl Admission {
    pub fn new(max_in_flight: usize) -> Self {
        Self { slots: Semaphore::new(max_in_flight), codel: Mutex::new(Codel::new(Instant::now())) }
    }

    fn codel(&self) -> std::sync::MutexGuard<'_, Codel> {
        self.codel.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long a request arriving at `now` may wait for a slot.
    fn max_wait(&self, now: Instant) -> Duration {
        self.codel().max_wait(now)
    }

    /// A slot for a request arriving now, or `None` if it is to be shed. Waits at most
    /// [`Admission::max_wait`], and never past `deadline_left`.
    pub async fn admit(&self, deadline_left: Option<Duration>) -> Option<SemaphorePermit<'_>> {
        let arrived = Instant::now();
        let allowed = self.max_wait(arrived);
        let wait = deadline_left.map_or(allowed, |left| left.min(allowed));
        // The semaphore is fair: a newcomer queues behind those already waiting.
        let permit = tokio::time::timeout(wait, self.slots.acquire()).await.ok().and_then(Result::ok);
        let left = Instant::now();
        self.codel().record(left.saturating_duration_since(arrived), left);
        permit
    }
}

/// The layer the gateway wraps its public routes in (`full` only), with its admission state:
/// `from_fn(move |req, next| admit_or_shed(admission.clone(), req, next))`.
pub async fn admit_or_shed(
    admission: std::sync::Arc<Admission>,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(_slot) = admission.admit(crate::deadline::remaining()).await else {
        crate::telemetry::count_shed();
        let refusal = ApiError::unavailable("overloaded", "the gateway is overloaded; try again shortly")
            .with_retry_after(1)
            .error_response();
        return Ok(req.into_response(refusal).map_into_right_body());
    };
    Ok(next.call(req).await?.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_stands_when_even_the_shortest_wait_of_an_interval_exceeds_the_target() {
        let t0 = Instant::now();
        let mut codel = Codel::new(t0);
        assert_eq!(codel.max_wait(t0), BURST_WAIT, "a fresh queue drains");
        // One interval in which every request waited longer than the target...
        codel.record(TARGET * 3, t0 + INTERVAL / 4);
        codel.record(TARGET * 2, t0 + INTERVAL / 2);
        assert_eq!(codel.max_wait(t0 + INTERVAL / 2), BURST_WAIT, "judged when the interval ends");
        // ...makes the next one standing: newcomers get the short wait.
        let next = t0 + INTERVAL;
        assert_eq!(codel.max_wait(next), STANDING_WAIT);
        // One request in that interval admitted at once is enough to say it drains again.
        codel.record(TARGET * 4, next + INTERVAL / 4);
        codel.record(Duration::ZERO, next + INTERVAL / 2);
        assert_eq!(codel.max_wait(next + INTERVAL), BURST_WAIT);
        // An interval without requests says nothing stands.
        codel.record(TARGET * 4, next + INTERVAL * 2);
        assert_eq!(codel.max_wait(next + INTERVAL * 4), BURST_WAIT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_gateway_sheds_after_the_burst_wait_and_a_standing_queue_after_the_short_one() {
        let admission = Admission::new(1);
        let held = admission.admit(None).await.expect("a free slot");
        let started = tokio::time::Instant::now();
        assert!(admission.admit(None).await.is_none(), "no slot freed within the wait");
        assert_eq!(started.elapsed(), BURST_WAIT, "a draining queue's allowance (paused clock)");
        // That request waited far past the target and so did everyone in the interval: once it
        // closes, the queue stands and newcomers give up sooner.
        tokio::time::advance(INTERVAL).await;
        let started = tokio::time::Instant::now();
        assert!(admission.admit(None).await.is_none());
        assert_eq!(started.elapsed(), STANDING_WAIT, "a standing queue's allowance");
        drop(held);
        assert!(admission.admit(None).await.is_some(), "a freed slot admits again");
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_gets_a_slot_freed_within_its_wait_and_never_waits_past_its_deadline() {
        let admission = Admission::new(1);
        let held = admission.admit(None).await.expect("a free slot");
        let releaser = async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            drop(held);
        };
        let (admitted, ()) = tokio::join!(admission.admit(None), releaser);
        assert!(admitted.is_some(), "the slot freed after 10 ms went to the waiter");
        // No time left on the request: shed at once, whatever the allowance.
        let started = tokio::time::Instant::now();
        assert!(admission.admit(Some(Duration::ZERO)).await.is_none());
        assert_eq!(started.elapsed(), Duration::ZERO);
    }
}
