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
//!   compensated (release the reservation, void or refund the charge), so a retried, interrupted
//!   or half-done checkout never double-charges, oversells or loses an order.
//!
//! In both, a retry with the same key and body replays a finished outcome, resumes a pending
//! order, or starts a new payment attempt for a failed (fully compensated) one; the same key with
//! another body is 422.

use actix_web::http::StatusCode;
use async_trait::async_trait;

use super::*;
use crate::catalog::SharedCatalog;
use crate::db::Database;
use crate::inventory::SharedInventory;
use crate::payments::{ChargeRequest, ChargeStatus, LocalPayments, Payments, SharedPayments};
use crate::{catalog, inventory};

fn key_reused() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        "this Idempotency-Key was used with a different request body",
    )
}

fn checkout_failed() -> ApiError {
    ApiError::unavailable("checkout_failed", "the payment could not be completed; nothing was charged")
}

/// Decides what to do with a claimed order: answer a finished one, or carry on.
/// `Ok(None)` means "run the remaining steps".
fn replay_or_resume(claim: &Claim, fingerprint: &str) -> Result<Option<Result<CheckoutAnswer, ApiError>>, ApiError> {
    let Claim::Existing(stored) = claim else { return Ok(None) };
    if stored.fingerprint != fingerprint {
        return Err(key_reused());
    }
    Ok(final_answer(stored).map(|answer| answer.map(|order| CheckoutAnswer { order, replayed: true })))
}

fn charge_request(stored: &StoredOrder, request: &CheckoutRequest) -> ChargeRequest {
    ChargeRequest {
        idempotency_key: stored.payment_key(),
        amount_cents: stored.order.total_cents,
        card_number: request.card_number.clone(),
    }
}

fn confirmed(mut stored: StoredOrder) -> CheckoutAnswer {
    stored.order.status = OrderStatus::Confirmed.as_str().to_string();
    CheckoutAnswer { order: stored.order, replayed: false }
}

/// The monolith's checkout: local transactions on the one database.
#[derive(Clone, Debug)]
pub struct LocalCheckout {
    pub db: Database,
    pub payments: LocalPayments,
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

        // Transaction 1: price, claim the key, reserve stock. All or nothing.
        let mut tx = self.db.begin_write().await?;
        let products = catalog::repo::products_by_ids(&mut *tx, &request.product_ids()).await?;
        let (lines, total) = price_lines(&request, &products)?;
        let claim = repo::claim(&mut tx, user_id, &key.0, &fingerprint, &lines, total).await?;
        if let Some(answer) = replay_or_resume(&claim, &fingerprint)? {
            return answer;
        }
        let (Claim::New(mut stored) | Claim::Existing(mut stored)) = claim;
        if stored.status == OrderStatus::Failed {
            repo::restart(&mut tx, &mut stored).await?;
        }
        if let Err(_short_product) =
            inventory::repo::reserve(&mut tx, &stored.reservation_key(), &stored.reservation_lines()).await?
        {
            repo::set_status(&mut tx, stored.order.id, OrderStatus::Rejected).await?;
            tx.commit().await?;
            return Err(order_out_of_stock());
        }
        tx.commit().await?;

        // The charge: the slow call, with no transaction open.
        let charge = self.payments.charge(&charge_request(&stored, &request)).await?;

        // Transaction 2: confirm and make the reservation final, or release and record why.
        let mut tx = self.db.begin_write().await?;
        let outcome = match charge.status {
            ChargeStatus::Approved => {
                inventory::repo::commit(&mut tx, &stored.reservation_key()).await?;
                repo::set_status(&mut tx, stored.order.id, OrderStatus::Confirmed).await?;
                Ok(())
            }
            ChargeStatus::Declined => {
                inventory::repo::release(&mut tx, &stored.reservation_key()).await?;
                repo::set_status(&mut tx, stored.order.id, OrderStatus::Declined).await?;
                Err(payment_declined())
            }
            ChargeStatus::Refunded | ChargeStatus::Voided => {
                inventory::repo::release(&mut tx, &stored.reservation_key()).await?;
                repo::set_status(&mut tx, stored.order.id, OrderStatus::Failed).await?;
                Err(checkout_failed())
            }
        };
        tx.commit().await?;
        outcome.map(|()| confirmed(stored))
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
}

impl SagaCheckout {
    async fn set_status(&self, order_id: i64, status: OrderStatus) -> Result<(), ApiError> {
        let mut conn = self.db.pool.acquire().await?;
        repo::set_status(&mut conn, order_id, status).await?;
        Ok(())
    }

    /// Undoes what the failed attempt may have done. If every compensation succeeds the order is
    /// `failed` (a retry starts afresh); otherwise it stays `pending`, and a retry with the same
    /// key resumes it with the same idempotent steps.
    async fn compensate(&self, stored: &StoredOrder, charge_attempted: bool) {
        let mut undone = true;
        if charge_attempted && let Err(err) = self.payments.refund(&stored.payment_key()).await {
            tracing::warn!(order = stored.order.id, error = %err, "compensation: refund failed");
            undone = false;
        }
        if let Err(err) = self.inventory.release(&stored.reservation_key()).await {
            tracing::warn!(order = stored.order.id, error = %err, "compensation: release failed");
            undone = false;
        }
        if undone && let Err(err) = self.set_status(stored.order.id, OrderStatus::Failed).await {
            tracing::warn!(order = stored.order.id, error = %err, "compensation: could not mark the order failed");
        }
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

        // Step 1: price from the catalog service (nothing to undo if it fails).
        let products = self.catalog.products_by_ids(&request.product_ids()).await?;
        let (lines, total) = price_lines(&request, &products)?;

        // Step 2: claim the key in the orders database.
        let mut tx = self.db.begin_write().await?;
        let claim = repo::claim(&mut tx, user_id, &key.0, &fingerprint, &lines, total).await?;
        if let Some(answer) = replay_or_resume(&claim, &fingerprint)? {
            return answer;
        }
        let (Claim::New(mut stored) | Claim::Existing(mut stored)) = claim;
        if stored.status == OrderStatus::Failed {
            repo::restart(&mut tx, &mut stored).await?;
        }
        tx.commit().await?;

        // Step 3: reserve stock.
        if let Err(err) = self.inventory.reserve(&stored.reservation_key(), &stored.reservation_lines()).await {
            if err.code == "insufficient_stock" {
                self.set_status(stored.order.id, OrderStatus::Rejected).await?;
                return Err(order_out_of_stock());
            }
            // Unknown outcome (e.g. a timeout after inventory reserved): release to be sure.
            self.compensate(&stored, false).await;
            return Err(err);
        }

        // Step 4: charge.
        let charge = match self.payments.charge(&charge_request(&stored, &request)).await {
            Ok(charge) => charge,
            Err(err) => {
                // Unknown outcome: void the key (refunds if it went through) and release.
                self.compensate(&stored, true).await;
                return Err(err);
            }
        };
        match charge.status {
            ChargeStatus::Approved => {}
            ChargeStatus::Declined => {
                self.inventory.release(&stored.reservation_key()).await?;
                self.set_status(stored.order.id, OrderStatus::Declined).await?;
                return Err(payment_declined());
            }
            ChargeStatus::Refunded | ChargeStatus::Voided => {
                self.compensate(&stored, false).await;
                return Err(checkout_failed());
            }
        }

        // Step 5: confirm. The order is the record of truth; once it says confirmed, the
        // reservation's commit is bookkeeping (its stock is already taken), so a failed commit
        // is logged rather than undoing a paid order.
        self.set_status(stored.order.id, OrderStatus::Confirmed).await?;
        if let Err(err) = self.inventory.commit(&stored.reservation_key()).await {
            tracing::warn!(order = stored.order.id, error = %err, "reservation commit failed after confirmation");
        }
        Ok(confirmed(stored))
    }
}
