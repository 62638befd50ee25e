//! apogee-loadgen: a load generator that talks to Apogee like a Rocket.Chat client does
//! (DDP over WebSocket, REST v1), plus a bare broadcast reference server for calibration and a
//! Matrix client-server API driver for the side-by-side runs against Synapse.
//! A pure client: it depends on no apogee crate.

pub mod bare;
pub mod bruteforce;
pub mod calib;
pub mod ddp;
pub mod files;
pub mod hist;
pub mod history;
pub mod ingest;
pub mod login;
pub mod matrix;
pub mod peer;
pub mod proc;
pub mod rest;
pub mod scenario;
pub mod server;
pub mod synapse;
