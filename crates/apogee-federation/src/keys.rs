//! Remote servers' public keys: fetched from the server itself (`GET /_matrix/key/v2/server`),
//! checked (right server, self-signed by the keys it lists), kept in the store with how long
//! each may be used, and held in memory. A key not known, or known but expired, is fetched
//! again, at most once per [`REFETCH_AFTER`] per server so a peer sending unknown key ids
//! cannot make us hammer it (or be made to hammer someone else).

use crate::FedError;
use crate::client::Client;
use crate::identity::Identity;
use apogee_core::Core;
use apogee_core::store::FederationServerKey;
use apogee_domain::Timestamp;
use ruma::serde::Base64;
use ruma::signatures::{PublicKeyMap, PublicKeySet};
use ruma::{CanonicalJsonObject, CanonicalJsonValue, ServerName};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A server's fetch is not repeated sooner than this.
pub const REFETCH_AFTER: Duration = Duration::from_secs(30);
/// A published `valid_until_ts` further out than this is cut to it (the spec's rule for room
/// versions 5 and up: a stolen key cannot be made to live forever).
const MAX_VALIDITY: Duration = Duration::from_secs(7 * 24 * 3600);

pub struct KeyRing {
    core: Arc<Core>,
    identity: Arc<Identity>,
    client: Arc<Client>,
    known: Mutex<HashMap<String, Vec<FederationServerKey>>>,
    last_fetch: Mutex<HashMap<String, Instant>>,
    fetching: tokio::sync::Mutex<()>,
}

impl KeyRing {
    pub fn new(core: Arc<Core>, identity: Arc<Identity>, client: Arc<Client>) -> Self {
        Self {
            core,
            identity,
            client,
            known: Mutex::new(HashMap::new()),
            last_fetch: Mutex::new(HashMap::new()),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// `server`'s key `key_id` (unpadded base64), if it is valid at `at`.
    pub async fn public_key(
        &self,
        server: &ServerName,
        key_id: &str,
        at: Timestamp,
    ) -> Result<String, FedError> {
        if server == self.identity.server_name && key_id == self.identity.key_id() {
            return Ok(self.identity.public_key());
        }
        let usable = |keys: &[FederationServerKey]| {
            keys.iter()
                .find(|k| k.key_id == key_id && k.valid_until.millis() >= at.millis())
                .map(|k| k.public_key.clone())
        };
        let cached = self.known.lock().unwrap().get(server.as_str()).cloned();
        let keys = match cached {
            Some(keys) => keys,
            None => {
                let stored = self
                    .core
                    .federation_server_keys(server.as_str())
                    .await
                    .map_err(|e| FedError::Internal(format!("server keys: {e}")))?;
                self.known
                    .lock()
                    .unwrap()
                    .insert(server.to_string(), stored.clone());
                stored
            }
        };
        if let Some(key) = usable(&keys) {
            return Ok(key);
        }
        // One fetch at a time: a caller that waited for another's fetch uses its result rather
        // than being refused by the refetch limit (a join's PDU checks race the peer's own
        // requests to us).
        let _fetching = self.fetching.lock().await;
        let fresh = self.known.lock().unwrap().get(server.as_str()).cloned();
        if let Some(key) = fresh.as_deref().and_then(usable) {
            return Ok(key);
        }
        {
            let mut last = self.last_fetch.lock().unwrap();
            if let Some(at) = last.get(server.as_str())
                && at.elapsed() < REFETCH_AFTER
            {
                return Err(FedError::UnknownKey(format!(
                    "{server} {key_id} (fetched moments ago)"
                )));
            }
            last.insert(server.to_string(), Instant::now());
        }
        let fetched = self.fetch(server).await?;
        let found = usable(&fetched);
        self.known
            .lock()
            .unwrap()
            .insert(server.to_string(), fetched);
        found.ok_or_else(|| FedError::UnknownKey(format!("{server} {key_id}")))
    }

    /// Fetches, checks and stores `server`'s key document; returns every key now known.
    async fn fetch(&self, server: &ServerName) -> Result<Vec<FederationServerKey>, FedError> {
        let answer = self
            .client
            .get_unsigned(server, "/_matrix/key/v2/server")
            .await?;
        if !answer.status.is_success() {
            return Err(FedError::BadResponse(format!(
                "{server} key/v2/server: {}",
                answer.status
            )));
        }
        let doc: CanonicalJsonObject = serde_json::from_slice(&answer.body).map_err(|e| {
            FedError::BadResponse(format!("{server} key/v2/server: not canonical JSON: {e}"))
        })?;
        let keys = check_key_document(server, &doc, Timestamp::now())?;
        self.core
            .remember_federation_server_keys(keys)
            .await
            .map_err(|e| FedError::Internal(format!("server keys: {e}")))?;
        self.core
            .federation_server_keys(server.as_str())
            .await
            .map_err(|e| FedError::Internal(format!("server keys: {e}")))
    }
}

/// The `verify_keys` of a key document as a key set (for checking its self-signature).
pub fn verify_keys_of(doc: &CanonicalJsonObject) -> Result<PublicKeySet, FedError> {
    let bad = |what: &str| FedError::BadResponse(format!("key document: {what}"));
    let Some(CanonicalJsonValue::Object(verify_keys)) = doc.get("verify_keys") else {
        return Err(bad("no verify_keys"));
    };
    let mut set = PublicKeySet::new();
    for (id, entry) in verify_keys {
        let key = entry
            .as_object()
            .and_then(|o| o.get("key"))
            .and_then(CanonicalJsonValue::as_str)
            .ok_or_else(|| bad("a verify key without key"))?;
        set.insert(
            id.clone(),
            Base64::parse(key).map_err(|_| bad("a key that is not base64"))?,
        );
    }
    Ok(set)
}

/// Checks a key document fetched from `server` at `now`: it names `server`, is signed by the
/// keys it lists, and says until when. Returns the keys to store (old keys until their
/// `expired_ts`, current ones until `valid_until_ts`, at most a week from now).
pub fn check_key_document(
    server: &ServerName,
    doc: &CanonicalJsonObject,
    now: Timestamp,
) -> Result<Vec<FederationServerKey>, FedError> {
    let bad = |what: String| FedError::BadResponse(format!("{server} key document: {what}"));
    if doc.get("server_name").and_then(CanonicalJsonValue::as_str) != Some(server.as_str()) {
        return Err(bad("names another server".into()));
    }
    let valid_until = doc
        .get("valid_until_ts")
        .and_then(CanonicalJsonValue::as_integer)
        .map(i64::from)
        .ok_or_else(|| bad("no valid_until_ts".into()))?;
    let set = verify_keys_of(doc)?;
    if set.is_empty() {
        return Err(bad("no keys".into()));
    }
    let map: PublicKeyMap = [(server.to_string(), set.clone())].into();
    ruma::signatures::verify_json(&map, doc)
        .map_err(|e| bad(format!("self-signature does not verify: {e}")))?;
    let cap = now.millis() + MAX_VALIDITY.as_millis() as i64;
    let mut keys: Vec<FederationServerKey> = set
        .iter()
        .map(|(id, key)| FederationServerKey {
            server_name: server.to_string(),
            key_id: id.clone(),
            public_key: key.encode(),
            valid_until: Timestamp::from_millis(valid_until.min(cap)),
            fetched_at: now,
        })
        .collect();
    if let Some(CanonicalJsonValue::Object(old)) = doc.get("old_verify_keys") {
        for (id, entry) in old {
            let Some(entry) = entry.as_object() else {
                continue;
            };
            let (Some(key), Some(expired)) = (
                entry.get("key").and_then(CanonicalJsonValue::as_str),
                entry
                    .get("expired_ts")
                    .and_then(CanonicalJsonValue::as_integer),
            ) else {
                continue;
            };
            if set.contains_key(id) || Base64::<ruma::serde::base64::Standard>::parse(key).is_err()
            {
                continue;
            }
            keys.push(FederationServerKey {
                server_name: server.to_string(),
                key_id: id.clone(),
                public_key: key.to_string(),
                valid_until: Timestamp::from_millis(i64::from(expired).min(cap)),
                fetched_at: now,
            });
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    fn identity(name: &str) -> Identity {
        let der = ruma::signatures::Ed25519KeyPair::generate();
        let stored = apogee_core::store::FederationSigningKey {
            key_id: "ed25519:t1".into(),
            pkcs8: base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                der.as_slice(),
            ),
            created_at: Timestamp::now(),
        };
        Identity::from_stored(name.try_into().unwrap(), &stored).unwrap()
    }

    #[test]
    fn key_documents_are_checked() {
        let id = identity("peer.test");
        let server = <&ServerName>::try_from("peer.test").unwrap();
        let now = Timestamp::from_millis(1_000_000);
        let doc = id.key_document(now).unwrap();
        let keys = check_key_document(server, &doc, now).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].public_key, id.public_key());
        assert_eq!(keys[0].valid_until.millis(), 1_000_000 + 86_400_000);

        let other = <&ServerName>::try_from("other.test").unwrap();
        assert!(
            check_key_document(other, &doc, now).is_err(),
            "wrong server"
        );

        let mut tampered = doc.clone();
        tampered.insert(
            "valid_until_ts".into(),
            CanonicalJsonValue::Integer(9_000_000_000_000i64.try_into().unwrap()),
        );
        assert!(
            check_key_document(server, &tampered, now).is_err(),
            "signature broken"
        );

        // Signed by a key it does not list: refused.
        let impostor = identity("peer.test");
        let mut forged = doc.clone();
        forged.remove("signatures");
        impostor.sign(&mut forged).unwrap();
        assert!(check_key_document(server, &forged, now).is_err());
    }

    #[test]
    fn validity_is_capped_at_a_week_and_old_keys_kept_until_expiry() {
        let id = identity("peer.test");
        let server = <&ServerName>::try_from("peer.test").unwrap();
        let now = Timestamp::from_millis(1_000_000);
        let mut doc = id.key_document(now).unwrap();
        doc.remove("signatures");
        doc.insert(
            "valid_until_ts".into(),
            CanonicalJsonValue::Integer(4_000_000_000_000i64.try_into().unwrap()),
        );
        let old: CanonicalJsonObject = serde_json::from_value(serde_json::json!({
            "ed25519:old": {"key": "Gu6A3PqW5HPQ9i0clP4nc2lY7ieqWUWpkmSXWKR9JWE", "expired_ts": 500_000}
        }))
        .unwrap();
        doc.insert("old_verify_keys".into(), CanonicalJsonValue::Object(old));
        id.sign(&mut doc).unwrap();
        let keys = check_key_document(server, &doc, now).unwrap();
        let current = keys.iter().find(|k| k.key_id == "ed25519:t1").unwrap();
        assert_eq!(current.valid_until.millis(), 1_000_000 + 7 * 86_400_000);
        let old = keys.iter().find(|k| k.key_id == "ed25519:old").unwrap();
        assert_eq!(old.valid_until.millis(), 500_000);
    }
}
