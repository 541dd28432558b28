//! Inventory: stock per product, and reservations that never oversell.
//!
//! A reservation takes stock at once (a conditional `UPDATE ... WHERE available >= qty`, so two
//! checkouts can never both take the last unit); `release` gives it back and `commit` makes it
//! final. All three are idempotent by reservation key and take effect at most once, so a
//! retried, duplicated or late saga step is harmless: a release that overtakes its reserve
//! leaves a tombstone, and the late reserve then takes nothing.
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
use crate::seam::ModuleError;
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

/// What a reserve did. Not an error in any case: the caller decides what each means.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ReserveOutcome {
    /// The stock of every line is held under the key (now, or by an earlier call with the key).
    Held,
    /// A line's product is short of stock: nothing was taken, and the key is spent (released).
    Short { product_id: i64 },
    /// The key was released before (a compensation got there first): nothing was taken.
    Released,
}

/// What a release did; a second release reports the state the first one left.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ReleaseOutcome {
    /// Held stock was given back by this call.
    Released,
    /// Released earlier (or short when reserved): nothing to give back.
    AlreadyReleased,
    /// Never reserved: a tombstone now makes a late reserve with this key take nothing.
    NeverReserved,
    /// Committed: the stock is sold and cannot come back.
    Committed,
}

/// What a commit did; a second commit reports the state the first one left.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CommitOutcome {
    /// The held stock became final in this call.
    Committed,
    AlreadyCommitted,
    /// Released (or never reserved): there is nothing to make final.
    NotHeld,
}

/// What other modules need of inventory. The state changes are idempotent by reservation key
/// and each takes effect at most once, however many callers race.
#[async_trait]
pub trait Inventory: Send + Sync {
    /// Units available to order, or `None` for a product inventory does not know.
    async fn available(&self, product_id: i64) -> Result<Option<i64>, ModuleError>;
    /// Takes stock for every line or for none.
    async fn reserve(&self, reservation_key: &str, lines: &[ReservationLine]) -> Result<ReserveOutcome, ModuleError>;
    async fn commit(&self, reservation_key: &str) -> Result<CommitOutcome, ModuleError>;
    async fn release(&self, reservation_key: &str) -> Result<ReleaseOutcome, ModuleError>;
}

fn validate_key(key: &str) -> Result<(), ModuleError> {
    let ok = !key.is_empty()
        && key.len() <= 200
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        Err(ModuleError::Invalid("reservation_key must be 1-200 characters of [A-Za-z0-9-_.:]".into()))
    }
}

fn validate_lines(lines: &[ReservationLine]) -> Result<(), ModuleError> {
    if lines.is_empty() || lines.len() > 100 {
        return Err(ModuleError::Invalid("a reservation needs 1 to 100 lines".into()));
    }
    if lines.iter().any(|l| l.quantity < 1 || l.product_id < 1) {
        return Err(ModuleError::Invalid("every line needs a positive product_id and quantity".into()));
    }
    Ok(())
}

/// In-process implementation.
#[derive(Clone, Debug)]
pub struct LocalInventory(pub Database);

#[async_trait]
impl Inventory for LocalInventory {
    async fn available(&self, product_id: i64) -> Result<Option<i64>, ModuleError> {
        Ok(repo::available(&self.0.pool, product_id).await?)
    }
    async fn reserve(&self, reservation_key: &str, lines: &[ReservationLine]) -> Result<ReserveOutcome, ModuleError> {
        validate_key(reservation_key)?;
        validate_lines(lines)?;
        let mut tx = self.0.begin_write().await?;
        let outcome = repo::reserve(&mut tx, reservation_key, lines).await?;
        tx.commit().await?;
        Ok(outcome)
    }
    async fn commit(&self, reservation_key: &str) -> Result<CommitOutcome, ModuleError> {
        validate_key(reservation_key)?;
        let mut tx = self.0.begin_write().await?;
        let outcome = repo::commit(&mut tx, reservation_key).await?;
        tx.commit().await?;
        Ok(outcome)
    }
    async fn release(&self, reservation_key: &str) -> Result<ReleaseOutcome, ModuleError> {
        validate_key(reservation_key)?;
        let mut tx = self.0.begin_write().await?;
        let outcome = repo::release(&mut tx, reservation_key).await?;
        tx.commit().await?;
        Ok(outcome)
    }
}

/// HTTP implementation: calls to the inventory service.
#[derive(Clone, Debug)]
pub struct InventoryClient(pub ServiceClient);

#[async_trait]
impl Inventory for InventoryClient {
    async fn available(&self, product_id: i64) -> Result<Option<i64>, ModuleError> {
        let level: Option<StockLevel> = self.0.get_optional(&format!("/internal/stock/{product_id}")).await?;
        Ok(level.map(|l| l.available))
    }
    async fn reserve(&self, reservation_key: &str, lines: &[ReservationLine]) -> Result<ReserveOutcome, ModuleError> {
        let request = ReserveRequest { reservation_key: reservation_key.to_string(), lines: lines.to_vec() };
        self.0.post_json("/internal/reservations", &request).await
    }
    async fn commit(&self, reservation_key: &str) -> Result<CommitOutcome, ModuleError> {
        let path = format!("/internal/reservations/{reservation_key}/commit");
        self.0.post_json(&path, &serde_json::json!({})).await
    }
    async fn release(&self, reservation_key: &str) -> Result<ReleaseOutcome, ModuleError> {
        let path = format!("/internal/reservations/{reservation_key}/release");
        self.0.post_json(&path, &serde_json::json!({})).await
    }
}

/// Inventory's SQL; the write functions run inside a caller's write transaction.
///
/// Every state change is one conditional statement on the reservation row (`INSERT ... ON
/// CONFLICT DO NOTHING`, or `UPDATE ... WHERE status = 'held'`), so on PostgreSQL at READ
/// COMMITTED two racing calls serialise on that row and only one of them changes anything; the
/// other sees the new state and reports it. (SQLite serialises write transactions anyway.)
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

    /// Inserts the reservation row with `status` unless the key exists; true if inserted.
    async fn insert_if_absent(conn: &mut AnyConnection, key: &str, status: &str) -> Result<bool, sqlx::Error> {
        let now = now_millis();
        let inserted = sqlx::query(
            "INSERT INTO reservations (reservation_key, status, created_at, updated_at) VALUES ($1, $2, $3, $3) \
             ON CONFLICT (reservation_key) DO NOTHING",
        )
        .bind(key)
        .bind(status)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    /// Takes stock for all lines, or for none. A key is reserved at most once: a repeated
    /// reserve reports `Held` again, and a key released before (a compensation that overtook
    /// its reserve) takes nothing.
    pub async fn reserve(
        conn: &mut AnyConnection,
        key: &str,
        lines: &[ReservationLine],
    ) -> Result<ReserveOutcome, sqlx::Error> {
        if !insert_if_absent(conn, key, "held").await? {
            return Ok(match status(conn, key).await?.as_deref() {
                Some("held") | Some("committed") => ReserveOutcome::Held,
                _ => ReserveOutcome::Released,
            });
        }
        // Stock rows are taken in product order, as every reserve and release takes them, so
        // two checkouts on PostgreSQL cannot wait for each other's rows in a cycle.
        let mut lines = lines.to_vec();
        lines.sort_by_key(|line| line.product_id);
        for (taken, line) in lines.iter().enumerate() {
            let updated =
                sqlx::query("UPDATE stock SET available = available - $1 WHERE product_id = $2 AND available >= $1")
                    .bind(line.quantity)
                    .bind(line.product_id)
                    .execute(&mut *conn)
                    .await?;
            if updated.rows_affected() == 0 {
                give_back(conn, &lines[..taken]).await?;
                sqlx::query("DELETE FROM reservation_lines WHERE reservation_key = $1")
                    .bind(key)
                    .execute(&mut *conn)
                    .await?;
                // The key stays as a tombstone: it never takes stock later either.
                set_status(conn, key, "released").await?;
                return Ok(ReserveOutcome::Short { product_id: line.product_id });
            }
            sqlx::query("INSERT INTO reservation_lines (reservation_key, product_id, quantity) VALUES ($1, $2, $3)")
                .bind(key)
                .bind(line.product_id)
                .bind(line.quantity)
                .execute(&mut *conn)
                .await?;
        }
        Ok(ReserveOutcome::Held)
    }

    async fn give_back(conn: &mut AnyConnection, lines: &[ReservationLine]) -> Result<(), sqlx::Error> {
        for line in lines {
            sqlx::query("UPDATE stock SET available = available + $1 WHERE product_id = $2")
                .bind(line.quantity)
                .bind(line.product_id)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    async fn set_status(conn: &mut AnyConnection, key: &str, status: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE reservations SET status = $2, updated_at = $3 WHERE reservation_key = $1")
            .bind(key)
            .bind(status)
            .bind(now_millis())
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Moves a held reservation to `to`; true if this call did it (the row is locked by the
    /// `UPDATE`, so of two racing calls exactly one sees `held`).
    async fn move_from_held(conn: &mut AnyConnection, key: &str, to: &str) -> Result<bool, sqlx::Error> {
        let moved = sqlx::query(
            "UPDATE reservations SET status = $2, updated_at = $3 WHERE reservation_key = $1 AND status = 'held'",
        )
        .bind(key)
        .bind(to)
        .bind(now_millis())
        .execute(&mut *conn)
        .await?;
        Ok(moved.rows_affected() == 1)
    }

    /// Gives a held reservation's stock back, once. Releasing an unknown key leaves a tombstone.
    pub async fn release(conn: &mut AnyConnection, key: &str) -> Result<ReleaseOutcome, sqlx::Error> {
        if insert_if_absent(conn, key, "released").await? {
            return Ok(ReleaseOutcome::NeverReserved);
        }
        if !move_from_held(conn, key, "released").await? {
            return Ok(match status(conn, key).await?.as_deref() {
                Some("committed") => ReleaseOutcome::Committed,
                _ => ReleaseOutcome::AlreadyReleased,
            });
        }
        let rows = sqlx::query(
            "SELECT product_id, quantity FROM reservation_lines WHERE reservation_key = $1 ORDER BY product_id",
        )
        .bind(key)
        .fetch_all(&mut *conn)
        .await?;
        let mut lines = Vec::with_capacity(rows.len());
        for row in rows {
            lines.push(ReservationLine { product_id: row.try_get("product_id")?, quantity: row.try_get("quantity")? });
        }
        give_back(conn, &lines).await?;
        Ok(ReleaseOutcome::Released)
    }

    /// Makes a held reservation final, once.
    pub async fn commit(conn: &mut AnyConnection, key: &str) -> Result<CommitOutcome, sqlx::Error> {
        if move_from_held(conn, key, "committed").await? {
            return Ok(CommitOutcome::Committed);
        }
        Ok(match status(conn, key).await?.as_deref() {
            Some("committed") => CommitOutcome::AlreadyCommitted,
            _ => CommitOutcome::NotHeld,
        })
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
    let outcome =
        inventory.reserve(&body.reservation_key, &body.lines).await.map_err(ModuleError::into_callee_answer)?;
    Ok(HttpResponse::Ok().json(outcome))
}

async fn commit(inventory: web::Data<LocalInventory>, key: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(inventory.commit(&key).await.map_err(ModuleError::into_callee_answer)?))
}

async fn release(inventory: web::Data<LocalInventory>, key: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(inventory.release(&key).await.map_err(ModuleError::into_callee_answer)?))
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
