//! `splitbench check`: the shop's books, audited from its databases.
//!
//! A benchmark that found a fast shop which oversold, charged twice or lost orders would have
//! measured the wrong thing. So once the system is quiet, [`check`] reads the tables that record
//! stock and money directly from the databases (SQLite files or PostgreSQL, through sqlx `Any`
//! as the shop does) and verifies that they agree with each other and with what the client
//! was told. Each [`Invariant`] and why it must hold:
//!
//! 1. `stock_non_negative`: no product has less than nothing available (oversold).
//! 2. `stock_conserved`: no restocking exists, so every unit a product started with is still
//!    available, held by a reservation or committed to an order:
//!    `initial = available + held + committed`. Anything else created or lost stock.
//! 3. `confirmed_order_paid`: a confirmed order has an approved charge for its total under the
//!    key of its current attempt.
//! 4. `charge_belongs_to_confirmed_order`: an approved charge belongs to an order confirmed on
//!    that attempt; with 3, every confirmed order is paid exactly once and nobody pays for
//!    nothing. A charge of an order still being worked on (unfinished, same attempt) is in
//!    progress, not a violation.
//! 5. `reservation_matches_order`: a committed reservation belongs to an order confirmed on that
//!    attempt and holds that order's lines; a confirmed, finished order has its reservation
//!    committed; a held reservation belongs to an unfinished order on that attempt (otherwise
//!    its stock is stuck).
//! 6. `nothing_left_unfinished`: an order whose current attempt started more than two recovery
//!    deadlines ago is finished (one deadline is its run's lease; recovery acts within a fifth
//!    of one after it). Younger unfinished orders are counted as
//!    [`ConsistencyReport::in_progress`].
//! 7. `acknowledged_order_confirmed`: every order the client was told is confirmed (a 201) is.
//! 8. `one_order_per_key`: a (user, idempotency key) has at most one order.
//!
//! Reservations and charges of attempt `n` of order `i` are keyed `order-{i}-attempt-{n}`
//! ([`attempt_key`]); a key of another shape is a violation of the invariant it appears in.
//! The monolith keeps every table in one database, the microservices split them over the
//! inventory, payments and orders databases: both are a [`Deployment`]. The harness waits for
//! quiet ([`wait_for_quiet`]) and checks each system it measured before stopping it;
//! `splitbench check` does it by hand.

mod books;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::launch::SystemUnderTest;
use crate::topology::RunningShop;
use books::{Books, Lines, Order};

/// Where the books are: a database URL for each part (for the monolith, the same URL thrice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub inventory: String,
    pub payments: String,
    pub orders: String,
}

impl Deployment {
    /// Every table in one database, as the monolith keeps them.
    pub fn monolith(url: impl Into<String>) -> Self {
        let url = url.into();
        Self { inventory: url.clone(), payments: url.clone(), orders: url }
    }

    /// The databases of an architecture started in this process (`None` for the null server).
    pub fn of_running_shop(shop: &RunningShop) -> Option<Self> {
        Some(Self {
            inventory: shop.database_of(shop::Schema::Inventory)?.to_string(),
            payments: shop.database_of(shop::Schema::Payments)?.to_string(),
            orders: shop.database_of(shop::Schema::Orders)?.to_string(),
        })
    }

    /// The databases of an architecture the launcher started as processes.
    pub fn of_system_under_test(sut: &SystemUnderTest) -> Option<Self> {
        Some(Self {
            inventory: sut.database_of(shop::Schema::Inventory)?.to_string(),
            payments: sut.database_of(shop::Schema::Payments)?.to_string(),
            orders: sut.database_of(shop::Schema::Orders)?.to_string(),
        })
    }

    /// The SQLite database holding `part` (`inventory`, `payments` or `orders`) in `dir`:
    /// `monolith.db` if there is one, else `<part>.db`.
    pub fn sqlite_file_in(dir: &Path, part: &str) -> Option<String> {
        [dir.join("monolith.db"), dir.join(format!("{part}.db"))]
            .into_iter()
            .find(|file| file.is_file())
            .map(|file| format!("sqlite:{}", file.display()))
    }
}

/// What to check against.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// How long after its lease ends recovery may take to finish an order; the shop's
    /// `--recovery-deadline-ms`.
    pub recovery_deadline: Duration,
    /// Ids of the orders the client was told are confirmed (201 to `POST /api/orders`).
    pub acknowledged_orders: Vec<i64>,
}

/// The invariants of the books; see the module documentation for what each means and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Invariant {
    StockNonNegative,
    StockConserved,
    ConfirmedOrderPaid,
    ChargeBelongsToConfirmedOrder,
    ReservationMatchesOrder,
    NothingLeftUnfinished,
    AcknowledgedOrderConfirmed,
    OneOrderPerKey,
}

impl Invariant {
    pub const ALL: [Invariant; 8] = [
        Self::StockNonNegative,
        Self::StockConserved,
        Self::ConfirmedOrderPaid,
        Self::ChargeBelongsToConfirmedOrder,
        Self::ReservationMatchesOrder,
        Self::NothingLeftUnfinished,
        Self::AcknowledgedOrderConfirmed,
        Self::OneOrderPerKey,
    ];

    /// The snake_case name used in output, reports and run.json.
    pub fn name(self) -> &'static str {
        match self {
            Self::StockNonNegative => "stock_non_negative",
            Self::StockConserved => "stock_conserved",
            Self::ConfirmedOrderPaid => "confirmed_order_paid",
            Self::ChargeBelongsToConfirmedOrder => "charge_belongs_to_confirmed_order",
            Self::ReservationMatchesOrder => "reservation_matches_order",
            Self::NothingLeftUnfinished => "nothing_left_unfinished",
            Self::AcknowledgedOrderConfirmed => "acknowledged_order_confirmed",
            Self::OneOrderPerKey => "one_order_per_key",
        }
    }

    /// One line for reports.
    pub fn meaning(self) -> &'static str {
        match self {
            Self::StockNonNegative => "no product's available stock is below zero",
            Self::StockConserved => "per product, initial = available + held + committed",
            Self::ConfirmedOrderPaid => "a confirmed order has an approved charge of its total for its attempt",
            Self::ChargeBelongsToConfirmedOrder => "an approved charge belongs to an order confirmed on that attempt",
            Self::ReservationMatchesOrder => {
                "committed reservations match confirmed orders' lines; held ones belong to unfinished orders"
            }
            Self::NothingLeftUnfinished => "no order unfinished two recovery deadlines after its attempt started",
            Self::AcknowledgedOrderConfirmed => "every order the client was told is confirmed (201) is",
            Self::OneOrderPerKey => "at most one order per (user, idempotency key)",
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One broken invariant; `detail` names the ids involved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub invariant: Invariant,
    pub detail: String,
}

/// What the checker found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyReport {
    /// Violations per invariant; every invariant is listed, 0 included.
    pub counts: BTreeMap<Invariant, usize>,
    /// Every violation, ordered by invariant. (The harness stores at most
    /// [`ConsistencyReport::STORED_VIOLATIONS`] in run.json; `counts` stay complete.)
    pub violations: Vec<Violation>,
    /// Unfinished orders whose attempt started within two recovery deadlines: not violations,
    /// but the books were not quiet.
    pub in_progress: usize,
    pub orders_checked: usize,
    pub charges_checked: usize,
    pub reservations_checked: usize,
    pub products_checked: usize,
    /// Distinct acknowledged order ids checked.
    pub acknowledged_checked: usize,
}

impl ConsistencyReport {
    /// How many violations the harness keeps in run.json.
    pub const STORED_VIOLATIONS: usize = 200;

    fn empty() -> Self {
        Self {
            counts: Invariant::ALL.iter().map(|i| (*i, 0)).collect(),
            violations: Vec::new(),
            in_progress: 0,
            orders_checked: 0,
            charges_checked: 0,
            reservations_checked: 0,
            products_checked: 0,
            acknowledged_checked: 0,
        }
    }

    fn violation(&mut self, invariant: Invariant, detail: String) {
        *self.counts.entry(invariant).or_default() += 1;
        self.violations.push(Violation { invariant, detail });
    }

    pub fn is_clean(&self) -> bool {
        self.total_violations() == 0
    }

    /// Adds another system's findings to these (the sweep checks each step's system).
    pub fn absorb(&mut self, other: &ConsistencyReport) {
        for (invariant, n) in &other.counts {
            *self.counts.entry(*invariant).or_default() += n;
        }
        self.violations.extend(other.violations.iter().cloned());
        self.violations.sort_by_key(|v| v.invariant);
        self.in_progress += other.in_progress;
        self.orders_checked += other.orders_checked;
        self.charges_checked += other.charges_checked;
        self.reservations_checked += other.reservations_checked;
        self.products_checked += other.products_checked;
        self.acknowledged_checked += other.acknowledged_checked;
    }

    pub fn total_violations(&self) -> usize {
        self.counts.values().sum()
    }

    /// Violations of one invariant.
    pub fn count(&self, invariant: Invariant) -> usize {
        self.counts.get(&invariant).copied().unwrap_or(0)
    }

    /// One line: `clean (1,234 orders checked)` or the counts of the broken invariants.
    pub fn summary(&self) -> String {
        let checked = format!("{} orders checked", thousands(self.orders_checked));
        let in_progress = match self.in_progress {
            0 => String::new(),
            n => format!(", {} still in progress", thousands(n)),
        };
        if self.is_clean() {
            return format!("clean ({checked}{in_progress})");
        }
        let broken: Vec<String> =
            self.counts.iter().filter(|(_, n)| **n > 0).map(|(i, n)| format!("{i} {}", thousands(*n))).collect();
        let total = self.total_violations();
        let noun = if total == 1 { "violation" } else { "violations" };
        format!("{} {noun}: {} ({checked}{in_progress})", thousands(total), broken.join(", "))
    }
}

/// The human listing: counts per invariant, then every violation.
impl fmt::Display for ConsistencyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "consistency: {}", self.summary())?;
        writeln!(
            f,
            "checked {} orders, {} charges, {} reservations, {} products, {} acknowledged orders",
            thousands(self.orders_checked),
            thousands(self.charges_checked),
            thousands(self.reservations_checked),
            thousands(self.products_checked),
            thousands(self.acknowledged_checked)
        )?;
        for invariant in Invariant::ALL {
            writeln!(f, "  {:<36} {:>6}", invariant.name(), self.count(invariant))?;
        }
        if !self.violations.is_empty() {
            writeln!(f, "violations:")?;
            for v in &self.violations {
                writeln!(f, "  {}: {}", v.invariant, v.detail)?;
            }
        }
        let unlisted = self.total_violations().saturating_sub(self.violations.len());
        if unlisted > 0 {
            writeln!(f, "  ... and {} more (not stored)", thousands(unlisted))?;
        }
        Ok(())
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The key of attempt `attempt` of order `order_id`, for both its reservation and its charge:
/// the shop's own function, so the checker reads keys exactly as checkouts write them.
pub use shop::orders::attempt_key;

/// `order-{id}-attempt-{n}` -> `(id, n)`, both positive; `None` for any other shape (signs,
/// leading zeros and spaces included: the key must be exactly what [`attempt_key`] makes).
pub fn parse_attempt_key(key: &str) -> Option<(i64, i64)> {
    let (id, attempt) = key.strip_prefix("order-")?.split_once("-attempt-")?;
    let (id, attempt) = (id.parse().ok()?, attempt.parse().ok()?);
    (id > 0 && attempt > 0 && attempt_key(id, attempt) == key).then_some((id, attempt))
}

/// Reads the books of `deployment` and checks every invariant.
pub async fn check(deployment: &Deployment, options: &CheckOptions) -> anyhow::Result<ConsistencyReport> {
    let books = books::read(deployment).await?;
    Ok(audit(&books, options, shop::db::now_millis()))
}

/// How a wait for quiet ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quiet {
    pub waited: Duration,
    /// Orders still in progress when the wait ended (0 unless it gave up).
    pub in_progress: usize,
}

/// How often [`wait_for_quiet`] looks.
pub const QUIET_POLL: Duration = Duration::from_millis(250);

/// Waits until no order is unfinished (checkouts done, recovery through its backlog), looking
/// every [`QUIET_POLL`], for at most three recovery deadlines: a run's lease is one, recovery
/// acts within a fifth of one after it, and an attempt still unfinished two deadlines after it
/// started counts as a violation anyway.
pub async fn wait_for_quiet(deployment: &Deployment, recovery_deadline: Duration) -> anyhow::Result<Quiet> {
    let started = Instant::now();
    let mut connection = books::open(&deployment.orders).await?;
    loop {
        let in_progress = books::count_unfinished(&mut connection).await?;
        let waited = started.elapsed();
        if in_progress == 0 || waited >= recovery_deadline * 3 {
            return Ok(Quiet { waited, in_progress });
        }
        tokio::time::sleep(QUIET_POLL).await;
    }
}

fn lines_text(lines: &Lines) -> String {
    if lines.is_empty() {
        return "no lines".into();
    }
    let items: Vec<String> =
        lines.iter().map(|(product, quantity)| format!("{quantity} × product {product}")).collect();
    items.join(", ")
}

fn order_state(order: &Order) -> String {
    let finished = if order.finished_at.is_some() { "finished" } else { "unfinished" };
    format!("{} on attempt {}, {finished}", order.status, order.attempt)
}

/// Checks every invariant against books read at `now_ms`.
fn audit(books: &Books, options: &CheckOptions, now_ms: i64) -> ConsistencyReport {
    let mut report = ConsistencyReport::empty();
    report.orders_checked = books.orders.len();
    report.charges_checked = books.charges.len();
    report.reservations_checked = books.reservations.len();
    report.products_checked = books.stock.len();
    let orders: HashMap<i64, &Order> = books.orders.iter().map(|o| (o.id, o)).collect();

    check_stock(books, &mut report);
    check_charges(books, &orders, &mut report);
    check_reservations(books, &orders, &mut report);
    check_completion(books, options.recovery_deadline, now_ms, &mut report);
    check_client_view(books, &orders, &options.acknowledged_orders, &mut report);

    // Grouped by invariant, in the order each check found them.
    report.violations.sort_by_key(|v| v.invariant);
    report
}

/// 1 and 2: no negative stock; every unit accounted for.
fn check_stock(books: &Books, report: &mut ConsistencyReport) {
    // Units held and committed per product, by reservation status.
    let mut reserved: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for reservation in &books.reservations {
        for (product, quantity) in &reservation.lines {
            let entry = reserved.entry(*product).or_default();
            match reservation.status.as_str() {
                "held" => entry.0 += quantity,
                "committed" => entry.1 += quantity,
                _ => {}
            }
        }
    }
    for stock in &books.stock {
        if stock.available < 0 {
            report.violation(
                Invariant::StockNonNegative,
                format!("product {}: {} available", stock.product_id, stock.available),
            );
        }
        let (held, committed) = reserved.remove(&stock.product_id).unwrap_or_default();
        if stock.initial != stock.available + held + committed {
            report.violation(
                Invariant::StockConserved,
                format!(
                    "product {}: initial {} != available {} + held {held} + committed {committed}",
                    stock.product_id, stock.initial, stock.available
                ),
            );
        }
    }
    // Whatever is left was reserved from a product that has no stock at all.
    for (product, (held, committed)) in reserved.into_iter().filter(|(_, (h, c))| *h != 0 || *c != 0) {
        report.violation(
            Invariant::StockConserved,
            format!("product {product}: {held} held and {committed} committed, but it has no stock row"),
        );
    }
}

/// 3 and 4: confirmed orders are paid, approved charges belong to confirmed orders.
fn check_charges(books: &Books, orders: &HashMap<i64, &Order>, report: &mut ConsistencyReport) {
    let charges: HashMap<&str, &books::Charge> = books.charges.iter().map(|c| (c.key.as_str(), c)).collect();
    for order in books.orders.iter().filter(|o| o.status == "confirmed") {
        let key = attempt_key(order.id, order.attempt);
        let problem = match charges.get(key.as_str()) {
            None => format!("order {} is confirmed but has no charge {key}", order.id),
            Some(charge) if charge.status != "approved" => {
                format!("order {} is confirmed but its charge {key} is {}", order.id, charge.status)
            }
            Some(charge) if charge.amount_cents != order.total_cents => format!(
                "order {} is confirmed for {} cents but its charge {key} is for {} cents",
                order.id, order.total_cents, charge.amount_cents
            ),
            Some(_) => continue,
        };
        report.violation(Invariant::ConfirmedOrderPaid, problem);
    }
    for charge in books.charges.iter().filter(|c| c.status == "approved") {
        let key = &charge.key;
        let Some((order_id, attempt)) = parse_attempt_key(key) else {
            report.violation(
                Invariant::ChargeBelongsToConfirmedOrder,
                format!("approved charge '{key}' ({} cents) is not keyed order-<id>-attempt-<n>", charge.amount_cents),
            );
            continue;
        };
        let problem = match orders.get(&order_id) {
            None => format!("approved charge {key} ({} cents): there is no order {order_id}", charge.amount_cents),
            // Confirmed on this attempt: its order's charge. Unfinished on this attempt: a
            // checkout (or recovery) still at work, which will confirm or refund.
            Some(order) if order.attempt == attempt && (order.status == "confirmed" || order.finished_at.is_none()) => {
                continue;
            }
            Some(order) => format!(
                "approved charge {key} ({} cents) belongs to order {order_id}, which is {}",
                charge.amount_cents,
                order_state(order)
            ),
        };
        report.violation(Invariant::ChargeBelongsToConfirmedOrder, problem);
    }
}

/// 5: reservations and orders agree.
fn check_reservations(books: &Books, orders: &HashMap<i64, &Order>, report: &mut ConsistencyReport) {
    for reservation in &books.reservations {
        let (key, status) = (&reservation.key, reservation.status.as_str());
        if !matches!(status, "held" | "committed") {
            if status != "released" {
                report.violation(
                    Invariant::ReservationMatchesOrder,
                    format!("reservation {key} has an unknown status '{status}'"),
                );
            }
            // Released stock is back in `available`: nothing to match.
            continue;
        }
        let Some((order_id, attempt)) = parse_attempt_key(key) else {
            report.violation(
                Invariant::ReservationMatchesOrder,
                format!("{status} reservation '{key}' is not keyed order-<id>-attempt-<n>"),
            );
            continue;
        };
        let Some(order) = orders.get(&order_id) else {
            report.violation(
                Invariant::ReservationMatchesOrder,
                format!(
                    "{status} reservation {key} ({}): there is no order {order_id}",
                    lines_text(&reservation.lines)
                ),
            );
            continue;
        };
        let problem = if status == "held" {
            if order.finished_at.is_none() && order.attempt == attempt {
                continue;
            }
            format!(
                "held reservation {key} ({}) belongs to order {order_id}, which is {}: its stock is stuck",
                lines_text(&reservation.lines),
                order_state(order)
            )
        } else if order.status != "confirmed" || order.attempt != attempt {
            format!("committed reservation {key} belongs to order {order_id}, which is {}", order_state(order))
        } else if reservation.lines != order.lines {
            format!(
                "committed reservation {key} holds {} but order {order_id} has {}",
                lines_text(&reservation.lines),
                lines_text(&order.lines)
            )
        } else {
            continue;
        };
        report.violation(Invariant::ReservationMatchesOrder, problem);
    }
    let reservations: HashMap<&str, &books::Reservation> =
        books.reservations.iter().map(|r| (r.key.as_str(), r)).collect();
    for order in books.orders.iter().filter(|o| o.status == "confirmed" && o.finished_at.is_some()) {
        let key = attempt_key(order.id, order.attempt);
        let state = match reservations.get(key.as_str()) {
            Some(r) if r.status == "committed" => continue,
            Some(r) => r.status.clone(),
            None => "missing".into(),
        };
        report.violation(
            Invariant::ReservationMatchesOrder,
            format!("order {} is confirmed and finished but its reservation {key} is {state}", order.id),
        );
    }
}

/// 6: nothing left unfinished for long. A run holds its attempt for one recovery deadline (its
/// lease), and recovery settles it within a fifth of one after that, however often it is taken
/// over (a takeover renews the lease but not the attempt's start): an attempt unfinished two
/// recovery deadlines after it started is stuck. Younger unfinished orders are in progress.
fn check_completion(books: &Books, recovery_deadline: Duration, now_ms: i64, report: &mut ConsistencyReport) {
    let deadline_ms = i64::try_from(recovery_deadline.as_millis()).unwrap_or(i64::MAX / 4);
    for order in books.orders.iter().filter(|o| o.finished_at.is_none()) {
        let age_ms = now_ms.saturating_sub(order.attempt_started_at);
        if age_ms > 2 * deadline_ms {
            report.violation(
                Invariant::NothingLeftUnfinished,
                format!(
                    "order {} ({} on attempt {}) is unfinished {:.1} s after its attempt started (allowed: two recovery deadlines, {:.1} s)",
                    order.id,
                    order.status,
                    order.attempt,
                    age_ms as f64 / 1000.0,
                    2.0 * deadline_ms as f64 / 1000.0
                ),
            );
        } else {
            report.in_progress += 1;
        }
    }
}

/// 7 and 8: what the client was told holds; one order per idempotency key.
fn check_client_view(
    books: &Books,
    orders: &HashMap<i64, &Order>,
    acknowledged: &[i64],
    report: &mut ConsistencyReport,
) {
    let acknowledged: BTreeSet<i64> = acknowledged.iter().copied().collect();
    report.acknowledged_checked = acknowledged.len();
    for id in acknowledged {
        let problem = match orders.get(&id) {
            Some(order) if order.status == "confirmed" => continue,
            Some(order) => format!("order {id} was acknowledged as confirmed (201) but is {}", order_state(order)),
            None => format!("order {id} was acknowledged as confirmed (201) but does not exist"),
        };
        report.violation(Invariant::AcknowledgedOrderConfirmed, problem);
    }
    let mut by_key: BTreeMap<(i64, &str), Vec<i64>> = BTreeMap::new();
    for order in &books.orders {
        by_key.entry((order.user_id, order.idempotency_key.as_str())).or_default().push(order.id);
    }
    for ((user_id, key), ids) in by_key.into_iter().filter(|(_, ids)| ids.len() > 1) {
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        report.violation(
            Invariant::OneOrderPerKey,
            format!("user {user_id}, idempotency key '{key}': {} orders ({})", ids.len(), ids.join(", ")),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempt_keys_parse_only_in_their_exact_shape() {
        assert_eq!(parse_attempt_key("order-12-attempt-3"), Some((12, 3)));
        assert_eq!(parse_attempt_key(&attempt_key(7, 1)), Some((7, 1)));
        for bad in [
            "order-12",
            "order-12-attempt-",
            "order--attempt-1",
            "order-x-attempt-1",
            "order-12-attempt-1x",
            "order-012-attempt-1",
            "order-+12-attempt-1",
            "order-12-attempt-+1",
            "order--5-attempt-1",
            "order-5-attempt-0",
            "Order-12-attempt-1",
            "order-12-attempt-1 ",
            "order-1-attempt-2-attempt-3",
            "",
        ] {
            assert_eq!(parse_attempt_key(bad), None, "{bad:?} is not an attempt key");
        }
    }

    #[test]
    fn counts_are_grouped_with_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234), "1,234");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    fn order(id: i64, status: &str, attempt: i64, finished: bool) -> Order {
        Order {
            id,
            user_id: 1,
            idempotency_key: format!("key-{id}"),
            status: status.into(),
            attempt,
            total_cents: 100,
            attempt_started_at: 0,
            finished_at: finished.then_some(1_000),
            lines: Lines::from([(1, 1)]),
        }
    }

    #[test]
    fn an_approved_charge_is_in_progress_only_while_its_attempt_is_unfinished() {
        let charge = |key: &str| books::Charge { key: key.into(), amount_cents: 100, status: "approved".into() };
        let books = Books {
            orders: vec![order(1, "pending", 2, false), order(2, "failed", 1, true)],
            charges: vec![charge("order-1-attempt-2"), charge("order-1-attempt-1"), charge("order-2-attempt-1")],
            ..Books::default()
        };
        let options = CheckOptions { recovery_deadline: Duration::from_secs(5), acknowledged_orders: vec![] };
        let report = audit(&books, &options, 2_000);
        assert_eq!(report.count(Invariant::ChargeBelongsToConfirmedOrder), 2, "{report}");
        assert!(report.violations[0].detail.contains("order-1-attempt-1"));
        assert!(report.violations[1].detail.contains("order-2-attempt-1"));
        assert_eq!(report.in_progress, 1);
    }
}
