//! Tests of the HEP encoder and sender. Besides byte-exact checks against the HEP3
//! layout, two readers nobody here wrote decode what we send: sngrep (its HEP3 parser)
//! and tshark (the SIP inside, from what sngrep extracted).
use super::*;

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn at(secs: u64, nanos: u32) -> SystemTime {
    UNIX_EPOCH + Duration::new(secs, nanos)
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn packet<'a>(src: &str, dst: &str, payload: &'a [u8]) -> HepPacket<'a> {
    HepPacket {
        src: sa(src),
        dst: sa(dst),
        transport: HepTransport::Udp,
        time: at(1_700_000_000, 123_456_789),
        node_id: 2001,
        password: None,
        correlation_id: None,
        payload,
    }
}

/// A HEP3 packet taken apart by a reader written from the specification, independent
/// of `encode`: every chunk's length checked, the chunks exactly filling the packet.
#[derive(Debug, Default)]
struct Decoded {
    /// Chunk types in the order they came.
    types: Vec<u16>,
    family: u8,
    ip_proto: u8,
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    src_port: u16,
    dst_port: u16,
    secs: u32,
    usecs: u32,
    proto_type: u8,
    node_id: u32,
    auth_key: Option<Vec<u8>>,
    correlation_id: Option<Vec<u8>>,
    payload: Vec<u8>,
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes(b.try_into().unwrap())
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b.try_into().unwrap())
}

fn decode(b: &[u8]) -> Decoded {
    assert_eq!(&b[..4], b"HEP3", "magic");
    assert_eq!(be16(&b[4..6]) as usize, b.len(), "total length field");
    let mut d = Decoded::default();
    let mut pos = 6;
    while pos < b.len() {
        assert!(pos + 6 <= b.len(), "chunk header past the end at {pos}");
        assert_eq!(be16(&b[pos..pos + 2]), 0, "vendor id at {pos}");
        let kind = be16(&b[pos + 2..pos + 4]);
        let len = be16(&b[pos + 4..pos + 6]) as usize;
        assert!(len >= 6, "chunk {kind} length {len}");
        assert!(pos + len <= b.len(), "chunk {kind} past the end");
        let v = &b[pos + 6..pos + len];
        let width = |n: usize| assert_eq!(v.len(), n, "chunk {kind} data length");
        match kind {
            1 => (width(1), d.family = v[0]).1,
            2 => (width(1), d.ip_proto = v[0]).1,
            3 | 4 => {
                width(4);
                let a = IpAddr::from(<[u8; 4]>::try_from(v).unwrap());
                *(if kind == 3 { &mut d.src } else { &mut d.dst }) = Some(a);
            }
            5 | 6 => {
                width(16);
                let a = IpAddr::from(<[u8; 16]>::try_from(v).unwrap());
                *(if kind == 5 { &mut d.src } else { &mut d.dst }) = Some(a);
            }
            7 => (width(2), d.src_port = be16(v)).1,
            8 => (width(2), d.dst_port = be16(v)).1,
            9 => (width(4), d.secs = be32(v)).1,
            10 => (width(4), d.usecs = be32(v)).1,
            11 => (width(1), d.proto_type = v[0]).1,
            12 => (width(4), d.node_id = be32(v)).1,
            14 => d.auth_key = Some(v.to_vec()),
            15 => d.payload = v.to_vec(),
            17 => d.correlation_id = Some(v.to_vec()),
            other => panic!("unexpected chunk type {other}"),
        }
        assert!(!d.types.contains(&kind), "chunk {kind} twice");
        d.types.push(kind);
        pos += len;
    }
    assert_eq!(pos, b.len(), "chunks fill the packet exactly");
    d
}

#[test]
fn ipv4_packet_byte_for_byte() {
    let mut out = Vec::new();
    let n = encode(
        &packet("192.0.2.1:5060", "198.51.100.2:5070", b"OPTIONS"),
        &mut out,
    )
    .unwrap();
    #[rustfmt::skip]
    let expected: &[u8] = &[
        b'H', b'E', b'P', b'3', 0x00, 106,                   // magic, total length
        0, 0, 0, 1, 0, 7, 2,                                  // IP family: AF_INET
        0, 0, 0, 2, 0, 7, 17,                                 // IP protocol: UDP
        0, 0, 0, 3, 0, 10, 192, 0, 2, 1,                      // IPv4 source
        0, 0, 0, 4, 0, 10, 198, 51, 100, 2,                   // IPv4 destination
        0, 0, 0, 7, 0, 8, 0x13, 0xc4,                         // source port 5060
        0, 0, 0, 8, 0, 8, 0x13, 0xce,                         // destination port 5070
        0, 0, 0, 9, 0, 10, 0x65, 0x53, 0xf1, 0x00,            // 1 700 000 000 s
        0, 0, 0, 10, 0, 10, 0x00, 0x01, 0xe2, 0x40,           // 123 456 µs
        0, 0, 0, 11, 0, 7, 1,                                 // protocol type: SIP
        0, 0, 0, 12, 0, 10, 0x00, 0x00, 0x07, 0xd1,           // capture agent id 2001
        0, 0, 0, 15, 0, 13, b'O', b'P', b'T', b'I', b'O', b'N', b'S', // payload
    ];
    assert_eq!(out, expected);
    assert_eq!(n, out.len());
    assert_eq!(n, 99 + 7, "99 bytes of header and chunks for IPv4");

    // The same, field by field at its offset.
    assert_eq!(&out[0..4], b"HEP3");
    assert_eq!(be16(&out[4..6]), 106);
    assert_eq!(out[12], 2);
    assert_eq!(out[19], 17);
    assert_eq!(&out[26..30], &[192, 0, 2, 1]);
    assert_eq!(&out[36..40], &[198, 51, 100, 2]);
    assert_eq!(be16(&out[46..48]), 5060);
    assert_eq!(be16(&out[54..56]), 5070);
    assert_eq!(be32(&out[62..66]), 1_700_000_000);
    assert_eq!(be32(&out[72..76]), 123_456);
    assert_eq!(out[82], 1);
    assert_eq!(be32(&out[89..93]), 2001);
    assert_eq!(be16(&out[95..97]), 15);
    assert_eq!(be16(&out[97..99]), 6 + 7);
    assert_eq!(&out[99..], b"OPTIONS");

    let d = decode(&out);
    assert_eq!(d.types, [1, 2, 3, 4, 7, 8, 9, 10, 11, 12, 15]);
}

#[test]
fn ipv6_addresses_and_stream_transports() {
    let mut out = Vec::new();
    for (t, proto) in [
        (HepTransport::Udp, 17),
        (HepTransport::Tcp, 6),
        (HepTransport::Tls, 6),
        (HepTransport::Ws, 6),
        (HepTransport::Wss, 6),
    ] {
        let mut p = packet("[2001:db8::1]:5061", "[2001:db8::2:3]:40000", b"BYE");
        p.transport = t;
        let n = encode(&p, &mut out).unwrap();
        assert_eq!(n, 123 + 3, "IPv6 addresses add 2 x 12 bytes");
        let d = decode(&out);
        assert_eq!(d.types, [1, 2, 5, 6, 7, 8, 9, 10, 11, 12, 15]);
        assert_eq!(d.family, 10, "AF_INET6");
        assert_eq!(d.ip_proto, proto, "{t:?}");
        assert_eq!(d.src, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(d.dst, Some("2001:db8::2:3".parse().unwrap()));
        assert_eq!((d.src_port, d.dst_port), (5061, 40000));
        // The source address chunk: type 5, length 22, the 16 octets.
        assert_eq!(&out[20..26], &[0, 0, 0, 5, 0, 22]);
        assert_eq!(
            &out[26..42],
            &"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets()
        );
        assert_eq!(&out[42..48], &[0, 0, 0, 6, 0, 22]);
    }
}

#[test]
fn mixed_families_are_written_as_ipv6_and_mapped_ipv4_as_ipv4() {
    let mut out = Vec::new();
    // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d: that is IPv4.
    encode(
        &packet("[::ffff:192.0.2.7]:5060", "192.0.2.1:5060", b"x"),
        &mut out,
    )
    .unwrap();
    let d = decode(&out);
    assert_eq!(d.family, 2);
    assert_eq!(d.src, Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))));

    encode(
        &packet("192.0.2.7:5060", "[2001:db8::9]:5060", b"x"),
        &mut out,
    )
    .unwrap();
    let d = decode(&out);
    assert_eq!(d.family, 10);
    assert_eq!(d.src, Some("::ffff:192.0.2.7".parse().unwrap()));
    assert_eq!(d.dst, Some("2001:db8::9".parse().unwrap()));
}

#[test]
fn optional_chunks_and_lengths_add_up() {
    let mut out = vec![0xaa; 10]; // whatever was there is replaced
    let mut p = packet(
        "10.0.0.1:1",
        "10.0.0.2:2",
        b"REGISTER sip:x SIP/2.0\r\n\r\n",
    );
    p.password = Some(b"s3cret");
    p.correlation_id = Some(b"abc@host");
    p.node_id = 0xdead_beef;
    p.time = at(0, 999_999_999);
    let n = encode(&p, &mut out).unwrap();
    assert_eq!(n, 99 + (6 + 6) + (6 + 8) + p.payload.len());
    assert_eq!(out.len(), n);
    let d = decode(&out);
    assert_eq!(d.types, [1, 2, 3, 4, 7, 8, 9, 10, 11, 12, 14, 17, 15]);
    assert_eq!(d.auth_key.as_deref(), Some(&b"s3cret"[..]));
    assert_eq!(d.correlation_id.as_deref(), Some(&b"abc@host"[..]));
    assert_eq!(d.node_id, 0xdead_beef);
    assert_eq!((d.secs, d.usecs), (0, 999_999), "microseconds truncated");
    assert_eq!(d.payload, p.payload);
    assert_eq!(d.proto_type, 1);
}

#[test]
fn times_before_1970_or_after_2106_do_not_wrap() {
    let mut out = Vec::new();
    let mut p = packet("10.0.0.1:1", "10.0.0.2:2", b"x");
    p.time = UNIX_EPOCH - Duration::from_secs(5);
    encode(&p, &mut out).unwrap();
    assert_eq!((decode(&out).secs, decode(&out).usecs), (0, 0));
    p.time = at(u64::from(u32::MAX) + 10, 0);
    encode(&p, &mut out).unwrap();
    assert_eq!(decode(&out).secs, u32::MAX);
}

#[test]
fn oversize_is_refused_and_leaves_the_output_alone() {
    let mut out = Vec::new();
    // IPv4: 99 bytes besides the payload, so 65 436 payload bytes is the most.
    let big = vec![b'a'; MAX_PACKET - 99];
    let n = encode(&packet("10.0.0.1:1", "10.0.0.2:2", &big), &mut out).unwrap();
    assert_eq!(n, MAX_PACKET);
    assert_eq!(&out[4..6], &[0xff, 0xff]);
    assert_eq!(decode(&out).payload.len(), big.len());

    let bigger = vec![b'a'; MAX_PACKET - 98];
    let mut out = b"untouched".to_vec();
    let err = encode(&packet("10.0.0.1:1", "10.0.0.2:2", &bigger), &mut out).unwrap_err();
    assert_eq!(err, EncodeError::TooLong { len: 65_536 });
    assert!(err.to_string().contains("65535"), "{err}");
    assert_eq!(out, b"untouched");

    // The optional chunks count too: a payload that fits alone no longer does.
    let mut p = packet("10.0.0.1:1", "10.0.0.2:2", &big);
    p.password = Some(b"k");
    assert!(matches!(
        encode(&p, &mut out),
        Err(EncodeError::TooLong { len: 65_542 })
    ));
    // And IPv6 addresses: 24 bytes more.
    let p = packet("[::1]:1", "[::2]:2", &big);
    assert_eq!(
        encode(&p, &mut out),
        Err(EncodeError::TooLong { len: 65_559 })
    );
    // Far beyond u16 (a length that would wrap to a small one if cast).
    let huge = vec![0u8; 65_536 + 50];
    assert!(encode(&packet("10.0.0.1:1", "10.0.0.2:2", &huge), &mut out).is_err());
}

#[test]
fn no_allocation_when_the_vector_has_room() {
    let mut out = Vec::with_capacity(2048);
    let ptr = out.as_ptr();
    for payload in [&b"INVITE"[..], &[b'z'; 1900][..], b"ACK"] {
        let mut p = packet("[2001:db8::1]:5060", "[2001:db8::2]:5060", payload);
        p.password = Some(b"pw");
        p.correlation_id = Some(b"id");
        encode(&p, &mut out).unwrap();
        assert_eq!(out.as_ptr(), ptr, "reallocated");
        assert_eq!(out.capacity(), 2048);
    }
}

#[test]
fn call_id_is_found_in_the_header_only() {
    let m = b"INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nCall-ID:  a84b4c76e66710@pc33  \r\nCSeq: 1 INVITE\r\n\r\n";
    assert_eq!(call_id(m), Some(&b"a84b4c76e66710@pc33"[..]));
    assert_eq!(
        call_id(b"SIP/2.0 200 OK\r\ni:compact\r\n\r\n"),
        Some(&b"compact"[..])
    );
    assert_eq!(
        call_id(b"BYE sip:x SIP/2.0\nCALL-id : lf-only\n\n"),
        Some(&b"lf-only"[..])
    );
    assert_eq!(
        call_id(b"MESSAGE sip:x SIP/2.0\r\nTo: <sip:x>\r\n\r\nCall-ID: in-body"),
        None
    );
    assert_eq!(call_id(b"OPTIONS sip:x SIP/2.0\r\nCall-ID:\r\n\r\n"), None);
    assert_eq!(call_id(b""), None);
    assert_eq!(call_id(b"Call-ID: only-a-start-line"), None);
    // "Call-Info" and "iCall-ID" are other headers.
    assert_eq!(
        call_id(b"X y SIP/2.0\r\nCall-Info: <a>\r\nx-i: z\r\n\r\n"),
        None
    );
}

#[test]
fn collector_parsing() {
    assert_eq!(
        parse_collector("udp:127.0.0.1:9060").unwrap(),
        sa("127.0.0.1:9060")
    );
    assert_eq!(parse_collector("udp:[::1]:9061").unwrap(), sa("[::1]:9061"));
    assert_eq!(
        parse_collector("udp:localhost:9062").unwrap().port(),
        9062,
        "a name is resolved"
    );
    for bad in [
        "tcp:127.0.0.1:9060",
        "127.0.0.1:9060",
        "udp:127.0.0.1",
        "udp:127.0.0.1:99999",
        "udp::9060",
        "udp:::1:9060",
        "",
    ] {
        let e = parse_collector(bad).unwrap_err();
        assert!(format!("{e:#}").contains("hep.collector"), "{bad:?}: {e:#}");
    }
    let e = parse_collector("tcp:10.0.0.1:9060")
        .unwrap_err()
        .to_string();
    assert!(e.contains("udp:HOST:PORT"), "{e}");
}

#[test]
fn config_section() {
    #[derive(Deserialize)]
    struct File {
        hep: HepConfig,
    }
    let f: File = toml::from_str("[hep]\ncollector = \"udp:10.1.2.3:9060\"\n").unwrap();
    assert_eq!(
        f.hep,
        HepConfig {
            collector: Some("udp:10.1.2.3:9060".into()),
            node_id: 2001,
            password: None,
            queue: 4096,
        }
    );
    let f: File = toml::from_str(
        "[hep]\ncollector = \"udp:h:1\"\nnode_id = 7\npassword = \"pw\"\nqueue = 16\n",
    )
    .unwrap();
    assert_eq!(f.hep.node_id, 7);
    assert_eq!(f.hep.password.as_deref(), Some("pw"));
    assert_eq!(f.hep.queue, 16);
    let e = toml::from_str::<File>("[hep]\ncolector = \"udp:h:1\"\n")
        .err()
        .unwrap();
    assert!(e.to_string().contains("unknown field"), "{e}");

    assert!(HepSender::from_config(&HepConfig::default())
        .unwrap()
        .is_none());
    let e = HepSender::from_config(&HepConfig {
        collector: Some("udp:127.0.0.1:9".into()),
        queue: 0,
        ..HepConfig::default()
    })
    .err()
    .unwrap();
    assert!(e.to_string().contains("hep.queue"), "{e}");
    let e = HepSender::from_config(&HepConfig {
        collector: Some("sctp:127.0.0.1:9".into()),
        ..HepConfig::default()
    })
    .err()
    .unwrap();
    assert!(e.to_string().contains("hep.collector"), "{e}");
}

/// A collector socket on loopback that gives up after a few seconds instead of hanging.
fn collector() -> (UdpSocket, String) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let url = format!("udp:{}", s.local_addr().unwrap());
    (s, url)
}

fn receive(s: &UdpSocket) -> Vec<u8> {
    let mut buf = vec![0; 65_536];
    let n = s.recv(&mut buf).expect("a HEP datagram");
    buf.truncate(n);
    buf
}

/// Waits (boundedly) for a counter the thread updates after its send returned.
fn eventually(what: &str, f: impl Fn() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{what}: not reached");
}

fn sip(method: &str, call_id: &str) -> Vec<u8> {
    format!(
        "{method} sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK{call_id}\r\nCall-ID: {call_id}\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

#[test]
fn sender_delivers_what_it_captures() {
    let (col, url) = collector();
    let hep = HepSender::start(&url, 4242, Some("pw"), 16).unwrap();
    assert_eq!(hep.collector(), col.local_addr().unwrap());
    let sent = [
        (
            "198.51.100.7:5060",
            "192.0.2.1:5060",
            HepTransport::Udp,
            sip("INVITE", "one@x"),
        ),
        (
            "192.0.2.1:5060",
            "198.51.100.7:5060",
            HepTransport::Udp,
            b"SIP/2.0 100 Trying\r\nCall-ID: one@x\r\n\r\n".to_vec(),
        ),
        (
            "[2001:db8::1]:5061",
            "[2001:db8::5]:41000",
            HepTransport::Tls,
            sip("BYE", "three@y"),
        ),
    ];
    for (i, (src, dst, t, payload)) in sent.iter().enumerate() {
        hep.capture(
            sa(src),
            sa(dst),
            *t,
            at(1_700_000_100 + i as u64, 5_000),
            payload,
        );
    }
    for (i, (src, dst, t, payload)) in sent.iter().enumerate() {
        let got = receive(&col);
        let d = decode(&got);
        assert_eq!(d.src, Some(sa(src).ip()));
        assert_eq!(d.dst, Some(sa(dst).ip()));
        assert_eq!((d.src_port, d.dst_port), (sa(src).port(), sa(dst).port()));
        assert_eq!(d.ip_proto, t.ip_protocol());
        assert_eq!((d.secs, d.usecs), (1_700_000_100 + i as u32, 5));
        assert_eq!(d.node_id, 4242);
        assert_eq!(d.auth_key.as_deref(), Some(&b"pw"[..]));
        assert_eq!(d.correlation_id.as_deref(), call_id(payload));
        assert!(d.correlation_id.is_some());
        assert_eq!(&d.payload, payload);
        // Byte for byte what `encode` makes of it.
        let mut want = Vec::new();
        encode(
            &HepPacket {
                src: sa(src),
                dst: sa(dst),
                transport: *t,
                time: at(1_700_000_100 + i as u64, 5_000),
                node_id: 4242,
                password: Some(b"pw"),
                correlation_id: call_id(payload),
                payload,
            },
            &mut want,
        )
        .unwrap();
        assert_eq!(got, want);
    }
    eventually("3 sent", || hep.sent() == 3);
    assert_eq!((hep.dropped(), hep.errors()), (0, 0));
}

#[test]
fn a_full_queue_drops_and_counts_without_blocking() {
    let (col, url) = collector();
    let (open, gate) = mpsc::channel();
    // The thread waits at the gate: nothing leaves the queue until it opens.
    let hep = HepSender::start_gated(&url, 1, None, 8, Some(gate)).unwrap();
    let msg = sip("OPTIONS", "q@x");
    for i in 0u16..8 + 5 {
        hep.capture(
            sa("10.0.0.1:5060"),
            sa(&format!("10.0.0.2:{}", 6000 + i)),
            HepTransport::Udp,
            at(1, 0),
            &msg,
        );
        // Every capture has returned (the caller was never blocked): the 9th onwards
        // found the queue full.
        assert_eq!(hep.dropped(), i.saturating_sub(7) as u64);
    }
    assert_eq!(hep.dropped(), 5);
    assert_eq!(hep.sent(), 0);
    open.send(()).unwrap();
    // The 8 that were queued arrive, in order; the 5 others never do.
    for i in 0..8 {
        assert_eq!(decode(&receive(&col)).dst_port, 6000 + i);
    }
    eventually("8 sent", || hep.sent() == 8);
    col.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0; 2048];
    let e = col.recv(&mut buf).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{e}"
    );
    // Once the queue has drained there is room again.
    hep.capture(
        sa("10.0.0.1:1"),
        sa("10.0.0.2:2"),
        HepTransport::Udp,
        at(2, 0),
        &msg,
    );
    assert_eq!(decode(&receive(&col)).secs, 2);
    assert_eq!((hep.dropped(), hep.errors()), (5, 0));
}

#[test]
fn one_sender_is_shared_by_every_worker() {
    fn shared<T: Send + Sync>() {}
    shared::<HepSender>();
    let (col, url) = collector();
    let hep = Arc::new(HepSender::start(&url, 1, None, 64).unwrap());
    let workers: Vec<_> = (0..4u16)
        .map(|w| {
            let hep = Arc::clone(&hep);
            std::thread::spawn(move || {
                for i in 0..5u16 {
                    let src = SocketAddr::from(([10, 0, 0, 1], 5060 + w));
                    let dst = SocketAddr::from(([10, 0, 0, 2], 7000 + i));
                    hep.capture(
                        src,
                        dst,
                        HepTransport::Udp,
                        at(1, 0),
                        b"ACK x SIP/2.0\r\n\r\n",
                    );
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let mut seen: Vec<(u16, u16)> = (0..20)
        .map(|_| {
            let d = decode(&receive(&col));
            (d.src_port, d.dst_port)
        })
        .collect();
    seen.sort_unstable();
    let mut want: Vec<(u16, u16)> = (0..4)
        .flat_map(|w| (0..5).map(move |i| (5060 + w, 7000 + i)))
        .collect();
    want.sort_unstable();
    assert_eq!(seen, want);
    assert_eq!(hep.dropped(), 0);
}

#[test]
fn dropping_the_sender_sends_what_is_queued_and_stops() {
    let (col, url) = collector();
    let (open, gate) = mpsc::channel();
    let hep = HepSender::start_gated(&url, 1, None, 8, Some(gate)).unwrap();
    for i in 0..3 {
        hep.capture(
            sa("10.0.0.1:5060"),
            sa("10.0.0.2:5060"),
            HepTransport::Udp,
            at(10 + i, 0),
            b"ACK sip:x SIP/2.0\r\n\r\n",
        );
    }
    open.send(()).unwrap();
    drop(hep); // joins the thread, which first empties the queue
    col.set_nonblocking(true).unwrap();
    for i in 0..3 {
        assert_eq!(decode(&receive(&col)).secs, 10 + i);
    }
    assert!(col.recv(&mut [0; 64]).is_err(), "nothing more");
}

#[test]
fn messages_too_long_for_hep_are_counted_as_errors() {
    let (col, url) = collector();
    let hep = HepSender::start(&url, 1, None, 4).unwrap();
    let huge = vec![b'x'; 70_000];
    hep.capture(
        sa("10.0.0.1:1"),
        sa("10.0.0.2:2"),
        HepTransport::Tcp,
        at(3, 0),
        &huge,
    );
    hep.capture(
        sa("10.0.0.1:1"),
        sa("10.0.0.2:2"),
        HepTransport::Tcp,
        at(4, 0),
        b"ok",
    );
    assert_eq!(decode(&receive(&col)).secs, 4, "the next one still goes");
    eventually("1 error, 1 sent", || hep.errors() == 1 && hep.sent() == 1);
    assert_eq!(hep.dropped(), 0);
}

mod readers;
