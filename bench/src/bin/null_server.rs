//! `null-server`: an HTTP/1.1 server that does no work, to measure the load generator's own
//! ceiling (`splitbench sweep --arch null-server --mix health`).
//!
//! Against the shop, the highest rate a sweep reaches is the lower of two limits: what the
//! generator can send from its core and what the server can answer from its core (a `/health`
//! of the monolith costs its core about 8 µs, so near 100,000 requests/s the server is the one
//! saturating). This server answers every request with `200 {"status":"ok"}` at close to the
//! least cost an HTTP server can have: one thread, a current-thread tokio runtime, requests
//! framed with httparse, the answers to pipelined requests written together. What limits a
//! sweep against it is the generator.
//!
//! It accepts the shop's flags (the launcher passes the same ones to every process, and
//! `--hosts` to `shop-process`) and uses only `--host` and `--port`; like every shop process,
//! its first line says where it listens. Tests link it under the shop's binary names as a
//! stand-in.

use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ANSWER: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 15\r\n\r\n{\"status\":\"ok\"}";

/// The shop's flags, and `shop-process`'s `--hosts` (ignored).
#[derive(Parser)]
struct Args {
    #[arg(long)]
    hosts: Option<String>,
    #[command(flatten)]
    settings: shop::Settings,
}

fn main() -> anyhow::Result<()> {
    let Args { settings, .. } = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let host = settings.server.host.as_str();
        let listener = tokio::net::TcpListener::bind((host, settings.server.port.unwrap_or(0))).await?;
        let port = listener.local_addr()?.port();
        eprintln!("null-server: listening on {host}:{port}; answers every request with 200 {{\"status\":\"ok\"}}");
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, _) = accepted?;
                    stream.set_nodelay(true)?;
                    tokio::spawn(serve(stream));
                }
                _ = terminate.recv() => return Ok(()),
                _ = tokio::signal::ctrl_c() => return Ok(()),
            }
        }
    })
}

/// Answers every complete request on one connection until the client closes it.
async fn serve(mut stream: TcpStream) {
    let mut received = Vec::with_capacity(4096);
    let mut answers = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let read = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        received.extend_from_slice(&chunk[..read]);
        let Some(consumed) = complete_requests(&received, &mut answers) else {
            return; // Not HTTP: drop the connection.
        };
        received.drain(..consumed);
        if !answers.is_empty() {
            if stream.write_all(&answers).await.is_err() {
                return;
            }
            answers.clear();
        }
    }
}

/// Appends one answer per complete request at the start of `received` and returns how many
/// bytes those requests took (a partial request stays for the next read); `None` if the bytes
/// are not an HTTP request.
fn complete_requests(received: &[u8], answers: &mut Vec<u8>) -> Option<usize> {
    let mut consumed = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&received[consumed..]).ok()? {
            httparse::Status::Complete(head) => {
                let body = request
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .map(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<usize>().ok())
                    .unwrap_or(Some(0))?;
                if received.len() - consumed < head + body {
                    return Some(consumed);
                }
                consumed += head + body;
                answers.extend_from_slice(ANSWER);
            }
            httparse::Status::Partial => return Some(consumed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_each_complete_request_and_keeps_a_partial_one() {
        let get = b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n";
        let post = b"POST /x HTTP/1.1\r\ncontent-length: 3\r\n\r\nabc";
        let mut received = [get.as_slice(), post.as_slice(), b"GET /hea".as_slice()].concat();
        let mut answers = Vec::new();
        let consumed = complete_requests(&received, &mut answers);
        assert_eq!(consumed, Some(get.len() + post.len()));
        assert_eq!(answers, [ANSWER, ANSWER].concat());
        // A body that has not fully arrived is not answered yet.
        received = b"POST /x HTTP/1.1\r\ncontent-length: 3\r\n\r\nab".to_vec();
        answers.clear();
        assert_eq!(complete_requests(&received, &mut answers), Some(0));
        assert!(answers.is_empty());
        assert_eq!(complete_requests(b"\x00\x01 not http\r\n\r\n", &mut answers), None);
    }
}
