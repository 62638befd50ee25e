//! `NatsBus`: the [`Bus`] port over NATS core pub/sub. Every node publishes its events, tagged
//! with its node id, on one subject and feeds the other nodes' events into the same local
//! broadcast channel its own events go to (own events are delivered locally at once, not after
//! the round trip). Publishing never blocks: events wait in a bounded queue for the NATS writer
//! task and are dropped with a warning when it is full.

use apogee_core::events::{Bus, Event};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};

/// The default subject every node publishes to and listens on.
pub const DEFAULT_SUBJECT: &str = "apogee.events";
/// Events kept for slow local receivers (as `LocalBus`).
const LOCAL_CAPACITY: usize = 4096;
/// Events waiting to be sent to NATS before new ones are dropped.
const OUTBOX_CAPACITY: usize = 8192;

/// What goes over the wire: the sender's node id and the event.
#[derive(Serialize, Deserialize)]
struct Envelope<N, E> {
    node: N,
    event: E,
}

/// Errors starting the bus.
#[derive(Debug)]
pub struct ConnectError(String);

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConnectError {}

pub struct NatsBus {
    node: String,
    local: broadcast::Sender<Arc<Event>>,
    outbox: mpsc::Sender<Vec<u8>>,
}

impl NatsBus {
    /// Connects to `url` (one attempt, so an unreachable server is reported at start) and starts
    /// the writer and reader tasks on [`DEFAULT_SUBJECT`].
    pub async fn connect(url: &str) -> Result<NatsBus, ConnectError> {
        Self::connect_subject(url, DEFAULT_SUBJECT).await
    }

    pub async fn connect_subject(url: &str, subject: &str) -> Result<NatsBus, ConnectError> {
        // One attempt with a deadline, so an unreachable server is reported at start; once
        // connected, the client reconnects on its own.
        let client = match tokio::time::timeout(
            std::time::Duration::from_secs(5),
            async_nats::ConnectOptions::new()
                .max_reconnects(None)
                .connect(url),
        )
        .await
        {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => return Err(ConnectError(e.to_string())),
            Err(_) => return Err(ConnectError("no answer within 5s".into())),
        };
        let subscriber = client
            .subscribe(subject.to_string())
            .await
            .map_err(|e| ConnectError(format!("cannot subscribe to {subject}: {e}")))?;
        let node = uuid::Uuid::new_v4().simple().to_string();
        let local = broadcast::channel(LOCAL_CAPACITY).0;
        let (outbox, mut rx) = mpsc::channel::<Vec<u8>>(OUTBOX_CAPACITY);

        let writer = client.clone();
        let subj = subject.to_string();
        tokio::spawn(async move {
            while let Some(payload) = rx.recv().await {
                if let Err(e) = writer.publish(subj.clone(), payload.into()).await {
                    tracing::warn!(error = %e, "NATS publish failed; event not forwarded");
                }
            }
        });

        let feed = local.clone();
        let me = node.clone();
        tokio::spawn(async move {
            let mut subscriber = subscriber;
            while let Some(msg) = subscriber.next().await {
                match serde_json::from_slice::<Envelope<String, Event>>(&msg.payload) {
                    Ok(env) if env.node == me => {}
                    Ok(env) => {
                        let _ = feed.send(Arc::new(env.event));
                    }
                    Err(e) => tracing::warn!(error = %e, "ignoring a malformed bus message"),
                }
            }
            tracing::warn!("NATS subscription ended; events from other nodes stop");
        });
        tracing::info!(node = %node, subject, "NATS bus connected");
        Ok(NatsBus {
            node,
            local,
            outbox,
        })
    }

    /// This node's id on the bus.
    pub fn node_id(&self) -> &str {
        &self.node
    }
}

impl Bus for NatsBus {
    fn publish(&self, event: Event) {
        let env = Envelope {
            node: self.node.as_str(),
            event: &event,
        };
        match serde_json::to_vec(&env) {
            Ok(payload) => match self.outbox.try_send(payload) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!("NATS bus is behind; an event was not forwarded to other nodes")
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    tracing::warn!("NATS bus writer stopped; an event was not forwarded")
                }
            },
            Err(e) => tracing::warn!(error = %e, "cannot serialize an event for the bus"),
        }
        let _ = self.local.send(Arc::new(event));
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.local.subscribe()
    }
}
