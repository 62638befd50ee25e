//! The custom sound catalogue (`custom-sounds.*`, methods `insertOrUpdateSound` /
//! `deleteCustomSound`). Records only: the audio files themselves are uploaded separately.
//! Changing the catalogue needs `manage-sounds`.

use crate::Core;
use crate::error::{CoreError, CoreResult};
use crate::store::{Change, Page};
use apogee_domain::{Timestamp, User, random_id};
use serde::{Deserialize, Serialize};

/// Rocket.Chat's `ICustomSound`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomSound {
    #[serde(rename = "_id")]
    pub id: String,
    pub name: String,
    pub extension: String,
    #[serde(rename = "_updatedAt")]
    pub updated_at: Timestamp,
}

/// Rocket.Chat's sound name rule.
fn is_valid_sound_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | ';' | '.'))
}

impl Core {
    /// `custom-sounds.list`, ordered by name.
    pub async fn custom_sounds(
        &self,
        name: Option<&str>,
        page: Page,
    ) -> CoreResult<(Vec<CustomSound>, i64)> {
        Ok(self.store.custom_sounds(name, page).await?)
    }

    /// `custom-sounds.getOne`.
    pub async fn custom_sound(&self, id: &str) -> CoreResult<Option<CustomSound>> {
        Ok(self.store.custom_sound_by_id(id).await?)
    }

    /// `insertOrUpdateSound`: creates (no `id`) or renames a sound record; returns its id.
    pub async fn save_custom_sound(
        &self,
        actor: &User,
        id: Option<&str>,
        name: &str,
        extension: &str,
    ) -> CoreResult<String> {
        if !self.authz.has(actor, "manage-sounds") {
            return Err(CoreError::bad("not_authorized", ""));
        }
        let name = name.trim();
        if name.is_empty() {
            return Err(CoreError::bad(
                "error-the-field-is-required",
                "The field Name is required",
            ));
        }
        if !is_valid_sound_name(name) {
            return Err(CoreError::bad(
                "error-input-is-not-a-valid-field",
                format!("{name} is not a valid name"),
            ));
        }
        let extension = extension.trim();
        if extension.is_empty() || !extension.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(CoreError::bad(
                "error-input-is-not-a-valid-field",
                format!("{extension} is not a valid extension"),
            ));
        }
        let existing = match id {
            Some(id) => Some(self.store.custom_sound_by_id(id).await?.ok_or_else(|| {
                CoreError::bad("Custom_Sound_Error_Invalid_Sound", "Invalid sound")
            })?),
            None => None,
        };
        if let Some(other) = self.store.custom_sound_by_name(name).await?
            && existing.as_ref().is_none_or(|e| e.id != other.id)
        {
            return Err(CoreError::bad(
                "Custom_Sound_Error_Name_Already_In_Use",
                "The custom sound name is already in use",
            ));
        }
        let sound = CustomSound {
            id: existing.map_or_else(random_id, |e| e.id),
            name: name.to_string(),
            extension: extension.to_string(),
            updated_at: Timestamp::now(),
        };
        let id = sound.id.clone();
        self.commit(vec![Change::UpsertCustomSound(sound)]).await?;
        Ok(id)
    }

    /// `deleteCustomSound`.
    pub async fn delete_custom_sound(&self, actor: &User, id: &str) -> CoreResult<()> {
        if !self.authz.has(actor, "manage-sounds") {
            return Err(CoreError::bad("not_authorized", ""));
        }
        if self.store.custom_sound_by_id(id).await?.is_none() {
            return Err(CoreError::bad(
                "Custom_Sound_Error_Invalid_Sound",
                "Invalid sound",
            ));
        }
        self.commit(vec![Change::DeleteCustomSound(id.to_string())])
            .await
    }
}
