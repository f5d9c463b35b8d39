//! The RTP payload formats a callee may be offered: a registry of encoding names (the
//! IANA RTP payload media types real clients use) with the clock rates each may run at
//! (their format parameters are typed in [`crate::vocab`]).
//!
//! An `rtpmap` whose encoding is not here, or that runs at a clock rate its codec does
//! not, is not carried: the format is removed from the `m=` line together with its
//! `rtpmap`, `fmtp` and `rtcp-fb` lines (or the offer is refused, per
//! `shield.unknown_codecs`). An `fmtp` on a codec that defines no parameters (PCMU, PCMA,
//! G722, GSM, ...) is dropped. A media section left without any format is refused (488).
//! Static payload types (RFC 3551) without an `rtpmap` keep their registered meaning.

/// One known encoding.
pub(crate) struct Codec {
    /// The encoding name, compared ignoring ASCII case.
    pub name: &'static str,
    /// Clock rates it may use; empty: any (formats whose rate follows another's, e.g. rtx
    /// and red, or that exist at many rates, e.g. telephone-event).
    pub clocks: &'static [u32],
}

const fn c(name: &'static str, clocks: &'static [u32]) -> Codec {
    Codec { name, clocks }
}

const NB: &[u32] = &[8000];
const VIDEO: &[u32] = &[90000];

/// Audio and video encodings of the IANA "RTP Payload Format media types" registry that
/// SIP and WebRTC clients use, the ones offers carry most first ([`lookup`] goes down
/// the list).
pub(crate) const CODECS: &[Codec] = &[
    c("PCMU", NB),
    c("PCMA", NB),
    c("telephone-event", &[]),
    c("G722", NB),
    c("opus", &[48000]),
    c("G729", NB),
    c("CN", &[8000, 16000, 32000, 48000]),
    c("red", &[]),
    c("rtx", &[]),
    c("VP8", VIDEO),
    c("H264", VIDEO),
    c("VP9", VIDEO),
    c("AV1", VIDEO),
    c("ulpfec", VIDEO),
    c("flexfec-03", VIDEO),
    c("iLBC", NB),
    c("GSM", NB),
    c("speex", &[8000, 16000, 32000]),
    c("AMR", NB),
    c("AMR-WB", &[16000]),
    c("EVS", &[16000]),
    c("SILK", &[8000, 12000, 16000, 24000]),
    c("G723", NB),
    c("G728", NB),
    c("G729D", NB),
    c("G729E", NB),
    c("G726-16", NB),
    c("G726-24", NB),
    c("G726-32", NB),
    c("G726-40", NB),
    c("G7221", &[16000, 32000]),
    c("GSM-EFR", NB),
    c("L16", &[8000, 11025, 16000, 22050, 32000, 44100, 48000]),
    c("LPC", NB),
    c("DVI4", &[8000, 11025, 16000, 22050]),
    c("QCELP", NB),
    c("MPA", VIDEO),
    c("flexfec", VIDEO),
    c("H261", VIDEO),
    c("H263", VIDEO),
    c("H263-1998", VIDEO),
    c("H263-2000", VIDEO),
    c("H264-SVC", VIDEO),
    c("H265", VIDEO),
    c("MP4V-ES", VIDEO),
    c("JPEG", VIDEO),
    c("T140", &[1000]),
];

/// The registered encoding of a static payload type (RFC 3551 section 6).
pub(crate) fn static_encoding(pt: u8) -> Option<&'static str> {
    Some(match pt {
        0 => "PCMU",
        3 => "GSM",
        4 => "G723",
        5 | 6 | 16 | 17 => "DVI4",
        7 => "LPC",
        8 => "PCMA",
        9 => "G722",
        10 | 11 => "L16",
        12 => "QCELP",
        13 => "CN",
        14 => "MPA",
        15 => "G728",
        18 => "G729",
        25 => "CelB",
        26 => "JPEG",
        28 => "nv",
        31 => "H261",
        32 => "MPV",
        33 => "MP2T",
        34 => "H263",
        _ => return None,
    })
}

/// RTP header extensions a callee may be offered (`a=extmap`): the IANA RTP Compact
/// Header Extensions registry (RFC 8285) and the WebRTC extensions browsers send. Any
/// other URI is dropped with its id.
pub(crate) const EXTMAP_URIS: &[&str] = &[
    "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    "urn:ietf:params:rtp-hdrext:csrc-audio-level",
    "urn:ietf:params:rtp-hdrext:toffset",
    "urn:ietf:params:rtp-hdrext:ntp-64",
    "urn:ietf:params:rtp-hdrext:ntp-56",
    "urn:ietf:params:rtp-hdrext:sdes:mid",
    "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
    "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
    "urn:ietf:params:rtp-hdrext:sdes:cname",
    "urn:ietf:params:rtp-hdrext:framemarking",
    "urn:3gpp:video-orientation",
    "urn:3gpp:video-orientation:6",
    "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time",
    "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
    "http://www.webrtc.org/experiments/rtp-hdrext/video-content-type",
    "http://www.webrtc.org/experiments/rtp-hdrext/video-timing",
    "http://www.webrtc.org/experiments/rtp-hdrext/color-space",
    "http://www.webrtc.org/experiments/rtp-hdrext/video-layers-allocation00",
    "http://www.webrtc.org/experiments/rtp-hdrext/generic-frame-descriptor-00",
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-02",
    "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension",
];

pub(crate) fn extmap_known(uri: &str) -> bool {
    EXTMAP_URIS.iter().any(|u| u.eq_ignore_ascii_case(uri))
}

pub(crate) fn lookup(encoding: &str) -> Option<&'static Codec> {
    CODECS.get(position(encoding)?)
}

// (a place in the list fits a byte, with `u8::MAX` left to mean none)
const _: () = assert!(CODECS.len() < u8::MAX as usize);

/// Where `encoding` is in [`CODECS`].
pub(crate) fn position(encoding: &str) -> Option<usize> {
    // (length and first letter, case folded, before the name: most entries differ
    // there; offers mostly spell a name as the registry does: one comparison then)
    let first = encoding.as_bytes().first()? | 0x20;
    CODECS.iter().position(|c| {
        c.name.len() == encoding.len()
            && c.name.as_bytes().first().is_some_and(|b| b | 0x20 == first)
            && (c.name == encoding || c.name.eq_ignore_ascii_case(encoding))
    })
}

impl Codec {
    /// Whether it runs at `clock`.
    pub(crate) fn runs_at(&self, clock: u32) -> bool {
        self.clocks.is_empty() || self.clocks.contains(&clock)
    }
}

/// Whether an `rtpmap` names a known codec at a clock rate it uses.
#[cfg(test)]
fn known(encoding: &str, clock: u32) -> bool {
    lookup(encoding).is_some_and(|c| c.runs_at(clock))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_knows_what_real_clients_offer_and_nothing_made_up() {
        for (e, clock) in [
            ("PCMU", 8000),
            ("pcma", 8000),
            ("opus", 48000),
            ("telephone-event", 48000),
            ("telephone-event", 8000),
            ("SILK", 16000),
            ("H264", 90000),
            ("VP8", 90000),
            ("rtx", 90000),
            ("red", 48000),
            ("ulpfec", 90000),
            ("AV1", 90000),
            ("G729", 8000),
        ] {
            assert!(known(e, clock), "{e}/{clock}");
        }
        for (e, clock) in [
            ("opus", 8000),
            ("PCMU", 16000),
            ("VP8", 8000),
            ("QkFTRTY0SElEREVOTUFSS0VS", 8000),
            ("x-cfg", 8000),
        ] {
            assert!(!known(e, clock), "{e}/{clock}");
        }
        // (names are unique, so the list's order only decides how fast a lookup is)
        for (i, a) in CODECS.iter().enumerate() {
            assert!(CODECS[i + 1..]
                .iter()
                .all(|b| !a.name.eq_ignore_ascii_case(b.name)));
        }
        assert_eq!(static_encoding(0), Some("PCMU"));
        assert_eq!(static_encoding(96), None);
        assert!(extmap_known("urn:ietf:params:rtp-hdrext:sdes:mid"));
        assert!(!extmap_known("urn:x-QkFTRTY0SElEREVOTUFSS0VS"));
    }
}
