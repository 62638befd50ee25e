//! Files: `rooms.media` + `rooms.mediaConfirm`, legacy `rooms.upload`, `GET /file-upload/…`
//! and `channels|groups|im|dm .files`. Uploads are streamed from the multipart body into core's
//! blob store; core enforces `FileUpload_*` and decides who may upload, post and download.

use crate::AppState;
use crate::auth::{Auth, MaybeAuth};
use crate::error::{ApiError, ApiResult, ok};
use crate::params::Params;
use apogee_core::blobs::{BlobError, ByteSource};
use apogee_core::domain::{RoomType, User};
use apogee_core::error::{CoreError, ErrorKind};
use apogee_core::files::{FileMessage, NewUpload, Upload};
use axum::Router;
use axum::body::Body;
use axum::extract::multipart::{Field, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// Form fields other than the file: at most this many, each at most this long.
const MAX_FIELDS: usize = 32;
const MAX_FIELD_BYTES: usize = 64 * 1024;

/// Message fields `rooms.mediaConfirm` / `rooms.upload` pass on besides `msg`/`tmid`.
const MESSAGE_EXTRAS: &[&str] = &["alias", "emoji", "avatar", "customFields"];

pub fn routes() -> Router<AppState> {
    // The file size is bounded by `FileUpload_MaxFileSize` while streaming, in core; the
    // global 1 MiB body limit does not apply to these two routes.
    let uploads = Router::new()
        .route("/api/v1/rooms.media/{rid}", post(media))
        .route("/api/v1/rooms.upload/{rid}", post(upload_and_post))
        .layer(DefaultBodyLimit::disable());
    let mut r = Router::new()
        .merge(uploads)
        .route("/api/v1/rooms.mediaConfirm/{rid}/{file_id}", post(confirm))
        .route("/file-upload/{file_id}/{name}", get(download))
        .route(
            "/api/v1/channels.files",
            get(|s: State<AppState>, a: Auth, p: Params| files(s, a, p, RoomType::Channel)),
        )
        .route(
            "/api/v1/groups.files",
            get(|s: State<AppState>, a: Auth, p: Params| files(s, a, p, RoomType::Group)),
        );
    for prefix in ["im", "dm"] {
        r = r.route(
            &format!("/api/v1/{prefix}.files"),
            get(|s: State<AppState>, a: Auth, p: Params| files(s, a, p, RoomType::Direct)),
        );
    }
    r
}

/// A multipart field as core's byte source.
struct FieldSource<'a, 'b>(&'a mut Field<'b>);

#[async_trait::async_trait]
impl ByteSource for FieldSource<'_, '_> {
    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, BlobError> {
        loop {
            match self.0.chunk().await {
                Ok(Some(c)) if c.is_empty() => continue,
                Ok(Some(c)) => return Ok(Some(c.to_vec())),
                Ok(None) => return Ok(None),
                Err(e) => return Err(BlobError::Source(form_error_text(&e.body_text()))),
            }
        }
    }
}

/// Busboy's wording for a body that ends early; other parse errors keep their text.
fn form_error_text(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    if lower.contains("incomplete") || lower.contains("unexpected end") || lower.contains("eof") {
        "Unexpected end of form".to_string()
    } else {
        format!("Malformed multipart body: {text}")
    }
}

fn bad_form(text: impl Into<String>) -> ApiError {
    ApiError::failure(text)
}

/// The uploaded file (already in the blob store and recorded) and the other form fields.
struct Form {
    upload: Option<Upload>,
    fields: Map<String, Value>,
}

/// Reads the form: the `file` field is streamed into storage through core; text fields are
/// collected (bounded). On any failure after the file was stored, the upload is discarded.
async fn read_form(
    s: &AppState,
    actor: &User,
    rid: &str,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Form, ApiError> {
    let mut multipart = multipart.map_err(|e| bad_form(e.body_text()))?;
    let mut form = Form {
        upload: None,
        fields: Map::new(),
    };
    let result = read_fields(s, actor, rid, &mut multipart, &mut form).await;
    if let Err(e) = result {
        if let Some(upload) = form.upload.take() {
            let _ = s.core.discard_upload(actor, &upload.id).await;
        }
        return Err(e);
    }
    Ok(form)
}

async fn read_fields(
    s: &AppState,
    actor: &User,
    rid: &str,
    multipart: &mut Multipart,
    form: &mut Form,
) -> Result<(), ApiError> {
    let mut count = 0;
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(()),
            Err(e) => return Err(bad_form(form_error_text(&e.body_text()))),
        };
        count += 1;
        if count > MAX_FIELDS + 1 {
            return Err(bad_form("Too many form fields"));
        }
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            if form.upload.is_some() {
                return Err(ApiError(CoreError::bad(
                    "error-file-upload",
                    "Just 1 file is allowed",
                )));
            }
            let new = NewUpload {
                name: field.file_name().unwrap_or("file").to_string(),
                content_type: field.content_type().map(str::to_string),
            };
            let upload = s
                .core
                .upload_file(actor, rid, new, &mut FieldSource(&mut field))
                .await;
            match upload {
                Ok(upload) => form.upload = Some(upload),
                Err(e) => {
                    // Like Rocket.Chat (busboy reads the whole form before it answers), read the
                    // rest of a refused upload, within bounds, so the client sees the answer
                    // instead of a reset connection.
                    let mut budget = DRAIN_LIMIT;
                    if drain_field(&mut field, &mut budget).await {
                        drop(field);
                        while let Ok(Some(mut next)) = multipart.next_field().await {
                            if !drain_field(&mut next, &mut budget).await {
                                break;
                            }
                        }
                    }
                    return Err(ApiError(e));
                }
            }
            continue;
        }
        let mut value = Vec::new();
        loop {
            match field.chunk().await {
                Ok(Some(c)) => {
                    value.extend_from_slice(&c);
                    if value.len() > MAX_FIELD_BYTES {
                        return Err(bad_form(format!("Form field \"{name}\" is too long")));
                    }
                }
                Ok(None) => break,
                Err(e) => return Err(bad_form(form_error_text(&e.body_text()))),
            }
        }
        let value = String::from_utf8(value)
            .map_err(|_| bad_form(format!("Form field \"{name}\" is not UTF-8")))?;
        form.fields.insert(name, Value::String(value));
    }
}

/// How much of a refused upload is read and thrown away before the connection is dropped.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

/// Reads a field to its end within `budget` bytes; false when the budget ran out or it failed.
async fn drain_field(field: &mut Field<'_>, budget: &mut usize) -> bool {
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) if chunk.len() <= *budget => *budget -= chunk.len(),
            Ok(None) => return true,
            _ => return false,
        }
    }
}

fn missing_file() -> ApiError {
    ApiError(CoreError::bad("invalid-field", ""))
}

/// `POST rooms.media/:rid` → `{file: {_id, url}}`.
async fn media(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(rid): Path<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult {
    let form = read_form(&s, &a.user, &rid, multipart).await?;
    let upload = form.upload.ok_or_else(missing_file)?;
    ok(json!({"file": {"_id": upload.id, "url": upload.path()}}))
}

fn file_message(fields: &Map<String, Value>) -> FileMessage {
    let text = |k: &str| fields.get(k).and_then(Value::as_str).map(str::to_string);
    FileMessage {
        msg: text("msg").unwrap_or_default(),
        description: text("description"),
        tmid: text("tmid"),
        extra: fields
            .iter()
            .filter(|(k, v)| MESSAGE_EXTRAS.contains(&k.as_str()) && !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// `POST rooms.mediaConfirm/:rid/:fileId {msg?, description?, tmid?}` → `{message}`.
async fn confirm(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path((rid, file_id)): Path<(String, String)>,
    p: Params,
) -> ApiResult {
    let message = s
        .core
        .confirm_upload(&a.user, &rid, &file_id, file_message(&p.0))
        .await?;
    ok(json!({"message": message}))
}

/// Legacy `POST rooms.upload/:rid`: the file and its message in one form → `{message}`.
async fn upload_and_post(
    State(s): State<AppState>,
    Auth(a): Auth,
    Path(rid): Path<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult {
    let form = read_form(&s, &a.user, &rid, multipart).await?;
    let upload = form.upload.ok_or_else(missing_file)?;
    match s
        .core
        .confirm_upload(&a.user, &rid, &upload.id, file_message(&form.fields))
        .await
    {
        Ok(message) => ok(json!({"message": message})),
        Err(e) => {
            let _ = s.core.discard_upload(&a.user, &upload.id).await;
            Err(ApiError(e))
        }
    }
}

/// An upload as `channels.files` lists it (Rocket.Chat's `rocketchat_uploads` document).
fn render_upload(u: &Upload) -> Value {
    let mut v = json!({
        "_id": u.id,
        "name": u.name,
        "size": u.size,
        "type": u.content_type,
        "rid": u.rid,
        "userId": u.user_id,
        "store": "FileSystem:Uploads",
        "complete": true,
        "uploading": false,
        "progress": 1,
        "extension": u.extension(),
        "typeGroup": u.type_group(),
        "user": {"_id": u.user_id, "username": u.username},
        "path": u.path(),
        "url": u.path(),
        "uploadedAt": u.created_at,
        "_updatedAt": u.updated_at,
    });
    if let Some(d) = &u.description {
        v["description"] = json!(d);
    }
    v
}

/// `GET channels.files|groups.files|im.files|dm.files` → `{files, count, offset, total}`.
async fn files(State(s): State<AppState>, Auth(a): Auth, p: Params, t: RoomType) -> ApiResult {
    let page = p.page(
        s.core.settings.int("API_Default_Count"),
        s.core.settings.int("API_Upper_Count_Limit"),
    );
    let room = super::rooms::room_ref(&s, &a.user, &p, t).await?;
    let (uploads, total) = s.core.room_files(&a.user, &room, t, None, page).await?;
    let files: Vec<Value> = uploads.iter().map(render_upload).collect();
    ok(json!({"files": files, "count": files.len(), "offset": page.offset, "total": total}))
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain")], text).into_response()
}

/// Types a browser may show inline; everything else (HTML, SVG, scripts…) is downloaded.
fn inline_safe(content_type: &str) -> bool {
    matches!(
        content_type,
        "image/png" | "image/jpeg" | "image/gif" | "image/webp" | "image/bmp" | "text/plain"
    ) || content_type.starts_with("audio/")
        || content_type.starts_with("video/")
}

/// `inline|attachment; filename="ascii"; filename*=UTF-8''percent-encoded`.
fn content_disposition(u: &Upload) -> String {
    let ascii: String = u
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in u.name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    let kind = if inline_safe(&u.content_type) {
        "inline"
    } else {
        "attachment"
    };
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// `GET /file-upload/:fileId/:name`, authenticated by headers, `rc_uid`/`rc_token` cookies or
/// `?rc_uid=&rc_token=`. The body is streamed from the blob store.
async fn download(
    State(s): State<AppState>,
    MaybeAuth(session): MaybeAuth,
    Path((file_id, _name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let session = match session {
        Some(session) => Some(session),
        None => match (query.get("rc_uid"), query.get("rc_token")) {
            (Some(uid), Some(token)) => s.core.authenticate(uid, token).await.ok(),
            _ => None,
        },
    };
    let Some(session) = session else {
        return plain(StatusCode::FORBIDDEN, "Forbidden");
    };
    let (upload, body) = match s.core.download(&session.user, &file_id).await {
        Ok(found) => found,
        Err(e) => {
            return match e.kind {
                ErrorKind::NotFound => plain(StatusCode::NOT_FOUND, "Not found"),
                ErrorKind::Internal => {
                    tracing::error!(error = %e.message, "download failed");
                    plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
                }
                _ => plain(StatusCode::FORBIDDEN, "Forbidden"),
            };
        }
    };
    let stream = futures_util::stream::unfold(body.chunks, |mut chunks| async move {
        match chunks.next_chunk().await {
            Ok(Some(c)) => Some((Ok::<_, std::io::Error>(c), chunks)),
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, "download stream failed");
                Some((Err(std::io::Error::other("blob read failed")), chunks))
            }
        }
    });
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    let value = |s: &str| {
        HeaderValue::from_str(s)
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
    };
    headers.insert(header::CONTENT_TYPE, value(&upload.content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.size));
    if let Ok(v) = HeaderValue::from_str(&content_disposition(&upload)) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use apogee_domain::Timestamp;

    fn upload(name: &str, t: &str) -> Upload {
        Upload {
            id: "f".into(),
            rid: "r".into(),
            user_id: "u".into(),
            username: "u".into(),
            name: name.into(),
            content_type: t.into(),
            size: 1,
            store_key: "f".into(),
            complete: true,
            description: None,
            created_at: Timestamp::now(),
            updated_at: Timestamp::now(),
        }
    }

    #[test]
    fn dispositions_are_quoted_and_safe() {
        assert_eq!(
            content_disposition(&upload("a \"b\".png", "image/png")),
            "inline; filename=\"a _b_.png\"; filename*=UTF-8''a%20%22b%22.png"
        );
        assert!(content_disposition(&upload("x.svg", "image/svg+xml")).starts_with("attachment"));
        assert!(
            content_disposition(&upload("ä.html", "text/html"))
                .contains("filename*=UTF-8''%C3%A4.html")
        );
    }
}
