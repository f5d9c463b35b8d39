//! `palisade serve`: the I/O shell around the sans-IO core. `server.workers` threads each
//! own one shard of the core and one UDP socket (`SO_REUSEPORT` on the first UDP
//! listening address), read with `recvmmsg` and answer with `sendmmsg`: no lock on the
//! per-packet path. Each message is handled by the shard that owns its Call-ID; the
//! worker that received it hands it over otherwise (see `router`). TCP/TLS connections,
//! extra UDP sockets, the admin listener and the signals are tasks on the main thread's
//! runtime; a storage thread writes bindings behind and watches for account changes.
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
mod router;
mod stream;
mod sys;
mod udp;
mod witness;
mod worker;

use self::router::{Replica, Router};
pub(crate) use self::stream::MESSAGE_TIMEOUT_S;
use self::{detect::*, events::*, evidence::*, persist::*, stream::*, udp::*};

/// Messages waiting to be written to one stream connection. A peer that does not read
/// fills it, and is then disconnected (counted as `slow_peers_closed`).
const CONN_QUEUE: usize = 256;
/// Operations waiting for the storage thread; when it falls this far behind, the core
/// waits for it rather than dropping a binding or a security event.
const STORE_QUEUE: usize = 65_536;
/// Remote addresses remembered with the UDP socket they wrote to (several sockets only).
const UDP_FROM_MAX: usize = 65_536;
/// Most worker threads (`server.workers`), whatever the machine says.
const MAX_WORKERS: usize = 64;

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
    /// A message for a stream connection this shard owns (from another shard).
    Send(palisade_core::Transmit),
    /// A location change another shard made.
    Replica(Replica),
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

/// A UDP socket a shard sends from: its own (the first listening address, one socket
/// per worker, sent to in batches) or one shared by all shards (further addresses).
enum UdpOut {
    Own(Arc<std::net::UdpSocket>),
    Shared(Arc<UdpSocket>),
}

struct Shell {
    /// This shard's number (`0..workers`).
    index: usize,
    endpoint: Endpoint,
    /// The UDP sockets with the local address each was bound to (read once at bind time:
    /// no `getsockname` per send).
    udp: Vec<(UdpOut, SocketAddr)>,
    /// Datagrams for this worker's own socket, sent together at the end of a pass.
    pending: Vec<palisade_core::Transmit>,
    /// Datagrams another shard owns that could not be handed to it (its queue was
    /// full), and location changes not copied to a shard for the same reason.
    handoff_dropped: u64,
    /// The main thread's runtime (stream connections are its tasks).
    rt: tokio::runtime::Handle,
    /// With several UDP sockets: which one each remote address last wrote to, so that
    /// answers and requests to it leave from that one (its NAT pinhole, its route).
    udp_from: HashMap<SocketAddr, usize>,
    conns: HashMap<u64, Conn>,
    by_addr: HashMap<(Transport, SocketAddr), u64>,
    next_conn: Arc<AtomicUsize>,
    router: Router,
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
            + self.slow_peers_closed
            + self.handoff_dropped;
        if digest == self.traffic.1
            || (!force && self.traffic.0.elapsed() < Duration::from_secs(60))
        {
            return;
        }
        info!(
            shard = self.index,
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
            handoff_dropped = self.handoff_dropped,
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
            shard = self.index,
            refused = st.shield_refused,
            answers_refused = st.shield_answers_refused,
            dropped = st.shield_dropped,
            protected_refused = st.protected_refused,
            "shield totals"
        );
        self.summary = (Instant::now(), total);
    }

    fn flush(&mut self) {
        // Transmits whose evidence entries are durable now, then the core's own.
        for t in std::mem::take(&mut self.released) {
            self.transmit(t);
        }
        while let Some(t) = self.endpoint.poll_transmit() {
            self.transmit(t);
        }
        self.process_events();
        self.send_pending();
    }

    /// Sends the datagrams gathered for this worker's own socket, in as few system
    /// calls as `sendmmsg` allows.
    fn send_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        if let Some((UdpOut::Own(sock), _)) = self.udp.first() {
            use std::os::fd::AsRawFd as _;
            let (refused, err) = sys::send_batch(sock.as_raw_fd(), &self.pending, |t| {
                (t.to.addr, t.bytes.as_slice())
            });
            if refused > 0 && self.warn_budget.allow() {
                warn!(refused, error = ?err, "UDP sends refused by the kernel");
            }
        }
        self.pending.clear();
    }

    /// Sends one message (UDP socket, stream connection, or a new TCP connection).
    fn transmit(&mut self, t: palisade_core::Transmit) {
        {
            match t.to.transport {
                Transport::Udp => {
                    let known = match self.udp.len() {
                        0 | 1 => None,
                        _ => self.udp_from.get(&t.to.addr).copied(),
                    };
                    let i = known.or_else(|| {
                        self.udp
                            .iter()
                            .position(|(_, a)| a.is_ipv4() == t.to.addr.is_ipv4())
                    });
                    match self.udp.get(i.unwrap_or(0)) {
                        Some((UdpOut::Own(_), _)) => self.pending.push(t),
                        Some((UdpOut::Shared(sock), _)) => {
                            if let Err(e) = sock.try_send_to(&t.bytes, t.to.addr) {
                                if self.warn_budget.allow() {
                                    warn!(to = %t.to.addr, error = %e, "UDP send failed");
                                }
                            }
                        }
                        None => {}
                    }
                }
                Transport::Tcp | Transport::Tls => {
                    let owner = match t.to.conn {
                        Some(c) => self.router.owner_of_conn(c),
                        None => self.router.owner_of_addr(&t.to.addr),
                    };
                    if owner != self.index {
                        // the connection (or the right to open one) is another shard's
                        self.hand_over(owner, Inbound::Send(t));
                        return;
                    }
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
                Event::BindingSaved(b) => {
                    self.router
                        .replicate(self.index, || Replica::Saved(Box::new(b.clone())));
                    BindingOp::Save(to_row(&b, now))
                }
                Event::BindingRemoved { aor, contact } => {
                    self.router.replicate(self.index, || Replica::Removed {
                        aor: aor.clone(),
                        contact: contact.clone(),
                    });
                    BindingOp::Remove { aor, contact }
                }
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
        let conn = self.router.conn_id(&self.next_conn, self.index);
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
        let inbound = self.router.clone();
        let (idle, limits, message_timeout) =
            (self.idle, self.limits.clone(), self.message_timeout);
        self.rt.spawn(async move {
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
            Inbound::Send(t) => self.transmit(t),
            Inbound::Replica(Replica::Saved(b)) => self.endpoint.apply_binding(*b),
            Inbound::Replica(Replica::Removed { aor, contact }) => {
                self.endpoint.apply_binding_removed(&aor, &contact)
            }
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
    let workers = match cfg.server.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(MAX_WORKERS);
    let mut endpoints: Vec<Endpoint> = (0..workers)
        .map(|i| {
            let mut c = core_cfg.clone();
            c.shard = (i, workers);
            Endpoint::new(c, secret, now)
        })
        .collect();
    let cfg_protected = cfg.shield.protected.clone();
    let users = users_of(&store, &domain, &cfg_protected)?;
    let restored = store.load_bindings(unix_now())?;
    info!(users = users.len(), bindings = restored.len(), workers, data_dir = %data_dir.display(), domain, "state loaded");
    let no_users = users.is_empty();
    let restored: Vec<Binding> = restored
        .into_iter()
        .filter_map(|r| from_row(r, now))
        .collect();
    for (i, endpoint) in endpoints.iter_mut().enumerate() {
        endpoint.set_unix_time(now, unix_now());
        endpoint.set_users(users.clone());
        for b in &restored {
            // shard 0 reports their expiry; the others hold copies
            if i == 0 {
                endpoint.restore_binding(b.clone());
            } else {
                endpoint.apply_binding(b.clone());
            }
        }
    }
    drop(users);
    drop(restored);
    let detector = if cfg.detect.enabled {
        let records = crate::datadir::open_records(&data_dir)?;
        let (d, restrictions) = prepare(&cfg.detect, &store, &records)?;
        let n = restrictions.len();
        for r in &restrictions {
            for endpoint in endpoints.iter_mut() {
                endpoint.restrict(r.clone());
            }
        }
        info!(restrictions = n, "campaign detection on");
        Some((d, restrictions))
    } else {
        info!("campaign detection off (detect.enabled = false)");
        None
    };
    drop(store);

    sys::install_wake_handler().context("installing the workers' wake-up signal handler")?;
    let shards = endpoints
        .first()
        .map(|e| e.shards().clone())
        .context("no worker")?;
    let (inbound_tx, shard_ends) = Router::new(shards);
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
    // The first UDP address: one socket per worker. Further UDP addresses: one socket
    // each, read by a task on this thread and shared by the workers for sending.
    let mut worker_udp: Vec<Arc<std::net::UdpSocket>> = Vec::new();
    let mut udp_addrs: Vec<SocketAddr> = Vec::new();
    let mut udp = Vec::new();
    let mut tls = None;
    for l in &listens {
        match l.transport {
            Transport::Udp if worker_udp.is_empty() => {
                // A plain bind first: it fails if anyone holds the address (another
                // server sharing it with SO_REUSEPORT included) and resolves port 0.
                let probe = std::net::UdpSocket::bind(l.addr)
                    .with_context(|| format!("binding udp:{}", l.addr))?;
                let addr = probe.local_addr()?;
                drop(probe);
                for _ in 0..workers {
                    let s = bind_worker_udp(addr, cfg.server.udp_buffer)
                        .with_context(|| format!("binding udp:{addr} (SO_REUSEPORT)"))?;
                    worker_udp.push(Arc::new(s));
                }
                info!(transport = "udp", %addr, sockets = workers, "listening");
                udp_addrs.push(addr);
                steer_on(&inbound_tx, &worker_udp, addr);
            }
            Transport::Udp => {
                let s = bind_udp(l.addr, cfg.server.udp_buffer)
                    .with_context(|| format!("binding udp:{}", l.addr))?;
                let addr = s.local_addr()?;
                info!(transport = "udp", %addr, "listening");
                udp.push(Arc::new(s));
                udp_addrs.push(addr);
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
                        let conn = itx.conn_id(&nc, itx.owner_of_addr(&addr));
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
    // Extra UDP sockets (beyond the first address) are read by tasks on this thread.
    for (k, s) in udp.iter().enumerate() {
        let (s, itx) = (s.clone(), inbound_tx.clone());
        let socket = k + 1;
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
    let mut bound: Vec<String> = udp_addrs.iter().map(|a| format!("udp:{a}")).collect();
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
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let rt = tokio::runtime::Handle::current();
    let mut threads = Vec::new();
    for (index, (endpoint, (rx, waker))) in endpoints.into_iter().zip(shard_ends).enumerate() {
        let own = worker_udp.get(index).cloned();
        let mut socks: Vec<(UdpOut, SocketAddr)> = Vec::new();
        if let (Some(s), Some(&a)) = (&own, udp_addrs.first()) {
            socks.push((UdpOut::Own(s.clone()), a));
        }
        for (s, &a) in udp
            .iter()
            .zip(udp_addrs.iter().skip(usize::from(own.is_some())))
        {
            socks.push((UdpOut::Shared(s.clone()), a));
        }
        let shell = Shell {
            index,
            endpoint,
            udp: socks,
            pending: Vec::with_capacity(sys::BATCH),
            handoff_dropped: 0,
            rt: rt.clone(),
            udp_from: HashMap::new(),
            conns: HashMap::new(),
            by_addr: HashMap::new(),
            next_conn: next_conn.clone(),
            router: inbound_tx.clone(),
            store: handoff::StoreHandoff::new(store_tx.clone()),
            idle,
            message_timeout,
            limits: limits.clone(),
            summary: (Instant::now(), 0),
            traffic: (Instant::now(), 0),
            slow_peers_closed: 0,
            warn_budget: LineBudget::new(),
            event_budget: EventBudget {
                sources: HashMap::new(),
                reported: Instant::now(),
            },
            detect_tx: detect_tx.clone(),
            detect_dropped: 0,
            observed: Vec::new(),
            observed_since: None,
            notify_from: cfg.notify.from_user.clone(),
            evidence: evidence_tx.clone(),
            entries: Vec::new(),
            refused_message: None,
            webhooks: webhook_tx.clone(),
            released: Vec::new(),
        };
        let w = worker::Worker {
            shell,
            rx,
            waker,
            socket: own,
            stop: stop.clone(),
        };
        threads.push(
            std::thread::Builder::new()
                .name(format!("palisade-w{index}"))
                .spawn(move || worker::run(w))?,
        );
    }
    drop((store_tx, detect_tx, evidence_tx, webhook_tx, worker_udp));
    // The workers hold the only receivers: this thread keeps a sender for the tasks
    // it runs (stream connections, extra UDP sockets).
    let shutdown = tokio::signal::ctrl_c();
    tokio::pin!(shutdown);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut watch = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = &mut shutdown => { info!("shutting down (SIGINT)"); break; }
            _ = term.recv() => { info!("shutting down (SIGTERM)"); break; }
            _ = watch.tick() => {
                if threads.iter().any(|t| t.is_finished()) {
                    error!("a worker thread ended; shutting down");
                    break;
                }
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    inbound_tx.wake_all();
    let mut shells = Vec::new();
    for t in threads {
        match t.join() {
            Ok(s) => shells.push(s),
            Err(_) => error!("a worker thread panicked outside the core's containment"),
        }
    }
    let mut evidence_tx = None;
    for shell in shells.iter_mut() {
        shell.send_observed(true);
        shell.shield_summary(true);
        shell.suppressed_events(true);
        shell.traffic_summary(true);
        if let Some(e) = shell.evidence.take() {
            evidence_tx = Some(e);
        }
    }
    // Nothing reads the shards' queues any more: a thread handing something to a core
    // (accounts reloaded, a restriction, a release) gets an error instead of waiting.
    drop(inbound_tx);
    // The storage thread writes every binding it was given (the workers' queues are
    // closed and drained) before it ends: nothing acknowledged is lost on SIGTERM.
    for shell in shells.iter_mut() {
        shell.store.finish();
        if shell.store.shed > 0 {
            warn!(
                shard = shell.index,
                shed = shell.store.shed,
                "messages for the storage thread were shed while it was behind"
            );
        }
    }
    drop(shells);
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

/// Turns on the steering of internal datagrams among the workers' sockets (see
/// `router::Steer`); without it (a kernel that refuses the program) hand-overs go
/// through the queues and wake-ups are signals.
fn steer_on(router: &Router, socks: &[Arc<std::net::UdpSocket>], local: SocketAddr) {
    use std::os::fd::AsRawFd as _;
    let (Some(first), true) = (socks.first(), socks.len() > 1) else {
        return;
    };
    if let Err(e) = sys::attach_steering(first.as_raw_fd()) {
        warn!(error = %e, "the kernel refused the workers' steering program; hand-overs go through queues");
        return;
    }
    let to = match local.ip() {
        std::net::IpAddr::V4(a) if a.is_unspecified() => {
            SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, local.port()))
        }
        std::net::IpAddr::V6(a) if a.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, local.port()))
        }
        _ => local,
    };
    let mut token = [0u8; 8];
    if getrandom::getrandom(&mut token).is_err() {
        return;
    }
    router.set_steer(router::Steer {
        to,
        local,
        token,
        socket: first.clone(),
    });
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
