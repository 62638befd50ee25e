//! Presence across federation (`m.presence` EDUs), both ways, mapped to Rocket.Chat's user
//! status. Out: when a local user's status changes (connections, `users.setStatus`), every
//! server sharing a federated room with them gets `m.presence` (never stored; a newer one
//! replaces a waiting older one). In: a server's presence of *its own* users that we know
//! (remote users of a shared room) becomes their `status` and `statusText`, published like a
//! local user's change (`user-status`). Matrix knows online, unavailable and offline (and,
//! unstable, busy): away ⇄ unavailable, busy ⇄ `org.matrix.msc3026.busy` out as unavailable.

use crate::Core;
use crate::error::{CoreError, CoreResult};
use crate::federated_rooms::{FEDERATED_ROLE, server_of};
use crate::store::Change;
use apogee_domain::{Timestamp, User};
use serde_json::json;
use std::collections::BTreeSet;

/// Matrix's presence for a Rocket.Chat status.
pub fn matrix_presence(status: &str) -> &'static str {
    match status {
        "online" => "online",
        "away" | "busy" => "unavailable",
        _ => "offline",
    }
}

/// Rocket.Chat's status for a Matrix presence (`None`: not a presence we know).
pub fn status_of_presence(presence: &str) -> Option<&'static str> {
    match presence {
        "online" => Some("online"),
        "unavailable" => Some("away"),
        "offline" => Some("offline"),
        "busy" | "org.matrix.msc3026.busy" => Some("busy"),
        _ => None,
    }
}

impl Core {
    /// A local user's status changed: `m.presence` to every server sharing a federated room
    /// with them. Failures are logged (presence is ephemeral).
    pub(crate) async fn federate_presence(&self, user: &User) {
        let Some(gateway) = self.federation.get() else {
            return;
        };
        if user.roles.iter().any(|r| r == FEDERATED_ROLE) {
            return;
        }
        let ours = gateway.server_name().to_string();
        let result: CoreResult<Vec<String>> = async {
            let mut servers = BTreeSet::new();
            for sub in self.store.subscriptions_of_user(&user.id).await? {
                if let Some(room) = self.store.federated_room(&sub.rid).await? {
                    servers.extend(self.federation_destinations(&room, &ours).await?);
                }
            }
            Ok(servers.into_iter().collect())
        }
        .await;
        let destinations = match result {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(user = %user.id, error = %e.message, "presence not federated");
                return;
            }
        };
        if destinations.is_empty() {
            return;
        }
        let user_id = format!("@{}:{ours}", user.username);
        let mut push = json!({"user_id": user_id, "presence": matrix_presence(&user.status),
            "currently_active": user.status == "online", "last_active_ago": 0});
        if !user.status_text.is_empty() {
            push["status_msg"] = json!(user.status_text);
        }
        let edu = json!({"edu_type": "m.presence", "content": {"push": [push]}});
        gateway.send_edu(&destinations, Some(format!("presence {user_id}")), edu);
    }

    /// `m.presence` from `origin` about `user_id`: the remote user's status (and status text
    /// when given). Only a server's own users, and only users we know.
    pub async fn receive_federated_presence(
        &self,
        origin: &str,
        user_id: &str,
        presence: &str,
        status_msg: Option<&str>,
    ) -> CoreResult<()> {
        if server_of(user_id) != Some(origin) {
            return Err(CoreError::bad(
                "error-not-allowed",
                "A server speaks only for its own users",
            ));
        }
        let status = status_of_presence(presence)
            .ok_or_else(|| CoreError::bad("error-invalid-status", "Unknown presence"))?;
        let Some(mut user) = self.store.user_by_username(user_id).await? else {
            return Ok(());
        };
        if !user.roles.iter().any(|r| r == FEDERATED_ROLE) {
            return Err(CoreError::bad("error-invalid-user", "Not a remote user"));
        }
        let text = status_msg.map(|t| t.chars().take(120).collect::<String>());
        let changed = user.status != status
            || user.status_connection != status
            || text.as_ref().is_some_and(|t| *t != user.status_text);
        if !changed {
            return Ok(());
        }
        user.status = status.to_string();
        user.status_connection = status.to_string();
        if let Some(text) = text {
            user.status_text = text;
        }
        user.updated_at = Timestamp::now();
        self.commit(vec![Change::UpdateUser(user)]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_both_ways() {
        for (status, presence) in [
            ("online", "online"),
            ("away", "unavailable"),
            ("busy", "unavailable"),
            ("offline", "offline"),
            ("invisible", "offline"),
        ] {
            assert_eq!(matrix_presence(status), presence, "{status}");
        }
        assert_eq!(status_of_presence("unavailable"), Some("away"));
        assert_eq!(status_of_presence("org.matrix.msc3026.busy"), Some("busy"));
        assert_eq!(status_of_presence("online"), Some("online"));
        assert_eq!(status_of_presence("offline"), Some("offline"));
        assert_eq!(status_of_presence("sleeping"), None);
    }
}
