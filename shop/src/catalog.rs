//! Catalog: products and categories, search and pagination.
//!
//! Public: `GET /api/products?q=&category=&page=&per_page=`, `GET /api/categories`.
//! Internal (other modules reach it through the [`Catalog`] trait):
//! `GET /internal/products/{id}`, `POST /internal/products/lookup`.

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use async_trait::async_trait;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{Backend, Database, multi_row_insert};
use crate::error::{ApiError, method_not_allowed};
use crate::http_client::ServiceClient;
use crate::pagination::{Page, PageRequest};
use crate::seam::ModuleError;
use crate::seed;
use crate::settings::SeedSettings;

/// Longest accepted search text, in characters.
pub const MAX_QUERY_CHARS: usize = 100;
/// Most ids one lookup may ask for (a checkout has at most this many lines).
pub const MAX_LOOKUP_IDS: usize = 100;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Product {
    pub id: i64,
    pub category_id: i64,
    pub name: String,
    pub description: String,
    pub price_cents: i64,
}

/// A product as listed in search results.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProductSummary {
    pub id: i64,
    pub category_id: i64,
    pub name: String,
    pub price_cents: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Category {
    pub id: i64,
    pub name: String,
}

/// What other modules need of the catalog.
#[async_trait]
pub trait Catalog: Send + Sync {
    async fn product(&self, id: i64) -> Result<Option<Product>, ModuleError>;
    /// The products among `ids` that exist, in no particular order.
    async fn products_by_ids(&self, ids: &[i64]) -> Result<Vec<Product>, ModuleError>;
}

/// In-process implementation: a query on the local database.
#[derive(Clone, Debug)]
pub struct LocalCatalog(pub Database);

#[async_trait]
impl Catalog for LocalCatalog {
    async fn product(&self, id: i64) -> Result<Option<Product>, ModuleError> {
        Ok(repo::product(&self.0.pool, id).await?)
    }
    async fn products_by_ids(&self, ids: &[i64]) -> Result<Vec<Product>, ModuleError> {
        Ok(repo::products_by_ids(&self.0.pool, ids).await?)
    }
}

/// HTTP implementation: a call to the catalog service.
#[derive(Clone, Debug)]
pub struct CatalogClient(pub ServiceClient);

#[derive(Debug, Serialize, Deserialize)]
pub struct LookupRequest {
    pub ids: Vec<i64>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct LookupResponse {
    pub products: Vec<Product>,
}

#[async_trait]
impl Catalog for CatalogClient {
    async fn product(&self, id: i64) -> Result<Option<Product>, ModuleError> {
        self.0.get_optional(&format!("/internal/products/{id}")).await
    }
    async fn products_by_ids(&self, ids: &[i64]) -> Result<Vec<Product>, ModuleError> {
        let found: LookupResponse =
            self.0.post_json("/internal/products/lookup", &LookupRequest { ids: ids.to_vec() }).await?;
        Ok(found.products)
    }
}

/// Search parameters as they arrive in the query string.
#[derive(Debug, Deserialize)]
pub struct SearchParams {
    pub q: Option<String>,
    pub category: Option<i64>,
    pub page: Option<i64>,
    pub per_page: Option<i64>,
}

/// Search parameters after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    /// Lower-cased text to find in product names.
    pub text: Option<String>,
    pub category: Option<i64>,
    pub page: PageRequest,
}

impl SearchParams {
    pub fn validate(self) -> Result<Search, ApiError> {
        let page = PageRequest::new(self.page, self.per_page)?;
        let text = self.q.map(|q| q.trim().to_lowercase()).filter(|q| !q.is_empty());
        if text.as_ref().is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS) {
            return Err(ApiError::validation(format!("q must be at most {MAX_QUERY_CHARS} characters")));
        }
        if self.category.is_some_and(|c| c < 1) {
            return Err(ApiError::validation("category must be a positive id"));
        }
        Ok(Search { text, category: self.category, page })
    }
}

/// How product names are searched for a text: a substring of `name_lower`, through each
/// backend's trigram index where the text is long enough for one (three characters or more),
/// by a scan otherwise. Both forms find exactly the names that contain the text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TextFilter {
    /// SQLite: an FTS5 phrase query on the trigram index `products_text`.
    TrigramMatch(String),
    /// `name_lower LIKE '%text%'` (PostgreSQL's pg_trgm index serves it; SQLite scans).
    Like(String),
}

impl TextFilter {
    fn for_backend(backend: Backend, text: &str) -> Self {
        if backend == Backend::Sqlite && text.chars().count() >= 3 {
            // A phrase in double quotes (quotes inside doubled) matches the text as a substring.
            Self::TrigramMatch(format!("\"{}\"", text.replace('"', "\"\"")))
        } else {
            Self::Like(like_pattern(text))
        }
    }

    /// The SQL condition, with its argument as placeholder `$n`.
    fn condition(&self, n: usize) -> String {
        match self {
            Self::TrigramMatch(_) => format!("id IN (SELECT rowid FROM products_text WHERE products_text MATCH ${n})"),
            Self::Like(_) => format!("name_lower LIKE ${n} ESCAPE '\\'"),
        }
    }

    fn argument(&self) -> String {
        match self {
            Self::TrigramMatch(phrase) => phrase.clone(),
            Self::Like(pattern) => pattern.clone(),
        }
    }
}

/// Escapes LIKE wildcards so that user text matches literally.
fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The catalog's SQL. Functions take any executor, so they run on the pool or inside a caller's
/// transaction (the monolith's checkout).
pub mod repo {
    use super::*;

    fn product_from_row(row: &AnyRow) -> Result<Product, sqlx::Error> {
        Ok(Product {
            id: row.try_get("id")?,
            category_id: row.try_get("category_id")?,
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            price_cents: row.try_get("price_cents")?,
        })
    }

    pub async fn product<'e>(
        db: impl sqlx::Executor<'e, Database = sqlx::Any>,
        id: i64,
    ) -> Result<Option<Product>, sqlx::Error> {
        sqlx::query("SELECT id, category_id, name, description, price_cents FROM products WHERE id = $1")
            .bind(id)
            .fetch_optional(db)
            .await?
            .map(|row| product_from_row(&row))
            .transpose()
    }

    pub async fn products_by_ids<'e>(
        db: impl sqlx::Executor<'e, Database = sqlx::Any>,
        ids: &[i64],
    ) -> Result<Vec<Product>, sqlx::Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT id, category_id, name, description, price_cents FROM products WHERE id IN ({})",
            placeholders.join(",")
        );
        let mut query = sqlx::query(&sql);
        for id in ids {
            query = query.bind(*id);
        }
        query.fetch_all(db).await?.iter().map(product_from_row).collect()
    }

    pub async fn search(db: &Database, search: &Search) -> Result<Page<ProductSummary>, sqlx::Error> {
        // Only the filters that are present go into the statement, so each shape can use its index.
        let mut conditions = Vec::new();
        let text_filter = search.text.as_deref().map(|text| TextFilter::for_backend(db.backend, text));
        if let Some(filter) = &text_filter {
            conditions.push(filter.condition(conditions.len() + 1));
        }
        if search.category.is_some() {
            conditions.push(format!("category_id = ${}", conditions.len() + 1));
        }
        let filter = if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
        let n = conditions.len();
        let list_sql = format!(
            "SELECT id, category_id, name, price_cents FROM products{filter} ORDER BY id LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        );
        let count_sql = format!("SELECT COUNT(*) AS total FROM products{filter}");

        let mut list = sqlx::query(&list_sql);
        let mut count = sqlx::query(&count_sql);
        if let Some(filter) = &text_filter {
            list = list.bind(filter.argument());
            count = count.bind(filter.argument());
        }
        if let Some(category) = search.category {
            list = list.bind(category);
            count = count.bind(category);
        }
        list = list.bind(search.page.per_page).bind(search.page.offset());

        let rows = list.fetch_all(&db.pool).await?;
        let total: i64 = count.fetch_one(&db.pool).await?.try_get("total")?;
        let items = rows
            .iter()
            .map(|row| {
                Ok(ProductSummary {
                    id: row.try_get("id")?,
                    category_id: row.try_get("category_id")?,
                    name: row.try_get("name")?,
                    price_cents: row.try_get("price_cents")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(Page { items, page: search.page.page, per_page: search.page.per_page, total })
    }

    pub async fn categories(db: &Database) -> Result<Vec<Category>, sqlx::Error> {
        let rows = sqlx::query("SELECT id, name FROM categories ORDER BY id").fetch_all(&db.pool).await?;
        rows.iter().map(|row| Ok(Category { id: row.try_get("id")?, name: row.try_get("name")? })).collect()
    }
}

/// Creates the seeded categories and products, unless the tables already hold data.
pub async fn seed(db: &Database, settings: &SeedSettings) -> Result<(), sqlx::Error> {
    let existing: i64 = sqlx::query("SELECT COUNT(*) AS n FROM products").fetch_one(&db.pool).await?.try_get("n")?;
    if existing > 0 {
        // Seeded before, maybe by a version without the text index: build it if it is empty.
        return index_text_if_empty(db).await;
    }
    let mut rng = seed::rng_for("catalog", settings.seed);
    let categories = i64::from(settings.categories.max(1));
    let mut tx = db.begin_write().await?;
    for id in 1..=categories {
        let base = seed::CATEGORY_NAMES[(id as usize - 1) % seed::CATEGORY_NAMES.len()];
        let name = if id as usize > seed::CATEGORY_NAMES.len() { format!("{base} {id}") } else { base.to_string() };
        sqlx::query("INSERT INTO categories (id, name) VALUES ($1, $2)").bind(id).bind(name).execute(&mut *tx).await?;
    }
    let ids: Vec<i64> = (1..=i64::from(settings.products)).collect();
    for chunk in ids.chunks(seed::BATCH_ROWS) {
        let sql = multi_row_insert(
            "INSERT INTO products (id, category_id, name, name_lower, description, price_cents)",
            6,
            chunk.len(),
        );
        let mut query = sqlx::query(&sql);
        for &id in chunk {
            let adjective = seed::ADJECTIVES[rng.random_range(0..seed::ADJECTIVES.len())];
            let material = seed::MATERIALS[rng.random_range(0..seed::MATERIALS.len())];
            let noun = seed::NOUNS[rng.random_range(0..seed::NOUNS.len())];
            let name = format!("{adjective} {material} {noun} {id}");
            let description = format!("A {} {noun} made of {}.", adjective.to_lowercase(), material.to_lowercase());
            query = query
                .bind(id)
                .bind(rng.random_range(1..=categories))
                .bind(name.clone())
                .bind(name.to_lowercase())
                .bind(description)
                .bind(rng.random_range(99..=99_999i64));
        }
        query.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    db.sync_id_sequence("categories").await?;
    db.sync_id_sequence("products").await?;
    rebuild_text_index(db).await
}

/// Builds SQLite's trigram index if it holds no product yet (a database seeded before it
/// existed); an index already built is left alone, so a restart costs nothing here.
async fn index_text_if_empty(db: &Database) -> Result<(), sqlx::Error> {
    if db.backend != Backend::Sqlite {
        return Ok(());
    }
    // FTS5 keeps one `docsize` row per indexed document.
    let indexed: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM products_text_docsize").fetch_one(&db.pool).await?.try_get("n")?;
    if indexed == 0 { rebuild_text_index(db).await } else { Ok(()) }
}

/// Rebuilds SQLite's trigram index from the products table (PostgreSQL keeps its index itself).
async fn rebuild_text_index(db: &Database) -> Result<(), sqlx::Error> {
    if db.backend == Backend::Sqlite {
        sqlx::query("INSERT INTO products_text (products_text) VALUES ('rebuild')").execute(&db.pool).await?;
    }
    Ok(())
}

/// Dependencies of the catalog's handlers.
#[derive(Clone)]
pub struct CatalogState {
    pub db: Database,
}

/// Public routes.
pub fn configure_public(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/products")
            .route(web::get().to(search_products))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/api/categories")
            .route(web::get().to(list_categories))
            .default_service(web::to(method_not_allowed)),
    );
}

/// Internal routes, for other services.
pub fn configure_internal(cfg: &mut web::ServiceConfig) {
    cfg.route("/internal/products/lookup", web::post().to(lookup_products))
        .route("/internal/products/{id}", web::get().to(get_product));
}

async fn search_products(
    state: web::Data<CatalogState>,
    params: web::Query<SearchParams>,
) -> Result<HttpResponse, ApiError> {
    let search = params.into_inner().validate()?;
    Ok(HttpResponse::Ok().json(repo::search(&state.db, &search).await?))
}

async fn list_categories(state: web::Data<CatalogState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(serde_json::json!({ "categories": repo::categories(&state.db).await? })))
}

async fn get_product(state: web::Data<CatalogState>, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    match repo::product(&state.db.pool, id.into_inner()).await? {
        Some(product) => Ok(HttpResponse::Ok().json(product)),
        None => Err(ApiError::not_found("no such product")),
    }
}

async fn lookup_products(
    state: web::Data<CatalogState>,
    body: web::Json<LookupRequest>,
) -> Result<HttpResponse, ApiError> {
    if body.ids.len() > MAX_LOOKUP_IDS {
        return Err(ApiError::validation(format!("at most {MAX_LOOKUP_IDS} ids per lookup")));
    }
    let products = repo::products_by_ids(&state.db.pool, &body.ids).await?;
    Ok(HttpResponse::Ok().json(LookupResponse { products }))
}

/// The trait object other modules hold.
pub type SharedCatalog = Arc<dyn Catalog>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_search_uses_the_trigram_index_only_where_it_can() {
        assert_eq!(TextFilter::for_backend(Backend::Sqlite, "oak"), TextFilter::TrigramMatch("\"oak\"".into()));
        assert_eq!(
            TextFilter::for_backend(Backend::Sqlite, r#"a "b" c"#),
            TextFilter::TrigramMatch(r#""a ""b"" c""#.into()),
            "quotes inside the phrase are doubled"
        );
        // Too short for a trigram: a scan, with LIKE's wildcards escaped.
        assert_eq!(TextFilter::for_backend(Backend::Sqlite, "5%"), TextFilter::Like("%5\\%%".into()));
        // PostgreSQL's trigram index serves LIKE itself.
        assert_eq!(TextFilter::for_backend(Backend::Postgres, "oak"), TextFilter::Like("%oak%".into()));
    }

    #[test]
    fn like_wildcards_in_user_text_match_literally() {
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }

    #[test]
    fn search_text_is_trimmed_lowercased_and_bounded() {
        let params = |q: &str| SearchParams { q: Some(q.into()), category: None, page: None, per_page: None };
        assert_eq!(params("  Lamp ").validate().ok().and_then(|s| s.text), Some("lamp".into()));
        assert_eq!(params("   ").validate().ok().and_then(|s| s.text), None);
        assert!(params(&"x".repeat(MAX_QUERY_CHARS + 1)).validate().is_err());
        let bad_category = SearchParams { q: None, category: Some(0), page: None, per_page: None };
        assert!(bad_category.validate().is_err());
    }
}
