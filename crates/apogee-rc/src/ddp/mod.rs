//! Rocket.Chat's realtime API: DDP over WebSocket, raw (`/websocket`) and SockJS
//! (`/sockjs/info`, `/sockjs/<server>/<session>/websocket`).
//!
//! - `ejson`: `$date` conversion and `Meteor.Error` objects;
//! - `hub`: this node's connections by room and user; routes each event to those it concerns;
//! - `limits`: Rocket.Chat's DDP rate limiter;
//! - `conn`: one connection's loop (handshake, heartbeats, methods, subscriptions, send queue);
//! - `methods`: the method dispatcher, also used by `POST /api/v1/method.call/:method`;
//! - `streams`: `stream-*` subscriptions and how core events become their frames.

pub mod conn;
pub mod ejson;
pub mod hub;
pub mod limits;
pub mod methods;
pub mod streams;

use crate::AppState;
use crate::auth::{ClientAddr, UserAgent};
use apogee_core::Core;
use axum::extract::{State, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use conn::Framing;
use hub::Hub;
use serde_json::json;
use std::sync::Arc;

/// Largest DDP frame a client may send.
pub const MAX_FRAME: usize = 1024 * 1024;

pub fn routes(core: &Core) -> Router<AppState> {
    Router::new()
        .route("/websocket", get(raw))
        .route("/sockjs/info", get(sockjs_info))
        .route("/sockjs/{server}/{session}/websocket", get(sockjs))
        .layer(Extension(Hub::start(core)))
}

/// Socket buffers: tungstenite's defaults (128 KiB each way) would dominate an idle
/// connection's memory. The read buffer is allocated up front for every connection; DDP frames
/// are mostly a few hundred bytes, and a larger one is read in several chunks.
const READ_BUFFER: usize = 1024;
const WRITE_BUFFER: usize = 4 * 1024;

fn upgrade(
    ws: WebSocketUpgrade,
    s: AppState,
    hub: Arc<Hub>,
    ClientAddr(addr): ClientAddr,
    UserAgent(agent): UserAgent,
    framing: Framing,
) -> Response {
    ws.max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(MAX_FRAME + WRITE_BUFFER)
        .on_upgrade(move |socket| conn::serve(socket, s.core, hub, framing, addr, agent))
}

async fn raw(
    State(s): State<AppState>,
    Extension(hub): Extension<Arc<Hub>>,
    peer: ClientAddr,
    agent: UserAgent,
    ws: WebSocketUpgrade,
) -> Response {
    upgrade(ws, s, hub, peer, agent, Framing::Raw)
}

async fn sockjs(
    State(s): State<AppState>,
    Extension(hub): Extension<Arc<Hub>>,
    peer: ClientAddr,
    agent: UserAgent,
    ws: WebSocketUpgrade,
) -> Response {
    upgrade(ws, s, hub, peer, agent, Framing::SockJs)
}

async fn sockjs_info() -> Response {
    let entropy = uuid::Uuid::new_v4().as_u128() as u32;
    axum::Json(
        json!({"websocket": true, "origins": ["*:*"], "cookie_needed": false, "entropy": entropy}),
    )
    .into_response()
}
