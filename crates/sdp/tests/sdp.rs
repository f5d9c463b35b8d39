//! Real offers pass with their meaning intact; hostile ones are refused with a reason;
//! the canonical form round-trips.
// Helpers outside `#[test]` functions assert by panicking too (clippy.toml exempts only
// test functions and `#[cfg(test)]` modules from the workspace's panic-free lints).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]
use palisade_sdp::*;

const SIPP: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 8 9 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:9 G722/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n";

const BARESIP: &str = "v=0\r\no=- 1893645374 2467842211 IN IP4 192.168.1.20\r\ns=-\r\nc=IN IP4 192.168.1.20\r\nt=0 0\r\nm=audio 10000 RTP/AVP 96 0 8 101\r\nb=AS:128\r\na=rtpmap:96 opus/48000/2\r\na=fmtp:96 stereo=1;sprop-stereo=1\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=rtcp-mux\r\na=sendrecv\r\na=label:1\r\na=ssrc:3218452214 cname:5a3b2c1d-0000-1111\r\na=rtcp-rsize\r\n";

const CHROME: &str = "v=0\r\n\
o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0 1\r\n\
a=extmap-allow-mixed\r\n\
a=msid-semantic: WMS stream1\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n\
c=IN IP4 0.0.0.0\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=candidate:1467250027 1 udp 2122260223 192.168.0.196 46243 typ host generation 0 network-id 1\r\n\
a=candidate:842163049 1 udp 1686052607 203.0.113.7 46243 typ srflx raddr 192.168.0.196 rport 46243 generation 0 network-id 1\r\n\
a=candidate:3e1f2a4b 1 udp 2113937151 8b0d1c3e-6a7f-4b2c-9d1e-0f2a3b4c5d6e.local 54400 typ host generation 0\r\n\
a=end-of-candidates\r\n\
a=ice-ufrag:EsAw\r\n\
a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y\r\n\
a=ice-options:trickle\r\n\
a=fingerprint:sha-256 D2:FA:0E:C3:22:59:5E:14:95:69:92:3D:13:B4:84:24:2C:C2:A2:C0:3E:FD:34:8E:5E:EA:6F:AF:52:CE:E6:0F\r\n\
a=setup:actpass\r\n\
a=mid:0\r\n\
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
a=extmap:3/sendrecv http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
a=sendrecv\r\n\
a=msid:stream1 track1\r\n\
a=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=rtcp-fb:111 transport-cc\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=rtpmap:63 red/48000/2\r\n\
a=fmtp:63 111/111\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:13 CN/8000\r\n\
a=rtpmap:110 telephone-event/48000\r\n\
a=rtpmap:126 telephone-event/8000\r\n\
a=ssrc:1001 cname:abcd1234\r\n\
a=ssrc:1001 msid:stream1 track1\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97 102\r\n\
c=IN IP4 0.0.0.0\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:EsAw\r\n\
a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y\r\n\
a=ice-options:trickle\r\n\
a=fingerprint:sha-256 D2:FA:0E:C3:22:59:5E:14:95:69:92:3D:13:B4:84:24:2C:C2:A2:C0:3E:FD:34:8E:5E:EA:6F:AF:52:CE:E6:0F\r\n\
a=setup:actpass\r\n\
a=mid:1\r\n\
a=sendrecv\r\n\
a=rtcp-mux\r\n\
a=rtcp-rsize\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtcp-fb:96 goog-remb\r\n\
a=rtcp-fb:96 nack\r\n\
a=rtcp-fb:96 nack pli\r\n\
a=rtcp-fb:96 ccm fir\r\n\
a=fmtp:96 max-fr=30;max-fs=3600\r\n\
a=rtpmap:97 rtx/90000\r\n\
a=fmtp:97 apt=96\r\n\
a=rtpmap:102 H264/90000\r\n\
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n\
a=ssrc-group:FID 2001 2002\r\n\
a=ssrc:2001 cname:abcd1234\r\n\
a=ssrc:2002 cname:abcd1234\r\n";

const SRTP: &str = "v=0\r\no=- 1 1 IN IP6 2001:db8::1\r\ns= \r\nc=IN IP6 2001:db8::1\r\nt=0 0\r\nm=audio 49170 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32\r\na=rtpmap:0 PCMU/8000\r\na=maxptime:40\r\n";

#[test]
fn real_offers_parse_and_round_trip() {
    for (name, sdp) in [
        ("sipp", SIPP),
        ("baresip", BARESIP),
        ("chrome", CHROME),
        ("srtp", SRTP),
    ] {
        let s = parse(sdp.as_bytes(), &Limits::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let c = s.to_string_canonical();
        let again = parse(c.as_bytes(), &Limits::default())
            .unwrap_or_else(|e| panic!("{name} canonical: {e}\n{c}"));
        assert_eq!(s, again, "{name}");
        assert_eq!(c, again.to_string_canonical(), "{name}");
    }
    // Meaning is kept: codecs, ICE and DTLS data of the browser offer.
    let s = parse(CHROME.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(s.media.len(), 2);
    let audio = &s.media[0];
    assert!(audio.attributes.iter().any(|a| matches!(a, Attribute::Rtpmap { pt: 111, encoding, clock: 48000, channels: Some(2) } if encoding == "opus")));
    assert_eq!(
        audio
            .attributes
            .iter()
            .filter(|a| matches!(a, Attribute::Candidate(_)))
            .count(),
        3
    );
    assert!(audio
        .attributes
        .iter()
        .any(|a| matches!(a, Attribute::Fingerprint { hash, .. } if hash == "sha-256")));
    assert!(audio
        .attributes
        .iter()
        .any(|a| matches!(a, Attribute::IcePwd(p) if p == "bP+XJMM09aR8AiX1jdukzR6Y")));
    let c = s.to_string_canonical();
    assert!(c.contains("a=candidate:842163049 1 udp 1686052607 203.0.113.7 46243 typ srflx raddr 192.168.0.196 rport 46243 generation 0 network-id 1\r\n"));
    // The SIPp offer's canonical form is byte-identical to what SIPp sends.
    assert_eq!(
        parse(SIPP.as_bytes(), &Limits::default())
            .unwrap()
            .to_string_canonical(),
        SIPP
    );
}

#[test]
fn lf_line_endings_are_accepted_and_written_as_crlf() {
    let lf = SIPP.replace("\r\n", "\n");
    let s = parse(lf.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(s.to_string_canonical(), SIPP);
}

fn refuse(sdp: &str, why: &str) {
    match parse(sdp.as_bytes(), &Limits::default()) {
        Ok(_) => panic!("accepted hostile SDP ({why}):\n{sdp}"),
        Err(e) => assert!(e.reason.contains(why), "expected {why:?}, got {e}"),
    }
}

fn with(extra: &str) -> String {
    SIPP.replace("a=sendrecv\r\n", &format!("a=sendrecv\r\n{extra}"))
}

#[test]
fn hostile_offers_are_refused_with_a_reason() {
    refuse(
        &SIPP.replace("t=0 0\r\n", "t=0 0\r\nx=hidden payload\r\n"),
        "unknown type letter",
    );
    refuse(
        &with("a=rtpmap:101 telephone-event/8000\u{0}evil\r\n"),
        "NUL byte",
    );
    refuse(&with("a=label:\u{7}bell\r\n"), "control character");
    refuse(
        &SIPP.replace("a=ptime:20", "a=ptime:99999999999999999999999"),
        "ptime",
    );
    refuse(&SIPP.replace("m=audio 6000", "m=audio 70000"), "bad port");
    refuse(
        &SIPP.replace("a=fmtp:101 0-16", "a=fmtp:101 0-16;<script>"),
        "fmtp",
    );
    // Which parameters a codec defines is the shield's vocabulary (palisade-shield
    // `vocab`), not the grammar: `a=fmtp:101 x=1` parses, and the shield drops it.
    assert!(parse(
        SIPP.replace("a=fmtp:101 0-16", "a=fmtp:101 x=1").as_bytes(),
        &Limits::default()
    )
    .is_ok());
    refuse(
        &SIPP.replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:200 PCMU/8000"),
        "0-127",
    );
    refuse(
        &with("a=candidate:1 1 udp 1 evil..host 1 typ host\r\n"),
        "candidate",
    );
    refuse(&with("a=fingerprint:sha-256 AA:BB\r\n"), "fingerprint");
    refuse(&with("a=setup:whatever\r\n"), "setup");
    refuse(
        &with("a=crypto:1 AES_CM_128_HMAC_SHA1_80 notinline\r\n"),
        "crypto",
    );
    refuse(
        &with(&format!("a=label:{}\r\n", "A".repeat(2000))),
        "sdp.max_line_length",
    );
    refuse(&SIPP.replace("v=0", "v=1"), "v= must be 0");
    refuse(&SIPP.replace("s=-\r\n", ""), "o= and s= must come first");
    refuse(
        &SIPP.replace("o=user1 53655765", "o=user1 99999999999999999999999"),
        "sess-id",
    );
    refuse(
        &SIPP.replace("c=IN IP4 127.0.0.1", "c=IN IP4 127.0.0.1/5"),
        "multicast",
    );
    let many: String = (0..20)
        .map(|i| format!("m=audio {} RTP/AVP 0\r\n", 7000 + i))
        .collect();
    refuse(&format!("{SIPP}{many}"), "sdp.max_media");
    let fmts: String = (0..100).map(|i| format!(" {i}")).collect();
    refuse(
        &SIPP.replace("RTP/AVP 0 8 9 101", &format!("RTP/AVP{fmts}")),
        "sdp.max_formats",
    );
    refuse("v=0\r\nsome binary \u{1}\u{2}", "");
    assert!(parse(&[0xff, 0xfe, b'v'], &Limits::default())
        .unwrap_err()
        .reason
        .contains("UTF-8"));
    let big = Limits {
        max_body_size: 10,
        ..Limits::default()
    };
    assert!(parse(SIPP.as_bytes(), &big)
        .unwrap_err()
        .reason
        .contains("sdp.max_body_size"));
}

#[test]
fn unknown_attributes_are_kept_for_policy() {
    let text = with("a=x-hidden:c2hlbGxjb2Rl\r\n");
    let s = parse(text.as_bytes(), &Limits::default()).unwrap();
    assert!(s.media[0].attributes.iter().any(|a| matches!(a, Attribute::Other { name, value: Some(v) } if name == "x-hidden" && v == "c2hlbGxjb2Rl")));
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn tok() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9][a-zA-Z0-9._-]{0,8}"
    }

    fn attr() -> BoxedStrategy<Attribute<'static>> {
        prop_oneof![
            (
                0u8..=127,
                "[A-Za-z0-9-]{1,10}",
                1u32..200000,
                prop::option::of(1u8..8)
            )
                .prop_map(|(pt, encoding, clock, channels)| Attribute::Rtpmap {
                    pt,
                    encoding: encoding.into(),
                    clock,
                    channels
                }),
            "[0-9]{1,3}".prop_map(|x| Attribute::Ptime(x.into())),
            prop::sample::select(vec![
                Direction::SendRecv,
                Direction::SendOnly,
                Direction::RecvOnly,
                Direction::Inactive
            ])
            .prop_map(Attribute::Direction),
            Just(Attribute::RtcpMux),
            "[a-zA-Z0-9+/]{4,16}".prop_map(|x| Attribute::IceUfrag(x.into())),
            "[a-zA-Z0-9+/]{22,30}".prop_map(|x| Attribute::IcePwd(x.into())),
            tok().prop_map(|x| Attribute::Mid(x.into())),
            (any::<u32>(), tok(), prop::option::of("[a-zA-Z0-9:-]{1,12}")).prop_map(
                |(id, name, value)| Attribute::Ssrc {
                    id,
                    name: name.into(),
                    value: value.map(Into::into)
                }
            ),
            (
                "[a-zA-Z0-9+/]{1,12}",
                1u16..=256,
                prop::sample::select(vec!["udp", "tcp"]),
                any::<u32>(),
                any::<[u8; 4]>(),
                any::<u16>(),
                prop::sample::select(vec!["host", "srflx", "relay"])
            )
                .prop_map(|(f, c, t, p, a, port, typ)| Attribute::Candidate(Box::new(
                    Candidate {
                        foundation: f.into(),
                        component: c,
                        transport: t.into(),
                        priority: p,
                        address: std::net::Ipv4Addr::from(a).to_string().into(),
                        port,
                        typ: typ.into(),
                        raddr: None,
                        rport: None,
                        extensions: vec![("generation".into(), "0".into())]
                    }
                ))),
            (
                "x-[a-z]{1,8}",
                prop::option::of("[!-~]{1,10}( [!-~]{1,10}){0,2}")
            )
                .prop_map(|(name, value)| Attribute::Other {
                    name: name.into(),
                    value: value.map(Into::into)
                }),
        ]
        .boxed()
    }

    prop_compose! {
        fn session()(
            user in tok(), id in any::<u64>(), ver in any::<u64>(), a in any::<[u8; 4]>(),
            name in "[!-~]([ !-~]{0,10}[!-~])?",
            sattrs in prop::collection::vec(attr(), 0..4),
            media in prop::collection::vec((prop::sample::select(vec!["audio", "video"]), any::<u16>(), prop::collection::vec("[0-9]{1,3}", 1..5), prop::collection::vec(attr(), 0..8)), 0..3),
        ) -> Session<'static> {
            let addr = std::net::Ipv4Addr::from(a).to_string();
            Session {
                origin: Origin { username: user.into(), session_id: id, session_version: ver, nettype: "IN".into(), addrtype: "IP4".into(), address: addr.clone().into() },
                name: name.into(),
                info: None, uri: None, emails: vec![], phones: vec![],
                connection: Some(Connection { nettype: "IN".into(), addrtype: "IP4".into(), address: if a[0] >= 224 && a[0] < 240 { "192.0.2.1".into() } else { addr.into() }, ttl: None, count: None }),
                bandwidths: vec![], times: vec![Timing { start: 0, stop: 0, repeats: vec![] }], zone: None, key: None,
                attributes: sattrs,
                media: media.into_iter().map(|(m, port, formats, attributes)| Media { media: m.into(), port, port_count: None, proto: "RTP/AVP".into(), formats: formats.into_iter().map(Into::into).collect(), info: None, connections: vec![], bandwidths: vec![], key: None, attributes }).collect(),
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]
        #[test]
        fn round_trip_and_idempotent(s in session()) {
            let c = s.to_string_canonical();
            let p = parse(c.as_bytes(), &Limits::default());
            prop_assert!(p.is_ok(), "{:?}\n{}", p.as_ref().err(), c);
            let p = p.unwrap();
            prop_assert_eq!(&p, &s);
            prop_assert_eq!(p.to_string_canonical(), c);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..1024)) {
            let _ = parse(&b, &Limits::default());
        }
    }
}

#[test]
fn optional_text_lines_in_first_position_are_accepted() {
    // Found by the shield's tests: the first i= after s= (and after m=) was refused as a
    // repeat.
    let sdp = SIPP
        .replace(
            "s=-\r\n",
            "s=-\r\ni=info\r\nu=http://example.com/\r\ne=a@example.com\r\np=+1 555 0100\r\n",
        )
        .replace(
            "m=audio 6000 RTP/AVP 0 8 9 101\r\n",
            "m=audio 6000 RTP/AVP 0 8 9 101\r\ni=voice\r\n",
        );
    let s = parse(sdp.as_bytes(), &Limits::default()).expect("valid");
    assert_eq!(s.info.as_deref(), Some("info"));
    assert_eq!(s.media[0].info.as_deref(), Some("voice"));
    refuse(
        &SIPP.replace("s=-\r\n", "s=-\r\ni=a\r\ni=b\r\n"),
        "only once",
    );
}

#[test]
fn an_impossible_dotted_quad_is_not_a_host_name() {
    // RFC 1123 2.1 / RFC 3696 2: an all-numeric top label is not a host name, and
    // 999 is no IPv4 octet.
    for bad in ["999.1.1.1", "1.2.3.256", "10.0.0.1.2", "host.123"] {
        refuse(
            &SIPP.replace("c=IN IP4 127.0.0.1", &format!("c=IN IP4 {bad}")),
            "c=: bad address",
        );
        refuse(
            &SIPP.replace("IN IP4 127.0.0.1\r\ns=", &format!("IN IP4 {bad}\r\ns=")),
            "o=",
        );
        refuse(
            &with(&format!(
                "a=candidate:1 1 UDP 2130706431 {bad} 6000 typ host\r\n"
            )),
            "candidate",
        );
    }
    for good in [
        "pbx.example.com",
        "a1b2c3d4-0000-1111.local",
        "192.0.2.1",
        "::1",
    ] {
        let addrtype = if good.contains(':') { "IP6" } else { "IP4" };
        let sdp = SIPP.replace("c=IN IP4 127.0.0.1", &format!("c=IN {addrtype} {good}"));
        parse(sdp.as_bytes(), &Limits::default()).unwrap();
    }
}
