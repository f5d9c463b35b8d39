//! Character classes of the RFC 3261 grammar and a small cursor over header text.
use std::borrow::Cow;

use crate::error::{ErrorKind, ParseError};
use crate::host::alnum_mask;

/// `token` characters (RFC 3261 section 25.1): the definition; the parser reads the
/// table made from it (`TOKEN`), a load per byte instead of a dozen comparisons.
const fn token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// `word` characters (Call-ID): the definition of `WORD`.
const fn word_char(b: u8) -> bool {
    token_char(b)
        || matches!(
            b,
            b'(' | b')'
                | b'<'
                | b'>'
                | b':'
                | b'\\'
                | b'"'
                | b'/'
                | b'['
                | b']'
                | b'?'
                | b'{'
                | b'}'
        )
}

/// A byte class as a table of the 256 byte values, made at compile time from its
/// definition (a `const fn(u8) -> bool`): the parser tests a byte with one load instead
/// of a dozen comparisons.
macro_rules! byte_class {
    ($def:path) => {{
        let mut t = [false; 256];
        let mut i = 0;
        while i < 256 {
            #[allow(clippy::indexing_slicing)] // i < 256: every index is in the table
            {
                t[i] = $def(i as u8);
            }
            i += 1;
        }
        t
    }};
}
pub(crate) use byte_class;

/// Whether `b` is in the class `table` (see `byte_class!`).
#[inline]
pub(crate) fn in_class(table: &[bool; 256], b: u8) -> bool {
    table.get(usize::from(b)).copied().unwrap_or(false)
}

/// A header parameter's unquoted value: `token / host` (RFC 3261 `gen-value`), the host
/// including IPv6 brackets and the colons of an address.
const fn param_value_char(b: u8) -> bool {
    token_char(b) || matches!(b, b':' | b'[' | b']')
}

/// An unquoted auth-param value (a token, or a digest `uri`/`algorithm` written bare).
const fn credential_value_char(b: u8) -> bool {
    token_char(b) || matches!(b, b'/' | b':')
}

pub(crate) static TOKEN: [bool; 256] = byte_class!(token_char);
pub(crate) static WORD: [bool; 256] = byte_class!(word_char);
pub(crate) static PARAM_VALUE: [bool; 256] = byte_class!(param_value_char);
pub(crate) static CREDENTIAL_VALUE: [bool; 256] = byte_class!(credential_value_char);

/// Characters of an unquoted header parameter value (see `param_value_char`).
#[inline]
pub(crate) fn is_param_value(b: u8) -> bool {
    in_class(&PARAM_VALUE, b)
}

/// The first `b` (an ASCII byte) in `s`: what `s.find(char)` gives, through memchr
/// rather than the generic char searcher (a UTF-8 continuation byte is never ASCII).
#[inline]
pub(crate) fn find_byte(s: &str, b: u8) -> Option<usize> {
    debug_assert!(b.is_ascii());
    memchr::memchr(b, s.as_bytes())
}

/// `token` characters (RFC 3261 section 25.1).
#[inline]
pub(crate) fn is_token(b: u8) -> bool {
    in_class(&TOKEN, b)
}

/// Where the run of bytes of the class `table` that starts at `i` ends. The class must
/// hold every ASCII letter and digit: whole words of those go by eight bytes at a time
/// (most of a token, a tag, a branch), and each other byte is looked up in the table.
/// The last few bytes of the text, fewer than a word, are looked up one by one.
#[inline]
pub(crate) fn class_run(b: &[u8], mut i: usize, table: &[bool; 256]) -> usize {
    const HI: u64 = 0x8080_8080_8080_8080;
    loop {
        let Some(w) = b.get(i..i + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) else {
            while b.get(i).is_some_and(|&c| in_class(table, c)) {
                i += 1;
            }
            return i;
        };
        let stop = !alnum_mask(u64::from_le_bytes(w)) & HI;
        if stop == 0 {
            i += 8;
            continue;
        }
        i += (stop.trailing_zeros() / 8) as usize;
        if !b.get(i).is_some_and(|&c| in_class(table, c)) {
            return i;
        }
        i += 1;
    }
}

/// The value of a run of ASCII digits that the caller has checked (every byte a digit),
/// or `None` above `u32::MAX`: what `str::parse::<u32>` gives for such a run, without
/// its sign and radix handling.
#[inline]
pub(crate) fn digits_u32(s: &str) -> Option<u32> {
    let mut v: u32 = 0;
    for &c in s.as_bytes() {
        v = v
            .checked_mul(10)?
            .checked_add(u32::from(c.wrapping_sub(b'0')))?;
    }
    Some(v)
}

/// `unreserved` = alphanum / mark.
pub(crate) const fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
        )
}

/// `reserved` characters of RFC 2396 as used by RFC 3261.
pub(crate) const fn is_reserved(b: u8) -> bool {
    matches!(
        b,
        b';' | b'/' | b'?' | b':' | b'@' | b'&' | b'=' | b'+' | b'$' | b','
    )
}

pub(crate) const fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Validates that every `%` in `s` starts a `%HH` escape.
pub(crate) fn escapes_valid(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            match (b.get(i + 1), b.get(i + 2)) {
                (Some(h), Some(l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => i += 3,
                _ => return false,
            }
        } else {
            i += 1;
        }
    }
    true
}

pub(crate) fn percent_decode(s: &str) -> Cow<'_, [u8]> {
    let b = s.as_bytes();
    if !b.contains(&b'%') {
        return Cow::Borrowed(b);
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            if let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|&x| hex(x)),
                b.get(i + 2).and_then(|&x| hex(x)),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    Cow::Owned(out)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `s` without leading and trailing SP/HTAB: `s.trim_matches([' ', '\t'])` over bytes
/// (both are ASCII, so every cut is between characters).
#[inline]
pub(crate) fn trim_ws(s: &str) -> &str {
    let b = s.as_bytes();
    let mut start = 0;
    while b.get(start).is_some_and(|&c| is_ws(c)) {
        start += 1;
    }
    let mut end = b.len();
    while end > start && b.get(end - 1).is_some_and(|&c| is_ws(c)) {
        end -= 1;
    }
    s.get(start..end).unwrap_or_default()
}

/// Collapses every run of SP/HTAB into one SP and trims both ends. Borrows when the text
/// is already in that form, which is the common case.
pub(crate) fn normalize_ws(s: &str) -> Cow<'_, str> {
    let t = trim_ws(s);
    // a tab anywhere, or two spaces in a row, needs a rewrite (most values hold a few
    // spaces at most: the search jumps from one to the next)
    // Eight bytes at a time: a tab, or a space before a space (in the word, or across
    // its first byte and the last of the one before), needs a rewrite.
    let b = t.as_bytes();
    let mut needs = false;
    let mut prev_space = false;
    let mut words = b.chunks_exact(8);
    for w in &mut words {
        let w = <[u8; 8]>::try_from(w).map_or(0, u64::from_le_bytes);
        let tab = byte_eq_mask(w, b'\t');
        let sp = byte_eq_mask(w, b' ');
        if tab != 0 || sp & (sp >> 8) != 0 || (prev_space && sp & 0x80 != 0) {
            needs = true;
            break;
        }
        prev_space = sp >> 63 != 0;
    }
    if !needs {
        for &c in words.remainder() {
            if c == b'\t' || (c == b' ' && prev_space) {
                needs = true;
                break;
            }
            prev_space = c == b' ';
        }
    }
    if !needs {
        return Cow::Borrowed(t);
    }
    let mut out = String::with_capacity(t.len());
    let mut in_ws = false;
    for c in t.chars() {
        if c == ' ' || c == '\t' {
            if !in_ws {
                out.push(' ');
            }
            in_ws = true;
        } else {
            out.push(c);
            in_ws = false;
        }
    }
    Cow::Owned(out)
}

/// The bytes of `w` equal to `c`, each flagged by its high bit: exact, byte by byte (no
/// carry crosses a byte, unlike the "has a zero byte" trick).
#[inline]
pub(crate) fn byte_eq_mask(w: u64, c: u8) -> u64 {
    const LO: u64 = 0x0101_0101_0101_0101;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HI: u64 = 0x8080_8080_8080_8080;
    let x = w ^ (LO * u64::from(c));
    !(((x & LOW7) + LOW7) | x) & HI
}

/// A cursor over one header value (or start-line part). `base` is the offset of the text
/// within the whole message, so errors carry absolute byte offsets.
pub(crate) struct Cursor<'a> {
    pub s: &'a str,
    pub pos: usize,
    pub base: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(s: &'a str, base: usize) -> Self {
        Cursor { s, pos: 0, base }
    }

    pub(crate) fn err(&self, kind: ErrorKind) -> ParseError {
        ParseError::new(kind, self.base + self.pos)
    }

    pub(crate) fn bad(&self, what: &'static str) -> ParseError {
        self.err(ErrorKind::BadValue(what))
    }

    #[inline]
    pub(crate) fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    #[inline]
    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    #[inline]
    pub(crate) fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    #[inline]
    pub(crate) fn skip_ws(&mut self) {
        while let Some(b) = self.peek() {
            if is_ws(b) {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    /// `SWS sep SWS`: optional whitespace around a separator.
    #[inline]
    pub(crate) fn eat_sep(&mut self, sep: u8) -> bool {
        // the separator right here, or something else than whitespace, decides at once
        // (callers pass a separator that is not whitespace)
        match self.peek() {
            Some(c) if c == sep => {
                self.pos += 1;
                self.skip_ws();
                return true;
            }
            Some(b' ' | b'\t') => {}
            _ => return false,
        }
        let save = self.pos;
        self.skip_ws();
        if self.eat(sep) {
            self.skip_ws();
            true
        } else {
            self.pos = save;
            false
        }
    }

    #[inline]
    pub(crate) fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        let rest = self.s.as_bytes().get(start..).unwrap_or_default();
        self.pos += rest.iter().position(|&c| !f(c)).unwrap_or(rest.len());
        // Only ASCII predicates are used, so the cut is on a char boundary; `get` keeps
        // this panic-free even if that ever changed.
        self.s.get(start..self.pos).unwrap_or("")
    }

    /// [`Cursor::take_while`] of a class that holds every letter and digit (see
    /// [`class_run`]).
    #[inline]
    pub(crate) fn take_class(&mut self, table: &[bool; 256]) -> &'a str {
        let start = self.pos;
        self.pos = class_run(self.s.as_bytes(), start, table);
        self.s.get(start..self.pos).unwrap_or("")
    }

    #[inline]
    pub(crate) fn token(&mut self, what: &'static str) -> Result<&'a str, ParseError> {
        let t = self.take_class(&TOKEN);
        if t.is_empty() {
            Err(self.bad(what))
        } else {
            Ok(t)
        }
    }

    /// The text from `start` to the current position (empty when that is not a cut
    /// between characters, which the ASCII delimiters used by callers rule out).
    #[inline]
    pub(crate) fn since(&self, start: usize) -> &'a str {
        self.s.get(start..self.pos).unwrap_or("")
    }

    pub(crate) fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or("")
    }

    /// Parses a quoted-string starting at `"` and returns its content (between the quotes,
    /// escapes kept as written). Control characters are allowed only as quoted-pairs.
    pub(crate) fn quoted(&mut self) -> Result<&'a str, ParseError> {
        if !self.eat(b'"') {
            return Err(self.bad("expected a quoted string"));
        }
        let start = self.pos;
        let b = self.s.as_bytes();
        loop {
            // Eight ordinary bytes at a time (most of a nonce or a digest); the rules
            // below apply byte by byte wherever a word may hold a special one.
            // A word that holds one goes straight to its first special byte.
            if let Some(w) = b
                .get(self.pos..self.pos + 8)
                .and_then(|w| <[u8; 8]>::try_from(w).ok())
            {
                let mask = quoted_special_mask(u64::from_le_bytes(w));
                if mask == 0 {
                    self.pos += 8;
                    continue;
                }
                self.pos += (mask.trailing_zeros() / 8) as usize;
            }
            let Some(&c) = b.get(self.pos) else {
                return Err(self.bad("unterminated quoted string"));
            };
            match c {
                b'"' => {
                    let content = self.s.get(start..self.pos).unwrap_or("");
                    self.pos += 1;
                    return Ok(content);
                }
                b'\\' => {
                    let Some(&n) = b.get(self.pos + 1) else {
                        return Err(self.bad("unterminated quoted string"));
                    };
                    if n > 0x7f || n == b'\r' || n == b'\n' {
                        return Err(self.bad("invalid escape in quoted string"));
                    }
                    self.pos += 2;
                }
                0x7f => return Err(self.err(ErrorKind::ControlChar(c))),
                0 => return Err(self.err(ErrorKind::NulByte)),
                c if c < 0x20 && c != b'\t' => return Err(self.err(ErrorKind::ControlChar(c))),
                _ => self.pos += 1,
            }
        }
    }
}

/// Whether none of the eight bytes of `w` needs a look inside a quoted string: no `"`,
/// no backslash, no control character (tab included, to keep this simple) and no DEL.
/// The word tricks ("has a zero byte", "has a byte less than n") have no false
/// negatives; a false positive only sends the word through the byte-wise rules.
#[cfg(test)]
fn plain_quoted_word(w: u64) -> bool {
    quoted_special_mask(w) == 0
}

/// The bytes of `w` that may need a look inside a quoted string (see
/// `plain_quoted_word`), flagged by their high bit. A false positive can only sit above
/// a true match (a borrow moves upward), so the lowest flagged byte is always a real
/// special byte and the bytes below it are ordinary.
#[inline]
fn quoted_special_mask(w: u64) -> u64 {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(LO) & !x & HI;
    let below_space = w.wrapping_sub(LO * 0x20) & !w & HI;
    below_space
        | zero(w ^ (LO * 0x7f))
        | zero(w ^ (LO * u64::from(b'"')))
        | zero(w ^ (LO * u64::from(b'\\')))
}

/// Free text (TEXT-UTF8 with LWS, as in unknown header values, User-Agent, reason
/// phrases): control characters are refused except as quoted-pairs inside a quoted
/// string, and quotes must balance.
pub(crate) fn check_text(s: &str, base: usize) -> Result<(), ParseError> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut in_quote = false;
    while let Some(&c) = b.get(i) {
        // Eight bytes at a time while none is a quote, a backslash or a control
        // character (none of the rules below then applies to them).
        if let Some(w) = b.get(i..i + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
            let mask = quoted_special_mask(u64::from_le_bytes(w));
            if mask == 0 {
                i += 8;
                continue;
            }
            let skip = (mask.trailing_zeros() / 8) as usize;
            if skip > 0 {
                // ordinary bytes up to the first special one
                i += skip;
                continue;
            }
        }
        match c {
            b'"' => in_quote = !in_quote,
            b'\\' if in_quote => {
                match b.get(i + 1) {
                    Some(&n) if n <= 0x7f && n != b'\r' && n != b'\n' => {}
                    _ => {
                        return Err(ParseError::new(
                            ErrorKind::BadValue("invalid escape in quoted string"),
                            base + i,
                        ))
                    }
                }
                i += 2;
                continue;
            }
            0 => return Err(ParseError::new(ErrorKind::NulByte, base + i)),
            0x7f => return Err(ParseError::new(ErrorKind::ControlChar(c), base + i)),
            c if c < 0x20 && c != b'\t' => {
                return Err(ParseError::new(ErrorKind::ControlChar(c), base + i))
            }
            _ => {}
        }
        i += 1;
    }
    if in_quote {
        return Err(ParseError::new(
            ErrorKind::BadValue("unterminated quoted string"),
            base + s.len(),
        ));
    }
    Ok(())
}

/// [`check_text`] then [`normalize_ws`] of a header value. Values of plain bytes only (no
/// quote, backslash or control character, tab included) and no two spaces in a row, the
/// usual product lists and free text, pass both in one pass over eight bytes at a time:
/// `check_text` has nothing to refuse in them and `normalize_ws` only trims them.
pub(crate) fn text_value(s: &str, base: usize) -> Result<Cow<'_, str>, ParseError> {
    let b = s.as_bytes();
    let mut words = b.chunks_exact(8);
    let mut prev_space = false;
    let mut plain = true;
    for w in &mut words {
        let w = <[u8; 8]>::try_from(w).map_or(0, u64::from_le_bytes);
        let sp = byte_eq_mask(w, b' ');
        if quoted_special_mask(w) != 0 || sp & (sp >> 8) != 0 || (prev_space && sp & 0x80 != 0) {
            plain = false;
            break;
        }
        prev_space = sp >> 63 != 0;
    }
    if plain {
        for &c in words.remainder() {
            if c < 0x20 || c == 0x7f || c == b'"' || c == b'\\' || (c == b' ' && prev_space) {
                plain = false;
                break;
            }
            prev_space = c == b' ';
        }
    }
    if plain {
        return Ok(Cow::Borrowed(trim_ws(s)));
    }
    check_text(s, base)?;
    Ok(normalize_ws(s))
}

/// Removes backslash escapes from quoted-string content.
pub fn unescape_quoted(s: &str) -> Cow<'_, str> {
    if memchr::memchr(b'\\', s.as_bytes()).is_none() {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod class_tables {
    use super::*;

    #[test]
    fn a_plain_word_holds_no_special_byte() {
        let special = |b: u8| b < 0x20 || b == 0x7f || b == b'"' || b == b'\\';
        for b in 0..=255u8 {
            for pos in 0..8 {
                for fill in [b'a', 0x80, 0xff, b'!', b'#'] {
                    let mut w = [fill; 8];
                    w[pos] = b;
                    let plain = plain_quoted_word(u64::from_le_bytes(w));
                    assert_eq!(plain, !special(b), "{b:#x} at {pos} among {fill:#x}");
                }
            }
        }
    }

    #[test]
    fn byte_masks_flag_exactly_the_equal_bytes() {
        for c in [b' ', b'\t', 0u8, 0x80, 0xff] {
            for b in 0..=255u8 {
                for fill in [b' ', b'\t', b'a', 0x00, 0x80, 0xff] {
                    for lane in 0..8 {
                        let mut w = [fill; 8];
                        w[lane] = b;
                        let mask = byte_eq_mask(u64::from_le_bytes(w), c);
                        for (k, &x) in w.iter().enumerate() {
                            assert_eq!(mask >> (8 * k + 7) & 1 == 1, x == c, "{w:?} {c}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn normalize_ws_rewrites_exactly_what_needs_it() {
        // every string over a small alphabet, against the plain definition
        let alphabet = [" ", "\t", "a", "\u{e9}"];
        let mut frontier = vec![String::new()];
        for _ in 0..6 {
            frontier = (frontier.iter())
                .flat_map(|s| alphabet.map(|a| format!("{s}{a}")))
                .collect();
            for s in &frontier {
                for pad in ["", "bbbbbbb", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"] {
                    let s = format!("{pad}{s}{pad}");
                    let want: Vec<&str> = s.split([' ', '\t']).filter(|w| !w.is_empty()).collect();
                    let got = normalize_ws(&s);
                    assert_eq!(got, want.join(" "), "{s:?}");
                    let trimmed = s.trim_matches([' ', '\t']);
                    assert_eq!(matches!(got, Cow::Borrowed(_)), got == trimmed, "{s:?}");
                }
            }
        }
    }

    #[test]
    fn text_value_answers_as_check_text_then_normalize_ws() {
        let alphabet = [" ", "\t", "a", "\"", "\\", "\u{1}", "\u{7f}", "\u{e9}"];
        let mut frontier = vec![String::new()];
        for _ in 0..5 {
            frontier = (frontier.iter())
                .flat_map(|s| alphabet.map(|a| format!("{s}{a}")))
                .collect();
            for s in &frontier {
                for pad in ["", " ", "bbbbbbb", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"] {
                    let s = format!("{pad}{s}{pad}");
                    let want = check_text(&s, 3).map(|()| normalize_ws(&s));
                    let got = text_value(&s, 3);
                    assert_eq!(got, want, "{s:?}");
                    if let (Ok(g), Ok(w)) = (got, want) {
                        assert_eq!(matches!(g, Cow::Borrowed(_)), matches!(w, Cow::Borrowed(_)));
                    }
                }
            }
        }
    }

    #[test]
    fn the_lowest_flagged_byte_is_the_first_special_one() {
        let special = |b: u8| b < 0x20 || b == 0x7f || b == b'"' || b == b'\\';
        let alphabet = [b'a', 0x00, 0x1f, b'"', b'\\', 0x7f, 0x80, b'#', b'!', b']'];
        let mut w = [0u8; 8];
        for n in 0..alphabet.len().pow(6) {
            let mut k = n;
            // six lanes vary, the other two are fixed (both ends are covered)
            for (j, lane) in w.iter_mut().enumerate() {
                *lane = if (1..7).contains(&j) {
                    let a = alphabet[k % alphabet.len()];
                    k /= alphabet.len();
                    a
                } else if j == 0 {
                    alphabet[n % 3]
                } else {
                    alphabet[(n / 7) % alphabet.len()]
                };
            }
            let first = w.iter().position(|&c| special(c));
            let mask = quoted_special_mask(u64::from_le_bytes(w));
            let flagged = (mask != 0).then(|| (mask.trailing_zeros() / 8) as usize);
            assert_eq!(flagged, first, "{w:?}");
        }
    }

    #[test]
    fn quoted_strings_of_every_length() {
        for n in 0..40 {
            let body: String = (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            for tail in ["", "\\\"x", "\tz", "é"] {
                let q = format!("\"{body}{tail}\" rest");
                let mut c = Cursor::new(&q, 0);
                assert_eq!(c.quoted().unwrap(), format!("{body}{tail}"));
                assert_eq!(c.rest(), " rest");
            }
            let bad = format!("\"{body}\u{1}x\"");
            assert!(Cursor::new(&bad, 0).quoted().is_err());
            let open = format!("\"{body}");
            assert!(Cursor::new(&open, 0).quoted().is_err());
        }
    }

    #[test]
    fn class_runs_end_where_the_byte_walk_ends() {
        let alphabet = [
            b'a', b'Z', b'0', b'.', b':', b';', b' ', b'@', 0x80, b'"', b'-',
        ];
        for table in [&TOKEN, &WORD, &PARAM_VALUE, &CREDENTIAL_VALUE] {
            for n in 0..20usize {
                for seed in 0..200usize {
                    let t: Vec<u8> = (0..n)
                        .map(|k| alphabet[(seed * 7 + k * k * 3 + k * seed / 5) % alphabet.len()])
                        .collect();
                    for start in 0..=n {
                        let want = start
                            + t[start..]
                                .iter()
                                .position(|&c| !in_class(table, c))
                                .unwrap_or(n - start);
                        assert_eq!(class_run(&t, start, table), want, "{t:?} {start}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_tables_are_the_definitions() {
        for b in 0..=255u8 {
            assert_eq!(is_token(b), token_char(b), "{b}");
            assert_eq!(in_class(&WORD, b), word_char(b), "{b}");
            assert_eq!(is_param_value(b), param_value_char(b), "{b}");
            assert_eq!(
                in_class(&CREDENTIAL_VALUE, b),
                credential_value_char(b),
                "{b}"
            );
        }
        assert!(is_token(b'a') && is_token(b'~') && !is_token(b':') && !is_token(0x80));
        let is_word = |b| in_class(&WORD, b);
        assert!(is_word(b':') && is_word(b'}') && !is_word(b' ') && !is_word(b';'));
    }
}
