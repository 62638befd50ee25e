//! What happened, for realtime delivery. Events are derived from committed [`Change`]s in one
//! place ([`Core::commit`](crate::Core)), so every use-case announces its effects without extra
//! code, and published on a [`Bus`]. Each node delivers them to its own connections: fan-out is
//! in memory, never a database write per recipient.

use crate::store::Change;
use apogee_domain::{Message, User};
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
    /// Someone started or stopped an activity (`user-typing`, …) in a room. Not stored.
    Activity {
        rid: String,
        username: String,
        activities: Vec<String>,
    },
}

impl Event {
    /// The events a committed batch implies.
    pub fn from_changes(changes: &[Change]) -> Vec<Event> {
        changes.iter().filter_map(Self::from_change).collect()
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
        assert_eq!(events.len(), 3);
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
        let json = serde_json::to_value(&events[2]).unwrap();
        assert_eq!(json["type"], "messageDeleted");
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
