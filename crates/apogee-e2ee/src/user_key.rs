//! A user's RSA-OAEP-256 keypair (2048 bits, e = 65537, SHA-256 and MGF1-SHA-256, empty label).

use rand::rngs::OsRng;
use rsa::rand_core::CryptoRngCore;
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::jwk::{self, RSA_BITS};
use crate::{E2eeError, Result};

/// The RSA ciphertext length of a 2048-bit key.
pub const RSA_BLOCK: usize = RSA_BITS / 8;

/// A user's public key, as stored in `users.e2e.public_key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserPublicKey(RsaPublicKey);

impl UserPublicKey {
    /// From the JWK string a client published.
    pub fn from_jwk(s: &str) -> Result<Self> {
        jwk::rsa_public_from_jwk(s).map(Self)
    }

    pub fn to_jwk(&self) -> String {
        jwk::rsa_public_to_jwk(&self.0)
    }

    /// RSA-OAEP-256 as WebCrypto does it; `rng` supplies the OAEP seed.
    pub fn encrypt_with(&self, rng: &mut impl CryptoRngCore, data: &[u8]) -> Result<Vec<u8>> {
        self.0
            .encrypt(rng, Oaep::new::<Sha256>(), data)
            .map_err(|_| E2eeError::Encrypt)
    }

    pub fn encrypt(&self, data: &[u8]) -> Result<Vec<u8>> {
        self.encrypt_with(&mut OsRng, data)
    }
}

/// A user's keypair. The private half never shows in `Debug`.
#[derive(Clone)]
pub struct UserKeyPair {
    private: RsaPrivateKey,
}

impl std::fmt::Debug for UserKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserKeyPair")
            .field("private", &"<redacted>")
            .finish()
    }
}

impl UserKeyPair {
    /// A fresh 2048-bit key, as `crypto.subtle.generateKey` makes for Rocket.Chat.
    pub fn generate() -> Result<Self> {
        let private =
            RsaPrivateKey::new(&mut OsRng, RSA_BITS).map_err(|_| E2eeError::Rsa("generate"))?;
        Ok(Self { private })
    }

    /// From the private JWK string (the client's localStorage `private_key`).
    pub fn from_private_jwk(s: &str) -> Result<Self> {
        jwk::rsa_private_from_jwk(s).map(|private| Self { private })
    }

    pub fn private_jwk(&self) -> Zeroizing<String> {
        jwk::rsa_private_to_jwk(&self.private)
    }

    pub fn public(&self) -> UserPublicKey {
        UserPublicKey(self.private.to_public_key())
    }

    /// The public JWK string to publish as `users.e2e.public_key`.
    pub fn public_jwk(&self) -> String {
        self.public().to_jwk()
    }

    pub fn decrypt(&self, data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if data.len() != RSA_BLOCK {
            return Err(E2eeError::Format("RSA block is not 256 bytes"));
        }
        self.private
            .decrypt(Oaep::new::<Sha256>(), data)
            .map(Zeroizing::new)
            .map_err(|_| E2eeError::Decrypt)
    }
}
