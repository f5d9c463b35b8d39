//! One party's side of one media line: what it may send to the relay, from where, how
//! fast, and what happened to what it sent.
//!
//! A [`Stream`] is fed every datagram that arrives on the relay ports allocated for one
//! party's media line ([`Stream::receive`]); it answers whether the datagram may be
//! forwarded and keeps counters. Forwarding itself (and whether the call allows it yet)
//! is the caller's business, see [`CallMedia`](crate::CallMedia).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::budget::{Budget, Meter, Over};
use crate::reason::{Counters, Refusal};
use crate::rtcp::{check_rtcp, RtcpInfo, RtcpRules};
use crate::rtp::{check_rtp, classify, PacketKind, RtpHeader, RtpRules};

/// Largest sample of a refused packet kept for evidence, in bytes.
pub const SAMPLE_LEN: usize = 256;
/// Default number of SSRC changes allowed per minute.
pub const DEFAULT_SSRC_CHANGES_PER_MINUTE: u32 = 3;
/// Default cut rule: more than this many strikes (malformed packets) ...
pub const DEFAULT_CUT_STRIKES: u32 = 50;
/// ... within this window cut the stream.
pub const DEFAULT_CUT_WINDOW: Duration = Duration::from_secs(10);

const MINUTE: Duration = Duration::from_secs(60);

/// How a stream picks its peer from the first packets (symmetric latching).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LatchRule {
    /// Only the signalled address and port; if none was signalled, the IP address the
    /// party's signalling came from, any port.
    Strict,
    /// The default, for parties behind NAT; see [`may_latch`].
    #[default]
    Nat,
}

/// Where a party said (SDP) and showed (signalling source) it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Expected {
    /// The RTP address from the party's SDP (`c=` and `m=` port).
    pub rtp: Option<SocketAddr>,
    /// The RTCP address from its SDP (`a=rtcp`, or the RTP port + 1 when `None`).
    pub rtcp: Option<SocketAddr>,
    /// The IP address the party's SIP messages came from (the transport's source, not
    /// anything it wrote in a header).
    pub signalling: Option<IpAddr>,
}

impl Expected {
    fn rtcp_addr(&self) -> Option<SocketAddr> {
        self.rtcp.or_else(|| {
            self.rtp
                .and_then(|a| Some(SocketAddr::new(a.ip(), a.port().checked_add(1)?)))
        })
    }
}

/// Whether `addr` can be reached from the Internet as written: not private, shared
/// (CGNAT 100.64/10), loopback, link-local, unspecified, broadcast or IPv6 unique-local.
pub fn is_public(addr: IpAddr) -> bool {
    fn v4(a: Ipv4Addr) -> bool {
        let [b0, b1, ..] = a.octets();
        !(a.is_private()
            || a.is_loopback()
            || a.is_link_local()
            || a.is_unspecified()
            || a.is_broadcast()
            || (b0 == 100 && (64..128).contains(&b1)))
    }
    fn v6(a: Ipv6Addr) -> bool {
        if let Some(m) = a.to_ipv4_mapped() {
            return v4(m);
        }
        let s0 = a.segments().first().copied().unwrap_or(0);
        !(a.is_loopback()
            || a.is_unspecified()
            || (s0 & 0xfe00) == 0xfc00
            || (s0 & 0xffc0) == 0xfe80)
    }
    match addr {
        IpAddr::V4(a) => v4(a),
        IpAddr::V6(a) => v6(a),
    }
}

/// The latching rule: whether the first packet from `from` may become the peer of a
/// component whose signalled address is `signalled`, for a party whose SIP came from
/// `signalling`.
///
/// With [`LatchRule::Nat`], in order:
/// 1. the signalled address and port exactly;
/// 2. a public signalled IP address with another port (a firewall or NAT that keeps the
///    address but rewrites ports);
/// 3. the signalling source's IP address, any port (a phone behind NAT writes its
///    private address in SDP; its media leaves through the same public address as its
///    SIP — this is what makes latching safe against strangers who race to send first,
///    the "RTP bleed" weakness of relays that latch to anyone);
/// 4. anyone, only when neither a public signalled address nor the signalling source
///    is known (the caller should always pass the signalling source).
///
/// With [`LatchRule::Strict`]: rule 1, or rule 3 when nothing was signalled.
pub fn may_latch(
    rule: LatchRule,
    signalled: Option<SocketAddr>,
    signalling: Option<IpAddr>,
    from: SocketAddr,
) -> bool {
    let signalled = signalled.filter(|a| !a.ip().is_unspecified() && a.port() != 0);
    if signalled == Some(from) {
        return true;
    }
    match rule {
        LatchRule::Strict => signalled.is_none() && signalling == Some(from.ip()),
        LatchRule::Nat => {
            let public = signalled.map(|a| a.ip()).filter(|&ip| is_public(ip));
            public == Some(from.ip())
                || signalling == Some(from.ip())
                || (public.is_none() && signalling.is_none())
        }
    }
}

/// The cut rule: more than `strikes` refused packets that count
/// ([`Refusal::is_strike`]) within `window` cut the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CutRule {
    /// Strikes allowed in one window ([`DEFAULT_CUT_STRIKES`]).
    pub strikes: u32,
    /// The window ([`DEFAULT_CUT_WINDOW`]); windows are fixed, starting at a strike.
    pub window: Duration,
}

impl Default for CutRule {
    fn default() -> Self {
        Self {
            strikes: DEFAULT_CUT_STRIKES,
            window: DEFAULT_CUT_WINDOW,
        }
    }
}

/// Everything a stream is created with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamConfig {
    /// RTP rules (payload types, rtcp-mux, SRTP, size).
    pub rtp: RtpRules,
    /// RTCP rules (reduced size, SRTCP, size).
    pub rtcp: RtcpRules,
    /// Where the party is expected.
    pub expected: Expected,
    /// The latching rule.
    pub latch: LatchRule,
    /// RTP budget (`None`: unlimited); see [`crate::derive_budget`].
    pub rtp_budget: Option<Budget>,
    /// RTCP budget (`None`: unlimited); with rtcp-mux RTCP still spends this one.
    pub rtcp_budget: Option<Budget>,
    /// SSRC changes accepted per minute ([`DEFAULT_SSRC_CHANGES_PER_MINUTE`]).
    pub ssrc_changes_per_minute: u32,
    /// When a stream is cut.
    pub cut: CutRule,
}

impl StreamConfig {
    /// A configuration with the defaults around these RTP rules; the RTCP rules follow
    /// the RTP ones' SRTP and size, and the RTCP budget is [`Budget::RTCP`].
    pub fn new(rtp: RtpRules, expected: Expected) -> Self {
        Self {
            rtp,
            rtcp: RtcpRules {
                max_len: rtp.max_len,
                reduced_size: false,
                srtp: rtp.srtp,
            },
            expected,
            latch: LatchRule::default(),
            rtp_budget: None,
            rtcp_budget: Some(Budget::RTCP),
            ssrc_changes_per_minute: DEFAULT_SSRC_CHANGES_PER_MINUTE,
            cut: CutRule::default(),
        }
    }
}

/// Which relay port a datagram arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    /// The RTP port (which carries RTCP too under rtcp-mux).
    Rtp,
    /// The separate RTCP port (not used under rtcp-mux).
    Rtcp,
}

/// An accepted datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// An RTP/SRTP packet.
    Rtp(RtpHeader),
    /// An RTCP/SRTCP datagram.
    Rtcp(RtcpInfo),
}

/// Something the caller should know about once (drained by [`Stream::poll_event`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamEvent {
    /// A component latched to its peer.
    Latched {
        /// Which component.
        component: Component,
        /// The peer's address.
        peer: SocketAddr,
    },
    /// The stream was cut (see [`Stream::sample`] for the first offending packet).
    Cut,
}

/// The first refused packet that counted as a strike, kept for evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    bytes: [u8; SAMPLE_LEN],
    kept: usize,
    /// The packet's full length (only the first [`SAMPLE_LEN`] bytes are kept).
    pub len: usize,
    /// Why it was refused.
    pub refusal: Refusal,
    /// Where it came from.
    pub from: SocketAddr,
    /// When it arrived.
    pub at: Instant,
}

impl Sample {
    /// The kept bytes (at most [`SAMPLE_LEN`]).
    pub fn bytes(&self) -> &[u8] {
        self.bytes.get(..self.kept).unwrap_or_default()
    }
}

/// What a stream has seen.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// RTP packets accepted.
    pub rtp_packets: u64,
    /// RTP bytes accepted (whole datagrams).
    pub rtp_bytes: u64,
    /// RTCP datagrams accepted.
    pub rtcp_packets: u64,
    /// RTCP bytes accepted.
    pub rtcp_bytes: u64,
    /// SSRC changes accepted.
    pub ssrc_changes: u64,
    /// Refused datagrams by reason.
    pub refused: Counters,
}

/// A count over fixed windows.
#[derive(Clone, Copy, Debug, Default)]
struct Window {
    start: Option<Instant>,
    count: u32,
}

impl Window {
    fn count_at(&self, now: Instant, len: Duration) -> u32 {
        match self.start {
            Some(s) if now.saturating_duration_since(s) < len => self.count,
            _ => 0,
        }
    }

    /// Counts one event; returns the count in the current window.
    fn hit(&mut self, now: Instant, len: Duration) -> u32 {
        if self.count_at(now, len) == 0 {
            self.start = Some(now);
            self.count = 0;
        }
        self.count = self.count.saturating_add(1);
        self.count
    }
}

/// One party's side of one media line (see the module docs).
#[derive(Clone, Debug)]
pub struct Stream {
    config: StreamConfig,
    rtp_peer: Option<SocketAddr>,
    rtcp_peer: Option<SocketAddr>,
    ssrc: Option<u32>,
    ssrc_window: Window,
    strikes: Window,
    rtp_meter: Option<Meter>,
    rtcp_meter: Option<Meter>,
    cut: bool,
    stats: StreamStats,
    sample: Option<Sample>,
    last_packet: Option<Instant>,
    events: Pending,
}

/// Events not yet drained: at most one of each kind is pending.
#[derive(Clone, Copy, Debug, Default)]
struct Pending {
    rtp_latched: bool,
    rtcp_latched: bool,
    cut: bool,
}

impl Stream {
    /// A stream that has seen nothing yet.
    pub fn new(config: StreamConfig, now: Instant) -> Self {
        Self {
            rtp_meter: config.rtp_budget.map(|b| Meter::new(b, now)),
            rtcp_meter: config.rtcp_budget.map(|b| Meter::new(b, now)),
            config,
            rtp_peer: None,
            rtcp_peer: None,
            ssrc: None,
            ssrc_window: Window::default(),
            strikes: Window::default(),
            cut: false,
            stats: StreamStats::default(),
            sample: None,
            last_packet: None,
            events: Pending::default(),
        }
    }

    /// Checks a datagram that arrived on `component` from `from`. `Ok` means it may be
    /// forwarded (as far as this party's behaviour goes); every refusal is counted.
    pub fn receive(
        &mut self,
        now: Instant,
        component: Component,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Result<Accepted, Refusal> {
        let verdict = self.check(now, component, from, bytes);
        match verdict {
            Ok(accepted) => {
                self.last_packet = Some(now);
                let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
                let (packets, total) = match accepted {
                    Accepted::Rtp(_) => (&mut self.stats.rtp_packets, &mut self.stats.rtp_bytes),
                    Accepted::Rtcp(_) => (&mut self.stats.rtcp_packets, &mut self.stats.rtcp_bytes),
                };
                *packets = packets.saturating_add(1);
                *total = total.saturating_add(len);
            }
            Err(refusal) => {
                self.stats.refused.add(refusal.reason());
                if refusal.is_strike() {
                    self.strike(now, refusal, from, bytes);
                }
            }
        }
        verdict
    }

    fn check(
        &mut self,
        now: Instant,
        component: Component,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Result<Accepted, Refusal> {
        if self.cut {
            return Err(Refusal::Cut);
        }
        let mux = self.config.rtp.rtcp_mux;
        // under rtcp-mux one peer for both; otherwise RTCP latches on its own port
        let on_rtcp_port = component == Component::Rtcp && !mux;
        let peer = if on_rtcp_port {
            self.rtcp_peer
        } else {
            self.rtp_peer
        };
        match peer {
            Some(p) if p != from => return Err(Refusal::Source),
            Some(_) => {}
            None => {
                if !self.may_latch(on_rtcp_port, from) {
                    return Err(Refusal::Source);
                }
            }
        }
        // STUN (ICE, RFC 6263 keepalives) and DTLS are told apart on every port: they
        // are not media, but not the peer misbehaving either
        let kind = match (classify(bytes), component, mux) {
            (k @ (PacketKind::Stun | PacketKind::Dtls), _, _) => k,
            (_, Component::Rtcp, _) => PacketKind::Rtcp,
            (_, Component::Rtp, false) => PacketKind::Rtp,
            (k, Component::Rtp, true) => k,
        };
        let accepted = match kind {
            PacketKind::Rtp => {
                let header = check_rtp(bytes, &self.config.rtp).map_err(Refusal::Rtp)?;
                let change = self.ssrc_change(now, header.ssrc)?;
                admit(&mut self.rtp_meter, now, bytes.len())?;
                if change {
                    self.ssrc_window.hit(now, MINUTE);
                    self.stats.ssrc_changes = self.stats.ssrc_changes.saturating_add(1);
                }
                self.ssrc = Some(header.ssrc);
                Accepted::Rtp(header)
            }
            PacketKind::Rtcp => {
                let info = check_rtcp(bytes, &self.config.rtcp).map_err(Refusal::Rtcp)?;
                admit(&mut self.rtcp_meter, now, bytes.len())?;
                Accepted::Rtcp(info)
            }
            other => return Err(Refusal::NotRtp(other)),
        };
        if peer.is_none() {
            if on_rtcp_port {
                self.rtcp_peer = Some(from);
                self.events.rtcp_latched = true;
            } else {
                self.rtp_peer = Some(from);
                self.events.rtp_latched = true;
            }
        }
        Ok(accepted)
    }

    fn may_latch(&self, on_rtcp_port: bool, from: SocketAddr) -> bool {
        let e = &self.config.expected;
        if on_rtcp_port {
            // the RTCP port may also follow the IP address RTP latched to
            self.rtp_peer.is_some_and(|p| p.ip() == from.ip())
                || may_latch(self.config.latch, e.rtcp_addr(), e.signalling, from)
        } else {
            may_latch(self.config.latch, e.rtp, e.signalling, from)
        }
    }

    /// Whether `ssrc` is a change, refusing it beyond the per-minute allowance.
    fn ssrc_change(&self, now: Instant, ssrc: u32) -> Result<bool, Refusal> {
        match self.ssrc {
            None => Ok(false),
            Some(current) if current == ssrc => Ok(false),
            Some(current) => {
                if self.ssrc_window.count_at(now, MINUTE) >= self.config.ssrc_changes_per_minute {
                    Err(Refusal::SsrcChange {
                        current,
                        offered: ssrc,
                    })
                } else {
                    Ok(true)
                }
            }
        }
    }

    fn strike(&mut self, now: Instant, refusal: Refusal, from: SocketAddr, bytes: &[u8]) {
        if self.sample.is_none() {
            let mut kept = [0u8; SAMPLE_LEN];
            let n = bytes.len().min(SAMPLE_LEN);
            if let (Some(dst), Some(src)) = (kept.get_mut(..n), bytes.get(..n)) {
                dst.copy_from_slice(src);
            }
            self.sample = Some(Sample {
                bytes: kept,
                kept: n,
                len: bytes.len(),
                refusal,
                from,
                at: now,
            });
        }
        if self.strikes.hit(now, self.config.cut.window) > self.config.cut.strikes {
            self.cut = true;
            self.events.cut = true;
        }
    }

    /// The next event, once each.
    pub fn poll_event(&mut self) -> Option<StreamEvent> {
        if std::mem::take(&mut self.events.rtp_latched) {
            if let Some(peer) = self.rtp_peer {
                return Some(StreamEvent::Latched {
                    component: Component::Rtp,
                    peer,
                });
            }
        }
        if std::mem::take(&mut self.events.rtcp_latched) {
            if let Some(peer) = self.rtcp_peer {
                return Some(StreamEvent::Latched {
                    component: Component::Rtcp,
                    peer,
                });
            }
        }
        if std::mem::take(&mut self.events.cut) {
            return Some(StreamEvent::Cut);
        }
        None
    }

    /// The new addresses of a re-offer: the latches are released (the next packets
    /// latch again under the same rule); counters, SSRC and budgets are kept.
    pub fn set_expected(&mut self, expected: Expected) {
        self.config.expected = expected;
        self.rtp_peer = None;
        self.rtcp_peer = None;
    }

    /// The payload types of a re-offer.
    pub fn set_payload_types(&mut self, types: crate::PayloadTypes) {
        self.config.rtp.payload_types = types;
    }

    /// The peer the given component latched to.
    pub fn peer(&self, component: Component) -> Option<SocketAddr> {
        match component {
            Component::Rtcp if !self.config.rtp.rtcp_mux => self.rtcp_peer,
            _ => self.rtp_peer,
        }
    }

    /// The SSRC the stream holds.
    pub fn ssrc(&self) -> Option<u32> {
        self.ssrc
    }

    /// Whether the stream was cut.
    pub fn is_cut(&self) -> bool {
        self.cut
    }

    /// The first packet refused as a strike, if any.
    pub fn sample(&self) -> Option<&Sample> {
        self.sample.as_ref()
    }

    /// Counters.
    pub fn stats(&self) -> &StreamStats {
        &self.stats
    }

    /// When the last datagram was accepted.
    pub fn last_packet(&self) -> Option<Instant> {
        self.last_packet
    }

    /// The configuration (with the latest re-offer applied).
    pub fn config(&self) -> &StreamConfig {
        &self.config
    }
}

fn admit(meter: &mut Option<Meter>, now: Instant, len: usize) -> Result<(), Refusal> {
    match meter {
        None => Ok(()),
        Some(m) => m.admit(now, len).map_err(|over| match over {
            Over::Packets => Refusal::PacketRate,
            Over::Bytes => Refusal::Bandwidth,
        }),
    }
}
