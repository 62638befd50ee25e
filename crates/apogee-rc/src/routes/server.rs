//! Workspace-wide reads: `statistics`, `directory`, `spotlight`, `licenses.*`, the configured
//! login services, and `users.forgotPassword`.

use super::registry::{Routes, get, post};
use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ok};
use crate::params::Params;
use crate::render;
use apogee_core::directory::{DirectoryKind, DirectoryPage};
use axum::extract::State;
use serde_json::{Value, json};

pub fn routes() -> Routes {
    Routes::new()
        .route("/api/v1/statistics", get(statistics))
        .route("/api/v1/statistics.list", get(statistics_list))
        .route("/api/v1/directory", get(directory))
        .route("/api/v1/spotlight", get(spotlight))
        .route("/api/v1/licenses.info", get(license_info))
        .route("/api/v1/licenses.maxActiveUsers", get(max_active_users))
        .route(
            "/api/v1/service.configurations",
            get(service_configurations),
        )
        .route("/api/v1/settings.oauth", get(oauth_services))
        .route("/api/v1/users.forgotPassword", post(forgot_password))
}

/// `refresh` is checked by the route's schema (`isStatisticsProps`); statistics are never cached.
async fn statistics(State(s): State<AppState>, Auth(a): Auth, _p: Params) -> ApiResult {
    ok(s.core.statistics(&a.user).await?)
}

/// Statistics are computed on demand rather than snapshotted, so the list holds the current one.
async fn statistics_list(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let page = p.page(
        s.core.settings.int("API_Default_Count"),
        s.core.settings.int("API_Upper_Count_Limit"),
    );
    let current = s.core.statistics(&a.user).await?;
    let items: Vec<Value> = std::iter::once(current)
        .skip(page.offset as usize)
        .take(page.count as usize)
        .collect();
    ok(json!({"statistics": items, "count": items.len(), "offset": page.offset, "total": 1}))
}

/// `query` is a JSON object `{text, type, workspace}`.
async fn directory(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let query = match p.get("query") {
        None => Value::Object(Default::default()),
        Some(Value::String(raw)) => serde_json::from_str::<Value>(raw)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| ApiError::invalid_params("Invalid query parameter provided"))?,
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => return Err(ApiError::invalid_params("Invalid query parameter provided")),
    };
    let kind = match query
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("channels")
    {
        "channels" => DirectoryKind::Channels,
        "users" => DirectoryKind::Users,
        _ => return Err(ApiError::failure("Please verify the parameters")),
    };
    let text = query
        .get("text")
        .and_then(Value::as_str)
        .map(str::to_string);
    let page = p.page(
        s.core.settings.int("API_Default_Count"),
        s.core.settings.int("API_Upper_Count_Limit"),
    );
    let (result, total): (Vec<Value>, i64) =
        match s.core.directory(&a.user, kind, text, page).await? {
            DirectoryPage::Rooms(rooms, total) => {
                (rooms.iter().map(render::to_json).collect(), total)
            }
            DirectoryPage::Users(users, total) => (
                users
                    .iter()
                    .map(|u| {
                        json!({"_id": u.id, "username": u.username, "name": u.name,
                               "createdAt": u.created_at, "avatarETag": u.avatar_e_tag})
                    })
                    .collect(),
                total,
            ),
        };
    ok(json!({"result": result, "count": result.len(), "offset": page.offset, "total": total}))
}

async fn spotlight(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let text = p.required("query")?;
    let (users, rooms) = s.core.spotlight(&a.user, text).await?;
    let users: Vec<Value> = users
        .iter()
        .map(|u| {
            json!({"_id": u.id, "username": u.username, "name": u.name, "status": u.status,
                   "statusText": u.status_text, "avatarETag": u.avatar_e_tag})
        })
        .collect();
    let rooms: Vec<Value> = rooms
        .iter()
        .map(|r| json!({"_id": r.id, "name": r.name, "fname": r.fname, "t": r.t, "prid": r.prid, "teamMain": r.team_main}))
        .collect();
    ok(json!({"users": users, "rooms": rooms}))
}

async fn license_info(State(s): State<AppState>, Auth(_a): Auth) -> ApiResult {
    ok(json!({"license": s.core.license_info()}))
}

async fn max_active_users(State(s): State<AppState>, Auth(_a): Auth) -> ApiResult {
    let active = s.core.active_user_count().await?;
    ok(json!({"maxActiveUsers": Value::Null, "activeUsers": active}))
}

async fn service_configurations(State(s): State<AppState>) -> ApiResult {
    ok(json!({"configurations": s.core.login_services()}))
}

async fn oauth_services(State(s): State<AppState>) -> ApiResult {
    ok(json!({"services": s.core.login_services()}))
}

async fn forgot_password(State(s): State<AppState>, p: Params) -> ApiResult {
    let email = p
        .str("email")
        .ok_or_else(|| ApiError::failure("The 'email' param is required"))?;
    s.core.forgot_password(email).await?;
    ok(json!({}))
}
