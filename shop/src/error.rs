//! The one error type of the public and internal APIs.
//!
//! Every failure, whatever its origin (validation, a missing row, a database fault, an upstream
//! service), becomes an [`ApiError`]: an HTTP status plus the JSON body
//! `{"error": {"code": "snake_case_code", "message": "..."}}`. Both architectures answer with
//! these, so a client cannot tell them apart by their errors.
//!
//! Upstream failures (microservices only) map to 502 (bad answer), 503 (unreachable) and
//! 504 (timed out). A monolith has no upstreams, so it never produces those three: that asymmetry
//! is the architecture, not a bug.

use std::borrow::Cow;

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};

/// Largest request body any endpoint accepts, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// An API failure: the status and code a client sees, and the message it reads.
#[derive(Debug, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Cow<'static, str>,
    pub message: String,
    /// Seconds after which a retry may succeed, sent as `Retry-After` (e.g. a checkout in progress).
    pub retry_after_secs: Option<u64>,
}

/// The JSON shape of every error response.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self { status, code: code.into(), message: message.into(), retry_after_secs: None }
    }
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    /// A well-formed request whose values are out of range or inconsistent.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", message)
    }
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message)
    }
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    /// True for failures of the server or its dependencies (5xx), as opposed to bad input.
    pub fn is_server_error(&self) -> bool {
        self.status.is_server_error()
    }

    /// Maps a body that failed to parse as JSON or that does not fit the expected shape.
    pub fn from_json_error(err: &JsonPayloadError) -> Self {
        match err {
            JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => payload_too_large(),
            JsonPayloadError::ContentType => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected a body with Content-Type: application/json",
            ),
            JsonPayloadError::Deserialize(e) if e.is_data() => {
                Self::bad_request("invalid_body", format!("the body does not match the expected shape: {e}"))
            }
            JsonPayloadError::Deserialize(e) => {
                Self::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
            }
            JsonPayloadError::Payload(actix_web::error::PayloadError::Overflow) => payload_too_large(),
            other => Self::bad_request("bad_body", format!("could not read the body: {other}")),
        }
    }
}

/// The one answer to a body over [`MAX_BODY_BYTES`], wherever it is detected.
pub fn payload_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("request bodies are limited to {MAX_BODY_BYTES} bytes"),
    )
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        if self.status.is_server_error() {
            // The boundary: the one place a failure is logged.
            tracing::error!(status = %self.status, code = %self.code, message = %self.message, "request failed");
        }
        let mut response = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after_secs {
            response.insert_header((actix_web::http::header::RETRY_AFTER, secs.to_string()));
        }
        response.json(ErrorBody { error: ErrorDetail { code: self.code.to_string(), message: self.message.clone() } })
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::PoolTimedOut => Self::unavailable("database_busy", "the database pool is exhausted"),
            other => Self::internal(format!("database error: {other}")),
        }
    }
}

/// Extractor configuration shared by every app, so that bad input is answered identically.
pub fn json_config() -> actix_web::web::JsonConfig {
    actix_web::web::JsonConfig::default()
        .limit(MAX_BODY_BYTES)
        .error_handler(|err, _req: &HttpRequest| ApiError::from_json_error(&err).into())
}

pub fn query_config() -> actix_web::web::QueryConfig {
    actix_web::web::QueryConfig::default().error_handler(|err: QueryPayloadError, _req: &HttpRequest| {
        let QueryPayloadError::Deserialize(e) = &err else {
            return ApiError::bad_request("invalid_query", err.to_string()).into();
        };
        ApiError::bad_request("invalid_query", format!("invalid query string: {e}")).into()
    })
}

pub fn path_config() -> actix_web::web::PathConfig {
    // `/api/products/abc` names nothing that can exist: answer as for an unknown id.
    actix_web::web::PathConfig::default()
        .error_handler(|_err: PathError, _req: &HttpRequest| ApiError::not_found("no such resource").into())
}

/// Fallback for unknown routes.
pub async fn route_not_found() -> HttpResponse {
    ApiError::not_found("no such route").error_response()
}

/// Fallback for known routes called with an unsupported method.
pub async fn method_not_allowed() -> HttpResponse {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this route")
        .error_response()
}
