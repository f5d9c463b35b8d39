//! Digest authentication (MD5, SHA-256), answers to malformed requests, Timer C.

use super::*;

/// Two shards of one server: a REGISTER challenged by one shard and answered where the
/// other handles it (its datagrams moved to the other worker's socket) is accepted, also
/// after that shard accepted a first nonce of its own (the shards' nonce counters, which
/// key the used-nonce counts, must not meet).
#[test]
fn a_challenge_from_one_shard_is_answered_in_another() {
    let mut zero = H::shard(true, 0, 2);
    let mut one = H::shard(true, 1, 2);
    let ch = one.register("alice", ALICE, 3600, 1);
    assert_eq!(status(&ch[0].1), 401);
    let own = nonce_of(&ch[0].1, "MD5");
    let r = auth_register(
        &mut one,
        "alice",
        Algorithm::Md5,
        &own,
        "alice",
        "00000001",
        2,
    );
    assert_eq!(status(&r), 200);
    for (user, cseq) in [("bob", 4), ("alice", 6)] {
        let ch = zero.register(user, BOB, 3600, cseq - 1);
        assert_eq!(status(&ch[0].1), 401);
        let other = nonce_of(&ch[0].1, "MD5");
        assert_ne!(other, own);
        let r = auth_register(
            &mut one,
            user,
            Algorithm::Md5,
            &other,
            user,
            "00000001",
            cseq,
        );
        assert_eq!(
            status(&r),
            200,
            "{user}: a nonce of shard 0 answered in shard 1"
        );
    }
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
