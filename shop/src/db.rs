//! Database access shared by every module: one pool per database, SQLite or PostgreSQL.
//!
//! Queries are written once with `$1`-style placeholders, which both SQLite and PostgreSQL accept,
//! and run through sqlx's `Any` driver. Column types stay simple (`BIGINT` ids, money in cents,
//! timestamps as Unix milliseconds) so one statement text serves both backends. The only
//! per-backend text is the schema (`migrations/<backend>/<module>.sql`).

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

/// Which SQL engine a database URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Self::Postgres)
        } else {
            anyhow::bail!("unsupported database URL (expected sqlite: or postgres:): {url}")
        }
    }
}

/// A pool plus the knowledge of which backend it talks to.
#[derive(Clone, Debug)]
pub struct Database {
    pub pool: AnyPool,
    pub backend: Backend,
}

/// The modules whose tables a database holds; their schemas are applied at start-up. A
/// module is its schema: each owns its tables.
pub use crate::topology::Module as Schema;

impl Schema {
    fn sql(self, backend: Backend) -> &'static str {
        use Backend::*;
        match (self, backend) {
            (Self::Accounts, Sqlite) => include_str!("../migrations/sqlite/accounts.sql"),
            (Self::Catalog, Sqlite) => include_str!("../migrations/sqlite/catalog.sql"),
            (Self::Inventory, Sqlite) => include_str!("../migrations/sqlite/inventory.sql"),
            (Self::Reviews, Sqlite) => include_str!("../migrations/sqlite/reviews.sql"),
            (Self::Payments, Sqlite) => include_str!("../migrations/sqlite/payments.sql"),
            (Self::Orders, Sqlite) => include_str!("../migrations/sqlite/orders.sql"),
            (Self::Accounts, Postgres) => include_str!("../migrations/postgres/accounts.sql"),
            (Self::Catalog, Postgres) => include_str!("../migrations/postgres/catalog.sql"),
            (Self::Inventory, Postgres) => include_str!("../migrations/postgres/inventory.sql"),
            (Self::Reviews, Postgres) => include_str!("../migrations/postgres/reviews.sql"),
            (Self::Payments, Postgres) => include_str!("../migrations/postgres/payments.sql"),
            (Self::Orders, Postgres) => include_str!("../migrations/postgres/orders.sql"),
        }
    }
}

/// How to open a database; built from settings, printed at start-up.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub url: String,
    pub pool_size: u32,
}

impl Database {
    /// Connects, creating the SQLite file if needed, and applies the schemas of `modules`.
    pub async fn connect(settings: &DatabaseSettings, modules: &[Schema]) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(&settings.url)?;
        let url = match backend {
            Backend::Sqlite if !settings.url.contains("mode=") => {
                let sep = if settings.url.contains('?') { '&' } else { '?' };
                format!("{}{sep}mode=rwc", settings.url)
            }
            _ => settings.url.clone(),
        };
        let options = AnyConnectOptions::from_str(&url)?.disable_statement_logging();
        let pool = AnyPoolOptions::new()
            .max_connections(settings.pool_size)
            .acquire_timeout(Duration::from_secs(5))
            // sqlx pings a connection before every checkout by default; on SQLite that is a
            // round trip to the connection's worker thread per query, a third of the cost of a
            // point read. A broken connection still surfaces as an error on its next query.
            .test_before_acquire(false)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the one writer; the busy timeout makes
                        // writers queue instead of failing; NORMAL sync is safe under WAL.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; \
                             PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let db = Self { pool, backend };
        for module in modules {
            db.pool.execute(module.sql(backend)).await?;
        }
        Ok(db)
    }

    /// Begins a transaction that will write.
    ///
    /// SQLite's default `BEGIN` takes the write lock only at the first write, and a transaction
    /// that read first cannot wait for it (it fails with "database is locked"); `BEGIN IMMEDIATE`
    /// takes the lock up front, so concurrent writers queue on the busy timeout instead.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// After a bulk insert with explicit ids, moves PostgreSQL's id sequence past them so later
    /// inserts do not collide. SQLite derives the next rowid from the table itself.
    pub async fn sync_id_sequence(&self, table: &str) -> Result<(), sqlx::Error> {
        if self.backend == Backend::Postgres {
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                 COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
            );
            sqlx::query(&sql).execute(&self.pool).await?;
        }
        Ok(())
    }

    /// `/ready`: is the database answering?
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ())
    }
}

/// A multi-row `INSERT` with `$n` placeholders for `rows` rows of `columns` values each.
pub fn multi_row_insert(head: &str, columns: usize, rows: usize) -> String {
    let mut sql = String::with_capacity(head.len() + rows * columns * 5);
    sql.push_str(head);
    sql.push_str(" VALUES ");
    let mut n = 0;
    for row in 0..rows {
        if row > 0 {
            sql.push(',');
        }
        sql.push('(');
        for col in 0..columns {
            if col > 0 {
                sql.push(',');
            }
            n += 1;
            sql.push('$');
            sql.push_str(&n.to_string());
        }
        sql.push(')');
    }
    sql
}

/// Current time as Unix milliseconds, the timestamp format of every table.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_row_insert_numbers_placeholders_across_rows() {
        assert_eq!(multi_row_insert("INSERT INTO t (a, b)", 2, 2), "INSERT INTO t (a, b) VALUES ($1,$2),($3,$4)");
    }

    #[test]
    fn backend_is_recognised_from_the_url() {
        assert_eq!(Backend::of_url("sqlite:x.db").ok(), Some(Backend::Sqlite));
        assert_eq!(Backend::of_url("postgres://u@h/db").ok(), Some(Backend::Postgres));
        assert!(Backend::of_url("mysql://h/db").is_err());
    }
}
