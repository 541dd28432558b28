//! Payments: a simulated card processor with idempotent charges and refunds.
//!
//! Every charge waits `--payment-latency-ms` (the processor's round trip) before it is decided,
//! and that wait happens outside any database transaction. The card [`DECLINED_CARD`] is always
//! declined; every other well-formed card is approved.
//!
//! Charges are idempotent by key: the same key and amount return the first outcome, a different
//! amount is a conflict. Refunding a key that was never charged leaves a `voided` tombstone, so a
//! charge that arrives late (after the saga gave up and compensated) cannot take money.
//!
//! No public routes. Internal: `POST /internal/charges`, `POST /internal/charges/{key}/refund`.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::db::{Database, now_millis};
use crate::error::ApiError;
use crate::http_client::ServiceClient;
use crate::seam::ModuleError;

/// The test card the simulated processor always declines.
pub const DECLINED_CARD: &str = "4000000000000002";
/// Largest single charge: ten million currency units.
pub const MAX_AMOUNT_CENTS: i64 = 1_000_000_000;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChargeRequest {
    pub idempotency_key: String,
    pub amount_cents: i64,
    pub card_number: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ChargeStatus {
    Approved,
    Declined,
    Refunded,
    Voided,
}

impl ChargeStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Approved => "approved",
            Self::Declined => "declined",
            Self::Refunded => "refunded",
            Self::Voided => "voided",
        }
    }
    fn parse(s: &str) -> Result<Self, ApiError> {
        Ok(match s {
            "approved" => Self::Approved,
            "declined" => Self::Declined,
            "refunded" => Self::Refunded,
            "voided" => Self::Voided,
            other => return Err(ApiError::internal(format!("unknown charge status {other}"))),
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChargeResult {
    pub idempotency_key: String,
    pub amount_cents: i64,
    pub status: ChargeStatus,
}

#[async_trait]
pub trait Payments: Send + Sync {
    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeResult, ModuleError>;
    /// Refunds an approved charge, or voids a key never charged (so a late charge with it takes
    /// nothing). Returns the key's state afterwards: `Refunded`, `Voided` or `Declined`.
    async fn refund(&self, idempotency_key: &str) -> Result<ChargeStatus, ModuleError>;
}

pub type SharedPayments = Arc<dyn Payments>;

/// Checks a card number's shape: 12 to 19 digits.
pub fn validate_card(card_number: &str) -> Result<(), ApiError> {
    let ok = (12..=19).contains(&card_number.len()) && card_number.bytes().all(|b| b.is_ascii_digit());
    if ok { Ok(()) } else { Err(ApiError::validation("card_number must be 12 to 19 digits")) }
}

impl ChargeRequest {
    fn validate(&self) -> Result<(), ModuleError> {
        if self.idempotency_key.is_empty() || self.idempotency_key.len() > 200 {
            return Err(ModuleError::Invalid("idempotency_key must be 1 to 200 characters".into()));
        }
        if !(1..=MAX_AMOUNT_CENTS).contains(&self.amount_cents) {
            return Err(ModuleError::Invalid(format!("amount_cents must be between 1 and {MAX_AMOUNT_CENTS}")));
        }
        validate_card(&self.card_number).map_err(|err| ModuleError::Invalid(err.message))
    }
}

/// The processor: the same code serves the monolith (in-process) and the payments service.
#[derive(Clone, Debug)]
pub struct LocalPayments {
    pub db: Database,
    /// Simulated processor round trip per new charge.
    pub latency: Duration,
}

#[async_trait]
impl Payments for LocalPayments {
    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeResult, ModuleError> {
        request.validate()?;
        if let Some(existing) = repo::find(&self.db.pool, &request.idempotency_key).await? {
            return replay(existing, request);
        }
        // The processor's round trip: no transaction and no connection is held meanwhile.
        // (Skipped when zero: tokio's timer would still round it up to its next millisecond.)
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let decided =
            if request.card_number == DECLINED_CARD { ChargeStatus::Declined } else { ChargeStatus::Approved };
        repo::insert_if_absent(&self.db.pool, request, decided).await?;
        // Whatever is stored now wins: ours, a concurrent duplicate's, or a void written while we waited.
        let stored = repo::find(&self.db.pool, &request.idempotency_key)
            .await?
            .ok_or_else(|| ApiError::internal("charge vanished after insert"))?;
        replay(stored, request)
    }

    async fn refund(&self, idempotency_key: &str) -> Result<ChargeStatus, ModuleError> {
        Ok(self.refund_or_void(idempotency_key).await?.status)
    }
}

impl LocalPayments {
    /// Refunds or voids `idempotency_key` and returns the charge as it is stored afterwards
    /// (the internal route answers with it).
    async fn refund_or_void(&self, idempotency_key: &str) -> Result<ChargeResult, ModuleError> {
        if idempotency_key.is_empty() || idempotency_key.len() > 200 {
            return Err(ModuleError::Invalid("idempotency_key must be 1 to 200 characters".into()));
        }
        let mut tx = self.db.begin_write().await?;
        let stored = repo::refund_or_void(&mut tx, idempotency_key).await?;
        tx.commit().await?;
        Ok(stored)
    }
}

/// Answers a repeated charge with the stored outcome; a different amount under the same key is
/// a client bug.
fn replay(stored: ChargeResult, request: &ChargeRequest) -> Result<ChargeResult, ModuleError> {
    if stored.status != ChargeStatus::Voided && stored.amount_cents != request.amount_cents {
        return Err(ModuleError::Invalid("this idempotency key was used for a different amount".into()));
    }
    Ok(stored)
}

#[derive(Clone, Debug)]
pub struct PaymentsClient(pub ServiceClient);

#[async_trait]
impl Payments for PaymentsClient {
    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeResult, ModuleError> {
        self.0.post_json("/internal/charges", request).await
    }
    async fn refund(&self, idempotency_key: &str) -> Result<ChargeStatus, ModuleError> {
        let path = format!("/internal/charges/{idempotency_key}/refund");
        let refunded: ChargeResult = self.0.post_json(&path, &serde_json::json!({})).await?;
        Ok(refunded.status)
    }
}

pub mod repo {
    use sqlx::AnyConnection;

    use super::*;

    pub async fn find<'e>(
        db: impl sqlx::Executor<'e, Database = sqlx::Any>,
        key: &str,
    ) -> Result<Option<ChargeResult>, ApiError> {
        let row = sqlx::query("SELECT amount_cents, status FROM charges WHERE idempotency_key = $1")
            .bind(key)
            .fetch_optional(db)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let status: String = row.try_get("status")?;
        Ok(Some(ChargeResult {
            idempotency_key: key.to_string(),
            amount_cents: row.try_get("amount_cents")?,
            status: ChargeStatus::parse(&status)?,
        }))
    }

    /// Records a decided charge unless the key exists (a concurrent duplicate, or a void).
    pub async fn insert_if_absent<'e>(
        db: impl sqlx::Executor<'e, Database = sqlx::Any>,
        request: &ChargeRequest,
        status: ChargeStatus,
    ) -> Result<(), sqlx::Error> {
        let now = now_millis();
        let last4 = &request.card_number[request.card_number.len().saturating_sub(4)..];
        sqlx::query(
            "INSERT INTO charges (idempotency_key, amount_cents, card_last4, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(request.idempotency_key.clone())
        .bind(request.amount_cents)
        .bind(last4.to_string())
        .bind(status.as_str())
        .bind(now)
        .execute(db)
        .await?;
        Ok(())
    }

    /// Refunds an approved charge, or voids a key that was never charged, inside the caller's
    /// write transaction; returns the key's status afterwards. Both statements are conditional,
    /// so racing refunds (and a charge racing its void) take effect once.
    pub async fn refund_or_void(conn: &mut AnyConnection, key: &str) -> Result<ChargeResult, ApiError> {
        let now = now_millis();
        sqlx::query(
            "INSERT INTO charges (idempotency_key, amount_cents, card_last4, status, created_at, updated_at) \
             VALUES ($1, 0, '', 'voided', $2, $2) ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(key)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        sqlx::query("UPDATE charges SET status = 'refunded', updated_at = $2 WHERE idempotency_key = $1 AND status = 'approved'")
            .bind(key)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        find(&mut *conn, key).await?.ok_or_else(|| ApiError::internal("charge vanished after void"))
    }
}

pub fn configure_internal(cfg: &mut web::ServiceConfig) {
    cfg.route("/internal/charges", web::post().to(charge))
        .route("/internal/charges/{key}/refund", web::post().to(refund));
}

async fn charge(payments: web::Data<LocalPayments>, body: web::Json<ChargeRequest>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(payments.charge(&body).await.map_err(ModuleError::into_callee_answer)?))
}

async fn refund(payments: web::Data<LocalPayments>, key: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(payments.refund_or_void(&key).await.map_err(ModuleError::into_callee_answer)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_numbers_must_be_12_to_19_digits() {
        assert!(validate_card("4242424242424242").is_ok());
        assert!(validate_card("4242").is_err());
        assert!(validate_card("4242-4242-4242-4242").is_err());
    }

    #[test]
    fn a_replay_with_another_amount_is_a_conflict() {
        let stored = ChargeResult { idempotency_key: "k".into(), amount_cents: 100, status: ChargeStatus::Approved };
        let same =
            ChargeRequest { idempotency_key: "k".into(), amount_cents: 100, card_number: "4242424242424242".into() };
        let other = ChargeRequest { amount_cents: 200, ..same.clone() };
        assert_eq!(replay(stored.clone(), &same).ok(), Some(stored.clone()));
        assert!(replay(stored, &other).is_err());
    }
}
