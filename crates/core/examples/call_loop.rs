//! Drives the core through N authenticated calls in process (no sockets, a simulated
//! clock): INVITE → 407 → ACK, INVITE with credentials → 100 + forwarded INVITE, 180,
//! 200, ACK end to end, BYE and its 200. For counting the core's instructions per call
//! with and without observation (campaign detection), which wall-clock benchmarks on a
//! shared machine cannot separate from interference:
//!
//! ```text
//! cargo build --release -p palisade-core --example call_loop
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.observe target/release/examples/call_loop observe 2000
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.plain target/release/examples/call_loop plain 2000
//! ```
//!
//! Compare the totals (`callgrind_annotate`), minus a run with N = 0 for the setup.
//! At the end the clock jumps two hours ahead, so every timer armed comes due.
//!
//! `register N` instead drives N registrations of distinct users (of 5,000 provisioned
//! ones, so that the setup is the same whatever N): REGISTER → 401, REGISTER with MD5
//! credentials → 200, as the SIPp scenario of `bench/harness` does.
//!
//! To count only the core (not this driver's own parsing and formatting), collect
//! inside its entry points:
//!
//! ```text
//! valgrind --tool=callgrind --collect-atstart=no \
//!   --toggle-collect='palisade_core::endpoint::Endpoint::handle_datagram' \
//!   --toggle-collect='palisade_core::endpoint::Endpoint::handle_timeout' \
//!   target/release/examples/call_loop plain 2000
//! ```
// A example, not library code: it may stop on a failed setup by panicking, and
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
use palisade_sip::{parse_datagram, Header, Limits, Message};

const ALICE: u16 = 5061;
const BOB: u16 = 5062;

fn peer(port: u16) -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: SocketAddr::from(([192, 0, 2, 10], port)),
        conn: None,
    }
}

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n";

struct Loop {
    ep: Endpoint,
    now: Instant,
}

impl Loop {
    fn send(&mut self, from: Peer, text: &str) -> Vec<(Peer, Message<'static>)> {
        self.ep.handle_datagram(self.now, from, text.as_bytes());
        self.take()
    }

    fn take(&mut self) -> Vec<(Peer, Message<'static>)> {
        let mut v = Vec::new();
        while let Some(t) = self.ep.poll_transmit() {
            let m = parse_datagram(&t.bytes, &Limits::default())
                .expect("the core sends well-formed messages")
                .into_owned();
            v.push((t.to, m));
        }
        // what the shell would hand to its threads
        while self.ep.poll_event().is_some() {}
        v
    }
}

/// A response to a forwarded request, as the callee builds it.
fn respond(req: &Message<'_>, status: u16, reason: &str, to_tag: &str) -> String {
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
                out.push_str(&s.replace("\r\n", &format!(";tag={to_tag}\r\n")));
            }
            _ => {}
        }
    }
    out.push_str(&format!(
        "Contact: <sip:bob@192.0.2.10:{BOB}>\r\nContent-Length: 0\r\n\r\n"
    ));
    out
}

fn md5_nonce(m: &Message<'_>) -> String {
    m.headers
        .iter()
        .find_map(|h| match h {
            Header::ProxyAuthenticate(c) if c.get("algorithm").as_deref() == Some("MD5") => {
                c.get("nonce").map(|n| n.into_owned())
            }
            _ => None,
        })
        .expect("an MD5 challenge")
}

/// Lets every timer armed so far come due (retransmission timers whose transaction
/// ended, Timers D/H/I/J/K, binding expiry), as a server running on would: the
/// timers' work counts per call too.
fn drain(l: &mut Loop) {
    l.now += Duration::from_secs(7200);
    l.ep.handle_timeout(l.now);
    l.take();
}

/// Users provisioned in `register` mode.
const REGISTER_USERS: u32 = 5000;

/// `register N`: N distinct users each REGISTER, are challenged, and REGISTER again
/// with credentials.
fn register(n: u32) {
    let now = Instant::now();
    let cfg = CoreConfig {
        domain: "example.com".into(),
        local: vec![(Transport::Udp, "10.0.0.1:5060".parse().expect("address"))],
        authenticate_register: true,
        authenticate_requests: true,
        nonce_ttl: Duration::from_secs(3600),
        algorithms: vec![Algorithm::Md5],
        ..CoreConfig::default()
    };
    let mut ep = Endpoint::new(cfg, [9; 32], now);
    let users: Vec<User> = (0..REGISTER_USERS)
        .map(|i| {
            let name = format!("u{i}");
            User {
                credential: Credential::from_password(&name, "example.com", "pw"),
                name,
                created_unix: 0,
                protection: None,
            }
        })
        .collect();
    ep.set_users(users);
    let mut l = Loop { ep, now };
    let mut ok = 0u32;
    for i in 0..n.min(REGISTER_USERS) {
        let user = format!("u{i}");
        let port = 10_000 + (i % 50_000) as u16;
        let register = |cseq: u32, auth: &str| {
            format!("REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.20:{port};branch=z9hG4bKr{i}.{cseq};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@example.com>;tag={i}R1\r\nTo: <sip:{user}@example.com>\r\nCall-ID: {i}-reg@192.0.2.20\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{user}@192.0.2.20:{port};transport=udp>\r\n{auth}Expires: 3600\r\nUser-Agent: sipp-bench\r\nContent-Length: 0\r\n\r\n")
        };
        let out = l.send(peer(port), &register(1, ""));
        let Some((_, challenge)) = out.iter().find(|(_, m)| m.status() == Some(401)) else {
            panic!("registration {i}: no 401");
        };
        let nonce = challenge
            .headers
            .iter()
            .find_map(|h| match h {
                Header::WwwAuthenticate(c) => c.get("nonce").map(|n| n.into_owned()),
                _ => None,
            })
            .expect("a challenge");
        let uri = "sip:example.com";
        let ha1 = Algorithm::Md5.ha1(&user, "example.com", "pw");
        let resp = Algorithm::Md5.response(&ha1, &nonce, "00000001", "cn", "auth", "REGISTER", uri);
        let auth = format!("Authorization: Digest username=\"{user}\",realm=\"example.com\",uri=\"{uri}\",nonce=\"{nonce}\",response=\"{resp}\",algorithm=MD5,cnonce=\"cn\",qop=auth,nc=00000001\r\n");
        let out = l.send(peer(port), &register(2, &auth));
        if out.iter().any(|(_, m)| m.status() == Some(200)) {
            ok += 1;
        }
        l.now += Duration::from_millis(1);
        l.ep.handle_timeout(l.now);
        l.take();
    }
    drain(&mut l);
    eprintln!("{n} registrations, {ok} answered 200");
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next();
    if mode.as_deref() == Some("register") {
        let n: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
        register(n);
        return;
    }
    let observe = mode.as_deref() == Some("observe");
    let n: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let now = Instant::now();
    let cfg = CoreConfig {
        domain: "example.com".into(),
        local: vec![(Transport::Udp, "10.0.0.1:5060".parse().expect("address"))],
        authenticate_register: false,
        authenticate_requests: true,
        nonce_ttl: Duration::from_secs(3600),
        algorithms: vec![Algorithm::Md5],
        observe,
        ..CoreConfig::default()
    };
    let mut ep = Endpoint::new(cfg, [9; 32], now);
    ep.set_users(
        ["alice", "bob"]
            .iter()
            .map(|name| User {
                name: name.to_string(),
                credential: Credential::from_password(name, "example.com", "pw"),
                created_unix: 0,
                protection: None,
            })
            .collect(),
    );
    let mut l = Loop { ep, now };
    let reg = l.send(peer(BOB), &format!("REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:{BOB};branch=z9hG4bKreg;rport\r\nMax-Forwards: 70\r\nFrom: <sip:bob@example.com>;tag=r\r\nTo: <sip:bob@example.com>\r\nCall-ID: reg-bob\r\nCSeq: 1 REGISTER\r\nContact: <sip:bob@192.0.2.10:{BOB}>\r\nExpires: 86400\r\nContent-Length: 0\r\n\r\n"));
    assert_eq!(
        reg.first().and_then(|r| r.1.status()),
        Some(200),
        "bob registers"
    );
    let ha1 = Algorithm::Md5.ha1("alice", "example.com", "pw");
    let mut answered = 0u32;
    for i in 0..n {
        let invite = |branch: &str, cseq: u32, auth: &str| {
            format!("INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:{ALICE};branch=z9hG4bK{branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a{i}\r\nTo: <sip:bob@example.com>\r\nCall-ID: call-{i}@192.0.2.10\r\nCSeq: {cseq} INVITE\r\nContact: <sip:alice@192.0.2.10:{ALICE}>\r\nUser-Agent: call-loop/1.0\r\n{auth}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}", SDP.len())
        };
        let out = l.send(peer(ALICE), &invite(&format!("c{i}"), 1, ""));
        let Some((_, challenge)) = out.iter().find(|(_, m)| m.status() == Some(407)) else {
            panic!("call {i}: no 407");
        };
        let nonce = md5_nonce(challenge);
        let to = challenge
            .headers
            .iter()
            .find_map(|h| match h {
                Header::To(_) => {
                    let mut s = String::new();
                    h.write(&mut s);
                    Some(s)
                }
                _ => None,
            })
            .unwrap_or_default();
        l.send(peer(ALICE), &format!("ACK sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:{ALICE};branch=z9hG4bKc{i};rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a{i}\r\n{to}Call-ID: call-{i}@192.0.2.10\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"));
        let uri = "sip:bob@example.com";
        let resp = Algorithm::Md5.response(&ha1, &nonce, "00000001", "cn", "auth", "INVITE", uri);
        let auth = format!("Proxy-Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"cn\"\r\n");
        let out = l.send(peer(ALICE), &invite(&format!("d{i}"), 2, &auth));
        let Some((_, fwd)) = out
            .iter()
            .find(|(to, m)| *to == peer(BOB) && m.method().is_some())
        else {
            panic!(
                "call {i}: not forwarded: {:?}",
                out.iter().map(|o| o.1.status()).collect::<Vec<_>>()
            );
        };
        let route = format!(
            "Route: <{}>\r\n",
            fwd.record_routes().next().expect("Record-Route").uri
        );
        l.send(peer(BOB), &respond(fwd, 180, "Ringing", &format!("b{i}")));
        let out = l.send(peer(BOB), &respond(fwd, 200, "OK", &format!("b{i}")));
        if out.iter().any(|(_, m)| m.status() == Some(200)) {
            answered += 1;
        }
        l.send(peer(ALICE), &format!("ACK sip:bob@192.0.2.10:{BOB} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:{ALICE};branch=z9hG4bKe{i}\r\n{route}Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a{i}\r\nTo: <sip:bob@example.com>;tag=b{i}\r\nCall-ID: call-{i}@192.0.2.10\r\nCSeq: 2 ACK\r\nContent-Length: 0\r\n\r\n"));
        let out = l.send(peer(ALICE), &format!("BYE sip:bob@192.0.2.10:{BOB} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:{ALICE};branch=z9hG4bKf{i}\r\n{route}Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a{i}\r\nTo: <sip:bob@example.com>;tag=b{i}\r\nCall-ID: call-{i}@192.0.2.10\r\nCSeq: 3 BYE\r\nContent-Length: 0\r\n\r\n"));
        if let Some((_, bye)) = out
            .iter()
            .find(|(to, m)| *to == peer(BOB) && m.method().is_some())
        {
            let ok = respond(bye, 200, "OK", &format!("b{i}"));
            l.send(peer(BOB), &ok);
        }
        l.now += Duration::from_millis(1);
        l.ep.handle_timeout(l.now);
        l.take();
    }
    drain(&mut l);
    eprintln!("{n} calls, {answered} answered (observe: {observe})");
}
