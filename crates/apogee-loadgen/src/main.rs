//! `apogee-loadgen`: benchmark scenarios against a fresh `apogee serve` (see
//! /work/shared/reference/performance.md §3–4). JSON results go to stdout (and `--out`), a
//! markdown summary to stderr.

use anyhow::{Context, Result, bail};
use apogee_loadgen::bruteforce::{self, BruteforceArgs};
use apogee_loadgen::files::{self, FilesArgs};
use apogee_loadgen::history::{self, HistoryArgs};
use apogee_loadgen::ingest::{self, IngestArgs};
use apogee_loadgen::login::{self, LoginArgs};
use apogee_loadgen::peer::{self, PeerArgs};
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
    /// Durable ingest: REST chat.sendMessage senders over 100 rooms, closed loop then optional
    /// open-loop steps; calibrated against SQLite WAL+FULL commit rates.
    Ingest {
        /// Concurrent REST senders (one keep-alive connection each).
        #[arg(long, default_value_t = 64)]
        senders: usize,
        /// Closed-loop duration (after a 1 s warm-up).
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        #[command(flatten)]
        ingest: IngestOpts,
    },
    /// History pages at depth after bulk-loading N messages into the SQLite database.
    History {
        #[command(flatten)]
        history: HistoryOpts,
        #[arg(long, default_value_t = 1_000_000)]
        messages: u64,
    },
    /// Login storm (REST password logins) beside a room fan-out, against the argon2 ceiling.
    Login {
        /// Storm (and each fan-out phase) duration.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        #[command(flatten)]
        login: LoginOpts,
    },
    /// Brute force: wrong passwords for one account from a second loopback address while other
    /// users' authenticated requests are measured; when the lockouts start, latency vs baseline.
    Bruteforce {
        /// Wrong passwords tried.
        #[arg(long, default_value_t = 1000)]
        attempts: usize,
        /// The attacker's connections (each one keep-alive connection).
        #[arg(long, default_value_t = 4)]
        attack_concurrency: usize,
        /// The attacker's source address (any 127.x.y.z is the loopback on Linux).
        #[arg(long, default_value = "127.0.0.2")]
        attacker_ip: std::net::IpAddr,
        /// Other users whose `GET /api/v1/me` is measured.
        #[arg(long, default_value_t = 20)]
        users: usize,
        /// Their requests per second, open loop.
        #[arg(long, default_value_t = 200.0)]
        rate: f64,
        /// Baseline length, and the least length of the measurement beside the attack.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Keep-alive connections for the measured requests.
        #[arg(long, default_value_t = 16)]
        workers: usize,
    },
    /// Large files: upload then download one file of N MiB (streamed by the generator too),
    /// the server's peak RSS sampled every 20 ms, and throughput.
    Files {
        #[arg(long, default_value_t = 1024)]
        mib: u64,
    },
    /// Side by side with Synapse (PyPI matrix-synapse, SQLite, started from its venv): send rate,
    /// fan-out latency in one room and RSS, fresh servers, runs alternating A B, B A, …
    Peer {
        /// The venv holding matrix-synapse (scripts/with-synapse.sh installs it there).
        #[arg(long, env = "APOGEE_SYNAPSE_DIR")]
        synapse_venv: Option<PathBuf>,
        /// Runs per server.
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        /// Send rate: closed-loop senders, each in its own 2-member room.
        #[arg(long, default_value_t = 16)]
        senders: usize,
        #[arg(long, default_value_t = 10.0)]
        send_seconds: f64,
        /// Fan-out: members of the room (each one receiving connection / `/sync` loop).
        #[arg(long, default_value_t = 50)]
        members: usize,
        /// Fan-out: messages per second into the room, open loop.
        #[arg(long, default_value_t = 20.0)]
        rate: f64,
        #[arg(long, default_value_t = 10.0)]
        fanout_seconds: f64,
    },
    /// calibrate + idle + fanout for each room size + ingest + history + login, with combined
    /// markdown tables.
    All {
        #[command(flatten)]
        ingest: IngestOpts,
        /// Ingest senders.
        #[arg(long, default_value_t = 64)]
        ingest_senders: usize,
        /// Ingest closed-loop duration.
        #[arg(long, default_value_t = 10.0)]
        ingest_seconds: f64,
        /// Login storm duration (and each fan-out phase beside it).
        #[arg(long, default_value_t = 10.0)]
        login_seconds: f64,
        #[command(flatten)]
        history: HistoryOpts,
        /// Messages for the history scenario (smaller than its own default to keep `all` short).
        #[arg(long, default_value_t = 200_000)]
        history_messages: u64,
        #[command(flatten)]
        login: LoginOpts,
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

#[derive(clap::Args)]
struct IngestOpts {
    /// Open-loop steps after the closed loop, msg/s (stops once p99 > 50 ms).
    #[arg(long, value_delimiter = ',')]
    ingest_rates: Vec<f64>,
    #[arg(long, default_value_t = 5.0)]
    step_seconds: f64,
    /// sqlite (the default data directory) or postgres (needs --database-url).
    #[arg(long, default_value = "sqlite")]
    backend: String,
    /// PostgreSQL server URL; a fresh database is created on it (psql) for the run.
    #[arg(long, env = "APOGEE_TEST_DATABASE_URL")]
    database_url: Option<String>,
}

impl IngestOpts {
    fn args(&self, senders: usize, seconds: f64) -> IngestArgs {
        IngestArgs {
            senders,
            seconds,
            rates: self.ingest_rates.clone(),
            step_seconds: self.step_seconds,
            backend: self.backend.clone(),
            database_url: self.database_url.clone(),
        }
    }
}

#[derive(clap::Args)]
struct HistoryOpts {
    /// Rooms sharing the half of the messages the hot room does not hold.
    #[arg(long, default_value_t = 100)]
    history_rooms: usize,
    /// Requests per depth and concurrency.
    #[arg(long, default_value_t = 200)]
    history_requests: usize,
    /// Time budget per depth and concurrency, seconds (slow deep pages stop early).
    #[arg(long, default_value_t = 20.0)]
    history_class_seconds: f64,
}

#[derive(clap::Args)]
struct LoginOpts {
    /// Concurrent login loops.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// Members of the fan-out room.
    #[arg(long, default_value_t = 50)]
    login_members: usize,
    /// Fan-out rate, msg/s.
    #[arg(long, default_value_t = 20.0)]
    login_rate: f64,
}

impl LoginOpts {
    fn args(&self, seconds: f64) -> LoginArgs {
        LoginArgs {
            concurrency: self.concurrency,
            seconds,
            members: self.login_members,
            rate: self.login_rate,
        }
    }
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
        Cmd::Ingest { senders, .. } => *senders as u64,
        Cmd::Login { login, .. } => login.login_members as u64 + login.concurrency as u64,
        Cmd::Bruteforce {
            workers,
            attack_concurrency,
            ..
        } => (*workers + *attack_concurrency) as u64,
        Cmd::Peer {
            members, senders, ..
        } => (*members + *senders + 2) as u64,
        Cmd::History { .. } | Cmd::BareServer { .. } | Cmd::Files { .. } => 0,
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
            Cmd::Ingest {
                senders,
                seconds,
                ingest,
            } => ingest::ingest(&env, &ingest.args(*senders, *seconds)).await,
            Cmd::History { history, messages } => {
                history::history(
                    &env,
                    &HistoryArgs {
                        messages: *messages,
                        rooms: history.history_rooms,
                        requests: history.history_requests,
                        class_seconds: history.history_class_seconds,
                    },
                )
                .await
            }
            Cmd::Login { seconds, login } => login::login(&env, &login.args(*seconds)).await,
            Cmd::Peer {
                synapse_venv,
                repeats,
                senders,
                send_seconds,
                members,
                rate,
                fanout_seconds,
            } => {
                peer::peer(
                    &env,
                    &PeerArgs {
                        synapse_venv: synapse_venv
                            .clone()
                            .unwrap_or_else(apogee_loadgen::synapse::default_venv),
                        repeats: *repeats,
                        senders: *senders,
                        send_seconds: *send_seconds,
                        members: *members,
                        rate: *rate,
                        fanout_seconds: *fanout_seconds,
                    },
                )
                .await
            }
            Cmd::Files { mib } => files::files(&env, &FilesArgs { mib: *mib }).await,
            Cmd::Bruteforce {
                attempts,
                attack_concurrency,
                attacker_ip,
                users,
                rate,
                seconds,
                workers,
            } => {
                bruteforce::bruteforce(
                    &env,
                    &BruteforceArgs {
                        attempts: *attempts,
                        attack_concurrency: *attack_concurrency,
                        attacker_ip: *attacker_ip,
                        users: *users,
                        rate: *rate,
                        seconds: *seconds,
                        workers: *workers,
                    },
                )
                .await
            }
            Cmd::All {
                connections,
                users,
                hold,
                fan,
                ingest,
                ingest_senders,
                ingest_seconds,
                login_seconds,
                history,
                history_messages,
                login,
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
                        ingest: ingest.args(*ingest_senders, *ingest_seconds),
                        history: HistoryArgs {
                            messages: *history_messages,
                            rooms: history.history_rooms,
                            requests: history.history_requests,
                            class_seconds: history.history_class_seconds,
                        },
                        login: login.args(*login_seconds),
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
