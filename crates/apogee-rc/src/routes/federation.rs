//! `federation.*`: joining rooms of other Matrix servers (Rocket.Chat's
//! `federation/joinExternalPublicRoom`) and each destination's delivery health (Apogee's
//! `federation/destinations`). Core decides; the Matrix protocol is the federation
//! adapter's (absent unless the server was started with a server name).

use super::registry::{Routes, get, post};
use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiResult, ok};
use crate::params::Params;
use axum::extract::State;
use serde_json::json;

pub fn routes() -> Routes {
    Routes::new()
        .route(
            "/api/v1/federation/joinExternalPublicRoom",
            post(join_external_public_room),
        )
        .route("/api/v1/federation/destinations", get(destinations))
}

/// Apogee's per-destination health: `{destinations: [{server, queueLength, oldestPendingAt,
/// nextAttemptAt, inFlight, failedAttempts, lastSuccessAt, lastFailureAt, lastError}]}`.
async fn destinations(State(s): State<AppState>, Auth(a): Auth) -> ApiResult {
    let destinations = s.core.federation_destination_health(&a.user).await?;
    ok(json!({"destinations": destinations, "total": destinations.len()}))
}

/// `{externalRoomId: "!id:server", via?: "server"}` → the mapped room.
async fn join_external_public_room(
    State(s): State<AppState>,
    Auth(a): Auth,
    p: Params,
) -> ApiResult {
    let room_id = p.required("externalRoomId")?;
    let room = s
        .core
        .join_external_room(&a.user, room_id, p.str("via"))
        .await?;
    ok(json!({"room": crate::render::to_json(&room)}))
}
