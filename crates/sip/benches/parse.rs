//! Parse, and parse + canonical write, of four messages; `rsip` parses (and re-serialises)
//! the same bytes in the same run as the comparator.
// A benchmark, not library code: it may stop on a failed setup by panicking, and
// criterion's macros make undocumented functions.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use palisade_sip::{parse_datagram, Limits};

const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
Call-ID: 3848276298220188511@atlanta.example.com\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@192.0.2.10:5060;transport=udp>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO\r\n\
Supported: replaces, timer, 100rel\r\n\
User-Agent: Palisade-Bench/1.0\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 262\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 0 8 9 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

const REGISTER: &str = "REGISTER sip:registrar.biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bKnashds7;rport\r\n\
Max-Forwards: 70\r\n\
From: Bob <sip:bob@biloxi.example.com>;tag=a73kszlfl\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
Call-ID: 1j9FpLxk3uxtm8tn@192.0.2.20\r\n\
CSeq: 2 REGISTER\r\n\
Contact: <sip:bob@192.0.2.20:5060;transport=udp>;expires=3600\r\n\
Authorization: Digest username=\"bob\", realm=\"biloxi.example.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"sip:registrar.biloxi.example.com\", response=\"245f23415f11432b3434341c022\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"0a4f113b\"\r\n\
User-Agent: Palisade-Bench/1.0\r\n\
Content-Length: 0\r\n\
\r\n";

const OK200: &str = "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK4b43c2ff8.1;received=192.0.2.1\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9;rport=5060;received=192.0.2.10\r\n\
Record-Route: <sip:192.0.2.1;lr>\r\n\
From: \"Alice\" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
To: Bob <sip:bob@biloxi.example.com>;tag=314159\r\n\
Call-ID: 3848276298220188511@atlanta.example.com\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:bob@192.0.2.20:5060>\r\n\
Content-Length: 0\r\n\
\r\n";

fn messages() -> Vec<(&'static str, Vec<u8>)> {
    let wsinv = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/corpus/rfc4475/wsinv.dat"
    ))
    .expect("tests/corpus/rfc4475/wsinv.dat");
    vec![
        ("invite_sdp", INVITE.as_bytes().to_vec()),
        ("register_auth", REGISTER.as_bytes().to_vec()),
        ("ok200", OK200.as_bytes().to_vec()),
        ("wsinv", wsinv),
    ]
}

fn bench(c: &mut Criterion) {
    let limits = Limits::default();
    for (name, bytes) in messages() {
        assert!(parse_datagram(&bytes, &limits).is_ok(), "{name} must parse");
        let rsip_ok = rsip::SipMessage::try_from(bytes.as_slice()).is_ok();
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function("palisade/parse", |b| {
            b.iter(|| black_box(parse_datagram(black_box(&bytes), &limits).is_ok()))
        });
        let mut out = Vec::with_capacity(2048);
        g.bench_function("palisade/parse+write", |b| {
            b.iter(|| {
                out.clear();
                if let Ok(m) = parse_datagram(black_box(&bytes), &limits) {
                    m.write_to(&mut out);
                }
                black_box(out.len())
            })
        });
        if rsip_ok {
            g.bench_function("rsip/parse", |b| {
                b.iter(|| {
                    black_box(rsip::SipMessage::try_from(black_box(bytes.as_slice())).is_ok())
                })
            });
            g.bench_function("rsip/parse+write", |b| {
                b.iter(|| {
                    let m = rsip::SipMessage::try_from(black_box(bytes.as_slice()));
                    black_box(m.map(|m| m.to_string().len()).unwrap_or(0))
                })
            });
        } else {
            eprintln!("rsip refuses {name}; no comparator for it");
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
