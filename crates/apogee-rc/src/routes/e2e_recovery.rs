//! E2EE key recovery with M-of-N officers, Apogee's own (`docs/E2EE-RECOVERY.md`): handlers read
//! parameters and call one core use-case (`apogee_core::e2e_recovery` decides everything).

use super::registry::{Routes, get, post};
use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ok};
use crate::params::Params;
use axum::extract::State;
use serde_json::{Value, json};

pub fn routes() -> Routes {
    Routes::new()
        .route("/api/v1/e2e.recovery.policy", get(policy))
        .route("/api/v1/e2e.recovery.officers.set", post(set_officers))
        .route("/api/v1/e2e.recovery.officer.setKey", post(set_officer_key))
        .route("/api/v1/e2e.recovery.enrol", post(enrol))
        .route("/api/v1/e2e.recovery.withdraw", post(withdraw))
        .route("/api/v1/e2e.recovery.request", post(request))
        .route("/api/v1/e2e.recovery.requests", get(requests))
        .route("/api/v1/e2e.recovery.approve", post(approve))
        .route("/api/v1/e2e.recovery.deny", post(deny))
        .route("/api/v1/e2e.recovery.material", post(material))
}

async fn policy(State(s): State<AppState>, Auth(a): Auth) -> ApiResult {
    ok(s.core.e2e_recovery_policy(&a.user).await?)
}

async fn set_officers(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let officers: Vec<String> = match p.get("officers") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| ApiError::invalid_params("officers must be an array of user ids"))?,
        _ => return Err(ApiError::invalid_params("The 'officers' param is required")),
    };
    let threshold = p
        .int("threshold")
        .ok_or_else(|| ApiError::invalid_params("The 'threshold' param is required"))?;
    let consent_text = p.required("consentText")?;
    ok(s.core
        .e2e_recovery_set_officers(&a.user, &officers, threshold, consent_text)
        .await?)
}

async fn set_officer_key(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let key = p.required("publicKey")?;
    s.core.e2e_recovery_set_officer_key(&a.user, key).await?;
    ok(json!({}))
}

async fn enrol(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let body = Value::Object(p.0);
    ok(s.core.e2e_recovery_enrol(&a.user, &body).await?)
}

async fn withdraw(State(s): State<AppState>, Auth(a): Auth) -> ApiResult {
    s.core.e2e_recovery_withdraw(&a.user).await?;
    ok(json!({}))
}

async fn request(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let key = p.required("restorePublicKey")?;
    ok(s.core.e2e_recovery_request(&a.user, key).await?)
}

async fn requests(State(s): State<AppState>, Auth(a): Auth) -> ApiResult {
    ok(s.core.e2e_recovery_requests(&a.user).await?)
}

async fn approve(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let id = p.required("requestId")?;
    let share = p.required("resealedShare")?;
    ok(s.core.e2e_recovery_approve(&a.user, id, share).await?)
}

async fn deny(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let id = p.required("requestId")?;
    s.core.e2e_recovery_deny(&a.user, id).await?;
    ok(json!({}))
}

async fn material(State(s): State<AppState>, Auth(a): Auth) -> ApiResult {
    ok(s.core.e2e_recovery_material(&a.user).await?)
}
