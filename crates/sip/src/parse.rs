//! The message parser and the stream framer.
use std::borrow::Cow;

use crate::error::{ErrorKind, ParseError};
use crate::header::{parse_value, Header, Kind, Method};
use crate::host::alnum_mask;
use crate::limits::Limits;
use crate::message::{Message, StartLine};
use crate::names::{canonical_prefix, lookup};
use crate::scan::{
    byte_eq_mask, check_text, digits_u32, find_byte, is_token, normalize_ws, trim_ws,
};
use crate::uri::{parse_uri, Uri};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Datagram,
    Stream,
}

/// Parses one message received as one datagram (UDP). Octets beyond Content-Length are
/// ignored (RFC 3261 section 18.3); without Content-Length the body runs to the end of the
/// datagram. Empty lines before the start line are skipped.
pub fn parse_datagram<'a>(buf: &'a [u8], limits: &Limits) -> Result<Message<'a>, ParseError> {
    parse_message(buf, limits, Mode::Datagram)
}

/// What the stream framer found at the front of the buffer.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // the message is the common case; boxing it would cost an allocation per message
pub enum Frame<'a> {
    /// Not a whole message yet: read more bytes and call again with the longer buffer.
    Incomplete,
    /// Only CRLFs: a keep-alive (RFC 5626: `CRLFCRLF` is a ping, answer with `CRLF`).
    /// Drop `consumed` bytes.
    KeepAlive {
        /// Bytes of CRLF to drop.
        consumed: usize,
    },
    /// One whole message, and what follows it in the buffer.
    Message {
        /// The message.
        message: Message<'a>,
        /// Bytes it took (header section and body).
        consumed: usize,
        /// What follows it.
        rest: &'a [u8],
    },
}

/// Incremental framer for stream transports (TCP, TLS). Content-Length is mandatory on a
/// stream (RFC 3261 section 18.3); an error here is fatal for the connection, because the
/// framing is lost.
pub fn frame_stream<'a>(buf: &'a [u8], limits: &Limits) -> Result<Frame<'a>, ParseError> {
    let lead = leading_crlfs(buf);
    if lead == buf.len() || (lead + 1 == buf.len() && buf.get(lead) == Some(&b'\r')) {
        return Ok(if lead >= 2 {
            Frame::KeepAlive { consumed: lead }
        } else {
            Frame::Incomplete
        });
    }
    if lead > 0 {
        return Ok(Frame::KeepAlive { consumed: lead });
    }
    let window = buf
        .get(..buf.len().min(limits.max_message_size))
        .unwrap_or_default();
    let Some(end) = head_end(window) else {
        if buf.len() >= limits.max_message_size {
            return Err(ParseError::new(
                ErrorKind::Limit {
                    key: "limits.max_message_size",
                    max: limits.max_message_size,
                },
                limits.max_message_size,
            ));
        }
        return Ok(Frame::Incomplete);
    };
    let head = buf.get(..end + 2).unwrap_or_default();
    let Some(cl) = scan_content_length(head) else {
        // Let the full parser report what is wrong with the head, if anything; a
        // well-formed head without Content-Length is refused for the stream.
        parse_message(buf.get(..end + 4).unwrap_or_default(), limits, Mode::Stream)?;
        return Err(ParseError::new(ErrorKind::MissingContentLength, end));
    };
    let total = end + 4 + cl;
    if cl > limits.max_body_size {
        return Err(ParseError::new(
            ErrorKind::Limit {
                key: "limits.max_body_size",
                max: limits.max_body_size,
            },
            end + 4,
        ));
    }
    if total > limits.max_message_size {
        return Err(ParseError::new(
            ErrorKind::Limit {
                key: "limits.max_message_size",
                max: limits.max_message_size,
            },
            0,
        ));
    }
    if buf.len() < total {
        return Ok(Frame::Incomplete);
    }
    let message = parse_message(buf.get(..total).unwrap_or_default(), limits, Mode::Stream)?;
    Ok(Frame::Message {
        message,
        consumed: total,
        rest: buf.get(total..).unwrap_or_default(),
    })
}

/// Where the empty line ending the head starts. The searcher is built once: building it
/// costs more than searching a typical head.
fn head_end(buf: &[u8]) -> Option<usize> {
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\r\n\r\n"));
    FINDER.find(buf)
}

fn leading_crlfs(buf: &[u8]) -> usize {
    let mut i = 0;
    while buf.get(i..i + 2) == Some(b"\r\n") {
        i += 2;
    }
    i
}

/// Finds the first Content-Length (or `l`) value in a head, for framing only; the full
/// parse validates it again (and refuses duplicates).
fn scan_content_length(head: &[u8]) -> Option<usize> {
    for line in head.split(|&b| b == b'\n').skip(1) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line.get(..colon).unwrap_or_default().trim_ascii_end();
        if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
            let v = line.get(colon + 1..).unwrap_or_default().trim_ascii();
            if v.is_empty() || !v.iter().all(u8::is_ascii_digit) || v.len() > 9 {
                return Some(usize::MAX / 4);
            }
            return std::str::from_utf8(v).ok()?.parse().ok();
        }
    }
    None
}

/// Bit per singleton kind, to refuse a second occurrence as soon as it is seen.
fn singleton_bit(kind: Kind) -> u16 {
    match kind {
        Kind::From => 1,
        Kind::To => 1 << 1,
        Kind::CallId => 1 << 2,
        Kind::CSeq => 1 << 3,
        Kind::MaxForwards => 1 << 4,
        Kind::ContentLength => 1 << 5,
        Kind::ContentType => 1 << 6,
        Kind::Expires => 1 << 7,
        Kind::MinExpires => 1 << 8,
        Kind::Date => 1 << 9,
        _ => 0,
    }
}

fn parse_message<'a>(
    buf: &'a [u8],
    limits: &Limits,
    mode: Mode,
) -> Result<Message<'a>, ParseError> {
    let start = leading_crlfs(buf);
    let is_response = buf.len() >= start + 4
        && buf
            .get(start..start + 4)
            .unwrap_or_default()
            .eq_ignore_ascii_case(b"SIP/");
    let mark = |mut e: ParseError| {
        e.is_response = is_response;
        e
    };
    if buf.len() > limits.max_message_size {
        return Err(mark(ParseError::new(
            ErrorKind::Limit {
                key: "limits.max_message_size",
                max: limits.max_message_size,
            },
            limits.max_message_size,
        )));
    }
    if start == buf.len() {
        return Err(ParseError::new(ErrorKind::Empty, 0));
    }
    let after_crlfs = buf.get(start..).unwrap_or_default();
    let mut lines = LineEnds::new();
    // One pass finds the empty line and checks the bytes before it; a message without
    // the empty line is refused as such, whatever else is wrong with it.
    let no_end = || mark(ParseError::new(ErrorKind::NoHeaderEnd, buf.len()));
    let (end, folded, quoted_control) = match prescan(after_crlfs, start, &mut lines) {
        Ok(Some((e, f, q))) => (e + start, f, q),
        Ok(None) => return Err(no_end()),
        Err(e) if head_end(after_crlfs).is_none() => {
            drop(e);
            return Err(no_end());
        }
        Err(e) => return Err(mark(e)),
    };
    let head_bytes = buf.get(start..end + 2).unwrap_or_default();
    let head = std::str::from_utf8(head_bytes).map_err(|e| {
        mark(ParseError::new(
            ErrorKind::InvalidUtf8,
            start + e.valid_up_to(),
        ))
    })?;

    let (start_line, headers, content_length) = if folded {
        // Folding (CRLF followed by whitespace) is rare; unfold into a copy of the same
        // length (CRLF becomes two spaces) so that offsets stay exact, then own the result.
        let unfolded = unfold(head);
        let (s, h, cl) = parse_head(&unfolded, start, limits, None).map_err(mark)?;
        let s = match s {
            StartLine::Request { method, uri } => StartLine::Request {
                method: method.into_owned(),
                uri: uri.into_owned(),
            },
            StartLine::Response { code, reason } => StartLine::Response {
                code,
                reason: Cow::Owned(reason.into_owned()),
            },
        };
        (s, h.into_iter().map(Header::into_owned).collect(), cl)
    } else {
        parse_head(head, start, limits, Some(&lines)).map_err(mark)?
    };

    let body_start = end + 4;
    let avail = buf.get(body_start..).unwrap_or_default();
    let body: &[u8] = match (content_length, mode) {
        (Some(cl), _) if cl > avail.len() => {
            return Err(mark(ParseError::new(
                ErrorKind::BodyTruncated {
                    declared: cl,
                    available: avail.len(),
                },
                body_start,
            )))
        }
        (Some(cl), _) => avail.get(..cl).unwrap_or_default(),
        (None, Mode::Datagram) => avail,
        (None, Mode::Stream) => {
            return Err(mark(ParseError::new(ErrorKind::MissingContentLength, end)));
        }
    };
    if body.len() > limits.max_body_size {
        return Err(mark(ParseError::new(
            ErrorKind::Limit {
                key: "limits.max_body_size",
                max: limits.max_body_size,
            },
            body_start,
        )));
    }
    Ok(Message {
        start: start_line,
        headers,
        body: Cow::Borrowed(body),
        // (after an empty line skipped at the front, the bytes' first CRLFCRLF is not
        // the end of the head: not noted)
        received: crate::Received {
            head_end: (start == 0).then_some(end),
            quoted_control,
            unfolded: !folded,
        },
    })
}

/// The bytes of `x` that are control characters (below 0x20, or DEL), flagged by their
/// high bit: the classic "has a byte less than n" and "has a zero byte" word tricks. No
/// false negatives; a false positive can only sit above a true match (a borrow moves
/// upward), so the lowest flagged byte is always a real control character.
#[inline]
fn control_mask(x: u64) -> u64 {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let below_space = x.wrapping_sub(LO * 0x20) & !x & HI;
    let y = x ^ (LO * 0x7f);
    let del = y.wrapping_sub(LO) & !y & HI;
    below_space | del
}

#[cfg(test)]
fn has_control(x: u64) -> bool {
    control_mask(x) != 0
}

/// Where the lines of a head end (the offset of each CR of a CRLF, from the start of
/// the head), as the prescan passes them: the header loop then needs no search for its
/// line ends. Heads of more lines than it holds are searched on from the last one kept.
pub(crate) struct LineEnds {
    ends: [u32; 40],
    len: usize,
}

impl LineEnds {
    fn new() -> Self {
        LineEnds {
            ends: [0; 40],
            len: 0,
        }
    }

    #[inline]
    fn push(&mut self, at: usize) {
        if let (Some(slot), Ok(at)) = (self.ends.get_mut(self.len), u32::try_from(at)) {
            *slot = at;
            self.len += 1;
        } else {
            // full (or an offset beyond u32): the rest is searched for
            self.len = usize::MAX;
        }
    }

    /// The end of the `k`th line, when it was kept.
    #[inline]
    fn get(&self, k: usize) -> Option<usize> {
        if k < self.len {
            self.ends.get(k).map(|&e| e as usize)
        } else {
            None
        }
    }
}

/// One pass over the bytes after the leading CRLFs, up to the empty line that ends the
/// head: CR and LF only as CRLF, control characters only right after a backslash (a
/// quoted-pair; the grammar check happens later), and whether any line is folded.
/// Returns where the empty line's CRLFCRLF starts and whether a line was folded, or
/// `None` when the bytes hold no CRLFCRLF. Each line end passed is noted in `lines`
/// (folded lines excepted: a folded head is parsed from an unfolded copy). The third
/// value says whether a control character other than CR, LF and tab was let through (as
/// a quoted-pair): [`crate::Received::quoted_control`].
fn prescan(
    head: &[u8],
    base: usize,
    lines: &mut LineEnds,
) -> Result<Option<(usize, bool, bool)>, ParseError> {
    let mut folded = false;
    let mut quoted_control = false;
    let mut i = 0;
    loop {
        // Eight bytes at a time while none of them is a control character (most of a
        // header line); the rules below apply byte by byte to the rest. The lowest
        // flagged byte of the mask is always a real control character (a false positive
        // can only sit above a true one), so the scan jumps straight to it.
        // (two words a step: one test of both, then the lower word decides first)
        for w in head.get(i..).unwrap_or_default().chunks_exact(16) {
            let (lo, hi) = w.split_at(8);
            let lo = <[u8; 8]>::try_from(lo).map_or(0, |w| control_mask(u64::from_le_bytes(w)));
            let hi = <[u8; 8]>::try_from(hi).map_or(0, |w| control_mask(u64::from_le_bytes(w)));
            if lo | hi != 0 {
                i += if lo != 0 {
                    (lo.trailing_zeros() / 8) as usize
                } else {
                    8 + (hi.trailing_zeros() / 8) as usize
                };
                break;
            }
            i += 16;
        }
        let Some(&b) = head.get(i) else {
            break;
        };
        if b < 0x20 || b == 0x7f {
            match b {
                b'\r' => {
                    if head.get(i + 1) != Some(&b'\n') {
                        return Err(ParseError::new(ErrorKind::BareLineEnding, base + i));
                    }
                    match head.get(i + 2) {
                        Some(b' ' | b'\t') => folded = true,
                        Some(b'\r') if head.get(i + 3) == Some(&b'\n') => {
                            lines.push(i);
                            return Ok(Some((i, folded, quoted_control)));
                        }
                        _ => lines.push(i),
                    }
                    i += 2;
                    continue;
                }
                b'\n' => return Err(ParseError::new(ErrorKind::BareLineEnding, base + i)),
                b'\t' => {}
                _ if i > 0 && head.get(i - 1) == Some(&b'\\') => quoted_control = true,
                0 => return Err(ParseError::new(ErrorKind::NulByte, base + i)),
                _ => return Err(ParseError::new(ErrorKind::ControlChar(b), base + i)),
            }
        }
        i += 1;
    }
    Ok(None)
}

fn unfold(head: &str) -> String {
    let mut out = String::with_capacity(head.len());
    let mut rest = head;
    while let Some(i) = rest.find("\r\n") {
        out.push_str(rest.get(..i).unwrap_or_default());
        if matches!(rest.as_bytes().get(i + 2), Some(b' ' | b'\t')) {
            out.push_str("  ");
        } else {
            out.push_str("\r\n");
        }
        rest = rest.get(i + 2..).unwrap_or_default();
    }
    out.push_str(rest);
    out
}

type Head<'a> = (StartLine<'a>, Vec<Header<'a>>, Option<usize>);

/// The end (the CR of the CRLF) of the line that starts at `pos`, the `k`th line of
/// the head: noted by the prescan, or searched for.
#[inline]
fn line_end(head: &[u8], pos: usize, k: usize, lines: Option<&LineEnds>) -> Option<usize> {
    if let Some(e) = lines.and_then(|l| l.get(k)) {
        return Some(e);
    }
    // The prescan guaranteed that every LF is preceded by CR.
    memchr::memchr(b'\n', head.get(pos..).unwrap_or_default())
        .and_then(|i| (pos + i).checked_sub(1))
}

fn parse_head<'a>(
    head: &'a str,
    base: usize,
    limits: &Limits,
    lines: Option<&LineEnds>,
) -> Result<Head<'a>, ParseError> {
    // The first LF ends the start line.
    let Some(first_end) = line_end(head.as_bytes(), 0, 0, lines) else {
        return Err(ParseError::new(ErrorKind::NoHeaderEnd, base + head.len()));
    };
    let start_line = parse_start_line(head.get(..first_end).unwrap_or_default(), base, limits)?;
    let mut headers = Vec::with_capacity(16);
    let mut content_length = None;
    let mut seen: u16 = 0;
    let mut vias = 0;
    let mut cseq_at = usize::MAX;
    let mut pos = first_end + 2;
    let mut k = 0;
    while pos < head.len() {
        k += 1;
        let Some(line_end) = line_end(head.as_bytes(), pos, k, lines) else {
            break;
        };
        let line = head.get(pos..line_end).unwrap_or_default();
        let line_base = base + pos;
        pos = line_end + 2;
        if line.len() > limits.max_header_line {
            return Err(ParseError::new(
                ErrorKind::Limit {
                    key: "limits.max_header_line",
                    max: limits.max_header_line,
                },
                line_base,
            ));
        }
        let (colon, raw_name, kind, canonical) = match canonical_prefix(line.as_bytes()) {
            Some((colon, kind, name)) => (colon, name, kind, Some(name)),
            None => {
                let (colon, raw_name) = header_name(line, line_base)?;
                let (kind, canonical) = lookup(raw_name);
                (colon, raw_name, kind, canonical)
            }
        };
        let shown = canonical.unwrap_or(raw_name);
        let bit = singleton_bit(kind);
        if seen & bit != 0 {
            return Err(ParseError::new(ErrorKind::DuplicateHeader, line_base).in_header(shown));
        }
        seen |= bit;
        let value = line.get(colon + 1..).unwrap_or_default();
        let value_base = line_base + colon + 1;
        if kind == Kind::ContentLength {
            let v = trim_ws(value);
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ParseError::new(
                    ErrorKind::BadValue("Content-Length must be a non-negative number"),
                    value_base,
                )
                .in_header(shown));
            }
            let n = digits_u32(v).ok_or_else(|| {
                ParseError::new(
                    ErrorKind::ScalarOverflow("Content-Length above 2^32-1"),
                    value_base,
                )
                .in_header(shown)
            })?;
            content_length = Some(n as usize);
            continue;
        }
        let before = headers.len();
        parse_value(kind, shown, value, value_base, limits, &mut headers)
            .map_err(|e| e.in_header(shown))?;
        // what the checks after the loop need, noted as it goes by (a singleton's bit
        // in `seen` already says that it is present: a failed value ends the parse)
        match kind {
            Kind::Via => vias += headers.len() - before,
            Kind::CSeq => cseq_at = before,
            _ => {}
        }
        // Counted in values, not lines, so that the canonical form (one Via per line)
        // stays within the same limit as the message it came from.
        if headers.len() > limits.max_headers {
            return Err(ParseError::new(
                ErrorKind::Limit {
                    key: "limits.max_headers",
                    max: limits.max_headers,
                },
                line_base,
            ));
        }
    }
    let has = |kind| seen & singleton_bit(kind) != 0;
    let (from, to, call_id) = (has(Kind::From), has(Kind::To), has(Kind::CallId));
    let cseq = match headers.get(cseq_at) {
        Some(Header::CSeq(c)) => Some(&c.method),
        _ => None,
    };
    if vias > limits.max_via {
        return Err(ParseError::new(
            ErrorKind::Limit {
                key: "limits.max_via",
                max: limits.max_via,
            },
            base,
        )
        .in_header("Via"));
    }
    let end = base + head.len();
    for (present, name) in [
        (vias > 0, "Via"),
        (from, "From"),
        (to, "To"),
        (call_id, "Call-ID"),
        (cseq.is_some(), "CSeq"),
    ] {
        if !present {
            return Err(ParseError::new(ErrorKind::MissingHeader, end).in_header(name));
        }
    }
    if let (StartLine::Request { method, .. }, Some(cm)) = (&start_line, cseq) {
        if method != cm {
            return Err(ParseError::new(ErrorKind::CSeqMethodMismatch, end).in_header("CSeq"));
        }
    }
    Ok((start_line, headers, content_length))
}

/// The colon of a header line and the name before it (trailing whitespace removed).
/// The common case, a token then optional whitespace then the colon, in one pass.
#[inline]
fn header_name(line: &str, line_base: usize) -> Result<(usize, &str), ParseError> {
    let b = line.as_bytes();
    let mut i = 0;
    // letters, digits and hyphens (all of most names) eight bytes at a time, then any
    // other token characters byte by byte
    while let Some(w) = b.get(i..i + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
        let w = u64::from_le_bytes(w);
        let stop = !(alnum_mask(w) | byte_eq_mask(w, b'-')) & 0x8080_8080_8080_8080;
        if stop != 0 {
            i += (stop.trailing_zeros() / 8) as usize;
            break;
        }
        i += 8;
    }
    while b.get(i).is_some_and(|&c| is_token(c)) {
        i += 1;
    }
    let mut colon = i;
    while matches!(b.get(colon), Some(b' ' | b'\t')) {
        colon += 1;
    }
    if i > 0 && b.get(colon) == Some(&b':') {
        return Ok((colon, line.get(..i).unwrap_or_default()));
    }
    // Something else stands in the name: the first colon decides which error it is.
    let Some(colon) = find_byte(line, b':') else {
        return Err(ParseError::new(ErrorKind::MissingColon, line_base));
    };
    let raw_name = line
        .get(..colon)
        .unwrap_or_default()
        .trim_end_matches([' ', '\t']);
    if raw_name.is_empty() || !raw_name.bytes().all(is_token) {
        return Err(ParseError::new(ErrorKind::BadHeaderName, line_base));
    }
    Ok((colon, raw_name))
}

fn parse_version(v: &str) -> Result<(), ErrorKind> {
    if v == "SIP/2.0" || v.eq_ignore_ascii_case("SIP/2.0") {
        return Ok(());
    }
    let b = v.as_bytes();
    if b.len() > 4 && b.get(..4).unwrap_or_default().eq_ignore_ascii_case(b"SIP/") {
        let n = v.get(4..).unwrap_or_default();
        if let Some((maj, min)) = n.split_once('.') {
            let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            if digits(maj) && digits(min) {
                return Err(ErrorKind::VersionNotSupported);
            }
        }
    }
    if v.ends_with([' ', '\t']) {
        return Err(ErrorKind::BadStartLine(
            "trailing whitespace after the SIP version",
        ));
    }
    Err(ErrorKind::BadStartLine("malformed SIP version"))
}

fn parse_start_line<'a>(
    line: &'a str,
    base: usize,
    limits: &Limits,
) -> Result<StartLine<'a>, ParseError> {
    let err = |k: ErrorKind, at: usize| ParseError::new(k, base + at);
    let Some(sp1) = find_byte(line, b' ') else {
        return Err(err(
            ErrorKind::BadStartLine("expected three parts separated by single spaces"),
            0,
        ));
    };
    let first = line.get(..sp1).unwrap_or_default();
    if first.len() >= 4
        && first
            .as_bytes()
            .get(..4)
            .unwrap_or_default()
            .eq_ignore_ascii_case(b"SIP/")
    {
        parse_version(first).map_err(|k| err(k, 0))?;
        let rest = line.get(sp1 + 1..).unwrap_or_default();
        let rb = rest.as_bytes();
        if rb.len() < 3
            || !rb
                .get(..3)
                .unwrap_or_default()
                .iter()
                .all(u8::is_ascii_digit)
            || rb.get(3).is_some_and(|&c| c != b' ')
        {
            return Err(err(ErrorKind::BadStatusCode, sp1 + 1));
        }
        let code: u16 = rest.get(..3).unwrap_or_default().parse().unwrap_or(0);
        if !(100..=699).contains(&code) {
            return Err(err(ErrorKind::BadStatusCode, sp1 + 1));
        }
        let reason = rest.get(4..).unwrap_or("");
        check_text(reason, base + sp1 + 5).map_err(|mut e| {
            e.header = Some("Reason-Phrase".into());
            e
        })?;
        return Ok(StartLine::Response {
            code,
            reason: normalize_ws(reason),
        });
    }
    if first.is_empty() || !first.bytes().all(is_token) {
        return Err(err(ErrorKind::BadMethod("method must be a token"), 0));
    }
    let rest = line.get(sp1 + 1..).unwrap_or_default();
    let Some(sp2) = find_byte(rest, b' ') else {
        return Err(err(
            ErrorKind::BadStartLine("expected three parts separated by single spaces"),
            sp1,
        ));
    };
    let uri_text = rest.get(..sp2).unwrap_or_default();
    let version = rest.get(sp2 + 1..).unwrap_or_default();
    let uri_base = sp1 + 1;
    if uri_text.is_empty() {
        return Err(err(
            ErrorKind::BadStartLine("more than one space between method and Request-URI"),
            sp1,
        ));
    }
    if version.bytes().any(|b| b == b' ' || b == b'\t') {
        let k = if version.trim_end_matches([' ', '\t']).contains([' ', '\t']) {
            ErrorKind::BadStartLine("whitespace inside the Request-URI")
        } else {
            ErrorKind::BadStartLine("trailing whitespace after the SIP version")
        };
        return Err(err(k, uri_base + sp2));
    }
    parse_version(version).map_err(|k| err(k, uri_base + sp2 + 1))?;
    if uri_text.len() > limits.max_uri_length {
        return Err(err(
            ErrorKind::RequestUriTooLong {
                max: limits.max_uri_length,
            },
            uri_base,
        ));
    }
    if uri_text.starts_with('<') {
        return Err(err(
            ErrorKind::BadRequestUri("must not be enclosed in <>"),
            uri_base,
        ));
    }
    let uri = parse_uri(uri_text, base + uri_base, limits).map_err(|mut e| {
        e.header = Some("Request-URI".into());
        e
    })?;
    if let Uri::Sip(s) = &uri {
        if !s.headers.is_empty() {
            return Err(err(
                ErrorKind::BadRequestUri("URI headers (?...) are not allowed in a Request-URI"),
                uri_base,
            ));
        }
    }
    Ok(StartLine::Request {
        method: Method::from_token(first),
        uri,
    })
}

#[cfg(test)]
mod prescan_words {
    use super::*;

    #[test]
    fn the_lowest_flagged_byte_is_the_first_control_character() {
        let alphabet = [b'a', 0x00, 0x1f, 0x7f, 0xff];
        let mut w = [0u8; 8];
        for n in 0..alphabet.len().pow(8) {
            let mut k = n;
            for lane in w.iter_mut() {
                *lane = alphabet[k % alphabet.len()];
                k /= alphabet.len();
            }
            let first = w.iter().position(|&c| c < 0x20 || c == 0x7f);
            let mask = control_mask(u64::from_le_bytes(w));
            let flagged = (mask != 0).then(|| (mask.trailing_zeros() / 8) as usize);
            assert_eq!(flagged, first, "{w:?}");
        }
    }

    #[test]
    fn a_word_has_a_control_character_exactly_when_a_byte_does() {
        // every byte value in every lane, the others printable, UTF-8 or controls
        for fill in [b'a', 0x80, 0xff, b' ', b'~'] {
            for lane in 0..8 {
                for b in 0..=255u8 {
                    let mut w = [fill; 8];
                    w[lane] = b;
                    let want = w.iter().any(|&c| c < 0x20 || c == 0x7f);
                    assert_eq!(has_control(u64::from_le_bytes(w)), want, "{w:?}");
                }
            }
        }
    }
}
