//! Route table. One module per endpoint family.

mod accounts;
mod admin;
mod assets;
mod audit;
mod avatars;
pub(crate) mod chat;
mod chat_sync;
mod commands;
mod credentials;
mod discussions;
mod e2e;
mod e2e_recovery;
mod emoji;
mod federation;
mod files;
mod integrations;
mod invites;
mod methods;
mod moderation;
pub(crate) mod registry;
mod roles;
mod room_admin;
pub(crate) mod room_settings;
mod rooms;
mod server;
mod sounds;
mod subscriptions;
mod teams;
mod two_factor;
mod user_status;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::params::MAX_BODY;
use apogee_core::error::{CoreError, ErrorKind};
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};

/// Every REST route, registered through [`registry::Routes`] so the list is known.
pub(crate) fn all() -> registry::Routes {
    registry::Routes::new()
        .merge(accounts::routes())
        .merge(credentials::routes())
        .merge(admin::routes())
        .merge(audit::routes())
        .merge(rooms::routes())
        .merge(subscriptions::routes())
        .merge(chat::routes())
        .merge(chat_sync::routes())
        .merge(commands::routes())
        .merge(roles::routes())
        .merge(room_admin::routes())
        .merge(room_settings::routes())
        .merge(server::routes())
        .merge(teams::routes())
        .merge(two_factor::routes())
        .merge(discussions::routes())
        .merge(e2e::routes())
        .merge(e2e_recovery::routes())
        .merge(files::routes())
        .merge(avatars::routes())
        .merge(invites::routes())
        .merge(integrations::routes())
        .merge(moderation::routes())
        .merge(emoji::routes())
        .merge(assets::routes())
        .merge(user_status::routes())
        .merge(sounds::routes())
        .merge(methods::routes())
        .merge(federation::routes())
}

/// The REST router: every route, Rocket.Chat's 404 for the rest, the global body limit.
pub fn router() -> Router<AppState> {
    all()
        .into_router()
        .fallback(fallback)
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

/// Paths no route matched: the browser client's files and pages when this server has one
/// (`web_client`), else Rocket.Chat's JSON 404.
async fn fallback(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    state
        .http
        .web_client
        .and_then(|client| crate::web_client::serve(&client, &method, uri.path(), &headers))
        .unwrap_or_else(|| not_found().into_response())
}

fn not_found() -> ApiResult {
    Err(ApiError(CoreError::new(
        ErrorKind::NotFound,
        "",
        "Resource not found",
    )))
}
