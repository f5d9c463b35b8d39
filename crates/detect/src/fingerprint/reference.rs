//! The fingerprint as it was first written (several passes per value), kept to check
//! that the faster one gives the same value for the same input: stored profiles and
//! learned fingerprints depend on it.
#![allow(clippy::indexing_slicing, clippy::unwrap_used)]

use super::{Fnv, CORE};

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

#[test]
fn core_index_is_unchanged() {
    let names = [
        "via",
        "Via",
        "VIA",
        "v",
        "V",
        "from",
        "From",
        "f",
        "to",
        "To",
        "t",
        "call-id",
        "Call-ID",
        "i",
        "cseq",
        "CSeq",
        "max-forwards",
        "Max-Forwards",
        "contact",
        "Contact",
        "m",
        "x",
        "",
        "vio",
        "fron",
        "cseq ",
        "call-ix",
        "contacT",
        "max_forwards",
        "content",
        "cantact",
        "callid",
        "to ",
        "tO",
        "cAll-id",
        "Content-Length",
        "authorization",
        "Expires",
    ];
    // (the new code reads the name off the line: it must find the same core header,
    // name length and colon as a colon search, a trim and `core_index` within the line)
    for n in names {
        for suffix in [
            ":", " :", "\t :v", "", "x:", "\r\n:", ":\r\n", "-:", " x:", "\n", "\t",
        ] {
            let line = format!("{n}{suffix}");
            let line = line.as_bytes();
            let within = &line[..memchr::memchr(b'\n', line).unwrap_or(line.len())];
            let expected = memchr::memchr(b':', within).and_then(|colon| {
                let name = trim(&within[..colon]);
                core_index(name).map(|i| (i, name.len(), colon))
            });
            assert_eq!(super::core_name(line), expected, "{n}{suffix:?}");
        }
    }
}

pub(super) fn shape(h: &mut Fnv, v: &[u8]) {
    let letters = v.iter().any(u8::is_ascii_alphabetic);
    let lower = v.iter().any(u8::is_ascii_lowercase);
    let upper = v.iter().any(u8::is_ascii_uppercase);
    let long_digits = v.len() >= 16 && v.iter().all(u8::is_ascii_digit);
    if (letters && v.iter().all(u8::is_ascii_hexdigit) && !(lower && upper)) || long_digits {
        h.byte(b'H');
        h.byte(v.len().min(255) as u8);
        h.byte(u8::from(upper));
        h.sep();
        return;
    }
    let (mut words, mut letter_count, mut in_word) = (0usize, 0usize, false);
    let (mut longest_digits, mut digit_run) = (0usize, 0usize);
    for c in v {
        if c.is_ascii_alphabetic() {
            words += usize::from(!in_word);
            in_word = true;
            letter_count += 1;
        } else {
            in_word = false;
        }
        digit_run = if c.is_ascii_digit() { digit_run + 1 } else { 0 };
        longest_digits = longest_digits.max(digit_run);
    }
    // (SIPp's `[pid]SIPpTag00[n]`: with a process id under 1000 the letters outnumber
    // the digits, but the word still sits between two counters)
    let digits = v.iter().filter(|c| c.is_ascii_digit()).count();
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

pub(super) fn fingerprint(raw: &[u8]) -> u64 {
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
        let Some(colon) = memchr::memchr(b':', line) else {
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

/// Values of every kind the shape rules tell apart, and their neighbours.
fn values() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        "",
        "a",
        "1",
        "-",
        "abcdef",
        "ABCDEF",
        "aBcDeF",
        "a1b2c3d4e5f60718",
        "A1B2C3D4E5F6",
        "9f8e7d6c",
        "0123456789",
        "012345678901234",
        "0123456789012345",
        "01234567890123456789",
        "hT5ApqRDkw",
        "gh1234klmn",
        "4711ghijkl",
        "ghijkl4711",
        "g12345678h",
        "Zq~9981-xY",
        "31216SIPpTag001",
        "4711SIPpTag0042",
        "4711R1",
        "31216R2071",
        "1-4711",
        "22-31216",
        "-4711-1-0",
        "-1234567-12-0",
        "812SIPpTag001",
        "986R1",
        "ncOBoh1kD~",
        ".NiknI8J7a",
        "r718HsXj8",
        "abcdefghijklmnop",
        "ABCDEFGHIJKLMNOP",
        "AbCdEfGhIjKlMnOp",
        "12ab34",
        "1234ab5678",
        "12a",
        "a12",
        "1234abcdef5678",
        "1234abcdefg5678",
        "xyz",
        "776asdhds",
        "1928301774",
        "a84b4c76e66710",
        "\u{e9}t\u{e9}1234",
        "12\u{ff}34",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    // a small generator's strings over an alphabet of every class
    let alphabet = b"aZf9G0-~.F3xQ\xc3";
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for len in 0..80 {
        for _ in 0..40 {
            let mut s = Vec::new();
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                s.push(alphabet[(x % alphabet.len() as u64) as usize]);
            }
            v.push(s);
        }
    }
    v
}

#[test]
fn shape_is_unchanged() {
    for v in values() {
        let (mut a, mut b) = (Fnv::new(), Fnv::new());
        shape(&mut a, &v);
        super::shape(&mut b, &v);
        assert_eq!(a.0, b.0, "{:?}", String::from_utf8_lossy(&v));
    }
}

#[test]
fn fingerprint_is_unchanged() {
    let base = "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK{v};rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag={v}\r\nTo: <sip:alice@example.com>\r\nCall-ID: {v}@10.0.0.1\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@10.0.0.1>\r\nAuthorization: Digest username=\"alice\", realm=\"x\"\r\nUser-Agent: x\r\nContent-Length: 0\r\n\r\n";
    let variants = [
        ("Via:", "v :"),
        ("Call-ID:", "i:"),
        ("From: <sip:alice@example.com>", "f:sip:alice@example.com"),
        ("\r\n", "\n"),
        ("Max-Forwards: 70\r\n", ""),
        ("SIP/2.0/UDP", "sip/2.0/udp"),
        (";rport", ""),
        ("To:", "To:\t "),
        (
            "Contact: <sip:alice@10.0.0.1>\r\n",
            "Contact: <sip:alice@10.0.0.1>\r\n folded\r\n",
        ),
        ("Via: SIP", "Via: SIP/2.0/TCP h;branch=z9hG4bKx\r\nVia: SIP"),
        ("", ""),
    ];
    let mut n = 0;
    for v in values().iter().step_by(7) {
        let v = String::from_utf8_lossy(v).replace(['\r', '\n'], "");
        for (from, to) in variants {
            let msg = base.replace("{v}", &v);
            let msg = if from.is_empty() {
                msg
            } else {
                msg.replacen(from, to, 1)
            };
            assert_eq!(
                fingerprint(msg.as_bytes()),
                super::fingerprint(msg.as_bytes()),
                "{msg}"
            );
            n += 1;
        }
    }
    for g in [
        &b""[..],
        b"\n",
        b"X\n:\n\n",
        b"INVITE\nVia:;;;branch=\nFrom:>;tag\n",
        &[0xff; 40],
    ] {
        assert_eq!(fingerprint(g), super::fingerprint(g));
    }
    assert!(n > 1000);
}

pub(super) fn sdp_habits(body: &[u8], account: &[u8]) -> u64 {
    if body.is_empty() {
        return 0;
    }
    let mut h = Fnv::new();
    let mut media = 0;
    let mut previous: Option<Vec<u8>> = None;
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
        let name = (t == b'a').then(|| {
            v.split(|&b| b == b':' || b == b' ')
                .next()
                .unwrap_or_default()
                .to_vec()
        });
        let again = name.is_some() && name == previous;
        previous = name;
        if again {
            continue;
        }
        h.byte(t);
        match t {
            b'o' => {
                let mut f = v.split(|&b| b == b' ');
                match f.next().unwrap_or_default() {
                    u if u == account && !account.is_empty() => h.byte(0xfe),
                    u => h.bytes(u),
                }
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

fn ua_family(ua: &str) -> String {
    let word = ua.trim().split(['/', ' ', '(']).next().unwrap_or("");
    let mut out = String::with_capacity(word.len().min(32));
    for b in word
        .bytes()
        .filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        .take(32)
    {
        out.push(char::from(b.to_ascii_lowercase()));
    }
    out
}

#[test]
fn ua_family_is_unchanged() {
    for ua in [
        "",
        "  ",
        "sipp-bench",
        " Linphone/5.1.64 (belle-sip/5.1.64)",
        "baresip v1.0.0",
        "Zoiper(x)",
        "\u{e9}t\u{e9}-Phone_2.x/1",
        "\u{3000}MicroSIP\u{3000}/3",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/1",
        "a!b@c#d$e%f^g&h*i[j]k{l}m|n;o:p'q\"r,s.t<u>v?w~x`y=z+A_B-C D",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\u{e9}.",
    ] {
        assert_eq!(super::ua_family(ua), ua_family(ua), "{ua}");
    }
}
