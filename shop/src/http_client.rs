//! Calls from one service to another: HTTP/1.1 + JSON over a pooled reqwest client.
//!
//! One [`ServiceClient`] per upstream, built once at start-up. Every call carries the service
//! credential and has a timeout (`--upstream-timeout-ms`). reqwest 0.12 never retries on its
//! own. With `--resilience` ([`crate::resilience`]) this client retries GETs, the calls it
//! knows to be idempotent, and (`full`) keeps a circuit breaker per upstream; other calls are
//! never retried here (the checkout saga's steps are idempotent, so the *client* may retry the
//! whole checkout).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::http::StatusCode;
use rand::Rng;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::auth::SERVICE_TOKEN_HEADER;
use crate::error::ApiError;
use crate::resilience::{CallPolicy, Resilience};
use crate::seam::ModuleError;

/// Calls one process makes to one upstream replica at the same time, at most (a client of N
/// replicas has N times as many slots); more wait for a slot.
///
/// Why a bound: reqwest's pool has no upper limit, so a burst of concurrent requests (after a
/// stall, say) opens a new connection per call, and on a service with one worker thread on a
/// shared core, setting up hundreds of connections costs far more than the calls themselves,
/// which prolongs the burst. 64 calls in flight keep any upstream busy; the rest queue here,
/// within the call's timeout.
pub const MAX_CALLS_IN_FLIGHT: usize = 64;

/// An upstream's whole answer.
pub struct Answer {
    pub status: reqwest::StatusCode,
    pub headers: HeaderMap,
    pub body: actix_web::web::Bytes,
}

/// One replica of an upstream: where it listens, and the calls this client (every clone) has
/// in flight to it right now.
#[derive(Debug)]
struct Replica {
    url: reqwest::Url,
    in_flight: AtomicUsize,
}

/// Counts a call in flight to a replica until dropped (the answer read, or the call given up).
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Clone, Debug)]
pub struct ServiceClient {
    /// Upstream name used in errors ("inventory").
    name: &'static str,
    /// Where requests are built for (the first replica); the replica a call goes to is chosen
    /// when it is sent ([`ServiceClient::choose_replica`]).
    base_url: String,
    /// Every replica of the upstream (one, unless the process hosting it runs several).
    replicas: Arc<[Replica]>,
    http: reqwest::Client,
    timeout: Duration,
    /// Shared by every clone: [`MAX_CALLS_IN_FLIGHT`] slots per replica. One pool for all
    /// replicas: a call takes a slot before its replica is chosen.
    slots: Arc<Semaphore>,
    /// Shared by every clone: the resilience profile, the breaker and the retry budget.
    policy: Arc<CallPolicy>,
    /// `splitbench_upstream_calls_total` of this upstream.
    calls: crate::telemetry::UpstreamCallCounters,
}

impl ServiceClient {
    /// A client of the upstream `name` at `base_urls`: one URL, or the replicas' URLs
    /// separated by commas, over which calls are balanced.
    pub fn new(name: &'static str, base_urls: &str, service_token: &str, timeout: Duration) -> anyhow::Result<Self> {
        let replicas: Vec<Replica> = base_urls
            .split(',')
            .map(|url| Ok(Replica { url: reqwest::Url::parse(url.trim())?, in_flight: AtomicUsize::new(0) }))
            .collect::<anyhow::Result<_>>()?;
        anyhow::ensure!(!replicas.is_empty(), "{name}: no upstream URL");
        let slots = MAX_CALLS_IN_FLIGHT * replicas.len();
        let mut headers = HeaderMap::new();
        let mut credential = HeaderValue::from_str(service_token)?;
        credential.set_sensitive(true);
        headers.insert(SERVICE_TOKEN_HEADER, credential);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(timeout)
            .connect_timeout(timeout)
            .tcp_nodelay(true)
            .pool_idle_timeout(crate::app::CLIENT_IDLE_TIMEOUT)
            .build()?;
        Ok(Self {
            name,
            base_url: replicas[0].url.as_str().trim_end_matches('/').to_string(),
            replicas: replicas.into(),
            http,
            timeout,
            slots: Arc::new(Semaphore::new(slots)),
            policy: Arc::new(CallPolicy::new(Resilience::None)),
            calls: crate::telemetry::upstream_call_counters(name),
        })
    }

    /// The same upstream under `resilience`.
    pub fn with_resilience(mut self, resilience: Resilience) -> Self {
        self.policy = Arc::new(CallPolicy::new(resilience));
        self
    }

    /// Whether `full`'s breaker for this upstream is open (refusing calls).
    pub fn breaker_open(&self) -> bool {
        self.policy.breaker.is_open()
    }

    /// Waits for one of the [`MAX_CALLS_IN_FLIGHT`] slots (no longer than `timeout`, and in
    /// `full` no longer than its bulkhead allows); hold it until the answer's body is read.
    async fn slot(&self, timeout: Duration) -> Result<SemaphorePermit<'_>, ModuleError> {
        let wait = self.policy.slot_wait(timeout);
        match tokio::time::timeout(wait, self.slots.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_closed)) => {
                Err(ModuleError::Unavailable { module: self.name, message: "its client is shut down".into() })
            }
            // All call slots stayed busy for the whole timeout.
            Err(_elapsed) if wait == timeout => Err(ModuleError::Timeout { module: self.name }),
            // `full`'s bulkhead: the upstream already has all the calls it may have.
            Err(_elapsed) => Err(ModuleError::Unavailable {
                module: self.name,
                message: format!("bulkhead full: {} calls in flight", self.slots_total()),
            }),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The call slots: [`MAX_CALLS_IN_FLIGHT`] per replica.
    fn slots_total(&self) -> usize {
        MAX_CALLS_IN_FLIGHT * self.replicas.len()
    }

    /// A request builder for `path` on this upstream, credential and timeout included; send it
    /// with [`ServiceClient::exchange`], which keeps the in-flight bound.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{}", self.base_url, path))
    }

    /// GET a JSON resource. Idempotent: retried as the resilience profile says, when the
    /// upstream failed or did not answer (not when it refused the call with a 4xx).
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ModuleError> {
        self.policy.call_begins();
        let mut attempt = 1;
        loop {
            let result = self.send(self.request(reqwest::Method::GET, path)).await;
            // Not once the breaker opened: it would refuse the retry anyway.
            let retryable = matches!(
                result,
                Err(ModuleError::Timeout { .. } | ModuleError::Unavailable { .. } | ModuleError::Failed { .. })
            ) && !self.breaker_open();
            let Some(wait) = retryable.then(|| self.policy.retry_after(attempt)).flatten() else {
                return result;
            };
            // No retry that could not finish within the request's deadline.
            if crate::deadline::remaining().is_some_and(|left| left <= wait + crate::deadline::HOP_MARGIN) {
                return result;
            }
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// GET a JSON resource that may not exist: 404 becomes `None`.
    pub async fn get_optional<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, ModuleError> {
        match self.get_json(path).await {
            Ok(found) => Ok(Some(found)),
            Err(ModuleError::Refused { status: 404, .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// POST a JSON body and read a JSON answer.
    pub async fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ModuleError> {
        self.send(self.request(reqwest::Method::POST, path).json(body)).await
    }

    /// Sends `request` (built with [`ServiceClient::request`]) in one of the
    /// [`MAX_CALLS_IN_FLIGHT`] slots and reads the whole answer, holding the slot until the body
    /// is in. Every call to the upstream goes through here. The call (slot wait included) takes
    /// at most `--upstream-timeout-ms`, and never longer than the current request's deadline.
    pub async fn exchange(&self, request: reqwest::RequestBuilder) -> Result<Answer, ApiError> {
        Ok(self.exchange_within(request, CallBudget::OneCall).await?)
    }

    /// As [`ServiceClient::exchange`], for a call that *is* the rest of the request (the
    /// gateway forwarding it): it may take all the time the request has left, even beyond
    /// `--upstream-timeout-ms`, because the callee runs several calls of its own within it.
    pub async fn forward(&self, request: reqwest::RequestBuilder) -> Result<Answer, ApiError> {
        Ok(self.exchange_within(request, CallBudget::WholeRequest).await?)
    }

    /// Every call to the upstream: the time it may take, a slot (the bulkhead), the breaker,
    /// then the exchange. Only a call that is sent counts (in `upstream_calls_total`, and for
    /// the breaker): one given up before it went out, for want of a slot or of time, or refused
    /// by the breaker, says nothing about the upstream's health and puts no load on it. So a
    /// full bulkhead never opens the breaker, and a probe the breaker allows is always sent.
    async fn exchange_within(
        &self,
        request: reqwest::RequestBuilder,
        budget: CallBudget,
    ) -> Result<Answer, ModuleError> {
        let started = tokio::time::Instant::now();
        let timeout = match crate::deadline::remaining() {
            None => self.timeout,
            Some(left) if left <= crate::deadline::HOP_MARGIN => {
                return Err(ModuleError::Timeout { module: self.name });
            }
            Some(left) => match budget {
                CallBudget::OneCall => left.min(self.timeout),
                CallBudget::WholeRequest => left,
            },
        };
        let _slot = self.slot(timeout).await?;
        if !self.policy.may_call() {
            return Err(ModuleError::Unavailable { module: self.name, message: "circuit breaker open".into() });
        }
        let left = timeout.saturating_sub(started.elapsed());
        let result = self.exchange_once(request, left).await;
        self.calls.count(result.is_ok());
        // Only calls that got no answer count against the upstream's breaker: a 5xx it answered
        // may be its own dependency failing (orders answering 503 because inventory is down),
        // and opening the breaker on it would refuse the calls that do not need that
        // dependency (measured: the gateway then refused order history during an inventory
        // crash, results/20261127T161047Z-faults).
        self.policy.ended(result.is_ok());
        result
    }

    /// Power of two choices (Mitzenmacher): of two replicas drawn at random, the one with
    /// fewer of this client's calls in flight (the first on a tie). Nearly as good as asking
    /// every replica, without a shared view: each caller balances by its own calls.
    fn choose_replica(&self) -> &Replica {
        let n = self.replicas.len();
        if n == 1 {
            return &self.replicas[0];
        }
        let mut rng = rand::rng();
        let first = rng.random_range(0..n);
        let second = (first + rng.random_range(1..n)) % n;
        let (a, b) = (&self.replicas[first], &self.replicas[second]);
        if b.in_flight.load(Ordering::Relaxed) < a.in_flight.load(Ordering::Relaxed) { b } else { a }
    }

    /// Sends `request` to a replica ([`ServiceClient::choose_replica`]), which may take
    /// `left`, and reads the whole answer.
    async fn exchange_once(&self, request: reqwest::RequestBuilder, left: Duration) -> Result<Answer, ModuleError> {
        let replica = self.choose_replica();
        replica.in_flight.fetch_add(1, Ordering::Relaxed);
        let _in_flight = InFlight(&replica.in_flight);
        let request = match self.replicas.len() {
            1 => request,
            _ => {
                let mut built = request.build().map_err(|e| ModuleError::from_transport(self.name, &e))?;
                let url = built.url_mut();
                // Only the address changes: the requests were built for the first replica.
                let _ = url.set_host(replica.url.host_str());
                let _ = url.set_port(replica.url.port());
                reqwest::RequestBuilder::from_parts(self.http.clone(), built)
            }
        };
        // Told the time left after the wait for a slot, so the callee's deadline is no later
        // than ours; a little earlier, so its answer arrives in time.
        let request = match crate::deadline::current() {
            Some(_) => request.header(
                crate::deadline::DEADLINE_HEADER,
                crate::deadline::header_for(left.saturating_sub(crate::deadline::HOP_MARGIN)),
            ),
            None => request,
        };
        let response = request.timeout(left).send().await.map_err(|e| ModuleError::from_transport(self.name, &e))?;
        let (status, headers) = (response.status(), response.headers().clone());
        let body = response.bytes().await.map_err(|e| ModuleError::from_transport(self.name, &e))?;
        Ok(Answer { status, headers, body })
    }

    /// Sends a request; a non-2xx answer becomes the upstream's own error (or a 502).
    async fn send<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> Result<T, ModuleError> {
        let Answer { status, body, .. } = self.exchange_within(request, CallBudget::OneCall).await?;
        let status = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        if !status.is_success() {
            return Err(ModuleError::from_answer(self.name, status, &body));
        }
        serde_json::from_slice(&body).map_err(|e| ModuleError::Failed {
            module: self.name,
            message: format!("answered an unexpected body: {e}"),
        })
    }

    /// The upstream's `/health`, for the gateway's readiness.
    pub async fn health(&self) -> Result<(), ModuleError> {
        self.get_json::<serde_json::Value>("/health").await.map(|_| ())
    }
}

/// How much of the request's remaining time one call may use.
#[derive(Debug, Clone, Copy)]
enum CallBudget {
    OneCall,
    WholeRequest,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_call_beyond_the_bound_waits_and_then_times_out_as_504() {
        let client = ServiceClient::new("inventory", "http://127.0.0.1:9", "token", Duration::from_millis(20))
            .expect("a client");
        let clone = client.clone();
        let mut held = Vec::new();
        for _ in 0..MAX_CALLS_IN_FLIGHT {
            held.push(clone.slot(client.timeout).await.expect("a free slot"));
        }
        // Every clone shares the slots: the next call finds none and gives up at its timeout.
        let err = client.slot(client.timeout).await.expect_err("no slot left");
        assert!(matches!(err, ModuleError::Timeout { module: "inventory" }), "{err}");
        drop(held.pop());
        assert!(client.slot(client.timeout).await.is_ok(), "a released slot is free again");
    }

    /// Every one of `client`'s call slots, held.
    async fn take_every_slot(client: &ServiceClient) -> Vec<SemaphorePermit<'_>> {
        let mut held = Vec::new();
        for _ in 0..MAX_CALLS_IN_FLIGHT {
            held.push(client.slot(client.timeout).await.expect("a free slot"));
        }
        held
    }

    #[tokio::test]
    async fn the_full_profiles_bulkhead_refuses_a_call_beyond_the_bound_instead_of_queueing_it() {
        // A timeout no test waits for: the refusal must come from the bulkhead, not the clock.
        let client = ServiceClient::new("inventory", "http://127.0.0.1:9", "token", Duration::from_secs(3600))
            .expect("a client")
            .with_resilience(Resilience::Full);
        let mut held = take_every_slot(&client).await;
        // Bounded, so a bulkhead that queued the call fails the test instead of hanging it.
        let refused = tokio::time::timeout(Duration::from_secs(5), client.slot(client.timeout)).await;
        let err = refused.expect("refused at once, not queued").expect_err("the bulkhead is full");
        assert!(matches!(err, ModuleError::Unavailable { module: "inventory", .. }), "{err}");
        drop(held.pop());
        assert!(client.slot(client.timeout).await.is_ok(), "a released slot is free again");
    }

    #[tokio::test]
    async fn a_call_the_bulkhead_refuses_is_not_a_call_and_never_opens_the_breaker() {
        let client = ServiceClient::new("bulkhead-full", "http://127.0.0.1:9", "token", Duration::from_secs(3600))
            .expect("a client")
            .with_resilience(Resilience::Full);
        let _held = take_every_slot(&client).await;
        // More refusals in a row than open a breaker; none of them was sent.
        for _ in 0..2 * crate::resilience::BREAKER_FAILURES {
            let call = tokio::time::timeout(Duration::from_secs(5), client.get_json::<serde_json::Value>("/x"));
            let err = call.await.expect("refused, not queued").expect_err("no slot");
            assert!(matches!(err, ModuleError::Unavailable { .. }), "{err}");
        }
        assert!(!client.breaker_open(), "a busy upstream is not a dead one");
        assert_eq!(crate::telemetry::upstream_calls("bulkhead-full"), 0, "nothing was sent");
    }

    #[tokio::test]
    async fn a_call_past_the_requests_deadline_is_not_sent() {
        // Port 9 (discard) refuses connections: `Unavailable` would mean the call was tried.
        let client =
            ServiceClient::new("payments", "http://127.0.0.1:9", "token", Duration::from_secs(2)).expect("a client");
        let past = std::time::Instant::now();
        let err =
            crate::deadline::within(past, client.get_json::<serde_json::Value>("/x")).await.expect_err("no time left");
        assert!(matches!(err, ModuleError::Timeout { module: "payments" }), "{err}");
    }

    /// `calls` GETs to a port that refuses connections, and the attempts they made.
    async fn attempts_against_a_dead_upstream(upstream: &'static str, resilience: Resilience, calls: u32) -> u64 {
        let client = ServiceClient::new(upstream, "http://127.0.0.1:9", "token", Duration::from_secs(2))
            .expect("a client")
            .with_resilience(resilience);
        for _ in 0..calls {
            let err = client.get_json::<serde_json::Value>("/x").await.expect_err("nobody listens");
            assert!(matches!(err, ModuleError::Unavailable { .. }), "{err}");
        }
        crate::telemetry::upstream_calls(upstream)
    }

    #[tokio::test]
    async fn naive_retries_multiply_calls_to_a_dead_upstream_and_the_full_profile_stops_them() {
        assert_eq!(attempts_against_a_dead_upstream("dead-none", Resilience::None, 20).await, 20);
        let naive = attempts_against_a_dead_upstream("dead-naive", Resilience::NaiveRetries, 20).await;
        assert_eq!(naive, 20 * u64::from(crate::resilience::MAX_ATTEMPTS), "every call tried 4 times");
        // The breaker opens after 5 failures in a row (retries included) and refuses the rest
        // without sending them.
        let full = attempts_against_a_dead_upstream("dead-full", Resilience::Full, 20).await;
        assert_eq!(full, u64::from(crate::resilience::BREAKER_FAILURES), "then the breaker refuses");
    }

    /// A replica for the balancing tests: answers every request with `{}` (after `gate`
    /// opens, if one is given), counting requests.
    async fn counting_replica(gate: Option<Arc<tokio::sync::Semaphore>>) -> (String, Arc<AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let count = Arc::new(AtomicUsize::new(0));
        let counted = count.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (counted, gate) = (counted.clone(), gate.clone());
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        // One request per header block (the tests send bodiless GETs).
                        while !buffer.windows(4).any(|w| w == b"\r\n\r\n") {
                            match stream.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let end = buffer.windows(4).position(|w| w == b"\r\n\r\n").expect("found") + 4;
                        buffer.drain(..end);
                        counted.fetch_add(1, Ordering::Relaxed);
                        if let Some(gate) = &gate {
                            let _ = gate.acquire().await;
                        }
                        let answer =
                            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
                        if stream.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (url, count)
    }

    #[tokio::test]
    async fn every_replica_adds_its_own_call_slots() {
        let client =
            ServiceClient::new("two", "http://127.0.0.1:9,http://127.0.0.1:10", "token", Duration::from_millis(20))
                .expect("a client");
        let mut held = Vec::new();
        for _ in 0..2 * MAX_CALLS_IN_FLIGHT {
            held.push(client.slot(client.timeout).await.expect("a free slot"));
        }
        assert!(client.slot(client.timeout).await.is_err(), "twice the slots of one, no more");
    }

    #[tokio::test]
    async fn calls_are_spread_over_every_replica() {
        let mut urls = Vec::new();
        let mut counts = Vec::new();
        for _ in 0..3 {
            let (url, count) = counting_replica(None).await;
            urls.push(url);
            counts.push(count);
        }
        let client = ServiceClient::new("spread", &urls.join(","), "token", Duration::from_secs(5)).expect("a client");
        for _ in 0..300 {
            client.get_json::<serde_json::Value>("/x").await.expect("answered");
        }
        let served: Vec<usize> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        assert_eq!(served.iter().sum::<usize>(), 300, "{served:?}");
        // One at a time, every replica is idle at each choice: the draws alone decide, about
        // 100 each. Below 50 has a probability under 1e-9.
        assert!(served.iter().all(|&n| n >= 50), "every replica takes a share: {served:?}");
    }

    #[tokio::test]
    async fn a_replica_with_calls_stuck_in_it_gets_no_more() {
        // The first replica holds every request until the gate opens; the others answer.
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let (stuck_url, stuck) = counting_replica(Some(gate.clone())).await;
        let (a_url, a) = counting_replica(None).await;
        let (b_url, b) = counting_replica(None).await;
        let client =
            ServiceClient::new("stuck", &[stuck_url, a_url, b_url].join(","), "token", Duration::from_secs(10))
                .expect("a client");
        let mut calls = Vec::new();
        for _ in 0..30 {
            let client = client.clone();
            calls.push(tokio::spawn(async move { client.get_json::<serde_json::Value>("/x").await }));
            // Each call answered (or stuck) before the next is chosen.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let stuck_calls = stuck.load(Ordering::Relaxed);
        // With one call stuck there, the stuck replica loses every draw against an idle one:
        // round robin would have sent it 10.
        assert!(stuck_calls <= 3, "the stuck replica got {stuck_calls} of 30");
        assert_eq!(stuck_calls + a.load(Ordering::Relaxed) + b.load(Ordering::Relaxed), 30);
        gate.add_permits(1000);
        for call in calls {
            call.await.expect("joined").expect("answered once the gate opens");
        }
    }
}
