//! `custom-sounds.list` / `custom-sounds.getOne`.

use super::registry::{Routes, get};
use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ok};
use crate::params::Params;
use apogee_core::error::{CoreError, ErrorKind};
use axum::extract::State;
use serde_json::json;

pub fn routes() -> Routes {
    Routes::new()
        .route("/api/v1/custom-sounds.list", get(list))
        .route("/api/v1/custom-sounds.getOne", get(get_one))
}

async fn list(State(s): State<AppState>, Auth(_a): Auth, p: Params) -> ApiResult {
    let page = p.page(
        s.core.settings.int("API_Default_Count"),
        s.core.settings.int("API_Upper_Count_Limit"),
    );
    let (sounds, total) = s.core.custom_sounds(p.str("name"), page).await?;
    ok(json!({"sounds": sounds, "count": sounds.len(), "offset": page.offset, "total": total}))
}

async fn get_one(State(s): State<AppState>, Auth(_a): Auth, p: Params) -> ApiResult {
    let id = p.required("_id")?;
    match s.core.custom_sound(id).await? {
        Some(sound) => ok(json!({"sound": sound})),
        None => Err(ApiError(CoreError::new(
            ErrorKind::NotFound,
            "",
            "Custom Sound not found.",
        ))),
    }
}
