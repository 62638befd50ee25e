//! The private key as stored in `users.e2e.private_key` (e2ee.md §2): wrapped under a key derived
//! from the user's passphrase.
//!
//! Current form: `{"iv","ciphertext","salt","iterations"}` — PBKDF2-HMAC-SHA-256 over
//! `Binary.decode(passphrase)` with salt `v2:<userId>:<uuid>` and 100000 iterations, AES-256-GCM
//! with a 12-byte IV. Legacy form: `{"$binary": b64(iv16 ‖ ct)}` — salt = user id, 1000
//! iterations, AES-256-CBC. Decoding picks the cipher by IV length, as the client does.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use rand::rngs::OsRng;
use serde::Serialize;
use serde_json::Value;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::codec::{b64, latin1_decode, latin1_encode, unb64};
use crate::room_key::{cbc256_decrypt, cbc256_encrypt};
use crate::{E2eeError, Result};

pub const CURRENT_ITERATIONS: u32 = 100_000;
const LEGACY_ITERATIONS: u32 = 1000;
/// Refuse absurd iteration counts from a stored string rather than spin for minutes.
const MAX_ITERATIONS: u32 = 10_000_000;

/// The random parts of a wrapping, fixed only to reproduce vectors.
pub struct WrapParams {
    pub salt: String,
    pub iv: [u8; 12],
    pub iterations: u32,
}

impl WrapParams {
    pub fn fresh(user_id: &str) -> Self {
        let mut iv = [0u8; 12];
        OsRng.fill_bytes(&mut iv);
        Self {
            salt: format!("v2:{user_id}:{}", uuid::Uuid::new_v4()),
            iv,
            iterations: CURRENT_ITERATIONS,
        }
    }
}

#[derive(Serialize)]
struct Stored<'a> {
    iv: String,
    ciphertext: String,
    salt: &'a str,
    iterations: u32,
}

fn derive(passphrase: &str, salt: &str, iterations: u32) -> Result<Zeroizing<[u8; 32]>> {
    let password = Zeroizing::new(latin1_decode(passphrase)?);
    let salt = latin1_decode(salt)?;
    let mut out = Zeroizing::new([0u8; 32]);
    pbkdf2::pbkdf2_hmac::<Sha256>(&password, &salt, iterations, out.as_mut());
    Ok(out)
}

/// Wraps a private JWK string in the current form with a fresh salt and IV.
pub fn wrap_private_key(private_jwk: &str, passphrase: &str, user_id: &str) -> Result<String> {
    wrap_private_key_with(private_jwk, passphrase, &WrapParams::fresh(user_id))
}

pub fn wrap_private_key_with(
    private_jwk: &str,
    passphrase: &str,
    p: &WrapParams,
) -> Result<String> {
    let key = derive(passphrase, &p.salt, p.iterations)?;
    let plain = Zeroizing::new(latin1_decode(private_jwk)?);
    let ct = Aes256Gcm::new_from_slice(key.as_ref())
        .map_err(|_| E2eeError::Encrypt)?
        .encrypt(Nonce::from_slice(&p.iv), plain.as_slice())
        .map_err(|_| E2eeError::Encrypt)?;
    Ok(serde_json::to_string(&Stored {
        iv: b64(&p.iv),
        ciphertext: b64(&ct),
        salt: &p.salt,
        iterations: p.iterations,
    })
    .expect("stored key serialises"))
}

/// The legacy `{"$binary": …}` form, for tests of the decoder and old data.
pub fn wrap_private_key_legacy(
    private_jwk: &str,
    passphrase: &str,
    user_id: &str,
    iv: [u8; 16],
) -> Result<String> {
    let key = derive(passphrase, user_id, LEGACY_ITERATIONS)?;
    let plain = Zeroizing::new(latin1_decode(private_jwk)?);
    let mut raw = iv.to_vec();
    raw.extend(cbc256_encrypt(key.as_ref(), &iv, &plain)?);
    Ok(serde_json::json!({ "$binary": b64(&raw) }).to_string())
}

/// The private JWK string from either stored form.
pub fn unwrap_private_key(
    stored: &str,
    passphrase: &str,
    user_id: &str,
) -> Result<Zeroizing<String>> {
    let v: Value = serde_json::from_str(stored).map_err(|_| E2eeError::Format("private key"))?;
    let (iv, ct, salt, iterations) = if let Some(bin) = v.get("$binary").and_then(Value::as_str) {
        let raw = unb64(bin, "private key")?;
        if raw.len() <= 16 {
            return Err(E2eeError::Format("private key"));
        }
        (
            raw[..16].to_vec(),
            raw[16..].to_vec(),
            user_id.to_string(),
            LEGACY_ITERATIONS,
        )
    } else {
        let field = |name: &'static str| {
            v.get(name)
                .and_then(Value::as_str)
                .ok_or(E2eeError::Format("private key"))
        };
        let iterations = v
            .get("iterations")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| (1..=MAX_ITERATIONS).contains(n))
            .ok_or(E2eeError::Format("private key iterations"))?;
        (
            unb64(field("iv")?, "iv")?,
            unb64(field("ciphertext")?, "ciphertext")?,
            field("salt")?.to_string(),
            iterations,
        )
    };
    let key = derive(passphrase, &salt, iterations)?;
    let plain = if iv.len() == 16 {
        cbc256_decrypt(key.as_ref(), &iv, &ct)?
    } else if iv.len() == 12 {
        Zeroizing::new(
            Aes256Gcm::new_from_slice(key.as_ref())
                .map_err(|_| E2eeError::Decrypt)?
                .decrypt(Nonce::from_slice(&iv), ct.as_slice())
                .map_err(|_| E2eeError::Decrypt)?,
        )
    } else {
        return Err(E2eeError::Format("private key IV length"));
    };
    Ok(Zeroizing::new(latin1_encode(&plain)))
}
