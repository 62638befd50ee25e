//! User avatars: an uploaded image kept in the blob store under `avatars/<user id>`, or the
//! user's initials drawn as SVG. The image type is sniffed from the bytes, never taken from the
//! client; anything that is not PNG, JPEG, GIF, WebP or SVG is refused and nothing is kept.

use crate::Core;
use crate::blobs::{BlobKey, ByteSource};
use crate::error::{CoreError, CoreResult};
use crate::files::blob_failure;
use crate::store::Change;
use apogee_domain::{Timestamp, User, random_id};
use async_trait::async_trait;
use serde_json::Value;

/// What `/avatar/<username>` serves.
pub enum Avatar {
    /// An uploaded image: its type (checked again on the stored bytes), ETag and contents.
    Image {
        content_type: &'static str,
        etag: String,
        body: Box<dyn ByteSource>,
    },
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

fn initials_svg(username: &str) -> String {
    const COLOURS: &[&str] = &[
        "#F44336", "#E91E63", "#9C27B0", "#673AB7", "#3F51B5", "#2196F3", "#03A9F4", "#00BCD4",
        "#009688", "#4CAF50", "#8BC34A", "#CDDC39", "#FFC107", "#FF9800", "#FF5722", "#795548",
    ];
    let hash = username
        .bytes()
        .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
    let text: String = initials(username)
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

impl Core {
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
            return Err(CoreError::bad(
                "error-invalid-image",
                "Invalid image format",
            ));
        }
        self.point_avatar(&target.id, Some(("upload", etag))).await
    }

    /// `users.resetAvatar`: back to the initials.
    pub async fn reset_avatar(&self, actor: &User, target: &User) -> CoreResult<User> {
        self.may_change_avatar(actor, target)?;
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
        self.commit(vec![Change::UpdateUser(user.clone())]).await?;
        if let Some(old) = old_etag {
            self.blobs
                .delete(&key_of(user_id, &old)?)
                .await
                .map_err(|e| blob_failure(e, 0))?;
        }
        Ok(user)
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
        let (Some(etag), Some(mut body)) = (
            user.avatar_e_tag.clone(),
            self.blobs
                .get(
                    &key_of(&user.id, user.avatar_e_tag.as_deref().unwrap_or("none"))?,
                    None,
                )
                .await
                .map_err(|e| blob_failure(e, 0))?,
        ) else {
            return Ok(initials());
        };
        let first = body
            .chunks
            .next_chunk()
            .await
            .map_err(|e| blob_failure(e, 0))?
            .unwrap_or_default();
        match image_type(&first) {
            Some(content_type) => Ok(Avatar::Image {
                content_type,
                etag,
                body: Box::new(Prepended {
                    first: Some(first),
                    rest: body.chunks,
                }),
            }),
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
