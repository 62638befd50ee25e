//! Rocket.Chat's client-side end-to-end encryption formats, byte-compatible with its web and
//! mobile clients (WebCrypto): the user's RSA-OAEP-256 keypair as JWKs, the private key wrapped
//! under a passphrase (current PBKDF2 + AES-GCM form and the legacy `$binary` AES-CBC form), room
//! keys (`A256GCM`, legacy `A128CBC`) wrapped for a user as an `E2EKey` string, message envelopes
//! (`rc.v2.aes-sha2`, `rc.v1.aes-sha2` and the oldest `msg` form) and AES-CTR file encryption with
//! WebCrypto's 64-bit counter; and Apogee's own M-of-N key recovery (`recovery`, Shamir shares
//! over GF(2^8) of a key that encrypts the private-key backup).
//!
//! The formats are described in `docs/E2EE.md` and checked against the WebCrypto vectors in
//! `tests/e2ee/` in both directions. Secret material is zeroized on drop and never shown by
//! `Debug`.

mod codec;
mod envelope;
mod error;
mod file;
mod jwk;
mod private_key;
mod recovery;
mod room_key;
mod shamir;
mod user_key;

pub use codec::{b64, b64url, latin1_decode, latin1_encode, unb64, unb64url};
pub use envelope::{Decrypted, Envelope, Keyring, V1_ALGORITHM, V2_ALGORITHM, V2Content};
pub use error::{E2eeError, Result};
pub use file::{FileKey, sha256_hex};
pub use private_key::{
    CURRENT_ITERATIONS, WrapParams, unwrap_private_key, wrap_private_key, wrap_private_key_legacy,
    wrap_private_key_with,
};
pub use recovery::{BackupKey, KeyShare, RecoveryBackup, SHARE_LEN};
pub use room_key::{E2EKey, RoomKey, RoomKeyAlg, new_key_id};
pub use user_key::{UserKeyPair, UserPublicKey};
