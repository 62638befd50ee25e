//! Apogee's use-cases and the ports they need. Wire layers (REST, DDP) call the use-cases on
//! [`Core`]; every authorization decision is made here, once, by use-case.

pub mod accounts;
pub mod assets;
pub mod audit;
pub mod authz;
pub mod avatars;
pub mod blobs;
pub mod chat_sync;
pub mod commands;
pub mod credentials;
pub mod directory;
pub mod discussions;
pub mod e2e;
pub mod e2e_bots;
pub mod e2e_recovery;
pub mod emoji;
pub mod error;
pub mod events;
pub mod federated_avatars;
pub mod federated_backfill;
pub mod federated_catchup;
pub mod federated_content;
pub mod federated_direct;
pub mod federated_edus;
pub mod federated_events;
pub mod federated_invites;
pub mod federated_media;
pub mod federated_membership;
pub mod federated_outgoing;
mod federated_power;
pub mod federated_presence;
pub mod federated_rooms;
pub mod federated_sync;
pub mod federation;
pub mod federation_health;
pub mod federation_policy;
pub mod file_cleanup;
pub mod file_types;
pub mod files;
pub mod integrations;
pub mod invites;
pub mod kms;
pub mod lockout;
pub mod mail;
pub mod malware;
pub mod messages;
pub mod moderation;
pub mod outbound;
pub mod outbox;
pub mod outgoing_webhooks;
pub mod passwords;
mod quotes;
pub mod read_receipts;
pub mod realtime;
pub mod roles;
pub mod room_admin;
pub mod rooms;
mod seed;
mod send_cache;
mod session_cache;
pub mod sessions;
pub mod settings;
pub mod sounds;
pub mod stats;
pub mod store;
pub mod teams;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod thumbnails;
pub mod tokens;
pub mod two_factor;
pub mod url_preview;
pub mod user_status;

use crate::error::{CoreError, CoreResult};
use crate::store::{Change, Store};
use std::sync::Arc;

pub use apogee_domain as domain;

/// Start-up options that come from the operator rather than from stored settings.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `OVERWRITE_SETTING_<Id>` values, forced at every start.
    pub setting_overrides: Vec<(String, String)>,
    /// `ADMIN_USERNAME` / `ADMIN_PASS` / `ADMIN_EMAIL`: create this admin on first start.
    pub initial_admin: Option<InitialAdmin>,
    /// `ROOT_URL`: the public URL, stored as `Site_Url`.
    pub root_url: Option<String>,
    /// `CREATE_TOKENS_FOR_USERS_SECRET`: lets `users.createToken` mint tokens for this secret.
    pub create_tokens_secret: Option<String>,
    /// Where uploaded files go; in memory when `None`.
    pub blobs: Option<Arc<dyn blobs::BlobStore>>,
    /// Sends queued e-mail; without one, mail waits in the outbox (retried, then given up).
    pub mailer: Option<Arc<dyn mail::Mailer>>,
    /// Scans uploads for malware while `FileUpload_ClamAV_Enabled` is on; without one, uploads
    /// are refused while it is on.
    pub scanner: Option<Arc<dyn malware::MalwareScanner>>,
    /// Seals the private keys of encrypted participants (bots); without one they cannot be
    /// authorised.
    pub kms: Option<Arc<dyn kms::Kms>>,
    /// Fetches URLs (previews, avatars, outgoing webhooks) with the address filter; without
    /// one those features answer as if the remote were unreachable.
    pub http: Option<Arc<dyn outbound::HttpClient>>,
}

#[derive(Debug, Clone)]
pub struct InitialAdmin {
    pub username: String,
    pub password: String,
    pub email: Option<String>,
}

/// The application: a store plus in-memory caches of settings and permissions.
pub struct Core {
    pub(crate) store: Arc<dyn Store>,
    pub settings: settings::Settings,
    pub authz: authz::Authz,
    pub(crate) hasher: passwords::Hasher,
    pub(crate) options: Options,
    pub(crate) bus: Arc<dyn events::Bus>,
    pub(crate) blobs: Arc<dyn blobs::BlobStore>,
    pub(crate) lockout: lockout::LoginGuard,
    /// Second-factor checks remembered per login token on this node.
    pub(crate) two_factor_remembered: two_factor::Remembered,
    /// This process's id among the nodes serving the workspace (presence reports).
    pub(crate) node: String,
    /// Serialises read-modify-write of one user's document on this node (logins, presence),
    /// striped by user id.
    user_locks: Vec<tokio::sync::Mutex<()>>,
    /// Who delivers each kind of outbox item on this node.
    deliverers: std::collections::HashMap<&'static str, Arc<dyn outbox::Deliverer>>,
    /// Wakes the outbox worker when this node queues something.
    outbox_wake: Arc<tokio::sync::Notify>,
    /// The Matrix federation adapter, when this server federates.
    pub(crate) federation: std::sync::OnceLock<Arc<dyn federated_rooms::FederationGateway>>,
    /// Login tokens and users REST requests authenticate with.
    pub(crate) sessions: session_cache::SessionCache,
    /// The rooms and subscriptions sends check.
    pub(crate) send_targets: send_cache::SendCache,
    /// The enabled outgoing webhooks every sent message is matched against.
    pub(crate) outgoing_webhooks: outgoing_webhooks::Cache,
}

impl Core {
    /// Seeds a fresh database, applies operator overrides and loads the caches.
    pub async fn start(store: Arc<dyn Store>, options: Options) -> CoreResult<Arc<Core>> {
        Self::start_with_bus(store, Arc::new(events::LocalBus::default()), options).await
    }

    /// [`Core::start`] with a chosen bus (e.g. one shared by several nodes).
    pub async fn start_with_bus(
        store: Arc<dyn Store>,
        bus: Arc<dyn events::Bus>,
        options: Options,
    ) -> CoreResult<Arc<Core>> {
        let blobs = options
            .blobs
            .clone()
            .unwrap_or_else(|| Arc::new(blobs::MemoryBlobStore::default()));
        let core = Core {
            bus,
            blobs,
            settings: settings::Settings::load(store.as_ref()).await?,
            authz: authz::Authz::load(store.as_ref()).await?,
            store,
            hasher: passwords::Hasher::default(),
            options: options.clone(),
            lockout: lockout::LoginGuard::default(),
            two_factor_remembered: Default::default(),
            node: apogee_domain::random_id(),
            user_locks: (0..USER_LOCKS).map(|_| Default::default()).collect(),
            deliverers: deliverers(&options),
            outbox_wake: Default::default(),
            federation: Default::default(),
            sessions: Default::default(),
            send_targets: Default::default(),
            outgoing_webhooks: Default::default(),
        };
        seed::seed(&core).await?;
        core.settings.reload(core.store.as_ref()).await?;
        core.authz.reload(core.store.as_ref()).await?;
        let core = Arc::new(core);
        tokio::spawn(keep_caches_current(
            Arc::downgrade(&core),
            core.bus.subscribe(),
        ));
        tokio::spawn(heartbeat(Arc::downgrade(&core)));
        tokio::spawn(outbox::run(Arc::downgrade(&core), core.outbox_wake.clone()));
        Ok(core)
    }

    /// The lock for read-modify-write of a user's document.
    pub(crate) async fn lock_user(&self, user_id: &str) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        user_id.hash(&mut h);
        self.user_locks[h.finish() as usize % USER_LOCKS]
            .lock()
            .await
    }

    /// This node's id among those serving the workspace.
    pub fn node_id(&self) -> &str {
        &self.node
    }

    /// The heartbeat (run every few seconds by a task of its own): says this node is alive, and
    /// drops nodes that stopped saying so (crashed or cut off) — their presence reports go and
    /// their users' presence is recomputed.
    pub async fn beat(&self) -> CoreResult<()> {
        let now = apogee_domain::Timestamp::now();
        self.commit(vec![store::Change::NodeSeen {
            node: self.node.clone(),
            at: now,
        }])
        .await?;
        let cutoff =
            apogee_domain::Timestamp::from_millis(now.millis() - NODE_TIMEOUT.as_millis() as i64);
        for node in self.store.stale_nodes(cutoff).await? {
            if node == self.node {
                continue;
            }
            let users = self.store.users_on_node(&node).await?;
            self.commit(vec![store::Change::DropNode(node)]).await?;
            for user in users {
                self.refresh_presence(&user).await?;
            }
        }
        Ok(())
    }

    /// Applies a setting or permission change, from this node or another, to the caches.
    fn cache(&self, event: &events::Event) {
        match event {
            events::Event::Setting { id, value, .. } => self.settings.remember(id, value.clone()),
            events::Event::Permission { id, roles } => self.authz.set(id, roles.clone()),
            events::Event::Role { role, removed } => self.authz.role_changed(role, *removed),
            _ => self.invalidate(event),
        }
    }

    /// Drops what an event makes stale from the caches that only forget (sessions, send
    /// targets, outgoing webhooks). Applying it twice is harmless, so this node's commits apply their events at
    /// once, before the caller is answered, and again when they come back from the bus.
    fn invalidate(&self, event: &events::Event) {
        self.sessions.apply(event);
        self.send_targets.apply(event);
        self.outgoing_webhooks.apply(event);
    }

    /// Commits one use-case's changes atomically, then announces them on the bus.
    pub(crate) async fn commit(&self, changes: Vec<Change>) -> CoreResult<()> {
        let events = events::Event::from_changes(&changes);
        let queued = changes.iter().any(|c| matches!(c, Change::Enqueue(_)));
        self.store.commit(changes).await.map_err(CoreError::from)?;
        if queued {
            self.wake_outbox();
        }
        for event in events {
            self.invalidate(&event);
            self.bus.publish(event);
        }
        Ok(())
    }

    /// Publishes an event that has no stored effect (typing, …).
    pub fn publish(&self, event: events::Event) {
        self.invalidate(&event);
        self.bus.publish(event);
    }

    /// Every event from now on, from this node and (with a networked bus) the others.
    pub fn events(&self) -> tokio::sync::broadcast::Receiver<Arc<events::Event>> {
        self.bus.subscribe()
    }

    /// Read access for wire layers that render records.
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Where file contents are kept.
    pub fn blobs(&self) -> &dyn blobs::BlobStore {
        self.blobs.as_ref()
    }
}

/// The outbox deliverers this node runs, by item kind.
fn deliverers(
    options: &Options,
) -> std::collections::HashMap<&'static str, Arc<dyn outbox::Deliverer>> {
    let mut map: std::collections::HashMap<&'static str, Arc<dyn outbox::Deliverer>> =
        Default::default();
    map.insert(
        file_cleanup::BLOB_DELETE,
        Arc::new(file_cleanup::BlobDeleter),
    );
    map.insert(thumbnails::KIND, Arc::new(thumbnails::Thumbnailer));
    map.insert(
        federated_invites::FEDERATION_INVITE,
        Arc::new(federated_invites::InviteTakeUp),
    );
    map.insert(
        federated_avatars::MEMBER_AVATARS,
        Arc::new(federated_avatars::MemberAvatars),
    );
    map.insert(
        federated_avatars::ROOM_PICTURE,
        Arc::new(federated_avatars::RoomPicture),
    );
    map.insert(url_preview::KIND, Arc::new(url_preview::UrlPreviewer));
    map.insert(
        outgoing_webhooks::KIND,
        Arc::new(outgoing_webhooks::OutgoingWebhooks),
    );
    if let Some(mailer) = &options.mailer {
        map.insert(mail::KIND, Arc::new(mail::MailDeliverer(mailer.clone())));
    }
    map
}

/// Keeps the settings and permission caches in step with every node's changes (with a shared
/// bus, an administrator's change on one node applies on all). After missing events, reloads.
async fn keep_caches_current(
    core: std::sync::Weak<Core>,
    mut events: tokio::sync::broadcast::Receiver<Arc<events::Event>>,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let event = events.recv().await;
        let Some(core) = core.upgrade() else {
            return;
        };
        match event {
            Ok(event) => core.cache(&event),
            Err(RecvError::Lagged(_)) => {
                let store = core.store.as_ref();
                if let Err(e) = core.settings.reload(store).await {
                    tracing::error!(error = %e.message, "settings reload failed");
                }
                if let Err(e) = core.authz.reload(store).await {
                    tracing::error!(error = %e.message, "permissions reload failed");
                }
                core.sessions.clear();
                core.send_targets.clear();
                core.outgoing_webhooks.clear();
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// Stripes of the per-user document locks.
const USER_LOCKS: usize = 64;

/// How often a node says it is alive.
const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(10);
/// A node silent for this long is taken for gone.
const NODE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(35);

async fn heartbeat(core: std::sync::Weak<Core>) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tick.tick().await;
        let Some(core) = core.upgrade() else {
            return;
        };
        if let Err(e) = core.beat().await {
            tracing::warn!(error = %e.message, "node heartbeat failed");
        }
        if let Err(e) = core.clean_unconfirmed_uploads().await {
            tracing::warn!(error = %e.message, "cleaning unconfirmed uploads failed");
        }
    }
}
