//! A TCP proxy that misbehaves on demand, for network faults between processes: it forwards
//! every connection to one upstream and applies Toxiproxy's toxics, by their names and meanings
//! (github.com/Shopify/toxiproxy, `toxics/`), to the bytes on their way:
//!
//! - `latency`: each chunk waits `latency` ± `jitter` (uniform) before it is written;
//! - `bandwidth`: a direction of each connection carries at most this many bytes a second;
//! - `slicer`: each chunk is cut into slices of `average_size` ± `size_variation` bytes,
//!   `delay` apart (small TCP segments, as a congested path delivers them);
//! - `timeout`: nothing gets through (what is read is dropped), and the connection is closed
//!   after `after` (never, with `None`, Toxiproxy's `timeout: 0`: a blackhole);
//! - `reset_peer`: the connection is reset (TCP RST: the client's socket closed with a zero
//!   linger) `after` the toxic is set or the connection opened, new connections at once when
//!   `after` is zero.
//!
//! As in Toxiproxy, a toxic applies to one direction (`Stream::Downstream`, upstream to client,
//! as its default; `Upstream`, client to upstream) and the set can change while connections are
//! open: every pump reads the current set for each chunk. Two deviations: `timeout` and
//! `reset_peer` end a connection whichever direction they name, and they reach connections
//! idling in a keep-alive pool at once (Toxiproxy resets a connection only when data next
//! arrives on it): a fault run wants every connection to the faulted service cut when the
//! fault begins. Jitter and
//! slice sizes come from a seeded generator per connection and direction: the same seed and
//! the same traffic give the same delays. No maintained Rust crate proxies with toxics; this
//! is the small part of Toxiproxy a fault run needs, in-process, without its HTTP API.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Which way a toxic acts: Toxiproxy's `stream`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// From the client to the upstream (requests).
    Upstream,
    /// From the upstream to the client (answers).
    Downstream,
}

/// One toxic, as Toxiproxy names it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Toxic {
    Latency { latency: Duration, jitter: Duration },
    Bandwidth { bytes_per_second: u64 },
    Slicer { average_size: usize, size_variation: usize, delay: Duration },
    Timeout { after: Option<Duration> },
    ResetPeer { after: Duration },
}

/// A toxic on one direction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StreamToxic {
    pub stream: Stream,
    pub toxic: Toxic,
}

/// What the proxy counted, for the report and for tests.
#[derive(Debug, Default)]
pub struct ProxyCounters {
    pub connections: AtomicU64,
    /// Writes made, each a chunk or a slice of one.
    pub writes: AtomicU64,
    /// Bytes read and dropped under a `timeout`.
    pub dropped_bytes: AtomicU64,
    pub resets: AtomicU64,
}

/// [`ProxyCounters`] read at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyCounts {
    pub connections: u64,
    pub writes: u64,
    pub dropped_bytes: u64,
    pub resets: u64,
}

impl ProxyCounts {
    /// What was counted between `before` and these counts.
    pub fn since(self, before: Self) -> Self {
        Self {
            connections: self.connections - before.connections,
            writes: self.writes - before.writes,
            dropped_bytes: self.dropped_bytes - before.dropped_bytes,
            resets: self.resets - before.resets,
        }
    }
}

/// A running proxy; stopped (its listener and every connection) when dropped.
pub struct Proxy {
    pub port: u16,
    toxics: watch::Sender<Vec<StreamToxic>>,
    pub counters: Arc<ProxyCounters>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards each connection to `upstream`.
    pub async fn start(upstream: SocketAddr, seed: u64) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (toxics, watching) = watch::channel(Vec::new());
        let counters = Arc::new(ProxyCounters::default());
        let task = tokio::spawn(accept_loop(listener, upstream, watching, counters.clone(), seed));
        Ok(Self { port, toxics, counters, task })
    }

    /// The counters now.
    pub fn counts(&self) -> ProxyCounts {
        let c = &self.counters;
        ProxyCounts {
            connections: c.connections.load(Ordering::Relaxed),
            writes: c.writes.load(Ordering::Relaxed),
            dropped_bytes: c.dropped_bytes.load(Ordering::Relaxed),
            resets: c.resets.load(Ordering::Relaxed),
        }
    }

    /// Replaces the toxics in force (an empty list lifts them all).
    pub fn set(&self, toxics: Vec<StreamToxic>) {
        self.toxics.send_replace(toxics);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // The accept loop owns every connection's tasks (a JoinSet): they go with it.
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    toxics: watch::Receiver<Vec<StreamToxic>>,
    counters: Arc<ProxyCounters>,
    seed: u64,
) {
    let mut connections = JoinSet::new();
    let mut index: u64 = 0;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else {
                    // Out of descriptors, most likely: wait rather than spin on the error.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                index += 1;
                counters.connections.fetch_add(1, Ordering::Relaxed);
                let (toxics, counters) = (toxics.clone(), counters.clone());
                connections.spawn(connection(client, upstream, toxics, counters, seed.wrapping_add(index)));
            }
            // Reap finished connections so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// One proxied connection: a pump each way until either side closes, a `timeout` closes it
/// or a `reset_peer` resets it.
async fn connection(
    mut client: TcpStream,
    upstream: SocketAddr,
    toxics: watch::Receiver<Vec<StreamToxic>>,
    counters: Arc<ProxyCounters>,
    seed: u64,
) {
    let _ = client.set_nodelay(true);
    let reset_at_once = toxics.borrow().iter().any(|t| t.toxic == Toxic::ResetPeer { after: Duration::ZERO });
    if reset_at_once {
        counters.resets.fetch_add(1, Ordering::Relaxed);
        let _ = client.set_zero_linger();
        return;
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else { return };
    let _ = server.set_nodelay(true);
    let end = {
        // Borrowed halves: dropping them sends nothing (an owned write half would send FIN),
        // so a reset below is a bare RST.
        let (client_read, client_write) = client.split();
        let (server_read, server_write) = server.split();
        let up = pump(client_read, server_write, Stream::Upstream, toxics.clone(), counters.clone(), seed << 1);
        let down = pump(server_read, client_write, Stream::Downstream, toxics.clone(), counters.clone(), seed << 1 | 1);
        tokio::select! {
            _ = async { tokio::join!(up, down) } => None,
            end = ending(toxics) => Some(end),
        }
    };
    if end == Some(End::Reset) {
        counters.resets.fetch_add(1, Ordering::Relaxed);
        // A zero linger makes the close send RST instead of FIN.
        let _ = client.set_zero_linger();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Close,
    Reset,
}

/// Resolves when a `timeout` with a deadline or a `reset_peer` in force has run its time.
async fn ending(mut toxics: watch::Receiver<Vec<StreamToxic>>) -> End {
    loop {
        // The earliest of the toxics that end connections.
        let deadline = toxics
            .borrow_and_update()
            .iter()
            .filter_map(|t| match t.toxic {
                Toxic::ResetPeer { after } => Some((after, End::Reset)),
                Toxic::Timeout { after: Some(after) } => Some((after, End::Close)),
                _ => None,
            })
            .min_by_key(|(after, _)| *after);
        match deadline {
            Some((after, end)) => {
                tokio::select! {
                    _ = tokio::time::sleep(after) => return end,
                    changed = toxics.changed() => if changed.is_err() { return End::Close },
                }
            }
            None => {
                if toxics.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

/// Copies one direction, applying that direction's toxics to every chunk. A reader stamps each
/// chunk as it arrives and a writer delays it from that stamp (as Toxiproxy does), so an answer
/// that arrives in several reads is late by one latency, not one per read.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    stream: Stream,
    toxics: watch::Receiver<Vec<StreamToxic>>,
    counters: Arc<ProxyCounters>,
    seed: u64,
) {
    let in_force = |toxics: &watch::Receiver<Vec<StreamToxic>>| -> Vec<Toxic> {
        toxics.borrow().iter().filter(|t| t.stream == stream).map(|t| t.toxic).collect()
    };
    let (chunks, mut arrived) = tokio::sync::mpsc::channel::<(tokio::time::Instant, Vec<u8>)>(64);
    let reader = async {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if in_force(&toxics).iter().any(|t| matches!(t, Toxic::Timeout { .. })) {
                counters.dropped_bytes.fetch_add(n as u64, Ordering::Relaxed);
                continue;
            }
            if chunks.send((tokio::time::Instant::now(), buffer[..n].to_vec())).await.is_err() {
                break;
            }
        }
        // The sender goes with the reader: the writer drains what is queued, then closes.
        drop(chunks);
    };
    let writer = async {
        let mut rng = StdRng::seed_from_u64(seed);
        while let Some((read_at, chunk)) = arrived.recv().await {
            let toxics_now = in_force(&toxics);
            for toxic in &toxics_now {
                if let Toxic::Latency { latency, jitter } = *toxic {
                    tokio::time::sleep_until(read_at + jittered(latency, jitter, &mut rng)).await;
                }
            }
            let slicer = toxics_now.iter().find_map(|t| match *t {
                Toxic::Slicer { average_size, size_variation, delay } => Some((average_size, size_variation, delay)),
                _ => None,
            });
            let slices: Vec<&[u8]> = match slicer {
                Some((average, variation, _)) => slice(&chunk, average, variation, &mut rng),
                None => vec![&chunk[..]],
            };
            let bandwidth = toxics_now.iter().find_map(|t| match *t {
                Toxic::Bandwidth { bytes_per_second } => Some(bytes_per_second.max(1)),
                _ => None,
            });
            for (i, slice) in slices.iter().enumerate() {
                if i > 0
                    && let Some((_, _, delay)) = slicer
                {
                    tokio::time::sleep(delay).await;
                }
                // Under a bandwidth limit, pieces of 10 ms worth of bytes, each written once its
                // time has passed, so the last byte leaves no sooner than the rate allows.
                let piece = bandwidth.map_or(slice.len(), |rate| (rate as usize / 100).max(1));
                for part in slice.chunks(piece.max(1)) {
                    if let Some(rate) = bandwidth {
                        tokio::time::sleep(Duration::from_secs_f64(part.len() as f64 / rate as f64)).await;
                    }
                    if to.write_all(part).await.is_err() {
                        return;
                    }
                    counters.writes.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let _ = to.shutdown().await;
    };
    // The writer stopping (its peer gone) drops the receiver, which stops the reader's sends.
    tokio::join!(reader, writer);
}

/// `latency` ± `jitter`, uniform, never below zero.
fn jittered(latency: Duration, jitter: Duration, rng: &mut StdRng) -> Duration {
    if jitter.is_zero() {
        return latency;
    }
    let offset = rng.random_range(-(jitter.as_secs_f64())..=jitter.as_secs_f64());
    Duration::from_secs_f64((latency.as_secs_f64() + offset).max(0.0))
}

/// Cuts `chunk` into slices of `average` ± `variation` bytes (at least one byte each).
fn slice<'a>(chunk: &'a [u8], average: usize, variation: usize, rng: &mut StdRng) -> Vec<&'a [u8]> {
    let mut slices = Vec::new();
    let mut rest = chunk;
    while !rest.is_empty() {
        let low = average.saturating_sub(variation).max(1);
        let size = rng.random_range(low..=(average + variation).max(low)).min(rest.len());
        let (head, tail) = rest.split_at(size);
        slices.push(head);
        rest = tail;
    }
    slices
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An upstream that echoes every byte back.
    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut read, mut write) = socket.split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                });
            }
        });
        address
    }

    async fn proxied(toxics: Vec<StreamToxic>) -> (Proxy, TcpStream) {
        let proxy = Proxy::start(echo_server().await, 42).await.expect("proxy");
        proxy.set(toxics);
        let client = TcpStream::connect(("127.0.0.1", proxy.port)).await.expect("connect");
        (proxy, client)
    }

    /// Sends `bytes` and reads as many back; how long that took.
    async fn round_trip(client: &mut TcpStream, bytes: &[u8]) -> Duration {
        let started = std::time::Instant::now();
        client.write_all(bytes).await.expect("write");
        let mut back = vec![0u8; bytes.len()];
        client.read_exact(&mut back).await.expect("read back");
        assert_eq!(back, bytes, "the bytes come back whole and in order");
        started.elapsed()
    }

    fn downstream(toxic: Toxic) -> Vec<StreamToxic> {
        vec![StreamToxic { stream: Stream::Downstream, toxic }]
    }

    // The timing assertions below are lower bounds the toxic itself imposes: a slow machine
    // only makes them hold more easily.

    #[tokio::test]
    async fn without_toxics_bytes_pass_unchanged() {
        let (proxy, mut client) = proxied(Vec::new()).await;
        let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        round_trip(&mut client, &bytes).await;
        assert_eq!(proxy.counters.connections.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn latency_delays_each_answer_by_at_least_its_latency() {
        let latency = Duration::from_millis(80);
        let (_proxy, mut client) = proxied(downstream(Toxic::Latency { latency, jitter: Duration::ZERO })).await;
        assert!(round_trip(&mut client, b"ping").await >= latency);
    }

    #[tokio::test]
    async fn an_answer_in_many_reads_is_late_by_one_latency_not_one_per_read() {
        let latency = Duration::from_secs(1);
        let (proxy, mut client) = proxied(downstream(Toxic::Latency { latency, jitter: Duration::ZERO })).await;
        // Ten writes 10 ms apart reach the echo, and so the proxy, as separate reads.
        let started = std::time::Instant::now();
        for _ in 0..10 {
            client.write_all(&[9u8; 100]).await.expect("write");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut back = vec![0u8; 1000];
        client.read_exact(&mut back).await.expect("read back");
        let took = started.elapsed();
        assert!(took >= latency, "{took:?}");
        assert!(proxy.counters.writes.load(Ordering::Relaxed) >= 2, "several reads");
        // Delayed from when it was read, each read after the first would wait a latency after
        // the one before (2 s at least: the rest coalesce into a second read); stamped as they
        // arrive, the last leaves a latency after it arrived (about 1.1 s). The bound sits
        // between, 0.7 s from the expected time.
        assert!(took < Duration::from_millis(1800), "{took:?}: the latencies stacked");
    }

    #[tokio::test]
    async fn bandwidth_paces_the_bytes() {
        let (_proxy, mut client) = proxied(downstream(Toxic::Bandwidth { bytes_per_second: 20_000 })).await;
        // 10,000 bytes at 20,000 bytes a second: half a second at least.
        let took = round_trip(&mut client, &[7u8; 10_000]).await;
        assert!(took >= Duration::from_millis(450), "{took:?}");
    }

    #[tokio::test]
    async fn the_slicer_cuts_answers_into_small_writes() {
        let toxic = Toxic::Slicer { average_size: 100, size_variation: 4, delay: Duration::from_micros(100) };
        let (proxy, mut client) = proxied(downstream(toxic)).await;
        let before = proxy.counters.writes.load(Ordering::Relaxed);
        round_trip(&mut client, &[1u8; 1_000]).await;
        // Upstream the request goes as it came; downstream 1,000 bytes in slices of 96-104.
        let writes = proxy.counters.writes.load(Ordering::Relaxed) - before;
        assert!(writes >= 10, "{writes} writes");
    }

    #[tokio::test]
    async fn a_timeout_drops_everything_then_closes() {
        let after = Duration::from_secs(2);
        let (proxy, mut client) = proxied(downstream(Toxic::Timeout { after: Some(after) })).await;
        client.write_all(b"lost").await.expect("write");
        // The echo comes back to the proxy and is dropped there...
        let waited = tokio::time::timeout(Duration::from_secs(10), async {
            while proxy.counters.dropped_bytes.load(Ordering::Relaxed) < 4 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        waited.await.expect("the echo reached the proxy");
        // ...and the client gets nothing but the close.
        let mut buffer = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(10), client.read(&mut buffer)).await;
        assert!(matches!(read, Ok(Ok(0))), "closed with nothing delivered: {read:?}");
    }

    #[tokio::test]
    async fn a_blackhole_holds_the_connection_open_and_silent_until_lifted() {
        let (proxy, mut client) = proxied(downstream(Toxic::Timeout { after: None })).await;
        client.write_all(b"into the void").await.expect("write");
        let mut buffer = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_millis(300), client.read(&mut buffer)).await;
        assert!(read.is_err(), "nothing arrives, the connection stays open: {read:?}");
        proxy.set(Vec::new());
        round_trip(&mut client, b"back").await;
    }

    #[tokio::test]
    async fn reset_peer_resets_open_and_new_connections() {
        let (proxy, mut idle) = proxied(Vec::new()).await;
        round_trip(&mut idle, b"warm").await;
        proxy.set(downstream(Toxic::ResetPeer { after: Duration::ZERO }));
        let mut buffer = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(10), idle.read(&mut buffer)).await.expect("not hung");
        assert_eq!(read.map_err(|e| e.kind()), Err(std::io::ErrorKind::ConnectionReset), "an idle pooled connection");
        // Nothing written first: a write could take the reset's error and leave the read an EOF.
        let mut fresh = TcpStream::connect(("127.0.0.1", proxy.port)).await.expect("connect");
        let read = tokio::time::timeout(Duration::from_secs(10), fresh.read(&mut buffer)).await.expect("not hung");
        assert_eq!(read.map_err(|e| e.kind()), Err(std::io::ErrorKind::ConnectionReset), "a new connection");
        assert!(proxy.counters.resets.load(Ordering::Relaxed) >= 2);
    }

    #[test]
    fn slices_cover_the_chunk_in_order_within_their_sizes() {
        let chunk: Vec<u8> = (0..=255).collect();
        let mut rng = StdRng::seed_from_u64(7);
        let slices = slice(&chunk, 10, 4, &mut rng);
        assert_eq!(slices.concat(), chunk, "nothing lost, nothing reordered");
        let (last, whole) = slices.split_last().expect("slices");
        assert!(whole.iter().all(|s| (6..=14).contains(&s.len())), "{:?}", slices.iter().map(|s| s.len()));
        assert!(!last.is_empty() && last.len() <= 14);
        // The same seed cuts the same way.
        let again = slice(&chunk, 10, 4, &mut StdRng::seed_from_u64(7));
        assert_eq!(slices, again);
    }

    #[test]
    fn jitter_stays_within_its_bounds_and_never_goes_negative() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..1000 {
            let d = jittered(Duration::from_millis(10), Duration::from_millis(3), &mut rng);
            assert!(d >= Duration::from_millis(7) && d <= Duration::from_millis(13), "{d:?}");
            let d = jittered(Duration::from_millis(1), Duration::from_millis(5), &mut rng);
            assert!(d <= Duration::from_millis(6), "{d:?}");
        }
        assert_eq!(jittered(Duration::from_millis(4), Duration::ZERO, &mut rng), Duration::from_millis(4));
    }
}
