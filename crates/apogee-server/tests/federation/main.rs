//! Matrix federation of the real binary (build feature `federation`). One test binary, one
//! module per area, sharing `support` (servers, signed requests, a Synapse client):
//! - `identity`: the identity we publish, `X-Matrix` verification, Synapse's key notary;
//! - `rooms`: rooms shared with a real Synapse (when `scripts/with-synapse.sh` started one);
//! - `acl`: what we send honours the room's server ACL (against `fake_homeserver`);
//! - `backfill`: history from before our join read by paging back (real Synapse);
//! - `history_relations`: edits, reactions, redactions and files inside that history;
//! - `catchup`: catch-up served and used, against `fake_homeserver` (a homeserver in the test);
//! - `content`: what messages say both ways (HTML, mentions, replies, threads, un-reacting,
//!   display names);
//! - `media`: files both ways (`mxc://`, federation media download, the size limit);
//! - `nio`: the interop scenario with the Synapse user driven by matrix-nio, rooms v10–12;
//! - `invite_takeup`: a remote invite taken up after a crash and an outage (durable);
//! - `invites`: rooms made here, joined, invited into and left from Synapse; membership checks;
//! - `two_servers`: two Apogee servers sharing a room on loopback.
//! - `edus`: typing and read receipts with a real Synapse, both ways;
//! - `presence`: presence with a real Synapse, both ways;
//! - `policy`: allowed and denied servers (requests, joins, sends);
//! - `sync`: changes after creation both ways (name, topic, read-only, roles), deletion sync,
//!   closed and abandoned rooms, forged changes refused;
//! - `synapse_catchup`: Synapse catching up from a room made here after losing our events;
//! - `outage`: a Synapse outage with an Apogee crash in the middle, and the destination's health.

#![cfg(feature = "federation")]

#[path = "../common/mod.rs"]
mod common;
mod support;

mod acl;
mod backfill;
mod catchup;
mod content;
mod edus;
mod fake_homeserver;
mod history_relations;
mod identity;
mod invite_takeup;
mod invites;
mod media;
mod nio;
mod outage;
mod policy;
mod presence;
mod rooms;
mod synapse_catchup;
mod sync;
mod two_servers;
