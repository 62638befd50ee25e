//! Custom emoji (`emoji-custom.*`, served at `/emoji-custom/<name>.<ext>`): a name, aliases and
//! an image kept in the blob store under `emoji-custom/<id>/<etag>` (each upload its own key, so
//! a refused upload never touches the current image; the old one is deleted once replaced).
//! The image type is sniffed from the bytes (PNG, JPEG, GIF, WebP, SVG). Changing the catalogue
//! needs `manage-emoji`; logged-in clients hear `updateEmojiCustom` / `deleteEmojiCustom` on
//! `stream-notify-logged`.

use crate::Core;
use crate::avatars::{StoredImage, image_type};
use crate::blobs::{BlobKey, ByteSource};
use crate::error::{CoreError, CoreResult};
use crate::files::blob_failure;
use crate::store::{Change, Page, Tombstone};
use apogee_domain::{Timestamp, User, random_id};
use serde::{Deserialize, Serialize};

/// Rocket.Chat's `ICustomEmojiDescriptor`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomEmoji {
    #[serde(rename = "_id")]
    pub id: String,
    pub name: String,
    pub aliases: Vec<String>,
    pub extension: String,
    /// Which stored image is current (also the HTTP ETag).
    pub etag: String,
    #[serde(rename = "_updatedAt")]
    pub updated_at: Timestamp,
}

impl CustomEmoji {
    /// The name and every alias: none may be another emoji's name or alias.
    pub fn names(&self) -> Vec<String> {
        std::iter::once(self.name.clone())
            .chain(self.aliases.iter().cloned())
            .collect()
    }
}

/// An image to store for an emoji.
pub struct EmojiImage<'a> {
    pub body: &'a mut dyn ByteSource,
}

/// Characters Rocket.Chat refuses in names and in aliases.
fn bad_name_char(c: char) -> bool {
    c.is_whitespace() || ",:><&\"'/\\[]()|".contains(c)
}

fn key_of(id: &str, etag: &str) -> CoreResult<BlobKey> {
    BlobKey::new(&format!("emoji-custom/{id}/{etag}")).map_err(|_| CoreError::internal("emoji key"))
}

fn extension_of(content_type: &str) -> &'static str {
    match content_type {
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        _ => "svg",
    }
}

impl Core {
    fn require_manage_emoji(&self, actor: &User) -> CoreResult<()> {
        if self.authz.has(actor, "manage-emoji") {
            Ok(())
        } else {
            Err(CoreError::bad("not_authorized", "Not authorized"))
        }
    }

    /// Checks name and aliases (given as Rocket.Chat's comma-separated text) for `id`.
    async fn checked_names(
        &self,
        id: &str,
        name: &str,
        aliases: Option<&str>,
    ) -> CoreResult<(String, Vec<String>)> {
        let name = name.trim();
        if name.is_empty() {
            return Err(CoreError::bad(
                "error-the-field-is-required",
                "The field Name is required",
            ));
        }
        if name.chars().any(bad_name_char) {
            return Err(CoreError::bad(
                "error-input-is-not-a-valid-field",
                format!("{name} is not a valid name"),
            ));
        }
        let mut list: Vec<String> = Vec::new();
        for alias in aliases.unwrap_or("").split(',').map(str::trim) {
            if alias.is_empty() || alias == name || list.iter().any(|a| a == alias) {
                continue;
            }
            if alias.chars().any(bad_name_char) {
                return Err(CoreError::bad(
                    "error-input-is-not-a-valid-field",
                    format!("{alias} is not a valid alias"),
                ));
            }
            list.push(alias.to_string());
        }
        let mut names = vec![name.to_string()];
        names.extend(list.iter().cloned());
        for n in &names {
            if self
                .store
                .custom_emoji_by_name_or_alias(n)
                .await?
                .is_some_and(|other| other.id != id)
            {
                return Err(CoreError::bad(
                    "Custom_Emoji_Error_Name_Or_Alias_Already_In_Use",
                    "The custom emoji or one of its aliases is already in use",
                ));
            }
        }
        Ok((name.to_string(), list))
    }

    /// Stores an uploaded image under a new key; returns the key's etag and the extension.
    async fn store_emoji_image(
        &self,
        id: &str,
        image: EmojiImage<'_>,
    ) -> CoreResult<(String, String)> {
        let max = self.settings.int("FileUpload_MaxFileSize");
        let etag = random_id();
        let key = key_of(id, &etag)?;
        let mut sniffed = crate::file_types::Sniffed::new(image.body);
        self.blobs
            .put(&key, &mut sniffed, (max >= 0).then_some(max as u64))
            .await
            .map_err(|e| blob_failure(e, max))?;
        match image_type(&sniffed.head) {
            Some(t) => Ok((etag, extension_of(t).to_string())),
            None => {
                self.blobs
                    .delete(&key)
                    .await
                    .map_err(|e| blob_failure(e, 0))?;
                Err(CoreError::bad(
                    "error-invalid-image",
                    "Invalid image format",
                ))
            }
        }
    }

    /// Removes a blob nothing points at any more (its record's change is committed).
    async fn drop_emoji_image(&self, id: &str, etag: &str) {
        if let Ok(key) = key_of(id, etag)
            && let Err(e) = self.blobs.delete(&key).await
        {
            tracing::warn!(error = %e, "could not delete a replaced emoji image");
        }
    }

    /// `emoji-custom.create`: name, comma-separated aliases and the image.
    pub async fn create_custom_emoji(
        &self,
        actor: &User,
        name: &str,
        aliases: Option<&str>,
        image: EmojiImage<'_>,
    ) -> CoreResult<CustomEmoji> {
        self.require_manage_emoji(actor)?;
        let id = random_id();
        let (name, aliases) = self.checked_names(&id, name, aliases).await?;
        let (etag, extension) = self.store_emoji_image(&id, image).await?;
        let emoji = CustomEmoji {
            id,
            name,
            aliases,
            extension,
            etag,
            updated_at: Timestamp::now(),
        };
        if let Err(e) = self
            .commit(vec![Change::UpsertCustomEmoji(emoji.clone())])
            .await
        {
            self.drop_emoji_image(&emoji.id, &emoji.etag).await;
            return Err(e);
        }
        Ok(emoji)
    }

    /// `emoji-custom.update`: renames, re-aliases, and with an image replaces it.
    pub async fn update_custom_emoji(
        &self,
        actor: &User,
        id: &str,
        name: &str,
        aliases: Option<&str>,
        image: Option<EmojiImage<'_>>,
    ) -> CoreResult<CustomEmoji> {
        self.require_manage_emoji(actor)?;
        let existing = self
            .store
            .custom_emoji_by_id(id)
            .await?
            .ok_or_else(|| CoreError::bad("", "Emoji not found."))?;
        let (name, aliases) = self.checked_names(id, name, aliases).await?;
        let mut emoji = CustomEmoji {
            name,
            aliases,
            updated_at: Timestamp::now(),
            ..existing.clone()
        };
        if let Some(image) = image {
            let (etag, extension) = self.store_emoji_image(id, image).await?;
            emoji.etag = etag;
            emoji.extension = extension;
        }
        if let Err(e) = self
            .commit(vec![Change::UpsertCustomEmoji(emoji.clone())])
            .await
        {
            if emoji.etag != existing.etag {
                self.drop_emoji_image(id, &emoji.etag).await;
            }
            return Err(e);
        }
        if emoji.etag != existing.etag {
            self.drop_emoji_image(id, &existing.etag).await;
        }
        Ok(emoji)
    }

    /// `emoji-custom.delete`.
    pub async fn delete_custom_emoji(&self, actor: &User, id: &str) -> CoreResult<()> {
        self.require_manage_emoji(actor)?;
        let emoji =
            self.store.custom_emoji_by_id(id).await?.ok_or_else(|| {
                CoreError::bad("Custom_Emoji_Error_Invalid_Emoji", "Invalid emoji")
            })?;
        let etag = emoji.etag.clone();
        self.commit(vec![Change::DeleteCustomEmoji(emoji)]).await?;
        self.drop_emoji_image(id, &etag).await;
        Ok(())
    }

    /// `emoji-custom.all`: by name; `name_contains` is case-insensitive.
    pub async fn custom_emoji_page(
        &self,
        name_contains: Option<&str>,
        page: Page,
    ) -> CoreResult<(Vec<CustomEmoji>, i64)> {
        Ok(self.store.custom_emoji(name_contains, page).await?)
    }

    /// `emoji-custom.list`: every emoji, or with `since` those changed and removed after it.
    pub async fn custom_emoji_changes(
        &self,
        since: Option<Timestamp>,
    ) -> CoreResult<(Vec<CustomEmoji>, Vec<Tombstone>)> {
        Ok(self.store.custom_emoji_changed_since(since).await?)
    }

    /// The image of `/emoji-custom/<name>.<ext>` (the extension is not needed to find it).
    pub async fn custom_emoji_file(&self, file: &str) -> CoreResult<Option<StoredImage>> {
        let name = file.rsplit_once('.').map_or(file, |(n, _)| n);
        let Some(emoji) = self.store.custom_emoji_by_name_or_alias(name).await? else {
            return Ok(None);
        };
        self.open_image(&key_of(&emoji.id, &emoji.etag)?, emoji.etag, image_type)
            .await
    }
}
