//! Orders: checkout and order history.
//!
//! Public: `POST /api/orders` (bearer token and `Idempotency-Key` header), `GET /api/orders`,
//! `GET /api/orders/{id}`. Users see only their own confirmed orders; anything else is 404.
//!
//! Checkout runs through the [`Checkout`] trait, whose two implementations are the heart of the
//! comparison (see [`checkout`]): the monolith's local transactions and the microservices' saga.
//! Both share everything else here: validation, pricing, idempotency, the order tables.

pub mod checkout;

use std::future::{Ready, ready};
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::auth::AuthenticatedUser;
use crate::catalog::Product;
use crate::db::{Database, now_millis};
use crate::error::{ApiError, method_not_allowed};
use crate::inventory::ReservationLine;
use crate::pagination::{Page, PageRequest};
use crate::payments::validate_card;

pub use checkout::{LocalCheckout, SagaCheckout};

pub const MAX_LINES: usize = 20;
pub const MAX_QUANTITY: i64 = 10;
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 128;
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
/// Set on a response that repeats a stored checkout outcome.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LineRequest {
    pub product_id: i64,
    pub quantity: i64,
}

/// The body of `POST /api/orders`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CheckoutRequest {
    pub items: Vec<LineRequest>,
    pub card_number: String,
}

impl CheckoutRequest {
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.items.is_empty() || self.items.len() > MAX_LINES {
            return Err(ApiError::validation(format!("an order needs 1 to {MAX_LINES} items")));
        }
        for item in &self.items {
            if item.product_id < 1 {
                return Err(ApiError::validation("product_id must be a positive id"));
            }
            if !(1..=MAX_QUANTITY).contains(&item.quantity) {
                return Err(ApiError::validation(format!("quantity must be between 1 and {MAX_QUANTITY}")));
            }
        }
        let mut ids: Vec<i64> = self.product_ids();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() != self.items.len() {
            return Err(ApiError::validation("each product may appear only once per order"));
        }
        validate_card(&self.card_number)
    }

    pub fn product_ids(&self) -> Vec<i64> {
        self.items.iter().map(|i| i.product_id).collect()
    }

    /// Identifies the request body, so a reused idempotency key with another body is caught.
    pub fn fingerprint(&self) -> String {
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        Sha256::digest(&canonical).iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The `Idempotency-Key` header: required on checkout, 1-128 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(pub String);

impl FromRequest for IdempotencyKey {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(match req.headers().get(IDEMPOTENCY_KEY_HEADER) {
            None => Err(ApiError::bad_request("missing_idempotency_key", "checkout needs an Idempotency-Key header")),
            Some(value) => match value.to_str() {
                Ok(key)
                    if (1..=MAX_IDEMPOTENCY_KEY_CHARS).contains(&key.len())
                        && key.bytes().all(|b| b.is_ascii_graphic()) =>
                {
                    Ok(IdempotencyKey(key.to_string()))
                }
                _ => Err(ApiError::bad_request(
                    "invalid_idempotency_key",
                    format!("Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} visible ASCII characters"),
                )),
            },
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OrderLine {
    pub product_id: i64,
    pub product_name: String,
    pub unit_price_cents: i64,
    pub quantity: i64,
}

impl OrderLine {
    pub fn reservation(&self) -> ReservationLine {
        ReservationLine { product_id: self.product_id, quantity: self.quantity }
    }
}

/// An order as users see it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Order {
    pub id: i64,
    pub status: String,
    pub lines: Vec<OrderLine>,
    pub total_cents: i64,
    pub created_at: i64,
}

/// Where a checkout stands; stored in `orders.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    /// Claimed; steps may be under way (within the runner's lease), or interrupted (once the
    /// lease is over, recovery or a retry with the key compensates it).
    Pending,
    Confirmed,
    /// The payment was declined; the reservation was released.
    Declined,
    /// Not enough stock; nothing was reserved or charged.
    Rejected,
    /// A dependency failed and the steps taken were compensated; a retry starts a new attempt.
    Failed,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Confirmed => "confirmed",
            Self::Declined => "declined",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        Ok(match s {
            "pending" => Self::Pending,
            "confirmed" => Self::Confirmed,
            "declined" => Self::Declined,
            "rejected" => Self::Rejected,
            "failed" => Self::Failed,
            other => return Err(ApiError::internal(format!("unknown order status {other}"))),
        })
    }
}

/// An order row with what checkout needs beyond the public view.
#[derive(Debug, Clone)]
pub struct StoredOrder {
    pub order: Order,
    pub status: OrderStatus,
    pub fingerprint: String,
    pub attempt: i64,
    /// The token of the run that may change this order (see [`repo::take_over`]).
    pub runner: String,
    /// Unix ms when that run's lease ends.
    pub lease_until: i64,
    /// The status is final and the reservation and charge are settled to match it.
    pub finished: bool,
}

impl StoredOrder {
    /// One reservation key per attempt: a compensated attempt's released key (a tombstone in
    /// inventory) never blocks the next attempt, and a late reserve of it takes nothing.
    pub fn reservation_key(&self) -> String {
        attempt_key(self.order.id, self.attempt)
    }
    /// One payment key per attempt: a compensated (voided) attempt never blocks the next one.
    pub fn payment_key(&self) -> String {
        attempt_key(self.order.id, self.attempt)
    }
    pub fn reservation_lines(&self) -> Vec<ReservationLine> {
        self.order.lines.iter().map(OrderLine::reservation).collect()
    }
}

/// The key of attempt `attempt` of order `order_id`, in inventory (reservation) and payments
/// (charge) alike, so a consistency check can trace both back to the order.
pub fn attempt_key(order_id: i64, attempt: i64) -> String {
    format!("order-{order_id}-attempt-{attempt}")
}

/// A fresh token for one run of a checkout (a request, a takeover or a recovery).
pub fn new_runner() -> String {
    format!("{:016x}", rand::random::<u64>())
}

pub fn payment_declined() -> ApiError {
    ApiError::new(StatusCode::PAYMENT_REQUIRED, "payment_declined", "the card was declined")
}

pub fn order_out_of_stock() -> ApiError {
    ApiError::conflict("insufficient_stock", "not enough stock for one or more items")
}

/// Prices the request from catalog data: each line at the catalog's current price.
pub fn price_lines(request: &CheckoutRequest, products: &[Product]) -> Result<(Vec<OrderLine>, i64), ApiError> {
    let mut lines = Vec::with_capacity(request.items.len());
    for item in &request.items {
        let product = products.iter().find(|p| p.id == item.product_id).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_product",
                format!("product {} does not exist", item.product_id),
            )
        })?;
        lines.push(OrderLine {
            product_id: product.id,
            product_name: product.name.clone(),
            unit_price_cents: product.price_cents,
            quantity: item.quantity,
        });
    }
    let total = lines.iter().map(|l| l.unit_price_cents * l.quantity).sum();
    Ok((lines, total))
}

/// The outcome a finished checkout answers with, first time and on every replay.
pub fn final_answer(stored: &StoredOrder) -> Option<Result<Order, ApiError>> {
    match stored.status {
        OrderStatus::Confirmed => Some(Ok(stored.order.clone())),
        OrderStatus::Declined => Some(Err(payment_declined())),
        OrderStatus::Rejected => Some(Err(order_out_of_stock())),
        OrderStatus::Pending | OrderStatus::Failed => None,
    }
}

/// What a checkout answered: the order, and whether it repeats a stored outcome.
#[derive(Debug)]
pub struct CheckoutAnswer {
    pub order: Order,
    pub replayed: bool,
}

/// Places an order. Implementations: [`LocalCheckout`] (monolith), [`SagaCheckout`] (microservices).
#[async_trait]
pub trait Checkout: Send + Sync {
    async fn checkout(
        &self,
        user_id: i64,
        key: &IdempotencyKey,
        request: CheckoutRequest,
    ) -> Result<CheckoutAnswer, ApiError>;

    /// One round of recovery: finishes or compensates every order whose run ended (crashed,
    /// timed out, lost its lease) before it was finished. Safe to run in several processes at
    /// once: each order is taken over by a compare-and-set first.
    async fn recover(&self) -> Result<RecoveryRound, ApiError>;
}

/// What one recovery round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryRound {
    /// Orders settled: an interrupted checkout compensated, or a decided one finished.
    pub settled: usize,
    /// Orders another run took first, or that could not be settled yet (a dependency down).
    pub skipped: usize,
    /// The round found a full batch: there may be more to do at once.
    pub more: bool,
}

/// How checkouts behave when things go wrong; the same in both architectures.
#[derive(Debug, Clone, Copy)]
pub struct CheckoutPolicy {
    /// How long a run holds an order before recovery (or a retry) may take it over.
    pub recovery_deadline: std::time::Duration,
    /// Time a failed checkout's compensation may take (refund and release): what is left of the
    /// lease after the longest request, so a run never acts past its lease.
    pub compensation_budget: std::time::Duration,
    /// Test hook: abandon every checkout at this step, as if the process died there.
    pub crash_at: Option<crate::settings::CrashPoint>,
}

impl CheckoutPolicy {
    pub fn from_settings(settings: &crate::Settings) -> Self {
        Self {
            recovery_deadline: settings.recovery_deadline(),
            compensation_budget: settings.recovery_deadline().saturating_sub(settings.request_deadline()),
            crash_at: settings.checkout.crash_at,
        }
    }

    fn lease_until(&self, now: i64) -> i64 {
        now + i64::try_from(self.recovery_deadline.as_millis()).unwrap_or(i64::MAX / 2)
    }
}

pub mod recovery {
    //! The orders module's recovery loop: at start-up, then every fifth of the recovery
    //! deadline, it finishes or compensates what interrupted checkouts left.
    use super::*;

    /// Runs recovery rounds until the task is dropped (the server stops).
    pub async fn run(checkout: SharedCheckout, deadline: std::time::Duration) {
        let every = (deadline / 5).max(std::time::Duration::from_millis(50));
        loop {
            let round = checkout.recover().await;
            match &round {
                Ok(round) if round.settled + round.skipped > 0 => {
                    tracing::info!(settled = round.settled, skipped = round.skipped, "checkout recovery round");
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "checkout recovery round failed"),
            }
            if let Ok(RecoveryRound { more: true, .. }) = round {
                // A backlog (after a crash under load): the next batch at once.
                tokio::task::yield_now().await;
                continue;
            }
            tokio::time::sleep(every).await;
        }
    }
}

pub type SharedCheckout = Arc<dyn Checkout>;

/// The order tables' SQL. Every write that moves an order on is *fenced*: it names the runner
/// that holds the order, and changes nothing if another run has taken it over since.
pub mod repo {
    use sqlx::AnyConnection;

    use super::*;

    const ORDER_COLUMNS: &str =
        "id, status, request_fingerprint, attempt, total_cents, created_at, runner, lease_until, finished_at";

    fn stored_from_row(row: &AnyRow, lines: Vec<OrderLine>) -> Result<StoredOrder, ApiError> {
        let status: String = row.try_get("status")?;
        let status = OrderStatus::parse(&status)?;
        let finished_at: Option<i64> = row.try_get("finished_at")?;
        Ok(StoredOrder {
            order: Order {
                id: row.try_get("id")?,
                status: status.as_str().to_string(),
                lines,
                total_cents: row.try_get("total_cents")?,
                created_at: row.try_get("created_at")?,
            },
            status,
            fingerprint: row.try_get("request_fingerprint")?,
            attempt: row.try_get("attempt")?,
            runner: row.try_get("runner")?,
            lease_until: row.try_get("lease_until")?,
            finished: finished_at.is_some(),
        })
    }

    async fn lines_of(conn: &mut AnyConnection, order_id: i64) -> Result<Vec<OrderLine>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT product_id, product_name, unit_price_cents, quantity FROM order_lines WHERE order_id = $1 ORDER BY product_id",
        )
        .bind(order_id)
        .fetch_all(&mut *conn)
        .await?;
        rows.iter().map(line_from_row).collect()
    }

    fn line_from_row(row: &AnyRow) -> Result<OrderLine, sqlx::Error> {
        Ok(OrderLine {
            product_id: row.try_get("product_id")?,
            product_name: row.try_get("product_name")?,
            unit_price_cents: row.try_get("unit_price_cents")?,
            quantity: row.try_get("quantity")?,
        })
    }

    /// The order that holds `(user, key)`, if any.
    pub async fn find(conn: &mut AnyConnection, user_id: i64, key: &str) -> Result<Option<StoredOrder>, ApiError> {
        let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE user_id = $1 AND idempotency_key = $2");
        let Some(row) = sqlx::query(&sql).bind(user_id).bind(key).fetch_optional(&mut *conn).await? else {
            return Ok(None);
        };
        let lines = lines_of(conn, row.try_get("id")?).await?;
        Ok(Some(stored_from_row(&row, lines)?))
    }

    /// Inserts a pending order held by `runner` until `lease_until`, with its lines; `None` if
    /// the key is taken (by a concurrent request: on PostgreSQL the insert waits for it).
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_new(
        conn: &mut AnyConnection,
        user_id: i64,
        key: &str,
        fingerprint: &str,
        lines: &[OrderLine],
        total_cents: i64,
        runner: &str,
        lease_until: i64,
    ) -> Result<Option<StoredOrder>, ApiError> {
        let sql = format!(
            "INSERT INTO orders (user_id, idempotency_key, request_fingerprint, status, attempt, total_cents, created_at, attempt_started_at, runner, lease_until) \
             VALUES ($1, $2, $3, 'pending', 1, $4, $5, $5, $6, $7) ON CONFLICT (user_id, idempotency_key) DO NOTHING \
             RETURNING {ORDER_COLUMNS}"
        );
        let inserted = sqlx::query(&sql)
            .bind(user_id)
            .bind(key)
            .bind(fingerprint)
            .bind(total_cents)
            .bind(now_millis())
            .bind(runner)
            .bind(lease_until)
            .fetch_optional(&mut *conn)
            .await?;
        let Some(row) = inserted else { return Ok(None) };
        let order_id: i64 = row.try_get("id")?;
        for line in lines {
            sqlx::query(
                "INSERT INTO order_lines (order_id, product_id, product_name, unit_price_cents, quantity) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(order_id)
            .bind(line.product_id)
            .bind(line.product_name.clone())
            .bind(line.unit_price_cents)
            .bind(line.quantity)
            .execute(&mut *conn)
            .await?;
        }
        let mut sorted = lines.to_vec();
        sorted.sort_by_key(|l| l.product_id);
        Ok(Some(stored_from_row(&row, sorted)?))
    }

    /// Takes the order over from the run that held it, if it is still exactly as `seen`
    /// (same runner, same status): a compare-and-set, so of two runs racing for it, one wins.
    /// On success `seen` carries the new runner and lease.
    pub async fn take_over(
        conn: &mut AnyConnection,
        seen: &mut StoredOrder,
        runner: &str,
        lease_until: i64,
    ) -> Result<bool, sqlx::Error> {
        let taken = sqlx::query(
            "UPDATE orders SET runner = $3, lease_until = $4 WHERE id = $1 AND runner = $2 AND status = $5",
        )
        .bind(seen.order.id)
        .bind(seen.runner.clone())
        .bind(runner)
        .bind(lease_until)
        .bind(seen.status.as_str())
        .execute(&mut *conn)
        .await?;
        if taken.rows_affected() == 1 {
            seen.runner = runner.to_string();
            seen.lease_until = lease_until;
            return Ok(true);
        }
        Ok(false)
    }

    /// Sets the status (and whether the order is finished) if `stored.runner` still holds it and
    /// it is not finished (a finished order never changes again, but for a retry's restart).
    pub async fn set_status(
        conn: &mut AnyConnection,
        stored: &mut StoredOrder,
        status: OrderStatus,
        finished: bool,
    ) -> Result<bool, sqlx::Error> {
        let finished_at = finished.then(now_millis);
        let updated = sqlx::query("UPDATE orders SET status = $3, finished_at = $4 WHERE id = $1 AND runner = $2")
            .bind(stored.order.id)
            .bind(stored.runner.clone())
            .bind(status.as_str())
            .bind(finished_at)
            .execute(&mut *conn)
            .await?;
        if updated.rows_affected() == 1 {
            stored.status = status;
            stored.order.status = status.as_str().to_string();
            stored.finished = finished;
            return Ok(true);
        }
        Ok(false)
    }

    /// Ends this run's lease early: the run stops with the order unfinished (a compensation
    /// failed), so a retry may take it over at once and recovery on its next round.
    pub async fn end_lease(conn: &mut AnyConnection, stored: &mut StoredOrder) -> Result<bool, sqlx::Error> {
        let lease_until = now_millis() - 1;
        let updated = sqlx::query("UPDATE orders SET lease_until = $3 WHERE id = $1 AND runner = $2")
            .bind(stored.order.id)
            .bind(stored.runner.clone())
            .bind(lease_until)
            .execute(&mut *conn)
            .await?;
        if updated.rows_affected() == 1 {
            stored.lease_until = lease_until;
            return Ok(true);
        }
        Ok(false)
    }

    /// Starts the next attempt of an order this run holds: pending again, with new reservation
    /// and payment keys. The previous attempt must be settled (compensated) first.
    pub async fn restart(conn: &mut AnyConnection, stored: &mut StoredOrder) -> Result<bool, sqlx::Error> {
        let updated = sqlx::query(
            "UPDATE orders SET status = 'pending', attempt = attempt + 1, attempt_started_at = $3, finished_at = NULL \
             WHERE id = $1 AND runner = $2",
        )
        .bind(stored.order.id)
        .bind(stored.runner.clone())
        .bind(now_millis())
        .execute(&mut *conn)
        .await?;
        if updated.rows_affected() == 1 {
            stored.attempt += 1;
            stored.status = OrderStatus::Pending;
            stored.order.status = OrderStatus::Pending.as_str().to_string();
            stored.finished = false;
            return Ok(true);
        }
        Ok(false)
    }

    /// Orders not finished whose lease ended before `now`: what recovery has to finish.
    pub async fn unfinished_past_lease(
        conn: &mut AnyConnection,
        now: i64,
        limit: i64,
    ) -> Result<Vec<StoredOrder>, ApiError> {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE finished_at IS NULL AND lease_until < $1 ORDER BY lease_until LIMIT $2"
        );
        let rows = sqlx::query(&sql).bind(now).bind(limit).fetch_all(&mut *conn).await?;
        let mut orders = Vec::with_capacity(rows.len());
        for row in &rows {
            let lines = lines_of(conn, row.try_get("id")?).await?;
            orders.push(stored_from_row(row, lines)?);
        }
        Ok(orders)
    }

    /// A user's confirmed orders, newest first.
    pub async fn list_confirmed(db: &Database, user_id: i64, page: PageRequest) -> Result<Page<Order>, ApiError> {
        let mut conn = db.pool.acquire().await?;
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE user_id = $1 AND status = 'confirmed' ORDER BY id DESC LIMIT $2 OFFSET $3"
        );
        let rows =
            sqlx::query(&sql).bind(user_id).bind(page.per_page).bind(page.offset()).fetch_all(&mut *conn).await?;
        let total: i64 = sqlx::query("SELECT COUNT(*) AS n FROM orders WHERE user_id = $1 AND status = 'confirmed'")
            .bind(user_id)
            .fetch_one(&mut *conn)
            .await?
            .try_get("n")?;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            let lines = lines_of(&mut conn, row.try_get("id")?).await?;
            items.push(stored_from_row(row, lines)?.order);
        }
        Ok(Page { items, page: page.page, per_page: page.per_page, total })
    }

    /// One of the user's confirmed orders; `None` for anyone else's, so ids do not leak.
    pub async fn get_confirmed(db: &Database, user_id: i64, order_id: i64) -> Result<Option<Order>, ApiError> {
        let mut conn = db.pool.acquire().await?;
        let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1 AND user_id = $2 AND status = 'confirmed'");
        let Some(row) = sqlx::query(&sql).bind(order_id).bind(user_id).fetch_optional(&mut *conn).await? else {
            return Ok(None);
        };
        let lines = lines_of(&mut conn, order_id).await?;
        Ok(Some(stored_from_row(&row, lines)?.order))
    }
}

#[derive(Clone)]
pub struct OrdersState {
    pub db: Database,
    pub checkout: SharedCheckout,
}

#[derive(Debug, Deserialize)]
pub struct ListParams {
    pub page: Option<i64>,
    pub per_page: Option<i64>,
}

pub fn configure_public(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/orders")
            .route(web::post().to(create_order))
            .route(web::get().to(list_orders))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/api/orders/{id}").route(web::get().to(get_order)).default_service(web::to(method_not_allowed)),
    );
}

async fn create_order(
    user: AuthenticatedUser,
    key: IdempotencyKey,
    state: web::Data<OrdersState>,
    body: web::Json<CheckoutRequest>,
) -> Result<HttpResponse, ApiError> {
    let answer = state.checkout.checkout(user.0, &key, body.into_inner()).await?;
    let mut response = HttpResponse::Created();
    if answer.replayed {
        response.insert_header((REPLAYED_HEADER, "true"));
    }
    Ok(response.json(answer.order))
}

async fn list_orders(
    user: AuthenticatedUser,
    state: web::Data<OrdersState>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let page = PageRequest::new(params.page, params.per_page)?;
    Ok(HttpResponse::Ok().json(repo::list_confirmed(&state.db, user.0, page).await?))
}

async fn get_order(
    user: AuthenticatedUser,
    state: web::Data<OrdersState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    match repo::get_confirmed(&state.db, user.0, id.into_inner()).await? {
        Some(order) => Ok(HttpResponse::Ok().json(order)),
        None => Err(ApiError::not_found("no such order")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(items: &[(i64, i64)]) -> CheckoutRequest {
        CheckoutRequest {
            items: items.iter().map(|&(product_id, quantity)| LineRequest { product_id, quantity }).collect(),
            card_number: "4242424242424242".into(),
        }
    }

    #[test]
    fn checkout_requests_are_validated() {
        assert!(request(&[(1, 1)]).validate().is_ok());
        assert!(request(&[]).validate().is_err());
        assert!(request(&[(1, 0)]).validate().is_err());
        assert!(request(&[(1, MAX_QUANTITY + 1)]).validate().is_err());
        assert!(request(&[(0, 1)]).validate().is_err());
        assert!(request(&[(1, 1), (1, 2)]).validate().is_err());
        let too_many: Vec<(i64, i64)> = (1..=(MAX_LINES as i64 + 1)).map(|id| (id, 1)).collect();
        assert!(request(&too_many).validate().is_err());
    }

    #[test]
    fn fingerprints_tell_bodies_apart() {
        assert_eq!(request(&[(1, 1)]).fingerprint(), request(&[(1, 1)]).fingerprint());
        assert_ne!(request(&[(1, 1)]).fingerprint(), request(&[(1, 2)]).fingerprint());
    }

    #[test]
    fn lines_are_priced_from_the_catalog_and_unknown_products_refused() {
        let products =
            vec![Product { id: 1, category_id: 1, name: "Lamp".into(), description: String::new(), price_cents: 250 }];
        let (lines, total) = price_lines(&request(&[(1, 3)]), &products).expect("known product");
        assert_eq!(lines[0].unit_price_cents, 250);
        assert_eq!(total, 750);
        let err = price_lines(&request(&[(2, 1)]), &products).expect_err("unknown product");
        assert_eq!(err.code, "unknown_product");
    }
}
