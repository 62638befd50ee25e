//! Tokens, sessions and passwords: personal access tokens (`users.*PersonalAccessToken*`),
//! device management (`sessions/*`), the password policy (`pw.getPolicy`,
//! `pw.getPolicyReset`) and one's own profile and password (`users.updateOwnBasicInfo`).

use super::registry::{Routes, get, post};
use crate::AppState;
use crate::auth::{Auth, SecondFactorAuth};
use crate::error::{ApiError, ApiResult, ok};
use crate::params::Params;
use crate::render;
use apogee_core::accounts::UserPatch;
use apogee_core::sessions::{DeviceSession, Scope};
use apogee_core::store::{SessionQuery, SessionSort};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};

pub fn routes() -> Routes {
    Routes::new()
        .route(
            "/api/v1/users.generatePersonalAccessToken",
            post(generate_token),
        )
        .route(
            "/api/v1/users.regeneratePersonalAccessToken",
            post(regenerate_token),
        )
        .route(
            "/api/v1/users.removePersonalAccessToken",
            post(remove_token),
        )
        .route("/api/v1/users.getPersonalAccessTokens", get(list_tokens))
        .route("/api/v1/sessions/list", get(list_own))
        .route("/api/v1/sessions/info", get(info_own))
        .route("/api/v1/sessions/logout.me", post(logout_own))
        .route("/api/v1/sessions/list.all", get(list_all))
        .route("/api/v1/sessions/info.admin", get(info_admin))
        .route("/api/v1/sessions/logout", post(logout_admin))
        .route("/api/v1/pw.getPolicy", get(policy))
        .route("/api/v1/pw.getPolicyReset", get(policy_reset))
        .route(
            "/api/v1/users.updateOwnBasicInfo",
            post(update_own_basic_info),
        )
}

async fn generate_token(
    State(s): State<AppState>,
    SecondFactorAuth(a): SecondFactorAuth,
    p: Params,
) -> ApiResult {
    let name = p.required("tokenName")?;
    let bypass = p.bool("bypassTwoFactor").unwrap_or(false);
    let token = s
        .core
        .generate_personal_token(&a.user, name, bypass)
        .await?;
    ok(json!({"token": token}))
}

async fn regenerate_token(
    State(s): State<AppState>,
    SecondFactorAuth(a): SecondFactorAuth,
    p: Params,
) -> ApiResult {
    let name = p.required("tokenName")?;
    let token = s.core.regenerate_personal_token(&a.user, name).await?;
    ok(json!({"token": token}))
}

async fn remove_token(
    State(s): State<AppState>,
    SecondFactorAuth(a): SecondFactorAuth,
    p: Params,
) -> ApiResult {
    let name = p.required("tokenName")?;
    s.core.remove_personal_token(&a.user, name).await?;
    ok(json!({}))
}

async fn list_tokens(State(s): State<AppState>, Auth(a): Auth) -> ApiResult {
    let tokens: Vec<Value> = s
        .core
        .personal_tokens(&a.user)
        .await?
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "createdAt": t.created_at,
                "lastTokenPart": t.last_token_part,
                "bypassTwoFactor": t.bypass_two_factor,
            })
        })
        .collect();
    ok(json!({"tokens": tokens}))
}

/// A session as device management shows it; administrators also see whose it is (`_user`).
fn session_json(d: &DeviceSession) -> Value {
    let t = &d.token;
    let device = apogee_core::domain::device::parse(t.client.user_agent.as_deref());
    let mut v = json!({
        "_id": t.session_id,
        "sessionId": t.session_id,
        "userId": t.user_id,
        "device": device,
        "ip": t.client.ip.clone().unwrap_or_default(),
        "loginAt": t.created_at,
    });
    if let Some(at) = t.last_active_at {
        v["lastActivityAt"] = json!(at);
    }
    if let Some(u) = &d.user {
        v["_user"] = json!({"name": u.name, "username": u.username, "avatarETag": u.avatar_e_tag});
    }
    v
}

/// `sort` is a JSON object such as `{"loginAt":-1}`; its first key orders the list.
fn session_query(p: &Params, scope: Scope) -> Result<SessionQuery, ApiError> {
    let sort: serde_json::Map<String, Value> = match p.str("sort") {
        None => serde_json::Map::from_iter([("loginAt".to_string(), json!(-1))]),
        Some(raw) => match serde_json::from_str(raw) {
            Ok(Value::Object(m)) => m,
            _ => return Err(ApiError::invalid_params("Invalid sort parameter provided")),
        },
    };
    let key_of = |key: &str| match key {
        "loginAt" => Some(SessionSort::LoginAt),
        "device.name" => Some(SessionSort::DeviceName),
        "device.os.name" => Some(SessionSort::OsName),
        "device.os.version" => Some(SessionSort::OsVersion),
        "_user.username" if scope == Scope::Admin => Some(SessionSort::Username),
        "_user.name" if scope == Scope::Admin => Some(SessionSort::Name),
        _ => None,
    };
    if sort.keys().any(|k| key_of(k).is_none()) {
        return Err(ApiError::failure("error-invalid-sort-keys"));
    }
    let (sort, descending) = sort
        .iter()
        .next()
        .and_then(|(k, v)| Some((key_of(k)?, v.as_i64() == Some(-1))))
        .unwrap_or((SessionSort::LoginAt, true));
    Ok(SessionQuery {
        user_id: None,
        text: p.str("filter").map(str::to_string),
        sort,
        descending,
        logged_in_after: None,
    })
}

async fn list(s: AppState, a: Auth, p: Params, scope: Scope) -> ApiResult {
    let page = p.page(
        s.core.settings.int("API_Default_Count"),
        s.core.settings.int("API_Upper_Count_Limit"),
    );
    let query = session_query(&p, scope)?;
    let (sessions, total) = s
        .core
        .device_sessions(&a.0.user, scope, query, page)
        .await?;
    let sessions: Vec<Value> = sessions.iter().map(session_json).collect();
    ok(json!({"sessions": sessions, "total": total, "count": page.count, "offset": page.offset}))
}

async fn list_own(State(s): State<AppState>, a: Auth, p: Params) -> ApiResult {
    list(s, a, p, Scope::Own).await
}

async fn list_all(State(s): State<AppState>, a: Auth, p: Params) -> ApiResult {
    list(s, a, p, Scope::Admin).await
}

async fn info(s: AppState, a: Auth, p: Params, scope: Scope) -> ApiResult {
    let id = p.required("sessionId")?;
    let session = s.core.device_session(&a.0.user, scope, id).await?;
    ok(session_json(&session))
}

async fn info_own(State(s): State<AppState>, a: Auth, p: Params) -> ApiResult {
    info(s, a, p, Scope::Own).await
}

async fn info_admin(State(s): State<AppState>, a: Auth, p: Params) -> ApiResult {
    info(s, a, p, Scope::Admin).await
}

async fn logout(s: AppState, a: Auth, p: Params, scope: Scope) -> ApiResult {
    let id = p.required("sessionId")?;
    s.core.end_device_session(&a.0, scope, id).await?;
    ok(json!({"sessionId": id}))
}

async fn logout_own(State(s): State<AppState>, a: Auth, p: Params) -> ApiResult {
    logout(s, a, p, Scope::Own).await
}

async fn logout_admin(State(s): State<AppState>, a: Auth, p: Params) -> ApiResult {
    logout(s, a, p, Scope::Admin).await
}

async fn policy(State(s): State<AppState>) -> ApiResult {
    ok(s.core.password_policy().describe())
}

/// For the reset page: the policy, to a holder of a live reset token. Anyone else gets
/// Rocket.Chat's bare 403 `unauthorized`, whatever was wrong with the token.
async fn policy_reset(State(s): State<AppState>, p: Params) -> ApiResult {
    let token = p.required("token")?;
    match s.core.password_policy_for_reset(token).await {
        Ok(policy) => ok(policy),
        Err(e) if e.kind == apogee_core::error::ErrorKind::Internal => Err(ApiError(e)),
        Err(_) => Ok((
            StatusCode::FORBIDDEN,
            Json(json!({"success": false, "error": "unauthorized"})),
        )
            .into_response()),
    }
}

/// `{data: {realname, username, email, nickname, statusText, bio, customFields,
/// newPassword, currentPassword}}`.
async fn update_own_basic_info(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let data = match p.get("data") {
        Some(Value::Object(d)) => Params(d.clone()),
        _ => {
            return Err(ApiError::invalid_params(
                "must have required property 'data'",
            ));
        }
    };
    let text = |k: &str| data.get(k).and_then(Value::as_str).map(str::to_string);
    let patch = UserPatch {
        username: data.str("username").map(str::to_string),
        email: data.str("email").map(str::to_string),
        password: data.str("newPassword").map(str::to_string),
        name: text("realname"),
        status_text: text("statusText"),
        bio: text("bio"),
        nickname: text("nickname"),
        custom_fields: data.get("customFields").cloned(),
        ..UserPatch::default()
    };
    let user = s
        .core
        .update_own_basic_info(&a, patch, data.str("currentPassword"))
        .await?;
    ok(json!({"user": render::user(&s.core, Some(&user), &user)}))
}
