//! Header policy: typed headers are rewritten by the SIP writer; every other header must
//! be allow-listed; every line and the whole message are bounded.

use palisade_sip::{Header, Message};

use std::borrow::Cow;

use crate::{sha256, DropKind, Dropped, Policy, Refusal, TextAction};

/// The headers `shield.text.*` decides about besides User-Agent and Server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextHeader {
    Subject,
    Organization,
    CallInfo,
}

pub(crate) fn text_header(name: &str) -> Option<TextHeader> {
    if name.eq_ignore_ascii_case("Subject") || name == "s" {
        Some(TextHeader::Subject)
    } else if name.eq_ignore_ascii_case("Organization") {
        Some(TextHeader::Organization)
    } else if name.eq_ignore_ascii_case("Call-Info") {
        Some(TextHeader::CallInfo)
    } else {
        None
    }
}

/// Letters, digits, spaces and `.,-_'()`, single-spaced, at most `max` characters.
pub(crate) fn rewrite_text(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max * 4));
    let mut n = 0;
    let mut space = false;
    for c in s.chars() {
        if n >= max {
            break;
        }
        if c.is_alphanumeric() || ".,-_'()".contains(c) {
            if space && !out.is_empty() {
                // a space only with room for the character after it: the result never
                // ends in a space (it must be a fixed point, found by the shield fuzz
                // target)
                if n + 1 >= max {
                    break;
                }
                out.push(' ');
                n += 1;
            }
            space = false;
            out.push(c);
            n += 1;
        } else if c == ' ' || c == '\t' {
            space = true;
        }
    }
    out
}

/// Whether `rewrite_text(s, max)` would return `s` unchanged (and `s` is not empty).
fn is_rewritten(s: &str, max: usize) -> bool {
    !s.is_empty()
        && !s.starts_with(' ')
        && !s.ends_with(' ')
        && !s.contains("  ")
        && s.chars().count() <= max
        && s.chars()
            .all(|c| c == ' ' || c.is_alphanumeric() || ".,-_'()".contains(c))
}

/// The first product token of a User-Agent or Server value (`name/version`), reduced to
/// `[A-Za-z0-9.-_/]`.
fn rewrite_product(s: &str, max: usize) -> String {
    s.split(' ')
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._-/".contains(*c))
        .take(max)
        .collect()
}

fn text_action(policy: &Policy, h: &Header<'_>) -> Option<TextAction> {
    let t = &policy.text;
    match h {
        Header::UserAgent(_) => Some(t.user_agent),
        Header::Server(_) => Some(t.server),
        Header::Other { name, .. } => text_header(name).map(|k| match k {
            TextHeader::Subject => t.subject,
            TextHeader::Organization => t.organization,
            TextHeader::CallInfo => t.call_info,
        }),
        _ => None,
    }
}

/// `shield.text.*` on one header: whether it stays (rewritten as the policy says).
fn text(policy: &Policy, h: &mut Header<'_>) -> bool {
    let max = policy.text.max_length;
    if let Some(action) = text_action(policy, h) {
        return match action {
            TextAction::Drop => false,
            TextAction::Keep => true,
            TextAction::Rewrite => {
                let v = match h {
                    Header::UserAgent(v) | Header::Server(v) => {
                        let r = rewrite_product(v, max);
                        *v = Cow::Owned(r);
                        v
                    }
                    Header::Other { value, .. } => {
                        let r = rewrite_text(value, max);
                        *value = Cow::Owned(r);
                        value
                    }
                    _ => return true,
                };
                !v.is_empty()
            }
        };
    }
    if let Header::From(na) | Header::To(na) | Header::Contact(palisade_sip::Contact::Addr(na)) = h
    {
        match policy.text.display_name {
            TextAction::Keep => {}
            TextAction::Drop => na.display = None,
            TextAction::Rewrite => {
                // Most display names are already in the rewritten form: kept as
                // they are, without a copy.
                if let Some(d) = na.display.as_deref().filter(|d| !is_rewritten(d, max)) {
                    let r = rewrite_text(d, max);
                    na.display = (!r.is_empty()).then_some(Cow::Owned(r));
                }
            }
        }
    }
    true
}

/// The allow-list on one header: whether it stays (a header dropped is reported).
fn allowed(policy: &Policy, h: &Header<'_>, dropped: &mut Vec<Dropped>) -> bool {
    match h {
        // Our own credentials end here: a callee must never see a caller's digest
        // response (it could be attacked offline).
        Header::ProxyAuthorization(c) => match (&policy.realm, c.get("realm")) {
            (Some(ours), Some(r)) => *ours != r,
            _ => true,
        },
        Header::Other { name, value } => {
            if policy.header_allowed(name) || text_header(name).is_some() {
                return true;
            }
            let mut line = String::with_capacity(name.len() + value.len() + 2);
            line.push_str(name);
            line.push_str(": ");
            line.push_str(value);
            dropped.push(Dropped {
                what: DropKind::Header,
                name: bounded_name(name),
                sha256: sha256(line.as_bytes()),
            });
            false
        }
        _ => true,
    }
}

fn is_ctl(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

pub(crate) fn apply(
    policy: &Policy,
    msg: &mut Message<'_>,
    raw: &[u8],
    dropped: &mut Vec<Dropped>,
) -> Result<(), Refusal> {
    let refuse = |status: u16, reason: String| Refusal {
        status,
        reason,
        sha256: sha256(raw),
    };
    // One pass: each header's fate depends on that header alone, so the text policy
    // and then the allow-list decide it in turn (a header the first removes is not
    // reported by the second, as when they were two passes).
    msg.headers
        .retain_mut(|h| text(policy, h) && allowed(policy, h, dropped));
    // Control characters and line lengths are checked on the message as received (one
    // cheap scan instead of formatting every header again): the canonical form is derived
    // from it, so a control character can only come from there, and a canonical header
    // line is within a few bytes of the received one (a compact name written in full).
    // One pass finds the end of the header section and any control character in it,
    // the names only when something is wrong.
    // The parse of these bytes noted both already, as it passed them (a message not
    // parsed from `raw`, or whose noted end is not a CRLFCRLF of it, is scanned here).
    let (head_end, ctl) = match msg.received.head_end {
        Some(end) if raw.get(end..).is_some_and(|r| r.starts_with(b"\r\n\r\n")) => {
            (end, msg.received.quoted_control)
        }
        _ => head_scan(raw),
    };
    let head = raw.get(..head_end).unwrap_or_default();
    let mut prev_start: Option<usize> = None; // start of the current logical line
                                              // How much longer the current header can be once written canonically: a compact
                                              // name becomes its full name (at most 19 letters, `d` = Request-Disposition) and
                                              // `Name:value` gets its space. The bound applies to what is forwarded, so that the
                                              // forwarded form passes the shield again (found by the shield fuzz target).
    let mut growth = 0usize;
    let mut start = 0usize;
    let mut bad: Option<(usize, &'static str)> = None;
    // No line can be longer than the whole head: without a control character there is
    // nothing to look for line by line (the common case, one comparison).
    let scan = ctl || head.len() + 19 > policy.max_header_length;
    let bounds = memchr::memchr_iter(b'\n', head)
        .chain(std::iter::once(head.len()))
        .take_while(|_| scan);
    for end in bounds {
        let line = head.get(start..end).unwrap_or_default();
        let folded = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        let logical = match (folded, prev_start) {
            (true, Some(p)) => p,
            _ => start,
        };
        if start > 0 {
            // (the start line is not a header)
            if !folded {
                let name_len = line
                    .iter()
                    .position(|&b| b == b':')
                    .map_or(0, |c| line.get(..c).map_or(0, |n| n.trim_ascii().len()));
                growth = 1 + if name_len == 1 { 18 } else { 0 };
            }
            if end - logical + growth > policy.max_header_length + 1 {
                bad = Some((logical, "long"));
                break;
            }
            if ctl && line.iter().any(|&b| is_ctl(b) && b != b'\r') {
                bad = Some((logical, "ctl"));
                break;
            }
            prev_start = Some(logical);
        }
        start = end + 1;
        if start > head.len() {
            break;
        }
    }
    if let Some((at, what)) = bad {
        let n = head
            .get(at..)
            .unwrap_or_default()
            .split(|b| *b == b':')
            .next()
            .unwrap_or(b"");
        let name = bounded_name(String::from_utf8_lossy(n).trim());
        return Err(match what {
            "long" => refuse(
                400,
                format!(
                    "{name} header longer than shield.max_header_length ({})",
                    policy.max_header_length
                ),
            ),
            _ => refuse(400, format!("control character in the {name} header")),
        });
    }
    let total = head_end + 4 + msg.body.len();
    if total > policy.max_message_size {
        return Err(refuse(
            413,
            format!(
                "message larger than shield.max_message_size ({})",
                policy.max_message_size
            ),
        ));
    }
    Ok(())
}

const ONES: u64 = 0x0101_0101_0101_0101;
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The top bit of each byte of `x` equal to `c` (exact: no carry crosses a byte).
fn bytes_eq(x: u64, c: u8) -> u64 {
    let y = x ^ (ONES * u64::from(c));
    !(((y & LOW7) + LOW7) | y | LOW7)
}

/// The top bit of each byte of `x` below 0x20 or DEL (DEL becomes 0 and every other
/// byte below 0x80 one more: then below 0x21).
fn bytes_special(x: u64) -> u64 {
    let y = ((x & LOW7) + ONES) & LOW7;
    !((y + ONES * 0x5f) | x) & HIGH
}

/// A control character other than the line ends and tab (legal only inside quoted
/// strings, refused here).
fn is_ctl_in_head(b: u8) -> bool {
    (b < 0x20 && !matches!(b, b'\r' | b'\n' | b'\t')) || b == 0x7f
}

/// Where the header section ends (the start of the first `\r\n\r\n`, else the
/// length) and whether it holds a control character other than CR, LF and tab: eight
/// bytes at a time, and only the words holding one of those bytes looked at closely.
/// (A `memmem` searcher was built for every message, which cost more than the search,
/// and a second pass looked for control characters.)
fn head_scan(raw: &[u8]) -> (usize, bool) {
    let crlf2 = |p: usize| p >= 3 && raw.get(p - 3..=p) == Some(b"\r\n\r\n".as_slice());
    // the first control character seen, wherever the section turns out to end
    let mut first_ctl = usize::MAX;
    let mut i = 0;
    let mut words = raw.chunks_exact(8);
    for w in &mut words {
        let x = u64::from_le_bytes(<[u8; 8]>::try_from(w).unwrap_or([b' '; 8]));
        let special = bytes_special(x);
        if special != 0 {
            let ctl = special & !(bytes_eq(x, b'\r') | bytes_eq(x, b'\n') | bytes_eq(x, b'\t'));
            if ctl != 0 && first_ctl == usize::MAX {
                first_ctl = i + (ctl.trailing_zeros() / 8) as usize;
            }
            let mut lf = bytes_eq(x, b'\n');
            while lf != 0 {
                let p = i + (lf.trailing_zeros() / 8) as usize;
                if crlf2(p) {
                    return (p - 3, first_ctl < p - 3);
                }
                lf &= lf - 1;
            }
        }
        i += 8;
    }
    for (k, &b) in words.remainder().iter().enumerate() {
        let p = i + k;
        if is_ctl_in_head(b) && first_ctl == usize::MAX {
            first_ctl = p;
        }
        if b == b'\n' && crlf2(p) {
            return (p - 3, first_ctl < p - 3);
        }
    }
    (raw.len(), first_ctl < raw.len())
}

/// A header name as reported: names are tokens (the parser checked), but bounded.
fn bounded_name(name: &str) -> String {
    name.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn rewrite_text_never_ends_in_a_space() {
        let r = super::rewrite_text("Content-Type: atel:pplication/sdpJ[ Rosenberg", 32);
        assert!(!r.ends_with(' '), "{r:?}");
        assert_eq!(super::rewrite_text(&r, 32), r, "a fixed point");
        assert_eq!(super::rewrite_text("ab cd", 3), "ab");
        assert_eq!(super::rewrite_text("ab cd", 4), "ab c");
    }

    use super::{head_scan, is_rewritten, rewrite_text};

    /// The former two passes: the first empty line, then control characters before it.
    fn two_passes(raw: &[u8]) -> (usize, bool) {
        let end = memchr::memmem::find(raw, b"\r\n\r\n").unwrap_or(raw.len());
        let ctl = raw[..end].iter().fold(false, |acc, &b| {
            acc | ((b < 0x20) & (b != b'\r') & (b != b'\n') & (b != b'\t')) | (b == 0x7f)
        });
        (end, ctl)
    }

    #[test]
    fn one_scan_answers_as_the_two_passes() {
        // every text of up to 6 bytes over a letter, CR, LF, tab, a control character
        // and DEL, after prefixes that put it at every offset in a word
        let alphabet = [b'a', b'\r', b'\n', b'\t', 1u8, 0x7f];
        for len in 0..=6u32 {
            for code in 0..alphabet.len().pow(len) {
                let mut t = Vec::new();
                let mut c = code;
                for _ in 0..len {
                    t.push(alphabet[c % alphabet.len()]);
                    c /= alphabet.len();
                }
                for prefix in [0, 1, 5, 8, 13] {
                    let mut raw = b"x\r\n".repeat(prefix)[..prefix].to_vec();
                    raw.extend_from_slice(&t);
                    raw.extend_from_slice(b"\r\n\r\nbody\x01\r\n");
                    for cut in [raw.len(), raw.len() - 8, t.len() + prefix] {
                        let r = &raw[..cut];
                        assert_eq!(head_scan(r), two_passes(r), "{r:?}");
                    }
                }
            }
        }
        for raw in [
            &b"INVITE x SIP/2.0\r\nA: b\r\nB: \"q\x01\"\r\n\r\nv=0\r\n"[..],
            b"INVITE x SIP/2.0\r\nA: b\r\n\r\n\x7f",
        ] {
            assert_eq!(head_scan(raw), two_passes(raw), "{raw:?}");
        }
    }

    /// What the parse notes about the bytes it read is what the scan finds, for every
    /// message of the corpora that parses and for variants with quoted control
    /// characters, leading empty lines and folding.
    #[test]
    fn the_parse_notes_the_head_end_and_its_control_characters_as_the_scan_finds_them() {
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/corpus"));
        let mut raws: Vec<Vec<u8>> = Vec::new();
        for sub in ["rfc4475", "rfc5118"] {
            for e in std::fs::read_dir(dir.join(sub)).expect("tests/corpus") {
                raws.push(std::fs::read(e.expect("entry").path()).expect("corpus file"));
            }
        }
        assert!(raws.len() > 40, "the corpora are there");
        let invite = |extra: &[u8]| {
            let mut m = b"INVITE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n".to_vec();
            m.extend_from_slice(extra);
            m.extend_from_slice(b"Content-Length: 0\r\n\r\n");
            m
        };
        for c in [0u8, 1, 0x1f, 0x7f, b'\t'] {
            raws.push(invite(
                &[b"Subject: \"a\\".as_slice(), &[c], b"b\"\r\n"].concat(),
            ));
        }
        raws.push(invite(b"Subject: a\r\n b\r\n"));
        raws.push([b"\r\n".as_slice(), &invite(b"")].concat());
        raws.push([b"\r\n\r\n".as_slice(), &invite(b"")].concat());
        let (mut noted, mut quoted) = (0, 0);
        for raw in &raws {
            let Ok(m) = palisade_sip::parse_datagram(raw, &palisade_sip::Limits::default()) else {
                continue;
            };
            if let Some(end) = m.received.head_end {
                noted += 1;
                quoted += usize::from(m.received.quoted_control);
                assert_eq!(head_scan(raw), (end, m.received.quoted_control), "{raw:?}");
            } else {
                assert!(
                    raw.starts_with(b"\r\n"),
                    "noted unless the bytes start with an empty line"
                );
            }
        }
        assert!(
            noted > 40 && quoted >= 4,
            "{noted} noted, {quoted} with a quoted control"
        );
    }

    #[test]
    fn the_rewrite_fast_path_agrees_with_the_rewrite() {
        for s in [
            "Alice",
            "Alice Smith",
            "Ålice Ünicode",
            " Alice",
            "Alice  Smith",
            "Al\"ice",
            "<script>",
            "O'Brien (home)",
            "a-very-long-display-name-over-thirty-two-characters",
            "",
        ] {
            // an empty display name is always rewritten (it is removed)
            let same = !s.is_empty() && rewrite_text(s, 32) == s;
            assert_eq!(is_rewritten(s, 32), same, "{s:?}");
        }
    }
}
