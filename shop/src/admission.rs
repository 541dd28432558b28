//! Load shedding at the microservices' gateway (`--resilience full`): admission control with a
//! controlled-delay queue, as Facebook describes it in "Fail at Scale" (Maurer, ACM Queue 2015).
//!
//! At most `--gateway-max-in-flight` public requests ([`DEFAULT_MAX_IN_FLIGHT`]) are handled at
//! once; the rest wait for a slot. How
//! long one may wait depends on whether the queue drains. If it was empty within the last
//! [`STANDING_AFTER`], the wait is bounded by [`BURST_WAIT`]: a burst that will pass. If not,
//! the queue is *standing* (requests arrive faster than the system finishes them, and waiting
//! longer only turns the backlog into latency for everyone), and the wait drops to
//! [`STANDING_WAIT`]. A request that gets no slot in time is answered `503 overloaded` with
//! `Retry-After: 1` before any work is done on it, so the requests that are admitted still
//! finish within their deadline.
//!
//! Only the public API is shed: `/health`, `/ready`, `/metrics` and the fault admin routes
//! always pass (the harness samples `/metrics` during a fault run). Without an [`Admission`] in
//! the app's data (every process but a `full` gateway), the middleware passes everything.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::error::ApiError;

/// Public requests the gateway handles at once by default: four times the calls one process
/// may have in flight to one upstream ([`crate::http_client::MAX_CALLS_IN_FLIGHT`]), so the
/// requests stuck on one hung upstream fill its bulkhead, not the gateway, and the others are
/// still admitted. At the microservices' capacity on one core (about 3,000 requests/s here),
/// 256 in flight is about 85 ms of queue.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;
/// The longest wait for a slot while the queue still empties now and then.
pub const BURST_WAIT: Duration = Duration::from_millis(100);
/// The queue counts as standing when it was last empty longer ago than this.
pub const STANDING_AFTER: Duration = Duration::from_millis(100);
/// The longest wait for a slot while the queue stands.
pub const STANDING_WAIT: Duration = Duration::from_millis(5);

/// The gateway's admission state, shared by every request.
#[derive(Debug)]
pub struct Admission {
    slots: Semaphore,
    /// Requests waiting for a slot now.
    waiting: AtomicUsize,
    epoch: Instant,
    /// When the queue was last seen empty, in µs since `epoch`.
    last_empty_us: AtomicU64,
}

impl Admission {
    pub fn new(max_in_flight: usize) -> Self {
        Self {
            slots: Semaphore::new(max_in_flight),
            waiting: AtomicUsize::new(0),
            epoch: Instant::now(),
            last_empty_us: AtomicU64::new(0),
        }
    }

    fn micros_since_epoch(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_micros()).unwrap_or(u64::MAX)
    }

    fn mark_empty(&self, at: Instant) {
        self.last_empty_us.fetch_max(self.micros_since_epoch(at), Ordering::Relaxed);
    }

    /// How long a request arriving at `now` may wait for a slot.
    pub fn max_wait(&self, now: Instant) -> Duration {
        let empty_for = self.micros_since_epoch(now).saturating_sub(self.last_empty_us.load(Ordering::Relaxed));
        if Duration::from_micros(empty_for) > STANDING_AFTER { STANDING_WAIT } else { BURST_WAIT }
    }

    /// A slot for a request arriving now, or `None` if it is to be shed. Waits at most
    /// [`Admission::max_wait`], and never past `deadline_left`.
    pub async fn admit(&self, deadline_left: Option<Duration>) -> Option<SemaphorePermit<'_>> {
        let arrived = Instant::now();
        if self.waiting.load(Ordering::Relaxed) == 0
            && let Ok(permit) = self.slots.try_acquire()
        {
            self.mark_empty(arrived);
            return Some(permit);
        }
        let wait = deadline_left.map_or(self.max_wait(arrived), |left| left.min(self.max_wait(arrived)));
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let permit = tokio::time::timeout(wait, self.slots.acquire()).await;
        // The last waiter to leave empties the queue, whether it got a slot or gave up.
        if self.waiting.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.mark_empty(Instant::now());
        }
        permit.ok().and_then(Result::ok)
    }
}

/// Routes that are never shed: operations and the fault admin, not the shop's API.
fn is_sheddable(path: &str) -> bool {
    path.starts_with("/api/")
}

/// Middleware on every server; sheds only where an [`Admission`] is in the app's data.
pub async fn admit_or_shed(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let admission = req.app_data::<web::Data<Admission>>().filter(|_| is_sheddable(req.path())).cloned();
    let Some(admission) = admission else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
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

    #[tokio::test]
    async fn a_full_gateway_queues_a_burst_briefly_and_sheds_a_standing_queue_fast() {
        let admission = Admission::new(1);
        let held = admission.admit(None).await.expect("a free slot");
        // The queue was just empty: a newcomer may wait the burst allowance, then is shed.
        assert_eq!(admission.max_wait(Instant::now()), BURST_WAIT);
        assert!(admission.admit(None).await.is_none(), "no slot freed within the wait");
        // The queue emptied when that waiter gave up; once it stays non-empty for longer than
        // STANDING_AFTER, newcomers get the short wait.
        let later = Instant::now() + STANDING_AFTER + Duration::from_millis(1);
        assert_eq!(admission.max_wait(later), STANDING_WAIT);
        drop(held);
        assert!(admission.admit(None).await.is_some(), "a freed slot admits again");
    }

    #[tokio::test]
    async fn a_waiter_gets_a_slot_freed_within_its_wait_and_never_waits_past_its_deadline() {
        let admission = std::sync::Arc::new(Admission::new(1));
        let held = admission.admit(None).await.expect("a free slot");
        let releaser = async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            drop(held);
        };
        let (admitted, ()) = tokio::join!(admission.admit(None), releaser);
        assert!(admitted.is_some(), "the slot freed after 10 ms went to the waiter");
        let _held = admitted;
        // No time left on the request: shed at once, whatever the allowance.
        assert!(admission.admit(Some(Duration::ZERO)).await.is_none());
    }

    #[test]
    fn only_the_public_api_is_shed() {
        assert!(is_sheddable("/api/products/3/page"));
        for path in ["/health", "/ready", "/metrics", "/admin/faults"] {
            assert!(!is_sheddable(path), "{path}");
        }
    }
}
