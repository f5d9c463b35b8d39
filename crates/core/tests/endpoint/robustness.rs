//! What a hostile or confused peer cannot do: panics, amplification, unbounded tables,
//! stray responses, forged routes and dialogs; and what survives a restart.

use super::*;

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
    let bye_ok = out
        .iter()
        .find(|o| o.0 == peer(ALICE) && status(&o.1) == 200)
        .expect("the BYE's 200 relayed to alice");
    assert_ne!(
        h.ep.transaction_count(),
        (0, 0),
        "the transactions wait for their timers"
    );
    // Answered, they keep only what a retransmission needs (the BYE's 200 for Timer J),
    // not the requests forwarded (the INVITE with its SDP, the BYE).
    assert!(
        h.ep.server_transaction_bytes() <= bye_ok.2.len(),
        "{} bytes held, the BYE's 200 is {}",
        h.ep.server_transaction_bytes(),
        bye_ok.2.len()
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

/// Past `max_transactions` server transactions a new request is refused statelessly
/// with 503 and `Retry-After` (RFC 3261 21.5.4) and counted; a retransmission of a
/// request that has its transaction is still answered from it, and once the
/// transactions' timers end new requests are taken again.
#[test]
fn past_max_transactions_a_new_request_gets_503_with_retry_after() {
    let mut h = H::new(false);
    h.ep = Endpoint::new(
        CoreConfig {
            max_transactions: 2,
            ..h.ep.config().clone()
        },
        [9; 32],
        h.now,
    );
    h.ep.set_users(["alice", "bob"].iter().map(|n| user(n, 0, None)).collect());
    h.register("bob", BOB, 3600, 1);
    for b in ["cap1", "cap2"] {
        h.send(peer(ALICE), &invite(b, "bob"));
        let out = h.take();
        assert!(
            out.iter()
                .any(|o| o.0 == peer(ALICE) && status(&o.1) == 100),
            "{b}: 100 Trying"
        );
    }
    assert_eq!(h.ep.transaction_count().0, 2);
    h.send(peer(ALICE), &invite("cap3", "bob"));
    let out = h.take();
    assert_eq!(
        out.len(),
        1,
        "only the refusal goes out, nothing toward bob"
    );
    let (to, refusal, _) = &out[0];
    assert_eq!((*to, status(refusal)), (peer(ALICE), 503));
    assert!(
        refusal
            .headers
            .iter()
            .any(|h| matches!(h, Header::Other { name, value } if name.eq_ignore_ascii_case("Retry-After") && value == "5")),
        "Retry-After: 5"
    );
    assert_eq!(h.ep.stats.overloaded, 1);
    assert_eq!(
        h.ep.transaction_count().0,
        2,
        "the refused request holds nothing"
    );
    // a retransmission of an admitted INVITE is absorbed by its transaction, not refused
    h.send(peer(ALICE), &invite("cap1", "bob"));
    assert!(h.take().iter().all(|o| status(&o.1) != 503));
    assert_eq!(h.ep.stats.overloaded, 1);
    // the admitted INVITEs time out (408, unacknowledged: Timer H), their transactions
    // end, and a new request is taken
    for _ in 0..60 {
        h.advance(Duration::from_secs(5));
        h.take();
    }
    assert_eq!(h.ep.transaction_count().0, 0);
    h.send(peer(ALICE), &invite("cap4", "bob"));
    assert!(h
        .take()
        .iter()
        .any(|o| o.0 == peer(ALICE) && status(&o.1) == 100));
}
