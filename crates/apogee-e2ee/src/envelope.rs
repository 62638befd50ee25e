//! Message envelopes (e2ee.md §4): `content: {algorithm: 'rc.v2.aes-sha2', kid, iv, ciphertext}`,
//! the legacy `content: {algorithm: 'rc.v1.aes-sha2', ciphertext: kid12 + b64(iv16 ‖ ct)}` and the
//! oldest form with that v1 string in `msg`.

use serde::Serialize;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::codec::{b64, unb64};
use crate::{E2eeError, Result, RoomKey};

pub const V2_ALGORITHM: &str = "rc.v2.aes-sha2";
pub const V1_ALGORITHM: &str = "rc.v1.aes-sha2";
/// v1 strings start with a 12-character key id.
const V1_KID_LEN: usize = 12;
const V1_IV_LEN: usize = 16;

/// A parsed envelope, before decryption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The key id (12 characters in v1).
    pub kid: String,
    pub iv: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub version: u8,
}

/// A v2 `content`, whose members serialise in the client's order (algorithm, kid, iv,
/// ciphertext) when it is written as a string (`rooms.media`'s `content` field).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct V2Content {
    pub algorithm: &'static str,
    pub kid: String,
    pub iv: String,
    pub ciphertext: String,
}

impl V2Content {
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("envelope serialises")
    }

    pub fn to_json_string(&self) -> String {
        serde_json::to_string(self).expect("envelope serialises")
    }
}

impl Envelope {
    /// From a message's `content` (an object, or a string treated as v1) or, when it has none, its
    /// `msg` (the oldest shape).
    pub fn from_message(msg: Option<&str>, content: Option<&Value>) -> Result<Self> {
        match content {
            Some(Value::Object(c)) => {
                let ciphertext = c.get("ciphertext").and_then(Value::as_str);
                match c.get("algorithm").and_then(Value::as_str) {
                    Some(V2_ALGORITHM) => {
                        let kid = c.get("kid").and_then(Value::as_str);
                        let iv = c.get("iv").and_then(Value::as_str);
                        let (Some(kid), Some(iv), Some(ct)) = (kid, iv, ciphertext) else {
                            return Err(E2eeError::Format("v2 envelope members"));
                        };
                        Ok(Self {
                            kid: kid.to_string(),
                            iv: unb64(iv, "iv")?,
                            ciphertext: unb64(ct, "ciphertext")?,
                            version: 2,
                        })
                    }
                    Some(V1_ALGORITHM) => {
                        Self::parse_v1(ciphertext.ok_or(E2eeError::Format("v1 ciphertext"))?)
                    }
                    _ => Err(E2eeError::Format("algorithm")),
                }
            }
            Some(Value::String(s)) => Self::parse_v1(s),
            Some(_) => Err(E2eeError::Format("content")),
            None => Self::parse_v1(msg.ok_or(E2eeError::Format("no ciphertext"))?),
        }
    }

    fn parse_v1(s: &str) -> Result<Self> {
        if !s.is_ascii() || s.len() <= V1_KID_LEN {
            return Err(E2eeError::Format("v1 ciphertext"));
        }
        let (kid, rest) = s.split_at(V1_KID_LEN);
        let raw = unb64(rest, "v1 ciphertext")?;
        if raw.len() <= V1_IV_LEN {
            return Err(E2eeError::Format("v1 ciphertext"));
        }
        Ok(Self {
            kid: kid.to_string(),
            iv: raw[..V1_IV_LEN].to_vec(),
            ciphertext: raw[V1_IV_LEN..].to_vec(),
            version: 1,
        })
    }

    /// Encrypts `payload` (serialised as JSON, UTF-8, as `EJSON.stringify` + `TextEncoder` do)
    /// into a v2 `content` object with a fresh IV.
    pub fn seal_v2(key: &RoomKey, kid: &str, payload: &Value) -> Result<V2Content> {
        Self::seal_v2_with_iv(key, kid, &key.fresh_iv(), payload)
    }

    /// As [`Envelope::seal_v2`] with a given IV (to reproduce vectors).
    pub fn seal_v2_with_iv(
        key: &RoomKey,
        kid: &str,
        iv: &[u8],
        payload: &Value,
    ) -> Result<V2Content> {
        let plain = Zeroizing::new(serde_json::to_vec(payload).map_err(|_| E2eeError::Encrypt)?);
        let ct = key.encrypt_with_iv(iv, &plain)?;
        Ok(V2Content {
            algorithm: V2_ALGORITHM,
            kid: kid.to_string(),
            iv: b64(iv),
            ciphertext: b64(&ct),
        })
    }

    /// The legacy v1 string (`kid12 + b64(iv16 ‖ ct)`) of an EJSON payload string; only to
    /// reproduce old data (clients stopped writing v1).
    pub fn seal_v1_string(key: &RoomKey, kid: &str, iv: &[u8], ejson: &str) -> Result<String> {
        if kid.len() != V1_KID_LEN || iv.len() != V1_IV_LEN {
            return Err(E2eeError::Format(
                "v1 needs a 12-character kid and a 16-byte IV",
            ));
        }
        let mut raw = iv.to_vec();
        raw.extend(key.encrypt_with_iv(iv, ejson.as_bytes())?);
        Ok(format!("{kid}{}", b64(&raw)))
    }

    /// Decrypts with the keyring's key for this envelope's kid (or its current key, as the client's
    /// `retrieveDecryptionKey` falls back).
    pub fn open(&self, keys: &Keyring) -> Result<Decrypted> {
        let key = keys.find(&self.kid).ok_or(E2eeError::UnknownKey)?;
        let plain = key.decrypt_with_iv(&self.iv, &self.ciphertext)?;
        let text =
            std::str::from_utf8(&plain).map_err(|_| E2eeError::Format("payload is not UTF-8"))?;
        let mut value: Value =
            serde_json::from_str(text).map_err(|_| E2eeError::Format("payload is not JSON"))?;
        let Some(obj) = value.as_object_mut() else {
            return Err(E2eeError::Format("payload is not an object"));
        };
        // The oldest payloads carry `text`; the client shows it as `msg`.
        if !obj.contains_key("msg")
            && let Some(t) = obj.get("text").cloned()
        {
            obj.insert("msg".into(), t);
        }
        Ok(Decrypted { payload: value })
    }
}

/// A decrypted payload: `{msg, attachments?, files?, file?}` (or the oldest `{_id, text, userId,
/// ts}` with `msg` filled in). `Debug` never shows it.
pub struct Decrypted {
    pub payload: Value,
}

impl std::fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Decrypted(<redacted>)")
    }
}

impl Decrypted {
    pub fn msg(&self) -> Option<&str> {
        self.payload.get("msg").and_then(Value::as_str)
    }
}

/// A user's keys for one room: the current one and the history (`oldRoomKeys`).
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    current: Option<(String, RoomKey)>,
    old: Vec<(String, RoomKey)>,
}

impl Keyring {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_current(mut self, kid: impl Into<String>, key: RoomKey) -> Self {
        self.current = Some((kid.into(), key));
        self
    }

    pub fn add_old(&mut self, kid: impl Into<String>, key: RoomKey) {
        self.old.push((kid.into(), key));
    }

    pub fn current(&self) -> Option<(&str, &RoomKey)> {
        self.current.as_ref().map(|(k, v)| (k.as_str(), v))
    }

    /// The key with this id, else the current key.
    pub fn find(&self, kid: &str) -> Option<&RoomKey> {
        self.current
            .iter()
            .chain(self.old.iter())
            .find(|(k, _)| k == kid)
            .or(self.current.as_ref())
            .map(|(_, key)| key)
    }
}
