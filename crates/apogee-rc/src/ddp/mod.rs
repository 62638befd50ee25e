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
use axum::extract::{State, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use conn::Framing;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Largest DDP frame a client may send.
pub const MAX_FRAME: usize = 1024 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/websocket", get(raw))
        .route("/sockjs/info", get(sockjs_info))
        .route("/sockjs/{server}/{session}/websocket", get(sockjs))
        .layer(Extension(Arc::new(Presence::default())))
}

/// This node's live logged-in connections per user: the first makes the user online, the last
/// one closing makes them offline.
#[derive(Default)]
pub struct Presence {
    counts: Mutex<HashMap<String, usize>>,
}

impl Presence {
    /// Counts a connection in; true if it is the user's first.
    pub fn arrive(&self, uid: &str) -> bool {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(uid.to_string()).or_default();
        *n += 1;
        *n == 1
    }

    /// Counts a connection out; true if it was the user's last.
    pub fn leave(&self, uid: &str) -> bool {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        match counts.get_mut(uid) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            Some(_) => {
                counts.remove(uid);
                true
            }
            None => false,
        }
    }
}

fn upgrade(ws: WebSocketUpgrade, s: AppState, p: Arc<Presence>, framing: Framing) -> Response {
    ws.max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| conn::serve(socket, s.core, p, framing))
}

async fn raw(
    State(s): State<AppState>,
    Extension(p): Extension<Arc<Presence>>,
    ws: WebSocketUpgrade,
) -> Response {
    upgrade(ws, s, p, Framing::Raw)
}

async fn sockjs(
    State(s): State<AppState>,
    Extension(p): Extension<Arc<Presence>>,
    ws: WebSocketUpgrade,
) -> Response {
    upgrade(ws, s, p, Framing::SockJs)
}

async fn sockjs_info() -> Response {
    let entropy = uuid::Uuid::new_v4().as_u128() as u32;
    axum::Json(
        json!({"websocket": true, "origins": ["*:*"], "cookie_needed": false, "entropy": entropy}),
    )
    .into_response()
}
