//! Deadlines that nest: a public request gets a time budget when it arrives, and everything it
//! causes, in this process and in every service it calls, works within what is left of it.
//!
//! The entry point (monolith or gateway) starts the clock: `--request-deadline-ms` after the
//! request arrived. [`set_request_deadline`] (middleware on every server) keeps that instant in
//! a task-local for the request's handler, so deep code needs no extra parameter to ask
//! [`remaining`]. A call to another service ([`crate::http_client`]) takes at most the time
//! left, and tells the callee when that ends, as an absolute time (Unix ms) in the header
//! [`DEADLINE_HEADER`], [`HOP_MARGIN`] early so the callee answers before its caller gives up.
//! Absolute, so that time the request spends queued before the callee reads it counts too
//! (every process of a deployment shares one clock here; across hosts, NTP skew adds to the
//! margin). The callee never takes more than its own `--request-deadline-ms`.
//!
//! What a deadline buys: a checkout past it starts no new step and compensates, so a client
//! that got a 504 never finds its order confirmed later.

use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

/// When the caller stops waiting for this request, as Unix milliseconds.
pub const DEADLINE_HEADER: &str = "splitbench-deadline";
/// Time kept back on each hop for the answer to travel back to the caller.
pub const HOP_MARGIN: Duration = Duration::from_millis(50);
/// A checkout confirms only with at least this much time left, so that its confirmation (one
/// database write) and the answer are done before anyone upstream gives up on the request.
pub const CONFIRM_MARGIN: Duration = Duration::from_millis(50);

tokio::task_local! {
    static REQUEST_DEADLINE: Instant;
}

/// This process's `--request-deadline-ms`, shared with the middleware as app data.
#[derive(Debug, Clone, Copy)]
pub struct RequestBudget(pub Duration);

/// The deadline of the request being handled, if any.
pub fn current() -> Option<Instant> {
    REQUEST_DEADLINE.try_with(|deadline| *deadline).ok()
}

/// Time left before the current request's deadline (zero once it passed); `None` outside a
/// request (start-up, background recovery).
pub fn remaining() -> Option<Duration> {
    current().map(|deadline| deadline.saturating_duration_since(Instant::now()))
}

/// True once the current request's deadline has passed.
pub fn expired() -> bool {
    remaining().is_some_and(|left| left.is_zero())
}

/// True if less than `margin` is left before the current request's deadline.
pub fn within_margin(margin: Duration) -> bool {
    remaining().is_some_and(|left| left < margin)
}

/// The header value for a callee that must be done within `budget` from now.
pub fn header_for(budget: Duration) -> String {
    let budget_ms = i64::try_from(budget.as_millis()).unwrap_or(i64::MAX / 2);
    (crate::db::now_millis() + budget_ms).to_string()
}

/// Runs `work` with `deadline` as its request deadline (tests and background tasks).
pub async fn within<F: Future>(deadline: Instant, work: F) -> F::Output {
    REQUEST_DEADLINE.scope(deadline, work).await
}

/// The budget a request gets here: until the caller's deadline (Unix ms, `now_ms` being the
/// time now) if it sent one, never more than this process's own budget.
pub fn budget_of(header: Option<&str>, own: Duration, now_ms: i64) -> Duration {
    match header.and_then(|value| value.trim().parse::<i64>().ok()) {
        Some(deadline_ms) => Duration::from_millis(u64::try_from(deadline_ms - now_ms).unwrap_or(0)).min(own),
        None => own,
    }
}

/// Middleware: starts the request's clock and keeps its deadline for the handler.
pub async fn set_request_deadline(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let own = req.app_data::<web::Data<RequestBudget>>().map_or(Duration::from_secs(3600), |budget| budget.0);
    let header = req.headers().get(DEADLINE_HEADER).and_then(|value| value.to_str().ok());
    let deadline = Instant::now() + budget_of(header, own, crate::db::now_millis());
    REQUEST_DEADLINE.scope(deadline, next.call(req)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_callers_deadline_never_extends_our_own() {
        let own = Duration::from_millis(3000);
        let now = 1_000_000;
        assert_eq!(budget_of(None, own, now), own);
        assert_eq!(budget_of(Some("1000250"), own, now), Duration::from_millis(250));
        assert_eq!(budget_of(Some("9999999"), own, now), own);
        assert_eq!(budget_of(Some("999000"), own, now), Duration::ZERO, "a deadline already passed");
        assert_eq!(budget_of(Some("garbage"), own, now), own);
    }

    #[tokio::test]
    async fn the_deadline_is_visible_inside_its_scope_only() {
        assert_eq!(current(), None);
        assert!(!expired());
        let past = Instant::now();
        within(past, async {
            assert_eq!(current(), Some(past));
            assert!(expired());
            assert_eq!(remaining(), Some(Duration::ZERO));
        })
        .await;
        let later = Instant::now() + Duration::from_secs(60);
        within(later, async { assert!(!expired()) }).await;
    }
}
