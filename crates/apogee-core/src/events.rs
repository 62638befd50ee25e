//! What happened, for realtime delivery. Events are derived from committed [`Change`]s in one
//! place ([`Core::commit`](crate::Core)), so every use-case announces its effects without extra
//! code, and published on a [`Bus`]. Each node delivers them to its own connections: fan-out is
//! in memory, never a database write per recipient.

use crate::store::{Change, Role};
use apogee_domain::{Message, Timestamp, User};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::broadcast;

/// Events kept for slow receivers before they start missing some (they then resynchronise).
const LOCAL_CAPACITY: usize = 4096;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Event {
    /// A message was posted (`created`) or changed in room `message.rid`.
    Message {
        message: Box<Message>,
        created: bool,
    },
    MessageDeleted {
        rid: String,
        id: String,
    },
    /// Several messages of one room were deleted in one batch (`rooms.cleanHistory`).
    MessagesDeleted {
        rid: String,
        ids: Vec<String>,
    },
    /// Messages of a room up to `until` have been read by everyone (read receipts).
    MessagesRead {
        rid: String,
        until: Timestamp,
    },
    /// A user's subscription to a room changed; receivers read the current state.
    Subscription {
        user_id: String,
        rid: String,
        removed: bool,
    },
    /// A room's document changed or the room was deleted.
    Room {
        rid: String,
        removed: bool,
    },
    /// A user's profile or presence changed.
    User {
        user: Box<User>,
    },
    /// A user's session ended: one (`token_hash`) or all of them. Their connections close.
    SessionsEnded {
        user_id: String,
        token_hash: Option<String>,
    },
    /// A role was created, changed (`removed: false`) or deleted.
    Role {
        role: Box<Role>,
        removed: bool,
    },
    /// A user was given (`added`) or lost a role, globally or in room `scope`. Logged-in clients
    /// hear it on `stream-roles` (`roles`), as Rocket.Chat's `user.roleUpdate`.
    UserRole {
        role_id: String,
        user_id: String,
        username: String,
        scope: Option<String>,
        added: bool,
    },
    /// A setting changed. Every node updates its cache; public ones are announced to clients
    /// (`stream-notify-all` `public-settings-changed`).
    Setting {
        id: String,
        value: serde_json::Value,
        public: bool,
    },
    /// The roles granted a permission changed. Every node updates its cache; logged-in clients
    /// hear `permissions-changed`.
    Permission {
        id: String,
        roles: Vec<String>,
    },
    /// A workspace-wide notice for logged-in clients on `stream-notify-logged` (`name`, with
    /// `args` as the event's arguments): custom emoji changes.
    Logged {
        name: String,
        args: serde_json::Value,
    },
    /// Someone started or stopped an activity (`user-typing`, …) in a room. Not stored.
    Activity {
        rid: String,
        username: String,
        activities: Vec<String>,
    },
    /// A user's (`username`) or a room's (`rid`) avatar changed; `etag` is the new one, none
    /// after a reset. Logged-in clients hear `stream-notify-logged` `updateAvatar`. Published by
    /// the avatar use-cases after their commit (an avatar change is not told apart by its
    /// `Change`).
    Avatar {
        username: Option<String>,
        rid: Option<String>,
        etag: Option<String>,
    },
    /// Members of an encrypted room without its key ask for it (`e2e.requestSubscriptionKeys`,
    /// joins, or a client's `stream-notify-room-users` `<rid>/e2ekeyRequest`). Key holders hear
    /// it as `stream-notify-room` `<rid>/e2e.keyRequest` and `stream-notify-user`
    /// `<uid>/e2ekeyRequest`; `from` (the asking user) is not told. Not stored.
    E2eKeyRequest {
        rid: String,
        key_id: String,
        from: Option<String>,
    },
    /// A key-recovery request opened that `officer_id` holds a share of
    /// (`docs/E2EE-RECOVERY.md`): the officer hears `stream-notify-user`
    /// `<uid>/e2e.recoveryRequest`. Published after the request's commit. Not stored.
    E2eRecoveryRequest {
        officer_id: String,
        request_id: String,
        user_id: String,
        username: String,
        restore_key_sha256: String,
    },
    /// An integration was created, changed or deleted: nodes drop their cache of outgoing
    /// webhooks. No client hears it.
    Integrations,
    /// A message only `user_id` sees, never stored (Rocket.Chat's `notify.ephemeralMessage`):
    /// slash commands' answers. Clients hear it on `stream-notify-user` `<uid>/message`;
    /// `message` is the whole document sent.
    Ephemeral {
        user_id: String,
        message: serde_json::Value,
    },
}

/// Whom an event concerns, so a node hands it only to those connections.
#[derive(Debug, PartialEq)]
pub enum Audience<'a> {
    /// Those following the room (members, and readers of its streams).
    Room(&'a str),
    /// That user's connections.
    User(&'a str),
    /// That user's connections and those following the user (presence watchers, `user-status`
    /// listeners).
    Profile(&'a str),
    /// Every connection (roles, permissions, public settings).
    Everyone,
    /// No connection: only the nodes themselves (private settings).
    Nodes,
}

impl Event {
    /// The events a committed batch implies. Several deletions in one room are announced as
    /// one bulk deletion.
    pub fn from_changes(changes: &[Change]) -> Vec<Event> {
        let mut events: Vec<Event> = Vec::new();
        for event in changes.iter().filter_map(Self::from_change) {
            if let Event::MessageDeleted { rid, id } = &event {
                match events.last_mut() {
                    Some(Event::MessagesDeleted { rid: r, ids }) if r == rid => {
                        ids.push(id.clone());
                        continue;
                    }
                    Some(Event::MessageDeleted { rid: r, id: first }) if r == rid => {
                        let ids = vec![std::mem::take(first), id.clone()];
                        *events.last_mut().expect("just matched") = Event::MessagesDeleted {
                            rid: rid.clone(),
                            ids,
                        };
                        continue;
                    }
                    _ => {}
                }
            }
            events.push(event);
        }
        events
    }

    pub fn audience(&self) -> Audience<'_> {
        match self {
            Event::Message { message, .. } => Audience::Room(&message.rid),
            Event::MessageDeleted { rid, .. }
            | Event::MessagesDeleted { rid, .. }
            | Event::MessagesRead { rid, .. }
            | Event::Room { rid, .. }
            | Event::Activity { rid, .. }
            | Event::E2eKeyRequest { rid, .. } => Audience::Room(rid),
            Event::Subscription { user_id, .. }
            | Event::SessionsEnded { user_id, .. }
            | Event::Ephemeral { user_id, .. } => Audience::User(user_id),
            Event::E2eRecoveryRequest { officer_id, .. } => Audience::User(officer_id),
            Event::Setting { public: false, .. } | Event::Integrations => Audience::Nodes,
            Event::User { user } => Audience::Profile(&user.id),
            Event::Role { .. }
            | Event::UserRole { .. }
            | Event::Setting { .. }
            | Event::Permission { .. }
            | Event::Logged { .. }
            | Event::Avatar { .. } => Audience::Everyone,
        }
    }

    fn from_change(change: &Change) -> Option<Event> {
        let sub = |user_id: &str, rid: &str, removed| Event::Subscription {
            user_id: user_id.to_string(),
            rid: rid.to_string(),
            removed,
        };
        Some(match change {
            Change::AppendMessage { message, .. } => Event::Message {
                message: Box::new(message.clone()),
                created: true,
            },
            Change::UpdateMessage(message) => Event::Message {
                message: Box::new(message.clone()),
                created: false,
            },
            Change::UpsertCustomEmoji(e) => Event::Logged {
                name: "updateEmojiCustom".into(),
                args: serde_json::json!([{"emojiData": e}]),
            },
            Change::DeleteCustomEmoji(e) => Event::Logged {
                name: "deleteEmojiCustom".into(),
                args: serde_json::json!([{"emojiData": e}]),
            },
            Change::DeleteMessage { id, rid } => Event::MessageDeleted {
                rid: rid.clone(),
                id: id.clone(),
            },
            Change::InsertSubscription(s) | Change::UpdateSubscription(s) => {
                sub(&s.u.id, &s.rid, false)
            }
            Change::DeleteSubscription { rid, user_id } => sub(user_id, rid, true),
            Change::MarkRead { rid, user_id } | Change::MarkUnreadFrom { rid, user_id, .. } => {
                sub(user_id, rid, false)
            }
            Change::InsertRoom(room) | Change::UpdateRoom(room) => Event::Room {
                rid: room.id.clone(),
                removed: false,
            },
            Change::DeleteRoom(rid) => Event::Room {
                rid: rid.clone(),
                removed: true,
            },
            Change::InsertUser { user, .. } | Change::UpdateUser(user) => Event::User {
                user: Box::new(user.clone()),
            },
            // A deleted user's sessions end with them (the store removes their tokens).
            Change::DeleteSessionTokens { user_id } | Change::DeleteUser(user_id) => {
                Event::SessionsEnded {
                    user_id: user_id.clone(),
                    token_hash: None,
                }
            }
            Change::UpsertIntegration(_) | Change::DeleteIntegration(_) => Event::Integrations,
            Change::DeleteLoginToken { user_id, hashed } => Event::SessionsEnded {
                user_id: user_id.clone(),
                token_hash: Some(hashed.clone()),
            },
            Change::UpsertRole(role) => Event::Role {
                role: Box::new(role.clone()),
                removed: false,
            },
            Change::SetSetting { id, value } => Event::Setting {
                id: id.clone(),
                value: value.clone(),
                public: apogee_domain::settings::find(id).is_some_and(|d| d.public),
            },
            Change::SetPermissionRoles { id, roles } => Event::Permission {
                id: id.clone(),
                roles: roles.clone(),
            },
            _ => return None,
        })
    }
}

/// The node-to-node event port. The local implementation serves one node; a networked one
/// (NATS) forwards published events to every node and feeds theirs into the same receivers.
pub trait Bus: Send + Sync {
    fn publish(&self, event: Event);
    /// A receiver of every event published from now on, from any node.
    fn subscribe(&self) -> broadcast::Receiver<Arc<Event>>;
}

/// In-process bus: a bounded broadcast channel.
pub struct LocalBus {
    tx: broadcast::Sender<Arc<Event>>,
}

impl Default for LocalBus {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(LOCAL_CAPACITY).0,
        }
    }
}

impl Bus for LocalBus {
    fn publish(&self, event: Event) {
        // No receiver is fine: nobody is connected.
        let _ = self.tx.send(Arc::new(event));
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apogee_domain::UserRef;

    #[test]
    fn changes_map_to_events() {
        let u = UserRef {
            id: "u1".into(),
            username: "ann".into(),
            name: None,
        };
        let m = Message::new("m1".into(), "r1", u, "hi".into());
        let events = Event::from_changes(&[
            Change::AppendMessage {
                message: m.clone(),
                mentioned_user_ids: vec![],
                mentions_all: false,
            },
            Change::MarkRead {
                rid: "r1".into(),
                user_id: "u2".into(),
            },
            Change::SetSetting {
                id: "x".into(),
                value: serde_json::json!(1),
            },
            Change::DeleteMessage {
                id: "m1".into(),
                rid: "r1".into(),
            },
        ]);
        assert_eq!(events.len(), 4);
        assert_eq!(
            events[0],
            Event::Message {
                message: Box::new(m),
                created: true
            }
        );
        assert_eq!(
            events[1],
            Event::Subscription {
                user_id: "u2".into(),
                rid: "r1".into(),
                removed: false
            }
        );
        assert_eq!(
            events[2].audience(),
            Audience::Nodes,
            "unknown settings stay private"
        );
        let json = serde_json::to_value(&events[3]).unwrap();
        assert_eq!(json["type"], "messageDeleted");
    }

    #[test]
    fn deletions_in_one_room_become_one_bulk_event() {
        let del = |id: &str, rid: &str| Change::DeleteMessage {
            id: id.into(),
            rid: rid.into(),
        };
        let events =
            Event::from_changes(&[del("a", "r"), del("b", "r"), del("c", "r"), del("d", "s")]);
        assert_eq!(
            events,
            vec![
                Event::MessagesDeleted {
                    rid: "r".into(),
                    ids: vec!["a".into(), "b".into(), "c".into()]
                },
                Event::MessageDeleted {
                    rid: "s".into(),
                    id: "d".into()
                }
            ]
        );
        assert_eq!(events[0].audience(), Audience::Room("r"));
    }

    #[test]
    fn only_public_settings_reach_clients() {
        let set = |id: &str| Change::SetSetting {
            id: id.into(),
            value: serde_json::json!(true),
        };
        let events = Event::from_changes(&[
            set("Accounts_AllowAnonymousRead"),
            set("Accounts_TwoFactorAuthentication_RememberFor"),
        ]);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].audience(), Audience::Everyone);
        assert_eq!(events[1].audience(), Audience::Nodes);
    }

    #[tokio::test]
    async fn local_bus_broadcasts() {
        let bus = LocalBus::default();
        let mut rx = bus.subscribe();
        bus.publish(Event::Room {
            rid: "r".into(),
            removed: true,
        });
        assert_eq!(
            *rx.recv().await.unwrap(),
            Event::Room {
                rid: "r".into(),
                removed: true
            }
        );
    }
}
