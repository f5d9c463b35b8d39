//! The line parser: RFC 8866 order rules, bounds, and per-codec fmtp checks.
use crate::attr::{address, is_token, parse_attribute, word, Attribute};
use crate::model::{Bandwidth, Connection, Media, Origin, Session, Timing};

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

/// A control character other than tab (what a line's text may not hold).
fn control(b: u8) -> bool {
    b < 0x20 && b != b'\t' || b == 0x7f
}

/// The body's lines (split at LF, a CR before it dropped), each with whether it is free
/// of control characters: one pass over the bytes, where `split('\n')`, a count of the
/// lines to size the vector and a scan of each line for control characters were three
/// (and the larger part of a small offer's parse).
fn split_lines(text: &str) -> Vec<(&str, bool)> {
    let b = text.as_bytes();
    let mut lines = Vec::with_capacity(b.len() / 16 + 2);
    let (mut start, mut controls) = (0, 0usize);
    let mut end_line = |start: usize, end: usize, controls: usize| {
        let l = text.get(start..end).unwrap_or_default();
        let (l, cr) = match l.strip_suffix('\r') {
            Some(l) => (l, 1),
            None => (l, 0),
        };
        lines.push((l, controls == cr));
    };
    for (i, &c) in b.iter().enumerate() {
        if c == b'\n' {
            end_line(start, i, controls);
            start = i + 1;
            controls = 0;
        } else if control(c) {
            controls += 1;
        }
    }
    end_line(start, b.len(), controls);
    lines
}

fn num<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn connection(v: &str, line: usize) -> Result<Connection<'_>, SdpError> {
    let w = split_all(v);
    if w.len() != 3 || word(&w, 0) != "IN" || !(word(&w, 1) == "IP4" || word(&w, 1) == "IP6") {
        return Err(err(line, "c=: IN IP4|IP6 <address>"));
    }
    let mut parts = word(&w, 2).split('/');
    let addr = parts.next().unwrap_or("");
    if !address(addr) {
        return Err(err(line, "c=: bad address"));
    }
    let a: Vec<&str> = parts.collect();
    let multicast = match addr.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_multicast(),
        Err(_) => false,
    };
    let (ttl, count) = match (word(&w, 1), a.as_slice()) {
        (_, []) => (None, None),
        ("IP4", [t]) if multicast => (
            Some(num::<u8>(t).ok_or_else(|| err(line, "c=: bad TTL"))?),
            None,
        ),
        ("IP4", [t, c]) if multicast => (
            Some(num::<u8>(t).ok_or_else(|| err(line, "c=: bad TTL"))?),
            Some(
                num::<u32>(c)
                    .filter(|c| *c > 0)
                    .ok_or_else(|| err(line, "c=: bad address count"))?,
            ),
        ),
        ("IP6", [c]) if multicast => (
            None,
            Some(
                num::<u32>(c)
                    .filter(|c| *c > 0)
                    .ok_or_else(|| err(line, "c=: bad address count"))?,
            ),
        ),
        _ => return Err(err(line, "c=: /ttl and /count only on multicast addresses")),
    };
    Ok(Connection {
        nettype: word(&w, 0).into(),
        addrtype: word(&w, 1).into(),
        address: addr.into(),
        ttl,
        count,
    })
}

fn bandwidth(v: &str, line: usize) -> Result<Bandwidth<'_>, SdpError> {
    let (t, n) = v
        .split_once(':')
        .ok_or_else(|| err(line, "b=: <bwtype>:<bandwidth>"))?;
    if t.is_empty() || !t.bytes().all(is_token) {
        return Err(err(line, "b=: bad bandwidth type"));
    }
    Ok(Bandwidth {
        bwtype: t.into(),
        value: num(n).ok_or_else(|| err(line, "b=: bandwidth must be a number"))?,
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

/// `v.split(' ')` collected into a vector sized once (empty words kept: the callers
/// check the grammar's single spaces).
/// `v.split(' ')` collected, in one pass over the bytes.
fn split_all(v: &str) -> Vec<&str> {
    let mut w = Vec::with_capacity(8);
    let mut start = 0;
    for (i, &c) in v.as_bytes().iter().enumerate() {
        if c == b' ' {
            w.push(v.get(start..i).unwrap_or_default());
            start = i + 1;
        }
    }
    w.push(v.get(start..).unwrap_or_default());
    w
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
    let mut lines = split_lines(text);
    if lines.last().is_some_and(|(l, _)| l.is_empty()) {
        lines.pop();
    }
    if lines.len() > limits.max_lines {
        return Err(limit(0, "sdp.max_lines", limits.max_lines));
    }
    let mut stage = Stage::V;
    let mut origin = None;
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
    for (idx, &(raw, clean)) in lines.iter().enumerate() {
        let n = idx + 1;
        if raw.len() > limits.max_line_length {
            return Err(limit(n, "sdp.max_line_length", limits.max_line_length));
        }
        let t = match raw.as_bytes() {
            [t, b'=', ..] if t.is_ascii_lowercase() => *t,
            _ => return Err(err(n, "a line must be <lowercase letter>=<value>")),
        };
        if !clean {
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
                    let a = attribute(v, n)?;
                    if matches!(a, Attribute::Candidate(_)) {
                        candidates += 1;
                        if candidates > limits.max_candidates {
                            return Err(limit(n, "sdp.max_candidates", limits.max_candidates));
                        }
                    }
                    m.attributes.push(a);
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
                let w = split_all(v);
                if w.len() != 6
                    || word(&w, 0).is_empty()
                    || word(&w, 3) != "IN"
                    || !(word(&w, 4) == "IP4" || word(&w, 4) == "IP6")
                    || !address(word(&w, 5))
                {
                    return Err(err(
                        n,
                        "o=: <username> <sess-id> <sess-version> IN IP4|IP6 <address>",
                    ));
                }
                origin = Some(Origin {
                    username: word(&w, 0).into(),
                    session_id: num(word(&w, 1))
                        .ok_or_else(|| err(n, "o=: sess-id must be a number below 2^64"))?,
                    session_version: num(word(&w, 2))
                        .ok_or_else(|| err(n, "o=: sess-version must be a number below 2^64"))?,
                    nettype: word(&w, 3).into(),
                    addrtype: word(&w, 4).into(),
                    address: word(&w, 5).into(),
                });
                stage = Stage::S;
            }
            b's' => {
                need(stage == Stage::S, "s= must follow o=")?;
                name = Some(v.to_string());
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
                        let (a, z) = v
                            .split_once(' ')
                            .ok_or_else(|| err(n, "t=: <start> <stop>"))?;
                        s.times.push(Timing {
                            start: num(a).ok_or_else(|| err(n, "t=: start must be a number"))?,
                            stop: num(z).ok_or_else(|| err(n, "t=: stop must be a number"))?,
                            repeats: vec![],
                        });
                    }
                    b'r' => {
                        let Some(last) = s.times.last_mut() else {
                            return Err(err(n, "r= must follow t="));
                        };
                        if !v.split(' ').all(|x| {
                            !x.is_empty()
                                && x.bytes()
                                    .all(|b| b.is_ascii_digit() || b"dhms".contains(&b))
                        }) {
                            return Err(err(n, "r=: typed times expected"));
                        }
                        last.repeats.push(v.into());
                    }
                    b'z' => {
                        if !v.split(' ').all(|x| {
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
                        s.attributes.push(attribute(v, n)?);
                    }
                }
            }
            b'm' => {
                need(!s.times.is_empty(), "m= before any t=")?;
                if s.media.len() >= limits.max_media {
                    return Err(limit(n, "sdp.max_media", limits.max_media));
                }
                let w = split_all(v);
                if w.len() < 4 || word(&w, 0).is_empty() || !word(&w, 0).bytes().all(is_token) {
                    return Err(err(n, "m=: <media> <port>[/<count>] <proto> <fmt>..."));
                }
                let (port, count) = match word(&w, 1).split_once('/') {
                    Some((p, c)) => (
                        p,
                        Some(
                            num::<u16>(c)
                                .filter(|c| *c > 0)
                                .ok_or_else(|| err(n, "m=: bad port count"))?,
                        ),
                    ),
                    None => (word(&w, 1), None),
                };
                let port = num::<u16>(port).ok_or_else(|| err(n, "m=: bad port"))?;
                if !word(&w, 2)
                    .split('/')
                    .all(|p| !p.is_empty() && p.bytes().all(is_token))
                {
                    return Err(err(n, "m=: bad transport protocol"));
                }
                let formats = w.get(3..).unwrap_or_default();
                if formats.len() > limits.max_formats {
                    return Err(limit(n, "sdp.max_formats", limits.max_formats));
                }
                if !formats
                    .iter()
                    .all(|f| !f.is_empty() && f.bytes().all(is_token))
                {
                    return Err(err(n, "m=: bad format"));
                }
                s.media.push(Media {
                    media: word(&w, 0).into(),
                    port,
                    port_count: count,
                    proto: word(&w, 2).into(),
                    formats: formats.iter().map(|f| Cow::Borrowed(*f)).collect(),
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
    }
    let last = lines.len();
    s.origin = origin.ok_or_else(|| err(last, "missing o="))?;
    s.name = name.ok_or_else(|| err(last, "missing s="))?.into();
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

fn attribute(v: &str, n: usize) -> Result<Attribute<'_>, SdpError> {
    let (name, value) = match v.split_once(':') {
        Some((a, b)) => (a, Some(b)),
        None => (v, None),
    };
    let shown = if !name.is_empty() && name.len() <= 32 && name.bytes().all(is_token) {
        name
    } else {
        "?"
    };
    parse_attribute(name, value).map_err(|r| {
        // Most grammar errors already name their attribute ("rtpmap: ...").
        let r = r
            .strip_prefix(shown)
            .and_then(|x| x.strip_prefix(": "))
            .unwrap_or(r);
        err(n, format!("a={shown}: {r}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_as_split_strip_and_scan_give_them() {
        for text in [
            "",
            "\n",
            "v=0",
            "v=0\r\ns=-\r\n",
            "a=x\ry\r\n",
            "a=x\r\r\n",
            "a=\tok\n\u{7f}\nb=\u{1}\r\nlast",
            "\r\n\r\n",
            "é=\u{0}\r",
        ] {
            let old: Vec<(&str, bool)> = text
                .split('\n')
                .map(|l| l.strip_suffix('\r').unwrap_or(l))
                .map(|l| (l, !l.bytes().any(control)))
                .collect();
            assert_eq!(split_lines(text), old, "{text:?}");
        }
        for v in ["", " ", "a", "a b", "IN IP4  x ", "  "] {
            assert_eq!(split_all(v), v.split(' ').collect::<Vec<_>>(), "{v:?}");
        }
    }
}
