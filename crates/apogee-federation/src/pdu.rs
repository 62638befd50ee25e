//! PDUs: parsing and the checks every received PDU goes through (the specification's "checks
//! performed on receipt of a PDU"), and building our own.
//!
//! Receipt: `unsigned` is stripped; the format is checked (`check_pdu_format`: size, field
//! shapes, reference formats); the event id is the reference hash; every required server's
//! signature is checked with its published key (`verify_event`); a content hash mismatch with
//! good signatures means the event is kept in its redacted form; then the auth rules run
//! (ruma-state-res): the state-independent ones against the event's `auth_events`, the
//! state-dependent ones against the auth events (rejection) and against the room's current
//! state (soft failure: kept, never shown). Only room versions 10, 11 and 12 are accepted.

use crate::FedError;
use crate::identity::Identity;
use crate::keys::KeyRing;
use apogee_domain::Timestamp;
use ruma::canonical_json::{CanonicalJsonObject, CanonicalJsonValue, redact};
use ruma::events::{StateEventType, TimelineEventType};
use ruma::room_version_rules::RoomVersionRules;
use ruma::serde::Base64;
use ruma::signatures::{PublicKeyMap, Verified};
use ruma::state_res::{self, Event};
use ruma::{
    EventId, MilliSecondsSinceUnixEpoch, OwnedEventId, OwnedRoomId, OwnedUserId, RoomId,
    RoomVersionId, UserId,
};
use serde::Deserialize;
use serde_json::value::RawValue as RawJsonValue;
use std::collections::{BTreeMap, HashMap};

/// The room versions we join and serve: those ruma's signing and auth rules fully support and
/// Synapse and Rocket.Chat use (10 is Rocket.Chat's default, 12 Synapse's).
pub const SUPPORTED_VERSIONS: &[&str] = &["10", "11", "12"];

/// Why a PDU was not accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PduError {
    /// Malformed, oversized, or in an unsupported room version: dropped.
    #[error("bad format: {0}")]
    Format(String),
    /// A required signature is missing or wrong, or a key cannot be had: dropped.
    #[error("bad signature: {0}")]
    Signature(String),
    /// Fails the auth rules against its auth events: rejected.
    #[error("not authorised: {0}")]
    Auth(String),
    /// Authorised by its auth events but not by the room's current state: soft-failed.
    #[error("soft-failed: {0}")]
    SoftFail(String),
}

/// The rules of a supported room version.
pub fn rules_for(version: &str) -> Result<RoomVersionRules, PduError> {
    if !SUPPORTED_VERSIONS.contains(&version) {
        return Err(PduError::Format(format!(
            "room version {version} is not supported"
        )));
    }
    RoomVersionId::try_from(version)
        .ok()
        .and_then(|v| v.rules())
        .ok_or_else(|| PduError::Format(format!("room version {version} is unknown")))
}

/// The fields of a PDU the auth rules and the mapping read, parsed once.
#[derive(Debug, Clone)]
pub struct Pdu {
    pub event_id: OwnedEventId,
    /// The event as checked (no `unsigned`; redacted when its content hash did not match).
    pub object: CanonicalJsonObject,
    /// The content hash did not match: only the redacted form is kept.
    pub redacted: bool,
    room_id: Option<OwnedRoomId>,
    sender: OwnedUserId,
    origin_server_ts: MilliSecondsSinceUnixEpoch,
    kind: TimelineEventType,
    content: Box<RawJsonValue>,
    state_key: Option<String>,
    prev_events: Vec<OwnedEventId>,
    auth_events: Vec<OwnedEventId>,
    redacts: Option<OwnedEventId>,
    pub depth: i64,
}

#[derive(Deserialize)]
struct Fields {
    room_id: Option<OwnedRoomId>,
    sender: OwnedUserId,
    origin_server_ts: MilliSecondsSinceUnixEpoch,
    #[serde(rename = "type")]
    kind: TimelineEventType,
    content: Box<RawJsonValue>,
    state_key: Option<String>,
    #[serde(default)]
    prev_events: Vec<OwnedEventId>,
    #[serde(default)]
    auth_events: Vec<OwnedEventId>,
    redacts: Option<OwnedEventId>,
    #[serde(default)]
    depth: i64,
}

#[derive(Deserialize)]
struct RedactsInContent {
    redacts: Option<OwnedEventId>,
}

impl Pdu {
    /// Parses and format-checks a PDU as received (strips `unsigned`, computes the event id).
    /// Signatures are not checked here: see [`verify`].
    pub fn parse(raw: &serde_json::Value, rules: &RoomVersionRules) -> Result<Self, PduError> {
        let mut object: CanonicalJsonObject = serde_json::from_value(raw.clone())
            .map_err(|e| PduError::Format(format!("not canonical JSON: {e}")))?;
        object.remove("unsigned");
        // The id is ours to compute (v3+); a sender's claim is ignored.
        object.remove("event_id");
        state_res::check_pdu_format(&object, &rules.event_format).map_err(PduError::Format)?;
        Self::from_object(object, rules, false)
    }

    fn from_object(
        object: CanonicalJsonObject,
        rules: &RoomVersionRules,
        redacted: bool,
    ) -> Result<Self, PduError> {
        let hash = ruma::signatures::reference_hash(&object, rules)
            .map_err(|e| PduError::Format(format!("reference hash: {e}")))?;
        let event_id = OwnedEventId::try_from(format!("${hash}"))
            .map_err(|e| PduError::Format(format!("event id: {e}")))?;
        let value =
            serde_json::to_value(&object).map_err(|e| PduError::Format(format!("encode: {e}")))?;
        let fields: Fields =
            serde_json::from_value(value).map_err(|e| PduError::Format(format!("fields: {e}")))?;
        // Where `redacts` lives changed in v11: top level before, in `content` since.
        let redacts = fields.redacts.or_else(|| {
            serde_json::from_str::<RedactsInContent>(fields.content.get())
                .ok()
                .and_then(|c| c.redacts)
        });
        Ok(Self {
            event_id,
            object,
            redacted,
            room_id: fields.room_id,
            sender: fields.sender,
            origin_server_ts: fields.origin_server_ts,
            kind: fields.kind,
            content: fields.content,
            state_key: fields.state_key,
            prev_events: fields.prev_events,
            auth_events: fields.auth_events,
            redacts,
            depth: fields.depth,
        })
    }

    /// This event in the redacted form (kept when its content hash did not match).
    fn into_redacted(self, rules: &RoomVersionRules) -> Result<Self, PduError> {
        let object = redact(self.object, &rules.redaction, None)
            .map_err(|e| PduError::Format(format!("redaction: {e}")))?;
        Self::from_object(object, rules, true)
    }

    pub fn sender(&self) -> &UserId {
        &self.sender
    }

    pub fn kind(&self) -> &TimelineEventType {
        &self.kind
    }

    pub fn state_key(&self) -> Option<&str> {
        self.state_key.as_deref()
    }

    pub fn content_json(&self) -> serde_json::Value {
        serde_json::from_str(self.content.get()).unwrap_or(serde_json::Value::Null)
    }

    pub fn redacts(&self) -> Option<&EventId> {
        self.redacts.as_deref()
    }

    pub fn prev_events(&self) -> &[OwnedEventId] {
        &self.prev_events
    }

    pub fn auth_event_ids(&self) -> &[OwnedEventId] {
        &self.auth_events
    }

    pub fn origin_server_ts(&self) -> i64 {
        i64::from(self.origin_server_ts.0)
    }

    /// The room this event is in: its `room_id`, or for a v12 create event the one its
    /// reference hash makes.
    pub fn room_id_str(&self) -> String {
        match &self.room_id {
            Some(r) => r.to_string(),
            None => format!("!{}", self.event_id.as_str().trim_start_matches('$')),
        }
    }

    /// The stored JSON form.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.object).unwrap_or(serde_json::Value::Null)
    }

    /// Whether this is a state event of `kind` (any state key).
    pub fn is_state(&self, kind: &StateEventType) -> bool {
        self.state_key.is_some() && self.kind.to_string() == kind.to_string()
    }
}

impl Event for Pdu {
    type Id = OwnedEventId;

    fn event_id(&self) -> &OwnedEventId {
        &self.event_id
    }
    fn room_id(&self) -> Option<&RoomId> {
        self.room_id.as_deref()
    }
    fn sender(&self) -> &UserId {
        &self.sender
    }
    fn origin_server_ts(&self) -> MilliSecondsSinceUnixEpoch {
        self.origin_server_ts
    }
    fn event_type(&self) -> &TimelineEventType {
        &self.kind
    }
    fn content(&self) -> &RawJsonValue {
        &self.content
    }
    fn state_key(&self) -> Option<&str> {
        self.state_key.as_deref()
    }
    fn prev_events(&self) -> Box<dyn DoubleEndedIterator<Item = &OwnedEventId> + '_> {
        Box::new(self.prev_events.iter())
    }
    fn auth_events(&self) -> Box<dyn DoubleEndedIterator<Item = &OwnedEventId> + '_> {
        Box::new(self.auth_events.iter())
    }
    fn redacts(&self) -> Option<&OwnedEventId> {
        self.redacts.as_ref()
    }
    fn rejected(&self) -> bool {
        false
    }
}

/// Where the public keys for signature checks come from (the key ring; a fixed map in tests).
#[async_trait::async_trait]
pub trait KeySource: Send + Sync {
    async fn key(&self, server: &str, key_id: &str, at: Timestamp) -> Option<String>;
}

#[async_trait::async_trait]
impl KeySource for KeyRing {
    async fn key(&self, server: &str, key_id: &str, at: Timestamp) -> Option<String> {
        let server = crate::parse_server_name(server).ok()?;
        match self.public_key(&server, key_id, at).await {
            Ok(k) => Some(k),
            Err(e) => {
                tracing::info!(%server, key_id, error = %e, "no key to check a PDU with");
                None
            }
        }
    }
}

/// A fixed key map (tests, and our own key).
#[async_trait::async_trait]
impl KeySource for HashMap<(String, String), String> {
    async fn key(&self, server: &str, key_id: &str, _at: Timestamp) -> Option<String> {
        self.get(&(server.to_string(), key_id.to_string())).cloned()
    }
}

/// Checks the signatures every required server must have made and the content hash; returns
/// the event, redacted if the hash did not match.
pub async fn verify(
    pdu: Pdu,
    rules: &RoomVersionRules,
    keys: &dyn KeySource,
) -> Result<Pdu, PduError> {
    let servers = ruma::signatures::required_server_signatures_to_verify_event(
        &pdu.object,
        &rules.signatures,
    )
    .map_err(|e| PduError::Signature(e.to_string()))?;
    let signatures = match pdu.object.get("signatures") {
        Some(CanonicalJsonValue::Object(s)) => s.clone(),
        _ => return Err(PduError::Signature("no signatures".into())),
    };
    // Keys must have been valid when the event was made (room versions 5 and up).
    let at = Timestamp::from_millis(pdu.origin_server_ts());
    let mut map = PublicKeyMap::new();
    for server in &servers {
        let Some(CanonicalJsonValue::Object(by_key)) = signatures.get(server.as_str()) else {
            return Err(PduError::Signature(format!("no signature of {server}")));
        };
        let mut known = BTreeMap::new();
        for key_id in by_key.keys().filter(|k| k.starts_with("ed25519:")) {
            match keys
                .key(server.as_str(), key_id, at)
                .await
                .map(|k| Base64::parse(&k))
            {
                Some(Ok(key)) => {
                    known.insert(key_id.clone(), key);
                }
                Some(Err(e)) => tracing::info!(%server, key_id, error = %e, "unreadable key"),
                None => {}
            }
        }
        if known.is_empty() {
            return Err(PduError::Signature(format!("no usable key of {server}")));
        }
        map.insert(server.to_string(), known);
    }
    match ruma::signatures::verify_event(&map, &pdu.object, rules) {
        Ok(Verified::All) => Ok(pdu),
        Ok(Verified::Signatures) => {
            tracing::info!(event_id = %pdu.event_id, "content hash mismatch: keeping the redacted form");
            pdu.into_redacted(rules)
        }
        Err(e) => Err(PduError::Signature(e.to_string())),
    }
}

/// Checks the auth rules against the event's own auth events (found in `known`): rejection.
pub fn check_auth_events(
    pdu: &Pdu,
    rules: &RoomVersionRules,
    known: &HashMap<OwnedEventId, Pdu>,
) -> Result<(), PduError> {
    state_res::check_state_independent_auth_rules(&rules.authorization, pdu, |id: &EventId| {
        known.get(id)
    })
    .map_err(PduError::Auth)?;
    let auth: Vec<&Pdu> = pdu
        .auth_events
        .iter()
        .filter_map(|id| known.get(id))
        .collect();
    state_res::check_state_dependent_auth_rules(
        &rules.authorization,
        pdu,
        |kind: &StateEventType, key: &str| {
            let wanted = |e: &&Pdu| {
                e.state_key.as_deref() == Some(key) && e.kind.to_string() == kind.to_string()
            };
            auth.iter().copied().find(wanted).or_else(|| {
                // From v12 the create event is implied by the room id, not listed.
                (*kind == StateEventType::RoomCreate)
                    .then(|| known.values().find(wanted))
                    .flatten()
            })
        },
    )
    .map_err(PduError::Auth)
}

/// Checks the state-dependent auth rules against a state map (the room's current state):
/// failing here is a soft failure.
pub fn check_against_state(
    pdu: &Pdu,
    rules: &RoomVersionRules,
    state: &HashMap<(String, String), Pdu>,
) -> Result<(), PduError> {
    state_res::check_state_dependent_auth_rules(
        &rules.authorization,
        pdu,
        |kind: &StateEventType, key: &str| state.get(&(kind.to_string(), key.to_string())),
    )
    .map_err(PduError::SoftFail)
}

/// Fills in and signs an event of ours (a make_join template, or one we build): sets
/// `origin_server_ts` (and `origin` where the room version still has it), adds the content
/// hash and our signature, and computes the event id.
pub fn sign_new(
    mut object: CanonicalJsonObject,
    rules: &RoomVersionRules,
    identity: &Identity,
    now: Timestamp,
) -> Result<Pdu, FedError> {
    object.remove("event_id");
    object.remove("unsigned");
    object.remove("signatures");
    object.remove("hashes");
    object.insert(
        "origin_server_ts".into(),
        CanonicalJsonValue::Integer(
            ruma::Int::new(now.millis())
                .ok_or_else(|| FedError::Internal("timestamp out of range".into()))?,
        ),
    );
    // Up to v10 an event still names its sender's server as `origin`.
    if rules.redaction.keep_origin_membership_prev_state {
        object.insert(
            "origin".into(),
            CanonicalJsonValue::String(identity.server_name.to_string()),
        );
    }
    ruma::signatures::hash_and_sign_event(
        identity.server_name.as_str(),
        identity.key_pair(),
        &mut object,
        &rules.redaction,
    )
    .map_err(|e| FedError::Internal(format!("signing an event: {e}")))?;
    Pdu::from_object(object, rules, false).map_err(|e| FedError::Internal(e.to_string()))
}
