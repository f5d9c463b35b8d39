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

/// Index in [`CORE`] of a header name as written (full or compact form, any case).
fn core_index(name: &[u8]) -> Option<usize> {
    if name.len() == 1 {
        return match name.first().map(u8::to_ascii_lowercase) {
            Some(b'v') => Some(0),
            Some(b'f') => Some(1),
            Some(b't') => Some(2),
            Some(b'i') => Some(3),
            Some(b'm') => Some(6),
            _ => None,
        };
    }
    CORE.iter().position(|c| c.eq_ignore_ascii_case(name))
}

/// Adds the shape of a value; what varies from message to message does not count, what
/// a generator always does does:
/// - only hex digits with a letter among them (`a1b2...`): a random hex token, `H` and
///   its length (and whether upper case);
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
    // One pass over the value gathers what the rules below look at.
    let (mut lower, mut upper, mut all_hex) = (false, false, true);
    let (mut words, mut letter_count, mut in_word) = (0usize, 0usize, false);
    let (mut longest_digits, mut digit_run, mut digits) = (0usize, 0usize, 0usize);
    for &c in v {
        let is_lower = c.is_ascii_lowercase();
        let is_upper = c.is_ascii_uppercase();
        if is_lower || is_upper {
            lower |= is_lower;
            upper |= is_upper;
            all_hex &= matches!(c, b'a'..=b'f' | b'A'..=b'F');
            words += usize::from(!in_word);
            in_word = true;
            letter_count += 1;
            digit_run = 0;
        } else {
            in_word = false;
            if c.is_ascii_digit() {
                digit_run += 1;
                digits += 1;
                longest_digits = longest_digits.max(digit_run);
            } else {
                all_hex = false;
                digit_run = 0;
            }
        }
    }
    let letters = lower || upper;
    if letters && all_hex && !(lower && upper) {
        h.byte(b'H');
        h.byte(v.len().min(255) as u8);
        h.byte(u8::from(upper));
        h.sep();
        return;
    }
    // (SIPp's `[pid]SIPpTag00[n]`: with a process id under 1000 the letters outnumber
    // the digits, but the word still sits between two counters)
    // (SIPp writes `[pid]R[n]` and `[pid]SIPpTag00[n]`: one letter, or a word of six
    // letters or more, between counters; a random token of ten characters almost never
    // has that form, so belle-sip's tokens keep their shape)
    let between_counters = v.first().is_some_and(u8::is_ascii_digit)
        && v.last().is_some_and(u8::is_ascii_digit)
        && digits >= 4
        && (letter_count <= 1 || letter_count >= 6);
    let counters_around_a_word =
        words == 1 && ((longest_digits >= 4 && letter_count * 2 <= v.len()) || between_counters);
    if letters && !counters_around_a_word {
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
    for &c in v.iter().take(64) {
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

fn trim(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// The value of parameter `name` in a `;`-separated list (case-insensitive name).
fn param<'a>(params: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    params.split(|&b| b == b';').find_map(|p| {
        let p = trim(p);
        let (n, v) = match p.iter().position(|&b| b == b'=') {
            Some(eq) => (p.get(..eq)?, p.get(eq + 1..)?),
            None => (p, &b""[..]),
        };
        trim(n).eq_ignore_ascii_case(name).then_some(trim(v))
    })
}

/// The parameters of a name-addr or addr-spec header value (after `>` when the URI is
/// bracketed, else after the first `;`), and whether it was bracketed.
fn header_params(v: &[u8]) -> (&[u8], bool) {
    if let Some(gt) = v.iter().rposition(|&b| b == b'>') {
        return (v.get(gt + 1..).unwrap_or_default(), true);
    }
    match v.iter().position(|&b| b == b';') {
        Some(sc) => (v.get(sc..).unwrap_or_default(), false),
        None => (&[], false),
    }
}

/// Adds the names of the parameters in a `;` list, in order (as written).
fn param_names(h: &mut Fnv, params: &[u8]) {
    for p in params.split(|&b| b == b';').take(16) {
        let p = trim(p);
        let n = p.split(|&b| b == b'=').next().unwrap_or_default();
        h.bytes(trim(n));
        h.byte(b';');
    }
    h.sep();
}

/// The wire fingerprint of a request (see the module documentation). Bytes that are
/// not a SIP request give a fingerprint too (of what there is); it never fails.
pub fn fingerprint(raw: &[u8]) -> u64 {
    let mut h = Fnv::new();
    let mut order = [0u8; CORE.len()];
    let mut seen = 0usize;
    let mut first_of = [false; CORE.len()];
    // Skip the request line.
    let mut rest = match memchr::memchr(b'\n', raw) {
        Some(nl) => raw.get(nl + 1..).unwrap_or_default(),
        None => return h.0,
    };
    let mut lines = 0;
    while !rest.is_empty() && lines < 128 {
        lines += 1;
        let nl = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        let line = rest.get(..nl).unwrap_or_default();
        rest = rest.get(nl + 1..).unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break; // end of the header section
        }
        if matches!(line.first(), Some(b' ' | b'\t')) {
            h.byte(b'+'); // folding is a habit too
            continue;
        }
        // (a header name is short: a plain loop finds its colon sooner than memchr)
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let raw_name = line.get(..colon).unwrap_or_default();
        let name = trim(raw_name);
        let after = line.get(colon + 1..).unwrap_or_default();
        let Some(i) = core_index(name) else {
            continue;
        };
        let first = first_of.get(i).copied() == Some(false);
        if let Some(f) = first_of.get_mut(i) {
            *f = true;
        }
        if !first {
            continue; // a second Via (of a proxy) is not the client's habit
        }
        if let Some(slot) = order.get_mut(seen) {
            *slot = i as u8;
            seen += 1;
        }
        // How the name and the separator are written.
        h.bytes(name);
        h.byte(u8::from(raw_name.len() != name.len()));
        h.byte(after.iter().take_while(|&&b| b == b' ').count().min(3) as u8);
        h.sep();
        let value = trim(after);
        match i {
            0 => {
                // Via: protocol as written, parameter names in order, branch shape.
                let semi = value.iter().position(|&b| b == b';').unwrap_or(value.len());
                let sent = value.get(..semi).unwrap_or_default();
                let proto = sent.split(|&b| b == b' ').next().unwrap_or_default();
                // `SIP/2.0/UDP`: how it is written, not which transport it names.
                let slash = proto
                    .iter()
                    .rposition(|&b| b == b'/')
                    .unwrap_or(proto.len());
                h.bytes(proto.get(..slash).unwrap_or_default());
                let t = proto.get(slash..).unwrap_or_default();
                h.byte(
                    match (
                        t.iter().any(u8::is_ascii_lowercase),
                        t.iter().any(u8::is_ascii_uppercase),
                    ) {
                        (true, true) => b'm',
                        (true, false) => b'l',
                        _ => b'U',
                    },
                );
                h.sep();
                let params = value.get(semi..).unwrap_or_default();
                param_names(&mut h, params);
                if let Some(b) = param(params, b"branch") {
                    shape(&mut h, b.strip_prefix(b"z9hG4bK").unwrap_or(b));
                }
            }
            1 => {
                let (params, bracketed) = header_params(value);
                h.byte(u8::from(bracketed));
                param_names(&mut h, params);
                if let Some(t) = param(params, b"tag") {
                    shape(&mut h, t);
                }
            }
            2 | 6 => {
                let (_, bracketed) = header_params(value);
                h.byte(u8::from(bracketed));
            }
            3 => {
                let at = value.iter().position(|&b| b == b'@');
                shape(
                    &mut h,
                    value.get(..at.unwrap_or(value.len())).unwrap_or_default(),
                );
                h.byte(u8::from(at.is_some()));
            }
            5 => h.bytes(value),
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
/// attribute names of the first media section. 0 when there is no body.
pub fn sdp_habits(body: &[u8]) -> u64 {
    if body.is_empty() {
        return 0;
    }
    let mut h = Fnv::new();
    let mut media = 0;
    for line in body.split(|&b| b == b'\n').take(256) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let (Some(&t), Some(b'=')) = (line.first(), line.get(1)) else {
            continue;
        };
        let v = line.get(2..).unwrap_or_default();
        if t == b'm' {
            media += 1;
            if media > 1 {
                break;
            }
        }
        h.byte(t);
        match t {
            b'o' => {
                let mut f = v.split(|&b| b == b' ');
                h.bytes(f.next().unwrap_or_default());
                h.sep();
                shape(&mut h, f.next().unwrap_or_default());
            }
            b's' => h.bytes(v),
            b'a' => {
                let end = v
                    .iter()
                    .position(|&b| b == b':' || b == b' ')
                    .unwrap_or(v.len());
                h.bytes(v.get(..end).unwrap_or_default());
            }
            _ => {}
        }
        h.sep();
    }
    h.0
}

/// The family a User-Agent claims: its first word up to `/`, a space or `(`, in lower
/// case, at most 32 characters of `[a-z0-9._-]`; empty when there is none.
pub fn ua_family(ua: &str) -> String {
    // Byte-wise: the separators are ASCII, a character that is not ASCII is left out
    // either way, and each of its bytes is above 0x7f.
    let mut out = String::new();
    for &b in ua.trim().as_bytes() {
        if matches!(b, b'/' | b' ' | b'(') || out.len() >= 32 {
            break;
        }
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            out.push(char::from(b.to_ascii_lowercase()));
        }
    }
    out
}

/// User-Agent substrings of known SIP scanners (SIPVicious `svmap`/`svwar`/`svcrack`
/// and the tools that copied its defaults), lower case.
const SCANNERS: [&str; 10] = [
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "sip-scan",
    "sipscan",
    "vaxsipuseragent",
    "iwar",
    "sundayddr",
    "pplsip",
    "smap",
];

/// The bytes a signature of [`SCANNERS`] starts with.
static SCANNER_FIRST: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < SCANNERS.len() {
        // (evaluated at compile time: an index out of range fails the build)
        #[allow(clippy::indexing_slicing)]
        {
            let s = SCANNERS[i].as_bytes();
            if !s.is_empty() {
                t[s[0] as usize] = true;
            }
        }
        i += 1;
    }
    t
};

/// The scanner signature a User-Agent (or From display name) matches, if any (its
/// first 128 bytes are looked at; checked on every out-of-dialog request, so it copies
/// nothing to the heap).
pub fn scanner_signature(text: &str) -> Option<&'static str> {
    let b = text.as_bytes();
    if b.len() < 4 {
        return None;
    }
    let mut buf = [0u8; 128];
    for (d, s) in buf.iter_mut().zip(b) {
        *d = s.to_ascii_lowercase();
    }
    let hay = buf.get(..b.len().min(128))?;
    // One pass over the text, trying the signatures that start with the byte at each
    // position (a memmem searcher built per signature cost more than the search); the
    // first signature of the list that occurs wins, as before.
    let mut found = 0u16;
    for i in 0..hay.len() {
        let rest = hay.get(i..).unwrap_or_default();
        let Some(&c) = rest.first() else {
            break;
        };
        if !SCANNER_FIRST.get(usize::from(c)).copied().unwrap_or(false) {
            continue;
        }
        for (k, sig) in SCANNERS.iter().enumerate() {
            if sig.as_bytes().first() == Some(&c) && rest.starts_with(sig.as_bytes()) {
                found |= 1 << k;
            }
        }
    }
    SCANNERS.get(found.trailing_zeros() as usize).copied()
}

#[cfg(test)]
mod reference;

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(method: &str, branch: &str, tag: &str, cid: &str, extra: &str) -> Vec<u8> {
        format!(
            "{method} sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK{branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag={tag}\r\nTo: <sip:bob@example.com>\r\nCall-ID: {cid}\r\nCSeq: 1 {method}\r\nContact: <sip:alice@10.0.0.1>\r\n{extra}Content-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    fn shape_hash(v: &str) -> u64 {
        let mut h = Fnv::new();
        shape(&mut h, v.as_bytes());
        std::hash::Hasher::finish(&h)
    }

    /// A random token stays a random token of its length whatever digits it happens to
    /// draw (belle-sip's 10-character tokens drew a run of 4 digits now and then, which
    /// once gave a Linphone message another fingerprint); SIPp's counters around its
    /// fixed word stay counters.
    #[test]
    fn random_tokens_with_digit_runs_keep_their_shape() {
        let random = shape_hash("hT5ApqRDkw");
        for t in [
            "gh1234klmn",
            "4711ghijkl",
            "ghijkl4711",
            "g12345678h",
            "Zq~9981-xY",
        ] {
            assert_eq!(shape_hash(t), random, "{t}");
        }
        let sipp = shape_hash("31216SIPpTag001");
        assert_eq!(shape_hash("4711SIPpTag0042"), sipp);
        assert_eq!(shape_hash("4711R1"), shape_hash("31216R2071"));
        assert_ne!(sipp, random);
        // counters without letters
        assert_eq!(shape_hash("1-4711"), shape_hash("22-31216"));
    }

    #[test]
    fn the_same_habits_give_the_same_fingerprint_whatever_the_values() {
        let a = fingerprint(&msg(
            "INVITE",
            "a1b2c3d4e5f60718",
            "9f8e7d6c",
            "ab12cd34ef56ab12@10.0.0.1",
            "",
        ));
        let b = fingerprint(&msg(
            "REGISTER",
            "0f1e2d3c4b5a6978",
            "1a2b3c4d",
            "99aa88bb77cc66dd@10.0.0.1",
            "Authorization: Digest username=\"alice\"\r\nExpires: 3600\r\n",
        ));
        assert_eq!(a, b, "values and method-specific headers do not count");
    }

    /// The base message of `different_habits_give_different_fingerprints`, edited.
    fn edited(from: &str, to: &str) -> String {
        String::from_utf8(msg(
            "INVITE",
            "a1b2c3d4e5f60718",
            "9f8e7d6c",
            "ab12cd34ef56ab12@h",
            "",
        ))
        .unwrap()
        .replace(from, to)
    }

    #[test]
    fn different_habits_give_different_fingerprints() {
        let base = fingerprint(&msg(
            "INVITE",
            "a1b2c3d4e5f60718",
            "9f8e7d6c",
            "ab12cd34ef56ab12@h",
            "",
        ));
        // another branch shape
        assert_ne!(
            base,
            fingerprint(&msg(
                "INVITE",
                "-1234-1-0",
                "9f8e7d6c",
                "ab12cd34ef56ab12@h",
                ""
            ))
        );
        // another tag length
        assert_ne!(
            base,
            fingerprint(&msg(
                "INVITE",
                "a1b2c3d4e5f60718",
                "9f8e7d6c11",
                "ab12cd34ef56ab12@h",
                ""
            ))
        );
        // compact form of one header
        let compact = edited("Call-ID:", "i:");
        assert_ne!(base, fingerprint(compact.as_bytes()));
        // case of one header name
        let case = edited("Call-ID:", "Call-Id:");
        assert_ne!(base, fingerprint(case.as_bytes()));
        // header order
        let reordered = edited(
            "Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=9f8e7d6c\r\n",
            "From: <sip:alice@example.com>;tag=9f8e7d6c\r\nMax-Forwards: 70\r\n",
        );
        assert_ne!(base, fingerprint(reordered.as_bytes()));
    }

    #[test]
    fn random_tokens_count_by_length_whatever_their_alphabet() {
        // belle-sip draws from letters, digits, `-` and `~`
        let a = fingerprint(&msg("INVITE", ".NiknI8J7a", "r718HsXj8", "3fb1cR4cGu", ""));
        let b = fingerprint(&msg("INVITE", ".YKThOfJ-h", "c7yMzFE8t", "ncOBoh1kD~", ""));
        assert_eq!(a, b);
        let c = fingerprint(&msg("INVITE", ".YKThOfJ-hx", "c7yMzFE8t", "ncOBoh1kD~", ""));
        assert_ne!(a, c);
    }

    #[test]
    fn counters_around_words_are_shapes() {
        // SIPp's tags: [pid]SIPpTag00[call_number]
        let a = fingerprint(&msg(
            "INVITE",
            "-4711-1-0",
            "4711SIPpTag001",
            "1-4711@h",
            "",
        ));
        let b = fingerprint(&msg(
            "INVITE",
            "-1234567-12-0",
            "1234567SIPpTag0012",
            "12-1234567@h",
            "",
        ));
        assert_eq!(a, b);
        // a process id under 1000 (a fresh machine, a container) changes nothing
        let small = fingerprint(&msg("INVITE", "-812-1-0", "812SIPpTag001", "1-812@h", ""));
        assert_eq!(a, small);
        // and its REGISTER scenario's tags, `[pid]R[n]`
        let reg = fingerprint(&msg("REGISTER", "-4711-1-0", "4711R1", "1-4711@h", ""));
        let reg_small = fingerprint(&msg("REGISTER", "-986-1-0", "986R1", "1-986@h", ""));
        assert_eq!(reg, reg_small);
        // random hex of one length, with or without letters in it, is one shape
        let c = fingerprint(&msg(
            "INVITE",
            "a1b2c3d4e5f60718",
            "9f8e7d6c",
            "ab12cd34ef56ab12@h",
            "",
        ));
        let d = fingerprint(&msg(
            "INVITE",
            "0123456789abcdef",
            "0a1b2c3d",
            "fedcba9876543210@h",
            "",
        ));
        assert_eq!(c, d);
    }

    #[test]
    fn sequence_numbers_are_shapes() {
        let a = fingerprint(&msg("INVITE", "-1-4711-0", "1", "1-4711@10.0.0.1", ""));
        let b = fingerprint(&msg(
            "INVITE",
            "-982-4711-3",
            "982",
            "982-4711@10.0.0.1",
            "",
        ));
        assert_eq!(a, b);
    }

    #[test]
    fn garbage_gives_a_value_not_a_panic() {
        for g in [
            &b""[..],
            b"\n",
            b"X\n:\n\n",
            b"INVITE\nVia:;;;branch=\nFrom:>;tag\n",
            &[0xff; 40],
        ] {
            let _ = fingerprint(g);
            let _ = sdp_habits(g);
        }
    }

    #[test]
    fn families_and_scanners() {
        assert_eq!(ua_family("baresip v1.0.0 (x86_64/linux)"), "baresip");
        assert_eq!(ua_family("Linphone/5.1.64 (belle-sip/5.1.64)"), "linphone");
        assert_eq!(ua_family("  "), "");
        assert_eq!(
            scanner_signature("friendly-scanner"),
            Some("friendly-scanner")
        );
        assert_eq!(scanner_signature("SIPVicious/0.3.4"), Some("sipvicious"));
        assert_eq!(scanner_signature("baresip v1.0.0"), None);
        // the first signature of the list wins, wherever it stands
        assert_eq!(
            scanner_signature("sipcli and friendly-scanner"),
            Some("friendly-scanner")
        );
        assert_eq!(scanner_signature("x SMAP"), Some("smap"));
        assert_eq!(scanner_signature("sundayddr/pplsip"), Some("sundayddr"));
        assert_eq!(scanner_signature("sipsca"), None);
        // every signature, alone and at the end of a long text
        for sig in SCANNERS {
            assert_eq!(scanner_signature(sig), Some(sig));
            let long = format!("{}{}", "x".repeat(128 - sig.len()), sig.to_uppercase());
            assert_eq!(scanner_signature(&long), Some(sig));
            let cut = format!("{}{}", "x".repeat(129 - sig.len()), sig);
            assert_eq!(
                scanner_signature(&cut),
                None,
                "only the first 128 bytes count"
            );
        }
    }

    #[test]
    fn sdp_habits_ignore_values_that_change() {
        let a = b"v=0\r\no=- 123456 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
        let b = b"v=0\r\no=- 987654 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
        let c = b"v=0\r\no=user1 53655765 2353687637 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
        assert_eq!(sdp_habits(a), sdp_habits(b));
        assert_ne!(sdp_habits(a), sdp_habits(c));
        assert_eq!(sdp_habits(b""), 0);
    }
}
