//! Wire fingerprints: how a client writes SIP, independent of what it says.
//!
//! Two builds of the same SIP stack write their messages the same way: the same header
//! names in the same order and case (or compact form), the same spacing around the
//! colon, the same Via parameters in the same order, branch, tag and Call-ID values of
//! the same shape (length and alphabet of random runs, fixed prefixes and separators),
//! the same Max-Forwards. A client that claims another stack's User-Agent but writes like
//! its own has a different fingerprint; see [`crate::Detector`] for how that becomes an
//! imitation finding.
//!
//! The fingerprint reads only the header section of a request, once, without parsing
//! values beyond splitting on `;`, and hashes (FNV-1a, 64 bits) what it sees; it is
//! meant for INVITE and REGISTER, which every client sends, and is the same for both
//! (the headers that only one of them carries are not part of it). Values that change
//! per message (numbers, random identifiers) contribute only their shape.
//!
//! [`sdp_habits`] does the same for the session description of an offer.

/// FNV-1a, 64 bits: tiny and good enough to tell habits apart (not a security hash;
/// a client that wants a given fingerprint can always write like that client).
#[derive(Clone, Copy)]
pub(crate) struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.bytes(bytes);
    }
}

impl Fnv {
    pub(crate) fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn byte(&mut self, b: u8) {
        self.0 ^= u64::from(b);
        self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
    }
    fn bytes(&mut self, bs: &[u8]) {
        for &b in bs {
            self.byte(b);
        }
    }
    /// A field separator, so that ("ab","c") and ("a","bc") differ.
    fn sep(&mut self) {
        self.byte(0xff);
    }
}

/// The headers every INVITE and REGISTER carries, in the canonical order of their index.
/// Their relative order as written, and how each name is written, are habits.
const CORE: [&[u8]; 7] = [
    b"via",
    b"from",
    b"to",
    b"call-id",
    b"cseq",
    b"max-forwards",
    b"contact",
];

/// Each bit of [`CORE`]: every core header was read.
const ALL_CORE: u8 = (1 << CORE.len()) - 1;

/// The core header a line starts with, if any: its index in [`CORE`], the length of its
/// name as written (full or compact form, any case) and where its colon is (after the
/// name and any blanks). The first two bytes leave at most one candidate to compare.
fn core_name(line: &[u8]) -> Option<(usize, usize, usize)> {
    let (&first, tail) = line.split_first()?;
    let &second = tail.first()?;
    // (`| 0x20` lowers a letter; no other byte becomes one of these lower-case letters)
    let (i, len) = if matches!(second, b':' | b' ' | b'\t') {
        let i = match first | 0x20 {
            b'v' => 0,
            b'f' => 1,
            b't' => 2,
            b'i' => 3,
            b'm' => 6,
            _ => return None,
        };
        (i, 1)
    } else {
        let i = match (first | 0x20, second | 0x20) {
            (b'v', _) => 0,
            (b'f', _) => 1,
            (b't', _) => 2,
            (b'c', b'a') => 3,
            (b'c', b's') => 4,
            (b'm', _) => 5,
            (b'c', b'o') => 6,
            _ => return None,
        };
        (i, starts_with_core(line, i)?)
    };
    let after = line.get(len..)?;
    if after.first() == Some(&b':') {
        return Some((i, len, len));
    }
    let blanks = after.iter().position(|&b| !matches!(b, b' ' | b'\t'))?;
    (after.get(blanks) == Some(&b':')).then_some((i, len, len + blanks))
}

/// How a line that starts with the name `CORE[i]` (any case) reads as little-endian
/// words: its first eight bytes, and its last eight when longer (`max-forwards`). A
/// byte `b` of the line matches when `(b | case) & keep` is the name's byte: `| 0x20`
/// lowers a letter and turns no other byte into a lower-case letter; the names hold
/// only lower-case letters and `-`, which must match as it is.
#[derive(Clone, Copy)]
struct NameWord {
    name: u64,
    case: u64,
    keep: u64,
}

static CORE_WORDS: [[NameWord; 2]; CORE.len()] = {
    let none = NameWord {
        name: 0,
        case: 0,
        keep: 0,
    };
    let mut t = [[none; 2]; CORE.len()];
    let mut i = 0;
    while i < CORE.len() {
        // (evaluated at compile time: an index out of range fails the build)
        #[allow(clippy::indexing_slicing)]
        {
            let name = CORE[i];
            let mut w = 0;
            while w < 2 {
                let from = if w == 0 || name.len() <= 8 {
                    0
                } else {
                    name.len() - 8
                };
                let mut k = 0;
                while k < 8 && from + k < name.len() {
                    let c = name[from + k] as u64;
                    t[i][w].name |= c << (8 * k);
                    t[i][w].keep |= 0xff << (8 * k);
                    if name[from + k].is_ascii_lowercase() {
                        t[i][w].case |= 0x20 << (8 * k);
                    }
                    k += 1;
                }
                w += 1;
            }
        }
        i += 1;
    }
    t
};

/// The length of `CORE[i]` when `line` starts with it (any case).
fn starts_with_core(line: &[u8], i: usize) -> Option<usize> {
    let full = CORE.get(i)?;
    let [head, tail] = CORE_WORDS.get(i)?;
    let matches = |w: &[u8; 8], m: &NameWord| (u64::from_le_bytes(*w) | m.case) & m.keep == m.name;
    let fits = match (line.first_chunk::<8>(), full.len() > 8) {
        (Some(w), false) => matches(w, head),
        (Some(w), true) => {
            let last = line.get(full.len() - 8..)?.first_chunk::<8>()?;
            matches(w, head) && matches(last, tail)
        }
        // (a line of less than eight bytes, at the end of the input)
        (None, _) => is_name(line.get(..full.len())?, full),
    };
    fits.then_some(full.len())
}

/// Where `b` first occurs in `s`: eight bytes at a time over the first 64 (where most
/// header lines and values end; `memchr` costs more to start), then `memchr`.
#[inline(always)]
fn find(b: u8, s: &[u8]) -> Option<usize> {
    const SWAR: usize = 64;
    let splat = ONES * u64::from(b);
    let mut off = 0;
    while off < SWAR {
        let Some(chunk) = s.get(off..).and_then(<[u8]>::first_chunk::<8>) else {
            // The last bytes: the last eight of `s` when there are so many (those
            // before `off` hold no `b`), else one at a time.
            let last = s.len().saturating_sub(8);
            return match s.get(last..).and_then(<[u8]>::first_chunk::<8>) {
                Some(chunk) => first_zero(u64::from_le_bytes(*chunk) ^ splat).map(|p| last + p),
                None => s.iter().position(|&c| c == b),
            };
        };
        if let Some(p) = first_zero(u64::from_le_bytes(*chunk) ^ splat) {
            return Some(off + p);
        }
        off += 8;
    }
    memchr::memchr(b, s.get(off..).unwrap_or_default()).map(|p| off + p)
}

const ONES: u64 = 0x0101_0101_0101_0101;

/// The first zero byte of `w` (little-endian order): a byte that borrows from a zero
/// byte below it may be flagged too, but the lowest flagged byte is a zero one.
fn first_zero(w: u64) -> Option<usize> {
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero = w.wrapping_sub(ONES) & !w & HIGHS;
    (zero != 0).then(|| (zero.trailing_zeros() / 8) as usize)
}

/// Classes of a byte for [`shape`], one table look-up per byte.
const LOWER: u8 = 1;
const UPPER: u8 = 2;
const DIGIT: u8 = 4;
/// A hex digit (`0-9a-fA-F`).
const HEXDIGIT: u8 = 8;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        let mut k = 0;
        if b.is_ascii_lowercase() {
            k |= LOWER;
        }
        if b.is_ascii_uppercase() {
            k |= UPPER;
        }
        if b.is_ascii_digit() {
            k |= DIGIT;
        }
        if b.is_ascii_hexdigit() {
            k |= HEXDIGIT;
        }
        // (evaluated at compile time: an index out of range fails the build)
        #[allow(clippy::indexing_slicing)]
        {
            t[c] = k;
        }
        c += 1;
    }
    t
};

fn class(c: u8) -> u8 {
    CLASS.get(usize::from(c)).copied().unwrap_or(0)
}

/// Adds the shape of a value; what varies from message to message does not count, what
/// a generator always does does:
/// - only hex digits with a letter among them (`a1b2...`), or 16 decimal digits or more
///   (a hex token without a letter, by chance): a random hex token, `H` and its length
///   (and whether upper case);
/// - one word among digits, with a run of 4 or more digits and at most half letters
///   (`31216SIPpTag001`, `4711R12`): counters around a fixed word, as test tools write
///   them: each digit run `D`, the rest as written. (A random token draws this only
///   rarely — about 1 in 6,000 of belle-sip's ten-character tokens; the earlier rule, "a
///   run of 4 digits", was met by about 1 in 250, so a Linphone message now and then had
///   another fingerprint: a false imitation alert in waiting, and a flaky interop test.)
/// - other letters (`r718HsXj8`, `ncOBoh1kD~`): a random token from some alphabet (which
///   characters happen to appear is chance), `T` and its length, and for 12 characters
///   or more its case (`l`ower, `U`pper, `m`ixed);
/// - no letter (`1-4711@`): counters, each digit run `D`, the rest as written.
fn shape(h: &mut Fnv, v: &[u8]) {
    // The union and the intersection of the bytes' classes decide most values (a
    // counter without letters, a hex token); the counts below only the others.
    let (mut any, mut all) = (0u8, u8::MAX);
    for &c in v {
        let k = class(c);
        any |= k;
        all &= k;
    }
    let (lower, upper) = (any & LOWER != 0, any & UPPER != 0);
    let letters = lower || upper;
    // (only hex digits and no letter: decimal digits only; see `LONG_DIGITS`)
    let hex_only = all & HEXDIGIT != 0;
    let long_digits = !letters && hex_only && v.len() >= LONG_DIGITS;
    if (letters && hex_only && !(lower && upper)) || long_digits {
        h.byte(b'H');
        h.byte(v.len().min(255) as u8);
        h.byte(u8::from(upper));
        h.sep();
        return;
    }
    if letters && !counters_around_a_word(v) {
        h.byte(b'T');
        h.byte(v.len().min(255) as u8);
        if v.len() >= 12 {
            h.byte(match (lower, upper) {
                (true, true) => b'm',
                (false, true) => b'U',
                _ => b'l',
            });
        }
        h.sep();
        return;
    }
    let mut in_digits = false;
    for &c in v.get(..64).unwrap_or(v) {
        if c.is_ascii_digit() {
            if !in_digits {
                h.byte(b'D');
            }
            in_digits = true;
        } else {
            in_digits = false;
            h.byte(c);
        }
    }
    h.sep();
}

/// A value of this many decimal digits or more and nothing else is taken for a random
/// hex token whose letters happened not to be drawn (baresip's sixteen-character Call-ID
/// and tags are all digits once in about 1,900 draws), shaped as one. A counter is
/// shorter; a random decimal number of 64 bits (19 or 20 digits) is taken for a hex token
/// too, of its length.
const LONG_DIGITS: usize = 16;

/// Whether a value is one word among counters (see [`shape`]): its letters are one
/// run, with a run of 4 digits or more and at most half letters, or between counters.
/// (One pass over the value counts what the rule looks at.)
fn counters_around_a_word(v: &[u8]) -> bool {
    let (mut first, mut last, mut letters) = (usize::MAX, 0, 0);
    let (mut digits, mut run, mut longest_run) = (0, 0, 0);
    for (i, &c) in v.iter().enumerate() {
        let k = class(c);
        if k & (LOWER | UPPER) != 0 {
            first = first.min(i);
            last = i;
            letters += 1;
            run = 0;
        } else if k & DIGIT != 0 {
            digits += 1;
            run += 1;
            longest_run = longest_run.max(run);
        } else {
            run = 0;
        }
    }
    // no word, or more than one (a letter run with something else inside it)
    if letters == 0 || last - first + 1 != letters {
        return false;
    }
    // (SIPp writes `[pid]R[n]` and `[pid]SIPpTag00[n]`: one letter, or a word of six
    // letters or more, between counters; with a process id under 1000 the letters of
    // its tag outnumber the digits; a random token of ten characters almost never has
    // that form, so belle-sip's tokens keep their shape)
    let between_counters = v.first().is_some_and(u8::is_ascii_digit)
        && v.last().is_some_and(u8::is_ascii_digit)
        && (letters <= 1 || letters >= 6)
        && digits >= 4;
    between_counters || (letters * 2 <= v.len() && longest_run >= 4)
}

fn trim_end(mut v: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

fn trim(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    trim_end(v)
}

/// Whether `written` is `lower` (lower-case letters and `-`) in any case: `| 0x20`
/// lowers a letter, and turns no other byte into a lower-case letter.
fn is_name(written: &[u8], lower: &[u8]) -> bool {
    written.len() == lower.len()
        && written
            .iter()
            .zip(lower)
            .all(|(&b, &c)| b | ((c & 0x40) >> 1) == c)
}

/// Adds the names of the parameters in a `;` list, in order (as written; the first 16),
/// and returns the value of the first parameter named `wanted` (case-insensitive), in
/// one pass over the list: each parameter's name up to `=` (or `;`), then its value up
/// to `;`.
#[inline(always)]
fn param_names_and<'a>(h: &mut Fnv, params: &'a [u8], wanted: &[u8]) -> Option<&'a [u8]> {
    let mut found = None;
    let mut rest = params;
    let mut k = 0;
    // (the list usually starts with the `;` after the URI or the sent-by: an empty
    // first name)
    if let [b';', tail @ ..] = params {
        h.byte(b';');
        rest = tail;
        k = 1;
    }
    loop {
        let stop = rest
            .iter()
            .position(|&b| b == b'=' || b == b';')
            .unwrap_or(rest.len());
        let (name, tail) = rest.split_at_checked(stop).unwrap_or_default();
        let name = trim(name);
        // (`next` is empty or starts with the `;` of the next parameter)
        let (value, next) = match tail.split_first() {
            Some((b'=', v)) => v
                .split_at_checked(find(b';', v).unwrap_or(v.len()))
                .unwrap_or_default(),
            _ => (&b""[..], tail),
        };
        if k < 16 {
            h.bytes(name);
            h.byte(b';');
        }
        if found.is_none() && is_name(name, wanted) {
            found = Some(trim(value));
        }
        k += 1;
        match next.split_first() {
            Some((_, r)) if k < 16 || found.is_none() => rest = r,
            _ => break,
        }
    }
    h.sep();
    found
}

/// The Via value: protocol as written, parameter names in order, branch shape.
fn via(h: &mut Fnv, value: &[u8]) {
    // The sent-protocol ends at the first blank or `;` (`SIP/2.0/UDP host;...`).
    let end = value
        .iter()
        .position(|&b| b == b' ' || b == b';')
        .unwrap_or(value.len());
    let proto = value.get(..end).unwrap_or_default();
    // `SIP/2.0/UDP`: how it is written, not which transport it names.
    let slash = proto
        .iter()
        .rposition(|&b| b == b'/')
        .unwrap_or(proto.len());
    let (written, transport) = proto.split_at_checked(slash).unwrap_or_default();
    h.bytes(written);
    let any = transport.iter().fold(0, |a, &c| a | class(c));
    h.byte(match (any & LOWER != 0, any & UPPER != 0) {
        (true, true) => b'm',
        (true, false) => b'l',
        _ => b'U',
    });
    h.sep();
    let semi = match value.get(end) {
        Some(b';') => end,
        _ => value
            .get(end..)
            .and_then(|r| find(b';', r))
            .map_or(value.len(), |s| end + s),
    };
    let params = value.get(semi..).unwrap_or_default();
    if let Some(b) = param_names_and(h, params, b"branch") {
        shape(h, b.strip_prefix(b"z9hG4bK").unwrap_or(b));
    }
}

/// The From value: whether the URI is bracketed, parameter names, tag shape. (The
/// parameters follow the last `>` when the URI is bracketed, else its first `;`.)
fn from(h: &mut Fnv, value: &[u8]) {
    let (params, bracketed) = match memchr::memrchr(b'>', value) {
        Some(gt) => (value.get(gt + 1..).unwrap_or_default(), true),
        None => match find(b';', value) {
            Some(sc) => (value.get(sc..).unwrap_or_default(), false),
            None => (&b""[..], false),
        },
    };
    h.byte(u8::from(bracketed));
    if let Some(t) = param_names_and(h, params, b"tag") {
        shape(h, t);
    }
}

/// The wire fingerprint of a request (see the module documentation). Bytes that are
/// not a SIP request give a fingerprint too (of what there is); it never fails.
///
/// A look at the first bytes of each line (they tell the one core header it can be),
/// and a search for its end; only the values of the core headers are read further. (The
/// first implementation, kept in `fingerprint/reference.rs` for the tests to compare
/// with, says the same in more passes.)
pub fn fingerprint(raw: &[u8]) -> u64 {
    walk(raw, false)
}

/// [`fingerprint`] of a request whose header section has no folded line (no line
/// begins with a blank), as the parser tells (`palisade_sip::Received::unfolded`). Once
/// the first of each core header has been read, the lines after it add nothing but
/// their folding, so the reading stops there: on an INVITE the long credentials line,
/// which phones write after the core headers, is not searched for its end. Bytes
/// that do hold a folded line after the last core header get another value than from
/// [`fingerprint`] (never a failure).
pub fn fingerprint_unfolded(raw: &[u8]) -> u64 {
    walk(raw, true)
}

/// [`fingerprint`]; `unfolded`: stop once every core header was read.
#[inline(always)]
fn walk(raw: &[u8], unfolded: bool) -> u64 {
    let mut h = Fnv::new();
    let mut order = [0u8; CORE.len()];
    let mut seen = 0usize;
    let mut done = 0u8; // bit i: the first header of CORE[i] was read
                        // Skip the request line.
    let mut rest = match memchr::memchr(b'\n', raw) {
        Some(nl) => raw.get(nl + 1..).unwrap_or_default(),
        None => return h.0,
    };
    let mut lines = 0;
    while lines < 128 {
        // (every core header read: what follows is only looked at for folding)
        if unfolded && done == ALL_CORE {
            break;
        }
        let Some((&first, tail)) = rest.split_first() else {
            break;
        };
        lines += 1;
        // A core header read for the first time: its index, name as written, whether
        // blanks follow the name, and where its value starts.
        let mut core = None;
        match first {
            b'\n' => break, // end of the header section
            b'\r' if matches!(tail.first(), None | Some(b'\n')) => break,
            b' ' | b'\t' => h.byte(b'+'), // folding is a habit too
            _ => {
                if let Some((i, len, colon)) = core_name(rest) {
                    if done & (1 << i) == 0 {
                        done |= 1 << i;
                        core = Some((i, len, colon));
                    } // (a second Via, of a proxy, is not the client's habit)
                }
            }
        }
        let from_byte = core.map_or(0, |(_, _, colon)| colon + 1);
        let tail = rest.get(from_byte..).unwrap_or_default();
        let nl = find(b'\n', tail).unwrap_or(tail.len());
        let line_rest = tail.get(..nl).unwrap_or_default();
        let name = rest.get(..core.map_or(0, |(_, len, _)| len));
        rest = tail.get(nl + 1..).unwrap_or_default();
        let (Some((i, len, colon)), Some(name)) = (core, name) else {
            continue;
        };
        let after = line_rest.strip_suffix(b"\r").unwrap_or(line_rest);
        if let Some(slot) = order.get_mut(seen) {
            *slot = i as u8;
            seen += 1;
        }
        // How the name and the separator are written.
        h.bytes(name);
        h.byte(u8::from(colon != len));
        h.byte(match after {
            [b' ', b' ', b' ', ..] => 3,
            [b' ', b' ', ..] => 2,
            [b' ', ..] => 1,
            _ => 0,
        });
        h.sep();
        match i {
            0 => via(&mut h, trim(after)),
            1 => from(&mut h, trim(after)),
            // (blanks around the value do not change whether it holds a `>`)
            2 | 6 => h.byte(u8::from(find(b'>', after).is_some())),
            3 => {
                let value = trim(after);
                let at = find(b'@', value);
                shape(
                    &mut h,
                    value.get(..at.unwrap_or(value.len())).unwrap_or_default(),
                );
                h.byte(u8::from(at.is_some()));
            }
            5 => h.bytes(trim(after)),
            _ => {}
        }
        h.sep();
    }
    for &i in order.get(..seen).unwrap_or_default() {
        h.byte(i);
    }
    h.0
}

/// How an offer's session description is written: the `o=` user and the shape of its
/// session id, the `s=` text, the order of the session-level line types and the
/// attribute names of the first media section (a run of lines of one attribute counts
/// once). 0 when there is no body.
///
/// `account` is the caller's user name as its request writes it (the From user): an
/// `o=` user equal to it counts as "the account's name", not as the text, because some
/// clients (Linphone) write their account there, and a habit that differs with every
/// account could never be learned from several.
pub fn sdp_habits(body: &[u8], account: &[u8]) -> u64 {
    if body.is_empty() {
        return 0;
    }
    let mut h = Fnv::new();
    let mut media = 0;
    let mut rest = body;
    // (the name of the attribute on the last `x=` line, when it was one)
    let mut last_attr: Option<&[u8]> = None;
    // (the lines of the body, the first 256; the last one ends where the body does)
    for _ in 0..256 {
        let nl = find(b'\n', rest);
        let line = rest.get(..nl.unwrap_or(rest.len())).unwrap_or_default();
        rest = nl.and_then(|nl| rest.get(nl + 1..)).unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let [t, b'=', v @ ..] = line {
            let t = *t;
            if t == b'm' {
                media += 1;
                if media > 1 {
                    break;
                }
            }
            // An attribute named like the one on the line before is one habit with it,
            // however many there are: how many candidates (the host's addresses) or
            // codecs (the user's settings) an offer lists is not how its stack writes.
            let attr = (t == b'a').then(|| attribute_name(v));
            let repeated = attr.is_some() && attr == last_attr;
            last_attr = attr;
            if repeated {
                if nl.is_none() {
                    break;
                }
                continue;
            }
            h.byte(t);
            match t {
                b'o' => {
                    // the user, and the shape of the session id
                    let sp = find(b' ', v);
                    let user = v.get(..sp.unwrap_or(v.len())).unwrap_or_default();
                    if !account.is_empty() && user == account {
                        h.byte(ACCOUNT_NAME);
                    } else {
                        h.bytes(user);
                    }
                    h.sep();
                    let id = sp.and_then(|sp| v.get(sp + 1..)).unwrap_or_default();
                    shape(
                        &mut h,
                        id.get(..find(b' ', id).unwrap_or(id.len()))
                            .unwrap_or_default(),
                    );
                }
                b's' => h.bytes(v),
                b'a' => h.bytes(attr.unwrap_or_default()),
                _ => {}
            }
            h.sep();
        }
        if nl.is_none() {
            break;
        }
    }
    h.0
}

/// An `a=` line's name: up to its `:` or a blank.
fn attribute_name(v: &[u8]) -> &[u8] {
    let end = v
        .iter()
        .position(|&b| b == b':' || b == b' ')
        .unwrap_or(v.len());
    v.get(..end).unwrap_or_default()
}

/// What [`sdp_habits`] hashes for an `o=` user that is the caller's own name (a byte
/// no SDP text holds: SDP is UTF-8).
const ACCOUNT_NAME: u8 = 0xfe;

/// The family a User-Agent claims: its first word up to `/`, a space or `(`, in lower
/// case, at most 32 characters of `[a-z0-9._-]`; empty when there is none.
pub fn ua_family(ua: &str) -> String {
    // (each byte is ASCII: the separators are, and a character that is not ASCII is left
    // out, each of its bytes being above 0x7f)
    family_bytes(ua).map(char::from).collect()
}

/// The bytes of [`ua_family`].
fn family_bytes(ua: &str) -> impl Iterator<Item = u8> + '_ {
    ua.trim()
        .bytes()
        .take_while(|b| !matches!(b, b'/' | b' ' | b'('))
        .filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        .map(|b| b.to_ascii_lowercase())
        .take(32)
}

/// [`ua_family`]'s bytes hashed (FNV-1a) without building the text: the key of the
/// family's profile. `None` when the family is empty.
pub(crate) fn family_key(ua: &str) -> Option<u64> {
    let mut h = Fnv::new();
    let mut n = 0;
    for b in family_bytes(ua) {
        h.byte(b);
        n += 1;
    }
    (n > 0).then_some(h.0)
}

// (the scanner search lived here; its names stay reachable from here)
#[cfg(test)]
use crate::scanner::SCANNERS;
pub use crate::scanner::{scanner_signature, ScannerMemo};

#[cfg(test)]
mod reference;

#[cfg(test)]
mod differential;

#[cfg(test)]
mod tests;
