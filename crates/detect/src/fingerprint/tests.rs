//! Unit tests of the fingerprint, the SDP habits, the User-Agent family and the scanner
//! signatures.
use super::*;

fn msg(method: &str, branch: &str, tag: &str, cid: &str, extra: &str) -> Vec<u8> {
    format!(
        "{method} sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK{branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag={tag}\r\nTo: <sip:bob@example.com>\r\nCall-ID: {cid}\r\nCSeq: 1 {method}\r\nContact: <sip:alice@10.0.0.1>\r\n{extra}Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn shape_hash(v: &str) -> u64 {
    let mut h = Fnv::new();
    shape(&mut h, v.as_bytes());
    std::hash::Hasher::finish(&h)
}

/// A random token stays a random token of its length whatever digits it happens to
/// draw (belle-sip's 10-character tokens drew a run of 4 digits now and then, which
/// once gave a Linphone message another fingerprint); SIPp's counters around its
/// fixed word stay counters.
#[test]
fn random_tokens_with_digit_runs_keep_their_shape() {
    let random = shape_hash("hT5ApqRDkw");
    for t in [
        "gh1234klmn",
        "4711ghijkl",
        "ghijkl4711",
        "g12345678h",
        "Zq~9981-xY",
    ] {
        assert_eq!(shape_hash(t), random, "{t}");
    }
    let sipp = shape_hash("31216SIPpTag001");
    assert_eq!(shape_hash("4711SIPpTag0042"), sipp);
    assert_eq!(shape_hash("4711R1"), shape_hash("31216R2071"));
    assert_ne!(sipp, random);
    // counters without letters
    assert_eq!(shape_hash("1-4711"), shape_hash("22-31216"));
}

/// A sixteen-character hex token whose letters were not drawn (baresip's Call-ID
/// `0123456789012345`, once in about 1,900 calls) keeps the shape of a hex token: a
/// baresip REGISTER as captured in the interop test has one fingerprint whatever its
/// Call-ID and tag drew. Short digit runs stay counters.
#[test]
fn a_hex_token_that_drew_only_digits_is_still_a_hex_token() {
    assert_eq!(
        shape_hash("0123456789012345"),
        shape_hash("2cb8070bc57b87de")
    );
    assert_eq!(
        shape_hash("01234567890123456789"),
        shape_hash("2cb8070bc57b87de2cb8")
    );
    assert_eq!(shape_hash("48420"), shape_hash("7"));
    assert_eq!(shape_hash("123456789012345"), shape_hash("1"));
    let baresip = |cid: &str, tag: &str| {
        fingerprint(format!("REGISTER sip:localhost;transport=udp SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:26754;branch=z9hG4bK062d8a6e651fe591;rport\r\nContact: <sip:bob-0x55c852f43d70@127.0.0.1:26754>;expires=60\r\nMax-Forwards: 70\r\nRoute: <sip:127.0.0.1:26750;transport=udp;lr>\r\nTo: <sip:bob@localhost>\r\nFrom: <sip:bob@localhost>;tag={tag}\r\nCall-ID: {cid}\r\nCSeq: 48420 REGISTER\r\nUser-Agent: baresip v1.0.0 (x86_64/linux)\r\nAllow: INVITE,ACK,BYE,CANCEL,OPTIONS,NOTIFY,SUBSCRIBE,INFO,MESSAGE,REFER\r\nContent-Length: 0\r\n\r\n").as_bytes())
    };
    let usual = baresip("2cb8070bc57b87de", "a49db45fe5009f7e");
    // (the profile shipped in dist/profiles.toml for baresip 1.0.0)
    assert_eq!(format!("{usual:016x}"), "6ac722fe4cac942f");
    assert_eq!(baresip("2807000515787129", "a49db45fe5009f7e"), usual);
    assert_eq!(baresip("2cb8070bc57b87de", "4907345500990717"), usual);
}

#[test]
fn the_same_habits_give_the_same_fingerprint_whatever_the_values() {
    let a = fingerprint(&msg(
        "INVITE",
        "a1b2c3d4e5f60718",
        "9f8e7d6c",
        "ab12cd34ef56ab12@10.0.0.1",
        "",
    ));
    let b = fingerprint(&msg(
        "REGISTER",
        "0f1e2d3c4b5a6978",
        "1a2b3c4d",
        "99aa88bb77cc66dd@10.0.0.1",
        "Authorization: Digest username=\"alice\"\r\nExpires: 3600\r\n",
    ));
    assert_eq!(a, b, "values and method-specific headers do not count");
}

/// The base message of `different_habits_give_different_fingerprints`, edited.
fn edited(from: &str, to: &str) -> String {
    String::from_utf8(msg(
        "INVITE",
        "a1b2c3d4e5f60718",
        "9f8e7d6c",
        "ab12cd34ef56ab12@h",
        "",
    ))
    .unwrap()
    .replace(from, to)
}

#[test]
fn different_habits_give_different_fingerprints() {
    let base = fingerprint(&msg(
        "INVITE",
        "a1b2c3d4e5f60718",
        "9f8e7d6c",
        "ab12cd34ef56ab12@h",
        "",
    ));
    // another branch shape
    assert_ne!(
        base,
        fingerprint(&msg(
            "INVITE",
            "-1234-1-0",
            "9f8e7d6c",
            "ab12cd34ef56ab12@h",
            ""
        ))
    );
    // another tag length
    assert_ne!(
        base,
        fingerprint(&msg(
            "INVITE",
            "a1b2c3d4e5f60718",
            "9f8e7d6c11",
            "ab12cd34ef56ab12@h",
            ""
        ))
    );
    // compact form of one header
    let compact = edited("Call-ID:", "i:");
    assert_ne!(base, fingerprint(compact.as_bytes()));
    // case of one header name
    let case = edited("Call-ID:", "Call-Id:");
    assert_ne!(base, fingerprint(case.as_bytes()));
    // header order
    let reordered = edited(
        "Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=9f8e7d6c\r\n",
        "From: <sip:alice@example.com>;tag=9f8e7d6c\r\nMax-Forwards: 70\r\n",
    );
    assert_ne!(base, fingerprint(reordered.as_bytes()));
}

#[test]
fn random_tokens_count_by_length_whatever_their_alphabet() {
    // belle-sip draws from letters, digits, `-` and `~`
    let a = fingerprint(&msg("INVITE", ".NiknI8J7a", "r718HsXj8", "3fb1cR4cGu", ""));
    let b = fingerprint(&msg("INVITE", ".YKThOfJ-h", "c7yMzFE8t", "ncOBoh1kD~", ""));
    assert_eq!(a, b);
    let c = fingerprint(&msg("INVITE", ".YKThOfJ-hx", "c7yMzFE8t", "ncOBoh1kD~", ""));
    assert_ne!(a, c);
}

#[test]
fn counters_around_words_are_shapes() {
    // SIPp's tags: [pid]SIPpTag00[call_number]
    let a = fingerprint(&msg(
        "INVITE",
        "-4711-1-0",
        "4711SIPpTag001",
        "1-4711@h",
        "",
    ));
    let b = fingerprint(&msg(
        "INVITE",
        "-1234567-12-0",
        "1234567SIPpTag0012",
        "12-1234567@h",
        "",
    ));
    assert_eq!(a, b);
    // a process id under 1000 (a fresh machine, a container) changes nothing
    let small = fingerprint(&msg("INVITE", "-812-1-0", "812SIPpTag001", "1-812@h", ""));
    assert_eq!(a, small);
    // and its REGISTER scenario's tags, `[pid]R[n]`
    let reg = fingerprint(&msg("REGISTER", "-4711-1-0", "4711R1", "1-4711@h", ""));
    let reg_small = fingerprint(&msg("REGISTER", "-986-1-0", "986R1", "1-986@h", ""));
    assert_eq!(reg, reg_small);
    // random hex of one length, with or without letters in it, is one shape
    let c = fingerprint(&msg(
        "INVITE",
        "a1b2c3d4e5f60718",
        "9f8e7d6c",
        "ab12cd34ef56ab12@h",
        "",
    ));
    let d = fingerprint(&msg(
        "INVITE",
        "0123456789abcdef",
        "0a1b2c3d",
        "fedcba9876543210@h",
        "",
    ));
    assert_eq!(c, d);
}

#[test]
fn sequence_numbers_are_shapes() {
    let a = fingerprint(&msg("INVITE", "-1-4711-0", "1", "1-4711@10.0.0.1", ""));
    let b = fingerprint(&msg(
        "INVITE",
        "-982-4711-3",
        "982",
        "982-4711@10.0.0.1",
        "",
    ));
    assert_eq!(a, b);
}

#[test]
fn garbage_gives_a_value_not_a_panic() {
    for g in [
        &b""[..],
        b"\n",
        b"X\n:\n\n",
        b"INVITE\nVia:;;;branch=\nFrom:>;tag\n",
        &[0xff; 40],
    ] {
        let _ = fingerprint(g);
        let _ = sdp_habits(g, b"x");
    }
}

#[test]
fn families_and_scanners() {
    assert_eq!(ua_family("baresip v1.0.0 (x86_64/linux)"), "baresip");
    assert_eq!(ua_family("Linphone/5.1.64 (belle-sip/5.1.64)"), "linphone");
    assert_eq!(ua_family("  "), "");
    assert_eq!(
        scanner_signature("friendly-scanner"),
        Some("friendly-scanner")
    );
    assert_eq!(scanner_signature("SIPVicious/0.3.4"), Some("sipvicious"));
    assert_eq!(scanner_signature("baresip v1.0.0"), None);
    // the first signature of the list wins, wherever it stands
    assert_eq!(
        scanner_signature("sipcli and friendly-scanner"),
        Some("friendly-scanner")
    );
    assert_eq!(scanner_signature("x SMAP"), Some("smap"));
    assert_eq!(scanner_signature("sundayddr/pplsip"), Some("sundayddr"));
    assert_eq!(scanner_signature("sipsca"), None);
    // every signature, alone and at the end of a long text
    for sig in SCANNERS {
        assert_eq!(scanner_signature(sig), Some(sig));
        let long = format!("{}{}", "x".repeat(128 - sig.len()), sig.to_uppercase());
        assert_eq!(scanner_signature(&long), Some(sig));
        let cut = format!("{}{}", "x".repeat(129 - sig.len()), sig);
        assert_eq!(
            scanner_signature(&cut),
            None,
            "only the first 128 bytes count"
        );
    }
}

#[test]
fn sdp_habits_ignore_values_that_change() {
    let a = b"v=0\r\no=- 123456 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    let b = b"v=0\r\no=- 987654 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    let c = b"v=0\r\no=user1 53655765 2353687637 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    assert_eq!(sdp_habits(a, b"user1"), sdp_habits(b, b"user2"));
    assert_ne!(sdp_habits(a, b"user1"), sdp_habits(c, b"user2"));
    assert_eq!(sdp_habits(b"", b"user1"), 0);
}

#[test]
fn an_origin_user_that_is_the_callers_name_is_one_habit_for_every_account() {
    let offer = |user: &str| {
        format!("v=0\r\no={user} 1234 5678 IN IP4 10.0.0.1\r\ns=Talk\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
    };
    let alice = sdp_habits(offer("alice").as_bytes(), b"alice");
    assert_eq!(alice, sdp_habits(offer("carol").as_bytes(), b"carol"));
    // a fixed text, or another account's name, stays a text of its own
    assert_ne!(alice, sdp_habits(offer("alice").as_bytes(), b"carol"));
    assert_ne!(alice, sdp_habits(offer("-").as_bytes(), b"alice"));
    assert_ne!(
        sdp_habits(offer("alice").as_bytes(), b"carol"),
        sdp_habits(offer("dave").as_bytes(), b"carol")
    );
    // an empty From user never stands for an empty `o=` user
    assert_eq!(
        sdp_habits(offer("").as_bytes(), b""),
        sdp_habits(offer("").as_bytes(), b"x")
    );
}

#[test]
fn the_memo_says_what_the_search_says() {
    let mut m = super::ScannerMemo::default();
    let texts = [
        "sipp-bench",
        "sipp-bench",
        "friendly-scanner",
        "friendly-scanner",
        "abc",
        "friendly-scanner",
        "SIPVicious/0.3.4",
        "baresip v1.0.0",
        "baresip v1.0.0",
        "",
        "sundayddr/pplsip",
    ];
    for t in texts {
        assert_eq!(m.signature(t), scanner_signature(t), "{t:?}");
    }
    // longer than the memo keeps: searched each time, still the same answer, and the
    // memo keeps the last text it could hold
    let long = format!("{}friendly-scanner", "x".repeat(300));
    assert_eq!(m.signature(&long), None, "past the first 128 bytes");
    let long = format!("smap {}", "x".repeat(300));
    assert_eq!(m.signature(&long), Some("smap"));
    assert_eq!(m.signature("sundayddr/pplsip"), Some("sundayddr"));
}

#[test]
fn a_run_of_one_attribute_is_one_habit_however_long() {
    let offer = |candidates: usize, codecs: &[u8]| {
        let mut s = String::from("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP");
        for c in codecs {
            s.push_str(&format!(" {c}"));
        }
        s.push_str("\r\n");
        for c in codecs {
            s.push_str(&format!("a=rtpmap:{c} X/8000\r\n"));
        }
        s.push_str("a=rtcp-mux\r\n");
        for i in 0..candidates {
            s.push_str(&format!(
                "a=candidate:{i} 1 UDP 2130706431 10.0.0.{i} 4000 typ host\r\n"
            ));
        }
        s.push_str("a=sendrecv\r\n");
        s
    };
    let h = |s: String| sdp_habits(s.as_bytes(), b"alice");
    let one = h(offer(1, &[0]));
    assert_eq!(one, h(offer(5, &[0, 8, 9, 101])));
    assert_eq!(one, h(offer(2, &[8, 0])));
    // the order of the kinds still counts, and a run parted by another line is two
    let swapped = offer(1, &[0])
        .replace("a=rtcp-mux\r\n", "")
        .replace("a=sendrecv\r\n", "a=sendrecv\r\na=rtcp-mux\r\n");
    assert_ne!(one, h(swapped));
    let parted = offer(2, &[0]).replace("a=candidate:1", "a=ptime:20\r\na=candidate:1");
    assert_ne!(one, h(parted));
    // (no candidate at all is another habit: the stack does not do ICE)
    assert_ne!(one, h(offer(0, &[0])));
}

#[test]
fn the_family_key_is_the_family_hashed() {
    for ua in [
        "baresip v1.0.0 (x86_64/linux)",
        "Linphone/5.1.64 (belle-sip/5.1.64)",
        "  ",
        "",
        "sipp-bench",
        "SIPp-Bench",
        "Z 5.6.1 rv2.10.20.1",
        "Ünïcode-Phone/1",
        "(no family)",
        "abcdefghijklmnopqrstuvwxyz0123456789-too-long/1",
        "a.b_c-d",
    ] {
        let family = ua_family(ua);
        let mut h = Fnv::new();
        std::hash::Hasher::write(&mut h, family.as_bytes());
        let want = (!family.is_empty()).then_some(std::hash::Hasher::finish(&h));
        assert_eq!(super::family_key(ua), want, "{ua:?} ({family:?})");
    }
}

/// The reading that stops after the last core header gives the full reading's value
/// when no line is folded, and never looks at the lines after that header: a fold
/// there changes the full reading only (which is why the parser's word is asked first).
#[test]
fn an_unfolded_head_is_read_up_to_its_last_core_header() {
    let invite = |tail: &str| {
        format!(
            "INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK74bf9\r\nMax-Forwards: 70\r\n\
             From: <sip:a@h>;tag=9fxced76sl\r\nTo: <sip:b@h>\r\nCall-ID: 3848276298220188511@h\r\n\
             CSeq: 1 INVITE\r\nContact: <sip:a@h>\r\n{tail}Content-Length: 0\r\n\r\n"
        )
    };
    let plain = invite("Subject: a b\r\nProxy-Authorization: Digest username=\"a\"\r\n");
    let folded = invite("Subject: a\r\n b\r\nProxy-Authorization: Digest username=\"a\"\r\n");
    let full = fingerprint(plain.as_bytes());
    assert_eq!(fingerprint_unfolded(plain.as_bytes()), full);
    // (what follows the last core header is not part of a fingerprint without folding)
    assert_eq!(fingerprint(invite("").as_bytes()), full);
    assert_ne!(fingerprint(folded.as_bytes()), full, "a fold is a habit");
    assert_eq!(
        fingerprint_unfolded(folded.as_bytes()),
        full,
        "the early stop did not read the lines after Contact"
    );
    // a core header missing: every line is read
    let no_contact = plain.replace("Contact: <sip:a@h>\r\n", "");
    assert_eq!(
        fingerprint_unfolded(no_contact.as_bytes()),
        fingerprint(no_contact.as_bytes())
    );
}
