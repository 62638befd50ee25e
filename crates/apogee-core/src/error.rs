//! Core errors. Each carries a stable Rocket.Chat error code (`error-invalid-room`, `invalid-params`,
//! …) that the wire layers map to their own envelopes.

use serde_json::Value;

/// How the failure should be classed by any wire layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is wrong: bad params, unknown room, rule violated. (HTTP 400)
    BadRequest,
    /// No or invalid credentials. (HTTP 401)
    Unauthenticated,
    /// Authenticated but not allowed. (HTTP 403)
    Forbidden,
    /// The route or resource does not exist at all. (HTTP 404)
    NotFound,
    /// Too many requests. (HTTP 429)
    RateLimited,
    /// A fault on our side; details are logged, never sent. (HTTP 500)
    Internal,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message} [{code}]")]
pub struct CoreError {
    pub kind: ErrorKind,
    /// Rocket.Chat's `errorType`, e.g. `error-invalid-room`. Empty when Rocket.Chat sends none.
    pub code: String,
    /// Human-readable reason, Rocket.Chat's wording where it has one.
    pub message: String,
    pub details: Option<Value>,
}

pub type CoreResult<T> = Result<T, CoreError>;

impl CoreError {
    pub fn new(kind: ErrorKind, code: &str, message: impl Into<String>) -> Self {
        Self {
            kind,
            code: code.to_string(),
            message: message.into(),
            details: None,
        }
    }

    /// A 400 with Rocket.Chat's `errorType` and reason.
    pub fn bad(code: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, code, message)
    }

    /// `must have required property 'x'`-style validation failures.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::bad("invalid-params", message)
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            ErrorKind::Unauthenticated,
            "",
            "You must be logged in to do this.",
        )
    }

    /// Rocket.Chat's `error-not-allowed`, its most common refusal inside a method.
    pub fn not_allowed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, "error-not-allowed", message)
    }

    /// Rocket.Chat's permission refusal, answered with 403.
    pub fn unauthorized() -> Self {
        Self::new(
            ErrorKind::Forbidden,
            "error-unauthorized",
            "User does not have the permissions required for this action",
        )
    }

    pub fn invalid_room() -> Self {
        Self::bad(
            "error-invalid-room",
            "The required \"roomId\" or \"roomName\" param provided does not match any channel",
        )
    }

    pub fn invalid_user() -> Self {
        Self::bad("error-invalid-user", "Invalid user")
    }

    pub fn room_not_found() -> Self {
        Self::bad(
            "error-room-not-found",
            "The required \"roomId\" or \"roomName\" param provided does not match any channel",
        )
    }

    pub fn internal(context: &str) -> Self {
        Self::new(
            ErrorKind::Internal,
            "",
            format!("Internal server error ({context})"),
        )
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
}

/// Storage failures, as backends report them to core.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (username, e-mail, room name, message id…); names the rule.
    #[error("conflict on {0}")]
    Conflict(String),
    /// The record a change refers to does not exist.
    #[error("missing {0}")]
    Missing(String),
    #[error("storage backend: {0}")]
    Backend(String),
    /// The transaction lost to a concurrent one (a deadlock or serialization failure) and wrote
    /// nothing; running it again may succeed.
    #[error("storage contention: {0}")]
    Contention(String),
}

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => {
                CoreError::bad("error-duplicate", format!("Duplicate {what}"))
            }
            StoreError::Missing(what) => {
                CoreError::bad("error-not-found", format!("Not found: {what}"))
            }
            StoreError::Backend(msg) | StoreError::Contention(msg) => {
                tracing::error!(error = %msg, "storage failure");
                CoreError::internal("storage")
            }
        }
    }
}
