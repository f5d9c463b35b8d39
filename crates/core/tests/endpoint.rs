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

#[test]
fn register_then_call_through_the_proxy() {
    let mut h = H::new(false);
    let out = h.register("bob", BOB, 3600, 1);
    assert_eq!(out.len(), 1);
    assert_eq!(status(&out[0].1), 200);
    assert_eq!(out[0].0, peer(BOB), "response goes back to the source");
    let Some(palisade_sip::Contact::Addr(c)) = out[0].1.contacts().next() else {
        panic!("contact listed in 200")
    };
    assert_eq!(c.expires(), Some(3600));
    assert!(
        matches!(h.ep.poll_event(), Some(Event::BindingSaved(b)) if b.aor == "bob@example.com")
    );

    h.send(peer(ALICE), &invite("c1", "bob"));
    let out = h.take();
    assert_eq!(out.len(), 2);
    assert_eq!(status(&out[0].1), 100);
    assert_eq!(out[0].0, peer(ALICE));
    let (to, fwd, _) = &out[1];
    assert_eq!(*to, peer(BOB));
    assert_eq!(
        fwd.request_uri().unwrap().to_string(),
        format!("sip:bob@192.0.2.10:{BOB}")
    );
    assert_eq!(fwd.max_forwards(), Some(69));
    assert_eq!(fwd.vias().count(), 2);
    assert!(fwd
        .top_via()
        .unwrap()
        .branch()
        .unwrap()
        .starts_with("z9hG4bKpal"));
    assert!(fwd
        .record_routes()
        .next()
        .unwrap()
        .uri
        .to_string()
        .starts_with("sip:10.0.0.1:5060;lr;pal="));
    let route = route_of(fwd);
    // A canonical offer is forwarded unchanged but for the origin, whose session id
    // and address the shield rewrites (issue 13).
    let body = String::from_utf8_lossy(&fwd.body).into_owned();
    let (o_line, rest) = body.split_once("\r\ns=").unwrap();
    assert!(o_line.starts_with("v=0\r\no=- ") && o_line.ends_with(" 1 IN IP4 0.0.0.0"));
    assert_eq!(
        format!("s={rest}"),
        SDP.replace('\n', "\r\n")
            .split_once("s=")
            .unwrap()
            .1
            .replacen("", "s=", 1),
        "the rest of a canonical offer is forwarded unchanged"
    );

    h.send_bytes(peer(BOB), &respond(fwd, 180, "Ringing", "b1"));
    let out = h.take();
    assert_eq!(out.len(), 1);
    assert_eq!(status(&out[0].1), 180);
    assert_eq!(out[0].0, peer(ALICE));
    assert_eq!(
        out[0].1.vias().count(),
        1,
        "our Via is removed on the way back"
    );

    h.send_bytes(peer(BOB), &respond(fwd, 200, "OK", "b1"));
    let out = h.take();
    assert_eq!(status(&out[0].1), 200);
    assert_eq!(out[0].0, peer(ALICE));

    // ACK for the 2xx: end to end, through the Record-Route.
    h.send(
        peer(ALICE),
        &format!("ACK sip:bob@192.0.2.10:{BOB} SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:{ALICE};branch=z9hG4bKack1\n{route}Max-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a1\nTo: <sip:bob@example.com>;tag=b1\nCall-ID: call-c1\nCSeq: 1 ACK\nContent-Length: 0\n\n"),
    );
    let out = h.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, peer(BOB));
    assert_eq!(out[0].1.method().unwrap().as_str(), "ACK");
    assert_eq!(out[0].1.routes().count(), 0, "our Route entry is consumed");

    // BYE from the callee comes back through the proxy to the caller's contact.
    h.send(
        peer(BOB),
        &format!("BYE sip:alice@192.0.2.10:{ALICE} SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:{BOB};branch=z9hG4bKbye1\n{route}Max-Forwards: 70\nFrom: <sip:bob@example.com>;tag=b1\nTo: <sip:alice@example.com>;tag=a1\nCall-ID: call-c1\nCSeq: 1 BYE\nContent-Length: 0\n\n"),
    );
    let out = h.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, peer(ALICE));
    let bye = out[0].1.clone();
    h.send_bytes(peer(ALICE), &respond(&bye, 200, "OK", "a1"));
    let out = h.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, peer(BOB));
    assert_eq!(status(&out[0].1), 200);

    // The metrics' counters: requests by method as received, responses by class as
    // sent upstream (made here or relayed).
    let slot = |m: &str| {
        palisade_core::METHOD_LABELS
            .iter()
            .position(|l| *l == m)
            .unwrap()
    };
    let by_method = h.ep.stats.requests_by_method;
    for (m, n) in [
        ("REGISTER", 1),
        ("INVITE", 1),
        ("ACK", 1),
        ("BYE", 1),
        ("CANCEL", 0),
    ] {
        assert_eq!(by_method[slot(m)], n, "{m}");
    }
    assert_eq!(by_method.iter().sum::<u64>(), 4);
    // 100 Trying and 180 (1xx); the REGISTER's 200, the INVITE's 200, the BYE's 200
    assert_eq!(h.ep.stats.responses_by_class, [2, 3, 0, 0, 0, 0]);
}

#[test]
fn non_2xx_is_acked_hop_by_hop_and_retransmitted_until_ack() {
    let mut h = H::new(false);
    h.register("bob", BOB, 3600, 1);
    h.send(peer(ALICE), &invite("c2", "bob"));
    let fwd = h.take().pop().unwrap().1;
    h.send_bytes(peer(BOB), &respond(&fwd, 486, "Busy Here", "b2"));
    let out = h.take();
    assert_eq!(out.len(), 2);
    let ack = out
        .iter()
        .find(|o| o.0 == peer(BOB))
        .expect("ACK to the callee");
    assert_eq!(ack.1.method().unwrap().as_str(), "ACK");
    assert_eq!(
        ack.1.top_via().unwrap().branch(),
        fwd.top_via().unwrap().branch(),
        "ACK for non-2xx reuses the INVITE branch"
    );
    let busy = out.iter().find(|o| o.0 == peer(ALICE)).unwrap();
    assert_eq!(status(&busy.1), 486);
    // Timer G: retransmit the 486 at T1, 2*T1, ... until the ACK arrives.
    h.advance(Duration::from_millis(500));
    let out = h.take();
    assert_eq!(out.len(), 1);
    assert_eq!(status(&out[0].1), 486);
    assert_eq!(out[0].2, busy.2, "a retransmission is byte-identical");
    h.advance(Duration::from_millis(999));
    assert!(h.take().is_empty());
    h.advance(Duration::from_millis(1));
    assert_eq!(h.take().len(), 1);
    h.send(
        peer(ALICE),
        &format!("ACK sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:{ALICE};branch=z9hG4bKc2;rport\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a1\nTo: <sip:bob@example.com>;tag=b2\nCall-ID: call-c2\nCSeq: 1 ACK\nContent-Length: 0\n\n"),
    );
    assert!(
        h.take().is_empty(),
        "the ACK for a non-2xx is absorbed by the proxy"
    );
    h.advance(Duration::from_secs(10));
    assert!(h.take().is_empty(), "no retransmission after the ACK");
    h.advance(Duration::from_secs(60));
    assert_eq!(h.ep.transaction_count(), (0, 0), "every transaction ends");
}

#[test]
fn invite_timer_a_retransmits_and_timer_b_gives_408() {
    let mut h = H::new(false);
    h.register("bob", BOB, 3600, 1);
    h.send(peer(ALICE), &invite("c3", "bob"));
    let first = h.take().pop().unwrap();
    let mut at = 0u64;
    for expect in [500u64, 1500, 3500, 7500, 15500, 31500] {
        h.advance(Duration::from_millis(expect - at));
        at = expect;
        let out = h.take();
        assert_eq!(out.len(), 1, "retransmission at {expect} ms");
        assert_eq!(out[0].2, first.2);
    }
    h.advance(Duration::from_millis(32_000 - at));
    let out = h.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, peer(ALICE));
    assert_eq!(status(&out[0].1), 408);
}

#[test]
fn retransmitted_invite_is_absorbed_and_provisional_resent() {
    let mut h = H::new(false);
    h.register("bob", BOB, 3600, 1);
    h.send(peer(ALICE), &invite("c4", "bob"));
    assert_eq!(h.take().len(), 2);
    h.send(peer(ALICE), &invite("c4", "bob"));
    let out = h.take();
    assert_eq!(out.len(), 1, "only the last provisional is resent");
    assert_eq!(status(&out[0].1), 100);
}

#[test]
fn cancel_before_answer_gives_487() {
    let mut h = H::new(false);
    h.register("bob", BOB, 3600, 1);
    h.send(peer(ALICE), &invite("c5", "bob"));
    let fwd = h.take().pop().unwrap().1;
    h.send_bytes(peer(BOB), &respond(&fwd, 180, "Ringing", "b5"));
    h.take();
    h.send(
        peer(ALICE),
        &format!("CANCEL sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:{ALICE};branch=z9hG4bKc5;rport\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a1\nTo: <sip:bob@example.com>\nCall-ID: call-c5\nCSeq: 1 CANCEL\nContent-Length: 0\n\n"),
    );
    let out = h.take();
    let ok = out
        .iter()
        .find(|o| o.0 == peer(ALICE))
        .expect("200 to the CANCEL");
    assert_eq!(status(&ok.1), 200);
    assert_eq!(ok.1.cseq().unwrap().method.as_str(), "CANCEL");
    let cancel = out
        .iter()
        .find(|o| o.0 == peer(BOB))
        .expect("CANCEL toward the callee");
    assert_eq!(cancel.1.method().unwrap().as_str(), "CANCEL");
    assert_eq!(
        cancel.1.top_via().unwrap().branch(),
        fwd.top_via().unwrap().branch()
    );
    let c = cancel.1.clone();
    h.send_bytes(peer(BOB), &respond(&c, 200, "OK", "b5"));
    assert!(h.take().is_empty(), "the 200 to our CANCEL stays here");
    h.send_bytes(peer(BOB), &respond(&fwd, 487, "Request Terminated", "b5"));
    let out = h.take();
    assert!(out
        .iter()
        .any(|o| o.0 == peer(BOB) && o.1.method().is_some_and(|m| m.as_str() == "ACK")));
    let t = out
        .iter()
        .find(|o| o.0 == peer(ALICE))
        .expect("487 reaches the caller");
    assert_eq!(status(&t.1), 487);
}

#[test]
fn parallel_forking_relays_the_2xx_and_cancels_the_other_branch() {
    let mut h = H::new(false);
    h.register("bob", BOB, 3600, 1);
    h.register("bob", BOB2, 3600, 1);
    h.send(peer(ALICE), &invite("c6", "bob"));
    let out = h.take();
    assert_eq!(out.len(), 3, "100 + two branches");
    let b1 = out.iter().find(|o| o.0 == peer(BOB)).unwrap().1.clone();
    let b2 = out.iter().find(|o| o.0 == peer(BOB2)).unwrap().1.clone();
    assert_ne!(
        b1.top_via().unwrap().branch(),
        b2.top_via().unwrap().branch()
    );
    h.send_bytes(peer(BOB2), &respond(&b2, 180, "Ringing", "x2"));
    h.take();
    h.send_bytes(peer(BOB), &respond(&b1, 200, "OK", "x1"));
    let out = h.take();
    assert!(out
        .iter()
        .any(|o| o.0 == peer(ALICE) && status(&o.1) == 200));
    assert!(
        out.iter()
            .any(|o| o.0 == peer(BOB2) && o.1.method().is_some_and(|m| m.as_str() == "CANCEL")),
        "losing branch cancelled"
    );
}

#[test]
fn best_response_is_chosen_when_all_branches_fail() {
    let mut h = H::new(false);
    h.register("bob", BOB, 3600, 1);
    h.register("bob", BOB2, 3600, 1);
    h.send(peer(ALICE), &invite("c7", "bob"));
    let out = h.take();
    let b1 = out.iter().find(|o| o.0 == peer(BOB)).unwrap().1.clone();
    let b2 = out.iter().find(|o| o.0 == peer(BOB2)).unwrap().1.clone();
    h.send_bytes(peer(BOB), &respond(&b1, 503, "Service Unavailable", "y1"));
    assert!(
        h.take().iter().all(|o| o.0 != peer(ALICE)),
        "nothing relayed while a branch is open"
    );
    h.send_bytes(peer(BOB2), &respond(&b2, 486, "Busy Here", "y2"));
    let out = h.take();
    let r = out.iter().find(|o| o.0 == peer(ALICE)).unwrap();
    assert_eq!(status(&r.1), 486, "4xx preferred over 5xx");
}

#[test]
fn routing_errors() {
    let mut h = H::new(false);
    h.send(peer(ALICE), &invite("c8", "nobody"));
    assert_eq!(status(&h.take()[0].1), 404);
    h.send(peer(ALICE), &invite("c9", "bob"));
    assert_eq!(status(&h.take()[0].1), 480, "known user without a binding");
    h.register("bob", BOB, 3600, 1);
    h.send(
        peer(ALICE),
        &invite("c10", "bob").replace("Max-Forwards: 70", "Max-Forwards: 0"),
    );
    assert_eq!(status(&h.take()[0].1), 483);
    h.send(
        peer(ALICE),
        &invite("c11", "bob").replace(
            "sip:bob@example.com SIP",
            "sip:bob@elsewhere.example.net SIP",
        ),
    );
    assert_eq!(status(&h.take()[0].1), 403, "never an open relay");
    h.send(
        peer(ALICE),
        &invite("c12", "bob").replace("INVITE sip:bob@example.com", "INVITE nobodyKnows:this"),
    );
    assert_eq!(status(&h.take()[0].1), 416);
}

#[test]
fn a_request_that_comes_back_is_a_loop() {
    let mut h = H::new(false);
    // bob's contact is the AOR itself (misconfiguration): the request comes back.
    h.send(
        peer(BOB),
        &format!("REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:{BOB};branch=z9hG4bKloopreg\nMax-Forwards: 70\nFrom: <sip:bob@example.com>;tag=l\nTo: <sip:bob@example.com>\nCall-ID: loopreg\nCSeq: 1 REGISTER\nContact: <sip:bob@example.com>\nContent-Length: 0\n\n"),
    );
    h.take();
    h.send(peer(ALICE), &invite("c13", "bob"));
    let fwd = h.take().pop().unwrap().2;
    h.send_bytes(peer(BOB), &fwd);
    let out = h.take();
    assert_eq!(status(&out[0].1), 482);
}

#[test]
fn registrar_rules() {
    let mut h = H::new(false);
    let out = h.register("bob", BOB, 10, 100);
    assert_eq!(status(&out[0].1), 423);
    assert!(out[0]
        .1
        .headers
        .iter()
        .any(|x| matches!(x, Header::MinExpires(60))));
    assert_eq!(h.ep.bindings().count(), 0, "nothing stored on 423");
    h.register("bob", BOB, 120, 1);
    // A retransmitted REGISTER is answered from the transaction, not applied twice.
    while h.ep.poll_event().is_some() {}
    let out = h.register("bob", BOB, 120, 1);
    assert_eq!(out.len(), 1);
    assert!(h.ep.poll_event().is_none());
    // Binding expires on time.
    h.advance(Duration::from_secs(119));
    assert_eq!(h.ep.bindings().count(), 1);
    h.advance(Duration::from_secs(2));
    assert_eq!(h.ep.bindings().count(), 0);
    assert!(matches!(
        h.ep.poll_event(),
        Some(Event::BindingRemoved { .. })
    ));
    // Contact: * with Expires: 0 removes all.
    h.register("bob", BOB, 3600, 5);
    h.register("bob", BOB2, 3600, 5);
    assert_eq!(h.ep.bindings().count(), 2);
    h.send(
        peer(BOB),
        "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKstar\nMax-Forwards: 70\nFrom: <sip:bob@example.com>;tag=s\nTo: <sip:bob@example.com>\nCall-ID: star\nCSeq: 9 REGISTER\nContact: *\nExpires: 0\nContent-Length: 0\n\n",
    );
    assert_eq!(status(&h.take()[0].1), 200);
    assert_eq!(h.ep.bindings().count(), 0);
    // OPTIONS to the server itself.
    h.send(peer(ALICE), "OPTIONS sip:10.0.0.1:5060 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5061;branch=z9hG4bKopt\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=o\nTo: <sip:10.0.0.1:5060>\nCall-ID: opt\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n");
    assert_eq!(status(&h.take()[0].1), 200);
}

#[test]
fn non_invite_timer_e_caps_at_t2_and_timer_f_gives_408() {
    let mut h = H::new(false);
    h.register("bob", BOB, 3600, 1);
    h.send(peer(ALICE), &format!("MESSAGE sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:{ALICE};branch=z9hG4bKm1\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=m\nTo: <sip:bob@example.com>\nCall-ID: msg1\nCSeq: 1 MESSAGE\nContent-Type: text/plain\nContent-Length: 2\n\nhi"));
    assert_eq!(
        h.take().len(),
        1,
        "MESSAGE forwarded, no 100 for non-INVITE"
    );
    let mut count = 0;
    let mut gaps = Vec::new();
    let mut last = 0u64;
    for ms in (100..32_000u64).step_by(100) {
        h.advance(Duration::from_millis(100));
        let out = h.take();
        if out.iter().any(|o| o.0 == peer(BOB)) {
            count += 1;
            gaps.push(ms - last);
            last = ms;
        }
        if out.iter().any(|o| o.0 == peer(ALICE)) {
            panic!("408 before Timer F");
        }
    }
    assert_eq!(&gaps[..4], &[500, 1000, 2000, 4000]);
    assert!(
        gaps[4..].iter().all(|g| *g == 4000),
        "capped at T2: {gaps:?}"
    );
    assert!(count >= 9);
    h.advance(Duration::from_millis(100));
    let out = h.take();
    assert!(out
        .iter()
        .any(|o| o.0 == peer(ALICE) && status(&o.1) == 408));
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

#[test]
fn digest_auth_md5_and_sha256() {
    let mut h = H::new(true);
    let out = h.register("bob", BOB, 3600, 1);
    let ch = &out[0].1;
    assert_eq!(status(ch), 401);
    let algs: Vec<String> = ch
        .headers
        .iter()
        .filter_map(|x| match x {
            Header::WwwAuthenticate(c) => c.get("algorithm").map(|a| a.into_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(
        algs,
        vec!["SHA-256", "MD5"],
        "one challenge per algorithm, in configured order"
    );
    for (i, alg) in [Algorithm::Sha256, Algorithm::Md5].into_iter().enumerate() {
        let nonce = nonce_of(ch, alg.name());
        // both challenges carry one nonce, so the nonce count goes on across them
        let r = auth_register(
            &mut h,
            "bob",
            alg,
            &nonce,
            "bob",
            &format!("{:08x}", i + 1),
            10 + i as u32 * 2,
        );
        assert_eq!(status(&r), 200, "{alg:?}");
        // replaying the same nonce count is refused
        let r = auth_register(
            &mut h,
            "bob",
            alg,
            &nonce,
            "bob",
            &format!("{:08x}", i + 1),
            11 + i as u32 * 2,
        );
        assert_eq!(status(&r), 403, "{alg:?} replay");
    }
    // wrong password and unknown user: the same answer
    let nonce = nonce_of(ch, "MD5");
    let wrong = auth_register(
        &mut h,
        "bob",
        Algorithm::Md5,
        &nonce,
        "alice",
        "00000002",
        20,
    );
    let unknown = auth_register(
        &mut h,
        "mallory",
        Algorithm::Md5,
        &nonce,
        "mallory",
        "00000003",
        21,
    );
    assert_eq!(status(&wrong), 403);
    assert_eq!(status(&unknown), 403);
    assert_eq!(wrong.start, unknown.start);
    // expired nonce: stale=true
    h.advance(Duration::from_secs(61));
    let r = auth_register(&mut h, "bob", Algorithm::Md5, &nonce, "bob", "00000005", 30);
    assert_eq!(status(&r), 401);
    assert!(r.headers.iter().any(
        |x| matches!(x, Header::WwwAuthenticate(c) if c.get("stale").as_deref() == Some("true"))
    ));
    // INVITE from a local user is challenged with 407
    h.send(peer(ALICE), &invite("c20", "bob"));
    assert_eq!(status(&h.take()[0].1), 407);
}

#[test]
fn malformed_requests_get_400_with_a_warning_and_bad_responses_are_dropped() {
    let mut h = H::new(false);
    h.send(peer(ALICE), &format!("OPTIONS sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5061;branch=z9hG4bKbad\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=1\nTo: <sip:bob@example.com>\nCall-ID: bad\nCSeq: 1 OPTIONS\n{PHONE}Content-Length: 0\nContent-Length: 0\n\n"));
    let out = h.take();
    assert_eq!(out.len(), 1);
    assert_eq!(status(&out[0].1), 400);
    assert!(out[0]
        .1
        .headers
        .iter()
        .any(|x| matches!(x, Header::Warning(w) if w.text.contains("only once"))));
    h.send(
        peer(ALICE),
        "SIP/2.0 2000 Nope\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKx\nContent-Length: 0\n\n",
    );
    assert!(h.take().is_empty());
    assert_eq!(h.ep.stats.malformed, 2);
}

#[test]
fn timer_c_cancels_a_branch_that_rings_too_long() {
    let mut h = H::new(false);
    h.register("bob", BOB, 3600, 1);
    h.send(peer(ALICE), &invite("c30", "bob"));
    let fwd = h.take().pop().unwrap().1;
    h.send_bytes(peer(BOB), &respond(&fwd, 180, "Ringing", "b30"));
    assert_eq!(status(&h.take()[0].1), 180);
    // Ringing for three minutes is allowed (Timer B no longer applies)...
    for _ in 0..18 {
        h.advance(Duration::from_secs(10));
        assert!(h
            .take()
            .iter()
            .all(|o| o.1.method().is_none_or(|m| m.as_str() != "CANCEL")));
    }
    // ... then Timer C cancels the branch.
    h.advance(Duration::from_secs(2));
    let out = h.take();
    assert!(
        out.iter()
            .any(|o| o.0 == peer(BOB) && o.1.method().is_some_and(|m| m.as_str() == "CANCEL")),
        "{out:?}"
    );
    // The callee answers nothing: after 64*T1 the caller gets 408.
    h.advance(Duration::from_secs(33));
    let out = h.take();
    assert!(
        out.iter()
            .any(|o| o.0 == peer(ALICE) && status(&o.1) == 408),
        "{out:?}"
    );
}

// ---------------------------------------------------------------- the shield in the proxy

/// A response with a body (and Contact), built from [`respond`].
fn respond_body(req: &Message<'_>, status: u16, ctype: &str, body: &str) -> Vec<u8> {
    let base = String::from_utf8(respond(req, status, "X", "b1")).unwrap();
    base.replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Contact: <sip:bob@192.0.2.10:{BOB}>\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .into_bytes()
}

fn security_events(h: &mut H) -> Vec<palisade_shield::SecurityEvent> {
    let mut v = Vec::new();
    while let Some(e) = h.ep.poll_event() {
        if let Event::Security(s) = e {
            v.push(s);
        }
    }
    v
}

#[test]
fn hidden_content_never_reaches_the_callee() {
    let mut h = H::new(false);
    h.register("bob", BOB, 3600, 1);
    let sdp = format!("{SDP}a=x-blob:SECRETATTR\n").replace("s=-\n", "s=-\ni=SECRETINFO\n");
    h.send(
        peer(ALICE),
        &invite_with(
            "sh1",
            "bob",
            "X-Payload: SECRETHDR\nAlert-Info: <http://SECRETURL/>\n",
            &sdp,
        ),
    );
    let out = h.take();
    assert_eq!(out.len(), 2);
    let (to, fwd, bytes) = &out[1];
    assert_eq!(*to, peer(BOB));
    assert_eq!(fwd.method().unwrap().as_str(), "INVITE");
    assert!(
        !String::from_utf8_lossy(bytes).contains("SECRET"),
        "hidden content forwarded:\n{}",
        String::from_utf8_lossy(bytes)
    );
    assert!(String::from_utf8_lossy(&fwd.body).contains("a=rtpmap:0 PCMU/8000"));
    let ev = security_events(&mut h);
    let kinds: Vec<&str> = ev.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "sdp-line-dropped",
            "sdp-attribute-dropped",
            "header-dropped",
            "header-dropped"
        ]
    );
    assert!(ev.iter().all(|e| e.call_id == "call-sh1"
        && e.caller == "alice@example.com"
        && e.callee == "bob@example.com"
        && e.source == "udp:192.0.2.10:5061"));
    assert_eq!(h.ep.stats.shield_dropped, 4);
    let by_kind = |k: &str| {
        let i = palisade_shield::EventKind::LABELS
            .iter()
            .position(|l| *l == k)
            .unwrap();
        h.ep.stats.security_by_kind[i]
    };
    assert_eq!(by_kind("header-dropped"), 2);
    assert_eq!(by_kind("sdp-attribute-dropped"), 1);
    assert_eq!(by_kind("sdp-line-dropped"), 1);
    assert_eq!(by_kind("offer-refused"), 0);
}

#[test]
fn refused_offer_is_answered_before_any_branch_exists() {
    let mut h = H::new(false);
    h.register("bob", BOB, 3600, 1);
    let bad = SDP.replace("PCMU/8000", "PCMU/99999999999999999999999");
    h.send(peer(ALICE), &invite_with("sh2", "bob", "", &bad));
    let out = h.take();
    assert_eq!(
        out.len(),
        1,
        "only the answer to the caller; the callee gets nothing"
    );
    assert_eq!(out[0].0, peer(ALICE));
    assert_eq!(status(&out[0].1), 488);
    let w = String::from_utf8_lossy(&out[0].2);
    assert!(w.contains("Warning: 399 palisade \"SDP line 7: "), "{w}");
    assert_eq!(
        h.ep.transaction_count().1,
        0,
        "no client transaction was created"
    );
    let ev = security_events(&mut h);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].kind.as_str(), "offer-refused");
    assert_eq!(ev[0].status, Some(488));
    use sha2::Digest;
    let body = bad.replace('\n', "\r\n");
    let want: [u8; 32] = sha2::Sha256::digest(body.as_bytes()).into();
    assert_eq!(
        ev[0].sha256, want,
        "the event carries the hash of the refused body"
    );

    // A compressed body: 415 with what is accepted.
    h.send(
        peer(ALICE),
        &invite_with("sh3", "bob", "Content-Encoding: gzip\n", SDP),
    );
    let out = h.take();
    assert_eq!(out.len(), 1);
    assert_eq!(status(&out[0].1), 415);
    let w = String::from_utf8_lossy(&out[0].2);
    assert!(w.contains("Accept-Encoding: identity\r\n") && w.contains("Accept: application/sdp"));
}

#[test]
fn protected_callee_rings_only_for_its_allow_list() {
    let mut h = H::new(false);
    h.ep.set_users(vec![
        user("alice", 0, None),
        user("bob", 0, Some(vec!["carol".to_string()])),
        user("carol", 0, None),
    ]);
    h.register("bob", BOB, 3600, 1);
    h.send(peer(ALICE), &invite("p1", "bob"));
    let out = h.take();
    assert_eq!(out.len(), 1, "bob's phone receives nothing");
    assert_eq!(status(&out[0].1), 480);
    let ev = security_events(&mut h);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].kind.as_str(), "protected-user-refused");
    assert_eq!(ev[0].caller, "alice@example.com");
    // a caller on the list gets through
    h.send(
        peer(ALICE),
        &invite("p2", "bob").replace("sip:alice@example.com", "sip:carol@example.com"),
    );
    let out = h.take();
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].0, peer(BOB));
    // an external caller cannot claim to be carol's domain peer: From is not evidence
    // when requests are authenticated (here: a foreign domain is never on the list)
    h.send(
        peer(ALICE),
        &invite("p3", "bob").replace("sip:alice@example.com", "sip:carol@evil.example"),
    );
    let out = h.take();
    assert_eq!(out.len(), 1);
    assert_eq!(status(&out[0].1), 480);
}

#[test]
fn refused_answers_toward_the_caller() {
    let mut h = H::new(false);
    h.register("bob", BOB, 3600, 1);
    h.send(peer(ALICE), &invite("a1", "bob"));
    let out = h.take();
    let fwd = out[1].1.clone();

    // 183 with a hostile body: relayed without it
    h.send_bytes(
        peer(BOB),
        &respond_body(&fwd, 183, "application/x-evil", "MZ\u{1}"),
    );
    let out = h.take();
    assert_eq!(out.len(), 1);
    assert_eq!(status(&out[0].1), 183);
    assert!(out[0].1.body.is_empty());
    assert!(out[0].1.content_type().is_none());

    // 200 with a hostile body: the caller gets 502, the callee's dialog is ended
    h.send_bytes(
        peer(BOB),
        &respond_body(&fwd, 200, "application/sdp", "v=0\r\nx=evil\r\n"),
    );
    let out = h.take();
    let to_alice: Vec<_> = out.iter().filter(|o| o.0 == peer(ALICE)).collect();
    let to_bob: Vec<_> = out.iter().filter(|o| o.0 == peer(BOB)).collect();
    assert_eq!(to_alice.len(), 1);
    assert_eq!(status(&to_alice[0].1), 502);
    assert!(String::from_utf8_lossy(&to_alice[0].2).contains("Warning: 399 palisade"));
    let methods: Vec<&str> = to_bob
        .iter()
        .map(|o| o.1.method().unwrap().as_str())
        .collect();
    assert_eq!(methods, ["ACK", "BYE"]);
    let bye = &to_bob[1].1;
    assert_eq!(
        bye.request_uri().unwrap().to_string(),
        format!("sip:bob@192.0.2.10:{BOB}")
    );
    assert_eq!(bye.to().unwrap().tag(), Some("b1"));
    assert_eq!(bye.cseq().unwrap().seq, 2);
    let kinds: Vec<&str> = security_events(&mut h)
        .iter()
        .map(|e| e.kind.as_str())
        .collect();
    assert_eq!(kinds, ["answer-refused", "answer-refused"]);
    // the callee's 200 to the BYE is absorbed by the BYE's client transaction
    h.send_bytes(peer(BOB), &respond(bye, 200, "OK", "b1"));
    assert!(h.take().is_empty());
}

#[test]
fn protected_callee_accepts_old_accounts_when_configured() {
    let now = Instant::now();
    let cfg = CoreConfig {
        domain: "example.com".into(),
        local: vec![(Transport::Udp, "10.0.0.1:5060".parse().unwrap())],
        authenticate_register: false,
        authenticate_requests: false,
        protected_min_age: Some(Duration::from_secs(30 * 86_400)),
        protected_status: 603,
        ..CoreConfig::default()
    };
    let mut h = H {
        ep: Endpoint::new(cfg, [7; 32], now),
        now,
    };
    let day = 86_400;
    let today = 1_800_000_000;
    h.ep.set_unix_time(now, today);
    h.ep.set_users(vec![
        user("alice", today - 90 * day, None),
        user("bob", today - 400 * day, Some(vec![])),
        user("newbie", today - day, None),
    ]);
    h.register("bob", BOB, 3600, 1);
    // alice's account is 90 days old: allowed although bob's list is empty
    h.send(peer(ALICE), &invite("age1", "bob"));
    let out = h.take();
    assert_eq!(out.len(), 2, "alice reaches bob");
    // a day-old account is not
    h.send(
        peer(ALICE),
        &invite("age2", "bob").replace("sip:alice@example.com", "sip:newbie@example.com"),
    );
    let out = h.take();
    assert_eq!(out.len(), 1);
    assert_eq!(status(&out[0].1), 603, "the configured answer");
}

#[test]
fn a_made_up_dialog_neither_reaches_a_protected_user_nor_uses_the_proxy_as_relay() {
    let mut h = H::new(false);
    h.ep.set_users(vec![user("alice", 0, None), user("bob", 0, Some(vec![]))]);
    h.register("bob", BOB, 3600, 1);
    // an INVITE with an invented To tag, no Route: still an initial request for bob
    h.send(
        peer(ALICE),
        &invite("fake1", "bob").replace(
            "To: <sip:bob@example.com>",
            "To: <sip:bob@example.com>;tag=invented",
        ),
    );
    let out = h.take();
    assert_eq!(out.len(), 1, "bob's phone receives nothing");
    assert_eq!(status(&out[0].1), 480);
    // an "in-dialog" request straight at a device address, not routed through us: 403
    h.send(
        peer(ALICE),
        &invite("fake2", "bob")
            .replace(
                "INVITE sip:bob@example.com",
                &format!("INVITE sip:bob@192.0.2.10:{BOB}"),
            )
            .replace(
                "To: <sip:bob@example.com>",
                "To: <sip:bob@example.com>;tag=invented",
            ),
    );
    let out = h.take();
    assert_eq!(out.len(), 1);
    assert_eq!(status(&out[0].1), 403);
    assert!(out.iter().all(|o| o.0 != peer(BOB)));
    // an ACK with an invented dialog: not relayed
    h.send(
        peer(ALICE),
        &format!("ACK sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:{ALICE};branch=z9hG4bKfakeack\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a1\nTo: <sip:bob@example.com>;tag=invented\nCall-ID: fake-ack\nCSeq: 1 ACK\nContent-Length: 0\n\n"),
    );
    assert!(h.take().is_empty());
}

/// Regression: a 56-byte nonce with a two-byte character across byte 16 used to panic
/// in the nonce check (a byte-offset slice inside a character). It is not our nonce:
/// the request is refused like any other stranger's.
#[test]
fn a_nonce_with_a_multibyte_character_is_refused_not_a_panic() {
    let mut h = H::new(true);
    for nonce in [
        format!("{}é{}", "a".repeat(15), "b".repeat(39)),
        format!("{}é{}", "a".repeat(31), "b".repeat(23)),
        format!("{}é{}", "a".repeat(54), ""),
        "é".repeat(28),
    ] {
        assert_eq!(nonce.len(), 56);
        let out = auth_register(&mut h, "bob", Algorithm::Md5, &nonce, "bob", "00000001", 7);
        assert!(
            matches!(status(&out), 401 | 403),
            "status {} for nonce {nonce:?}",
            status(&out)
        );
    }
    // and the server still serves
    let out = h.register("bob", BOB, 3600, 1);
    assert_eq!(status(&out[0].1), 401);
}

/// An error answer to an unauthenticated UDP sender is never larger than the request
/// (a challenge: than the request plus `challenge_allowance`; optional lines go first,
/// then it is not sent), and error answers to one source are limited to a burst and a
/// rate.
#[test]
fn no_amplification_and_a_budget_for_error_answers() {
    let mut h = H::new(true);
    let allowance = CoreConfig::default().challenge_allowance;
    // A bare REGISTER: the 401 with both challenges would be larger than it plus the
    // allowance; the Server line and the second challenge go.
    let bare = "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKtiny\nMax-Forwards: 70\nFrom: <sip:bob@example.com>;tag=r\nTo: <sip:bob@example.com>\nCall-ID: tiny\nCSeq: 1 REGISTER\nContent-Length: 0\n\n".replace('\n', "\r\n");
    h.send_bytes(peer(BOB), bare.as_bytes());
    let out = h.take();
    assert_eq!(out.len(), 1);
    let (_, m, bytes) = &out[0];
    assert_eq!(status(m), 401);
    assert!(
        bytes.len() <= bare.len() + allowance,
        "{} > {}",
        bytes.len(),
        bare.len()
    );
    let challenges = m
        .headers
        .iter()
        .filter(|x| matches!(x, Header::WwwAuthenticate(_)))
        .count();
    assert_eq!(challenges, 1);
    // Any other error answer: never larger than the request. A short malformed
    // request's 400 loses its Warning and Server lines.
    let bad = "OPTIONS sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5061;branch=z9hG4bKb\nFrom: <sip:a@example.com>;tag=1\nTo: <sip:bob@example.com>\nCall-ID: b\nCSeq: 1 OPTIONS\nContent-Length: 0\nContent-Length: 0\n\n".replace('\n', "\r\n");
    h.send_bytes(peer(ALICE), bad.as_bytes());
    for (_, m, bytes) in h.take() {
        assert_eq!(status(&m), 400);
        assert!(bytes.len() <= bad.len(), "{} > {}", bytes.len(), bad.len());
    }
    // With a phone's usual headers both challenges fit.
    let out = h.register("bob", BOB, 3600, 1);
    assert_eq!(status(&out[0].1), 401);
    let challenges = out[0]
        .1
        .headers
        .iter()
        .filter(|x| matches!(x, Header::WwwAuthenticate(_)))
        .count();
    assert_eq!(challenges, 2);
    // One source sending 1,000 bad requests at once gets at most the burst answered.
    let cfg = CoreConfig::default();
    let mut answered = 0;
    for i in 0..1000 {
        h.send(peer(ALICE), &format!("OPTIONS sip:nobody@example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5061;branch=z9hG4bKflood{i}\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=1\nTo: <sip:nobody@example.com>\nCall-ID: flood{i}\nCSeq: 1 OPTIONS\n{PHONE}Content-Length: 0\nContent-Length: 0\n\n"));
        answered += h.take().len();
    }
    // the three answers above went to the same IP address and spent the budget too
    let budget = cfg.answer_burst as usize - 3;
    assert_eq!(answered, budget);
    assert_eq!(h.ep.stats.answers_rate_limited, 1000 - budget as u64);
    // The budget refills with time.
    h.advance(Duration::from_secs(1));
    h.send(peer(ALICE), &format!("OPTIONS sip:nobody@example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5061;branch=z9hG4bKlater\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=1\nTo: <sip:nobody@example.com>\nCall-ID: later\nCSeq: 1 OPTIONS\n{PHONE}Content-Length: 0\nContent-Length: 0\n\n"));
    assert_eq!(h.take().len(), 1);
    // Another source is not affected.
    h.register("alice", ALICE + 100, 3600, 1);
}

/// The per-client tables are swept: nonce counts of expired nonces, answer budgets,
/// and the timers of ended transactions.
#[test]
fn per_client_tables_are_swept() {
    let mut h = H::new(true);
    let out = h.register("bob", BOB, 3600, 1);
    let nonce = nonce_of(&out[0].1, "MD5");
    let ok = auth_register(&mut h, "bob", Algorithm::Md5, &nonce, "bob", "00000001", 2);
    assert_eq!(status(&ok), 200);
    for i in 0..50 {
        h.send(peer(ALICE), &invite(&format!("sw{i}"), "nobody"));
        h.take();
    }
    let (nonces, budgets, _, _) = h.ep.table_sizes();
    assert_eq!(nonces, 1);
    assert!(budgets >= 1);
    assert!(h.ep.timer_count() > 0);
    // Past the nonce lifetime (60 s here), every transaction timer and the time a source
    // that authenticated stays exempt from the answer budget (600 s).
    for _ in 0..70 {
        h.advance(Duration::from_secs(10));
        h.take();
    }
    let (nonces, budgets, aliases, answered) = h.ep.table_sizes();
    assert_eq!((nonces, budgets, aliases, answered), (0, 0, 0, 0));
    assert_eq!(h.ep.transaction_count(), (0, 0));
    // What is left is the binding's expiry timer.
    assert!(
        h.ep.timer_count() <= 1,
        "{} timers left",
        h.ep.timer_count()
    );
}

/// Found by the endpoint fuzz target: a 100 Trying for which no client transaction
/// exists was relayed statelessly, unshielded (with an unknown header). A 100 is
/// hop-by-hop and is never relayed.
#[test]
fn a_stray_100_is_not_relayed() {
    let mut h = H::new(false);
    h.send(peer(BOB), "SIP/2.0 100 Trying\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKpalnone\nVia: SIP/2.0/UDP 192.0.2.10:5061;branch=z9hG4bKi38;rport=5061\nFrom: <sip:alice@example.com>;tag=a\nTo: <sip:bob@example.com>;tag=b\nCall-ID: stray\nCSeq: 1 INVITE\nX-Hidden: hidden\nContent-Length: 0\n\n");
    assert!(h.take().is_empty());
}

/// A phone (or a PBX) on the server's own host at another port, whose Contact user is
/// not an account: requests inside its dialog are routed to that address, not looked up
/// as a local user (which answered 404 before).
#[test]
fn a_contact_on_our_host_at_another_port_is_someone_else() {
    let mut h = H::new(false);
    let pbx = Peer {
        transport: Transport::Udp,
        addr: "10.0.0.1:5074".parse().unwrap(),
        conn: None,
    };
    h.send(pbx, "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.1:5074;branch=z9hG4bKpbxreg;rport\nMax-Forwards: 70\nFrom: <sip:bob@example.com>;tag=p\nTo: <sip:bob@example.com>\nCall-ID: pbx-reg\nCSeq: 1 REGISTER\nContact: <sip:bob-0x5f3a@10.0.0.1:5074>\nExpires: 3600\nContent-Length: 0\n\n");
    assert_eq!(status(&h.take()[0].1), 200);
    h.send(peer(ALICE), &invite("own1", "bob"));
    let out = h.take();
    let (to, fwd, _) = out.last().unwrap();
    assert_eq!(*to, pbx);
    let fwd = fwd.clone();
    let route = route_of(&fwd);
    h.send_bytes(pbx, &respond(&fwd, 200, "OK", "p1"));
    assert!(h
        .take()
        .iter()
        .any(|o| o.0 == peer(ALICE) && status(&o.1) == 200));
    for m in ["ACK", "BYE"] {
        // in-dialog requests from the caller: Request-URI is the callee's Contact
        h.send(
            peer(ALICE),
            &format!("{m} sip:pbx-77@10.0.0.1:5074 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:{ALICE};branch=z9hG4bK{m}own\n{route}Max-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a1\nTo: <sip:bob@example.com>;tag=p1\nCall-ID: call-own1\nCSeq: 2 {m}\nContent-Length: 0\n\n"),
        );
        let out = h.take();
        let relayed: Vec<_> = out.iter().filter(|o| o.0 == pbx).collect();
        assert_eq!(relayed.len(), 1, "{m} goes to the PBX: {out:?}");
        assert_eq!(
            relayed[0].1.request_uri().unwrap().to_string(),
            "sip:pbx-77@10.0.0.1:5074"
        );
        assert!(
            out.iter().all(|o| status(&o.1) != 404),
            "{m} was answered 404"
        );
    }
    // An out-of-dialog request to that address from a stranger is not relayed (it is
    // not for us), while one for our domain still reaches the user.
    h.send(peer(ALICE), &format!("OPTIONS sip:pbx-77@10.0.0.1:5074 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5061;branch=z9hG4bKrelay\nMax-Forwards: 70\nFrom: <sip:mallory@evil.example>;tag=m\nTo: <sip:pbx-77@10.0.0.1:5074>\nCall-ID: relay\nCSeq: 1 OPTIONS\n{PHONE}Content-Length: 0\n\n"));
    let out = h.take();
    assert_eq!(out.len(), 1);
    assert_eq!(status(&out[0].1), 403);
    // Our own address with our port is still us.
    h.send(peer(ALICE), "OPTIONS sip:bob@10.0.0.1:5060 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5061;branch=z9hG4bKours\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=m\nTo: <sip:bob@10.0.0.1>\nCall-ID: ours\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n");
    let out = h.take();
    assert!(out.iter().any(|o| o.0 == pbx), "{out:?}");
}

fn challenge_algorithms(m: &Message<'_>) -> Vec<String> {
    m.headers
        .iter()
        .filter_map(|h| match h {
            Header::WwwAuthenticate(c) | Header::ProxyAuthenticate(c) => {
                c.get("algorithm").map(|a| a.into_owned())
            }
            _ => None,
        })
        .collect()
}

/// A device that walks away from a SHA-256-first challenge is offered MD5 alone from
/// then on (and can register); listed User-Agents get MD5 alone at once; everyone else
/// keeps the configured order.
#[test]
fn devices_that_cannot_do_sha256_are_offered_md5_alone() {
    let mut h = H::new(true);
    let out = h.register("bob", BOB, 3600, 1);
    assert_eq!(challenge_algorithms(&out[0].1), ["SHA-256", "MD5"]);
    // a retransmission is not walking away
    let out = h.register("bob", BOB, 3600, 1);
    assert_eq!(challenge_algorithms(&out[0].1), ["SHA-256", "MD5"]);
    // a new REGISTER without credentials is
    let out = h.register("bob", BOB, 3600, 2);
    assert_eq!(challenge_algorithms(&out[0].1), ["MD5"]);
    let nonce = nonce_of(&out[0].1, "MD5");
    let ok = auth_register(&mut h, "bob", Algorithm::Md5, &nonce, "bob", "00000001", 3);
    assert_eq!(status(&ok), 200);
    // another account on the same address is another device
    let out = h.register("alice", BOB, 3600, 4);
    assert_eq!(challenge_algorithms(&out[0].1), ["SHA-256", "MD5"]);
    // a listed User-Agent gets MD5 alone at once
    h.send(peer(ALICE), &format!("REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:{ALICE};branch=z9hG4bKbs1;rport\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=bs\nTo: <sip:alice@example.com>\nCall-ID: bs-1\nCSeq: 1 REGISTER\nContact: <sip:alice-0x1@192.0.2.10:{ALICE}>\n{}Content-Length: 0\n\n", PHONE.replace("core-test-phone/1.0", "baresip v1.0.0 (x86_64/linux)")));
    let out = h.take();
    assert_eq!(challenge_algorithms(&out[0].1), ["MD5"]);
}

/// The callee re-INVITEs the caller inside the dialog: the caller's 200 goes back to the
/// callee.
#[test]
fn a_reinvite_from_the_callee_is_answered_back_to_the_callee() {
    let mut h = H::new(false);
    h.register("bob", BOB, 3600, 1);
    h.send(peer(ALICE), &invite("ri1", "bob"));
    let out = h.take();
    let fwd = out.last().unwrap().1.clone();
    let route = route_of(&fwd);
    h.send_bytes(peer(BOB), &respond(&fwd, 200, "OK", "b1"));
    h.take();
    let sdp = SDP;
    h.send(
        peer(BOB),
        &format!("INVITE sip:alice-ua-77@192.0.2.10:{ALICE} SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:{BOB};branch=z9hG4bKre1;rport\n{route}Max-Forwards: 70\nFrom: <sip:bob@example.com>;tag=b1\nTo: <sip:alice@example.com>;tag=a1\nCall-ID: call-ri1\nCSeq: 101 INVITE\nContact: <sip:pbx-trunk-9@192.0.2.10:{BOB}>\nContent-Type: application/sdp\nContent-Length: {}\n\n{sdp}", crlf_len(sdp)),
    );
    let out = h.take();
    let (to, reinv, _) = out
        .iter()
        .find(|o| o.1.is_request())
        .expect("re-INVITE relayed");
    assert_eq!(*to, peer(ALICE));
    let reinv = reinv.clone();
    // alice answers with both Vias on one line, as SIPp writes them
    let mut ok = "SIP/2.0 200 OK\r\nVia: ".to_string();
    let vias: Vec<String> = reinv
        .headers
        .iter()
        .filter_map(|x| match x {
            Header::Via(_) => {
                let mut s = String::new();
                x.write(&mut s);
                Some(s.trim_end().trim_start_matches("Via: ").to_string())
            }
            _ => None,
        })
        .collect();
    ok.push_str(&vias.join(", "));
    ok.push_str(&format!("\r\nFrom: <sip:bob@example.com>;tag=b1\r\nTo: <sip:alice@example.com>;tag=a1\r\nCall-ID: call-ri1\r\nCSeq: 101 INVITE\r\nContact: <sip:alice-ua-77@192.0.2.10:{ALICE}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{}", crlf_len(sdp), sdp.replace('\n', "\r\n")));
    h.send_bytes(peer(ALICE), ok.as_bytes());
    let out = h.take();
    assert!(
        out.iter().any(|o| o.0 == peer(BOB) && status(&o.1) == 200),
        "{:?}\n{}",
        out.iter().map(|o| (o.0, status(&o.1))).collect::<Vec<_>>(),
        ok
    );
}

/// A whole call (INVITE, 200, ACK, BYE, 200) leaves no transaction behind once its
/// timers have run, and no timer but the binding's.
#[test]
fn a_finished_call_leaves_no_transaction_behind() {
    let mut h = H::new(false);
    h.register("bob", BOB, 3600, 1);
    h.send(peer(ALICE), &invite("fin1", "bob"));
    let out = h.take();
    let fwd = out.last().unwrap().1.clone();
    let route = route_of(&fwd);
    h.send_bytes(peer(BOB), &respond(&fwd, 200, "OK", "b1"));
    h.take();
    h.send(peer(ALICE), &format!("ACK sip:bob-0x9@192.0.2.10:{BOB} SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:{ALICE};branch=z9hG4bKfinack\n{route}Max-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a1\nTo: <sip:bob@example.com>;tag=b1\nCall-ID: call-fin1\nCSeq: 1 ACK\nContent-Length: 0\n\n"));
    h.send(peer(ALICE), &format!("BYE sip:bob-0x9@192.0.2.10:{BOB} SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:{ALICE};branch=z9hG4bKfinbye\n{route}Max-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a1\nTo: <sip:bob@example.com>;tag=b1\nCall-ID: call-fin1\nCSeq: 2 BYE\nContent-Length: 0\n\n"));
    let out = h.take();
    let bye = out
        .iter()
        .find(|o| o.0 == peer(BOB) && o.1.method().is_some_and(|m| m.as_str() == "BYE"))
        .expect("BYE relayed to bob")
        .1
        .clone();
    h.send_bytes(peer(BOB), &respond(&bye, 200, "OK", "b1"));
    let out = h.take();
    assert!(out
        .iter()
        .any(|o| o.0 == peer(ALICE) && status(&o.1) == 200));
    assert_ne!(
        h.ep.transaction_count(),
        (0, 0),
        "the transactions wait for their timers"
    );
    for _ in 0..8 {
        h.advance(Duration::from_secs(5));
        h.take();
    }
    assert_eq!(h.ep.transaction_count(), (0, 0));
    assert!(
        h.ep.timer_count() <= 1,
        "{} timers left",
        h.ep.timer_count()
    );
}

/// Writing this server's address in a Route header does not make a made-up request part
/// of a dialog: only a Route carrying the dialog token of its Call-ID does. A stranger
/// cannot use Palisade to relay BYE, re-INVITE or INFO to an arbitrary address.
#[test]
fn a_forged_route_does_not_relay_an_in_dialog_request() {
    let mut h = H::new(false);
    h.register("bob", BOB, 3600, 1);
    h.send(peer(ALICE), &invite("tok1", "bob"));
    let out = h.take();
    let fwd = out.last().unwrap().1.clone();
    let good = route_of(&fwd);
    let forged = [
        "Route: <sip:10.0.0.1:5060;lr>\n".to_string(),
        "Route: <sip:10.0.0.1:5060;lr;pal=0000000000000000>\n".to_string(),
        // a real token, but of another Call-ID
        good.clone(),
    ];
    for (i, route) in forged.iter().enumerate() {
        let call_id = if i == 2 { "another-call" } else { "call-tok1" };
        h.send(peer(ALICE), &format!("BYE sip:victim@192.0.2.99:5070 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:{ALICE};branch=z9hG4bKforge{i}\n{route}Max-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a1\nTo: <sip:victim@example.org>;tag=v1\nCall-ID: {call_id}\nCSeq: 2 BYE\n{PHONE}Content-Length: 0\n\n"));
        let out = h.take();
        assert!(
            out.iter().all(|o| o.0.addr.port() != 5070),
            "forged route {i} relayed: {out:?}"
        );
        assert!(
            out.iter().any(|o| status(&o.1) == 403),
            "forged route {i}: {out:?}"
        );
    }
    // the real Route of this dialog works
    h.send(peer(ALICE), &format!("BYE sip:bob-0x1@192.0.2.10:{BOB} SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:{ALICE};branch=z9hG4bKtokbye\n{good}Max-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a1\nTo: <sip:bob@example.com>;tag=b1\nCall-ID: call-tok1\nCSeq: 2 BYE\nContent-Length: 0\n\n"));
    assert!(h.take().iter().any(|o| o.0 == peer(BOB)));
}

/// With the same route key (the shell keeps it in the data directory), a dialog set up
/// before a restart still ends through the server; with another key it does not.
#[test]
fn dialog_tokens_outlive_a_restart_with_the_same_route_key() {
    let restart = |key: Option<[u8; 32]>, secret: u8| {
        let mut h = H::new(false);
        let mut cfg = h.ep.config().clone();
        cfg.route_key = key;
        h.ep = Endpoint::new(cfg, [secret; 32], h.now);
        h.ep.set_users(["alice", "bob"].iter().map(|n| user(n, 0, None)).collect());
        h.register("bob", BOB, 3600, 1);
        h
    };
    let mut before = restart(Some([5; 32]), 1);
    before.send(peer(ALICE), &invite("rs1", "bob"));
    let out = before.take();
    let route = route_of(&out.last().unwrap().1);
    let bye = format!("BYE sip:bob-0x1@192.0.2.10:{BOB} SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:{ALICE};branch=z9hG4bKrsbye\n{route}Max-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a1\nTo: <sip:bob@example.com>;tag=b1\nCall-ID: call-rs1\nCSeq: 2 BYE\n{PHONE}Content-Length: 0\n\n");
    let mut after = restart(Some([5; 32]), 2);
    after.send(peer(ALICE), &bye);
    assert!(
        after.take().iter().any(|o| o.0 == peer(BOB)),
        "same key: relayed"
    );
    let mut other = restart(None, 3);
    other.send(peer(ALICE), &bye);
    let out = other.take();
    assert!(
        out.iter().all(|o| o.0 != peer(BOB)),
        "another key: not relayed {out:?}"
    );
}

/// A transaction's timers are cancelled when it ends (its timer table goes with it):
/// an INVITE answered 486 and ACKed ends by Timer I after T4, while its Timer H (64*T1)
/// is still queued. A new INVITE with the same branch then makes a new server
/// transaction with the same key; the old Timer H, coming due at 32 s, must not end it:
/// the new 486 is still retransmitted (Timer G) until the new transaction's own H.
#[test]
fn a_cancelled_timer_does_not_fire_on_a_later_transaction_with_the_same_key() {
    let mut h = H::new(false);
    h.register("bob", BOB, 3600, 1);
    let ack = format!("ACK sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:{ALICE};branch=z9hG4bKsame;rport\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a1\nTo: <sip:bob@example.com>;tag=b1\nCall-ID: call-same\nCSeq: 1 ACK\nContent-Length: 0\n\n");
    let busy_round = |h: &mut H| {
        h.send(peer(ALICE), &invite("same", "bob"));
        let out = h.take();
        let (_, fwd, _) = out
            .iter()
            .find(|(to, _, _)| *to == peer(BOB))
            .expect("forwarded to bob")
            .clone();
        h.send_bytes(peer(BOB), &respond(&fwd, 486, "Busy Here", "b1"));
        let out = h.take();
        assert!(out
            .iter()
            .any(|(to, m, _)| *to == peer(ALICE) && status(m) == 486));
    };
    busy_round(&mut h);
    h.send(peer(ALICE), &ack);
    h.take();
    // Timer I (T4 = 5 s) ends the first transaction; its Timer H (32 s) stays queued
    h.advance(Duration::from_secs(6));
    h.take();
    busy_round(&mut h); // at 6 s: a new transaction with the same key
                        // no ACK this time: the 486 is retransmitted every T2 (4 s) until 6 + 32 s
    let mut late = 0;
    for _ in 0..60 {
        h.advance(Duration::from_millis(100));
        late += h
            .take()
            .iter()
            .filter(|(to, m, _)| *to == peer(ALICE) && status(m) == 486)
            .count();
    }
    // (the loop covered 6 s .. 12 s); now past the old Timer H at 32 s
    h.advance(Duration::from_secs(21));
    h.take();
    let mut after_old_h = 0;
    for _ in 0..50 {
        h.advance(Duration::from_millis(100));
        after_old_h += h
            .take()
            .iter()
            .filter(|(to, m, _)| *to == peer(ALICE) && status(m) == 486)
            .count();
    }
    assert!(late > 0, "the new 486 is retransmitted");
    assert!(
        after_old_h > 0,
        "the first transaction's Timer H did not end the second one (33-38 s)"
    );
}

/// A core that authenticates and reports observations (campaign detection on), with
/// the Unix time set.
fn observing() -> H {
    let now = Instant::now();
    let cfg = CoreConfig {
        domain: "example.com".into(),
        local: vec![(Transport::Udp, "10.0.0.1:5060".parse().unwrap())],
        nonce_ttl: Duration::from_secs(60),
        observe: true,
        ..CoreConfig::default()
    };
    let mut ep = Endpoint::new(cfg, [5; 32], now);
    ep.set_unix_time(now, 1_800_000_000);
    ep.set_users(["alice", "bob"].iter().map(|n| user(n, 0, None)).collect());
    H { ep, now }
}

fn observations(h: &mut H) -> Vec<palisade_detect::Observation> {
    let mut v = Vec::new();
    while let Some(e) = h.ep.poll_event() {
        if let Event::Observation(o) = e {
            v.push(o);
        }
    }
    v
}

/// An INVITE from alice that answers the proxy challenge (MD5).
fn authed_invite(h: &mut H, branch: &str, callee: &str) -> Vec<(Peer, Message<'static>, Vec<u8>)> {
    h.send(peer(ALICE), &invite(&format!("{branch}a"), callee));
    let ch = h.take().pop().unwrap().1;
    assert_eq!(status(&ch), 407);
    let nonce = nonce_of(&ch, "MD5");
    let uri = format!("sip:{callee}@example.com");
    let resp = digest(Algorithm::Md5, "alice", &nonce, "INVITE", &uri, "00000001");
    let auth = format!("Proxy-Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"cn\"\n");
    h.send(peer(ALICE), &invite_with(branch, callee, &auth, SDP));
    h.take()
}

#[test]
fn calls_and_registrations_are_observed_for_the_detectors() {
    use palisade_detect::Observation as O;
    let mut h = observing();
    let out = h.register("bob", BOB, 3600, 1);
    let nonce = nonce_of(&out[0].1, "MD5");
    let ok = auth_register(&mut h, "bob", Algorithm::Md5, &nonce, "bob", "00000001", 2);
    assert_eq!(status(&ok), 200);
    let obs = observations(&mut h);
    let [O::Registered(r)] = obs.as_slice() else {
        panic!("one registration observed: {obs:?}")
    };
    assert_eq!(r.account, "bob");
    assert_eq!(
        r.user_agent,
        PHONE.split("User-Agent: ").nth(1).unwrap().trim_end()
    );
    assert_ne!(r.fingerprint, 0);
    assert_eq!(r.at, 1_800_000_000_000);

    let out = authed_invite(&mut h, "ob1", "bob");
    let fwd = out
        .iter()
        .find(|o| o.0 == peer(BOB))
        .expect("forwarded")
        .1
        .clone();
    h.advance(Duration::from_millis(250));
    h.send_bytes(peer(BOB), &respond(&fwd, 180, "Ringing", "b1"));
    h.send_bytes(peer(BOB), &respond(&fwd, 180, "Ringing", "b1"));
    h.advance(Duration::from_millis(1000));
    h.send_bytes(peer(BOB), &respond(&fwd, 200, "OK", "b1"));
    h.take();
    let route = route_of(&fwd);
    h.advance(Duration::from_secs(30));
    h.send(
        peer(BOB),
        &format!("BYE sip:alice@192.0.2.10:{ALICE} SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:{BOB};branch=z9hG4bKobye\n{route}Max-Forwards: 70\nFrom: <sip:bob@example.com>;tag=b1\nTo: <sip:alice@example.com>;tag=a1\nCall-ID: call-ob1\nCSeq: 1 BYE\nContent-Length: 0\n\n"),
    );
    let obs = observations(&mut h);
    let [O::CallStart(c), O::CallStatus {
        status: 180,
        at: ring,
        ..
    }, O::CallStatus {
        status: 200,
        at: ans,
        ..
    }, O::CallEnd { call_id, at: end }] = obs.as_slice()
    else {
        panic!("start, one ringing, answer, end: {obs:?}")
    };
    assert_eq!(
        (c.caller.as_str(), c.callee.as_str(), c.call_id.as_str()),
        ("alice", "bob", "call-ob1")
    );
    assert!(!c.blocked);
    assert_ne!(c.sdp, 0);
    assert_eq!((ring - c.at, ans - c.at, end - c.at), (250, 1250, 31_250));
    assert_eq!(call_id, "call-ob1");

    // A restriction on the account: the next call is refused and recorded as blocked.
    h.ep.restrict(palisade_detect::Restriction {
        subject: palisade_detect::Subject::Account("alice".into()),
        until: 1_800_000_000_000 + 3_600_000,
        per_minute: None,
        finding: 7,
    });
    let out = authed_invite(&mut h, "ob2", "bob");
    assert!(
        out.iter().all(|o| o.0 == peer(ALICE)),
        "nothing reaches bob"
    );
    let last = out.last().unwrap();
    assert_eq!(status(&last.1), 403);
    let obs = observations(&mut h);
    assert!(
        matches!(obs.as_slice(), [O::CallStart(c)] if c.blocked),
        "{obs:?}"
    );
    // A rate limit lets a call through, then refuses with 503.
    h.ep.restrict(palisade_detect::Restriction {
        subject: palisade_detect::Subject::Account("alice".into()),
        until: 1_800_000_000_000 + 3_600_000,
        per_minute: Some(1),
        finding: 8,
    });
    let out = authed_invite(&mut h, "ob3", "bob");
    assert!(
        out.iter().any(|o| o.0 == peer(BOB)),
        "the first call goes through"
    );
    let out = authed_invite(&mut h, "ob4", "bob");
    assert_eq!(status(&out.last().unwrap().1), 503);
    // A network restriction refuses everything from it, before authentication.
    h.ep.restrict(palisade_detect::Restriction {
        subject: palisade_detect::Subject::Network(palisade_detect::Network::of(
            "192.0.2.99".parse().unwrap(),
        )),
        until: 1_800_000_000_000 + 3_600_000,
        per_minute: None,
        finding: 9,
    });
    let stranger = Peer {
        addr: SocketAddr::from(([192, 0, 2, 50], 5060)),
        ..peer(BOB)
    };
    h.send(
        stranger,
        &format!("REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bKnb1\nMax-Forwards: 70\nFrom: <sip:bob@example.com>;tag=n\nTo: <sip:bob@example.com>\nCall-ID: nb\nCSeq: 1 REGISTER\nContact: <sip:bob@192.0.2.50>\n{PHONE}Content-Length: 0\n\n"),
    );
    let out = h.take();
    assert_eq!((out[0].0, status(&out[0].1)), (stranger, 403));
    // an address of that network that authenticated recently is not refused (an office
    // beside a scanner)
    let out = h.register("bob", BOB, 3600, 3);
    assert_eq!(status(&out[0].1), 401);
    // and it ends by itself
    h.advance(Duration::from_secs(3700));
    h.take();
    let out = h.register("bob", BOB, 3600, 4);
    assert_eq!(status(&out[0].1), 401);
    assert_eq!(h.ep.restriction_count(), 0);
}

/// A MESSAGE from alice that answers the proxy challenge (MD5).
fn authed_message(h: &mut H, branch: &str, callee: &str) -> Vec<(Peer, Message<'static>, Vec<u8>)> {
    let text = |extra: &str, b: &str| {
        format!("MESSAGE sip:{callee}@example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:{ALICE};branch=z9hG4bK{b};rport\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a1\nTo: <sip:{callee}@example.com>\nCall-ID: msg-{branch}\nCSeq: 1 MESSAGE\n{PHONE}{extra}Content-Type: text/plain\nContent-Length: 2\n\nhi")
    };
    h.send(peer(ALICE), &text("", &format!("{branch}a")));
    let ch = h.take().pop().unwrap().1;
    assert_eq!(status(&ch), 407);
    let nonce = nonce_of(&ch, "MD5");
    let uri = format!("sip:{callee}@example.com");
    let resp = digest(Algorithm::Md5, "alice", &nonce, "MESSAGE", &uri, "00000001");
    let auth = format!("Proxy-Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"cn\"\n");
    h.send(peer(ALICE), &text(&auth, branch));
    h.take()
}

#[test]
fn texts_are_observed_like_calls() {
    use palisade_detect::Observation as O;
    let mut h = observing();
    let out = h.register("bob", BOB, 3600, 1);
    let nonce = nonce_of(&out[0].1, "MD5");
    auth_register(&mut h, "bob", Algorithm::Md5, &nonce, "bob", "00000001", 2);
    observations(&mut h);
    let out = authed_message(&mut h, "m1", "bob");
    assert!(out.iter().any(|o| o.0 == peer(BOB)), "sent on");
    let obs = observations(&mut h);
    let [O::CallStart(c)] = obs.as_slice() else {
        panic!("one text observed: {obs:?}")
    };
    assert!(c.message && !c.blocked);
    assert_eq!((c.caller.as_str(), c.callee.as_str()), ("alice", "bob"));
    // under a block: refused, and recorded as a blocked text
    h.ep.restrict(palisade_detect::Restriction {
        subject: palisade_detect::Subject::Account("alice".into()),
        until: 1_800_000_000_000 + 3_600_000,
        per_minute: None,
        finding: 3,
    });
    let out = authed_message(&mut h, "m2", "bob");
    assert!(
        out.iter().all(|o| o.0 == peer(ALICE)),
        "nothing reaches bob"
    );
    assert_eq!(status(&out.last().unwrap().1), 403);
    let obs = observations(&mut h);
    assert!(
        matches!(obs.as_slice(), [O::CallStart(c)] if c.blocked && c.message),
        "{obs:?}"
    );
}

#[test]
fn a_network_restriction_holds_back_unauthenticated_traffic_not_phones_that_prove_their_account() {
    let mut h = observing();
    let office = Peer {
        addr: SocketAddr::from(([203, 0, 113, 7], 5060)),
        ..peer(BOB)
    };
    let reg = |extra: &str, cseq: u32| {
        format!("REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP 203.0.113.7:5060;branch=z9hG4bKoff{cseq}\nMax-Forwards: 70\nFrom: <sip:bob@example.com>;tag=o\nTo: <sip:bob@example.com>\nCall-ID: office-bob\nCSeq: {cseq} REGISTER\nContact: <sip:bob@203.0.113.7:5060>\n{extra}{PHONE}Content-Length: 0\n\n")
    };
    let creds = |nonce: &str, password: &str| {
        let resp = digest(
            Algorithm::Md5,
            password,
            nonce,
            "REGISTER",
            "sip:example.com",
            "00000001",
        );
        format!("Authorization: Digest username=\"bob\", realm=\"example.com\", nonce=\"{nonce}\", uri=\"sip:example.com\", response=\"{resp}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"cn\"\n")
    };
    // the phone registers (it keeps the nonce, as phones do)
    h.send(office, &reg("", 1));
    let nonce = nonce_of(&h.take().pop().unwrap().1, "MD5");
    h.send(office, &reg(&creds(&nonce, "bob"), 2));
    assert_eq!(status(&h.take().pop().unwrap().1), 200);
    // its network is blocked (a scanner beside it), and long enough passes that its
    // address is no longer proven and its nonce is stale
    h.ep.restrict(palisade_detect::Restriction {
        subject: palisade_detect::Subject::Network(palisade_detect::Network::of(office.addr.ip())),
        until: 1_800_000_000_000 + 7_200_000,
        per_minute: None,
        finding: 4,
    });
    h.advance(Duration::from_secs(700));
    h.take();
    // unauthenticated: refused, no challenge
    h.send(office, &reg("", 3));
    assert_eq!(status(&h.take().pop().unwrap().1), 403);
    // a wrong password: refused, no challenge
    h.send(office, &reg(&creds(&nonce, "guess"), 4));
    assert_eq!(status(&h.take().pop().unwrap().1), 403);
    // the right password on the stale nonce: a stale challenge, then served
    h.send(office, &reg(&creds(&nonce, "bob"), 5));
    let ch = h.take().pop().unwrap().1;
    assert_eq!(status(&ch), 401);
    let fresh = nonce_of(&ch, "MD5");
    h.send(office, &reg(&creds(&fresh, "bob"), 6));
    assert_eq!(
        status(&h.take().pop().unwrap().1),
        200,
        "the phone keeps its service"
    );
    // credentials that are not checked (a foreign caller) do not open the network
    let other = Peer {
        addr: SocketAddr::from(([203, 0, 113, 9], 5060)),
        ..peer(BOB)
    };
    h.send(other, &format!("OPTIONS sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP 203.0.113.9:5060;branch=z9hG4bKfo1\nMax-Forwards: 70\nFrom: <sip:eve@elsewhere.example>;tag=e\nTo: <sip:bob@example.com>\nCall-ID: foreign\nCSeq: 1 OPTIONS\nProxy-Authorization: Digest username=\"eve\", realm=\"example.com\", nonce=\"x\", uri=\"sip:bob@example.com\", response=\"0\"\n{PHONE}Content-Length: 0\n\n"));
    let out = h.take();
    assert!(out.iter().all(|o| o.0 == other), "nothing is forwarded");
    assert_eq!(status(&out.last().unwrap().1), 403);
}

#[test]
fn probing_is_observed() {
    use palisade_detect::{Observation as O, ProbeKind};
    let mut h = observing();
    // a scanner's signature
    h.send(
        peer(ALICE),
        "OPTIONS sip:100@example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5061;branch=z9hG4bKsv1\nMax-Forwards: 70\nFrom: \"sipvicious\" <sip:100@1.1.1.1>;tag=x\nTo: <sip:100@example.com>\nCall-ID: sv1\nCSeq: 1 OPTIONS\nUser-Agent: friendly-scanner\nContent-Length: 0\n\n",
    );
    assert_eq!(status(&h.take()[0].1), 404);
    // a wrong password and an unknown user
    let out = h.register("bob", BOB, 3600, 1);
    let nonce = nonce_of(&out[0].1, "MD5");
    auth_register(
        &mut h,
        "bob",
        Algorithm::Md5,
        &nonce,
        "alice",
        "00000001",
        2,
    );
    let out = h.register("carol", BOB, 3600, 3);
    let nonce = nonce_of(&out[0].1, "MD5");
    auth_register(
        &mut h,
        "carol",
        Algorithm::Md5,
        &nonce,
        "carol",
        "00000001",
        4,
    );
    let kinds: Vec<(ProbeKind, String)> = observations(&mut h)
        .into_iter()
        .filter_map(|o| match o {
            O::Probe(p) => Some((p.kind, p.user)),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            (ProbeKind::Scanner, "100".to_string()),
            (ProbeKind::UnknownUser, "100".to_string()),
            (ProbeKind::AuthFailed, "bob".to_string()),
            (ProbeKind::UnknownUser, "carol".to_string()),
        ]
    );
}

#[test]
fn a_notification_is_a_message_to_every_device_and_reports_its_outcome() {
    let mut h = H::new(false);
    h.register("bob", BOB, 3600, 1);
    h.register("bob", BOB2, 3600, 2);
    while h.ep.poll_event().is_some() {}
    assert!(
        !h.ep.notify(h.now, "alice", "security", "hello"),
        "alice has no device"
    );
    assert!(h.ep.notify(h.now, "bob", "security", "Hello bob"));
    assert!(
        !h.ep.notify(h.now, "bob", "security", "again"),
        "one at a time per user"
    );
    let out = h.take();
    assert_eq!(out.len(), 2, "one MESSAGE per device");
    for (to, m, _) in &out {
        assert!([peer(BOB), peer(BOB2)].contains(to));
        assert_eq!(m.method().unwrap().as_str(), "MESSAGE");
        assert_eq!(&m.body[..], b"Hello bob");
        assert_eq!(
            m.from().unwrap().uri.to_string(),
            "sip:security@example.com"
        );
    }
    // one device answers 200, the other never answers (Timer F)
    h.send_bytes(out[0].0, &respond(&out[0].1, 200, "OK", "x"));
    assert!(h.ep.poll_event().is_none(), "waits for every device");
    h.advance(Duration::from_secs(40));
    let ev: Vec<Event> = std::iter::from_fn(|| h.ep.poll_event()).collect();
    assert!(
        ev.contains(&Event::Notified {
            user: "bob".into(),
            delivered: true
        }),
        "{ev:?}"
    );
    // nobody answers at all: not delivered
    assert!(h.ep.notify(h.now, "bob", "security", "again"));
    h.take();
    h.advance(Duration::from_secs(40));
    let ev: Vec<Event> = std::iter::from_fn(|| h.ep.poll_event()).collect();
    assert!(
        ev.contains(&Event::Notified {
            user: "bob".into(),
            delivered: false
        }),
        "{ev:?}"
    );
}

/// Two shards of one server (as `server.workers = 2` runs them): messages reach the
/// shard that owns their Call-ID, bindings saved on one are applied to the other, and
/// only the shard that saved a binding reports its expiry.
#[test]
fn shards_share_the_location_and_messages_reach_their_owner() {
    let now = Instant::now();
    let shard = |i: usize| {
        let cfg = CoreConfig {
            domain: "example.com".into(),
            local: vec![(Transport::Udp, "10.0.0.1:5060".parse().unwrap())],
            authenticate_register: false,
            authenticate_requests: false,
            shard: (i, 2),
            ..CoreConfig::default()
        };
        let mut ep = Endpoint::new(cfg, [9; 32], now);
        ep.set_users(["alice", "bob"].iter().map(|n| user(n, 0, None)).collect());
        ep
    };
    let mut eps = [shard(0), shard(1)];
    let shards = Shards::new(&[9; 32], 2);
    // a REGISTER for bob whose Call-ID belongs to shard `reg`, and a call from alice
    // whose Call-ID belongs to the other one
    let owned_by = |want: usize, prefix: &str| {
        (0..1000)
            .map(|i| format!("{prefix}-{i}"))
            .find(|c| shards.of_call_id(c.as_bytes()) == want)
            .unwrap()
    };
    let reg = 1;
    let reg_cid = owned_by(reg, "reg");
    let call_cid = owned_by(1 - reg, "call");
    let register = format!("REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:{BOB};branch=z9hG4bKr1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:bob@example.com>;tag=r\r\nTo: <sip:bob@example.com>\r\nCall-ID: {reg_cid}\r\nCSeq: 1 REGISTER\r\nContact: <sip:bob@192.0.2.10:{BOB}>\r\nExpires: 60\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(shards.of_message(register.as_bytes()), reg);
    eps[reg].handle_datagram(now, peer(BOB), register.as_bytes());
    let saved: Vec<Binding> = std::iter::from_fn(|| eps[reg].poll_event())
        .filter_map(|e| match e {
            Event::BindingSaved(b) => Some(b),
            _ => None,
        })
        .collect();
    assert_eq!(saved.len(), 1);
    let inv = invite_with("s1", "bob", "", SDP)
        .replace("call-s1", &call_cid)
        .replace('\n', "\r\n");
    assert_eq!(shards.of_message(inv.as_bytes()), 1 - reg);
    for b in saved {
        eps[1 - reg].apply_binding(b.clone());
        eps[1 - reg].apply_binding(b); // applying twice keeps one copy
    }
    assert_eq!(eps[1 - reg].bindings().count(), 1);
    eps[1 - reg].handle_datagram(now, peer(ALICE), inv.as_bytes());
    let out: Vec<Transmit> = std::iter::from_fn(|| eps[1 - reg].poll_transmit()).collect();
    assert!(
        out.iter()
            .any(|t| t.to == peer(BOB) && t.bytes.starts_with(b"INVITE ")),
        "the call is forwarded to bob's contact by the shard that owns its Call-ID"
    );
    // the replica expires silently; the owner reports the expiry once
    let later = now + Duration::from_secs(61);
    for ep in eps.iter_mut() {
        while ep.poll_event().is_some() {}
        ep.handle_timeout(later);
    }
    let removed = |ep: &mut Endpoint| {
        std::iter::from_fn(|| ep.poll_event())
            .filter(|e| matches!(e, Event::BindingRemoved { .. }))
            .count()
    };
    assert_eq!(removed(&mut eps[reg]), 1);
    assert_eq!(removed(&mut eps[1 - reg]), 0);
    assert_eq!(eps[1 - reg].bindings().count(), 0);
    // a binding removed on one shard is removed on the other
    eps[0].apply_binding(Binding {
        aor: "bob@example.com".into(),
        contact: "sip:bob@192.0.2.10:5062".into(),
        expires_at: later + Duration::from_secs(60),
        q: 1000,
        call_id: "x".into(),
        cseq: 1,
        path: vec![],
        source: peer(BOB),
        user_agent: String::new(),
    });
    eps[0].apply_binding_removed("bob@example.com", "sip:bob@192.0.2.10:5062");
    assert_eq!(eps[0].bindings().count(), 0);
    // a notification's Call-ID hashes to the shard that sent it, so its answers
    // come back to it
    for (i, ep) in eps.iter_mut().enumerate() {
        ep.restore_binding(Binding {
            aor: "bob@example.com".into(),
            contact: "sip:bob@192.0.2.10:5062".into(),
            expires_at: later + Duration::from_secs(600),
            q: 1000,
            call_id: "y".into(),
            cseq: 1,
            path: vec![],
            source: peer(BOB),
            user_agent: String::new(),
        });
        assert!(ep.notify(later, "bob", "security", "hi"));
        let t = ep.poll_transmit().unwrap();
        assert_eq!(shards.of_message(&t.bytes), i);
    }
}
