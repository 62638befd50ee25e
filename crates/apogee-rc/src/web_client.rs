//! Serves the embedded browser client (the `apogee-web` crate's files) for every path no route
//! answers:
//! - a built file by its path: Vite's content-hashed `/static/…` cached for a year (`immutable`),
//!   other files (favicon) revalidated each time;
//! - for GET/HEAD of any other path that is not reserved for the server and does not look like a
//!   file, `index.html`, never cached, so client routes (`/home`, `/channel/general`,
//!   `/direct/<rid>`, `/admin/users`, …) and deep links from other clients load the client, which
//!   routes itself;
//! - the rest (`/api/…` that no route matched, `/sockjs/…`, missing files, other methods) keeps
//!   Rocket.Chat's JSON 404.
//!
//! Text files are stored gzipped too and sent so to clients that accept it.

use axum::http::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

/// One embedded file: (URL path such as `/static/index-3fa8.js`, contents, gzipped contents or
/// empty when not worth compressing).
pub type EmbeddedFile = (&'static str, &'static [u8], &'static [u8]);

/// The client to serve: the build's file table.
#[derive(Clone, Copy)]
pub struct WebClient {
    pub files: &'static [EmbeddedFile],
}

impl std::fmt::Debug for WebClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebClient({} files)", self.files.len())
    }
}

/// Path prefixes that belong to the server: never answered with the client's page, so a
/// mistyped API call gets an API error, not HTML.
const RESERVED: &[&str] = &[
    "/api",
    "/websocket",
    "/sockjs",
    "/file-upload",
    "/avatar",
    "/ufs",
    "/_oauth",
    "/_timesync",
    "/livechat",
    "/emoji-custom",
    "/custom-sounds",
    "/assets",
    "/hooks",
];

const INDEX: &str = "/index.html";
/// Where Vite puts the content-hashed files (`build.assetsDir`).
const CLIENT_ASSETS: &str = "/static/";
const NEVER_CACHE: &str = "no-store, max-age=0";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// The answer for `method path`, or `None` when the client has nothing for it (the caller
/// answers 404 as the API does).
pub fn serve(
    client: &WebClient,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Option<Response> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let gzip_ok = accepts_gzip(headers);
    if path != INDEX
        && let Some(file) = client.files.iter().find(|(p, _, _)| *p == path)
    {
        let cache = if path.starts_with(CLIENT_ASSETS) {
            IMMUTABLE
        } else {
            REVALIDATE
        };
        return Some(respond(file, cache, gzip_ok, method));
    }
    if !is_client_route(path) {
        return None;
    }
    let index = client.files.iter().find(|(p, _, _)| *p == INDEX)?;
    Some(respond(index, NEVER_CACHE, gzip_ok, method))
}

/// A path the client's router may own: not reserved for the server, and not a file name
/// (a missing `/favicon.ico` is a 404, not a page).
fn is_client_route(path: &str) -> bool {
    let reserved = RESERVED.iter().any(|r| {
        path == *r
            || path
                .strip_prefix(r)
                .is_some_and(|rest| rest.starts_with('/'))
    });
    let last = path.rsplit('/').next().unwrap_or_default();
    !reserved && !last.contains('.')
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or_default().trim();
            // `gzip;q=0` refuses it.
            let refused = parts.any(|p| p.trim().replace(' ', "") == "q=0");
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

fn respond(file: &EmbeddedFile, cache: &'static str, gzip_ok: bool, method: &Method) -> Response {
    let (path, plain, gz) = *file;
    let (body, gzipped) = if gzip_ok && !gz.is_empty() {
        (gz, true)
    } else {
        (plain, false)
    };
    let mut h = HeaderMap::new();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type(path)));
    h.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    if !gz.is_empty() {
        h.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    if gzipped {
        h.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    let body = if method == Method::HEAD {
        &[][..]
    } else {
        body
    };
    (StatusCode::OK, h, body).into_response()
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static FILES: &[EmbeddedFile] = &[
        ("/index.html", b"<html>", b"gz-index"),
        ("/static/index-abc123.js", b"js", b""),
        ("/favicon.svg", b"<svg/>", b""),
    ];
    const CLIENT: WebClient = WebClient { files: FILES };

    fn get(path: &str, headers: &HeaderMap) -> Option<Response> {
        serve(&CLIENT, &Method::GET, path, headers)
    }

    fn header(r: &Response, name: axum::http::HeaderName) -> &str {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    #[test]
    fn client_routes_get_the_uncached_index_and_reserved_paths_do_not() {
        let none = HeaderMap::new();
        for path in [
            "/",
            "/home",
            "/channel/general",
            "/direct/abc",
            "/admin/users",
            "/group/x/thread/y",
        ] {
            let r = get(path, &none).unwrap_or_else(|| panic!("{path} serves the client"));
            assert_eq!(header(&r, CACHE_CONTROL), NEVER_CACHE, "{path}");
            assert_eq!(header(&r, CONTENT_TYPE), "text/html; charset=utf-8");
        }
        for path in [
            "/api",
            "/api/v1/nope",
            "/sockjs/1/2/xhr",
            "/avatar/bob",
            "/file-upload/a/b",
            "/static/missing.js",
            "/favicon.ico",
            "/websocket",
        ] {
            assert!(get(path, &none).is_none(), "{path} is not the client's");
        }
        // Prefixes match whole segments only.
        assert!(get("/apiary", &none).is_some());
        assert!(serve(&CLIENT, &Method::POST, "/home", &none).is_none());
    }

    #[test]
    fn hashed_assets_are_immutable_and_gzip_is_negotiated() {
        let none = HeaderMap::new();
        let js = get("/static/index-abc123.js", &none).expect("asset");
        assert_eq!(header(&js, CACHE_CONTROL), IMMUTABLE);
        assert_eq!(header(&js, CONTENT_TYPE), "text/javascript; charset=utf-8");
        let icon = get("/favicon.svg", &none).expect("icon");
        assert_eq!(header(&icon, CACHE_CONTROL), REVALIDATE);

        let mut gzip = HeaderMap::new();
        gzip.insert(ACCEPT_ENCODING, HeaderValue::from_static("br, gzip"));
        let r = get("/home", &gzip).expect("index");
        assert_eq!(header(&r, CONTENT_ENCODING), "gzip");
        assert_eq!(header(&r, CONTENT_LENGTH), "8");
        gzip.insert(ACCEPT_ENCODING, HeaderValue::from_static("gzip;q=0"));
        let r = get("/home", &gzip).expect("index");
        assert_eq!(header(&r, CONTENT_ENCODING), "");
    }
}
