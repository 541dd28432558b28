//! The product page, `GET /api/products/{id}`: product + available stock + rating summary + a
//! few recent reviews, composed from three modules.
//!
//! The same [`ProductPages`] code runs in both architectures; only its three dependencies
//! differ (in-process in the monolith, HTTP clients in the gateway). The three lookups run
//! concurrently. The product itself is essential (unknown: 404; catalog down: its error); stock
//! and reviews are not: when either fails, the page still answers 200 with what it has and
//! names the missing parts in `"degraded"`.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::catalog::{Product, SharedCatalog};
use crate::error::{ApiError, method_not_allowed};
use crate::inventory::SharedInventory;
use crate::reviews::{RatingSummary, Review, SharedReviews};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StockView {
    pub available: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProductPage {
    pub product: Product,
    /// `null` when inventory could not be asked (then `"inventory"` is in `degraded`).
    pub stock: Option<StockView>,
    /// `null` when reviews could not be asked (then `"reviews"` is in `degraded`).
    pub rating: Option<RatingSummary>,
    pub recent_reviews: Vec<Review>,
    /// The parts that are missing from this page because their module failed.
    pub degraded: Vec<String>,
}

/// Composes product pages from the three modules that hold their parts.
#[derive(Clone)]
pub struct ProductPages {
    pub catalog: SharedCatalog,
    pub inventory: SharedInventory,
    pub reviews: SharedReviews,
}

impl ProductPages {
    pub async fn compose(&self, product_id: i64) -> Result<ProductPage, ApiError> {
        let (product, stock, digest) = tokio::join!(
            self.catalog.product(product_id),
            self.inventory.available(product_id),
            self.reviews.digest(product_id),
        );
        let product = product?.ok_or_else(|| ApiError::not_found("no such product"))?;
        let mut degraded = Vec::new();
        let stock = match stock {
            Ok(available) => Some(StockView { available: available.unwrap_or(0) }),
            Err(err) => {
                tracing::warn!(product_id, error = %err, "product page without stock");
                degraded.push("inventory".to_string());
                None
            }
        };
        let (rating, recent_reviews) = match digest {
            Ok(digest) => (Some(digest.rating), digest.recent),
            Err(err) => {
                tracing::warn!(product_id, error = %err, "product page without reviews");
                degraded.push("reviews".to_string());
                (None, Vec::new())
            }
        };
        Ok(ProductPage { product, stock, rating, recent_reviews, degraded })
    }
}

pub fn configure_public(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/products/{id}")
            .route(web::get().to(product_page))
            .default_service(web::to(method_not_allowed)),
    );
}

async fn product_page(pages: web::Data<ProductPages>, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(pages.compose(id.into_inner()).await?))
}
