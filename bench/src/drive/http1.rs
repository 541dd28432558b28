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

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::PlannedRequest;
use crate::record::Failure;

/// An answer: status and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: BytesMut,
}

/// One keep-alive connection and its read buffer.
struct Connection {
    stream: TcpStream,
    buffer: BytesMut,
}

/// A pool of keep-alive connections to one server.
#[derive(Clone)]
pub struct LoadClient {
    address: SocketAddr,
    host: Arc<str>,
    timeout: Duration,
    idle: Arc<Mutex<Vec<Connection>>>,
}

impl LoadClient {
    /// How long a request may take before it counts as timed out.
    pub fn timeout(&self) -> Duration {
        self.timeout
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
        Ok(Self { address, host: Arc::from(authority), timeout, idle: Arc::new(Mutex::new(Vec::new())) })
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

    /// Sends `wire` (from [`LoadClient::encode`]) and reads the answer, within the timeout.
    pub async fn send(&self, wire: &[u8]) -> Result<Answer, Failure> {
        let pooled = self.idle.lock().expect("pool lock").pop();
        let mut connection = match pooled {
            Some(connection) => connection,
            None => self.connect().await?,
        };
        let exchange = async {
            connection.stream.write_all(wire).await.map_err(|_| Failure::Transport)?;
            read_answer(&mut connection).await
        };
        let (answer, keep_alive) =
            tokio::time::timeout(self.timeout, exchange).await.map_err(|_| Failure::Timeout)??;
        if keep_alive {
            self.idle.lock().expect("pool lock").push(connection);
        }
        Ok(answer)
    }

    async fn connect(&self) -> Result<Connection, Failure> {
        let stream = tokio::time::timeout(self.timeout, TcpStream::connect(self.address))
            .await
            .map_err(|_| Failure::Timeout)?
            .map_err(|_| Failure::Connect)?;
        stream.set_nodelay(true).map_err(|_| Failure::Connect)?;
        Ok(Connection { stream, buffer: BytesMut::with_capacity(16 * 1024) })
    }
}

/// Reads one answer; says whether the connection may be reused.
async fn read_answer(connection: &mut Connection) -> Result<(Answer, bool), Failure> {
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
}
