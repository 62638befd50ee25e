//! Per-destination federation health for administrators: each Matrix server we send to, with
//! its outbox queue (length, oldest waiting event, next attempt, whether one is in flight) and
//! how the last attempts ended. Read from the outbox and its per-queue record, so every node
//! shows the same thing and a restart forgets nothing.

use crate::Core;
use crate::error::CoreResult;
use crate::federated_outgoing::QUEUE_PREFIX;
use apogee_domain::{Timestamp, User};
use serde::Serialize;

/// Who may read it: Rocket.Chat's permission for its federation dashboard (admins by default).
pub const VIEW_FEDERATION_DATA: &str = "view-federation-data";

/// One destination as administrators see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationHealth {
    /// The Matrix server name.
    pub server: String,
    /// Events waiting for it (the transaction in flight included).
    pub queue_length: i64,
    pub oldest_pending_at: Option<Timestamp>,
    /// When the next transaction may start (none waiting: `None`).
    pub next_attempt_at: Option<Timestamp>,
    pub in_flight: bool,
    /// Failed attempts at the oldest waiting event, in a row.
    pub failed_attempts: i64,
    pub last_success_at: Option<Timestamp>,
    pub last_failure_at: Option<Timestamp>,
    /// Why the last failed attempt failed (no URL credentials or queries, at most 300 bytes).
    pub last_error: Option<String>,
}

impl Core {
    /// Every destination with waiting events or a recorded attempt, sorted by server name.
    pub async fn federation_destination_health(
        &self,
        actor: &User,
    ) -> CoreResult<Vec<DestinationHealth>> {
        self.authz.require(actor, VIEW_FEDERATION_DATA, None)?;
        let now = Timestamp::now();
        Ok(self
            .queue_health(QUEUE_PREFIX)
            .await?
            .into_iter()
            .map(|q| DestinationHealth {
                server: q.queue[QUEUE_PREFIX.len()..].to_string(),
                queue_length: q.length,
                oldest_pending_at: q.oldest_pending_at,
                next_attempt_at: q.next_attempt_at,
                // A lease that ran out belongs to a node that died mid-attempt.
                in_flight: q.in_flight && q.next_attempt_at.is_some_and(|t| t > now),
                failed_attempts: q.attempts,
                last_success_at: q.last_success_at,
                last_failure_at: q.last_failure_at,
                last_error: q.last_error,
            })
            .collect())
    }
}
