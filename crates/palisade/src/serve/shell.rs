//! A worker's shard: one sans-IO core ([`Endpoint`]) and what the shell keeps around it:
//! its UDP sockets and stream connections, the hand-over of messages another shard owns,
//! and the queues to the storage, detection, evidence and webhook threads. A message is
//! handled here (a panic in the core is contained), what the core sends leaves through
//! `transmit`, and what it reports goes out through the side exits in `observe`.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::AsRawFd as _;
use std::sync::atomic::AtomicUsize;
use std::sync::mpsc::{Sender, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use palisade_core::{Endpoint, Peer, Transmit, Transport};
use palisade_detect::Observation;
use palisade_sip::Limits;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, warn};

use super::budget::{EventBudget, LineBudget};
use super::evidence::EvidenceTx;
use super::handoff::StoreHandoff;
use super::router::Router;
use super::stream::{run_conn, Conn, ConnTask, CONN_QUEUE};
use super::sys;
use super::telemetry::Telemetry;
use crate::hep::HepSender;
use crate::messages::{DetectMsg, Hook, Inbound, Replica};

/// A message the worker that received it parsed before it picked the shard to run it.
pub(super) type Parsed<'a> = Result<palisade_sip::Message<'a>, palisade_sip::ParseError>;

/// Remote addresses remembered with the UDP socket they wrote to (several sockets only).
const UDP_FROM_MAX: usize = 65_536;

/// A UDP socket a shard sends from: its own (the first listening address, one socket
/// per worker, sent to in batches) or one shared by all shards (further addresses).
pub(super) enum UdpOut {
    Own(Arc<std::net::UdpSocket>),
    Shared(Arc<UdpSocket>),
}

/// One shard of the server: its core and everything the shell keeps around it.
pub(super) struct Shell {
    /// This shard's number (`0..workers`).
    pub(super) index: usize,
    pub(super) endpoint: Endpoint,
    /// The UDP sockets with the local address each was bound to (read once at bind time:
    /// no `getsockname` per send).
    pub(super) udp: Vec<(UdpOut, SocketAddr)>,
    /// Datagrams for this worker's own socket, sent together at the end of a pass.
    pub(super) pending: Vec<Transmit>,
    /// Datagrams another shard owns that could not be handed to it (its queue was
    /// full), and location changes not copied to a shard for the same reason.
    pub(super) handoff_dropped: u64,
    /// The main thread's runtime (stream connections are its tasks).
    pub(super) rt: tokio::runtime::Handle,
    /// With several UDP sockets: which one each remote address last wrote to, so that
    /// answers and requests to it leave from that one (its NAT pinhole, its route).
    pub(super) udp_from: HashMap<SocketAddr, usize>,
    pub(super) conns: HashMap<u64, Conn>,
    pub(super) by_addr: HashMap<(Transport, SocketAddr), u64>,
    pub(super) next_conn: Arc<AtomicUsize>,
    pub(super) router: Router,
    /// To the storage thread, never waiting (see `handoff`).
    pub(super) store: StoreHandoff,
    pub(super) idle: Duration,
    pub(super) message_timeout: Duration,
    pub(super) limits: Limits,
    /// When the shield's counters were last written to the log, and their total then.
    pub(super) summary: (Instant, u64),
    /// When the traffic counters were last written to the log, and a digest of them.
    pub(super) traffic: (Instant, u64),
    /// Stream connections closed because their peer did not read what we sent.
    pub(super) slow_peers_closed: u64,
    /// Warning lines that one hostile sender can cause (a refused offer each): at most
    /// `WARN_LINES` per `WARN_WINDOW`; the rest are counted in the totals lines.
    pub(super) warn_budget: LineBudget,
    /// Security events recorded per source address.
    pub(super) event_budget: EventBudget,
    /// The detection thread's queue (campaign detection on).
    pub(super) detect_tx: Option<SyncSender<DetectMsg>>,
    /// Observations dropped because the detection thread's queue was full.
    pub(super) detect_dropped: u64,
    /// Observations of this pass of the loop, sent as one batch at its end.
    pub(super) observed: Vec<Observation>,
    /// When the oldest observation held was taken.
    pub(super) observed_since: Option<Instant>,
    /// The user part of notifications' From.
    pub(super) notify_from: String,
    /// The evidence log's queue (`evidence.enabled`).
    pub(super) evidence: Option<EvidenceTx>,
    /// Evidence entries of the events being taken.
    pub(super) entries: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// The message whose handling refused something, while its events are taken.
    pub(super) refused_message: Option<Vec<u8>>,
    /// The webhook thread's queue (with campaign detection).
    pub(super) webhooks: Option<Sender<Hook>>,
    /// Transmits released by the evidence thread (their entries are durable).
    pub(super) released: Vec<Transmit>,
    /// Where this shard's counters are published for the admin listener.
    pub(super) telemetry: Arc<Telemetry>,
    /// When they were last published (and, for shard 0, when the bindings were counted).
    pub(super) published: (Instant, Instant),
    /// HEP capture of every message in and out (`[hep] collector`).
    pub(super) hep: Option<Arc<HepSender>>,
}

impl Shell {
    /// Hands one message to the core. A panic while it is handled is contained: the
    /// message is dropped (answered 500 when it is a request), the core records a
    /// security event with its SHA-256, and the server goes on serving everyone else.
    /// This is defence in depth; the core's crates deny the constructs that panic.
    fn handle(&mut self, now: Instant, peer: Peer, bytes: &[u8], parsed: Option<Parsed<'_>>) {
        if let Some(h) = &self.hep {
            h.capture(
                peer.addr,
                self.local_addr(peer.addr),
                peer.transport.into(),
                std::time::SystemTime::now(),
                bytes,
            );
        }
        let refusals = |st: &palisade_core::Stats| {
            st.shield_refused + st.shield_answers_refused + st.protected_refused + st.panics
        };
        let before = refusals(&self.endpoint.stats);
        self.handle_inner(now, peer, bytes, parsed);
        if self.evidence.is_some() && refusals(&self.endpoint.stats) != before {
            self.refused_message = Some(bytes.to_vec());
            self.hold_until_durable();
            self.refused_message = None;
        }
    }

    fn handle_inner(
        &mut self,
        now: Instant,
        peer: Peer,
        bytes: &[u8],
        mut parsed: Option<Parsed<'_>>,
    ) {
        let ep = &mut self.endpoint;
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            #[cfg(debug_assertions)]
            test_panic_trigger(bytes);
            match parsed.take() {
                Some(p) => ep.handle_parsed(now, peer, bytes, p),
                None => ep.handle_datagram(now, peer, bytes),
            }
        }));
        if ok.is_err() {
            let recorded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                ep.record_panic(now, peer, bytes)
            }));
            let sha256 = hex::encode(palisade_shield::sha256(bytes));
            if self.warn_budget.allow() {
                error!(target: "palisade::security", peer = %peer.addr, sha256, recorded = recorded.is_ok(), panics = self.endpoint.stats.panics, "a message's handling panicked; contained, message dropped");
            }
        }
    }

    pub(super) fn timeout(&mut self, now: Instant) {
        let ep = &mut self.endpoint;
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ep.handle_timeout(now)))
            .is_err()
        {
            ep.stats.panics += 1;
            error!(target: "palisade::security", panics = ep.stats.panics, "a timer's handling panicked; contained");
        }
    }

    pub(super) fn flush(&mut self) {
        self.gather();
        self.send_pending();
    }

    /// What [`Shell::flush`] does but the send: the datagrams for the worker's own
    /// socket stay gathered (see [`Shell::give_pending`]).
    pub(super) fn gather(&mut self) {
        // Transmits whose evidence entries are durable now, then the core's own.
        // (an idle pass finds nothing anywhere: each look is a length test)
        if !self.released.is_empty() {
            for t in std::mem::take(&mut self.released) {
                self.transmit(t);
            }
        }
        while let Some(t) = self.endpoint.poll_transmit() {
            self.transmit(t);
        }
        self.process_events();
    }

    /// Hands the datagrams gathered for this shard's own socket to another shard's
    /// worker, which sends them with its own batch: the workers' sockets share one
    /// address (`SO_REUSEPORT`), so a datagram leaves from the same address and port
    /// whichever of them sends it.
    pub(super) fn give_pending(&mut self, to: &mut Shell) {
        to.pending.append(&mut self.pending);
    }

    /// Sends the datagrams gathered for this worker's own socket, in as few system
    /// calls as `sendmmsg` allows.
    fn send_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        if let Some((UdpOut::Own(sock), _)) = self.udp.first() {
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
    /// This server's address toward `peer` as a capture names it: the first listening
    /// UDP address of its family (stream connections' own local addresses are not
    /// kept).
    fn local_addr(&self, peer: SocketAddr) -> SocketAddr {
        self.udp
            .iter()
            .map(|(_, a)| *a)
            .find(|a| a.is_ipv4() == peer.is_ipv4())
            .or_else(|| self.udp.first().map(|(_, a)| *a))
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    fn capture_out(&self, t: &Transmit) {
        if let Some(h) = &self.hep {
            h.capture(
                self.local_addr(t.to.addr),
                t.to.addr,
                t.to.transport.into(),
                std::time::SystemTime::now(),
                &t.bytes,
            );
        }
    }

    fn transmit(&mut self, t: Transmit) {
        {
            match t.to.transport {
                Transport::Udp => {
                    self.capture_out(&t);
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
                Transport::Tcp | Transport::Tls | Transport::Ws | Transport::Wss => {
                    let owner = match t.to.conn {
                        Some(c) => self.router.owner_of_conn(c),
                        None => self.router.owner_of_addr(&t.to.addr),
                    };
                    if owner != self.index {
                        // the connection (or the right to open one) is another shard's
                        self.hand_over(owner, Inbound::Send(t));
                        return;
                    }
                    self.capture_out(&t);
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
                        None if t.to.transport == Transport::Tls => {
                            warn!(to = %t.to.addr, "no TLS connection to this peer; outbound TLS connections are not opened")
                        }
                        None => {
                            // RFC 7118: only the client opens a WebSocket connection
                            if self.warn_budget.allow() {
                                warn!(to = %t.to.addr, transport = t.to.transport.param(), "no WebSocket connection to this peer (closed); message dropped");
                            }
                        }
                    }
                }
            }
        }
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

    pub(super) fn on_inbound(&mut self, m: Inbound) {
        match m {
            Inbound::Message { peer, bytes } => self.handle(Instant::now(), peer, &bytes, None),
            Inbound::Datagram {
                peer,
                bytes,
                socket,
            } => {
                self.arrived_on(peer.addr, socket);
                self.handle(Instant::now(), peer, &bytes, None)
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
            Inbound::Replica(Replica::Saved(b)) => match *b {
                (b, Some(uri)) => self.endpoint.apply_binding_parsed(b, uri),
                (b, None) => self.endpoint.apply_binding(b),
            },
            Inbound::Replica(Replica::Removed { aor, contact }) => {
                self.endpoint.apply_binding_removed(&aor, &contact)
            }
            Inbound::Users(u) => self.endpoint.set_users(u),
            Inbound::Restrict(r) => self.endpoint.restrict(r),
            Inbound::Lift(s) => self.endpoint.lift(&s),
            Inbound::Policy(p) => {
                let (shield, limits) = *p;
                self.limits = limits.clone();
                self.endpoint.set_policy(shield, limits);
            }
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

    /// A datagram this worker's socket (`socket`: the listening address's index)
    /// received: handled here if this shard owns its Call-ID, handed to the owner's
    /// queue otherwise; a wake-up datagram (see [`super::router::Steer`]) is only that.
    /// Whether a datagram on the worker's own socket is one of our wake-ups (nothing to
    /// handle: it only ended the worker's receive).
    pub(super) fn is_wake(&self, from: SocketAddr, bytes: &[u8]) -> bool {
        bytes.first() == Some(&0)
            && self
                .router
                .steer()
                .is_some_and(|st| st.is_wake(from, bytes))
    }

    /// Whether this shard handles a datagram its worker's own socket received without
    /// looking at its Call-ID: with one shard, a keep-alive, and a REGISTER, which the
    /// receiving worker handles itself: its transaction lives and dies in that one
    /// exchange, and the kernel sends every datagram of one source to the same socket,
    /// so its retransmissions (and the phone's next REGISTER) come here too. The binding
    /// it saves goes to the other shards as a replica, as from any shard.
    pub(super) fn keeps_datagram(&self, bytes: &[u8]) -> bool {
        self.router.shards().count() == 1
            || bytes.starts_with(b"REGISTER ")
            || palisade_core::is_keepalive(bytes)
    }

    /// A datagram parsed once, here, for whichever shard will run it (all shards parse
    /// within the same limits); `None` if the parser panicked (contained: the datagram
    /// is then run on this shard, whose core parses it again and records the panic).
    pub(super) fn parse<'a>(&self, bytes: &'a [u8]) -> Option<Parsed<'a>> {
        let ep = &self.endpoint;
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ep.parse(bytes))).ok()
    }

    /// The shard that handles a parsed datagram: its Call-ID's (as
    /// [`palisade_core::Shards::of_message`] finds it in the raw bytes of the messages
    /// other threads route); one that did not parse is answered (or dropped) here.
    pub(super) fn owner_of_parsed(&self, parsed: &Parsed<'_>) -> usize {
        match parsed {
            Ok(m) => m.call_id().map_or(self.index, |c| {
                self.router.shards().of_call_id(c.as_bytes())
            }),
            Err(_) => self.index,
        }
    }

    /// Handles a datagram this shard owns (see [`Shell::keeps_datagram`] and
    /// [`Shell::owner_of_parsed`]), parsed already or not.
    pub(super) fn take_here(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
        socket: usize,
        parsed: Option<Parsed<'_>>,
    ) {
        self.arrived_on(from, socket);
        let peer = Peer {
            transport: Transport::Udp,
            addr: from,
            conn: None,
        };
        self.handle(now, peer, bytes, parsed);
    }

    /// Puts a datagram on its owner's queue. One channel from this worker to the owner,
    /// so that what it hands over keeps its order (a 180 before the 200 that follows
    /// it); a sleeping owner is woken by a datagram in this pass's batch.
    pub(super) fn hand_over_datagram(
        &mut self,
        owner: usize,
        from: SocketAddr,
        bytes: &[u8],
        socket: usize,
    ) {
        let m = Inbound::Datagram {
            peer: Peer {
                transport: Transport::Udp,
                addr: from,
                conn: None,
            },
            bytes: bytes.to_vec(),
            socket,
        };
        self.hand_over(owner, m);
    }

    /// Puts `m` on shard `owner`'s queue, waking it (in this pass's batch) if it sleeps.
    fn hand_over(&mut self, owner: usize, m: Inbound) {
        match self.router.push_to(owner, m) {
            Ok(Some(wake)) => self.push_internal(wake),
            Ok(None) => {}
            Err(_) => {
                self.handoff_dropped += 1;
                if self.handoff_dropped.is_power_of_two() && self.warn_budget.allow() {
                    warn!(
                        shard = owner,
                        dropped = self.handoff_dropped,
                        "another worker is behind; messages for it dropped"
                    );
                }
            }
        }
    }

    /// An internal datagram for the steering address, sent with this pass's batch.
    fn push_internal(&mut self, bytes: Vec<u8>) {
        let Some(st) = self.router.steer() else {
            return;
        };
        let to = Peer {
            transport: Transport::Udp,
            addr: st.to,
            conn: None,
        };
        self.pending.push(Transmit { to, bytes });
    }
}

/// Debug builds only: panics while handling a message that contains the text of the
/// environment variable `PALISADE_TEST_PANIC` (when set), so that the integration tests
/// can prove on the real binary that a panic is contained. Release builds have no such
/// trigger.
#[cfg(debug_assertions)]
#[allow(clippy::panic)] // its one job
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
