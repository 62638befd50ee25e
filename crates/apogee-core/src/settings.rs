//! Settings: stored values over the catalogue's defaults, cached in memory for the hot path.

use crate::error::{CoreError, CoreResult};
use crate::store::{Change, SettingStore};
use apogee_domain::settings::{CATALOGUE, SettingDef, find};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct Settings {
    values: RwLock<HashMap<String, Value>>,
    /// Counts changes: what is derived from settings can be kept until it moves.
    generation: AtomicU64,
}

/// Settings with the given stored values (the rest at their defaults), e.g. for tests.
impl FromIterator<(String, Value)> for Settings {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(values: I) -> Self {
        Settings {
            values: RwLock::new(values.into_iter().collect()),
            generation: AtomicU64::new(0),
        }
    }
}

impl Settings {
    pub(crate) async fn load(store: &dyn SettingStore) -> CoreResult<Self> {
        let s = Settings::default();
        s.reload(store).await?;
        Ok(s)
    }

    pub(crate) async fn reload(&self, store: &dyn SettingStore) -> CoreResult<()> {
        let stored = store.settings().await?;
        let mut values = self.values.write().unwrap_or_else(|e| e.into_inner());
        values.clear();
        values.extend(stored);
        self.generation.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// A number that changes whenever a setting may have: a value computed from settings and
    /// stored with the generation it was read at is current while the generation is the same.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The current value: stored, else the catalogue default, else null.
    pub fn get(&self, id: &str) -> Value {
        if let Some(v) = self
            .values
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
        {
            return v.clone();
        }
        find(id).map_or(Value::Null, |d| (d.default)())
    }

    pub fn bool(&self, id: &str) -> bool {
        self.get(id).as_bool().unwrap_or(false)
    }

    pub fn int(&self, id: &str) -> i64 {
        let v = self.get(id);
        v.as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .unwrap_or(0)
    }

    pub fn string(&self, id: &str) -> String {
        match self.get(id) {
            Value::String(s) => s,
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }

    /// Updates the cache after a committed change.
    pub(crate) fn remember(&self, id: &str, value: Value) {
        self.values
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string(), value);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Every catalogue setting with its current value.
    pub fn all(&self) -> Vec<(&'static SettingDef, Value)> {
        CATALOGUE.iter().map(|d| (d, self.get(d.id))).collect()
    }
}

/// Checks a new value against the setting's type.
pub fn check_value(def: &SettingDef, value: &Value) -> CoreResult<()> {
    let ok = match def.kind {
        "boolean" => value.is_boolean(),
        "int" => value.is_i64() || value.as_str().is_some_and(|s| s.parse::<i64>().is_ok()),
        // Assets change only through `assets.setAsset` / `assets.unsetAsset`.
        "asset" => false,
        _ => value.is_string(),
    };
    if ok {
        Ok(())
    } else {
        Err(CoreError::bad(
            "error-invalid-setting-value",
            "Invalid setting value",
        ))
    }
}

impl crate::Core {
    /// Changes a setting. Needs `edit-privileged-setting`.
    pub async fn update_setting(
        &self,
        actor: &apogee_domain::User,
        id: &str,
        value: Value,
    ) -> CoreResult<()> {
        self.authz.require(actor, "edit-privileged-setting", None)?;
        let def =
            find(id).ok_or_else(|| CoreError::bad("error-invalid-setting", "Invalid setting"))?;
        check_value(def, &value)?;
        let value = match (def.kind, &value) {
            ("int", Value::String(s)) => Value::from(s.parse::<i64>().unwrap_or(0)),
            _ => value,
        };
        // Secrets (`password` settings) are recorded as changed, without their value.
        let shown = if def.kind == "password" {
            Value::from("********")
        } else {
            value.clone()
        };
        let audit = self.audit(
            "setting.changed",
            Some(actor),
            serde_json::json!({"id": id, "value": shown}),
        );
        self.commit(vec![
            Change::SetSetting {
                id: id.to_string(),
                value: value.clone(),
            },
            audit,
        ])
        .await?;
        self.settings.remember(id, value);
        Ok(())
    }

    /// `GET settings/:_id`: one setting's value. Needs `view-privileged-setting`, public or not,
    /// as in Rocket.Chat (everyone else reads public ones through `settings.public`).
    pub fn setting_for(
        &self,
        actor: &apogee_domain::User,
        id: &str,
    ) -> CoreResult<(&'static str, Value)> {
        self.authz.require(actor, "view-privileged-setting", None)?;
        let def = find(id).ok_or_else(|| {
            CoreError::new(crate::error::ErrorKind::NotFound, "", "Resource not found")
        })?;
        Ok((def.id, self.settings.get(def.id)))
    }

    /// Whether the actor may read non-public settings.
    pub fn can_view_private_settings(&self, actor: &apogee_domain::User) -> bool {
        self.authz.has(actor, "view-privileged-setting")
    }
}
