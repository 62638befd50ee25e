//! Our events out: signing events core built, and delivering transactions. Core's outbox hands
//! over a destination's oldest waiting `federation.pdu` items (at most [`MAX_PDUS`], in order)
//! and keeps one attempt per destination at a time, never giving up; here they become one
//! `PUT /send/{txnId}` together with the destination's waiting EDUs. The txn id is derived
//! from the items' own ids, so a retry of the same contents — after a lost answer, or after a
//! restart — is the same transaction to the peer, and different contents never reuse an id.

use crate::Federation;
use crate::join::encode_segment;
use crate::outgoing::WaitingEdu;
use crate::pdu;
use crate::receive::{MAX_EDUS, MAX_PDUS};
use apogee_core::Core;
use apogee_core::outbox::{Deliverer, Delivery};
use apogee_core::store::OutboxItem;
use apogee_domain::Timestamp;
use http::Method;
use ruma::canonical_json::CanonicalJsonObject;
use serde_json::{Value, json};

impl Federation {
    /// Timestamps, hashes and signs an event core built; returns its id and the PDU.
    pub fn sign_built_event(
        &self,
        room_version: &str,
        event: Value,
    ) -> Result<(String, Value), String> {
        let rules = pdu::rules_for(room_version).map_err(|e| e.to_string())?;
        let object: CanonicalJsonObject =
            serde_json::from_value(event).map_err(|e| format!("not canonical JSON: {e}"))?;
        let signed = pdu::sign_new(object, &rules, &self.identity, Timestamp::now())
            .map_err(|e| e.to_string())?;
        Ok((signed.event_id.to_string(), signed.to_json()))
    }

    /// Sends one transaction of `pdus` (and the destination's waiting EDUs) to `destination`,
    /// holding the destination's in-flight lock: one transaction at a time per destination on
    /// this node. EDUs of a failed transaction go back to the front of the queue.
    pub async fn send_transaction(
        &self,
        destination: &str,
        txn_id: &str,
        pdus: Vec<Value>,
    ) -> Delivery {
        let _in_flight = self.outgoing.lock(destination).await;
        let edus = self.outgoing.take_edus(destination, MAX_EDUS);
        // EDUs change the contents: a transaction carrying them has an id of its own.
        let txn_id = if edus.is_empty() {
            txn_id.to_string()
        } else {
            format!("{txn_id}.{}", apogee_domain::random_id())
        };
        self.send_locked(destination, &txn_id, pdus, edus).await
    }

    /// `server` just talked to us, so it is up: what waits for it is tried now rather than
    /// when its backoff runs out (Synapse does the same), EDUs included.
    pub async fn peer_is_up(&self, server: &str) {
        let queue = format!("{}{server}", apogee_core::federated_outgoing::QUEUE_PREFIX);
        match self.core.retry_queue_now(&queue).await {
            Ok(true) => tracing::info!(%server, "peer is back; retrying its queue now"),
            Ok(false) => {}
            Err(e) => tracing::warn!(%server, error = %e.message, "cannot retry the peer's queue"),
        }
        if self.outgoing.waiting_edus(server) > 0 {
            self.flush_edus(server).await;
        }
    }

    /// Sends the destination's waiting EDUs on their own, unless a transaction in flight (which
    /// takes them when it starts) or an earlier flush already did.
    pub async fn flush_edus(&self, destination: &str) -> Delivery {
        let _in_flight = self.outgoing.lock(destination).await;
        let edus = self.outgoing.take_edus(destination, MAX_EDUS);
        if edus.is_empty() || !self.core.federation_server_allowed(destination) {
            return Delivery::Done;
        }
        let txn_id = apogee_domain::random_id();
        self.send_locked(destination, &txn_id, Vec::new(), edus)
            .await
    }

    async fn send_locked(
        &self,
        destination: &str,
        txn_id: &str,
        pdus: Vec<Value>,
        edus: Vec<WaitingEdu>,
    ) -> Delivery {
        let server = match crate::parse_server_name(destination) {
            Ok(s) => s,
            Err(e) => return Delivery::GiveUp(e.to_string()),
        };
        let (pdu_count, edu_count) = (pdus.len(), edus.len());
        let body = json!({
            "origin": self.identity.server_name.as_str(),
            "origin_server_ts": Timestamp::now().millis(),
            "pdus": pdus,
            "edus": edus.iter().map(|w| &w.edu).collect::<Vec<_>>(),
        });
        let target = format!("/_matrix/federation/v1/send/{}", encode_segment(txn_id));
        let outcome = match self
            .client
            .request(&server, Method::PUT, &target, Some(&body))
            .await
        {
            Ok(answer) if answer.status.is_success() => {
                // The peer took the transaction; a PDU it refused will not pass on a retry.
                if let Ok(v) = answer.json()
                    && let Some(results) = v.get("pdus").and_then(Value::as_object)
                {
                    for (id, result) in results {
                        if let Some(e) = result.get("error") {
                            tracing::warn!(%destination, event_id = %id, error = %e, "peer refused our PDU");
                        }
                    }
                }
                tracing::info!(%destination, %txn_id, pdus = pdu_count, edus = edu_count, "federation transaction delivered");
                Delivery::Done
            }
            Ok(answer) => Delivery::Retry(format!("{destination} answered {}", answer.status)),
            Err(e) => Delivery::Retry(format!("{destination}: {e}")),
        };
        if edus.is_empty() {
            return outcome;
        }
        if outcome == Delivery::Done {
            self.outgoing.edu_delivered(destination);
        } else {
            self.outgoing.put_back(destination, edus);
            self.retry_edus_later(destination);
        }
        outcome
    }

    /// Arms the retry of `destination`'s waiting EDUs after a failed transaction (unless one
    /// is armed): a timer of their own, so they do not wait for other traffic.
    fn retry_edus_later(&self, destination: &str) {
        let Some(delay) = self.outgoing.edu_failed(destination) else {
            return;
        };
        tracing::info!(%destination, ?delay, "EDUs not delivered; retrying them later");
        let (outgoing, wake, destination) = (
            self.outgoing.clone(),
            self.edu_wake.clone(),
            destination.to_string(),
        );
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            outgoing.edu_retry_fired(&destination);
            // The flusher sends them (and re-arms the retry if it fails again).
            let _ = wake.send(destination);
        });
    }
}

/// The transaction id of a batch: the item's own txn id when alone (as queued), else a digest
/// of the items' txn ids in order.
pub fn transaction_id(txn_ids: &[&str]) -> String {
    match txn_ids {
        [one] => (*one).to_string(),
        _ => {
            use base64::Engine;
            use sha2::Digest;
            let digest = sha2::Sha256::digest(txn_ids.join("\n").as_bytes());
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..18])
        }
    }
}

#[async_trait::async_trait]
impl Deliverer for Federation {
    async fn deliver(&self, core: &Core, payload: &Value) -> Delivery {
        let item = OutboxItem {
            id: String::new(),
            kind: apogee_core::federated_outgoing::FEDERATION_PDU.into(),
            queue: None,
            payload: payload.clone(),
            created_at: Timestamp::now(),
            attempts: 0,
            last_error: None,
        };
        self.deliver_batch(core, std::slice::from_ref(&item)).await
    }

    fn batch_limit(&self) -> usize {
        MAX_PDUS
    }

    async fn deliver_batch(&self, _core: &Core, items: &[OutboxItem]) -> Delivery {
        let mut destination = None;
        let mut txn_ids = Vec::with_capacity(items.len());
        let mut pdus = Vec::with_capacity(items.len());
        for item in items {
            let p = &item.payload;
            let (Some(to), Some(txn_id), Some(pdu)) = (
                p.get("destination").and_then(Value::as_str),
                p.get("txn_id").and_then(Value::as_str),
                p.get("pdu"),
            ) else {
                return Delivery::GiveUp("malformed federation.pdu item".into());
            };
            if *destination.get_or_insert(to) != to {
                return Delivery::GiveUp("one transaction for several destinations".into());
            }
            txn_ids.push(txn_id);
            pdus.push(pdu.clone());
        }
        let Some(destination) = destination else {
            return Delivery::Done;
        };
        if !self.core.federation_server_allowed(destination) {
            // Queued before the policy changed: an administrator's decision, not an outage.
            return Delivery::GiveUp(format!(
                "federation with {destination} is not allowed (Federation_*_Servers)"
            ));
        }
        self.send_transaction(destination, &transaction_id(&txn_ids), pdus)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::transaction_id;

    #[test]
    fn transaction_ids_follow_the_contents() {
        assert_eq!(transaction_id(&["abc"]), "abc");
        let two = transaction_id(&["a", "b"]);
        assert_eq!(two, transaction_id(&["a", "b"]), "stable across retries");
        assert_ne!(two, transaction_id(&["a", "b", "c"]));
        assert_ne!(two, transaction_id(&["b", "a"]));
        assert_eq!(two.len(), 24);
    }
}
