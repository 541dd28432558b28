//! Reading the books: every row the invariants need, loaded into memory from the databases.
//!
//! Each database is read inside one read-only transaction, so what is read from it is one
//! snapshot (SQLite's WAL snapshot; PostgreSQL's `REPEATABLE READ`). The monolith's three parts
//! live in one database and so share one snapshot; the microservices' three cannot, which is
//! why the checker is meant for a quiet system. The orders database is read first: a checkout
//! charges and reserves before it confirms, and finishes an order only after settling both,
//! so a confirmed or finished order read first has its charge and reservation in place when
//! they are read afterwards.

use std::collections::BTreeMap;
use std::str::FromStr;

use anyhow::Context;
use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, ConnectOptions, Connection, Row};

use super::Deployment;

/// One product's stock.
#[derive(Debug, Clone)]
pub(super) struct Stock {
    pub product_id: i64,
    pub available: i64,
    pub initial: i64,
}

/// Product id -> quantity.
pub(super) type Lines = BTreeMap<i64, i64>;

#[derive(Debug, Clone)]
pub(super) struct Reservation {
    pub key: String,
    pub status: String,
    pub lines: Lines,
}

#[derive(Debug, Clone)]
pub(super) struct Charge {
    pub key: String,
    pub amount_cents: i64,
    pub status: String,
}

#[derive(Debug, Clone)]
pub(super) struct Order {
    pub id: i64,
    pub user_id: i64,
    pub idempotency_key: String,
    pub status: String,
    pub attempt: i64,
    pub total_cents: i64,
    /// When the current attempt started (unix ms).
    pub attempt_started_at: i64,
    pub finished_at: Option<i64>,
    pub lines: Lines,
}

/// Everything the invariants look at, as read.
#[derive(Debug, Clone, Default)]
pub(super) struct Books {
    pub stock: Vec<Stock>,
    pub reservations: Vec<Reservation>,
    pub charges: Vec<Charge>,
    pub orders: Vec<Order>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Orders,
    Payments,
    Inventory,
}

/// Opens one connection to `url` (SQLite or PostgreSQL) without creating anything.
pub(super) async fn open(url: &str) -> anyhow::Result<AnyConnection> {
    sqlx::any::install_default_drivers();
    let options = AnyConnectOptions::from_str(url)
        .with_context(|| format!("parsing {}", shop::settings::redact_password(url)))?
        .disable_statement_logging();
    AnyConnection::connect_with(&options)
        .await
        .with_context(|| format!("opening {}", shop::settings::redact_password(url)))
}

/// Reads the books of `deployment`: the orders database first, then payments, then inventory.
pub(super) async fn read(deployment: &Deployment) -> anyhow::Result<Books> {
    let parts = [
        (Part::Orders, &deployment.orders),
        (Part::Payments, &deployment.payments),
        (Part::Inventory, &deployment.inventory),
    ];
    let mut urls: Vec<&String> = Vec::new();
    for (_, url) in parts {
        if !urls.contains(&url) {
            urls.push(url);
        }
    }
    let mut books = Books::default();
    for url in urls {
        let mut connection = open(url).await?;
        let begin = match shop::db::Backend::of_url(url)? {
            shop::db::Backend::Sqlite => "BEGIN",
            shop::db::Backend::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
        };
        let mut snapshot = connection.begin_with(begin).await?;
        for (part, _) in parts.iter().filter(|(_, part_url)| *part_url == url) {
            let context = || format!("reading the {part:?} tables of {}", shop::settings::redact_password(url));
            match part {
                Part::Orders => books.orders = read_orders(&mut snapshot).await.with_context(context)?,
                Part::Payments => books.charges = read_charges(&mut snapshot).await.with_context(context)?,
                Part::Inventory => {
                    books.stock = read_stock(&mut snapshot).await.with_context(context)?;
                    books.reservations = read_reservations(&mut snapshot).await.with_context(context)?;
                }
            }
        }
        // Nothing was written: ending the snapshot either way is the same.
        snapshot.rollback().await?;
        connection.close().await?;
    }
    Ok(books)
}

async fn read_orders(conn: &mut AnyConnection) -> Result<Vec<Order>, sqlx::Error> {
    let mut lines: BTreeMap<i64, Lines> = BTreeMap::new();
    for row in sqlx::query("SELECT order_id, product_id, quantity FROM order_lines").fetch_all(&mut *conn).await? {
        lines.entry(row.try_get("order_id")?).or_default().insert(row.try_get("product_id")?, row.try_get("quantity")?);
    }
    let rows = sqlx::query(
        "SELECT id, user_id, idempotency_key, status, attempt, total_cents, attempt_started_at, finished_at \
         FROM orders ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let id: i64 = row.try_get("id")?;
            Ok(Order {
                id,
                user_id: row.try_get("user_id")?,
                idempotency_key: row.try_get("idempotency_key")?,
                status: row.try_get("status")?,
                attempt: row.try_get("attempt")?,
                total_cents: row.try_get("total_cents")?,
                attempt_started_at: row.try_get("attempt_started_at")?,
                finished_at: row.try_get("finished_at")?,
                lines: lines.remove(&id).unwrap_or_default(),
            })
        })
        .collect()
}

async fn read_charges(conn: &mut AnyConnection) -> Result<Vec<Charge>, sqlx::Error> {
    let rows = sqlx::query("SELECT idempotency_key, amount_cents, status FROM charges ORDER BY id")
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Charge {
                key: row.try_get("idempotency_key")?,
                amount_cents: row.try_get("amount_cents")?,
                status: row.try_get("status")?,
            })
        })
        .collect()
}

async fn read_stock(conn: &mut AnyConnection) -> Result<Vec<Stock>, sqlx::Error> {
    let rows = sqlx::query("SELECT product_id, available, initial FROM stock ORDER BY product_id")
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Stock {
                product_id: row.try_get("product_id")?,
                available: row.try_get("available")?,
                initial: row.try_get("initial")?,
            })
        })
        .collect()
}

async fn read_reservations(conn: &mut AnyConnection) -> Result<Vec<Reservation>, sqlx::Error> {
    let mut lines: BTreeMap<String, Lines> = BTreeMap::new();
    for row in
        sqlx::query("SELECT reservation_key, product_id, quantity FROM reservation_lines").fetch_all(&mut *conn).await?
    {
        lines
            .entry(row.try_get("reservation_key")?)
            .or_default()
            .insert(row.try_get("product_id")?, row.try_get("quantity")?);
    }
    let rows = sqlx::query("SELECT reservation_key, status FROM reservations ORDER BY reservation_key")
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|row| {
            let key: String = row.try_get("reservation_key")?;
            Ok(Reservation { lines: lines.remove(&key).unwrap_or_default(), status: row.try_get("status")?, key })
        })
        .collect()
}

/// Orders not finished yet: checkouts at work, or left for recovery.
pub(super) async fn count_unfinished(conn: &mut AnyConnection) -> Result<usize, sqlx::Error> {
    let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM orders WHERE finished_at IS NULL")
        .fetch_one(&mut *conn)
        .await?
        .try_get("n")?;
    Ok(usize::try_from(count).unwrap_or(0))
}
