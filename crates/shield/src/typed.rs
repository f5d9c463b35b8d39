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
pub(crate) fn check(
    s: &mut Session,
    dropped: &mut Vec<Dropped>,
    r: &Refuse<'_>,
) -> Result<(), Refusal> {
    let mut mids: Vec<String> = Vec::new();
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

fn attributes(
    attrs: &mut Vec<Attribute>,
    mids: &[String],
    dropped: &mut Vec<Dropped>,
    r: &Refuse<'_>,
) -> Result<(), Refusal> {
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
                vocab::group_ok(semantics) && ids.iter().all(|i| mids.contains(i))
            }
            Attribute::SsrcGroup { semantics, .. } => vocab::ssrc_group_ok(semantics),
            Attribute::Label(x) => mid_ok(x),
            Attribute::Candidate(c) => {
                if vocab::candidate_transport_ok(&c.transport) && vocab::candidate_type_ok(&c.typ) {
                    let before = c.extensions.len();
                    let mut gone = Vec::new();
                    c.extensions.retain(|(k, v)| {
                        let ok = vocab::candidate_extension_ok(k, v);
                        if !ok {
                            gone.push(format!("a=candidate:... {k} {v}"));
                        }
                        ok
                    });
                    if c.extensions.len() != before {
                        for g in gone {
                            removed.push(("candidate".into(), g));
                        }
                    }
                    true
                } else {
                    false
                }
            }
            Attribute::IceOptions(list) => {
                let mut gone = Vec::new();
                list.retain(|t| {
                    let ok = vocab::ice_option_ok(t);
                    if !ok {
                        gone.push(format!("a=ice-options:{t}"));
                    }
                    ok
                });
                for g in gone {
                    removed.push(("ice-options".into(), g));
                }
                !list.is_empty()
            }
            Attribute::Crypto {
                suite,
                key_params,
                session_params,
                ..
            } => {
                if vocab::crypto_key_ok(suite, key_params) {
                    let mut gone = Vec::new();
                    session_params.retain(|p| {
                        let ok = vocab::crypto_session_param_ok(p);
                        if !ok {
                            gone.push(format!("a=crypto:... {p}"));
                        }
                        ok
                    });
                    for g in gone {
                        removed.push(("crypto".into(), g));
                    }
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

/// A keyed replacement for an identifier: 8 hex digits derived from (Call-ID, value)
/// followed by 8 hex digits that authenticate them (a MAC under the server's key). The
/// same value in the same dialog always gets the same replacement, and a replacement
/// is recognised and kept as it is (the rewrite is idempotent, so a forwarded offer is
/// a fixed point of the shield), while a sender cannot make up one without the key.
struct Rewriter<'k> {
    key: &'k [u8; 32],
    call_id: &'k str,
    /// (kind, value, replacement): identifiers repeat (a cname on every `a=ssrc`).
    seen: Vec<(&'static str, String, String)>,
}

impl Rewriter<'_> {
    fn digest(&self, kind: &str, value: &[u8]) -> u32 {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(self.key);
        h.update(kind.as_bytes());
        h.update([0]);
        h.update(self.call_id.as_bytes());
        h.update([0]);
        h.update(value);
        let d: [u8; 32] = h.finalize().into();
        let [a, b, c, e, ..] = d;
        u32::from_be_bytes([a, b, c, e])
    }

    fn mac(&self, id: u32) -> u32 {
        self.digest("mac", &id.to_be_bytes())
    }

    fn token(&mut self, kind: &'static str, value: &str) -> String {
        if value.len() == 16
            && value
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            let id = value.get(..8).and_then(|h| u32::from_str_radix(h, 16).ok());
            let tag = value.get(8..).and_then(|h| u32::from_str_radix(h, 16).ok());
            if let (Some(id), Some(tag)) = (id, tag) {
                if self.mac(id) == tag {
                    return value.to_string();
                }
            }
        }
        if let Some((_, _, t)) = self.seen.iter().find(|(k, v, _)| *k == kind && v == value) {
            return t.clone();
        }
        let id = self.digest(kind, value.as_bytes());
        let t = hex8(id) + &hex8(self.mac(id));
        self.seen.push((kind, value.to_string(), t.clone()));
        t
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

fn hex8(v: u32) -> String {
    let mut s = String::with_capacity(16);
    for shift in (0..8).rev() {
        let n = (v >> (shift * 4)) & 15;
        s.push(char::from_digit(n, 16).unwrap_or('0'));
    }
    s
}

/// Rewrites the identifiers that only name things inside the description.
pub(crate) fn rewrite(s: &mut Session, key: &[u8; 32], call_id: &str) {
    let mut rw = Rewriter {
        key,
        call_id,
        seen: Vec::new(),
    };
    s.origin.session_id = rw.session_id(s.origin.session_id);
    // The origin's address names the offerer's machine (RFC 8866 section 5.2); nobody
    // connects to it.
    s.origin.address = if s.origin.addrtype == "IP6" {
        "::".into()
    } else {
        "0.0.0.0".into()
    };
    let mut fix = |attrs: &mut Vec<Attribute>| {
        for a in attrs.iter_mut() {
            match a {
                Attribute::Msid { id, appdata } => {
                    if id != "-" {
                        *id = rw.token("msid", id);
                    }
                    if let Some(x) = appdata {
                        *x = rw.token("msid", x);
                    }
                }
                Attribute::MsidSemantic(v) => {
                    let mut out = String::new();
                    for (i, w) in v.split(' ').enumerate() {
                        if i > 0 {
                            out.push(' ');
                        }
                        if i == 0 || w == "*" {
                            out.push_str(w);
                        } else {
                            out.push_str(&rw.token("msid", w));
                        }
                    }
                    *v = out;
                }
                Attribute::Ssrc {
                    name,
                    value: Some(v),
                    ..
                } => {
                    if name == "cname" {
                        *v = rw.token("cname", v);
                    } else if name == "msid" {
                        let mut out = String::new();
                        for (i, w) in v.split(' ').enumerate() {
                            if i > 0 {
                                out.push(' ');
                            }
                            if w == "-" {
                                out.push('-');
                            } else {
                                out.push_str(&rw.token("msid", w));
                            }
                        }
                        *v = out;
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
