//! EJSON, Meteor's JSON dialect: records carry ISO-8601 dates in their JSON form; over DDP the
//! date fields are `{"$date": <ms>}` and binary data is `{"$binary": "<base64>"}`.

use apogee_domain::Timestamp;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

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

/// Deeper than this, values are sent as they are (no record nests so deep).
const MAX_DEPTH: usize = 64;

/// Rewrites the date fields of `v` (at any depth) as `{"$date": ms}`.
pub fn to_ejson(mut v: Value) -> Value {
    convert(&mut v, 0);
    v
}

fn convert(v: &mut Value, depth: usize) {
    if depth > MAX_DEPTH {
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
    let ms = |n: &serde_json::Number| {
        n.as_f64()
            .filter(|ms| ms.is_finite() && ms.abs() < 8.64e15)
            .map(|ms| Timestamp::from_millis(ms as i64))
    };
    match v? {
        Value::Object(m) => m.get("$date").and_then(|d| match d {
            Value::Number(n) => ms(n),
            Value::String(s) => Timestamp::parse(s),
            _ => None,
        }),
        Value::Number(n) => ms(n),
        Value::String(s) => Timestamp::parse(s),
        _ => None,
    }
}

/// A binary parameter, `{"$binary": "<base64>"}`.
pub fn binary(v: &Value) -> Option<Vec<u8>> {
    let text = v.as_object()?.get("$binary")?.as_str()?;
    STANDARD.decode(text).ok()
}

/// Binary data as EJSON.
pub fn to_binary(bytes: &[u8]) -> Value {
    json!({"$binary": STANDARD.encode(bytes)})
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
        assert!(date(Some(&json!(1e300))).is_none(), "out of range");
        assert!(date(None).is_none());
    }

    #[test]
    fn binary_round_trips() {
        let v = to_binary(b"\x00\xffkey");
        assert_eq!(v, json!({"$binary": "AP9rZXk="}));
        assert_eq!(binary(&v).as_deref(), Some(&b"\x00\xffkey"[..]));
        assert_eq!(binary(&json!({"$binary": "%%"})), None);
        assert_eq!(binary(&json!("AP9rZXk=")), None);
    }
}
