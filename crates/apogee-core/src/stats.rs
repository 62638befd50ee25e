//! Workspace facts: usage statistics, the (absent) licence, configured login services, and the
//! password-reset request.

use crate::Core;
use crate::error::{CoreError, CoreResult};
use crate::store::{Page, RoomQuery, UserQuery};
use apogee_domain::{RoomType, Timestamp, User};
use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

impl Core {
    /// `statistics`: counts computed from the store now. Needs `view-statistics`.
    pub async fn statistics(&self, actor: &User) -> CoreResult<Value> {
        if !self.authz.has(actor, "view-statistics") {
            return Err(CoreError::not_allowed("Not allowed"));
        }
        let (users, total_users) = self
            .store
            .list_users(&UserQuery::default(), Page::ALL)
            .await?;
        let count_status = |s: &str| users.iter().filter(|u| u.status == s).count();
        let active = users.iter().filter(|u| u.active).count();
        let humans: Vec<&User> = users.iter().filter(|u| !u.is_bot()).collect();
        let (rooms, total_rooms) = self
            .store
            .list_rooms(&RoomQuery::default(), Page::ALL)
            .await?;
        let of_type = |t: RoomType| rooms.iter().filter(move |r| r.t == t);
        let msgs_of = |t: RoomType| of_type(t).map(|r| r.msgs).sum::<i64>();
        let installed_at = self
            .store
            .room_by_id("GENERAL")
            .await?
            .map(|r| r.ts)
            .or_else(|| users.iter().map(|u| u.created_at).min());
        let unique_id = self.settings.string("uniqueID");
        let site_url = self.settings.string("Site_Url");
        let fingerprint = base64::engine::general_purpose::STANDARD
            .encode(Sha256::digest(format!("{site_url}{unique_id}").as_bytes()));
        Ok(json!({
            "_id": unique_id,
            "uniqueId": unique_id,
            "installedAt": installed_at,
            "createdAt": Timestamp::now(),
            "deploymentFingerprintHash": fingerprint,
            "deploymentFingerprintVerified": true,
            "wizard": {},
            "totalUsers": total_users,
            "activeUsers": active,
            "activeGuests": humans.iter().filter(|u| u.active && u.has_role("guest")).count(),
            "nonActiveUsers": total_users as usize - active,
            "appUsers": users.iter().filter(|u| u.kind == "app").count(),
            "onlineUsers": count_status("online"),
            "awayUsers": count_status("away"),
            "busyUsers": count_status("busy"),
            "offlineUsers": users.len() - count_status("online") - count_status("away") - count_status("busy"),
            "totalConnectedUsers": count_status("online") + count_status("away") + count_status("busy"),
            "totalRooms": total_rooms,
            "totalChannels": of_type(RoomType::Channel).count(),
            "totalPrivateGroups": of_type(RoomType::Group).count(),
            "totalDirect": of_type(RoomType::Direct).count(),
            "totalDiscussions": rooms.iter().filter(|r| r.prid.is_some()).count(),
            "totalThreads": Value::Null,
            "totalMessages": rooms.iter().map(|r| r.msgs).sum::<i64>(),
            "totalChannelMessages": msgs_of(RoomType::Channel),
            "totalPrivateGroupMessages": msgs_of(RoomType::Group),
            "totalDirectMessages": msgs_of(RoomType::Direct),
            "totalLivechat": 0,
            "totalLivechatMessages": 0,
        }))
    }

    /// `licenses.info`: Apogee runs without an enterprise licence, so there is none to describe.
    pub fn license_info(&self) -> Value {
        json!({
            "activeModules": [],
            "preventedActions": {},
            "limits": {},
            "tags": [],
            "trial": false,
            "hasValidLicense": false,
        })
    }

    /// `licenses.maxActiveUsers`: no licence limit; the active human users.
    pub async fn active_user_count(&self) -> CoreResult<i64> {
        let query = UserQuery {
            active: Some(true),
            ..Default::default()
        };
        let (users, _) = self.store.list_users(&query, Page::ALL).await?;
        Ok(users.iter().filter(|u| !u.is_bot()).count() as i64)
    }

    /// OAuth login services configured on this server (`service.configurations`,
    /// `settings.oauth`). Apogee has no OAuth login yet, so none are ever configured.
    pub fn login_services(&self) -> Vec<Value> {
        Vec::new()
    }
}
