//! Digest authentication (RFC 3261 section 22, RFC 8760 for SHA-256), server side.
//!
//! Nonces are self-authenticating (issue time, a counter and a MAC under a per-boot
//! secret), so issuing a challenge stores nothing: a flood of unauthenticated requests
//! cannot grow memory. State is kept only for nonces that were used successfully, to
//! refuse a replayed nonce count.
use std::time::{Duration, Instant};

use md5::Md5;
use sha2::{Digest as _, Sha256};

/// A digest algorithm (RFC 8760).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// MD5 (RFC 3261; what most deployed phones know).
    Md5,
    /// SHA-256 (RFC 8760).
    Sha256,
}

impl Algorithm {
    /// The name in a challenge's `algorithm` parameter.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Parses `md5`, `sha-256` (case-insensitive; `sha256` accepted too).
    pub fn parse(s: &str) -> Option<Algorithm> {
        if s.eq_ignore_ascii_case("md5") {
            Some(Algorithm::Md5)
        } else if s.eq_ignore_ascii_case("sha-256") || s.eq_ignore_ascii_case("sha256") {
            Some(Algorithm::Sha256)
        } else {
            None
        }
    }

    /// The digest `response` for `qop=auth` (RFC 7616 section 3.4.1): what a client
    /// sends and what the server expects.
    #[allow(clippy::too_many_arguments)] // the RFC's own inputs, each a string
    pub fn response(
        self,
        ha1: &str,
        nonce: &str,
        nc: &str,
        cnonce: &str,
        qop: &str,
        method: &str,
        uri: &str,
    ) -> String {
        self.response_hex(ha1, nonce, nc, cnonce, qop, method, uri)
            .as_str()
            .to_string()
    }

    /// [`Algorithm::response`] on the stack (the server's check allocates nothing).
    #[allow(clippy::too_many_arguments)]
    fn response_hex(
        self,
        ha1: &str,
        nonce: &str,
        nc: &str,
        cnonce: &str,
        qop: &str,
        method: &str,
        uri: &str,
    ) -> HexDigest {
        let ha2 = self.ha2_hex(method, uri);
        self.response_from_ha2(ha1, nonce, nc, cnonce, qop, &ha2)
    }

    /// HA2 = H(method ":" uri) (for `qop=auth`).
    fn ha2_hex(self, method: &str, uri: &str) -> HexDigest {
        self.digest_hex(&[method.as_bytes(), b":", uri.as_bytes()])
    }

    /// [`Algorithm::response_hex`] from HA2.
    fn response_from_ha2(
        self,
        ha1: &str,
        nonce: &str,
        nc: &str,
        cnonce: &str,
        qop: &str,
        ha2: &HexDigest,
    ) -> HexDigest {
        self.digest_hex(&[
            ha1.as_bytes(),
            b":",
            nonce.as_bytes(),
            b":",
            nc.as_bytes(),
            b":",
            cnonce.as_bytes(),
            b":",
            qop.as_bytes(),
            b":",
            ha2.as_bytes(),
        ])
    }

    /// The lower-case hex digest of `parts` joined by `:` (RFC 2617's `H(a:b:...)`).
    pub fn hash_hex(self, parts: &[&[u8]]) -> String {
        self.digest_hex(parts).as_str().to_string()
    }

    /// [`Algorithm::hash_hex`] on the stack.
    fn digest_hex(self, parts: &[&[u8]]) -> HexDigest {
        match self {
            Algorithm::Md5 => {
                let mut h = Md5::new();
                for p in parts {
                    h.update(p);
                }
                HexDigest::of(&h.finalize())
            }
            Algorithm::Sha256 => {
                let mut h = Sha256::new();
                for p in parts {
                    h.update(p);
                }
                HexDigest::of(&h.finalize())
            }
        }
    }

    /// HA1 = H(username ":" realm ":" password). Only this is ever stored.
    pub fn ha1(self, user: &str, realm: &str, password: &str) -> String {
        self.hash_hex(&[
            user.as_bytes(),
            b":",
            realm.as_bytes(),
            b":",
            password.as_bytes(),
        ])
    }
}

/// A digest (or MAC) as lower-case hex digits, kept on the stack: `hex::encode` builds
/// its `String` a `char` at a time, which cost more than the MD5 it wrote out.
#[derive(Clone, Copy)]
struct HexDigest {
    buf: [u8; 64],
    len: usize,
}

impl HexDigest {
    /// The hex of up to 32 bytes (more are cut off; no caller has more).
    fn of(bytes: &[u8]) -> HexDigest {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 64];
        let mut len = 0;
        for (pair, b) in buf.chunks_exact_mut(2).zip(bytes) {
            if let [hi, lo] = pair {
                *hi = DIGITS.get(usize::from(b >> 4)).copied().unwrap_or(b'0');
                *lo = DIGITS.get(usize::from(b & 15)).copied().unwrap_or(b'0');
            }
            len += 2;
        }
        HexDigest { buf, len }
    }

    fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    fn as_str(&self) -> &str {
        // (hex digits are ASCII)
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

fn unhex8(s: &str) -> Option<u64> {
    if s.len() != 16 {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

/// Compares without an early exit, so timing does not reveal how much matched.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// [`ct_eq`] for hex digests, ignoring ASCII case.
fn ct_eq_hex(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| {
        acc | (x.to_ascii_lowercase() ^ y.to_ascii_lowercase())
    }) == 0
}

/// What the server knows about an account: HA1 per algorithm, never a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// MD5(user:realm:password), hex.
    pub ha1_md5: String,
    /// SHA-256(user:realm:password), hex.
    pub ha1_sha256: String,
}

impl Credential {
    /// The HA1 values of an account's password (the password itself is not kept).
    pub fn from_password(user: &str, realm: &str, password: &str) -> Self {
        Credential {
            ha1_md5: Algorithm::Md5.ha1(user, realm, password),
            ha1_sha256: Algorithm::Sha256.ha1(user, realm, password),
        }
    }
    fn ha1(&self, a: Algorithm) -> &str {
        match a {
            Algorithm::Md5 => &self.ha1_md5,
            Algorithm::Sha256 => &self.ha1_sha256,
        }
    }
}

/// The digest response a client sent, already unquoted.
pub(crate) struct DigestResponse<'a> {
    pub username: &'a str,
    pub realm: &'a str,
    pub nonce: &'a str,
    pub uri: &'a str,
    pub response: &'a str,
    pub algorithm: &'a str,
    pub qop: &'a str,
    pub nc: &'a str,
    pub cnonce: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Ok,
    /// The nonce was ours but has expired: re-challenge with `stale=true`.
    Stale,
    /// Anything else: wrong password, unknown user, foreign nonce, replayed nonce count,
    /// missing qop. Deliberately one kind, so that the answer does not tell which.
    Fail(&'static str),
}

pub(crate) struct Authenticator {
    secret: [u8; 32],
    /// The nonces' MAC keys (derived from `secret`).
    mac_key: crate::mac::Mac,
    epoch: Instant,
    /// The last nonce's counter. The shards of one server share the secret (a nonce one
    /// issued verifies in another, where the client's next request may land), so each
    /// counts in its own residue class: shard `i` of `n` issues `i + n`, `i + 2n`, ...
    /// and a counter, which keys the nonce counts below, names one nonce server-wide.
    counter: u64,
    /// The number of shards (the counter's step).
    stride: u64,
    ttl: Duration,
    /// counter of a nonce → (highest nc accepted, issue time in seconds since epoch)
    used: crate::Map<u64, (u32, u64)>,
    /// The last HA2 computed, with its algorithm, method and digest URI: HA2 depends on
    /// nothing else, and a REGISTER's digest URI is the registrar's, the same for every
    /// phone (one hash of the two a check costs).
    ha2: Option<(Algorithm, String, String, HexDigest)>,
}

impl Authenticator {
    pub(crate) fn new(secret: [u8; 32], epoch: Instant, ttl: Duration) -> Self {
        Authenticator {
            secret,
            mac_key: crate::mac::Mac::derived(b"palisade nonce mac", &secret),
            epoch,
            counter: 0,
            stride: 1,
            ttl,
            used: crate::Map::default(),
            ha2: None,
        }
    }

    /// The nonces of shard `index` of `count` (see `counter`); `(0, 1)` by default.
    pub(crate) fn for_shard(mut self, index: usize, count: usize) -> Self {
        let count = count.max(1) as u64;
        self.stride = count;
        self.counter = (index as u64) % count;
        self
    }

    /// [`Algorithm::ha2_hex`], remembered for the next check.
    fn ha2(&mut self, alg: Algorithm, method: &str, uri: &str) -> HexDigest {
        match &mut self.ha2 {
            Some((a, m, u, h)) if *a == alg && m == method && u == uri => *h,
            slot => {
                let h = alg.ha2_hex(method, uri);
                match slot {
                    Some((a, m, u, old)) => {
                        *a = alg;
                        m.clear();
                        m.push_str(method);
                        u.clear();
                        u.push_str(uri);
                        *old = h;
                    }
                    None => *slot = Some((alg, method.to_string(), uri.to_string(), h)),
                }
                h
            }
        }
    }

    /// The nonce's MAC: 12 bytes of a SipHash-2-4 tag (see `crate::mac`) over the
    /// issue time and the counter, as 24 hex digits.
    fn mac(&self, ts: u64, ctr: u64) -> HexDigest {
        let m = (u128::from(ts) << 64 | u128::from(ctr)).to_be_bytes();
        HexDigest::of(self.mac_key.tag(&m).get(..12).unwrap_or_default())
    }

    pub(crate) fn nonce(&mut self, now: Instant) -> String {
        self.counter = self.counter.wrapping_add(self.stride);
        let ts = now.saturating_duration_since(self.epoch).as_secs();
        let mut n = String::with_capacity(56);
        crate::mac::push_hex_u64(&mut n, ts, 16);
        crate::mac::push_hex_u64(&mut n, self.counter, 16);
        n.push_str(self.mac(ts, self.counter).as_str());
        n
    }

    /// Checks a digest response against the credential (`None`: unknown user, checked
    /// against a per-boot dummy so that the work and the answer are the same).
    pub(crate) fn verify(
        &mut self,
        now: Instant,
        method: &str,
        d: &DigestResponse<'_>,
        cred: Option<&Credential>,
        realm: &str,
    ) -> Verdict {
        let Some(alg) = Algorithm::parse(if d.algorithm.is_empty() {
            "MD5"
        } else {
            d.algorithm
        }) else {
            return Verdict::Fail("unsupported digest algorithm");
        };
        if d.nonce.len() != 56 {
            return Verdict::Fail("not our nonce");
        }
        let (Some(ts), Some(ctr)) = (
            unhex8(d.nonce.get(..16).unwrap_or_default()),
            unhex8(d.nonce.get(16..32).unwrap_or_default()),
        ) else {
            return Verdict::Fail("not our nonce");
        };
        if !ct_eq(
            self.mac(ts, ctr).as_bytes(),
            d.nonce.as_bytes().get(32..).unwrap_or_default(),
        ) {
            return Verdict::Fail("not our nonce");
        }
        let dummy;
        let ha1 = match cred {
            Some(c) => c.ha1(alg),
            None => {
                dummy = alg.hash_hex(&[&self.secret, d.username.as_bytes()]);
                &dummy
            }
        };
        if !d.qop.eq_ignore_ascii_case("auth") {
            return Verdict::Fail("qop=auth required");
        }
        let Ok(nc) = u32::from_str_radix(d.nc, 16) else {
            return Verdict::Fail("malformed nonce count");
        };
        let ha2 = self.ha2(alg, method, d.uri);
        let expected = alg.response_from_ha2(ha1, d.nonce, d.nc, d.cnonce, d.qop, &ha2);
        let matches = ct_eq_hex(expected.as_bytes(), d.response.as_bytes());
        if !matches || cred.is_none() || d.realm != realm {
            return Verdict::Fail("wrong credentials");
        }
        let age = now
            .saturating_duration_since(self.epoch)
            .as_secs()
            .saturating_sub(ts);
        if age > self.ttl.as_secs() {
            return Verdict::Stale;
        }
        let entry = self.used.entry(ctr).or_insert((0, ts));
        if nc <= entry.0 {
            return Verdict::Fail("replayed nonce count");
        }
        entry.0 = nc;
        Verdict::Ok
    }

    /// Forgets nonce counts of nonces that have expired anyway.
    pub(crate) fn sweep(&mut self, now: Instant) {
        let now_s = now.saturating_duration_since(self.epoch).as_secs();
        let ttl = self.ttl.as_secs();
        self.used
            .retain(|_, (_, ts)| now_s.saturating_sub(*ts) <= ttl);
    }

    pub(crate) fn tracked_nonces(&self) -> usize {
        self.used.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn respond(
        alg: Algorithm,
        ha1: &str,
        nonce: &str,
        nc: &str,
        method: &str,
        uri: &str,
    ) -> String {
        alg.response(ha1, nonce, nc, "cn", "auth", method, uri)
    }

    #[test]
    fn rfc_2617_response() {
        // RFC 2617 section 3.5: the qop=auth example
        let ha1 = Algorithm::Md5.ha1("Mufasa", "testrealm@host.com", "Circle Of Life");
        assert_eq!(
            Algorithm::Md5.response(
                &ha1,
                "dcd98b7102dd2f0e8b11d0f600bfb0c093",
                "00000001",
                "0a4f113b",
                "auth",
                "GET",
                "/dir/index.html"
            ),
            "6629fae49393a05397450978507c4ef1"
        );
    }

    #[test]
    fn rfc_example_ha1() {
        // RFC 2617 section 3.5: Mufasa / testrealm@host.com / Circle Of Life
        assert_eq!(
            Algorithm::Md5.ha1("Mufasa", "testrealm@host.com", "Circle Of Life"),
            "939e7578ed9e3c518a452acee763bce9"
        );
    }

    #[test]
    fn verify_ok_stale_replay_and_wrong() {
        let t0 = Instant::now();
        let mut a = Authenticator::new([7; 32], t0, Duration::from_secs(30));
        let cred = Credential::from_password("alice", "example.com", "pw");
        for alg in [Algorithm::Md5, Algorithm::Sha256] {
            let n = a.nonce(t0);
            let r = respond(
                alg,
                cred.ha1(alg),
                &n,
                "00000001",
                "REGISTER",
                "sip:example.com",
            );
            let d = DigestResponse {
                username: "alice",
                realm: "example.com",
                nonce: &n,
                uri: "sip:example.com",
                response: &r,
                algorithm: alg.name(),
                qop: "auth",
                nc: "00000001",
                cnonce: "cn",
            };
            assert_eq!(
                a.verify(t0, "REGISTER", &d, Some(&cred), "example.com"),
                Verdict::Ok
            );
            // the same nc again is a replay
            assert!(matches!(
                a.verify(t0, "REGISTER", &d, Some(&cred), "example.com"),
                Verdict::Fail(_)
            ));
            // unknown user: same class of answer
            assert!(matches!(
                a.verify(t0, "REGISTER", &d, None, "example.com"),
                Verdict::Fail(_)
            ));
            // expired nonce
            let later = t0 + Duration::from_secs(31);
            let r2 = respond(
                alg,
                cred.ha1(alg),
                &n,
                "00000002",
                "REGISTER",
                "sip:example.com",
            );
            let d2 = DigestResponse {
                response: &r2,
                nc: "00000002",
                ..d
            };
            assert_eq!(
                a.verify(later, "REGISTER", &d2, Some(&cred), "example.com"),
                Verdict::Stale
            );
        }
        let bad = Credential::from_password("alice", "example.com", "other");
        let n = a.nonce(t0);
        let r = respond(
            Algorithm::Md5,
            &bad.ha1_md5,
            &n,
            "00000001",
            "REGISTER",
            "sip:example.com",
        );
        let d = DigestResponse {
            username: "alice",
            realm: "example.com",
            nonce: &n,
            uri: "sip:example.com",
            response: &r,
            algorithm: "MD5",
            qop: "auth",
            nc: "00000001",
            cnonce: "cn",
        };
        assert!(matches!(
            a.verify(t0, "REGISTER", &d, Some(&cred), "example.com"),
            Verdict::Fail(_)
        ));
        // a forged nonce
        let forged = format!("{}{}", n.get(..32).unwrap(), "0".repeat(24));
        let d = DigestResponse {
            nonce: &forged,
            ..d
        };
        assert!(matches!(
            a.verify(t0, "REGISTER", &d, Some(&cred), "example.com"),
            Verdict::Fail(_)
        ));
        a.sweep(t0 + Duration::from_secs(100));
        assert_eq!(a.tracked_nonces(), 0);
    }

    /// The shards of one server share the secret, so a nonce one of them issued
    /// verifies in another (where a client's next request may land when its datagrams
    /// move between the workers' sockets); their counters never meet, so a nonce used
    /// in one shard never looks like a replay of another's nonce there.
    #[test]
    fn a_nonce_from_another_shard_is_not_taken_for_a_replay() {
        let t0 = Instant::now();
        let shards = 3;
        let mut a: Vec<Authenticator> = (0..shards)
            .map(|i| Authenticator::new([9; 32], t0, Duration::from_secs(30)).for_shard(i, shards))
            .collect();
        let cred = Credential::from_password("alice", "example.com", "pw");
        let mut counters = std::collections::HashSet::new();
        for round in 0..50 {
            let nonces: Vec<String> = (0..shards).map(|i| a[i].nonce(t0)).collect();
            // each used in the shard that issued it, then in another (nc 1 in both: the
            // nonce counts are per shard)
            for step in [0, 1 + round % (shards - 1)] {
                for (from, n) in nonces.iter().enumerate() {
                    let at = (from + step) % shards;
                    let r = respond(
                        Algorithm::Md5,
                        cred.ha1(Algorithm::Md5),
                        n,
                        "00000001",
                        "REGISTER",
                        "sip:example.com",
                    );
                    let d = DigestResponse {
                        username: "alice",
                        realm: "example.com",
                        nonce: n,
                        uri: "sip:example.com",
                        response: &r,
                        algorithm: "MD5",
                        qop: "auth",
                        nc: "00000001",
                        cnonce: "cn",
                    };
                    assert_eq!(
                        a[at].verify(t0, "REGISTER", &d, Some(&cred), "example.com"),
                        Verdict::Ok,
                        "round {round}: the nonce of shard {from} at shard {at}"
                    );
                }
            }
            for n in &nonces {
                assert!(
                    counters.insert(n.get(16..32).unwrap_or_default().to_string()),
                    "{n}"
                );
            }
        }
        assert_eq!(counters.len(), 150);
    }
}
