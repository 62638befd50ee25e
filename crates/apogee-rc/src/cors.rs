//! CORS for the REST API (`/api/…`) as Rocket.Chat does it, from `API_Enable_CORS` and
//! `API_CORS_Origin` (`*` or a comma-separated list of origins), read per request:
//! - a preflight (`OPTIONS` with `Origin` or `Access-Control-Request-Method`) is answered here:
//!   405 with Rocket.Chat's text when CORS is off, 403 `Invalid origin` for an origin not in the
//!   list, else 200 with the allow headers;
//! - an actual request runs as usual; the answer carries `Access-Control-Allow-Origin` (`*`, or
//!   the caller's origin with `Vary: Origin`) only when the origin is allowed, so a browser hands
//!   the response to the page only then.
//!
//! Allowed methods and headers are Rocket.Chat's, `X-User-Id`/`X-Auth-Token` among them.

use crate::AppState;
use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_REQUEST_METHOD, CONTENT_TYPE, ORIGIN, VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

const ALLOW_METHODS: &str = "GET, POST, PUT, DELETE, HEAD, PATCH";
const ALLOW_HEADERS: &str = "Origin, X-Requested-With, Content-Type, Accept, X-User-Id, X-Auth-Token, x-visitor-token, Authorization";
const DISABLED: &str = "CORS not enabled. Go to \"Admin > General > REST Api\" to enable it.";

/// What `API_CORS_Origin` says about a request's origin.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// `*`: any origin.
    Any,
    /// Listed: echo it back.
    Echo(HeaderValue),
    Refused,
}

fn verdict(setting: &str, origin: Option<&HeaderValue>) -> Verdict {
    let setting = setting.trim();
    if setting == "*" {
        return Verdict::Any;
    }
    let Some(origin) = origin else {
        return Verdict::Refused;
    };
    let Ok(text) = origin.to_str() else {
        return Verdict::Refused;
    };
    let listed = setting
        .split(',')
        .map(str::trim)
        .any(|o| !o.is_empty() && o.eq_ignore_ascii_case(text.trim()));
    if listed {
        Verdict::Echo(origin.clone())
    } else {
        Verdict::Refused
    }
}

fn allow(h: &mut HeaderMap, verdict: &Verdict) {
    match verdict {
        Verdict::Any => {
            h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        }
        Verdict::Echo(origin) => {
            h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            h.append(VARY, HeaderValue::from_static("Origin"));
        }
        Verdict::Refused => return,
    }
    h.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(ALLOW_METHODS),
    );
    h.insert(
        ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(ALLOW_HEADERS),
    );
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    let mut r = Response::new(Body::from(text));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

pub(crate) async fn handle(s: &AppState, req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    let settings = &s.core.settings;
    let origin = req.headers().get(ORIGIN).cloned();
    let preflight = req.method() == Method::OPTIONS
        && (origin.is_some() || req.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD));
    let enabled = settings.bool("API_Enable_CORS");
    if preflight {
        if !enabled {
            return plain(StatusCode::METHOD_NOT_ALLOWED, DISABLED);
        }
        let verdict = verdict(&settings.string("API_CORS_Origin"), origin.as_ref());
        if verdict == Verdict::Refused {
            return plain(StatusCode::FORBIDDEN, "Invalid origin");
        }
        let mut r = Response::new(Body::empty());
        allow(r.headers_mut(), &verdict);
        return r;
    }
    if !enabled || origin.is_none() {
        return next.run(req).await;
    }
    let verdict = verdict(&settings.string("API_CORS_Origin"), origin.as_ref());
    let mut response = next.run(req).await;
    allow(response.headers_mut(), &verdict);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_case_insensitively_from_the_list() {
        let o = HeaderValue::from_static("https://Chat.Example");
        assert_eq!(verdict("*", Some(&o)), Verdict::Any);
        assert_eq!(verdict(" * ", None), Verdict::Any);
        assert_eq!(
            verdict("https://other.example, https://chat.example", Some(&o)),
            Verdict::Echo(o.clone())
        );
        assert_eq!(verdict("https://other.example", Some(&o)), Verdict::Refused);
        assert_eq!(verdict("https://chat.example", None), Verdict::Refused);
        assert_eq!(verdict("", Some(&o)), Verdict::Refused);
    }
}
