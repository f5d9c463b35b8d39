//! Attributes (`a=` lines): the ones real phones and browsers use, each checked against
//! its own grammar; everything else kept as [`Attribute::Other`] for policy to decide.

use std::borrow::Cow;

use crate::scan::{
    cut, dec, first_words, ip, is_token, single_spaced, split, split_words, trim, word,
};

/// The media direction attribute (RFC 8866 section 6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `a=sendrecv`
    SendRecv,
    /// `a=sendonly`
    SendOnly,
    /// `a=recvonly`
    RecvOnly,
    /// `a=inactive`
    Inactive,
}

impl Direction {
    /// The attribute's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

/// RFC 8839 candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// Identifies candidates of the same type, base and server.
    pub foundation: Cow<'a, str>,
    /// The component (1 for RTP, 2 for RTCP).
    pub component: u16,
    /// `UDP` or `TCP`.
    pub transport: Cow<'a, str>,
    /// The candidate's priority.
    pub priority: u32,
    /// Its address (IP or an mDNS `.local` name).
    pub address: Cow<'a, str>,
    /// Its port.
    pub port: u16,
    /// `host`, `srflx`, `prflx` or `relay`.
    pub typ: Cow<'a, str>,
    /// The related address (`raddr`) of a reflexive or relayed candidate.
    pub raddr: Option<Cow<'a, str>>,
    /// The related port (`rport`).
    pub rport: Option<u16>,
    /// Extension attributes (`tcptype`, `generation`, `ufrag`, `network-id`, ...), in order.
    pub extensions: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

/// An `a=` line, typed when the attribute is one this crate knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute<'a> {
    /// `a=rtpmap:<pt> <encoding>/<clock>[/<channels>]` (RFC 8866 section 6.6).
    Rtpmap {
        /// The payload type.
        pt: u8,
        /// The encoding name.
        encoding: Cow<'a, str>,
        /// The clock rate in Hz.
        clock: u32,
        /// Audio channels, when given.
        channels: Option<u8>,
    },
    /// Parameters as `name[=value]` pairs; checked per codec by the parser.
    Fmtp {
        /// The payload type it applies to.
        pt: Cow<'a, str>,
        /// The parameters, in order.
        params: Vec<(Cow<'a, str>, Option<Cow<'a, str>>)>,
    },
    /// `a=ptime`: packet time in milliseconds.
    Ptime(Cow<'a, str>),
    /// `a=maxptime`: the longest packet time in milliseconds.
    MaxPtime(Cow<'a, str>),
    /// `a=sendrecv`, `a=sendonly`, `a=recvonly`, `a=inactive`.
    Direction(Direction),
    /// `a=rtcp` (RFC 3605): the RTCP port, and address when given.
    Rtcp {
        /// The RTCP port.
        port: u16,
        /// The RTCP address (`IN IP4 <addr>`), when given.
        address: Option<Cow<'a, str>>,
    },
    /// `a=rtcp-mux` (RFC 5761).
    RtcpMux,
    /// `a=rtcp-rsize` (RFC 5506).
    RtcpRsize,
    /// `a=rtcp-fb` (RFC 4585): feedback for a payload type (or `*`).
    RtcpFb {
        /// The payload type, or `*`.
        pt: Cow<'a, str>,
        /// The feedback type and its parameters.
        value: Cow<'a, str>,
    },
    /// `a=ice-ufrag` (RFC 8839).
    IceUfrag(Cow<'a, str>),
    /// `a=ice-pwd` (RFC 8839).
    IcePwd(Cow<'a, str>),
    /// `a=ice-options` (RFC 8839).
    IceOptions(Vec<Cow<'a, str>>),
    /// `a=ice-lite` (RFC 8839).
    IceLite,
    /// `a=candidate` (RFC 8839), boxed: it is the largest kind by far, and every
    /// attribute is as large as the largest kind (moving a phone's rtpmap lines cost a
    /// `memcpy` of 160 bytes each).
    Candidate(Box<Candidate<'a>>),
    /// `a=end-of-candidates` (RFC 8840).
    EndOfCandidates,
    /// `a=fingerprint` (RFC 8122): a certificate's hash for DTLS.
    Fingerprint {
        /// The hash function (`sha-256`, ...).
        hash: Cow<'a, str>,
        /// The hash, colon-separated hex.
        value: Cow<'a, str>,
    },
    /// `a=setup` (RFC 4145): `active`, `passive`, `actpass` or `holdconn`.
    Setup(Cow<'a, str>),
    /// `a=mid` (RFC 5888): the media stream's identification.
    Mid(Cow<'a, str>),
    /// `a=group` (RFC 5888), e.g. `BUNDLE`.
    Group {
        /// The grouping semantics.
        semantics: Cow<'a, str>,
        /// The `mid`s grouped.
        ids: Vec<Cow<'a, str>>,
    },
    /// `a=msid` (RFC 8830).
    Msid {
        /// The media stream id.
        id: Cow<'a, str>,
        /// The track id, when given.
        appdata: Option<Cow<'a, str>>,
    },
    /// `a=msid-semantic` (the WebRTC session-level form).
    MsidSemantic(Cow<'a, str>),
    /// `a=ssrc` (RFC 5576): a source attribute.
    Ssrc {
        /// The SSRC.
        id: u32,
        /// The source attribute's name (`cname`, `msid`, ...).
        name: Cow<'a, str>,
        /// Its value, when given.
        value: Option<Cow<'a, str>>,
    },
    /// `a=ssrc-group` (RFC 5576).
    SsrcGroup {
        /// The grouping semantics (`FID`, `SIM`, ...).
        semantics: Cow<'a, str>,
        /// The SSRCs grouped.
        ssrcs: Vec<u32>,
    },
    /// `a=extmap` (RFC 8285): an RTP header extension.
    Extmap {
        /// The extension's local identifier.
        id: u16,
        /// Its direction, when given.
        direction: Option<Cow<'a, str>>,
        /// The extension's URI.
        uri: Cow<'a, str>,
        /// Extension attributes, when given.
        extra: Option<Cow<'a, str>>,
    },
    /// `a=crypto` (RFC 4568): SDES keying.
    Crypto {
        /// The tag that names this line.
        tag: u32,
        /// The crypto suite.
        suite: Cow<'a, str>,
        /// The key parameters (`inline:...`).
        key_params: Cow<'a, str>,
        /// Session parameters, in order.
        session_params: Vec<Cow<'a, str>>,
    },
    /// `a=label` (RFC 4574).
    Label(Cow<'a, str>),
    /// `a=framerate` (RFC 8866 section 6.17).
    Framerate(Cow<'a, str>),
    /// `a=content` (RFC 4796).
    Content(Vec<Cow<'a, str>>),
    /// Any other attribute: name and value as received (whitespace-normalised).
    Other {
        /// The attribute's name.
        name: Cow<'a, str>,
        /// Its value, when it has one.
        value: Option<Cow<'a, str>>,
    },
}

fn token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token)
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit())
}

fn decimal(s: &str) -> bool {
    match cut(s, b'.') {
        Some((a, b)) => digits(a) && digits(b) && a.len() <= 9 && b.len() <= 9,
        None => digits(s) && s.len() <= 9,
    }
}

fn ice_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
}

/// An address in SDP: IPv4, IPv6, or a host name (incl. mDNS `.local` names).
///
/// A dotted quad with an octet above 255 (`999.1.1.1`) is not an IPv4 address, and a
/// name whose last label is not alphabetic-led is not a host name (RFC 1123 section 2.1,
/// RFC 3696 section 2; SIP's `toplabel`): both are refused rather than read as names.
pub(crate) fn address(s: &str) -> bool {
    ip(s).is_some() || host_name(s)
}

/// The host-name half of [`address`] (for a caller that parsed the IP address already).
pub(crate) fn host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.rsplit('.')
            .next()
            .is_some_and(|top| top.bytes().next().is_some_and(|b| b.is_ascii_alphabetic()))
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

fn base64ish(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
}

fn u<T: TryFrom<u64>>(s: &str) -> Option<T> {
    dec(s)
}

/// Parses `a=name[:value]` onto the end of `out`. `Err` carries a fixed reason naming
/// the attribute.
pub(crate) fn parse_attribute<'a>(
    name: &'a str,
    value: Option<&'a str>,
    out: &mut Vec<Attribute<'a>>,
) -> Result<(), &'static str> {
    out.push(typed(name, value)?);
    Ok(())
}

/// The attribute `a=name[:value]` (inlined into its one caller, so that the value is
/// built where it is pushed rather than moved there).
#[inline(always)]
fn typed<'a>(name: &'a str, value: Option<&'a str>) -> Result<Attribute<'a>, &'static str> {
    let flag = |a: Attribute<'a>| -> Result<Attribute<'a>, &'static str> {
        if value.is_none() {
            Ok(a)
        } else {
            Err("this attribute takes no value")
        }
    };
    let v = || value.ok_or("this attribute needs a value");
    // Borrowed words: only what the model keeps becomes a String.
    fn words(s: &str) -> Vec<&str> {
        split_words(s)
    }
    match name {
        "rtpmap" => {
            let (pt, rest) =
                cut(v()?, b' ').ok_or("rtpmap: <pt> <encoding>/<clock>[/<channels>]")?;
            let mut parts = split(trim(rest), b'/');
            let encoding = parts
                .next()
                .filter(|e| token(e))
                .ok_or("rtpmap: bad encoding name")?;
            let clock = parts
                .next()
                .and_then(u::<u32>)
                .filter(|c| *c > 0)
                .ok_or("rtpmap: bad clock rate")?;
            let channels = match parts.next() {
                Some(c) => Some(
                    u::<u8>(c)
                        .filter(|c| *c > 0)
                        .ok_or("rtpmap: bad channel count")?,
                ),
                None => None,
            };
            if parts.next().is_some() {
                return Err("rtpmap: too many fields");
            }
            let pt = u::<u8>(pt)
                .filter(|p| *p <= 127)
                .ok_or("rtpmap: payload type must be 0-127")?;
            Ok(Attribute::Rtpmap {
                pt,
                encoding: encoding.into(),
                clock,
                channels,
            })
        }
        "fmtp" => {
            let (pt, rest) = cut(v()?, b' ').ok_or("fmtp: <format> <parameters>")?;
            if !token(pt) {
                return Err("fmtp: bad format");
            }
            // (sized at once: growing an empty vector costs more than the parse)
            let mut params =
                Vec::with_capacity((rest.bytes().filter(|b| *b == b';').count() + 1).min(64));
            for p in split(rest, b';').map(trim).filter(|p| !p.is_empty()) {
                let (k, val) = match cut(p, b'=') {
                    Some((k, val)) => (trim(k), Some(trim(val))),
                    None => (p, None),
                };
                if params.len() >= 64 {
                    return Err("fmtp: more than 64 parameters");
                }
                // A bare value such as telephone-event's `0-15,16` or RED's `111/111`.
                if !(token(k)
                    || k.bytes()
                        .all(|b| b.is_ascii_digit() || b == b'-' || b == b',' || b == b'/'))
                {
                    return Err("fmtp: bad parameter name");
                }
                if let Some(val) = val {
                    if val.is_empty() || !val.bytes().all(|b| is_token(b) || b",/:=@".contains(&b))
                    {
                        return Err("fmtp: bad parameter value");
                    }
                }
                params.push((k.into(), val.map(Cow::Borrowed)));
            }
            if params.is_empty() {
                return Err("fmtp: no parameters");
            }
            Ok(Attribute::Fmtp {
                pt: pt.into(),
                params,
            })
        }
        "ptime" | "maxptime" => {
            let x = v()?;
            if !decimal(x) {
                return Err("ptime/maxptime: milliseconds expected");
            }
            Ok(if name == "ptime" {
                Attribute::Ptime(x.into())
            } else {
                Attribute::MaxPtime(x.into())
            })
        }
        "sendrecv" => flag(Attribute::Direction(Direction::SendRecv)),
        "sendonly" => flag(Attribute::Direction(Direction::SendOnly)),
        "recvonly" => flag(Attribute::Direction(Direction::RecvOnly)),
        "inactive" => flag(Attribute::Direction(Direction::Inactive)),
        "rtcp" => {
            let x = v()?;
            let ([p, net, at, addr], n) = first_words::<4>(x);
            let port = if n > 0 { u::<u16>(p) } else { None }.ok_or("rtcp: bad port")?;
            let address = match n {
                1 => None,
                4 if net == "IN" && (at == "IP4" || at == "IP6") && address(addr) => {
                    Some(match single_spaced(x) {
                        // `<port> IN IP4 <address>` as written: the text after the port
                        Cow::Borrowed(_) => Cow::Borrowed(cut(x, b' ').map_or("", |(_, t)| t)),
                        Cow::Owned(_) => {
                            let mut a =
                                String::with_capacity(net.len() + at.len() + addr.len() + 2);
                            a.push_str(net);
                            a.push(' ');
                            a.push_str(at);
                            a.push(' ');
                            a.push_str(addr);
                            Cow::Owned(a)
                        }
                    })
                }
                _ => return Err("rtcp: <port> [IN IP4|IP6 <address>]"),
            };
            Ok(Attribute::Rtcp { port, address })
        }
        "rtcp-mux" => flag(Attribute::RtcpMux),
        "rtcp-rsize" => flag(Attribute::RtcpRsize),
        "rtcp-fb" => {
            let (pt, rest) = cut(v()?, b' ').ok_or("rtcp-fb: <pt|*> <feedback>")?;
            if !(pt == "*" || u::<u8>(pt).is_some_and(|p| p <= 127)) {
                return Err("rtcp-fb: bad payload type");
            }
            let (w, n) = first_words::<4>(rest);
            if n == 0 || n > 4 || !w.iter().take(n).all(|x| token(x)) {
                return Err("rtcp-fb: bad feedback value");
            }
            Ok(Attribute::RtcpFb {
                pt: pt.into(),
                value: single_spaced(rest),
            })
        }
        "ice-ufrag" | "ice-pwd" => {
            let x = v()?;
            let min = if name == "ice-ufrag" { 4 } else { 22 };
            if x.len() < min || x.len() > 256 || !x.bytes().all(ice_char) {
                return Err("ice-ufrag/ice-pwd: 4 (ufrag) or 22 (pwd) to 256 ice-chars");
            }
            Ok(if name == "ice-ufrag" {
                Attribute::IceUfrag(x.into())
            } else {
                Attribute::IcePwd(x.into())
            })
        }
        "ice-options" => {
            let w = words(v()?);
            if w.is_empty()
                || !w
                    .iter()
                    .all(|x| x.bytes().all(|b| ice_char(b) || b == b'-' || b == b'.'))
            {
                return Err("ice-options: bad option tag");
            }
            Ok(Attribute::IceOptions(
                w.into_iter().map(Cow::Borrowed).collect(),
            ))
        }
        "ice-lite" => flag(Attribute::IceLite),
        "candidate" => parse_candidate(v()?).map(|c| Attribute::Candidate(Box::new(c))),
        "end-of-candidates" => flag(Attribute::EndOfCandidates),
        "fingerprint" => {
            let (hash, val) =
                cut(v()?, b' ').ok_or("fingerprint: <hash-function> <hex:hex:...>")?;
            // Copied only when the case changes.
            let hash: Cow<'a, str> = if hash.bytes().any(|b| b.is_ascii_uppercase()) {
                Cow::Owned(hash.to_ascii_lowercase())
            } else {
                Cow::Borrowed(hash)
            };
            let bytes = match hash.as_ref() {
                "sha-1" => 20,
                "sha-224" => 28,
                "sha-256" => 32,
                "sha-384" => 48,
                "sha-512" => 64,
                "md5" => 16,
                _ => return Err("fingerprint: unknown hash function"),
            };
            let val = val.trim();
            // hex pairs joined by ':' (checked without collecting the pairs)
            if val.len() != bytes * 3 - 1
                || !split(val, b':')
                    .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                return Err("fingerprint: wrong length or not hex pairs");
            }
            Ok(Attribute::Fingerprint {
                hash,
                value: if val.bytes().any(|b| b.is_ascii_lowercase()) {
                    Cow::Owned(val.to_ascii_uppercase())
                } else {
                    Cow::Borrowed(val)
                },
            })
        }
        "setup" => match v()? {
            x @ ("active" | "passive" | "actpass" | "holdconn") => Ok(Attribute::Setup(x.into())),
            _ => Err("setup: active, passive, actpass or holdconn"),
        },
        "mid" => {
            let x = v()?;
            if x.len() > 64 || !token(x) {
                return Err("mid: a token of at most 64 characters");
            }
            Ok(Attribute::Mid(x.into()))
        }
        "group" => {
            let mut w = words(v()?);
            if w.is_empty() || !w.iter().all(|x| token(x) && x.len() <= 64) {
                return Err("group: <semantics> *(SP <mid>)");
            }
            let semantics = w.remove(0).into();
            Ok(Attribute::Group {
                semantics,
                ids: w.into_iter().map(Cow::Borrowed).collect(),
            })
        }
        "msid" => {
            let ([id, appdata], n) = first_words::<2>(v()?);
            if n == 0
                || n > 2
                || ![id, appdata]
                    .iter()
                    .take(n)
                    .all(|x| x.len() <= 64 && token(x))
            {
                return Err("msid: <id> [<appdata>], tokens of at most 64 characters");
            }
            Ok(Attribute::Msid {
                id: id.into(),
                appdata: (n == 2).then_some(Cow::Borrowed(appdata)),
            })
        }
        "msid-semantic" => {
            let x = v()?.trim();
            if x.is_empty() || x.len() > 128 || !x.bytes().all(|b| is_token(b) || b == b' ') {
                return Err("msid-semantic: tokens expected");
            }
            Ok(Attribute::MsidSemantic(single_spaced(x)))
        }
        "ssrc" => {
            let (id, rest) = cut(v()?, b' ').ok_or("ssrc: <ssrc-id> <attribute>[:<value>]")?;
            let id = u::<u32>(id).ok_or("ssrc: id must be a 32-bit number")?;
            let (n, val) = match cut(rest, b':') {
                Some((n, val)) => (n, Some(val)),
                None => (rest, None),
            };
            if !token(n) {
                return Err("ssrc: bad attribute name");
            }
            if let Some(val) = val {
                if val.is_empty()
                    || val.len() > 256
                    || !val.bytes().all(|b| (0x21..0x7f).contains(&b) || b == b' ')
                {
                    return Err("ssrc: bad attribute value");
                }
            }
            Ok(Attribute::Ssrc {
                id,
                name: n.into(),
                value: val.map(Cow::Borrowed),
            })
        }
        "ssrc-group" => {
            let mut w = words(v()?);
            if w.len() < 2 || !token(word(&w, 0)) {
                return Err("ssrc-group: <semantics> <ssrc>...");
            }
            let semantics = w.remove(0).into();
            let ssrcs = w
                .iter()
                .map(|x| u::<u32>(x))
                .collect::<Option<Vec<_>>>()
                .ok_or("ssrc-group: ssrc ids must be 32-bit numbers")?;
            Ok(Attribute::SsrcGroup { semantics, ssrcs })
        }
        "extmap" => {
            let ([first, uri, extra], n) = first_words::<3>(v()?);
            if !(2..=3).contains(&n) {
                return Err("extmap: <id>[/<direction>] <uri> [<attributes>]");
            }
            let extra = (n == 3).then_some(extra);
            let (id, direction) = match cut(first, b'/') {
                Some((i, d)) => (i, Some(d)),
                None => (first, None),
            };
            let id = u::<u16>(id)
                .filter(|i| (1..=255).contains(i))
                .ok_or("extmap: id must be 1-255")?;
            if direction
                .is_some_and(|d| !matches!(d, "sendrecv" | "sendonly" | "recvonly" | "inactive"))
            {
                return Err("extmap: bad direction");
            }
            if uri.len() > 256
                || !uri.contains(':')
                || !uri.bytes().all(|b| (0x21..0x7f).contains(&b) && b != b'"')
            {
                return Err("extmap: bad URI");
            }
            if extra.is_some_and(|x| !x.bytes().all(is_token)) {
                return Err("extmap: bad extension attributes");
            }
            Ok(Attribute::Extmap {
                id,
                direction: direction.map(Cow::Borrowed),
                uri: uri.into(),
                extra: extra.map(Cow::Borrowed),
            })
        }
        "crypto" => {
            let w = words(v()?);
            if w.len() < 3 {
                return Err("crypto: <tag> <suite> <key-params> [<session-params>]");
            }
            let tag = u::<u32>(word(&w, 0))
                .filter(|t| *t < 1_000_000_000)
                .ok_or("crypto: tag must be 1-9 digits")?;
            if !word(&w, 1)
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                return Err("crypto: bad suite");
            }
            for kp in word(&w, 2).split(';') {
                let Some(rest) = kp.strip_prefix("inline:") else {
                    return Err("crypto: key-params must be inline:<key>");
                };
                let mut it = rest.split('|');
                if !it.next().is_some_and(base64ish) {
                    return Err("crypto: key must be base64");
                }
                for extra in it {
                    if extra.is_empty()
                        || !extra
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'^' || b == b':')
                    {
                        return Err("crypto: bad lifetime or MKI");
                    }
                }
            }
            if !w
                .get(3..)
                .unwrap_or_default()
                .iter()
                .all(|x| x.bytes().all(|b| is_token(b) || b == b'=' || b == b','))
            {
                return Err("crypto: bad session parameter");
            }
            Ok(Attribute::Crypto {
                tag,
                suite: word(&w, 1).into(),
                key_params: word(&w, 2).into(),
                session_params: w
                    .get(3..)
                    .unwrap_or_default()
                    .iter()
                    .map(|x| Cow::Borrowed(*x))
                    .collect(),
            })
        }
        "label" => {
            let x = v()?;
            if x.len() > 64 || !token(x) {
                return Err("label: a token of at most 64 characters");
            }
            Ok(Attribute::Label(x.into()))
        }
        "framerate" => {
            let x = v()?;
            if !decimal(x) {
                return Err("framerate: a number");
            }
            Ok(Attribute::Framerate(x.into()))
        }
        "content" => {
            let list: Vec<Cow<'a, str>> =
                v()?.split(',').map(|x| Cow::Borrowed(x.trim())).collect();
            if !list.iter().all(|x| token(x)) {
                return Err("content: comma-separated tokens");
            }
            Ok(Attribute::Content(list))
        }
        _ => {
            if !token(name) {
                return Err("attribute name must be a token");
            }
            Ok(Attribute::Other {
                name: name.into(),
                value: value.map(|x| {
                    // whitespace-normalised; borrowed when it already is
                    if !x.contains("  ") && !x.starts_with(' ') && !x.ends_with(' ') {
                        return Cow::Borrowed(x);
                    }
                    let mut out = String::with_capacity(x.len());
                    for w in x.split(' ').filter(|w| !w.is_empty()) {
                        if !out.is_empty() {
                            out.push(' ');
                        }
                        out.push_str(w);
                    }
                    Cow::Owned(out)
                }),
            })
        }
    }
}

fn parse_candidate(s: &str) -> Result<Candidate<'_>, &'static str> {
    let w = split_words(s);
    if w.len() < 8 || word(&w, 6) != "typ" {
        return Err("candidate: <foundation> <component> <transport> <priority> <address> <port> typ <type> ...");
    }
    if word(&w, 0).is_empty() || word(&w, 0).len() > 32 || !word(&w, 0).bytes().all(ice_char) {
        return Err("candidate: bad foundation");
    }
    let component = u::<u16>(word(&w, 1))
        .filter(|c| (1..=256).contains(c))
        .ok_or("candidate: component must be 1-256")?;
    if !token(word(&w, 2)) {
        return Err("candidate: bad transport");
    }
    let priority = u::<u32>(word(&w, 3)).ok_or("candidate: priority must be a 32-bit number")?;
    if !address(word(&w, 4)) {
        return Err("candidate: bad address");
    }
    let port = u::<u16>(word(&w, 5)).ok_or("candidate: bad port")?;
    if !token(word(&w, 7)) {
        return Err("candidate: bad type");
    }
    let mut c = Candidate {
        foundation: word(&w, 0).into(),
        component,
        transport: word(&w, 2).into(),
        priority,
        address: word(&w, 4).into(),
        port,
        typ: word(&w, 7).into(),
        raddr: None,
        rport: None,
        extensions: Vec::new(),
    };
    let mut i = 8;
    while i < w.len() {
        let Some(val) = w.get(i + 1) else {
            return Err("candidate: extension without a value");
        };
        match word(&w, i) {
            "raddr" if c.raddr.is_none() && address(val) => c.raddr = Some((*val).into()),
            "rport" if c.rport.is_none() => {
                c.rport = Some(u::<u16>(val).ok_or("candidate: bad rport")?)
            }
            n if token(n)
                && val.bytes().all(|b| (0x21..0x7f).contains(&b))
                && c.extensions.len() < 16 =>
            {
                c.extensions.push((n.into(), (*val).into()))
            }
            _ => return Err("candidate: bad extension attribute"),
        }
        i += 2;
    }
    Ok(c)
}
