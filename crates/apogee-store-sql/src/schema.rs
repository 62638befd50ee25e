//! Versioned schema migrations, written in the SQL dialect SQLite and PostgreSQL share.
//!
//! Records are stored as their Rocket.Chat JSON document (`doc`) beside the few columns that
//! queries filter, sort or count on. Integers are BIGINT and booleans 0/1 so both engines agree.

/// `(version, statements)`, applied in order; a version is never edited once released.
pub const MIGRATIONS: &[(i64, &[&str])] = &[
    (
        1,
        &[
            "CREATE TABLE users (
            id TEXT PRIMARY KEY,
            username_lower TEXT NOT NULL UNIQUE,
            email_lower TEXT,
            name_lower TEXT,
            roles TEXT NOT NULL,
            active BIGINT NOT NULL,
            password_hash TEXT,
            doc TEXT NOT NULL)",
            "CREATE UNIQUE INDEX users_email ON users (email_lower) WHERE email_lower IS NOT NULL",
            "CREATE TABLE login_tokens (
            hashed TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            expires_at BIGINT,
            name TEXT,
            bypass_two_factor BIGINT NOT NULL)",
            "CREATE INDEX login_tokens_user ON login_tokens (user_id)",
            "CREATE TABLE rooms (
            id TEXT PRIMARY KEY,
            t TEXT NOT NULL,
            name TEXT,
            name_lower TEXT,
            is_default BIGINT NOT NULL,
            seq BIGINT NOT NULL,
            all_mentions BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            doc TEXT NOT NULL)",
            "CREATE UNIQUE INDEX rooms_name ON rooms (name) WHERE name IS NOT NULL",
            "CREATE TABLE subscriptions (
            id TEXT PRIMARY KEY,
            rid TEXT NOT NULL,
            user_id TEXT NOT NULL,
            username_lower TEXT NOT NULL,
            read_seq BIGINT NOT NULL,
            user_mentions BIGINT NOT NULL,
            all_mentions_seen BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            doc TEXT NOT NULL,
            UNIQUE (rid, user_id))",
            "CREATE INDEX subscriptions_user ON subscriptions (user_id)",
            "CREATE TABLE messages (
            id TEXT PRIMARY KEY,
            rid TEXT NOT NULL,
            ts BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            tmid TEXT,
            main BIGINT NOT NULL,
            tcount BIGINT NOT NULL,
            pinned BIGINT NOT NULL,
            starred_by TEXT NOT NULL,
            mention_ids TEXT NOT NULL,
            msg_lower TEXT NOT NULL,
            doc TEXT NOT NULL)",
            "CREATE INDEX messages_room_ts ON messages (rid, ts, id)",
            "CREATE INDEX messages_thread ON messages (tmid, ts)",
            "CREATE INDEX messages_room_updated ON messages (rid, updated_at)",
            "CREATE TABLE tombstones (
            kind TEXT NOT NULL,
            id TEXT NOT NULL,
            scope TEXT NOT NULL,
            deleted_at BIGINT NOT NULL)",
            "CREATE INDEX tombstones_scope ON tombstones (kind, scope, deleted_at)",
            "CREATE TABLE settings (id TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at BIGINT NOT NULL)",
            "CREATE TABLE permissions (id TEXT PRIMARY KEY, roles TEXT NOT NULL, updated_at BIGINT NOT NULL)",
            "CREATE TABLE roles (id TEXT PRIMARY KEY, doc TEXT NOT NULL)",
        ],
    ),
    (
        2,
        &[
            // Teams and their memberships; rooms remember their team and discussion parent.
            "CREATE TABLE teams (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            room_id TEXT NOT NULL,
            doc TEXT NOT NULL)",
            "CREATE TABLE team_members (
            id TEXT PRIMARY KEY,
            team_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            doc TEXT NOT NULL,
            UNIQUE (team_id, user_id))",
            "CREATE INDEX team_members_user ON team_members (user_id)",
            "ALTER TABLE rooms ADD COLUMN team_id TEXT",
            "ALTER TABLE rooms ADD COLUMN prid TEXT",
            "CREATE INDEX rooms_team ON rooms (team_id)",
            "CREATE INDEX rooms_prid ON rooms (prid)",
            // `discussion-created` messages point at their discussion.
            "ALTER TABLE messages ADD COLUMN drid TEXT",
            "CREATE INDEX messages_drid ON messages (rid, drid)",
            "CREATE TABLE invites (
            id TEXT PRIMARY KEY,
            rid TEXT NOT NULL,
            user_id TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            doc TEXT NOT NULL)",
            "CREATE TABLE custom_user_statuses (
            id TEXT PRIMARY KEY,
            name_lower TEXT NOT NULL UNIQUE,
            doc TEXT NOT NULL)",
            "CREATE TABLE custom_sounds (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            name_lower TEXT NOT NULL,
            doc TEXT NOT NULL)",
        ],
    ),
    (
        4,
        &[
            // Uploaded files; their contents live in the blob store under `store_key`.
            "CREATE TABLE uploads (
            id TEXT PRIMARY KEY,
            rid TEXT NOT NULL,
            user_id TEXT NOT NULL,
            name TEXT NOT NULL,
            name_lower TEXT NOT NULL,
            type TEXT NOT NULL,
            size BIGINT NOT NULL,
            store_key TEXT NOT NULL,
            complete BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            doc TEXT NOT NULL)",
            "CREATE INDEX uploads_room ON uploads (rid, created_at)",
            "CREATE INDEX uploads_unconfirmed ON uploads (complete, created_at)",
        ],
    ),
    (
        5,
        &[
            // Nodes serving the workspace and when each last said it was alive.
            "CREATE TABLE nodes (id TEXT PRIMARY KEY, seen_at BIGINT NOT NULL)",
            // Each node's view of a user's presence (from its own connections).
            "CREATE TABLE presence (
            node TEXT NOT NULL,
            user_id TEXT NOT NULL,
            status TEXT NOT NULL,
            PRIMARY KEY (node, user_id))",
            "CREATE INDEX presence_user ON presence (user_id)",
        ],
    ),
    (
        6,
        &[
            // Side effects (e-mail, webhooks, push, federation) queued in the transaction that
            // caused them and delivered by workers. `due_at` is when the next attempt may start;
            // a worker leases an item by moving `due_at` past its attempt, so an item whose
            // worker died becomes due again. NULL: given up.
            "CREATE TABLE outbox (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            payload TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            attempts BIGINT NOT NULL,
            due_at BIGINT,
            lease_node TEXT,
            last_error TEXT)",
            "CREATE INDEX outbox_due ON outbox (due_at)",
        ],
    ),
    (
        7,
        &[
            // The audit chain: entry `seq` stores `hash = sha256(prev_hash, seq, doc)`.
            "CREATE TABLE audit_log (
            seq BIGINT PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            ts BIGINT NOT NULL,
            event TEXT NOT NULL,
            actor_id TEXT,
            doc TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL)",
            "CREATE INDEX audit_log_ts ON audit_log (ts)",
            "CREATE INDEX audit_log_actor ON audit_log (actor_id, seq)",
            // The last entry written. Appending updates this row first, so concurrent appends
            // take their numbers one after the other (a row lock on PostgreSQL).
            "CREATE TABLE audit_head (id BIGINT PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL)",
            "INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000')",
            // How far each SIEM export got.
            "CREATE TABLE audit_exports (sink TEXT PRIMARY KEY, seq BIGINT NOT NULL)",
        ],
    ),
    (
        8,
        &[
            // Second-factor secrets (TOTP secret, hashed backup and e-mail codes), apart from
            // the user document so rendering a user cannot leak them. `revision` makes saves
            // compare-and-set.
            "CREATE TABLE two_factor (
            user_id TEXT PRIMARY KEY,
            revision BIGINT NOT NULL,
            doc TEXT NOT NULL)",
        ],
    ),
    (
        9,
        &[
            // Device management: each login session's public id, client and last resume; the
            // device and system names are parsed from the agent once, to sort and search on.
            "ALTER TABLE login_tokens ADD COLUMN session_id TEXT",
            "ALTER TABLE login_tokens ADD COLUMN last_token_part TEXT",
            "ALTER TABLE login_tokens ADD COLUMN ip TEXT",
            "ALTER TABLE login_tokens ADD COLUMN user_agent TEXT",
            "ALTER TABLE login_tokens ADD COLUMN device_name TEXT",
            "ALTER TABLE login_tokens ADD COLUMN os_name TEXT",
            "ALTER TABLE login_tokens ADD COLUMN os_version TEXT",
            "ALTER TABLE login_tokens ADD COLUMN last_active_at BIGINT",
            "CREATE UNIQUE INDEX login_tokens_session ON login_tokens (session_id) WHERE session_id IS NOT NULL",
            "CREATE INDEX login_tokens_login_at ON login_tokens (created_at)",
            // Personal access token names are unique per user.
            "CREATE UNIQUE INDEX login_tokens_name ON login_tokens (user_id, name) WHERE name IS NOT NULL",
            // When a person last set the password (password expiry).
            "ALTER TABLE users ADD COLUMN password_changed_at BIGINT",
            "CREATE TABLE password_history (
            user_id TEXT NOT NULL,
            hash TEXT NOT NULL,
            created_at BIGINT NOT NULL)",
            "CREATE INDEX password_history_user ON password_history (user_id, created_at)",
            // E-mailed reset tokens, hashed; at most one per user.
            "CREATE TABLE password_resets (
            hashed TEXT PRIMARY KEY,
            user_id TEXT NOT NULL UNIQUE,
            email TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            expires_at BIGINT NOT NULL)",
        ],
    ),
    (
        11,
        &[
            // Integrations (incoming and outgoing webhooks). `channels` holds the targets as
            // `|#a|@b|` so "integrations of this room" is one indexed-free LIKE over a small table.
            "CREATE TABLE integrations (
            id TEXT PRIMARY KEY,
            type TEXT NOT NULL,
            name_lower TEXT NOT NULL,
            created_by TEXT,
            user_id TEXT NOT NULL,
            channels TEXT NOT NULL,
            urls TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            doc TEXT NOT NULL)",
            "CREATE INDEX integrations_created ON integrations (created_at)",
            "CREATE TABLE integration_history (
            id TEXT PRIMARY KEY,
            integration_id TEXT NOT NULL,
            updated_at BIGINT NOT NULL,
            doc TEXT NOT NULL)",
            "CREATE INDEX integration_history_of ON integration_history (integration_id, updated_at)",
            // Moderation reports: of a message (`kind` 'message', `target_user_id` its author)
            // or of a user ('user'). Dismissed reports stay, `hidden` 1.
            "CREATE TABLE moderation_reports (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            message_id TEXT,
            rid TEXT,
            target_user_id TEXT NOT NULL,
            reporter_id TEXT NOT NULL,
            ts BIGINT NOT NULL,
            hidden BIGINT NOT NULL,
            text_lower TEXT NOT NULL,
            doc TEXT NOT NULL)",
            "CREATE INDEX moderation_reports_target ON moderation_reports (kind, hidden, target_user_id, ts)",
            "CREATE INDEX moderation_reports_message ON moderation_reports (message_id)",
            // Custom emoji; their images are blobs under `emoji-custom/<id>/<etag>`. `names` is
            // `|name|alias|…|`: a name or alias may belong to one emoji only.
            "CREATE TABLE custom_emoji (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            name_lower TEXT NOT NULL,
            names TEXT NOT NULL,
            updated_at BIGINT NOT NULL,
            doc TEXT NOT NULL)",
            "CREATE INDEX custom_emoji_updated ON custom_emoji (updated_at)",
        ],
    ),
    (
        13,
        &[
            // Encrypted participants (bots): the RSA private key sealed by the Kms and the rooms
            // the bot is authorised for, apart from the user document so no rendering shows them.
            "CREATE TABLE e2e_bots (
            user_id TEXT PRIMARY KEY,
            doc TEXT NOT NULL)",
        ],
    ),
    (
        14,
        &[
            // Matrix federation: this server's ed25519 signing keys. `current_key` is 1 on the
            // key in use and NULL on retired ones; its unique index lets nodes starting together
            // insert "if none" and agree on one key.
            "CREATE TABLE federation_signing_keys (
            key_id TEXT PRIMARY KEY,
            current_key BIGINT UNIQUE,
            pkcs8 TEXT NOT NULL,
            created_at BIGINT NOT NULL)",
            // Remote servers' public keys as fetched from them, with how long each may be used.
            "CREATE TABLE federation_server_keys (
            server_name TEXT NOT NULL,
            key_id TEXT NOT NULL,
            public_key TEXT NOT NULL,
            valid_until BIGINT NOT NULL,
            fetched_at BIGINT NOT NULL,
            PRIMARY KEY (server_name, key_id))",
        ],
    ),
    (
        15,
        &[
            // Matrix federation: which Rocket.Chat room is which Matrix room.
            "CREATE TABLE federation_rooms (
            rid TEXT PRIMARY KEY,
            matrix_room_id TEXT NOT NULL UNIQUE,
            room_version TEXT NOT NULL,
            origin TEXT NOT NULL)",
            // Every PDU we accepted, as checked (canonical JSON without `unsigned`): the room's
            // state, auth chains and timeline, for auth checks, `event`, `state` and backfill.
            // `message_id`: the Rocket.Chat message the event made or changed.
            "CREATE TABLE federation_events (
            event_id TEXT PRIMARY KEY,
            matrix_room_id TEXT NOT NULL,
            message_id TEXT,
            kind TEXT NOT NULL,
            depth BIGINT NOT NULL,
            pdu TEXT NOT NULL)",
            "CREATE INDEX federation_events_room ON federation_events (matrix_room_id, depth)",
            "CREATE INDEX federation_events_message ON federation_events (message_id)",
            // A room's current state: (type, state_key) -> event id.
            "CREATE TABLE federation_room_state (
            matrix_room_id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            state_key TEXT NOT NULL,
            event_id TEXT NOT NULL,
            PRIMARY KEY (matrix_room_id, event_type, state_key))",
            // A room's forward extremities: the newest events, which our next event points to.
            "CREATE TABLE federation_extremities (
            matrix_room_id TEXT NOT NULL,
            event_id TEXT NOT NULL,
            PRIMARY KEY (matrix_room_id, event_id))",
            // Ordered outbox queues (one per federation destination): only a queue's oldest
            // pending item is due.
            "ALTER TABLE outbox ADD COLUMN queue TEXT",
            "CREATE INDEX outbox_queue ON outbox (queue, created_at)",
        ],
    ),
    (
        16,
        &[
            // E2EE key recovery (docs/E2EE-RECOVERY.md). Policies are versioned, never edited.
            "CREATE TABLE e2e_recovery_policies (
            version BIGINT PRIMARY KEY,
            doc TEXT NOT NULL)",
            "CREATE TABLE e2e_recovery_officer_keys (
            user_id TEXT PRIMARY KEY,
            doc TEXT NOT NULL)",
            // The user's encrypted private key and its key's shares, each sealed to an officer.
            "CREATE TABLE e2e_recovery_enrolments (
            user_id TEXT PRIMARY KEY,
            doc TEXT NOT NULL)",
            "CREATE TABLE e2e_recovery_requests (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            state TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            doc TEXT NOT NULL)",
            // At most one open request per user, even when two nodes open one at once.
            "CREATE UNIQUE INDEX e2e_recovery_requests_pending ON e2e_recovery_requests (user_id) WHERE state = 'pending'",
            // One approval per officer per request: a replayed approval breaks the key.
            "CREATE TABLE e2e_recovery_approvals (
            request_id TEXT NOT NULL,
            officer_id TEXT NOT NULL,
            ts BIGINT NOT NULL,
            doc TEXT NOT NULL,
            PRIMARY KEY (request_id, officer_id))",
        ],
    ),
    (
        18,
        &[
            // Matrix federation: the room state before each event, for `state`/`state_ids` and
            // for working out the state at a fork. Snapshots are content-addressed (the id is a
            // digest of their entries), so events sharing a state share one snapshot.
            "CREATE TABLE federation_state_snapshots (
            snapshot_id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            state_key TEXT NOT NULL,
            event_id TEXT NOT NULL,
            PRIMARY KEY (snapshot_id, event_type, state_key))",
            "CREATE TABLE federation_event_state (
            event_id TEXT PRIMARY KEY,
            snapshot_id TEXT NOT NULL)",
        ],
    ),
    (
        19,
        &[
            // How the last attempts at an outbox queue (a federation destination) ended, for
            // its health: one row per queue, replaced in place.
            "CREATE TABLE outbox_queue_health (
            queue TEXT PRIMARY KEY,
            last_success_at BIGINT,
            last_failure_at BIGINT,
            last_error TEXT)",
        ],
    ),
    (
        20,
        &[
            // Message pages are keyed by `(ts, id)` (a total order: messages of one millisecond
            // are never split between pages). Room history already has `(rid, ts, id)`; thread
            // replies and the change feed get the id as their last column too.
            "DROP INDEX messages_thread",
            "CREATE INDEX messages_thread ON messages (tmid, ts, id)",
            "DROP INDEX messages_room_updated",
            "CREATE INDEX messages_room_updated ON messages (rid, updated_at, id)",
        ],
    ),
    (
        22,
        &[
            // The event an edit, a reaction or a redaction changes (a thread reply: its root):
            // history paged back brings such changes before (newer than) their targets, so
            // they wait here, found when the target comes. Rows stored before this migration have none (their changes
            // were already applied, or dropped, when they arrived).
            "ALTER TABLE federation_events ADD COLUMN relates_to TEXT",
            "CREATE INDEX federation_events_relates_to ON federation_events (relates_to)",
        ],
    ),
    (
        23,
        &[
            // Each index a new message enters is a B-tree page written (to the WAL, and again
            // at the checkpoint) per message. Most messages start no discussion, are no thread
            // reply and are never changed, so these three indexes hold only the messages that
            // are: the change feed finds unchanged messages through `messages_room_ts`
            // (`history::changes_sql`).
            "DROP INDEX messages_drid",
            "CREATE INDEX messages_drid ON messages (rid, drid) WHERE drid IS NOT NULL",
            "DROP INDEX messages_thread",
            "CREATE INDEX messages_thread ON messages (tmid, ts, id) WHERE tmid IS NOT NULL",
            "DROP INDEX messages_room_updated",
            "CREATE INDEX messages_room_changed ON messages (rid, updated_at, id) WHERE updated_at <> ts",
        ],
    ),
    (
        ROOM_COLUMNS_VERSION,
        &[
            // What a sent message moves in its room, so that appends write no room document
            // (`room_columns`); filled from the documents by `migrate` after these statements.
            "ALTER TABLE rooms ADD COLUMN msgs BIGINT NOT NULL DEFAULT 0",
            "ALTER TABLE rooms ADD COLUMN lm BIGINT",
            "ALTER TABLE rooms ADD COLUMN last_message TEXT",
        ],
    ),
    (
        ROOM_ACTIVITY_VERSION,
        &[
            // What every sent message moves in its room, in a narrow row of its own: a group
            // commit then writes a few dozen bytes per room, packed many rooms to a page, not
            // the room's whole row (document and last message) scattered a few to a page. The
            // last message is a reference to its row in `messages`; `migrate` fills it from
            // the stored last messages after these statements.
            "CREATE TABLE room_activity (
            rid TEXT PRIMARY KEY,
            seq BIGINT NOT NULL,
            all_mentions BIGINT NOT NULL,
            msgs BIGINT NOT NULL,
            lm BIGINT,
            updated_at BIGINT NOT NULL,
            last_message_id TEXT)",
            "INSERT INTO room_activity (rid, seq, all_mentions, msgs, lm, updated_at)
             SELECT id, seq, all_mentions, msgs, lm, updated_at FROM rooms",
        ],
    ),
    (
        26,
        &[
            // Moved to `room_activity` by the migration before.
            "ALTER TABLE rooms DROP COLUMN seq",
            "ALTER TABLE rooms DROP COLUMN all_mentions",
            "ALTER TABLE rooms DROP COLUMN msgs",
            "ALTER TABLE rooms DROP COLUMN lm",
            "ALTER TABLE rooms DROP COLUMN last_message",
        ],
    ),
];

/// The migration that moves rooms' moving counters into `room_activity`.
pub const ROOM_ACTIVITY_VERSION: i64 = 25;

/// The migration that moves rooms' message counters and last message into columns.
pub const ROOM_COLUMNS_VERSION: i64 = 24;

/// Creates the bookkeeping table migrations are recorded in.
pub const CREATE_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)";
