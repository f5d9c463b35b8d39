//! The vocabularies of an offer: every value the shield forwards is either a word of a
//! registry below, a number in its range, or an identifier bounded to its grammar.
//!
//! - Format parameters (`a=fmtp`): per codec, each parameter name with a typed value
//!   (a number with its range, an enumeration, hex of a fixed size, base64 parameter
//!   sets, a mode list); telephone-event takes event lists (`0-15,66`), red a
//!   redundancy list (`111/111`). A parameter outside its codec's table, or whose value
//!   is not of its type, is dropped (the whole line when none is left).
//! - `rtcp-fb` feedback types and parameters (RFC 4585, 5104, 8888 and the WebRTC ones
//!   browsers send), `ssrc` attribute names (`cname`, `msid`), `group` and `ssrc-group`
//!   semantics, `ice-options` tokens, candidate transports, types and extensions,
//!   `crypto` suites with their key sizes and session parameters, and the values of the
//!   other allow-listed attributes.

/// The type of a format parameter's value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ty {
    /// `0` or `1`.
    Flag,
    /// A decimal number in a range.
    Num(u64, u64),
    /// One of these words (ASCII case ignored).
    Enum(&'static [&'static str]),
    /// Hex digits, between the two lengths.
    Hex(usize, usize),
    /// Comma-separated base64 items (H.264/H.265 parameter sets), at most this many
    /// characters in all.
    Base64(usize),
    /// Comma-separated mode numbers up to this value (AMR `mode-set`), or `any`.
    Modes(u8),
}

type Spec = &'static [(&'static str, Ty)];

/// What a codec's `fmtp` may say.
pub(crate) enum Params {
    /// Named parameters with typed values.
    Named(Spec),
    /// telephone-event (RFC 4733): bare event lists such as `0-15,66`.
    Events,
    /// red (RFC 2198): a bare redundancy list of payload types such as `111/111`.
    Redundancy,
}

const FLAG: Ty = Ty::Flag;
const U32: Ty = Ty::Num(0, 4_294_967_295);

const OPUS: Spec = &[
    ("maxplaybackrate", Ty::Num(8000, 48000)),
    ("sprop-maxcapturerate", Ty::Num(8000, 48000)),
    ("maxptime", Ty::Num(3, 120)),
    ("ptime", Ty::Num(3, 120)),
    ("minptime", Ty::Num(3, 120)),
    ("maxaveragebitrate", Ty::Num(6000, 510_000)),
    ("stereo", FLAG),
    ("sprop-stereo", FLAG),
    ("cbr", FLAG),
    ("useinbandfec", FLAG),
    ("usedtx", FLAG),
];

const H264: Spec = &[
    ("profile-level-id", Ty::Hex(6, 6)),
    ("max-recv-level", Ty::Hex(4, 4)),
    ("packetization-mode", Ty::Num(0, 2)),
    ("sprop-parameter-sets", Ty::Base64(256)),
    ("sprop-level-parameter-sets", Ty::Base64(256)),
    ("max-mbps", U32),
    ("max-smbps", U32),
    ("max-fs", U32),
    ("max-cpb", U32),
    ("max-dpb", U32),
    ("max-br", U32),
    ("redundant-pic-cap", FLAG),
    ("sprop-deint-buf-req", U32),
    ("sprop-interleaving-depth", Ty::Num(0, 32767)),
    ("sprop-max-don-diff", Ty::Num(0, 32767)),
    ("sprop-init-buf-time", U32),
    ("deint-buf-cap", U32),
    ("max-rcmd-nalu-size", U32),
    ("in-band-parameter-sets", FLAG),
    ("use-level-src-parameter-sets", FLAG),
    ("level-asymmetry-allowed", FLAG),
    ("sar-understood", Ty::Num(0, 255)),
    ("sar-supported", Ty::Num(0, 255)),
];

const H265: Spec = &[
    ("profile-space", Ty::Num(0, 3)),
    ("profile-id", Ty::Num(0, 31)),
    ("tier-flag", FLAG),
    ("level-id", Ty::Num(0, 255)),
    ("interop-constraints", Ty::Hex(12, 12)),
    ("profile-compatibility-indicator", Ty::Hex(8, 8)),
    ("sprop-sub-layer-id", Ty::Num(0, 6)),
    ("recv-sub-layer-id", Ty::Num(0, 6)),
    ("max-recv-level-id", Ty::Num(0, 255)),
    ("tx-mode", Ty::Enum(&["SRST", "MRST", "MRMT"])),
    ("sprop-vps", Ty::Base64(256)),
    ("sprop-sps", Ty::Base64(256)),
    ("sprop-pps", Ty::Base64(256)),
    ("sprop-sei", Ty::Base64(256)),
    ("max-lsr", U32),
    ("max-lps", U32),
    ("max-cpb", U32),
    ("max-dpb", Ty::Num(0, 16)),
    ("max-br", U32),
    ("max-tr", U32),
    ("max-tc", U32),
    ("max-fps", U32),
    ("sprop-max-don-diff", Ty::Num(0, 32767)),
    ("sprop-depack-buf-nalus", Ty::Num(0, 32767)),
    ("sprop-depack-buf-bytes", U32),
    ("depack-buf-cap", U32),
    ("sprop-segmentation-id", Ty::Num(0, 3)),
    ("sprop-spatial-segmentation-idc", Ty::Num(0, 4095)),
];

const AMR: Spec = &[
    ("octet-align", FLAG),
    ("mode-set", Ty::Modes(8)),
    ("mode-change-period", Ty::Num(1, 2)),
    ("mode-change-capability", Ty::Num(1, 2)),
    ("mode-change-neighbor", FLAG),
    ("crc", FLAG),
    ("robust-sorting", FLAG),
    ("interleaving", Ty::Num(0, 63)),
    ("max-red", Ty::Num(0, 65535)),
    ("channels", Ty::Num(1, 6)),
    ("ptime", Ty::Num(10, 400)),
    ("maxptime", Ty::Num(10, 400)),
];

const H263: Spec = &[
    ("sqcif", Ty::Num(1, 32)),
    ("qcif", Ty::Num(1, 32)),
    ("cif", Ty::Num(1, 32)),
    ("cif4", Ty::Num(1, 32)),
    ("cif16", Ty::Num(1, 32)),
    ("maxbr", U32),
    ("bpp", Ty::Num(0, 65536)),
    ("hrd", Ty::Num(0, 1_000_000)),
    ("profile", Ty::Num(0, 10)),
    ("level", Ty::Num(0, 100)),
    ("interlace", FLAG),
    ("f", FLAG),
    ("i", FLAG),
    ("j", FLAG),
    ("t", FLAG),
    ("k", Ty::Num(1, 4)),
    ("n", Ty::Num(1, 4)),
];

const NONE: Spec = &[];

/// The format parameters of a codec, by encoding name; `None` for a codec the registry
/// does not know (the codec filter removes those first).
pub(crate) fn params_of(codec: &str) -> Option<Params> {
    // (the name mostly comes from the registry, spelled as here: one comparison then)
    let lc = |n: &str| codec == n || codec.eq_ignore_ascii_case(n);
    if lc("telephone-event") {
        return Some(Params::Events);
    }
    if lc("red") {
        return Some(Params::Redundancy);
    }
    let spec: Spec = if lc("opus") {
        OPUS
    } else if lc("H264") || lc("H264-SVC") {
        H264
    } else if lc("H265") {
        H265
    } else if lc("VP8") {
        &[("max-fr", Ty::Num(1, 1000)), ("max-fs", U32)]
    } else if lc("VP9") {
        &[
            ("max-fr", Ty::Num(1, 1000)),
            ("max-fs", U32),
            ("profile-id", Ty::Num(0, 3)),
        ]
    } else if lc("AV1") {
        &[
            ("profile", Ty::Num(0, 2)),
            ("level-idx", Ty::Num(0, 31)),
            ("tier", FLAG),
        ]
    } else if lc("rtx") {
        &[("apt", Ty::Num(0, 127)), ("rtx-time", U32)]
    } else if lc("G729") || lc("G729D") || lc("G729E") {
        &[("annexb", Ty::Enum(&["yes", "no"]))]
    } else if lc("G723") {
        &[
            ("annexa", Ty::Enum(&["yes", "no"])),
            ("bitrate", Ty::Enum(&["5.3", "6.3"])),
        ]
    } else if lc("G7221") {
        &[("bitrate", Ty::Enum(&["24000", "32000", "48000"]))]
    } else if lc("iLBC") {
        &[("mode", Ty::Enum(&["20", "30"]))]
    } else if lc("AMR") || lc("AMR-WB") {
        AMR
    } else if lc("speex") {
        &[
            ("mode", Ty::Modes(10)),
            ("vbr", Ty::Enum(&["on", "off", "vad"])),
            ("cng", Ty::Enum(&["on", "off"])),
        ]
    } else if lc("SILK") {
        &[
            ("maxaveragebitrate", Ty::Num(5000, 100_000)),
            ("usedtx", FLAG),
            ("useinbandfec", FLAG),
        ]
    } else if lc("flexfec") || lc("flexfec-03") {
        &[
            ("repair-window", U32),
            ("l", Ty::Num(0, 255)),
            ("d", Ty::Num(0, 255)),
            ("top", Ty::Num(0, 3)),
        ]
    } else if lc("T140") {
        &[("cps", Ty::Num(0, 65535))]
    } else if lc("H261") {
        &[("qcif", Ty::Num(1, 4)), ("cif", Ty::Num(1, 4)), ("d", FLAG)]
    } else if lc("H263") || lc("H263-1998") || lc("H263-2000") {
        H263
    } else if lc("MP4V-ES") {
        &[
            ("profile-level-id", Ty::Num(0, 255)),
            ("config", Ty::Hex(2, 256)),
        ]
    } else if lc("EVS") {
        &[
            ("dtx", FLAG),
            ("dtx-recv", FLAG),
            ("hf-only", FLAG),
            ("evs-mode-switch", FLAG),
            ("max-red", Ty::Num(0, 220)),
        ]
    } else if crate::codecs::lookup(codec).is_some() {
        // Known codecs without named parameters (PCMU, PCMA, G722, L16, MPA, ...): an
        // fmtp on them carries nothing the callee needs.
        NONE
    } else {
        return None;
    };
    Some(Params::Named(spec))
}

/// At most 19 decimal digits (below 10^19: no overflow), without `FromStr`.
fn decimal(v: &str) -> Option<u64> {
    if v.is_empty() || v.len() > 19 {
        return None;
    }
    let mut n = 0u64;
    for b in v.bytes() {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + u64::from(d);
    }
    Some(n)
}

/// `v.split(c)` for an ASCII `c`, by bytes (the `char` pattern's searcher costs more
/// than the short lists split here).
fn split(v: &str, c: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(v);
    std::iter::from_fn(move || {
        let r = rest?;
        match r.bytes().position(|b| b == c) {
            Some(i) => {
                rest = r.get(i + 1..);
                r.get(..i)
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// `v.split_once(c)` for an ASCII `c`, by bytes.
fn split_once(v: &str, c: u8) -> Option<(&str, &str)> {
    let i = v.bytes().position(|b| b == c)?;
    Some((v.get(..i)?, v.get(i + 1..)?))
}

/// How many items `v.split(c)` yields.
fn items(v: &str, c: u8) -> usize {
    v.bytes().filter(|b| *b == c).count() + 1
}

/// Whether `value` is of type `ty`.
pub(crate) fn value_ok(ty: Ty, value: Option<&str>) -> bool {
    let Some(v) = value else {
        return false;
    };
    match ty {
        Ty::Flag => v == "0" || v == "1",
        Ty::Num(lo, hi) => decimal(v).is_some_and(|n| (lo..=hi).contains(&n)),
        Ty::Enum(words) => words.iter().any(|w| w.eq_ignore_ascii_case(v)),
        Ty::Hex(lo, hi) => (lo..=hi).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_hexdigit()),
        Ty::Base64(max) => {
            v.len() <= max
                && v.split(',').all(|item| {
                    !item.is_empty()
                        && item
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
                })
        }
        Ty::Modes(max) => {
            v.eq_ignore_ascii_case("any")
                || v.split(',').count() <= 16
                    && v.split(',').all(|m| {
                        m.eq_ignore_ascii_case("any")
                            || decimal(m).is_some_and(|n| n <= u64::from(max))
                    })
        }
    }
}

/// A telephone-event list (RFC 4733 section 7.1.1): `N` or `N-M` items, events 0-255.
pub(crate) fn events_ok(v: &str) -> bool {
    items(v, b',') <= 16
        && split(v, b',').all(|item| match split_once(item, b'-') {
            Some((a, b)) => match (decimal(a), decimal(b)) {
                (Some(a), Some(b)) => a <= b && b <= 255,
                _ => false,
            },
            None => decimal(item).is_some_and(|n| n <= 255),
        })
}

/// A redundancy list (RFC 2198 section 5): payload types joined by `/`.
pub(crate) fn redundancy_ok(v: &str) -> bool {
    items(v, b'/') <= 8 && split(v, b'/').all(|p| decimal(p).is_some_and(|n| n <= 127))
}

/// `rtcp-fb` values (type and parameters, joined by single spaces) a callee may receive:
/// RFC 4585 (ack, nack, trr-int), RFC 5104 (ccm), RFC 8888 and the WebRTC feedback
/// browsers send (transport-cc, goog-remb, goog-lntf).
pub(crate) fn rtcp_fb_ok(value: &str) -> bool {
    const FIXED: &[&str] = &[
        "ack rpsi",
        "nack",
        "nack pli",
        "nack sli",
        "nack rpsi",
        "ccm fir",
        "ccm tmmbr",
        "ccm tstr",
        "ccm vbcm",
        "goog-remb",
        "transport-cc",
        "goog-lntf",
        "ack",
    ];
    if FIXED.iter().any(|f| f.eq_ignore_ascii_case(value)) {
        return true;
    }
    match value.split_once(' ') {
        Some(("trr-int", n)) => decimal(n).is_some_and(|n| n <= 4_294_967_295),
        _ => false,
    }
}

/// `a=ssrc` attribute names carried (RFC 5576 `cname`, RFC 8830 `msid`).
pub(crate) fn ssrc_attribute_ok(name: &str) -> bool {
    name == "cname" || name == "msid"
}

/// `a=group` semantics (RFC 5888, 8843, 4756, 5956, 5583, 3388).
pub(crate) fn group_ok(semantics: &str) -> bool {
    ["BUNDLE", "LS", "FID", "SRF", "ANAT", "FEC", "FEC-FR", "DDP"].contains(&semantics)
}

/// `a=ssrc-group` semantics (RFC 5576, 5956, 7104, and `SIM` for simulcast).
pub(crate) fn ssrc_group_ok(semantics: &str) -> bool {
    ["FID", "FEC", "FEC-FR", "SIM", "DUP"].contains(&semantics)
}

/// `a=ice-options` tokens (RFC 8840 trickle, RFC 8445 ice2, RFC 6679 rtp+ecn, and the
/// renomination option WebRTC uses).
pub(crate) fn ice_option_ok(token: &str) -> bool {
    ["trickle", "ice2", "rtp+ecn", "renomination"].contains(&token)
}

/// ICE candidate transports and types (RFC 8839, 6544).
pub(crate) fn candidate_transport_ok(t: &str) -> bool {
    t.eq_ignore_ascii_case("udp") || t.eq_ignore_ascii_case("tcp")
}

pub(crate) fn candidate_type_ok(t: &str) -> bool {
    matches!(t, "host" | "srflx" | "prflx" | "relay")
}

/// Candidate extension attributes carried, each with its value's grammar:
/// RFC 6544 `tcptype`, and the WebRTC `generation`, `network-id`, `network-cost` and
/// `ufrag` (an ice-char string of at most 32).
pub(crate) fn candidate_extension_ok(name: &str, value: &str) -> bool {
    match name {
        "tcptype" => matches!(value, "active" | "passive" | "so"),
        "generation" | "network-id" => decimal(value).is_some_and(|n| n <= 65535),
        "network-cost" => decimal(value).is_some_and(|n| n <= 999),
        "ufrag" => ice_chars(value, 4, 32),
        _ => false,
    }
}

/// Whether `v` is made of ice-chars (`ALPHA / DIGIT / "+" / "/"`), within the lengths.
pub(crate) fn ice_chars(v: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// SDES `crypto` suites (RFC 4568, 6188, 7714) and the length of the base64 key
/// (master key and salt) each needs.
pub(crate) fn crypto_key_length(suite: &str) -> Option<usize> {
    Some(match suite {
        "AES_CM_128_HMAC_SHA1_80" | "AES_CM_128_HMAC_SHA1_32" | "F8_128_HMAC_SHA1_80" => 40,
        "AES_192_CM_HMAC_SHA1_80" | "AES_192_CM_HMAC_SHA1_32" => 52,
        "AES_256_CM_HMAC_SHA1_80" | "AES_256_CM_HMAC_SHA1_32" => 64,
        "AEAD_AES_128_GCM" => 40,
        "AEAD_AES_256_GCM" => 60,
        _ => return None,
    })
}

/// One `inline:` key parameter: base64 key of the suite's length, optional lifetime
/// (`2^N` or a number) and MKI (`value:length`).
pub(crate) fn crypto_key_ok(suite: &str, key_params: &str) -> bool {
    let Some(len) = crypto_key_length(suite) else {
        return false;
    };
    // One key per line is what clients send; several are a place to hide bytes.
    let Some(rest) = key_params.strip_prefix("inline:") else {
        return false;
    };
    let mut it = rest.split('|');
    let key_ok = it.next().is_some_and(|k| {
        k.len() == len
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
    });
    let mut n = 0;
    key_ok
        && it.all(|x| {
            n += 1;
            n <= 2
                && (x
                    .strip_prefix("2^")
                    .is_some_and(|e| decimal(e).is_some_and(|e| e <= 64))
                    || decimal(x).is_some()
                    || x.split_once(':').is_some_and(|(v, l)| {
                        decimal(v).is_some() && decimal(l).is_some_and(|l| (1..=128).contains(&l))
                    }))
        })
}

/// `crypto` session parameters carried (RFC 4568 section 6.3).
pub(crate) fn crypto_session_param_ok(p: &str) -> bool {
    match p.split_once('=') {
        None => matches!(
            p,
            "UNENCRYPTED_SRTCP" | "UNENCRYPTED_SRTP" | "UNAUTHENTICATED_SRTP"
        ),
        Some(("KDR", v)) => decimal(v).is_some_and(|n| n <= 24),
        Some(("WSH", v)) => decimal(v).is_some_and(|n| (64..=65535).contains(&n)),
        Some(("FEC_ORDER", v)) => matches!(v, "FEC_SRTP" | "SRTP_FEC"),
        _ => false,
    }
}

/// Values of the allow-listed attributes the SDP parser keeps as name and text
/// (`Attribute::Other`). `None`: an attribute this table does not describe (one an
/// operator added to `shield.sdp_attributes`), left to the generic grammar and the
/// length bound.
pub(crate) fn other_value_ok(name: &str, value: Option<&str>) -> Option<bool> {
    let words = || value.unwrap_or("").split(' ');
    Some(match name {
        "extmap-allow-mixed" | "bundle-only" | "rtcp-mux-only" => value.is_none(),
        "sctp-port" => value.and_then(decimal).is_some_and(|n| n <= 65535),
        "max-message-size" => value.and_then(decimal).is_some_and(|n| n <= 1 << 32),
        "connection" => matches!(value, Some("new" | "existing")),
        "record" => matches!(value, Some("on" | "off" | "paused")),
        "sctpmap" => {
            let w: Vec<&str> = words().collect();
            matches!(w.as_slice(), [p, "webrtc-datachannel", n]
                if decimal(p).is_some_and(|p| p <= 65535) && decimal(n).is_some_and(|n| n <= 65535))
        }
        "zrtp-hash" => {
            let w: Vec<&str> = words().collect();
            matches!(w.as_slice(), [v, h] if matches!(*v, "1.10" | "1.11" | "1.12")
                && h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        }
        "rtcp-xr" => value.is_some_and(|v| v.split(' ').all(rtcp_xr_ok)),
        "rid" => value.is_some_and(rid_ok),
        "simulcast" => value.is_some_and(|v| {
            v.len() <= 128
                && v.split(' ').enumerate().all(|(i, w)| {
                    if i % 2 == 0 {
                        matches!(w, "send" | "recv")
                    } else {
                        w.split([';', ',']).all(|id| {
                            let id = id.strip_prefix('~').unwrap_or(id);
                            !id.is_empty()
                                && id.len() <= 16
                                && id.bytes().all(|b| b.is_ascii_alphanumeric())
                        })
                    }
                })
        }),
        "imageattr" => value.is_some_and(|v| {
            v.len() <= 128
                && v.bytes()
                    .all(|b| b.is_ascii_digit() || b" *[]=,:.-xyqsarpend".contains(&b) || b == b'c')
        }),
        _ => return None,
    })
}

/// RTCP XR report blocks (RFC 3611 section 5.1).
fn rtcp_xr_ok(w: &str) -> bool {
    let (name, val) = match w.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (w, None),
    };
    match name {
        "pkt-loss-rle" | "pkt-dup-rle" | "pkt-rcpt-times" => {
            val.is_none_or(|v| decimal(v).is_some_and(|n| n <= 65535))
        }
        "rcvr-rtt" => val.is_some_and(|v| {
            let (mode, max) = match v.split_once(':') {
                Some((m, n)) => (m, Some(n)),
                None => (v, None),
            };
            matches!(mode, "all" | "sender")
                && max.is_none_or(|n| decimal(n).is_some_and(|n| n <= 4_294_967_295))
        }),
        "stat-summary" => val.is_some_and(|v| {
            v.split(',')
                .all(|s| matches!(s, "loss" | "dup" | "jitt" | "TTL" | "HL"))
        }),
        "voip-metrics" => val.is_none(),
        _ => false,
    }
}

/// RFC 8851 `rid`: `<id> send|recv [restrictions]`.
fn rid_ok(v: &str) -> bool {
    let mut w = v.split(' ');
    let id_ok = w.next().is_some_and(|id| {
        !id.is_empty()
            && id.len() <= 16
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    let dir_ok = w.next().is_some_and(|d| d == "send" || d == "recv");
    let rest_ok = match w.next() {
        None => true,
        Some(r) => r.split(';').all(|p| match p.split_once('=') {
            Some(("pt", list)) => list
                .split(',')
                .all(|x| decimal(x).is_some_and(|n| n <= 127)),
            Some((
                "max-width" | "max-height" | "max-fps" | "max-fs" | "max-br" | "max-pps"
                | "max-bpp",
                n,
            )) => decimal(n).is_some_and(|n| n <= 4_294_967_295),
            _ => false,
        }),
    };
    id_ok && dir_ok && rest_ok && w.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_and_list_readers_agree_with_str() {
        for v in [
            "",
            "0",
            "+0",
            "+",
            "-",
            "-0",
            "1",
            "007",
            "127",
            "255",
            "256",
            "+255",
            "+256",
            "18446744073709551615",
            "9999999999999999999",
            "10000000000000000000",
            "1a",
            " 1",
            "١",
            "0-15",
            "a,,b,",
            ",",
            "/",
            "111/111/",
        ] {
            let old = if v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) {
                None
            } else {
                v.parse::<u64>().ok()
            };
            assert_eq!(decimal(v), old, "{v:?}");
            assert_eq!(crate::body::pt_of(v), v.parse::<u8>().ok(), "{v:?}");
            for c in [',', '/', '-'] {
                assert_eq!(
                    split(v, c as u8).collect::<Vec<_>>(),
                    v.split(c).collect::<Vec<_>>()
                );
                assert_eq!(items(v, c as u8), v.split(c).count());
                assert_eq!(split_once(v, c as u8), v.split_once(c));
            }
        }
    }

    #[test]
    fn typed_values() {
        assert!(value_ok(Ty::Flag, Some("1")));
        assert!(!value_ok(Ty::Flag, Some("2")));
        assert!(!value_ok(Ty::Flag, None));
        assert!(value_ok(Ty::Num(8000, 48000), Some("48000")));
        assert!(!value_ok(Ty::Num(8000, 48000), Some("480000")));
        assert!(!value_ok(Ty::Num(0, 9), Some("x")));
        assert!(value_ok(Ty::Hex(6, 6), Some("42e01f")));
        assert!(!value_ok(Ty::Hex(6, 6), Some("42e01f00")));
        assert!(value_ok(Ty::Base64(256), Some("Z0IACpZTBYmI,aMljiA==")));
        assert!(!value_ok(Ty::Base64(8), Some("Z0IACpZTBYmI")));
        assert!(value_ok(Ty::Modes(8), Some("0,2,5,7")));
        assert!(!value_ok(Ty::Modes(8), Some("0,9")));
        assert!(value_ok(Ty::Enum(&["yes", "no"]), Some("YES")));
        assert!(events_ok("0-15,66,70"));
        assert!(!events_ok("15-0"));
        assert!(!events_ok("0-300"));
        assert!(redundancy_ok("111/111"));
        assert!(!redundancy_ok("111/200"));
    }

    #[test]
    fn vocabularies() {
        assert!(rtcp_fb_ok("nack pli"));
        assert!(rtcp_fb_ok("trr-int 1000"));
        assert!(!rtcp_fb_ok("nack x-cfg"));
        assert!(!rtcp_fb_ok("app QkFTRTY0"));
        assert!(group_ok("BUNDLE") && !group_ok("X-HIDE"));
        assert!(ssrc_group_ok("FID") && !ssrc_group_ok("X"));
        assert!(ice_option_ok("trickle") && !ice_option_ok("x-cfg"));
        assert!(candidate_extension_ok("generation", "0"));
        assert!(!candidate_extension_ok("x-cfg", "1"));
        assert!(crypto_key_ok(
            "AES_CM_128_HMAC_SHA1_80",
            "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4"
        ));
        assert!(!crypto_key_ok(
            "AES_CM_128_HMAC_SHA1_80",
            "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVzWVNf"
        ));
        assert!(!crypto_key_ok("X_SUITE", "inline:WVNf"));
        assert!(crypto_session_param_ok("KDR=1"));
        assert!(!crypto_session_param_ok("X=1"));
        assert_eq!(other_value_ok("record", Some("off")), Some(true));
        assert_eq!(other_value_ok("record", Some("QkFTRTY0")), Some(false));
        assert_eq!(
            other_value_ok(
                "rtcp-xr",
                Some("rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics")
            ),
            Some(true)
        );
        assert_eq!(
            other_value_ok("rid", Some("h send pt=96;max-width=1280")),
            Some(true)
        );
        assert_eq!(other_value_ok("rid", Some("h send x=QkFT")), Some(false));
        assert_eq!(other_value_ok("simulcast", Some("send h;~m;l")), Some(true));
        assert_eq!(other_value_ok("x-operator", Some("1")), None);
    }
}
