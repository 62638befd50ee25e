//! Limits on a request's head. Bodies are capped per route (`DefaultBodyLimit`, uploads while
//! streaming); here: the URI, checked before routing (414), and the numbers the server's HTTP/1
//! parser enforces on the whole head (431 from the parser itself, before any handler runs).

use axum::Json;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Longest path + query accepted (8 KiB, what common proxies allow).
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Largest request head (request line and all header lines) the parser accepts.
pub const MAX_HEAD_BYTES: usize = 32 * 1024;
/// Most header fields in one request.
pub const MAX_HEADERS: usize = 100;

/// The answer refusing `req` for its head, if it must be refused (before routing).
pub(crate) fn refusal(req: &Request) -> Option<Response> {
    let uri_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri_len > MAX_URI_BYTES {
        let body = json!({"success": false, "error": format!(
            "URI too long: {uri_len} bytes, at most {MAX_URI_BYTES}"
        )});
        return Some((StatusCode::URI_TOO_LONG, Json(body)).into_response());
    }
    None
}
