//! Ephemeral events across federation (EDUs), both ways: typing (`m.typing` ⇄ the room's
//! `user-activity` stream) and read receipts (`m.receipt` out when a local user reads a
//! federated room; in, the remote user's subscription is marked read, which is what
//! Rocket.Chat's read receipts and `messagesRead` show). EDUs are never stored: they go out
//! through the adapter's in-memory per-destination queue and are lost on a restart.

use crate::Core;
use crate::error::{CoreError, CoreResult};
use crate::events::Event;
use crate::federated_rooms::{FEDERATED_ROLE, server_of};
use apogee_domain::{Timestamp, User};
use serde_json::json;

/// How long a remote typing notice lasts without a refresh (Matrix servers resend while the
/// user types; Rocket.Chat clients keep showing `user-typing` until told otherwise).
pub const TYPING_TIMEOUT_MS: i64 = 30_000;

impl Core {
    /// A local user's typing state in `rid`, announced to the other servers of a federated room.
    pub(crate) async fn federate_typing(&self, rid: &str, actor: &User, typing: bool) {
        let result: CoreResult<()> = async {
            let Some((gateway, room)) = self.federation_target(rid, actor).await? else {
                return Ok(());
            };
            let ours = gateway.server_name().to_string();
            let user_id = format!("@{}:{ours}", actor.username);
            let edu = json!({"edu_type": "m.typing", "content": {
                "room_id": room.matrix_room_id, "user_id": user_id, "typing": typing,
                "timeout": TYPING_TIMEOUT_MS}});
            let key = format!("typing {} {user_id}", room.matrix_room_id);
            let destinations = self.federation_destinations(&room, &ours).await?;
            gateway.send_edu(&destinations, Some(key), edu);
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(%rid, error = %e.message, "typing not federated");
        }
    }

    /// A local user read a federated room: a receipt for the newest event we know of it.
    pub(crate) async fn federate_read(&self, rid: &str, actor: &User) {
        let result: CoreResult<()> = async {
            let Some((gateway, room)) = self.federation_target(rid, actor).await? else {
                return Ok(());
            };
            let mut newest: Option<(i64, String)> = None;
            for id in self
                .store
                .federation_extremities(&room.matrix_room_id)
                .await?
            {
                if let Some(e) = self.store.federation_event(&id).await?
                    && newest.as_ref().is_none_or(|(d, _)| e.depth > *d)
                {
                    newest = Some((e.depth, id));
                }
            }
            let Some((_, event_id)) = newest else {
                return Ok(());
            };
            let ours = gateway.server_name().to_string();
            let user_id = format!("@{}:{ours}", actor.username);
            let edu = json!({"edu_type": "m.receipt", "content": {room.matrix_room_id.clone(): {
                "m.read": {user_id.clone(): {"event_ids": [event_id],
                    "data": {"ts": Timestamp::now().millis()}}}}}});
            let key = format!("receipt {} {user_id}", room.matrix_room_id);
            let destinations = self.federation_destinations(&room, &ours).await?;
            gateway.send_edu(&destinations, Some(key), edu);
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(%rid, error = %e.message, "read receipt not federated");
        }
    }

    /// The gateway and the Matrix room, when `rid` is federated and `actor` is one of ours.
    async fn federation_target(
        &self,
        rid: &str,
        actor: &User,
    ) -> CoreResult<
        Option<(
            &std::sync::Arc<dyn crate::federated_rooms::FederationGateway>,
            crate::store::FederatedRoom,
        )>,
    > {
        let Some(gateway) = self.federation.get() else {
            return Ok(None);
        };
        if actor.roles.iter().any(|r| r == FEDERATED_ROLE) {
            return Ok(None);
        }
        Ok(self
            .store
            .federated_room(rid)
            .await?
            .map(|room| (gateway, room)))
    }

    /// The remote member `user_id` of a federated room, if `origin` may speak for them (their
    /// own server) and they are in the room.
    async fn remote_member(
        &self,
        origin: &str,
        matrix_room_id: &str,
        user_id: &str,
    ) -> CoreResult<(String, User)> {
        let refuse = |why: &str| CoreError::bad("error-federation-edu", why.to_string());
        if server_of(user_id) != Some(origin) {
            return Err(refuse("the user is not from the sending server"));
        }
        let room = self
            .store
            .federated_room_by_matrix_id(matrix_room_id)
            .await?
            .ok_or_else(|| refuse("not a room we are in"))?;
        let user = self
            .store
            .user_by_username(user_id)
            .await?
            .filter(|u| u.roles.iter().any(|r| r == FEDERATED_ROLE))
            .ok_or_else(|| refuse("unknown user"))?;
        if self
            .store
            .subscription(&room.rid, &user.id)
            .await?
            .is_none()
        {
            return Err(refuse("the user is not in the room"));
        }
        if !self.room_acl_allows(matrix_room_id, origin).await? {
            return Err(refuse("the room's server ACL denies the sending server"));
        }
        Ok((room.rid, user))
    }

    /// `m.typing` from `origin`: the room's `user-activity` stream shows the remote user
    /// typing (or stopping), as a local user's would.
    pub async fn receive_federated_typing(
        &self,
        origin: &str,
        matrix_room_id: &str,
        user_id: &str,
        typing: bool,
    ) -> CoreResult<()> {
        let (rid, user) = self.remote_member(origin, matrix_room_id, user_id).await?;
        let activities = if typing {
            vec!["user-typing".to_string()]
        } else {
            Vec::new()
        };
        self.publish(Event::Activity {
            rid,
            username: user.username,
            activities,
        });
        Ok(())
    }

    /// `m.receipt` (`m.read`) from `origin`: the remote user has read the room, so their
    /// subscription is marked read (read receipts and `messagesRead` follow from it).
    pub async fn receive_federated_receipt(
        &self,
        origin: &str,
        matrix_room_id: &str,
        user_id: &str,
    ) -> CoreResult<()> {
        let (rid, user) = self.remote_member(origin, matrix_room_id, user_id).await?;
        self.mark_read(&user, &rid).await
    }
}
