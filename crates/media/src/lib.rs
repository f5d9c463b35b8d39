//! # palisade-media: the media relay's decisions, without the relay
//!
//! The relay stands between two phones' media so that no packet reaches a device
//! unless the server understood and approved it, and so that nothing reaches a callee
//! before it answered. This crate holds every decision the relay makes, as pure
//! functions and small state machines: it contains no networking code, starts no
//! thread and reads no clock (times are passed in as [`Instant`](std::time::Instant)s),
//! so it is tested with a simulated clock and fuzzed. The server's relay thread owns
//! the sockets, feeds datagrams in and forwards what is accepted.
//!
//! - **Packet checks** ([`check_rtp`], [`check_rtcp`], [`classify`]): RTP per RFC 3550
//!   §5.1 (version, CSRC list and extension within the packet, padding count, payload
//!   type one of those negotiated and outside RTCP's range under rtcp-mux, size bound);
//!   RTCP compounds per RFC 3550 §6.1 and §6.4–6.6, RFC 4585 (205/206), RFC 3611 (207)
//!   and RFC 5506 (reduced size); SRTP/SRTCP per RFC 3711 (clear header fields, room
//!   for the E+index word, MKI and authentication tag). Every refusal is a precise
//!   error value ([`RtpError`], [`RtcpError`]); no check allocates.
//! - **Streams** ([`Stream`]): one party's side of a media line. Symmetric latching with
//!   a documented NAT rule ([`may_latch`]), SSRC stability (a change is counted and
//!   allowed a few times a minute), packet-rate and bandwidth budgets (token buckets;
//!   [`derive_budget`] sizes them from the negotiated codecs), refusal counters by
//!   [`Reason`], and a cut rule: a stream that keeps sending malformed packets is cut,
//!   with the first offending packet kept as a [`Sample`] for the evidence log.
//! - **Hold until answer** ([`CallMedia`], [`forwards`]): before the answer nothing
//!   flows, except callee-to-caller early media when the operator allows it; after the
//!   answer both ways; after the end nothing; silence after the answer for the media
//!   timeout ends the call's media.
//! - **Ports** ([`PortPool`]): a bounded pool of even/odd RTP/RTCP port pairs;
//!   exhaustion is an error value (the server answers 503).
//!
//! ## Rules chosen where the RFCs leave room
//!
//! - *Latching* ([`LatchRule::Nat`], the default): the first valid packet latches the
//!   peer if it comes from the SDP address and port, from the SDP's IP address with any
//!   port when that address is public, or from the IP address the party's SIP came
//!   from, any port (covers phones behind NAT that write private addresses in SDP).
//!   Only when neither is known does any source latch. Later packets from anyone else
//!   are refused ([`Reason::Source`]) and do not count toward the cut, since anyone can
//!   send to a relay port. A re-offer releases the latch ([`Stream::set_expected`]).
//! - *SSRC*: the first SSRC is kept; a new one replaces it at most
//!   [`DEFAULT_SSRC_CHANGES_PER_MINUTE`] times a minute, beyond which packets with
//!   another SSRC are refused ([`Reason::SsrcChange`]). RTCP SSRCs are not tied to it
//!   (receivers report under their own).
//! - *Budgets*: twice the derived peak, with a 2 s burst; a datagram over budget is
//!   dropped, not counted toward the cut (bursts happen). RTCP has its own budget.
//! - *Cut*: more than [`DEFAULT_CUT_STRIKES`] malformed, unnegotiated or over-limit-SSRC
//!   packets within [`DEFAULT_CUT_WINDOW`] cut the stream for good.
//! - *Early media*: only callee to caller, only if configured; never toward the callee.
//!
//! - *STUN and DTLS* on relay ports are refused ([`Reason::NotRtp`]) without a strike:
//!   ICE checks and RFC 6263 keepalives are not misbehaviour. DTLS-SRTP/ICE media is
//!   the shell's decision (pass through or anchor); this crate only tells it apart.
//! - *RTCP CNAME*: RFC 3550 §6.1 wants one in every compound; it is not required here,
//!   since reduced-size RTCP (RFC 5506) omits it and its absence harms no receiver.
//!
//! The names of the refusal reasons ([`Reason::as_str`]) are stable labels for metrics.
//!
//! ## How the relay uses it
//!
//! Per call leg, one [`PortPair`] per media line from the [`PortPool`], one [`Stream`]
//! per party and media line (built from the negotiated SDP: [`PayloadTypes`], rtcp-mux,
//! SRTP, [`Expected`] with the party's SIP source address, a [`derive_budget`]), and one
//! [`CallMedia`] per call. For each datagram received on a relay port: find the stream
//! by the local port, [`Stream::receive`]; if accepted, [`CallMedia::forward`] with the
//! packet's direction; if that allows it, send the unchanged bytes from the other
//! party's relay port to the other stream's latched peer (or, before it latched, its
//! signalled address). Drain [`Stream::poll_event`] to log latching and turn a cut into
//! a finding with the [`Stream::sample`]; arm [`CallMedia::poll_timeout`]; release the
//! pairs when the call ends.

mod budget;
mod gate;
mod ports;
mod reason;
mod rtcp;
mod rtp;
mod stream;
mod wire;

pub use budget::{derive_budget, Budget, CodecInfo, MediaKind, DEFAULT_BURST_MS};
pub use gate::{
    forwards, CallMedia, CallState, Direction, EarlyMedia, EndReason, MediaDead,
    DEFAULT_MEDIA_TIMEOUT,
};
pub use ports::{PortError, PortPair, PortPool, PortRange};
pub use reason::{Counters, Reason, Refusal};
pub use rtcp::{check_rtcp, RtcpError, RtcpInfo, RtcpRules, SdesFault};
pub use rtcp::{APP, BYE, PSFB, RR, RTPFB, SDES, SR, XR};
pub use rtp::{
    check_rtp, classify, PacketKind, PayloadTypes, RtpError, RtpHeader, RtpRules, Srtp,
    DEFAULT_MAX_PACKET, DEFAULT_SRTP_TAG_LEN, RTP_HEADER_LEN,
};
pub use stream::{
    is_public, may_latch, Accepted, Component, CutRule, Expected, LatchRule, Sample, Stream,
    StreamConfig, StreamEvent, StreamStats, DEFAULT_CUT_STRIKES, DEFAULT_CUT_WINDOW,
    DEFAULT_SSRC_CHANGES_PER_MINUTE, SAMPLE_LEN,
};

#[cfg(test)]
mod tests;
