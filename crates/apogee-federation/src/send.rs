//! Our events out: signing events core built, and delivering the outbox's `federation.pdu`
//! items — one `PUT /send/{txnId}` per item, the txn id fixed when the item was queued, so a
//! retry after a lost answer is recognised by the peer as the same transaction. Core's outbox
//! keeps each destination's items in order and one in flight, and never gives them up.

use crate::Federation;
use crate::join::encode_segment;
use crate::pdu;
use apogee_core::Core;
use apogee_core::outbox::{Deliverer, Delivery};
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

    /// Sends one PDU to `destination` as transaction `txn_id`.
    pub async fn send_pdu(&self, destination: &str, txn_id: &str, pdu: &Value) -> Delivery {
        let server = match crate::parse_server_name(destination) {
            Ok(s) => s,
            Err(e) => return Delivery::GiveUp(e.to_string()),
        };
        let body = json!({
            "origin": self.identity.server_name.as_str(),
            "origin_server_ts": Timestamp::now().millis(),
            "pdus": [pdu],
        });
        let target = format!("/_matrix/federation/v1/send/{}", encode_segment(txn_id));
        match self
            .client
            .request(&server, Method::PUT, &target, Some(&body))
            .await
        {
            Ok(answer) if answer.status.is_success() => {
                // The peer took the transaction; a PDU it refused will not pass on a retry.
                if let Ok(v) = answer.json()
                    && let Some(errors) = v.get("pdus").and_then(Value::as_object)
                {
                    for (id, result) in errors {
                        if let Some(e) = result.get("error") {
                            tracing::warn!(%destination, event_id = %id, error = %e, "peer refused our PDU");
                        }
                    }
                }
                Delivery::Done
            }
            Ok(answer) => Delivery::Retry(format!("{destination} answered {}", answer.status)),
            Err(e) => Delivery::Retry(format!("{destination}: {e}")),
        }
    }
}

#[async_trait::async_trait]
impl Deliverer for Federation {
    async fn deliver(&self, _core: &Core, payload: &Value) -> Delivery {
        let (Some(destination), Some(txn_id), Some(pdu)) = (
            payload.get("destination").and_then(Value::as_str),
            payload.get("txn_id").and_then(Value::as_str),
            payload.get("pdu"),
        ) else {
            return Delivery::GiveUp("malformed federation.pdu item".into());
        };
        self.send_pdu(destination, txn_id, pdu).await
    }
}
