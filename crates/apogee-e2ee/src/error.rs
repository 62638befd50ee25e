use thiserror::Error;

/// Why a key or an envelope could not be used. Never carries key material or plaintext.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum E2eeError {
    #[error("invalid base64 in {0}")]
    Base64(&'static str),
    #[error("invalid JWK: {0}")]
    Jwk(&'static str),
    #[error("invalid format: {0}")]
    Format(&'static str),
    #[error("character above U+00FF in key material")]
    Latin1,
    #[error("decryption failed")]
    Decrypt,
    #[error("encryption failed")]
    Encrypt,
    #[error("no room key for key id")]
    UnknownKey,
    #[error("RSA key rejected: {0}")]
    Rsa(&'static str),
}

pub type Result<T> = std::result::Result<T, E2eeError>;
