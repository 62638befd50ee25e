//! Realtime use-cases: who may listen to which room streams, room activity (typing) writes and
//! connection-driven presence. Wire layers (DDP) call these; they decide nothing themselves.

use crate::Core;
use crate::error::{CoreError, CoreResult};
use crate::events::Event;
use crate::rooms::{RoomRef, RoomView};
use crate::store::Change;
use apogee_domain::user::status_code;
use apogee_domain::{Timestamp, User};

/// Activities a client may announce in a room (`stream-notify-room` `<rid>/user-activity`).
const ACTIVITIES: &[&str] = &["user-typing", "user-recording", "user-uploading"];

impl Core {
    /// May `actor` listen to a room's streams (`stream-room-messages/<rid>`,
    /// `stream-notify-room/<rid>/…`)? Rocket.Chat's `canAccessRoom`.
    pub async fn stream_room(&self, actor: &User, rid: &str) -> CoreResult<RoomView> {
        self.readable_room(actor, &RoomRef::Id(rid.to_string()))
            .await
            .map_err(|e| {
                if e.kind == crate::error::ErrorKind::Internal {
                    e
                } else {
                    CoreError::not_allowed("not-allowed")
                }
            })
    }

    /// A room activity write (typing, …): only members of the room, only as themselves (their
    /// username, or their name when `UI_Use_Real_Name` is on). Published, never stored.
    pub async fn room_activity(
        &self,
        actor: &User,
        rid: &str,
        username: &str,
        activities: Vec<String>,
    ) -> CoreResult<()> {
        let as_self = username == actor.username
            || (self.settings.bool("UI_Use_Real_Name") && actor.name.as_deref() == Some(username));
        if !as_self || activities.iter().any(|a| !ACTIVITIES.contains(&a.as_str())) {
            return Err(CoreError::not_allowed("not-allowed"));
        }
        if self.store.subscription(rid, &actor.id).await?.is_none() {
            return Err(CoreError::not_allowed("not-allowed"));
        }
        self.publish(Event::Activity {
            rid: rid.to_string(),
            username: username.to_string(),
            activities,
        });
        Ok(())
    }

    /// A user's presence from their connections (`online`, `away`, `offline`), as the wire layer
    /// tracks it (`UserPresence:online` / `UserPresence:away`, connections coming and going). While connected, a manual default other than `online`
    /// (busy, invisible) wins over what connections report.
    pub async fn set_connection_status(&self, user_id: &str, status: &str) -> CoreResult<User> {
        if status_code(status).is_none() {
            return Err(CoreError::bad("error-invalid-status", "Invalid status"));
        }
        let mut user = self
            .store
            .user_by_id(user_id)
            .await?
            .ok_or_else(CoreError::invalid_user)?;
        let shown = match user.status_default.as_str() {
            _ if status == "offline" => status.to_string(),
            "" | "online" => status.to_string(),
            manual => manual.to_string(),
        };
        if user.status_connection == status && user.status == shown {
            return Ok(user);
        }
        user.status_connection = status.to_string();
        user.status = shown;
        user.updated_at = Timestamp::now();
        self.commit(vec![Change::UpdateUser(user.clone())]).await?;
        Ok(user)
    }
}
