//! Property tests: generated valid messages survive the canonical writer unchanged, the
//! canonical form is a fixed point, the stream framer agrees with the datagram parser, and
//! no input (random or a mutated valid message) makes the parser panic.
use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};

use palisade_sip::*;
use proptest::prelude::*;

fn s(x: String) -> Cow<'static, str> {
    Cow::Owned(x)
}

fn token() -> BoxedStrategy<String> {
    "[a-zA-Z0-9][a-zA-Z0-9.!%*_+`'~-]{0,10}".boxed()
}

fn host() -> BoxedStrategy<Host<'static>> {
    prop_oneof![
        "[a-z][a-z0-9]{0,5}(\\.[a-z][a-z0-9-]{0,4}[a-z0-9]){0,2}".prop_map(|d| Host::Domain(s(d))),
        any::<[u8; 4]>().prop_map(|o| Host::V4(Ipv4Addr::from(o))),
        any::<[u16; 8]>().prop_map(|o| Host::V6(Ipv6Addr::from(o))),
    ]
    .boxed()
}

fn xparams(max: usize) -> BoxedStrategy<Vec<Param<'static>>> {
    prop::collection::vec(
        ("x[a-z0-9]{0,5}", prop::option::of("[a-zA-Z0-9._~-]{1,8}"))
            .prop_map(|(n, v)| Param::new(s(n), v.map(s))),
        0..=max,
    )
    .boxed()
}

fn sip_uri(allow_headers: bool) -> BoxedStrategy<Uri<'static>> {
    (
        any::<bool>(),
        prop::option::of("[a-zA-Z0-9_.!~*'()&=+$,;?/-]{1,10}"),
        prop::option::of("[a-zA-Z0-9&=+$,]{0,6}"),
        host(),
        prop::option::of(any::<u16>()),
        xparams(3),
        prop::collection::vec(
            (
                "[a-zA-Z][a-zA-Z0-9]{0,5}",
                "[a-zA-Z0-9%:]{0,6}".prop_filter("valid escapes", |v| !v.contains('%')),
            ),
            0..=if allow_headers { 2 } else { 0 },
        ),
    )
        .prop_map(|(secure, user, password, host, port, params, headers)| {
            let password = if user.is_some() { password } else { None };
            Uri::Sip(SipUri {
                secure,
                user: user.map(s),
                password: password.map(s),
                host,
                port,
                params,
                headers: headers
                    .into_iter()
                    .map(|(n, v)| Param::new(s(n), Some(s(v))))
                    .collect(),
            })
        })
        .boxed()
}

fn any_uri(allow_headers: bool) -> BoxedStrategy<Uri<'static>> {
    prop_oneof![
        4 => sip_uri(allow_headers),
        1 => ("\\+?[0-9]{1,12}", xparams(2)).prop_map(|(n, p)| Uri::Tel(TelUri { number: s(n), params: p })),
        1 => ("[a-z][a-z0-9+.-]{0,6}", "[a-zA-Z0-9/:@&=+$,._~-]{1,12}")
            .prop_filter("not a typed scheme", |(sc, _)| !matches!(sc.as_str(), "sip" | "sips" | "tel"))
            .prop_map(|(sc, r)| Uri::Other { scheme: s(sc), rest: s(r) }),
    ]
    .boxed()
}

fn method() -> BoxedStrategy<Method<'static>> {
    prop_oneof![
        Just(Method::Invite),
        Just(Method::Ack),
        Just(Method::Bye),
        Just(Method::Cancel),
        Just(Method::Register),
        Just(Method::Options),
        Just(Method::Message),
        Just(Method::Update),
        "[A-Z][A-Z-]{2,8}".prop_map(|m| Method::from_token(Box::leak(m.into_boxed_str()))),
    ]
    .boxed()
}

fn display() -> BoxedStrategy<Option<Cow<'static, str>>> {
    prop::option::of("[a-zA-Z0-9 ,.:;<>@]{0,12}|[a-zA-Z]{1,4}\\\\\"[a-z]{0,3}")
        .prop_map(|d| d.map(s))
        .boxed()
}

fn name_addr(allow_headers: bool) -> BoxedStrategy<NameAddr<'static>> {
    (display(), any_uri(allow_headers), xparams(2))
        .prop_map(|(display, uri, params)| NameAddr {
            display,
            uri,
            params,
        })
        .boxed()
}

fn text() -> BoxedStrategy<String> {
    prop::collection::vec("[!#-\\[\\]-~]{1,6}", 1..4)
        .prop_map(|w| w.join(" "))
        .boxed()
}

fn via() -> BoxedStrategy<Via<'static>> {
    (
        prop::sample::select(vec!["UDP", "TCP", "TLS", "WS", "SCTP"]),
        host(),
        prop::option::of(any::<u16>()),
        token(),
        any::<bool>(),
        prop::option::of(any::<[u8; 4]>()),
        xparams(2),
    )
        .prop_map(|(t, host, port, br, rport, received, extra)| {
            let mut params = vec![Param::new("branch", Some(s(format!("z9hG4bK{br}"))))];
            if rport {
                params.push(Param::new("rport", None));
            }
            if let Some(r) = received {
                params.push(Param::new(
                    "received",
                    Some(s(Ipv4Addr::from(r).to_string())),
                ));
            }
            params.extend(extra);
            Via {
                transport: Cow::Borrowed(t),
                host,
                port,
                params,
            }
        })
        .boxed()
}

fn credentials() -> BoxedStrategy<Credentials<'static>> {
    (
        "[a-z0-9]{1,8}",
        "[a-z.]{1,10}",
        "[a-zA-Z0-9+/=]{8,20}",
        "[0-9a-f]{32}",
    )
        .prop_map(|(u, r, n, resp)| Credentials {
            scheme: Cow::Borrowed("Digest"),
            params: vec![
                Param::new("username", Some(s(format!("\"{u}\"")))),
                Param::new("realm", Some(s(format!("\"{r}\"")))),
                Param::new("nonce", Some(s(format!("\"{n}\"")))),
                Param::new("uri", Some(s(format!("\"sip:{r}\"")))),
                Param::new("response", Some(s(format!("\"{resp}\"")))),
                Param::new("algorithm", Some(Cow::Borrowed("MD5"))),
                Param::new("qop", Some(Cow::Borrowed("auth"))),
                Param::new("nc", Some(Cow::Borrowed("00000001"))),
            ],
        })
        .boxed()
}

fn extra_header() -> BoxedStrategy<Header<'static>> {
    prop_oneof![
        name_addr(false).prop_map(Header::Route),
        name_addr(false).prop_map(Header::RecordRoute),
        name_addr(false).prop_map(Header::Path),
        (
            name_addr(true),
            prop::option::of(0u16..=1000),
            prop::option::of(any::<u32>())
        )
            .prop_map(|(mut n, q, e)| {
                if let Some(q) = q {
                    n.params.push(Param::new(
                        "q",
                        Some(s(if q == 1000 {
                            "1".into()
                        } else {
                            format!("0.{q:03}")
                        })),
                    ));
                }
                if let Some(e) = e {
                    n.params.push(Param::new("expires", Some(s(e.to_string()))));
                }
                Header::Contact(Contact::Addr(n))
            }),
        prop::collection::vec(token(), 0..3)
            .prop_map(|v| Header::Supported(v.into_iter().map(s).collect())),
        prop::collection::vec(token(), 1..3)
            .prop_map(|v| Header::Require(v.into_iter().map(s).collect())),
        prop::collection::vec(method(), 0..4).prop_map(Header::Allow),
        credentials().prop_map(Header::Authorization),
        credentials().prop_map(Header::ProxyAuthorization),
        text().prop_map(|t| Header::UserAgent(s(t))),
        (100u16..=999, token(), "[a-zA-Z0-9 ]{0,10}").prop_map(|(c, a, t)| Header::Warning(
            Warning {
                code: c,
                agent: s(a),
                text: s(t)
            }
        )),
        ("X-[A-Za-z0-9-]{1,8}", text()).prop_map(|(n, v)| Header::Other {
            name: s(n),
            value: s(v)
        }),
        Just(Header::Date(Cow::Borrowed("Sat, 13 Nov 2010 23:29:00 GMT"))),
        Just(Header::Contact(Contact::Star)),
    ]
    .boxed()
}

prop_compose! {
    fn message()(
        request in any::<bool>(),
        method in method(),
        ruri in any_uri(false),
        code in 100u16..=699,
        reason in prop::option::of(text()),
        vias in prop::collection::vec(via(), 1..4),
        from in name_addr(false),
        from_tag in token(),
        to in name_addr(false),
        call_id in "[a-zA-Z0-9.!%*_+`'~()<>:/?{}-]{1,16}(@[a-z0-9.]{1,10})?",
        seq in 0u32..(1 << 31),
        cseq_method in method(),
        max_forwards in prop::option::of(any::<u8>()),
        content_type in prop::option::of(("[a-z]{1,8}", "[a-z0-9.+-]{1,10}")),
        expires in prop::option::of(any::<u32>()),
        extras in prop::collection::vec(extra_header(), 0..6),
        body in prop::collection::vec(any::<u8>(), 0..128),
    ) -> Message<'static> {
        let mut from = from;
        from.params.push(Param::new("tag", Some(s(from_tag))));
        let start = if request {
            StartLine::Request { method: method.clone(), uri: ruri }
        } else {
            StartLine::Response { code, reason: s(reason.unwrap_or_default()) }
        };
        let cseq_method = if request { method } else { cseq_method };
        let mut headers: Vec<Header<'static>> = vias.into_iter().map(Header::Via).collect();
        headers.push(Header::From(from));
        headers.push(Header::To(to));
        headers.push(Header::CallId(s(call_id)));
        headers.push(Header::CSeq(CSeq { seq, method: cseq_method }));
        if let Some(mf) = max_forwards { headers.push(Header::MaxForwards(mf)); }
        if let Some((t, st)) = content_type {
            headers.push(Header::ContentType(MediaType { mtype: s(t), subtype: s(st), params: vec![] }));
        }
        if let Some(e) = expires { headers.push(Header::Expires(e)); }
        let mut dated = false;
        for h in extras {
            if matches!(h, Header::Date(_)) {
                if dated { continue; }
                dated = true;
            }
            headers.push(h);
        }
        Message { start, headers, body: Cow::Owned(body), received: Default::default() }
    }
}

fn roomy() -> Limits {
    Limits::default()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn parse_of_write_is_identity(m in message()) {
        let w = m.to_bytes();
        let p = parse_datagram(&w, &roomy());
        prop_assert!(p.is_ok(), "canonical form refused: {:?}\n{}", p.as_ref().err(), String::from_utf8_lossy(&w));
        let p = p.unwrap();
        prop_assert_eq!(&p, &m);
        prop_assert_eq!(p.to_bytes(), w);
    }

    #[test]
    fn stream_framer_agrees_with_datagram_parser(a in message(), b in message(), split in 0usize..4096) {
        let mut wire = a.to_bytes();
        wire.extend_from_slice(b"\r\n\r\n");
        wire.extend_from_slice(&b.to_bytes());
        // Feed a prefix first: it must be Incomplete (or a whole message if long enough).
        let cut = split % wire.len();
        match frame_stream(&wire[..cut], &roomy()).expect("prefix of valid stream") {
            Frame::Incomplete => {}
            Frame::Message { message, .. } => prop_assert_eq!(&message, &a),
            Frame::KeepAlive { .. } => prop_assert!(false, "keep-alive at the start of a message"),
        }
        let Frame::Message { message, rest, consumed } = frame_stream(&wire, &roomy()).expect("first") else {
            return Err(TestCaseError::fail("first message not framed"));
        };
        prop_assert_eq!(&message, &a);
        prop_assert_eq!(consumed + rest.len(), wire.len());
        let Frame::KeepAlive { consumed: k } = frame_stream(rest, &roomy()).expect("ping") else {
            return Err(TestCaseError::fail("CRLFCRLF not seen as keep-alive"));
        };
        prop_assert_eq!(k, 4);
        let Frame::Message { message, rest, .. } = frame_stream(&rest[k..], &roomy()).expect("second") else {
            return Err(TestCaseError::fail("second message not framed"));
        };
        prop_assert_eq!(&message, &b);
        prop_assert!(rest.is_empty());
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_datagram(&data, &Limits::default());
        let _ = frame_stream(&data, &Limits::default());
    }

    #[test]
    fn mutated_messages_never_panic_and_accepted_ones_round_trip(
        m in message(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let mut w = m.to_bytes();
        for (i, b, op) in edits {
            if w.is_empty() { break; }
            let at = i.index(w.len());
            match op {
                0 => w[at] = b,
                1 => w.insert(at, b),
                _ => { w.remove(at); }
            }
        }
        if let Ok(p) = parse_datagram(&w, &Limits::default()) {
            let c = p.to_bytes();
            let big = Limits { max_message_size: 1 << 20, max_header_line: 1 << 20, ..Limits::default() };
            let q = parse_datagram(&c, &big);
            prop_assert!(q.is_ok(), "canonical of accepted mutation refused: {:?}", q.as_ref().err());
            let q = q.unwrap();
            prop_assert_eq!(&q, &p);
            prop_assert_eq!(q.to_bytes(), c);
        }
    }
}
