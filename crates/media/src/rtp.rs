//! RTP and SRTP packets as received from a peer (RFC 3550 §5.1, §5.3.1; RFC 3711 §3.1;
//! RFC 5761 §4 for the RTP/RTCP demultiplexing rule; RFC 7983 for the first-byte ranges).
//!
//! Only the clear part is read: the fixed header, the CSRC list, the extension header's
//! length (RFC 8285's one- and two-byte forms are carried inside it and need nothing
//! more than that length to be skipped safely) and, for plain RTP, the padding count in
//! the last byte. SRTP encrypts the payload and its padding, so for SRTP the check is
//! that the clear header, the optional MKI and the authentication tag all fit.

use std::fmt;

use crate::wire::u16_at;

/// Length of the fixed RTP header.
pub const RTP_HEADER_LEN: usize = 12;

/// Default upper bound on a datagram's size (RTP or RTCP): an Ethernet MTU's worth. A
/// datagram larger than this is refused before anything else is read.
pub const DEFAULT_MAX_PACKET: usize = 1500;

/// Default SRTP/SRTCP authentication tag length (HMAC-SHA1-80, RFC 3711 §5.2).
pub const DEFAULT_SRTP_TAG_LEN: u8 = 10;

/// The payload types negotiated for a stream: a set over 0..=127, one bit each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PayloadTypes(u128);

impl PayloadTypes {
    /// The set holding these payload types; values over 127 (not payload types) are
    /// ignored.
    pub fn new(types: &[u8]) -> Self {
        let mut set = Self(0);
        for &pt in types {
            set.insert(pt);
        }
        set
    }

    /// Adds one payload type (values over 127 are ignored).
    pub fn insert(&mut self, pt: u8) {
        if pt < 128 {
            self.0 |= 1u128 << pt;
        }
    }

    /// Whether `pt` was negotiated.
    pub fn contains(self, pt: u8) -> bool {
        pt < 128 && self.0 & (1u128 << pt) != 0
    }

    /// Whether no payload type was negotiated (every RTP packet is then refused).
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// SRTP/SRTCP trailer sizes (RFC 3711 §3.1, §3.4): the optional MKI and the
/// authentication tag that follow the encrypted portion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Srtp {
    /// Authentication tag length in bytes (default 10, HMAC-SHA1-80).
    pub tag_len: u8,
    /// Master Key Identifier length in bytes (default 0: no MKI).
    pub mki_len: u8,
}

impl Default for Srtp {
    fn default() -> Self {
        Self {
            tag_len: DEFAULT_SRTP_TAG_LEN,
            mki_len: 0,
        }
    }
}

impl Srtp {
    /// Bytes after the encrypted portion of every SRTP packet.
    pub fn trailer_len(self) -> usize {
        usize::from(self.tag_len) + usize::from(self.mki_len)
    }
}

/// What an RTP stream accepts, fixed when the stream is created from the negotiation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpRules {
    /// The payload types negotiated for the stream.
    pub payload_types: PayloadTypes,
    /// RTP and RTCP share the port (RFC 5761): payload types 64–95 belong to RTCP.
    pub rtcp_mux: bool,
    /// The stream is SRTP with these trailer sizes.
    pub srtp: Option<Srtp>,
    /// Largest datagram accepted ([`DEFAULT_MAX_PACKET`]).
    pub max_len: usize,
}

impl RtpRules {
    /// Plain RTP, no rtcp-mux, [`DEFAULT_MAX_PACKET`].
    pub fn new(payload_types: PayloadTypes) -> Self {
        Self {
            payload_types,
            rtcp_mux: false,
            srtp: None,
            max_len: DEFAULT_MAX_PACKET,
        }
    }
}

/// The fields of an accepted RTP packet's header (nothing borrowed, nothing allocated).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpHeader {
    /// Marker bit.
    pub marker: bool,
    /// Payload type (one of the negotiated ones).
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Bytes before the payload: fixed header, CSRC list, extension.
    pub header_len: usize,
    /// Payload bytes (for SRTP: the encrypted portion, padding included).
    pub payload_len: usize,
    /// Padding bytes (always 0 for SRTP, whose padding is encrypted).
    pub padding: u8,
}

/// Why an RTP or SRTP packet was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtpError {
    /// Larger than the stream's configured maximum.
    TooLarge {
        /// The datagram's length.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// Shorter than the 12-byte fixed header.
    TooShort {
        /// The datagram's length.
        len: usize,
    },
    /// Version field other than 2.
    BadVersion(u8),
    /// Payload type 64–95 on an rtcp-mux stream: RTCP's range (RFC 5761 §4).
    RtcpPayloadType(u8),
    /// A payload type that was not negotiated for the stream.
    PayloadType(u8),
    /// The CSRC list (4 bytes × CC) runs past the end of the datagram.
    CsrcOverrun {
        /// The CSRC count.
        count: u8,
    },
    /// The extension header, or the length it declares, runs past the end.
    ExtensionOverrun,
    /// Padding bit set but the padding count is zero (it counts itself).
    PaddingZero,
    /// The padding count is larger than what follows the header.
    PaddingOverrun {
        /// The padding count from the last byte.
        count: u8,
    },
    /// An SRTP packet with no room for its clear header, MKI and authentication tag.
    SrtpTooShort {
        /// The datagram's length.
        len: usize,
    },
}

impl RtpError {
    /// A short stable label (for counters, logs and evidence).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "rtp-too-large",
            Self::TooShort { .. } => "rtp-too-short",
            Self::BadVersion(_) => "rtp-version",
            Self::RtcpPayloadType(_) => "rtp-rtcp-payload-type",
            Self::PayloadType(_) => "rtp-payload-type",
            Self::CsrcOverrun { .. } => "rtp-csrc-overrun",
            Self::ExtensionOverrun => "rtp-extension-overrun",
            Self::PaddingZero => "rtp-padding-zero",
            Self::PaddingOverrun { .. } => "rtp-padding-overrun",
            Self::SrtpTooShort { .. } => "srtp-too-short",
        }
    }
}

impl fmt::Display for RtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooLarge { len, max } => write!(f, "RTP packet of {len} bytes over {max}"),
            Self::TooShort { len } => write!(f, "RTP packet of {len} bytes under 12"),
            Self::BadVersion(v) => write!(f, "RTP version {v}, not 2"),
            Self::RtcpPayloadType(pt) => write!(f, "RTP payload type {pt} in RTCP's range"),
            Self::PayloadType(pt) => write!(f, "RTP payload type {pt} not negotiated"),
            Self::CsrcOverrun { count } => write!(f, "{count} CSRCs overrun the packet"),
            Self::ExtensionOverrun => f.write_str("RTP header extension overruns the packet"),
            Self::PaddingZero => f.write_str("RTP padding bit set with a zero count"),
            Self::PaddingOverrun { count } => {
                write!(f, "RTP padding of {count} bytes overruns the payload")
            }
            Self::SrtpTooShort { len } => {
                write!(f, "SRTP packet of {len} bytes too short for header and tag")
            }
        }
    }
}

impl std::error::Error for RtpError {}

/// Checks one RTP (or, per `rules.srtp`, SRTP) datagram against the stream's rules.
///
/// The checks run cheapest first and stop at the first failure, so the verdict names
/// the first thing wrong: size bound, fixed header, version, payload type (RTCP's range
/// under rtcp-mux, then the negotiated set), CSRC list, extension, then padding (RTP) or
/// the trailer (SRTP).
pub fn check_rtp(bytes: &[u8], rules: &RtpRules) -> Result<RtpHeader, RtpError> {
    let len = bytes.len();
    if len > rules.max_len {
        return Err(RtpError::TooLarge {
            len,
            max: rules.max_len,
        });
    }
    let Some(fixed) = bytes.first_chunk::<RTP_HEADER_LEN>() else {
        return Err(RtpError::TooShort { len });
    };
    let [b0, b1, s0, s1, t0, t1, t2, t3, i0, i1, i2, i3] = *fixed;
    let version = b0 >> 6;
    if version != 2 {
        return Err(RtpError::BadVersion(version));
    }
    let payload_type = b1 & 0x7f;
    if rules.rtcp_mux && (64..=95).contains(&payload_type) {
        return Err(RtpError::RtcpPayloadType(payload_type));
    }
    if !rules.payload_types.contains(payload_type) {
        return Err(RtpError::PayloadType(payload_type));
    }
    let count = b0 & 0x0f;
    let mut header_len = RTP_HEADER_LEN + 4 * usize::from(count);
    if header_len > len {
        return Err(RtpError::CsrcOverrun { count });
    }
    if b0 & 0x10 != 0 {
        // 16-bit profile, 16-bit length in 32-bit words, then the words
        let words = u16_at(bytes, header_len + 2).ok_or(RtpError::ExtensionOverrun)?;
        header_len += 4 + 4 * usize::from(words);
        if header_len > len {
            return Err(RtpError::ExtensionOverrun);
        }
    }
    let mut padding = 0u8;
    let payload_len = match rules.srtp {
        Some(srtp) => len
            .checked_sub(header_len + srtp.trailer_len())
            .ok_or(RtpError::SrtpTooShort { len })?,
        None => {
            if b0 & 0x20 != 0 {
                // the header fits and len >= 12, so there is a last byte
                let count = bytes.last().copied().unwrap_or(0);
                if count == 0 {
                    return Err(RtpError::PaddingZero);
                }
                padding = count;
            }
            len.checked_sub(header_len + usize::from(padding))
                .ok_or(RtpError::PaddingOverrun { count: padding })?
        }
    };
    Ok(RtpHeader {
        marker: b1 & 0x80 != 0,
        payload_type,
        sequence: u16::from_be_bytes([s0, s1]),
        timestamp: u32::from_be_bytes([t0, t1, t2, t3]),
        ssrc: u32::from_be_bytes([i0, i1, i2, i3]),
        header_len,
        payload_len,
        padding,
    })
}

/// What a datagram on a shared (rtcp-mux, ICE, DTLS) port is, by its first bytes
/// (RFC 7983 §7 for the first byte, RFC 5761 §4 for RTP against RTCP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketKind {
    /// First byte 128–191, second byte's low 7 bits outside 64–95.
    Rtp,
    /// First byte 128–191, second byte's low 7 bits in 64–95 (RTCP types 192–223).
    Rtcp,
    /// First byte 0–3 (ICE connectivity checks).
    Stun,
    /// First byte 20–63.
    Dtls,
    /// Anything else, or fewer than two bytes.
    Other,
}

/// Classifies a datagram by its first two bytes; reads nothing else.
pub fn classify(bytes: &[u8]) -> PacketKind {
    match bytes.first_chunk::<2>() {
        Some([0..=3, _]) => PacketKind::Stun,
        Some([20..=63, _]) => PacketKind::Dtls,
        Some([128..=191, b1]) if (64..=95).contains(&(b1 & 0x7f)) => PacketKind::Rtcp,
        Some([128..=191, _]) => PacketKind::Rtp,
        _ => PacketKind::Other,
    }
}
