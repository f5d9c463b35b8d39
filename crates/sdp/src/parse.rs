//! The line parser: RFC 8866 order rules, bounds, and per-codec fmtp checks.
use crate::attr::{address, host_name, parse_attribute, Attribute};
use crate::model::{Bandwidth, Connection, Media, Origin, Session, Timing};
use crate::scan::{count_lines, cut, dec, fields, ip, is_token, line_end, split};

use std::borrow::Cow;
/// Bounds on a session description, each with a config key (`sdp.<field>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest body (`sdp.max_body_size`, default 16384).
    pub max_body_size: usize,
    /// Most lines (`sdp.max_lines`, default 512).
    pub max_lines: usize,
    /// Longest line (`sdp.max_line_length`, default 1024).
    pub max_line_length: usize,
    /// Most media sections (`sdp.max_media`, default 16).
    pub max_media: usize,
    /// Most formats on one m= line (`sdp.max_formats`, default 64).
    pub max_formats: usize,
    /// Most attributes in one section (`sdp.max_attributes`, default 256).
    pub max_attributes: usize,
    /// Most candidates in the whole description (`sdp.max_candidates`, default 64).
    pub max_candidates: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_size: 16_384,
            max_lines: 512,
            max_line_length: 1024,
            max_media: 16,
            max_formats: 64,
            max_attributes: 256,
            max_candidates: 64,
        }
    }
}

/// Why a description was refused: the 1-based line and a fixed reason (a limit's key,
/// or the grammar rule that failed). Never echoes the offending bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SDP line {line}: {reason}")]
pub struct SdpError {
    /// The 1-based line of the description.
    pub line: usize,
    /// What was wrong (a limit's key or the rule that failed).
    pub reason: String,
}

fn err(line: usize, reason: impl Into<String>) -> SdpError {
    SdpError {
        line,
        reason: reason.into(),
    }
}

/// The error for a bound: it names the limit's configuration key.
fn limit(line: usize, key: &str, max: usize) -> SdpError {
    err(line, format!("limit {key} exceeded (maximum {max})"))
}

fn connection(v: &str, line: usize) -> Result<Connection<'_>, SdpError> {
    let Some(([net, at, a], _)) = fields::<3>(v, false)
        .filter(|([net, at, _], _)| *net == "IN" && (*at == "IP4" || *at == "IP6"))
    else {
        return Err(err(line, "c=: IN IP4|IP6 <address>"));
    };
    let (addr, slash) = match cut(a, b'/') {
        Some((addr, rest)) => (addr, Some(rest)),
        None => (a, None),
    };
    // One parse of the address answers both questions (an address? multicast?).
    let ip = ip(addr);
    if ip.is_none() && !host_name(addr) {
        return Err(err(line, "c=: bad address"));
    }
    let multicast = ip.is_some_and(|ip| ip.is_multicast());
    let ttl = |t: &str| dec::<u8>(t).ok_or_else(|| err(line, "c=: bad TTL"));
    let count = |c: &str| {
        dec::<u32>(c)
            .filter(|c| *c > 0)
            .ok_or_else(|| err(line, "c=: bad address count"))
    };
    let (ttl, count) = match slash {
        None => (None, None),
        Some(r) if multicast => match (at, cut(r, b'/')) {
            ("IP4", None) => (Some(ttl(r)?), None),
            ("IP4", Some((t, c))) if !c.contains('/') => (Some(ttl(t)?), Some(count(c)?)),
            ("IP6", None) => (None, Some(count(r)?)),
            _ => return Err(err(line, "c=: /ttl and /count only on multicast addresses")),
        },
        Some(_) => return Err(err(line, "c=: /ttl and /count only on multicast addresses")),
    };
    Ok(Connection {
        nettype: net.into(),
        addrtype: at.into(),
        address: addr.into(),
        ttl,
        count,
    })
}

fn bandwidth(v: &str, line: usize) -> Result<Bandwidth<'_>, SdpError> {
    let (t, n) = cut(v, b':').ok_or_else(|| err(line, "b=: <bwtype>:<bandwidth>"))?;
    if t.is_empty() || !t.bytes().all(is_token) {
        return Err(err(line, "b=: bad bandwidth type"));
    }
    Ok(Bandwidth {
        bwtype: t.into(),
        value: dec(n).ok_or_else(|| err(line, "b=: bandwidth must be a number"))?,
    })
}

#[derive(PartialEq, Eq, PartialOrd, Ord, Clone, Copy)]
enum Stage {
    V,
    O,
    S,
    /// `s=` seen: the optional session lines may follow.
    AfterS,
    I,
    U,
    E,
    P,
    C,
    B,
    T,
    Z,
    K,
    A,
}

/// Parses a session description. Lines may end in CRLF or LF.
pub fn parse<'a>(body: &'a [u8], limits: &Limits) -> Result<Session<'a>, SdpError> {
    if body.len() > limits.max_body_size {
        return Err(limit(0, "sdp.max_body_size", limits.max_body_size));
    }
    let text = std::str::from_utf8(body).map_err(|e| {
        let line = body
            .get(..e.valid_up_to())
            .unwrap_or_default()
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        err(line, "invalid UTF-8")
    })?;
    parse_lines(text, limits).map_err(|e| {
        if count_lines(body) > limits.max_lines {
            limit(0, "sdp.max_lines", limits.max_lines)
        } else {
            e
        }
    })
}

/// The lines of a description, in order (`parse` checks the line count when this
/// refuses it).
fn parse_lines<'a>(text: &'a str, limits: &Limits) -> Result<Session<'a>, SdpError> {
    let body = text.as_bytes();
    let mut stage = Stage::V;
    // (the origin is written in place: moving it out of an `Option` was a `memcpy`)
    let mut origin = false;
    let mut name = None;
    let mut s = Session {
        origin: Origin {
            username: Cow::Borrowed(""),
            session_id: 0,
            session_version: 0,
            nettype: Cow::Borrowed(""),
            addrtype: Cow::Borrowed(""),
            address: Cow::Borrowed(""),
        },
        name: Cow::Borrowed(""),
        info: None,
        uri: None,
        emails: vec![],
        phones: vec![],
        connection: None,
        bandwidths: vec![],
        times: vec![],
        zone: None,
        key: None,
        attributes: vec![],
        media: vec![],
    };
    let mut candidates = 0usize;
    // Stage inside the current media section: I, C, B, K, A.
    let mut mstage = Stage::AfterS;
    let (mut n, mut pos) = (0, 0);
    loop {
        let (len, controls) = line_end(body.get(pos..).unwrap_or_default());
        let end = pos + len;
        let raw = text.get(pos..end).unwrap_or_default();
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let last_line = end >= body.len();
        if last_line && raw.is_empty() {
            // (after the last line end)
            break;
        }
        pos = end + 1;
        n += 1;
        if n > limits.max_lines {
            return Err(limit(0, "sdp.max_lines", limits.max_lines));
        }
        if raw.len() > limits.max_line_length {
            return Err(limit(n, "sdp.max_line_length", limits.max_line_length));
        }
        let t = match raw.as_bytes() {
            [t, b'=', ..] if t.is_ascii_lowercase() => *t,
            _ => return Err(err(n, "a line must be <lowercase letter>=<value>")),
        };
        if controls {
            return Err(err(
                n,
                if raw.contains('\0') {
                    "NUL byte"
                } else {
                    "control character"
                },
            ));
        }
        let v = raw.get(2..).unwrap_or_default();
        if v.starts_with(' ') && !matches!(t, b's' | b'i') {
            return Err(err(n, "whitespace after '='"));
        }
        let in_media = !s.media.is_empty();
        let need = |cond: bool, what: &'static str| if cond { Ok(()) } else { Err(err(n, what)) };
        if in_media && t != b'm' {
            let next = match t {
                b'i' => Stage::I,
                b'c' => Stage::C,
                b'b' => Stage::B,
                b'k' => Stage::K,
                b'a' => Stage::A,
                b'v' | b'o' | b's' | b'u' | b'e' | b'p' | b't' | b'r' | b'z' => {
                    return Err(err(n, "session-level line inside a media section"))
                }
                _ => return Err(err(n, "unknown type letter (RFC 8866 section 5)")),
            };
            need(
                next >= mstage && !(next == mstage && matches!(next, Stage::I | Stage::K)),
                "media lines out of order (i, c, b, k, a)",
            )?;
            mstage = next;
            let Some(m) = s.media.last_mut() else {
                return Err(err(n, "media line outside a media section"));
            };
            match t {
                b'i' => m.info = Some(v.into()),
                b'c' => m.connections.push(connection(v, n)?),
                b'b' => m.bandwidths.push(bandwidth(v, n)?),
                b'k' => m.key = Some(v.into()),
                _ => {
                    if m.attributes.len() >= limits.max_attributes {
                        return Err(limit(n, "sdp.max_attributes", limits.max_attributes));
                    }
                    if m.attributes.capacity() == 0 {
                        // Sized once for most sections: by the bytes left (an attribute
                        // line has some 12 to 40), within bounds.
                        m.attributes = Vec::with_capacity(
                            (body.len().saturating_sub(pos) / 16 + 2)
                                .clamp(ATTRIBUTES_MIN, ATTRIBUTES_RESERVED),
                        );
                    }
                    attribute(v, n, &mut m.attributes)?;
                    if matches!(m.attributes.last(), Some(Attribute::Candidate(_))) {
                        candidates += 1;
                        if candidates > limits.max_candidates {
                            return Err(limit(n, "sdp.max_candidates", limits.max_candidates));
                        }
                    }
                }
            }
            continue;
        }
        match t {
            b'v' => {
                need(stage == Stage::V && n == 1, "v= must be the first line")?;
                need(v == "0", "v= must be 0")?;
                stage = Stage::O;
            }
            b'o' => {
                need(stage == Stage::O, "o= must follow v=")?;
                let Some(([user, id, version, net, at, addr], _)) =
                    fields::<6>(v, false).filter(|([user, _, _, net, at, addr], _)| {
                        !user.is_empty()
                            && *net == "IN"
                            && (*at == "IP4" || *at == "IP6")
                            && address(addr)
                    })
                else {
                    return Err(err(
                        n,
                        "o=: <username> <sess-id> <sess-version> IN IP4|IP6 <address>",
                    ));
                };
                s.origin = Origin {
                    username: user.into(),
                    session_id: dec(id)
                        .ok_or_else(|| err(n, "o=: sess-id must be a number below 2^64"))?,
                    session_version: dec(version)
                        .ok_or_else(|| err(n, "o=: sess-version must be a number below 2^64"))?,
                    nettype: net.into(),
                    addrtype: at.into(),
                    address: addr.into(),
                };
                origin = true;
                stage = Stage::S;
            }
            b's' => {
                need(stage == Stage::S, "s= must follow o=")?;
                name = Some(v);
                stage = Stage::AfterS;
            }
            b'i' | b'u' | b'e' | b'p' | b'c' | b'b' | b't' | b'r' | b'z' | b'k' | b'a' => {
                let next = match t {
                    b'i' => Stage::I,
                    b'u' => Stage::U,
                    b'e' => Stage::E,
                    b'p' => Stage::P,
                    b'c' => Stage::C,
                    b'b' => Stage::B,
                    b't' | b'r' => Stage::T,
                    b'z' => Stage::Z,
                    b'k' => Stage::K,
                    _ => Stage::A,
                };
                need(stage >= Stage::AfterS, "o= and s= must come first")?;
                need(
                    next >= stage,
                    "session lines out of order (v o s i u e p c b t r z k a)",
                )?;
                need(
                    !(next == stage
                        && matches!(next, Stage::I | Stage::U | Stage::C | Stage::Z | Stage::K)),
                    "line may appear only once",
                )?;
                stage = next;
                match t {
                    b'i' => s.info = Some(v.into()),
                    b'u' => s.uri = Some(v.into()),
                    b'e' => s.emails.push(v.into()),
                    b'p' => s.phones.push(v.into()),
                    b'c' => s.connection = Some(connection(v, n)?),
                    b'b' => s.bandwidths.push(bandwidth(v, n)?),
                    b't' => {
                        let (a, z) = cut(v, b' ').ok_or_else(|| err(n, "t=: <start> <stop>"))?;
                        if s.times.is_empty() {
                            // (allocated at its size: growing an empty vector costs more)
                            s.times = Vec::with_capacity(1);
                        }
                        s.times.push(Timing {
                            start: dec(a).ok_or_else(|| err(n, "t=: start must be a number"))?,
                            stop: dec(z).ok_or_else(|| err(n, "t=: stop must be a number"))?,
                            repeats: vec![],
                        });
                    }
                    b'r' => {
                        let Some(last) = s.times.last_mut() else {
                            return Err(err(n, "r= must follow t="));
                        };
                        if !split(v, b' ').all(|x| {
                            !x.is_empty()
                                && x.bytes()
                                    .all(|b| b.is_ascii_digit() || b"dhms".contains(&b))
                        }) {
                            return Err(err(n, "r=: typed times expected"));
                        }
                        last.repeats.push(v.into());
                    }
                    b'z' => {
                        if !split(v, b' ').all(|x| {
                            !x.is_empty()
                                && x.bytes()
                                    .all(|b| b.is_ascii_digit() || b"-dhms".contains(&b))
                        }) {
                            return Err(err(n, "z=: adjustment times expected"));
                        }
                        s.zone = Some(v.into());
                    }
                    b'k' => s.key = Some(v.into()),
                    _ => {
                        if s.attributes.len() >= limits.max_attributes {
                            return Err(limit(n, "sdp.max_attributes", limits.max_attributes));
                        }
                        attribute(v, n, &mut s.attributes)?;
                    }
                }
            }
            b'm' => {
                need(!s.times.is_empty(), "m= before any t=")?;
                if s.media.len() >= limits.max_media {
                    return Err(limit(n, "sdp.max_media", limits.max_media));
                }
                let Some(([media, port, proto], Some(formats))) = fields::<3>(v, true)
                    .filter(|([media, _, _], _)| !media.is_empty() && media.bytes().all(is_token))
                else {
                    return Err(err(n, "m=: <media> <port>[/<count>] <proto> <fmt>..."));
                };
                let (port, count) = match cut(port, b'/') {
                    Some((p, c)) => (
                        p,
                        Some(
                            dec::<u16>(c)
                                .filter(|c| *c > 0)
                                .ok_or_else(|| err(n, "m=: bad port count"))?,
                        ),
                    ),
                    None => (port, None),
                };
                let port = dec::<u16>(port).ok_or_else(|| err(n, "m=: bad port"))?;
                if !split(proto, b'/').all(|p| !p.is_empty() && p.bytes().all(is_token)) {
                    return Err(err(n, "m=: bad transport protocol"));
                }
                let listed = formats.bytes().filter(|b| *b == b' ').count() + 1;
                if listed > limits.max_formats {
                    return Err(limit(n, "sdp.max_formats", limits.max_formats));
                }
                let mut fmts = Vec::with_capacity(listed);
                for f in split(formats, b' ') {
                    if f.is_empty() || !f.bytes().all(is_token) {
                        return Err(err(n, "m=: bad format"));
                    }
                    fmts.push(Cow::Borrowed(f));
                }
                if s.media.is_empty() {
                    s.media = Vec::with_capacity(MEDIA_RESERVED.min(limits.max_media));
                }
                s.media.push(Media {
                    media: media.into(),
                    port,
                    port_count: count,
                    proto: proto.into(),
                    formats: fmts,
                    info: None,
                    connections: vec![],
                    bandwidths: vec![],
                    key: None,
                    attributes: vec![],
                });
                mstage = Stage::AfterS;
            }
            _ => return Err(err(n, "unknown type letter (RFC 8866 section 5)")),
        }
        if last_line {
            break;
        }
    }
    let last = n;
    if !origin {
        return Err(err(last, "missing o="));
    }
    s.name = Cow::Borrowed(name.ok_or_else(|| err(last, "missing s="))?);
    if s.times.is_empty() {
        return Err(err(last, "missing t="));
    }
    for m in &s.media {
        if s.connection.is_none() && m.connections.is_empty() {
            return Err(err(
                last,
                "a media section without c= needs a session-level c=",
            ));
        }
    }
    Ok(s)
}

/// Attributes a media section has room for before its vector grows (a phone's audio
/// section has 3-8, a browser's 20-40; the bytes left in the body bound it first).
const ATTRIBUTES_RESERVED: usize = 32;
/// What a vector's first push would reserve anyway.
const ATTRIBUTES_MIN: usize = 4;
/// Media sections reserved at the first `m=` (audio, or audio and video).
const MEDIA_RESERVED: usize = 2;

/// Parses an `a=` line onto the end of `out` (where it is built: an attribute is some
/// 160 bytes, and each move of it was a call to `memcpy`).
fn attribute<'a>(v: &'a str, n: usize, out: &mut Vec<Attribute<'a>>) -> Result<(), SdpError> {
    let (name, value) = match cut(v, b':') {
        Some((a, b)) => (a, Some(b)),
        None => (v, None),
    };
    parse_attribute(name, value, out).map_err(|r| {
        let shown = if !name.is_empty() && name.len() <= 32 && name.bytes().all(is_token) {
            name
        } else {
            "?"
        };
        // Most grammar errors already name their attribute ("rtpmap: ...").
        let r = r
            .strip_prefix(shown)
            .and_then(|x| x.strip_prefix(": "))
            .unwrap_or(r);
        err(n, format!("a={shown}: {r}"))
    })
}
