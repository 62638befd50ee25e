//! The `Kms` port: seals secrets the server must keep but never store in clear — today the
//! private keys of encrypted participants (bots, `e2e_bots.rs`). Adapters live in `apogee-kms`:
//! a key-encryption key from a file or the environment (the default) and PKCS#11 tokens (HSMs).
//!
//! A sealed secret is `(key_ref, ciphertext)`: the ciphertext is stored by the caller (in the
//! database), `key_ref` names the key that opens it inside the KMS. Destroying that key makes
//! every copy of the ciphertext — backups included — useless.

use async_trait::async_trait;
use zeroize::Zeroizing;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("kms: {0}")]
pub struct KmsError(pub String);

/// A secret sealed by a [`Kms`].
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Which key inside the KMS opens it (a PKCS#11 object label; the file KEK's id).
    pub key_ref: String,
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealed")
            .field("key_ref", &self.key_ref)
            .field(
                "ciphertext",
                &format_args!("<{} bytes>", self.ciphertext.len()),
            )
            .finish()
    }
}

#[async_trait]
pub trait Kms: Send + Sync + std::fmt::Debug {
    /// `file`, `pkcs11`: recorded with each sealed secret.
    fn kind(&self) -> &'static str;
    /// Seals `plaintext` under a key of its own named after `label` (created here when the
    /// backend keeps one key per secret). `label` is bound to the ciphertext: opening it under
    /// another label fails.
    async fn seal(&self, label: &str, plaintext: &[u8]) -> Result<Sealed, KmsError>;
    async fn open(&self, label: &str, sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, KmsError>;
    /// Destroys the key behind `key_ref` where the backend has one per secret (idempotent).
    async fn destroy(&self, key_ref: &str) -> Result<(), KmsError>;
}
