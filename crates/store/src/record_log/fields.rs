//! The fields of a record line, each followed by its tab (see the module above).

use crate::text::addr_text;

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether a word may hold a byte the line escapes (`\`, tab, LF, CR): a byte below
/// 0x20 or a backslash. (It flags every such byte; a flagged word is looked at byte
/// by byte, where control bytes other than those three pass as they are.)
fn may_need_escape(w: u64) -> bool {
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
    let x = w ^ (ONES * u64::from(b'\\'));
    let backslash = x.wrapping_sub(ONES) & !x & HIGHS;
    below_space | backslash != 0
}

/// Appends `s` to `out` with the separators escaped.
pub(super) fn push_field(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    let (words, tail) = b.as_chunks::<8>();
    let plain = !words
        .iter()
        .any(|w| may_need_escape(u64::from_le_bytes(*w)))
        && !tail
            .iter()
            .any(|&c| matches!(c, b'\\' | b'\t' | b'\n' | b'\r'));
    if plain {
        out.extend_from_slice(b);
        out.push(b'\t');
        return;
    }
    for &c in b {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(c),
        }
    }
    out.push(b'\t');
}

pub(super) fn push_num(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.push(b'\t');
}

pub(super) fn push_opt(out: &mut Vec<u8>, n: Option<impl itoa::Integer>) {
    if let Some(n) = n {
        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    }
    out.push(b'\t');
}

/// Eight hex digits of `x`, most significant first: each nibble spread to a byte of
/// its own, then turned into its digit in every byte at once.
fn hex8(x: u32) -> [u8; 8] {
    let x = u64::from(x);
    let x = ((x & 0xffff_0000) << 16) | (x & 0xffff);
    let x = ((x & 0x0000_ff00_0000_ff00) << 8) | (x & 0x0000_00ff_0000_00ff);
    let x = ((x & 0x00f0_00f0_00f0_00f0) << 4) | (x & 0x000f_000f_000f_000f);
    // (a nibble above 9 gets `a`-`9`-1 more: its byte plus 6 carries into bit 4)
    let letters = ((x + ONES * 6) >> 4) & ONES;
    (x + ONES * u64::from(b'0') + letters * u64::from(b'a' - b'9' - 1)).to_be_bytes()
}

pub(super) fn push_hex(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&hex8((v >> 32) as u32));
    out.extend_from_slice(&hex8(v as u32));
    out.push(b'\t');
}

/// Ends a line: its last field's tab becomes the LF.
pub(super) fn end_line(out: &mut [u8]) {
    if let Some(last) = out.last_mut() {
        *last = b'\n';
    }
}

pub(super) fn push_source(out: &mut Vec<u8>, a: &std::net::SocketAddr) {
    match a {
        std::net::SocketAddr::V4(v4) => {
            let mut buf = itoa::Buffer::new();
            for (i, o) in v4.ip().octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                out.extend_from_slice(buf.format(o).as_bytes());
            }
            out.push(b':');
            out.extend_from_slice(buf.format(v4.port()).as_bytes());
        }
        std::net::SocketAddr::V6(_) => out.extend_from_slice(addr_text(a).as_bytes()),
    }
    out.push(b'\t');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_digits_are_those_of_format() {
        let mut x: u64 = 0x0123_4567_89ab_cdef;
        for v in [0, u64::MAX, 0x0123_4567_89ab_cdef, 0xa0a0_0909_fafa_1010]
            .into_iter()
            .chain((0..2000).map(|_| {
                // (xorshift: every nibble value in every place, many times)
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            }))
        {
            let mut out = Vec::new();
            push_hex(&mut out, v);
            assert_eq!(out, format!("{v:016x}\t").into_bytes());
        }
    }

    #[test]
    fn fields_are_escaped_exactly_where_a_byte_needs_it() {
        let escaped = |s: &str| {
            let mut o = String::new();
            for c in s.chars() {
                match c {
                    '\\' => o.push_str("\\\\"),
                    '\t' => o.push_str("\\t"),
                    '\n' => o.push_str("\\n"),
                    '\r' => o.push_str("\\r"),
                    c => o.push(c),
                }
            }
            o.push('\t');
            o.into_bytes()
        };
        let base = "abcdefghijklmnopqrstuvwxyz-0123456789";
        let mut n = 0;
        // every ASCII character and two that are not, at every place of words and tail
        for len in [1, 7, 8, 9, 16, 17, 30] {
            for at in 0..len {
                for c in (0u8..0x80).map(char::from).chain(['é', '€']) {
                    let s: String = (base.chars().cycle().take(len).enumerate())
                        .map(|(i, b)| if i == at { c } else { b })
                        .collect();
                    let mut out = Vec::new();
                    push_field(&mut out, &s);
                    assert_eq!(out, escaped(&s), "{s:?}");
                    n += 1;
                }
            }
        }
        assert!(n > 10_000, "{n}");
    }
}
