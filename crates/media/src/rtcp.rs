//! RTCP compound packets (RFC 3550 §6.1, §6.4–6.6; RFC 4585 §6 feedback 205/206;
//! RFC 3611 XR 207; RFC 5506 reduced size) and SRTCP (RFC 3711 §3.4).
//!
//! A compound packet is walked once, sub-packet by sub-packet: every one has version 2,
//! its declared length lies inside the datagram, and the lengths add up to the datagram
//! exactly. Only the packet types of RFC 3550, RFC 4585 and RFC 3611 (200–207) are
//! accepted, the first must be SR or RR unless reduced-size RTCP was negotiated, only
//! the last may carry padding, and each type's own layout is checked: report blocks
//! within the length, SDES chunks and items within the packet and each chunk ended and
//! padded with null octets to a 32-bit boundary, BYE's SSRC list and reason within the
//! length, feedback packets' fixed part (and PLI's, NACK's and FIR's FCI sizes), XR
//! report blocks adding up.
//!
//! SRTCP carries, after the encrypted part, a word with the E flag and SRTCP index, the
//! optional MKI and the authentication tag; only the first 8 bytes (header and SSRC) are
//! in the clear when E is set. With E clear the whole compound is checked as above.

use std::fmt;

use crate::rtp::{Srtp, DEFAULT_MAX_PACKET};
use crate::wire::{u16_at, u32_at};

/// Sender report.
pub const SR: u8 = 200;
/// Receiver report.
pub const RR: u8 = 201;
/// Source description.
pub const SDES: u8 = 202;
/// Goodbye.
pub const BYE: u8 = 203;
/// Application-defined.
pub const APP: u8 = 204;
/// Transport-layer feedback (RFC 4585).
pub const RTPFB: u8 = 205;
/// Payload-specific feedback (RFC 4585).
pub const PSFB: u8 = 206;
/// Extended report (RFC 3611).
pub const XR: u8 = 207;

/// Length of one report block in SR and RR.
const REPORT_BLOCK: usize = 24;

/// What an RTCP stream accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtcpRules {
    /// Largest datagram accepted.
    pub max_len: usize,
    /// Reduced-size RTCP was negotiated (RFC 5506, `a=rtcp-rsize`): the first packet
    /// may be any known type, and a datagram may hold a single packet.
    pub reduced_size: bool,
    /// The stream is SRTCP with these trailer sizes.
    pub srtp: Option<Srtp>,
}

impl Default for RtcpRules {
    fn default() -> Self {
        Self {
            max_len: DEFAULT_MAX_PACKET,
            reduced_size: false,
            srtp: None,
        }
    }
}

/// What an accepted RTCP datagram held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtcpInfo {
    /// Sub-packets in the compound (0 when encrypted: only the first header is visible).
    pub packets: u16,
    /// Type of the first sub-packet.
    pub first_type: u8,
    /// SSRC of the first sub-packet's sender (0 if the first packet has none).
    pub ssrc: u32,
    /// A BYE was among the (visible) sub-packets.
    pub bye: bool,
    /// SRTCP with the E flag: the compound past the first header was not readable.
    pub encrypted: bool,
}

/// What was wrong inside an SDES packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SdesFault {
    /// A chunk's SSRC/CSRC runs past the packet.
    ChunkOverrun,
    /// An item's length runs past the packet.
    ItemOverrun,
    /// The packet ends before a chunk's END (null) item.
    MissingEnd,
    /// The null octets after END do not reach a 32-bit boundary, or are not null.
    BadPadding,
    /// Bytes after the last of the declared chunks.
    ExtraData,
}

/// Why an RTCP or SRTCP datagram was refused. `index` is the 0-based position of the
/// offending sub-packet in the compound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtcpError {
    /// Larger than the configured maximum.
    TooLarge {
        /// The datagram's length.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// Shorter than one RTCP header (4 bytes).
    TooShort {
        /// The datagram's length.
        len: usize,
    },
    /// A sub-packet's version is not 2.
    BadVersion {
        /// Sub-packet.
        index: u16,
        /// Its version field.
        version: u8,
    },
    /// A sub-packet's declared length runs past the datagram.
    Length {
        /// Sub-packet.
        index: u16,
    },
    /// 1–3 bytes after the last whole sub-packet: the lengths do not add up.
    TrailingBytes {
        /// Bytes left over.
        len: usize,
    },
    /// A packet type outside 200–207.
    UnknownType {
        /// Sub-packet.
        index: u16,
        /// Its packet type.
        packet_type: u8,
    },
    /// The first sub-packet is not SR or RR (and reduced size was not negotiated).
    FirstNotReport {
        /// Its packet type.
        packet_type: u8,
    },
    /// Padding bit set on a sub-packet that is not the last.
    PaddingNotLast {
        /// Sub-packet.
        index: u16,
    },
    /// Padding bit set with a zero padding count.
    PaddingZero {
        /// Sub-packet.
        index: u16,
    },
    /// The padding count exceeds the sub-packet's body.
    PaddingOverrun {
        /// Sub-packet.
        index: u16,
    },
    /// Shorter than its type's fixed part (SR 28, RR 8, APP 12, feedback 12, XR 8 bytes).
    Short {
        /// Sub-packet.
        index: u16,
        /// Its packet type.
        packet_type: u8,
    },
    /// The report count's blocks do not fit in the SR/RR.
    ReportBlocks {
        /// Sub-packet.
        index: u16,
        /// The report count.
        count: u8,
    },
    /// A malformed SDES packet.
    Sdes {
        /// Sub-packet.
        index: u16,
        /// What was wrong.
        fault: SdesFault,
    },
    /// BYE's SSRC list or reason runs past its length, or bytes follow the reason.
    Bye {
        /// Sub-packet.
        index: u16,
    },
    /// Feedback control information whose size does not fit its FMT (PLI with FCI,
    /// NACK without, FIR not in 8-byte entries).
    Feedback {
        /// Sub-packet.
        index: u16,
        /// Its packet type (205 or 206).
        packet_type: u8,
        /// Its FMT.
        fmt: u8,
    },
    /// XR report blocks that do not add up to the packet's length.
    XrBlock {
        /// Sub-packet.
        index: u16,
    },
    /// An SRTCP packet with no room for header, SSRC, E+index word, MKI and tag.
    SrtcpTooShort {
        /// The datagram's length.
        len: usize,
    },
}

impl RtcpError {
    /// A short stable label (for counters, logs and evidence).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "rtcp-too-large",
            Self::TooShort { .. } => "rtcp-too-short",
            Self::BadVersion { .. } => "rtcp-version",
            Self::Length { .. } => "rtcp-length",
            Self::TrailingBytes { .. } => "rtcp-trailing-bytes",
            Self::UnknownType { .. } => "rtcp-unknown-type",
            Self::FirstNotReport { .. } => "rtcp-first-not-report",
            Self::PaddingNotLast { .. } => "rtcp-padding-not-last",
            Self::PaddingZero { .. } => "rtcp-padding-zero",
            Self::PaddingOverrun { .. } => "rtcp-padding-overrun",
            Self::Short { .. } => "rtcp-short",
            Self::ReportBlocks { .. } => "rtcp-report-blocks",
            Self::Sdes { .. } => "rtcp-sdes",
            Self::Bye { .. } => "rtcp-bye",
            Self::Feedback { .. } => "rtcp-feedback",
            Self::XrBlock { .. } => "rtcp-xr-block",
            Self::SrtcpTooShort { .. } => "srtcp-too-short",
        }
    }
}

impl fmt::Display for RtcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooLarge { len, max } => write!(f, "RTCP datagram of {len} bytes over {max}"),
            Self::TooShort { len } => write!(f, "RTCP datagram of {len} bytes under 4"),
            Self::BadVersion { index, version } => {
                write!(f, "RTCP packet {index}: version {version}, not 2")
            }
            Self::Length { index } => write!(f, "RTCP packet {index}: length past the datagram"),
            Self::TrailingBytes { len } => write!(f, "{len} bytes after the last RTCP packet"),
            Self::UnknownType { index, packet_type } => {
                write!(f, "RTCP packet {index}: unknown type {packet_type}")
            }
            Self::FirstNotReport { packet_type } => {
                write!(f, "compound RTCP starts with type {packet_type}, not SR/RR")
            }
            Self::PaddingNotLast { index } => {
                write!(
                    f,
                    "RTCP packet {index}: padding on a packet other than the last"
                )
            }
            Self::PaddingZero { index } => write!(f, "RTCP packet {index}: padding count 0"),
            Self::PaddingOverrun { index } => {
                write!(f, "RTCP packet {index}: padding longer than the packet")
            }
            Self::Short { index, packet_type } => {
                write!(f, "RTCP packet {index}: too short for type {packet_type}")
            }
            Self::ReportBlocks { index, count } => {
                write!(f, "RTCP packet {index}: {count} report blocks do not fit")
            }
            Self::Sdes { index, fault } => write!(f, "RTCP packet {index}: SDES {fault:?}"),
            Self::Bye { index } => write!(f, "RTCP packet {index}: BYE overruns its length"),
            Self::Feedback {
                index,
                packet_type,
                fmt,
            } => write!(
                f,
                "RTCP packet {index}: feedback {packet_type}/{fmt} with the wrong FCI size"
            ),
            Self::XrBlock { index } => write!(f, "RTCP packet {index}: XR blocks do not add up"),
            Self::SrtcpTooShort { len } => {
                write!(
                    f,
                    "SRTCP packet of {len} bytes too short for header and tag"
                )
            }
        }
    }
}

impl std::error::Error for RtcpError {}

/// Checks one RTCP datagram (or SRTCP, per `rules.srtp`).
pub fn check_rtcp(bytes: &[u8], rules: &RtcpRules) -> Result<RtcpInfo, RtcpError> {
    let len = bytes.len();
    if len > rules.max_len {
        return Err(RtcpError::TooLarge {
            len,
            max: rules.max_len,
        });
    }
    match rules.srtp {
        Some(srtp) => check_srtcp(bytes, srtp, rules.reduced_size),
        None => check_compound(bytes, rules.reduced_size),
    }
}

fn check_srtcp(bytes: &[u8], srtp: Srtp, reduced_size: bool) -> Result<RtcpInfo, RtcpError> {
    let len = bytes.len();
    // header + sender SSRC in the clear, then (at least nothing of) the encrypted part
    let Some(end) = len.checked_sub(4 + srtp.trailer_len()).filter(|&e| e >= 8) else {
        return Err(RtcpError::SrtcpTooShort { len });
    };
    let index_word = u32_at(bytes, end).ok_or(RtcpError::SrtcpTooShort { len })?;
    let compound = bytes.get(..end).ok_or(RtcpError::SrtcpTooShort { len })?;
    if index_word & 0x8000_0000 == 0 {
        return check_compound(compound, reduced_size);
    }
    let first = Header::read(compound, 0)?;
    if !(SR..=XR).contains(&first.packet_type) {
        return Err(RtcpError::UnknownType {
            index: 0,
            packet_type: first.packet_type,
        });
    }
    if !reduced_size && !matches!(first.packet_type, SR | RR) {
        return Err(RtcpError::FirstNotReport {
            packet_type: first.packet_type,
        });
    }
    if first.size > compound.len() {
        return Err(RtcpError::Length { index: 0 });
    }
    Ok(RtcpInfo {
        packets: 0,
        first_type: first.packet_type,
        ssrc: u32_at(compound, 4).unwrap_or(0),
        bye: false,
        encrypted: true,
    })
}

/// One sub-packet's common header.
struct Header {
    padding: bool,
    count: u8,
    packet_type: u8,
    /// Whole sub-packet in bytes, header included.
    size: usize,
}

impl Header {
    fn read(rest: &[u8], index: u16) -> Result<Self, RtcpError> {
        let Some(&[b0, packet_type, l0, l1]) = rest.first_chunk::<4>() else {
            return Err(RtcpError::TrailingBytes { len: rest.len() });
        };
        let version = b0 >> 6;
        if version != 2 {
            return Err(RtcpError::BadVersion { index, version });
        }
        Ok(Self {
            padding: b0 & 0x20 != 0,
            count: b0 & 0x1f,
            packet_type,
            size: 4 * (usize::from(u16::from_be_bytes([l0, l1])) + 1),
        })
    }
}

fn check_compound(bytes: &[u8], reduced_size: bool) -> Result<RtcpInfo, RtcpError> {
    if bytes.len() < 4 {
        return Err(RtcpError::TooShort { len: bytes.len() });
    }
    let mut info = RtcpInfo {
        packets: 0,
        first_type: 0,
        ssrc: u32_at(bytes, 4).unwrap_or(0),
        bye: false,
        encrypted: false,
    };
    let mut rest = bytes;
    let mut index: u16 = 0;
    while !rest.is_empty() {
        let h = Header::read(rest, index)?;
        let Some((packet, tail)) = rest.split_at_checked(h.size) else {
            return Err(RtcpError::Length { index });
        };
        if !(SR..=XR).contains(&h.packet_type) {
            return Err(RtcpError::UnknownType {
                index,
                packet_type: h.packet_type,
            });
        }
        if index == 0 {
            if !reduced_size && !matches!(h.packet_type, SR | RR) {
                return Err(RtcpError::FirstNotReport {
                    packet_type: h.packet_type,
                });
            }
            info.first_type = h.packet_type;
        }
        let mut content = packet;
        if h.padding {
            if !tail.is_empty() {
                return Err(RtcpError::PaddingNotLast { index });
            }
            let pad = usize::from(packet.last().copied().unwrap_or(0));
            if pad == 0 {
                return Err(RtcpError::PaddingZero { index });
            }
            content = packet
                .len()
                .checked_sub(pad)
                .filter(|&n| n >= 4)
                .and_then(|n| packet.get(..n))
                .ok_or(RtcpError::PaddingOverrun { index })?;
        }
        let body = content.get(4..).unwrap_or_default();
        check_body(&h, body, index)?;
        info.bye |= h.packet_type == BYE;
        index = index.saturating_add(1);
        rest = tail;
    }
    info.packets = index;
    Ok(info)
}

/// One sub-packet's layout by type; `body` follows the 4-byte header, padding removed.
fn check_body(h: &Header, body: &[u8], index: u16) -> Result<(), RtcpError> {
    let packet_type = h.packet_type;
    let count = h.count;
    let short = RtcpError::Short { index, packet_type };
    let blocks = REPORT_BLOCK * usize::from(count);
    match packet_type {
        SR | RR => {
            // SSRC, then for SR the 20-byte sender info
            let fixed = if packet_type == SR { 24 } else { 4 };
            if body.len() < fixed {
                return Err(short);
            }
            // profile-specific extensions may follow the blocks
            if body.len() < fixed + blocks {
                return Err(RtcpError::ReportBlocks { index, count });
            }
        }
        SDES => check_sdes(body, count).map_err(|fault| RtcpError::Sdes { index, fault })?,
        BYE => {
            let ssrcs = 4 * usize::from(count);
            let bye = RtcpError::Bye { index };
            if body.len() < ssrcs {
                return Err(bye);
            }
            if body.len() > ssrcs {
                let reason = body.get(ssrcs).copied().map_or(0, usize::from);
                let end = ssrcs + 1 + reason;
                // the reason is padded with at most 3 bytes to the 32-bit boundary
                if end > body.len() || body.len() - end > 3 {
                    return Err(bye);
                }
            }
        }
        APP => {
            if body.len() < 8 {
                return Err(short);
            }
        }
        RTPFB | PSFB => {
            // sender SSRC, media SSRC, then the FCI
            let Some(fci) = body.len().checked_sub(8) else {
                return Err(short);
            };
            let fits = match (packet_type, count) {
                (RTPFB, 1) => fci >= 4,                // generic NACK (RFC 4585 §6.2.1)
                (PSFB, 1) => fci == 0,                 // PLI (RFC 4585 §6.3.1)
                (PSFB, 4) => fci >= 8 && fci % 8 == 0, // FIR (RFC 5104 §4.3.1)
                _ => true,
            };
            if !fits {
                return Err(RtcpError::Feedback {
                    index,
                    packet_type,
                    fmt: count,
                });
            }
        }
        XR => {
            if body.len() < 4 {
                return Err(short);
            }
            let mut pos = 4;
            while pos < body.len() {
                let words = u16_at(body, pos + 2).ok_or(RtcpError::XrBlock { index })?;
                pos += 4 + 4 * usize::from(words);
            }
            if pos != body.len() {
                return Err(RtcpError::XrBlock { index });
            }
        }
        _ => {
            return Err(RtcpError::UnknownType { index, packet_type });
        }
    }
    Ok(())
}

/// SDES chunks (RFC 3550 §6.5): `count` chunks of an SSRC/CSRC and items, each list
/// ended by a null octet and null-padded to the next 32-bit boundary; nothing after the
/// last chunk. Positions are relative to `body`, which starts on a 32-bit boundary.
fn check_sdes(body: &[u8], count: u8) -> Result<(), SdesFault> {
    let mut pos = 0usize;
    for _ in 0..count {
        pos += 4;
        if pos > body.len() {
            return Err(SdesFault::ChunkOverrun);
        }
        loop {
            let Some(&item) = body.get(pos) else {
                return Err(SdesFault::MissingEnd);
            };
            if item == 0 {
                let end = (pos + 1).next_multiple_of(4);
                let pad = body.get(pos..end).ok_or(SdesFault::BadPadding)?;
                if pad.iter().any(|&b| b != 0) {
                    return Err(SdesFault::BadPadding);
                }
                pos = end;
                break;
            }
            let Some(&len) = body.get(pos + 1) else {
                return Err(SdesFault::ItemOverrun);
            };
            pos += 2 + usize::from(len);
            if pos > body.len() {
                return Err(SdesFault::ItemOverrun);
            }
        }
    }
    if pos != body.len() {
        return Err(SdesFault::ExtraData);
    }
    Ok(())
}
