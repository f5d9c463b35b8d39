//! `palisade serve`: the I/O shell around the sans-IO core. One thread runs the core and
//! the UDP sockets (no lock on the per-packet path); TCP/TLS connections are tasks on the
//! same runtime; a storage thread writes bindings behind and watches for account changes.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use palisade_core::auth::Credential;
use palisade_core::{Binding, Endpoint, Event, Peer, Transport, User};
use palisade_sip::{frame_stream, Frame, Limits};
use palisade_store::{BindingOp, BindingRow, SqliteStore, Storage};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

/// Messages waiting for the core thread (from stream connections, extra UDP sockets and
/// the storage thread). When it is full, the senders wait: a TCP reader stops reading
/// its socket and the kernel's flow control pushes back on the peer.
const INBOUND_QUEUE: usize = 4096;
/// Messages waiting to be written to one stream connection. A peer that does not read
/// fills it, and is then disconnected (counted as `slow_peers_closed`).
const CONN_QUEUE: usize = 256;
/// Operations waiting for the storage thread; when it falls this far behind, the core
/// waits for it rather than dropping a binding or a security event.
const STORE_QUEUE: usize = 65_536;

use crate::config::{FileConfig, Listen};

enum Inbound {
    Message {
        peer: Peer,
        bytes: Vec<u8>,
    },
    Opened {
        conn: u64,
        peer: Peer,
        tx: mpsc::Sender<Vec<u8>>,
        kill: oneshot::Sender<()>,
    },
    Closed {
        conn: u64,
    },
    Users(Vec<User>),
}

/// A UDP socket with large kernel buffers: a burst that arrives while the core is busy
/// waits in the buffer instead of being dropped (the kernel caps the size at
/// net.core.rmem_max / wmem_max).
fn bind_udp(addr: SocketAddr, buffer: usize) -> std::io::Result<UdpSocket> {
    let domain = if addr.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    let _ = s.set_recv_buffer_size(buffer);
    let _ = s.set_send_buffer_size(buffer);
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    UdpSocket::from_std(s.into())
}

struct Conn {
    tx: mpsc::Sender<Vec<u8>>,
    /// Dropping or firing it makes the connection's task close the connection.
    kill: oneshot::Sender<()>,
    transport: Transport,
    addr: SocketAddr,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The per-boot secret (nonces, transaction keys, tags) from the operating system's
/// random source. There is no fallback: a guessable secret would make nonces forgeable,
/// so the server refuses to start instead.
fn random_secret() -> anyhow::Result<[u8; 32]> {
    let mut s = [0u8; 32];
    getrandom::getrandom(&mut s)
        .map_err(|e| anyhow::anyhow!("the operating system's random source failed: {e}"))?;
    Ok(s)
}

fn to_row(b: &Binding, now: Instant) -> BindingRow {
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

fn from_row(r: BindingRow, now: Instant) -> Option<Binding> {
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
type ConfigProtected = std::collections::BTreeMap<String, Vec<String>>;

fn users_of(store: &SqliteStore, domain: &str, cfg: &ConfigProtected) -> anyhow::Result<Vec<User>> {
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

/// What the core thread hands to the storage thread.
enum StoreMsg {
    Binding(BindingOp),
    /// One security event (with its Unix time) for `<data_dir>/security-events.jsonl`;
    /// formatted on the storage thread, off the packet path.
    Security(Box<palisade_shield::SecurityEvent>, i64),
}

fn security_json(e: &palisade_shield::SecurityEvent, unix: i64) -> String {
    // Written by hand: serde_json's `json!` builds a map per event, and under an
    // attack every call can carry an event.
    fn field(out: &mut String, key: &str, v: &str) {
        out.push('"');
        out.push_str(key);
        out.push_str("\":\"");
        for c in v.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 => {
                    let _ = std::fmt::Write::write_fmt(out, format_args!("\\u{:04x}", c as u32));
                }
                c => out.push(c),
            }
        }
        out.push_str("\",");
    }
    let mut out = String::with_capacity(320);
    out.push_str("{\"time\":");
    out.push_str(&unix.to_string());
    out.push(',');
    field(&mut out, "kind", e.kind.as_str());
    field(&mut out, "method", &e.method);
    field(&mut out, "caller", &e.caller);
    field(&mut out, "callee", &e.callee);
    field(&mut out, "source", &e.source);
    field(&mut out, "call_id", &e.call_id);
    field(&mut out, "reason", &e.reason);
    out.push_str("\"status\":");
    match e.status {
        Some(s) => out.push_str(&s.to_string()),
        None => out.push_str("null"),
    }
    out.push_str(",\"sha256\":\"");
    out.push_str(&palisade_shield::hex(&e.sha256));
    out.push_str("\"}");
    out
}

/// The storage thread: batches binding writes into one transaction, and polls for
/// account changes (e.g. `palisade user add` while the server runs).
fn store_thread(
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
                        if let Err(e) = writeln!(f, "{}", security_json(&ev, unix)) {
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
                    let _ = writeln!(f, "{}", security_json(&ev, unix));
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

fn load_tls(cert: &Path, key: &Path) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use tokio_rustls::rustls;
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(cert).with_context(|| format!("tls.cert {}", cert.display()))?,
    ))
    .collect::<Result<Vec<_>, _>>()
    .with_context(|| format!("tls.cert {}: not PEM", cert.display()))?;
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(key).with_context(|| format!("tls.key {}", key.display()))?,
    ))
    .with_context(|| format!("tls.key {}: not PEM", key.display()))?
    .with_context(|| format!("tls.key {}: no private key found", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

/// Everything a stream connection's task owns besides the stream itself.
struct ConnTask {
    conn: u64,
    peer: Peer,
    inbound: mpsc::Sender<Inbound>,
    rx: mpsc::Receiver<Vec<u8>>,
    tx: mpsc::Sender<Vec<u8>>,
    idle: Duration,
    /// Time to complete a started message.
    message_timeout: Duration,
    limits: Limits,
    /// Fired (or dropped) by the shell to close the connection.
    kill: oneshot::Receiver<()>,
    /// For an accepted connection: the shell's end of `kill`, sent with `Opened`.
    announce: Option<oneshot::Sender<()>>,
}

/// Reads framed messages from a stream connection and writes what the core sends.
async fn run_conn<S>(stream: S, task: ConnTask)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let ConnTask {
        conn,
        peer,
        inbound,
        mut rx,
        tx,
        idle,
        message_timeout,
        limits,
        mut kill,
        announce,
    } = task;
    let (mut r, mut w) = tokio::io::split(stream);
    if let Some(k) = announce {
        let _ = inbound
            .send(Inbound::Opened {
                conn,
                peer,
                tx: tx.clone(),
                kill: k,
            })
            .await;
    }
    let writer = tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if w.write_all(&b).await.is_err() {
                break;
            }
        }
        let _ = w.shutdown().await;
    });
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 16384];
    // When the message now in `buf` began: a peer that starts a message must finish it
    // within `message_timeout` (a slow sender cannot hold a buffer for the idle time).
    let mut partial_since: Option<tokio::time::Instant> = None;
    'read: loop {
        let wait = match partial_since {
            Some(at) => message_timeout.saturating_sub(at.elapsed()).min(idle),
            None => idle,
        };
        let read = tokio::select! {
            r = tokio::time::timeout(wait, r.read(&mut chunk)) => r,
            _ = &mut kill => {
                debug!(peer = %peer.addr, "connection closed by the server");
                break;
            }
        };
        let n = match read {
            Err(_) if partial_since.is_some() => {
                debug!(peer = %peer.addr, "closing a connection whose message did not complete in tcp.message_timeout");
                break;
            }
            Err(_) => {
                debug!(peer = %peer.addr, "closing idle connection");
                break;
            }
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => n,
        };
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        let mut progressed = false;
        loop {
            match frame_stream(&buf, &limits) {
                Ok(Frame::Incomplete) => break,
                Ok(Frame::KeepAlive { consumed }) => {
                    if consumed >= 4 {
                        let _ = tx.try_send(b"\r\n".to_vec()); // RFC 5626 pong
                    }
                    buf.drain(..consumed.min(buf.len()));
                    progressed = true;
                }
                Ok(Frame::Message { consumed, .. }) => {
                    progressed = true;
                    let bytes = buf.get(..consumed).unwrap_or_default().to_vec();
                    buf.drain(..consumed.min(buf.len()));
                    if inbound
                        .send(Inbound::Message { peer, bytes })
                        .await
                        .is_err()
                    {
                        break 'read;
                    }
                }
                Err(e) => {
                    // The framing is lost: let the core answer what it can, then close.
                    debug!(peer = %peer.addr, error = %e, "stream framing error; closing connection");
                    let _ = inbound
                        .send(Inbound::Message {
                            peer,
                            bytes: std::mem::take(&mut buf),
                        })
                        .await;
                    break 'read;
                }
            }
        }
        partial_since = match (buf.is_empty(), partial_since) {
            (true, _) => None,
            (false, Some(at)) if !progressed => Some(at),
            (false, _) => Some(tokio::time::Instant::now()),
        };
    }
    let _ = inbound.send(Inbound::Closed { conn }).await;
    drop(tx);
    writer.abort();
}

/// Seconds a TCP/TLS peer has to complete a message it started (`tcp.message_timeout`).
pub const MESSAGE_TIMEOUT_S: u64 = 10;

struct Shell {
    endpoint: Endpoint,
    udp: Vec<Arc<UdpSocket>>,
    conns: HashMap<u64, Conn>,
    by_addr: HashMap<(Transport, SocketAddr), u64>,
    next_conn: Arc<AtomicUsize>,
    inbound_tx: mpsc::Sender<Inbound>,
    store_tx: std::sync::mpsc::SyncSender<StoreMsg>,
    idle: Duration,
    message_timeout: Duration,
    limits: Limits,
    /// When the shield's counters were last written to the log, and their total then.
    summary: (Instant, u64),
    /// When the traffic counters were last written to the log, and a digest of them.
    traffic: (Instant, u64),
    /// Stream connections closed because their peer did not read what we sent.
    slow_peers_closed: u64,
    /// Warning lines that one hostile sender can cause (a refused offer each): at most
    /// `WARN_LINES` per `WARN_WINDOW`; the rest are counted in the totals lines.
    warn_budget: LineBudget,
    /// Security events recorded per source address.
    event_budget: EventBudget,
}

/// Security events recorded per second from one source address, and the burst above
/// that: a flood of hostile offers from one place must not fill the disk one line per
/// datagram. What is over the budget is counted and recorded as one `events-suppressed`
/// event per source and minute.
const EVENT_RATE: f64 = 50.0;
const EVENT_BURST: f64 = 500.0;
/// Most sources with an event budget at once; beyond it, newcomers share one budget.
const EVENT_SOURCES: usize = 65_536;

struct EventBudget {
    sources: HashMap<String, (f64, Instant, u64)>,
    /// When the suppressed counts were last recorded.
    reported: Instant,
}

impl EventBudget {
    /// `source` is `transport:address:port`; the budget is per address.
    fn allow(&mut self, source: &str, now: Instant) -> bool {
        let addr = source
            .split_once(':')
            .map(|(_, rest)| rest.rsplit_once(':').map_or(rest, |(a, _)| a))
            .unwrap_or(source);
        if !self.sources.contains_key(addr) && self.sources.len() >= EVENT_SOURCES {
            self.sources.retain(|_, (_, at, n)| {
                *n > 0 || now.duration_since(*at).as_secs_f64() < EVENT_BURST / EVENT_RATE
            });
        }
        let key = if self.sources.contains_key(addr) || self.sources.len() < EVENT_SOURCES {
            addr
        } else {
            "*"
        };
        if !self.sources.contains_key(key) {
            self.sources.insert(key.to_string(), (EVENT_BURST, now, 0));
        }
        let Some(e) = self.sources.get_mut(key) else {
            return true;
        };
        e.0 = (e.0 + now.duration_since(e.1).as_secs_f64() * EVENT_RATE).min(EVENT_BURST);
        e.1 = now;
        if e.0 >= 1.0 {
            e.0 -= 1.0;
            true
        } else {
            e.2 += 1;
            false
        }
    }

    /// The sources that went over their budget since the last call, with the count.
    fn take_suppressed(&mut self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for (src, (_, _, n)) in self.sources.iter_mut() {
            if *n > 0 {
                out.push((src.clone(), std::mem::take(n)));
            }
        }
        out
    }
}

/// Warning lines per window that hostile traffic may cause.
const WARN_LINES: u64 = 50;
const WARN_WINDOW: Duration = Duration::from_secs(60);

/// At most `WARN_LINES` lines per `WARN_WINDOW`; counts what it suppresses.
struct LineBudget {
    window: Instant,
    used: u64,
    suppressed: u64,
}

impl LineBudget {
    fn new() -> Self {
        LineBudget {
            window: Instant::now(),
            used: 0,
            suppressed: 0,
        }
    }

    fn allow(&mut self) -> bool {
        if self.window.elapsed() >= WARN_WINDOW {
            if self.suppressed > 0 {
                warn!(
                    suppressed = self.suppressed,
                    window_s = WARN_WINDOW.as_secs(),
                    "warning lines suppressed (see the totals lines and security-events.jsonl)"
                );
            }
            self.window = Instant::now();
            self.used = 0;
            self.suppressed = 0;
        }
        if self.used < WARN_LINES {
            self.used += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }
}

impl Shell {
    /// Hands one message to the core. A panic while it is handled is contained: the
    /// message is dropped (answered 500 when it is a request), the core records a
    /// security event with its SHA-256, and the server goes on serving everyone else.
    /// This is defence in depth; the core's crates deny the constructs that panic.
    fn handle(&mut self, now: Instant, peer: Peer, bytes: &[u8]) {
        let ep = &mut self.endpoint;
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            #[cfg(debug_assertions)]
            test_panic_trigger(bytes);
            ep.handle_datagram(now, peer, bytes)
        }));
        if ok.is_err() {
            let recorded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                ep.record_panic(now, peer, bytes)
            }));
            let sha256 = palisade_shield::hex(&palisade_shield::sha256(bytes));
            if self.warn_budget.allow() {
                error!(target: "palisade::security", peer = %peer.addr, sha256, recorded = recorded.is_ok(), panics = self.endpoint.stats.panics, "a message's handling panicked; contained, message dropped");
            }
        }
    }

    fn timeout(&mut self, now: Instant) {
        let ep = &mut self.endpoint;
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ep.handle_timeout(now)))
            .is_err()
        {
            ep.stats.panics += 1;
            error!(target: "palisade::security", panics = ep.stats.panics, "a timer's handling panicked; contained");
        }
    }

    /// Records, once a minute, how many security events each source had over its budget.
    fn suppressed_events(&mut self, force: bool) {
        if !force && self.event_budget.reported.elapsed() < Duration::from_secs(60) {
            return;
        }
        self.event_budget.reported = Instant::now();
        for (source, n) in self.event_budget.take_suppressed() {
            warn!(target: "palisade::security", source, suppressed = n, "security events over the per-source budget were counted, not recorded one by one");
            let e = palisade_shield::SecurityEvent {
                kind: palisade_shield::EventKind::EventsSuppressed,
                method: String::new(),
                caller: String::new(),
                callee: String::new(),
                source,
                call_id: String::new(),
                reason: format!(
                    "{n} security events from this address were not recorded one by one (over {EVENT_RATE}/s)"
                ),
                status: None,
                sha256: [0; 32],
            };
            let _ = self
                .store_tx
                .send(StoreMsg::Security(Box::new(e), unix_now()));
        }
    }

    /// One log line with the traffic counters, at most once a minute and only when they
    /// changed (and at shutdown): per-request lines are at debug, so that a flood costs
    /// counters, not log lines.
    fn traffic_summary(&mut self, force: bool) {
        let st = &self.endpoint.stats;
        let (servers, clients) = self.endpoint.transaction_count();
        let digest = st.requests
            + st.responses
            + st.malformed
            + st.answers_rate_limited
            + st.answers_too_large
            + st.overloaded
            + st.panics
            + self.slow_peers_closed;
        if digest == self.traffic.1
            || (!force && self.traffic.0.elapsed() < Duration::from_secs(60))
        {
            return;
        }
        info!(
            requests = st.requests,
            responses = st.responses,
            malformed = st.malformed,
            challenges = st.challenges,
            auth_failures = st.auth_failures,
            forwarded = st.forwarded,
            answers_rate_limited = st.answers_rate_limited,
            answers_too_large = st.answers_too_large,
            overloaded = st.overloaded,
            panics = st.panics,
            slow_peers_closed = self.slow_peers_closed,
            connections = self.conns.len(),
            server_transactions = servers,
            client_transactions = clients,
            "traffic totals"
        );
        self.traffic = (Instant::now(), digest);
    }

    /// One log line with the shield's counters, at most once a minute and only when they
    /// changed (and at shutdown).
    fn shield_summary(&mut self, force: bool) {
        let st = &self.endpoint.stats;
        let total = st.shield_refused
            + st.shield_answers_refused
            + st.shield_dropped
            + st.protected_refused;
        if total == self.summary.1 || (!force && self.summary.0.elapsed() < Duration::from_secs(60))
        {
            return;
        }
        info!(
            target: "palisade::security",
            refused = st.shield_refused,
            answers_refused = st.shield_answers_refused,
            dropped = st.shield_dropped,
            protected_refused = st.protected_refused,
            "shield totals"
        );
        self.summary = (Instant::now(), total);
    }

    async fn flush(&mut self) {
        while let Some(t) = self.endpoint.poll_transmit() {
            match t.to.transport {
                Transport::Udp => {
                    let sock = self
                        .udp
                        .iter()
                        .find(|s| {
                            s.local_addr()
                                .map(|a| a.is_ipv4() == t.to.addr.is_ipv4())
                                .unwrap_or(false)
                        })
                        .or(self.udp.first());
                    if let Some(sock) = sock {
                        match sock.try_send_to(&t.bytes, t.to.addr) {
                            Ok(_) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                                let _ = sock.send_to(&t.bytes, t.to.addr).await;
                            }
                            Err(e) => {
                                if self.warn_budget.allow() {
                                    warn!(to = %t.to.addr, error = %e, "UDP send failed");
                                }
                            }
                        }
                    }
                }
                Transport::Tcp | Transport::Tls => {
                    let id =
                        t.to.conn
                            .filter(|c| self.conns.contains_key(c))
                            .or_else(|| self.by_addr.get(&(t.to.transport, t.to.addr)).copied());
                    match id.and_then(|c| self.conns.get(&c).map(|x| (c, x))) {
                        Some((id, c)) => {
                            if let Err(mpsc::error::TrySendError::Full(_)) = c.tx.try_send(t.bytes)
                            {
                                // A peer that does not read cannot make us buffer without
                                // limit: it is disconnected.
                                self.slow_peers_closed += 1;
                                if self.warn_budget.allow() {
                                    warn!(peer = %t.to.addr, queued = CONN_QUEUE, total = self.slow_peers_closed, "closing a connection whose peer does not read");
                                }
                                self.close_conn(id);
                            }
                        }
                        None if t.to.transport == Transport::Tcp => self.connect(t.to, t.bytes),
                        None => {
                            warn!(to = %t.to.addr, "no TLS connection to this peer; outbound TLS connections are not opened")
                        }
                    }
                }
            }
        }
        while let Some(ev) = self.endpoint.poll_event() {
            let now = Instant::now();
            let op = match ev {
                Event::BindingSaved(b) => BindingOp::Save(to_row(&b, now)),
                Event::BindingRemoved { aor, contact } => BindingOp::Remove { aor, contact },
                Event::Security(e) => {
                    if !self.event_budget.allow(&e.source, now) {
                        continue; // counted; summarised once a minute
                    }
                    let st = &self.endpoint.stats;
                    let total = st.shield_refused
                        + st.shield_answers_refused
                        + st.shield_dropped
                        + st.protected_refused;
                    // Refusals are warnings; removals (an unknown header on every call
                    // of some phone) are routine and logged at debug, counted in the
                    // summary line and always written to the event file.
                    let routine = matches!(e.kind, palisade_shield::EventKind::Dropped(_));
                    if routine
                        && !tracing::enabled!(target: "palisade::security", tracing::Level::DEBUG)
                    {
                        let _ = self
                            .store_tx
                            .send(StoreMsg::Security(Box::new(e), unix_now()));
                        continue;
                    }
                    if e.kind == palisade_shield::EventKind::Panic {
                        // already logged at error by `handle`
                        let _ = self
                            .store_tx
                            .send(StoreMsg::Security(Box::new(e), unix_now()));
                        continue;
                    }
                    macro_rules! security_line {
                        ($lvl:ident) => {
                    $lvl!(
                        target: "palisade::security",
                        kind = e.kind.as_str(),
                        method = %e.method,
                        caller = %e.caller,
                        callee = %e.callee,
                        source = %e.source,
                        call_id = %e.call_id,
                        status = e.status.unwrap_or(0),
                        reason = %e.reason,
                        sha256 = %palisade_shield::hex(&e.sha256),
                        refused = st.shield_refused,
                        answers_refused = st.shield_answers_refused,
                        dropped = st.shield_dropped,
                        protected_refused = st.protected_refused,
                        total,
                        "shield"
                    )
                        };
                    }
                    if routine {
                        security_line!(debug);
                    } else if self.warn_budget.allow() {
                        security_line!(warn);
                    }
                    let _ = self
                        .store_tx
                        .send(StoreMsg::Security(Box::new(e), unix_now()));
                    continue;
                }
            };
            let _ = self.store_tx.send(StoreMsg::Binding(op));
        }
    }

    /// Forgets a stream connection and tells its task to close it.
    fn close_conn(&mut self, conn: u64) {
        if let Some(c) = self.conns.remove(&conn) {
            if self.by_addr.get(&(c.transport, c.addr)) == Some(&conn) {
                self.by_addr.remove(&(c.transport, c.addr));
            }
            let _ = c.kill.send(());
        }
        self.endpoint.connection_closed(conn);
    }

    fn connect(&mut self, peer: Peer, first: Vec<u8>) {
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed) as u64;
        let (tx, rx) = mpsc::channel(CONN_QUEUE);
        let (kill, kill_rx) = oneshot::channel();
        let _ = tx.try_send(first);
        self.conns.insert(
            conn,
            Conn {
                tx: tx.clone(),
                kill,
                transport: peer.transport,
                addr: peer.addr,
            },
        );
        self.by_addr.insert((peer.transport, peer.addr), conn);
        let inbound = self.inbound_tx.clone();
        let (idle, limits, message_timeout) =
            (self.idle, self.limits.clone(), self.message_timeout);
        tokio::spawn(async move {
            match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(peer.addr)).await
            {
                Ok(Ok(s)) => {
                    let _ = s.set_nodelay(true);
                    let p = Peer {
                        conn: Some(conn),
                        ..peer
                    };
                    let task = ConnTask {
                        conn,
                        peer: p,
                        inbound,
                        rx,
                        tx,
                        idle,
                        message_timeout,
                        limits,
                        kill: kill_rx,
                        announce: None,
                    };
                    run_conn(s, task).await;
                }
                _ => {
                    warn!(to = %peer.addr, "TCP connect failed");
                    let _ = inbound.send(Inbound::Closed { conn }).await;
                }
            }
        });
    }

    fn on_inbound(&mut self, m: Inbound) {
        match m {
            Inbound::Message { peer, bytes } => self.handle(Instant::now(), peer, &bytes),
            Inbound::Opened {
                conn,
                peer,
                tx,
                kill,
            } => {
                self.conns.insert(
                    conn,
                    Conn {
                        tx,
                        kill,
                        transport: peer.transport,
                        addr: peer.addr,
                    },
                );
                self.by_addr.insert((peer.transport, peer.addr), conn);
            }
            Inbound::Closed { conn } => self.close_conn(conn),
            Inbound::Users(u) => self.endpoint.set_users(u),
        }
    }
}

/// The key of the dialog tokens in our Record-Route, kept in `<data_dir>/route.key` so
/// that calls set up before a restart can still be ended through this server. Created
/// (mode 0600) from the operating system's random source the first time.
fn route_key(dir: &Path) -> anyhow::Result<[u8; 32]> {
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

pub async fn run(cfg: FileConfig, listens: Vec<Listen>) -> anyhow::Result<()> {
    let mut core_cfg = cfg.core(&listens)?;
    core_cfg.route_key = Some(route_key(&cfg.server.data_dir)?);
    if cfg.server.advertise.is_none() && listens.iter().any(|l| l.addr.ip().is_unspecified()) {
        warn!("listening on an unspecified address without server.advertise / --advertise: Via and Record-Route will say 127.0.0.1, which only local clients can reach");
    }
    let domain = core_cfg.domain.clone();
    let limits = core_cfg.limits.clone();
    let data_dir = cfg.server.data_dir.clone();
    let store = SqliteStore::open(&data_dir)
        .with_context(|| format!("opening the database in {}", data_dir.display()))?;
    let now = Instant::now();
    // A contained panic is logged by the shell with its context; the default hook's
    // stderr report is kept for the first ten and then for every power of two, so that
    // a flood of one bad input cannot turn into a flood of reports.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        static SEEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SEEN.fetch_add(1, Ordering::Relaxed) + 1;
        if n <= 10 || n.is_power_of_two() {
            report(info);
        }
    }));
    let secret = random_secret()
        .context("refusing to start without a per-boot secret from the operating system")?;
    let mut endpoint = Endpoint::new(core_cfg, secret, now);
    let cfg_protected = cfg.shield.protected.clone();
    let users = users_of(&store, &domain, &cfg_protected)?;
    endpoint.set_unix_time(now, unix_now());
    let restored = store.load_bindings(unix_now())?;
    info!(users = users.len(), bindings = restored.len(), data_dir = %data_dir.display(), domain, "state loaded");
    let no_users = users.is_empty();
    endpoint.set_users(users);
    for r in restored {
        if let Some(b) = from_row(r, now) {
            endpoint.restore_binding(b);
        }
    }
    drop(store);

    let (inbound_tx, mut inbound_rx) = mpsc::channel::<Inbound>(INBOUND_QUEUE);
    let (store_tx, store_rx) = std::sync::mpsc::sync_channel::<StoreMsg>(STORE_QUEUE);
    let store_handle = {
        let (d, dom, itx) = (data_dir.clone(), domain.clone(), inbound_tx.clone());
        std::thread::Builder::new()
            .name("palisade-store".into())
            .spawn(move || store_thread(d, dom, cfg_protected, store_rx, itx))?
    };

    let idle = Duration::from_secs(cfg.tcp.idle_timeout.max(1));
    let message_timeout = Duration::from_secs(cfg.tcp.message_timeout.max(1));
    let max_conns = cfg.tcp.max_connections;
    let next_conn = Arc::new(AtomicUsize::new(1));
    let live = Arc::new(AtomicUsize::new(0));
    let mut udp = Vec::new();
    let mut tls = None;
    for l in &listens {
        match l.transport {
            Transport::Udp => {
                let s = bind_udp(l.addr, cfg.server.udp_buffer)
                    .with_context(|| format!("binding udp:{}", l.addr))?;
                info!(transport = "udp", addr = %s.local_addr()?, "listening");
                udp.push(Arc::new(s));
            }
            Transport::Tcp | Transport::Tls => {
                let acceptor = if l.transport == Transport::Tls {
                    if tls.is_none() {
                        let (Some(c), Some(k)) = (&cfg.tls.cert, &cfg.tls.key) else {
                            anyhow::bail!(
                                "a tls: listener needs tls.cert and tls.key in the config"
                            );
                        };
                        tls = Some(load_tls(c, k)?);
                    }
                    tls.clone()
                } else {
                    None
                };
                let listener = TcpListener::bind(l.addr)
                    .await
                    .with_context(|| format!("binding {}:{}", l.transport.param(), l.addr))?;
                info!(transport = l.transport.param(), addr = %listener.local_addr()?, "listening");
                let (itx, nc, live, limits, transport) = (
                    inbound_tx.clone(),
                    next_conn.clone(),
                    live.clone(),
                    limits.clone(),
                    l.transport,
                );
                tokio::spawn(async move {
                    let mut refused: u64 = 0;
                    let mut failed: u64 = 0;
                    loop {
                        let (sock, addr) = match listener.accept().await {
                            Ok(x) => x,
                            Err(e) => {
                                // EMFILE, ENFILE, ENOBUFS: retrying at once would spin.
                                failed += 1;
                                if failed.is_power_of_two() {
                                    warn!(error = %e, failures = failed, "accept failed; backing off 100 ms");
                                }
                                tokio::time::sleep(Duration::from_millis(100)).await;
                                continue;
                            }
                        };
                        if live.load(Ordering::Relaxed) >= max_conns {
                            refused += 1;
                            if refused.is_power_of_two() {
                                warn!(peer = %addr, max = max_conns, refused, "connection refused: tcp.max_connections reached");
                            }
                            continue;
                        }
                        let _ = sock.set_nodelay(true);
                        let conn = nc.fetch_add(1, Ordering::Relaxed) as u64;
                        let peer = Peer {
                            transport,
                            addr,
                            conn: Some(conn),
                        };
                        let (tx, rx) = mpsc::channel(CONN_QUEUE);
                        let (kill, kill_rx) = oneshot::channel();
                        let (itx, live, limits, acceptor) =
                            (itx.clone(), live.clone(), limits.clone(), acceptor.clone());
                        live.fetch_add(1, Ordering::Relaxed);
                        tokio::spawn(async move {
                            let task = ConnTask {
                                conn,
                                peer,
                                inbound: itx,
                                rx,
                                tx,
                                idle,
                                message_timeout,
                                limits,
                                kill: kill_rx,
                                announce: Some(kill),
                            };
                            match acceptor {
                                None => run_conn(sock, task).await,
                                Some(a) => match tokio::time::timeout(
                                    Duration::from_secs(10),
                                    a.accept(sock),
                                )
                                .await
                                {
                                    Ok(Ok(s)) => run_conn(s, task).await,
                                    _ => debug!(peer = %addr, "TLS handshake failed"),
                                },
                            }
                            live.fetch_sub(1, Ordering::Relaxed);
                        });
                    }
                });
            }
        }
    }
    // Extra UDP sockets beyond the first are read by tasks; the first is read inline.
    for s in udp.iter().skip(1) {
        let (s, itx) = (s.clone(), inbound_tx.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            while let Ok((n, addr)) = s.recv_from(&mut buf).await {
                let _ = itx
                    .send(Inbound::Message {
                        peer: Peer {
                            transport: Transport::Udp,
                            addr,
                            conn: None,
                        },
                        bytes: buf.get(..n).unwrap_or_default().to_vec(),
                    })
                    .await;
            }
        });
    }
    // What a newcomer needs to point a phone here, on standard output as well as in the
    // log (which may go to a file).
    let mut bound: Vec<String> = udp
        .iter()
        .filter_map(|s| s.local_addr().ok())
        .map(|a| format!("udp:{a}"))
        .collect();
    bound.extend(
        listens
            .iter()
            .filter(|l| l.transport != Transport::Udp)
            .map(|l| format!("{}:{}", l.transport.param(), l.addr)),
    );
    println!(
        "palisade: serving domain {domain} on {}; data in {}",
        bound.join(", "),
        data_dir.display()
    );
    println!(
        "palisade: a phone registers as sip:USER@{domain} with its password (README: \"Connect a phone\")"
    );
    if no_users {
        println!(
            "palisade: there are no accounts yet; add the first one with\n    palisade user add alice --password secret --data-dir {}",
            data_dir.display()
        );
        warn!(data_dir = %data_dir.display(), "no accounts yet: add one with `palisade user add NAME --password PASSWORD`");
    }
    let primary = udp.first().cloned();
    let mut shell = Shell {
        endpoint,
        udp,
        conns: HashMap::new(),
        by_addr: HashMap::new(),
        next_conn,
        inbound_tx,
        store_tx,
        idle,
        message_timeout,
        limits,
        summary: (Instant::now(), 0),
        traffic: (Instant::now(), 0),
        slow_peers_closed: 0,
        warn_budget: LineBudget::new(),
        event_budget: EventBudget {
            sources: HashMap::new(),
            reported: Instant::now(),
        },
    };
    let mut buf = vec![0u8; 65_536];
    let far = Duration::from_secs(3600);
    let shutdown = tokio::signal::ctrl_c();
    tokio::pin!(shutdown);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let deadline = shell
            .endpoint
            .poll_timeout()
            .unwrap_or_else(|| Instant::now() + far);
        tokio::select! {
            r = async { match &primary { Some(s) => s.recv_from(&mut buf).await, None => std::future::pending().await } } => {
                if let Ok((n, addr)) = r {
                    let now = Instant::now();
                    shell.handle(now, Peer { transport: Transport::Udp, addr, conn: None }, buf.get(..n).unwrap_or_default());
                    // Drain what is already queued before flushing: fewer wake-ups under load.
                    if let Some(s) = &primary {
                        for _ in 0..32 {
                            match s.try_recv_from(&mut buf) {
                                Ok((n, addr)) => shell.handle(now, Peer { transport: Transport::Udp, addr, conn: None }, buf.get(..n).unwrap_or_default()),
                                Err(_) => break,
                            }
                        }
                    }
                }
            }
            m = inbound_rx.recv() => {
                if let Some(m) = m { shell.on_inbound(m); }
            }
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {}
            _ = &mut shutdown => { info!("shutting down (SIGINT)"); break; }
            _ = term.recv() => { info!("shutting down (SIGTERM)"); break; }
        }
        shell.timeout(Instant::now());
        shell.flush().await;
        shell.shield_summary(false);
        shell.suppressed_events(false);
        shell.traffic_summary(false);
    }
    shell.flush().await;
    shell.shield_summary(true);
    shell.suppressed_events(true);
    shell.traffic_summary(true);
    drop(shell);
    let _ = store_handle.join();
    Ok(())
}

/// Debug builds only: panics while handling a message that contains the text of the
/// environment variable `PALISADE_TEST_PANIC` (when set), so that the integration tests
/// can prove on the real binary that a panic is contained. Release builds have no such
/// trigger.
#[cfg(debug_assertions)]
fn test_panic_trigger(bytes: &[u8]) {
    use std::sync::OnceLock;
    static MARK: OnceLock<Option<Vec<u8>>> = OnceLock::new();
    let mark = MARK.get_or_init(|| {
        std::env::var("PALISADE_TEST_PANIC")
            .ok()
            .filter(|m| !m.is_empty())
            .map(String::into_bytes)
    });
    if let Some(m) = mark {
        if bytes.windows(m.len()).any(|w| w == m.as_slice()) {
            panic!("PALISADE_TEST_PANIC trigger");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn event_budget_is_per_address_and_counts_what_it_suppresses() {
        let t = std::time::Instant::now();
        let mut b = super::EventBudget {
            sources: std::collections::HashMap::new(),
            reported: t,
        };
        let burst = super::EVENT_BURST as u64;
        let allowed = (0..burst + 100)
            .filter(|i| b.allow(&format!("udp:192.0.2.1:{}", 5000 + i), t))
            .count() as u64;
        assert_eq!(allowed, burst, "one budget for every port of an address");
        assert!(
            b.allow("udp:192.0.2.2:5060", t),
            "another address has its own"
        );
        assert!(b.allow("tcp:[2001:db8::1]:5060", t));
        assert_eq!(b.take_suppressed(), vec![("192.0.2.1".to_string(), 100)]);
        assert!(b.take_suppressed().is_empty());
        // the budget refills with time
        assert!(b.allow("udp:192.0.2.1:5000", t + std::time::Duration::from_secs(1)));
    }

    #[test]
    fn security_json_is_valid_json_whatever_the_text() {
        let e = palisade_shield::SecurityEvent {
            kind: palisade_shield::EventKind::OfferRefused,
            method: "INVITE".into(),
            caller: "a\"b\\c@x".into(),
            callee: "bob@example.com".into(),
            source: "udp:192.0.2.1:5060".into(),
            call_id: "c\u{1}d".into(),
            reason: "SDP line 3: \"quoted\"".into(),
            status: Some(488),
            sha256: [0xab; 32],
        };
        let v: serde_json::Value = serde_json::from_str(&super::security_json(&e, 42)).unwrap();
        assert_eq!(v["caller"], "a\"b\\c@x");
        assert_eq!(v["call_id"], "c\u{1}d");
        assert_eq!(v["status"], 488);
        assert_eq!(v["time"], 42);
        assert_eq!(v["kind"], "offer-refused");
        assert_eq!(v["sha256"], "ab".repeat(32));
    }
}
