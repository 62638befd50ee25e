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

/// The authenticated caller of a sensitive call, who also gave the second factor core asks for
/// there (Rocket.Chat's `twoFactorRequired` routes); rejects with core's `totp-required` /
/// `totp-invalid` errors otherwise.
pub struct SecondFactorAuth(pub Session);

impl FromRequestParts<AppState> for SecondFactorAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Auth(session) = Auth::from_request_parts(parts, state).await?;
        let Ok(TwoFactorHeaders(proof)) = TwoFactorHeaders::from_request_parts(parts, state).await;
        state
            .core
            .check_second_factor(&session, proof.as_ref())
            .await?;
        Ok(SecondFactorAuth(session))
    }
}

/// The client's address, when the server runs with connect info (the binary always does): the
/// peer's, or the one trusted proxies name (`HTTP_FORWARDED_COUNT`).
pub struct ClientAddr(pub Option<IpAddr>);

/// The client address taken from `X-Forwarded-For`, put on a request by [`forwarded_for`].
#[derive(Clone, Copy)]
struct ForwardedClient(IpAddr);

pub fn client_addr(extensions: &Extensions) -> Option<IpAddr> {
    if let Some(ForwardedClient(ip)) = extensions.get::<ForwardedClient>() {
        return Some(*ip);
    }
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip())
}

/// Rocket.Chat's `HTTP_FORWARDED_COUNT` rule: behind `count` proxies, each appending the address
/// it received from, the client is the `count`-th entry from the right of `X-Forwarded-For`.
/// With fewer entries (or one that is not an address) the peer address stands. Entries further
/// left are written by the client and never trusted. `X-Real-IP` is not read: Rocket.Chat trusts
/// it from anyone, which would let any client pick its address and escape the address lockout.
pub fn forwarded_client(header: Option<&str>, count: usize) -> Option<IpAddr> {
    if count == 0 {
        return None;
    }
    let entries: Vec<&str> = header?.split(',').map(str::trim).collect();
    let entry = entries.len().checked_sub(count).map(|i| entries[i])?;
    entry.parse().ok()
}

/// Middleware: resolves the client address through trusted proxies (`count` > 0 only).
pub async fn forwarded_for(
    axum::extract::State(count): axum::extract::State<usize>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let header = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    if let Some(ip) = forwarded_client(header, count) {
        req.extensions_mut().insert(ForwardedClient(ip));
    }
    next.run(req).await
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_count_picks_the_entry_the_last_trusted_proxy_wrote() {
        let xff = Some("6.6.6.6, 10.0.0.7, 192.0.2.1");
        assert_eq!(forwarded_client(xff, 0), None, "no proxies trusted");
        assert_eq!(forwarded_client(xff, 1), "192.0.2.1".parse().ok());
        assert_eq!(forwarded_client(xff, 2), "10.0.0.7".parse().ok());
        assert_eq!(forwarded_client(xff, 4), None, "fewer entries than proxies");
        assert_eq!(forwarded_client(Some("not-an-ip"), 1), None);
        assert_eq!(forwarded_client(None, 1), None);
        assert_eq!(forwarded_client(Some("::1"), 1), "::1".parse().ok());
    }
}
