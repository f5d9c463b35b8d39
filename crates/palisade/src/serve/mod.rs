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
use palisade_core::Credential;
use palisade_core::{Binding, Endpoint, Event, Peer, Transport, User};
use palisade_sip::{frame_stream, Frame, Limits};
use palisade_store::{BindingOp, BindingRow, SqliteStore, Storage};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

mod admin;
mod detect;
mod events;
mod evidence;
mod handoff;
mod persist;
mod stream;
mod udp;
mod witness;

pub(crate) use self::stream::MESSAGE_TIMEOUT_S;
use self::{detect::*, events::*, evidence::*, persist::*, stream::*, udp::*};

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
/// Remote addresses remembered with the UDP socket they wrote to (several sockets only).
const UDP_FROM_MAX: usize = 65_536;

/// Observations are handed to the detection thread this many at a time, or once the
/// oldest has waited `OBSERVE_WAIT` (detection runs that much later; the core's own
/// restrictions do not wait for it).
const OBSERVE_BATCH: usize = 512;
const OBSERVE_WAIT: Duration = Duration::from_millis(20);

use crate::config::{FileConfig, Listen};

enum Inbound {
    Message {
        peer: Peer,
        bytes: Vec<u8>,
    },
    /// A datagram on the UDP socket of that index (beyond the first, read by tasks).
    Datagram {
        peer: Peer,
        bytes: Vec<u8>,
        socket: usize,
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
    /// A restriction from the detection thread.
    Restrict(palisade_detect::Restriction),
    /// A restriction the operator lifted (`palisade unblock`), from the detection thread.
    Lift(palisade_detect::Subject),
    /// A queued notification to deliver (from the detection thread).
    Notify {
        user: String,
        text: String,
    },
    /// Messages held until their evidence entries were durable (from the evidence
    /// thread).
    Release(Vec<palisade_core::Transmit>),
    /// A webhook notification whose entry is durable: for the webhook thread.
    Webhook(Hook),
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

struct Shell {
    endpoint: Endpoint,
    /// The UDP sockets with the local address each was bound to (read once at bind time:
    /// no `getsockname` per send).
    udp: Vec<(Arc<UdpSocket>, SocketAddr)>,
    /// With several UDP sockets: which one each remote address last wrote to, so that
    /// answers and requests to it leave from that one (its NAT pinhole, its route).
    udp_from: HashMap<SocketAddr, usize>,
    conns: HashMap<u64, Conn>,
    by_addr: HashMap<(Transport, SocketAddr), u64>,
    next_conn: Arc<AtomicUsize>,
    inbound_tx: mpsc::Sender<Inbound>,
    /// To the storage thread, never waiting (see `handoff`).
    store: handoff::StoreHandoff,
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
    /// The detection thread's queue (campaign detection on).
    detect_tx: Option<std::sync::mpsc::SyncSender<DetectMsg>>,
    /// Observations dropped because the detection thread's queue was full.
    detect_dropped: u64,
    /// Observations of this pass of the loop, sent as one batch at its end.
    observed: Vec<palisade_detect::Observation>,
    /// When the oldest observation held was taken.
    observed_since: Option<Instant>,
    /// The user part of notifications' From.
    notify_from: String,
    /// The evidence log's queue (`evidence.enabled`).
    evidence: Option<EvidenceTx>,
    /// Evidence entries of the events being taken.
    entries: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// The message whose handling refused something, while its events are taken.
    refused_message: Option<Vec<u8>>,
    /// The webhook thread's queue (with campaign detection).
    webhooks: Option<std::sync::mpsc::Sender<Hook>>,
    /// Transmits released by the evidence thread (their entries are durable).
    released: Vec<palisade_core::Transmit>,
}

impl Shell {
    /// Hands one message to the core. A panic while it is handled is contained: the
    /// message is dropped (answered 500 when it is a request), the core records a
    /// security event with its SHA-256, and the server goes on serving everyone else.
    /// This is defence in depth; the core's crates deny the constructs that panic.
    fn handle(&mut self, now: Instant, peer: Peer, bytes: &[u8]) {
        let refusals = |st: &palisade_core::Stats| {
            st.shield_refused + st.shield_answers_refused + st.protected_refused + st.panics
        };
        let before = refusals(&self.endpoint.stats);
        self.handle_inner(now, peer, bytes);
        if self.evidence.is_some() && refusals(&self.endpoint.stats) != before {
            self.refused_message = Some(bytes.to_vec());
            self.hold_until_durable();
            self.refused_message = None;
        }
    }

    fn handle_inner(&mut self, now: Instant, peer: Peer, bytes: &[u8]) {
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
            // (not an evidence entry: the evidence log has every one of these events)
            self.store.send(StoreMsg::Security(Box::new(e), unix_now()));
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
            store_held = self.store.held(),
            store_shed = self.store.shed,
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
        // Transmits whose evidence entries are durable now, then the core's own.
        for t in std::mem::take(&mut self.released) {
            self.transmit(t).await;
        }
        while let Some(t) = self.endpoint.poll_transmit() {
            self.transmit(t).await;
        }
        self.process_events();
    }

    /// Sends one message (UDP socket, stream connection, or a new TCP connection).
    async fn transmit(&mut self, t: palisade_core::Transmit) {
        {
            match t.to.transport {
                Transport::Udp => {
                    let known = match self.udp.len() {
                        0 | 1 => None,
                        _ => self.udp_from.get(&t.to.addr).and_then(|&i| self.udp.get(i)),
                    };
                    let sock = known
                        .or_else(|| {
                            self.udp
                                .iter()
                                .find(|(_, a)| a.is_ipv4() == t.to.addr.is_ipv4())
                        })
                        .or(self.udp.first())
                        .map(|(s, _)| s);
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
    }

    /// Takes the core's events: bindings to the store, security events to the log and
    /// the evidence log, observations to the detectors.
    fn process_events(&mut self) {
        self.process_events_only();
        self.send_entries(None);
        self.store.flush();
    }

    fn process_events_only(&mut self) {
        while let Some(ev) = self.endpoint.poll_event() {
            let now = Instant::now();
            let op = match ev {
                Event::BindingSaved(b) => BindingOp::Save(to_row(&b, now)),
                Event::BindingRemoved { aor, contact } => BindingOp::Remove { aor, contact },
                Event::Observation(o) => {
                    if self.detect_tx.is_some() {
                        self.observed.push(o);
                    }
                    continue;
                }
                Event::Notified { user, delivered } => {
                    self.send_detector(DetectMsg::Notified(user, delivered));
                    continue;
                }
                Event::Security(e) => {
                    self.on_security(e, now);
                    continue;
                }
            };
            self.store.send(StoreMsg::Binding(op));
        }
        self.send_observed(false);
    }

    /// Hands the observations gathered to the detection thread: in batches of
    /// `OBSERVE_BATCH`, or once the oldest has waited `OBSERVE_WAIT` (one wake-up of that
    /// thread per batch, not per pass of this loop), or when `force`d.
    fn send_observed(&mut self, force: bool) {
        if self.observed.is_empty() {
            return;
        }
        let since = *self.observed_since.get_or_insert_with(Instant::now);
        if force || self.observed.len() >= OBSERVE_BATCH || since.elapsed() >= OBSERVE_WAIT {
            self.observed_since = None;
            let batch = std::mem::take(&mut self.observed);
            self.send_detector(DetectMsg::Observe(batch));
        }
    }

    /// When the observations held must go at the latest.
    fn observed_deadline(&self) -> Option<Instant> {
        self.observed_since.map(|t| t + OBSERVE_WAIT)
    }

    /// Sends the evidence entries of the events just taken; `then` (the transmits of a
    /// refused message) rides with the last one and comes back when it is durable.
    fn send_entries(&mut self, then: Option<Vec<palisade_core::Transmit>>) {
        let entries = std::mem::take(&mut self.entries);
        let Some(ev) = &self.evidence else {
            if let Some(t) = then {
                self.released.extend(t);
            }
            return;
        };
        let n = entries.len();
        let mut then = then.map(Inbound::Release);
        for (i, (e, blob)) in entries.into_iter().enumerate() {
            let effect = if i + 1 == n { then.take() } else { None };
            if let Err(Some(Inbound::Release(t))) = ev.send_with(e, blob, effect) {
                // the log is behind: the answer is not held back (counted and logged)
                self.released.extend(t);
            }
        }
        if let Some(Inbound::Release(t)) = then {
            self.released.extend(t);
        }
    }

    /// After a message whose handling refused something: its events are taken now and
    /// whatever the core wants to send (the refusal) waits until their entries are
    /// durable in the evidence log.
    fn hold_until_durable(&mut self) {
        self.process_events_only();
        let mut held = Vec::new();
        while let Some(t) = self.endpoint.poll_transmit() {
            held.push(t);
        }
        self.send_entries(Some(held));
    }

    /// With several UDP sockets, remembers which one `addr` wrote to (bounded: the
    /// table starts afresh when full; an address then gets the first socket of its
    /// family until it writes again).
    fn arrived_on(&mut self, addr: SocketAddr, socket: usize) {
        if self.udp.len() < 2 {
            return;
        }
        if self.udp_from.len() >= UDP_FROM_MAX && !self.udp_from.contains_key(&addr) {
            self.udp_from.clear();
        }
        self.udp_from.insert(addr, socket);
    }

    /// Hands a message to the detection thread without ever waiting for it: when its
    /// queue is full the message is counted and dropped (the core must not
    /// slow down because the detectors are behind).
    fn send_detector(&mut self, m: DetectMsg) {
        let Some(tx) = &self.detect_tx else { return };
        if let Err(std::sync::mpsc::TrySendError::Full(_)) = tx.try_send(m) {
            self.detect_dropped += 1;
            if self.detect_dropped.is_power_of_two() && self.warn_budget.allow() {
                warn!(
                    dropped = self.detect_dropped,
                    "the detection thread is behind; observations dropped"
                );
            }
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
            Inbound::Datagram {
                peer,
                bytes,
                socket,
            } => {
                self.arrived_on(peer.addr, socket);
                self.handle(Instant::now(), peer, &bytes)
            }
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
            Inbound::Restrict(r) => self.endpoint.restrict(r),
            Inbound::Lift(s) => self.endpoint.lift(&s),
            Inbound::Release(t) => self.released.extend(t),
            Inbound::Webhook(h) => {
                let sent = match &self.webhooks {
                    Some(tx) => tx.send(h).map_err(|e| e.0),
                    None => Err(h),
                };
                if let Err(h) = sent {
                    self.send_detector(DetectMsg::Hooked(h.user, Err("no webhook sender".into())));
                }
            }
            Inbound::Notify { user, text } => {
                let from = self.notify_from.clone();
                if !self.endpoint.notify(Instant::now(), &user, &from, &text) {
                    // no device registered now: stays queued, tried again later
                    self.send_detector(DetectMsg::Notified(user, false));
                }
            }
        }
    }
}

pub async fn run(cfg: FileConfig, listens: Vec<Listen>) -> anyhow::Result<()> {
    let mut core_cfg = cfg.core(&listens)?;
    crate::datadir::prepare(&cfg.server.data_dir)?;
    core_cfg.route_key = Some(route_key(&cfg.server.data_dir)?);
    if cfg.server.advertise.is_none() && listens.iter().any(|l| l.addr.ip().is_unspecified()) {
        warn!("listening on an unspecified address without server.advertise / --advertise: Via and Record-Route will say 127.0.0.1, which only local clients can reach");
    }
    let domain = core_cfg.domain.clone();
    let limits = core_cfg.limits.clone();
    let data_dir = cfg.server.data_dir.clone();
    let store = crate::datadir::open(&data_dir)?;
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
    let detector = if cfg.detect.enabled {
        let records = crate::datadir::open_records(&data_dir)?;
        let (d, restrictions) = prepare(&cfg.detect, &store, &records)?;
        let n = restrictions.len();
        for r in &restrictions {
            endpoint.restrict(r.clone());
        }
        info!(restrictions = n, "campaign detection on");
        Some((d, restrictions))
    } else {
        info!("campaign detection off (detect.enabled = false)");
        None
    };
    drop(store);

    let (inbound_tx, mut inbound_rx) = mpsc::channel::<Inbound>(INBOUND_QUEUE);
    let (store_tx, store_rx) = std::sync::mpsc::sync_channel::<StoreMsg>(STORE_QUEUE);
    let store_handle = {
        let (d, dom, itx) = (data_dir.clone(), domain.clone(), inbound_tx.clone());
        std::thread::Builder::new()
            .name("palisade-store".into())
            .spawn(move || store_thread(d, dom, cfg_protected, store_rx, itx))?
    };

    let (evidence_tx, evidence_handle) = if cfg.evidence.enabled {
        let (tx, h) = evidence::start(&cfg, &data_dir, inbound_tx.clone())?;
        let _ = tx.send(
            crate::evidence::entry(
                "server-start",
                unix_now().saturating_mul(1000),
                vec![
                    ("version", serde_json::json!(env!("CARGO_PKG_VERSION"))),
                    ("domain", serde_json::json!(domain)),
                ],
            ),
            None,
        );
        (Some(tx), Some(h))
    } else {
        (None, None)
    };
    if cfg.evidence.enabled {
        admin::start(&cfg.admin.listen, &data_dir).await?;
    }
    let mut detect_handle = None;
    let detect_tx = match detector {
        Some((d, active)) => {
            let (tx, rx) = std::sync::mpsc::sync_channel::<DetectMsg>(DETECT_QUEUE);
            let (dir, itx, etx) = (data_dir.clone(), inbound_tx.clone(), evidence_tx.clone());
            let all = cfg.evidence.records == crate::config::EvidenceRecords::All;
            detect_handle = Some(
                std::thread::Builder::new()
                    .name("palisade-detect".into())
                    .spawn(move || detect_thread(dir, d, rx, itx, etx, all, active))?,
            );
            Some(tx)
        }
        None => None,
    };
    let webhook_tx = match &detect_tx {
        Some(results) => {
            let (tx, rx) = std::sync::mpsc::channel::<Hook>();
            let results = results.clone();
            std::thread::Builder::new()
                .name("palisade-webhook".into())
                .spawn(move || webhook_thread(rx, results))?;
            Some(tx)
        }
        None => None,
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
    for (socket, s) in udp.iter().enumerate().skip(1) {
        let (s, itx) = (s.clone(), inbound_tx.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            while let Ok((n, addr)) = s.recv_from(&mut buf).await {
                let _ = itx
                    .send(Inbound::Datagram {
                        peer: Peer {
                            transport: Transport::Udp,
                            addr,
                            conn: None,
                        },
                        bytes: buf.get(..n).unwrap_or_default().to_vec(),
                        socket,
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
        udp: udp
            .iter()
            .map(|s| {
                let local = s
                    .local_addr()
                    .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
                (s.clone(), local)
            })
            .collect(),
        udp_from: HashMap::new(),
        conns: HashMap::new(),
        by_addr: HashMap::new(),
        next_conn,
        inbound_tx,
        store: handoff::StoreHandoff::new(store_tx),
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
        detect_tx,
        detect_dropped: 0,
        observed: Vec::new(),
        observed_since: None,
        notify_from: cfg.notify.from_user.clone(),
        evidence: evidence_tx,
        entries: Vec::new(),
        refused_message: None,
        webhooks: webhook_tx,
        released: Vec::new(),
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
        let deadline = shell
            .observed_deadline()
            .map_or(deadline, |d| d.min(deadline));
        tokio::select! {
            r = async { match &primary { Some(s) => s.recv_from(&mut buf).await, None => std::future::pending().await } } => {
                if let Ok((n, addr)) = r {
                    let now = Instant::now();
                    shell.arrived_on(addr, 0);
                    shell.handle(now, Peer { transport: Transport::Udp, addr, conn: None }, buf.get(..n).unwrap_or_default());
                    // Drain what is already queued before flushing: fewer wake-ups under load.
                    if let Some(s) = &primary {
                        for _ in 0..32 {
                            match s.try_recv_from(&mut buf) {
                                Ok((n, addr)) => {
                                    shell.arrived_on(addr, 0);
                                    shell.handle(now, Peer { transport: Transport::Udp, addr, conn: None }, buf.get(..n).unwrap_or_default())
                                }
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
    shell.send_observed(true);
    shell.shield_summary(true);
    shell.suppressed_events(true);
    shell.traffic_summary(true);
    let evidence_tx = shell.evidence.take();
    // Nothing reads the inbound queue any more: a thread handing something to the core
    // (accounts reloaded, a restriction, a release) must not wait on it forever.
    drop(inbound_rx);
    // The storage thread writes every binding it was given (the core's queue is closed
    // and drained) before it ends: nothing acknowledged is lost on SIGTERM.
    shell.store.finish();
    if shell.store.shed > 0 {
        warn!(
            shed = shell.store.shed,
            "messages for the storage thread were shed while it was behind"
        );
    }
    drop(shell);
    let _ = store_handle.join();
    if let Some(h) = detect_handle {
        let _ = h.join();
    }
    // Last: the stop entry, after everything the other threads had to record.
    if let (Some(tx), Some(h)) = (evidence_tx, evidence_handle) {
        let _ = tx.send(
            crate::evidence::entry("server-stop", unix_now().saturating_mul(1000), vec![]),
            None,
        );
        drop(tx);
        let _ = h.join();
    }
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
