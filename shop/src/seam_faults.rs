//! Faults at the product page's module seams, for fault runs: a call into the catalog, the
//! inventory or the reviews module made slow, or made to fail for a share of calls, call site
//! by call site (Filibuster's idea: each call a caller makes can fail on its own).
//!
//! The layer wraps the module's trait ([`Catalog`], [`Inventory`], [`Reviews`]) where the
//! product page composes its parts, so the monolith's in-process calls and the gateway's HTTP
//! calls pass through the same code: `FaultyInventory` around a `LocalInventory` in one
//! process, around an `InventoryClient` in the other. Only the product page's seams are wrapped:
//! the checkout's differ by design (the monolith checks out in one local transaction, with no
//! seam to fault; the microservices run a saga over HTTP), so a fault there would not be the
//! same fault on both sides.
//!
//! The layer exists only when a process starts with `--faults-enabled`: then its admin routes
//! (`GET`, `POST`, `DELETE /admin/faults`) set the faults, behind the service credential. Without
//! the flag nothing is wrapped and the routes do not exist.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, web};
use async_trait::async_trait;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::auth::{ServiceCredential, require_service_credential};
use crate::catalog::{Catalog, Product, SharedCatalog};
use crate::error::ApiError;
use crate::inventory::{CommitOutcome, Inventory, ReleaseOutcome, ReservationLine, ReserveOutcome, SharedInventory};
use crate::reviews::{ReviewDigest, Reviews, SharedReviews};
use crate::seam::ModuleError;

/// The seams the layer wraps, each with the calls it can fault.
pub const SEAMS: [(&str, &[&str]); 3] = [
    ("catalog", &["product", "products_by_ids"]),
    ("inventory", &["available", "reserve", "commit", "release"]),
    ("reviews", &["digest"]),
];

/// The longest delay a fault may add.
pub const MAX_DELAY_MS: u64 = 60_000;

/// How a faulted call fails: as a 500 or a 503 answer would, or as a reset connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SeamFailure {
    #[default]
    Status500,
    Status503,
    Reset,
}

/// One fault: which seam and call (every call of the seam without one), how much later, and
/// which share of the calls fail, how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeamFault {
    pub module: String,
    #[serde(default)]
    pub call: Option<String>,
    #[serde(default)]
    pub delay_ms: u64,
    #[serde(default)]
    pub failure_share: f64,
    #[serde(default)]
    pub failure: SeamFailure,
}

impl SeamFault {
    fn validate(&self) -> Result<(), ApiError> {
        let Some((_, calls)) = SEAMS.iter().find(|(module, _)| *module == self.module) else {
            return Err(ApiError::bad_request("unknown_seam", "module must be catalog, inventory or reviews"));
        };
        if let Some(call) = &self.call
            && !calls.contains(&call.as_str())
        {
            return Err(ApiError::bad_request(
                "unknown_call",
                format!("{} has no call {call} (calls: {})", self.module, calls.join(", ")),
            ));
        }
        if self.delay_ms > MAX_DELAY_MS {
            return Err(ApiError::bad_request("delay_too_long", format!("delay_ms must be at most {MAX_DELAY_MS}")));
        }
        if !(0.0..=1.0).contains(&self.failure_share) {
            return Err(ApiError::bad_request("bad_share", "failure_share must be between 0 and 1"));
        }
        Ok(())
    }
}

/// The faults in force in one process, shared by its wrapped seams and its admin routes.
#[derive(Clone)]
pub struct SeamFaults {
    faults: Arc<RwLock<Vec<SeamFault>>>,
    /// Which calls fail: seeded, so a run can be repeated call for call.
    rng: Arc<Mutex<StdRng>>,
}

impl SeamFaults {
    pub fn new(seed: u64) -> Self {
        Self { faults: Arc::default(), rng: Arc::new(Mutex::new(StdRng::seed_from_u64(seed))) }
    }

    /// Replaces the faults in force, after checking every one.
    pub fn set(&self, faults: Vec<SeamFault>) -> Result<(), ApiError> {
        for fault in &faults {
            fault.validate()?;
        }
        *self.faults.write().expect("faults lock") = faults;
        Ok(())
    }

    pub fn current(&self) -> Vec<SeamFault> {
        self.faults.read().expect("faults lock").clone()
    }

    /// Before a call into `module`'s `call`: waits the fault's delay, then fails it if its
    /// share says so.
    pub async fn enter(&self, module: &'static str, call: &'static str) -> Result<(), ModuleError> {
        let fault = self
            .faults
            .read()
            .expect("faults lock")
            .iter()
            .find(|f| f.module == module && f.call.as_deref().is_none_or(|c| c == call))
            .cloned();
        let Some(fault) = fault else { return Ok(()) };
        if fault.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(fault.delay_ms)).await;
        }
        let fails =
            fault.failure_share > 0.0 && self.rng.lock().expect("rng lock").random::<f64>() < fault.failure_share;
        if !fails {
            return Ok(());
        }
        let message = format!("injected at the {module} seam ({call})");
        Err(match fault.failure {
            SeamFailure::Status500 => ModuleError::Failed { module, message: format!("500 {message}") },
            SeamFailure::Status503 => ModuleError::Failed { module, message: format!("503 {message}") },
            SeamFailure::Reset => ModuleError::Unavailable { module, message: format!("connection reset {message}") },
        })
    }

    /// The product page's three seams wrapped in this layer.
    pub fn wrap(
        &self,
        catalog: SharedCatalog,
        inventory: SharedInventory,
        reviews: SharedReviews,
    ) -> (SharedCatalog, SharedInventory, SharedReviews) {
        (
            Arc::new(FaultyCatalog { inner: catalog, faults: self.clone() }),
            Arc::new(FaultyInventory { inner: inventory, faults: self.clone() }),
            Arc::new(FaultyReviews { inner: reviews, faults: self.clone() }),
        )
    }
}

pub struct FaultyCatalog {
    inner: SharedCatalog,
    faults: SeamFaults,
}

#[async_trait]
impl Catalog for FaultyCatalog {
    async fn product(&self, id: i64) -> Result<Option<Product>, ModuleError> {
        self.faults.enter("catalog", "product").await?;
        self.inner.product(id).await
    }
    async fn products_by_ids(&self, ids: &[i64]) -> Result<Vec<Product>, ModuleError> {
        self.faults.enter("catalog", "products_by_ids").await?;
        self.inner.products_by_ids(ids).await
    }
}

pub struct FaultyInventory {
    inner: SharedInventory,
    faults: SeamFaults,
}

#[async_trait]
impl Inventory for FaultyInventory {
    async fn available(&self, product_id: i64) -> Result<Option<i64>, ModuleError> {
        self.faults.enter("inventory", "available").await?;
        self.inner.available(product_id).await
    }
    async fn reserve(&self, reservation_key: &str, lines: &[ReservationLine]) -> Result<ReserveOutcome, ModuleError> {
        self.faults.enter("inventory", "reserve").await?;
        self.inner.reserve(reservation_key, lines).await
    }
    async fn commit(&self, reservation_key: &str) -> Result<CommitOutcome, ModuleError> {
        self.faults.enter("inventory", "commit").await?;
        self.inner.commit(reservation_key).await
    }
    async fn release(&self, reservation_key: &str) -> Result<ReleaseOutcome, ModuleError> {
        self.faults.enter("inventory", "release").await?;
        self.inner.release(reservation_key).await
    }
}

pub struct FaultyReviews {
    inner: SharedReviews,
    faults: SeamFaults,
}

#[async_trait]
impl Reviews for FaultyReviews {
    async fn digest(&self, product_id: i64) -> Result<ReviewDigest, ModuleError> {
        self.faults.enter("reviews", "digest").await?;
        self.inner.digest(product_id).await
    }
}

/// The body of `POST /admin/faults`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetFaults {
    pub faults: Vec<SeamFault>,
}

/// The admin routes, behind the service credential (`credential`).
pub fn configure_admin(cfg: &mut web::ServiceConfig, faults: SeamFaults, credential: ServiceCredential) {
    cfg.service(
        web::scope("/admin/faults")
            .app_data(web::Data::new(faults))
            .app_data(web::Data::new(credential))
            .wrap(from_fn(require_service_credential))
            .route("", web::get().to(list))
            .route("", web::post().to(set))
            .route("", web::delete().to(clear)),
    );
}

async fn list(faults: web::Data<SeamFaults>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "faults": faults.current() }))
}

async fn set(faults: web::Data<SeamFaults>, body: web::Json<SetFaults>) -> Result<HttpResponse, ApiError> {
    faults.set(body.into_inner().faults)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "faults": faults.current() })))
}

async fn clear(faults: web::Data<SeamFaults>) -> HttpResponse {
    let _ = faults.set(Vec::new());
    HttpResponse::Ok().json(serde_json::json!({ "faults": [] }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(module: &str, call: Option<&str>, delay_ms: u64, failure_share: f64) -> SeamFault {
        SeamFault {
            module: module.into(),
            call: call.map(Into::into),
            delay_ms,
            failure_share,
            failure: SeamFailure::Status503,
        }
    }

    #[tokio::test]
    async fn a_fault_slows_or_fails_only_its_own_call() {
        let faults = SeamFaults::new(1);
        assert!(faults.enter("inventory", "available").await.is_ok(), "no fault, no effect");
        faults.set(vec![fault("inventory", Some("available"), 0, 1.0)]).expect("valid");
        let failed = faults.enter("inventory", "available").await.expect_err("every call fails");
        assert!(matches!(failed, ModuleError::Failed { module: "inventory", .. }), "{failed:?}");
        assert!(faults.enter("inventory", "reserve").await.is_ok(), "another call site");
        assert!(faults.enter("catalog", "product").await.is_ok(), "another seam");

        faults.set(vec![fault("reviews", None, 50, 0.0)]).expect("valid");
        let started = std::time::Instant::now();
        assert!(faults.enter("reviews", "digest").await.is_ok(), "slow, not failing");
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[tokio::test]
    async fn a_share_fails_about_that_share_of_calls_the_same_way_for_a_seed() {
        let run = |seed| async move {
            let faults = SeamFaults::new(seed);
            faults.set(vec![fault("catalog", None, 0, 0.25)]).expect("valid");
            let mut failed = Vec::new();
            for _ in 0..2000 {
                failed.push(faults.enter("catalog", "product").await.is_err());
            }
            failed
        };
        let first = run(9).await;
        let share = first.iter().filter(|f| **f).count() as f64 / first.len() as f64;
        // 2,000 draws at 25%: 3.5 standard deviations is 0.034.
        assert!((share - 0.25).abs() < 0.034, "{share}");
        assert_eq!(run(9).await, first, "the same seed fails the same calls");
    }

    #[test]
    fn bad_faults_are_refused() {
        let faults = SeamFaults::new(1);
        for bad in [
            fault("payments", None, 0, 0.5),
            fault("inventory", Some("steal"), 0, 0.5),
            fault("inventory", None, MAX_DELAY_MS + 1, 0.0),
            fault("inventory", None, 0, 1.5),
            fault("inventory", None, 0, -0.1),
        ] {
            assert_eq!(faults.set(vec![bad.clone()]).map_err(|e| e.status.as_u16()), Err(400), "{bad:?}");
        }
        assert!(faults.current().is_empty(), "nothing set by a refused request");
    }
}
