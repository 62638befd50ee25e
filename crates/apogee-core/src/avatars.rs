//! Avatars of users and rooms: an uploaded image kept in the blob store (`avatars/<user id>/…`,
//! `room-avatars/<rid>/…`), or initials drawn as SVG. The image type is sniffed from the bytes,
//! never taken from the client; anything that is not PNG, JPEG, GIF, WebP or SVG is refused and
//! nothing is kept. Every change is announced as `updateAvatar` (an [`Event::Avatar`]).

use crate::Core;
use crate::blobs::{BlobKey, ByteSource};
use crate::error::{CoreError, CoreResult};
use crate::events::Event;
use crate::files::blob_failure;
use crate::store::Change;
use apogee_domain::{Room, Timestamp, User, random_id};
use async_trait::async_trait;
use base64::Engine;
use serde_json::Value;

/// An image kept in the blob store, as served: its type (found again in the stored bytes), its
/// ETag and its contents.
pub struct StoredImage {
    pub content_type: &'static str,
    pub etag: String,
    pub body: Box<dyn ByteSource>,
}

/// What `/avatar/<username>` serves.
pub enum Avatar {
    /// An uploaded image.
    Image(StoredImage),
    /// The initials drawn as SVG.
    Initials { svg: String, etag: String },
}

/// The image type of the first bytes of a file, if it is one an avatar may be.
pub fn image_type(head: &[u8]) -> Option<&'static str> {
    let svg = || {
        let text = String::from_utf8_lossy(head);
        let text = text.trim_start_matches('\u{feff}').trim_start();
        (text.starts_with("<svg") || (text.starts_with("<?xml") && text.contains("<svg")))
            .then_some("image/svg+xml")
    };
    match head {
        [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, ..] => Some("image/png"),
        [0xff, 0xd8, 0xff, ..] => Some("image/jpeg"),
        [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => Some("image/gif"),
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => Some("image/webp"),
        _ => svg(),
    }
}

/// Up to two initials of a username (`ann.lee` → `AL`, `bob` → `BO`).
fn initials(username: &str) -> String {
    let parts: Vec<&str> = username
        .split(|c: char| !c.is_alphanumeric())
        .filter(|p| !p.is_empty())
        .collect();
    let picked: String = match parts.as_slice() {
        [] => "?".into(),
        [one] => one.chars().take(2).collect(),
        [first, second, ..] => first
            .chars()
            .take(1)
            .chain(second.chars().take(1))
            .collect(),
    };
    picked.to_uppercase()
}

fn initials_svg(name: &str) -> String {
    const COLOURS: &[&str] = &[
        "#F44336", "#E91E63", "#9C27B0", "#673AB7", "#3F51B5", "#2196F3", "#03A9F4", "#00BCD4",
        "#009688", "#4CAF50", "#8BC34A", "#CDDC39", "#FFC107", "#FF9800", "#FF5722", "#795548",
    ];
    let hash = name
        .bytes()
        .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
    let text: String = initials(name)
        .chars()
        .map(|c| match c {
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '&' => "&amp;".to_string(),
            c => c.to_string(),
        })
        .collect();
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 200"><rect width="100%" height="100%" fill="{}"/><text x="50%" y="50%" dy="0.36em" text-anchor="middle" pointer-events="none" fill="#ffffff" font-family="Helvetica, Arial, sans-serif" style="font-weight: 400; font-size: 80px">{text}</text></svg>"##,
        COLOURS[hash % COLOURS.len()]
    )
}

/// A chunk already read, then the rest of the source.
pub(crate) struct Prepended {
    pub(crate) first: Option<Vec<u8>>,
    pub(crate) rest: Box<dyn ByteSource>,
}

#[async_trait]
impl ByteSource for Prepended {
    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, crate::blobs::BlobError> {
        match self.first.take() {
            Some(first) if !first.is_empty() => Ok(Some(first)),
            _ => self.rest.next_chunk().await,
        }
    }
}

/// Each upload has its own key (`avatars/<user id>/<etag>`), so a refused upload never touches
/// the current image.
fn key_of(user_id: &str, etag: &str) -> CoreResult<BlobKey> {
    BlobKey::new(&format!("avatars/{user_id}/{etag}"))
        .map_err(|_| CoreError::internal("avatar key"))
}

/// Each room image has its own key too, so a refused one never touches the current image.
fn room_key_of(rid: &str, etag: &str) -> CoreResult<BlobKey> {
    BlobKey::new(&format!("room-avatars/{rid}/{etag}"))
        .map_err(|_| CoreError::internal("room avatar key"))
}

/// The blob of a room's current image, if it has one.
pub(crate) fn room_image_key(room: &Room) -> Option<BlobKey> {
    let etag = room.extra.get("avatarETag").and_then(Value::as_str)?;
    room_key_of(&room.id, etag).ok()
}

fn invalid_image() -> CoreError {
    CoreError::bad("error-invalid-image", "Invalid image format")
}

/// A room avatar change: `saveRoomSettings`' `roomAvatar`, a `data:` URL or null to reset.
#[derive(Clone)]
pub enum RoomAvatar {
    Reset,
    Image(Vec<u8>),
}

impl std::fmt::Debug for RoomAvatar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RoomAvatar::Reset => f.write_str("Reset"),
            RoomAvatar::Image(bytes) => write!(f, "Image({} bytes)", bytes.len()),
        }
    }
}

impl RoomAvatar {
    /// `null` or `""` resets; `data:<type>;base64,<data>` is an image (the declared type is
    /// ignored: the bytes decide). Anything else is refused.
    pub fn from_value(value: &Value) -> CoreResult<Self> {
        let text = match value {
            Value::Null => return Ok(RoomAvatar::Reset),
            Value::String(s) if s.is_empty() => return Ok(RoomAvatar::Reset),
            Value::String(s) => s,
            _ => return Err(invalid_image()),
        };
        let (head, data) = text
            .strip_prefix("data:")
            .and_then(|rest| rest.split_once(','))
            .ok_or_else(invalid_image)?;
        if !head.ends_with(";base64") {
            return Err(invalid_image());
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|_| invalid_image())?;
        if image_type(&bytes).is_none() {
            return Err(invalid_image());
        }
        Ok(RoomAvatar::Image(bytes))
    }
}

/// A room avatar change in progress: the new image is stored, the room not yet committed.
pub(crate) struct StagedRoomAvatar {
    rid: String,
    etag: Option<String>,
    new_key: Option<BlobKey>,
}

impl Core {
    /// Stores a new room image (before the room points at it) and sets `room`'s `avatarETag` /
    /// `avatarOrigin`, or clears them. Returns the changes that go with the room's update (the
    /// replaced image's deletion through the outbox) and what [`Core::room_avatar_done`] needs.
    /// A new image is stored under `etag` (chosen by the caller, so a federated room's
    /// `m.room.avatar` can name it before it is stored).
    pub(crate) async fn stage_room_avatar(
        &self,
        actor: &User,
        room: &mut Room,
        change: RoomAvatar,
        etag: &str,
    ) -> CoreResult<(StagedRoomAvatar, Vec<Change>)> {
        let mut changes = Vec::new();
        if let Some(old) = room_image_key(room) {
            changes.push(self.enqueue(
                crate::file_cleanup::BLOB_DELETE,
                serde_json::json!({"key": old.as_str()}),
            ));
        }
        let staged = match change {
            RoomAvatar::Reset => {
                room.extra.remove("avatarETag");
                room.extra.remove("avatarOrigin");
                StagedRoomAvatar {
                    rid: room.id.clone(),
                    etag: None,
                    new_key: None,
                }
            }
            RoomAvatar::Image(bytes) => {
                let max = self.settings.int("FileUpload_MaxFileSize");
                let etag = etag.to_string();
                let key = room_key_of(&room.id, &etag)?;
                self.blobs
                    .put(
                        &key,
                        &mut crate::blobs::BytesSource::new(bytes),
                        (max >= 0).then_some(max as u64),
                    )
                    .await
                    .map_err(|e| blob_failure(e, max))?;
                let scanned = crate::malware::Scanned {
                    key: &key,
                    kind: "room-avatar",
                    name: room.name.as_deref().unwrap_or_default(),
                    rid: Some(&room.id),
                };
                self.scan_stored(actor, scanned).await?;
                room.extra
                    .insert("avatarETag".into(), Value::from(etag.clone()));
                room.extra
                    .insert("avatarOrigin".into(), Value::from("upload"));
                StagedRoomAvatar {
                    rid: room.id.clone(),
                    etag: Some(etag),
                    new_key: Some(key),
                }
            }
        };
        Ok((staged, changes))
    }

    /// After the room's batch: announces the new avatar, or removes the new image again when
    /// the batch failed.
    pub(crate) async fn room_avatar_done(&self, staged: StagedRoomAvatar, committed: bool) {
        if committed {
            self.publish(Event::Avatar {
                username: None,
                rid: Some(staged.rid),
                etag: staged.etag,
            });
        } else if let Some(key) = staged.new_key {
            let _ = self.blobs.delete(&key).await;
        }
    }

    /// What `/avatar/room/<rid>` shows: the uploaded image, else the room name's initials.
    pub async fn room_avatar(&self, rid: &str) -> CoreResult<Avatar> {
        let room = self.store.room_by_id(rid).await?;
        let name = room
            .as_ref()
            .and_then(|r| {
                r.fname
                    .clone()
                    .or_else(|| r.name.clone())
                    .or_else(|| r.usernames.first().cloned())
            })
            .unwrap_or_else(|| "?".to_string());
        let initials = || Avatar::Initials {
            svg: initials_svg(&name),
            etag: format!("initials-{}", initials(&name)),
        };
        let Some(etag) = room
            .as_ref()
            .and_then(|r| r.extra.get("avatarETag"))
            .and_then(Value::as_str)
        else {
            return Ok(initials());
        };
        match self.stored_image(&room_key_of(rid, etag)?, etag).await? {
            Some(image) => Ok(image),
            None => Ok(initials()),
        }
    }

    /// A stored avatar image with its type checked again on the bytes; `None` when it is gone
    /// or not an image.
    async fn stored_image(&self, key: &BlobKey, etag: &str) -> CoreResult<Option<Avatar>> {
        let image = self.open_image(key, etag.to_string(), image_type).await?;
        Ok(image.map(Avatar::Image))
    }

    /// Opens the image at `key`, its type found by `sniff` in its first bytes; `None` when it is
    /// gone or `sniff` does not recognise it.
    pub(crate) async fn open_image(
        &self,
        key: &BlobKey,
        etag: String,
        sniff: fn(&[u8]) -> Option<&'static str>,
    ) -> CoreResult<Option<StoredImage>> {
        let Some(mut body) = self
            .blobs
            .get(key, None)
            .await
            .map_err(|e| blob_failure(e, 0))?
        else {
            return Ok(None);
        };
        let first = body
            .chunks
            .next_chunk()
            .await
            .map_err(|e| blob_failure(e, 0))?
            .unwrap_or_default();
        Ok(sniff(&first).map(|content_type| StoredImage {
            content_type,
            etag,
            body: Box::new(Prepended {
                first: Some(first),
                rest: body.chunks,
            }),
        }))
    }

    /// Whose avatar `actor` may change: their own while `Accounts_AllowUserAvatarChange` is on,
    /// anyone's with `edit-other-user-avatar`.
    fn may_change_avatar(&self, actor: &User, target: &User) -> CoreResult<()> {
        let own = actor.id == target.id && self.settings.bool("Accounts_AllowUserAvatarChange");
        if own || self.authz.has(actor, "edit-other-user-avatar") {
            Ok(())
        } else {
            Err(CoreError::not_allowed("Not allowed"))
        }
    }

    /// `users.setAvatar` (an uploaded image): stored whole before the user points at it.
    pub async fn set_avatar(
        &self,
        actor: &User,
        target: &User,
        body: &mut dyn ByteSource,
    ) -> CoreResult<User> {
        self.may_change_avatar(actor, target)?;
        self.store_user_avatar(actor, target, body).await
    }

    /// Stores `body` as `target`'s avatar image (checked and scanned) and points them at it;
    /// the caller decided `actor` may (federation: a remote user's own member event).
    pub(crate) async fn store_user_avatar(
        &self,
        actor: &User,
        target: &User,
        body: &mut dyn ByteSource,
    ) -> CoreResult<User> {
        let max = self.settings.int("FileUpload_MaxFileSize");
        let etag = random_id();
        let key = key_of(&target.id, &etag)?;
        let mut sniffed = crate::file_types::Sniffed::new(body);
        self.blobs
            .put(&key, &mut sniffed, (max >= 0).then_some(max as u64))
            .await
            .map_err(|e| blob_failure(e, max))?;
        if image_type(&sniffed.head).is_none() {
            self.blobs
                .delete(&key)
                .await
                .map_err(|e| blob_failure(e, 0))?;
            return Err(invalid_image());
        }
        let scanned = crate::malware::Scanned {
            key: &key,
            kind: "user-avatar",
            name: &target.username,
            rid: None,
        };
        self.scan_stored(actor, scanned).await?;
        self.point_avatar(&target.id, Some(("upload", etag))).await
    }

    /// `users.setAvatar` with `avatarUrl` (and DDP `setAvatarFromService` with service `url`):
    /// the image is fetched through the outbound client (internal addresses refused), must
    /// answer 200 with an image type, within `FileUpload_MaxFileSize`, and is then checked and
    /// stored as an upload is.
    pub async fn set_avatar_from_url(
        &self,
        actor: &User,
        target: &User,
        url: &str,
    ) -> CoreResult<User> {
        use crate::outbound::{OutboundError, OutboundRequest};
        self.may_change_avatar(actor, target)?;
        let handling = || {
            CoreError::bad(
                "error-avatar-url-handling",
                format!(
                    "Error while handling avatar setting from a URL ({url}) for {}",
                    target.username
                ),
            )
        };
        let max = self.settings.int("FileUpload_MaxFileSize");
        let mut request = OutboundRequest::get(url);
        request.max_body = if max >= 0 { max as usize } else { usize::MAX };
        request.allowlist = self.outbound_allowlist();
        let http = self.http().map_err(|_| handling())?;
        let answer = match http.fetch(request).await {
            Ok(answer) => answer,
            Err(OutboundError::TooLarge) => {
                return Err(CoreError::bad(
                    "error-file-too-large",
                    format!("File size exceeds allowed size of {max} bytes"),
                ));
            }
            Err(e) => {
                tracing::info!(error = %e, username = %target.username, "avatar from a URL not fetched");
                return Err(handling());
            }
        };
        if answer.status != 200 {
            return Err(handling());
        }
        let declared = answer.header("content-type").unwrap_or_default();
        if !declared
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("image/")
        {
            return Err(CoreError::bad(
                "error-avatar-invalid-url",
                format!("Invalid avatar URL: {url}"),
            ));
        }
        let mut body = crate::blobs::BytesSource::new(answer.body);
        self.set_avatar(actor, target, &mut body).await
    }

    /// `users.resetAvatar`: back to the initials.
    pub async fn reset_avatar(&self, actor: &User, target: &User) -> CoreResult<User> {
        self.may_change_avatar(actor, target)?;
        self.point_avatar(&target.id, None).await
    }

    /// Back to the initials, the caller having decided it may.
    pub(crate) async fn clear_user_avatar(&self, target: &User) -> CoreResult<User> {
        self.point_avatar(&target.id, None).await
    }

    /// Sets or clears the user's `avatarOrigin` / `avatarETag`; the image it replaces is deleted
    /// once the user no longer points at it.
    async fn point_avatar(&self, user_id: &str, to: Option<(&str, String)>) -> CoreResult<User> {
        let _guard = self.lock_user(user_id).await;
        let mut user = self
            .store
            .user_by_id(user_id)
            .await?
            .ok_or_else(CoreError::invalid_user)?;
        let old_etag = user.avatar_e_tag.clone();
        match to {
            Some((origin, etag)) => {
                user.extra
                    .insert("avatarOrigin".into(), Value::from(origin));
                user.avatar_e_tag = Some(etag);
            }
            None => {
                user.extra.remove("avatarOrigin");
                user.avatar_e_tag = None;
            }
        }
        user.updated_at = Timestamp::now();
        let mut changes = vec![Change::UpdateUser(user.clone())];
        // Federated rooms learn the new `avatar_url` from a member event.
        changes.extend(self.federated_profile_changes(&user).await?);
        self.commit(changes).await?;
        self.publish(Event::Avatar {
            username: Some(user.username.clone()),
            rid: None,
            etag: user.avatar_e_tag.clone(),
        });
        if let Some(old) = old_etag {
            self.blobs
                .delete(&key_of(user_id, &old)?)
                .await
                .map_err(|e| blob_failure(e, 0))?;
        }
        Ok(user)
    }

    /// The stored image `etag` of room `rid`, if it is there.
    pub(crate) async fn room_avatar_image(
        &self,
        rid: &str,
        etag: &str,
    ) -> CoreResult<Option<StoredImage>> {
        self.open_image(&room_key_of(rid, etag)?, etag.to_string(), image_type)
            .await
    }

    /// The stored avatar image `etag` of user `user_id`, if it is there.
    pub(crate) async fn user_avatar_image(
        &self,
        user_id: &str,
        etag: &str,
    ) -> CoreResult<Option<StoredImage>> {
        self.open_image(&key_of(user_id, etag)?, etag.to_string(), image_type)
            .await
    }

    /// What `/avatar/<username>` shows: the uploaded image, else the initials.
    pub async fn avatar(&self, username: &str) -> CoreResult<Avatar> {
        let user = self.store.user_by_username(username).await?;
        let initials = || Avatar::Initials {
            svg: initials_svg(username),
            etag: format!("initials-{}", initials(username)),
        };
        let Some(user) = user else {
            return Ok(initials());
        };
        let Some(etag) = user.avatar_e_tag.as_deref() else {
            return Ok(initials());
        };
        match self.stored_image(&key_of(&user.id, etag)?, etag).await? {
            Some(image) => Ok(image),
            None => Ok(initials()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_types_come_from_the_bytes() {
        assert_eq!(image_type(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(image_type(b"\xff\xd8\xff\xe0"), Some("image/jpeg"));
        assert_eq!(image_type(b"GIF89a.."), Some("image/gif"));
        assert_eq!(image_type(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(
            image_type(b"  <?xml version=\"1.0\"?><svg>"),
            Some("image/svg+xml")
        );
        assert_eq!(image_type(b"<html><svg>"), None);
        assert_eq!(image_type(b"%PDF-1.7"), None);
        assert_eq!(image_type(b""), None);
    }

    #[test]
    fn initials_and_their_svg() {
        assert_eq!(initials("ann.lee"), "AL");
        assert_eq!(initials("bob"), "BO");
        assert_eq!(initials("__"), "?");
        let svg = initials_svg("ann.lee");
        assert!(svg.starts_with("<svg") && svg.contains(">AL</text>"));
    }
}
