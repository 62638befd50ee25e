//! Two-factor authentication endpoints: TOTP (`users.enableTotp`, `users.validateTotp`,
//! `users.disableTotp`, `users.regenerateTotpCodes`, `users.totpCodesRemaining`,
//! `users.resetTOTP`) and e-mail codes (`users.2fa.enableEmail`, `users.2fa.disableEmail`,
//! `users.2fa.sendEmailCode`). Core decides; these read parameters and the `x-2fa-*` headers.

use super::registry::{Routes, get, post};
use crate::AppState;
use crate::auth::{Auth, MaybeAuth, TwoFactorHeaders};
use crate::error::{ApiError, ApiResult, ok};
use crate::params::Params;
use apogee_core::error::CoreError;
use axum::extract::State;
use serde_json::json;

pub fn routes() -> Routes {
    Routes::new()
        .route("/api/v1/users.enableTotp", post(enable_totp))
        .route("/api/v1/users.validateTotp", post(validate_totp))
        .route("/api/v1/users.disableTotp", post(disable_totp))
        .route("/api/v1/users.regenerateTotpCodes", post(regenerate_codes))
        .route("/api/v1/users.totpCodesRemaining", get(codes_remaining))
        .route("/api/v1/users.resetTOTP", post(reset_totp))
        .route("/api/v1/users.2fa.enableEmail", post(enable_email))
        .route("/api/v1/users.2fa.disableEmail", post(disable_email))
        .route("/api/v1/users.2fa.sendEmailCode", post(send_email_code))
}

async fn enable_totp(
    State(s): State<AppState>,
    Auth(session): Auth,
    TwoFactorHeaders(proof): TwoFactorHeaders,
) -> ApiResult {
    let setup = s.core.enable_totp(&session, proof.as_ref()).await?;
    ok(json!({"secret": setup.secret, "url": setup.url}))
}

async fn validate_totp(State(s): State<AppState>, Auth(session): Auth, p: Params) -> ApiResult {
    let codes = s
        .core
        .validate_totp(&session.user, p.required("code")?)
        .await?;
    ok(json!({ "codes": codes }))
}

async fn disable_totp(State(s): State<AppState>, Auth(session): Auth, p: Params) -> ApiResult {
    let disabled = s
        .core
        .disable_totp(&session.user, p.required("code")?)
        .await?;
    ok(json!({ "disabled": disabled }))
}

async fn regenerate_codes(State(s): State<AppState>, Auth(session): Auth, p: Params) -> ApiResult {
    match s
        .core
        .regenerate_totp_codes(&session.user, p.required("code")?)
        .await?
    {
        Some(codes) => ok(json!({ "codes": codes })),
        None => Err(ApiError(CoreError::bad("invalid-totp", ""))),
    }
}

async fn codes_remaining(State(s): State<AppState>, Auth(session): Auth) -> ApiResult {
    let remaining = s.core.totp_codes_remaining(&session.user).await?;
    ok(json!({ "remaining": remaining }))
}

async fn reset_totp(
    State(s): State<AppState>,
    Auth(session): Auth,
    TwoFactorHeaders(proof): TwoFactorHeaders,
    p: Params,
) -> ApiResult {
    s.core
        .reset_totp(&session, proof.as_ref(), p.required("userId")?)
        .await?;
    ok(json!({}))
}

async fn enable_email(State(s): State<AppState>, Auth(session): Auth) -> ApiResult {
    s.core.enable_email2fa(&session.user).await?;
    ok(json!({}))
}

async fn disable_email(
    State(s): State<AppState>,
    Auth(session): Auth,
    TwoFactorHeaders(proof): TwoFactorHeaders,
) -> ApiResult {
    s.core.disable_email2fa(&session, proof.as_ref()).await?;
    ok(json!({}))
}

async fn send_email_code(
    State(s): State<AppState>,
    MaybeAuth(session): MaybeAuth,
    p: Params,
) -> ApiResult {
    let email_or_username = p.str("emailOrUsername").ok_or_else(|| {
        ApiError(CoreError::bad(
            "error-parameter-required",
            "emailOrUsername is required",
        ))
    })?;
    s.core
        .send_email_code(session.as_ref().map(|s| &s.user), email_or_username)
        .await?;
    ok(json!({}))
}
