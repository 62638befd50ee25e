//! Rocket.Chat's wire over Apogee's core: the REST v1 API (`/api/v1/*`, `/api/info`) with
//! Rocket.Chat's paths, parameters, JSON shapes and error envelopes. Handlers are thin: they read
//! parameters, call one core use-case and render its result. No SQL, no authorization here.

pub mod auth;
pub mod ddp;
pub mod error;
pub mod params;
mod rate_limit;
pub mod render;
mod routes;
pub mod validate;
mod windows;

use apogee_core::Core;
use axum::Router;
use std::sync::Arc;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub core: Arc<Core>,
    rest_limits: Arc<rate_limit::RestLimits>,
}

pub use routes::registry::Endpoint;

/// Every REST endpoint the router serves, as registered (the authorization matrix test checks
/// it has a row for each).
pub fn endpoints() -> Vec<Endpoint> {
    let mut all = routes::all().endpoints().to_vec();
    all.sort();
    all
}

/// The REST API router.
pub fn router(core: Arc<Core>) -> Router {
    let state = AppState {
        rest_limits: Arc::default(),
        core: core.clone(),
    };
    routes::router()
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            rate_limit::enforce,
        ))
        .merge(ddp::routes(&core))
        .with_state(state)
}
