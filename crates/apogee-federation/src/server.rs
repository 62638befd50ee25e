//! The federation listener's routes: our key document and version (no authentication), and the
//! `X-Matrix`-authenticated endpoints, so far `query/profile` and `send/{txnId}`. Anything else is 404
//! `M_UNRECOGNIZED`, which is what makes Synapse fall back or give up cleanly.

use crate::{FedError, Federation};
use apogee_domain::Timestamp;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use ruma::api::federation::authentication::XMatrix;
use ruma::serde::Base64;
use ruma::signatures::PublicKeyMap;
use ruma::{OwnedServerName, UserId};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// Request bodies larger than this are refused (a transaction holds at most 50 PDUs of 64 KiB
/// and 100 EDUs).
const MAX_BODY: usize = 8 * 1024 * 1024;

/// A Matrix error answer: `{"errcode", "error"}`.
#[derive(Debug)]
pub struct MatrixError {
    pub status: StatusCode,
    pub errcode: &'static str,
    pub error: String,
    /// More fields of the answer (`room_version` of `M_INCOMPATIBLE_ROOM_VERSION`).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl MatrixError {
    pub fn new(status: StatusCode, errcode: &'static str, error: impl Into<String>) -> Self {
        Self {
            status,
            errcode,
            error: error.into(),
            extra: serde_json::Map::new(),
        }
    }

    pub fn with_field(mut self, key: &str, value: serde_json::Value) -> Self {
        self.extra.insert(key.to_string(), value);
        self
    }

    fn unauthorized(error: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "M_UNAUTHORIZED", error)
    }
}

impl IntoResponse for MatrixError {
    fn into_response(self) -> Response {
        let mut body = self.extra;
        body.insert("errcode".into(), json!(self.errcode));
        body.insert("error".into(), json!(self.error));
        (self.status, Json(serde_json::Value::Object(body))).into_response()
    }
}

/// The routes of the federation port.
pub fn router(federation: Arc<Federation>) -> axum::Router {
    axum::Router::new()
        .route("/_matrix/key/v2/server", get(server_keys))
        .route("/_matrix/federation/v1/version", get(version))
        .route("/_matrix/federation/v1/query/profile", get(query_profile))
        .route(
            "/_matrix/federation/v1/send/{txn_id}",
            put(send_transaction),
        )
        .merge(crate::serve::routes())
        .route(
            "/_matrix/federation/v1/media/download/{media_id}",
            get(crate::media::download),
        )
        .route(
            "/_matrix/federation/v1/media/thumbnail/{media_id}",
            get(crate::media::download),
        )
        .merge(crate::membership::routes())
        .fallback(unrecognized)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(federation)
}

/// `/.well-known/matrix/server` for the client port: where our federation listener is.
pub fn well_known_router(delegate: String) -> axum::Router {
    let body = Arc::new(json!({"m.server": delegate}));
    axum::Router::new().route(
        "/.well-known/matrix/server",
        get(move || {
            let body = body.clone();
            async move { Json((*body).clone()) }
        }),
    )
}

async fn unrecognized() -> MatrixError {
    MatrixError::new(
        StatusCode::NOT_FOUND,
        "M_UNRECOGNIZED",
        "Unrecognized request",
    )
}

async fn method_not_allowed() -> MatrixError {
    MatrixError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "M_UNRECOGNIZED",
        "Unrecognized request",
    )
}

async fn server_keys(State(fed): State<Arc<Federation>>) -> Result<Response, MatrixError> {
    let doc = fed
        .identity
        .key_document(Timestamp::now())
        .map_err(internal)?;
    Ok(Json(doc).into_response())
}

async fn version() -> Json<serde_json::Value> {
    Json(json!({"server": {"name": "Apogee", "version": env!("CARGO_PKG_VERSION")}}))
}

#[derive(Deserialize)]
struct ProfileQuery {
    user_id: String,
    field: Option<String>,
}

async fn query_profile(
    State(fed): State<Arc<Federation>>,
    Query(q): Query<ProfileQuery>,
    signed: Authenticated,
) -> Result<Json<serde_json::Value>, MatrixError> {
    let invalid = |e: String| MatrixError::new(StatusCode::BAD_REQUEST, "M_INVALID_PARAM", e);
    let user =
        <&UserId>::try_from(q.user_id.as_str()).map_err(|e| invalid(format!("user_id: {e}")))?;
    if user.server_name() != fed.identity.server_name {
        return Err(invalid("User is not hosted on this server".into()));
    }
    tracing::debug!(origin = %signed.origin, user = %user, "profile query");
    let profile = fed
        .core
        .federated_profile(user.localpart())
        .await
        .map_err(|e| internal(FedError::Internal(e.to_string())))?
        .ok_or_else(|| {
            MatrixError::new(
                StatusCode::NOT_FOUND,
                "M_NOT_FOUND",
                "Profile was not found",
            )
        })?;
    let mut answer = json!({});
    if matches!(q.field.as_deref(), None | Some("displayname")) {
        answer["displayname"] = json!(profile.displayname);
    }
    if let Some(url) = profile
        .avatar_url
        .filter(|_| matches!(q.field.as_deref(), None | Some("avatar_url")))
    {
        answer["avatar_url"] = json!(url);
    }
    Ok(Json(answer))
}

/// `PUT /send/{txnId}`: per-PDU answers. A retried transaction is answered the same way
/// because known events are accepted again without being applied twice.
async fn send_transaction(
    State(fed): State<Arc<Federation>>,
    signed: Authenticated,
) -> Result<Json<serde_json::Value>, MatrixError> {
    let body: serde_json::Value = serde_json::from_slice(&signed.body)
        .map_err(|_| MatrixError::new(StatusCode::BAD_REQUEST, "M_NOT_JSON", "Body is not JSON"))?;
    let list = |k: &str| {
        body.get(k)
            .and_then(serde_json::Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (pdus, edus) = (list("pdus"), list("edus"));
    if pdus.len() > crate::receive::MAX_PDUS || edus.len() > crate::receive::MAX_EDUS {
        return Err(MatrixError::new(
            StatusCode::BAD_REQUEST,
            "M_BAD_JSON",
            "Too many PDUs or EDUs in one transaction",
        ));
    }
    let answers = fed.receive_pdus(signed.origin.as_str(), &pdus).await;
    fed.receive_edus(signed.origin.as_str(), &edus).await;
    Ok(Json(json!({"pdus": answers})))
}

fn internal(e: FedError) -> MatrixError {
    tracing::warn!(error = %e, "federation request failed");
    MatrixError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "M_UNKNOWN",
        "Internal error",
    )
}

/// A request whose `X-Matrix` signature was verified: who sent it, and its body.
pub struct Authenticated {
    pub origin: OwnedServerName,
    pub body: Bytes,
}

impl FromRequest<Arc<Federation>> for Authenticated {
    type Rejection = MatrixError;

    async fn from_request(req: Request, fed: &Arc<Federation>) -> Result<Self, MatrixError> {
        let (parts, body) = req.into_parts();
        // The target as received: these routes are never nested, so nothing rewrote it.
        let uri = parts.uri.clone();
        let body = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
            MatrixError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "M_TOO_LARGE",
                "Request too large",
            )
        })?;
        let origin = verify_request(fed, &parts.method, &uri, &parts.headers, &body).await?;
        if fed.outgoing.heard_from(origin.as_str()) {
            let (fed, server) = (fed.clone(), origin.to_string());
            tokio::spawn(async move { fed.peer_is_up(&server).await });
        }
        Ok(Self { origin, body })
    }
}

/// Checks the `X-Matrix` header of a request against the origin's published key; returns the
/// origin. A server the policy refuses gets 403 `M_FORBIDDEN`. The signature covers the request target exactly as received, never a decoded form.
pub async fn verify_request(
    fed: &Federation,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<OwnedServerName, MatrixError> {
    let x_matrix = XMatrix::extract_from_http_headers(headers).map_err(|e| {
        MatrixError::unauthorized(format!("Missing or invalid X-Matrix authorization: {e}"))
    })?;
    // The server policy first: a refused server's keys are not even fetched.
    if !fed.core.federation_server_allowed(x_matrix.origin.as_str()) {
        tracing::info!(origin = %x_matrix.origin, "federation request refused: server policy");
        return Err(MatrixError::new(
            StatusCode::FORBIDDEN,
            "M_FORBIDDEN",
            "Federation with this server is not allowed",
        ));
    }
    let key = fed
        .keys
        .public_key(&x_matrix.origin, x_matrix.key.as_str(), Timestamp::now())
        .await
        .map_err(|e| {
            tracing::info!(origin = %x_matrix.origin, error = %e, "federation request refused: key");
            MatrixError::unauthorized(format!("No usable key {} of {}", x_matrix.key, x_matrix.origin))
        })?;
    let key = Base64::parse(&key).map_err(|_| MatrixError::unauthorized("Unusable key"))?;
    let map: PublicKeyMap = [(
        x_matrix.origin.to_string(),
        [(x_matrix.key.to_string(), key)].into(),
    )]
    .into();
    let request = http::Request::builder()
        .method(method.clone())
        .uri(uri.clone())
        .body(body)
        .map_err(|_| MatrixError::unauthorized("Unreadable request"))?;
    x_matrix
        .verify_http_request(&request, &fed.identity.server_name, &map)
        .map_err(|e| {
            tracing::info!(origin = %x_matrix.origin, error = %e, "federation request refused: signature");
            MatrixError::unauthorized("Signature was forged or corrupt")
        })?;
    Ok(x_matrix.origin)
}
