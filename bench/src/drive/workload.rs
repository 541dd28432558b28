//! What the load consists of: a seeded mix of requests over the public API.
//!
//! A [`Mix`] is a named, documented profile of endpoint weights (or custom weights given as
//! `endpoint=weight,...`). [`Workload`] turns a mix into concrete requests: product popularity
//! follows a Zipf law (a few products get most page views, as in real shops), users come from
//! a pool logged in before the measured window, and every checkout carries a fresh
//! idempotency key. [`check_response`] decides whether an answer is right, so a fast wrong
//! answer counts as an error, and whether it is whole, so a partial product page counts as
//! degraded rather than ok.

use std::sync::Arc;

use anyhow::Context;
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::Zipf;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use crate::record::{Endpoint, Failure, Verdict};

/// Endpoint weights, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mix {
    pub name: String,
    pub weights: Vec<(Endpoint, u32)>,
}

/// The named profiles and what they model.
pub const PROFILES: &[(&str, &str)] = &[
    (
        "shop",
        "a browsing-heavy storefront: 45% product pages, 15% search, 10% category listings, 10% review reads, 10% order history, 5% checkouts, 3% review writes, 2% log-ins",
    ),
    (
        "read-only",
        "the storefront without writes: 60% product pages, 20% search, 10% category listings, 10% review reads",
    ),
    ("product-page", "only the product page: the composite read that fans out to three modules"),
    ("checkout-heavy", "a sale: 50% product pages, 35% checkouts, 15% order history"),
    ("health", "only /health: no domain work, measures the HTTP stack and the generator itself"),
];

impl Mix {
    pub fn profile(name: &str) -> Option<Mix> {
        use Endpoint::*;
        let weights = match name {
            "shop" => vec![
                (ProductPage, 45),
                (Search, 15),
                (CategoryListing, 10),
                (ReviewsRead, 10),
                (OrderHistory, 10),
                (Checkout, 5),
                (ReviewWrite, 3),
                (Login, 2),
            ],
            "read-only" => vec![(ProductPage, 60), (Search, 20), (CategoryListing, 10), (ReviewsRead, 10)],
            "product-page" => vec![(ProductPage, 1)],
            "checkout-heavy" => vec![(ProductPage, 50), (Checkout, 35), (OrderHistory, 15)],
            "health" => vec![(Health, 1)],
            _ => return None,
        };
        Some(Mix { name: name.to_string(), weights })
    }

    /// A profile name, or custom weights such as `product_page=70,checkout=30`.
    pub fn parse(spec: &str) -> anyhow::Result<Mix> {
        if let Some(mix) = Self::profile(spec) {
            return Ok(mix);
        }
        let mut weights = Vec::new();
        for part in spec.split(',') {
            let (name, weight) = part.split_once('=').with_context(|| {
                let names: Vec<&str> = PROFILES.iter().map(|(n, _)| *n).collect();
                format!("'{spec}' is neither a profile ({}) nor endpoint=weight pairs", names.join(", "))
            })?;
            let endpoint = Endpoint::from_name(name.trim()).with_context(|| {
                let names: Vec<&str> = Endpoint::ALL.iter().map(|e| e.name()).collect();
                format!("unknown endpoint '{name}' (known: {})", names.join(", "))
            })?;
            let weight: u32 =
                weight.trim().parse().with_context(|| format!("weight of {name} is not a whole number"))?;
            anyhow::ensure!(!weights.iter().any(|(e, _)| *e == endpoint), "{name} is given twice");
            weights.push((endpoint, weight));
        }
        anyhow::ensure!(weights.iter().any(|(_, w)| *w > 0), "the mix needs at least one positive weight");
        Ok(Mix { name: spec.to_string(), weights })
    }

    pub fn needs_users(&self) -> bool {
        self.weights.iter().any(|(e, w)| {
            *w > 0 && matches!(e, Endpoint::ReviewWrite | Endpoint::Login | Endpoint::Checkout | Endpoint::OrderHistory)
        })
    }
}

/// A logged-in user of the workload's pool.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: i64,
    pub email: String,
    pub authorization: Arc<str>,
}

/// The data the workload draws from (the seed scale the shop was started with).
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub products: i64,
    pub categories: i64,
}

/// One request, ready to send.
#[derive(Debug, Clone)]
pub struct PlannedRequest {
    pub endpoint: Endpoint,
    pub method: reqwest::Method,
    pub path: String,
    pub body: Option<Vec<u8>>,
    pub authorization: Option<Arc<str>>,
    pub idempotency_key: Option<String>,
    /// For the product page: the id the answer must be about.
    pub product_id: Option<i64>,
}

impl PlannedRequest {
    /// A plain `GET` of `path`, anonymous; other requests build on it.
    pub fn get(endpoint: Endpoint, path: impl Into<String>) -> Self {
        Self {
            endpoint,
            method: reqwest::Method::GET,
            path: path.into(),
            body: None,
            authorization: None,
            idempotency_key: None,
            product_id: None,
        }
    }
}

/// Turns a mix into a reproducible stream of requests.
#[derive(Debug)]
pub struct Workload {
    chooser: WeightedIndex<u32>,
    endpoints: Vec<Endpoint>,
    scale: Scale,
    sessions: Vec<Session>,
    popularity: Zipf<f64>,
    rng: StdRng,
    /// Keeps idempotency keys unique across runs against the same databases.
    key_prefix: String,
    checkouts: u64,
}

const SEARCH_TERMS: &[&str] =
    &["lamp", "steel", "oak", "chair", "mug", "cotton", "speaker", "glass", "desk", "vintage"];

impl Workload {
    pub fn new(mix: &Mix, scale: Scale, sessions: Vec<Session>, seed: u64) -> anyhow::Result<Self> {
        anyhow::ensure!(scale.products > 0 && scale.categories > 0, "the shop needs products and categories");
        anyhow::ensure!(!mix.needs_users() || !sessions.is_empty(), "mix '{}' needs logged-in users", mix.name);
        Ok(Self {
            chooser: WeightedIndex::new(mix.weights.iter().map(|(_, w)| *w))?,
            endpoints: mix.weights.iter().map(|(e, _)| *e).collect(),
            scale,
            sessions,
            // Exponent 1: the classic web popularity law (rank r is viewed ~1/r as often).
            popularity: Zipf::new(scale.products as f64, 1.0)?,
            rng: StdRng::seed_from_u64(seed),
            key_prefix: format!("sb-{seed:x}-{:x}", rand::random::<u32>()),
            checkouts: 0,
        })
    }

    fn popular_product(&mut self) -> i64 {
        (self.popularity.sample(&mut self.rng) as i64).clamp(1, self.scale.products)
    }

    /// Checkouts buy uniformly among non-scarce products, so stock lasts through long runs
    /// (Zipf-popular products would sell out in seconds at high rates).
    fn purchasable_product(&mut self) -> i64 {
        loop {
            let id = self.rng.random_range(1..=self.scale.products);
            if !shop::seed::is_scarce(id) || self.scale.products < shop::seed::SCARCE_EVERY {
                return id;
            }
        }
    }

    fn session(&mut self) -> Session {
        let index = self.rng.random_range(0..self.sessions.len());
        self.sessions[index].clone()
    }

    pub fn next_request(&mut self) -> PlannedRequest {
        let endpoint = self.endpoints[self.chooser.sample(&mut self.rng)];
        let get = |path: String| PlannedRequest::get(endpoint, path);
        match endpoint {
            Endpoint::ProductPage => {
                let id = self.popular_product();
                PlannedRequest { product_id: Some(id), ..get(format!("/api/products/{id}")) }
            }
            Endpoint::Search => {
                let term = SEARCH_TERMS[self.rng.random_range(0..SEARCH_TERMS.len())];
                let page = self.rng.random_range(1..=3);
                get(format!("/api/products?q={term}&page={page}"))
            }
            Endpoint::CategoryListing => {
                let category = self.rng.random_range(1..=self.scale.categories);
                let page = self.rng.random_range(1..=3);
                get(format!("/api/products?category={category}&page={page}"))
            }
            Endpoint::ReviewsRead => {
                let id = self.popular_product();
                get(format!("/api/products/{id}/reviews"))
            }
            Endpoint::OrderHistory => {
                let session = self.session();
                PlannedRequest { authorization: Some(session.authorization), ..get("/api/orders".into()) }
            }
            Endpoint::Health => get("/health".into()),
            Endpoint::ReviewWrite => {
                let session = self.session();
                let id = self.rng.random_range(1..=self.scale.products);
                let body =
                    serde_json::json!({"rating": self.rng.random_range(1..=5), "body": "Measured by splitbench."});
                PlannedRequest {
                    method: reqwest::Method::POST,
                    body: Some(body.to_string().into_bytes()),
                    authorization: Some(session.authorization),
                    ..get(format!("/api/products/{id}/reviews"))
                }
            }
            Endpoint::Login => {
                let session = self.session();
                let body = serde_json::json!({"email": session.email, "password": shop::seed::SEED_PASSWORD});
                PlannedRequest {
                    method: reqwest::Method::POST,
                    body: Some(body.to_string().into_bytes()),
                    ..get("/api/sessions".into())
                }
            }
            Endpoint::Checkout => {
                let session = self.session();
                let id = self.purchasable_product();
                self.checkouts += 1;
                let body = serde_json::json!({"items": [{"product_id": id, "quantity": 1}], "card_number": "4242424242424242"});
                PlannedRequest {
                    method: reqwest::Method::POST,
                    body: Some(body.to_string().into_bytes()),
                    authorization: Some(session.authorization),
                    idempotency_key: Some(format!("{}-{}", self.key_prefix, self.checkouts)),
                    ..get("/api/orders".into())
                }
            }
        }
    }
}

#[derive(Deserialize)]
struct ProductPageShape {
    product: IdShape,
    /// The parts (inventory, reviews) the page had to leave out.
    degraded: Vec<IgnoredAny>,
}

#[derive(Deserialize)]
struct IdShape {
    id: i64,
}

#[derive(Deserialize)]
struct PageShape {
    #[allow(dead_code)]
    items: Vec<IgnoredAny>,
    #[allow(dead_code)]
    total: i64,
}

#[derive(Deserialize)]
struct TokenShape {
    #[allow(dead_code)]
    token: String,
}

#[derive(Deserialize)]
struct OrderShape {
    id: i64,
    status: String,
}

#[derive(Deserialize)]
struct ErrorShape {
    error: ErrorCode,
}

#[derive(Deserialize)]
struct ErrorCode {
    code: String,
}

/// A correct answer, as [`check_response`] judged it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Correct {
    /// Right and whole.
    Complete,
    /// A confirmed checkout (201): the id of the order the client was told is confirmed, so
    /// the books can be checked against it afterwards (see [`crate::check`]).
    Confirmed(i64),
    /// Right but partial: a product page with a non-empty `degraded` list.
    Degraded,
}

impl Correct {
    /// How the recorder counts it.
    pub fn verdict(self) -> Verdict {
        match self {
            Self::Complete | Self::Confirmed(_) => Verdict::Ok,
            Self::Degraded => Verdict::Degraded,
        }
    }
}

/// Whether `status` and `body` are a correct answer to `request`, and whether it is whole.
pub fn check_response(request: &PlannedRequest, status: u16, body: &[u8]) -> Result<Correct, Failure> {
    if let (Endpoint::Checkout, 201) = (request.endpoint, status) {
        return match serde_json::from_slice::<OrderShape>(body) {
            Ok(order) if order.status == "confirmed" => Ok(Correct::Confirmed(order.id)),
            _ => Err(Failure::BadResponse),
        };
    }
    if let (Endpoint::ProductPage, 200) = (request.endpoint, status) {
        return match serde_json::from_slice::<ProductPageShape>(body) {
            Ok(page) if Some(page.product.id) != request.product_id => Err(Failure::BadResponse),
            Ok(page) if page.degraded.is_empty() => Ok(Correct::Complete),
            Ok(_) => Ok(Correct::Degraded),
            Err(_) => Err(Failure::BadResponse),
        };
    }
    let shape_ok = match (request.endpoint, status) {
        (Endpoint::Search | Endpoint::CategoryListing | Endpoint::ReviewsRead | Endpoint::OrderHistory, 200) => {
            serde_json::from_slice::<PageShape>(body).is_ok()
        }
        (Endpoint::Login, 200) => serde_json::from_slice::<TokenShape>(body).is_ok(),
        (Endpoint::ReviewWrite, 201) => serde_json::from_slice::<IdShape>(body).is_ok(),
        // The user already reviewed this product: the right answer to a repeated review.
        (Endpoint::ReviewWrite, 409) => {
            serde_json::from_slice::<ErrorShape>(body).is_ok_and(|e| e.error.code == "review_exists")
        }
        (Endpoint::Health, 200) => true,
        _ => return Err(Failure::Status(status)),
    };
    if shape_ok { Ok(Correct::Complete) } else { Err(Failure::BadResponse) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions() -> Vec<Session> {
        vec![Session { user_id: 1, email: "user1@example.com".into(), authorization: Arc::from("Bearer t") }]
    }

    #[test]
    fn profiles_and_custom_weights_parse() {
        assert_eq!(Mix::parse("shop").map(|m| m.weights.len()).ok(), Some(8));
        let custom = Mix::parse("product_page=70, checkout=30").expect("valid custom mix");
        assert_eq!(custom.weights, vec![(Endpoint::ProductPage, 70), (Endpoint::Checkout, 30)]);
        assert!(Mix::parse("nonsense").is_err());
        assert!(Mix::parse("product_page=x").is_err());
        assert!(Mix::parse("teleport=3").is_err());
        assert!(Mix::parse("search=0").is_err());
        assert!(Mix::parse("search=1,search=2").is_err());
        for (name, _) in PROFILES {
            assert!(Mix::profile(name).is_some(), "{name} is defined");
        }
    }

    #[test]
    fn the_workload_follows_the_weights_and_is_reproducible() {
        let mix = Mix::parse("product_page=3,search=1").expect("valid");
        let scale = Scale { products: 1000, categories: 20 };
        let mut a = Workload::new(&mix, scale, vec![], 9).expect("workload");
        let mut b = Workload::new(&mix, scale, vec![], 9).expect("workload");
        let paths_a: Vec<String> = (0..1000).map(|_| a.next_request().path).collect();
        let paths_b: Vec<String> = (0..1000).map(|_| b.next_request().path).collect();
        assert_eq!(paths_a, paths_b);
        let pages = paths_a.iter().filter(|p| !p.contains('?')).count();
        assert!((700..800).contains(&pages), "about 75% product pages, got {pages}");
    }

    #[test]
    fn product_popularity_is_skewed() {
        let mix = Mix::parse("product-page").expect("valid");
        let mut workload =
            Workload::new(&mix, Scale { products: 10_000, categories: 20 }, vec![], 1).expect("workload");
        let ids: Vec<i64> = (0..10_000).map(|_| workload.next_request().product_id.unwrap_or(0)).collect();
        let top_ten = ids.iter().filter(|id| **id <= 10).count();
        // Under Zipf(1) over 10,000 items the ten most popular take about 30% of views.
        assert!(top_ten > 2_000, "top ten products got {top_ten} of 10,000 views");
        assert!(ids.iter().all(|id| (1..=10_000).contains(id)));
    }

    #[test]
    fn checkouts_get_unique_keys_and_avoid_scarce_products() {
        let mix = Mix::parse("checkout=1").expect("valid");
        let mut workload =
            Workload::new(&mix, Scale { products: 500, categories: 20 }, sessions(), 2).expect("workload");
        let requests: Vec<PlannedRequest> = (0..500).map(|_| workload.next_request()).collect();
        let mut keys: Vec<&String> = requests.iter().filter_map(|r| r.idempotency_key.as_ref()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 500);
        assert!(
            requests
                .iter()
                .all(|r| !r.body.as_ref().is_some_and(|b| String::from_utf8_lossy(b).contains("\"product_id\":50,")))
        );
    }

    #[test]
    fn a_mix_with_writes_needs_users() {
        let mix = Mix::parse("shop").expect("valid");
        assert!(Workload::new(&mix, Scale { products: 10, categories: 2 }, vec![], 1).is_err());
    }

    #[test]
    fn wrong_answers_are_failures_even_when_fast() {
        let request =
            PlannedRequest { product_id: Some(7), ..PlannedRequest::get(Endpoint::ProductPage, "/api/products/7") };
        assert_eq!(check_response(&request, 200, br#"{"product":{"id":7},"degraded":[]}"#), Ok(Correct::Complete));
        assert_eq!(check_response(&request, 200, br#"{"product":{"id":8},"degraded":[]}"#), Err(Failure::BadResponse));
        assert_eq!(check_response(&request, 200, b"<html>"), Err(Failure::BadResponse));
        assert_eq!(check_response(&request, 503, b"{}"), Err(Failure::Status(503)));
        let review = PlannedRequest { endpoint: Endpoint::ReviewWrite, product_id: None, ..request };
        assert_eq!(
            check_response(&review, 409, br#"{"error":{"code":"review_exists","message":""}}"#),
            Ok(Correct::Complete)
        );
        assert_eq!(
            check_response(&review, 409, br#"{"error":{"code":"other","message":""}}"#),
            Err(Failure::BadResponse)
        );
    }

    #[test]
    fn a_product_page_listing_degraded_parts_is_degraded_not_ok() {
        let request =
            PlannedRequest { product_id: Some(7), ..PlannedRequest::get(Endpoint::ProductPage, "/api/products/7") };
        let partial = br#"{"product":{"id":7},"stock":null,"rating":null,"recent_reviews":null,"degraded":["inventory","reviews"]}"#;
        assert_eq!(check_response(&request, 200, partial), Ok(Correct::Degraded));
        assert_eq!(Correct::Degraded.verdict(), Verdict::Degraded);
        assert_eq!(Correct::Complete.verdict(), Verdict::Ok);
        // Partial and about the wrong product is wrong, not degraded.
        assert_eq!(
            check_response(&request, 200, br#"{"product":{"id":8},"degraded":["reviews"]}"#),
            Err(Failure::BadResponse)
        );
        // Only the product page can be degraded: other endpoints have no such list.
        let search = PlannedRequest { endpoint: Endpoint::Search, product_id: None, ..request };
        assert_eq!(check_response(&search, 200, br#"{"items":[],"total":0,"degraded":["x"]}"#), Ok(Correct::Complete));
    }

    #[test]
    fn a_confirmed_checkout_answer_gives_its_order_id() {
        let checkout = PlannedRequest {
            endpoint: Endpoint::Checkout,
            method: reqwest::Method::POST,
            path: "/api/orders".into(),
            body: None,
            authorization: None,
            idempotency_key: Some("k".into()),
            product_id: None,
        };
        assert_eq!(
            check_response(&checkout, 201, br#"{"id":42,"status":"confirmed","items":[]}"#),
            Ok(Correct::Confirmed(42))
        );
        assert_eq!(Correct::Confirmed(42).verdict(), Verdict::Ok);
        assert_eq!(check_response(&checkout, 201, br#"{"id":42,"status":"pending"}"#), Err(Failure::BadResponse));
        assert_eq!(check_response(&checkout, 201, br#"{"status":"confirmed"}"#), Err(Failure::BadResponse));
        assert_eq!(check_response(&checkout, 402, b"{}"), Err(Failure::Status(402)));
    }
}
