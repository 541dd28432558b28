//! The consistency checker against books built by hand: fresh SQLite databases with the shop's
//! schemas, a consistent state that must pass, then one planted violation per test that must be
//! found under exactly its invariant, naming its ids. Also the monolith's one-database layout,
//! the wait for quiet, and `splitbench check`'s exit code.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use shop::{Database, DatabaseSettings, Schema};
use splitbench::check::{CheckOptions, ConsistencyReport, Deployment, Invariant, check, wait_for_quiet};

const MINUTE_MS: i64 = 60_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Every table in monolith.db.
    Monolith,
    /// inventory.db, payments.db and orders.db.
    Microservices,
}

/// A shop's books on disk, with a pool per part to plant rows through.
struct Books {
    dir: tempfile::TempDir,
    inventory: Database,
    payments: Database,
    orders: Database,
    deployment: Deployment,
}

async fn open(dir: &std::path::Path, file: &str, schemas: &[Schema]) -> (Database, String) {
    let url = format!("sqlite:{}", dir.join(file).display());
    let db = Database::connect(&DatabaseSettings { url: url.clone(), pool_size: 1 }, schemas)
        .await
        .expect("a fresh database with the shop's schema");
    (db, url)
}

async fn exec(db: &Database, sql: &str) {
    sqlx::query(sql).execute(&db.pool).await.unwrap_or_else(|err| panic!("{sql}: {err}"));
}

impl Books {
    /// Consistent books, every row accounted for:
    /// - order 1: confirmed (2 × product 1), reservation committed, charge approved;
    /// - order 2: failed, reservation released (lines kept), charge refunded;
    /// - order 3: declined, reservation a released tombstone (no lines), charge declined;
    /// - order 4: confirmed on its second attempt; the first one's reservation released and its
    ///   charge voided.
    async fn consistent(layout: Layout) -> Books {
        let dir = tempfile::tempdir().expect("a temp dir");
        let (inventory, payments, orders) = match layout {
            Layout::Monolith => {
                let (db, _) =
                    open(dir.path(), "monolith.db", &[Schema::Inventory, Schema::Payments, Schema::Orders]).await;
                (db.clone(), db.clone(), db)
            }
            Layout::Microservices => (
                open(dir.path(), "inventory.db", &[Schema::Inventory]).await.0,
                open(dir.path(), "payments.db", &[Schema::Payments]).await.0,
                open(dir.path(), "orders.db", &[Schema::Orders]).await.0,
            ),
        };
        let part = |name| Deployment::sqlite_file_in(dir.path(), name).expect("the database file exists");
        let deployment =
            Deployment { inventory: part("inventory"), payments: part("payments"), orders: part("orders") };
        let books = Books { dir, inventory, payments, orders, deployment };

        for (product, available, initial) in [(1, 8, 10), (2, 5, 5), (3, 4, 4), (4, 19, 20)] {
            books.stock(product, available, initial).await;
        }
        let finished = Some(shop::db::now_millis() - MINUTE_MS);
        let lease = shop::db::now_millis() - 2 * MINUTE_MS;
        books.order(1, 1, "key-1", "confirmed", 1, lease, finished, &[(1, 2, 1000)]).await;
        books.reservation("order-1-attempt-1", "committed", &[(1, 2)]).await;
        books.charge("order-1-attempt-1", 2000, "approved").await;

        books.order(2, 2, "key-2", "failed", 1, lease, finished, &[(2, 1, 500)]).await;
        books.reservation("order-2-attempt-1", "released", &[(2, 1)]).await;
        books.charge("order-2-attempt-1", 500, "refunded").await;

        books.order(3, 3, "key-3", "declined", 1, lease, finished, &[(3, 1, 700)]).await;
        books.reservation("order-3-attempt-1", "released", &[]).await;
        books.charge("order-3-attempt-1", 700, "declined").await;

        books.order(4, 1, "key-4", "confirmed", 2, lease, finished, &[(4, 1, 300)]).await;
        books.reservation("order-4-attempt-1", "released", &[(4, 1)]).await;
        books.charge("order-4-attempt-1", 300, "voided").await;
        books.reservation("order-4-attempt-2", "committed", &[(4, 1)]).await;
        books.charge("order-4-attempt-2", 300, "approved").await;
        books
    }

    async fn stock(&self, product: i64, available: i64, initial: i64) {
        sqlx::query("INSERT INTO stock (product_id, available, initial) VALUES ($1, $2, $3)")
            .bind(product)
            .bind(available)
            .bind(initial)
            .execute(&self.inventory.pool)
            .await
            .expect("stock inserted");
    }

    /// An order and its lines `(product, quantity, unit price)`; its total is theirs.
    #[allow(clippy::too_many_arguments)]
    async fn order(
        &self,
        id: i64,
        user_id: i64,
        key: &str,
        status: &str,
        attempt: i64,
        lease_until: i64,
        finished_at: Option<i64>,
        lines: &[(i64, i64, i64)],
    ) {
        let total: i64 = lines.iter().map(|(_, quantity, price)| quantity * price).sum();
        sqlx::query(
            "INSERT INTO orders (id, user_id, idempotency_key, request_fingerprint, status, attempt, total_cents, \
             created_at, attempt_started_at, runner, lease_until, finished_at) \
             VALUES ($1, $2, $3, 'fp', $4, $5, $6, $7, $7, 'test', $8, $9)",
        )
        .bind(id)
        .bind(user_id)
        .bind(key)
        .bind(status)
        .bind(attempt)
        .bind(total)
        .bind(lease_until - MINUTE_MS)
        .bind(lease_until)
        .bind(finished_at)
        .execute(&self.orders.pool)
        .await
        .expect("order inserted");
        for (product, quantity, price) in lines {
            sqlx::query(
                "INSERT INTO order_lines (order_id, product_id, product_name, unit_price_cents, quantity) \
                 VALUES ($1, $2, 'a product', $3, $4)",
            )
            .bind(id)
            .bind(product)
            .bind(price)
            .bind(quantity)
            .execute(&self.orders.pool)
            .await
            .expect("order line inserted");
        }
    }

    async fn reservation(&self, key: &str, status: &str, lines: &[(i64, i64)]) {
        sqlx::query("INSERT INTO reservations (reservation_key, status, created_at, updated_at) VALUES ($1, $2, 0, 0)")
            .bind(key)
            .bind(status)
            .execute(&self.inventory.pool)
            .await
            .expect("reservation inserted");
        for (product, quantity) in lines {
            sqlx::query("INSERT INTO reservation_lines (reservation_key, product_id, quantity) VALUES ($1, $2, $3)")
                .bind(key)
                .bind(product)
                .bind(quantity)
                .execute(&self.inventory.pool)
                .await
                .expect("reservation line inserted");
        }
    }

    async fn charge(&self, key: &str, amount_cents: i64, status: &str) {
        sqlx::query(
            "INSERT INTO charges (idempotency_key, amount_cents, card_last4, status, created_at, updated_at) \
             VALUES ($1, $2, '4242', $3, 0, 0)",
        )
        .bind(key)
        .bind(amount_cents)
        .bind(status)
        .execute(&self.payments.pool)
        .await
        .expect("charge inserted");
    }

    /// Checks with the default recovery deadline, orders 1 and 4 acknowledged to the client.
    async fn check(&self) -> ConsistencyReport {
        self.check_acknowledging(&[1, 4]).await
    }

    async fn check_acknowledging(&self, acknowledged: &[i64]) -> ConsistencyReport {
        check(&self.deployment, &options(acknowledged)).await.expect("the books can be read")
    }
}

fn options(acknowledged: &[i64]) -> CheckOptions {
    CheckOptions {
        recovery_deadline: Duration::from_millis(shop::Settings::defaults().checkout.recovery_deadline_ms),
        acknowledged_orders: acknowledged.to_vec(),
    }
}

/// Exactly one violation, of `invariant`, whose detail names `names`.
fn assert_only_violation(report: &ConsistencyReport, invariant: Invariant, names: &str) {
    for other in Invariant::ALL {
        let expected = usize::from(other == invariant);
        assert_eq!(report.count(other), expected, "{other} should count {expected}:\n{report}");
    }
    assert_eq!(report.violations.len(), 1, "{report}");
    assert_eq!(report.violations[0].invariant, invariant);
    assert!(report.violations[0].detail.contains(names), "the detail should name {names:?}:\n{report}");
    assert!(!report.is_clean());
}

#[tokio::test]
async fn consistent_books_are_clean() {
    let books = Books::consistent(Layout::Microservices).await;
    let report = books.check().await;
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.counts.len(), Invariant::ALL.len(), "every invariant is listed, 0 included");
    assert_eq!(
        (report.orders_checked, report.charges_checked, report.reservations_checked, report.products_checked),
        (4, 5, 5, 4)
    );
    assert_eq!((report.acknowledged_checked, report.in_progress), (2, 0));
    assert!(report.to_string().contains("clean (4 orders checked)"), "{report}");
}

#[tokio::test]
async fn consistent_books_in_one_monolith_database_are_clean() {
    let books = Books::consistent(Layout::Monolith).await;
    assert!(!books.dir.path().join("orders.db").exists(), "one file holds every table");
    assert_eq!(books.deployment, Deployment::monolith(books.deployment.orders.clone()));
    let report = books.check().await;
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.orders_checked, 4);
}

#[tokio::test]
async fn a_violation_in_one_monolith_database_is_found() {
    let books = Books::consistent(Layout::Monolith).await;
    exec(&books.payments, "UPDATE charges SET amount_cents = 1999 WHERE idempotency_key = 'order-1-attempt-1'").await;
    assert_only_violation(&books.check().await, Invariant::ConfirmedOrderPaid, "order 1 ");
}

#[tokio::test]
async fn negative_stock_violates_stock_non_negative() {
    let books = Books::consistent(Layout::Microservices).await;
    // The schema forbids it (CHECK available >= 0); a broken shop on another schema might not.
    let mut conn = books.inventory.pool.acquire().await.expect("a connection");
    sqlx::query("PRAGMA ignore_check_constraints = ON").execute(&mut *conn).await.expect("pragma");
    sqlx::query("INSERT INTO stock (product_id, available, initial) VALUES (9, -1, -1)")
        .execute(&mut *conn)
        .await
        .expect("negative stock planted");
    sqlx::query("PRAGMA ignore_check_constraints = OFF").execute(&mut *conn).await.expect("pragma");
    drop(conn);
    assert_only_violation(&books.check().await, Invariant::StockNonNegative, "product 9");
}

#[tokio::test]
async fn stock_created_from_nothing_violates_stock_conserved() {
    let books = Books::consistent(Layout::Microservices).await;
    exec(&books.inventory, "UPDATE stock SET available = 9 WHERE product_id = 1").await;
    assert_only_violation(&books.check().await, Invariant::StockConserved, "product 1");
}

#[tokio::test]
async fn a_confirmed_order_without_a_charge_violates_confirmed_order_paid() {
    let books = Books::consistent(Layout::Microservices).await;
    exec(&books.payments, "DELETE FROM charges WHERE idempotency_key = 'order-4-attempt-2'").await;
    assert_only_violation(&books.check().await, Invariant::ConfirmedOrderPaid, "order 4 ");
}

#[tokio::test]
async fn a_charge_for_another_amount_violates_confirmed_order_paid() {
    let books = Books::consistent(Layout::Microservices).await;
    exec(&books.payments, "UPDATE charges SET amount_cents = 1999 WHERE idempotency_key = 'order-1-attempt-1'").await;
    let report = books.check().await;
    assert_only_violation(&report, Invariant::ConfirmedOrderPaid, "order-1-attempt-1");
    assert!(report.violations[0].detail.contains("1999"), "{report}");
}

#[tokio::test]
async fn an_approved_charge_of_a_failed_order_violates_charge_belongs_to_confirmed_order() {
    let books = Books::consistent(Layout::Microservices).await;
    exec(&books.payments, "UPDATE charges SET status = 'approved' WHERE idempotency_key = 'order-2-attempt-1'").await;
    assert_only_violation(&books.check().await, Invariant::ChargeBelongsToConfirmedOrder, "order-2-attempt-1");
}

#[tokio::test]
async fn an_approved_charge_of_an_earlier_attempt_violates_charge_belongs_to_confirmed_order() {
    let books = Books::consistent(Layout::Microservices).await;
    exec(&books.payments, "UPDATE charges SET status = 'approved' WHERE idempotency_key = 'order-4-attempt-1'").await;
    assert_only_violation(&books.check().await, Invariant::ChargeBelongsToConfirmedOrder, "order-4-attempt-1");
}

#[tokio::test]
async fn an_approved_charge_of_no_order_violates_charge_belongs_to_confirmed_order() {
    let books = Books::consistent(Layout::Microservices).await;
    books.charge("order-77-attempt-1", 100, "approved").await;
    assert_only_violation(&books.check().await, Invariant::ChargeBelongsToConfirmedOrder, "order 77");
}

#[tokio::test]
async fn an_approved_charge_under_a_foreign_key_violates_charge_belongs_to_confirmed_order() {
    let books = Books::consistent(Layout::Microservices).await;
    books.charge("order-1", 2000, "approved").await;
    assert_only_violation(&books.check().await, Invariant::ChargeBelongsToConfirmedOrder, "'order-1'");
}

#[tokio::test]
async fn a_committed_reservation_of_a_declined_order_violates_reservation_matches_order() {
    let books = Books::consistent(Layout::Microservices).await;
    // Order 3's reservation is a tombstone without lines, so stock stays conserved.
    exec(&books.inventory, "UPDATE reservations SET status = 'committed' WHERE reservation_key = 'order-3-attempt-1'")
        .await;
    let report = books.check().await;
    assert_only_violation(&report, Invariant::ReservationMatchesOrder, "order-3-attempt-1");
    assert!(report.violations[0].detail.contains("declined"), "{report}");
}

#[tokio::test]
async fn a_committed_reservation_with_other_lines_violates_reservation_matches_order() {
    let books = Books::consistent(Layout::Microservices).await;
    exec(&books.inventory, "UPDATE reservation_lines SET quantity = 3 WHERE reservation_key = 'order-1-attempt-1'")
        .await;
    exec(&books.inventory, "UPDATE stock SET available = 7 WHERE product_id = 1").await;
    assert_only_violation(&books.check().await, Invariant::ReservationMatchesOrder, "order-1-attempt-1");
}

#[tokio::test]
async fn a_held_reservation_of_a_finished_order_violates_reservation_matches_order() {
    let books = Books::consistent(Layout::Microservices).await;
    exec(&books.inventory, "UPDATE reservations SET status = 'held' WHERE reservation_key = 'order-2-attempt-1'").await;
    // The held unit is no longer available: stock stays conserved, only the reservation is wrong.
    exec(&books.inventory, "UPDATE stock SET available = 4 WHERE product_id = 2").await;
    let report = books.check().await;
    assert_only_violation(&report, Invariant::ReservationMatchesOrder, "order-2-attempt-1");
    assert!(report.violations[0].detail.contains("stuck"), "{report}");
}

#[tokio::test]
async fn a_confirmed_order_whose_reservation_was_released_violates_reservation_matches_order() {
    let books = Books::consistent(Layout::Microservices).await;
    exec(&books.inventory, "UPDATE reservations SET status = 'released' WHERE reservation_key = 'order-1-attempt-1'")
        .await;
    exec(&books.inventory, "UPDATE stock SET available = 10 WHERE product_id = 1").await;
    assert_only_violation(&books.check().await, Invariant::ReservationMatchesOrder, "order 1 ");
}

#[tokio::test]
async fn an_unfinished_order_past_its_recovery_deadline_violates_nothing_left_unfinished() {
    let books = Books::consistent(Layout::Microservices).await;
    let an_hour_ago = shop::db::now_millis() - 60 * MINUTE_MS;
    books.order(5, 5, "key-5", "pending", 1, an_hour_ago, None, &[(1, 1, 1000)]).await;
    let report = books.check().await;
    assert_only_violation(&report, Invariant::NothingLeftUnfinished, "order 5 ");
    assert_eq!(report.in_progress, 0);
}

#[tokio::test]
async fn a_checkout_within_its_deadline_is_in_progress_not_a_violation() {
    let books = Books::consistent(Layout::Microservices).await;
    // Mid-checkout: claimed, reserved and charged, not yet confirmed.
    let lease = shop::db::now_millis() + MINUTE_MS;
    books.order(5, 5, "key-5", "pending", 1, lease, None, &[(1, 1, 1000)]).await;
    books.reservation("order-5-attempt-1", "held", &[(1, 1)]).await;
    exec(&books.inventory, "UPDATE stock SET available = 7 WHERE product_id = 1").await;
    books.charge("order-5-attempt-1", 1000, "approved").await;
    let report = books.check().await;
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.in_progress, 1);
    assert!(report.summary().contains("1 still in progress"), "{}", report.summary());
}

#[tokio::test]
async fn an_acknowledged_order_that_failed_violates_acknowledged_order_confirmed() {
    let books = Books::consistent(Layout::Microservices).await;
    let report = books.check_acknowledging(&[1, 2, 4, 4]).await;
    assert_only_violation(&report, Invariant::AcknowledgedOrderConfirmed, "order 2 ");
    assert_eq!(report.acknowledged_checked, 3, "each id once");
}

#[tokio::test]
async fn an_acknowledged_order_that_does_not_exist_violates_acknowledged_order_confirmed() {
    let books = Books::consistent(Layout::Microservices).await;
    assert_only_violation(
        &books.check_acknowledging(&[1, 4, 99]).await,
        Invariant::AcknowledgedOrderConfirmed,
        "order 99 ",
    );
}

#[tokio::test]
async fn two_orders_for_one_key_violate_one_order_per_key() {
    let books = Books::consistent(Layout::Microservices).await;
    // The schema makes (user, key) unique; a copy of the table without the constraint lets a
    // broken shop's state be planted.
    for sql in [
        "CREATE TABLE orders_without_unique AS SELECT * FROM orders",
        "DROP TABLE orders",
        "ALTER TABLE orders_without_unique RENAME TO orders",
    ] {
        exec(&books.orders, sql).await;
    }
    let lease = shop::db::now_millis() - 2 * MINUTE_MS;
    books.order(5, 1, "key-1", "declined", 1, lease, Some(lease), &[(1, 2, 1000)]).await;
    let report = books.check().await;
    assert_only_violation(&report, Invariant::OneOrderPerKey, "'key-1'");
    assert!(report.violations[0].detail.contains("(1, 5)"), "{report}");
}

#[tokio::test]
async fn waiting_for_quiet_ends_at_once_when_nothing_is_in_progress() {
    let books = Books::consistent(Layout::Microservices).await;
    let quiet = wait_for_quiet(&books.deployment, Duration::from_secs(5)).await.expect("the orders can be read");
    assert_eq!(quiet.in_progress, 0);
}

#[tokio::test]
async fn waiting_for_quiet_gives_up_after_three_deadlines_and_says_what_remains() {
    let books = Books::consistent(Layout::Microservices).await;
    // A lease an hour ahead: in progress all along with a 50 ms recovery deadline.
    books.order(5, 5, "key-5", "pending", 1, shop::db::now_millis() + 60 * MINUTE_MS, None, &[]).await;
    let quiet = wait_for_quiet(&books.deployment, Duration::from_millis(50)).await.expect("the orders can be read");
    assert_eq!(quiet.in_progress, 1);
}

fn splitbench_check(dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_splitbench"))
        .args(["check", "--dir"])
        .arg(dir)
        .args(extra)
        .output()
        .expect("splitbench runs")
}

#[tokio::test]
async fn the_check_command_exits_0_on_clean_books_and_4_on_a_violation() {
    let books = Books::consistent(Layout::Microservices).await;
    let acknowledged: PathBuf = books.dir.path().join("acknowledged.txt");
    std::fs::write(&acknowledged, "1\n4\n").expect("written");
    let acknowledged = acknowledged.to_str().expect("a UTF-8 path");

    let clean = splitbench_check(books.dir.path(), &["--acknowledged", acknowledged, "--json"]);
    assert_eq!(clean.status.code(), Some(0), "{}", String::from_utf8_lossy(&clean.stderr));
    let report: ConsistencyReport = serde_json::from_slice(&clean.stdout).expect("the JSON report");
    assert!(report.is_clean());
    assert_eq!(report.acknowledged_checked, 2);

    exec(&books.payments, "UPDATE charges SET status = 'approved' WHERE idempotency_key = 'order-2-attempt-1'").await;
    let violated = splitbench_check(books.dir.path(), &["--acknowledged", acknowledged]);
    assert_eq!(violated.status.code(), Some(4), "{}", String::from_utf8_lossy(&violated.stderr));
    let listing = String::from_utf8_lossy(&violated.stdout);
    assert!(listing.contains("charge_belongs_to_confirmed_order: approved charge order-2-attempt-1"), "{listing}");
}

#[test]
fn the_check_command_fails_with_1_when_a_database_is_missing() {
    let empty = tempfile::tempdir().expect("a temp dir");
    let output = splitbench_check(empty.path(), &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no inventory database"));
}

/// A committed run recorded before consistency checks existed (schema version 1), copied.
fn old_run_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temp dir");
    let committed =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/20261127-product-page-2000/run.json");
    std::fs::copy(committed, dir.path().join("run.json")).expect("the committed run is copied");
    dir
}

fn splitbench_report(dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_splitbench")).arg("report").arg(dir).output().expect("splitbench runs")
}

#[test]
fn a_run_recorded_before_consistency_checks_rebuilds_without_that_section() {
    let dir = old_run_dir();
    let output = splitbench_report(dir.path());
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let report = std::fs::read_to_string(dir.path().join("report.md")).expect("report.md");
    assert!(report.contains("## Head to head") && !report.contains("## Consistency"));
}

#[tokio::test]
async fn a_run_whose_books_are_violated_reports_them_and_exits_4() {
    let books = Books::consistent(Layout::Microservices).await;
    let clean = books.check().await;
    exec(&books.payments, "UPDATE charges SET status = 'approved' WHERE idempotency_key = 'order-2-attempt-1'").await;
    let violated = books.check().await;

    let dir = old_run_dir();
    let path = dir.path().join("run.json");
    let mut run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("run.json")).expect("JSON");
    run["schema_version"] = serde_json::json!(splitbench::report::data::SCHEMA_VERSION);
    for (measurement, report) in [(0, &violated), (1, &clean)] {
        let check = splitbench::report::data::ConsistencyCheck {
            waited_ms: 250,
            report: Some(report.clone()),
            error: None,
            recoveries: Some(2),
        };
        run["measurements"][measurement]["consistency"] = serde_json::to_value(check).expect("serialisable");
    }
    std::fs::write(&path, serde_json::to_string(&run).expect("JSON")).expect("written");

    let output = splitbench_report(dir.path());
    assert_eq!(output.status.code(), Some(4), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("consistency: monolith 1 violation: charge_belongs_to_confirmed_order 1"), "{stdout}");
    assert!(stdout.contains("consistency: microservices clean (4 orders checked)"), "{stdout}");
    let report = std::fs::read_to_string(dir.path().join("report.md")).expect("report.md");
    assert!(report.contains("## Consistency"), "{report}");
    assert!(report.contains("| invariant | monolith | microservices |"), "{report}");
    assert!(report.contains("| `charge_belongs_to_confirmed_order`: "), "{report}");
    assert!(report.contains("| 1 | 0 |"), "{report}");
    assert!(
        report.contains("- monolith, `charge_belongs_to_confirmed_order`: approved charge order-2-attempt-1"),
        "{report}"
    );
}
