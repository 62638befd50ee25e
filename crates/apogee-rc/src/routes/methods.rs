//! The DDP method tunnel over REST: `method.call/:method` and `method.callAnon/:method`.
//! The body is `{message: "<DDP method message as JSON>"}`; the answer is
//! `{message: "<DDP result message as JSON>", success: true}`, with method failures inside the
//! result as a `Meteor.Error`. Each known method maps to one core use-case.

use crate::AppState;
use crate::auth::{Auth, MaybeAuth};
use crate::error::{ApiError, ApiResult, ok};
use crate::params::Params;
use apogee_core::domain::User;
use apogee_core::error::{CoreError, ErrorKind};
use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/method.call/{method}", post(call))
        .route("/api/v1/method.callAnon/{method}", post(call_anon))
}

async fn call(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    tunnel(&s, Some(&a.user), &p).await
}

async fn call_anon(State(s): State<AppState>, MaybeAuth(a): MaybeAuth, p: Params) -> ApiResult {
    tunnel(&s, a.as_ref().map(|a| &a.user), &p).await
}

async fn tunnel(s: &AppState, user: Option<&User>, p: &Params) -> ApiResult {
    p.validate("isMeteorCall")?;
    let message = p.get("message").and_then(Value::as_str).unwrap_or_default();
    let data: Value =
        serde_json::from_str(message).map_err(|_| ApiError::failure("Invalid method call"))?;
    if crate::validate::validate("isMethodCallProps", &data).is_err() {
        return Err(ApiError::failure("Invalid method call"));
    }
    let id = data["id"].clone();
    let method = data["method"].as_str().unwrap_or_default();
    let params = data["params"].as_array().cloned().unwrap_or_default();
    let result = match user {
        Some(user) => dispatch(s, user, method, &params).await,
        None => Err(CoreError::bad("not_authorized", "")),
    };
    let reply = match result {
        Ok(result) => json!({"msg": "result", "id": id, "result": result}),
        Err(e) if e.kind == ErrorKind::Internal => return Err(ApiError(e)),
        Err(e) => json!({"msg": "result", "id": id, "error": meteor_error(&e)}),
    };
    ok(json!({"message": reply.to_string()}))
}

/// A core error as the `Meteor.Error` a DDP client receives.
fn meteor_error(e: &CoreError) -> Value {
    let code = if e.code.is_empty() {
        Value::from(e.message.clone())
    } else if let Ok(n) = e.code.parse::<i64>() {
        Value::from(n)
    } else {
        Value::from(e.code.clone())
    };
    let reason = (!e.message.is_empty()).then(|| e.message.clone());
    let message = match (&reason, e.code.is_empty()) {
        (Some(r), false) => format!("{r} [{}]", e.code),
        (Some(r), true) => r.clone(),
        (None, _) => format!("[{}]", e.code),
    };
    let mut v = json!({"isClientSafe": true, "error": code, "message": message, "errorType": "Meteor.Error"});
    if let Some(r) = reason {
        v["reason"] = json!(r);
    }
    if let Some(d) = &e.details {
        v["details"] = d.clone();
    }
    v
}

fn bad_params(method: &str) -> CoreError {
    CoreError::bad(
        "error-invalid-params",
        format!("Invalid parameters for {method}"),
    )
}

async fn dispatch(
    s: &AppState,
    user: &User,
    method: &str,
    params: &[Value],
) -> Result<Value, CoreError> {
    match method {
        "insertOrUpdateSound" => {
            let data = params
                .first()
                .and_then(Value::as_object)
                .ok_or_else(|| bad_params(method))?;
            let text = |k: &str| data.get(k).and_then(Value::as_str);
            let id = text("_id").filter(|i| !i.is_empty());
            let name = text("name").unwrap_or_default();
            let extension = text("extension").unwrap_or_default();
            let id = s.core.save_custom_sound(user, id, name, extension).await?;
            Ok(json!(id))
        }
        "deleteCustomSound" => {
            let id = params
                .first()
                .and_then(Value::as_str)
                .ok_or_else(|| bad_params(method))?;
            s.core.delete_custom_sound(user, id).await?;
            Ok(json!(true))
        }
        _ => Err(CoreError::bad(
            "404",
            format!("Method '{method}' not found"),
        )),
    }
}
