//! The durable outbox: side effects (e-mail now; webhooks, push and federation later) are queued
//! as [`Change::Enqueue`] in the same batch as the change that caused them, so they happen if and
//! only if it committed, and are delivered after the commit by a worker with retries — nothing is
//! lost on a restart, and several nodes share the work without delivering an item twice at once.
//!
//! A node leases a batch of due items by moving their `due_at` past the attempt (a lease another
//! node already took is left alone); an item whose node died mid-attempt becomes due again when
//! the lease runs out. Delivery is at least once: a crash after the side effect but before its
//! `OutboxDelivered` commits repeats it.

use crate::Core;
use crate::error::CoreResult;
use crate::store::{Change, OutboxItem};
use apogee_domain::Timestamp;
use async_trait::async_trait;
use serde_json::Value;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How one delivery attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    Done,
    /// Try again later (the peer is down, not configured yet, …).
    Retry(String),
    /// Never going to work (a malformed payload, an address the server refused for good).
    GiveUp(String),
}

/// Delivers the outbox items of one kind.
#[async_trait]
pub trait Deliverer: Send + Sync {
    async fn deliver(&self, core: &Core, payload: &Value) -> Delivery;
}

/// Items leased per round.
const BATCH: i64 = 32;
/// How long a lease lasts; an attempt that takes longer is abandoned as failed.
const LEASE: Duration = Duration::from_secs(60);
/// How often a node looks for due items it was not woken for (retries, other nodes' items).
const POLL: Duration = Duration::from_secs(5);
/// After this many failed attempts an item is given up (kept for operators, never retried).
const MAX_ATTEMPTS: i64 = 12;
/// Kinds never given up: federation events are retried (backoff capped at an hour) for as long
/// as it takes, day-long outages included, since a peer that misses one sees a gap.
const NEVER_GIVEN_UP: &[&str] = &[crate::federated_outgoing::FEDERATION_PDU];

/// Delay before the attempt after `attempts` failures: 10 s doubling, at most an hour.
fn backoff(attempts: i64) -> Duration {
    let secs = 10u64.saturating_mul(1 << attempts.clamp(0, 20));
    Duration::from_secs(secs.min(3600))
}

fn later(t: Timestamp, d: Duration) -> Timestamp {
    Timestamp::from_millis(t.millis() + d.as_millis() as i64)
}

impl Core {
    /// A change that queues `payload` for the deliverer of `kind`; commit it with the use-case.
    pub(crate) fn enqueue(&self, kind: &str, payload: Value) -> Change {
        self.enqueue_in(kind, None, payload)
    }

    /// [`Core::enqueue`] into an ordered queue: its items are delivered one at a time, oldest
    /// first.
    pub(crate) fn enqueue_in(&self, kind: &str, queue: Option<String>, payload: Value) -> Change {
        Change::Enqueue(OutboxItem {
            id: apogee_domain::random_id(),
            kind: kind.to_string(),
            queue,
            payload,
            created_at: Timestamp::now(),
            attempts: 0,
            last_error: None,
        })
    }

    /// Leases what is due and delivers it; returns how many items were attempted.
    pub async fn deliver_due(&self) -> CoreResult<usize> {
        let now = Timestamp::now();
        let due = self.store.due_outbox(now, BATCH).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let until = later(now, LEASE);
        self.store
            .commit(vec![Change::LeaseOutbox {
                ids: due.into_iter().map(|i| i.id).collect(),
                node: self.node.clone(),
                now,
                until,
            }])
            .await?;
        let leased = self.store.leased_outbox(&self.node, until).await?;
        for item in &leased {
            let outcome = self.attempt(item).await;
            let change = match outcome {
                Delivery::Done => Change::OutboxDelivered(item.id.clone()),
                Delivery::Retry(error)
                    if item.attempts + 1 < MAX_ATTEMPTS
                        || NEVER_GIVEN_UP.contains(&item.kind.as_str()) =>
                {
                    tracing::warn!(kind = %item.kind, id = %item.id, %error, "outbox delivery failed; will retry");
                    Change::OutboxFailed {
                        id: item.id.clone(),
                        error,
                        retry_at: Some(later(Timestamp::now(), backoff(item.attempts))),
                    }
                }
                Delivery::Retry(error) | Delivery::GiveUp(error) => {
                    tracing::error!(kind = %item.kind, id = %item.id, %error, "outbox delivery given up");
                    Change::OutboxFailed {
                        id: item.id.clone(),
                        error,
                        retry_at: None,
                    }
                }
            };
            self.store.commit(vec![change]).await?;
        }
        Ok(leased.len())
    }

    async fn attempt(&self, item: &OutboxItem) -> Delivery {
        let gateway = self
            .federation
            .get()
            .filter(|_| item.kind == crate::federated_outgoing::FEDERATION_PDU);
        let deliverer: Option<&dyn Deliverer> = match gateway {
            Some(g) => Some(g.as_ref() as &dyn Deliverer),
            None => self.deliverers.get(item.kind.as_str()).map(|d| d.as_ref()),
        };
        let Some(deliverer) = deliverer else {
            return Delivery::Retry(format!("no deliverer for {:?} on this node", item.kind));
        };
        // Within the lease, so no other node starts the same item meanwhile.
        let budget = LEASE - Duration::from_secs(5);
        match tokio::time::timeout(budget, deliverer.deliver(self, &item.payload)).await {
            Ok(outcome) => outcome,
            Err(_) => Delivery::Retry(format!("timed out after {budget:?}")),
        }
    }

    /// Wakes this node's outbox worker (called after committing an [`Change::Enqueue`]).
    pub(crate) fn wake_outbox(&self) {
        self.outbox_wake.notify_one();
    }
}

/// The worker: delivers whenever woken or every [`POLL`], until the core is dropped.
pub(crate) async fn run(core: Weak<Core>, wake: Arc<tokio::sync::Notify>) {
    loop {
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
        let Some(core) = core.upgrade() else { return };
        loop {
            match core.deliver_due().await {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox round failed");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps() {
        assert_eq!(backoff(0), Duration::from_secs(10));
        assert_eq!(backoff(3), Duration::from_secs(80));
        assert_eq!(backoff(30), Duration::from_secs(3600));
    }
}
