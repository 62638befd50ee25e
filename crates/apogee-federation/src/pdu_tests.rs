//! The receipt checks on PDUs built and signed here, in room versions 10, 11 and 12: a good
//! room passes; a bad signature, an unknown key, a failing auth rule and a wrong room fail; a
//! content hash mismatch keeps the redacted form; current state soft-fails an event its auth
//! events allow.

use crate::identity::{Identity, new_signing_key};
use crate::join::check_room_state;
use crate::pdu::{self, Pdu, PduError, check_against_state, check_auth_events, sign_new};
use apogee_domain::Timestamp;
use ruma::canonical_json::CanonicalJsonObject;
use ruma::room_version_rules::RoomVersionRules;
use serde_json::{Value, json};
use std::collections::HashMap;

const SERVER: &str = "ours.test";

fn identity() -> Identity {
    Identity::from_stored(SERVER.try_into().unwrap(), &new_signing_key()).unwrap()
}

fn keys(id: &Identity) -> HashMap<(String, String), String> {
    [(
        (SERVER.to_string(), id.key_id().to_string()),
        id.public_key(),
    )]
    .into()
}

struct Room {
    version: &'static str,
    rules: RoomVersionRules,
    id: String,
    create: Pdu,
    events: Vec<Pdu>,
}

fn object(v: Value) -> CanonicalJsonObject {
    serde_json::from_value(v).unwrap()
}

impl Room {
    /// alice creates the room, joins, sets power levels and a public join rule.
    fn new(version: &'static str, me: &Identity) -> Self {
        let rules = pdu::rules_for(version).unwrap();
        let v12 = version == "12";
        let mut create = json!({
            "type": "m.room.create", "state_key": "", "sender": "@alice:ours.test",
            "content": {"room_version": version}, "prev_events": [], "auth_events": [], "depth": 1,
        });
        if !v12 {
            create["room_id"] = json!("!room:ours.test");
            create["content"]["creator"] = json!("@alice:ours.test");
        }
        let create = sign_new(object(create), &rules, me, Timestamp::now()).unwrap();
        let id = create.room_id_str();
        let mut room = Self {
            version,
            rules,
            id,
            create,
            events: Vec::new(),
        };
        room.add(
            "m.room.member",
            Some("@alice:ours.test"),
            "@alice:ours.test",
            json!({"membership": "join"}),
            me,
        );
        let users = if v12 {
            json!({})
        } else {
            json!({"@alice:ours.test": 100})
        };
        room.add("m.room.power_levels", Some(""), "@alice:ours.test", json!({"users": users, "users_default": 0, "events_default": 0, "state_default": 50, "ban": 50, "kick": 50, "redact": 50, "invite": 0}), me);
        room.add(
            "m.room.join_rules",
            Some(""),
            "@alice:ours.test",
            json!({"join_rule": "public"}),
            me,
        );
        room
    }

    fn state_of(&self, kind: &str, key: &str) -> Option<&Pdu> {
        self.events
            .iter()
            .rev()
            .find(|e| e.kind().to_string() == kind && e.state_key() == Some(key))
    }

    /// An event with the auth events the spec selects, after the newest one.
    fn build(
        &self,
        kind: &str,
        state_key: Option<&str>,
        sender: &str,
        content: Value,
        me: &Identity,
    ) -> Pdu {
        let mut auth = Vec::new();
        if self.version != "12" {
            auth.push(self.create.event_id.to_string());
        }
        for (k, key) in [("m.room.power_levels", ""), ("m.room.member", sender)] {
            if let Some(e) = self.state_of(k, key) {
                auth.push(e.event_id.to_string());
            }
        }
        if kind == "m.room.member"
            && let Some(e) = self.state_of("m.room.join_rules", "")
        {
            auth.push(e.event_id.to_string());
        }
        let last = self.events.last().unwrap_or(&self.create);
        let mut event = json!({
            "type": kind, "room_id": self.id, "sender": sender, "content": content,
            "prev_events": [last.event_id.to_string()], "auth_events": auth,
            "depth": last.depth + 1,
        });
        if let Some(k) = state_key {
            event["state_key"] = json!(k);
        }
        sign_new(object(event), &self.rules, me, Timestamp::now()).unwrap()
    }

    fn add(
        &mut self,
        kind: &str,
        state_key: Option<&str>,
        sender: &str,
        content: Value,
        me: &Identity,
    ) -> Pdu {
        let e = self.build(kind, state_key, sender, content, me);
        self.events.push(e.clone());
        e
    }

    fn state_json(&self) -> Vec<Value> {
        std::iter::once(&self.create)
            .chain(&self.events)
            .map(Pdu::to_json)
            .collect()
    }

    fn known(&self) -> HashMap<ruma::OwnedEventId, Pdu> {
        std::iter::once(&self.create)
            .chain(&self.events)
            .map(|e| (e.event_id.clone(), e.clone()))
            .collect()
    }
}

const VERSIONS: [&str; 3] = ["10", "11", "12"];

#[tokio::test]
async fn a_good_room_passes_every_check() {
    let me = identity();
    for version in VERSIONS {
        let room = Room::new(version, &me);
        let checked = check_room_state(&room.rules, &room.id, &room.state_json(), &[], &keys(&me))
            .await
            .unwrap_or_else(|e| panic!("v{version}: {e}"));
        assert_eq!(checked.state.len(), 4, "v{version}");
        let message = room.build(
            "m.room.message",
            None,
            "@alice:ours.test",
            json!({"msgtype": "m.text", "body": "hi"}),
            &me,
        );
        let parsed = Pdu::parse(&message.to_json(), &room.rules).unwrap();
        assert_eq!(
            parsed.event_id, message.event_id,
            "the id is the reference hash"
        );
        let verified = pdu::verify(parsed, &room.rules, &keys(&me)).await.unwrap();
        assert!(!verified.redacted);
        check_auth_events(&verified, &room.rules, &room.known()).unwrap();
    }
}

#[tokio::test]
async fn a_bad_signature_or_unknown_key_is_refused() {
    let me = identity();
    let other = identity();
    for version in VERSIONS {
        let room = Room::new(version, &me);
        let mut tampered = room.state_json();
        let sig = tampered[2]["signatures"][SERVER][me.key_id()]
            .as_str()
            .unwrap()
            .to_string();
        // Another first symbol: a different, still well-formed signature.
        let first = if sig.starts_with('A') { 'B' } else { 'A' };
        let flipped = format!("{first}{}", &sig[1..]);
        tampered[2]["signatures"][SERVER][me.key_id()] = json!(flipped);
        let err = check_room_state(&room.rules, &room.id, &tampered, &[], &keys(&me))
            .await
            .err();
        assert!(
            matches!(err, Some(PduError::Signature(_))),
            "v{version}: {err:?}"
        );
        // Signed by a key the server does not publish.
        let err = check_room_state(
            &room.rules,
            &room.id,
            &room.state_json(),
            &[],
            &keys(&other),
        )
        .await
        .err();
        assert!(
            matches!(err, Some(PduError::Signature(_))),
            "v{version}: {err:?}"
        );
        // Signed by nobody.
        let mut unsigned = room.state_json();
        unsigned[1].as_object_mut().unwrap().remove("signatures");
        let err = check_room_state(&room.rules, &room.id, &unsigned, &[], &keys(&me))
            .await
            .err();
        assert!(err.is_some(), "v{version}");
    }
}

#[tokio::test]
async fn a_content_hash_mismatch_keeps_the_redacted_form() {
    let me = identity();
    for version in VERSIONS {
        let room = Room::new(version, &me);
        let message = room.build(
            "m.room.message",
            None,
            "@alice:ours.test",
            json!({"msgtype": "m.text", "body": "original"}),
            &me,
        );
        let mut changed = message.to_json();
        changed["content"]["body"] = json!("changed in transit");
        let verified = pdu::verify(
            Pdu::parse(&changed, &room.rules).unwrap(),
            &room.rules,
            &keys(&me),
        )
        .await
        .unwrap();
        assert!(verified.redacted, "v{version}");
        assert_eq!(verified.content_json(), json!({}), "v{version}");
        // Redaction does not change the reference hash: it is the same event.
        assert_eq!(verified.event_id, message.event_id);
    }
}

#[tokio::test]
async fn failing_auth_rules_reject_and_current_state_soft_fails() {
    let me = identity();
    for version in VERSIONS {
        let mut room = Room::new(version, &me);
        // mallory never joined: a message of theirs fails against its auth events.
        let intruder = room.build(
            "m.room.message",
            None,
            "@mallory:ours.test",
            json!({"msgtype": "m.text", "body": "x"}),
            &me,
        );
        let err = check_auth_events(&intruder, &room.rules, &room.known()).err();
        assert!(
            matches!(err, Some(PduError::Auth(_))),
            "v{version}: {err:?}"
        );
        // A state event in the join answer that fails its auth rules fails the join.
        let mut state = room.state_json();
        state.push(
            room.build(
                "m.room.name",
                Some(""),
                "@mallory:ours.test",
                json!({"name": "taken"}),
                &me,
            )
            .to_json(),
        );
        let err = check_room_state(&room.rules, &room.id, &state, &[], &keys(&me))
            .await
            .err();
        assert!(
            matches!(err, Some(PduError::Auth(_))),
            "v{version}: {err:?}"
        );

        // bob joins; his message is allowed by its auth events, but by the time it arrives
        // bob has left: soft failure against the current state.
        room.add(
            "m.room.member",
            Some("@bob:ours.test"),
            "@bob:ours.test",
            json!({"membership": "join"}),
            &me,
        );
        let message = room.build(
            "m.room.message",
            None,
            "@bob:ours.test",
            json!({"msgtype": "m.text", "body": "late"}),
            &me,
        );
        room.add(
            "m.room.member",
            Some("@bob:ours.test"),
            "@bob:ours.test",
            json!({"membership": "leave"}),
            &me,
        );
        check_auth_events(&message, &room.rules, &room.known()).unwrap();
        let current: HashMap<(String, String), Pdu> = std::iter::once(&room.create)
            .chain(&room.events)
            .map(|e| {
                (
                    (
                        e.kind().to_string(),
                        e.state_key().unwrap_or("").to_string(),
                    ),
                    e.clone(),
                )
            })
            .collect();
        let err = check_against_state(&message, &room.rules, &current).err();
        assert!(
            matches!(err, Some(PduError::SoftFail(_))),
            "v{version}: {err:?}"
        );
    }
}

#[tokio::test]
async fn events_of_other_rooms_and_versions_are_refused() {
    let me = identity();
    let room = Room::new("11", &me);
    let err = check_room_state(
        &room.rules,
        "!other:ours.test",
        &room.state_json(),
        &[],
        &keys(&me),
    )
    .await
    .err();
    assert!(matches!(err, Some(PduError::Format(_))), "{err:?}");
    assert!(matches!(pdu::rules_for("9"), Err(PduError::Format(_))));
    assert!(matches!(pdu::rules_for("1"), Err(PduError::Format(_))));
    // A state without its create event is not a room.
    let err = check_room_state(
        &room.rules,
        &room.id,
        &room.state_json()[1..],
        &[],
        &keys(&me),
    )
    .await
    .err();
    assert!(err.is_some());
}
