//! This server's federation identity: its name and its persistent ed25519 signing key, and the
//! self-signed key document (`GET /_matrix/key/v2/server`) other servers fetch to check our
//! signatures.

use crate::FedError;
use apogee_core::Core;
use apogee_core::store::FederationSigningKey;
use apogee_domain::Timestamp;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use ruma::signatures::{Ed25519KeyPair, KeyPair};
use ruma::{CanonicalJsonObject, CanonicalJsonValue, OwnedServerName};
use std::time::Duration;

/// How long other servers may cache our key document. Synapse publishes a day too; a shorter
/// time only makes peers refetch more often, a longer one delays a key rotation.
pub const KEY_VALIDITY: Duration = Duration::from_secs(24 * 3600);

/// Our server name and signing key.
pub struct Identity {
    pub server_name: OwnedServerName,
    key: Ed25519KeyPair,
    /// `ed25519:<version>`.
    key_id: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("server_name", &self.server_name)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Loads the signing key from the store, making one on the first start. Every node of a
    /// deployment reads the same key; it is never regenerated under the same id (peers cache a
    /// key id's public key until it expires).
    pub async fn load(core: &Core, server_name: OwnedServerName) -> Result<Self, FedError> {
        let stored = core
            .federation_signing_key(new_signing_key)
            .await
            .map_err(|e| FedError::Internal(format!("signing key: {e}")))?;
        Self::from_stored(server_name, &stored)
    }

    /// The identity of a stored key.
    pub fn from_stored(
        server_name: OwnedServerName,
        stored: &FederationSigningKey,
    ) -> Result<Self, FedError> {
        let version = stored.key_id.strip_prefix("ed25519:").ok_or_else(|| {
            FedError::Internal(format!("key id {} is not ed25519", stored.key_id))
        })?;
        let der = STANDARD
            .decode(&stored.pkcs8)
            .map_err(|e| FedError::Internal(format!("signing key encoding: {e}")))?;
        let key = Ed25519KeyPair::from_der(&der, version.to_string())
            .map_err(|e| FedError::Internal(format!("signing key: {e}")))?;
        Ok(Self {
            server_name,
            key,
            key_id: stored.key_id.clone(),
        })
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn key_pair(&self) -> &Ed25519KeyPair {
        &self.key
    }

    /// The public key, unpadded base64 as Matrix publishes it.
    pub fn public_key(&self) -> String {
        STANDARD_NO_PAD.encode(self.key.public_key())
    }

    /// Signs `object` in place (adds our entry under `signatures`).
    pub fn sign(&self, object: &mut CanonicalJsonObject) -> Result<(), FedError> {
        ruma::signatures::sign_json(self.server_name.as_str(), &self.key, object)
            .map_err(|e| FedError::Internal(format!("signing: {e}")))
    }

    /// Raw signature over bytes (X-Matrix signs the canonical request object).
    pub fn sign_bytes(&self, message: &[u8]) -> String {
        self.key.sign(message).base64()
    }

    /// `GET /_matrix/key/v2/server`: our current key, valid for [`KEY_VALIDITY`] from `now`,
    /// signed by itself.
    pub fn key_document(&self, now: Timestamp) -> Result<CanonicalJsonObject, FedError> {
        let valid_until = now.millis() + KEY_VALIDITY.as_millis() as i64;
        let verify_keys = CanonicalJsonObject::from([(
            self.key_id.clone(),
            CanonicalJsonValue::Object(CanonicalJsonObject::from([(
                "key".to_string(),
                CanonicalJsonValue::String(self.public_key()),
            )])),
        )]);
        let mut doc = CanonicalJsonObject::from([
            (
                "server_name".to_string(),
                CanonicalJsonValue::String(self.server_name.to_string()),
            ),
            (
                "valid_until_ts".to_string(),
                CanonicalJsonValue::Integer(ruma::Int::new_saturating(valid_until)),
            ),
            (
                "verify_keys".to_string(),
                CanonicalJsonValue::Object(verify_keys),
            ),
            (
                "old_verify_keys".to_string(),
                CanonicalJsonValue::Object(CanonicalJsonObject::new()),
            ),
        ]);
        self.sign(&mut doc)?;
        Ok(doc)
    }
}

/// A fresh key under a random version of six letters and digits (Synapse's style: `a_AbCd`).
pub(crate) fn new_signing_key() -> FederationSigningKey {
    let der = Ed25519KeyPair::generate();
    let version: String = apogee_domain::random_id()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(6)
        .collect();
    FederationSigningKey {
        key_id: format!("ed25519:a_{version}"),
        pkcs8: STANDARD.encode(der.as_slice()),
        created_at: Timestamp::now(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn identity(name: &str) -> Identity {
        Identity::from_stored(name.try_into().unwrap(), &new_signing_key()).unwrap()
    }

    #[test]
    fn key_document_is_self_signed_and_expires() {
        let id = identity("ours.test:8448");
        let now = Timestamp::from_millis(1_700_000_000_000);
        let doc = id.key_document(now).unwrap();
        assert_eq!(
            doc["valid_until_ts"],
            CanonicalJsonValue::Integer(ruma::Int::new_saturating(
                1_700_000_000_000i64 + 86_400_000
            ))
        );
        let keys = crate::keys::verify_keys_of(&doc).unwrap();
        let map = [(id.server_name.to_string(), keys)].into();
        ruma::signatures::verify_json(&map, &doc).expect("self-signature verifies");
        // Any change to the signed document breaks the signature.
        let mut forged = doc.clone();
        forged.insert(
            "server_name".into(),
            CanonicalJsonValue::String("evil.test".into()),
        );
        let map = [(
            "evil.test".to_string(),
            crate::keys::verify_keys_of(&doc).unwrap(),
        )]
        .into();
        assert!(ruma::signatures::verify_json(&map, &forged).is_err());
    }

    #[test]
    fn a_stored_key_loads_back_to_the_same_public_key() {
        let stored = new_signing_key();
        let a = Identity::from_stored("a.test".try_into().unwrap(), &stored).unwrap();
        let b = Identity::from_stored("a.test".try_into().unwrap(), &stored).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        assert_eq!(a.public_key().len(), 43, "32 bytes, unpadded base64");
        assert!(stored.key_id.starts_with("ed25519:a_"));
        assert!(!format!("{a:?}").contains(&stored.pkcs8));
    }
}
