//! Avatars over federation.
//!
//! - Our users': an uploaded avatar is `mxc://<us>/avatar_<user id>_<etag>` in their member
//!   events (`avatar_url`) and in `query/profile`, and served from the federation media
//!   endpoint to any verified server — like the display name, it is the public face of an
//!   active person. Initials (no uploaded image) have no `avatar_url`.
//! - Our federated rooms' images: `mxc://<us>/roomavatar_<room id>_<etag>` in
//!   `m.room.avatar`, served only to servers with a member joined to the room.
//!
//! A new image has a new etag, so a new URL; an old URL stops being served once replaced.
//!
//! The other way, remote users' pictures follow the `avatar_url` of their member events
//! (`federated_media.rs`). The members already in a room when we join it are fetched after
//! the join through the outbox (`federation.member_avatars`, queued in the join's batch): off
//! the join's request, at most [`MAX_MEMBER_AVATARS`] a join, one at a time; so is the
//! picture of a room we join (`federation.room_picture`), whose later changes follow its
//! `m.room.avatar` events.

use crate::Core;
use crate::avatars::StoredImage;
use crate::error::CoreResult;
use crate::outbox::{Deliverer, Delivery};
use crate::store::Change;
use apogee_domain::User;
use async_trait::async_trait;
use serde_json::{Value, json};

const PREFIX: &str = "avatar_";
const ROOM_PREFIX: &str = "roomavatar_";

/// The outbox kind fetching the avatars of the members a joined room already had.
pub const MEMBER_AVATARS: &str = "federation.member_avatars";
/// The outbox kind fetching the picture of a room just joined.
pub const ROOM_PICTURE: &str = "federation.room_picture";
/// At most this many members' avatars are fetched for one join (a huge room's pictures come
/// as its members next change them).
pub const MAX_MEMBER_AVATARS: usize = 100;

/// Whether a piece of an avatar's media id is safe there (Matrix media ids are
/// `[A-Za-z0-9_-]`; the underscore separates the parts).
fn plain(part: &str) -> bool {
    !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The media id of a user's current uploaded avatar, if any.
fn media_id(user: &User) -> Option<String> {
    let etag = user.avatar_e_tag.as_deref()?;
    (plain(&user.id) && plain(etag)).then(|| format!("{PREFIX}{}_{etag}", user.id))
}

/// The `avatar_url` of a local user, as other servers fetch it from us.
pub(crate) fn avatar_mxc(user: &User, ours: &str) -> Option<String> {
    media_id(user).map(|id| format!("mxc://{ours}/{id}"))
}

/// The `url` of a room image's `m.room.avatar` (`etag` is the room's `avatarETag`).
pub(crate) fn room_avatar_mxc(rid: &str, etag: &str, ours: &str) -> String {
    format!("mxc://{ours}/{ROOM_PREFIX}{rid}_{etag}")
}

/// Whether a media id names a user's or a room's avatar (rather than an upload).
pub fn is_avatar_media(media_id: &str) -> bool {
    media_id.starts_with(PREFIX) || media_id.starts_with(ROOM_PREFIX)
}

impl Core {
    /// The image behind `mxc://<us>/avatar_<user id>_<etag>` (the current avatar of an active
    /// local person) or `mxc://<us>/roomavatar_<room id>_<etag>` (the current image of a
    /// federated room `server` has a member in), else `None`.
    pub async fn federated_avatar(
        &self,
        media_id: &str,
        server: &str,
    ) -> CoreResult<Option<StoredImage>> {
        if self.federation.get().is_none() {
            return Ok(None);
        }
        if let Some(rest) = media_id.strip_prefix(ROOM_PREFIX) {
            return self.federated_room_avatar(rest, server).await;
        }
        let Some((uid, etag)) = media_id
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once('_'))
        else {
            return Ok(None);
        };
        let Some(user) = self.store.user_by_id(uid).await? else {
            return Ok(None);
        };
        let federated = user
            .roles
            .iter()
            .any(|r| r == crate::federated_rooms::FEDERATED_ROLE);
        if !user.active || user.kind != "user" || federated {
            return Ok(None);
        }
        if media_id_matches(&user, media_id) {
            self.user_avatar_image(&user.id, etag).await
        } else {
            Ok(None)
        }
    }
}

impl Core {
    async fn federated_room_avatar(
        &self,
        rid_and_etag: &str,
        server: &str,
    ) -> CoreResult<Option<StoredImage>> {
        let Some((rid, etag)) = rid_and_etag.split_once('_') else {
            return Ok(None);
        };
        let (Some(room), Some(federated)) = (
            self.store.room_by_id(rid).await?,
            self.store.federated_room(rid).await?,
        ) else {
            return Ok(None);
        };
        if room.extra.get("avatarETag").and_then(Value::as_str) != Some(etag) {
            return Ok(None);
        }
        if self
            .federated_room_for_server(server, &federated.matrix_room_id)
            .await
            .is_err()
        {
            return Ok(None);
        }
        self.room_avatar_image(rid, etag).await
    }

    /// The outbox item fetching the pictures of a joined room's members (`(user id, mxc://
    /// URL)`), if any; commit it with the join.
    pub(crate) fn member_avatars_item(&self, avatars: &[(String, String)]) -> Option<Change> {
        if avatars.is_empty() {
            return None;
        }
        let list: Vec<Value> = avatars
            .iter()
            .take(MAX_MEMBER_AVATARS)
            .map(|(user_id, url)| json!({"user_id": user_id, "url": url}))
            .collect();
        Some(self.enqueue(MEMBER_AVATARS, json!({"avatars": list})))
    }
}

impl Core {
    /// The outbox item fetching the picture (`m.room.avatar` `url`, set by `sender`) of room
    /// `rid` just joined; commit it with the join.
    pub(crate) fn room_picture_item(&self, rid: &str, sender: &str, url: &str) -> Change {
        self.enqueue(
            ROOM_PICTURE,
            json!({"rid": rid, "sender": sender, "url": url}),
        )
    }
}

/// Delivers `federation.room_picture` items: the picture followed as if its `m.room.avatar`
/// had just arrived (an image that cannot be had is logged, not retried).
pub(crate) struct RoomPicture;

#[async_trait]
impl Deliverer for RoomPicture {
    async fn deliver(&self, core: &Core, payload: &Value) -> Delivery {
        let (Some(rid), Some(sender), Some(url)) = (
            payload["rid"].as_str(),
            payload["sender"].as_str(),
            payload["url"].as_str(),
        ) else {
            return Delivery::GiveUp("malformed room picture item".into());
        };
        core.follow_remote_room_avatar(rid, sender, &json!({"url": url}))
            .await;
        Delivery::Done
    }
}

/// Delivers `federation.member_avatars` items: each member's `avatar_url` followed as if
/// their member event had just arrived (an image that cannot be had is logged, not retried).
pub(crate) struct MemberAvatars;

#[async_trait]
impl Deliverer for MemberAvatars {
    async fn deliver(&self, core: &Core, payload: &Value) -> Delivery {
        let Some(list) = payload.get("avatars").and_then(Value::as_array) else {
            return Delivery::GiveUp("malformed member avatars item".into());
        };
        for entry in list.iter().take(MAX_MEMBER_AVATARS) {
            let (Some(user_id), Some(url)) = (entry["user_id"].as_str(), entry["url"].as_str())
            else {
                continue;
            };
            core.follow_remote_avatar(user_id, &json!({"avatar_url": url}))
                .await;
        }
        Delivery::Done
    }
}

/// Whether `id` is the user's current avatar (an old etag is not served).
fn media_id_matches(user: &User, id: &str) -> bool {
    media_id(user).as_deref() == Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avatar_media_ids() {
        let mut user = User::new(
            "u1d".into(),
            "bob".into(),
            None,
            "user",
            vec!["user".into()],
        );
        assert_eq!(avatar_mxc(&user, "us.test"), None, "initials have none");
        user.avatar_e_tag = Some("E7ag".into());
        assert_eq!(
            avatar_mxc(&user, "us.test").as_deref(),
            Some("mxc://us.test/avatar_u1d_E7ag")
        );
        assert!(is_avatar_media("avatar_u1d_E7ag"));
        assert!(is_avatar_media("roomavatar_r1_E7ag"));
        assert!(!is_avatar_media("f1"));
        assert_eq!(
            room_avatar_mxc("r1", "E7ag", "us.test"),
            "mxc://us.test/roomavatar_r1_E7ag"
        );
        assert!(media_id_matches(&user, "avatar_u1d_E7ag"));
        assert!(!media_id_matches(&user, "avatar_u1d_old"));
        user.avatar_e_tag = Some("../x".into());
        assert_eq!(avatar_mxc(&user, "us.test"), None);
    }
}
