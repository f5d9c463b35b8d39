//! What the core reports to the detectors (calls, texts, registrations, probing), how it
//! holds back a restricted network, notifications, and shards sharing the location.

use super::*;

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
    let auth = format!("User-Agent: observe-test/1.0 (a phone)\nProxy-Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"cn\"\n");
    // (alice writes her own name as the offer's origin user, as Linphone does)
    h.send(
        peer(ALICE),
        &invite_with(branch, callee, &auth, &SDP.replace("o=-", "o=alice")),
    );
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
    // the User-Agent the caller sent, which the shield does not forward by default
    assert_eq!(c.user_agent, "observe-test/1.0 (a phone)");
    assert!(fwd
        .headers
        .iter()
        .all(|h| !matches!(h, Header::UserAgent(_))));
    // the habits of the offer as the caller wrote it, not of the canonical offer the
    // shield forwarded (whose origin user, session id and name are the shield's own)
    // (and compared with the From user: an origin user that is the caller's name is a
    // habit of its own, not the name)
    let sent = SDP.replace('\n', "\r\n").replace("o=-", "o=alice");
    assert_eq!(
        c.sdp,
        palisade_detect::sdp_habits(sent.as_bytes(), b"alice")
    );
    assert_ne!(c.sdp, palisade_detect::sdp_habits(sent.as_bytes(), b""));
    assert_ne!(c.sdp, palisade_detect::sdp_habits(&fwd.body, b"alice"));
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
    let auth = format!("User-Agent: observe-test/1.0 (a phone)\nProxy-Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"cn\"\n");
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

/// A restriction ends at the millisecond its `until` names: the shell gives the core the
/// wall clock in milliseconds, so a shard does not hold a block up to a second after the
/// detection thread has recorded its lifting.
#[test]
fn a_restriction_ends_at_its_millisecond() {
    let mut h = observing();
    // a base time 900 ms into a second
    let base = 1_800_000_000_900;
    h.ep.set_unix_time_ms(h.now, base);
    let from = Peer {
        addr: SocketAddr::from(([198, 51, 100, 4], 5060)),
        ..peer(BOB)
    };
    h.ep.restrict(palisade_detect::Restriction {
        subject: palisade_detect::Subject::Network(palisade_detect::Network::of(from.addr.ip())),
        until: base + 200,
        per_minute: None,
        finding: 9,
    });
    let options = |n: u32| {
        format!("OPTIONS sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP 198.51.100.4:5060;branch=z9hG4bKms{n}\nMax-Forwards: 70\nFrom: <sip:x@198.51.100.4>;tag=m{n}\nTo: <sip:bob@example.com>\nCall-ID: ms-{n}\nCSeq: 1 OPTIONS\n{PHONE}Content-Length: 0\n\n")
    };
    h.send(from, &options(1));
    assert_eq!(
        status(&h.take().pop().unwrap().1),
        403,
        "blocked before its end"
    );
    // 199 ms later: still blocked; at 200 ms: lifted (with a whole-second base, the core
    // would have counted from ...000 and blocked for 900 ms more)
    h.advance(Duration::from_millis(199));
    h.take();
    h.send(from, &options(2));
    assert_eq!(
        status(&h.take().pop().unwrap().1),
        403,
        "blocked 1 ms before its end"
    );
    h.advance(Duration::from_millis(1));
    h.take();
    h.send(from, &options(3));
    assert_ne!(status(&h.take().pop().unwrap().1), 403, "lifted at its end");
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
        // the owner's parsed contact, as the server hands it over; applying twice
        // keeps one copy
        let uri = eps[reg].contact_uri(&b.aor, &b.contact).unwrap();
        assert_eq!(
            uri,
            palisade_sip::parse_uri(&b.contact, &Default::default()).unwrap()
        );
        assert!(eps[reg]
            .contact_uri(&b.aor, "sip:other@192.0.2.99")
            .is_none());
        eps[1 - reg].apply_binding_parsed(b, uri);
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
