//! What a call from one module to another can fail with, whichever way it travels.
//!
//! The traits between modules ([`crate::catalog::Catalog`], [`crate::inventory::Inventory`],
//! [`crate::reviews::Reviews`], [`crate::payments::Payments`]) return a [`ModuleError`], the
//! same for the in-process implementation and the HTTP client, so the caller decides by *kind*
//! (unavailable, timed out, refused...) and never by comparing another module's error codes.
//! Outcomes that are not failures (stock short, a charge declined, a key already released)
//! are not errors at all: they are values of the call's result type.
//!
//! At the public edge a `ModuleError` becomes an [`ApiError`]: a refused internal call is the
//! caller's bug (500, in both architectures), an unreachable, slow or failing module is 503, 504
//! or 502 (only the microservices produce those, as before), and a database fault keeps its
//! usual mapping. The callee's own error code and message go to the log, never to the client.

use actix_web::http::StatusCode;

use crate::error::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// The call's values were refused by the module's own checks (in-process).
    #[error("invalid: {0}")]
    Invalid(String),
    /// The module (over HTTP) refused the call with a 4xx: a bug in the caller or its settings.
    #[error("{module} refused the call ({status}): {message}")]
    Refused { module: &'static str, status: u16, message: String },
    /// The module could not be reached (connection refused or reset, or its client is closed).
    #[error("{module} is unavailable: {message}")]
    Unavailable { module: &'static str, message: String },
    /// No answer in time (its timeout, or the request's deadline).
    #[error("{module} did not answer in time")]
    Timeout { module: &'static str },
    /// The module failed (a 5xx) or answered something that does not parse.
    #[error("{module} failed: {message}")]
    Failed { module: &'static str, message: String },
    /// The module's own database failed (in-process).
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A failure already expressed as the public error it must be (e.g. the module's internal
    /// state is inconsistent).
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl ModuleError {
    /// How the module answers its own caller over HTTP (internal routes): the values it
    /// refused are the caller's 422; everything else as at the public edge.
    pub fn into_callee_answer(self) -> ApiError {
        match self {
            Self::Invalid(message) => ApiError::validation(message),
            other => other.into(),
        }
    }

    /// Maps a transport failure of a call to `module`.
    pub fn from_transport(module: &'static str, err: &reqwest::Error) -> Self {
        if err.is_timeout() {
            Self::Timeout { module }
        } else if err.is_connect() {
            Self::Unavailable { module, message: "connection refused".into() }
        } else {
            Self::Failed { module, message: format!("call failed: {err}") }
        }
    }

    /// Maps a non-2xx answer of `module`; the body's error message is kept, its code is not.
    pub fn from_answer(module: &'static str, status: StatusCode, body: &[u8]) -> Self {
        let message = serde_json::from_slice::<crate::error::ErrorBody>(body)
            .map(|parsed| format!("{} ({})", parsed.error.message, parsed.error.code))
            .unwrap_or_else(|_| format!("answered {status} with an unexpected body"));
        if status.is_client_error() {
            Self::Refused { module, status: status.as_u16(), message }
        } else {
            Self::Failed { module, message }
        }
    }
}

impl From<ModuleError> for ApiError {
    fn from(err: ModuleError) -> Self {
        match err {
            // A module refused a call another module made: a bug (in the caller or the
            // settings), the same 500 whichever way the call travelled; the detail is logged.
            ModuleError::Invalid(_) | ModuleError::Refused { .. } => {
                tracing::error!(error = %err, "an internal call between modules was refused");
                ApiError::internal("an internal call between modules was refused")
            }
            ModuleError::Unavailable { module, .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "upstream_unavailable",
                format!("{module} is unreachable"),
            ),
            ModuleError::Timeout { module } => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
                format!("{module} did not answer in time"),
            ),
            ModuleError::Failed { module, message } => {
                ApiError::new(StatusCode::BAD_GATEWAY, "upstream_error", format!("{module} failed: {message}"))
            }
            ModuleError::Database(db) => ApiError::from(db),
            ModuleError::Api(api) => api,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_modules_error_code_is_never_relayed_as_the_public_code() {
        let body = br#"{"error":{"code":"charge_key_reused","message":"different amount"}}"#;
        let refused = ModuleError::from_answer("payments", StatusCode::CONFLICT, body);
        let public = ApiError::from(refused);
        assert_eq!((public.status, public.code.as_ref()), (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"));
        assert!(!public.message.contains("charge_key_reused"), "not relayed: {}", public.message);

        let failed = ApiError::from(ModuleError::from_answer("inventory", StatusCode::SERVICE_UNAVAILABLE, body));
        assert_eq!((failed.status, failed.code.as_ref()), (StatusCode::BAD_GATEWAY, "upstream_error"));
    }

    #[test]
    fn kinds_map_to_the_documented_statuses() {
        let status = |e: ModuleError| ApiError::from(e).status;
        assert_eq!(status(ModuleError::Timeout { module: "x" }), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(
            status(ModuleError::Unavailable { module: "x", message: String::new() }),
            StatusCode::SERVICE_UNAVAILABLE
        );
        // Refused in-process or over HTTP: the same 500 to the client; the callee's own caller
        // (over HTTP) gets a 422.
        assert_eq!(status(ModuleError::Invalid("bad".into())), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(ModuleError::Invalid("bad".into()).into_callee_answer().status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}
