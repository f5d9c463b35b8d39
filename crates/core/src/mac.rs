//! A cheap keyed MAC for the values the server writes and later checks itself: digest
//! nonces and dialog tokens. SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast
//! short-input PRF", 2012) is a pseudorandom function under a 128-bit key built for short
//! inputs; two instances under independent keys give a 128-bit tag. It replaces a
//! secret-prefixed SHA-256 that cost about 14,000 instructions per nonce (a tenth of an
//! MD5 registration's work in the core); a tag here costs a few hundred.

/// Appends `v` as lower-case hex digits without leading zeros, but at least `width`
/// of them (`format!("{v:0width$x}")`, `width` from 1 to 16): written on the stack and
/// appended at once (a branch, a tag, a nonce and a dialog token each have some).
pub(crate) fn push_hex_u64(out: &mut String, v: u64, width: usize) {
    // all sixteen digits at once: each half's nibbles spread one to a byte, then each
    // byte turned into its digit (no byte carries into the next)
    let digits = |half: u32| {
        const ONES: u64 = 0x0101_0101_0101_0101;
        let mut x = u64::from(half);
        x = (x | (x << 16)) & 0x0000_ffff_0000_ffff;
        x = (x | (x << 8)) & 0x00ff_00ff_00ff_00ff;
        x = (x | (x << 4)) & 0x0f0f_0f0f_0f0f_0f0f;
        // a nibble of 10 or more gets 0x27 more: past '9' to 'a'
        let letters = ((x + ONES * 6) >> 4) & ONES;
        (x + ONES * u64::from(b'0') + letters * 0x27).to_be_bytes()
    };
    let mut buf = [0u8; 16];
    let (high, low) = buf.split_at_mut(8);
    high.copy_from_slice(&digits((v >> 32) as u32));
    low.copy_from_slice(&digits(v as u32));
    let significant = (16 - v.leading_zeros() as usize / 4).max(width.clamp(1, 16));
    let digits = buf.get(16 - significant..).unwrap_or_default();
    // (hex digits are ASCII)
    out.push_str(std::str::from_utf8(digits).unwrap_or_default());
}

/// A SipHash-2-4 key pair (two independent 128-bit keys).
#[derive(Clone)]
pub(crate) struct Mac {
    keys: [(u64, u64); 2],
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    if let Some(s) = b.get(i..i + 8) {
        w.copy_from_slice(s);
    }
    u64::from_le_bytes(w)
}

/// SipHash-2-4 of `msg` under `(k0, k1)`, as the paper specifies (little-endian words,
/// the length in the top byte of the last block).
pub(crate) fn siphash24((k0, k1): (u64, u64), msg: &[u8]) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
    let full = msg.len() / 8 * 8;
    let mut i = 0;
    while i < full {
        let m = u64_at(msg, i);
        v[3] ^= m;
        round(&mut v);
        round(&mut v);
        v[0] ^= m;
        i += 8;
    }
    let mut last = [0u8; 8];
    for (d, s) in last.iter_mut().zip(msg.get(full..).unwrap_or_default()) {
        *d = *s;
    }
    let m = u64::from_le_bytes(last) | ((msg.len() as u64 & 0xff) << 56);
    v[3] ^= m;
    round(&mut v);
    round(&mut v);
    v[0] ^= m;
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

impl Mac {
    /// Keys from 32 secret bytes.
    pub(crate) fn new(secret: &[u8; 32]) -> Mac {
        Mac {
            keys: [
                (u64_at(secret, 0), u64_at(secret, 8)),
                (u64_at(secret, 16), u64_at(secret, 24)),
            ],
        }
    }

    /// Keys for one use (`label`) of a longer-lived key: SHA-256 of the label, a zero
    /// byte and the key (so that the nonces' and the dialog tokens' MACs are independent).
    pub(crate) fn derived(label: &[u8], key: &[u8; 32]) -> Mac {
        use sha2::{Digest as _, Sha256};
        let k: [u8; 32] = Sha256::new()
            .chain_update(label)
            .chain_update([0u8])
            .chain_update(key)
            .finalize()
            .into();
        Mac::new(&k)
    }

    /// The first 8 bytes of [`Mac::tag`] (only the first key's SipHash is computed).
    pub(crate) fn tag64(&self, msg: &[u8]) -> [u8; 8] {
        siphash24(self.keys[0], msg).to_le_bytes()
    }

    /// The 16-byte tag of `msg`.
    pub(crate) fn tag(&self, msg: &[u8]) -> [u8; 16] {
        let mut out = [0u8; 16];
        let (a, b) = out.split_at_mut(8);
        a.copy_from_slice(&siphash24(self.keys[0], msg).to_le_bytes());
        b.copy_from_slice(&siphash24(self.keys[1], msg).to_le_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_papers_test_vectors() {
        // Appendix A of the SipHash paper: key 00 01 .. 0f, message 00 01 .. 0e.
        let key: Vec<u8> = (0u8..16).collect();
        let k = (u64_at(&key, 0), u64_at(&key, 8));
        let msg: Vec<u8> = (0u8..15).collect();
        assert_eq!(siphash24(k, &msg), 0xa129_ca61_49be_45e5);
        // The reference implementation's vector for the empty message (vectors.h,
        // 64-bit output, same key).
        assert_eq!(
            siphash24(k, &[]).to_le_bytes(),
            [0x31, 0x0e, 0x0e, 0xdd, 0x47, 0xdb, 0x6f, 0x72]
        );
    }

    #[test]
    #[allow(deprecated)] // std's SipHasher is SipHash-2-4: a second implementation to agree with
    fn agrees_with_std_siphasher_at_every_length() {
        use std::hash::Hasher as _;
        let msg: Vec<u8> = (0u8..64).map(|i| i.wrapping_mul(37)).collect();
        for (k0, k1) in [
            (0, 0),
            (0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908),
            (u64::MAX, 3),
        ] {
            for n in 0..=64 {
                let mut h = std::hash::SipHasher::new_with_keys(k0, k1);
                h.write(&msg[..n]);
                assert_eq!(siphash24((k0, k1), &msg[..n]), h.finish(), "length {n}");
            }
        }
    }

    #[test]
    fn hex_digits_are_the_formatter_s() {
        for v in [
            0u64,
            1,
            9,
            10,
            15,
            16,
            255,
            256,
            0xabc,
            1 << 32,
            (1 << 32) - 1,
            u64::MAX,
            0x0f00_0000_0000_0001,
        ]
        .into_iter()
        // every digit at every place, and a spread of others
        .chain((0..16).flat_map(|d| (0..16).map(move |k| d << (4 * k))))
        .chain((0..2_000u64).scan(0x9e37_79b9_7f4a_7c15u64, |x, _| {
            *x ^= *x << 13;
            *x ^= *x >> 7;
            *x ^= *x << 17;
            Some(*x >> (*x % 64))
        })) {
            for width in 1..=16 {
                let mut s = String::from("x");
                push_hex_u64(&mut s, v, width);
                assert_eq!(s, format!("x{v:0width$x}"), "{v} {width}");
            }
        }
    }

    #[test]
    fn tags_depend_on_every_key_byte_and_message_byte() {
        let s = [7u8; 32];
        let m = Mac::new(&s);
        let t = m.tag(b"0123456789abcdef");
        for i in 0..32 {
            let mut s2 = s;
            s2[i] ^= 1;
            assert_ne!(Mac::new(&s2).tag(b"0123456789abcdef"), t, "key byte {i}");
        }
        assert_eq!(m.tag64(b"0123456789abcdef"), t[..8]);
        for i in 0..16 {
            let mut msg = *b"0123456789abcdef";
            msg[i] ^= 1;
            assert_ne!(m.tag(&msg), t, "message byte {i}");
        }
    }
}
