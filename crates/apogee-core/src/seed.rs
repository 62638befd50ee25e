//! First-start data: Rocket.Chat's permissions and roles, the `GENERAL` channel, the `rocket.cat`
//! bot, operator setting overrides and the initial admin. Idempotent: runs at every start.

use crate::Core;
use crate::error::CoreResult;
use crate::store::Change;
use apogee_domain::permissions::DEFAULT_PERMISSIONS;
use apogee_domain::settings::{find, parse_override};
use apogee_domain::{Room, RoomType, User};
use serde_json::Value;
use std::collections::HashSet;

pub(crate) async fn seed(core: &Core) -> CoreResult<()> {
    let store = core.store.as_ref();
    let mut changes = Vec::new();
    // Only what is missing: a release that adds permissions or roles brings them to an existing
    // database, while grants an admin has edited stay as they are.
    let stored: HashSet<String> = store
        .permissions()
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    for (id, roles) in DEFAULT_PERMISSIONS {
        if !stored.contains(*id) {
            changes.push(Change::SetPermissionRoles {
                id: id.to_string(),
                roles: roles.iter().map(|r| r.to_string()).collect(),
            });
        }
    }
    let roles: HashSet<String> = store.roles().await?.into_iter().map(|r| r.id).collect();
    changes.extend(
        Core::builtin_roles()
            .into_iter()
            .filter(|r| !roles.contains(&r.id))
            .map(Change::UpsertRole),
    );
    if store.user_by_id("rocket.cat").await?.is_none() {
        let mut cat = User::new(
            "rocket.cat".into(),
            "rocket.cat".into(),
            Some("Rocket.Cat".into()),
            "bot",
            vec!["bot".into()],
        );
        cat.status = "online".into();
        cat.status_connection = "online".into();
        changes.push(Change::InsertUser {
            user: cat,
            password_hash: None,
        });
    }
    if store.room_by_id("GENERAL").await?.is_none() {
        let mut general = Room::new(
            "GENERAL".into(),
            RoomType::Channel,
            Some("general".into()),
            None,
        );
        general.default = true;
        changes.push(Change::InsertRoom(general));
    }
    if core.settings.string("uniqueID").is_empty() {
        changes.push(Change::SetSetting {
            id: "uniqueID".into(),
            value: Value::String(apogee_domain::random_id()),
        });
    }
    if let Some(url) = &core.options.root_url {
        changes.push(Change::SetSetting {
            id: "Site_Url".into(),
            value: Value::String(url.clone()),
        });
    }
    for (id, raw) in &core.options.setting_overrides {
        match find(id).and_then(|def| parse_override(def, raw)) {
            Some(value) => changes.push(Change::SetSetting {
                id: id.clone(),
                value,
            }),
            None => {
                tracing::warn!(setting = %id, "ignoring OVERWRITE_SETTING for an unknown setting or a value of the wrong type")
            }
        }
    }
    core.commit(changes).await?;
    if let Some(admin) = &core.options.initial_admin {
        core.ensure_initial_admin(admin).await?;
    }
    Ok(())
}
