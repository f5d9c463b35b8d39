//! Reading bytes: line ends and control characters eight bytes at a time, words and
//! fields without vectors, numbers and tokens without `FromStr` or pattern searchers.
//! What the parser does for every line of every description, kept to the few
//! instructions a byte it needs (a small offer's parse is most of what the shield
//! spends on it).
use std::borrow::Cow;

/// How many lines the body has, a last empty one (after the final line end) not
/// counted: only asked when a description was refused, so that a body over
/// `sdp.max_lines` is refused for that first, as when the lines were collected before
/// reading them.
pub(crate) fn count_lines(b: &[u8]) -> usize {
    let lf = b.iter().filter(|&&c| c == b'\n').count();
    // The text after the last LF is a line unless it is empty (or a lone CR).
    let tail = match b.iter().rposition(|&c| c == b'\n') {
        Some(i) => b.get(i + 1..).unwrap_or_default(),
        None => b,
    };
    lf + 1 - usize::from(tail.is_empty() || tail == b"\r")
}

const ONES: u64 = 0x0101_0101_0101_0101;
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The top bit of each byte of `x` that equals `c`, and no other bit (exact: no carry
/// crosses a byte).
#[inline]
fn bytes_eq(x: u64, c: u8) -> u64 {
    let y = x ^ (ONES * u64::from(c));
    !(((y & LOW7) + LOW7) | y | LOW7)
}

/// The top bit of each byte of `x` below 0x20 (tab and line ends too) or DEL: what a
/// word must be free of to be skipped whole (five operations).
#[inline]
fn bytes_special(x: u64) -> u64 {
    // DEL becomes 0 and every other byte below 0x80 one more: then below 0x21
    let y = ((x & LOW7) + ONES) & LOW7;
    !((y + ONES * 0x5f) | x) & HIGH
}

/// The top bit of each byte of `x` that is a control character: below 0x20 but tab, or
/// DEL (what a line's text may not hold).
#[inline]
fn bytes_control(x: u64) -> u64 {
    // below 0x20: adding 0x60 to the low seven bits leaves the top bit clear (and a
    // byte of 0x80 or more is no control character)
    let below_space = !(((x & LOW7) + ONES * 0x60) | x) & HIGH;
    (below_space & !bytes_eq(x, b'\t')) | bytes_eq(x, 0x7f)
}

/// The end of the first line of `b` (the index of its LF, or `b.len()`), and whether
/// that line holds a control character, a CR just before its end excepted: eight bytes
/// at a time, where a vector of lines, a count of them and a scan of each (three passes
/// over the bytes, and then a fourth to find each line end) were the larger part of a
/// small offer's parse.
#[inline]
pub(crate) fn line_end(b: &[u8]) -> (usize, bool) {
    let mut ctl = false;
    // The byte before the current word was a CR (a control character unless the line
    // ends right after it).
    let mut cr = false;
    let mut i = 0;
    let mut words = b.chunks_exact(8);
    for w in &mut words {
        let x = u64::from_le_bytes(<[u8; 8]>::try_from(w).unwrap_or([b' '; 8]));
        let special = bytes_special(x);
        if special == 0 {
            ctl |= cr;
            cr = false;
            i += 8;
            continue;
        }
        let lf = bytes_eq(x, b'\n');
        if lf != 0 {
            let k = lf.trailing_zeros() / 8;
            return (i + k as usize, ctl | before_end(x, special, k, cr));
        }
        // No LF here: a CR in the last byte may end the line (the next word tells).
        let last_cr = x >> 56 == u64::from(b'\r');
        ctl |= cr | before_end(x, special, 8, false);
        cr = last_cr;
        i += 8;
    }
    // The last 1-7 bytes, padded with spaces; the line ends at an LF or with the body.
    let r = words.remainder();
    let mut pad = [b' '; 8];
    for (d, s) in pad.iter_mut().zip(r) {
        *d = *s;
    }
    let x = u64::from_le_bytes(pad);
    let lf = bytes_eq(x, b'\n');
    let k = if lf != 0 {
        lf.trailing_zeros() / 8
    } else {
        r.len() as u32
    };
    (i + k as usize, ctl | before_end(x, bytes_special(x), k, cr))
}

/// Whether the bytes of `x` before byte `k` (1-8), where its line ends (or its word,
/// for `k` = 8), hold a control character, a CR in the last of them excepted;
/// `special`: their [`bytes_special`] mask; `cr`: the byte before `x` was a CR.
#[inline]
fn before_end(x: u64, special: u64, k: u32, cr: bool) -> bool {
    if k == 0 {
        // that CR, if any, is the one just before the end
        return false;
    }
    let below = u64::MAX >> (64 - 8 * k);
    let mut m = special & below;
    if (x >> (8 * (k - 1))) & 0xff == u64::from(b'\r') {
        m &= !(1u64 << (8 * k - 1));
    }
    // (tabs are special but no control characters: the exact mask only then)
    cr | (m != 0 && bytes_control(x) & m != 0)
}

/// Exactly `N` words of `v` split at single spaces (empty words kept: the callers check
/// the grammar's single spaces), and what follows the `N`-th space when `more` (else
/// `None` when anything follows): no vector per line.
#[inline]
pub(crate) fn fields<const N: usize>(v: &str, more: bool) -> Option<([&str; N], Option<&str>)> {
    let mut out = [""; N];
    let (mut k, mut start) = (0, 0);
    for (i, &c) in v.as_bytes().iter().enumerate() {
        if c == b' ' {
            *out.get_mut(k)? = v.get(start..i)?;
            k += 1;
            start = i + 1;
            if k == N {
                return more.then(|| (out, v.get(start..)));
            }
        }
    }
    *out.get_mut(k)? = v.get(start..)?;
    (k + 1 == N).then_some((out, None))
}

const fn token_byte(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'!' | b'#' | b'$' | b'%' | b'&'
        | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'{' | b'|' | b'}' | b'~')
}

/// The token characters as a table: one load a byte, where a search of the punctuation
/// list cost several comparisons.
// (an index out of bounds in a constant is a compile error, not a panic)
#[allow(clippy::indexing_slicing)]
const TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = token_byte(b as u8);
        b += 1;
    }
    t
};

#[inline]
pub(crate) fn is_token(b: u8) -> bool {
    TOKEN.get(usize::from(b)).copied().unwrap_or(false)
}

/// `s.split_once(c)` for an ASCII `c`, by bytes: the `char` pattern's searcher costs
/// more than the short values split here.
#[inline]
pub(crate) fn cut(s: &str, c: u8) -> Option<(&str, &str)> {
    let i = s.bytes().position(|b| b == c)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// `s.trim()`, without decoding characters when both ends are printable ASCII (then
/// there is nothing to trim).
#[inline]
pub(crate) fn trim(s: &str) -> &str {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(a), Some(z)) if a.is_ascii_graphic() && z.is_ascii_graphic() => s,
        _ => s.trim(),
    }
}

/// `s.split(c)` for an ASCII `c`, by bytes (see [`cut`]).
#[inline]
pub(crate) fn split(s: &str, c: u8) -> Split<'_> {
    Split { rest: Some(s), c }
}

/// The iterator of [`split`].
pub(crate) struct Split<'a> {
    rest: Option<&'a str>,
    c: u8,
}

impl<'a> Iterator for Split<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        let r = self.rest?;
        match cut(r, self.c) {
            Some((word, rest)) => {
                self.rest = Some(rest);
                Some(word)
            }
            None => {
                self.rest = None;
                Some(r)
            }
        }
    }
}

/// The first `N` non-empty space-separated words of `s` and how many there are in all
/// (attributes with a bounded number of words need no vector).
#[inline]
pub(crate) fn first_words<const N: usize>(s: &str) -> ([&str; N], usize) {
    let mut out = [""; N];
    let mut n = 0;
    for w in split(s, b' ').filter(|w| !w.is_empty()) {
        if let Some(slot) = out.get_mut(n) {
            *slot = w;
        }
        n += 1;
    }
    (out, n)
}

/// `s`'s words joined by single spaces: `s` itself when it is written so already.
#[inline]
pub(crate) fn single_spaced(s: &str) -> Cow<'_, str> {
    if !s.starts_with(' ') && !s.ends_with(' ') && !s.contains("  ") {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(split_words(s).join(" "))
    }
}

/// A decimal number of at most 20 digits that fits `T`: what the digit check and
/// `str::parse` accepted, without `FromStr` (its generic path showed in profiles).
#[inline]
pub(crate) fn dec<T: TryFrom<u64>>(s: &str) -> Option<T> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut n = 0u64;
    let (head, last) = match s.len() {
        // up to 19 digits cannot overflow: only a 20th is checked
        20 => (s.get(..19)?, s.get(19..)),
        _ => (s, None),
    };
    for b in head.bytes() {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + u64::from(d);
    }
    if let Some(b) = last.and_then(|l| l.bytes().next()) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    T::try_from(n).ok()
}

/// Appends a decimal number without `core::fmt` (the message layer's writer).
pub(crate) fn num(out: &mut String, n: u64) {
    match u8::try_from(n) {
        // (a payload type, a TTL, `t=0 0`: one digit, pushed as it is)
        Ok(d @ 0..=9) => out.push(char::from(b'0' + d)),
        _ => palisade_sip::push_num(out, n),
    }
}

/// The non-empty space-separated words of `s`, in a vector sized once (collecting a
/// split grows it by doubling, which showed in profiles).
pub(crate) fn split_words(s: &str) -> Vec<&str> {
    let mut w = Vec::with_capacity(s.bytes().filter(|b| *b == b' ').count() + 1);
    w.extend(s.split(' ').filter(|x| !x.is_empty()));
    w
}

/// The `i`-th word of a split line, or "" when there is none (callers check the count
/// first; this keeps a miscount from becoming a panic).
#[inline]
pub(crate) fn word<'a>(w: &[&'a str], i: usize) -> &'a str {
    w.get(i).copied().unwrap_or("")
}

/// `s.parse::<IpAddr>()` (one parse where a caller needs the address and whether it
/// is one). A dotted quad is read by [`palisade_sip::dotted_quad`] first; the standard
/// parser, which tries every form and costs several times as much on one, reads the rest.
pub fn ip(s: &str) -> Option<std::net::IpAddr> {
    match palisade_sip::dotted_quad(s.as_bytes()) {
        Some(a) => Some(std::net::IpAddr::V4(a)),
        None => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A control character other than tab (what a line's text may not hold).
    fn control(b: u8) -> bool {
        b < 0x20 && b != b'\t' || b == 0x7f
    }

    /// The lines as the parser reads them: (text, free of control characters).
    fn lines_of(text: &str) -> Vec<(&str, bool)> {
        let b = text.as_bytes();
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            let (len, controls) = line_end(&b[pos..]);
            let end = pos + len;
            let raw = text.get(pos..end).unwrap();
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            if end >= b.len() && raw.is_empty() {
                break;
            }
            out.push((raw, !controls));
            if end >= b.len() {
                break;
            }
            pos = end + 1;
        }
        assert_eq!(out.len(), count_lines(b), "{text:?}");
        out
    }

    /// The reference: split, strip, scan.
    fn lines_split(text: &str) -> Vec<(&str, bool)> {
        let mut old: Vec<(&str, bool)> = text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .map(|l| (l, !l.bytes().any(control)))
            .collect();
        if old.last().is_some_and(|(l, _)| l.is_empty()) {
            old.pop();
        }
        old
    }

    #[test]
    fn byte_masks_are_exact() {
        for b in 0..=255u8 {
            for pos in 0..8 {
                for fill in [b'a', b'\n', 0x7f, 0xff, 0] {
                    let mut w = [fill; 8];
                    w[pos] = b;
                    let x = u64::from_le_bytes(w);
                    let want = |f: &dyn Fn(u8) -> bool| {
                        w.iter()
                            .enumerate()
                            .filter(|(_, c)| f(**c))
                            .fold(0u64, |m, (i, _)| m | 0x80 << (8 * i))
                    };
                    assert_eq!(bytes_eq(x, b'\n'), want(&|c| c == b'\n'), "{w:?}");
                    assert_eq!(bytes_control(x), want(&control), "{w:?}");
                    assert_eq!(bytes_special(x), want(&|c| c < 0x20 || c == 0x7f), "{w:?}");
                }
            }
        }
    }

    #[test]
    fn lines_of_every_short_text_over_the_line_end_bytes() {
        // every text of up to 7 bytes over a letter, CR, LF, tab, a control character
        // and DEL, at three offsets in a word (a prefix of letters)
        let alphabet = [b'a', b'\r', b'\n', b'\t', 1u8, 0x7f];
        for len in 0..=7u32 {
            for code in 0..alphabet.len().pow(len) {
                let mut t: Vec<u8> = Vec::new();
                let mut c = code;
                for _ in 0..len {
                    t.push(alphabet[c % alphabet.len()]);
                    c /= alphabet.len();
                }
                for prefix in [0, 3, 7] {
                    let mut s = "x".repeat(prefix).into_bytes();
                    s.extend_from_slice(&t);
                    let s = String::from_utf8(s).unwrap();
                    assert_eq!(lines_of(&s), lines_split(&s), "{s:?}");
                }
            }
        }
    }

    #[test]
    fn lines_as_split_strip_and_scan_give_them() {
        for text in [
            "",
            "\n",
            "\r",
            "\n\r",
            "\r\n",
            "v=0",
            "v=0\r",
            "v=0\r\r",
            "v=0\n\r",
            "v=0\r\ns=-\r\n",
            "a=x\ry\r\n",
            "a=x\r\r\n",
            "a=x\r\nb=\ry",
            "a=\tok\n\u{7f}\nb=\u{1}\r\nlast",
            "\r\n\r\n",
            "é=\u{0}\r",
            "a=1\nb=2\nc=3\nd=4\ne=5\nf=6\ng=7\nh=8\ni=9\nj=10\nk=11\nl=12\nm=13\r\x01",
        ] {
            assert_eq!(lines_of(text), lines_split(text), "{text:?}");
        }
    }

    #[test]
    fn fields_are_the_split_words() {
        for v in [
            "",
            " ",
            "a",
            "a b",
            "a b c",
            "IN IP4  x ",
            "  ",
            "a b c d e",
        ] {
            let all: Vec<&str> = v.split(' ').collect();
            let three = fields::<3>(v, false).map(|(w, _)| w.to_vec());
            assert_eq!(three, (all.len() == 3).then(|| all.clone()), "{v:?}");
            let more = fields::<3>(v, true);
            match all.get(3..) {
                Some(rest) if !rest.is_empty() => {
                    let (w, r) = more.unwrap();
                    assert_eq!(w.to_vec(), all[..3].to_vec(), "{v:?}");
                    assert_eq!(r.unwrap().split(' ').collect::<Vec<_>>(), rest, "{v:?}");
                }
                _ if all.len() == 3 => assert_eq!(more.unwrap().1, None, "{v:?}"),
                _ => assert!(more.is_none(), "{v:?}"),
            }
        }
    }

    #[test]
    fn byte_splits_are_the_char_splits() {
        for v in ["", " ", "a", "a b", "a  b ", "/", "a/b/c", "é/ü", "//x/"] {
            for c in [' ', '/'] {
                let b = c as u8;
                assert_eq!(cut(v, b), v.split_once(c), "{v:?} {c:?}");
                assert_eq!(
                    split(v, b).collect::<Vec<_>>(),
                    v.split(c).collect::<Vec<_>>()
                );
            }
        }
    }

    #[test]
    fn token_bits_are_the_token_characters() {
        for b in 0..=255u8 {
            let want = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`{|}~".contains(&b);
            assert_eq!(is_token(b), want, "{b}");
        }
        for n in (0..100_100u64).chain([65535, 4_294_967_295, 4_294_967_296, u64::MAX]) {
            let mut out = String::from("x");
            num(&mut out, n);
            assert_eq!(out, format!("x{n}"));
        }
    }

    #[test]
    fn trim_is_str_trim() {
        for v in [
            "",
            " ",
            "a",
            " a",
            "a ",
            "\ta\u{a0}",
            "\u{3000}x",
            "x\u{3000}",
            "a b",
            "é",
            "\n",
        ] {
            assert_eq!(trim(v), v.trim(), "{v:?}");
        }
    }

    #[test]
    fn numbers_as_str_parse_reads_them() {
        for s in [
            "",
            "0",
            "00",
            "7",
            "255",
            "256",
            "65535",
            "65536",
            "4294967295",
            "4294967296",
            "18446744073709551615",
            "18446744073709551616",
            "000000000000000000001",
            "99999999999999999999",
            "-1",
            "+1",
            " 1",
            "1a",
            "١",
        ] {
            let digits = !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
            let want8 = if digits { s.parse::<u8>().ok() } else { None };
            let want64 = if digits { s.parse::<u64>().ok() } else { None };
            assert_eq!(dec::<u8>(s), want8, "{s:?}");
            assert_eq!(dec::<u64>(s), want64, "{s:?}");
        }
    }
}

#[cfg(test)]
mod ip_tests {
    /// The dotted-quad reading answers as the standard parser on every short text of
    /// digits and dots and on the edges of the octets' range; other text goes to it.
    #[test]
    fn ip_answers_as_the_standard_parser() {
        let mut cases: Vec<String> = ["", ".", "1.2.3.4", "0.0.0.0", "255.255.255.255"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut frontier = vec![String::new()];
        for _ in 0..8 {
            frontier = (frontier.iter())
                .flat_map(|s| ["0", "1", "2", "5", "9", "."].map(|a| format!("{s}{a}")))
                .collect();
            cases.extend(frontier.iter().cloned());
        }
        for o in [
            "0", "00", "01", "9", "10", "99", "100", "199", "249", "255", "256", "300", "999",
            "1000",
        ] {
            cases.push(format!("{o}.{o}.{o}.{o}"));
            cases.push(format!("1.2.3.{o}"));
        }
        for other in [
            "::1",
            "fe80::1",
            "1.2.3.4a",
            " 1.2.3.4",
            "1.2.3.4 ",
            "host.local",
            "::ffff:1.2.3.4",
        ] {
            cases.push(other.to_string());
        }
        for c in &cases {
            assert_eq!(super::ip(c), c.parse().ok(), "{c:?}");
        }
        assert!(cases.len() > 2_000_000, "{} texts", cases.len());
    }
}
