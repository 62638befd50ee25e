//! Avatars: `users.setAvatar` (multipart `image`), `users.resetAvatar`, `users.getAvatar`,
//! `GET /avatar/<username>` and `GET /avatar/room/<rid>` (the uploaded image or initials as SVG,
//! with ETag revalidation). Room avatars are set through `rooms.saveRoomSettings`.

use super::registry::{Routes, get, post};
use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ok};
use crate::params::Params;
use crate::routes::files::{FieldSource, form_error_text, stream_body};
use apogee_core::avatars::{Avatar, StoredImage};
use apogee_core::domain::User;
use apogee_core::error::CoreError;
use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub fn routes() -> Routes {
    // The image size is bounded by `FileUpload_MaxFileSize` while streaming, in core.
    let upload = Routes::new()
        .route("/api/v1/users.setAvatar", post(set_avatar))
        .map(|r| r.layer(DefaultBodyLimit::disable()));
    Routes::new()
        .merge(upload)
        .route("/api/v1/users.resetAvatar", post(reset_avatar))
        .route("/api/v1/users.getAvatar", get(get_avatar))
        .route("/avatar/{username}", get(avatar))
        .route("/avatar/room/{rid}", get(room_avatar))
}

fn user_param_missing() -> ApiError {
    ApiError(CoreError::bad(
        "error-user-param-not-provided",
        "The required \"userId\" or \"username\" param was not provided",
    ))
}

/// The user named by `userId` / `username`, or the caller when neither is given.
async fn target(
    s: &AppState,
    me: &User,
    id: Option<&str>,
    name: Option<&str>,
) -> Result<User, ApiError> {
    match (id, name) {
        (None, None) => Ok(me.clone()),
        (id, name) => Ok(s.core.find_user(id, name).await?),
    }
}

/// `POST users.setAvatar`: multipart with the `image` file (and optionally `userId` /
/// `username` before it), or a body with `avatarUrl` (fetched by core's outbound client, which
/// refuses internal addresses).
async fn set_avatar(
    State(s): State<AppState>,
    Auth(a): Auth,
    request: axum::extract::Request,
) -> Result<Response, Response> {
    let multipart_body = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.to_ascii_lowercase().starts_with("multipart/"));
    if !multipart_body {
        let p = Params::from_request(request, &s)
            .await
            .map_err(IntoResponse::into_response)?;
        let Some(url) = p.str("avatarUrl").filter(|u| !u.is_empty()) else {
            return Err(ApiError(CoreError::bad("invalid-field", "")).into_response());
        };
        let who = target(&s, &a.user, p.str("userId"), p.str("username"))
            .await
            .map_err(IntoResponse::into_response)?;
        s.core
            .set_avatar_from_url(&a.user, &who, url)
            .await
            .map_err(|e| ApiError(e).into_response())?;
        return ok(json!({})).map_err(IntoResponse::into_response);
    }
    let mut multipart = Multipart::from_request(request, &s)
        .await
        .map_err(|e: MultipartRejection| ApiError::failure(e.body_text()).into_response())?;
    upload_avatar(&s, &a.user, &mut multipart)
        .await
        .map_err(IntoResponse::into_response)
}

async fn upload_avatar(s: &AppState, me: &User, multipart: &mut Multipart) -> ApiResult {
    let (mut id, mut name) = (None, None);
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => return Err(ApiError(CoreError::bad("invalid-field", ""))),
            Err(e) => return Err(ApiError::failure(form_error_text(&e.body_text()))),
        };
        match field.name().unwrap_or_default() {
            "image" => {
                let who = target(s, me, id.as_deref(), name.as_deref()).await?;
                s.core
                    .set_avatar(me, &who, &mut FieldSource(&mut field))
                    .await?;
                return ok(json!({}));
            }
            key @ ("userId" | "username") => {
                let key = key.to_string();
                let value = field
                    .text()
                    .await
                    .map_err(|e| ApiError::failure(form_error_text(&e.body_text())))?;
                if key == "userId" {
                    id = Some(value);
                } else {
                    name = Some(value);
                }
            }
            _ => {}
        }
    }
}

async fn reset_avatar(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let (id, name) = (p.str("userId"), p.str("username"));
    if id.is_none() && name.is_none() {
        return Err(user_param_missing());
    }
    let who = target(&s, &a.user, id, name).await?;
    s.core.reset_avatar(&a.user, &who).await?;
    ok(json!({}))
}

/// `GET users.getAvatar`: a redirect to the user's `/avatar/<username>`.
async fn get_avatar(
    State(s): State<AppState>,
    Auth(a): Auth,
    p: Params,
) -> Result<Response, ApiError> {
    let (id, name) = (p.str("userId"), p.str("username"));
    if id.is_none() && name.is_none() {
        return Err(user_param_missing());
    }
    let who = target(&s, &a.user, id, name).await?;
    let url = format!("/avatar/{}", who.username);
    let mut response = (StatusCode::TEMPORARY_REDIRECT, url.clone()).into_response();
    if let Ok(v) = HeaderValue::from_str(&url) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// A name without a trailing image extension (`/avatar/ann.png`).
fn without_extension(name: &str) -> String {
    [".png", ".jpg", ".jpeg", ".svg", ".gif", ".webp"]
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
        .unwrap_or(name)
        .to_string()
}

/// `GET /avatar/<username>` (a trailing image extension is ignored).
async fn avatar(
    State(s): State<AppState>,
    Path(username): Path<String>,
    headers: HeaderMap,
) -> Response {
    serve(s.core.avatar(&without_extension(&username)).await, &headers)
}

/// `GET /avatar/room/<rid>`: the room's image, or its name's initials.
async fn room_avatar(
    State(s): State<AppState>,
    Path(rid): Path<String>,
    headers: HeaderMap,
) -> Response {
    serve(s.core.room_avatar(&without_extension(&rid)).await, &headers)
}

/// An avatar with its ETag (304 when the client's copy is current) and safe headers.
fn serve(found: Result<Avatar, CoreError>, headers: &HeaderMap) -> Response {
    let found = match found {
        Ok(found) => found,
        Err(e) => {
            tracing::error!(error = %e.message, "avatar failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let (content_type, etag, body) = match found {
        Avatar::Image(image) => (image.content_type, image.etag, stream_body(image.body)),
        Avatar::Initials { svg, etag } => ("image/svg+xml", etag, Body::from(svg)),
    };
    image_response(headers, content_type, &etag, body)
}

/// A stored image (custom emoji, workspace asset) found by `found`, or 404.
pub(crate) fn serve_image(
    found: Result<Option<StoredImage>, CoreError>,
    headers: &HeaderMap,
) -> Response {
    match found {
        Ok(Some(image)) => image_response(
            headers,
            image.content_type,
            &image.etag,
            stream_body(image.body),
        ),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::error!(error = %e.message, "image failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// An image (avatar, custom emoji, workspace asset) with its ETag — 304 when the client's copy is
/// current — and headers that keep it inert when opened on its own.
pub(crate) fn image_response(
    headers: &HeaderMap,
    content_type: &'static str,
    etag: &str,
    body: Body,
) -> Response {
    let etag = format!("\"{etag}\"");
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, body).into_response()
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if !unchanged {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=0, must-revalidate"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // An SVG opened on its own must not run scripts.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    response
}
