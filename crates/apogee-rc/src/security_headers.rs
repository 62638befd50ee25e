//! Security headers on every HTTP answer, as Rocket.Chat sends them, from the settings (computed
//! again whenever a setting has changed, so that a change applies at once):
//! - `X-Content-Type-Options: nosniff`, always;
//! - `Referrer-Policy` from `Default_Referrer_Policy` (Rocket.Chat puts it in its page's `<meta>`;
//!   a header covers the API and files too);
//! - with `Iframe_Restrict_Access`, `X-Frame-Options` from `Iframe_X_Frame_Options`, and the same
//!   rule as CSP `frame-ancestors` (which browsers prefer; `X-Frame-Options` is legacy);
//! - with `Enable_CSP`, Rocket.Chat's web-client policy plus `Extra_CSP_Domains` for scripts —
//!   unless the handler already set a stricter one (files, avatars: `default-src 'none'`);
//! - `Strict-Transport-Security` when this process terminates TLS itself.

use crate::AppState;
use apogee_core::settings::Settings;
use axum::http::header::{
    CONTENT_SECURITY_POLICY, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue};
use std::sync::{Arc, Mutex};

/// One year, without `includeSubDomains`/`preload`: the server cannot know that every subdomain
/// of its host serves HTTPS.
const HSTS: &str = "max-age=31536000";

/// The values `Referrer-Policy` accepts (Rocket.Chat's select options).
const REFERRER_POLICIES: &[&str] = &[
    "no-referrer",
    "no-referrer-when-downgrade",
    "origin",
    "origin-when-cross-origin",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
    "unsafe-url",
];

/// The headers the settings call for, computed again only when a setting has changed since.
#[derive(Default)]
pub(crate) struct Cache(Mutex<Option<(u64, Arc<Policy>)>>);

/// What the settings say to send.
pub(crate) struct Policy {
    referrer: HeaderValue,
    x_frame_options: Option<HeaderValue>,
    content_security: Option<HeaderValue>,
}

impl Cache {
    fn current(&self, settings: &Settings) -> Arc<Policy> {
        // Read before the settings: a change made meanwhile leaves a newer generation, so the
        // policy stored below is computed again on the next answer.
        let generation = settings.generation();
        let mut cached = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match &*cached {
            Some((at, policy)) if *at == generation => policy.clone(),
            _ => {
                let policy = Arc::new(Policy::from_settings(settings));
                *cached = Some((generation, policy.clone()));
                policy
            }
        }
    }
}

impl Policy {
    fn from_settings(settings: &Settings) -> Policy {
        let referrer = settings.string("Default_Referrer_Policy");
        let referrer = REFERRER_POLICIES
            .iter()
            .find(|p| referrer.trim().eq_ignore_ascii_case(p))
            .unwrap_or(&"same-origin");
        let framing = settings
            .bool("Iframe_Restrict_Access")
            .then(|| Framing::parse(&settings.string("Iframe_X_Frame_Options")));
        let content_security = settings.bool("Enable_CSP").then(|| {
            let ancestors = framing.as_ref().and_then(|f| f.ancestors);
            content_security_policy(&settings.string("Extra_CSP_Domains"), ancestors)
        });
        Policy {
            referrer: HeaderValue::from_static(referrer),
            x_frame_options: framing.and_then(|f| HeaderValue::from_str(&f.x_frame_options).ok()),
            content_security: content_security.and_then(|p| HeaderValue::from_str(&p).ok()),
        }
    }
}

/// Adds the security headers to an answer; a handler's own `Referrer-Policy` or stricter
/// `Content-Security-Policy` is kept.
pub(crate) fn add(s: &AppState, h: &mut HeaderMap) {
    let policy = s.security_headers.current(&s.core.settings);
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if !h.contains_key(REFERRER_POLICY) {
        h.insert(REFERRER_POLICY, policy.referrer.clone());
    }
    if let Some(v) = &policy.x_frame_options {
        h.insert(X_FRAME_OPTIONS, v.clone());
    }
    if let Some(v) = &policy.content_security
        && !h.contains_key(CONTENT_SECURITY_POLICY)
    {
        h.insert(CONTENT_SECURITY_POLICY, v.clone());
    }
    if s.http.hsts {
        h.insert(STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
    }
}

/// `Iframe_X_Frame_Options` as the two headers say it.
struct Framing {
    x_frame_options: String,
    /// The CSP `frame-ancestors` source list, when the value has one (`sameorigin`, `deny`).
    ancestors: Option<&'static str>,
}

impl Framing {
    fn parse(value: &str) -> Framing {
        let value = value.trim();
        let ancestors = if value.eq_ignore_ascii_case("sameorigin") {
            Some("'self'")
        } else if value.eq_ignore_ascii_case("deny") {
            Some("'none'")
        } else {
            // Anything else (e.g. the obsolete `allow-from …`) is passed on as
            // X-Frame-Options only, as Rocket.Chat does.
            None
        };
        Framing {
            x_frame_options: value.to_string(),
            ancestors,
        }
    }
}

/// Rocket.Chat's policy for its web client, with the operator's extra script sources (split on
/// spaces, commas and newlines as Rocket.Chat does; anything that could end the directive is
/// dropped rather than let one setting inject others).
fn content_security_policy(extra_domains: &str, frame_ancestors: Option<&str>) -> String {
    let extra: Vec<&str> = extra_domains
        .split([' ', ',', '\n', '\r', '\t'])
        .filter(|d| !d.is_empty() && !d.contains([';', '\'', '"']))
        .collect();
    let mut script = String::from("script-src 'self' 'unsafe-eval'");
    for d in extra {
        script.push(' ');
        script.push_str(d);
    }
    let mut directives = vec![
        "default-src 'self'".to_string(),
        "connect-src *".to_string(),
        "font-src 'self' data:".to_string(),
        "frame-src *".to_string(),
        "img-src * data: blob:".to_string(),
        "media-src * data:".to_string(),
        script,
        "style-src 'self' 'unsafe-inline'".to_string(),
    ];
    if let Some(a) = frame_ancestors {
        directives.push(format!("frame-ancestors {a}"));
    }
    directives.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_carries_extra_domains_and_frame_ancestors() {
        let p = content_security_policy(
            "https://a.example, https://b.example\nbad;thing 'x'",
            Some("'self'"),
        );
        assert!(
            p.contains("script-src 'self' 'unsafe-eval' https://a.example https://b.example;"),
            "{p}"
        );
        assert!(!p.contains("bad"), "{p}");
        assert!(p.ends_with("frame-ancestors 'self'"), "{p}");
        let p = content_security_policy("", None);
        assert!(!p.contains("frame-ancestors"), "{p}");
    }

    #[test]
    fn framing_maps_x_frame_options_to_frame_ancestors() {
        assert_eq!(Framing::parse("SAMEORIGIN").ancestors, Some("'self'"));
        assert_eq!(Framing::parse("deny").ancestors, Some("'none'"));
        let other = Framing::parse("allow-from https://x.example");
        assert_eq!(other.ancestors, None);
        assert_eq!(other.x_frame_options, "allow-from https://x.example");
    }
}
