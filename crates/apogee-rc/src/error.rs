//! Rocket.Chat's REST error envelope (`ApiClass.ts`), mapped from core errors.

use apogee_core::error::{CoreError, ErrorKind};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Value, json};

/// Any failure a REST handler returns.
#[derive(Debug)]
pub struct ApiError(pub CoreError);

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        ApiError(e)
    }
}

impl ApiError {
    /// `must have required property 'x' [invalid-params]`-style failures.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        ApiError(CoreError::invalid_params(message))
    }

    /// Rocket.Chat's `API.v1.failure('text')`: a 400 with only `error`.
    pub fn failure(message: impl Into<String>) -> Self {
        ApiError(CoreError::bad("", message))
    }
}

pub type ApiResult = Result<Response, ApiError>;

/// The 400 body: `error` is `"<reason> [<code>]"` with `errorType`, or bare when there is no code.
pub fn bad_request_body(e: &CoreError) -> Value {
    let mut body = if e.code.is_empty() {
        json!({"success": false, "error": e.message})
    } else if e.message.is_empty() {
        json!({"success": false, "error": format!("[{}]", e.code), "errorType": e.code})
    } else {
        json!({"success": false, "error": format!("{} [{}]", e.message, e.code), "errorType": e.code})
    };
    if let Some(details) = &e.details {
        body["details"] = details.clone();
    }
    body
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let (status, body) = match e.kind {
            ErrorKind::BadRequest => (StatusCode::BAD_REQUEST, bad_request_body(&e)),
            ErrorKind::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                json!({"success": false, "status": "error", "message": e.message, "error": e.message}),
            ),
            // `API.v1.forbidden(msg)` has no `errorType`; method errors answered 403 do.
            ErrorKind::Forbidden if e.code.is_empty() => (
                StatusCode::FORBIDDEN,
                json!({"success": false, "error": e.message}),
            ),
            ErrorKind::Forbidden => (
                StatusCode::FORBIDDEN,
                json!({"success": false, "error": format!("{} [{}]", e.message, e.code), "errorType": e.code}),
            ),
            // `API.v1.notFound(msg)`: the message, or its default.
            ErrorKind::NotFound => (
                StatusCode::NOT_FOUND,
                json!({"success": false, "error": if e.message.is_empty() { "Resource not found" } else { e.message.as_str() }}),
            ),
            ErrorKind::RateLimited => (StatusCode::TOO_MANY_REQUESTS, bad_request_body(&e)),
            ErrorKind::Internal => {
                tracing::error!(error = %e.message, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"success": false, "error": "Internal server error"}),
                )
            }
        };
        (status, Json(body)).into_response()
    }
}

/// A 200 answer: the fields plus `"success": true`.
pub fn ok(mut body: Value) -> ApiResult {
    if let Value::Object(map) = &mut body {
        map.insert("success".into(), Value::Bool(true));
    }
    Ok(Json(body).into_response())
}

/// A 200 answer `{key: value, "success": true}`, encoded straight from `value` without a JSON
/// tree in between (for answers sent at a high rate, such as a sent message).
pub fn ok_field<T: Serialize>(key: &'static str, value: &T) -> ApiResult {
    struct Answer<'a, T>(&'static str, &'a T);
    impl<T: Serialize> Serialize for Answer<'_, T> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(Some(2))?;
            map.serialize_entry(self.0, self.1)?;
            map.serialize_entry("success", &true)?;
            map.end()
        }
    }
    Ok(Json(Answer(key, value)).into_response())
}
