//! `apogee-loadgen`: benchmark scenarios against a fresh `apogee serve` (see
//! /work/shared/reference/performance.md §3–4). JSON results go to stdout (and `--out`), a
//! markdown summary to stderr.

use anyhow::{Context, Result, bail};
use apogee_loadgen::scenario::{self, AllArgs, CalibrateArgs, Env, FanoutArgs, IdleArgs};
use apogee_loadgen::{proc, server};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "apogee-loadgen",
    about = "Rocket.Chat-protocol load generator for Apogee"
)]
struct Cli {
    /// The `apogee` binary to start (a fresh server per scenario).
    #[arg(long, env = "APOGEE_BIN", default_value = "apogee", global = true)]
    apogee_bin: PathBuf,
    /// Also write the JSON result here.
    #[arg(long, global = true)]
    out: Option<PathBuf>,
    /// Pin the servers (apogee and the bare reference) to these CPUs, e.g. "0".
    #[arg(long, global = true)]
    server_cpus: Option<String>,
    /// Pin the generator itself to these CPUs, e.g. "1".
    #[arg(long, global = true)]
    loadgen_cpus: Option<String>,
    /// Connections in their handshake/login/subscribe phase at once.
    #[arg(long, default_value_t = 64, global = true)]
    setup_concurrency: usize,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Idle density: N logged-in, subscribed DDP connections; server RSS and CPU.
    Idle {
        #[arg(long, default_value_t = 2000)]
        connections: usize,
        /// Distinct users the connections log in as (round-robin).
        #[arg(long, default_value_t = 100)]
        users: usize,
        #[arg(long, default_value_t = 10)]
        hold: u64,
    },
    /// Fan-out latency: a channel with M subscribed connections, open-loop DDP sendMessage.
    Fanout {
        #[arg(long, default_value_t = 50)]
        members: usize,
        /// Distinct member users (default: one per member, at most 200).
        #[arg(long)]
        users: Option<usize>,
        /// Messages per second (all senders together).
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        #[arg(long, default_value_t = 2)]
        senders: usize,
    },
    /// In-run calibration: fdatasync rate, bare broadcast server RSS/conn and fan-out.
    Calibrate {
        #[arg(long, default_value_t = 2000)]
        connections: usize,
        #[arg(long, default_value_t = 10)]
        hold: u64,
        #[command(flatten)]
        fan: FanSweep,
    },
    /// calibrate + idle + fanout for each room size, with a combined markdown table.
    All {
        #[arg(long, default_value_t = 2000)]
        connections: usize,
        #[arg(long, default_value_t = 100)]
        users: usize,
        #[arg(long, default_value_t = 10)]
        hold: u64,
        #[command(flatten)]
        fan: FanSweep,
    },
    /// The bare broadcast reference server (started by `calibrate`).
    #[command(hide = true)]
    BareServer {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
    },
}

#[derive(clap::Args)]
struct FanSweep {
    /// Room sizes for the fan-out sweep.
    #[arg(long, value_delimiter = ',', default_value = "2,50,1000")]
    sizes: Vec<usize>,
    /// Rate (msg/s) per room size, in the same order.
    #[arg(long, value_delimiter = ',', default_value = "100,100,10")]
    rates: Vec<f64>,
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    #[arg(long, default_value_t = 2)]
    senders: usize,
    /// Distinct member users per room (capped at the room size).
    #[arg(long, default_value_t = 200)]
    fanout_users: usize,
}

impl FanSweep {
    fn args(&self) -> Result<Vec<FanoutArgs>> {
        if self.rates.len() != self.sizes.len() {
            bail!("--rates needs one rate per --sizes entry");
        }
        Ok(self
            .sizes
            .iter()
            .zip(&self.rates)
            .map(|(&members, &rate)| FanoutArgs {
                members,
                users: self.fanout_users.min(members),
                rate,
                seconds: self.seconds,
                senders: self.senders,
            })
            .collect())
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Some(c) = &cli.loadgen_cpus {
        server::pin_self(&server::parse_cpus(c)?)?;
    }
    let nofile = proc::raise_nofile_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if let Cmd::BareServer { listen } = &cli.cmd {
        return rt.block_on(apogee_loadgen::bare::serve(listen));
    }
    let env = Env {
        apogee_bin: cli.apogee_bin.clone(),
        server_cpus: cli
            .server_cpus
            .as_deref()
            .map(server::parse_cpus)
            .transpose()?,
        setup_concurrency: cli.setup_concurrency,
    };
    let needed = match &cli.cmd {
        Cmd::Idle { connections, .. }
        | Cmd::Calibrate { connections, .. }
        | Cmd::All { connections, .. } => *connections as u64,
        Cmd::Fanout { members, .. } => *members as u64,
        Cmd::BareServer { .. } => 0,
    };
    if needed + 64 > nofile {
        bail!("{needed} connections need more open files than the limit {nofile}");
    }
    let result = rt.block_on(async {
        match &cli.cmd {
            Cmd::Idle {
                connections,
                users,
                hold,
            } => {
                scenario::idle(
                    &env,
                    &IdleArgs {
                        connections: *connections,
                        users: *users,
                        hold_secs: *hold,
                    },
                )
                .await
            }
            Cmd::Fanout {
                members,
                users,
                rate,
                seconds,
                senders,
            } => {
                scenario::fanout(
                    &env,
                    &FanoutArgs {
                        members: *members,
                        users: users.unwrap_or((*members).min(200)),
                        rate: *rate,
                        seconds: *seconds,
                        senders: *senders,
                    },
                )
                .await
            }
            Cmd::Calibrate {
                connections,
                hold,
                fan,
            } => {
                scenario::calibrate(
                    &env,
                    &CalibrateArgs {
                        connections: *connections,
                        hold_secs: *hold,
                        fanouts: fan.args()?,
                    },
                )
                .await
            }
            Cmd::All {
                connections,
                users,
                hold,
                fan,
            } => {
                scenario::all(
                    &env,
                    &AllArgs {
                        idle: IdleArgs {
                            connections: *connections,
                            users: *users,
                            hold_secs: *hold,
                        },
                        fanouts: fan.args()?,
                    },
                )
                .await
            }
            Cmd::BareServer { .. } => unreachable!("handled above"),
        }
    })?;
    let text = serde_json::to_string_pretty(&result)?;
    println!("{text}");
    if let Some(out) = &cli.out {
        std::fs::write(out, format!("{text}\n"))
            .with_context(|| format!("write {}", out.display()))?;
    }
    Ok(())
}
