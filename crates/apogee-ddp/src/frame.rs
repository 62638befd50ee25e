//! Client frames. A raw DDP connection (`/websocket`) carries one JSON message per text frame; a
//! SockJS one carries a JSON array of strings, each a message. Each message is classified into
//! an [`Incoming`]; anything that is not a JSON object is bad data (the connection closes 1007).

use serde_json::{Map, Value};

/// Messages one SockJS frame may batch; more is a flood, not a client.
pub const MAX_BATCH: usize = 100;

/// One client message.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Connect {
        version: Option<String>,
    },
    Ping {
        id: Option<Value>,
    },
    Pong,
    Method {
        id: String,
        method: String,
        params: Vec<Value>,
    },
    Sub {
        id: String,
        name: String,
        params: Vec<Value>,
    },
    Unsub {
        id: String,
    },
    /// A JSON object that is not a valid DDP message: answered with an `error` message that
    /// quotes it (Meteor's behaviour), the connection stays open.
    Malformed {
        reason: &'static str,
        offending: Map<String, Value>,
    },
}

/// The frame is not DDP at all (not JSON, not an object, a bad SockJS batch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadData;

/// The messages of one WebSocket text frame.
pub fn parse_packet(text: &str, sockjs: bool) -> Result<Vec<Incoming>, BadData> {
    if sockjs && text.starts_with('[') {
        let items: Vec<String> = serde_json::from_str(text).map_err(|_| BadData)?;
        if items.len() > MAX_BATCH {
            return Err(BadData);
        }
        return items.iter().map(|item| parse_message(item)).collect();
    }
    Ok(vec![parse_message(text)?])
}

/// One DDP message.
pub fn parse_message(text: &str) -> Result<Incoming, BadData> {
    let Ok(Value::Object(msg)) = serde_json::from_str::<Value>(text) else {
        return Err(BadData);
    };
    Ok(classify(msg))
}

fn classify(msg: Map<String, Value>) -> Incoming {
    let text = |k: &str| msg.get(k).and_then(Value::as_str).map(str::to_string);
    let params = match msg.get("params") {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(p)) => Some(p.clone()),
        Some(_) => None,
    };
    let malformed = |reason, msg| Incoming::Malformed {
        reason,
        offending: msg,
    };
    match msg.get("msg").and_then(Value::as_str).unwrap_or_default() {
        "connect" => Incoming::Connect {
            version: text("version"),
        },
        "ping" => Incoming::Ping {
            id: msg.get("id").cloned(),
        },
        "pong" => Incoming::Pong,
        "method" => match (text("id"), text("method"), params) {
            (Some(id), Some(method), Some(params)) => Incoming::Method { id, method, params },
            _ => malformed("Malformed method invocation", msg),
        },
        "sub" => match (text("id"), text("name"), params) {
            (Some(id), Some(name), Some(params)) => Incoming::Sub { id, name, params },
            _ => malformed("Malformed subscription", msg),
        },
        "unsub" => match text("id") {
            Some(id) => Incoming::Unsub { id },
            None => malformed("Malformed unsub", msg),
        },
        _ => malformed("Bad request", msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn raw_and_sockjs_frames() {
        let m = r#"{"msg":"method","id":"1","method":"x","params":[1]}"#;
        let want = Incoming::Method {
            id: "1".into(),
            method: "x".into(),
            params: vec![json!(1)],
        };
        assert_eq!(parse_packet(m, false), Ok(vec![want.clone()]));
        let batch = json!([m, r#"{"msg":"pong"}"#]).to_string();
        assert_eq!(parse_packet(&batch, true), Ok(vec![want, Incoming::Pong]));
        // A SockJS client may also send a bare message.
        assert_eq!(
            parse_packet(r#"{"msg":"ping","id":"a"}"#, true),
            Ok(vec![Incoming::Ping {
                id: Some(json!("a"))
            }])
        );
    }

    #[test]
    fn bad_data_and_malformed_messages() {
        for bad in ["", "nope", "[1]", "3", r#"["{}", 4]"#, "[\"x\"]"] {
            assert_eq!(parse_packet(bad, true), Err(BadData), "{bad}");
        }
        assert_eq!(parse_packet("[]", false), Err(BadData));
        let flood = json!(vec!["{\"msg\":\"pong\"}"; MAX_BATCH + 1]).to_string();
        assert_eq!(parse_packet(&flood, true), Err(BadData));
        let got = parse_message(r#"{"msg":"method","id":"1","params":{}}"#).unwrap();
        assert!(matches!(
            got,
            Incoming::Malformed {
                reason: "Malformed method invocation",
                ..
            }
        ));
        let got = parse_message(r#"{"msg":"dance"}"#).unwrap();
        assert!(matches!(
            got,
            Incoming::Malformed {
                reason: "Bad request",
                ..
            }
        ));
        assert_eq!(
            parse_message(r#"{"msg":"sub","id":"s","name":"n","params":null}"#),
            Ok(Incoming::Sub {
                id: "s".into(),
                name: "n".into(),
                params: vec![]
            })
        );
    }
}
