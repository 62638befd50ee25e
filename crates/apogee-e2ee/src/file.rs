//! File encryption (e2ee.md §5): AES-256-CTR with WebCrypto's `{counter, length: 64}` — only the
//! low 64 bits of the 16-byte counter block count and wrap, so `Ctr64BE`, not `Ctr128BE`.

use aes::Aes256;
use ctr::cipher::{KeyIvInit, StreamCipher};
use rand::RngCore;
use rand::rngs::OsRng;
use serde_json::Value;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::codec::{b64, unb64};
use crate::jwk;
use crate::{E2eeError, Result};

const ALG: &str = "A256CTR";

/// A per-file key and counter block. `Debug` shows neither.
pub struct FileKey {
    key: Zeroizing<[u8; 32]>,
    counter: [u8; 16],
}

impl std::fmt::Debug for FileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileKey(<redacted>)")
    }
}

impl FileKey {
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(key.as_mut());
        let mut counter = [0u8; 16];
        OsRng.fill_bytes(&mut counter);
        Self { key, counter }
    }

    /// From a message attachment's `encryption: {key: <jwk object>, iv: b64(counter)}`.
    pub fn from_encryption(encryption: &Value) -> Result<Self> {
        let jwk_value = encryption.get("key").ok_or(E2eeError::Jwk("key"))?;
        let raw = jwk::oct_from_jwk(jwk_value, ALG, 32)?;
        let counter = unb64(
            encryption
                .get("iv")
                .and_then(Value::as_str)
                .ok_or(E2eeError::Format("iv"))?,
            "iv",
        )?;
        let counter: [u8; 16] = counter
            .try_into()
            .map_err(|_| E2eeError::Format("counter is not 16 bytes"))?;
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&raw);
        Ok(Self { key, counter })
    }

    /// `{key: <jwk object>, iv: b64(counter)}` for the attachment.
    pub fn encryption(&self) -> Value {
        serde_json::json!({ "key": jwk::oct_to_value(ALG, self.key.as_ref()), "iv": b64(&self.counter) })
    }

    /// Encrypts or decrypts (CTR is its own inverse).
    pub fn apply(&self, data: &[u8]) -> Vec<u8> {
        let mut out = data.to_vec();
        ctr::Ctr64BE::<Aes256>::new(self.key.as_ref().into(), (&self.counter).into())
            .apply_keystream(&mut out);
        out
    }
}

/// `hashes.sha256`: the hex SHA-256 of the plaintext (Rocket.Chat hashes the plaintext).
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
