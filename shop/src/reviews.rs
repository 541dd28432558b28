//! Reviews: ratings and texts, one review per user per product, and a rating summary.
//!
//! Public: `GET /api/products/{id}/reviews?page=&per_page=`, `POST /api/products/{id}/reviews`
//! (bearer token). Internal: `GET /internal/reviews/{product_id}/digest` (the product page's
//! rating summary and most recent reviews).

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use async_trait::async_trait;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::auth::AuthenticatedUser;
use crate::catalog::SharedCatalog;
use crate::db::{Database, multi_row_insert, now_millis};
use crate::error::{ApiError, method_not_allowed};
use crate::http_client::ServiceClient;
use crate::pagination::{Page, PageRequest};
use crate::seam::ModuleError;
use crate::seed;
use crate::settings::SeedSettings;

pub const MAX_BODY_CHARS: usize = 2_000;
/// Reviews shown on the product page.
pub const RECENT_ON_PAGE: i64 = 5;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Review {
    pub id: i64,
    pub product_id: i64,
    pub user_id: i64,
    pub rating: i64,
    pub body: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RatingSummary {
    pub count: i64,
    /// Mean rating rounded to two decimals; `null` without reviews.
    pub average: Option<f64>,
}

impl RatingSummary {
    pub fn from_totals(count: i64, sum: i64) -> Self {
        let average = (count > 0).then(|| (sum as f64 / count as f64 * 100.0).round() / 100.0);
        Self { count, average }
    }
}

/// What the product page shows of a product's reviews.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReviewDigest {
    pub rating: RatingSummary,
    pub recent: Vec<Review>,
}

#[async_trait]
pub trait Reviews: Send + Sync {
    async fn digest(&self, product_id: i64) -> Result<ReviewDigest, ModuleError>;
}

#[derive(Clone, Debug)]
pub struct LocalReviews(pub Database);

#[async_trait]
impl Reviews for LocalReviews {
    async fn digest(&self, product_id: i64) -> Result<ReviewDigest, ModuleError> {
        Ok(repo::digest(&self.0, product_id, RECENT_ON_PAGE).await?)
    }
}

#[derive(Clone, Debug)]
pub struct ReviewsClient(pub ServiceClient);

#[async_trait]
impl Reviews for ReviewsClient {
    async fn digest(&self, product_id: i64) -> Result<ReviewDigest, ModuleError> {
        self.0.get_json(&format!("/internal/reviews/{product_id}/digest")).await
    }
}

pub type SharedReviews = Arc<dyn Reviews>;

/// A new review as posted.
#[derive(Debug, Deserialize)]
pub struct NewReview {
    pub rating: i64,
    pub body: String,
}

impl NewReview {
    pub fn validate(self) -> Result<Self, ApiError> {
        if !(1..=5).contains(&self.rating) {
            return Err(ApiError::validation("rating must be between 1 and 5"));
        }
        let body = self.body.trim().to_string();
        if body.is_empty() || body.chars().count() > MAX_BODY_CHARS {
            return Err(ApiError::validation(format!("body must be 1 to {MAX_BODY_CHARS} characters")));
        }
        Ok(Self { rating: self.rating, body })
    }
}

#[derive(Debug, Deserialize)]
pub struct ListParams {
    pub page: Option<i64>,
    pub per_page: Option<i64>,
}

pub mod repo {
    use super::*;

    fn review_from_row(row: &AnyRow) -> Result<Review, sqlx::Error> {
        Ok(Review {
            id: row.try_get("id")?,
            product_id: row.try_get("product_id")?,
            user_id: row.try_get("user_id")?,
            rating: row.try_get("rating")?,
            body: row.try_get("body")?,
            created_at: row.try_get("created_at")?,
        })
    }

    /// The columns of a review plus its product's totals: one statement reads a page of reviews
    /// and the summary from one snapshot. A product's summary row is written in the same
    /// transaction as its reviews, so it is there whenever a review is.
    const REVIEWS_WITH_TOTALS: &str = "SELECT r.id, r.product_id, r.user_id, r.rating, r.body, r.created_at, \
         s.review_count, s.rating_sum FROM reviews r \
         LEFT JOIN rating_summaries s ON s.product_id = r.product_id \
         WHERE r.product_id = $1 ORDER BY r.id DESC LIMIT $2 OFFSET $3";

    /// A page of reviews, newest first, and the summary (from the rows when there are any).
    async fn reviews_with_summary(
        db: &Database,
        product_id: i64,
        page: PageRequest,
    ) -> Result<(Vec<Review>, RatingSummary), sqlx::Error> {
        let rows = sqlx::query(REVIEWS_WITH_TOTALS)
            .bind(product_id)
            .bind(page.per_page)
            .bind(page.offset())
            .fetch_all(&db.pool)
            .await?;
        let summary = match rows.first() {
            Some(row) => RatingSummary::from_totals(
                row.try_get::<Option<i64>, _>("review_count")?.unwrap_or(0),
                row.try_get::<Option<i64>, _>("rating_sum")?.unwrap_or(0),
            ),
            // Past the last page, or no reviews at all: the totals need their own query.
            None => summary(db, product_id).await?,
        };
        let reviews = rows.iter().map(review_from_row).collect::<Result<_, _>>()?;
        Ok((reviews, summary))
    }

    pub async fn list(db: &Database, product_id: i64, page: PageRequest) -> Result<Page<Review>, sqlx::Error> {
        let (items, summary) = reviews_with_summary(db, product_id, page).await?;
        Ok(Page { items, page: page.page, per_page: page.per_page, total: summary.count })
    }

    pub async fn summary(db: &Database, product_id: i64) -> Result<RatingSummary, sqlx::Error> {
        let row = sqlx::query("SELECT review_count, rating_sum FROM rating_summaries WHERE product_id = $1")
            .bind(product_id)
            .fetch_optional(&db.pool)
            .await?;
        Ok(match row {
            Some(row) => RatingSummary::from_totals(row.try_get("review_count")?, row.try_get("rating_sum")?),
            None => RatingSummary::from_totals(0, 0),
        })
    }

    pub async fn digest(db: &Database, product_id: i64, recent: i64) -> Result<ReviewDigest, sqlx::Error> {
        let (recent, rating) = reviews_with_summary(db, product_id, PageRequest { page: 1, per_page: recent }).await?;
        Ok(ReviewDigest { rating, recent })
    }

    /// Inserts a review and updates the summary in one transaction; `None` if the user has
    /// already reviewed the product.
    pub async fn insert(
        db: &Database,
        product_id: i64,
        user_id: i64,
        review: &NewReview,
    ) -> Result<Option<Review>, sqlx::Error> {
        let created_at = now_millis();
        let mut tx = db.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO reviews (product_id, user_id, rating, body, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (product_id, user_id) DO NOTHING RETURNING id",
        )
        .bind(product_id)
        .bind(user_id)
        .bind(review.rating)
        .bind(review.body.clone())
        .bind(created_at)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = inserted else {
            return Ok(None);
        };
        sqlx::query(
            "INSERT INTO rating_summaries (product_id, review_count, rating_sum) VALUES ($1, 1, $2) \
             ON CONFLICT (product_id) DO UPDATE SET review_count = rating_summaries.review_count + 1, \
             rating_sum = rating_summaries.rating_sum + excluded.rating_sum",
        )
        .bind(product_id)
        .bind(review.rating)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(Review {
            id: row.try_get("id")?,
            product_id,
            user_id,
            rating: review.rating,
            body: review.body.clone(),
            created_at,
        }))
    }
}

/// Seeds 0-4 reviews per product by distinct users, and their summaries.
pub async fn seed(db: &Database, settings: &SeedSettings) -> Result<(), sqlx::Error> {
    let existing: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM rating_summaries").fetch_one(&db.pool).await?.try_get("n")?;
    if existing > 0 || settings.users == 0 {
        return Ok(());
    }
    let mut rng = seed::rng_for("reviews", settings.seed);
    let users = i64::from(settings.users);
    let mut reviews: Vec<(i64, i64, i64, String, i64)> = Vec::new();
    let mut summaries: Vec<(i64, i64, i64)> = Vec::new();
    for product_id in 1..=i64::from(settings.products) {
        let count = rng.random_range(0..=4i64).min(users);
        let first_user = rng.random_range(0..users);
        let mut sum = 0;
        for k in 0..count {
            let rating = rng.random_range(1..=5i64);
            let body = seed::REVIEW_SENTENCES[rng.random_range(0..seed::REVIEW_SENTENCES.len())].to_string();
            let created_at = seed::SEED_EPOCH_MS + product_id * 10 + k;
            reviews.push((product_id, (first_user + k) % users + 1, rating, body, created_at));
            sum += rating;
        }
        if count > 0 {
            summaries.push((product_id, count, sum));
        }
    }
    let mut tx = db.begin_write().await?;
    for (i, chunk) in reviews.chunks(seed::BATCH_ROWS).enumerate() {
        let sql =
            multi_row_insert("INSERT INTO reviews (id, product_id, user_id, rating, body, created_at)", 6, chunk.len());
        let mut query = sqlx::query(&sql);
        for (j, (product_id, user_id, rating, body, created_at)) in chunk.iter().enumerate() {
            let id = (i * seed::BATCH_ROWS + j + 1) as i64;
            query = query.bind(id).bind(*product_id).bind(*user_id).bind(*rating).bind(body.clone()).bind(*created_at);
        }
        query.execute(&mut *tx).await?;
    }
    for chunk in summaries.chunks(seed::BATCH_ROWS) {
        let sql =
            multi_row_insert("INSERT INTO rating_summaries (product_id, review_count, rating_sum)", 3, chunk.len());
        let mut query = sqlx::query(&sql);
        for (product_id, count, sum) in chunk {
            query = query.bind(*product_id).bind(*count).bind(*sum);
        }
        query.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    db.sync_id_sequence("reviews").await?;
    Ok(())
}

/// Dependencies of the reviews handlers: own database, and the catalog to check products exist.
#[derive(Clone)]
pub struct ReviewsState {
    pub db: Database,
    pub catalog: SharedCatalog,
}

pub fn configure_public(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/products/{id}/reviews")
            .route(web::get().to(list_reviews))
            .route(web::post().to(create_review))
            .default_service(web::to(method_not_allowed)),
    );
}

pub fn configure_internal(cfg: &mut web::ServiceConfig) {
    cfg.route("/internal/reviews/{product_id}/digest", web::get().to(get_digest));
}

async fn ensure_product_exists(state: &ReviewsState, product_id: i64) -> Result<(), ApiError> {
    match state.catalog.product(product_id).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found("no such product")),
    }
}

async fn list_reviews(
    state: web::Data<ReviewsState>,
    product_id: web::Path<i64>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let product_id = product_id.into_inner();
    let page = PageRequest::new(params.page, params.per_page)?;
    ensure_product_exists(&state, product_id).await?;
    Ok(HttpResponse::Ok().json(repo::list(&state.db, product_id, page).await?))
}

async fn create_review(
    user: AuthenticatedUser,
    state: web::Data<ReviewsState>,
    product_id: web::Path<i64>,
    body: web::Json<NewReview>,
) -> Result<HttpResponse, ApiError> {
    let product_id = product_id.into_inner();
    let review = body.into_inner().validate()?;
    ensure_product_exists(&state, product_id).await?;
    match repo::insert(&state.db, product_id, user.0, &review).await? {
        Some(created) => Ok(HttpResponse::Created().json(created)),
        None => Err(ApiError::conflict("review_exists", "you have already reviewed this product")),
    }
}

async fn get_digest(state: web::Data<ReviewsState>, product_id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(repo::digest(&state.db, product_id.into_inner(), RECENT_ON_PAGE).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_is_rounded_to_two_decimals_and_absent_without_reviews() {
        assert_eq!(RatingSummary::from_totals(3, 11).average, Some(3.67));
        assert_eq!(RatingSummary::from_totals(0, 0).average, None);
    }

    #[test]
    fn new_reviews_are_validated() {
        assert!(NewReview { rating: 0, body: "x".into() }.validate().is_err());
        assert!(NewReview { rating: 6, body: "x".into() }.validate().is_err());
        assert!(NewReview { rating: 3, body: "   ".into() }.validate().is_err());
        assert!(NewReview { rating: 3, body: "y".repeat(MAX_BODY_CHARS + 1) }.validate().is_err());
        assert_eq!(NewReview { rating: 3, body: " ok ".into() }.validate().map(|r| r.body).ok(), Some("ok".into()));
    }
}
