//! What the load generator counts, end to end: a degraded page is degraded and not ok, a
//! timed-out or overflowed request keeps its place in the all-requests latency, and the seeds
//! of a repetition are shared by both architectures and new in every repetition. None asserts
//! on how fast anything was, only on where each request was counted.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use splitbench::drive::{
    self, AcknowledgedOrders, Arrivals, LoadClient, Mix, OpenLoop, RepetitionSeeds, Scale, Window,
};
use splitbench::record::Recorder;

use crate::stand_ins::run_against_stand_ins;
use splitbench::{Architecture, Backend, RunningShop};

/// One second of `mix` at 20 requests/s (constant arrivals: exactly 20 due), no warm-up.
async fn one_second_of(base_url: &str, mix: &str, scale: Scale, timeout: Duration, max_in_flight: usize) -> Recorder {
    let window = Window { warmup: Duration::ZERO, duration: Duration::from_secs(1) };
    let workload = drive::Workload::new(&Mix::parse(mix).expect("a mix"), scale, Vec::new(), 1).expect("a workload");
    let client = LoadClient::new(base_url, timeout).expect("a client");
    let pace = OpenLoop::new(20.0, Arrivals::Constant, Some(max_in_flight));
    let recorder = Arc::new(Mutex::new(Recorder::new(window.warmup)));
    drive::run_open_loop(client, workload, pace, window, 1, recorder, AcknowledgedOrders::default())
        .await
        .expect("the load runs")
}

#[tokio::test]
async fn product_pages_missing_a_part_are_recorded_as_degraded_not_ok() {
    let mut settings = shop::Settings::defaults();
    settings.seed.products = 200;
    settings.seed.users = 10;
    settings.server.log_level = std::env::var("TEST_LOG").map(|_| "info".into()).unwrap_or_else(|_| "off".into());
    let shop =
        RunningShop::start(Architecture::Microservices, &Backend::Sqlite, &settings).await.expect("the shop starts");
    let scale = Scale { products: 200, categories: i64::from(settings.seed.categories) };
    let timeout = Duration::from_secs(10);

    let whole = one_second_of(&shop.base_url, "product-page", scale, timeout, 64).await;
    assert_eq!((whole.due(), whole.ok(), whole.degraded(), whole.failed()), (20, 20, 0, 0));

    // Without the reviews service, the gateway still answers 200, listing "reviews" in `degraded`.
    shop.stop_process("reviews").await;
    let partial = one_second_of(&shop.base_url, "product-page", scale, timeout, 64).await;
    assert_eq!((partial.due(), partial.ok(), partial.degraded(), partial.failed()), (20, 0, 20, 0));
    let pages = &partial.endpoints[&splitbench::record::Endpoint::ProductPage].verdicts;
    assert_eq!((pages.latency.len(), pages.all_latency.len()), (0, 20), "in every request's latency only");
    assert_eq!(partial.seconds[0].degraded, 20, "and per second");
    shop.stop().await;
}

#[tokio::test]
async fn a_timed_out_request_is_in_the_all_requests_latency_at_its_timeout() {
    // A server that accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let base_url = format!("http://{}", listener.local_addr().expect("an address"));
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let timeout = Duration::from_millis(300);
    // One request in flight at most: the first waits for its timeout, most others overflow.
    let recorder = one_second_of(&base_url, "health", Scale { products: 1, categories: 1 }, timeout, 1).await;
    let endpoint = &recorder.endpoints[&splitbench::record::Endpoint::Health].verdicts;
    let (timeouts, overflows) = (endpoint.failures.get("timeout").copied(), endpoint.failures.get("overflow").copied());
    assert!(timeouts.is_some_and(|n| n >= 1) && overflows.is_some_and(|n| n >= 1), "{:?}", endpoint.failures);
    assert_eq!((recorder.due(), recorder.failed(), recorder.ok()), (20, 20, 0));
    assert_eq!(endpoint.latency.len(), 0, "no success");
    let all = recorder.total_all_latency();
    assert_eq!(all.len(), 20, "every request, the failed ones included");
    // A timeout cannot end before its timeout, so each one sits at or above it.
    let at_or_above_timeout =
        all.iter_recorded().filter(|v| v.value_iterated_to() >= 300_000).map(|v| v.count_at_value()).sum::<u64>();
    assert!(
        at_or_above_timeout >= timeouts.unwrap_or(0),
        "{at_or_above_timeout} entries ≥ 300 ms for {timeouts:?} timeouts"
    );
    assert_eq!(recorder.seconds[0].merged_all_latency().len(), 20);
}

#[test]
fn both_architectures_share_a_repetitions_seeds_and_each_repetition_draws_new_ones() {
    let seeds = run_against_stand_ins(
        concat!(
            "compare --arch both --mix health --no-pin --repeat 2 --seed 7 --saturation-rounds 0 ",
            "--sweep-rates 20 --sweep-warmup 0s --sweep-duration 1s ",
            "--rate 20 --warmup 0s --duration 1s"
        ),
        "seeds",
    );
    let run = &seeds.run;

    let seeds_of = |phase: &str, repetition: u32| -> Vec<(String, Option<RepetitionSeeds>)> {
        run.measurements
            .iter()
            .filter(|m| m.phase == phase && m.repetition == repetition)
            .map(|m| (m.architecture.clone(), m.seeds))
            .collect()
    };
    for (phase, repetition) in [("sweep", 1), ("sweep", 2), ("main", 1)] {
        let expected = Some(RepetitionSeeds::derive(7, repetition));
        assert_eq!(
            seeds_of(phase, repetition),
            vec![("monolith".to_string(), expected), ("microservices".to_string(), expected)],
            "{phase} repetition {repetition}: both architectures on the same seeds"
        );
    }
    assert_ne!(RepetitionSeeds::derive(7, 1).schedule, RepetitionSeeds::derive(7, 2).schedule);
    let report = seeds.report();
    let second = RepetitionSeeds::derive(7, 2);
    assert!(report.contains(&format!("repetition 2: schedule {}, workload 9", second.schedule)), "{report}");
}

#[test]
fn every_sweep_step_runs_on_a_system_of_its_own() {
    // Each started system's books are checked (and the check fails, as stand-ins keep none): a
    // check per step shows a system per step.
    let steps_run = run_against_stand_ins(
        concat!(
            "sweep --arch monolith --mix health --no-pin --p99-objective 10s --saturation-rounds 0 ",
            "--sweep-rates 20,40 --sweep-warmup 0s --sweep-duration 1s"
        ),
        "steps",
    );
    let run = &steps_run.run;
    let steps: Vec<_> = run.measurements.iter().filter(|m| m.phase == "sweep").collect();
    assert_eq!(steps.len(), 2, "both steps measured");
    assert!(steps.iter().all(|m| m.consistency.is_some()), "each step's own system was checked");
    assert!(
        steps.iter().all(|m| m.connections_preopened == Some(splitbench::drive::OpenLoop::MIN_POOL as u64)),
        "the pool opened before each window is counted: {:?}",
        steps.iter().map(|m| m.connections_preopened).collect::<Vec<_>>()
    );
    let merged = splitbench::report::data::merged_checks(run);
    assert_eq!(merged.len(), 1, "one sweep, reported as one column");
    assert_eq!(merged[0].2, 2, "of two systems");
    // The step's warm-up and window are stored and shown.
    assert_eq!((run.config.sweep_warmup_secs, run.config.sweep_duration_secs), (Some(0.0), Some(1.0)));
    let report = steps_run.report();
    assert!(report.contains("| sweep | rates 20, 40 req/s; each step: warm-up 0 s, measured 1 s |"), "{report}");
    // Each system's processes keep their own log: the second start did not overwrite the first's.
    let logs = steps_run.dir.join("logs");
    for log in ["001-monolith-monolith.log", "002-monolith-monolith.log"] {
        assert!(logs.join(log).is_file(), "{log} in {:?}", std::fs::read_dir(&logs).map(|d| d.count()));
    }
}
