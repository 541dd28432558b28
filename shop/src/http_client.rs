//! Calls from one service to another: HTTP/1.1 + JSON over a pooled reqwest client.
//!
//! One [`ServiceClient`] per upstream, built once at start-up. Every call carries the service
//! credential and has a timeout (`--upstream-timeout-ms`). reqwest 0.12 never retries on its
//! own, and neither does this client: a retry policy belongs to the caller that knows whether the
//! call is idempotent (the checkout saga retries nothing; its steps are idempotent so the
//! *client* may retry the whole checkout).

use std::time::Duration;

use actix_web::http::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::auth::SERVICE_TOKEN_HEADER;
use crate::error::ApiError;

#[derive(Clone, Debug)]
pub struct ServiceClient {
    /// Upstream name used in errors ("inventory").
    name: &'static str,
    base_url: String,
    http: reqwest::Client,
}

impl ServiceClient {
    pub fn new(name: &'static str, base_url: &str, service_token: &str, timeout: Duration) -> anyhow::Result<Self> {
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
        Ok(Self { name, base_url: base_url.trim_end_matches('/').to_string(), http })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// A request builder for `path` on this upstream, credential and timeout included.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{}", self.base_url, path))
    }

    /// GET a JSON resource.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    /// GET a JSON resource that may not exist: 404 becomes `None`.
    pub async fn get_optional<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, ApiError> {
        match self.get_json(path).await {
            Ok(found) => Ok(Some(found)),
            Err(err) if err.status == StatusCode::NOT_FOUND => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// POST a JSON body and read a JSON answer.
    pub async fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ApiError> {
        self.send(self.request(reqwest::Method::POST, path).json(body)).await
    }

    /// Sends a request; a non-2xx answer becomes the upstream's own error (or a 502).
    async fn send<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> Result<T, ApiError> {
        let response = request.send().await.map_err(|e| ApiError::from_transport(self.name, &e))?;
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let body = response.bytes().await.map_err(|e| ApiError::from_transport(self.name, &e))?;
        if !status.is_success() {
            return Err(ApiError::from_upstream(self.name, status, &body));
        }
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "upstream_error",
                format!("{} answered an unexpected body: {e}", self.name),
            )
        })
    }

    /// The upstream's `/health`, for the gateway's readiness.
    pub async fn health(&self) -> Result<(), ApiError> {
        self.get_json::<serde_json::Value>("/health").await.map(|_| ())
    }
}
