//! EJSON for DDP: records carry ISO-8601 dates in their JSON form; over DDP the date fields are
//! `{"$date": <ms>}`. Incoming `$date` values are accepted wherever a date parameter is read.

use apogee_core::domain::Timestamp;
use apogee_core::error::{CoreError, ErrorKind};
use serde_json::{Map, Value, json};

/// Record fields that hold dates.
const DATE_FIELDS: &[&str] = &[
    "ts",
    "_updatedAt",
    "createdAt",
    "lastLogin",
    "editedAt",
    "pinnedAt",
    "tlm",
    "dlm",
    "ls",
    "lr",
    "lm",
    "_deletedAt",
    "tokenExpires",
    "jitsiTimeout",
    "muteUntil",
    "expireAt",
    "until",
    "statusExpiresAt",
];

/// Rewrites the date fields of `v` (at any depth) as `{"$date": ms}`.
pub fn to_ejson(mut v: Value) -> Value {
    convert(&mut v, 0);
    v
}

fn convert(v: &mut Value, depth: usize) {
    if depth > 64 {
        return;
    }
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if DATE_FIELDS.contains(&k.as_str())
                    && let Some(ts) = child.as_str().and_then(Timestamp::parse)
                {
                    *child = json!({"$date": ts.millis()});
                } else {
                    convert(child, depth + 1);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| convert(i, depth + 1)),
        _ => {}
    }
}

/// A date parameter: `{"$date": ms}`, milliseconds, or an ISO string. `null` is `None`.
pub fn date(v: Option<&Value>) -> Option<Timestamp> {
    match v? {
        Value::Object(m) => m.get("$date").and_then(|d| match d {
            Value::Number(n) => n.as_f64().map(|ms| Timestamp::from_millis(ms as i64)),
            Value::String(s) => Timestamp::parse(s),
            _ => None,
        }),
        Value::Number(n) => n.as_f64().map(|ms| Timestamp::from_millis(ms as i64)),
        Value::String(s) => Timestamp::parse(s),
        _ => None,
    }
}

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
    fn dates_become_ejson_at_any_depth() {
        let v = to_ejson(json!({
            "ts": "1970-01-01T00:00:01.000Z",
            "msg": "2020-01-01T00:00:00.000Z",
            "lastMessage": {"_updatedAt": "1970-01-01T00:00:00.002Z"},
            "list": [{"ts": "not a date"}],
        }));
        assert_eq!(v["ts"], json!({"$date": 1000}));
        assert_eq!(v["msg"], "2020-01-01T00:00:00.000Z");
        assert_eq!(v["lastMessage"]["_updatedAt"], json!({"$date": 2}));
        assert_eq!(v["list"][0]["ts"], "not a date");
    }

    #[test]
    fn date_params() {
        assert_eq!(
            date(Some(&json!({"$date": 5}))).map(|t| t.millis()),
            Some(5)
        );
        assert_eq!(date(Some(&json!(7))).map(|t| t.millis()), Some(7));
        assert!(date(Some(&Value::Null)).is_none());
        assert!(date(Some(&json!({"$date": "x"}))).is_none());
        assert!(date(None).is_none());
    }

    #[test]
    fn errors_look_like_meteor() {
        let e = meteor_error(&CoreError::bad("404", "Method 'x' not found"));
        assert_eq!(e["error"], 404);
        assert_eq!(e["message"], "Method 'x' not found [404]");
        let e = meteor_error(&CoreError::new(ErrorKind::Internal, "", "db path /secret"));
        assert_eq!(e["reason"], "Internal server error");
    }
}
