//! Host names and IPv4 addresses (RFC 3261 section 25.1 `hostname / IPv4address`), and
//! the IPv6 reference where the grammar allows one outside a URI.
use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::scan::{byte_class, in_class};
use crate::uri::Host;

const fn alnum_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// ASCII letters and digits (see `scan::byte_class!`).
static ALNUM: [bool; 256] = byte_class!(alnum_char);

/// `hostname / IPv4address` (the IPv6 reference is handled by the caller).
pub(crate) fn parse_host(h: &str) -> Option<Host<'_>> {
    if h.is_empty() {
        return None;
    }
    // An IPv4 address and a hostname exclude each other (a hostname's top label starts
    // with a letter, an address has none), so either may be tried first: the address
    // when the text starts with a digit.
    if h.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        if let Some(a) = dotted_quad(h.as_bytes()) {
            return Some(Host::V4(a));
        }
    }
    is_hostname(h.as_bytes()).then_some(Host::Domain(Cow::Borrowed(h)))
}

/// `hostname = *( domainlabel "." ) toplabel [ "." ]`, in one pass over the bytes (no
/// split into labels): every label is alphanumerics and hyphens, starting and ending
/// with an alphanumeric, and the top label starts with a letter. The runs of
/// alphanumerics go by in a tight loop; only a dot or a hyphen is looked at closely.
fn is_hostname(b: &[u8]) -> bool {
    let b = b.strip_suffix(b".").unwrap_or(b);
    let alnum = |i: usize| b.get(i).is_some_and(|&c| in_class(&ALNUM, c));
    // where the top label starts (after the last dot)
    let mut top = 0;
    let mut i = 0;
    loop {
        let run = b.get(i..).unwrap_or_default();
        i += run
            .iter()
            .position(|&c| !in_class(&ALNUM, c))
            .unwrap_or(run.len());
        match b.get(i) {
            None => break,
            // a label ends: alphanumerics on both sides of the dot (so no label is
            // empty, none ends with a hyphen and none starts with one)
            Some(b'.') if i > 0 && alnum(i - 1) && alnum(i + 1) => top = i + 1,
            // inside a label: neither its first byte nor the last of the text (a
            // hyphen next to a dot is refused at the dot)
            Some(b'-') if i > 0 && i + 1 < b.len() => {}
            Some(_) => return false,
        }
        i += 1;
    }
    // toplabel = ALPHA / ALPHA *( alphanum / "-" ) alphanum
    b.get(top).is_some_and(u8::is_ascii_alphabetic)
}

/// A dotted-quad IPv4 address, with the rules of `Ipv4Addr::from_str` (four decimal
/// octets of at most 255, no leading zero, nothing else) in one pass over the bytes
/// (the standard parser tries every form and costs several times as much on one).
pub fn dotted_quad(b: &[u8]) -> Option<Ipv4Addr> {
    dotted_quad_prefix(b)
        .filter(|(_, end)| *end == b.len())
        .map(|(a, _)| a)
}

/// The host at the start of `s` and where it ends: what [`parse_host`] gives for the
/// run of host characters (alphanumerics, `-`, `.`) that starts `s`, and the run's end.
/// The usual spellings, a hostname that starts with a letter and a dotted quad, are
/// checked as the bytes go by (one pass instead of a run then a check); anything else
/// takes the run and `parse_host`. When the host is refused, the end is meaningless.
#[inline]
pub(crate) fn parse_host_prefix(s: &str) -> (usize, Option<Host<'_>>) {
    let b = s.as_bytes();
    let host_char = |i: usize| {
        b.get(i)
            .is_some_and(|&c| in_class(&ALNUM, c) || c == b'-' || c == b'.')
    };
    match b.first() {
        Some(c) if c.is_ascii_alphabetic() => {
            let end = hostname_prefix(b);
            let host = end
                .and_then(|e| s.get(..e))
                .map(|h| Host::Domain(Cow::Borrowed(h)));
            (end.unwrap_or(0), host)
        }
        Some(c) if c.is_ascii_digit() => {
            if let Some((a, end)) = dotted_quad_prefix(b) {
                if !host_char(end) {
                    return (end, Some(Host::V4(a)));
                }
            }
            let mut end = 0;
            while host_char(end) {
                end += 1;
            }
            (end, parse_host(s.get(..end).unwrap_or_default()))
        }
        _ => (0, None),
    }
}

/// Where the hostname that starts `b` ends, when the run of host characters there is a
/// hostname (see `is_hostname`), label by label: each starts with an alphanumeric, goes
/// on with alphanumerics and hyphens and ends with an alphanumeric; a dot that no host
/// character follows is the optional trailing dot and ends the run.
fn hostname_prefix(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    loop {
        let first = *b.get(i)?;
        if !in_class(&ALNUM, first) {
            return None;
        }
        let top_alpha = first.is_ascii_alphabetic();
        i += 1;
        loop {
            i = alnum_run(b, i);
            if b.get(i) != Some(&b'-') {
                break;
            }
            i += 1;
        }
        if b.get(i.wrapping_sub(1)) == Some(&b'-') {
            return None;
        }
        if b.get(i) != Some(&b'.') {
            return top_alpha.then_some(i);
        }
        i += 1;
        if !b
            .get(i)
            .is_some_and(|&c| in_class(&ALNUM, c) || c == b'-' || c == b'.')
        {
            return top_alpha.then_some(i);
        }
    }
}

/// Where the run of ASCII alphanumerics from `i` ends: eight bytes at a time while
/// a whole word is alphanumeric, byte by byte near the end of the text.
#[inline]
fn alnum_run(b: &[u8], mut i: usize) -> usize {
    while let Some(w) = b.get(i..i + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
        let stop = !alnum_mask(u64::from_le_bytes(w)) & HI;
        if stop != 0 {
            return i + (stop.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while b.get(i).is_some_and(|&c| in_class(&ALNUM, c)) {
        i += 1;
    }
    i
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// The ASCII alphanumeric bytes of `w`, each flagged by its high bit; exact byte by
/// byte. On seven-bit values `x + (0x80 - k)` sets the high bit exactly when `x >= k`
/// and never carries out of its byte; bytes at or above 0x80 are not alphanumeric.
#[inline]
pub(crate) fn alnum_mask(w: u64) -> u64 {
    let x = w & !HI;
    let ge = |v: u64, k: u8| v + LO * (0x80 - u64::from(k));
    let lower = x | (LO * 0x20);
    let alpha = ge(lower, b'a') & !ge(lower, b'z' + 1);
    let digit = ge(x, b'0') & !ge(x, b'9' + 1);
    (alpha | digit) & !w & HI
}

/// A dotted quad at the start of `b` (the rules of `dotted_quad`) and where it ends.
#[inline]
fn dotted_quad_prefix(b: &[u8]) -> Option<(Ipv4Addr, usize)> {
    let digit = |i: usize| {
        b.get(i)
            .map(|c| c.wrapping_sub(b'0'))
            .filter(|d| *d <= 9)
            .map(u16::from)
    };
    let mut octets = [0u8; 4];
    let mut i = 0;
    for (k, slot) in octets.iter_mut().enumerate() {
        if k > 0 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let mut value = digit(i)?;
        i += 1;
        if value != 0 {
            while let Some(d) = digit(i) {
                value = value * 10 + d;
                if value > 255 {
                    return None;
                }
                i += 1;
            }
        }
        *slot = u8::try_from(value).ok()?;
    }
    Some((Ipv4Addr::from(octets), i))
}

/// Like [`parse_host`] but also accepts an IPv6 reference `[...]` (for Via sent-by and
/// the `received`/`maddr` parameters).
pub(crate) fn parse_any_host(h: &str) -> Option<Host<'_>> {
    if let Some(inner) = h.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().ok().map(Host::V6);
    }
    parse_host(h)
}

#[cfg(test)]
mod dotted_quad_tests {
    use super::dotted_quad;

    #[test]
    fn parse_host_answers_as_with_a_digits_and_dots_pass() {
        // formerly: text of digits and dots only was an IPv4 address or nothing
        fn former(h: &str) -> Option<crate::uri::Host<'_>> {
            match !h.is_empty() && h.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                true => dotted_quad(h.as_bytes()).map(crate::uri::Host::V4),
                false => super::parse_host(h),
            }
        }
        let mut frontier = vec![String::new()];
        for _ in 0..7 {
            frontier = (frontier.iter())
                .flat_map(|s| ["0", "1", "9", ".", "a", "-"].map(|a| format!("{s}{a}")))
                .collect();
            for h in frontier
                .iter()
                .map(String::as_str)
                .chain(["256.1.1.1", "1.2.3.4."])
            {
                assert_eq!(super::parse_host(h), former(h), "{h:?}");
            }
        }
    }

    #[test]
    fn agrees_with_the_standard_library() {
        let mut cases: Vec<String> = [
            "",
            ".",
            "1",
            "1.2.3",
            "1.2.3.4",
            "1.2.3.4.",
            ".1.2.3.4",
            "1..2.3",
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3.04",
            "0.10.100.200",
            "1.2.3.4.5",
            "999.1.1.1",
            "1.2.3.4444",
            "00.0.0.0",
            "127.0.0.1",
            "1.2.3.",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // every short string over the alphabet the caller lets through
        let alphabet = ["0", "1", "2", "5", "9", "."];
        let mut frontier = vec![String::new()];
        for _ in 0..6 {
            let mut next = Vec::new();
            for s in &frontier {
                for a in alphabet {
                    next.push(format!("{s}{a}"));
                }
            }
            cases.extend(next.iter().cloned());
            frontier = next;
        }
        for o in [0, 1, 9, 10, 99, 100, 199, 200, 249, 250, 255, 256, 300] {
            cases.push(format!("{o}.{o}.{o}.{o}"));
        }
        for c in &cases {
            assert_eq!(dotted_quad(c.as_bytes()), c.parse().ok(), "{c:?}");
        }
    }
}

#[cfg(test)]
mod hostname_tests {
    use super::parse_host;
    use crate::uri::Host;
    use std::borrow::Cow;

    /// The former check: split into labels, each checked on its own.
    fn former(h: &str) -> Option<Host<'_>> {
        if h.is_empty() {
            return None;
        }
        if let Some(a) = super::dotted_quad(h.as_bytes()) {
            return Some(Host::V4(a));
        }
        let trimmed = h.strip_suffix('.').unwrap_or(h);
        let mut labels = trimmed.split('.').peekable();
        while let Some(label) = labels.next() {
            let lb = label.as_bytes();
            let (Some(first), Some(last)) = (lb.first(), lb.last()) else {
                return None;
            };
            if !first.is_ascii_alphanumeric()
                || !last.is_ascii_alphanumeric()
                || !lb.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return None;
            }
            if labels.peek().is_none() && !first.is_ascii_alphabetic() {
                return None;
            }
        }
        Some(Host::Domain(Cow::Borrowed(h)))
    }

    #[test]
    fn one_pass_answers_as_the_label_split() {
        let mut frontier = vec![String::new()];
        for _ in 0..6 {
            frontier = (frontier.iter())
                .flat_map(|s| ["a", "1", "-", ".", "Z", "_", "\u{e9}"].map(|a| format!("{s}{a}")))
                .collect();
            for h in &frontier {
                assert_eq!(parse_host(h), former(h), "{h:?}");
            }
        }
        for h in [
            "biloxi.example.com",
            "a.b.c.",
            "a..b",
            "1.2.3.4",
            "-a.com",
            "a-.com",
            "x1.9a",
        ] {
            assert_eq!(parse_host(h), former(h), "{h:?}");
        }
    }
}

#[cfg(test)]
mod prefix_tests {
    use super::{parse_host, parse_host_prefix};

    /// The run of host characters, then `parse_host` of it: what the callers did.
    fn former(s: &str) -> (usize, Option<crate::uri::Host<'_>>) {
        let end = s
            .bytes()
            .position(|c| !(c.is_ascii_alphanumeric() || c == b'-' || c == b'.'))
            .unwrap_or(s.len());
        (end, parse_host(s.get(..end).unwrap_or_default()))
    }

    #[test]
    fn one_pass_answers_as_the_run_then_the_check() {
        let mut frontier = vec![String::new()];
        for _ in 0..7 {
            frontier = (frontier.iter())
                .flat_map(|s| ["a", "1", "0", "-", ".", "Z", ":"].map(|a| format!("{s}{a}")))
                .collect();
            for h in &frontier {
                let (want_end, want) = former(h);
                let (end, got) = parse_host_prefix(h);
                assert_eq!(got, want, "{h:?}");
                if want.is_some() {
                    assert_eq!(end, want_end, "{h:?}");
                }
            }
        }
        for h in [
            "biloxi.example.com:5060",
            "192.0.2.10:5060;transport=udp",
            "255.255.255.255",
            "256.1.1.1",
            "1.2.3.4.com",
            "1.2.3.4.",
            "1.2.3.4-",
            "01.2.3.4",
            "a.b.c.>",
            "a..b",
            "x1.9a;lr",
            "\u{e9}a",
            "a\u{e9}",
        ] {
            let (want_end, want) = former(h);
            let (end, got) = parse_host_prefix(h);
            assert_eq!(got, want, "{h:?}");
            if want.is_some() {
                assert_eq!(end, want_end, "{h:?}");
            }
        }
    }
}

#[cfg(test)]
mod word_tests {
    use super::alnum_mask;

    #[test]
    fn the_mask_flags_exactly_the_alphanumerics() {
        for b in 0..=255u8 {
            for fill in [b'a', b'.', 0x80, 0xff, b'Z', b'0', b'@', b'`'] {
                for lane in 0..8 {
                    let mut w = [fill; 8];
                    w[lane] = b;
                    let mask = alnum_mask(u64::from_le_bytes(w));
                    for (k, &x) in w.iter().enumerate() {
                        let flagged = mask >> (8 * k + 7) & 1 == 1;
                        assert_eq!(flagged, x.is_ascii_alphanumeric(), "{w:?}");
                        assert_eq!(mask >> (8 * k) & 0x7f, 0, "{w:?}");
                    }
                }
            }
        }
    }
}
