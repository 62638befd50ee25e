//! `integrations.*`, `channels.getIntegrations` / `groups.getIntegrations`, and incoming
//! webhook calls at `/hooks/<integrationId>/<token>` (also `/hooks/<id>/<userId>/<token>`).

use super::registry::{Routes, get, post, put};
use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ok};
use crate::params::Params;
use apogee_core::error::CoreError;
use apogee_core::integrations::HOOK_DISABLED;
use apogee_core::rooms::RoomRef;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

pub fn routes() -> Routes {
    Routes::new()
        .route("/api/v1/integrations.create", post(create))
        .route("/api/v1/integrations.update", put(update))
        .route("/api/v1/integrations.remove", post(remove))
        .route("/api/v1/integrations.get", get(get_one))
        .route("/api/v1/integrations.list", get(list))
        .route("/api/v1/integrations.history", get(history))
        .route("/api/v1/channels.getIntegrations", get(room_integrations))
        .route("/api/v1/groups.getIntegrations", get(room_integrations))
        .route("/hooks/{integration_id}/{token}", post(hook).get(hook_get))
        .route(
            "/hooks/{integration_id}/{user_id}/{token}",
            post(hook_with_user).get(hook_with_user_get),
        )
}

fn page(s: &AppState, p: &Params) -> apogee_core::store::Page {
    p.page(
        s.core.settings.int("API_Default_Count"),
        s.core.settings.int("API_Upper_Count_Limit"),
    )
}

async fn create(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let integration = s.core.create_integration(&a.user, &p.0).await?;
    ok(json!({"integration": integration}))
}

async fn update(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let integration = s.core.update_integration(&a.user, &p.0).await?;
    ok(json!({"integration": integration}))
}

async fn remove(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let integration = s.core.remove_integration(&a.user, &p.0).await?;
    ok(json!({"integration": integration}))
}

async fn get_one(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let id = p
        .str("integrationId")
        .ok_or_else(|| ApiError::failure("The query parameter \"integrationId\" is required."))?;
    let integration = s.core.integration(&a.user, id, p.str("createdBy")).await?;
    ok(json!({"integration": integration}))
}

async fn list(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let page = page(&s, &p);
    let (items, total) = s
        .core
        .integrations(&a.user, p.str("name"), p.str("type"), page)
        .await?;
    ok(json!({
        "integrations": items, "offset": page.offset, "items": items.len(),
        "count": items.len(), "total": total
    }))
}

async fn history(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let page = page(&s, &p);
    let id = p.str("id").unwrap_or("");
    let (items, total) = s.core.integration_history(&a.user, id, page).await?;
    ok(json!({
        "history": items, "offset": page.offset, "items": items.len(),
        "count": items.len(), "total": total
    }))
}

async fn room_integrations(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let room = match (p.str("roomId"), p.str("roomName")) {
        (Some(id), _) => RoomRef::Id(id.to_string()),
        (None, Some(name)) => RoomRef::Name(name.to_string()),
        _ => {
            return Err(ApiError(CoreError::bad(
                "error-room-param-not-provided",
                "The parameter \"roomId\" or \"roomName\" is required",
            )));
        }
    };
    let include_all = p
        .bool("includeAllPublicChannels")
        .or_else(|| p.bool("includeAllPrivateGroups"))
        .unwrap_or(true);
    let page = page(&s, &p);
    let (items, total) = s
        .core
        .room_integrations(&a.user, &room, include_all, page)
        .await?;
    ok(json!({
        "integrations": items, "offset": page.offset, "count": items.len(), "total": total
    }))
}

/// The webhook's payload: JSON; a form whose one field is `payload` (Slack's form style) or whose
/// one field is JSON text; or the query string of a GET.
/// The 400 for a payload that cannot be read (`{"success":false,"error":…}`, as Rocket.Chat).
fn bad_payload(msg: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"success": false, "error": msg})),
    )
        .into_response()
}

fn hook_payload(headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    let json_text: std::borrow::Cow<'_, [u8]> = if form {
        let fields = crate::params::parse_query(&String::from_utf8_lossy(body));
        match fields.iter().next() {
            Some((k, Value::String(v))) if fields.len() == 1 && k == "payload" => {
                v.clone().into_bytes().into()
            }
            // One field that is not `payload`: the whole body is the JSON text, as Rocket.Chat.
            Some(_) if fields.len() == 1 => body.into(),
            _ => return Ok(fields),
        }
    } else {
        body.into()
    };
    match serde_json::from_slice::<Value>(&json_text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("the payload must be a JSON object".into()),
        Err(e) => Err(e.to_string()),
    }
}

async fn run_hook(s: &AppState, id: &str, token: &str, payload: Map<String, Value>) -> ApiResult {
    match s.core.run_incoming_webhook(id, token, payload).await {
        Ok(result) if result.separate_response => {
            let responses: Vec<Value> = result
                .responses
                .iter()
                .map(|(channel, message)| json!({"channel": channel, "message": message}))
                .collect();
            ok(json!({"responses": responses}))
        }
        Ok(_) => ok(json!({})),
        Err(e) if e.code == HOOK_DISABLED => Ok((
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"success": false, "error": "Service Unavailable"})),
        )
            .into_response()),
        Err(e) => Err(ApiError(e)),
    }
}

async fn hook(
    State(s): State<AppState>,
    Path((id, token)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let payload = match hook_payload(&headers, &body) {
        Ok(p) => p,
        Err(msg) => return Ok(bad_payload(msg)),
    };
    run_hook(&s, &id, &token, payload).await
}

async fn hook_get(
    State(s): State<AppState>,
    Path((id, token)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let payload = crate::params::parse_query(query.as_deref().unwrap_or(""));
    run_hook(&s, &id, &token, payload).await
}

/// The older URL form with the user id in it; the integration decides the user.
async fn hook_with_user(
    State(s): State<AppState>,
    Path((id, _user_id, token)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let payload = match hook_payload(&headers, &body) {
        Ok(p) => p,
        Err(msg) => return Ok(bad_payload(msg)),
    };
    run_hook(&s, &id, &token, payload).await
}

async fn hook_with_user_get(
    State(s): State<AppState>,
    Path((id, _user_id, token)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let payload = crate::params::parse_query(query.as_deref().unwrap_or(""));
    run_hook(&s, &id, &token, payload).await
}
