//! Forwarding at the edge: the public routes of modules the public entry point does not host.
//!
//! The edge (the microservices' gateway, or any process a topology makes the entry point)
//! serves exactly the monolith's public routes: its own modules' routes locally, the product
//! page composed there ([`crate::product_page`]), and every other module's routes forwarded to
//! the process that hosts it, with the service credential added ([`configure_forwarding`]).
//! Routes that need a user check the bearer token here first, with the same check the services
//! (and the monolith) run, so an anonymous request never travels further than the edge.

use actix_web::http::header::{self, HeaderName};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::auth::AuthenticatedUser;
use crate::error::{ApiError, MAX_BODY_BYTES, method_not_allowed, payload_too_large};
use crate::http_client::ServiceClient;
use crate::orders::{IDEMPOTENCY_KEY_HEADER, REPLAYED_HEADER};
use crate::topology::Module;

/// The process a forwarded route goes to: resource data of each forwarding route.
#[derive(Clone, Debug)]
pub struct Upstream(pub ServiceClient);

/// Request headers worth forwarding; everything else (hop-by-hop, host) stays here.
const FORWARDED_REQUEST_HEADERS: [HeaderName; 3] = [header::CONTENT_TYPE, header::AUTHORIZATION, header::ACCEPT];

/// Mounts `module`'s public routes as forwarding to `upstream`, the process that hosts it
/// (inventory and payments have no public routes). Routes that act for a user check the token
/// first.
pub fn configure_forwarding(cfg: &mut web::ServiceConfig, module: Module, upstream: ServiceClient) {
    let upstream = web::Data::new(Upstream(upstream));
    let resource = |path: &str| {
        web::resource(path.to_string()).app_data(upstream.clone()).default_service(web::to(method_not_allowed))
    };
    match module {
        Module::Accounts => {
            cfg.service(resource("/api/accounts").route(web::post().to(to_upstream)))
                .service(resource("/api/sessions").route(web::post().to(to_upstream)));
        }
        Module::Catalog => {
            cfg.service(resource("/api/products").route(web::get().to(to_upstream)))
                .service(resource("/api/categories").route(web::get().to(to_upstream)));
        }
        Module::Reviews => {
            cfg.service(
                resource("/api/products/{id}/reviews")
                    .route(web::get().to(to_upstream))
                    .route(web::post().to(to_upstream_as_user)),
            );
        }
        Module::Orders => {
            cfg.service(
                resource("/api/orders")
                    .route(web::get().to(to_upstream_as_user))
                    .route(web::post().to(to_upstream_as_user)),
            )
            .service(resource("/api/orders/{id}").route(web::get().to(to_upstream_as_user)));
        }
        Module::Inventory | Module::Payments => {}
    }
}

async fn to_upstream(req: HttpRequest, body: web::Payload, up: web::Data<Upstream>) -> Result<HttpResponse, ApiError> {
    forward(&req, body, &up.0).await
}

async fn to_upstream_as_user(
    req: HttpRequest,
    body: web::Payload,
    up: web::Data<Upstream>,
) -> Result<HttpResponse, ApiError> {
    AuthenticatedUser::from_request_head(&req)?;
    forward(&req, body, &up.0).await
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
