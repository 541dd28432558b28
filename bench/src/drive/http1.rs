//! The generator's HTTP/1.1 client: keep-alive connections on raw tokio sockets, responses
//! parsed with `httparse`.
//!
//! Why not reqwest (which the services use between themselves)? Measured on this project's
//! machine, a reqwest-driven generator spent about 50 µs of CPU per request and topped out
//! near 20,000 requests/s on its core, below what the harness must drive so that it is never
//! the bottleneck. A load generator needs much less than a general client: one loopback
//! address, requests it builds itself, answers with a `Content-Length`. So each request here is
//! one `write` of bytes built in advance and as few `read`s as the answer needs, like wrk.
//! Parsing is httparse's (hyper's parser), not ours.
//!
//! What the client times, and nothing else: [`Exchange::written`] is taken right after the
//! request's last byte was written to the socket (the generator's lag ends there), and
//! [`Exchange::done`] right after the answer's last byte was read. The client never looks
//! inside a body; checking the answer (JSON) is the caller's job, after `done`.
//!
//! Connections: the pool is opened before a run measures ([`LoadClient::open_pool`]), so a
//! connect (and the 1 s retry of a dropped SYN) is not inside a measured request; the client
//! counts every connection it opens and closes ([`ConnectionCounts`]), so the ones that still
//! open mid-run are reported. An idle connection is retired once it has been idle for
//! [`RECYCLE_IDLE_AFTER`], before the server's keep-alive closes it under a request, and a
//! replacement is opened in the background, outside any request.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::PlannedRequest;
use crate::record::Failure;

/// How long a connection may sit idle in the pool before it is retired instead of reused: the
/// shop's clients' idle timeout (60 s), shorter than the servers' keep-alive (75 s,
/// [`shop::app::SERVER_KEEP_ALIVE`]) by enough that the server never closes a connection this
/// client is about to write to (a request on a connection the server just closed fails as a
/// transport error that the server never saw).
pub const RECYCLE_IDLE_AFTER: Duration = shop::app::CLIENT_IDLE_TIMEOUT;
const _: () = assert!(RECYCLE_IDLE_AFTER.as_millis() < shop::app::SERVER_KEEP_ALIVE.as_millis());

/// How many connections [`LoadClient::open_pool`] opens at once: enough to be quick, few
/// enough not to overflow a server's accept queue (a dropped SYN is retried after 1 s).
const CONNECTS_AT_ONCE: usize = 32;

/// The read buffer a connection gets on its first use (allocated then, so a large pool of
/// connections that are never used costs no memory).
const READ_BUFFER: usize = 16 * 1024;

/// An answer: status and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: BytesMut,
}

/// One request on the wire: its answer, and the two instants a measurement needs.
#[derive(Debug)]
pub struct Exchange {
    pub answer: Result<Answer, Failure>,
    /// Right after the request's last byte was written to the socket; `None` if it never was
    /// (no connection, or the write failed or timed out).
    pub written: Option<Instant>,
    /// Right after the answer's last byte was read, or when the exchange failed or timed out.
    pub done: Instant,
}

/// One keep-alive connection and its read buffer.
struct Connection {
    stream: TcpStream,
    buffer: BytesMut,
    /// Since when it has waited in the pool (set when it is put back).
    idle_since: Instant,
    /// Counts its closing when dropped.
    counts: Arc<Counters>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.counts.closed.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Debug, Default)]
struct Counters {
    opened: AtomicU64,
    closed: AtomicU64,
    retired: AtomicU64,
}

/// The connections a client has opened, over its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionCounts {
    /// Connections opened (pool, requests and replacements alike).
    pub opened: u64,
    /// Connections open now (opened and not yet closed).
    pub open: u64,
    /// Idle connections retired for age ([`RECYCLE_IDLE_AFTER`]).
    pub retired: u64,
}

/// A pool of keep-alive connections to one server.
#[derive(Clone)]
pub struct LoadClient {
    address: SocketAddr,
    host: Arc<str>,
    timeout: Duration,
    recycle_idle_after: Duration,
    /// Idle connections, the longest idle first: a connection is put back at the end and
    /// taken from the end, so `idle_since` never decreases along the vector.
    idle: Arc<Mutex<Vec<Connection>>>,
    counts: Arc<Counters>,
}

impl LoadClient {
    /// How long a request may take before it counts as timed out.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The connections opened and open so far.
    pub fn connection_counts(&self) -> ConnectionCounts {
        let opened = self.counts.opened.load(Ordering::Relaxed);
        let closed = self.counts.closed.load(Ordering::Relaxed);
        ConnectionCounts {
            opened,
            open: opened.saturating_sub(closed),
            retired: self.counts.retired.load(Ordering::Relaxed),
        }
    }

    /// Idle connections waiting in the pool.
    pub fn idle_connections(&self) -> usize {
        self.idle.lock().expect("pool lock").len()
    }
}

impl std::fmt::Debug for LoadClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadClient").field("address", &self.address).finish_non_exhaustive()
    }
}

impl LoadClient {
    /// A client for `base_url` (`http://127.0.0.1:<port>`).
    pub fn new(base_url: &str, timeout: Duration) -> anyhow::Result<Self> {
        let authority =
            base_url.strip_prefix("http://").ok_or_else(|| anyhow::anyhow!("only http:// targets: {base_url}"))?;
        let authority = authority.trim_end_matches('/');
        let address: SocketAddr =
            authority.parse().map_err(|_| anyhow::anyhow!("the target must be ip:port, got {authority}"))?;
        Ok(Self {
            address,
            host: Arc::from(authority),
            timeout,
            recycle_idle_after: RECYCLE_IDLE_AFTER,
            idle: Arc::new(Mutex::new(Vec::new())),
            counts: Arc::new(Counters::default()),
        })
    }

    /// The same client retiring idle connections after `idle` instead of
    /// [`RECYCLE_IDLE_AFTER`] (tests).
    pub fn with_recycle_idle_after(mut self, idle: Duration) -> Self {
        self.recycle_idle_after = idle;
        self
    }

    /// The bytes of `request` on the wire.
    pub fn encode(&self, request: &PlannedRequest) -> Vec<u8> {
        let mut head = format!("{} {} HTTP/1.1\r\nhost: {}\r\n", request.method, request.path, self.host);
        if let Some(authorization) = &request.authorization {
            head.push_str(&format!("authorization: {authorization}\r\n"));
        }
        if let Some(key) = &request.idempotency_key {
            head.push_str(&format!("idempotency-key: {key}\r\n"));
        }
        let body = request.body.as_deref().unwrap_or_default();
        if request.body.is_some() {
            head.push_str(&format!("content-type: application/json\r\ncontent-length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        bytes
    }

    /// Opens connections until `size` wait idle in the pool (at most [`CONNECTS_AT_ONCE`] at a
    /// time); returns how many it opened. A connection that cannot be made is not retried here:
    /// the requests that find the pool empty will count the failure.
    pub async fn open_pool(&self, size: usize) -> usize {
        let mut opened = 0;
        loop {
            let missing = size.saturating_sub(self.idle_connections());
            if missing == 0 {
                return opened;
            }
            let mut connects = tokio::task::JoinSet::new();
            for _ in 0..missing.min(CONNECTS_AT_ONCE) {
                let client = self.clone();
                connects.spawn(async move { client.connect_ready().await });
            }
            let mut failed = false;
            while let Some(connected) = connects.join_next().await {
                match connected {
                    Ok(Ok(connection)) => {
                        opened += 1;
                        self.put_back(connection);
                    }
                    _ => failed = true,
                }
            }
            if failed {
                return opened;
            }
        }
    }

    /// Sends `wire` (from [`LoadClient::encode`]) and reads the answer, within the timeout.
    /// Takes an idle connection (retiring those idle too long), or opens one if none is left.
    pub async fn send(&self, wire: &[u8]) -> Exchange {
        let mut written = None;
        let pooled = self.take_idle();
        let mut connection = match pooled {
            Some(connection) => connection,
            None => match self.connect().await {
                Ok(connection) => connection,
                Err(failure) => return Exchange { answer: Err(failure), written, done: Instant::now() },
            },
        };
        let exchange = async {
            connection.stream.write_all(wire).await.map_err(|_| Failure::Transport)?;
            written = Some(Instant::now());
            read_answer(&mut connection).await
        };
        let result = tokio::time::timeout(self.timeout, exchange).await;
        // The answer's last byte has been read (or the exchange failed): nothing after this
        // line is in the request's latency.
        let done = Instant::now();
        let answer = match result {
            Ok(Ok((answer, keep_alive))) => {
                if keep_alive {
                    self.put_back(connection);
                }
                Ok(answer)
            }
            Ok(Err(failure)) => Err(failure),
            Err(_) => Err(Failure::Timeout),
        };
        Exchange { answer, written, done }
    }

    /// The most recently used idle connection, after retiring every connection idle for
    /// longer than the recycle age (a replacement for each is opened in the background).
    fn take_idle(&self) -> Option<Connection> {
        let now = Instant::now();
        let (retired, taken) = {
            let mut idle = self.idle.lock().expect("pool lock");
            // Longest idle first, so the stale ones are a prefix.
            let stale =
                idle.partition_point(|c| now.saturating_duration_since(c.idle_since) >= self.recycle_idle_after);
            let retired: Vec<Connection> = idle.drain(..stale).collect();
            (retired, idle.pop())
        };
        if !retired.is_empty() {
            self.counts.retired.fetch_add(retired.len() as u64, Ordering::Relaxed);
            for _ in &retired {
                let client = self.clone();
                tokio::spawn(async move {
                    if let Ok(connection) = client.connect_ready().await {
                        client.put_back(connection);
                    }
                });
            }
        }
        taken
    }

    fn put_back(&self, mut connection: Connection) {
        let mut idle = self.idle.lock().expect("pool lock");
        // Stamped under the lock, so the pool stays ordered by `idle_since`.
        connection.idle_since = Instant::now();
        idle.push(connection);
    }

    /// A connection opened ahead of use, with one `GET /health` exchanged on it: a server
    /// gives a new connection only a few seconds for its first request (actix-web's client
    /// request timeout, 5 s, answered with a 408), but keeps a used one for its whole
    /// keep-alive (75 s here), longer than the pool keeps a connection idle.
    async fn connect_ready(&self) -> Result<Connection, Failure> {
        let mut connection = self.connect().await?;
        let first = format!("GET /health HTTP/1.1\r\nhost: {}\r\n\r\n", self.host);
        let exchange = async {
            connection.stream.write_all(first.as_bytes()).await.map_err(|_| Failure::Transport)?;
            read_answer(&mut connection).await
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok((answer, true))) if answer.status == 200 => Ok(connection),
            Ok(Ok(_)) => Err(Failure::Transport),
            Ok(Err(failure)) => Err(failure),
            Err(_) => Err(Failure::Timeout),
        }
    }

    async fn connect(&self) -> Result<Connection, Failure> {
        let stream = tokio::time::timeout(self.timeout, TcpStream::connect(self.address))
            .await
            .map_err(|_| Failure::Timeout)?
            .map_err(|_| Failure::Connect)?;
        self.counts.opened.fetch_add(1, Ordering::Relaxed);
        let connection =
            Connection { stream, buffer: BytesMut::new(), idle_since: Instant::now(), counts: self.counts.clone() };
        connection.stream.set_nodelay(true).map_err(|_| Failure::Connect)?;
        Ok(connection)
    }
}

/// Reads one answer; says whether the connection may be reused.
async fn read_answer(connection: &mut Connection) -> Result<(Answer, bool), Failure> {
    if connection.buffer.capacity() == 0 {
        connection.buffer.reserve(READ_BUFFER);
    }
    loop {
        if let Some(parsed) = parse_head(&connection.buffer)? {
            let total = parsed.head_len + parsed.content_length;
            while connection.buffer.len() < total {
                if connection.stream.read_buf(&mut connection.buffer).await.map_err(|_| Failure::Transport)? == 0 {
                    return Err(Failure::Transport);
                }
            }
            connection.buffer.advance(parsed.head_len);
            let body = connection.buffer.split_to(parsed.content_length);
            return Ok((Answer { status: parsed.status, body }, parsed.keep_alive));
        }
        if connection.stream.read_buf(&mut connection.buffer).await.map_err(|_| Failure::Transport)? == 0 {
            return Err(Failure::Transport);
        }
    }
}

struct Head {
    status: u16,
    head_len: usize,
    content_length: usize,
    keep_alive: bool,
}

/// Parses a response head, if complete. Answers without a `Content-Length` (chunked) are not
/// expected from the shop and count as transport failures.
fn parse_head(buffer: &[u8]) -> Result<Option<Head>, Failure> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buffer) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(Failure::Transport),
    };
    let mut content_length = None;
    let mut keep_alive = true;
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            content_length = std::str::from_utf8(header.value).ok().and_then(|v| v.trim().parse::<usize>().ok());
        } else if header.name.eq_ignore_ascii_case("connection") && header.value.eq_ignore_ascii_case(b"close") {
            keep_alive = false;
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Failure::Transport);
        }
    }
    let status = response.code.ok_or(Failure::Transport)?;
    Ok(Some(Head { status, head_len, content_length: content_length.unwrap_or(0), keep_alive }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Endpoint;

    #[test]
    fn requests_are_encoded_with_their_headers_and_body() {
        let client = LoadClient::new("http://127.0.0.1:8080", Duration::from_secs(1)).expect("valid");
        let request = PlannedRequest {
            endpoint: Endpoint::Checkout,
            method: reqwest::Method::POST,
            path: "/api/orders".into(),
            body: Some(b"{}".to_vec()),
            authorization: Some(Arc::from("Bearer t")),
            idempotency_key: Some("k1".into()),
            product_id: None,
        };
        let wire = String::from_utf8(client.encode(&request)).expect("text");
        assert!(wire.starts_with("POST /api/orders HTTP/1.1\r\nhost: 127.0.0.1:8080\r\n"));
        assert!(wire.contains("authorization: Bearer t\r\n") && wire.contains("idempotency-key: k1\r\n"));
        assert!(wire.ends_with("content-length: 2\r\n\r\n{}"));
    }

    #[test]
    fn heads_are_parsed_partially_and_completely() {
        assert!(matches!(parse_head(b"HTTP/1.1 200 OK\r\ncontent-len"), Ok(None)));
        let head =
            parse_head(b"HTTP/1.1 404 Not Found\r\ncontent-length: 5\r\n\r\nhello").expect("valid").expect("complete");
        assert_eq!((head.status, head.content_length, head.keep_alive), (404, 5, true));
        let closing = parse_head(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n")
            .expect("valid")
            .expect("complete");
        assert!(!closing.keep_alive);
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").is_err());
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn only_loopback_style_targets_are_accepted() {
        assert!(LoadClient::new("http://127.0.0.1:1", Duration::from_secs(1)).is_ok());
        assert!(LoadClient::new("https://127.0.0.1:1", Duration::from_secs(1)).is_err());
        assert!(LoadClient::new("http://localhost:1", Duration::from_secs(1)).is_err());
    }

    /// A server that answers every request with `200` and the number of the connection it came
    /// on (1, 2, ...), and counts the connections it accepted.
    async fn numbering_server() -> (String, Arc<AtomicU64>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let base_url = format!("http://{}", listener.local_addr().expect("an address"));
        let accepted = Arc::new(AtomicU64::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let number = counter.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while let Ok(n @ 1..) = stream.read(&mut chunk).await {
                        buffer.extend_from_slice(&chunk[..n]);
                        while let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                            buffer.drain(..end + 4);
                            let body = number.to_string();
                            let answer = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len());
                            if stream.write_all(answer.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (base_url, accepted)
    }

    async fn connection_number(client: &LoadClient) -> String {
        let wire = b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n";
        let exchange = client.send(wire).await;
        let answer = exchange.answer.expect("an answer");
        assert!(exchange.written.is_some_and(|written| written <= exchange.done));
        String::from_utf8(answer.body.to_vec()).expect("text")
    }

    #[tokio::test]
    async fn an_idle_connection_younger_than_the_recycle_age_is_reused() {
        let (base_url, accepted) = numbering_server().await;
        let client = LoadClient::new(&base_url, Duration::from_secs(10)).expect("valid");
        assert_eq!(connection_number(&client).await, "1");
        assert_eq!(connection_number(&client).await, "1");
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!(client.connection_counts(), ConnectionCounts { opened: 1, open: 1, retired: 0 });
    }

    #[tokio::test]
    async fn an_idle_connection_older_than_the_recycle_age_is_retired_not_reused() {
        let (base_url, _) = numbering_server().await;
        let recycle = Duration::from_millis(50);
        let client =
            LoadClient::new(&base_url, Duration::from_secs(10)).expect("valid").with_recycle_idle_after(recycle);
        assert_eq!(connection_number(&client).await, "1");
        // A sleep never ends early: the connection is now idle for longer than the recycle age.
        tokio::time::sleep(recycle * 2).await;
        assert_ne!(connection_number(&client).await, "1", "the old connection was not reused");
        let counts = client.connection_counts();
        assert_eq!(counts.retired, 1);
        // Retired, and closed: besides the request's own, at most its background replacement.
        assert!(counts.open <= 2 && counts.opened >= 2, "{counts:?}");
    }

    #[tokio::test]
    async fn the_pool_is_opened_ahead_and_then_used_without_a_new_connection() {
        let (base_url, accepted) = numbering_server().await;
        let client = LoadClient::new(&base_url, Duration::from_secs(10)).expect("valid");
        assert_eq!(client.open_pool(40).await, 40, "more than one batch of connects");
        assert_eq!(client.open_pool(40).await, 0, "already open");
        assert_eq!(client.idle_connections(), 40);
        for _ in 0..5 {
            connection_number(&client).await;
        }
        assert_eq!((accepted.load(Ordering::SeqCst), client.connection_counts().opened), (40, 40));
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_failure_never_written() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let base_url = format!("http://{}", listener.local_addr().expect("an address"));
        drop(listener);
        let client = LoadClient::new(&base_url, Duration::from_secs(1)).expect("valid");
        assert_eq!(client.open_pool(4).await, 0);
        let exchange = client.send(b"GET / HTTP/1.1\r\n\r\n").await;
        assert!(matches!(exchange.answer, Err(Failure::Connect)));
        assert_eq!((exchange.written, client.connection_counts().opened), (None, 0));
    }
}
