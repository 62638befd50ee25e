//! `X-User-Id` / `X-Auth-Token` authentication as an extractor.

use crate::AppState;
use crate::error::ApiError;
use apogee_core::accounts::Session;
use apogee_core::error::CoreError;
use apogee_core::two_factor::SecondFactorProof;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::Extensions;
use axum::http::request::Parts;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

/// The authenticated caller; rejects with Rocket.Chat's 401 when missing or invalid.
pub struct Auth(pub Session);

/// The caller if authenticated, else `None` (for routes that answer both).
pub struct MaybeAuth(pub Option<Session>);

fn header<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

/// Credentials from headers, or from the `rc_uid`/`rc_token` cookies browsers send.
fn credentials(parts: &Parts) -> Option<(String, String)> {
    if let (Some(uid), Some(token)) = (header(parts, "x-user-id"), header(parts, "x-auth-token")) {
        return Some((uid.to_string(), token.to_string()));
    }
    let cookies = header(parts, "cookie")?;
    let cookie = |name: &str| {
        cookies
            .split(';')
            .filter_map(|c| c.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    };
    Some((cookie("rc_uid")?, cookie("rc_token")?))
}

/// What core calls this request, for the mandatory-2FA rule: the route after `/api/v1/` (or
/// `/api/`), or the DDP method a `method.call/<method>` carries.
fn operation(parts: &Parts) -> &str {
    let path = parts.uri.path();
    let route = path
        .strip_prefix("/api/v1/")
        .or_else(|| path.strip_prefix("/api/"))
        .unwrap_or(path);
    route
        .strip_prefix("method.call/")
        .or_else(|| route.strip_prefix("method.callAnon/"))
        .unwrap_or(route)
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (uid, token) =
            credentials(parts).ok_or_else(|| ApiError(CoreError::unauthenticated()))?;
        let session = state.core.authenticate(&uid, &token).await?;
        state
            .core
            .require_two_factor_setup(&session.user, operation(parts))?;
        Ok(Auth(session))
    }
}

impl FromRequestParts<AppState> for MaybeAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some((uid, token)) = credentials(parts) else {
            return Ok(MaybeAuth(None));
        };
        // A caller who still has to set up a mandatory second factor counts as anonymous.
        let session = state
            .core
            .authenticate(&uid, &token)
            .await
            .ok()
            .filter(|s| {
                state
                    .core
                    .require_two_factor_setup(&s.user, operation(parts))
                    .is_ok()
            });
        Ok(MaybeAuth(session))
    }
}

/// The second factor a client sent with a sensitive call: `x-2fa-code` and `x-2fa-method`
/// (Rocket.Chat reads them only together). Core decides whether one is needed.
pub struct TwoFactorHeaders(pub Option<SecondFactorProof>);

impl<S: Send + Sync> FromRequestParts<S> for TwoFactorHeaders {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let proof = match (header(parts, "x-2fa-code"), header(parts, "x-2fa-method")) {
            (Some(code), Some(method)) => Some(SecondFactorProof {
                code: code.to_string(),
                method: Some(method.to_string()),
            }),
            _ => None,
        };
        Ok(TwoFactorHeaders(proof))
    }
}

/// The client's address, when the server runs with connect info (the binary always does).
pub struct ClientAddr(pub Option<IpAddr>);

pub fn client_addr(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip())
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(ClientAddr(client_addr(&parts.extensions)))
    }
}
