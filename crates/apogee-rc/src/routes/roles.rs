//! `roles.*` beyond the list: holders, sync, custom roles, granting and revoking.

use super::registry::{Routes, get, post};
use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ok};
use crate::params::Params;
use apogee_core::domain::User;
use apogee_core::error::CoreError;
use apogee_core::roles::NewRole;
use axum::extract::State;
use serde_json::{Value, json};

pub fn routes() -> Routes {
    Routes::new()
        .route("/api/v1/roles.getUsersInRole", get(users_in_role))
        .route("/api/v1/roles.sync", get(sync))
        .route("/api/v1/roles.getUsersInPublicRoles", get(public_roles))
        .route("/api/v1/roles.create", post(create))
        .route("/api/v1/roles.update", post(update))
        .route("/api/v1/roles.addUserToRole", post(add_user))
        .route("/api/v1/roles.removeUserFromRole", post(remove_user))
        .route("/api/v1/roles.delete", post(delete))
}

/// Rocket.Chat's projection for role holders.
fn holder(u: &User) -> Value {
    json!({
        "_id": u.id, "name": u.name, "username": u.username, "emails": u.emails,
        "avatarETag": u.avatar_e_tag, "createdAt": u.created_at, "_updatedAt": u.updated_at,
    })
}

async fn users_in_role(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let role = p.str("role").ok_or_else(|| {
        ApiError(CoreError::bad(
            "error-param-not-provided",
            "Query param \"role\" is required",
        ))
    })?;
    let page = p.page(50, s.core.settings.int("API_Upper_Count_Limit"));
    let (users, total) = s
        .core
        .users_in_role(&a.user, role, p.str("roomId"), page)
        .await?;
    let users: Vec<Value> = users.iter().map(holder).collect();
    ok(json!({"users": users, "total": total}))
}

async fn sync(State(s): State<AppState>, Auth(_a): Auth, p: Params) -> ApiResult {
    let Some(since) = p.date("updatedSince")? else {
        return ok(json!({"roles": {"update": [], "remove": []}}));
    };
    let roles = s.core.roles_changed_since(since).await?;
    ok(json!({"roles": {"update": roles, "remove": []}}))
}

async fn public_roles(State(s): State<AppState>, Auth(_a): Auth) -> ApiResult {
    let users: Vec<Value> = s
        .core
        .users_in_public_roles()
        .await?
        .iter()
        .map(|u| json!({"_id": u.id, "username": u.username, "roles": u.roles}))
        .collect();
    ok(json!({"users": users}))
}

fn opt_string(p: &Params, key: &str) -> Result<Option<String>, ApiError> {
    match p.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError(CoreError::bad(
            "error-invalid-role-properties",
            "The role properties are invalid.",
        ))),
    }
}

async fn create(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let name = p.str("name").ok_or_else(|| {
        ApiError(CoreError::bad(
            "error-invalid-role-properties",
            "The role properties are invalid.",
        ))
    })?;
    let new = NewRole {
        name: name.to_string(),
        scope: opt_string(&p, "scope")?,
        description: opt_string(&p, "description")?,
        mandatory2fa: p.bool("mandatory2fa"),
    };
    let role = s.core.create_role(&a.user, new).await?;
    ok(json!({"role": role}))
}

async fn update(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let role_id = p.str("roleId").ok_or_else(|| {
        ApiError(CoreError::bad(
            "error-invalid-role-properties",
            "The role properties are invalid.",
        ))
    })?;
    let new = NewRole {
        name: opt_string(&p, "name")?.unwrap_or_default(),
        scope: opt_string(&p, "scope")?,
        description: opt_string(&p, "description")?,
        mandatory2fa: p.bool("mandatory2fa"),
    };
    let role = s.core.update_role(&a.user, role_id, new).await?;
    ok(json!({"role": role}))
}

/// The `username` of the body, or of the user named by `userId`.
async fn username(s: &AppState, p: &Params) -> Result<String, ApiError> {
    if let Some(u) = p.str("username") {
        return Ok(u.to_string());
    }
    if let Some(id) = p.str("userId") {
        return Ok(s.core.find_user(Some(id), None).await?.username);
    }
    Err(ApiError::invalid_params(
        "must have required property 'username'",
    ))
}

/// The role named by `roleId`, or by `roleName` as older clients send it.
fn role_param(p: &Params) -> Result<&str, ApiError> {
    p.str("roleId")
        .or(p.str("roleName"))
        .ok_or_else(|| ApiError::failure("error-invalid-role-properties"))
}

async fn add_user(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let username = username(&s, &p).await?;
    let role_id = role_param(&p)?;
    let role = s
        .core
        .add_user_to_role(&a.user, role_id, &username, p.str("roomId"))
        .await?;
    ok(json!({"role": role}))
}

async fn remove_user(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let username = username(&s, &p).await?;
    let role_id = role_param(&p)?;
    let role = s
        .core
        .remove_user_from_role(&a.user, role_id, &username, p.str("scope"))
        .await?;
    ok(json!({"role": role}))
}

async fn delete(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let role_id = p.required("roleId")?;
    s.core.delete_role(&a.user, role_id).await?;
    ok(json!({}))
}
