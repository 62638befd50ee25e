//! apogee-loadgen: a load generator that talks to Apogee like a Rocket.Chat client does
//! (DDP over WebSocket, REST v1), plus a bare broadcast reference server for calibration.
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
pub mod proc;
pub mod rest;
pub mod scenario;
pub mod server;
