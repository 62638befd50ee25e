//! Realtime use-cases: who may listen to which room streams, room activity (typing) writes and
//! connection-driven presence. Wire layers (DDP) call these; they decide nothing themselves.

use crate::Core;
use crate::error::{CoreError, CoreResult};
use crate::events::Event;
use crate::rooms::{RoomRef, RoomView};
use crate::store::Change;
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
        let typing = activities.iter().any(|a| a == "user-typing");
        self.publish(Event::Activity {
            rid: rid.to_string(),
            username: username.to_string(),
            activities,
        });
        self.federate_typing(rid, actor, typing).await;
        Ok(())
    }

    /// This node's connections of a user say `online`, `away` or (none left) `offline`. The
    /// user's presence is the best any node reports, so a user connected to two nodes stays
    /// online when one connection closes. While connected, a manual default other than
    /// `online` (busy, invisible) wins over what connections report.
    pub async fn set_connection_status(&self, user_id: &str, status: &str) -> CoreResult<User> {
        if !matches!(status, "online" | "away" | "offline") {
            return Err(CoreError::bad("error-invalid-status", "Invalid status"));
        }
        let mine = (status != "offline").then(|| status.to_string());
        let mut reports = self.store.presence_of(user_id).await?;
        reports.retain(|(node, _)| *node != self.node);
        reports.extend(mine.clone().map(|s| (self.node.clone(), s)));
        let own = Change::SetPresence {
            node: self.node.clone(),
            user_id: user_id.to_string(),
            status: mine,
        };
        self.show_presence(user_id, &reports, vec![own]).await
    }

    /// Recomputes a user's presence from the nodes' reports (after a node was dropped).
    pub(crate) async fn refresh_presence(&self, user_id: &str) -> CoreResult<User> {
        let reports = self.store.presence_of(user_id).await?;
        self.show_presence(user_id, &reports, Vec::new()).await
    }

    /// Writes the presence the reports add up to, with `changes`, in one batch.
    async fn show_presence(
        &self,
        user_id: &str,
        reports: &[(String, String)],
        mut changes: Vec<Change>,
    ) -> CoreResult<User> {
        let _guard = self.lock_user(user_id).await;
        let status = if reports.iter().any(|(_, s)| s == "online") {
            "online"
        } else if reports.is_empty() {
            "offline"
        } else {
            "away"
        };
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
        let announce = user.status != shown;
        if user.status_connection != status || user.status != shown {
            user.status_connection = status.to_string();
            user.status = shown;
            user.updated_at = Timestamp::now();
            changes.push(Change::UpdateUser(user.clone()));
        }
        if !changes.is_empty() {
            self.commit(changes).await?;
        }
        if announce {
            self.federate_presence(&user).await;
        }
        Ok(user)
    }
}
