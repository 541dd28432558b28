//! The microservices' gateway: the only public entry point.
//!
//! It serves exactly the monolith's public routes. The product page is composed here (fan-out
//! to catalog, inventory and reviews through [`crate::product_page`]); every other route is
//! forwarded to the service that owns it, with the service credential added. Routes that need
//! a user check the bearer token here first, with the same check the services (and the
//! monolith) run, so an anonymous request never travels further than the gateway.

use actix_web::http::header::{self, HeaderName};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::auth::AuthenticatedUser;
use crate::error::{ApiError, MAX_BODY_BYTES, method_not_allowed, payload_too_large};
use crate::http_client::ServiceClient;
use crate::orders::{IDEMPOTENCY_KEY_HEADER, REPLAYED_HEADER};
use crate::product_page;

/// The upstreams the gateway forwards to.
#[derive(Clone, Debug)]
pub struct Upstreams {
    pub accounts: ServiceClient,
    pub catalog: ServiceClient,
    pub reviews: ServiceClient,
    pub orders: ServiceClient,
}

/// Request headers worth forwarding; everything else (hop-by-hop, host) stays here.
const FORWARDED_REQUEST_HEADERS: [HeaderName; 3] = [header::CONTENT_TYPE, header::AUTHORIZATION, header::ACCEPT];

pub fn configure(cfg: &mut web::ServiceConfig) {
    let resource = |path: &str| web::resource(path.to_string()).default_service(web::to(method_not_allowed));
    cfg.service(resource("/api/accounts").route(web::post().to(to_accounts)))
        .service(resource("/api/sessions").route(web::post().to(to_accounts)))
        .service(resource("/api/products").route(web::get().to(to_catalog)))
        .service(resource("/api/categories").route(web::get().to(to_catalog)))
        .service(
            resource("/api/products/{id}/reviews")
                .route(web::get().to(to_reviews))
                .route(web::post().to(to_reviews_as_user)),
        )
        .service(
            resource("/api/orders").route(web::get().to(to_orders_as_user)).route(web::post().to(to_orders_as_user)),
        )
        .service(resource("/api/orders/{id}").route(web::get().to(to_orders_as_user)))
        .configure(product_page::configure_public);
}

async fn to_accounts(req: HttpRequest, body: web::Payload, up: web::Data<Upstreams>) -> Result<HttpResponse, ApiError> {
    forward(&req, body, &up.accounts).await
}

async fn to_catalog(req: HttpRequest, body: web::Payload, up: web::Data<Upstreams>) -> Result<HttpResponse, ApiError> {
    forward(&req, body, &up.catalog).await
}

async fn to_reviews(req: HttpRequest, body: web::Payload, up: web::Data<Upstreams>) -> Result<HttpResponse, ApiError> {
    forward(&req, body, &up.reviews).await
}

async fn to_reviews_as_user(
    req: HttpRequest,
    body: web::Payload,
    up: web::Data<Upstreams>,
) -> Result<HttpResponse, ApiError> {
    AuthenticatedUser::from_request_head(&req)?;
    forward(&req, body, &up.reviews).await
}

async fn to_orders_as_user(
    req: HttpRequest,
    body: web::Payload,
    up: web::Data<Upstreams>,
) -> Result<HttpResponse, ApiError> {
    AuthenticatedUser::from_request_head(&req)?;
    forward(&req, body, &up.orders).await
}

/// Sends the request on to `upstream` and relays its answer (status, JSON body, `Retry-After`
/// and the idempotent-replay marker) unchanged. The upstream gets what is left of the request's
/// deadline (`--request-deadline-ms` from its arrival here).
async fn forward(req: &HttpRequest, body: web::Payload, upstream: &ServiceClient) -> Result<HttpResponse, ApiError> {
    let body = body
        .to_bytes_limited(MAX_BODY_BYTES)
        .await
        .map_err(|_| payload_too_large())?
        .map_err(|e| ApiError::bad_request("bad_body", format!("could not read the body: {e}")))?;
    let path_and_query = req.uri().path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes())
        .map_err(|_| ApiError::bad_request("bad_method", "unsupported method"))?;
    let mut request = upstream.request(method, path_and_query).body(body);
    for name in
        FORWARDED_REQUEST_HEADERS.iter().chain(std::iter::once(&HeaderName::from_static(IDEMPOTENCY_KEY_HEADER)))
    {
        if let Some(value) = req.headers().get(name) {
            request = request.header(name.as_str(), value.as_bytes());
        }
    }
    let answer = upstream.forward(request).await?;
    let status = actix_web::http::StatusCode::from_u16(answer.status.as_u16()).map_err(|_| {
        ApiError::new(
            actix_web::http::StatusCode::BAD_GATEWAY,
            "upstream_error",
            format!("{} answered with an invalid status", upstream.name()),
        )
    })?;
    let mut relay = HttpResponse::build(status);
    for name in [header::CONTENT_TYPE.as_str(), header::RETRY_AFTER.as_str(), REPLAYED_HEADER] {
        if let Some(value) = answer.headers.get(name) {
            relay.insert_header((name, value.as_bytes()));
        }
    }
    Ok(relay.body(answer.body))
}
