//! Persistence: the storage thread (bindings written behind in batches, one fsync per
//! batch; security events appended to `security-events.jsonl`; account changes polled),
//! and the conversions between bindings and rows.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use palisade_core::{Binding, Credential, Peer, Transport, User};
use palisade_detect::{Config as DetectConfig, Detector, Restriction};
use palisade_store::{BindingOp, BindingRow, Storage, StoreConfig};
use tokio::sync::mpsc::error::TrySendError;
use tracing::{error, info, warn};

use super::detect::prepare;
use super::router::Router;
use crate::clock::unix_now;
use crate::db::Db;
use crate::messages::{Inbound, StoreMsg};

/// The row of a binding this node saved (taken by value: its strings move into the
/// row); `node` names this node in a cluster (with its token for the binding's flow),
/// empty otherwise.
pub(super) fn to_row(b: Binding, now: Instant, node: &str, flow: String) -> BindingRow {
    let left = b.expires_at.saturating_duration_since(now).as_secs() as i64;
    BindingRow {
        aor: b.aor,
        contact: b.contact,
        expires: unix_now() + left,
        q: b.q,
        call_id: b.call_id,
        cseq: b.cseq,
        path: b.path.join("\n"),
        transport: b.source.transport.param().to_string(),
        source: palisade_store::addr_text(&b.source.addr),
        user_agent: b.user_agent,
        node: node.to_string(),
        flow,
    }
}

pub(super) fn from_row(r: BindingRow, now: Instant) -> Option<Binding> {
    let left = (r.expires - unix_now()).max(0) as u64;
    Some(Binding {
        aor: r.aor,
        contact: r.contact,
        expires_at: now + Duration::from_secs(left),
        q: r.q,
        call_id: r.call_id,
        cseq: r.cseq,
        path: r
            .path
            .lines()
            .map(str::to_string)
            .filter(|s| !s.is_empty())
            .collect(),
        source: Peer {
            transport: Transport::parse(&r.transport)?,
            addr: r.source.parse().ok()?,
            conn: None,
        },
        user_agent: r.user_agent,
    })
}

/// Protected users from the configuration file, merged with the database's.
pub(super) type ConfigProtected = BTreeMap<String, Vec<String>>;

pub(super) fn users_of(
    store: &dyn Storage,
    domain: &str,
    cfg: &ConfigProtected,
) -> anyhow::Result<Vec<User>> {
    warn_unserved(store, domain);
    let prot = store.protections(Some(domain))?;
    Ok(store
        .list_users(Some(domain))?
        .into_iter()
        .map(|u| {
            let mut protection = prot
                .iter()
                .find(|p| p.name == u.name)
                .map(|p| p.allow.clone());
            if let Some(extra) = cfg.get(&u.name) {
                protection
                    .get_or_insert_with(Vec::new)
                    .extend(extra.iter().cloned());
            }
            User {
                name: u.name,
                credential: Credential {
                    ha1_md5: u.ha1_md5,
                    ha1_sha256: u.ha1_sha256,
                },
                created_unix: u.created,
                protection,
            }
        })
        .collect())
}

/// What the server takes from the store before it starts.
pub(super) struct Loaded {
    /// The store, for the threads' handles.
    pub(super) db: Db,
    /// The accounts of the domain served.
    pub(super) users: Vec<User>,
    /// The bindings not expired.
    pub(super) bindings: Vec<BindingRow>,
    /// With detection on: the detector and the restrictions in force.
    pub(super) detector: Option<(Detector, Vec<Restriction>)>,
}

/// Opens the store and loads what the server starts with (off the async runtime: the
/// PostgreSQL client blocks).
pub(super) fn load(
    store: &StoreConfig,
    dir: &Path,
    domain: &str,
    cfg: &ConfigProtected,
    detect: Option<&DetectConfig>,
) -> anyhow::Result<Loaded> {
    let db = Db::open(store, dir)?;
    let s = db.storage()?;
    let users = users_of(&*s, domain, cfg)?;
    let bindings = s.load_bindings(unix_now())?;
    let detector = match detect {
        Some(c) => Some(prepare(c, &*s, &*db.records()?)?),
        None => None,
    };
    Ok(Loaded {
        db,
        users,
        bindings,
        detector,
    })
}

/// Most accounts one warning line names.
const UNSERVED_NAMED: usize = 20;

/// Accounts of the database the server does not serve (their domain is not
/// `server.domain`, or they have none): one warning line that names them (at most
/// [`UNSERVED_NAMED`]) and says why, at start and at each reload, so that `users=5` after
/// an import of 8 does not go unexplained.
fn warn_unserved(store: &dyn Storage, domain: &str) {
    let Ok(all) = store.list_users(None) else {
        return;
    };
    let skipped: Vec<_> = all.iter().filter(|u| u.domain != domain).collect();
    if skipped.is_empty() {
        return;
    }
    let without = skipped.iter().filter(|u| u.domain.is_empty()).count();
    let mut names: Vec<String> = skipped
        .iter()
        .take(UNSERVED_NAMED)
        .map(|u| format!("{}@{}", u.name, u.domain))
        .collect();
    if skipped.len() > UNSERVED_NAMED {
        names.push(format!("and {} more", skipped.len() - UNSERVED_NAMED));
    }
    warn!(
        accounts = skipped.len(),
        without_domain = without,
        served = domain,
        "accounts not served, their domain is not server.domain{}: {}",
        if without > 0 {
            " (those ending in @ have none: remove them and add them again with --domain)"
        } else {
            ""
        },
        names.join(", ")
    );
}

/// How often the account version is read: an account, a protection or an allow-list
/// changed by the CLI or another node takes effect within this (plus the reload).
const ACCOUNTS_POLL: Duration = Duration::from_millis(250);

/// Binding operations kept for another try when the database refuses a write (it is
/// locked by another process past the busy timeout, the disk is full); beyond this many
/// the oldest are dropped, with an error line.
const MAX_UNWRITTEN: usize = 200_000;

/// How long the last write at shutdown is retried.
const FINAL_WRITE: Duration = Duration::from_secs(10);

/// The storage thread: batches binding writes into one transaction, and polls for
/// account changes (e.g. `palisade user add` while the server runs). A write that fails
/// is retried with the next batch (nothing acknowledged is dropped because the database
/// was busy once), and at shutdown, once the core's queue is closed and drained, the
/// rest is written before the thread ends: the server exits only after that.
pub(super) fn store_thread(
    db: Db,
    dir: PathBuf,
    domain: String,
    cfg_protected: ConfigProtected,
    ops: Receiver<StoreMsg>,
    inbound: Router,
    window: Duration,
) {
    // The group-commit window (`[store] commit_window_ms`, 50 ms by default): after the
    // first operation of a batch the thread waits this long for more, then writes them
    // all at once. A binding is committed at most this long (plus the commit) after its
    // 200 OK went out, which is what a `kill -9` can lose (README, "Stopping"); SIGTERM
    // loses nothing.
    let open = || {
        db.storage().and_then(|s| {
            s.sync_every_commit()?;
            Ok(s)
        })
    };
    let mut store = match open() {
        Ok(s) => Some(s),
        Err(e) => {
            error!(error = %e, "storage thread cannot open the database; retrying each second, bindings held meanwhile");
            None
        }
    };
    let events_path = dir.join("security-events.jsonl");
    let mut events = match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&events_path)
    {
        Ok(f) => Some(std::io::BufWriter::new(f)),
        Err(e) => {
            error!(error = %e, path = %events_path.display(), "cannot open the security event file; events go to the log only");
            None
        }
    };
    let mut version = store.as_ref().and_then(|s| s.version().ok()).unwrap_or(0);
    let mut last_check = Instant::now();
    let mut version_failing = false;
    // Accounts reloaded but not yet taken by the core: this thread never waits on the
    // core's queue (the core hands bindings to this one; waiting both ways could
    // deadlock), it offers them again on its next pass.
    let mut users_pending: Option<Inbound> = None;
    // Operations not written yet (a batch, or batches the database refused).
    let mut unwritten: Vec<BindingOp> = Vec::new();
    let mut written: u64 = 0;
    let mut failing = false;
    // The last window brought something: the next one starts with a nap, not a blocking
    // receive (a sender that finds this thread asleep in `recv` pays a futex wake-up).
    let mut busy = false;
    loop {
        let mut batch = Vec::new();
        let closed = if busy {
            std::thread::sleep(window);
            false
        } else {
            match ops.recv_timeout(Duration::from_millis(200)) {
                Ok(op) => {
                    batch.push(op);
                    // Group commit: let a burst accumulate, so that a busy registrar costs
                    // one wake-up and one transaction per window instead of one per
                    // REGISTER.
                    std::thread::sleep(window);
                    false
                }
                Err(RecvTimeoutError::Timeout) => false,
                // The core is gone and its queue is empty: write what is left, then end.
                Err(RecvTimeoutError::Disconnected) => true,
            }
        };
        let mut closed = closed;
        while batch.len() < 20_000 {
            match ops.try_recv() {
                Ok(op) => batch.push(op),
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        busy = !batch.is_empty();
        let mut wrote_events = false;
        for m in batch {
            match m {
                StoreMsg::Binding(b) => unwritten.push(b),
                StoreMsg::Security(ev, unix) => {
                    if let Some(f) = events.as_mut() {
                        if let Err(e) = writeln!(f, "{}", ev.to_json(unix)) {
                            error!(error = %e, "writing a security event failed");
                        }
                        wrote_events = true;
                    }
                }
            }
        }
        if wrote_events {
            // Group commit: one fsync per batch, so an event is on disk within about
            // one window of being raised plus the write.
            if let Some(Err(e)) = events
                .as_mut()
                .map(|f| f.flush().and_then(|()| f.get_ref().sync_data()))
            {
                error!(error = %e, "flushing security events failed");
            }
        }
        if store.is_none() && (failing || last_check.elapsed() >= Duration::from_secs(1)) {
            store = open().ok();
        }
        let deadline = Instant::now() + if closed { FINAL_WRITE } else { Duration::ZERO };
        while !unwritten.is_empty() {
            let result = match store.as_mut() {
                Some(s) => s.apply_bindings(&unwritten).map_err(|e| e.to_string()),
                None => Err("the database could not be opened".to_string()),
            };
            match result {
                Ok(()) => {
                    written += unwritten.len() as u64;
                    if failing {
                        info!(ops = unwritten.len(), "bindings written again");
                    }
                    failing = false;
                    unwritten.clear();
                }
                Err(e) => {
                    if !failing {
                        error!(error = %e, ops = unwritten.len(), "writing bindings failed; kept and tried again");
                    }
                    failing = true;
                    if unwritten.len() > MAX_UNWRITTEN {
                        let n = unwritten.len() - MAX_UNWRITTEN;
                        unwritten.drain(..n);
                        error!(
                            dropped = n,
                            "bindings dropped: the database keeps refusing writes"
                        );
                    }
                    if Instant::now() >= deadline {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                    if store.is_none() {
                        store = open().ok();
                    }
                }
            }
        }
        if closed {
            break;
        }
        if let Some(u) = users_pending.take() {
            if let Err(TrySendError::Full(u)) = inbound.try_send(u) {
                users_pending = Some(u);
            }
        }
        if last_check.elapsed() >= ACCOUNTS_POLL {
            last_check = Instant::now();
            let Some(s) = store.as_ref() else { continue };
            let checked = s.version();
            if checked.is_ok() && std::mem::take(&mut version_failing) {
                info!("database version check works again");
            }
            match checked {
                Ok(v) if v != version => {
                    version = v;
                    match users_of(&**s, &domain, &cfg_protected) {
                        Ok(u) => {
                            info!(users = u.len(), "accounts reloaded");
                            // (a newer reload replaces one the core has not taken yet;
                            // fails for good only once the core is gone, at shutdown)
                            users_pending = match inbound.try_send(Inbound::Users(u)) {
                                Err(TrySendError::Full(u)) => Some(u),
                                _ => None,
                            };
                        }
                        Err(e) => error!(error = %e, "reloading accounts failed"),
                    }
                }
                Ok(_) => {}
                // (once per outage: the check runs four times a second)
                Err(e) if !version_failing => {
                    version_failing = true;
                    error!(error = %e, "database version check failed; accounts as they are until the database answers again");
                }
                Err(_) => {}
            }
        }
    }
    if let Some(f) = events.as_mut() {
        let _ = f.flush().and_then(|()| f.get_ref().sync_data());
    }
    if unwritten.is_empty() {
        info!(
            binding_ops = written,
            "storage closed, every binding written"
        );
    } else {
        error!(
            lost = unwritten.len(),
            written, "storage closed with bindings the database refused"
        );
    }
}
