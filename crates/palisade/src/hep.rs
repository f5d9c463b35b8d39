//! HEP v3 capture: every SIP message the server receives or sends, copied to a Homer
//! collector (`[hep] collector = "udp:HOST:PORT"`).
//!
//! HEP ("Homer Encapsulation Protocol", also EEP) version 3 wraps one captured message in
//! a datagram: the ASCII magic `HEP3`, the total length, then type-length-value chunks
//! (vendor, type, length, each a big-endian u16; the length counts the chunk's own six
//! header bytes). Homer, heplify-server, sngrep and the Kamailio/OpenSIPS capture modules
//! read it, which is why Palisade speaks it rather than a format of its own.
//!
//! Two halves: [`encode`] is a pure function (no I/O, no clock, no allocation when the
//! output vector has room), and [`HepSender`] is the shell around it. The hot path only
//! copies the message into a bounded queue and never waits: when the queue is full the
//! copy is dropped and counted, because losing a capture is better than slowing a call.
//! One background thread encodes and sends over one connected UDP socket.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use serde::Deserialize;
use tracing::{info, warn};

/// Node id (HEP "capture agent id") sent unless `hep.node_id` says otherwise; 2001 is
/// the value Homer's own examples and agents use, so a default Homer shows it as usual.
pub(crate) const DEFAULT_NODE_ID: u32 = 2001;

/// Messages waiting for the sender thread (`hep.queue`). At a few hundred bytes to a few
/// KiB each, 4096 messages bound the queue to a few MiB while absorbing a burst of
/// several milliseconds at full load should the collector's socket stall.
pub(crate) const DEFAULT_QUEUE: usize = 4096;

/// The largest HEP packet: the total length field is a u16 that counts the whole packet.
pub(crate) const MAX_PACKET: usize = u16::MAX as usize;

/// How long dropping a [`HepSender`] waits for its thread to send what is queued.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// A send that cannot complete within this is counted as an error, so a stalled socket
/// never holds the thread (and the shutdown) for long.
const SEND_TIMEOUT: Duration = Duration::from_millis(200);

/// Failed sends are logged at most this often (they are counted every time).
const LOG_EVERY: Duration = Duration::from_secs(60);

/// The `[hep]` section of the configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct HepConfig {
    /// `udp:HOST:PORT` of the Homer collector (HOST: an IP address, `[v6]`, or a name
    /// resolved once at start). Unset: no capture.
    pub collector: Option<String>,
    /// The capture agent id Homer shows as the node (default 2001).
    pub node_id: u32,
    /// The collector's password, sent in every packet (HEP's auth key chunk) when set.
    pub password: Option<String>,
    /// Messages that may wait for the sender thread; more are dropped and counted
    /// (default 4096).
    pub queue: usize,
}

impl Default for HepConfig {
    fn default() -> Self {
        HepConfig {
            collector: None,
            node_id: DEFAULT_NODE_ID,
            password: None,
            queue: DEFAULT_QUEUE,
        }
    }
}

/// The transport a captured message travelled on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HepTransport {
    Udp,
    Tcp,
    Tls,
    /// SIP over WebSocket (the listeners come with issue 25).
    #[allow(dead_code)]
    Ws,
    /// SIP over secure WebSocket.
    #[allow(dead_code)]
    Wss,
}

impl HepTransport {
    /// HEP's "IP protocol id" chunk holds the IP protocol number and the spec defines no
    /// value for TLS or WebSocket: those travel over TCP, so they are 6 (as in the
    /// Kamailio and OpenSIPS capture modules), and the payload is the SIP text after
    /// decryption and WebSocket framing.
    pub(crate) fn ip_protocol(self) -> u8 {
        match self {
            HepTransport::Udp => IPPROTO_UDP,
            HepTransport::Tcp | HepTransport::Tls | HepTransport::Ws | HepTransport::Wss => {
                IPPROTO_TCP
            }
        }
    }
}

impl From<palisade_core::Transport> for HepTransport {
    fn from(t: palisade_core::Transport) -> Self {
        match t {
            palisade_core::Transport::Udp => HepTransport::Udp,
            palisade_core::Transport::Tcp => HepTransport::Tcp,
            palisade_core::Transport::Tls => HepTransport::Tls,
            palisade_core::Transport::Ws => HepTransport::Ws,
            palisade_core::Transport::Wss => HepTransport::Wss,
        }
    }
}

const IPPROTO_UDP: u8 = 17;
const IPPROTO_TCP: u8 = 6;
/// Address family numbers as HEP writers put them (the Linux `AF_INET`/`AF_INET6`).
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
/// HEP's protocol type for SIP.
const PROTO_SIP: u8 = 1;

/// Generic chunk types (vendor 0) of the HEP3 specification.
mod chunk {
    pub(super) const IP_FAMILY: u16 = 0x0001;
    pub(super) const IP_PROTO: u16 = 0x0002;
    pub(super) const IPV4_SRC: u16 = 0x0003;
    pub(super) const IPV4_DST: u16 = 0x0004;
    pub(super) const IPV6_SRC: u16 = 0x0005;
    pub(super) const IPV6_DST: u16 = 0x0006;
    pub(super) const SRC_PORT: u16 = 0x0007;
    pub(super) const DST_PORT: u16 = 0x0008;
    pub(super) const TIME_SEC: u16 = 0x0009;
    pub(super) const TIME_USEC: u16 = 0x000a;
    pub(super) const PROTO_TYPE: u16 = 0x000b;
    pub(super) const CAPTURE_ID: u16 = 0x000c;
    pub(super) const AUTH_KEY: u16 = 0x000e;
    pub(super) const PAYLOAD: u16 = 0x000f;
    pub(super) const CORRELATION_ID: u16 = 0x0011;
}

/// Bytes of the packet header (`HEP3` and the total length) and of each chunk header.
const HEADER: usize = 6;
const CHUNK: usize = 6;

/// One captured message and what HEP says about it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HepPacket<'a> {
    /// Who sent the message: the peer for a message received, our socket for one sent.
    pub src: SocketAddr,
    /// Who it was sent to.
    pub dst: SocketAddr,
    pub transport: HepTransport,
    /// When it was received or sent (wall clock; sent as seconds and microseconds).
    pub time: SystemTime,
    /// The capture agent id (`hep.node_id`).
    pub node_id: u32,
    /// The collector's password (`hep.password`).
    pub password: Option<&'a [u8]>,
    /// Homer's correlation id; for SIP, the Call-ID.
    pub correlation_id: Option<&'a [u8]>,
    /// The SIP message as on the wire.
    pub payload: &'a [u8],
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EncodeError {
    /// The packet would exceed [`MAX_PACKET`] bytes, which the u16 length fields cannot
    /// express.
    TooLong { len: usize },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::TooLong { len } => write!(
                f,
                "HEP packet of {len} bytes exceeds the format's limit of {MAX_PACKET} bytes (16-bit length fields)"
            ),
        }
    }
}

impl std::error::Error for EncodeError {}

/// The two addresses in one family: both IPv4 when both are (IPv4-mapped IPv6 addresses
/// count as IPv4), otherwise both IPv6 (an IPv4 one written as IPv4-mapped).
enum Addrs {
    V4([u8; 4], [u8; 4]),
    V6([u8; 16], [u8; 16]),
}

fn addrs(src: IpAddr, dst: IpAddr) -> Addrs {
    match (src.to_canonical(), dst.to_canonical()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Addrs::V4(s.octets(), d.octets()),
        (s, d) => Addrs::V6(v6(s).octets(), v6(d).octets()),
    }
}

fn v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

/// Encodes `p` as one HEP3 packet into `out` (cleared first) and returns its length.
///
/// Chunks, in order: IP family, IP protocol, source and destination address, ports,
/// timestamp seconds and microseconds, protocol type (SIP), capture agent id, then the
/// auth key and correlation id when given, and the payload last. Everything is checked
/// before anything is written: on error `out` is left as it was. Nothing is allocated
/// when `out` already has the capacity.
pub(crate) fn encode(p: &HepPacket<'_>, out: &mut Vec<u8>) -> Result<usize, EncodeError> {
    let addrs = addrs(p.src.ip(), p.dst.ip());
    let addr_len = match addrs {
        Addrs::V4(..) => 4,
        Addrs::V6(..) => 16,
    };
    let optional = |v: Option<&[u8]>| v.map_or(0, |v| CHUNK.saturating_add(v.len()));
    // Header; family, protocol and protocol type (u8); two addresses; two ports (u16);
    // seconds, microseconds and capture id (u32); the optional chunks; the payload.
    let len = [
        HEADER,
        3 * (CHUNK + 1),
        2 * (CHUNK + addr_len),
        2 * (CHUNK + 2),
        3 * (CHUNK + 4),
        optional(p.password),
        optional(p.correlation_id),
        CHUNK,
        p.payload.len(),
    ]
    .iter()
    .fold(0usize, |a, b| a.saturating_add(*b));
    let total = u16::try_from(len).map_err(|_| EncodeError::TooLong { len })?;

    let since = p.time.duration_since(UNIX_EPOCH).unwrap_or_default();
    // HEP's seconds are a u32 (good until 2106).
    let secs = u32::try_from(since.as_secs()).unwrap_or(u32::MAX);

    out.clear();
    out.reserve(len);
    out.extend_from_slice(b"HEP3");
    out.extend_from_slice(&total.to_be_bytes());
    match addrs {
        Addrs::V4(s, d) => {
            put(out, chunk::IP_FAMILY, &[AF_INET]);
            put(out, chunk::IP_PROTO, &[p.transport.ip_protocol()]);
            put(out, chunk::IPV4_SRC, &s);
            put(out, chunk::IPV4_DST, &d);
        }
        Addrs::V6(s, d) => {
            put(out, chunk::IP_FAMILY, &[AF_INET6]);
            put(out, chunk::IP_PROTO, &[p.transport.ip_protocol()]);
            put(out, chunk::IPV6_SRC, &s);
            put(out, chunk::IPV6_DST, &d);
        }
    }
    put(out, chunk::SRC_PORT, &p.src.port().to_be_bytes());
    put(out, chunk::DST_PORT, &p.dst.port().to_be_bytes());
    put(out, chunk::TIME_SEC, &secs.to_be_bytes());
    put(out, chunk::TIME_USEC, &since.subsec_micros().to_be_bytes());
    put(out, chunk::PROTO_TYPE, &[PROTO_SIP]);
    put(out, chunk::CAPTURE_ID, &p.node_id.to_be_bytes());
    if let Some(key) = p.password {
        put(out, chunk::AUTH_KEY, key);
    }
    if let Some(id) = p.correlation_id {
        put(out, chunk::CORRELATION_ID, id);
    }
    put(out, chunk::PAYLOAD, p.payload);
    Ok(len)
}

/// One generic (vendor 0) chunk. The caller has checked that the whole packet, and so
/// this chunk, fits the u16 lengths.
fn put(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let len = u16::try_from(CHUNK.saturating_add(data.len())).unwrap_or(u16::MAX);
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(data);
}

/// The Call-ID of a SIP message (`Call-ID` or its compact form `i`), for Homer's
/// correlation id. Reads the header lines only; `None` when there is none.
pub(crate) fn call_id(msg: &[u8]) -> Option<&[u8]> {
    let mut lines = msg.split(|&b| b == b'\n');
    lines.next()?; // the start line
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return None; // end of the header
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        let name = name.trim_ascii();
        if name.eq_ignore_ascii_case(b"call-id") || name.eq_ignore_ascii_case(b"i") {
            let value = value.get(1..)?.trim_ascii();
            return (!value.is_empty()).then_some(value);
        }
    }
    None
}

/// Parses `hep.collector`: `udp:HOST:PORT`, HOST an IPv4 address, `[IPv6]` or a name.
/// A name is resolved here, once; the first address it resolves to is used.
pub(crate) fn parse_collector(s: &str) -> anyhow::Result<SocketAddr> {
    let Some(hostport) = s.strip_prefix("udp:") else {
        bail!("hep.collector {s:?}: expected udp:HOST:PORT (HEP over UDP is the only transport supported)");
    };
    if let Ok(a) = hostport.parse::<SocketAddr>() {
        return Ok(a);
    }
    let (host, port) = hostport
        .rsplit_once(':')
        .with_context(|| format!("hep.collector {s:?}: expected udp:HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .with_context(|| format!("hep.collector {s:?}: {port:?} is not a port number"))?;
    if host.is_empty() || host.contains([':', '[', ']']) {
        bail!("hep.collector {s:?}: {host:?} is not a host (use [v6]:port for IPv6)");
    }
    let mut found = (host, port)
        .to_socket_addrs()
        .with_context(|| format!("hep.collector {s:?}: cannot resolve {host:?}"))?;
    found
        .next()
        .with_context(|| format!("hep.collector {s:?}: {host:?} has no address"))
}

/// One message waiting for the sender thread.
struct Captured {
    src: SocketAddr,
    dst: SocketAddr,
    transport: HepTransport,
    time: SystemTime,
    payload: Box<[u8]>,
}

/// What the sender counts; shared by the hot path and the thread.
#[derive(Default)]
struct Counters {
    /// Messages waiting in the queue.
    queued: AtomicUsize,
    dropped: AtomicU64,
    sent: AtomicU64,
    errors: AtomicU64,
    /// Tells a thread that outlived [`STOP_WAIT`] to stop sending.
    stop: AtomicBool,
}

/// Copies SIP messages to a HEP collector from one background thread (see the module
/// documentation). `Send + Sync`: the workers share one (`Arc<HepSender>`). Dropping it
/// sends what is queued (for up to [`STOP_WAIT`]) and stops the thread.
pub(crate) struct HepSender {
    tx: Option<SyncSender<Captured>>,
    capacity: usize,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
    collector: SocketAddr,
}

impl HepSender {
    /// The sender `cfg` asks for, or `None` when no collector is configured.
    pub(crate) fn from_config(cfg: &HepConfig) -> anyhow::Result<Option<HepSender>> {
        let Some(collector) = &cfg.collector else {
            return Ok(None);
        };
        if cfg.queue == 0 {
            bail!("hep.queue must be at least 1");
        }
        HepSender::start(collector, cfg.node_id, cfg.password.as_deref(), cfg.queue).map(Some)
    }

    /// Resolves `collector` (`udp:HOST:PORT`), connects a UDP socket to it and starts the
    /// thread; at most `capacity` messages wait for it.
    pub(crate) fn start(
        collector: &str,
        node_id: u32,
        password: Option<&str>,
        capacity: usize,
    ) -> anyhow::Result<HepSender> {
        HepSender::start_gated(collector, node_id, password, capacity, None)
    }

    /// [`HepSender::start`] whose thread, when `gate` is given, waits on it before taking
    /// anything from the queue (tests fill the queue this way).
    fn start_gated(
        collector: &str,
        node_id: u32,
        password: Option<&str>,
        capacity: usize,
        gate: Option<Receiver<()>>,
    ) -> anyhow::Result<HepSender> {
        let addr = parse_collector(collector)?;
        let local: SocketAddr = match addr {
            SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = UdpSocket::bind(local)
            .with_context(|| format!("hep.collector {collector:?}: binding a UDP socket"))?;
        socket
            .connect(addr)
            .with_context(|| format!("hep.collector {collector:?}: connecting to {addr}"))?;
        socket
            .set_write_timeout(Some(SEND_TIMEOUT))
            .context("hep: setting the send timeout")?;
        let counters = Arc::new(Counters::default());
        let (tx, rx) = mpsc::sync_channel(capacity);
        let worker = Worker {
            socket,
            collector: addr,
            node_id,
            password: password.map(|p| p.as_bytes().to_vec()),
            counters: Arc::clone(&counters),
            buf: Vec::with_capacity(MAX_PACKET),
            last_log: None,
        };
        let thread = std::thread::Builder::new()
            .name("palisade-hep".into())
            .spawn(move || {
                if let Some(gate) = gate {
                    let _ = gate.recv();
                }
                worker.run(rx);
            })
            .context("hep: starting the sender thread")?;
        info!(collector = %addr, node_id, "HEP capture on");
        Ok(HepSender {
            tx: Some(tx),
            capacity,
            counters,
            thread: Some(thread),
            collector: addr,
        })
    }

    /// Queues a copy of one SIP message for the collector: `src` sent it to `dst` over
    /// `transport` at `time` (the peer and our socket, in the direction it travelled).
    /// Never blocks: when the queue is full the message is dropped and counted in
    /// [`HepSender::dropped`], before anything is copied.
    pub(crate) fn capture(
        &self,
        src: SocketAddr,
        dst: SocketAddr,
        transport: HepTransport,
        time: SystemTime,
        payload: &[u8],
    ) {
        let Some(tx) = &self.tx else { return };
        let c = &self.counters;
        if c.queued.fetch_add(1, Ordering::Relaxed) >= self.capacity {
            c.queued.fetch_sub(1, Ordering::Relaxed);
            c.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let msg = Captured {
            src,
            dst,
            transport,
            time,
            payload: payload.into(),
        };
        match tx.try_send(msg) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                c.queued.fetch_sub(1, Ordering::Relaxed);
                c.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Messages dropped because the queue was full (or the thread had stopped).
    pub(crate) fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Packets handed to the socket.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn sent(&self) -> u64 {
        self.counters.sent.load(Ordering::Relaxed)
    }

    /// Messages lost after they were queued: failed sends, and messages too long for HEP.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn errors(&self) -> u64 {
        self.counters.errors.load(Ordering::Relaxed)
    }

    /// The collector's address as resolved at start.
    pub(crate) fn collector(&self) -> SocketAddr {
        self.collector
    }
}

impl Drop for HepSender {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has sent what was queued.
        self.tx = None;
        let Some(thread) = self.thread.take() else {
            return;
        };
        let deadline = Instant::now() + STOP_WAIT;
        while !thread.is_finished() {
            if Instant::now() >= deadline {
                // Not joined: the thread stops at its next message and exits by itself.
                self.counters.stop.store(true, Ordering::Relaxed);
                warn!(
                    collector = %self.collector,
                    "HEP sender still busy after {STOP_WAIT:?}; not waiting for it"
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = thread.join();
    }
}

/// The sender thread's state.
struct Worker {
    socket: UdpSocket,
    collector: SocketAddr,
    node_id: u32,
    password: Option<Vec<u8>>,
    counters: Arc<Counters>,
    /// One packet buffer, reused: no allocation per message.
    buf: Vec<u8>,
    last_log: Option<Instant>,
}

impl Worker {
    fn run(mut self, rx: Receiver<Captured>) {
        while let Ok(msg) = rx.recv() {
            self.counters.queued.fetch_sub(1, Ordering::Relaxed);
            if self.counters.stop.load(Ordering::Relaxed) {
                return;
            }
            self.send(&msg);
        }
    }

    fn send(&mut self, m: &Captured) {
        let packet = HepPacket {
            src: m.src,
            dst: m.dst,
            transport: m.transport,
            time: m.time,
            node_id: self.node_id,
            password: self.password.as_deref(),
            correlation_id: call_id(&m.payload),
            payload: &m.payload,
        };
        let result = match encode(&packet, &mut self.buf) {
            Ok(_) => self.socket.send(&self.buf).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(_) => {
                self.counters.sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                let errors = self.counters.errors.fetch_add(1, Ordering::Relaxed) + 1;
                let now = Instant::now();
                let due = match self.last_log {
                    None => true,
                    Some(t) => now.saturating_duration_since(t) >= LOG_EVERY,
                };
                if due {
                    self.last_log = Some(now);
                    warn!(collector = %self.collector, %error, errors, "HEP capture not sent (logged at most once a minute)");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
