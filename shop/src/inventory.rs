//! Inventory: stock per product, and reservations that never oversell.
//!
//! A reservation takes stock at once (a conditional `UPDATE ... WHERE available >= qty`, so two
//! checkouts can never both take the last unit); `release` gives it back and `commit` makes it
//! final. All three are idempotent by reservation key, so a retried saga step is harmless.
//!
//! No public routes. Internal: `GET /internal/stock/{id}`, `POST /internal/reservations`,
//! `POST /internal/reservations/{key}/commit`, `POST /internal/reservations/{key}/release`.

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use async_trait::async_trait;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::db::{Database, multi_row_insert, now_millis};
use crate::error::ApiError;
use crate::http_client::ServiceClient;
use crate::seed;
use crate::settings::SeedSettings;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReservationLine {
    pub product_id: i64,
    pub quantity: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReserveRequest {
    pub reservation_key: String,
    pub lines: Vec<ReservationLine>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StockLevel {
    pub product_id: i64,
    pub available: i64,
}

/// What other modules need of inventory.
#[async_trait]
pub trait Inventory: Send + Sync {
    /// Units available to order, or `None` for a product inventory does not know.
    async fn available(&self, product_id: i64) -> Result<Option<i64>, ApiError>;
    /// Takes stock for every line or for none (409 `insufficient_stock`).
    async fn reserve(&self, reservation_key: &str, lines: &[ReservationLine]) -> Result<(), ApiError>;
    async fn commit(&self, reservation_key: &str) -> Result<(), ApiError>;
    async fn release(&self, reservation_key: &str) -> Result<(), ApiError>;
}

pub fn insufficient_stock(product_id: i64) -> ApiError {
    ApiError::conflict("insufficient_stock", format!("not enough stock for product {product_id}"))
}

fn validate_key(key: &str) -> Result<(), ApiError> {
    let ok = !key.is_empty()
        && key.len() <= 200
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if ok { Ok(()) } else { Err(ApiError::validation("reservation_key must be 1-200 characters of [A-Za-z0-9-_.:]")) }
}

fn validate_lines(lines: &[ReservationLine]) -> Result<(), ApiError> {
    if lines.is_empty() || lines.len() > 100 {
        return Err(ApiError::validation("a reservation needs 1 to 100 lines"));
    }
    if lines.iter().any(|l| l.quantity < 1 || l.product_id < 1) {
        return Err(ApiError::validation("every line needs a positive product_id and quantity"));
    }
    Ok(())
}

/// In-process implementation.
#[derive(Clone, Debug)]
pub struct LocalInventory(pub Database);

#[async_trait]
impl Inventory for LocalInventory {
    async fn available(&self, product_id: i64) -> Result<Option<i64>, ApiError> {
        Ok(repo::available(&self.0.pool, product_id).await?)
    }
    async fn reserve(&self, reservation_key: &str, lines: &[ReservationLine]) -> Result<(), ApiError> {
        validate_key(reservation_key)?;
        validate_lines(lines)?;
        let mut tx = self.0.begin_write().await?;
        match repo::reserve(&mut tx, reservation_key, lines).await? {
            Ok(()) => {
                tx.commit().await?;
                Ok(())
            }
            Err(short_product) => Err(insufficient_stock(short_product)),
        }
    }
    async fn commit(&self, reservation_key: &str) -> Result<(), ApiError> {
        let mut tx = self.0.begin_write().await?;
        repo::commit(&mut tx, reservation_key).await?;
        tx.commit().await?;
        Ok(())
    }
    async fn release(&self, reservation_key: &str) -> Result<(), ApiError> {
        let mut tx = self.0.begin_write().await?;
        repo::release(&mut tx, reservation_key).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// HTTP implementation: calls to the inventory service.
#[derive(Clone, Debug)]
pub struct InventoryClient(pub ServiceClient);

#[async_trait]
impl Inventory for InventoryClient {
    async fn available(&self, product_id: i64) -> Result<Option<i64>, ApiError> {
        let level: Option<StockLevel> = self.0.get_optional(&format!("/internal/stock/{product_id}")).await?;
        Ok(level.map(|l| l.available))
    }
    async fn reserve(&self, reservation_key: &str, lines: &[ReservationLine]) -> Result<(), ApiError> {
        let request = ReserveRequest { reservation_key: reservation_key.to_string(), lines: lines.to_vec() };
        self.0.post_json::<_, serde_json::Value>("/internal/reservations", &request).await.map(|_| ())
    }
    async fn commit(&self, reservation_key: &str) -> Result<(), ApiError> {
        let path = format!("/internal/reservations/{reservation_key}/commit");
        self.0.post_json::<_, serde_json::Value>(&path, &serde_json::json!({})).await.map(|_| ())
    }
    async fn release(&self, reservation_key: &str) -> Result<(), ApiError> {
        let path = format!("/internal/reservations/{reservation_key}/release");
        self.0.post_json::<_, serde_json::Value>(&path, &serde_json::json!({})).await.map(|_| ())
    }
}

/// Inventory's SQL; the write functions run inside a caller's transaction.
pub mod repo {
    use sqlx::AnyConnection;

    use super::*;

    pub async fn available<'e>(
        db: impl sqlx::Executor<'e, Database = sqlx::Any>,
        product_id: i64,
    ) -> Result<Option<i64>, sqlx::Error> {
        let row = sqlx::query("SELECT available FROM stock WHERE product_id = $1")
            .bind(product_id)
            .fetch_optional(db)
            .await?;
        row.map(|r| r.try_get("available")).transpose()
    }

    async fn status(conn: &mut AnyConnection, key: &str) -> Result<Option<String>, sqlx::Error> {
        let row = sqlx::query("SELECT status FROM reservations WHERE reservation_key = $1")
            .bind(key)
            .fetch_optional(&mut *conn)
            .await?;
        row.map(|r| r.try_get("status")).transpose()
    }

    /// Takes stock for all lines, or for none. `Ok(Err(product))` names the first product short
    /// of stock; the stock and reservation rows are then as they were before the call, so the
    /// caller may still commit its transaction (the monolith records the rejected order in it).
    pub async fn reserve(
        conn: &mut AnyConnection,
        key: &str,
        lines: &[ReservationLine],
    ) -> Result<Result<(), i64>, sqlx::Error> {
        let now = now_millis();
        let previous = status(conn, key).await?;
        match previous.as_deref() {
            Some("held") | Some("committed") => return Ok(Ok(())),
            Some(_) => {
                // Released earlier and asked for again (a retried checkout): take the stock anew.
                sqlx::query("UPDATE reservations SET status = 'held', updated_at = $2 WHERE reservation_key = $1")
                    .bind(key)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                sqlx::query("DELETE FROM reservation_lines WHERE reservation_key = $1")
                    .bind(key)
                    .execute(&mut *conn)
                    .await?;
            }
            None => {
                sqlx::query("INSERT INTO reservations (reservation_key, status, created_at, updated_at) VALUES ($1, 'held', $2, $2)")
                    .bind(key)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        for (taken, line) in lines.iter().enumerate() {
            let updated =
                sqlx::query("UPDATE stock SET available = available - $1 WHERE product_id = $2 AND available >= $1")
                    .bind(line.quantity)
                    .bind(line.product_id)
                    .execute(&mut *conn)
                    .await?;
            if updated.rows_affected() == 0 {
                undo_partial_reservation(conn, key, &lines[..taken], previous.is_some()).await?;
                return Ok(Err(line.product_id));
            }
            sqlx::query("INSERT INTO reservation_lines (reservation_key, product_id, quantity) VALUES ($1, $2, $3)")
                .bind(key)
                .bind(line.product_id)
                .bind(line.quantity)
                .execute(&mut *conn)
                .await?;
        }
        Ok(Ok(()))
    }

    async fn undo_partial_reservation(
        conn: &mut AnyConnection,
        key: &str,
        taken: &[ReservationLine],
        existed: bool,
    ) -> Result<(), sqlx::Error> {
        for line in taken {
            sqlx::query("UPDATE stock SET available = available + $1 WHERE product_id = $2")
                .bind(line.quantity)
                .bind(line.product_id)
                .execute(&mut *conn)
                .await?;
        }
        sqlx::query("DELETE FROM reservation_lines WHERE reservation_key = $1").bind(key).execute(&mut *conn).await?;
        let restore = if existed {
            "UPDATE reservations SET status = 'released' WHERE reservation_key = $1"
        } else {
            "DELETE FROM reservations WHERE reservation_key = $1"
        };
        sqlx::query(restore).bind(key).execute(&mut *conn).await?;
        Ok(())
    }

    /// Gives a held reservation's stock back. Releasing an unknown or released key does nothing.
    pub async fn release(conn: &mut AnyConnection, key: &str) -> Result<(), ApiError> {
        match status(conn, key).await?.as_deref() {
            Some("held") => {}
            Some("committed") => {
                return Err(ApiError::conflict("reservation_committed", "a committed reservation cannot be released"));
            }
            _ => return Ok(()),
        }
        let lines = sqlx::query("SELECT product_id, quantity FROM reservation_lines WHERE reservation_key = $1")
            .bind(key)
            .fetch_all(&mut *conn)
            .await?;
        for line in lines {
            let product_id: i64 = line.try_get("product_id")?;
            let quantity: i64 = line.try_get("quantity")?;
            sqlx::query("UPDATE stock SET available = available + $1 WHERE product_id = $2")
                .bind(quantity)
                .bind(product_id)
                .execute(&mut *conn)
                .await?;
        }
        sqlx::query("UPDATE reservations SET status = 'released', updated_at = $2 WHERE reservation_key = $1")
            .bind(key)
            .bind(now_millis())
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Makes a held reservation final. Committing twice is fine; committing a released or unknown
    /// reservation is a conflict.
    pub async fn commit(conn: &mut AnyConnection, key: &str) -> Result<(), ApiError> {
        match status(conn, key).await?.as_deref() {
            Some("committed") => Ok(()),
            Some("held") => {
                sqlx::query("UPDATE reservations SET status = 'committed', updated_at = $2 WHERE reservation_key = $1")
                    .bind(key)
                    .bind(now_millis())
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            }
            _ => Err(ApiError::conflict("reservation_not_held", "no held reservation under this key")),
        }
    }
}

/// Seeds stock for every product, unless the table already holds data.
pub async fn seed(db: &Database, settings: &SeedSettings) -> Result<(), sqlx::Error> {
    let existing: i64 = sqlx::query("SELECT COUNT(*) AS n FROM stock").fetch_one(&db.pool).await?.try_get("n")?;
    if existing > 0 {
        return Ok(());
    }
    let mut rng = seed::rng_for("inventory", settings.seed);
    let ids: Vec<i64> = (1..=i64::from(settings.products)).collect();
    let mut tx = db.begin_write().await?;
    for chunk in ids.chunks(seed::BATCH_ROWS) {
        let sql = multi_row_insert("INSERT INTO stock (product_id, available, initial)", 3, chunk.len());
        let mut query = sqlx::query(&sql);
        for &id in chunk {
            let units: i64 = rng.random_range(50..=1000);
            let units = if seed::is_scarce(id) { seed::SCARCE_STOCK } else { units };
            query = query.bind(id).bind(units).bind(units);
        }
        query.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

pub type SharedInventory = Arc<dyn Inventory>;

/// Internal routes (inventory has no public ones).
pub fn configure_internal(cfg: &mut web::ServiceConfig) {
    cfg.route("/internal/stock/{product_id}", web::get().to(get_stock))
        .route("/internal/reservations", web::post().to(reserve))
        .route("/internal/reservations/{key}/commit", web::post().to(commit))
        .route("/internal/reservations/{key}/release", web::post().to(release));
}

async fn get_stock(inventory: web::Data<LocalInventory>, product_id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let product_id = product_id.into_inner();
    match inventory.available(product_id).await? {
        Some(available) => Ok(HttpResponse::Ok().json(StockLevel { product_id, available })),
        None => Err(ApiError::not_found("no stock record for this product")),
    }
}

async fn reserve(
    inventory: web::Data<LocalInventory>,
    body: web::Json<ReserveRequest>,
) -> Result<HttpResponse, ApiError> {
    inventory.reserve(&body.reservation_key, &body.lines).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "reservation_key": body.reservation_key, "status": "held" })))
}

async fn commit(inventory: web::Data<LocalInventory>, key: web::Path<String>) -> Result<HttpResponse, ApiError> {
    validate_key(&key)?;
    inventory.commit(&key).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "reservation_key": key.as_str(), "status": "committed" })))
}

async fn release(inventory: web::Data<LocalInventory>, key: web::Path<String>) -> Result<HttpResponse, ApiError> {
    validate_key(&key)?;
    inventory.release(&key).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "reservation_key": key.as_str(), "status": "released" })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservation_keys_and_lines_are_validated() {
        assert!(validate_key("order-17").is_ok());
        assert!(validate_key("").is_err());
        assert!(validate_key("a/b").is_err());
        assert!(validate_lines(&[]).is_err());
        assert!(validate_lines(&[ReservationLine { product_id: 1, quantity: 0 }]).is_err());
        assert!(validate_lines(&[ReservationLine { product_id: 1, quantity: 2 }]).is_ok());
    }
}
