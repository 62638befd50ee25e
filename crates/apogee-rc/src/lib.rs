//! Rocket.Chat's wire over Apogee's core: the REST v1 API (`/api/v1/*`, `/api/info`) with
//! Rocket.Chat's paths, parameters, JSON shapes and error envelopes. Handlers are thin: they read
//! parameters, call one core use-case and render its result. No SQL, no authorization here.

pub mod auth;
mod cors;
pub mod ddp;
pub mod error;
pub mod params;
mod rate_limit;
pub mod render;
pub mod request_limits;
mod routes;
mod security_headers;
pub mod validate;
pub mod web_client;
mod windows;

use apogee_core::Core;
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub core: Arc<Core>,
    rest_limits: Arc<rate_limit::RestLimits>,
    security_headers: Arc<security_headers::Cache>,
    http: HttpOptions,
}

pub use routes::registry::Endpoint;

/// Every REST endpoint the router serves, as registered (the authorization matrix test checks
/// it has a row for each).
pub fn endpoints() -> Vec<Endpoint> {
    let mut all = routes::all().endpoints().to_vec();
    all.sort();
    all
}

/// How the process serves HTTP, as far as the answers depend on it.
#[derive(Clone, Copy, Debug, Default)]
pub struct HttpOptions {
    /// This process terminates TLS: answers carry `Strict-Transport-Security`.
    pub hsts: bool,
    /// Rocket.Chat's `HTTP_FORWARDED_COUNT`: trusted proxies in front, see
    /// [`auth::forwarded_client`].
    pub forwarded_count: usize,
    /// The browser client to serve at the paths no route answers (see [`web_client`]); without
    /// one those get the API's 404.
    pub web_client: Option<web_client::WebClient>,
}

/// The REST API and realtime router, served over plain HTTP.
pub fn router(core: Arc<Core>) -> Router {
    router_with(core, HttpOptions::default())
}

/// The router with every answer hardened (see [`harden`]).
pub fn router_with(core: Arc<Core>, http: HttpOptions) -> Router {
    let state = AppState {
        rest_limits: Arc::default(),
        security_headers: Arc::default(),
        core: core.clone(),
        http,
    };
    use axum::middleware::from_fn_with_state;
    let mut router = routes::router()
        .route_layer(from_fn_with_state(state.clone(), rate_limit::enforce))
        .merge(ddp::routes(&core));
    if http.forwarded_count > 0 {
        router = router.layer(from_fn_with_state(
            http.forwarded_count,
            auth::forwarded_for,
        ));
    }
    router
        .layer(from_fn_with_state(state.clone(), harden))
        .with_state(state)
}

/// Outermost, for every request: the URI limit, then CORS, then the routes; the security headers
/// go on every answer, refusals too. One layer rather than three: each layer costs every request
/// a boxed future and a copy of the service beneath it.
async fn harden(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let mut response = match request_limits::refusal(&req) {
        Some(refusal) => refusal,
        None => cors::handle(&s, req, next).await,
    };
    security_headers::add(&s, response.headers_mut());
    response
}
