//! How numbers and addresses are written into rows, without `core::fmt`: a record's
//! source address and fingerprint are written for every registration and call, and
//! `SocketAddr`'s `Display` (padding support, one `fmt` call per octet) cost more than
//! the rest of the row's binding.

use std::net::SocketAddr;

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// `{v:016x}`: 16 lower-case hex digits, big-endian.
pub(crate) fn hex16(v: u64) -> String {
    let mut s = String::with_capacity(16);
    for shift in (0..16).rev() {
        let d = (v >> (shift * 4)) & 15;
        s.push(char::from(DIGITS.get(d as usize).copied().unwrap_or(b'0')));
    }
    s
}

fn push_dec(out: &mut String, n: u16) {
    let mut started = false;
    for d in [10_000, 1_000, 100, 10, 1] {
        let q = n / d % 10;
        if started || q != 0 || d == 1 {
            out.push(char::from(b'0' + q as u8));
            started = true;
        }
    }
}

/// The address as `SocketAddr`'s `Display` writes it (`192.0.2.1:5060`, `[2001:db8::1]:5060`).
pub fn addr_text(a: &SocketAddr) -> String {
    match a {
        SocketAddr::V4(v4) => {
            let mut s = String::with_capacity(21);
            for (i, o) in v4.ip().octets().into_iter().enumerate() {
                if i > 0 {
                    s.push('.');
                }
                push_dec(&mut s, u16::from(o));
            }
            s.push(':');
            push_dec(&mut s, v4.port());
            s
        }
        SocketAddr::V6(_) => a.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_display_writes_them() {
        for a in [
            "192.0.2.1:5060",
            "0.0.0.0:0",
            "255.255.255.255:65535",
            "10.0.100.9:10",
            "[2001:db8::1]:5060",
            "[::ffff:1.2.3.4]:1",
        ] {
            let a: SocketAddr = a.parse().unwrap();
            assert_eq!(addr_text(&a), a.to_string());
        }
        for v in [0, 1, 0xabc, u64::MAX, 0x0123_4567_89ab_cdef] {
            assert_eq!(hex16(v), format!("{v:016x}"));
        }
    }
}
