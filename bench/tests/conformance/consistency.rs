//! Nothing lost, nothing created: checkouts racing on one key or one product, crashing at any
//! step, or running out of time leave books that the consistency checker finds clean, in both
//! architectures and on both backends. None of these tests judges timing: the shop runs with
//! its default deadlines, concurrent scenarios assert what must hold whatever the interleaving,
//! recovery is made due by ending leases in the database (not by short deadlines), and waits
//! for it are bounded polls.

use std::time::Duration;

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::Value;
use shop::settings::CrashPoint;
use shop::{Database, DatabaseSettings, Schema, Settings};
use splitbench::{Architecture, Backend};

use crate::helpers::{
    DECLINED_CARD, GOOD_CARD, Reply, SCARCE_PRODUCT, TestApp, conformance_with, each_architecture, microservices_only,
    order_body, test_settings,
};

/// The test settings, with a processor slow enough (200 ms) that concurrent requests with one
/// key really overlap the first one's checkout.
fn slow_processor() -> Settings {
    let mut settings = test_settings();
    settings.payments.payment_latency_ms = 200;
    settings
}

fn order_ids(replies: &[Reply]) -> Vec<i64> {
    replies.iter().filter(|r| r.status == 201).filter_map(|r| r.body["id"].as_i64()).collect()
}

async fn same_key_at_once(app: &TestApp, token: &str, key: &str, body: &Value, n: usize) -> Vec<Reply> {
    join_all((0..n).map(|_| app.checkout(Some(token), Some(key), body))).await
}

#[tokio::test]
async fn concurrent_checkouts_with_one_key_and_a_declined_card_change_stock_once() {
    each_architecture(slow_processor(), async |app: &mut TestApp| {
        let token = app.token_of_user(1).await;
        let before = app.stock_of(30).await;
        let replies = same_key_at_once(app, &token, "declined-race", &order_body(&[(30, 5)], DECLINED_CARD), 30).await;
        for reply in &replies {
            assert!(
                matches!((reply.status, reply.code()), (402, "payment_declined") | (409, "request_in_progress")),
                "[{}] {} {:?}",
                app.label(),
                reply.status,
                reply.body
            );
        }
        assert!(replies.iter().any(|r| r.status == 402), "[{}] one of them ran the checkout", app.label());
        assert!(replies.iter().any(|r| r.status == 409), "[{}] the others overlapped it", app.label());
        app.assert_books_settle_clean(&[]).await;
        assert_eq!(app.stock_of(30).await, before, "[{}] stock neither lost nor created", app.label());
        assert_eq!(app.approved_charges().await, (0, 0));
    })
    .await;
}

#[tokio::test]
async fn concurrent_checkouts_with_one_key_place_one_order_and_charge_once() {
    each_architecture(slow_processor(), async |app: &mut TestApp| {
        let token = app.token_of_user(2).await;
        let before = app.stock_of(31).await;
        let body = order_body(&[(31, 2)], GOOD_CARD);
        let replies = same_key_at_once(app, &token, "approved-race", &body, 20).await;
        let placed: Vec<&Reply> = replies.iter().filter(|r| r.status == 201 && !r.replayed).collect();
        assert_eq!(placed.len(), 1, "[{}] exactly one request placed the order: {replies:?}", app.label());
        for reply in &replies {
            let fine = (reply.status == 201 && reply.body["id"] == placed[0].body["id"])
                || (reply.status, reply.code()) == (409, "request_in_progress");
            assert!(fine, "[{}] {} {:?}", app.label(), reply.status, reply.body);
            if reply.status == 409 {
                let retry_after: u64 = reply.retry_after.as_deref().and_then(|v| v.parse().ok()).unwrap_or(0);
                assert!(retry_after >= 1, "[{}] 409 request_in_progress carries Retry-After", app.label());
            }
        }
        assert!(replies.iter().any(|r| r.status == 409), "[{}] the others overlapped it", app.label());
        app.assert_books_settle_clean(&order_ids(&replies)).await;
        assert_eq!(app.stock_of(31).await, before - 2, "[{}]", app.label());
        assert_eq!(app.approved_charges().await.0, 1, "[{}]", app.label());
        let replay = app.checkout(Some(&token), Some("approved-race"), &body).await;
        assert!(replay.replayed && replay.body == placed[0].body, "[{}] {replay:?}", app.label());
    })
    .await;
}

#[tokio::test]
async fn twenty_buyers_of_a_three_unit_product_get_exactly_three_orders() {
    each_architecture(slow_processor(), async |app: &mut TestApp| {
        assert_eq!(app.stock_of(SCARCE_PRODUCT).await, 3);
        let mut tokens = Vec::new();
        for user in 1..=20 {
            tokens.push(app.token_of_user(user).await);
        }
        let body = order_body(&[(SCARCE_PRODUCT, 1)], GOOD_CARD);
        let replies = join_all(tokens.iter().map(|token| app.checkout(Some(token), Some("scarce"), &body))).await;
        let placed = replies.iter().filter(|r| r.status == 201).count();
        let refused = replies.iter().filter(|r| (r.status, r.code()) == (409, "insufficient_stock")).count();
        assert_eq!((placed, refused), (3, 17), "[{}] {replies:?}", app.label());
        app.assert_books_settle_clean(&order_ids(&replies)).await;
        assert_eq!(app.stock_of(SCARCE_PRODUCT).await, 0, "[{}]", app.label());
        assert_eq!(app.approved_charges().await.0, 3, "[{}]", app.label());
    })
    .await;
}

#[tokio::test]
async fn concurrent_releases_and_commits_of_one_reservation_take_effect_once() {
    use shop::inventory::{CommitOutcome, Inventory, LocalInventory, ReleaseOutcome, ReservationLine, ReserveOutcome};
    for backend in Backend::for_tests() {
        let app = TestApp::spawn(Architecture::Microservices, &backend).await;
        let url = app.shop.database_of(Schema::Inventory).expect("an inventory database").to_string();
        // A pool of its own with several connections: on PostgreSQL the calls really overlap.
        let db = Database::connect(&DatabaseSettings { url, pool_size: 8 }, &[]).await.expect("inventory opens");
        let inventory = LocalInventory(db);
        let product = 40;
        let start = inventory.available(product).await.expect("stock").expect("a stock row");
        let mut sold = 0;
        for round in 0..5 {
            let key = format!("race-{round}");
            let lines = [ReservationLine { product_id: product, quantity: 2 }];
            assert_eq!(inventory.reserve(&key, &lines).await.expect("reserves"), ReserveOutcome::Held);
            let releases = join_all((0..8).map(|_| inventory.release(&key)));
            let commits = join_all((0..8).map(|_| inventory.commit(&key)));
            let (releases, commits) = tokio::join!(releases, commits);
            let released = releases.iter().filter(|r| matches!(r, Ok(ReleaseOutcome::Released))).count();
            let committed = commits.iter().filter(|r| matches!(r, Ok(CommitOutcome::Committed))).count();
            assert!(releases.iter().all(Result::is_ok), "[{}] every release answers", backend.name());
            assert!(commits.iter().all(Result::is_ok), "[{}] every commit answers", backend.name());
            assert_eq!(released + committed, 1, "[{}] exactly one call changed the reservation", backend.name());
            sold += 2 * committed as i64;
            // A late reserve of a settled key takes nothing.
            let late = inventory.reserve(&key, &lines).await.expect("answers");
            assert_ne!(late, ReserveOutcome::Short { product_id: product });
            assert_eq!(inventory.available(product).await.expect("stock"), Some(start - sold), "[{}]", backend.name());
        }
        // A release that overtakes its reserve leaves a tombstone: the reserve takes nothing.
        let lines = [ReservationLine { product_id: product, quantity: 1 }];
        assert_eq!(inventory.release("overtaken").await.expect("answers"), ReleaseOutcome::NeverReserved);
        assert_eq!(inventory.reserve("overtaken", &lines).await.expect("answers"), ReserveOutcome::Released);
        assert_eq!(inventory.available(product).await.expect("stock"), Some(start - sold));
        app.shop.stop().await;
    }
}

#[tokio::test]
async fn a_checkout_abandoned_at_any_step_is_settled_by_recovery() {
    for point in [CrashPoint::AfterClaim, CrashPoint::AfterReserve, CrashPoint::AfterCharge, CrashPoint::AfterConfirm] {
        let mut settings = test_settings();
        settings.checkout.crash_at = Some(point);
        each_architecture(settings, async |app: &mut TestApp| {
            let token = app.token_of_user(3).await;
            let before = app.stock_of(32).await;
            let body = order_body(&[(32, 3)], GOOD_CARD);
            let crashed = app.checkout(Some(&token), Some("crash"), &body).await;
            assert_eq!((crashed.status, crashed.code()), (503, "simulated_crash"), "[{}] {point:?}", app.label());
            // The client was told nothing; once the run's lease is over, recovery finishes or
            // compensates what it left.
            app.expire_leases().await;
            app.assert_books_settle_clean(&[]).await;
            if point == CrashPoint::AfterConfirm {
                // Confirmed before the crash: the order stands, and a retry learns of it.
                assert_eq!(app.stock_of(32).await, before - 3, "[{}] {point:?}", app.label());
                assert_eq!(app.approved_charges().await.0, 1, "[{}] {point:?}", app.label());
                let replay = app.checkout(Some(&token), Some("crash"), &body).await;
                assert_eq!((replay.status, replay.replayed), (201, true), "[{}] {point:?} {replay:?}", app.label());
            } else {
                // Compensated: stock back, nothing charged; a retry starts a new attempt (which
                // the crash hook abandons again, and recovery compensates again).
                assert_eq!(app.stock_of(32).await, before, "[{}] {point:?}", app.label());
                assert_eq!(app.approved_charges().await, (0, 0), "[{}] {point:?}", app.label());
                let retry = app.checkout(Some(&token), Some("crash"), &body).await;
                assert_eq!(retry.code(), "simulated_crash", "[{}] {point:?} {retry:?}", app.label());
                app.expire_leases().await;
                app.assert_books_settle_clean(&[]).await;
                assert_eq!(app.stock_of(32).await, before, "[{}] {point:?}", app.label());
            }
        })
        .await;
    }
}

#[tokio::test]
async fn a_restarted_process_recovers_what_its_predecessor_left_at_start_up() {
    let mut settings = test_settings();
    settings.checkout.crash_at = Some(CrashPoint::AfterCharge);
    each_architecture(settings, async |app: &mut TestApp| {
        let token = app.token_of_user(7).await;
        let before = app.stock_of(36).await;
        let crashed = app.checkout(Some(&token), Some("restart"), &order_body(&[(36, 2)], GOOD_CARD)).await;
        assert_eq!(crashed.code(), "simulated_crash", "[{}]", app.label());
        // The process that ran it goes away (its recovery loop with it); its lease ends.
        let process = app.shop.process_hosting(Schema::Orders);
        app.shop.stop_process(&process).await;
        app.expire_leases().await;
        assert_eq!(app.approved_charges().await.0, 1, "[{}] charged, and nobody left to refund it", app.label());
        // Its successor settles it at start-up.
        app.shop.restart_process(&process).await.expect("the process restarts");
        app.assert_books_settle_clean(&[]).await;
        assert_eq!(app.stock_of(36).await, before, "[{}]", app.label());
        assert_eq!(app.approved_charges().await, (0, 0), "[{}] refunded", app.label());
    })
    .await;
}

#[tokio::test]
async fn recovery_running_in_several_processes_at_once_settles_each_order_once() {
    let mut settings = test_settings();
    settings.checkout.crash_at = Some(CrashPoint::AfterCharge);
    let checker_settings = settings.clone();
    each_architecture(settings, async |app: &mut TestApp| {
        let before = app.stock_of(37).await;
        for user in 1..=8 {
            let token = app.token_of_user(user).await;
            let crashed = app.checkout(Some(&token), Some("many"), &order_body(&[(37, 1)], GOOD_CARD)).await;
            assert_eq!(crashed.code(), "simulated_crash", "[{}]", app.label());
        }
        assert_eq!(app.approved_charges().await.0, 8);
        // Three more recoverers (each with its own pool and clients) race the server's own loop.
        let others = [
            app.another_checkout(&checker_settings).await,
            app.another_checkout(&checker_settings).await,
            app.another_checkout(&checker_settings).await,
        ];
        app.expire_leases().await;
        let rounds = join_all(others.iter().map(|other| other.recover())).await;
        let settled_here: usize = rounds.iter().map(|round| round.as_ref().map_or(0, |r| r.settled)).sum();
        assert!(settled_here <= 8, "[{}] no order settled twice: {rounds:?}", app.label());
        app.assert_books_settle_clean(&[]).await;
        assert_eq!(app.stock_of(37).await, before, "[{}]", app.label());
        assert_eq!(app.approved_charges().await, (0, 0), "[{}] every charge refunded once", app.label());
    })
    .await;
}

#[tokio::test]
async fn a_run_that_lost_its_order_changes_nothing() {
    use shop::orders::{OrderStatus, new_runner, repo};
    for backend in Backend::for_tests() {
        let app = TestApp::spawn(Architecture::Monolith, &backend).await;
        let url = app.shop.database_of(Schema::Orders).expect("an orders database").to_string();
        let db = Database::connect(&DatabaseSettings { url, pool_size: 2 }, &[]).await.expect("orders opens");
        let mut conn = db.pool.acquire().await.expect("a connection");
        let stale_runner = new_runner();
        let mut stale = repo::insert_new(&mut conn, 1, "lost", "fp", &[], 100, &stale_runner, 0)
            .await
            .expect("inserts")
            .expect("a new order");
        let mut winner = stale.clone();
        assert!(repo::take_over(&mut conn, &mut winner, &new_runner(), i64::MAX / 2).await.expect("answers"));
        // A second takeover from the same stale view loses the compare-and-set.
        let mut late = stale.clone();
        assert!(!repo::take_over(&mut conn, &mut late, &new_runner(), i64::MAX / 2).await.expect("answers"));
        // Every write of the stale run is fenced off.
        assert!(!repo::set_status(&mut conn, &mut stale, OrderStatus::Confirmed, true).await.expect("answers"));
        assert!(!repo::restart(&mut conn, &mut stale).await.expect("answers"));
        assert!(!repo::end_lease(&mut conn, &mut stale).await.expect("answers"));
        // The winner's are not.
        assert!(repo::set_status(&mut conn, &mut winner, OrderStatus::Failed, true).await.expect("answers"));
        let stored = repo::find(&mut conn, 1, "lost").await.expect("answers").expect("the order");
        assert_eq!((stored.status, stored.finished, stored.runner), (OrderStatus::Failed, true, winner.runner));
        drop(conn);
        app.shop.stop().await;
    }
}

#[tokio::test]
async fn a_charge_racing_its_void_never_stays_approved() {
    use shop::payments::{ChargeRequest, ChargeStatus, LocalPayments, Payments};
    for backend in Backend::for_tests() {
        let app = TestApp::spawn(Architecture::Microservices, &backend).await;
        let url = app.shop.database_of(Schema::Payments).expect("a payments database").to_string();
        let db = Database::connect(&DatabaseSettings { url, pool_size: 8 }, &[]).await.expect("payments opens");
        // A few milliseconds of processor time, so the void can land before, during or after.
        let payments = LocalPayments { db, latency: Duration::from_millis(5) };
        for round in 0..10 {
            let request = ChargeRequest {
                idempotency_key: format!("race-{round}"),
                amount_cents: 500,
                card_number: GOOD_CARD.into(),
            };
            let delay = Duration::from_millis(round % 4 * 2);
            let void = async {
                tokio::time::sleep(delay).await;
                payments.refund(&request.idempotency_key).await
            };
            let (charged, voided) = tokio::join!(payments.charge(&request), void);
            let charged = charged.expect("the charge answers").status;
            let after_void = voided.expect("the void answers");
            assert!(
                matches!(after_void, ChargeStatus::Refunded | ChargeStatus::Voided),
                "[{}] round {round}: {after_void:?}",
                backend.name()
            );
            // The charge reports whatever its key holds once it is decided: approved (the void
            // comes after and refunds it), refunded (the void got in between), or voided.
            assert_ne!(charged, ChargeStatus::Declined, "[{}] round {round}", backend.name());
        }
        assert_eq!(app.approved_charges().await, (0, 0), "[{}] no charge survived its void", backend.name());
        app.shop.stop().await;
    }
}

#[tokio::test]
async fn a_reserve_racing_its_release_never_keeps_stock() {
    use shop::inventory::{Inventory, LocalInventory, ReservationLine};
    for backend in Backend::for_tests() {
        let app = TestApp::spawn(Architecture::Microservices, &backend).await;
        let url = app.shop.database_of(Schema::Inventory).expect("an inventory database").to_string();
        let db = Database::connect(&DatabaseSettings { url, pool_size: 8 }, &[]).await.expect("inventory opens");
        let inventory = LocalInventory(db);
        let product = 41;
        let start = inventory.available(product).await.expect("stock").expect("a stock row");
        for round in 0..10 {
            let key = format!("overtake-{round}");
            let lines = [ReservationLine { product_id: product, quantity: 3 }];
            let (reserved, released) = tokio::join!(inventory.reserve(&key, &lines), inventory.release(&key));
            reserved.expect("the reserve answers");
            released.expect("the release answers");
            // Whichever came first, the stock is back (released, or never taken).
            assert_eq!(
                inventory.available(product).await.expect("stock"),
                Some(start),
                "[{}] round {round}",
                backend.name()
            );
        }
        app.shop.stop().await;
    }
}

#[tokio::test]
async fn a_retry_while_the_checkout_is_in_progress_gets_409_with_retry_after() {
    // The first run is abandoned after reserving and holds the order for its whole lease (60 s).
    let mut settings = test_settings();
    settings.checkout.recovery_deadline_ms = 60_000;
    settings.checkout.crash_at = Some(CrashPoint::AfterReserve);
    conformance_with(settings, async |app: &TestApp| {
        let token = app.token_of_user(4).await;
        let body = order_body(&[(33, 1)], GOOD_CARD);
        let crashed = app.checkout(Some(&token), Some("busy"), &body).await;
        assert_eq!((crashed.status, crashed.code()), (503, "simulated_crash"));
        let busy = app.checkout(Some(&token), Some("busy"), &body).await;
        assert_eq!((busy.status, busy.code()), (409, "request_in_progress"), "{:?}", busy.body);
        let retry_after: u64 = busy.retry_after.as_deref().and_then(|v| v.parse().ok()).expect("Retry-After");
        assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
        // Another body under the busy key is still the client's mistake.
        let other = app.checkout(Some(&token), Some("busy"), &order_body(&[(33, 2)], GOOD_CARD)).await;
        assert_eq!((other.status, other.code()), (422, "idempotency_key_reused"));
    })
    .await;
}

#[tokio::test]
async fn a_checkout_past_its_deadline_is_compensated_and_a_retry_completes_it() {
    // The processor takes 1 s; the client allows 600 ms for the whole request: ample for the
    // claim and the reservation (even in a debug build on a busy machine), never for the charge.
    let mut settings = test_settings();
    settings.payments.payment_latency_ms = 1000;
    each_architecture(settings, async |app: &mut TestApp| {
        let token = app.token_of_user(5).await;
        let before = app.stock_of(34).await;
        let body = order_body(&[(34, 2)], GOOD_CARD);
        // The client's deadline, as an absolute time: 600 ms from now.
        let deadline = (shop::db::now_millis() + 600).to_string();
        let late =
            app.checkout_with(Some(&token), Some("late"), &[(shop::deadline::DEADLINE_HEADER, &deadline)], &body).await;
        assert_eq!((late.status, late.code()), (504, "deadline_exceeded"), "[{}] {:?}", app.label(), late.body);
        // The order was claimed and its stock reserved before time ran out: there was
        // something to compensate.
        assert_eq!(app.orders_in_database().await, 1, "[{}]", app.label());
        app.assert_books_settle_clean(&[]).await;
        assert_eq!(app.stock_of(34).await, before, "[{}] the reservation was released", app.label());
        assert_eq!(app.approved_charges().await, (0, 0), "[{}] nothing charged", app.label());
        // With time enough, the same key completes the order (a new attempt), charged once.
        let retried = app.checkout(Some(&token), Some("late"), &body).await;
        assert_eq!(retried.status, 201, "[{}] {:?}", app.label(), retried.body);
        app.assert_books_settle_clean(&order_ids(std::slice::from_ref(&retried))).await;
        assert_eq!(app.stock_of(34).await, before - 2, "[{}]", app.label());
        assert_eq!(app.approved_charges().await.0, 1, "[{}]", app.label());
    })
    .await;
}

#[tokio::test]
async fn a_replay_is_answered_with_every_other_service_down() {
    microservices_only(async |app: &mut TestApp| {
        let token = app.token_of_user(6).await;
        let body = order_body(&[(35, 1)], GOOD_CARD);
        let placed = app.checkout(Some(&token), Some("replay-me"), &body).await;
        assert_eq!(placed.status, 201);
        let declined_body = order_body(&[(35, 1)], DECLINED_CARD);
        let declined = app.checkout(Some(&token), Some("declined"), &declined_body).await;
        assert_eq!(declined.status, 402);
        for service in ["catalog", "inventory", "payments"] {
            app.shop.stop_process(service).await;
        }
        let replay = app.checkout(Some(&token), Some("replay-me"), &body).await;
        assert_eq!((replay.status, replay.replayed), (201, true), "{:?}", replay.body);
        assert_eq!(replay.body, placed.body);
        let replay = app.checkout(Some(&token), Some("declined"), &declined_body).await;
        assert_eq!((replay.status, replay.code()), (402, "payment_declined"));
        // A new order does need the catalog.
        let new = app.checkout(Some(&token), Some("new"), &body).await;
        assert_eq!(new.status, StatusCode::SERVICE_UNAVAILABLE.as_u16(), "{:?}", new.body);
    })
    .await;
}
