//! Files: `rooms.media` + `rooms.mediaConfirm`, legacy `rooms.upload`, `GET /file-upload/…`
//! and `channels|groups|im|dm .files`. Uploads are streamed from the multipart body into core's
//! blob store; core enforces `FileUpload_*` and decides who may upload, post and download.

use super::registry::{Routes, get, post};
use crate::AppState;
use crate::auth::{Auth, MaybeAuth};
use crate::error::{ApiError, ApiResult, ok};
use crate::params::Params;
use apogee_core::blobs::{BlobError, ByteRange, ByteSource};
use apogee_core::domain::{RoomType, User};
use apogee_core::error::{CoreError, ErrorKind};
use apogee_core::files::{FileMessage, NewUpload, Upload};
use axum::body::Body;
use axum::extract::multipart::{Field, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use headers::{
    ContentRange, ETag, HeaderMapExt, IfModifiedSince, IfNoneMatch, IfRange, LastModified,
};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Form fields other than the file: at most this many, each at most this long.
const MAX_FIELDS: usize = 32;
const MAX_FIELD_BYTES: usize = 64 * 1024;

/// Message fields `rooms.mediaConfirm` / `rooms.upload` pass on besides `msg`/`tmid`.
const MESSAGE_EXTRAS: &[&str] = &["alias", "emoji", "avatar", "customFields"];
/// What an encrypted file message (`t: 'e2e'`) adds; core drops them from any other message.
const E2E_EXTRAS: &[&str] = &["t", "content", "e2e", "e2eMentions"];

pub fn routes() -> Routes {
    // The file size is bounded by `FileUpload_MaxFileSize` while streaming, in core; the
    // global 1 MiB body limit does not apply to these two routes.
    let uploads = Routes::new()
        .route("/api/v1/rooms.media/{rid}", post(media))
        .route("/api/v1/rooms.upload/{rid}", post(upload_and_post))
        .map(|r| r.layer(DefaultBodyLimit::disable()));
    let mut r = Routes::new()
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
pub(super) struct FieldSource<'a, 'b>(pub(super) &'a mut Field<'b>);

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
pub(super) fn form_error_text(text: &str) -> String {
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
    // An encrypted file's metadata: a JSON text field, kept as sent (it may follow the file).
    if let Some(content) = form.fields.get("content").and_then(Value::as_str) {
        let stored = match serde_json::from_str::<Value>(content) {
            Ok(content) => {
                s.core
                    .set_upload_content(&a.user, &upload.id, content)
                    .await
            }
            Err(_) => Err(CoreError::bad("invalid-field-content", "Invalid content")),
        };
        if let Err(e) = stored {
            let _ = s.core.discard_upload(&a.user, &upload.id).await;
            return Err(ApiError(e));
        }
    }
    ok(json!({"file": {"_id": upload.id, "url": upload.path()}}))
}

/// The message fields of a confirmation; `e2e` also takes an encrypted message's fields
/// (`rooms.mediaConfirm`'s JSON body, not `rooms.upload`'s form).
fn file_message(fields: &Map<String, Value>, e2e: bool) -> FileMessage {
    let text = |k: &str| fields.get(k).and_then(Value::as_str).map(str::to_string);
    FileMessage {
        msg: text("msg").unwrap_or_default(),
        description: text("description"),
        tmid: text("tmid"),
        extra: fields
            .iter()
            .filter(|(k, v)| {
                (MESSAGE_EXTRAS.contains(&k.as_str()) || e2e && E2E_EXTRAS.contains(&k.as_str()))
                    && !v.is_null()
            })
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
        .confirm_upload(&a.user, &rid, &file_id, file_message(&p.0, true))
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
        .confirm_upload(&a.user, &rid, &upload.id, file_message(&form.fields, false))
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
    if let Some(content) = &u.content {
        v["content"] = content.clone();
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

/// What a `Range` request asks of a file of a given size (RFC 9110 §14).
#[derive(Debug, PartialEq)]
enum Wanted {
    /// No usable range (none, malformed, several, or an `If-Range` that does not match).
    Whole,
    Part(ByteRange),
    Unsatisfiable,
}

/// One `bytes=` range resolved against `size`. Several ranges, syntax errors and `a-b` with
/// `b < a` are ignored (the whole file is sent, as RFC 9110 permits); a range starting at or
/// past the end, or `-0`, cannot be satisfied.
fn wanted_range(value: &str, size: u64) -> Wanted {
    use http_range_header::{EndPosition, RangeUnsatisfiableError, StartPosition};
    let parsed = match http_range_header::parse_range_header(value) {
        Ok(parsed) => parsed,
        Err(RangeUnsatisfiableError::ZeroSuffix) => return Wanted::Unsatisfiable,
        Err(_) => return Wanted::Whole,
    };
    let [range] = parsed.ranges.as_slice() else {
        return Wanted::Whole;
    };
    let (start, end) = match (range.start, range.end) {
        (StartPosition::Index(a), EndPosition::Index(b)) if b < a => return Wanted::Whole,
        (StartPosition::Index(a), EndPosition::Index(b)) => (a, b.saturating_add(1).min(size)),
        (StartPosition::Index(a), EndPosition::LastByte) => (a, size),
        (StartPosition::FromLast(n), _) => (size - n.min(size), size),
    };
    if start >= end {
        Wanted::Unsatisfiable
    } else {
        Wanted::Part(ByteRange { start, end })
    }
}

/// The validators of a stored file. Its contents never change once uploaded (the blob key is
/// the upload id), so the id, size and upload time identify them: a strong ETag.
struct Validators {
    etag: Option<ETag>,
    last_modified: SystemTime,
}

impl Validators {
    fn of(u: &Upload) -> Self {
        let secs = u.created_at.millis().max(0) as u64 / 1000;
        Self {
            etag: format!("\"{}-{:x}-{:x}\"", u.id, u.size, u.created_at.millis())
                .parse()
                .ok(),
            last_modified: UNIX_EPOCH + Duration::from_secs(secs),
        }
    }

    /// `If-None-Match`, or else `If-Modified-Since`: the client's copy is current (→ 304).
    fn not_modified(&self, req: &HeaderMap) -> bool {
        if req.contains_key(header::IF_NONE_MATCH) {
            return match (req.typed_get::<IfNoneMatch>(), &self.etag) {
                (Some(inm), Some(etag)) => !inm.precondition_passes(etag),
                _ => false,
            };
        }
        req.typed_get::<IfModifiedSince>()
            .is_some_and(|ims| !ims.is_modified(self.last_modified))
    }

    /// The bytes to send: a `Range` applies only while an `If-Range` (if any) still matches.
    fn wanted(&self, req: &HeaderMap, size: u64) -> Wanted {
        let mut ranges = req.get_all(header::RANGE).iter();
        let (Some(range), None) = (ranges.next(), ranges.next()) else {
            return Wanted::Whole;
        };
        let Ok(range) = range.to_str() else {
            return Wanted::Whole;
        };
        if req.contains_key(header::IF_RANGE) {
            let current = match req.typed_get::<IfRange>() {
                Some(if_range) => !if_range.is_modified(
                    self.etag.as_ref(),
                    Some(&LastModified::from(self.last_modified)),
                ),
                None => false,
            };
            if !current {
                return Wanted::Whole;
            }
        }
        wanted_range(range, size)
    }

    fn insert(&self, headers: &mut HeaderMap) {
        if let Some(etag) = &self.etag {
            headers.typed_insert(etag.clone());
        }
        headers.typed_insert(LastModified::from(self.last_modified));
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, max-age=31536000"),
        );
    }
}

/// `GET|HEAD /file-upload/:fileId/:name`, authenticated by headers, `rc_uid`/`rc_token`
/// cookies or `?rc_uid=&rc_token=`. Conditional (`If-None-Match`, `If-Modified-Since`) and
/// single-range (`Range`, `If-Range`) requests; the body is streamed from the blob store, only
/// the requested bytes, and not at all for HEAD or 304.
async fn download(
    State(s): State<AppState>,
    method: Method,
    req: HeaderMap,
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
    let download_failed = |e: CoreError| match e.kind {
        ErrorKind::NotFound => plain(StatusCode::NOT_FOUND, "Not found"),
        ErrorKind::Internal => {
            tracing::error!(error = %e.message, "download failed");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
        }
        _ => plain(StatusCode::FORBIDDEN, "Forbidden"),
    };
    let file = match s
        .core
        .download(session.as_ref().map(|s| &s.user), &file_id)
        .await
    {
        Ok(file) => file,
        Err(e) => return download_failed(e),
    };
    let upload = &file.upload;
    let size = u64::try_from(upload.size).unwrap_or(0);
    let validators = Validators::of(upload);

    let mut response = if validators.not_modified(&req) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let (status, range) = match validators.wanted(&req, size) {
            Wanted::Whole => (StatusCode::OK, None),
            Wanted::Part(range) => (StatusCode::PARTIAL_CONTENT, Some(range)),
            Wanted::Unsatisfiable => {
                let mut r = plain(StatusCode::RANGE_NOT_SATISFIABLE, "Range Not Satisfiable");
                r.headers_mut()
                    .typed_insert(ContentRange::unsatisfied_bytes(size));
                return r;
            }
        };
        let (body, length, served) = if method == Method::HEAD {
            let served = range.map_or(0..size, |r| r.start..r.end);
            (Body::empty(), served.end - served.start, served)
        } else {
            let blob = match s.core.read_download(&file, range).await {
                Ok(blob) => blob,
                Err(e) => return download_failed(e),
            };
            let served = blob.range.clone();
            (stream_body(blob.chunks), served.end - served.start, served)
        };
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        if status == StatusCode::PARTIAL_CONTENT
            && let Ok(cr) = ContentRange::bytes(served, size)
        {
            headers.typed_insert(cr);
        }
        response
    };
    let not_modified = response.status() == StatusCode::NOT_MODIFIED;
    let headers = response.headers_mut();
    validators.insert(headers);
    if not_modified {
        return response;
    }
    let value = |s: &str| {
        HeaderValue::from_str(s)
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
    };
    headers.insert(header::CONTENT_TYPE, value(&upload.content_type));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&content_disposition(upload)) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Like Rocket.Chat: nothing a file contains may load or run anything.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'"),
    );
    response
}

/// A blob's chunks as a response body.
pub(super) fn stream_body(chunks: Box<dyn ByteSource>) -> Body {
    Body::from_stream(futures_util::stream::unfold(
        chunks,
        |mut chunks| async move {
            match chunks.next_chunk().await {
                Ok(Some(c)) => Some((Ok::<_, std::io::Error>(c), chunks)),
                Ok(None) => None,
                Err(e) => {
                    tracing::error!(error = %e, "download stream failed");
                    Some((Err(std::io::Error::other("blob read failed")), chunks))
                }
            }
        },
    ))
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
            content: None,
            created_at: Timestamp::now(),
            updated_at: Timestamp::now(),
        }
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        let part = |start, end| Wanted::Part(ByteRange { start, end });
        for (value, want) in [
            ("bytes=0-0", part(0, 1)),
            ("bytes=2-5", part(2, 6)),
            ("bytes=5-", part(5, 10)),
            ("bytes=-3", part(7, 10)),
            ("bytes=-30", part(0, 10)),
            ("bytes=8-100", part(8, 10)),
            ("bytes=10-", Wanted::Unsatisfiable),
            ("bytes=10-12", Wanted::Unsatisfiable),
            ("bytes=-0", Wanted::Unsatisfiable),
            ("bytes=5-2", Wanted::Whole),
            ("bytes=0-1,3-4", Wanted::Whole),
            ("bytes=x-2", Wanted::Whole),
            ("items=0-1", Wanted::Whole),
            ("bytes=", Wanted::Whole),
            ("bytes=--1", Wanted::Whole),
            ("bytes=99999999999999999999-", Wanted::Whole),
        ] {
            assert_eq!(wanted_range(value, 10), want, "{value}");
        }
        assert_eq!(wanted_range("bytes=0-", 0), Wanted::Unsatisfiable);
        assert_eq!(wanted_range("bytes=-5", 0), Wanted::Unsatisfiable);
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
