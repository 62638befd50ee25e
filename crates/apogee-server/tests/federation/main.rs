//! Matrix federation of the real binary (build feature `federation`). One test binary, one
//! module per area, sharing `support` (servers, signed requests, a Synapse client):
//! - `identity`: the identity we publish, `X-Matrix` verification, Synapse's key notary;
//! - `rooms`: rooms shared with a real Synapse (when `scripts/with-synapse.sh` started one);
//! - `catchup`: catch-up served and used, against `fake_homeserver` (a homeserver in the test).

#![cfg(feature = "federation")]

#[path = "../common/mod.rs"]
mod common;
mod support;

mod catchup;
mod fake_homeserver;
mod identity;
mod rooms;
