//! The Rocket.Chat side of a federated room following the room's *resolved* Matrix state,
//! not just each event as it is applied (`docs/FEDERATION.md`, "Catch-up and state
//! resolution"). When the adapter worked out the room's state after an event (resolved over
//! the forward extremities, or learnt beyond a gap from the sender's `state_ids`):
//!
//! - a state event that loses the resolution for its own key (an older name arriving late on
//!   another branch) changes nothing on the Rocket.Chat side;
//! - every name, topic or membership whose winning event differs from what was current
//!   before — other than the event being applied, whose own change is made as usual — is
//!   followed: the room's name or topic set (without a system line: nobody did it now),
//!   a member joined only through a fetched state subscribed, one who left or was banned
//!   unsubscribed.
//!
//! All of it goes in the event's own batch.

use crate::Core;
use crate::error::{CoreError, CoreResult};
use crate::federated_events::IncomingEvent;
use crate::federated_rooms::RemoteMember;
use crate::store::{Change, FederatedRoom};
use apogee_domain::{Room, Timestamp, User};
use serde_json::Value;
use std::collections::HashMap;

/// State the Rocket.Chat side follows.
const FOLLOWED: &[&str] = &["m.room.member", "m.room.name", "m.room.topic"];

/// Whether the resolved state after `event` gives its own key to another event.
pub(crate) fn lost_resolution(event: &IncomingEvent) -> bool {
    let (Some(key), Some(resolved)) = (&event.state_key, &event.current_state) else {
        return false;
    };
    resolved.iter().any(|e| {
        e.event_type == event.event_type && e.state_key == *key && e.event_id != event.event_id
    })
}

impl Core {
    /// Adds to `changes` (the event's batch) what following the resolved state needs.
    pub(crate) async fn follow_resolved_state(
        &self,
        room: &FederatedRoom,
        event: &IncomingEvent,
        changes: &mut Vec<Change>,
    ) -> CoreResult<()> {
        let Some(resolved) = &event.current_state else {
            return Ok(());
        };
        let before: HashMap<(String, String), String> = self
            .store
            .federation_room_state(&room.matrix_room_id)
            .await?
            .into_iter()
            .map(|e| ((e.event_type, e.state_key), e.event_id))
            .collect();
        let mut moved: Vec<_> = resolved
            .iter()
            .filter(|e| FOLLOWED.contains(&e.event_type.as_str()))
            .filter(|e| e.event_id != event.event_id)
            .filter(|e| {
                before.get(&(e.event_type.clone(), e.state_key.clone())) != Some(&e.event_id)
            })
            .collect();
        // Memberships first: a join rewrites the room document, names and topics go on top.
        moved.sort_by_key(|e| e.event_type != "m.room.member");
        for entry in moved {
            let Some(winner) = self.store.federation_event(&entry.event_id).await? else {
                continue;
            };
            let content = winner.pdu.get("content").cloned().unwrap_or(Value::Null);
            let text = |field: &str| content.get(field).and_then(Value::as_str);
            match entry.event_type.as_str() {
                "m.room.member" => {
                    self.follow_membership(room, &entry.state_key, text("membership"), changes)
                        .await?;
                }
                "m.room.name" => {
                    let mut r = self.room_in_batch(&room.rid, changes).await?;
                    r.fname = text("name")
                        .filter(|n| !n.trim().is_empty())
                        .map(str::to_string);
                    r.updated_at = Timestamp::now();
                    // The room list shows the subscription's copy of the name: those the
                    // batch makes get it too, those it removes are left alone.
                    let mut removed = Vec::new();
                    for c in changes.iter_mut() {
                        match c {
                            Change::InsertSubscription(s) if s.rid == r.id => {
                                s.fname = r.fname.clone();
                            }
                            Change::DeleteSubscription { rid, user_id } if *rid == r.id => {
                                removed.push(user_id.clone());
                            }
                            _ => {}
                        }
                    }
                    for mut sub in self.every_subscription(&r.id).await? {
                        if removed.contains(&sub.u.id) {
                            continue;
                        }
                        sub.fname = r.fname.clone();
                        sub.updated_at = Timestamp::now();
                        changes.push(Change::UpdateSubscription(sub));
                    }
                    changes.push(Change::UpdateRoom(r));
                }
                "m.room.topic" => {
                    let mut r = self.room_in_batch(&room.rid, changes).await?;
                    r.topic = text("topic").map(str::to_string);
                    r.updated_at = Timestamp::now();
                    changes.push(Change::UpdateRoom(r));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The room as the batch leaves it so far (its last `UpdateRoom`), else as stored.
    async fn room_in_batch(&self, rid: &str, changes: &[Change]) -> CoreResult<Room> {
        let in_batch = changes.iter().rev().find_map(|c| match c {
            Change::UpdateRoom(r) if r.id == rid => Some(r.clone()),
            _ => None,
        });
        match in_batch {
            Some(r) => Ok(r),
            None => self
                .store
                .room_by_id(rid)
                .await?
                .ok_or_else(CoreError::room_not_found),
        }
    }

    /// `target`'s subscription made or removed to match `membership`, minding what the batch
    /// already does for them.
    async fn follow_membership(
        &self,
        room: &FederatedRoom,
        target: &str,
        membership: Option<&str>,
        changes: &mut Vec<Change>,
    ) -> CoreResult<()> {
        // A user the batch makes already (the event's sender, say) is that user.
        let inserted = changes.iter().find_map(|c| match c {
            Change::InsertUser { user, .. } if user.username == target => Some(user.clone()),
            _ => None,
        });
        let user: User = match inserted {
            Some(user) => user,
            None => {
                let (user, insert) = self
                    .remote_user(&RemoteMember {
                        user_id: target.to_string(),
                        displayname: None,
                    })
                    .await?;
                changes.extend(insert);
                user
            }
        };
        let mut subscribed = self
            .store
            .subscription(&room.rid, &user.id)
            .await?
            .is_some();
        for c in changes.iter() {
            match c {
                Change::InsertSubscription(s) if s.rid == room.rid && s.u.id == user.id => {
                    subscribed = true;
                }
                Change::DeleteSubscription { rid, user_id }
                    if *rid == room.rid && *user_id == user.id =>
                {
                    subscribed = false;
                }
                _ => {}
            }
        }
        match membership {
            Some("join") if !subscribed => {
                let r = self.room_in_batch(&room.rid, changes).await?;
                let joins = self.join_changes(r, &user, None, true);
                changes.extend(joins);
            }
            Some("leave" | "ban") if subscribed => changes.push(Change::DeleteSubscription {
                rid: room.rid.clone(),
                user_id: user.id.clone(),
            }),
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::FederationStateEntry;
    use serde_json::json;

    fn name_event(current: Option<&str>) -> IncomingEvent {
        IncomingEvent {
            event_id: "$mine".into(),
            matrix_room_id: "!r:s".into(),
            sender: "@a:s".into(),
            event_type: "m.room.name".into(),
            state_key: Some(String::new()),
            content: json!({"name": "x"}),
            redacts: None,
            prev_events: vec![],
            depth: 5,
            origin_server_ts: 0,
            pdu: Value::Null,
            soft_failed: false,
            state_before: None,
            current_state: current.map(|id| {
                vec![FederationStateEntry {
                    event_type: "m.room.name".into(),
                    state_key: String::new(),
                    event_id: id.into(),
                }]
            }),
        }
    }

    #[test]
    fn an_event_loses_when_its_key_goes_to_another() {
        assert!(lost_resolution(&name_event(Some("$other"))));
        assert!(!lost_resolution(&name_event(Some("$mine"))));
        // Unknown resolution: applied as it comes.
        assert!(!lost_resolution(&name_event(None)));
        let mut message = name_event(Some("$other"));
        message.event_type = "m.room.message".into();
        message.state_key = None;
        assert!(!lost_resolution(&message));
    }
}
