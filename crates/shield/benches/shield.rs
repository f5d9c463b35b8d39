//! The shield's cost per message, next to the parse it follows: a SIPp-style INVITE with
//! SDP (and a Subject the policy drops), a 200 OK with an SDP answer, a BYE, and a Chrome
//! WebRTC offer.
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
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use palisade_shield::{apply, Policy};
use palisade_sip::{parse_datagram, Limits};

const SDP: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 8 9 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:9 G722/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n";

fn invite(sdp: &str) -> Vec<u8> {
    format!("INVITE sip:callee1@127.0.0.1:5090 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5091;branch=z9hG4bK-1-2-0;rport=5091;received=127.0.0.1\r\nMax-Forwards: 69\r\nFrom: <sip:caller1@127.0.0.1:5080>;tag=1SIPpTag001\r\nTo: <sip:callee1@127.0.0.1:5080>\r\nCall-ID: 1-12345@127.0.0.1\r\nCSeq: 2 INVITE\r\nContact: <sip:caller1@127.0.0.1:5091;transport=udp>\r\nAllow: INVITE, ACK, BYE, CANCEL, OPTIONS\r\nSupported: replaces\r\nUser-Agent: sipp-bench\r\nSubject: benchmark call\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}", sdp.len()).into_bytes()
}

fn ok200() -> Vec<u8> {
    format!("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5091;branch=z9hG4bK-1-2-0;rport=5091;received=127.0.0.1\r\nRecord-Route: <sip:127.0.0.1:5080;lr>\r\nFrom: <sip:caller1@127.0.0.1:5080>;tag=1SIPpTag001\r\nTo: <sip:callee1@127.0.0.1:5080>;tag=99UAS1\r\nCall-ID: 1-12345@127.0.0.1\r\nCSeq: 2 INVITE\r\nContact: <sip:127.0.0.1:5090;transport=UDP>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}", SDP.len()).into_bytes()
}

const BYE: &str = "BYE sip:127.0.0.1:5090;transport=UDP SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5091;branch=z9hG4bK-1-9-4;rport=5091;received=127.0.0.1\r\nMax-Forwards: 69\r\nFrom: <sip:caller1@127.0.0.1:5080>;tag=1SIPpTag001\r\nTo: <sip:callee1@127.0.0.1:5080>;tag=99UAS1\r\nCall-ID: 1-12345@127.0.0.1\r\nCSeq: 3 BYE\r\nContent-Length: 0\r\n\r\n";

fn bench(c: &mut Criterion) {
    let p = Policy::default();
    let sl = palisade_sdp::Limits::default();
    c.bench_function("sdp/parse", |b| {
        b.iter(|| palisade_sdp::parse(black_box(SDP.as_bytes()), &sl).unwrap())
    });
    c.bench_function("sdp/parse+write", |b| {
        b.iter(|| {
            palisade_sdp::parse(black_box(SDP.as_bytes()), &sl)
                .unwrap()
                .to_string_canonical()
        })
    });
    let l = Limits::default();
    let chrome = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/offers/real-chrome-webrtc.sip"
    ))
    .unwrap();
    for (name, raw) in [
        ("invite_sdp", invite(SDP)),
        ("ok200_sdp", ok200()),
        ("bye", BYE.as_bytes().to_vec()),
        ("chrome_webrtc_invite", chrome),
    ] {
        c.bench_function(&format!("{name}/parse"), |b| {
            b.iter(|| parse_datagram(black_box(&raw), &l).unwrap())
        });
        c.bench_function(&format!("{name}/parse+shield"), |b| {
            b.iter(|| {
                let mut m = parse_datagram(black_box(&raw), &l).unwrap();
                let d = apply(&p, &mut m, &raw).unwrap();
                black_box((m, d))
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
