//! EJSON for DDP (from `apogee-ddp`) and core errors as the `Meteor.Error` objects clients expect.

use apogee_core::error::{CoreError, ErrorKind};
pub use apogee_ddp::ejson::{binary, date, to_ejson};
use serde_json::{Map, Value, json};

/// A core error as the `Meteor.Error` a DDP client receives. Internal faults are redacted.
pub fn meteor_error(e: &CoreError) -> Value {
    if e.kind == ErrorKind::Internal {
        return json!({"isClientSafe": true, "error": 500, "reason": "Internal server error", "message": "Internal server error [500]", "errorType": "Meteor.Error"});
    }
    let code = if e.code.is_empty() {
        Value::from(e.message.clone())
    } else if let Ok(n) = e.code.parse::<i64>() {
        Value::from(n)
    } else {
        Value::from(e.code.clone())
    };
    let reason = (!e.message.is_empty()).then(|| e.message.clone());
    let message = match (&reason, e.code.is_empty()) {
        (Some(r), false) => format!("{r} [{}]", e.code),
        (Some(r), true) => r.clone(),
        (None, _) => format!("[{}]", e.code),
    };
    let mut v = Map::new();
    v.insert("isClientSafe".into(), json!(true));
    v.insert("error".into(), code);
    if let Some(r) = reason {
        v.insert("reason".into(), json!(r));
    }
    v.insert("message".into(), json!(message));
    v.insert("errorType".into(), json!("Meteor.Error"));
    if let Some(d) = &e.details {
        v.insert("details".into(), d.clone());
    }
    Value::Object(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_look_like_meteor() {
        let e = meteor_error(&CoreError::bad("404", "Method 'x' not found"));
        assert_eq!(e["error"], 404);
        assert_eq!(e["message"], "Method 'x' not found [404]");
        let e = meteor_error(&CoreError::new(ErrorKind::Internal, "", "db path /secret"));
        assert_eq!(e["reason"], "Internal server error");
    }
}
