//! The generator's own client, end to end against a fake server: the pool of connections is
//! opened before the measured window and none opens during it at a steady low rate, and the lag
//! at send is recorded per second and merges into the total. None asserts on timing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use splitbench::drive::{self, AcknowledgedOrders, Arrivals, LoadClient, Mix, OpenLoop, Scale, Window};
use splitbench::record::{Recorder, latency_histogram};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A server answering every request `200 {"status":"ok"}` on keep-alive connections, and the
/// number of connections it accepted.
async fn counting_server() -> (String, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let base_url = format!("http://{}", listener.local_addr().expect("an address"));
    let accepted = Arc::new(AtomicU64::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                while let Ok(n @ 1..) = stream.read(&mut chunk).await {
                    buffer.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                        buffer.drain(..end + 4);
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 15\r\n\r\n{\"status\":\"ok\"}";
                        if stream.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (base_url, accepted)
}

#[tokio::test]
async fn the_pool_opens_before_the_window_and_no_connection_opens_during_it_at_a_steady_low_rate() {
    let (base_url, accepted) = counting_server().await;
    // 20 requests/s for 2 s, at most 16 in flight: the pool is 16 connections (the minimum),
    // and with no more than 16 requests in flight, 16 connections always suffice.
    let window = Window { warmup: Duration::ZERO, duration: Duration::from_secs(2) };
    let pace = OpenLoop::new(20.0, Arrivals::Constant, Some(16));
    assert_eq!(pace.pool_size(), 16);
    let workload = drive::Workload::new(
        &Mix::parse("health").expect("a mix"),
        Scale { products: 1, categories: 1 },
        Vec::new(),
        1,
    )
    .expect("a workload");
    let client = LoadClient::new(&base_url, Duration::from_secs(10)).expect("a client");
    let recorder = Arc::new(Mutex::new(Recorder::new(window.warmup)));
    let recorded =
        drive::run_open_loop(client.clone(), workload, pace, window, 1, recorder, AcknowledgedOrders::default())
            .await
            .expect("the load runs");

    assert_eq!((recorded.due(), recorded.ok()), (40, 40));
    assert_eq!(recorded.connections_preopened, 16, "opened before the schedule started");
    assert_eq!(accepted.load(Ordering::SeqCst), 16, "the server saw no other connection");
    assert_eq!(recorded.connections_opened(), 0, "none opened during the window");
    assert_eq!(recorded.seconds.len(), 2);
    for second in &recorded.seconds {
        assert_eq!(second.connections_opened, 0);
        assert_eq!(second.connections_open, 16, "every connection of the pool stayed open");
    }
    assert_eq!(client.connection_counts().opened, 16);

    // The lag at send: every request was written, each second holds its own, the total is their sum.
    let per_second: Vec<u64> = recorded.seconds.iter().map(|s| s.generator_lag.len()).collect();
    assert_eq!(per_second, vec![20, 20]);
    let mut merged = latency_histogram();
    for second in &recorded.seconds {
        merged.add(&second.generator_lag).expect("equal bounds");
    }
    assert_eq!(merged, recorded.generator_lag);
}

#[tokio::test]
async fn connections_opened_mid_run_are_counted_in_their_second() {
    let (base_url, accepted) = counting_server().await;
    // A pool of 1 (max in flight 1) that the test empties: every request must open a connection.
    let window = Window { warmup: Duration::ZERO, duration: Duration::from_secs(1) };
    let pace = OpenLoop::new(10.0, Arrivals::Constant, Some(1));
    let workload = drive::Workload::new(
        &Mix::parse("health").expect("a mix"),
        Scale { products: 1, categories: 1 },
        Vec::new(),
        1,
    )
    .expect("a workload");
    // Every idle connection is retired at once, so no request reuses one.
    let client =
        LoadClient::new(&base_url, Duration::from_secs(10)).expect("a client").with_recycle_idle_after(Duration::ZERO);
    let recorder = Arc::new(Mutex::new(Recorder::new(window.warmup)));
    let recorded =
        drive::run_open_loop(client.clone(), workload, pace, window, 1, recorder, AcknowledgedOrders::default())
            .await
            .expect("the load runs");
    let counts = client.connection_counts();
    assert_eq!(recorded.due(), 10);
    assert_eq!(recorded.connections_preopened, 1);
    // Each request connected on its own (a retired connection's background replacement is
    // retired in turn), and each such connection landed in a second of the window.
    assert!(
        recorded.connections_opened() >= 10,
        "{} opened during the window: {counts:?}",
        recorded.connections_opened()
    );
    assert!(recorded.connections_preopened + recorded.connections_opened() <= counts.opened, "counted at most once");
    assert!(counts.retired >= 9, "{counts:?}");
    assert!(accepted.load(Ordering::SeqCst) >= 11);
    assert!(recorded.seconds[0].connections_open >= 1);
}

#[test]
fn a_sweep_step_whose_lag_p99_exceeds_the_bound_is_warned_about_by_name_with_its_connections() {
    use splitbench::record::{Endpoint, Outcome, Verdict};
    use splitbench::report::data::{Measurement, ProcessCost};
    let mut recorder = Recorder::new(Duration::ZERO);
    recorder.connections_preopened = 16;
    for i in 0..300u64 {
        let due = Duration::from_millis(i * 10);
        // Second 1 is late: 5 ms at send; the others 10 µs.
        let lag = if (100..200).contains(&i) { Duration::from_millis(5) } else { Duration::from_micros(10) };
        recorder.record_due(due, lag);
        recorder.record_connections(due, u64::from(i == 150), 17);
        let latency = lag + Duration::from_micros(500);
        recorder.record(&Outcome {
            endpoint: Endpoint::Health,
            due,
            latency,
            service_time: latency - lag,
            verdict: Verdict::Ok,
        });
    }
    let generator = ProcessCost { name: "generator".into(), cpu_seconds: 0.0, peak_rss_bytes: 0, context_switches: 0 };
    let step = Measurement::from_recorder("monolith", "sweep", Some(100.0), 2, 3.0, &recorder, vec![], generator);
    let warnings = splitbench::report::warnings(&step).expect("warnings");
    let lag = warnings.iter().find(|w| w.contains("wrote requests late")).expect("a lag warning");
    assert!(lag.starts_with("monolith (sweep step 100 req/s, repetition 2)"), "{lag}");
    assert!(lag.contains("in 1 of 3 seconds, worst second 1"), "{lag}");
    let connections = warnings.iter().find(|w| w.contains("connections")).expect("a connections warning");
    assert!(
        connections.contains("opened 1 connections during the measured window")
            && connections.contains("16 opened before"),
        "{connections}"
    );

    // Without a late second or a new connection, no such warnings.
    let mut calm = Recorder::new(Duration::ZERO);
    calm.record_due(Duration::ZERO, Duration::from_micros(10));
    calm.record_connections(Duration::ZERO, 0, 16);
    let generator = ProcessCost { name: "generator".into(), cpu_seconds: 0.0, peak_rss_bytes: 0, context_switches: 0 };
    let calm = Measurement::from_recorder("monolith", "sweep", Some(100.0), 1, 1.0, &calm, vec![], generator);
    let warnings = splitbench::report::warnings(&calm).expect("warnings");
    assert!(!warnings.iter().any(|w| w.contains("late") || w.contains("connections")), "{warnings:?}");
}

#[test]
fn each_second_of_run_json_holds_its_lag_and_its_connections() {
    use splitbench::report::data::{Measurement, ProcessCost};
    let mut recorder = Recorder::new(Duration::ZERO);
    recorder.record_due(Duration::from_millis(10), Duration::from_micros(40));
    recorder.record_connections(Duration::from_millis(10), 2, 18);
    let generator = ProcessCost { name: "generator".into(), cpu_seconds: 0.0, peak_rss_bytes: 0, context_switches: 0 };
    let m = Measurement::from_recorder("monolith", "main", Some(1.0), 1, 1.0, &recorder, vec![], generator);
    let second = &m.timeline[0];
    assert_eq!((second.connections_opened, second.connections_open), (Some(2), Some(18)));
    let lag = second.generator_lag.as_ref().expect("recorded").decode().expect("decodes");
    assert_eq!(lag.len(), 1);
}

/// A server that, as actix-web does, gives a new connection `first_request_within` for its first
/// request and otherwise answers 408 and closes it; later requests wait as long as they like.
async fn strict_first_request_server(first_request_within: Duration) -> (String, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let base_url = format!("http://{}", listener.local_addr().expect("an address"));
    let timed_out = Arc::new(AtomicU64::new(0));
    let counter = timed_out.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut chunk = [0u8; 4096];
                let mut first = true;
                loop {
                    let read = if first {
                        match tokio::time::timeout(first_request_within, stream.read(&mut chunk)).await {
                            Ok(read) => read,
                            Err(_) => {
                                counter.fetch_add(1, Ordering::SeqCst);
                                let _ = stream.write_all(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                                return;
                            }
                        }
                    } else {
                        stream.read(&mut chunk).await
                    };
                    let Ok(1..) = read else { return };
                    first = false;
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 15\r\n\r\n{\"status\":\"ok\"}";
                    if stream.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (base_url, timed_out)
}

#[tokio::test]
async fn connections_opened_ahead_survive_a_servers_first_request_timeout() {
    // Each connection of the pool exchanges a first request when it opens, so a server's short
    // first-request timeout (actix-web: 5 s, then 408) never closes it while it waits idle.
    let (base_url, timed_out) = strict_first_request_server(Duration::from_millis(500)).await;
    let client = LoadClient::new(&base_url, Duration::from_secs(10)).expect("a client");
    assert_eq!(client.open_pool(4).await, 4);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let wire = client.encode(&drive::PlannedRequest::get(splitbench::record::Endpoint::Health, "/health"));
    for _ in 0..4 {
        let exchange = client.send(&wire).await;
        assert_eq!(exchange.answer.map(|a| a.status).ok(), Some(200));
    }
    assert_eq!(timed_out.load(Ordering::SeqCst), 0, "no connection waited idle for its first request");
    assert_eq!(client.connection_counts().opened, 4, "no connection had to be opened again");
}
