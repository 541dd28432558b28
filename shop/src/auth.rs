//! Who is calling: signed user tokens, password hashing, and the service credential.
//!
//! A user token is `v1.<user id>.<expiry ms>.<signature>`, the signature being HMAC-SHA256 over
//! the first three parts, so any process holding the secret can check a token without a
//! database read or a call to the accounts service. The gateway checks tokens before routing;
//! services check them again, with the same code the monolith runs.
//!
//! Internal routes of the microservices require the service credential (header
//! [`SERVICE_TOKEN_HEADER`]); a request without it gets 401.

use std::future::{Ready, ready};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpRequest, web};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::db::now_millis;
use crate::error::ApiError;

/// Header that carries the service-to-service credential.
pub const SERVICE_TOKEN_HEADER: &str = "x-service-token";

/// Signs and checks user tokens.
#[derive(Clone)]
pub struct TokenKeys {
    secret: Vec<u8>,
    ttl: Duration,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

/// A freshly signed token and when it stops being accepted.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub expires_at: i64,
}

impl TokenKeys {
    pub fn new(secret: &str, ttl: Duration) -> Self {
        Self { secret: secret.as_bytes().to_vec(), ttl }
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC accepts keys of any length")
    }

    pub fn issue(&self, user_id: i64) -> IssuedToken {
        self.issue_at(user_id, now_millis())
    }

    fn issue_at(&self, user_id: i64, now_ms: i64) -> IssuedToken {
        let expires_at = now_ms + self.ttl.as_millis() as i64;
        let claims = format!("v1.{user_id}.{expires_at}");
        let mut mac = self.mac();
        mac.update(claims.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        IssuedToken { token: format!("{claims}.{signature}"), expires_at }
    }

    /// The user id a token was issued to, if it is well-formed, correctly signed and unexpired.
    pub fn verify(&self, token: &str) -> Result<i64, ApiError> {
        self.verify_at(token, now_millis())
    }

    fn verify_at(&self, token: &str, now_ms: i64) -> Result<i64, ApiError> {
        let invalid = || ApiError::unauthorized("invalid_token", "the token is malformed, forged or expired");
        let (claims, signature) = token.rsplit_once('.').ok_or_else(invalid)?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| invalid())?;
        let mut mac = self.mac();
        mac.update(claims.as_bytes());
        mac.verify_slice(&signature).map_err(|_| invalid())?;
        let mut parts = claims.split('.');
        let (Some("v1"), Some(user), Some(expiry), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let user_id: i64 = user.parse().map_err(|_| invalid())?;
        let expires_at: i64 = expiry.parse().map_err(|_| invalid())?;
        if expires_at <= now_ms {
            return Err(invalid());
        }
        Ok(user_id)
    }
}

/// The user a request acts for, from its `Authorization: Bearer` token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthenticatedUser(pub i64);

impl AuthenticatedUser {
    pub fn from_request_head(req: &HttpRequest) -> Result<Self, ApiError> {
        let keys = req
            .app_data::<web::Data<TokenKeys>>()
            .ok_or_else(|| ApiError::internal("token keys are not configured"))?;
        let header = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing_token", "this endpoint needs a bearer token"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or_else(|| ApiError::unauthorized("invalid_token", "expected 'Authorization: Bearer <token>'"))?;
        keys.verify(token.trim()).map(AuthenticatedUser)
    }
}

impl FromRequest for AuthenticatedUser {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(Self::from_request_head(req))
    }
}

/// The Argon2id parameters of every stored password: 4 MiB, one pass. Deliberately light so that
/// a login costs milliseconds, not tens of them, and does not drown the comparison; both
/// architectures pay the same.
fn password_hasher() -> Argon2<'static> {
    let params = Params::new(4096, 1, 1, None).expect("constant Argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password on the blocking pool, so that the CPU-heavy work does not stall the
/// actix worker's event loop.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || hash_password_blocking(&password))
        .await
        .map_err(|e| ApiError::internal(format!("password hashing task failed: {e}")))?
}

pub fn hash_password_blocking(password: &str) -> Result<String, ApiError> {
    let mut salt_bytes = [0u8; 16];
    rand::fill(&mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| ApiError::internal(e.to_string()))?;
    password_hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| ApiError::internal(format!("password hashing failed: {e}")))
}

/// Checks a password against a stored hash, on the blocking pool.
pub async fn verify_password(password: String, stored_hash: String) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || {
        let parsed =
            PasswordHash::new(&stored_hash).map_err(|e| ApiError::internal(format!("bad stored hash: {e}")))?;
        Ok(password_hasher().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await
    .map_err(|e| ApiError::internal(format!("password check task failed: {e}")))?
}

/// The credential services demand on internal routes.
#[derive(Clone, Debug)]
pub struct ServiceCredential(pub String);

impl ServiceCredential {
    pub fn accepts(&self, presented: &[u8]) -> bool {
        // Constant-time comparison through the HMAC verifier would be overkill here; compare
        // lengths and then every byte so that timing does not reveal a matching prefix.
        let expected = self.0.as_bytes();
        expected.len() == presented.len() && expected.iter().zip(presented).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

/// Middleware of every microservice's internal routes: 401 unless the service credential is
/// presented.
pub async fn require_service_credential(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let allowed = match (req.app_data::<web::Data<ServiceCredential>>(), req.headers().get(SERVICE_TOKEN_HEADER)) {
        (Some(credential), Some(presented)) => credential.accepts(presented.as_bytes()),
        _ => false,
    };
    if !allowed {
        return Err(ApiError::unauthorized(
            "service_credential_required",
            "internal routes require the service credential",
        )
        .into());
    }
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new("test-secret", Duration::from_secs(60))
    }

    #[test]
    fn a_token_verifies_to_its_user_until_it_expires() {
        let issued = keys().issue_at(7, 1_000);
        assert_eq!(keys().verify_at(&issued.token, 1_001).ok(), Some(7));
        assert!(keys().verify_at(&issued.token, issued.expires_at).is_err());
    }

    #[test]
    fn a_token_with_a_changed_user_or_foreign_key_is_rejected() {
        let issued = keys().issue_at(7, 1_000);
        let forged = issued.token.replacen("v1.7.", "v1.8.", 1);
        assert!(keys().verify_at(&forged, 1_001).is_err());
        let other = TokenKeys::new("other-secret", Duration::from_secs(60));
        assert!(other.verify_at(&issued.token, 1_001).is_err());
        assert!(keys().verify_at("garbage", 1_001).is_err());
    }

    #[test]
    fn passwords_verify_only_against_their_own_hash() {
        let hash = hash_password_blocking("correct horse").expect("hashing works");
        let parsed = PasswordHash::new(&hash).expect("hash parses");
        assert!(password_hasher().verify_password(b"correct horse", &parsed).is_ok());
        assert!(password_hasher().verify_password(b"wrong horse", &parsed).is_err());
    }

    #[test]
    fn the_service_credential_must_match_exactly() {
        let credential = ServiceCredential("abc".into());
        assert!(credential.accepts(b"abc"));
        assert!(!credential.accepts(b"abd"));
        assert!(!credential.accepts(b"ab"));
    }
}
