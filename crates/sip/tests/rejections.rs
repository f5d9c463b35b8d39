//! Each kind of bad input is refused with its own reason, the right status, the header
//! concerned and a byte offset; and the typed accessors read what they should.
// Helpers outside `#[test]` functions assert by panicking too (clippy.toml exempts only
// test functions and `#[cfg(test)]` modules from the workspace's panic-free lints).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]
use palisade_sip::*;

const BASE: &[&str] = &[
    "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport",
    "Max-Forwards: 70",
    "To: Bob <sip:bob@example.com>",
    "From: \"Alice\" <sip:alice@example.com>;tag=1928301774",
    "Call-ID: a84b4c76e66710@pc33.example.com",
    "CSeq: 314159 INVITE",
    "Contact: <sip:alice@192.0.2.1:5060>;q=0.7;expires=3600",
];

fn build(start: &str, replace: &[(&str, Option<&str>)], extra: &[&str], body: &str) -> Vec<u8> {
    let mut s = format!("{start}\r\n");
    for line in BASE {
        let name = line.split(':').next().unwrap();
        match replace.iter().find(|(n, _)| *n == name) {
            Some((_, Some(r))) => s.push_str(&format!("{r}\r\n")),
            Some((_, None)) => {}
            None => s.push_str(&format!("{line}\r\n")),
        }
    }
    for e in extra {
        s.push_str(&format!("{e}\r\n"));
    }
    s.push_str("\r\n");
    s.push_str(body);
    s.into_bytes()
}

fn invite(replace: &[(&str, Option<&str>)], extra: &[&str]) -> Vec<u8> {
    build("INVITE sip:bob@example.com SIP/2.0", replace, extra, "")
}

fn err(b: &[u8]) -> ParseError {
    match parse_datagram(b, &Limits::default()) {
        Ok(_) => panic!("accepted:\n{}", String::from_utf8_lossy(b)),
        Err(e) => e,
    }
}

#[track_caller]
fn expect(b: &[u8], kind: ErrorKind, status: u16, header: Option<&str>) {
    let e = err(b);
    assert_eq!(e.kind, kind, "{e}");
    assert_eq!(e.status(), status, "{e}");
    assert_eq!(e.header.as_deref(), header, "{e}");
    assert!(
        e.offset <= b.len(),
        "offset {} beyond input {}",
        e.offset,
        b.len()
    );
}

#[test]
fn a_valid_invite_parses_with_typed_access() {
    let b = build(
        "INVITE sip:bob@example.com SIP/2.0",
        &[],
        &[
            "Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>",
            "Supported: replaces, timer",
            "Allow: INVITE, ACK, CANCEL, BYE",
            "User-Agent: Softphone/1.0 (beta)",
            "Content-Type: application/sdp",
            "Content-Length: 4",
        ],
        "v=0\r\n",
    );
    let m = parse_datagram(&b, &Limits::default()).unwrap();
    assert_eq!(m.method(), Some(&Method::Invite));
    let via = m.top_via().unwrap();
    assert_eq!(via.branch(), Some("z9hG4bK776asdhds"));
    assert_eq!(via.rport(), Some(None));
    assert_eq!(via.port, Some(5060));
    assert_eq!(m.from().unwrap().tag(), Some("1928301774"));
    assert_eq!(m.from().unwrap().display_name().as_deref(), Some("Alice"));
    assert_eq!(m.to().unwrap().display.as_deref(), Some("Bob"));
    assert_eq!(m.call_id(), Some("a84b4c76e66710@pc33.example.com"));
    assert_eq!(m.cseq().unwrap().seq, 314159);
    assert_eq!(m.max_forwards(), Some(70));
    let Contact::Addr(c) = m.contacts().next().unwrap() else {
        panic!()
    };
    assert_eq!(c.q_millis(), Some(700));
    assert_eq!(c.expires(), Some(3600));
    assert_eq!(m.routes().count(), 2);
    assert_eq!(m.content_type().unwrap().mtype, "application");
    assert_eq!(&m.body[..], b"v=0\r");
    assert!(m
        .headers
        .iter()
        .any(|h| matches!(h, Header::Allow(a) if a.len() == 4)));
}

#[test]
fn digest_credentials_are_typed() {
    let b = build(
        "REGISTER sip:example.com SIP/2.0",
        &[("CSeq", Some("CSeq: 2 REGISTER"))],
        &["Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"abc\", uri=\"sip:example.com\", response=\"0123456789abcdef0123456789abcdef\", algorithm=SHA-256, qop=auth, nc=00000001, cnonce=\"x\\\"y\""],
        "",
    );
    let m = parse_datagram(&b, &Limits::default()).unwrap();
    let Header::Authorization(c) = m
        .headers
        .iter()
        .find(|h| h.name() == "Authorization")
        .unwrap()
    else {
        panic!()
    };
    assert!(c.is_digest());
    assert_eq!(c.get("username").as_deref(), Some("alice"));
    assert_eq!(c.get("algorithm").as_deref(), Some("SHA-256"));
    assert_eq!(c.get("nc").as_deref(), Some("00000001"));
    assert_eq!(c.get("cnonce").as_deref(), Some("x\"y"));
}

#[test]
fn nul_and_control_bytes_are_refused_with_their_own_reasons() {
    let mut b = invite(&[], &["Subject: hello"]);
    let at = b.windows(5).position(|w| w == b"hello").unwrap();
    b[at] = 0;
    expect(&b, ErrorKind::NulByte, 400, None);
    b[at] = 0x07;
    expect(&b, ErrorKind::ControlChar(7), 400, None);
    b[at] = b'\n';
    expect(&b, ErrorKind::BareLineEnding, 400, None);
    b[at] = 0xff;
    expect(&b, ErrorKind::InvalidUtf8, 400, None);
    assert_eq!(err(&b).offset, at);
}

#[test]
fn control_characters_only_as_quoted_pairs() {
    // Inside a quoted string, escaped: legal (RFC 4475 intmeth).
    let ok = invite(
        &[("To", Some("To: \"a\\\u{7}b\" <sip:bob@example.com>"))],
        &[],
    );
    assert!(parse_datagram(&ok, &Limits::default()).is_ok());
    // Escaped but outside a quoted string: refused.
    let bad = invite(&[], &["X-Side: a\\\u{7}b"]);
    expect(&bad, ErrorKind::ControlChar(7), 400, Some("X-Side"));
}

#[test]
fn duplicated_single_value_headers_are_refused() {
    for (name, line) in [
        ("Content-Length", "Content-Length: 0"),
        ("Call-ID", "Call-ID: other@x"),
        ("CSeq", "CSeq: 1 INVITE"),
        ("Max-Forwards", "Max-Forwards: 69"),
        ("From", "From: <sip:eve@example.com>;tag=9"),
        ("To", "t: <sip:eve@example.com>"),
    ] {
        let mut extra = vec![line];
        if name == "Content-Length" {
            extra.push("l: 0");
        }
        expect(
            &invite(&[], &extra),
            ErrorKind::DuplicateHeader,
            400,
            Some(name),
        );
    }
}

#[test]
fn missing_mandatory_headers_are_named() {
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        expect(
            &invite(&[(name, None)], &[]),
            ErrorKind::MissingHeader,
            400,
            Some(name),
        );
    }
}

#[test]
fn cseq_method_must_match() {
    expect(
        &invite(&[("CSeq", Some("CSeq: 1 BYE"))], &[]),
        ErrorKind::CSeqMethodMismatch,
        400,
        Some("CSeq"),
    );
}

#[test]
fn scalar_overflows_are_refused() {
    let cases: &[(&str, &str, &str)] = &[
        ("CSeq", "CSeq: 2147483648 INVITE", "CSeq"),
        ("Max-Forwards", "Max-Forwards: 256", "Max-Forwards"),
        (
            "Via",
            "Via: SIP/2.0/UDP h.example.com:65536;branch=z9hG4bK1",
            "Via",
        ),
    ];
    for (n, line, h) in cases {
        let e = err(&invite(&[(n, Some(line))], &[]));
        assert!(
            matches!(e.kind, ErrorKind::ScalarOverflow(_)),
            "{line}: {e}"
        );
        assert_eq!(e.header.as_deref(), Some(*h));
        assert_eq!(e.status(), 400);
    }
    let e = err(&invite(&[], &["Expires: 4294967296"]));
    assert!(matches!(e.kind, ErrorKind::ScalarOverflow(_)), "{e}");
    let e = err(&invite(&[], &["Content-Length: 99999999999"]));
    assert!(matches!(e.kind, ErrorKind::ScalarOverflow(_)), "{e}");
    // URI ports: the largest, leading zeros, one above, far above, none
    let l = palisade_sip::Limits::default();
    let port = |u: &str| match palisade_sip::parse_uri(u, &l) {
        Ok(palisade_sip::Uri::Sip(s)) => Ok(s.port),
        Ok(_) => Ok(None),
        Err(e) => Err(e.kind),
    };
    assert_eq!(port("sip:a@h.example.com:65535"), Ok(Some(65535)));
    assert_eq!(port("sip:h.example.com:0005060;lr"), Ok(Some(5060)));
    for big in ["65536", "99999", "123456789012345678901234567890"] {
        let r = port(&format!("sip:a@h.example.com:{big}"));
        assert!(
            matches!(r, Err(ErrorKind::ScalarOverflow(_))),
            "{big}: {r:?}"
        );
    }
    assert!(matches!(
        port("sip:a@h.example.com:;lr"),
        Err(ErrorKind::BadUri(_))
    ));
}

#[test]
fn start_line_errors() {
    let b = build("INVITE sip:bob@example.com SIP/3.0", &[], &[], "");
    expect(&b, ErrorKind::VersionNotSupported, 505, None);
    let b = build("INV;TE sip:bob@example.com SIP/2.0", &[], &[], "");
    assert!(matches!(err(&b).kind, ErrorKind::BadMethod(_)));
    let b = build("SIP/2.0 2000 OK", &[], &[], "");
    let e = err(&b);
    assert_eq!(e.kind, ErrorKind::BadStatusCode);
    assert!(e.is_response);
    let b = build("SIP/2.0 099 Odd", &[], &[], "");
    assert_eq!(err(&b).kind, ErrorKind::BadStatusCode);
    let b = build("INVITE sip:bob@example.com?Subject=x SIP/2.0", &[], &[], "");
    assert!(matches!(err(&b).kind, ErrorKind::BadRequestUri(_)));
}

#[test]
fn limits_are_enforced_and_named() {
    let l = Limits {
        max_headers: 8,
        ..Limits::default()
    };
    let e = parse_datagram(&invite(&[], &["A: 1", "B: 2"]), &l).unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::Limit {
            key: "limits.max_headers",
            max: 8
        }
    );
    assert_eq!(e.status(), 400);

    let l = Limits {
        max_via: 2,
        ..Limits::default()
    };
    let e = parse_datagram(
        &invite(
            &[],
            &["Via: SIP/2.0/UDP a.example.com, SIP/2.0/UDP b.example.com"],
        ),
        &l,
    )
    .unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::Limit {
            key: "limits.max_via",
            max: 2
        }
    );
    assert_eq!(e.status(), 483);

    let l = Limits {
        max_uri_length: 20,
        ..Limits::default()
    };
    let b = build(
        "INVITE sip:bob-with-a-long-name@example.com SIP/2.0",
        &[],
        &[],
        "",
    );
    let e = parse_datagram(&b, &l).unwrap_err();
    assert_eq!(e.kind, ErrorKind::RequestUriTooLong { max: 20 });
    assert_eq!(e.status(), 414);

    let l = Limits {
        max_header_line: 40,
        ..Limits::default()
    };
    let e = parse_datagram(
        &invite(&[], &["X-Long: 0123456789012345678901234567890123456789"]),
        &l,
    )
    .unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::Limit {
            key: "limits.max_header_line",
            max: 40
        }
    );

    let l = Limits {
        max_params: 2,
        ..Limits::default()
    };
    let e = parse_datagram(
        &invite(&[("To", Some("To: <sip:bob@example.com>;a;b;c"))], &[]),
        &l,
    )
    .unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::Limit {
            key: "limits.max_params",
            max: 2
        }
    );

    let l = Limits {
        max_body_size: 3,
        ..Limits::default()
    };
    let b = build(
        "INVITE sip:bob@example.com SIP/2.0",
        &[],
        &["Content-Length: 4"],
        "v=0\r",
    );
    let e = parse_datagram(&b, &l).unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::Limit {
            key: "limits.max_body_size",
            max: 3
        }
    );
    assert_eq!(e.status(), 413);

    let l = Limits {
        max_message_size: 100,
        ..Limits::default()
    };
    let e = parse_datagram(&invite(&[], &[]), &l).unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::Limit {
            key: "limits.max_message_size",
            max: 100
        }
    );
    assert_eq!(e.status(), 413);

    let mut l = Limits::default();
    assert!(l.set("limits.max_headers", 5).is_ok());
    assert_eq!(l.max_headers, 5);
    assert!(l.set("max_bogus", 5).unwrap_err().contains("unknown limit"));
    assert!(l.set("limits.max_via", 0).is_err());
}

#[test]
fn body_shorter_than_content_length_is_refused() {
    let b = build(
        "INVITE sip:bob@example.com SIP/2.0",
        &[],
        &["Content-Length: 10"],
        "v=0\r\n",
    );
    assert_eq!(
        err(&b).kind,
        ErrorKind::BodyTruncated {
            declared: 10,
            available: 5
        }
    );
}

#[test]
fn folding_and_compact_forms() {
    let b = b"OPTIONS sip:bob@example.com SIP/2.0\r\nv: SIP/2.0/UDP\r\n  192.0.2.1;branch=z9hG4bK1\r\nf: <sip:a@example.com>;tag=1\r\nt: <sip:bob@example.com>\r\ni: 1@x\r\nCSeq: 1\r\n\tOPTIONS\r\nl: 0\r\n\r\n";
    let m = parse_datagram(b, &Limits::default()).unwrap();
    assert_eq!(
        m.top_via().unwrap().host,
        Host::V4("192.0.2.1".parse().unwrap())
    );
    assert_eq!(m.cseq().unwrap().method, Method::Options);
    let c = String::from_utf8(m.to_bytes()).unwrap();
    assert!(
        c.contains("\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"),
        "{c}"
    );
    assert!(c.contains("\r\nCall-ID: 1@x\r\n"), "{c}");
    assert!(c.ends_with("Content-Length: 0\r\n\r\n"), "{c}");
}

#[test]
fn uris_of_every_kind() {
    let to = |u: &str| invite(&[("To", Some(&format!("To: <{u}>")))], &[]);
    for ok in [
        "sips:alice:secret@[2001:db8::1]:5061;transport=tls?subject=hi&priority=urgent",
        "tel:+1-201-555-0123;phone-context=example.com",
        "urn:service:sos",
        "sip:%61lice@example.com",
    ] {
        assert!(parse_datagram(&to(ok), &Limits::default()).is_ok(), "{ok}");
    }
    for bad in [
        "sip:alice@exa mple.com",
        "sip:alice@-bad.com",
        "sip:al%zzice@example.com",
        "sip:@example.com",
        "sip:a@[::1",
        "tel:;x",
        "1sip:x",
    ] {
        let e = err(&to(bad));
        assert_eq!(e.header.as_deref(), Some("To"), "{bad}: {e}");
    }
}

#[test]
fn stream_framing_needs_content_length() {
    let b = invite(&[], &[]);
    let e = frame_stream(&b, &Limits::default()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::MissingContentLength);
    let b = build(
        "INVITE sip:bob@example.com SIP/2.0",
        &[],
        &["Content-Length: 5"],
        "v=0\r\n",
    );
    assert!(matches!(
        frame_stream(&b[..b.len() - 1], &Limits::default()).unwrap(),
        Frame::Incomplete
    ));
    assert!(matches!(
        frame_stream(&b, &Limits::default()).unwrap(),
        Frame::Message { .. }
    ));
    assert!(matches!(
        frame_stream(b"\r\n\r\n", &Limits::default()).unwrap(),
        Frame::KeepAlive { consumed: 4 }
    ));
    assert!(matches!(
        frame_stream(b"INVITE sip:", &Limits::default()).unwrap(),
        Frame::Incomplete
    ));
    let l = Limits {
        max_message_size: 64,
        ..Limits::default()
    };
    let e = frame_stream(&[b'A'; 100], &l).unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::Limit {
            key: "limits.max_message_size",
            max: 64
        }
    );
}

#[test]
fn into_owned_keeps_everything() {
    let b = invite(&[], &["Subject: owned"]);
    let m = parse_datagram(&b, &Limits::default()).unwrap();
    let o: Message<'static> = m.clone().into_owned();
    drop(b);
    assert_eq!(o.call_id(), Some("a84b4c76e66710@pc33.example.com"));
    assert_eq!(o.other("subject").next(), Some("owned"));
}

/// Regression: a Date value of the right byte length with a multi-byte character at one
/// of the fixed offsets used to panic (a byte-offset slice inside a character).
#[test]
fn date_with_a_multibyte_character_is_refused_not_a_panic() {
    for date in [
        "Moé, 1 Jan 2020 00:00:00 GMT",
        "Mon, 0é Jan 2020 00:00:00 GMT",
        "Mon, 01 Jé 2020 00:00:00 GMT",
        "Mon, 01 Jan 2020 00:00:0é GMT",
        "Mon, 01 Jan 2020 00:00:00 Gé",
    ] {
        let b = build(
            "OPTIONS sip:bob@example.com SIP/2.0",
            &[("CSeq", Some("CSeq: 1 OPTIONS"))],
            &[&format!("Date: {date}")],
            "",
        );
        let e = err(&b);
        assert_eq!(e.status(), 400, "{e}");
        assert_eq!(e.header.as_deref(), Some("Date"), "{e}");
    }
    let ok = build(
        "OPTIONS sip:bob@example.com SIP/2.0",
        &[("CSeq", Some("CSeq: 1 OPTIONS"))],
        &["Date: Sat, 13 Nov 2010 23:29:00 GMT"],
        "",
    );
    parse_datagram(&ok, &Limits::default()).unwrap();
}

#[test]
fn impossible_dotted_quads_are_not_hosts() {
    for bad in ["999.1.1.1", "1.2.3.256", "10.0.0.1.2", "host.123"] {
        let b = build(
            &format!("OPTIONS sip:bob@{bad} SIP/2.0"),
            &[("CSeq", Some("CSeq: 1 OPTIONS"))],
            &[],
            "",
        );
        assert_eq!(err(&b).status(), 400, "Request-URI host {bad}");
        let b = build(
            "OPTIONS sip:bob@example.com SIP/2.0",
            &[
                ("CSeq", Some("CSeq: 1 OPTIONS")),
                (
                    "Via",
                    Some(&format!("Via: SIP/2.0/UDP {bad}:5060;branch=z9hG4bK1")),
                ),
            ],
            &[],
            "",
        );
        assert_eq!(err(&b).status(), 400, "Via sent-by {bad}");
    }
}
