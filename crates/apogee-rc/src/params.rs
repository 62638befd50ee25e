//! Request parameters: the JSON body of a POST or the query string of a GET, as one JSON object,
//! checked against Rocket.Chat's request schemas where it has one.

use crate::error::ApiError;
use crate::validate;
use apogee_core::domain::Timestamp;
use apogee_core::store::Page;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::Method;
use serde_json::{Map, Value};

/// Largest accepted request body; uploads have their own route and limit.
pub const MAX_BODY: usize = 1 << 20;

/// The request's parameters as a JSON object.
#[derive(Debug, Default, Clone)]
pub struct Params(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let query = req.uri().query().unwrap_or_default().to_string();
        if req.method() == Method::GET || req.method() == Method::DELETE {
            return Ok(Params(parse_query(&query)));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| ApiError::failure("Request body too large or unreadable"))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Params(parse_query(&query)));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(Params(map)),
            Ok(_) => Err(ApiError::invalid_params("must be object")),
            Err(e) => Err(ApiError::failure(format!("Invalid JSON body: {e}"))),
        }
    }
}

fn parse_query(query: &str) -> Map<String, Value> {
    let mut map = Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        map.insert(decode(k), Value::String(decode(v)));
    }
    map
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Params {
    /// Checks the parameters against the named Rocket.Chat request schema.
    pub fn validate(&self, schema: &str) -> Result<&Self, ApiError> {
        validate::validate(schema, &Value::Object(self.0.clone()))
            .map_err(|e| ApiError::invalid_params(e.message))?;
        Ok(self)
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    /// A non-empty string parameter.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// A required non-empty string, with Rocket.Chat's wording when missing.
    pub fn required(&self, key: &str) -> Result<&str, ApiError> {
        self.str(key)
            .ok_or_else(|| ApiError::invalid_params(format!("must have required property '{key}'")))
    }

    /// A boolean given as JSON or as `"true"`/`"false"` in a query string.
    pub fn bool(&self, key: &str) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(*b),
            Value::String(s) => match s.as_str() {
                "true" | "1" => Some(true),
                "false" | "0" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    pub fn int(&self, key: &str) -> Option<i64> {
        match self.get(key)? {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// An ISO date parameter; a malformed one is an error, not ignored.
    pub fn date(&self, key: &str) -> Result<Option<Timestamp>, ApiError> {
        match self.str(key) {
            None => Ok(None),
            Some(s) => Timestamp::parse(s).map(Some).ok_or_else(|| {
                ApiError::invalid_params(format!(
                    "The \"{key}\" query parameter must be a valid date."
                ))
            }),
        }
    }

    /// Rocket.Chat's `count`/`offset` paging, bounded by `API_Upper_Count_Limit`.
    pub fn page(&self, default_count: i64, upper: i64) -> Page {
        let count = self.int("count").unwrap_or(default_count);
        let count = if count <= 0 { upper } else { count.min(upper) };
        Page {
            offset: self.int("offset").unwrap_or(0).max(0),
            count,
        }
    }

    /// A list given as a JSON array or a comma-separated string.
    pub fn list(&self, key: &str) -> Vec<String> {
        match self.get(key) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            Some(Value::String(s)) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode() {
        let m = parse_query("roomId=GEN%20ERAL&count=5&flag&q=a+b&bad=%zz");
        assert_eq!(m["roomId"], "GEN ERAL");
        assert_eq!(m["count"], "5");
        assert_eq!(m["flag"], "");
        assert_eq!(m["q"], "a b");
        assert_eq!(m["bad"], "%zz");
        assert_eq!(parse_query("x=%e2%82%ac")["x"], "€");
        assert_eq!(parse_query("x=%4")["x"], "%4");
    }

    #[test]
    fn paging_is_bounded() {
        let p = Params(parse_query("count=500&offset=-3"));
        assert_eq!(
            p.page(50, 100),
            Page {
                offset: 0,
                count: 100
            }
        );
        assert_eq!(
            Params::default().page(50, 100),
            Page {
                offset: 0,
                count: 50
            }
        );
    }
}
