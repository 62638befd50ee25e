//! Server info, login/logout/me and the `users.*` endpoints.

use super::registry::{Routes, get, post};
use crate::AppState;
use crate::auth::{Auth, LoginClient, MaybeAuth, SecondFactorAuth, TwoFactorHeaders};
use crate::error::{ApiError, ApiResult, ok};
use crate::params::Params;
use crate::render;
use apogee_core::accounts::{Credentials, Identifier, NewUser, UserPatch};
use apogee_core::error::{CoreError, ErrorKind};
use apogee_core::passwords::digest;
use apogee_core::store::UserQuery;
use apogee_core::two_factor::SecondFactorProof;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};

/// The Rocket.Chat version Apogee answers as; clients gate features on it.
pub const RC_VERSION: &str = "8.5.0";

pub fn routes() -> Routes {
    Routes::new()
        .route("/api/info", get(info))
        .route("/api/v1/info", get(info))
        .route("/api/v1/login", post(login))
        .route("/api/v1/logout", get(logout).post(logout))
        .route("/api/v1/me", get(me))
        .route("/api/v1/users.register", post(register))
        .route("/api/v1/users.create", post(create))
        .route("/api/v1/users.update", post(update))
        .route("/api/v1/users.delete", post(delete))
        .route("/api/v1/users.info", get(user_info))
        .route("/api/v1/users.list", get(list))
        .route("/api/v1/users.setStatus", post(set_status))
        .route("/api/v1/users.getStatus", get(get_status))
        .route("/api/v1/users.presence", get(presence))
        .route("/api/v1/users.getPresence", get(get_presence))
        .route("/api/v1/users.setActiveStatus", post(set_active))
        .route("/api/v1/users.getPreferences", get(get_preferences))
        .route("/api/v1/users.setPreferences", post(set_preferences))
        .route("/api/v1/users.createToken", post(create_token))
}

async fn info(State(s): State<AppState>, MaybeAuth(session): MaybeAuth) -> ApiResult {
    let admin = session.is_some_and(|s2| s.core.authz.sees_server_details(&s2.user));
    if !admin {
        let short: Vec<&str> = RC_VERSION.split('.').take(2).collect();
        return ok(json!({
            "version": short.join("."),
            "minimumClientVersions": {"desktop": "3.9.6", "mobile": "4.39.0"},
        }));
    }
    ok(json!({
        "version": RC_VERSION,
        "minimumClientVersions": {"desktop": "3.9.6", "mobile": "4.39.0"},
        "info": {
            "version": RC_VERSION,
            "build": {
                "arch": std::env::consts::ARCH,
                "platform": std::env::consts::OS,
                "cpus": std::thread::available_parallelism().map_or(1, |n| n.get()),
            },
            "apogee": {"version": env!("CARGO_PKG_VERSION")},
        },
    }))
}

/// Rocket.Chat's REST login failure: 401 with `status: error`.
fn login_failure(e: CoreError) -> axum::response::Response {
    if e.kind != ErrorKind::Unauthenticated {
        return ApiError(e).into_response();
    }
    // Rocket.Chat answers with the Meteor error's code: 403 for a wrong password, the
    // `error-…` code for blocked or inactive users, `Unauthorized` otherwise.
    let named = e.code.starts_with("error-") || e.code.starts_with("totp-");
    let error = if e.code == "403" {
        json!(403)
    } else if named {
        json!(e.code)
    } else {
        json!("Unauthorized")
    };
    let message = if e.code == "403" || named {
        e.message
    } else {
        "Unauthorized".into()
    };
    let mut body = json!({"status": "error", "error": error, "message": message, "success": false});
    // The second-factor errors carry `details` (method, codeGenerated, availableMethods).
    if let Some(details) = e.details {
        body["details"] = details;
    }
    (StatusCode::UNAUTHORIZED, Json(body)).into_response()
}

fn password_digest(p: &Params) -> Option<String> {
    match p.get("password")? {
        Value::String(plain) => Some(digest(plain)),
        Value::Object(o) => o
            .get("hashed")
            .or_else(|| o.get("digest"))
            .and_then(Value::as_str)
            .map(str::to_lowercase),
        _ => None,
    }
}

/// The second factor sent with a login: `code` in the body, `{totp: {login, code}}` (the
/// Meteor form), or the `x-2fa-code` / `x-2fa-method` headers.
fn login_second_factor(
    p: &Params,
    headers: Option<SecondFactorProof>,
) -> Option<SecondFactorProof> {
    let code = p
        .str("code")
        .or_else(|| {
            p.get("totp")
                .and_then(|t| t.get("code"))
                .and_then(Value::as_str)
        })
        .filter(|c| !c.is_empty());
    match code {
        Some(code) => Some(SecondFactorProof {
            code: code.to_string(),
            method: headers.and_then(|h| h.method),
        }),
        None => headers,
    }
}

async fn login(
    State(s): State<AppState>,
    LoginClient(client): LoginClient,
    TwoFactorHeaders(headers): TwoFactorHeaders,
    p: Params,
) -> ApiResult {
    let second_factor = login_second_factor(&p, headers);
    // `{totp: {login: {...}, code}}`: the login arguments are inside.
    let p = match p.get("totp").and_then(|t| t.get("login")) {
        Some(Value::Object(inner)) => Params(inner.clone()),
        _ => p,
    };
    let credentials = if let Some(token) = p.str("resume") {
        Credentials::Resume {
            token: token.to_string(),
        }
    } else {
        let identifier = if let Some(u) = p.str("username") {
            Identifier::Username(u.to_string())
        } else if let Some(e) = p.str("email") {
            Identifier::Email(e.to_string())
        } else if let Some(u) = p.get("user") {
            match u {
                Value::String(u) => Identifier::Either(u.clone()),
                Value::Object(o) => match (o.get("username"), o.get("email")) {
                    (Some(Value::String(u)), _) => Identifier::Username(u.clone()),
                    (_, Some(Value::String(e))) => Identifier::Email(e.clone()),
                    _ => return Ok(login_failure(CoreError::unauthenticated())),
                },
                _ => return Ok(login_failure(CoreError::unauthenticated())),
            }
        } else {
            return Ok(login_failure(CoreError::new(
                ErrorKind::Unauthenticated,
                "",
                "Unauthorized",
            )));
        };
        let Some(digest) = password_digest(&p) else {
            return Ok(login_failure(CoreError::new(
                ErrorKind::Unauthenticated,
                "",
                "Unauthorized",
            )));
        };
        Credentials::Password { identifier, digest }
    };
    match s
        .core
        .login_with_code(credentials, second_factor, &client)
        .await
    {
        Ok(r) => ok(json!({
            "status": "success",
            "data": {"userId": r.user.id, "authToken": r.token, "me": render::me(&s.core, &r.user)},
        })),
        Err(e) => Ok(login_failure(e)),
    }
}

async fn logout(State(s): State<AppState>, Auth(session): Auth) -> ApiResult {
    s.core.logout(&session).await?;
    ok(json!({"status": "success", "data": {"message": "You've been logged out!"}}))
}

async fn me(State(s): State<AppState>, Auth(session): Auth) -> ApiResult {
    ok(render::me(&s.core, &session.user))
}

fn new_user(p: &Params) -> Result<NewUser, ApiError> {
    Ok(NewUser {
        username: p.required("username")?.to_string(),
        email: p.str("email").map(str::to_string),
        password: p
            .str("pass")
            .or_else(|| p.str("password"))
            .map(str::to_string),
        name: p.str("name").map(str::to_string),
        roles: p.get("roles").map(|_| p.list("roles")),
        active: p.bool("active"),
        verified: p.bool("verified").unwrap_or(false),
        join_default_channels: p.bool("joinDefaultChannels").unwrap_or(true),
        require_password_change: p.bool("requirePasswordChange").unwrap_or(false),
        custom_fields: p.get("customFields").cloned(),
    })
}

async fn register(State(s): State<AppState>, p: Params) -> ApiResult {
    for key in ["username", "email", "pass", "name"] {
        p.required(key)?;
    }
    let user = s.core.register(new_user(&p)?).await?;
    ok(json!({"user": render::user(&s.core, Some(&user), &user)}))
}

async fn create(State(s): State<AppState>, Auth(session): Auth, p: Params) -> ApiResult {
    for key in ["username", "email", "password", "name"] {
        p.required(key)?;
    }
    let user = s.core.create_user(&session.user, new_user(&p)?).await?;
    ok(json!({"user": render::user(&s.core, Some(&session.user), &user)}))
}

async fn update(
    State(s): State<AppState>,
    SecondFactorAuth(session): SecondFactorAuth,
    p: Params,
) -> ApiResult {
    let user_id = p.required("userId")?;
    let data = match p.get("data") {
        Some(Value::Object(d)) => Params(d.clone()),
        _ => {
            return Err(ApiError::invalid_params(
                "must have required property 'data'",
            ));
        }
    };
    let patch = UserPatch {
        username: data.str("username").map(str::to_string),
        email: data.str("email").map(str::to_string),
        password: data.str("password").map(str::to_string),
        name: data.get("name").and_then(Value::as_str).map(str::to_string),
        roles: data.get("roles").map(|_| data.list("roles")),
        active: data.bool("active"),
        verified: data.bool("verified"),
        require_password_change: data.bool("requirePasswordChange"),
        status_text: data
            .get("statusText")
            .and_then(Value::as_str)
            .map(str::to_string),
        bio: data.get("bio").and_then(Value::as_str).map(str::to_string),
        nickname: data
            .get("nickname")
            .and_then(Value::as_str)
            .map(str::to_string),
        custom_fields: data.get("customFields").cloned(),
        // Changing one's own password here ends the other sessions, not this one.
        keep_session: Some(session.token_hash.clone()),
    };
    let user = s.core.update_user(&session.user, user_id, patch).await?;
    ok(json!({"user": render::user(&s.core, Some(&session.user), &user)}))
}

async fn target_user(s: &AppState, p: &Params) -> Result<apogee_core::domain::User, ApiError> {
    if p.str("userId").is_none() && p.str("username").is_none() {
        return Err(ApiError(CoreError::bad(
            "error-invalid-user",
            "The required \"userId\" or \"username\" param was not provided",
        )));
    }
    Ok(s.core.find_user(p.str("userId"), p.str("username")).await?)
}

async fn delete(
    State(s): State<AppState>,
    SecondFactorAuth(session): SecondFactorAuth,
    p: Params,
) -> ApiResult {
    let user = target_user(&s, &p).await?;
    let confirm = p.bool("confirmRelinquish").unwrap_or(false);
    s.core.delete_user(&session.user, &user.id, confirm).await?;
    ok(json!({}))
}

async fn user_info(State(s): State<AppState>, Auth(session): Auth, p: Params) -> ApiResult {
    let user = match p.str("email") {
        Some(email) if p.str("userId").is_none() && p.str("username").is_none() => {
            s.core.find_user_by_email(&session.user, email).await?
        }
        _ => target_user(&s, &p).await?,
    };
    ok(json!({"user": render::user(&s.core, Some(&session.user), &user)}))
}

async fn list(State(s): State<AppState>, Auth(session): Auth, p: Params) -> ApiResult {
    let page = p.page(
        s.core.settings.int("API_Default_Count"),
        s.core.settings.int("API_Upper_Count_Limit"),
    );
    let query = UserQuery {
        text: p.str("filter").map(str::to_string),
        ..Default::default()
    };
    let (users, total) = s.core.list_users(&session.user, query, page).await?;
    let users: Vec<Value> = users
        .iter()
        .map(|u| render::user(&s.core, Some(&session.user), u))
        .collect();
    ok(json!({"users": users, "count": users.len(), "offset": page.offset, "total": total}))
}

async fn set_status(State(s): State<AppState>, Auth(session): Auth, p: Params) -> ApiResult {
    if p.get("status").is_none() && p.get("message").is_none() {
        return Err(ApiError::invalid_params(
            "must have required property 'status'",
        ));
    }
    s.core
        .set_status_of(
            &session.user,
            p.str("userId"),
            p.str("status"),
            p.get("message").and_then(Value::as_str),
        )
        .await?;
    ok(json!({}))
}

async fn get_status(State(s): State<AppState>, Auth(session): Auth, p: Params) -> ApiResult {
    let user = if p.str("userId").is_some() || p.str("username").is_some() {
        target_user(&s, &p).await?
    } else {
        session.user
    };
    ok(
        json!({"_id": user.id, "status": user.status, "connectionStatus": user.status_connection, "message": user.status_text}),
    )
}

async fn get_presence(State(s): State<AppState>, Auth(session): Auth, p: Params) -> ApiResult {
    let user = if p.str("userId").is_some() || p.str("username").is_some() {
        target_user(&s, &p).await?
    } else {
        session.user
    };
    ok(
        json!({"presence": user.status, "connectionStatus": user.status_connection, "lastLogin": user.last_login}),
    )
}

async fn presence(State(s): State<AppState>, Auth(_session): Auth, p: Params) -> ApiResult {
    let ids = p.list("ids");
    let users = s.core.users_by_ids(&ids).await?;
    let users: Vec<Value> = users
        .iter()
        .map(|u| json!({"_id": u.id, "username": u.username, "name": u.name, "status": u.status, "utcOffset": u.utc_offset, "statusText": u.status_text}))
        .collect();
    ok(json!({"users": users, "full": ids.is_empty()}))
}

async fn set_active(State(s): State<AppState>, Auth(session): Auth, p: Params) -> ApiResult {
    let user_id = p.required("userId")?;
    let active = p
        .bool("activeStatus")
        .ok_or_else(|| ApiError::invalid_params("must have required property 'activeStatus'"))?;
    let user = s
        .core
        .update_user(
            &session.user,
            user_id,
            UserPatch {
                active: Some(active),
                ..Default::default()
            },
        )
        .await?;
    ok(json!({"user": {"_id": user.id, "active": user.active}}))
}

async fn get_preferences(Auth(session): Auth) -> ApiResult {
    let prefs = session
        .user
        .extra
        .get("settings")
        .and_then(|s| s.get("preferences"))
        .cloned()
        .unwrap_or(json!({}));
    ok(json!({"preferences": prefs}))
}

async fn set_preferences(State(s): State<AppState>, Auth(session): Auth, p: Params) -> ApiResult {
    let Some(Value::Object(data)) = p.get("data") else {
        return Err(ApiError::invalid_params(
            "must have required property 'data'",
        ));
    };
    let user = s
        .core
        .set_preferences(&session.user, p.str("userId"), data.clone())
        .await?;
    ok(json!({"user": {"_id": user.id, "settings": user.extra.get("settings")}}))
}

async fn create_token(
    State(s): State<AppState>,
    MaybeAuth(session): MaybeAuth,
    TwoFactorHeaders(proof): TwoFactorHeaders,
    p: Params,
) -> ApiResult {
    if let Some(session) = &session {
        s.core.check_second_factor(session, proof.as_ref()).await?;
    }
    let user = target_user(&s, &p).await?;
    let actor = session.as_ref().map(|s| &s.user);
    let r = s
        .core
        .create_token_for(actor, &user, p.str("secret"))
        .await?;
    ok(json!({"data": {"userId": r.user.id, "authToken": r.token}}))
}
