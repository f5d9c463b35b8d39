//! Numbers, addresses and bytes appended to the text of a message without `core::fmt`
//! (numbers and addresses are written into every message).
use std::net::Ipv4Addr;

/// Appends a dotted quad as `Ipv4Addr`'s `Display` writes it. Hand-rolled: the formatter
/// machinery was a visible share of the proxy's CPU (several addresses per message,
/// every message); so were four number conversions and seven appends (about 330
/// instructions an address, against about 190 for digits pushed as they are).
pub(crate) fn push_ipv4(out: &mut String, a: &Ipv4Addr) {
    out.reserve(15);
    for (i, o) in a.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        if o >= 100 {
            out.push(char::from(b'0' + o / 100));
        }
        if o >= 10 {
            out.push(char::from(b'0' + o / 10 % 10));
        }
        out.push(char::from(b'0' + o % 10));
    }
}

/// Appends a decimal number without going through `core::fmt` (a digit-pair table
/// instead of one division per digit: numbers are written into every message).
pub fn push_num(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
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
                let ip = Ipv4Addr::new(a, b, 255 - b, b / 3);
                out.truncate(1);
                push_ipv4(&mut out, &ip);
                assert_eq!(out, format!("x{ip}"));
            }
        }
    }
}
