//! Workspace assets: `assets.setAsset` (multipart: `assetName`, then the `asset` file),
//! `assets.unsetAsset`, and the images at `/assets/<name>.<ext>`.

use super::registry::{Routes, get, post};
use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ok};
use crate::params::Params;
use crate::routes::avatars::serve_image;
use crate::routes::files::{FieldSource, form_error_text};
use apogee_core::blobs::BytesSource;
use apogee_core::error::CoreError;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::json;

pub fn routes() -> Routes {
    // The image size is bounded by `FileUpload_MaxFileSize` while streaming, in core.
    let upload = Routes::new()
        .route("/api/v1/assets.setAsset", post(set_asset))
        .map(|r| r.layer(DefaultBodyLimit::disable()));
    Routes::new()
        .merge(upload)
        .route("/api/v1/assets.unsetAsset", post(unset_asset))
        .route("/assets/{file}", get(asset))
}

/// The asset is `assetName` when it came before the file, else the file's name without its
/// extension (as Rocket.Chat).
async fn set_asset(
    State(s): State<AppState>,
    Auth(a): Auth,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult {
    let Ok(mut multipart) = multipart else {
        return Err(ApiError(CoreError::bad(
            "error-invalid-form",
            "Expected a multipart form",
        )));
    };
    let mut asset_name: Option<String> = None;
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(ApiError::failure(form_error_text(&e.body_text()))),
        };
        match field.name().unwrap_or_default() {
            "asset" => {
                let name = asset_name.clone().unwrap_or_else(|| {
                    let file = field.file_name().unwrap_or_default();
                    file.rsplit_once('.').map_or(file, |(n, _)| n).to_string()
                });
                s.core
                    .set_asset(&a.user, &name, &mut FieldSource(&mut field))
                    .await?;
                return ok(json!({}));
            }
            "assetName" => {
                let value = field
                    .text()
                    .await
                    .map_err(|e| ApiError::failure(form_error_text(&e.body_text())))?;
                asset_name = Some(value);
            }
            _ => {}
        }
    }
    // No file: core still decides (permission and name first, then the missing image).
    let name = asset_name.unwrap_or_default();
    s.core
        .set_asset(&a.user, &name, &mut BytesSource::new(Vec::new()))
        .await?;
    ok(json!({}))
}

async fn unset_asset(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    s.core
        .unset_asset(&a.user, p.required("assetName")?)
        .await?;
    ok(json!({}))
}

/// `GET /assets/<name>.<ext>`: the uploaded image, revalidated by ETag; 404 otherwise.
async fn asset(
    State(s): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    serve_image(s.core.asset_file(&file).await, &headers)
}
