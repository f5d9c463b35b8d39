//! Why a stream refused a packet: the detailed [`Refusal`] for logs and evidence, and
//! the flat [`Reason`] that counters are kept by.

use std::fmt;

use crate::rtcp::RtcpError;
use crate::rtp::{PacketKind, RtpError};

/// Why a [`Stream`](crate::Stream) refused a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The stream was cut for sending malformed packets; nothing more is accepted.
    Cut,
    /// From an address that is not the latched peer (or, before latching, one that may
    /// not latch).
    Source,
    /// STUN or DTLS on any relay port, or on an rtcp-mux port a datagram whose first
    /// byte is not RTP's or RTCP's (RFC 7983).
    NotRtp(PacketKind),
    /// A malformed or unexpected RTP/SRTP packet.
    Rtp(RtpError),
    /// A malformed RTCP/SRTCP datagram.
    Rtcp(RtcpError),
    /// A new SSRC beyond the allowed number of changes per minute.
    SsrcChange {
        /// The SSRC the stream holds.
        current: u32,
        /// The SSRC the packet carried.
        offered: u32,
    },
    /// Over the stream's packet-rate budget.
    PacketRate,
    /// Over the stream's bandwidth budget.
    Bandwidth,
}

impl Refusal {
    /// The counter this refusal is counted under.
    pub fn reason(self) -> Reason {
        match self {
            Self::Cut => Reason::Cut,
            Self::Source => Reason::Source,
            Self::NotRtp(_) => Reason::NotRtp,
            Self::Rtp(e) => match e {
                RtpError::TooLarge { .. } => Reason::RtpTooLarge,
                RtpError::TooShort { .. } => Reason::RtpTooShort,
                RtpError::BadVersion(_) => Reason::RtpVersion,
                RtpError::RtcpPayloadType(_) => Reason::RtpRtcpPayloadType,
                RtpError::PayloadType(_) => Reason::RtpPayloadType,
                RtpError::CsrcOverrun { .. } => Reason::RtpCsrcOverrun,
                RtpError::ExtensionOverrun => Reason::RtpExtensionOverrun,
                RtpError::PaddingZero => Reason::RtpPaddingZero,
                RtpError::PaddingOverrun { .. } => Reason::RtpPaddingOverrun,
                RtpError::SrtpTooShort { .. } => Reason::SrtpTooShort,
            },
            Self::Rtcp(e) => match e {
                RtcpError::TooLarge { .. } => Reason::RtcpTooLarge,
                RtcpError::TooShort { .. } => Reason::RtcpTooShort,
                RtcpError::BadVersion { .. } => Reason::RtcpVersion,
                RtcpError::Length { .. } => Reason::RtcpLength,
                RtcpError::TrailingBytes { .. } => Reason::RtcpTrailingBytes,
                RtcpError::UnknownType { .. } => Reason::RtcpUnknownType,
                RtcpError::FirstNotReport { .. } => Reason::RtcpFirstNotReport,
                RtcpError::PaddingNotLast { .. } => Reason::RtcpPaddingNotLast,
                RtcpError::PaddingZero { .. } => Reason::RtcpPaddingZero,
                RtcpError::PaddingOverrun { .. } => Reason::RtcpPaddingOverrun,
                RtcpError::Short { .. } => Reason::RtcpShort,
                RtcpError::ReportBlocks { .. } => Reason::RtcpReportBlocks,
                RtcpError::Sdes { .. } => Reason::RtcpSdes,
                RtcpError::Bye { .. } => Reason::RtcpBye,
                RtcpError::Feedback { .. } => Reason::RtcpFeedback,
                RtcpError::XrBlock { .. } => Reason::RtcpXrBlock,
                RtcpError::SrtcpTooShort { .. } => Reason::SrtcpTooShort,
            },
            Self::SsrcChange { .. } => Reason::SsrcChange,
            Self::PacketRate => Reason::PacketRate,
            Self::Bandwidth => Reason::Bandwidth,
        }
    }

    /// Whether this refusal counts toward cutting the stream: the packet was malformed,
    /// unexpected for the negotiation, or an SSRC change beyond the limit — something
    /// the peer itself did wrong. Refusals by source (anyone can spray a relay port),
    /// by budget (bursts happen), STUN and DTLS (keepalives and handshakes the relay
    /// does not take part in) and after the cut do not count.
    pub fn is_strike(self) -> bool {
        matches!(
            self,
            Self::NotRtp(PacketKind::Other)
                | Self::Rtp(_)
                | Self::Rtcp(_)
                | Self::SsrcChange { .. }
        )
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cut => f.write_str("stream cut"),
            Self::Source => f.write_str("not from the stream's peer"),
            Self::NotRtp(kind) => write!(f, "{kind:?} on an RTP port"),
            Self::Rtp(e) => e.fmt(f),
            Self::Rtcp(e) => e.fmt(f),
            Self::SsrcChange { current, offered } => {
                write!(
                    f,
                    "SSRC {offered:#010x} replacing {current:#010x} over the limit"
                )
            }
            Self::PacketRate => f.write_str("over the packet-rate budget"),
            Self::Bandwidth => f.write_str("over the bandwidth budget"),
        }
    }
}

impl std::error::Error for Refusal {}

macro_rules! reasons {
    ($($name:ident => $label:literal,)*) => {
        /// The counter a refusal is kept under (one per distinct cause).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Reason {
            $(
                #[doc = concat!("`", $label, "`")]
                $name,
            )*
        }

        impl Reason {
            /// Every reason, in counter order.
            pub const ALL: &'static [Reason] = &[$(Reason::$name,)*];

            /// A short stable label (a metrics label value).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$name => $label,)*
                }
            }
        }
    };
}

reasons! {
    Cut => "cut",
    Source => "source",
    NotRtp => "not-rtp",
    RtpTooLarge => "rtp-too-large",
    RtpTooShort => "rtp-too-short",
    RtpVersion => "rtp-version",
    RtpRtcpPayloadType => "rtp-rtcp-payload-type",
    RtpPayloadType => "rtp-payload-type",
    RtpCsrcOverrun => "rtp-csrc-overrun",
    RtpExtensionOverrun => "rtp-extension-overrun",
    RtpPaddingZero => "rtp-padding-zero",
    RtpPaddingOverrun => "rtp-padding-overrun",
    SrtpTooShort => "srtp-too-short",
    RtcpTooLarge => "rtcp-too-large",
    RtcpTooShort => "rtcp-too-short",
    RtcpVersion => "rtcp-version",
    RtcpLength => "rtcp-length",
    RtcpTrailingBytes => "rtcp-trailing-bytes",
    RtcpUnknownType => "rtcp-unknown-type",
    RtcpFirstNotReport => "rtcp-first-not-report",
    RtcpPaddingNotLast => "rtcp-padding-not-last",
    RtcpPaddingZero => "rtcp-padding-zero",
    RtcpPaddingOverrun => "rtcp-padding-overrun",
    RtcpShort => "rtcp-short",
    RtcpReportBlocks => "rtcp-report-blocks",
    RtcpSdes => "rtcp-sdes",
    RtcpBye => "rtcp-bye",
    RtcpFeedback => "rtcp-feedback",
    RtcpXrBlock => "rtcp-xr-block",
    SrtcpTooShort => "srtcp-too-short",
    SsrcChange => "ssrc-change",
    PacketRate => "packet-rate",
    Bandwidth => "bandwidth",
}

/// Number of distinct reasons.
pub(crate) const REASONS: usize = Reason::ALL.len();

/// Refusal counters, one per [`Reason`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counters([u64; REASONS]);

impl Default for Counters {
    fn default() -> Self {
        Self([0; REASONS])
    }
}

impl Counters {
    /// Packets refused for `reason`.
    pub fn get(&self, reason: Reason) -> u64 {
        self.0.get(reason as usize).copied().unwrap_or(0)
    }

    /// Packets refused for any reason.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The reasons with a non-zero count.
    pub fn nonzero(&self) -> impl Iterator<Item = (Reason, u64)> + '_ {
        Reason::ALL
            .iter()
            .map(|&r| (r, self.get(r)))
            .filter(|&(_, n)| n > 0)
    }

    pub(crate) fn add(&mut self, reason: Reason) {
        if let Some(n) = self.0.get_mut(reason as usize) {
            *n = n.saturating_add(1);
        }
    }
}
