//! Persistence: the storage thread (bindings written behind in batches, one fsync per
//! batch; security events appended to `security-events.jsonl`; account changes polled),
//! the conversions between bindings and rows, and the persisted route key.

use super::*;

pub(super) fn to_row(b: &Binding, now: Instant) -> BindingRow {
    let left = b.expires_at.saturating_duration_since(now).as_secs() as i64;
    BindingRow {
        aor: b.aor.clone(),
        contact: b.contact.clone(),
        expires: unix_now() + left,
        q: b.q,
        call_id: b.call_id.clone(),
        cseq: b.cseq,
        path: b.path.join("\n"),
        transport: b.source.transport.param().to_string(),
        source: b.source.addr.to_string(),
        user_agent: b.user_agent.clone(),
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
pub(super) type ConfigProtected = std::collections::BTreeMap<String, Vec<String>>;

pub(super) fn users_of(
    store: &SqliteStore,
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

/// Most accounts one warning line names.
const UNSERVED_NAMED: usize = 20;

/// Accounts of the database the server does not serve (their domain is not
/// `server.domain`, or they have none): one warning line that names them (at most
/// [`UNSERVED_NAMED`]) and says why, at start and at each reload, so that `users=5` after
/// an import of 8 does not go unexplained.
fn warn_unserved(store: &SqliteStore, domain: &str) {
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

/// What the core thread hands to the storage thread.
pub(super) enum StoreMsg {
    Binding(BindingOp),
    /// One security event (with its Unix time) for `<data_dir>/security-events.jsonl`;
    /// formatted on the storage thread, off the packet path.
    Security(Box<palisade_shield::SecurityEvent>, i64),
}

/// The storage thread: batches binding writes into one transaction, and polls for
/// account changes (e.g. `palisade user add` while the server runs).
pub(super) fn store_thread(
    dir: PathBuf,
    domain: String,
    cfg_protected: ConfigProtected,
    ops: std::sync::mpsc::Receiver<StoreMsg>,
    inbound: mpsc::Sender<Inbound>,
) {
    use std::io::Write as _;
    let mut store = match SqliteStore::open(&dir) {
        Ok(s) => s,
        Err(e) => {
            error!(error = %e, "storage thread cannot open the database; bindings will not persist");
            return;
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
    let mut version = store.version().unwrap_or(0);
    let mut last_check = Instant::now();
    loop {
        let mut batch = Vec::new();
        match ops.recv_timeout(Duration::from_millis(200)) {
            Ok(op) => {
                batch.push(op);
                // Group commit: let a burst accumulate, so that a busy registrar costs one
                // wake-up and one transaction per 50 ms instead of one per REGISTER.
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
        while batch.len() < 20_000 {
            match ops.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let mut bindings = Vec::with_capacity(batch.len());
        let mut wrote_events = false;
        for m in batch {
            match m {
                StoreMsg::Binding(b) => bindings.push(b),
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
            // 50 ms of being raised (the batching window above) plus the write.
            if let Some(Err(e)) = events
                .as_mut()
                .map(|f| f.flush().and_then(|()| f.get_ref().sync_data()))
            {
                error!(error = %e, "flushing security events failed");
            }
        }
        if !bindings.is_empty() {
            if let Err(e) = store.apply_bindings(&bindings) {
                error!(error = %e, ops = bindings.len(), "writing bindings failed");
            }
        }
        if last_check.elapsed() >= Duration::from_secs(1) {
            last_check = Instant::now();
            match store.version() {
                Ok(v) if v != version => {
                    version = v;
                    match users_of(&store, &domain, &cfg_protected) {
                        Ok(u) => {
                            info!(users = u.len(), "accounts reloaded");
                            let _ = inbound.blocking_send(Inbound::Users(u));
                        }
                        Err(e) => error!(error = %e, "reloading accounts failed"),
                    }
                }
                Ok(_) => {}
                Err(e) => error!(error = %e, "database version check failed"),
            }
        }
    }
    // Channel closed: flush what is left.
    let mut rest = Vec::new();
    for m in ops.try_iter() {
        match m {
            StoreMsg::Binding(b) => rest.push(b),
            StoreMsg::Security(ev, unix) => {
                if let Some(f) = events.as_mut() {
                    let _ = writeln!(f, "{}", ev.to_json(unix));
                }
            }
        }
    }
    if let Some(f) = events.as_mut() {
        let _ = f.flush().and_then(|()| f.get_ref().sync_data());
    }
    if !rest.is_empty() {
        let _ = store.apply_bindings(&rest);
    }
}

/// The key of the dialog tokens in our Record-Route, kept in `<data_dir>/route.key` so
/// that calls set up before a restart can still be ended through this server. Created
/// (mode 0600) from the operating system's random source the first time.
pub(super) fn route_key(dir: &Path) -> anyhow::Result<[u8; 32]> {
    let path = dir.join("route.key");
    match std::fs::read(&path) {
        Ok(b) => b.try_into().map_err(|_| {
            anyhow::anyhow!(
                "{} is not 32 bytes; remove it to make a new one",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = random_secret()?;
            std::fs::create_dir_all(dir)?;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            use std::io::Write as _;
            let mut f = opts
                .open(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            f.write_all(&key)?;
            f.sync_all()?;
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}
