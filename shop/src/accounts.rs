//! Accounts: registration and log-in, which issues signed bearer tokens.
//!
//! Public: `POST /api/accounts` (register), `POST /api/sessions` (log in). No other module calls
//! accounts: tokens are checked with the shared signing key (see [`crate::auth`]).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::auth::{TokenKeys, hash_password, hash_password_blocking, verify_password};
use crate::db::{Database, multi_row_insert, now_millis};
use crate::error::{ApiError, method_not_allowed};
use crate::seed;
use crate::settings::SeedSettings;

pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_CHARS: usize = 128;
pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_EMAIL_CHARS: usize = 254;

#[derive(Debug, Deserialize)]
pub struct Registration {
    pub email: String,
    pub password: String,
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub struct Credentials {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Account {
    pub id: i64,
    pub email: String,
    pub name: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Session {
    pub token: String,
    pub token_type: String,
    pub user_id: i64,
    pub expires_at: i64,
}

/// Normalises an email address (trimmed, lower-cased) and checks its shape.
pub fn normalise_email(email: &str) -> Result<String, ApiError> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= MAX_EMAIL_CHARS
        && match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains('@')
            }
            None => false,
        }
        && !email.chars().any(char::is_whitespace);
    if valid { Ok(email) } else { Err(ApiError::validation("email must be a valid address")) }
}

impl Registration {
    pub fn validate(self) -> Result<Self, ApiError> {
        let email = normalise_email(&self.email)?;
        let password_chars = self.password.chars().count();
        if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&password_chars) {
            return Err(ApiError::validation(format!(
                "password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
            )));
        }
        let name = self.name.trim().to_string();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(ApiError::validation(format!("name must be 1 to {MAX_NAME_CHARS} characters")));
        }
        Ok(Self { email, password: self.password, name })
    }
}

pub mod repo {
    use super::*;

    /// Inserts a user; `None` if the email is taken.
    pub async fn insert(
        db: &Database,
        email: &str,
        name: &str,
        password_hash: &str,
    ) -> Result<Option<i64>, sqlx::Error> {
        let row = sqlx::query(
            "INSERT INTO users (email, name, password_hash, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (email) DO NOTHING RETURNING id",
        )
        .bind(email)
        .bind(name)
        .bind(password_hash)
        .bind(now_millis())
        .fetch_optional(&db.pool)
        .await?;
        row.map(|r| r.try_get("id")).transpose()
    }

    /// The id and password hash stored for an email.
    pub async fn credentials(db: &Database, email: &str) -> Result<Option<(i64, String)>, sqlx::Error> {
        let row = sqlx::query("SELECT id, password_hash FROM users WHERE email = $1")
            .bind(email)
            .fetch_optional(&db.pool)
            .await?;
        row.map(|r| Ok((r.try_get("id")?, r.try_get("password_hash")?))).transpose()
    }
}

/// Seeds users 1..=N (`user<N>@example.com`), all with [`seed::SEED_PASSWORD`].
pub async fn seed(db: &Database, settings: &SeedSettings) -> Result<(), ApiError> {
    let existing: i64 = sqlx::query("SELECT COUNT(*) AS n FROM users").fetch_one(&db.pool).await?.try_get("n")?;
    if existing > 0 || settings.users == 0 {
        return Ok(());
    }
    // One hash serves every seeded user: hashing a thousand passwords would take most of the
    // seeding budget, and these are load-test identities with a published password anyway.
    let hash = tokio::task::spawn_blocking(|| hash_password_blocking(seed::SEED_PASSWORD))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    let ids: Vec<i64> = (1..=i64::from(settings.users)).collect();
    let mut tx = db.begin_write().await?;
    for chunk in ids.chunks(seed::BATCH_ROWS) {
        let sql = multi_row_insert("INSERT INTO users (id, email, name, password_hash, created_at)", 5, chunk.len());
        let mut query = sqlx::query(&sql);
        for &id in chunk {
            query = query
                .bind(id)
                .bind(seed::email_of_user(id))
                .bind(format!("User {id}"))
                .bind(hash.clone())
                .bind(seed::SEED_EPOCH_MS);
        }
        query.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    db.sync_id_sequence("users").await?;
    Ok(())
}

#[derive(Clone)]
pub struct AccountsState {
    pub db: Database,
}

pub fn configure_public(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/accounts").route(web::post().to(register)).default_service(web::to(method_not_allowed)),
    )
    .service(web::resource("/api/sessions").route(web::post().to(log_in)).default_service(web::to(method_not_allowed)));
}

async fn register(state: web::Data<AccountsState>, body: web::Json<Registration>) -> Result<HttpResponse, ApiError> {
    let registration = body.into_inner().validate()?;
    let hash = hash_password(registration.password).await?;
    match repo::insert(&state.db, &registration.email, &registration.name, &hash).await? {
        Some(id) => {
            Ok(HttpResponse::Created().json(Account { id, email: registration.email, name: registration.name }))
        }
        None => Err(ApiError::conflict("email_taken", "an account with this email already exists")),
    }
}

async fn log_in(
    state: web::Data<AccountsState>,
    keys: web::Data<TokenKeys>,
    body: web::Json<Credentials>,
) -> Result<HttpResponse, ApiError> {
    let invalid = || ApiError::unauthorized("invalid_credentials", "unknown email or wrong password");
    let credentials = body.into_inner();
    if credentials.password.chars().count() > MAX_PASSWORD_CHARS {
        return Err(invalid());
    }
    let Ok(email) = normalise_email(&credentials.email) else {
        return Err(invalid());
    };
    let Some((user_id, stored_hash)) = repo::credentials(&state.db, &email).await? else {
        return Err(invalid());
    };
    if !verify_password(credentials.password, stored_hash).await? {
        return Err(invalid());
    }
    let issued = keys.issue(user_id);
    Ok(HttpResponse::Ok().json(Session {
        token: issued.token,
        token_type: "Bearer".into(),
        user_id,
        expires_at: issued.expires_at,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(normalise_email(" Ann@Example.COM ").ok(), Some("ann@example.com".into()));
        for bad in ["", "ann", "ann@", "@example.com", "ann@example", "a b@example.com", "a@b@c.com"] {
            assert!(normalise_email(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn registrations_are_validated() {
        let reg = |password: &str, name: &str| Registration {
            email: "a@b.co".into(),
            password: password.into(),
            name: name.into(),
        };
        assert!(reg("short", "Ann").validate().is_err());
        assert!(reg("long enough", " ").validate().is_err());
        assert!(reg("long enough", "Ann").validate().is_ok());
    }
}
