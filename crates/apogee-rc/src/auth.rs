//! `X-User-Id` / `X-Auth-Token` authentication as an extractor.

use crate::AppState;
use crate::error::ApiError;
use apogee_core::accounts::Session;
use apogee_core::error::CoreError;
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

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (uid, token) =
            credentials(parts).ok_or_else(|| ApiError(CoreError::unauthenticated()))?;
        Ok(Auth(state.core.authenticate(&uid, &token).await?))
    }
}

impl FromRequestParts<AppState> for MaybeAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match credentials(parts) {
            None => Ok(MaybeAuth(None)),
            Some((uid, token)) => Ok(MaybeAuth(state.core.authenticate(&uid, &token).await.ok())),
        }
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

/// The client's `User-Agent`, recorded with a login for device management.
pub struct UserAgent(pub Option<String>);

pub fn user_agent(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

impl<S: Send + Sync> FromRequestParts<S> for UserAgent {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(UserAgent(user_agent(&parts.headers)))
    }
}

/// Where a login comes from: address and agent.
pub struct LoginClient(pub apogee_core::accounts::Client);

impl<S: Send + Sync> FromRequestParts<S> for LoginClient {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(LoginClient(apogee_core::accounts::Client {
            addr: client_addr(&parts.extensions),
            user_agent: user_agent(&parts.headers),
        }))
    }
}
