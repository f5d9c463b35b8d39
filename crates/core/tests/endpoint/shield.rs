//! The shield in the proxy: hidden content never reaches the callee, refused offers and
//! answers, protected users.

use super::*;

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
