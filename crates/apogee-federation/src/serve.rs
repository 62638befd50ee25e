//! Catch-up served to other servers (`X-Matrix` authenticated): `GET /v1/event/{eventId}`,
//! `/v1/state/{roomId}?event_id=`, `/v1/state_ids/{roomId}?event_id=`,
//! `/v1/event_auth/{roomId}/{eventId}`, `/v1/backfill/{roomId}?v=…&limit=` and
//! `POST /v1/get_missing_events/{roomId}`. Core decides who is answered (a server with a member
//! joined to the room) and which events it may only see redacted (history visibility); this
//! module reads parameters, redacts by the room version's rules and renders.

use crate::Federation;
use crate::pdu;
use crate::server::{Authenticated, MatrixError};
use apogee_core::error::{CoreError, ErrorKind};
use apogee_core::federated_catchup::{ServedEvent, ServedState};
use apogee_core::store::FederationEvent;
use apogee_domain::Timestamp;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::routing::{get, post};
use ruma::canonical_json::{CanonicalJsonObject, redact};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Default number of events of a `get_missing_events` (the spec's).
const DEFAULT_MISSING_LIMIT: usize = 10;

pub fn routes() -> axum::Router<Arc<Federation>> {
    axum::Router::new()
        .route("/_matrix/federation/v1/event/{event_id}", get(event))
        .route("/_matrix/federation/v1/state/{room_id}", get(state))
        .route("/_matrix/federation/v1/state_ids/{room_id}", get(state_ids))
        .route(
            "/_matrix/federation/v1/event_auth/{room_id}/{event_id}",
            get(event_auth),
        )
        .route("/_matrix/federation/v1/backfill/{room_id}", get(backfill))
        .route(
            "/_matrix/federation/v1/get_missing_events/{room_id}",
            post(missing_events),
        )
        .layer(axum::middleware::from_fn(log_served))
}

/// Each catch-up request and its answer's status, for operators following a peer catching
/// up (paths carry room and event ids only).
async fn log_served(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let path = request.uri().path().to_string();
    let answer = next.run(request).await;
    tracing::info!(%path, status = answer.status().as_u16(), "federation catch-up served");
    answer
}

fn refused(e: CoreError) -> MatrixError {
    let status = match e.kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        _ => {
            tracing::warn!(error = %e, "federation catch-up failed");
            return MatrixError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "M_UNKNOWN",
                "Internal error",
            );
        }
    };
    let errcode = match e.code.as_str() {
        "M_NOT_FOUND" => "M_NOT_FOUND",
        "M_FORBIDDEN" => "M_FORBIDDEN",
        _ => "M_INVALID_PARAM",
    };
    MatrixError::new(status, errcode, e.message)
}

fn missing(param: &str) -> MatrixError {
    MatrixError::new(
        StatusCode::BAD_REQUEST,
        "M_MISSING_PARAM",
        format!("Missing {param}"),
    )
}

/// The query's values of `key` (repeated keys allowed, as in `backfill`'s `v`).
fn query_values(uri: &Uri, key: &str) -> Vec<String> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .collect()
}

impl Federation {
    /// A stored event as served: its PDU, redacted when core says so.
    async fn render(&self, served: &ServedEvent) -> Value {
        if !served.redact {
            return served.event.pdu.clone();
        }
        self.redacted(&served.event)
            .await
            .unwrap_or_else(|| served.event.pdu.clone())
    }

    async fn redacted(&self, event: &FederationEvent) -> Option<Value> {
        let room = self
            .core
            .federated_room_by_matrix_id(&event.matrix_room_id)
            .await
            .ok()??;
        let rules = pdu::rules_for(&room.room_version).ok()?;
        let object: CanonicalJsonObject = serde_json::from_value(event.pdu.clone()).ok()?;
        let object = redact(object, &rules.redaction, None).ok()?;
        serde_json::to_value(object).ok()
    }

    fn envelope(&self, pdus: Vec<Value>) -> Value {
        json!({
            "origin": self.identity.server_name.as_str(),
            "origin_server_ts": Timestamp::now().millis(),
            "pdus": pdus,
        })
    }
}

async fn event(
    State(fed): State<Arc<Federation>>,
    Path(event_id): Path<String>,
    signed: Authenticated,
) -> Result<Json<Value>, MatrixError> {
    let served = fed
        .core
        .federation_serve_event(signed.origin.as_str(), &event_id)
        .await
        .map_err(refused)?;
    let pdu = fed.render(&served).await;
    Ok(Json(fed.envelope(vec![pdu])))
}

/// The state before `?event_id=` and its auth chain, for `state` and `state_ids`.
async fn served_state(
    fed: &Federation,
    room_id: &str,
    uri: &Uri,
    signed: &Authenticated,
) -> Result<ServedState, MatrixError> {
    let event_id = query_values(uri, "event_id")
        .pop()
        .ok_or_else(|| missing("event_id"))?;
    fed.core
        .federation_serve_state(signed.origin.as_str(), room_id, &event_id)
        .await
        .map_err(refused)
}

async fn state(
    State(fed): State<Arc<Federation>>,
    Path(room_id): Path<String>,
    uri: Uri,
    signed: Authenticated,
) -> Result<Json<Value>, MatrixError> {
    let served = served_state(&fed, &room_id, &uri, &signed).await?;
    let pdus = |events: Vec<FederationEvent>| events.into_iter().map(|e| e.pdu).collect::<Vec<_>>();
    Ok(Json(json!({
        "pdus": pdus(served.state),
        "auth_chain": pdus(served.auth_chain),
    })))
}

async fn state_ids(
    State(fed): State<Arc<Federation>>,
    Path(room_id): Path<String>,
    uri: Uri,
    signed: Authenticated,
) -> Result<Json<Value>, MatrixError> {
    let served = served_state(&fed, &room_id, &uri, &signed).await?;
    let ids =
        |events: Vec<FederationEvent>| events.into_iter().map(|e| e.event_id).collect::<Vec<_>>();
    Ok(Json(json!({
        "pdu_ids": ids(served.state),
        "auth_chain_ids": ids(served.auth_chain),
    })))
}

async fn event_auth(
    State(fed): State<Arc<Federation>>,
    Path((room_id, event_id)): Path<(String, String)>,
    signed: Authenticated,
) -> Result<Json<Value>, MatrixError> {
    let chain = fed
        .core
        .federation_serve_event_auth(signed.origin.as_str(), &room_id, &event_id)
        .await
        .map_err(refused)?;
    let pdus: Vec<Value> = chain.into_iter().map(|e| e.pdu).collect();
    Ok(Json(json!({"auth_chain": pdus})))
}

async fn backfill(
    State(fed): State<Arc<Federation>>,
    Path(room_id): Path<String>,
    uri: Uri,
    signed: Authenticated,
) -> Result<Json<Value>, MatrixError> {
    let from = query_values(&uri, "v");
    if from.is_empty() {
        return Err(missing("v"));
    }
    let limit = query_values(&uri, "limit")
        .pop()
        .ok_or_else(|| missing("limit"))?
        .parse::<usize>()
        .map_err(|_| {
            MatrixError::new(
                StatusCode::BAD_REQUEST,
                "M_INVALID_PARAM",
                "limit is not a number",
            )
        })?;
    let served = fed
        .core
        .federation_serve_backfill(signed.origin.as_str(), &room_id, &from, limit)
        .await
        .map_err(refused)?;
    let mut pdus = Vec::with_capacity(served.len());
    for s in &served {
        pdus.push(fed.render(s).await);
    }
    Ok(Json(fed.envelope(pdus)))
}

#[derive(Deserialize)]
struct MissingEventsBody {
    #[serde(default)]
    earliest_events: Vec<String>,
    latest_events: Vec<String>,
    limit: Option<usize>,
    #[serde(default)]
    min_depth: i64,
}

async fn missing_events(
    State(fed): State<Arc<Federation>>,
    Path(room_id): Path<String>,
    signed: Authenticated,
) -> Result<Json<Value>, MatrixError> {
    let body: MissingEventsBody = serde_json::from_slice(&signed.body).map_err(|e| {
        MatrixError::new(StatusCode::BAD_REQUEST, "M_BAD_JSON", format!("Body: {e}"))
    })?;
    let served = fed
        .core
        .federation_serve_missing_events(
            signed.origin.as_str(),
            &room_id,
            &body.earliest_events,
            &body.latest_events,
            body.limit.unwrap_or(DEFAULT_MISSING_LIMIT),
            body.min_depth,
        )
        .await
        .map_err(refused)?;
    let mut events = Vec::with_capacity(served.len());
    for s in &served {
        events.push(fed.render(s).await);
    }
    Ok(Json(json!({"events": events})))
}
