//! Meteor's DDP as bytes on a WebSocket: what a client may send ([`frame`]) and EJSON values
//! ([`ejson`]). Pure functions over text, no I/O, so they can be fuzzed on their own
//! (`fuzz/fuzz_targets/ddp_frames.rs`).

pub mod ejson;
pub mod frame;
