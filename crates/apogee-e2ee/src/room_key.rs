//! Room keys and the `E2EKey` string that carries one to a user (e2ee.md §3).
//!
//! The cipher always follows the key's JWK `alg` (`A256GCM` or the legacy `A128CBC`), never the
//! envelope, exactly as the client's `importKey` decides.

use aes::{Aes128, Aes256};
use aes_gcm::aead::consts::U16;
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, AesGcm, Nonce};
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use rand::RngCore;
use rand::rngs::OsRng;
use rsa::rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::codec::{b64, latin1_decode, latin1_encode, unb64};
use crate::jwk;
use crate::user_key::RSA_BLOCK;
use crate::{E2eeError, Result, UserKeyPair, UserPublicKey};

/// The base64 of one 256-byte RSA block: an `E2EKey`'s last 344 characters.
const RSA_B64_LEN: usize = 344;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoomKeyAlg {
    /// AES-GCM-256 (`A256GCM`): every room key since Rocket.Chat 7.0.
    Gcm256,
    /// AES-CBC-128 with PKCS#7 (`A128CBC`): rooms keyed before 7.0.
    Cbc128,
}

impl RoomKeyAlg {
    pub fn jwk_alg(self) -> &'static str {
        match self {
            RoomKeyAlg::Gcm256 => "A256GCM",
            RoomKeyAlg::Cbc128 => "A128CBC",
        }
    }

    fn key_len(self) -> usize {
        match self {
            RoomKeyAlg::Gcm256 => 32,
            RoomKeyAlg::Cbc128 => 16,
        }
    }

    /// The IV length the client uses when it encrypts with such a key.
    pub fn iv_len(self) -> usize {
        match self {
            RoomKeyAlg::Gcm256 => 12,
            RoomKeyAlg::Cbc128 => 16,
        }
    }
}

/// A room's symmetric key. Zeroized on drop; `Debug` shows only the algorithm.
#[derive(Clone)]
pub struct RoomKey {
    alg: RoomKeyAlg,
    key: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for RoomKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomKey")
            .field("alg", &self.alg)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// A new key id as current clients make them (`crypto.randomUUID()`).
pub fn new_key_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl RoomKey {
    /// A fresh AES-GCM-256 room key.
    pub fn generate() -> Self {
        let mut key = Zeroizing::new(vec![0u8; 32]);
        OsRng.fill_bytes(&mut key);
        Self {
            alg: RoomKeyAlg::Gcm256,
            key,
        }
    }

    pub fn from_raw(alg: RoomKeyAlg, raw: &[u8]) -> Result<Self> {
        if raw.len() != alg.key_len() {
            return Err(E2eeError::Jwk("key length"));
        }
        Ok(Self {
            alg,
            key: Zeroizing::new(raw.to_vec()),
        })
    }

    /// From the exported JWK string (`sessionKeyExportedString`).
    pub fn from_jwk(s: &str) -> Result<Self> {
        let v = jwk::parse_object(s)?;
        let alg = match v.get("alg").and_then(|a| a.as_str()) {
            Some("A256GCM") => RoomKeyAlg::Gcm256,
            Some("A128CBC") => RoomKeyAlg::Cbc128,
            _ => return Err(E2eeError::Jwk("alg")),
        };
        let key = jwk::oct_from_jwk(&v, alg.jwk_alg(), alg.key_len())?;
        Ok(Self { alg, key })
    }

    /// The JWK string as the client exports it (alphabetical members).
    pub fn to_jwk(&self) -> Zeroizing<String> {
        jwk::oct_to_jwk(self.alg.jwk_alg(), &self.key)
    }

    pub fn alg(&self) -> RoomKeyAlg {
        self.alg
    }

    pub fn raw(&self) -> &[u8] {
        &self.key
    }

    /// Encrypts with the given IV: 12 bytes (or 16) for GCM, with the tag appended; 16 for CBC.
    pub fn encrypt_with_iv(&self, iv: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        match (self.alg, iv.len()) {
            (RoomKeyAlg::Gcm256, 12) => Aes256Gcm::new_from_slice(&self.key)
                .map_err(|_| E2eeError::Encrypt)?
                .encrypt(Nonce::from_slice(iv), plaintext)
                .map_err(|_| E2eeError::Encrypt),
            (RoomKeyAlg::Gcm256, 16) => AesGcm::<Aes256, U16>::new_from_slice(&self.key)
                .map_err(|_| E2eeError::Encrypt)?
                .encrypt(aes_gcm::Nonce::<U16>::from_slice(iv), plaintext)
                .map_err(|_| E2eeError::Encrypt),
            (RoomKeyAlg::Cbc128, 16) => {
                Ok(cbc::Encryptor::<Aes128>::new_from_slices(&self.key, iv)
                    .map_err(|_| E2eeError::Encrypt)?
                    .encrypt_padded_vec_mut::<Pkcs7>(plaintext))
            }
            _ => Err(E2eeError::Format("IV length does not fit the key")),
        }
    }

    pub fn decrypt_with_iv(&self, iv: &[u8], ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let out = match (self.alg, iv.len()) {
            (RoomKeyAlg::Gcm256, 12) => Aes256Gcm::new_from_slice(&self.key)
                .map_err(|_| E2eeError::Decrypt)?
                .decrypt(Nonce::from_slice(iv), ciphertext),
            (RoomKeyAlg::Gcm256, 16) => AesGcm::<Aes256, U16>::new_from_slice(&self.key)
                .map_err(|_| E2eeError::Decrypt)?
                .decrypt(aes_gcm::Nonce::<U16>::from_slice(iv), ciphertext),
            (RoomKeyAlg::Cbc128, 16) => cbc::Decryptor::<Aes128>::new_from_slices(&self.key, iv)
                .map_err(|_| E2eeError::Decrypt)?
                .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
                .map_err(|_| aes_gcm::Error),
            _ => return Err(E2eeError::Format("IV length does not fit the key")),
        };
        out.map(Zeroizing::new).map_err(|_| E2eeError::Decrypt)
    }

    /// A fresh random IV of the length the client would use with this key.
    pub fn fresh_iv(&self) -> Vec<u8> {
        let mut iv = vec![0u8; self.alg.iv_len()];
        OsRng.fill_bytes(&mut iv);
        iv
    }
}

/// AES-CBC-256 for the legacy wrapped private key (PBKDF2 output as the key).
pub(crate) fn cbc256_decrypt(key: &[u8], iv: &[u8], ct: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    cbc::Decryptor::<Aes256>::new_from_slices(key, iv)
        .map_err(|_| E2eeError::Decrypt)?
        .decrypt_padded_vec_mut::<Pkcs7>(ct)
        .map(Zeroizing::new)
        .map_err(|_| E2eeError::Decrypt)
}

pub(crate) fn cbc256_encrypt(key: &[u8], iv: &[u8], pt: &[u8]) -> Result<Vec<u8>> {
    Ok(cbc::Encryptor::<Aes256>::new_from_slices(key, iv)
        .map_err(|_| E2eeError::Encrypt)?
        .encrypt_padded_vec_mut::<Pkcs7>(pt))
}

/// `kid + base64(RSA-OAEP(recipient, Binary.decode(roomKeyJwkString)))`: a room key for one user,
/// as stored in `E2EKey`, `E2ESuggestedKey` and `oldRoomKeys[].E2EKey`.
pub struct E2EKey;

impl E2EKey {
    /// Wraps `key` for `recipient` under `kid`.
    pub fn wrap(recipient: &UserPublicKey, kid: &str, key: &RoomKey) -> Result<String> {
        Self::wrap_with(&mut OsRng, recipient, kid, key)
    }

    /// As [`E2EKey::wrap`] with the OAEP seed drawn from `rng` (a fixed one reproduces vectors).
    pub fn wrap_with(
        rng: &mut impl CryptoRngCore,
        recipient: &UserPublicKey,
        kid: &str,
        key: &RoomKey,
    ) -> Result<String> {
        Self::wrap_jwk_with(rng, recipient, kid, &key.to_jwk())
    }

    /// Wraps an exported JWK string as is (its member order is kept, which legacy kids hash).
    pub fn wrap_jwk_with(
        rng: &mut impl CryptoRngCore,
        recipient: &UserPublicKey,
        kid: &str,
        jwk_string: &str,
    ) -> Result<String> {
        let plain = Zeroizing::new(latin1_decode(jwk_string)?);
        let ct = recipient.encrypt_with(rng, &plain)?;
        Ok(format!("{kid}{}", b64(&ct)))
    }

    /// Splits an `E2EKey` into its key id and RSA block — from the end, so 12- and 36-character
    /// key ids both work.
    pub fn split(s: &str) -> Result<(&str, Vec<u8>)> {
        if !s.is_ascii() || s.len() <= RSA_B64_LEN {
            return Err(E2eeError::Format("E2EKey"));
        }
        let (kid, data) = s.split_at(s.len() - RSA_B64_LEN);
        let block = unb64(data, "E2EKey")?;
        if block.len() != RSA_BLOCK {
            return Err(E2eeError::Format("E2EKey"));
        }
        Ok((kid, block))
    }

    /// Unwraps with the recipient's keypair: the key id, the room key and its JWK string.
    pub fn unwrap(keys: &UserKeyPair, s: &str) -> Result<(String, RoomKey, Zeroizing<String>)> {
        let (kid, block) = Self::split(s)?;
        let plain = keys.decrypt(&block)?;
        let jwk_string = Zeroizing::new(latin1_encode(&plain));
        let key = RoomKey::from_jwk(&jwk_string)?;
        Ok((kid.to_string(), key, jwk_string))
    }
}
