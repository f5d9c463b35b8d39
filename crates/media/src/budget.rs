//! Packet-rate and bandwidth budgets: two token buckets per stream component, and the
//! helper that derives a budget from what was negotiated.
//!
//! Buckets count in thousandths of a token so that a rate in units per second refills
//! by exactly `rate` thousandths per millisecond: integer arithmetic, no drift, no
//! floating point on the packet path.

use std::time::{Duration, Instant};

/// Default burst: how long a stream may send at the full rate after being silent, in
/// milliseconds (2 s absorbs the bunching of Wi-Fi retransmissions and jitter bursts).
pub const DEFAULT_BURST_MS: u32 = 2000;

/// A stream's allowance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Sustained packets per second.
    pub packets_per_s: u32,
    /// Sustained bytes per second (whole datagrams).
    pub bytes_per_s: u32,
    /// Bucket depth, as milliseconds at the sustained rates.
    pub burst_ms: u32,
}

impl Budget {
    /// What an RTCP component gets by default: 50 packets/s (RFC 4585 feedback can be
    /// frequent) and 64 kB/s, far above RFC 3550's 5 % of any audio session.
    pub const RTCP: Budget = Budget {
        packets_per_s: 50,
        bytes_per_s: 64_000,
        burst_ms: DEFAULT_BURST_MS,
    };
}

/// Audio or video, for [`derive_budget`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaKind {
    /// `m=audio`.
    Audio,
    /// `m=video`.
    Video,
}

/// One negotiated codec (from `a=rtpmap`, or the static table of RFC 3551).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodecInfo<'a> {
    /// Payload type.
    pub payload_type: u8,
    /// Encoding name as in `a=rtpmap` (case-insensitive), e.g. `PCMU`, `opus`.
    pub name: &'a str,
    /// Clock rate in Hz.
    pub clock_rate: u32,
    /// Channels (1 when absent).
    pub channels: u8,
}

/// Headroom over the derived peak: the budget polices floods, not codecs, so a
/// legitimate stream must never meet it.
const HEADROOM: u32 = 2;
/// Per-packet overhead counted besides the codec's payload: RTP header (12), a generous
/// extension (32), SRTP tag and MKI (20).
const PACKET_OVERHEAD: u32 = 64;
/// Packets per second allowed besides the media itself (DTMF events, comfort noise).
const EXTRA_PACKETS: u32 = 50;

/// Highest bit rate (bits/s) of a codec by name; `None` when unknown.
fn codec_bit_rate(c: &CodecInfo<'_>) -> Option<u32> {
    let name = c.name;
    let is = |n: &str| name.eq_ignore_ascii_case(n);
    let channels = u32::from(c.channels.max(1));
    Some(if is("PCMU") || is("PCMA") || is("G722") {
        64_000 * channels
    } else if is("L16") {
        c.clock_rate.saturating_mul(16).saturating_mul(channels)
    } else if is("L8") {
        c.clock_rate.saturating_mul(8).saturating_mul(channels)
    } else if is("G729") || is("G729A") || is("G729B") {
        8_000
    } else if is("GSM") {
        13_200
    } else if is("iLBC") {
        15_200
    } else if is("speex") {
        44_200
    } else if is("AMR") {
        12_200
    } else if is("AMR-WB") {
        23_850
    } else if is("EVS") {
        128_000
    } else if is("opus") {
        510_000
    } else if is("telephone-event") || is("CN") || is("red") || is("ulpfec") {
        0
    } else {
        return None;
    })
}

/// A budget for one stream from its negotiated codecs, packet time and bandwidth
/// (`b=AS`/`b=TIAS` in kbit/s), with twice the derived peak.
///
/// Audio: packets/s from the packet time (10 ms when not given, the shortest common
/// one), bytes/s from the fastest known codec (256 kbit/s for an unknown one) plus
/// per-packet overhead. Video: from the bandwidth line, else 8 Mbit/s, and 1000
/// packets/s. Comfort noise and DTMF add 50 packets/s. The result never falls
/// below what a 10 ms G.711 stream needs.
pub fn derive_budget(
    kind: MediaKind,
    codecs: &[CodecInfo<'_>],
    ptime_ms: Option<u32>,
    bandwidth_kbps: Option<u32>,
) -> Budget {
    let signalled = bandwidth_kbps.map_or(0, |k| k.saturating_mul(1000));
    let (packets, bits) = match kind {
        MediaKind::Audio => {
            let ptime = ptime_ms.unwrap_or(10).clamp(1, 1000);
            let codec = codecs
                .iter()
                .map(|c| codec_bit_rate(c).unwrap_or(256_000))
                .max()
                .unwrap_or(256_000);
            (1000 / ptime, codec.max(signalled))
        }
        MediaKind::Video => (1000, if signalled > 0 { signalled } else { 8_000_000 }),
    };
    let packets = packets.max(100).saturating_add(EXTRA_PACKETS);
    let bytes = (bits / 8).saturating_add(packets.saturating_mul(PACKET_OVERHEAD));
    Budget {
        packets_per_s: packets.saturating_mul(HEADROOM),
        bytes_per_s: bytes.saturating_mul(HEADROOM),
        burst_ms: DEFAULT_BURST_MS,
    }
}

/// One token bucket, in thousandths of a token.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    rate: u64,
    capacity: u64,
    level: u64,
}

impl Bucket {
    fn new(per_s: u32, burst_ms: u32) -> Self {
        let capacity = u64::from(per_s)
            .saturating_mul(u64::from(burst_ms.max(1)))
            .max(1000);
        Self {
            rate: u64::from(per_s),
            capacity,
            level: capacity,
        }
    }

    fn refill(&mut self, ms: u64) {
        self.level = self
            .level
            .saturating_add(self.rate.saturating_mul(ms))
            .min(self.capacity);
    }
}

/// A [`Budget`] being spent: a packet bucket and a byte bucket refilled together.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Meter {
    packets: Bucket,
    bytes: Bucket,
    last: Instant,
}

impl Meter {
    pub(crate) fn new(budget: Budget, now: Instant) -> Self {
        Self {
            packets: Bucket::new(budget.packets_per_s, budget.burst_ms),
            bytes: Bucket::new(budget.bytes_per_s, budget.burst_ms),
            last: now,
        }
    }

    /// Whether a datagram of `len` bytes fits now; if so, it is charged. A refused
    /// datagram costs nothing (a flood does not starve the stream's later packets any
    /// more than the flood's accepted part does).
    pub(crate) fn admit(&mut self, now: Instant, len: usize) -> Result<(), Over> {
        let elapsed = now.saturating_duration_since(self.last);
        let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        if ms > 0 {
            self.packets.refill(ms);
            self.bytes.refill(ms);
            // keep the sub-millisecond remainder for the next refill
            self.last = self
                .last
                .checked_add(Duration::from_millis(ms))
                .unwrap_or(now);
        }
        let bytes = u64::try_from(len).unwrap_or(u64::MAX).saturating_mul(1000);
        if self.packets.level < 1000 {
            return Err(Over::Packets);
        }
        if self.bytes.level < bytes {
            return Err(Over::Bytes);
        }
        self.packets.level -= 1000;
        self.bytes.level -= bytes;
        Ok(())
    }
}

/// Which bucket was empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Over {
    Packets,
    Bytes,
}
