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
use crate::store::{Change, OutboxItem, OutboxQueueHealth};
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

    /// How many items of one queue this deliverer takes in one attempt (1: one at a time).
    fn batch_limit(&self) -> usize {
        1
    }

    /// Delivers the first items of a queue together, in order: all delivered or none. Called
    /// only with at most [`Deliverer::batch_limit`] items of one queue.
    async fn deliver_batch(&self, core: &Core, items: &[OutboxItem]) -> Delivery {
        match items {
            [one] => self.deliver(core, &one.payload).await,
            _ => Delivery::Retry("this deliverer takes one item at a time".into()),
        }
    }
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

/// Longest error text kept for operators.
const MAX_ERROR: usize = 300;

/// An error as kept for operators: URLs without credentials, query or fragment, and short.
pub fn redact_error(error: &str) -> String {
    let mut out = error
        .split(' ')
        .map(|word| {
            let start = word.find("://").and_then(|i| {
                word[..i]
                    .rfind(|c: char| !c.is_ascii_alphanumeric() && c != '+' && c != '-' && c != '.')
                    .map(|j| j + 1)
                    .or(Some(0))
            });
            match start {
                Some(start) => format!(
                    "{}{}",
                    &word[..start],
                    crate::outbound::redact_url(&word[start..])
                ),
                None => word.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    if out.len() > MAX_ERROR {
        let mut cut = MAX_ERROR;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
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
            let Some(deliverer) = self.deliverer_for(item) else {
                let error = format!("no deliverer for {:?} on this node", item.kind);
                self.settle(item, &[], Delivery::Retry(error)).await?;
                continue;
            };
            let batch = self.batch_from(item, deliverer.as_ref()).await?;
            // Within the lease, so no other node starts the same item meanwhile.
            let budget = LEASE - Duration::from_secs(5);
            let outcome =
                match tokio::time::timeout(budget, deliverer.deliver_batch(self, &batch)).await {
                    Ok(outcome) => outcome,
                    Err(_) => Delivery::Retry(format!("timed out after {budget:?}")),
                };
            self.settle(item, &batch, outcome).await?;
        }
        Ok(leased.len())
    }

    /// What one attempt carries: the leased item and, for a deliverer that packs, the items
    /// queued behind it, in order. The lease on the queue's oldest item holds the whole queue
    /// (nothing newer of it is due meanwhile), so the followers need no lease of their own.
    async fn batch_from(
        &self,
        head: &OutboxItem,
        deliverer: &dyn Deliverer,
    ) -> CoreResult<Vec<OutboxItem>> {
        let limit = deliverer.batch_limit().max(1);
        let Some(queue) = head.queue.as_deref().filter(|_| limit > 1) else {
            return Ok(vec![head.clone()]);
        };
        let mut batch = self.store.queued_outbox(queue, limit as i64).await?;
        if batch.first().map(|i| &i.id) != Some(&head.id) {
            // Not the oldest after all (a clock step?): this one alone, as the queue allows.
            batch = vec![head.clone()];
        } else {
            batch[0] = head.clone();
        }
        Ok(batch)
    }

    /// Commits how an attempt at `batch` (led by `head`) ended, in one batch of changes: each
    /// delivered item goes; a failure is counted on the head alone (the rest wait behind it),
    /// so a long outage costs one write per attempt, not one per waiting item.
    async fn settle(
        &self,
        head: &OutboxItem,
        batch: &[OutboxItem],
        outcome: Delivery,
    ) -> CoreResult<()> {
        let now = Timestamp::now();
        let mut changes = Vec::new();
        let error = match outcome {
            Delivery::Done => {
                changes.extend(batch.iter().map(|i| Change::OutboxDelivered(i.id.clone())));
                None
            }
            Delivery::Retry(error)
                if head.attempts + 1 < MAX_ATTEMPTS
                    || NEVER_GIVEN_UP.contains(&head.kind.as_str()) =>
            {
                let error = redact_error(&error);
                tracing::warn!(kind = %head.kind, id = %head.id, items = batch.len(), %error, "outbox delivery failed; will retry");
                changes.push(Change::OutboxFailed {
                    id: head.id.clone(),
                    error: error.clone(),
                    retry_at: Some(later(now, backoff(head.attempts))),
                });
                Some(error)
            }
            Delivery::Retry(error) | Delivery::GiveUp(error) => {
                let error = redact_error(&error);
                tracing::error!(kind = %head.kind, id = %head.id, %error, "outbox delivery given up");
                changes.push(Change::OutboxFailed {
                    id: head.id.clone(),
                    error: error.clone(),
                    retry_at: None,
                });
                Some(error)
            }
        };
        if let Some(queue) = &head.queue {
            changes.push(Change::RecordQueueAttempt {
                queue: queue.clone(),
                at: now,
                error,
            });
        }
        self.store.commit(changes).await?;
        Ok(())
    }

    fn deliverer_for(&self, item: &OutboxItem) -> Option<Arc<dyn Deliverer>> {
        if item.kind == crate::federated_outgoing::FEDERATION_PDU
            && let Some(gateway) = self.federation.get()
        {
            return Some(gateway.clone() as Arc<dyn Deliverer>);
        }
        self.deliverers.get(item.kind.as_str()).cloned()
    }

    /// The health of the outbox queues whose names start with `prefix`.
    pub(crate) async fn queue_health(&self, prefix: &str) -> CoreResult<Vec<OutboxQueueHealth>> {
        Ok(self.store.outbox_queue_health(prefix).await?)
    }

    /// Makes a queue's oldest item due now if it is waiting for a retry (its destination was
    /// heard from, so it is worth trying again before the backoff runs out). Returns whether
    /// anything was moved; wakes the worker if so.
    pub async fn retry_queue_now(&self, queue: &str) -> CoreResult<bool> {
        let now = Timestamp::now();
        let Some(head) = self.store.queued_outbox(queue, 1).await?.into_iter().next() else {
            return Ok(false);
        };
        if head.attempts == 0 {
            // Never failed: either due already or in flight.
            return Ok(false);
        }
        self.store
            .commit(vec![Change::RetryOutboxNow { id: head.id, now }])
            .await?;
        self.wake_outbox();
        Ok(true)
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
    fn errors_lose_url_secrets_and_length() {
        assert_eq!(
            redact_error("GET https://u:p@host/x?token=1 failed (http://a/b#f)"),
            "GET https://host/x failed (http://a/b"
        );
        let long = "x".repeat(1000);
        assert_eq!(redact_error(&long).chars().count(), MAX_ERROR + 1);
    }

    #[test]
    fn backoff_doubles_then_caps() {
        assert_eq!(backoff(0), Duration::from_secs(10));
        assert_eq!(backoff(3), Duration::from_secs(80));
        assert_eq!(backoff(30), Duration::from_secs(3600));
    }
}
