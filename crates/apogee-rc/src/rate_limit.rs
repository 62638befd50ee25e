//! Rocket.Chat's REST rate limiter: with `API_Enable_Rate_Limiter` on, each `/api/v1` route
//! allows `API_Enable_Rate_Limiter_Limit_Calls_Default` calls per
//! `API_Enable_Rate_Limiter_Limit_Time_Default` ms per client address, and says so in
//! `X-RateLimit-Limit` / `-Remaining` / `-Reset` (epoch ms). Over the limit: 429, unless the
//! caller holds `api-bypass-rate-limit`. The DDP tunnel (`method.call`) has DDP's own limits.

use crate::AppState;
use crate::auth::client_addr;
use crate::windows::Windows;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Routes Rocket.Chat declares with `rateLimiterOptions: false`.
const UNLIMITED: &[&str] = &[
    "/api/v1/method.call/{method}",
    "/api/v1/method.callAnon/{method}",
];

/// The node's REST counters.
#[derive(Default)]
pub struct RestLimits {
    windows: Windows,
}

pub async fn enforce(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let settings = &s.core.settings;
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let Some(route) =
        route.filter(|r| r.starts_with("/api/v1/") && !UNLIMITED.contains(&r.as_str()))
    else {
        return next.run(req).await;
    };
    if !settings.bool("API_Enable_Rate_Limiter") {
        return next.run(req).await;
    }
    let addr = client_addr(req.extensions())
        .map(|a| a.to_string())
        .unwrap_or_default();
    let allowed = settings
        .int("API_Enable_Rate_Limiter_Limit_Calls_Default")
        .max(0) as u64;
    let interval = settings
        .int("API_Enable_Rate_Limiter_Limit_Time_Default")
        .max(1) as u64;
    let key = format!("{addr} {} {route}", req.method());
    let hit = s
        .rest_limits
        .windows
        .hit(key, allowed, Duration::from_millis(interval));
    if hit.over && !bypasses(&s, req.headers()).await {
        let seconds = hit.reset.as_millis().div_ceil(1000);
        let body = json!({"success": false, "error": format!(
            "Error, too many requests. Please slow down. You must wait {seconds} seconds before trying this endpoint again. [error-too-many-requests]"
        )});
        let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
        headers(response.headers_mut(), allowed, hit.remaining, hit.reset);
        return response;
    }
    let mut response = next.run(req).await;
    headers(response.headers_mut(), allowed, hit.remaining, hit.reset);
    response
}

/// Whether the caller's credentials name a user with `api-bypass-rate-limit` (asked only once
/// a limit is reached, so ordinary calls cost no extra lookup).
async fn bypasses(s: &AppState, headers: &HeaderMap) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(uid), Some(token)) = (get("x-user-id"), get("x-auth-token")) else {
        return false;
    };
    match s.core.authenticate(uid, token).await {
        Ok(session) => s.core.authz.bypasses_rate_limit(&session.user),
        Err(_) => false,
    }
}

fn headers(h: &mut HeaderMap, limit: u64, remaining: u64, reset: Duration) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let reset_at = (now + reset).as_millis() as u64;
    h.insert("x-ratelimit-limit", HeaderValue::from(limit));
    h.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    h.insert("x-ratelimit-reset", HeaderValue::from(reset_at));
}
