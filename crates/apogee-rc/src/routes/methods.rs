//! The DDP method tunnel over REST: `method.call/:method` and `method.callAnon/:method`.
//! The body is `{message: "<DDP method message as JSON>"}`; the answer is
//! `{message: "<DDP result message as JSON>", success: true}`, with method failures inside the
//! result as a `Meteor.Error`. Methods run through the DDP dispatcher (`crate::ddp::methods`),
//! so both transports share one implementation.

use super::registry::{Routes, post};
use crate::AppState;
use crate::auth::{Auth, LoginClient, MaybeAuth};
use crate::ddp::{self, methods::Ctx};
use crate::error::{ApiError, ApiResult, ok};
use crate::params::Params;
use apogee_core::accounts::{Client, Session};
use apogee_core::error::ErrorKind;
use axum::extract::State;
use serde_json::{Value, json};

pub fn routes() -> Routes {
    Routes::new()
        .route("/api/v1/method.call/{method}", post(call))
        .route("/api/v1/method.callAnon/{method}", post(call_anon))
}

async fn call(
    State(s): State<AppState>,
    Auth(a): Auth,
    LoginClient(client): LoginClient,
    p: Params,
) -> ApiResult {
    tunnel(&s, Some(&a), client, &p).await
}

async fn call_anon(
    State(s): State<AppState>,
    MaybeAuth(a): MaybeAuth,
    LoginClient(client): LoginClient,
    p: Params,
) -> ApiResult {
    tunnel(&s, a.as_ref(), client, &p).await
}

/// `client` is where a login or password reset through the tunnel comes from.
async fn tunnel(s: &AppState, user: Option<&Session>, client: Client, p: &Params) -> ApiResult {
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
    let session = user.cloned();
    let mut ctx = Ctx::for_user(session);
    ctx.addr = client.addr;
    ctx.user_agent = client.user_agent;
    let result = ddp::methods::call(&s.core, &mut ctx, method, &params).await;
    let reply = match result {
        Ok(Value::Null) => json!({"msg": "result", "id": id}),
        Ok(result) => json!({"msg": "result", "id": id, "result": result}),
        Err(e) if e.kind == ErrorKind::Internal => return Err(ApiError(e)),
        Err(e) => json!({"msg": "result", "id": id, "error": ddp::ejson::meteor_error(&e)}),
    };
    let reply = ddp::ejson::to_ejson(reply);
    ok(json!({"message": reply.to_string()}))
}
