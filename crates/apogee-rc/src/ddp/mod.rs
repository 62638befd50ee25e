//! Rocket.Chat's realtime API: DDP over WebSocket, raw (`/websocket`) and SockJS
//! (`/sockjs/info`, `/sockjs/<server>/<session>/websocket`).
//!
//! - `ejson`: `$date` conversion and `Meteor.Error` objects;
//! - `conn`: one connection's loop (handshake, heartbeats, methods, subscriptions, send queue);
//! - `methods`: the method dispatcher, also used by `POST /api/v1/method.call/:method`;
//! - `streams`: `stream-*` subscriptions and how core events become their frames.

pub mod conn;
pub mod ejson;
pub mod methods;
pub mod streams;

use crate::AppState;
use axum::Router;
use axum::extract::{State, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use conn::Framing;
use serde_json::json;

/// Largest DDP frame a client may send.
pub const MAX_FRAME: usize = 1024 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/websocket", get(raw))
        .route("/sockjs/info", get(sockjs_info))
        .route("/sockjs/{server}/{session}/websocket", get(sockjs))
}

fn upgrade(ws: WebSocketUpgrade, s: AppState, framing: Framing) -> Response {
    ws.max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| conn::serve(socket, s.core, framing))
}

async fn raw(State(s): State<AppState>, ws: WebSocketUpgrade) -> Response {
    upgrade(ws, s, Framing::Raw)
}

async fn sockjs(State(s): State<AppState>, ws: WebSocketUpgrade) -> Response {
    upgrade(ws, s, Framing::SockJs)
}

async fn sockjs_info() -> Response {
    let entropy = uuid::Uuid::new_v4().as_u128() as u32;
    axum::Json(
        json!({"websocket": true, "origins": ["*:*"], "cookie_needed": false, "entropy": entropy}),
    )
    .into_response()
}
