//! Whatever a client sends as a WebSocket text frame: parsing it as raw DDP and as SockJS must
//! never panic, and every message it yields must survive the EJSON conversions the server applies
//! to parameters and replies.

#![no_main]

use apogee_ddp::ejson::{binary, date, to_ejson};
use apogee_ddp::frame::{Incoming, parse_packet};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for sockjs in [false, true] {
        let Ok(messages) = parse_packet(text, sockjs) else {
            continue;
        };
        for message in messages {
            let params = match message {
                Incoming::Method { params, .. } | Incoming::Sub { params, .. } => params,
                Incoming::Malformed { offending, .. } => vec![Value::Object(offending)],
                _ => continue,
            };
            for p in params {
                let _ = date(Some(&p));
                let _ = binary(&p);
                // A reply built from the parameters is still JSON the client can parse.
                let out = to_ejson(p).to_string();
                assert!(serde_json::from_str::<Value>(&out).is_ok());
            }
        }
    }
});
