//! Rocket.Chat JSON shapes for records, where the wire differs from the stored document.

use apogee_core::Core;
use apogee_core::domain::{Subscription, User};
use serde_json::{Value, json};

/// A user as other users see them: no e-mail addresses unless the viewer may see full info.
pub fn user(core: &Core, viewer: Option<&User>, u: &User) -> Value {
    let mut v = serde_json::to_value(u).unwrap_or(Value::Null);
    let full = viewer.is_some_and(|viewer| core.authz.sees_full_user(viewer, u));
    if !full && let Value::Object(map) = &mut v {
        // Which second factors someone uses is theirs and the administrators' business.
        map.remove("services");
        map.remove("emails");
        map.remove("lastLogin");
        map.remove("requirePasswordChange");
        map.remove("requirePasswordChangeReason");
    }
    v
}

/// `GET /api/v1/me` and the `me` of a login answer (`IMeApiUser`).
pub fn me(core: &Core, u: &User) -> Value {
    let mut v = serde_json::to_value(u).unwrap_or(Value::Null);
    let site = core.settings.string("Site_Url");
    v["avatarUrl"] = json!(format!(
        "{}/avatar/{}",
        site.trim_end_matches('/'),
        u.username
    ));
    v["isOAuthUser"] = json!(false);
    if let Some(email) = u.primary_email() {
        v["email"] = json!(email);
    }
    if v.get("settings").is_none_or(|s| !s.is_object()) {
        v["settings"] = json!({});
    }
    if v["settings"].get("preferences").is_none() {
        v["settings"]["preferences"] = json!({});
    }
    v["services"] = json!({
        "password": {"exists": true},
        "totp": {"enabled": u.totp_enabled()},
        "email2fa": {"enabled": u.email2fa_enabled()},
    });
    v
}

/// A member entry for `*.members`: `{_id, username, name, status}`.
pub fn member(u: &User) -> Value {
    json!({"_id": u.id, "username": u.username, "name": u.name, "status": u.status, "_updatedAt": u.updated_at})
}

pub fn subscription(s: &Subscription) -> Value {
    serde_json::to_value(s).unwrap_or(Value::Null)
}

pub fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}
