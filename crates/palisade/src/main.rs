//! The `palisade` binary: thin glue over the protocol crates.
//!
//! `serve` runs the registrar/proxy; `user` and `registrations` work on the database;
//! `inspect` is the offline view of what the server does with a message.
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: under registration load glibc malloc/free
/// took about 20 % of the server's CPU (perf), mostly in `_int_malloc` and
/// `malloc_consolidate`. Asked through its plain entry points (see `alloc`).
#[global_allocator]
static GLOBAL: alloc::Mimalloc = alloc::Mimalloc;

mod account;
mod alloc;
mod block;
mod clock;
mod cluster;
mod config;
mod datadir;
mod db;
mod evidence;
mod hep;
mod http;
mod inspect;
mod messages;
mod report;
mod serve;
mod term;
mod users;
mod witness;

#[derive(Parser)]
#[command(
    name = "palisade",
    version,
    about = "Memory-safe SIP registrar, stateful proxy and session border controller"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct DbArgs {
    /// Configuration file (TOML); its [store], server.data_dir and server.domain are the
    /// defaults.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Directory of the database (default: server.data_dir, `palisade-data`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// SIP domain of the account (default: server.domain, `localhost`).
    #[arg(long)]
    domain: Option<String>,
}

impl DbArgs {
    /// The store's settings, the data directory and the domain.
    fn settings(&self) -> anyhow::Result<(palisade_store::StoreConfig, PathBuf, String)> {
        let cfg = config::load(self.config.as_ref())?;
        Ok((
            cfg.store,
            self.data_dir.clone().unwrap_or(cfg.server.data_dir),
            self.domain.clone().unwrap_or(cfg.server.domain),
        ))
    }

    fn resolve(&self) -> anyhow::Result<(PathBuf, String)> {
        self.settings().map(|(_, d, dom)| (d, dom))
    }

    /// The store for a command that reads: on SQLite the database must be there.
    fn existing(&self) -> anyhow::Result<(db::Db, String)> {
        let (store, d, dom) = self.settings()?;
        Ok((db::Db::existing(&store, &d)?, dom))
    }
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add an account (only HA1 digests of the password are stored). The password: asked
    /// on the terminal (twice, without echo) unless given; or one line of standard input.
    Add {
        name: String,
        /// The password on the command line (visible to other users in `ps`).
        #[arg(long, conflicts_with = "password_stdin")]
        password: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Remove an account.
    Remove {
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List accounts.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Import accounts from CSV (`name,password[,domain][,created]` header; `created`:
    /// RFC 3339, a date, Unix seconds or an age like `400d`, so that accounts carried
    /// over keep their age); all or nothing.
    Import {
        file: PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Protect a user: its devices ring only for callers on its allow-list.
    Protect {
        name: String,
        /// Remove the protection instead.
        #[arg(long)]
        off: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Put a caller (a local account) on a protected user's allow-list.
    Allow {
        name: String,
        caller: String,
        /// Remove the caller from the list instead.
        #[arg(long)]
        remove: bool,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(clap::Args, Clone)]
struct ReportArgs {
    #[arg(long)]
    json: bool,
    #[arg(long)]
    csv: bool,
    /// Only since: RFC 3339, a date, Unix seconds or an age (15m, 2h, 7d).
    #[arg(long)]
    since: Option<String>,
    #[command(flatten)]
    db: DbArgs,
}

#[derive(Subcommand)]
enum ReportCmd {
    /// Every finding of the detectors: kind, subject, score, times, action, records.
    Findings(ReportArgs),
    /// Every user who received a call attempt from an account named by a finding.
    Targets(ReportArgs),
    /// Devices seen registering: account, User-Agent, wire fingerprint, first and last
    /// seen (the material of a profiles file, `detect.profiles`).
    Devices(ReportArgs),
}

#[derive(Subcommand)]
enum NotifyCmd {
    /// Notify every targeted user once: a SIP MESSAGE to each registered device (the
    /// running server delivers it, now or at the device's next registration) and/or a
    /// JSON POST per target to a webhook. Prints a JSON summary.
    Targets {
        #[arg(long)]
        since: Option<String>,
        /// `http://` or `https://` URL (default: notify.webhook of the config).
        #[arg(long)]
        webhook: Option<String>,
        /// Wait up to this many seconds for the server to deliver the SIP messages.
        #[arg(long, default_value_t = 0)]
        wait: u64,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Subcommand)]
enum EvidenceCmd {
    /// Print the log's verifier key (signed-note format: NAME+KEYID+KEY).
    Key {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Print the published entries, one per line after their index.
    Entries {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Verify a log from its files: signature, every tile recomputed from the entries,
    /// the root, consistency with the last checkpoint seen (--last), the blobs.
    Verify {
        /// The log's directory (a copy, an export, or a data directory).
        dir: Option<PathBuf>,
        /// The verifier key (default: this data directory's key).
        #[arg(long)]
        key: Option<String>,
        /// A file with the last checkpoint this verifier accepted; replaced on success.
        #[arg(long)]
        last: Option<PathBuf>,
        /// A witness's cosignature key (NAME+KEYID+KEY, repeatable).
        #[arg(long = "witness")]
        witness: Vec<String>,
        /// How many of those witnesses must have cosigned the checkpoint (default: all).
        #[arg(long)]
        witnesses: Option<usize>,
        /// Accept a copy exported --since: leading entry bundles may be missing (their
        /// hashes are still checked against the signed root).
        #[arg(long)]
        partial: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Write a C2SP tlog-proof of one entry.
    Proof {
        #[arg(long)]
        index: Option<u64>,
        /// The entry of a finding (F<n>).
        #[arg(long)]
        finding: Option<String>,
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Check a proof file for an entry (a file, `-`, or the entry's text) with a key.
    CheckProof {
        file: PathBuf,
        #[arg(long)]
        entry: String,
        #[arg(long)]
        key: String,
    },
    /// Run a witness (its own process and key): answers C2SP tlog-witness
    /// add-checkpoint, cosigning only checkpoints consistent with the last it cosigned.
    Witness {
        /// Its key file (64 hex digits; created with mode 0600 when missing).
        #[arg(long)]
        key: PathBuf,
        /// Its name (the cosignature key name), e.g. witness.example.org/w1.
        #[arg(long)]
        name: String,
        /// The verifier key of a log it follows (repeatable).
        #[arg(long = "log-key")]
        log_key: Vec<String>,
        /// Where it records the last checkpoint it cosigned for each log.
        #[arg(long)]
        state: Option<PathBuf>,
        /// HOST:PORT for its HTTP listener.
        #[arg(long, default_value = "127.0.0.1:5090")]
        listen: String,
        /// Print its verifier key and exit.
        #[arg(long)]
        print_key: bool,
    },
    /// Write the log as static files (tlog-tiles layout, blobs, a README) to DIR.
    Export {
        dir: PathBuf,
        /// Only the entries from this time on (RFC 3339, a date, Unix seconds or an age
        /// like 7d); the earlier ones as hashes (verify the copy with --partial).
        #[arg(long)]
        since: Option<String>,
        /// Every node's log of the cluster ([store] url of --config), fetched from the
        /// nodes' admin listeners into DIR/<node>/ and verified under their keys.
        #[arg(long, conflicts_with = "since")]
        cluster: bool,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Subcommand)]
enum ClusterCmd {
    /// Every node with its state (alive while its heartbeat is younger than
    /// [cluster] dead_after_ms), heartbeat age, uptime, SIP address, the bindings held
    /// through it and its load.
    Status {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Configuration file naming the cluster's database ([store] url).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Parse and check a configuration file as `palisade serve` does before it starts
    /// (keys, values, relations between keys, listeners, TLS and key files): prints `ok`
    /// or the error (exit status 1).
    Check { file: PathBuf },
    /// Print the default configuration: every key with its default value, commented.
    Defaults,
}

#[derive(Subcommand)]
enum BlockCmd {
    /// The blocks and rate limits in force: number, subject, action, until, who imposed
    /// it, and why (the operator's reason, or the detectors' finding).
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Block a subject: its calls and messages are refused with 403 (a network: every
    /// request from it). A running server applies it within 2 s; each block is an
    /// evidence entry.
    Add {
        /// `account:NAME` (or a bare NAME), `network:ADDR/24` or `network:ADDR/64`,
        /// `device:HEX` (a wire fingerprint, 16 hex digits).
        #[arg(value_parser = block::parse_subject)]
        subject: palisade_detect::Subject,
        /// How long: a whole number and s, m, h, d or w (90s, 30m, 2h, 7d, 2w).
        #[arg(long = "for", value_name = "DURATION", value_parser = block::parse_duration)]
        duration: i64,
        /// Why (recorded in the evidence log).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Run the registrar and proxy.
    Serve {
        #[arg(long)]
        config: Option<PathBuf>,
        /// `udp:HOST:PORT`, `tcp:HOST:PORT` or `tls:HOST:PORT` (repeatable; replaces server.listen).
        #[arg(long = "listen")]
        listen: Vec<String>,
        #[arg(long)]
        domain: Option<String>,
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Digest algorithms offered, in order, e.g. `sha-256,md5` (default) or `md5`.
        #[arg(long)]
        auth_algorithms: Option<String>,
        /// Address to advertise in Via/Record-Route when listening on 0.0.0.0.
        #[arg(long)]
        advertise: Option<std::net::IpAddr>,
        /// error, warn, info (default), debug, trace.
        #[arg(long)]
        log_level: Option<String>,
    },
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCmd),
    /// Show the live registrar bindings.
    Registrations {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List call records (what the detectors see): caller, callee, outcome, ring and
    /// talk time, source, User-Agent and wire fingerprint.
    Calls {
        #[arg(long)]
        json: bool,
        /// Only calls since: RFC 3339, a date, Unix seconds or an age (15m, 2h, 7d).
        #[arg(long)]
        since: Option<String>,
        /// Only calls from or to this user.
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Reports of campaign detection.
    #[command(subcommand)]
    Report(ReportCmd),
    /// Tell the targeted users.
    #[command(subcommand)]
    Notify(NotifyCmd),
    /// The signed evidence log.
    #[command(subcommand)]
    Evidence(EvidenceCmd),
    /// Blocks and rate limits: list them, add a block.
    #[command(subcommand)]
    Block(BlockCmd),
    /// Lift a block or rate limit by its number (`palisade block list`); a running
    /// server applies it within 2 s, and it is an evidence entry.
    Unblock {
        id: i64,
        #[command(flatten)]
        db: DbArgs,
    },
    /// The nodes of a cluster ([cluster] node, [store] url): state, heartbeat, load.
    #[command(subcommand)]
    Cluster(ClusterCmd),
    /// Check a configuration file, or print the defaults.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Show what the server would do with each message: accepted (with its canonical
    /// form) or rejected (with the status code, reason and byte offset).
    ///
    /// Exit status: 0 when every message was accepted, 1 when any was rejected, 2 on a
    /// usage or I/O error.
    Inspect {
        /// Files holding one SIP message each, as received in one datagram; `-` reads
        /// standard input.
        #[arg(required = true)]
        files: Vec<String>,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
        /// Override a parser limit, e.g. `--limit limits.max_headers=64` (repeatable).
        #[arg(long = "limit", value_name = "KEY=VALUE")]
        limits: Vec<String>,
        /// Configuration file: its [limits], [sdp] and [shield] sections apply.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Show the message layer's verdict only, without the shield.
        #[arg(long)]
        message_only: bool,
    },
}

fn fail(e: anyhow::Error) -> ExitCode {
    eprintln!("palisade: {}", datadir::error_text(&e));
    ExitCode::from(1)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(
        cli.command,
        Command::Serve { .. } | Command::Evidence(EvidenceCmd::Witness { .. })
    ) {
        term::die_quietly_on_closed_pipe();
    }
    match cli.command {
        Command::Serve {
            config: path,
            listen,
            domain,
            data_dir,
            auth_algorithms,
            advertise,
            log_level,
        } => {
            // The command line's settings win over the file's, at start and at every
            // reload (SIGHUP, POST /api/reload).
            let flags = move |cfg: &mut config::FileConfig| {
                if !listen.is_empty() {
                    cfg.server.listen = listen.clone();
                }
                if let Some(d) = &domain {
                    cfg.server.domain = d.clone();
                }
                if let Some(d) = &data_dir {
                    cfg.server.data_dir = d.clone();
                }
                if let Some(a) = &auth_algorithms {
                    cfg.auth.algorithms = a.split(',').map(|s| s.trim().to_string()).collect();
                }
                if advertise.is_some() {
                    cfg.server.advertise = advertise;
                }
                if let Some(l) = &log_level {
                    cfg.server.log_level = l.clone();
                }
            };
            let mut cfg = match config::load(path.as_ref()) {
                Ok(c) => c,
                Err(e) => return fail(e),
            };
            flags(&mut cfg);
            let level = match cfg.server.log_level.parse::<tracing::Level>() {
                Ok(l) => l,
                Err(_) => {
                    return fail(anyhow::anyhow!(
                        "log level {:?}: use error, warn, info, debug or trace",
                        cfg.server.log_level
                    ))
                }
            };
            let logs = tracing_subscriber::fmt()
                .with_max_level(level)
                .with_writer(std::io::stderr)
                .with_ansi(false);
            match cfg.server.log_format.as_str() {
                "text" => logs.init(),
                "json" => logs.json().flatten_event(true).init(),
                other => {
                    return fail(anyhow::anyhow!(
                        "server.log_format {other:?}: use text or json"
                    ))
                }
            }
            let listens = match cfg.listens() {
                Ok(l) => l,
                Err(e) => return fail(e),
            };
            if let Err(e) = http::set_webhook_roots(cfg.notify.ca_file.as_deref()) {
                return fail(e);
            }
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return fail(e.into()),
            };
            let source = serve::ConfigSource {
                path,
                flags: Box::new(flags),
            };
            match rt.block_on(serve::run(cfg, listens, source)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(e),
            }
        }
        Command::User(cmd) => {
            let r = match cmd {
                UserCmd::Add {
                    name,
                    password,
                    password_stdin,
                    db,
                } => db.settings().and_then(|(store, d, dom)| {
                    let password = match password {
                        Some(p) => p,
                        None if password_stdin => term::read_line_stdin("password")?,
                        None => term::new_password(&format!("{name}@{dom}"))?,
                    };
                    users::add(&db::Db::open(&store, &d)?, &name, &password, &dom)
                }),
                UserCmd::Remove { name, db } => db.existing().and_then(|(d, dom)| {
                    if users::remove(&d, &name, &dom)? {
                        Ok(())
                    } else {
                        Err(anyhow::anyhow!("nothing removed"))
                    }
                }),
                UserCmd::List { json, db } => db
                    .existing()
                    .and_then(|(d, _)| users::list(&d, db.domain.as_deref(), json)),
                UserCmd::Import { file, db } => db
                    .settings()
                    .and_then(|(store, d, dom)| users::import(&store, &d, &file, &dom).map(|_| ())),
                UserCmd::Protect { name, off, db } => db
                    .existing()
                    .and_then(|(d, dom)| users::protect(&d, &name, &dom, !off)),
                UserCmd::Allow {
                    name,
                    caller,
                    remove,
                    db,
                } => db
                    .existing()
                    .and_then(|(d, dom)| users::allow(&d, &name, &caller, &dom, !remove)),
            };
            r.map(|_| ExitCode::SUCCESS).unwrap_or_else(fail)
        }
        Command::Registrations { json, db } => db
            .existing()
            .and_then(|(d, _)| users::registrations(&d, json))
            .map(|_| ExitCode::SUCCESS)
            .unwrap_or_else(fail),
        Command::Calls {
            json,
            since,
            user,
            db,
        } => db
            .existing()
            .and_then(|(d, _)| report::calls(&d, since.as_deref(), user.as_deref(), json))
            .map(|_| ExitCode::SUCCESS)
            .unwrap_or_else(fail),
        Command::Report(cmd) => {
            let (a, which) = match cmd {
                ReportCmd::Findings(a) => (a, 0),
                ReportCmd::Targets(a) => (a, 1),
                ReportCmd::Devices(a) => (a, 2),
            };
            report::Format::of(a.json, a.csv)
                .and_then(|f| {
                    let (d, _) = a.db.existing()?;
                    match which {
                        0 => report::findings(&d, a.since.as_deref(), f),
                        1 => report::targets(&d, a.since.as_deref(), f),
                        _ => report::devices(&d, a.since.as_deref(), f),
                    }
                })
                .map(|_| ExitCode::SUCCESS)
                .unwrap_or_else(fail)
        }
        Command::Notify(NotifyCmd::Targets {
            since,
            webhook,
            wait,
            db,
        }) => {
            let r = config::load(db.config.as_ref()).and_then(|cfg| {
                let (d, _) = db.existing()?;
                let hook = webhook.or(cfg.notify.webhook.clone());
                report::notify(
                    &d,
                    since.as_deref(),
                    hook.as_deref(),
                    &cfg.notify.text,
                    std::time::Duration::from_secs(wait),
                )
            });
            r.map(|_| ExitCode::SUCCESS).unwrap_or_else(fail)
        }
        Command::Block(cmd) => {
            let r = match cmd {
                BlockCmd::List { json, db } => {
                    db.existing().and_then(|(d, _)| block::list(&d, json))
                }
                BlockCmd::Add {
                    subject,
                    duration,
                    reason,
                    db,
                } => block::check_reason(&reason).and_then(|reason| {
                    let (d, _) = db.existing()?;
                    block::add(&d, &subject, duration, reason)
                }),
            };
            r.map(|_| ExitCode::SUCCESS).unwrap_or_else(fail)
        }
        Command::Unblock { id, db } => db
            .existing()
            .and_then(|(d, _)| block::unblock(&d, id))
            .map(|_| ExitCode::SUCCESS)
            .unwrap_or_else(fail),
        Command::Evidence(cmd) => {
            let with = |db: &DbArgs| -> anyhow::Result<evidence::LogSettings> {
                let cfg = config::load(db.config.as_ref())?;
                let (data_dir, domain) = db.resolve()?;
                Ok(evidence::LogSettings {
                    data_dir,
                    domain,
                    origin: cfg.evidence.origin,
                    key: cfg.evidence.key,
                    node: cfg.cluster.node,
                })
            };
            let r = match cmd {
                EvidenceCmd::Key { db } => with(&db).and_then(|l| evidence::key(&l)),
                EvidenceCmd::Entries { db } => with(&db).and_then(|l| evidence::list(&l)),
                EvidenceCmd::Verify {
                    dir,
                    key,
                    last,
                    witness,
                    witnesses,
                    partial,
                    db,
                } => with(&db).and_then(|l| {
                    let required = witnesses.unwrap_or(witness.len());
                    let opts = evidence::VerifyOpts {
                        dir,
                        key,
                        last,
                        witnesses: witness,
                        required,
                        partial,
                    };
                    evidence::verify(&l, &opts)
                }),
                EvidenceCmd::Witness {
                    key,
                    name,
                    log_key,
                    state,
                    listen,
                    print_key,
                } => witness::run(
                    &key,
                    &name,
                    &log_key,
                    &state.unwrap_or_else(|| key.with_extension("state")),
                    &listen,
                    print_key,
                ),
                EvidenceCmd::Proof {
                    index,
                    finding,
                    out,
                    db,
                } => with(&db)
                    .and_then(|l| evidence::proof(&l, index, finding.as_deref(), out.as_deref())),
                EvidenceCmd::CheckProof { file, entry, key } => {
                    evidence::check(&file, &entry, &key)
                }
                EvidenceCmd::Export {
                    dir,
                    cluster: true,
                    db,
                    ..
                } => cluster::export_evidence(db.config.as_ref(), &dir),
                EvidenceCmd::Export { dir, since, db, .. } => {
                    with(&db).and_then(|l| evidence::export(&l, &dir, since.as_deref()))
                }
            };
            r.map(|_| ExitCode::SUCCESS).unwrap_or_else(fail)
        }
        Command::Cluster(ClusterCmd::Status { json, config }) => {
            cluster::status(config.as_ref(), json)
                .map(|_| ExitCode::SUCCESS)
                .unwrap_or_else(fail)
        }
        Command::Config(ConfigCmd::Check { file }) => config::checks::check_file(&file)
            .map(|_| ExitCode::SUCCESS)
            .unwrap_or_else(fail),
        Command::Config(ConfigCmd::Defaults) => {
            print!("{}", config::defaults_toml());
            ExitCode::SUCCESS
        }
        Command::Inspect {
            files,
            json,
            limits,
            config: cfg_path,
            message_only,
        } => {
            let setup = config::load(cfg_path.as_ref()).and_then(|c| {
                let core = c.core(&[])?;
                Ok((core.limits, core.shield))
            });
            let (mut lim, policy) = match setup {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("palisade inspect: {e:#}");
                    return ExitCode::from(2);
                }
            };
            for l in &limits {
                let parsed = l
                    .split_once('=')
                    .ok_or_else(|| format!("--limit {l}: expected KEY=VALUE"))
                    .and_then(|(k, v)| {
                        v.parse::<usize>()
                            .map_err(|_| format!("--limit {l}: value must be a positive integer"))
                            .map(|n| (k, n))
                    })
                    .and_then(|(k, n)| lim.set(k, n));
                if let Err(e) = parsed {
                    eprintln!("palisade inspect: {e}");
                    return ExitCode::from(2);
                }
            }
            let mut any_rejected = false;
            for f in &files {
                let bytes = if f == "-" {
                    let mut v = Vec::new();
                    std::io::stdin().read_to_end(&mut v).map(|_| v)
                } else {
                    std::fs::read(f)
                };
                let bytes = match bytes {
                    Ok(b) => b,
                    Err(e) => {
                        eprintln!("palisade inspect: {f}: {e}");
                        return ExitCode::from(2);
                    }
                };
                let report = inspect::inspect(f, &bytes, &lim, (!message_only).then_some(&policy));
                any_rejected |= !report.accepted();
                if json {
                    println!("{}", report.to_json());
                } else {
                    print!("{}", report.to_text());
                }
            }
            ExitCode::from(if any_rejected { 1 } else { 0 })
        }
    }
}
