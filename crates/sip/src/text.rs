//! Numbers, addresses and bytes appended to the text of a message without `core::fmt`
//! (numbers and addresses are written into every message).
use std::net::Ipv4Addr;

/// Where canonical text is written: a `String` (the public writers) or a byte vector
/// (`Message::write_to`, which so needs no intermediate `String` and no copy of it).
/// Everything written is text, so a byte vector written only through this holds UTF-8.
pub(crate) trait Out {
    /// Appends text.
    fn put(&mut self, s: &str);
    /// Appends one ASCII byte.
    fn put_byte(&mut self, b: u8);
    /// Appends ASCII bytes (the caller wrote only ASCII into them).
    fn put_ascii(&mut self, b: &[u8]);
}

impl Out for String {
    #[inline]
    fn put(&mut self, s: &str) {
        self.push_str(s);
    }
    #[inline]
    fn put_byte(&mut self, b: u8) {
        self.push(char::from(b));
    }
    #[inline]
    fn put_ascii(&mut self, b: &[u8]) {
        // (ASCII by the caller's word: the check cannot fail, and costs little on the
        // few bytes of an address)
        self.push_str(std::str::from_utf8(b).unwrap_or_default());
    }
}

impl Out for Vec<u8> {
    #[inline]
    fn put(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }
    #[inline]
    fn put_byte(&mut self, b: u8) {
        self.push(b);
    }
    #[inline]
    fn put_ascii(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }
}

/// An [`Out`] that writes nothing: it compares what it is given with an expected text,
/// piece by piece, and remembers whether all of it matched so far.
pub(crate) struct Compare<'t> {
    rest: &'t [u8],
    same: bool,
}

impl<'t> Compare<'t> {
    pub(crate) fn new(expected: &'t [u8]) -> Self {
        Compare {
            rest: expected,
            same: true,
        }
    }

    /// Whether the whole text was written, and nothing else.
    pub(crate) fn matched(&self) -> bool {
        self.same && self.rest.is_empty()
    }
}

impl Out for Compare<'_> {
    #[inline]
    fn put(&mut self, s: &str) {
        self.put_ascii(s.as_bytes());
    }
    #[inline]
    fn put_byte(&mut self, b: u8) {
        self.put_ascii(&[b]);
    }
    #[inline]
    fn put_ascii(&mut self, b: &[u8]) {
        match self.rest.strip_prefix(b) {
            Some(r) if self.same => self.rest = r,
            _ => self.same = false,
        }
    }
}

/// `core::fmt` output into an [`Out`] (for the rare values written through `Display`,
/// such as an IPv6 address).
pub(crate) struct Fmt<'o, O: Out>(pub(crate) &'o mut O);

impl<O: Out> std::fmt::Write for Fmt<'_, O> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.put(s);
        Ok(())
    }
}

/// Appends a dotted quad as `Ipv4Addr`'s `Display` writes it. Hand-rolled: the formatter
/// machinery was a visible share of the proxy's CPU (several addresses per message,
/// every message). Each octet's digits come from a table (no division), gathered in a
/// small buffer and appended at once.
pub(crate) fn put_ipv4<O: Out>(out: &mut O, a: &Ipv4Addr) {
    // (each octet's entry is stored whole, four bytes, and the length moves on by its
    // digits: at most 15 bytes, the last store ends at byte 16 at the latest)
    let mut buf = [0u8; 16];
    let mut n = 0;
    for (i, o) in a.octets().into_iter().enumerate() {
        let e = OCTET_DIGITS.get(usize::from(o)).copied().unwrap_or(0);
        let digits = if i == 0 {
            e & 0x00ff_ffff
        } else {
            (e << 8) | u32::from(b'.')
        };
        if let Some(slot) = buf.get_mut(n..n + 4) {
            slot.copy_from_slice(&digits.to_le_bytes());
        }
        n += (e >> 24) as usize + usize::from(i > 0);
    }
    out.put_ascii(buf.get(..n).unwrap_or_default());
}

/// The decimal digits of each octet value, little-endian in the low three bytes, and
/// their count in the high byte.
static OCTET_DIGITS: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut v = 0;
    while v < 256 {
        let (digits, len) = if v >= 100 {
            (
                (b'0' as u32 + v / 100)
                    | ((b'0' as u32 + v / 10 % 10) << 8)
                    | ((b'0' as u32 + v % 10) << 16),
                3,
            )
        } else if v >= 10 {
            ((b'0' as u32 + v / 10) | ((b'0' as u32 + v % 10) << 8), 2)
        } else {
            (b'0' as u32 + v, 1)
        };
        // (evaluated at compile time: an index out of range fails the build)
        #[allow(clippy::indexing_slicing)]
        {
            t[v as usize] = digits | (len << 24);
        }
        v += 1;
    }
    t
};

/// Appends a decimal number without going through `core::fmt` (a digit-pair table
/// instead of one division per digit: numbers are written into every message).
pub fn push_num(out: &mut String, n: u64) {
    put_num(out, n);
}

/// [`push_num`] into any [`Out`].
#[inline]
pub(crate) fn put_num<O: Out>(out: &mut O, n: u64) {
    out.put(itoa::Buffer::new().format(n));
}

/// Appends bytes as lower-case hex without allocating (digests in events, dialog
/// tokens, nonces, identifier rewrites). The digits come from the `hex` crate, the one
/// hex encoder of the workspace; this only spares the hot path a `String` per call.
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    let mut buf = [0u8; 64];
    for chunk in bytes.chunks(buf.len() / 2) {
        let digits = buf.get_mut(..chunk.len() * 2).unwrap_or_default();
        // (neither fails: the slice is twice the chunk, and hex digits are ASCII)
        if hex::encode_to_slice(chunk, &mut *digits).is_ok() {
            out.push_str(std::str::from_utf8(digits).unwrap_or_default());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_quads_as_display_writes_them() {
        let mut out = String::from("x");
        for a in [0u8, 1, 9, 10, 42, 99, 100, 127, 199, 200, 255] {
            for b in [0u8, 7, 10, 100, 255] {
                if a == 0 {
                    // every octet value in every place
                    for v in 0..=255u8 {
                        for ip in [[v, b, 0, 1], [1, v, b, 0], [0, 1, v, b], [b, 0, 1, v]] {
                            let ip = Ipv4Addr::from(ip);
                            out.truncate(1);
                            put_ipv4(&mut out, &ip);
                            assert_eq!(out, format!("x{ip}"));
                        }
                    }
                }
                let ip = Ipv4Addr::new(a, b, 255 - b, b / 3);
                out.truncate(1);
                put_ipv4(&mut out, &ip);
                assert_eq!(out, format!("x{ip}"));
                let mut v = b"x".to_vec();
                put_ipv4(&mut v, &ip);
                assert_eq!(v, format!("x{ip}").into_bytes());
            }
        }
    }
}
