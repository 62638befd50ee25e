//! [`Kms`](apogee_core::kms::Kms) adapters.
//!
//! - [`FileKms`] (the default): AES-256-GCM under a key-encryption key read from the environment
//!   (`APOGEE_KMS_KEY`, base64 of 32 bytes) or a file (created with mode 0600 on first start).
//!   The sealed secret is bound to its label (as associated data). It keeps one key for every
//!   secret, so destroying a secret is deleting its sealed copy.
//! - [`Pkcs11Kms`] (feature `pkcs11`): one non-extractable AES-256 key per secret, generated
//!   inside the token (an HSM; SoftHSM in tests) and labelled after the secret; AES-GCM runs in
//!   the token and revocation destroys the key object.

mod file;
#[cfg(feature = "pkcs11")]
mod pkcs11;

pub use file::FileKms;
#[cfg(feature = "pkcs11")]
pub use pkcs11::{Pkcs11Config, Pkcs11Kms};
