//! DMs opened from Matrix. Rocket.Chat keys a DM by its members: the room id is their user ids
//! sorted and concatenated ([`dm_room_id`]), which is how `im.create`, `im.open`, `rooms.get`
//! and DDP `createDirectMessage` find it. A Matrix room that invites one of our users with
//! `is_direct` becomes that DM: its members are our invitee and the room's joined and invited
//! users (a DM's members are members at once, as when we open one), so the same people get the
//! same room whichever side opened it.
//!
//! Matrix allows several DM rooms for the same people; Rocket.Chat shows one. When the members'
//! DM exists here already, mapped to another Matrix room (we opened it, or an older invite did),
//! the DM follows the newest Matrix room, as Rocket.Chat's bridge re-points its mapping: the
//! local members leave the older Matrix room (so the other side sees them gone rather than
//! writing into a room nobody reads), and the Rocket.Chat room, its messages and subscriptions
//! stay as they are.
//!
//! A direct invite is refused (nothing written, no take-up queued) when it cannot be a DM: its
//! room is public, or the room is one we hold already as something else.

use crate::Core;
use crate::error::{CoreError, CoreResult};
use crate::federated_rooms::{JoinedRoom, mapping_changes, mark_federated};
use crate::store::Change;
use apogee_domain::{Room, RoomType, Timestamp, User, dm_room_id};
use serde_json::Value;

impl Core {
    /// Serving `v2/invite` with `is_direct`: refused when the room cannot be a DM here — a
    /// public join rule in the invite's room state, or a Matrix room we hold as a channel or
    /// group.
    pub async fn check_direct_invite(
        &self,
        matrix_room_id: &str,
        invite_room_state: &[Value],
    ) -> CoreResult<()> {
        let public = invite_room_state.iter().any(|e| {
            e["type"] == "m.room.join_rules" && e["content"]["join_rule"].as_str() == Some("public")
        });
        if public {
            return Err(CoreError::not_allowed(
                "A direct chat cannot be a public room",
            ));
        }
        if let Some(mapped) = self
            .store
            .federated_room_by_matrix_id(matrix_room_id)
            .await?
            && let Some(room) = self.store.room_by_id(&mapped.rid).await?
            && room.t != RoomType::Direct
        {
            return Err(CoreError::not_allowed(
                "This room is not a direct chat here",
            ));
        }
        Ok(())
    }

    /// The batch mapping a Matrix room `actor` joined after a direct invite: the members' DM,
    /// made (id = their ids sorted and concatenated) or, when it exists mapped to another
    /// Matrix room, re-pointed to this one.
    pub(crate) async fn joined_direct_changes(
        &self,
        actor: &User,
        joined: JoinedRoom,
    ) -> CoreResult<Vec<Change>> {
        if joined.public {
            // The invite said direct, the room's real state says public: not a DM.
            tracing::info!(room = %joined.matrix_room_id, "a direct invite into a public room: joined as a channel");
            return self.joined_room_changes(actor, joined).await;
        }
        let people: Vec<_> = joined
            .members
            .iter()
            .chain(joined.invited.iter())
            .cloned()
            .collect();
        let (members, mut changes) = self.room_members(actor, &people).await?;
        let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
        let rid = dm_room_id(&ids);
        let existing = self.store.room_by_id(&rid).await?;
        let mut room = match existing {
            Some(room) if room.t == RoomType::Direct => room,
            Some(_) => return Err(CoreError::internal("a DM id names another room")),
            None => {
                let mut room = Room::new(rid.clone(), RoomType::Direct, None, None);
                room.usernames = members.iter().map(|m| m.username.clone()).collect();
                room.uids = members.iter().map(|m| m.id.clone()).collect();
                mark_federated(&mut room, &joined);
                changes.insert(0, Change::InsertRoom(room.clone()));
                for member in &members {
                    changes.push(Change::InsertSubscription(
                        self.new_subscription(&room, member),
                    ));
                }
                changes.extend(mapping_changes(&rid, joined));
                return Ok(changes);
            }
        };
        // The members' DM exists: it follows this (newer) Matrix room.
        if let Some(older) = self.store.federated_room(&rid).await? {
            tracing::info!(rid, older = %older.matrix_room_id, newer = %joined.matrix_room_id,
                "a DM follows its members' newer Matrix room");
            for member in &members {
                if let Some(leave) = self
                    .federated_membership_out(&rid, member, None, "leave")
                    .await?
                {
                    changes.extend(leave);
                }
            }
            changes.push(Change::DeleteFederatedRoom { rid: rid.clone() });
        }
        mark_federated(&mut room, &joined);
        room.updated_at = Timestamp::now();
        changes.push(Change::UpdateRoom(room.clone()));
        for member in &members {
            if self.store.subscription(&rid, &member.id).await?.is_none() {
                changes.push(Change::InsertSubscription(
                    self.new_subscription(&room, member),
                ));
            }
        }
        changes.extend(mapping_changes(&rid, joined));
        Ok(changes)
    }
}
