//! The vocabularies of [`crate::vocab`] applied to a parsed description, the bounds on
//! identifiers a callee must echo, and the rewrites of identifiers it need not see as
//! written.
//!
//! Identifiers that travel in media packets or STUN checks (`mid`, `rid`, ICE
//! credentials, the DTLS fingerprint, SSRCs) must reach the callee as written: they are
//! bounded to their grammar and a length real clients stay within, and an offer beyond
//! the bound is refused (488), since dropping them would break the call. Identifiers
//! that only name things inside the description (`msid` stream and track ids, the
//! `cname` of `a=ssrc`, the `o=` session id and address) are rewritten: each becomes 16
//! hex digits of a keyed hash of (Call-ID, value), so the same value maps to the same
//! replacement for the whole dialog (re-offers stay valid under RFC 3264) and the
//! sender can no longer choose what the callee reads there.

use std::borrow::Cow;

use palisade_sdp::{Attribute, Session};

use crate::body::{drop_item, Refuse};
use crate::{vocab, DropKind, Dropped, Refusal};

/// Longest `mid` and `label` carried (real clients: `0`, `audio`, `sdparta_0`).
pub const MAX_MID: usize = 16;
/// Longest `ice-ufrag` carried (Chrome 4, Firefox 8, libnice 4-16).
pub const MAX_ICE_UFRAG: usize = 32;
/// Longest `ice-pwd` carried (Chrome 24, Firefox 32).
pub const MAX_ICE_PWD: usize = 64;

fn mid_ok(m: &str) -> bool {
    !m.is_empty()
        && m.len() <= MAX_MID
        && m.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn line_of(a: &Attribute) -> String {
    let mut line = String::from("a=");
    a.write(&mut line);
    line
}

/// Applies the vocabularies and bounds to every attribute of the description.
pub(crate) fn check<'a>(
    s: &mut Session<'a>,
    dropped: &mut Vec<Dropped>,
    r: &Refuse<'_>,
) -> Result<(), Refusal> {
    // The media ids, as `Cow`s of the description: a copy of a borrowed one is free.
    let mut mids: Vec<Cow<'a, str>> = Vec::new();
    for m in &s.media {
        for a in &m.attributes {
            if let Attribute::Mid(x) = a {
                if !mid_ok(x) {
                    return Err(r.with(
                        488,
                        format!(
                            "SDP mid longer than {MAX_MID} characters or outside [A-Za-z0-9-_.]"
                        ),
                    ));
                }
                mids.push(x.clone());
            }
        }
    }
    attributes(&mut s.attributes, &mids, dropped, r)?;
    for m in &mut s.media {
        attributes(&mut m.attributes, &mids, dropped, r)?;
    }
    Ok(())
}

/// Whether [`attributes`] has a vocabulary or bound for this kind of attribute (every
/// kind named, so that a new one needs a decision here).
fn checked_here(a: &Attribute) -> bool {
    match a {
        Attribute::RtcpFb { .. }
        | Attribute::Ssrc { .. }
        | Attribute::Group { .. }
        | Attribute::SsrcGroup { .. }
        | Attribute::Label(_)
        | Attribute::Candidate(_)
        | Attribute::IceOptions(_)
        | Attribute::Crypto { .. }
        | Attribute::Extmap { .. }
        | Attribute::Other { .. }
        | Attribute::IceUfrag(_)
        | Attribute::IcePwd(_) => true,
        Attribute::Rtpmap { .. }
        | Attribute::Fmtp { .. }
        | Attribute::Ptime(_)
        | Attribute::MaxPtime(_)
        | Attribute::Direction(_)
        | Attribute::Rtcp { .. }
        | Attribute::RtcpMux
        | Attribute::RtcpRsize
        | Attribute::IceLite
        | Attribute::EndOfCandidates
        | Attribute::Fingerprint { .. }
        | Attribute::Setup(_)
        | Attribute::Mid(_)
        | Attribute::Msid { .. }
        | Attribute::MsidSemantic(_)
        | Attribute::Framerate(_)
        | Attribute::Content(_) => false,
    }
}

fn attributes(
    attrs: &mut Vec<Attribute>,
    mids: &[Cow<'_, str>],
    dropped: &mut Vec<Dropped>,
    r: &Refuse<'_>,
) -> Result<(), Refusal> {
    // A phone's attributes (rtpmap, fmtp, ptime, a direction) are all kinds with
    // nothing to check here: one look, no passes.
    if !attrs.iter().any(checked_here) {
        return Ok(());
    }
    for a in attrs.iter() {
        match a {
            Attribute::IceUfrag(x) if x.len() > MAX_ICE_UFRAG => {
                return Err(r.with(
                    488,
                    format!("SDP ice-ufrag longer than {MAX_ICE_UFRAG} characters"),
                ))
            }
            Attribute::IcePwd(x) if x.len() > MAX_ICE_PWD => {
                return Err(r.with(
                    488,
                    format!("SDP ice-pwd longer than {MAX_ICE_PWD} characters"),
                ))
            }
            _ => {}
        }
    }
    let mut removed: Vec<(String, String)> = Vec::new();
    attrs.retain_mut(|a| {
        let keep = match a {
            Attribute::RtcpFb { value, .. } => vocab::rtcp_fb_ok(value),
            Attribute::Ssrc { name, .. } => vocab::ssrc_attribute_ok(name),
            Attribute::Group { semantics, ids } => {
                vocab::group_ok(semantics) && ids.iter().all(|i| mids.iter().any(|m| m == i))
            }
            Attribute::SsrcGroup { semantics, .. } => vocab::ssrc_group_ok(semantics),
            Attribute::Label(x) => mid_ok(x),
            Attribute::Candidate(c) => {
                if vocab::candidate_transport_ok(&c.transport) && vocab::candidate_type_ok(&c.typ) {
                    keep_where(
                        &mut c.extensions,
                        |(k, v)| vocab::candidate_extension_ok(k, v),
                        |(k, v)| format!("a=candidate:... {k} {v}"),
                        "candidate",
                        &mut removed,
                    );
                    true
                } else {
                    false
                }
            }
            Attribute::IceOptions(list) => {
                keep_where(
                    list,
                    |t| vocab::ice_option_ok(t),
                    |t| format!("a=ice-options:{t}"),
                    "ice-options",
                    &mut removed,
                );
                !list.is_empty()
            }
            Attribute::Crypto {
                suite,
                key_params,
                session_params,
                ..
            } => {
                if vocab::crypto_key_ok(suite, key_params) {
                    keep_where(
                        session_params,
                        |p| vocab::crypto_session_param_ok(p),
                        |p| format!("a=crypto:... {p}"),
                        "crypto",
                        &mut removed,
                    );
                    true
                } else {
                    false
                }
            }
            Attribute::Extmap { extra, .. } => {
                // Extension attributes after the URI (RFC 8285 section 8) are defined per
                // extension; none of the registered ones browsers use needs them.
                if let Some(e) = extra.take() {
                    removed.push(("extmap".into(), format!("a=extmap:... {e}")));
                }
                true
            }
            Attribute::Other { name, value } => {
                vocab::other_value_ok(name, value.as_deref()) != Some(false)
            }
            _ => true,
        };
        if !keep {
            removed.push((a.name().to_string(), line_of(a)));
        }
        keep
    });
    for (name, line) in removed {
        drop_item(dropped, DropKind::Attribute, &name, &line);
    }
    Ok(())
}

/// Keeps the items of a list that pass `ok`; each one removed is noted (attribute name,
/// the text shown for it) for the report.
fn keep_where<T>(
    items: &mut Vec<T>,
    ok: impl Fn(&T) -> bool,
    show: impl Fn(&T) -> String,
    name: &str,
    removed: &mut Vec<(String, String)>,
) {
    items.retain(|x| {
        let keep = ok(x);
        if !keep {
            removed.push((name.to_string(), show(x)));
        }
        keep
    });
}

/// A keyed replacement for an identifier: 8 hex digits derived from (Call-ID, value)
/// followed by 8 hex digits that authenticate them (a MAC under the server's key). The
/// same value in the same dialog always gets the same replacement, and a replacement
/// is recognised and kept as it is (the rewrite is idempotent, so a forwarded offer is
/// a fixed point of the shield), while a sender cannot make up one without the key.
struct Rewriter {
    /// SipHash state after the key and the Call-ID (the same for every identifier).
    base: SipHasher24,
}

impl Rewriter {
    fn new(key: &[u8; 32], call_id: &str) -> Self {
        let mut base = SipHasher24::new(key);
        base.write(call_id.as_bytes());
        base.write(&[0]);
        Rewriter { base }
    }

    /// SipHash-2-4 (a keyed PRF: the replacement cannot be predicted or forged without
    /// the key) over Call-ID, kind and value, each followed by a 0 byte.
    fn digest(&self, kind: &str, value: &[u8]) -> u32 {
        let mut h = self.base.clone();
        h.write(kind.as_bytes());
        h.write(&[0]);
        h.write(value);
        (h.finish() >> 32) as u32
    }

    fn mac(&self, id: u32) -> u32 {
        self.digest("mac", &id.to_be_bytes())
    }

    /// The replacement of `value`, written into `out` (cleared first).
    fn token_into(&self, kind: &str, value: &str, out: &mut String) {
        if value.len() == 16
            && value
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            let id = value.get(..8).and_then(|h| u32::from_str_radix(h, 16).ok());
            let tag = value.get(8..).and_then(|h| u32::from_str_radix(h, 16).ok());
            if let (Some(id), Some(tag)) = (id, tag) {
                if self.mac(id) == tag {
                    out.clear();
                    out.push_str(value);
                    return;
                }
            }
        }
        let id = self.digest(kind, value.as_bytes());
        out.clear();
        palisade_sip::push_hex(out, &id.to_be_bytes());
        palisade_sip::push_hex(out, &self.mac(id).to_be_bytes());
    }

    /// Rewrites `s`.
    fn rewrite(&self, kind: &str, s: &mut Cow<'_, str>) {
        let mut t = String::with_capacity(16);
        self.token_into(kind, s, &mut t);
        *s = Cow::Owned(t);
    }

    /// Rewrites each space-separated word of `s` but those in `keep`, from word `skip` on.
    fn rewrite_words(&self, kind: &str, s: &mut Cow<'_, str>, skip: usize, keep: &[&str]) {
        let mut out = String::with_capacity(s.len().max(40));
        let mut t = String::with_capacity(16);
        for (i, w) in s.split(' ').enumerate() {
            if i > 0 {
                out.push(' ');
            }
            if i < skip || keep.contains(&w) {
                out.push_str(w);
            } else {
                self.token_into(kind, w, &mut t);
                out.push_str(&t);
            }
        }
        *s = Cow::Owned(out);
    }

    /// The same for the `o=` session id: 29 bits derived from the value, 32 bits of MAC
    /// (below 2^62: a positive 64-bit number on every implementation).
    /// Replacements have bit 61 set (the top bit of the derived part), so the MAC is
    /// checked only on values that can be one (the small ids phones use cannot).
    fn session_id(&self, value: u64) -> u64 {
        let (hi, lo) = ((value >> 32) as u32, value as u32);
        if value >> 61 == 1 && self.mac(hi) == lo {
            return value;
        }
        let id = (self.digest("o-id", &value.to_be_bytes()) >> 3) | (1 << 29);
        (u64::from(id) << 32) | u64::from(self.mac(id))
    }
}

/// SipHash-2-4 (Aumasson and Bernstein, 2012) with the first 16 bytes of the rewrite
/// key: cheap enough for every identifier of every offer (SHA-256 was a tenth of the
/// shield's time on a WebRTC offer).
#[derive(Clone)]
struct SipHasher24 {
    v: [u64; 4],
    tail: u64,
    ntail: u32,
    len: u64,
}

impl SipHasher24 {
    fn new(key: &[u8; 32]) -> Self {
        let mut k = [0u8; 16];
        for (d, s) in k.iter_mut().zip(key.iter()) {
            *d = *s;
        }
        let [a, b, c, d, e, f, g, h, i, j, l, m, n, o, p, q] = k;
        let k0 = u64::from_le_bytes([a, b, c, d, e, f, g, h]);
        let k1 = u64::from_le_bytes([i, j, l, m, n, o, p, q]);
        SipHasher24 {
            v: [
                k0 ^ 0x736f_6d65_7073_6575,
                k1 ^ 0x646f_7261_6e64_6f6d,
                k0 ^ 0x6c79_6765_6e65_7261,
                k1 ^ 0x7465_6462_7974_6573,
            ],
            tail: 0,
            ntail: 0,
            len: 0,
        }
    }

    fn round(&mut self) {
        let [v0, v1, v2, v3] = &mut self.v;
        *v0 = v0.wrapping_add(*v1);
        *v1 = v1.rotate_left(13) ^ *v0;
        *v0 = v0.rotate_left(32);
        *v2 = v2.wrapping_add(*v3);
        *v3 = v3.rotate_left(16) ^ *v2;
        *v0 = v0.wrapping_add(*v3);
        *v3 = v3.rotate_left(21) ^ *v0;
        *v2 = v2.wrapping_add(*v1);
        *v1 = v1.rotate_left(17) ^ *v2;
        *v2 = v2.rotate_left(32);
    }

    fn block(&mut self, m: u64) {
        self.v[3] ^= m;
        self.round();
        self.round();
        self.v[0] ^= m;
    }

    /// Whole words go to the rounds as they are; the bytes before and after them are
    /// gathered into the pending word at once (byte by byte, a short kind and value
    /// cost more than the rounds).
    fn write(&mut self, bytes: &[u8]) {
        self.len = self.len.wrapping_add(bytes.len() as u64);
        let mut bytes = bytes;
        if self.ntail != 0 {
            let take = bytes.len().min(8 - self.ntail as usize);
            let (head, rest) = bytes.split_at_checked(take).unwrap_or((bytes, &[]));
            self.tail |= le_word(head) << (8 * self.ntail);
            self.ntail += take as u32;
            if self.ntail < 8 {
                return;
            }
            let m = self.tail;
            self.block(m);
            self.tail = 0;
            self.ntail = 0;
            bytes = rest;
        }
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.block(le_word(w));
        }
        let rest = words.remainder();
        self.tail = le_word(rest);
        self.ntail = rest.len() as u32;
    }

    fn finish(mut self) -> u64 {
        let m = self.tail | ((self.len & 0xff) << 56);
        self.block(m);
        self.v[2] ^= 0xff;
        for _ in 0..4 {
            self.round();
        }
        let [v0, v1, v2, v3] = self.v;
        v0 ^ v1 ^ v2 ^ v3
    }
}

/// Up to eight bytes as a little-endian word (the missing high bytes zero).
fn le_word(b: &[u8]) -> u64 {
    match <[u8; 8]>::try_from(b) {
        Ok(w) => u64::from_le_bytes(w),
        // (shifts, not a copy into a buffer: that became a call to memcpy)
        Err(_) => b.iter().rev().fold(0, |w, &x| w << 8 | u64::from(x)),
    }
}

/// Rewrites the identifiers that only name things inside the description.
pub(crate) fn rewrite(s: &mut Session, key: &[u8; 32], call_id: &str) {
    let rw = Rewriter::new(key, call_id);
    s.origin.session_id = rw.session_id(s.origin.session_id);
    // The origin's address names the offerer's machine (RFC 8866 section 5.2); nobody
    // connects to it.
    let none = if s.origin.addrtype == "IP6" {
        "::"
    } else {
        "0.0.0.0"
    };
    if s.origin.address != none {
        s.origin.address = Cow::Borrowed(none);
    }
    let fix = |attrs: &mut Vec<Attribute>| {
        for a in attrs.iter_mut() {
            match a {
                Attribute::Msid { id, appdata } => {
                    if id != "-" {
                        rw.rewrite("msid", id);
                    }
                    if let Some(x) = appdata {
                        rw.rewrite("msid", x);
                    }
                }
                Attribute::MsidSemantic(v) => rw.rewrite_words("msid", v, 1, &["*"]),
                Attribute::Ssrc {
                    name,
                    value: Some(v),
                    ..
                } => {
                    if name == "cname" {
                        rw.rewrite("cname", v);
                    } else if name == "msid" {
                        rw.rewrite_words("msid", v, 0, &["-"]);
                    }
                }
                _ => {}
            }
        }
    };
    fix(&mut s.attributes);
    for m in &mut s.media {
        fix(&mut m.attributes);
    }
}

#[cfg(test)]
mod tests {
    use super::SipHasher24;

    /// The reference vector of the SipHash paper (appendix A): key 00..0f, message
    /// 00..0e, SipHash-2-4 = a129ca6149be45e5.
    #[test]
    fn siphash_matches_the_paper() {
        let mut key = [0u8; 32];
        for (i, k) in key.iter_mut().enumerate().take(16) {
            *k = i as u8;
        }
        let mut h = SipHasher24::new(&key);
        let msg: Vec<u8> = (0u8..15).collect();
        h.write(&msg[..4]);
        h.write(&msg[4..]);
        assert_eq!(h.finish(), 0xa129_ca61_49be_45e5);
    }

    /// However a message is cut into writes, the digest is the one of the whole.
    #[test]
    fn siphash_of_pieces_is_siphash_of_the_whole() {
        let key = [7u8; 32];
        let msg: Vec<u8> = (0u8..40).map(|i| i.wrapping_mul(37)).collect();
        for len in 0..msg.len() {
            let whole = {
                let mut h = SipHasher24::new(&key);
                h.write(&msg[..len]);
                h.finish()
            };
            for a in 0..=len {
                for b in a..=len {
                    let mut h = SipHasher24::new(&key);
                    h.write(&msg[..a]);
                    h.write(&msg[a..b]);
                    h.write(&[]);
                    h.write(&msg[b..len]);
                    assert_eq!(h.finish(), whole, "{len} {a} {b}");
                }
            }
        }
    }
}
