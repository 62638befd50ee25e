//! Membership served to other servers: `make_join` / `v1`+`v2 send_join`, `make_leave` /
//! `v1`+`v2 send_leave` for rooms we are in, `v2/invite` of our users into theirs (accepted by
//! joining, as Rocket.Chat does), and sending our own invites (`v2/invite` out).
//!
//! Every handed-in event is checked before core commits it: the right room, event id, type and
//! membership; a sender of the calling server that is the state key (nobody joins or leaves
//! for someone else); every required signature; the auth rules against its auth events and
//! then the room's current state (a resident refuses what it would soft-fail).

use crate::join::encode_segment;
use crate::pdu::{self, Pdu, PduError};
use crate::server::{Authenticated, MatrixError};
use crate::{FedError, Federation};
use apogee_core::error::{CoreError, ErrorKind};
use apogee_core::federated_events::IncomingEvent;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use http::Method;
use ruma::canonical_json::CanonicalJsonObject;
use ruma::{OwnedEventId, UserId};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// The membership routes of the federation port.
pub(crate) fn routes() -> axum::Router<Arc<Federation>> {
    use axum::routing::{get, put};
    const V1: &str = "/_matrix/federation/v1";
    const V2: &str = "/_matrix/federation/v2";
    axum::Router::new()
        .route(
            &format!("{V1}/make_join/{{room_id}}/{{user_id}}"),
            get(make_join),
        )
        .route(
            &format!("{V1}/send_join/{{room_id}}/{{event_id}}"),
            put(send_join_v1),
        )
        .route(
            &format!("{V2}/send_join/{{room_id}}/{{event_id}}"),
            put(send_join_v2),
        )
        .route(
            &format!("{V1}/make_leave/{{room_id}}/{{user_id}}"),
            get(make_leave),
        )
        .route(
            &format!("{V1}/send_leave/{{room_id}}/{{event_id}}"),
            put(send_leave_v1),
        )
        .route(
            &format!("{V2}/send_leave/{{room_id}}/{{event_id}}"),
            put(send_leave_v2),
        )
        .route(
            &format!("{V2}/invite/{{room_id}}/{{event_id}}"),
            put(invite_v2),
        )
}

fn forbidden(e: impl Into<String>) -> MatrixError {
    MatrixError::new(StatusCode::FORBIDDEN, "M_FORBIDDEN", e)
}

fn bad_json(e: impl Into<String>) -> MatrixError {
    MatrixError::new(StatusCode::BAD_REQUEST, "M_BAD_JSON", e)
}

fn from_core(e: CoreError) -> MatrixError {
    match e.kind {
        ErrorKind::Forbidden | ErrorKind::Unauthenticated => forbidden(e.message),
        ErrorKind::NotFound => MatrixError::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", e.message),
        _ if e.code == "error-not-allowed" => forbidden(e.message),
        _ if e.code == "error-room-not-found" => {
            MatrixError::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", "Unknown room")
        }
        ErrorKind::Internal => {
            tracing::warn!(error = %e, "federation membership request failed");
            MatrixError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "M_UNKNOWN",
                "Internal error",
            )
        }
        _ => bad_json(e.message),
    }
}

fn pdu_error(e: PduError) -> MatrixError {
    match e {
        PduError::Auth(_) | PduError::SoftFail(_) => forbidden(e.to_string()),
        _ => bad_json(e.to_string()),
    }
}

/// The `ver` parameters of a `make_join` (none means version 1 only).
fn versions(uri: &Uri) -> Vec<String> {
    let mut out = Vec::new();
    for pair in uri.query().unwrap_or("").split('&') {
        if let Some(v) = pair.strip_prefix("ver=") {
            out.push(v.to_string());
        }
    }
    if out.is_empty() {
        out.push("1".into());
    }
    out
}

/// The asking server may only act for its own users.
fn own_user(signed: &Authenticated, user_id: &str) -> Result<(), MatrixError> {
    let user = <&UserId>::try_from(user_id).map_err(|e| bad_json(format!("user id: {e}")))?;
    if user.server_name() != signed.origin {
        return Err(forbidden("The user is not of the requesting server"));
    }
    Ok(())
}

pub(crate) async fn make_join(
    State(fed): State<Arc<Federation>>,
    Path((room_id, user_id)): Path<(String, String)>,
    uri: Uri,
    signed: Authenticated,
) -> Result<Json<Value>, MatrixError> {
    own_user(&signed, &user_id)?;
    let (version, template) = fed
        .core
        .federation_membership_template(&room_id, &user_id, "join")
        .await
        .map_err(from_core)?;
    if !versions(&uri).contains(&version) {
        return Err(MatrixError::new(
            StatusCode::BAD_REQUEST,
            "M_INCOMPATIBLE_ROOM_VERSION",
            format!("The room is version {version}"),
        )
        .with_field("room_version", json!(version)));
    }
    Ok(Json(json!({"room_version": version, "event": template})))
}

pub(crate) async fn make_leave(
    State(fed): State<Arc<Federation>>,
    Path((room_id, user_id)): Path<(String, String)>,
    signed: Authenticated,
) -> Result<Json<Value>, MatrixError> {
    own_user(&signed, &user_id)?;
    let (version, template) = fed
        .core
        .federation_membership_template(&room_id, &user_id, "leave")
        .await
        .map_err(from_core)?;
    Ok(Json(json!({"room_version": version, "event": template})))
}

pub(crate) async fn send_join_v2(
    State(fed): State<Arc<Federation>>,
    Path((room_id, event_id)): Path<(String, String)>,
    signed: Authenticated,
) -> Result<Json<Value>, MatrixError> {
    Ok(Json(
        fed.accept_membership(&signed, &room_id, &event_id, "join")
            .await?,
    ))
}

/// v1 answers `[200, body]`.
pub(crate) async fn send_join_v1(
    State(fed): State<Arc<Federation>>,
    Path((room_id, event_id)): Path<(String, String)>,
    signed: Authenticated,
) -> Result<Json<Value>, MatrixError> {
    let body = fed
        .accept_membership(&signed, &room_id, &event_id, "join")
        .await?;
    Ok(Json(json!([200, body])))
}

pub(crate) async fn send_leave_v2(
    State(fed): State<Arc<Federation>>,
    Path((room_id, event_id)): Path<(String, String)>,
    signed: Authenticated,
) -> Result<Json<Value>, MatrixError> {
    fed.accept_membership(&signed, &room_id, &event_id, "leave")
        .await?;
    Ok(Json(json!({})))
}

pub(crate) async fn send_leave_v1(
    State(fed): State<Arc<Federation>>,
    Path((room_id, event_id)): Path<(String, String)>,
    signed: Authenticated,
) -> Result<Json<Value>, MatrixError> {
    fed.accept_membership(&signed, &room_id, &event_id, "leave")
        .await?;
    Ok(Json(json!([200, {}])))
}

pub(crate) async fn invite_v2(
    State(fed): State<Arc<Federation>>,
    Path((room_id, event_id)): Path<(String, String)>,
    signed: Authenticated,
) -> Result<Json<Value>, MatrixError> {
    let body: Value = serde_json::from_slice(&signed.body)
        .map_err(|_| MatrixError::new(StatusCode::BAD_REQUEST, "M_NOT_JSON", "Body is not JSON"))?;
    let version = body
        .get("room_version")
        .and_then(Value::as_str)
        .unwrap_or("1")
        .to_string();
    let rules = pdu::rules_for(&version).map_err(|_| {
        MatrixError::new(
            StatusCode::BAD_REQUEST,
            "M_INCOMPATIBLE_ROOM_VERSION",
            format!("Room version {version} is not supported"),
        )
        .with_field("room_version", json!(version))
    })?;
    let raw = body.get("event").ok_or_else(|| bad_json("No event"))?;
    let parsed = Pdu::parse(raw, &rules).map_err(pdu_error)?;
    if parsed.event_id.as_str() != event_id || parsed.room_id_str() != room_id {
        return Err(bad_json("The event is not the one in the path"));
    }
    let membership = parsed.content_json()["membership"].clone();
    let is_direct = parsed.content_json()["is_direct"] == json!(true);
    if parsed.kind().to_string() != "m.room.member" || membership != json!("invite") {
        return Err(bad_json("Not an invite"));
    }
    if parsed.sender().server_name() != signed.origin {
        return Err(forbidden("The inviter is not of the requesting server"));
    }
    let invitee = parsed
        .state_key()
        .and_then(|k| <&UserId>::try_from(k).ok())
        .map(ToOwned::to_owned)
        .ok_or_else(|| bad_json("No invitee"))?;
    if invitee.server_name() != fed.identity.server_name {
        return Err(bad_json("The invitee is not on this server"));
    }
    let pdu = pdu::verify(parsed, &rules, &fed.keys)
        .await
        .map_err(pdu_error)?;
    if pdu.redacted {
        return Err(bad_json("The event's content hash does not match"));
    }
    let user = fed
        .core
        .federation_invitee(invitee.localpart())
        .await
        .map_err(|e| MatrixError::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", e.message))?;
    if is_direct {
        // A direct invite must be able to be a DM here (not public, not a room we hold as
        // something else): refused before anything is queued.
        let invite_state = body
            .get("invite_room_state")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        fed.core
            .check_direct_invite(&room_id, invite_state)
            .await
            .map_err(|e| forbidden(e.message))?;
    }
    // Our signature beside the inviter's: the invite is now the room's event to both sides.
    let mut object = pdu.object.clone();
    ruma::signatures::sign_event(
        fed.identity.server_name.as_str(),
        fed.identity.key_pair(),
        &mut object,
        &rules.redaction,
    )
    .map_err(|e| bad_json(format!("cannot sign: {e}")))?;
    tracing::info!(room = %room_id, inviter = %pdu.sender(), invitee = %invitee, "federated invite accepted");
    // Rocket.Chat takes remote invites up by joining. The inviting server stores the invite
    // after we answer, so the join is queued (durably) for a moment later.
    fed.core
        .queue_invite_take_up(&user, &room_id, signed.origin.as_str(), is_direct)
        .await
        .map_err(from_core)?;
    Ok(Json(json!({"event": object})))
}

impl Federation {
    /// `send_join` / `send_leave`: the signed event checked, committed by core (relayed to the
    /// room's other servers); for a join, the room's state before it and its auth chain.
    async fn accept_membership(
        &self,
        signed: &Authenticated,
        room_id: &str,
        event_id: &str,
        membership: &str,
    ) -> Result<Value, MatrixError> {
        let room = self
            .core
            .federated_room_by_matrix_id(room_id)
            .await
            .map_err(from_core)?
            .ok_or_else(|| {
                MatrixError::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", "Unknown room")
            })?;
        let rules = pdu::rules_for(&room.room_version).map_err(pdu_error)?;
        let raw: Value = serde_json::from_slice(&signed.body).map_err(|_| {
            MatrixError::new(StatusCode::BAD_REQUEST, "M_NOT_JSON", "Body is not JSON")
        })?;
        let parsed = Pdu::parse(&raw, &rules).map_err(pdu_error)?;
        if parsed.event_id.as_str() != event_id || parsed.room_id_str() != room_id {
            return Err(bad_json("The event is not the one in the path"));
        }
        if parsed.kind().to_string() != "m.room.member"
            || parsed.content_json()["membership"] != json!(membership)
        {
            return Err(bad_json(format!("Not a {membership} event")));
        }
        if parsed.state_key() != Some(parsed.sender().as_str()) {
            return Err(forbidden("A member event for someone else"));
        }
        if parsed.sender().server_name() != signed.origin {
            return Err(forbidden("The user is not of the requesting server"));
        }
        let known = self
            .core
            .federation_event(event_id)
            .await
            .map_err(from_core)?
            .is_some();
        let pdu = pdu::verify(parsed, &rules, &self.keys)
            .await
            .map_err(pdu_error)?;
        if pdu.redacted {
            return Err(bad_json("The event's content hash does not match"));
        }
        let state = self.current_state(room_id).await;
        if !known {
            let mut auth = HashMap::new();
            for id in pdu.auth_event_ids() {
                let found = self
                    .stored_pdu(id.as_str())
                    .await
                    .ok_or_else(|| forbidden(format!("Unknown auth event {id}")))?;
                auth.insert(id.clone(), found);
            }
            if let Some(create) = state.get(&("m.room.create".to_string(), String::new())) {
                auth.entry(create.event_id.clone())
                    .or_insert_with(|| create.clone());
            }
            pdu::check_auth_events(&pdu, &rules, &auth).map_err(pdu_error)?;
            pdu::check_against_state(&pdu, &rules, &state).map_err(pdu_error)?;
            let incoming = IncomingEvent {
                event_id: event_id.to_string(),
                matrix_room_id: room_id.to_string(),
                sender: pdu.sender().to_string(),
                event_type: pdu.kind().to_string(),
                state_key: pdu.state_key().map(str::to_string),
                content: pdu.content_json(),
                redacts: None,
                prev_events: pdu.prev_events().iter().map(|e| e.to_string()).collect(),
                depth: pdu.depth,
                origin_server_ts: pdu.origin_server_ts(),
                pdu: pdu.to_json(),
                soft_failed: false,
                // Checked against the current state above: it follows the current state.
                state_before: None,
                current_state: None,
            };
            self.core
                .receive_federated_event_relayed(incoming, Some(signed.origin.as_str()))
                .await
                .map_err(from_core)?;
        }
        if membership != "join" {
            return Ok(json!({}));
        }
        let state_pdus: Vec<&Pdu> = state
            .values()
            .filter(|p| p.event_id.as_str() != event_id)
            .collect();
        let auth_chain = self
            .auth_chain(
                state_pdus
                    .iter()
                    .map(|p| p.event_id.clone())
                    .chain(pdu.auth_event_ids().iter().cloned()),
            )
            .await;
        Ok(json!({
            "origin": self.identity.server_name.as_str(),
            "state": state_pdus.iter().map(|p| p.to_json()).collect::<Vec<_>>(),
            "auth_chain": auth_chain,
            "event": pdu.to_json(),
            "members_omitted": false,
        }))
    }

    /// Every stored event the given ones' auth events lead to, transitively.
    async fn auth_chain(&self, start: impl Iterator<Item = OwnedEventId>) -> Vec<Value> {
        let mut seen = HashSet::new();
        let mut todo: Vec<OwnedEventId> = Vec::new();
        for id in start {
            if let Some(p) = self.stored_pdu(id.as_str()).await {
                todo.extend(p.auth_event_ids().iter().cloned());
            }
        }
        let mut out = Vec::new();
        while let Some(id) = todo.pop() {
            if !seen.insert(id.clone()) {
                continue;
            }
            if let Some(p) = self.stored_pdu(id.as_str()).await {
                todo.extend(p.auth_event_ids().iter().cloned());
                out.push(p.to_json());
            }
        }
        out
    }

    /// Checks that `server` signed the event (one of its keys listed in the signatures).
    async fn check_signed_by(
        &self,
        event: &Pdu,
        server: &str,
        rules: &ruma::room_version_rules::RoomVersionRules,
    ) -> Result<(), String> {
        let Some(ruma::canonical_json::CanonicalJsonValue::Object(by_key)) =
            event.object.get("signatures").and_then(|s| match s {
                ruma::canonical_json::CanonicalJsonValue::Object(o) => o.get(server),
                _ => None,
            })
        else {
            return Err(format!("not signed by {server}"));
        };
        let mut known = std::collections::BTreeMap::new();
        let at = apogee_domain::Timestamp::now();
        for key_id in by_key.keys() {
            if let Some(key) = pdu::KeySource::key(&self.keys, server, key_id, at).await
                && let Ok(key) = ruma::serde::Base64::parse(&key)
            {
                known.insert(key_id.clone(), key);
            }
        }
        if known.is_empty() {
            return Err(format!("no usable key of {server}"));
        }
        let map: ruma::signatures::PublicKeyMap = [(server.to_string(), known)].into();
        let mut redacted =
            ruma::canonical_json::redact(event.object.clone(), &rules.redaction, None)
                .map_err(|e| e.to_string())?;
        // Only this server's signature is checked here (the others were, by `verify`).
        let mut only = CanonicalJsonObject::new();
        only.insert(
            server.to_string(),
            ruma::canonical_json::CanonicalJsonValue::Object(by_key.clone()),
        );
        redacted.insert(
            "signatures".into(),
            ruma::canonical_json::CanonicalJsonValue::Object(only),
        );
        ruma::signatures::verify_json(&map, &redacted).map_err(|e| e.to_string())
    }

    /// `PUT v2/invite` to the invitee's server; returns the event with its signature added
    /// (checked: the same event, signed by that server).
    pub async fn send_invite_to(
        &self,
        room_version: &str,
        event_id: &str,
        pdu: Value,
        invite_room_state: Vec<Value>,
    ) -> Result<Value, FedError> {
        let rules = pdu::rules_for(room_version).map_err(|e| FedError::Internal(e.to_string()))?;
        let invitee = pdu
            .get("state_key")
            .and_then(Value::as_str)
            .and_then(|k| <&UserId>::try_from(k).ok())
            .ok_or_else(|| FedError::Internal("an invite without invitee".into()))?;
        let destination = invitee.server_name().to_owned();
        let room_id = pdu
            .get("room_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let target = format!(
            "/_matrix/federation/v2/invite/{}/{}",
            encode_segment(&room_id),
            encode_segment(event_id)
        );
        let body = json!({"event": pdu, "room_version": room_version,
            "invite_room_state": invite_room_state});
        let answer = self
            .client
            .request(&destination, Method::PUT, &target, Some(&body))
            .await?;
        let body = answer.json()?;
        if !answer.status.is_success() {
            return Err(FedError::BadResponse(format!(
                "invite: {} {}",
                answer.status,
                body.get("error").and_then(Value::as_str).unwrap_or("")
            )));
        }
        let returned = body
            .get("event")
            .cloned()
            .ok_or_else(|| FedError::BadResponse("invite: no event".into()))?;
        let checked = Pdu::parse(&returned, &rules)
            .map_err(|e| FedError::BadResponse(format!("invite: {e}")))?;
        if checked.event_id.as_str() != event_id {
            return Err(FedError::BadResponse(
                "invite: the answer is another event".into(),
            ));
        }
        let checked = pdu::verify(checked, &rules, &self.keys)
            .await
            .map_err(|e| FedError::BadResponse(format!("invite: {e}")))?;
        if checked.redacted {
            return Err(FedError::BadResponse(
                "invite: the content hash does not match".into(),
            ));
        }
        self.check_signed_by(&checked, destination.as_str(), &rules)
            .await
            .map_err(|e| FedError::BadResponse(format!("invite: {e}")))?;
        let object: CanonicalJsonObject = checked.object;
        serde_json::to_value(object).map_err(|e| FedError::Internal(e.to_string()))
    }
}
