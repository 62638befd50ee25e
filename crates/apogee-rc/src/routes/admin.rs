//! Settings, permissions and roles.

use super::registry::{Routes, get, post};
use crate::AppState;
use crate::auth::{Auth, SecondFactorAuth};
use crate::error::{ApiError, ApiResult, ok};
use crate::params::Params;
use apogee_core::authz::PermissionGrant;
use apogee_core::error::CoreError;
use axum::extract::{Path, State};
use serde_json::{Value, json};

pub fn routes() -> Routes {
    Routes::new()
        .route("/api/v1/settings.public", get(public_settings))
        .route("/api/v1/settings", get(all_settings))
        .route("/api/v1/settings/{id}", get(get_setting).post(set_setting))
        .route("/api/v1/permissions.listAll", get(permissions))
        .route("/api/v1/permissions.update", post(update_permissions))
        .route("/api/v1/roles.list", get(roles))
}

/// Settings filtered by `_id=a,b,c`, paged.
fn settings_answer(s: &AppState, p: &Params, public_only: bool) -> ApiResult {
    let wanted = p.list("_id");
    let page = p.page(s.core.settings.int("API_Default_Count"), i64::MAX);
    let all: Vec<Value> = s
        .core
        .settings
        .all()
        .into_iter()
        .filter(|(def, _)| !public_only || def.public)
        .filter(|(def, _)| wanted.is_empty() || wanted.iter().any(|w| w == def.id))
        .map(|(def, value)| json!({"_id": def.id, "value": value, "type": def.kind, "public": def.public, "group": def.group}))
        .collect();
    let total = all.len();
    let settings: Vec<Value> = all
        .into_iter()
        .skip(page.offset as usize)
        .take(page.count as usize)
        .collect();
    ok(
        json!({"settings": settings, "count": settings.len(), "offset": page.offset, "total": total}),
    )
}

async fn public_settings(State(s): State<AppState>, p: Params) -> ApiResult {
    settings_answer(&s, &p, true)
}

async fn all_settings(State(s): State<AppState>, Auth(session): Auth, p: Params) -> ApiResult {
    settings_answer(&s, &p, !s.core.can_view_private_settings(&session.user))
}

async fn get_setting(
    State(s): State<AppState>,
    Auth(session): Auth,
    Path(id): Path<String>,
) -> ApiResult {
    let (id, value) = s.core.setting_for(&session.user, &id)?;
    ok(json!({"_id": id, "value": value}))
}

async fn set_setting(
    State(s): State<AppState>,
    SecondFactorAuth(session): SecondFactorAuth,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult {
    let value =
        p.0.get("value")
            .cloned()
            .ok_or_else(|| ApiError::invalid_params("must have required property 'value'"))?;
    s.core.update_setting(&session.user, &id, value).await?;
    ok(json!({}))
}

fn permission_list(s: &AppState) -> Vec<Value> {
    s.core
        .authz
        .all()
        .into_iter()
        .map(|(id, roles)| json!({"_id": id, "roles": roles, "_updatedAt": apogee_core::domain::Timestamp::now()}))
        .collect()
}

async fn permissions(State(s): State<AppState>, Auth(_session): Auth, p: Params) -> ApiResult {
    p.date("updatedSince")?;
    ok(json!({"update": permission_list(&s), "remove": []}))
}

async fn update_permissions(
    State(s): State<AppState>,
    SecondFactorAuth(session): SecondFactorAuth,
    p: Params,
) -> ApiResult {
    let Some(Value::Array(items)) = p.get("permissions") else {
        return Err(ApiError::invalid_params(
            "must have required property 'permissions'",
        ));
    };
    let mut grants = Vec::new();
    for item in items {
        let id = item.get("_id").and_then(Value::as_str);
        let roles = item.get("roles").and_then(Value::as_array);
        let (Some(id), Some(roles)) = (id, roles) else {
            return Err(ApiError(CoreError::bad(
                "error-invalid-permission",
                "Invalid permission",
            )));
        };
        let roles = roles
            .iter()
            .filter_map(|r| r.as_str().map(str::to_string))
            .collect();
        grants.push(PermissionGrant {
            id: id.to_string(),
            roles,
        });
    }
    s.core.update_permissions(&session.user, grants).await?;
    ok(json!({"permissions": permission_list(&s)}))
}

async fn roles(State(s): State<AppState>, Auth(_session): Auth) -> ApiResult {
    ok(json!({"roles": s.core.roles().await?}))
}
