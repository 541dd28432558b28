//! The two ways to place an order: the architectural difference the benchmark measures.
//!
//! Both follow one state machine over the order row (see [`OrderStatus`]):
//! claim the idempotency key (pending) → reserve stock → charge → confirm, or compensate.
//!
//! - [`LocalCheckout`] (monolith): every table is in one database. Claim and reserve commit in
//!   one local transaction; the charge (with the processor's simulated latency) runs with no
//!   transaction open; confirm-and-commit (or release-and-decline) is a second transaction.
//! - [`SagaCheckout`] (microservices): the orders service owns only the order tables; catalog,
//!   inventory and payments are HTTP calls. Each step is idempotent by key and each failure is
//!   compensated (release the reservation, void or refund the charge).
//!
//! What keeps the books straight in both, whatever runs concurrently, retries or crashes:
//! - **One run per order at a time.** The run that claims an order holds it (a random `runner`
//!   token) until its lease ends (`--recovery-deadline-ms`). Every write to the order names that
//!   token (fencing), so a run that lost the order changes nothing. A request with a key whose
//!   checkout is in progress gets 409 `request_in_progress` with `Retry-After`.
//! - **Replays first.** A key whose checkout was decided answers its stored outcome before any
//!   other module is asked (no catalog, no inventory, no payments).
//! - **Takeover settles first.** A retry or the recovery loop may take over an order whose lease
//!   ended unfinished; it first settles the old attempt (void/refund its charge, release its
//!   reservation: both leave tombstones, so a late step of the old run takes nothing), then, for
//!   a retry, starts a new attempt with new keys.
//! - **Deadlines.** Past the request's deadline a checkout starts no new step and compensates,
//!   so a client that got a timeout never finds its order confirmed later.

use actix_web::http::StatusCode;
use async_trait::async_trait;
use sqlx::AnyConnection;

use super::*;
use crate::catalog::SharedCatalog;
use crate::db::Database;
use crate::inventory::{CommitOutcome, ReleaseOutcome, ReserveOutcome, SharedInventory};
use crate::payments::{ChargeRequest, ChargeStatus, LocalPayments, Payments, SharedPayments};
use crate::seam::ModuleError;
use crate::settings::CrashPoint;
use crate::{catalog, deadline, inventory, payments};

/// Orders one recovery round looks at, at most.
const RECOVERY_BATCH: i64 = 100;

fn key_reused() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        "this Idempotency-Key was used with a different request body",
    )
}

fn request_in_progress(lease_until: i64) -> ApiError {
    let secs = u64::try_from((lease_until - now_millis()).max(0)).unwrap_or(0).div_ceil(1000).max(1);
    ApiError::conflict(
        "request_in_progress",
        "a checkout with this Idempotency-Key is in progress; retry after the time in Retry-After, with the same key and body",
    )
    .with_retry_after(secs)
}

/// This run lost the order to another (its lease ended): it stops without touching anything,
/// since the run that took over settles what this one did.
fn interrupted() -> ApiError {
    ApiError::unavailable(
        "checkout_interrupted",
        "the checkout took too long and was taken over; retry with the same key and body",
    )
}

fn deadline_exceeded() -> ApiError {
    ApiError::new(
        StatusCode::GATEWAY_TIMEOUT,
        "deadline_exceeded",
        "the request's deadline passed before the checkout finished; nothing was charged",
    )
}

impl CheckoutPolicy {
    /// The `--crash-at` test hook: abandons the checkout here, as a process dying here would.
    fn crash_if(&self, point: CrashPoint) -> Result<(), ApiError> {
        if self.crash_at != Some(point) {
            return Ok(());
        }
        Err(ApiError::unavailable(
            "simulated_crash",
            format!("checkout abandoned {} (--crash-at test hook)", point.name()),
        ))
    }
}

/// What to do with an order found under the request's key.
enum Found {
    /// A decided checkout: answer its stored outcome.
    Replay(Result<CheckoutAnswer, ApiError>),
    /// Another run holds it and its lease is on.
    InProgress(ApiError),
    /// Nobody holds it (failed and finished, or a run that ended unfinished): take it over.
    TakeOver,
}

fn judge(stored: &StoredOrder, fingerprint: &str, now: i64) -> Result<Found, ApiError> {
    if stored.fingerprint != fingerprint {
        return Err(key_reused());
    }
    if let Some(answer) = final_answer(stored) {
        return Ok(Found::Replay(answer.map(|order| CheckoutAnswer { order, replayed: true })));
    }
    if !stored.finished && stored.lease_until > now {
        return Ok(Found::InProgress(request_in_progress(stored.lease_until)));
    }
    Ok(Found::TakeOver)
}

/// The run stops with the order unfinished (a compensation failed): it ends its lease, so a
/// retry may take the order over at once and recovery on its next round.
async fn leave_unfinished(db: &Database, stored: &mut StoredOrder, cause: &ApiError) {
    tracing::warn!(order = stored.order.id, error = %cause, "checkout left unfinished; recovery will settle it");
    let ended = async {
        let mut conn = db.pool.acquire().await?;
        Ok::<_, ApiError>(repo::end_lease(&mut conn, stored).await?)
    };
    if let Err(err) = ended.await {
        tracing::warn!(order = stored.order.id, error = %err, "could not end the lease; recovery waits for it");
    }
}

/// One recovery round over the orders in `db`: every unfinished order whose lease ended, each
/// handed to `settle_one`, which takes it over and settles it (`Some(status)` it settled to),
/// or gives way (`None`: another run took it first, or a dependency is still down).
async fn recovery_round<F, Fut>(db: &Database, mut settle_one: F) -> Result<RecoveryRound, ApiError>
where
    F: FnMut(StoredOrder) -> Fut,
    Fut: Future<Output = Result<Option<OrderStatus>, ApiError>>,
{
    let due = {
        let mut conn = db.pool.acquire().await?;
        repo::unfinished_past_lease(&mut conn, now_millis(), RECOVERY_BATCH).await?
    };
    let mut round = RecoveryRound { more: due.len() as i64 == RECOVERY_BATCH, ..RecoveryRound::default() };
    for order in due {
        let id = order.order.id;
        match settle_one(order).await {
            Ok(Some(status)) => {
                crate::telemetry::count_recovery(status);
                round.settled += 1;
            }
            Ok(None) => round.skipped += 1,
            Err(err) => {
                tracing::warn!(order = id, error = %err, "recovery could not settle the order yet");
                round.skipped += 1;
            }
        }
    }
    Ok(round)
}

/// The outcome of finding or claiming the request's order.
enum Claimed {
    /// This run holds the order (new, or taken over and restarted) and carries on.
    Held(StoredOrder),
    /// The request is answered already: a replay, a busy key, or a lost race.
    Answered(Result<CheckoutAnswer, ApiError>),
}

fn charge_request(stored: &StoredOrder, request: &CheckoutRequest) -> ChargeRequest {
    ChargeRequest {
        idempotency_key: stored.payment_key(),
        amount_cents: stored.order.total_cents,
        card_number: request.card_number.clone(),
    }
}

fn confirmed(stored: StoredOrder) -> CheckoutAnswer {
    CheckoutAnswer { order: stored.order, replayed: false }
}

/// The status an order settles to, from the status it was left in.
fn settled_status(status: OrderStatus) -> OrderStatus {
    match status {
        // An interrupted checkout is compensated: it never told anyone it succeeded.
        OrderStatus::Pending | OrderStatus::Failed => OrderStatus::Failed,
        decided => decided,
    }
}

/// The monolith's checkout: local transactions on the one database.
#[derive(Clone, Debug)]
pub struct LocalCheckout {
    pub db: Database,
    pub payments: LocalPayments,
    pub policy: CheckoutPolicy,
}

impl LocalCheckout {
    /// Settles `stored` (held by this run) inside `conn`'s transaction, all or nothing: refunds
    /// or voids its charge and releases its reservation if it did not succeed, commits the
    /// reservation if it did, and marks it finished. False if the run lost the order.
    async fn settle(conn: &mut AnyConnection, stored: &mut StoredOrder) -> Result<bool, ApiError> {
        let status = settled_status(stored.status);
        // The fenced order write first: a run that lost the order touches nothing else, and the
        // order row is locked before the reservation row, as a takeover locks them.
        if !repo::set_status(conn, stored, status, true).await? {
            return Ok(false);
        }
        if status == OrderStatus::Confirmed {
            if inventory::repo::commit(conn, &stored.reservation_key()).await? == CommitOutcome::NotHeld {
                return Err(ApiError::internal(format!("confirmed order {} has no held reservation", stored.order.id)));
            }
        } else {
            if status == OrderStatus::Failed {
                payments::repo::refund_or_void(conn, &stored.payment_key()).await?;
            }
            if inventory::repo::release(conn, &stored.reservation_key()).await? == ReleaseOutcome::Committed {
                return Err(ApiError::internal(format!(
                    "{status:?} order {} has a committed reservation",
                    stored.order.id
                )));
            }
        }
        Ok(true)
    }

    /// Transaction 1: find or claim the order, settle a previous attempt if taking over, and
    /// reserve stock. Returns the order held by this run, or the answer to give at once.
    async fn claim_and_reserve(
        &self,
        user_id: i64,
        key: &IdempotencyKey,
        request: &CheckoutRequest,
        fingerprint: &str,
    ) -> Result<Claimed, ApiError> {
        let runner = new_runner();
        // Twice at most: a concurrent request may insert the key between our look and our insert.
        for _ in 0..2 {
            let mut tx = self.db.begin_write().await?;
            let now = now_millis();
            let lease_until = self.policy.lease_until(now);
            let mut stored = match repo::find(&mut tx, user_id, &key.0).await? {
                Some(mut found) => match judge(&found, fingerprint, now)? {
                    Found::Replay(answer) => return Ok(Claimed::Answered(answer)),
                    Found::InProgress(busy) => return Ok(Claimed::Answered(Err(busy))),
                    Found::TakeOver => {
                        // One transaction: take over, settle the old attempt, restart, reserve.
                        let restarted = repo::take_over(&mut tx, &mut found, &runner, lease_until).await?
                            && (found.finished || Self::settle(&mut tx, &mut found).await?)
                            && repo::restart(&mut tx, &mut found).await?;
                        if !restarted {
                            return Ok(Claimed::Answered(Err(request_in_progress(lease_until))));
                        }
                        found
                    }
                },
                None => {
                    let products = catalog::repo::products_by_ids(&mut *tx, &request.product_ids()).await?;
                    let (lines, total) = price_lines(request, &products)?;
                    let inserted =
                        repo::insert_new(&mut tx, user_id, &key.0, fingerprint, &lines, total, &runner, lease_until)
                            .await?;
                    match inserted {
                        Some(order) => order,
                        None => continue,
                    }
                }
            };
            match inventory::repo::reserve(&mut tx, &stored.reservation_key(), &stored.reservation_lines()).await? {
                ReserveOutcome::Held => {}
                ReserveOutcome::Short { .. } => {
                    repo::set_status(&mut tx, &mut stored, OrderStatus::Rejected, true).await?;
                    tx.commit().await?;
                    return Ok(Claimed::Answered(Err(order_out_of_stock())));
                }
                ReserveOutcome::Released => {
                    return Err(ApiError::internal("a new attempt's reservation key was already released"));
                }
            }
            tx.commit().await?;
            return Ok(Claimed::Held(stored));
        }
        Err(ApiError::internal("the idempotency key changed hands twice during one checkout"))
    }

    /// Compensates this run's attempt in one transaction and answers `err` (or, if the
    /// request's deadline is what ran out, `deadline_exceeded`, as the saga does).
    async fn fail(&self, stored: &mut StoredOrder, err: ApiError) -> ApiError {
        let err = if deadline::within_margin(deadline::CONFIRM_MARGIN) { deadline_exceeded() } else { err };
        let compensated: Result<bool, ApiError> = async {
            let mut tx = self.db.begin_write().await?;
            stored.status = OrderStatus::Failed;
            let settled = Self::settle(&mut tx, stored).await?;
            if settled {
                tx.commit().await?;
            }
            Ok(settled)
        }
        .await;
        match compensated {
            Ok(true) => err,
            Ok(false) => interrupted(),
            Err(cause) => {
                leave_unfinished(&self.db, stored, &cause).await;
                err
            }
        }
    }
}

#[async_trait]
impl Checkout for LocalCheckout {
    async fn checkout(
        &self,
        user_id: i64,
        key: &IdempotencyKey,
        request: CheckoutRequest,
    ) -> Result<CheckoutAnswer, ApiError> {
        request.validate()?;
        let fingerprint = request.fingerprint();
        if deadline::expired() {
            return Err(deadline_exceeded());
        }
        // Transaction 1: find (a replay ends here) or claim the order, and reserve stock.
        let mut stored = match self.claim_and_reserve(user_id, key, &request, &fingerprint).await? {
            Claimed::Held(stored) => stored,
            Claimed::Answered(answer) => return answer,
        };
        self.policy.crash_if(CrashPoint::AfterClaim)?;
        self.policy.crash_if(CrashPoint::AfterReserve)?;
        if deadline::expired() {
            return Err(self.fail(&mut stored, deadline_exceeded()).await);
        }

        // The charge: the slow call, with no transaction open, within the request's deadline
        // (as the saga's call to payments is).
        let charge_request = charge_request(&stored, &request);
        let charging = self.payments.charge(&charge_request);
        let charged = match deadline::remaining() {
            Some(left) => {
                tokio::time::timeout(left, charging).await.unwrap_or(Err(ModuleError::Timeout { module: "payments" }))
            }
            None => charging.await,
        };
        let charge = match charged {
            Ok(charge) => charge,
            Err(err) => return Err(self.fail(&mut stored, err.into()).await),
        };
        self.policy.crash_if(CrashPoint::AfterCharge)?;
        if deadline::within_margin(deadline::CONFIRM_MARGIN) {
            return Err(self.fail(&mut stored, deadline_exceeded()).await);
        }

        // Transaction 2: the decided status, the reservation settled to match, finished.
        let (status, answer) = match charge.status {
            ChargeStatus::Approved => (OrderStatus::Confirmed, Ok(())),
            ChargeStatus::Declined => (OrderStatus::Declined, Err(payment_declined())),
            // Voided under us: another run took the order over and compensated this attempt.
            ChargeStatus::Refunded | ChargeStatus::Voided => return Err(interrupted()),
        };
        let mut tx = self.db.begin_write().await?;
        stored.status = status;
        if !Self::settle(&mut tx, &mut stored).await? {
            return Err(interrupted());
        }
        tx.commit().await?;
        self.policy.crash_if(CrashPoint::AfterConfirm)?;
        answer.map(|()| confirmed(stored))
    }

    async fn recover(&self) -> Result<RecoveryRound, ApiError> {
        recovery_round(&self.db, |order| self.recover_one(order)).await
    }
}

impl LocalCheckout {
    /// Takes `order` over and settles it, in one transaction.
    async fn recover_one(&self, mut order: StoredOrder) -> Result<Option<OrderStatus>, ApiError> {
        let mut tx = self.db.begin_write().await?;
        let lease_until = self.policy.lease_until(now_millis());
        if !repo::take_over(&mut tx, &mut order, &new_runner(), lease_until).await?
            || !Self::settle(&mut tx, &mut order).await?
        {
            return Ok(None);
        }
        tx.commit().await?;
        Ok(Some(order.status))
    }
}

/// The microservices' checkout: a saga over HTTP from the orders service.
#[derive(Clone)]
pub struct SagaCheckout {
    /// The orders service's own database (order tables only).
    pub db: Database,
    pub catalog: SharedCatalog,
    pub inventory: SharedInventory,
    pub payments: SharedPayments,
    pub policy: CheckoutPolicy,
}

impl SagaCheckout {
    async fn set_status(
        &self,
        stored: &mut StoredOrder,
        status: OrderStatus,
        finished: bool,
    ) -> Result<bool, ApiError> {
        let mut conn = self.db.pool.acquire().await?;
        Ok(repo::set_status(&mut conn, stored, status, finished).await?)
    }

    /// Brings the other modules in line with the order's status (commit a confirmed order's
    /// reservation; refund or void a failed attempt's charge and release its reservation;
    /// release a declined one's), then marks the order finished. Every call is idempotent, so
    /// an error leaves the order unfinished for the next try; the refund and the release are
    /// both tried even if the other fails (stock comes back while payments is down). False if
    /// this run lost the order.
    async fn settle(&self, stored: &mut StoredOrder) -> Result<bool, ApiError> {
        let status = settled_status(stored.status);
        if status == OrderStatus::Confirmed {
            if self.inventory.commit(&stored.reservation_key()).await? == CommitOutcome::NotHeld {
                return Err(ApiError::internal(format!("confirmed order {} has no held reservation", stored.order.id)));
            }
        } else {
            let refunded = match status {
                OrderStatus::Failed => self.payments.refund(&stored.payment_key()).await.map(|_| ()),
                _ => Ok(()),
            };
            let released = self.inventory.release(&stored.reservation_key()).await?;
            if released == ReleaseOutcome::Committed {
                return Err(ApiError::internal(format!(
                    "{status:?} order {} has a committed reservation",
                    stored.order.id
                )));
            }
            refunded?;
        }
        self.set_status(stored, status, true).await
    }

    /// Marks this run's attempt failed and compensates it; answers `err` (or `interrupted`).
    ///
    /// The compensation runs in a task of its own, on its own budget (the time between the
    /// request's deadline and the lease's end), so neither the request's deadline nor a client
    /// that hangs up can cut it short. The answer waits for it while the request has time left:
    /// then the client's error means "nothing is held or charged" wherever that could be done
    /// at once (what could not, e.g. a refund while payments is down, recovery or a retry
    /// finishes).
    async fn fail(&self, stored: &mut StoredOrder, err: ApiError) -> ApiError {
        let err = if deadline::within_margin(deadline::CONFIRM_MARGIN) { deadline_exceeded() } else { err };
        match self.set_status(stored, OrderStatus::Failed, false).await {
            Ok(true) => {}
            Ok(false) => return interrupted(),
            Err(cause) => {
                tracing::warn!(order = stored.order.id, error = %cause, "could not mark the order failed");
                return err;
            }
        }
        let saga = self.clone();
        let mut order = stored.clone();
        let compensation = tokio::spawn(async move {
            let budget = std::time::Instant::now() + saga.policy.compensation_budget;
            if let Err(cause) = deadline::within(budget, saga.settle(&mut order)).await {
                leave_unfinished(&saga.db, &mut order, &cause).await;
            }
        });
        let answer_by = deadline::remaining().unwrap_or(self.policy.compensation_budget);
        let answer_by = answer_by.saturating_sub(deadline::HOP_MARGIN);
        let _ = tokio::time::timeout(answer_by, compensation).await;
        err
    }

    /// Finds or claims the order held by this run; the answer at once for a replay or a busy key.
    async fn claim(
        &self,
        user_id: i64,
        key: &IdempotencyKey,
        request: &CheckoutRequest,
        fingerprint: &str,
    ) -> Result<Claimed, ApiError> {
        let runner = new_runner();
        for _ in 0..2 {
            let found = {
                let mut conn = self.db.pool.acquire().await?;
                repo::find(&mut conn, user_id, &key.0).await?
            };
            let now = now_millis();
            let lease_until = self.policy.lease_until(now);
            match found {
                Some(mut found) => match judge(&found, fingerprint, now)? {
                    Found::Replay(answer) => return Ok(Claimed::Answered(answer)),
                    Found::InProgress(busy) => return Ok(Claimed::Answered(Err(busy))),
                    Found::TakeOver => {
                        let mut conn = self.db.pool.acquire().await?;
                        if !repo::take_over(&mut conn, &mut found, &runner, lease_until).await? {
                            return Ok(Claimed::Answered(Err(request_in_progress(lease_until))));
                        }
                        drop(conn);
                        // The old attempt is settled before a new one starts (its keys tombstoned).
                        if !found.finished {
                            match self.settle(&mut found).await {
                                Ok(true) => {}
                                Ok(false) => return Ok(Claimed::Answered(Err(interrupted()))),
                                Err(cause) => {
                                    leave_unfinished(&self.db, &mut found, &cause).await;
                                    return Err(cause);
                                }
                            }
                        }
                        let mut conn = self.db.pool.acquire().await?;
                        if !repo::restart(&mut conn, &mut found).await? {
                            return Ok(Claimed::Answered(Err(interrupted())));
                        }
                        return Ok(Claimed::Held(found));
                    }
                },
                None => {
                    // Only a new order needs the catalog: replays above never ask it.
                    let products = self.catalog.products_by_ids(&request.product_ids()).await?;
                    let (lines, total) = price_lines(request, &products)?;
                    let mut tx = self.db.begin_write().await?;
                    let inserted =
                        repo::insert_new(&mut tx, user_id, &key.0, fingerprint, &lines, total, &runner, lease_until)
                            .await?;
                    tx.commit().await?;
                    if let Some(order) = inserted {
                        return Ok(Claimed::Held(order));
                    }
                }
            }
        }
        Err(ApiError::internal("the idempotency key changed hands twice during one checkout"))
    }
}

#[async_trait]
impl Checkout for SagaCheckout {
    async fn checkout(
        &self,
        user_id: i64,
        key: &IdempotencyKey,
        request: CheckoutRequest,
    ) -> Result<CheckoutAnswer, ApiError> {
        request.validate()?;
        let fingerprint = request.fingerprint();
        if deadline::expired() {
            return Err(deadline_exceeded());
        }

        // Step 1: find the key's order (a replay ends here) or price and claim a new one.
        let mut stored = match self.claim(user_id, key, &request, &fingerprint).await? {
            Claimed::Held(stored) => stored,
            Claimed::Answered(answer) => return answer,
        };
        self.policy.crash_if(CrashPoint::AfterClaim)?;

        // Step 2: reserve stock.
        if deadline::expired() {
            return Err(self.fail(&mut stored, deadline_exceeded()).await);
        }
        match self.inventory.reserve(&stored.reservation_key(), &stored.reservation_lines()).await {
            Ok(ReserveOutcome::Held) => {}
            Ok(ReserveOutcome::Short { .. }) => {
                // Nothing was taken (the key is spent in inventory), so nothing to settle.
                if !self.set_status(&mut stored, OrderStatus::Rejected, true).await? {
                    return Err(interrupted());
                }
                return Err(order_out_of_stock());
            }
            // Released under us: another run took the order over and compensated this attempt.
            Ok(ReserveOutcome::Released) => return Err(interrupted()),
            // Unknown outcome (e.g. a timeout after inventory reserved): compensation releases.
            Err(err) => return Err(self.fail(&mut stored, err.into()).await),
        }
        self.policy.crash_if(CrashPoint::AfterReserve)?;

        // Step 3: charge.
        if deadline::expired() {
            return Err(self.fail(&mut stored, deadline_exceeded()).await);
        }
        let charge = match self.payments.charge(&charge_request(&stored, &request)).await {
            Ok(charge) => charge,
            // Unknown outcome: compensation voids the key (or refunds it if it went through).
            Err(err) => return Err(self.fail(&mut stored, err.into()).await),
        };
        self.policy.crash_if(CrashPoint::AfterCharge)?;
        match charge.status {
            ChargeStatus::Approved => {}
            ChargeStatus::Declined => {
                if !self.set_status(&mut stored, OrderStatus::Declined, false).await? {
                    return Err(interrupted());
                }
                if let Err(cause) = self.settle(&mut stored).await {
                    leave_unfinished(&self.db, &mut stored, &cause).await;
                }
                return Err(payment_declined());
            }
            ChargeStatus::Refunded | ChargeStatus::Voided => return Err(interrupted()),
        }

        // Step 4: confirm, unless the deadline is (nearly) over: then the charge is refunded
        // instead, so a caller that gave up never finds the order confirmed later.
        if deadline::within_margin(deadline::CONFIRM_MARGIN) {
            return Err(self.fail(&mut stored, deadline_exceeded()).await);
        }
        if !self.set_status(&mut stored, OrderStatus::Confirmed, false).await? {
            return Err(interrupted());
        }
        self.policy.crash_if(CrashPoint::AfterConfirm)?;

        // Step 5: the order is confirmed and paid; committing the reservation is bookkeeping
        // (its stock is taken already). If it fails, recovery commits it later.
        if let Err(cause) = self.settle(&mut stored).await {
            leave_unfinished(&self.db, &mut stored, &cause).await;
        }
        Ok(confirmed(stored))
    }

    async fn recover(&self) -> Result<RecoveryRound, ApiError> {
        recovery_round(&self.db, |order| self.recover_one(order)).await
    }
}

impl SagaCheckout {
    /// Takes `order` over, then settles it call by call (each idempotent).
    async fn recover_one(&self, mut order: StoredOrder) -> Result<Option<OrderStatus>, ApiError> {
        let taken = {
            let mut conn = self.db.pool.acquire().await?;
            let lease_until = self.policy.lease_until(now_millis());
            repo::take_over(&mut conn, &mut order, &new_runner(), lease_until).await?
        };
        Ok((taken && self.settle(&mut order).await?).then_some(order.status))
    }
}
