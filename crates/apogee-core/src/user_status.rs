//! Custom user statuses (`custom-user-status.*`): named presets over the four presence states.
//! Changing them needs `manage-user-status`.

use crate::Core;
use crate::error::{CoreError, CoreResult, ErrorKind};
use crate::store::{Change, Page};
use apogee_domain::{Timestamp, User, random_id};
use serde::{Deserialize, Serialize};

/// Rocket.Chat's `ICustomUserStatus`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomUserStatus {
    #[serde(rename = "_id")]
    pub id: String,
    pub name: String,
    pub status_type: String,
    #[serde(rename = "_updatedAt")]
    pub updated_at: Timestamp,
}

const STATUS_TYPES: &[&str] = &["online", "away", "busy", "offline"];

impl Core {
    /// `custom-user-status.list`, ordered by name.
    pub async fn custom_user_statuses(
        &self,
        name: Option<&str>,
        id: Option<&str>,
        page: Page,
    ) -> CoreResult<(Vec<CustomUserStatus>, i64)> {
        if let Some(id) = id {
            let found: Vec<_> = self
                .store
                .custom_user_status_by_id(id)
                .await?
                .into_iter()
                .filter(|s| name.is_none_or(|n| s.name.to_lowercase().contains(&n.to_lowercase())))
                .collect();
            let total = found.len() as i64;
            let items = found
                .into_iter()
                .skip(page.offset as usize)
                .take(page.count as usize)
                .collect();
            return Ok((items, total));
        }
        Ok(self.store.custom_user_statuses(name, page).await?)
    }

    /// `custom-user-status.create` (no `id`) and `custom-user-status.update`.
    pub async fn save_custom_user_status(
        &self,
        actor: &User,
        id: Option<&str>,
        name: &str,
        status_type: Option<&str>,
    ) -> CoreResult<CustomUserStatus> {
        if !self.authz.has(actor, "manage-user-status") {
            return Err(CoreError::bad("not_authorized", ""));
        }
        let name = name.trim();
        if name.is_empty() {
            return Err(CoreError::bad(
                "error-the-field-is-required",
                "The field Name is required",
            ));
        }
        if name
            .chars()
            .any(|c| matches!(c, '<' | '>' | '&' | '"' | '\'' | '/' | '\\'))
        {
            return Err(CoreError::bad(
                "error-input-is-not-a-valid-field",
                format!("{name} is not a valid name"),
            ));
        }
        let status_type = status_type.unwrap_or("").trim();
        if !status_type.is_empty() && !STATUS_TYPES.contains(&status_type) {
            return Err(CoreError::bad(
                "error-input-is-not-a-valid-field",
                format!("{status_type} is not a valid status type"),
            ));
        }
        let existing =
            match id {
                Some(id) => Some(self.store.custom_user_status_by_id(id).await?.ok_or_else(
                    || {
                        CoreError::new(
                            ErrorKind::BadRequest,
                            "",
                            format!("No custom user status found with the id of \"{id}\"."),
                        )
                    },
                )?),
                None => None,
            };
        if let Some(other) = self.store.custom_user_status_by_name(name).await?
            && existing.as_ref().is_none_or(|e| e.id != other.id)
        {
            return Err(CoreError::bad(
                "Custom_User_Status_Error_Name_Already_In_Use",
                "The custom user status name is already in use",
            ));
        }
        let status = CustomUserStatus {
            id: existing.map_or_else(random_id, |e| e.id),
            name: name.to_string(),
            status_type: status_type.to_string(),
            updated_at: Timestamp::now(),
        };
        self.commit(vec![Change::UpsertCustomUserStatus(status.clone())])
            .await?;
        Ok(status)
    }

    /// `custom-user-status.delete`.
    pub async fn delete_custom_user_status(&self, actor: &User, id: &str) -> CoreResult<()> {
        if !self.authz.has(actor, "manage-user-status") {
            return Err(CoreError::bad("not_authorized", ""));
        }
        if self.store.custom_user_status_by_id(id).await?.is_none() {
            return Err(CoreError::bad(
                "Custom_User_Status_Error_Invalid_User_Status",
                "Invalid user status",
            ));
        }
        self.commit(vec![Change::DeleteCustomUserStatus(id.to_string())])
            .await
    }
}
