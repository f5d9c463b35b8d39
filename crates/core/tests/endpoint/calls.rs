//! Calls through the proxy: registration, INVITE and non-INVITE transactions and
//! their timers (A, B, E, F), CANCEL, forking, routing errors, loops, the registrar's rules.

use super::*;

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
    let ack = format!("ACK sip:bob@192.0.2.10:{BOB} SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:{ALICE};branch=z9hG4bKack1\n{route}Max-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a1\nTo: <sip:bob@example.com>;tag=b1\nCall-ID: call-c1\nCSeq: 1 ACK\nContent-Length: 0\n\n");
    h.send(peer(ALICE), &ack);
    let out = h.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, peer(BOB));
    assert_eq!(out[0].1.method().unwrap().as_str(), "ACK");
    assert_eq!(out[0].1.routes().count(), 0, "our Route entry is consumed");
    // Relayed statelessly: our Via's branch is derived from the request alone
    // (`z9hG4bKpal`, 8 hex digits of the loop hash, `.s`, the hex of the received
    // branch's hash), so a retransmission of the ACK leaves with the same one.
    let branch = |m: &palisade_sip::Message<'_>| {
        m.top_via()
            .and_then(|v| v.branch())
            .unwrap_or_default()
            .to_string()
    };
    let first = branch(&out[0].1);
    let (loop_hash, top) = first
        .strip_prefix("z9hG4bKpal")
        .and_then(|r| r.split_once(".s"))
        .expect("our stateless branch");
    assert_eq!(loop_hash.len(), 8, "{first}");
    assert!(
        (1..=16).contains(&top.len())
            && (loop_hash.bytes().chain(top.bytes()))
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
        "{first}"
    );
    h.send(peer(ALICE), &ack);
    let again = h.take();
    assert_eq!(again.len(), 1);
    assert_eq!(branch(&again[0].1), first);

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
        ("ACK", 2), // (and its retransmission)
        ("BYE", 1),
        ("CANCEL", 0),
    ] {
        assert_eq!(by_method[slot(m)], n, "{m}");
    }
    assert_eq!(by_method.iter().sum::<u64>(), 5);
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

#[test]
fn calls_reach_users_whose_names_are_escaped_or_long() {
    // The proxy looks the callee up by its address of record, written on the stack
    // when short (`Endpoint::with_aor`) and allocated when not: both must find the
    // binding the registrar saved under the decoded name.
    let mut h = H::new(false);
    let long = "x".repeat(140);
    let accounts = ["alice", "bob", "carol smith", long.as_str()];
    h.ep.set_users(accounts.iter().map(|n| user(n, 0, None)).collect());
    for (written, port) in [("carol%20smith", 5071u16), (long.as_str(), 5072)] {
        let out = h.register(written, port, 3600, 1);
        assert_eq!(status(&out[0].1), 200, "{written}");
        h.send(peer(ALICE), &invite(&format!("e{port}"), written));
        let out = h.take();
        assert_eq!(
            out.len(),
            2,
            "{written}: 100 Trying and the forwarded INVITE"
        );
        assert_eq!(out[1].0, peer(port), "{written}: forwarded to its binding");
        assert_eq!(out[1].1.method().unwrap().as_str(), "INVITE");
    }
    // an account without a binding, and a name that is no account
    for (callee, want) in [("alice", 480), ("nobody%20here", 404)] {
        h.send(peer(ALICE), &invite(&format!("n{want}"), callee));
        let out = h.take();
        assert_eq!(status(&out.last().unwrap().1), want, "{callee}");
    }
}
