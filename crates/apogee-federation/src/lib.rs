//! Matrix server-server federation for Apogee (the adapter; core stays free of ruma).
//!
//! What exists: this server's identity (server name, persistent ed25519 key in the store,
//! `GET /_matrix/key/v2/server`, `/_matrix/federation/v1/version`, `.well-known/matrix/server`
//! for the client port), server-name resolution with an override map, `X-Matrix` signing of
//! outgoing requests and verification of incoming ones against remote keys fetched and cached
//! in the store, `query/profile`, joining remote rooms (make_join / send_join, every PDU
//! checked), receiving `/send`, and sending our events through core's outbox. See
//! docs/FEDERATION.md for the rest of the road.

pub mod backfill;
pub mod catchup;
pub mod client;
pub mod identity;
pub mod join;
pub mod keys;
pub mod media;
pub mod membership;
pub mod outgoing;
pub mod pdu;
pub mod receive;
pub mod resolve;
pub mod send;
pub mod serve;
pub mod server;
pub mod state;
pub mod tls;

#[cfg(test)]
mod pdu_tests;
#[cfg(test)]
mod signing_tests;

use apogee_core::Core;
use ruma::OwnedServerName;
use std::collections::HashMap;
use std::sync::Arc;

pub use client::{Client, Response, Transport};
pub use identity::Identity;
pub use keys::KeyRing;
pub use resolve::{Endpoint, Resolver};
/// The ruma this crate speaks (tests and callers name its types through it).
pub use ruma;

#[derive(Debug, thiserror::Error)]
pub enum FedError {
    #[error("cannot reach the server: {0}")]
    Unreachable(String),
    #[error("unexpected answer: {0}")]
    BadResponse(String),
    #[error("unknown or expired key: {0}")]
    UnknownKey(String),
    #[error("{0}")]
    Internal(String),
}

/// How this server federates.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub server_name: String,
    /// `NAME → URL` overrides of server-name resolution (tests on loopback, private peers).
    pub resolve: Vec<(String, String)>,
    /// Accept any TLS certificate from peers (development and tests only).
    pub accept_invalid_certs: bool,
    /// Connect to private and loopback addresses that resolution finds.
    pub allow_private_addresses: bool,
}

/// The running federation component: identity, client and key ring, shared by the listener's
/// handlers and (later) the outbox's deliverers.
pub struct Federation {
    pub core: Arc<Core>,
    pub identity: Arc<Identity>,
    pub client: Arc<Client>,
    pub keys: KeyRing,
    /// Per-destination in-flight locks and waiting EDUs.
    pub outgoing: Arc<outgoing::Outgoing>,
    /// Backfill for local readers: one at a time, and where rooms' histories end.
    backfills: backfill::Backfills,
    /// Names a destination whose waiting EDUs should be sent (see [`Federation::run_edu_flusher`]).
    edu_wake: tokio::sync::mpsc::UnboundedSender<String>,
}

impl Federation {
    /// Loads (or makes) the signing key and sets up resolution and the client.
    pub async fn start(core: Arc<Core>, settings: &Settings) -> Result<Arc<Self>, FedError> {
        let server_name = parse_server_name(&settings.server_name)?;
        let identity = Arc::new(Identity::load(&core, server_name).await?);
        let mut overrides = HashMap::new();
        for (name, url) in &settings.resolve {
            parse_server_name(name)?;
            let endpoint = Endpoint::parse_override(name, url)
                .map_err(|e| FedError::Internal(format!("--federation-resolve {name}: {e}")))?;
            overrides.insert(name.clone(), endpoint);
        }
        let transport = Transport::new(
            settings.accept_invalid_certs,
            settings.allow_private_addresses,
        )?;
        let discovery = client::NetDiscovery::new(transport.clone());
        let resolver = Resolver::new(overrides, Box::new(discovery));
        let client = Arc::new(Client::new(identity.clone(), resolver, transport));
        let keys = KeyRing::new(core.clone(), identity.clone(), client.clone());
        tracing::info!(
            server_name = %identity.server_name,
            key_id = identity.key_id(),
            "federation identity loaded"
        );
        let (edu_wake, edu_wakes) = tokio::sync::mpsc::unbounded_channel();
        let federation = Arc::new(Self {
            core,
            identity,
            client,
            keys,
            outgoing: Default::default(),
            backfills: Default::default(),
            edu_wake,
        });
        tokio::spawn(Self::run_edu_flusher(
            Arc::downgrade(&federation),
            edu_wakes,
        ));
        // Core asks the protocol side to join rooms and (later) to build events.
        federation.core.attach_federation(federation.clone());
        Ok(federation)
    }

    /// Sends waiting EDUs of each destination named on `wakes`, each in a task of its own so a
    /// slow destination holds up no other; ends with the federation component.
    async fn run_edu_flusher(
        federation: std::sync::Weak<Self>,
        mut wakes: tokio::sync::mpsc::UnboundedReceiver<String>,
    ) {
        while let Some(destination) = wakes.recv().await {
            let Some(federation) = federation.upgrade() else {
                return;
            };
            tokio::spawn(async move {
                federation.flush_edus(&destination).await;
            });
        }
    }

    /// The federation listener's routes.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        server::router(self.clone())
    }
}

/// A Matrix server name (`host[:port]`, host a DNS name or IP literal).
pub fn parse_server_name(name: &str) -> Result<OwnedServerName, FedError> {
    OwnedServerName::try_from(name)
        .map_err(|e| FedError::Internal(format!("{name:?} is not a valid server name: {e}")))
}
