//! Custom emoji: `emoji-custom.*` and the images at `/emoji-custom/<name>.<ext>`.
//!
//! `create`/`update` are multipart forms: `name`, `aliases` (comma-separated) and `_id` (update)
//! as text fields, then the `emoji` file, which is streamed into core; text fields after the
//! file are not read (browsers and HTTP libraries send the text fields first).

use super::registry::{Routes, get, post};
use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ok};
use crate::params::Params;
use crate::routes::avatars::serve_image;
use crate::routes::files::{FieldSource, form_error_text};
use apogee_core::blobs::BytesSource;
use apogee_core::emoji::EmojiImage;
use apogee_core::error::CoreError;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use serde_json::{Value, json};
use std::collections::HashMap;

pub fn routes() -> Routes {
    // The image size is bounded by `FileUpload_MaxFileSize` while streaming, in core.
    let uploads = Routes::new()
        .route("/api/v1/emoji-custom.create", post(create))
        .route("/api/v1/emoji-custom.update", post(update))
        .map(|r| r.layer(DefaultBodyLimit::disable()));
    Routes::new()
        .merge(uploads)
        .route("/api/v1/emoji-custom.delete", post(delete))
        .route("/api/v1/emoji-custom.list", get(list))
        .route("/api/v1/emoji-custom.all", get(all))
        .route("/emoji-custom/{file}", get(image))
}

fn not_a_form() -> ApiError {
    ApiError(CoreError::bad(
        "error-invalid-form",
        "Expected a multipart form",
    ))
}

/// What to do with the form once its text fields (and maybe the file) are known.
enum Action {
    Create,
    Update,
}

async fn run(
    s: &AppState,
    a: &apogee_core::accounts::Session,
    mut multipart: Multipart,
    action: Action,
) -> ApiResult {
    let mut fields: HashMap<String, String> = HashMap::new();
    let text = |fields: &HashMap<String, String>, k: &str| fields.get(k).cloned();
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(ApiError::failure(form_error_text(&e.body_text()))),
        };
        let name = field.name().unwrap_or_default().to_string();
        if name == "emoji" {
            let name_field = text(&fields, "name").unwrap_or_default();
            let aliases = text(&fields, "aliases");
            let image = EmojiImage {
                body: &mut FieldSource(&mut field),
            };
            match action {
                Action::Create => {
                    s.core
                        .create_custom_emoji(&a.user, &name_field, aliases.as_deref(), image)
                        .await?;
                }
                Action::Update => {
                    let id = text(&fields, "_id").unwrap_or_default();
                    s.core
                        .update_custom_emoji(
                            &a.user,
                            &id,
                            &name_field,
                            aliases.as_deref(),
                            Some(image),
                        )
                        .await?;
                }
            }
            return ok(json!({}));
        }
        let value = field
            .text()
            .await
            .map_err(|e| ApiError::failure(form_error_text(&e.body_text())))?;
        if fields.len() < 16 {
            fields.insert(name, value);
        }
    }
    match action {
        // No file: core still decides (permission first, then the missing image).
        Action::Create => {
            let name = text(&fields, "name").unwrap_or_default();
            let mut nothing = BytesSource::new(Vec::new());
            let image = EmojiImage { body: &mut nothing };
            s.core
                .create_custom_emoji(&a.user, &name, text(&fields, "aliases").as_deref(), image)
                .await?;
            ok(json!({}))
        }
        Action::Update => {
            let id = text(&fields, "_id").unwrap_or_default();
            let name = text(&fields, "name").unwrap_or_default();
            s.core
                .update_custom_emoji(
                    &a.user,
                    &id,
                    &name,
                    text(&fields, "aliases").as_deref(),
                    None,
                )
                .await?;
            ok(json!({}))
        }
    }
}

async fn create(
    State(s): State<AppState>,
    Auth(a): Auth,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult {
    run(&s, &a, multipart.map_err(|_| not_a_form())?, Action::Create).await
}

/// A multipart form, or (no new image) a urlencoded form or JSON body.
async fn update(State(s): State<AppState>, Auth(a): Auth, req: Request) -> ApiResult {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if content_type.starts_with("multipart/") {
        let multipart = Multipart::from_request(req, &s)
            .await
            .map_err(|_| not_a_form())?;
        return run(&s, &a, multipart, Action::Update).await;
    }
    let body = axum::body::to_bytes(req.into_body(), crate::params::MAX_BODY)
        .await
        .map_err(|_| ApiError::failure("Request body too large or unreadable"))?;
    let fields = if content_type.starts_with("application/x-www-form-urlencoded") {
        crate::params::parse_query(&String::from_utf8_lossy(&body))
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(map)) => map,
            _ => return Err(not_a_form()),
        }
    };
    let text = |k: &str| fields.get(k).and_then(Value::as_str).unwrap_or_default();
    let aliases = fields.get("aliases").and_then(Value::as_str);
    s.core
        .update_custom_emoji(&a.user, text("_id"), text("name"), aliases, None)
        .await?;
    ok(json!({}))
}

async fn delete(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    s.core
        .delete_custom_emoji(&a.user, p.required("emojiId")?)
        .await?;
    ok(json!({}))
}

async fn list(State(s): State<AppState>, Auth(_a): Auth, p: Params) -> ApiResult {
    let since = p.date("updatedSince")?;
    let (updated, removed) = s.core.custom_emoji_changes(since).await?;
    let removed: Vec<Value> = removed
        .iter()
        .map(|t| json!({"_id": t.id, "_deletedAt": t.deleted_at}))
        .collect();
    ok(json!({"emojis": {"update": updated, "remove": removed}}))
}

async fn all(State(s): State<AppState>, Auth(_a): Auth, p: Params) -> ApiResult {
    let page = p.page(
        s.core.settings.int("API_Default_Count"),
        s.core.settings.int("API_Upper_Count_Limit"),
    );
    let (emojis, total) = s.core.custom_emoji_page(p.str("name"), page).await?;
    ok(json!({"emojis": emojis, "count": emojis.len(), "offset": page.offset, "total": total}))
}

/// `GET /emoji-custom/<name>.<ext>`: the image, revalidated by ETag; 404 when unknown.
async fn image(
    State(s): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    serve_image(s.core.custom_emoji_file(&file).await, &headers)
}
