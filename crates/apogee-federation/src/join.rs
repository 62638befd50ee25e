//! Joining a remote room: `GET make_join` (a template), fill in and sign our join event,
//! `PUT v2/send_join`, then check every PDU of the room's state and auth chain before anything
//! is stored. A room whose state does not pass is not joined (nothing is written).

use crate::pdu::{self, Pdu, PduError, SUPPORTED_VERSIONS};
use crate::{FedError, Federation};
use apogee_core::federated_rooms::{JoinedRoom, RemoteMember, outlier};
use apogee_core::store::{FederationEvent, FederationEventKind, FederationStateEntry};
use apogee_domain::Timestamp;
use http::Method;
use ruma::canonical_json::CanonicalJsonObject;
use ruma::events::TimelineEventType;
use ruma::room_version_rules::RoomVersionRules;
use ruma::{OwnedEventId, RoomId};
use serde_json::Value;
use std::collections::HashMap;

/// Characters kept as they are in a path segment (RFC 3986 unreserved); everything else is
/// percent-encoded, so `!room:server` and `@user:server` go on the wire exactly as signed.
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Federation {
    /// make_join / send_join for `localpart` into `room_id` through the server `via`.
    pub async fn join_room(
        &self,
        localpart: &str,
        room_id: &str,
        via: &str,
    ) -> Result<JoinedRoom, FedError> {
        let room_id = <&RoomId>::try_from(room_id)
            .map_err(|e| FedError::BadResponse(format!("room id: {e}")))?;
        let user_id = format!("@{localpart}:{}", self.identity.server_name);
        let via = crate::parse_server_name(via)?;
        let versions: String = SUPPORTED_VERSIONS
            .iter()
            .map(|v| format!("&ver={v}"))
            .collect();
        let target = format!(
            "/_matrix/federation/v1/make_join/{}/{}?{}",
            encode_segment(room_id.as_str()),
            encode_segment(&user_id),
            &versions[1..]
        );
        let body = self.client.get_json(&via, &target, "make_join").await?;
        let version = body
            .get("room_version")
            .and_then(Value::as_str)
            .unwrap_or("1")
            .to_string();
        let rules = pdu::rules_for(&version).map_err(bad)?;
        let template: CanonicalJsonObject = body
            .get("event")
            .cloned()
            .and_then(|e| serde_json::from_value(e).ok())
            .ok_or_else(|| FedError::BadResponse("make_join: no event template".into()))?;
        check_template(&template, room_id.as_str(), &user_id)?;
        let join = pdu::sign_new(template, &rules, &self.identity, Timestamp::now())?;

        let target = format!(
            "/_matrix/federation/v2/send_join/{}/{}",
            encode_segment(room_id.as_str()),
            encode_segment(join.event_id.as_str())
        );
        let answer = self
            .client
            .request(&via, Method::PUT, &target, Some(&join.to_json()))
            .await?;
        let body = answer.json()?;
        if !answer.status.is_success() {
            return Err(FedError::BadResponse(format!(
                "send_join: {} {}",
                answer.status,
                body.get("error").and_then(Value::as_str).unwrap_or("")
            )));
        }
        let list = |key: &str| {
            body.get(key)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let checked = check_room_state(
            &rules,
            room_id.as_str(),
            &list("state"),
            &list("auth_chain"),
            self.keys_source(),
        )
        .await
        .map_err(bad)?;
        // Our join must be allowed by the state we were given (it is in the room's DAG now).
        let state_map: HashMap<(String, String), Pdu> = checked
            .state
            .iter()
            .map(|id| {
                let e = &checked.events[id];
                (
                    (
                        e.kind().to_string(),
                        e.state_key().unwrap_or("").to_string(),
                    ),
                    e.clone(),
                )
            })
            .collect();
        pdu::check_auth_events(&join, &rules, &checked.events).map_err(bad)?;
        pdu::check_against_state(&join, &rules, &state_map).map_err(bad)?;
        Ok(joined_room(
            room_id.as_str(),
            &version,
            via.as_str(),
            &user_id,
            checked,
            join,
        ))
    }

    fn keys_source(&self) -> &dyn pdu::KeySource {
        &self.keys
    }
}

fn bad(e: PduError) -> FedError {
    FedError::BadResponse(e.to_string())
}

/// The template must be the join we asked for.
fn check_template(
    template: &CanonicalJsonObject,
    room_id: &str,
    user_id: &str,
) -> Result<(), FedError> {
    let field = |k: &str| template.get(k).and_then(|v| v.as_str()).unwrap_or("");
    let membership = template
        .get("content")
        .and_then(|c| c.as_object())
        .and_then(|c| c.get("membership"))
        .and_then(|m| m.as_str())
        .unwrap_or("");
    if field("type") != "m.room.member"
        || field("state_key") != user_id
        || field("sender") != user_id
        || field("room_id") != room_id
        || membership != "join"
    {
        return Err(FedError::BadResponse(
            "make_join: the template is not our join".into(),
        ));
    }
    Ok(())
}

/// A room's state and auth chain, every event checked.
pub struct CheckedState {
    pub events: HashMap<OwnedEventId, Pdu>,
    /// The ids of the current state's events.
    pub state: Vec<OwnedEventId>,
}

/// Checks every PDU of a send_join answer: format, signatures, hashes (redacted on mismatch)
/// and the auth rules against its own auth events, oldest first. Any state event that fails
/// fails the whole room; auth-chain events that fail are dropped (and so is whatever they
/// authorise).
pub async fn check_room_state(
    rules: &RoomVersionRules,
    room_id: &str,
    state: &[Value],
    auth_chain: &[Value],
    keys: &dyn pdu::KeySource,
) -> Result<CheckedState, PduError> {
    let mut parsed: Vec<Pdu> = Vec::new();
    let mut state_ids = Vec::new();
    for (raw, is_state) in state
        .iter()
        .map(|r| (r, true))
        .chain(auth_chain.iter().map(|r| (r, false)))
    {
        let pdu = pdu::verify(Pdu::parse(raw, rules)?, rules, keys).await?;
        if pdu.room_id_str() != room_id {
            return Err(PduError::Format(format!(
                "{} is in another room",
                pdu.event_id
            )));
        }
        if is_state {
            if pdu.state_key().is_none() {
                return Err(PduError::Format(format!(
                    "{} in the state is not a state event",
                    pdu.event_id
                )));
            }
            state_ids.push(pdu.event_id.clone());
        }
        parsed.push(pdu);
    }
    // Auth events always come before what they authorise in depth order.
    parsed.sort_by_key(|p| p.depth);
    let mut accepted: HashMap<OwnedEventId, Pdu> = HashMap::new();
    for pdu in parsed {
        if accepted.contains_key(&pdu.event_id) {
            continue;
        }
        match pdu::check_auth_events(&pdu, rules, &accepted) {
            Ok(()) => {
                accepted.insert(pdu.event_id.clone(), pdu);
            }
            Err(e) if state_ids.contains(&pdu.event_id) => return Err(e),
            Err(e) => {
                tracing::info!(event_id = %pdu.event_id, error = %e, "auth chain event rejected")
            }
        }
    }
    if !state_ids.iter().any(|id| {
        accepted
            .get(id)
            .is_some_and(|e| e.kind() == &TimelineEventType::RoomCreate)
    }) {
        return Err(PduError::Auth("the state has no create event".into()));
    }
    Ok(CheckedState {
        events: accepted,
        state: state_ids,
    })
}

fn joined_room(
    room_id: &str,
    version: &str,
    origin: &str,
    our_user: &str,
    checked: CheckedState,
    join: Pdu,
) -> JoinedRoom {
    let state: Vec<&Pdu> = checked.state.iter().map(|id| &checked.events[id]).collect();
    let content_of = |kind: &str, key: &str| {
        state
            .iter()
            .find(|e| e.kind().to_string() == kind && e.state_key() == Some(key))
            .map(|e| e.content_json())
    };
    let text = |kind: &str, field: &str| {
        content_of(kind, "").and_then(|c| c.get(field).and_then(Value::as_str).map(str::to_string))
    };
    let public = text("m.room.join_rules", "join_rule").as_deref() == Some("public");
    let with_membership = |membership: &'static str| {
        state
            .iter()
            .filter(|e| e.kind() == &TimelineEventType::RoomMember)
            .filter(|e| e.state_key() != Some(our_user))
            .filter(move |e| {
                e.content_json().get("membership").and_then(Value::as_str) == Some(membership)
            })
    };
    let member = |e: &&Pdu| RemoteMember {
        user_id: e.state_key().unwrap_or_default().to_string(),
        displayname: e
            .content_json()
            .get("displayname")
            .and_then(Value::as_str)
            .map(str::to_string),
    };
    let members = with_membership("join").map(member).collect();
    let invited = with_membership("invite").map(member).collect();
    // A member's picture is their own join's `avatar_url` (fetched by core after the join).
    let avatars = with_membership("join")
        .filter_map(|e| {
            let url = e.content_json().get("avatar_url")?.as_str()?.to_string();
            Some((e.state_key()?.to_string(), url))
        })
        .filter(|(_, url)| url.starts_with("mxc://"))
        .collect();
    // The room's picture, with who set it (fetched by core after the join, as later changes are).
    let picture = state
        .iter()
        .find(|e| e.kind().to_string() == "m.room.avatar" && e.state_key() == Some(""))
        .and_then(|e| {
            let url = e.content_json().get("url")?.as_str()?.to_string();
            url.starts_with("mxc://")
                .then(|| (e.sender().to_string(), url))
        });
    let mut entries: Vec<FederationStateEntry> = state
        .iter()
        .filter(|e| {
            !(e.kind() == &TimelineEventType::RoomMember && e.state_key() == Some(our_user))
        })
        .map(|e| FederationStateEntry {
            event_type: e.kind().to_string(),
            state_key: e.state_key().unwrap_or_default().to_string(),
            event_id: e.event_id.to_string(),
        })
        .collect();
    entries.push(FederationStateEntry {
        event_type: "m.room.member".into(),
        state_key: our_user.to_string(),
        event_id: join.event_id.to_string(),
    });
    let mut events: Vec<FederationEvent> = checked
        .events
        .values()
        .map(|e| outlier(e.event_id.as_str(), room_id, e.depth, e.to_json()))
        .collect();
    events.push(FederationEvent {
        event_id: join.event_id.to_string(),
        matrix_room_id: room_id.to_string(),
        message_id: None,
        kind: FederationEventKind::Timeline,
        depth: join.depth,
        pdu: join.to_json(),
    });
    JoinedRoom {
        matrix_room_id: room_id.to_string(),
        room_version: version.to_string(),
        origin: origin.to_string(),
        name: text("m.room.name", "name"),
        topic: text("m.room.topic", "topic"),
        public,
        members,
        invited,
        avatars,
        picture,
        events,
        state: entries,
        join_event_id: join.event_id.to_string(),
    }
}

#[async_trait::async_trait]
impl apogee_core::federated_rooms::FederationGateway for Federation {
    fn server_name(&self) -> &str {
        self.identity.server_name.as_str()
    }

    fn sign_event(&self, room_version: &str, event: Value) -> Result<(String, Value), String> {
        self.sign_built_event(room_version, event)
    }

    fn send_edu(&self, destinations: &[String], key: Option<String>, edu: Value) {
        for destination in destinations {
            self.outgoing
                .push_edu(destination, key.clone(), edu.clone());
            // The flusher sends them unless a transaction takes them first.
            let _ = self.edu_wake.send(destination.clone());
        }
    }

    async fn join_remote_room(
        &self,
        localpart: &str,
        room_id: &str,
        via: &str,
    ) -> Result<JoinedRoom, String> {
        self.join_room(localpart, room_id, via)
            .await
            .map_err(|e| e.to_string())
    }

    async fn fetch_media(
        &self,
        server: &str,
        media_id: &str,
        max: u64,
    ) -> Result<(String, Vec<u8>), String> {
        Federation::fetch_media(self, server, media_id, max)
            .await
            .map_err(|e| e.to_string())
    }

    async fn backfill(&self, matrix_room_id: &str, limit: usize) -> Result<usize, String> {
        self.backfill_room(matrix_room_id, limit)
            .await
            .map_err(|e| e.to_string())
    }

    async fn send_invite(
        &self,
        room_version: &str,
        event_id: &str,
        pdu: Value,
        invite_room_state: Vec<Value>,
    ) -> Result<Value, String> {
        self.send_invite_to(room_version, event_id, pdu, invite_room_state)
            .await
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::encode_segment;

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(encode_segment("!abc:synapse.test"), "%21abc%3Asynapse.test");
        assert_eq!(
            encode_segment("@bob:localhost:8448"),
            "%40bob%3Alocalhost%3A8448"
        );
        assert_eq!(encode_segment("$a+b/c="), "%24a%2Bb%2Fc%3D");
    }
}
