//! The core driven with byte strings and a simulated clock: no sockets, no sleeping.
// Helpers outside `#[test]` functions assert by panicking too (clippy.toml exempts only
// test functions and `#[cfg(test)]` modules from the workspace's panic-free lints).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use palisade_core::*;
use palisade_core::{Algorithm, Credential};
use palisade_sip::{parse_datagram, Header, Limits, Message};

const ALICE: u16 = 5061;
const BOB: u16 = 5062;
const BOB2: u16 = 5064;

fn peer(port: u16) -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: SocketAddr::from(([192, 0, 2, 10], port)),
        conn: None,
    }
}

/// An account with password `pw`, created at `created_unix`, protected when
/// `protection` holds its allow-list.
fn user(name: &str, created_unix: i64, protection: Option<Vec<String>>) -> User {
    User {
        name: name.to_string(),
        credential: Credential::from_password(name, "example.com", "pw"),
        created_unix,
        protection,
    }
}

struct H {
    ep: Endpoint,
    now: Instant,
}

impl H {
    fn new(auth: bool) -> H {
        H::shard(auth, 0, 1)
    }

    /// Shard `index` of `count` of one server (every shard has the same secret).
    fn shard(auth: bool, index: usize, count: usize) -> H {
        let now = Instant::now();
        let cfg = CoreConfig {
            domain: "example.com".into(),
            local: vec![
                (Transport::Udp, "10.0.0.1:5060".parse().unwrap()),
                (Transport::Tcp, "10.0.0.1:5060".parse().unwrap()),
            ],
            authenticate_register: auth,
            authenticate_requests: auth,
            nonce_ttl: Duration::from_secs(60),
            shard: (index, count),
            ..CoreConfig::default()
        };
        let mut ep = Endpoint::new(cfg, [9; 32], now);
        ep.set_users(["alice", "bob"].iter().map(|n| user(n, 0, None)).collect());
        H { ep, now }
    }

    fn send(&mut self, from: Peer, text: &str) {
        let bytes = text.replace('\n', "\r\n").into_bytes();
        self.ep.handle_datagram(self.now, from, &bytes);
    }

    fn send_bytes(&mut self, from: Peer, bytes: &[u8]) {
        self.ep.handle_datagram(self.now, from, bytes);
    }

    fn take(&mut self) -> Vec<(Peer, Message<'static>, Vec<u8>)> {
        let mut v = Vec::new();
        while let Some(t) = self.ep.poll_transmit() {
            let m = parse_datagram(&t.bytes, &Limits::default())
                .expect("the core sends only well-formed messages")
                .into_owned();
            v.push((t.to, m, t.bytes));
        }
        v
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.ep.handle_timeout(self.now);
    }

    fn register(
        &mut self,
        user: &str,
        port: u16,
        expires: u32,
        cseq: u32,
    ) -> Vec<(Peer, Message<'static>, Vec<u8>)> {
        self.send(
            peer(port),
            &format!(
                "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:{port};branch=z9hG4bKreg{user}{port}{cseq};rport\nMax-Forwards: 70\nFrom: <sip:{user}@example.com>;tag=r{port}\nTo: <sip:{user}@example.com>\nCall-ID: reg-{user}-{port}\nCSeq: {cseq} REGISTER\nContact: <sip:{user}@192.0.2.10:{port}>\nExpires: {expires}\n{PHONE}Content-Length: 0\n\n"
            ),
        );
        self.take()
    }
}

/// The headers a real phone adds to a REGISTER (Allow, Supported, User-Agent). They
/// matter here: an error answer to an unauthenticated UDP sender is never larger than
/// its request, and a bare REGISTER is smaller than a 401 with two challenges.
const PHONE: &str = "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, UPDATE, INFO, NOTIFY, REFER, SUBSCRIBE, PRACK\nSupported: replaces, outbound, path, gruu, 100rel, timer\nAccept: application/sdp, multipart/mixed, application/dtmf-relay\nUser-Agent: core-test-phone/1.0 (stands in for a real phone's REGISTER: baresip, Linphone)\n";

/// A minimal valid offer, written with LF (the helpers turn every LF into CRLF).
const SDP: &str = "v=0\no=- 1 1 IN IP4 192.0.2.10\ns=-\nc=IN IP4 192.0.2.10\nt=0 0\nm=audio 4000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\n";

/// Content-Length of an LF-written body once sent with CRLF.
fn crlf_len(body: &str) -> usize {
    body.len() + body.matches('\n').count()
}

fn invite(branch: &str, callee: &str) -> String {
    invite_with(branch, callee, "", SDP)
}

fn invite_with(branch: &str, callee: &str, extra: &str, sdp: &str) -> String {
    format!(
        "INVITE sip:{callee}@example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:{ALICE};branch=z9hG4bK{branch};rport\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a1\nTo: <sip:{callee}@example.com>\nCall-ID: call-{branch}\nCSeq: 1 INVITE\nContact: <sip:alice@192.0.2.10:{ALICE}>\n{extra}Content-Type: application/sdp\nContent-Length: {}\n\n{sdp}",
        crlf_len(sdp)
    )
}

/// A response to a forwarded request, as the callee would build it.
fn respond(req: &Message<'_>, status: u16, reason: &str, to_tag: &str) -> Vec<u8> {
    let mut out = format!("SIP/2.0 {status} {reason}\r\n");
    let mut s = String::new();
    for h in &req.headers {
        match h {
            Header::Via(_)
            | Header::From(_)
            | Header::CallId(_)
            | Header::CSeq(_)
            | Header::RecordRoute(_) => {
                s.clear();
                h.write(&mut s);
                out.push_str(&s);
            }
            Header::To(_) => {
                s.clear();
                h.write(&mut s);
                if status > 100 {
                    s = s.replace("\r\n", &format!(";tag={to_tag}\r\n"));
                }
                out.push_str(&s);
            }
            _ => {}
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out.into_bytes()
}

/// The Route header a UA puts in its in-dialog requests: the Record-Route of a
/// forwarded request (with this server's dialog token).
fn route_of(fwd: &Message<'_>) -> String {
    let rr = fwd.record_routes().next().expect("a Record-Route");
    format!("Route: <{}>\n", rr.uri)
}

fn status(m: &Message<'_>) -> u16 {
    m.status().unwrap_or(0)
}

fn digest(alg: Algorithm, user: &str, nonce: &str, method: &str, uri: &str, nc: &str) -> String {
    let ha1 = alg.ha1(user, "example.com", "pw");
    alg.response(&ha1, nonce, nc, "cn", "auth", method, uri)
}

fn nonce_of(m: &Message<'_>, alg: &str) -> String {
    m.headers
        .iter()
        .find_map(|h| match h {
            Header::WwwAuthenticate(c) | Header::ProxyAuthenticate(c)
                if c.get("algorithm").as_deref() == Some(alg) =>
            {
                c.get("nonce").map(|n| n.into_owned())
            }
            _ => None,
        })
        .expect("challenge for the algorithm")
}

fn auth_register(
    h: &mut H,
    user: &str,
    alg: Algorithm,
    nonce: &str,
    password_user: &str,
    nc: &str,
    cseq: u32,
) -> Message<'static> {
    let resp = digest(alg, password_user, nonce, "REGISTER", "sip:example.com", nc);
    h.send(
        peer(BOB),
        &format!("REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKa{cseq}\nMax-Forwards: 70\nFrom: <sip:{user}@example.com>;tag=r\nTo: <sip:{user}@example.com>\nCall-ID: auth-reg\nCSeq: {cseq} REGISTER\nContact: <sip:{user}@192.0.2.10:5062>\nAuthorization: Digest username=\"{user}\", realm=\"example.com\", nonce=\"{nonce}\", uri=\"sip:example.com\", response=\"{resp}\", algorithm={}, qop=auth, nc={nc}, cnonce=\"cn\"\n{PHONE}Content-Length: 0\n\n", alg.name()),
    );
    h.take().pop().unwrap().1
}

mod auth;
mod calls;
mod cluster;
mod observe;
mod robustness;
mod shield;
mod websocket;
