//! Cost of the wire fingerprint of one INVITE (the budget: under 2 µs).
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

const INVITE: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\nMax-Forwards: 70\r\nTo: Bob <sip:bob@example.com>\r\nFrom: Alice <sip:alice@example.com>;tag=1928301774\r\nCall-ID: a84b4c76e66710@pc33.example.com\r\nCSeq: 314159 INVITE\r\nContact: <sip:alice@192.0.2.10:5060>\r\nUser-Agent: baresip v1.0.0 (x86_64/linux)\r\nAllow: INVITE,ACK,BYE,CANCEL,OPTIONS,NOTIFY,SUBSCRIBE,INFO,MESSAGE,UPDATE,REFER\r\nSupported: replaces,norefersub,100rel\r\nContent-Type: application/sdp\r\nContent-Length: 142\r\n\r\nv=0\r\no=- 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

fn bench(c: &mut Criterion) {
    c.bench_function("fingerprint_invite", |b| {
        b.iter(|| palisade_detect::fingerprint(black_box(INVITE)))
    });
    c.bench_function("sdp_habits", |b| {
        b.iter(|| palisade_detect::sdp_habits(black_box(&INVITE[INVITE.len() - 142..]), b"alice"))
    });
}

/// The detectors' cost per call: a CallStart, a 180 and a final, over 10,000 callers
/// and 100,000 callees (most calls answered; what a busy service looks like).
fn detector(c: &mut Criterion) {
    use palisade_detect::{CallStart, Config, Detector, Observation};
    let mut d = Detector::new(Config::default(), (1, 1, 1));
    d.set_accounts((0..10_000).map(|i| (format!("u{i}"), 0)));
    let source: std::net::SocketAddr = "192.0.2.1:5060".parse().unwrap();
    let mut n: u64 = 0;
    c.bench_function("detector_per_call", |b| {
        b.iter(|| {
            n += 1;
            let key = n;
            let at = 1_800_000_000_000 + n as i64;
            d.observe(Observation::CallStart(CallStart {
                key,
                at,
                call_id: format!("c{n}"),
                caller: format!("u{}", n % 10_000),
                callee: format!("u{}", n.wrapping_mul(7919) % 100_000),
                source,
                transport: "udp",
                user_agent: "baresip v1.0.0".into(),
                fingerprint: 1,
                sdp: 2,
                blocked: false,
                message: false,
            }));
            d.observe(Observation::CallStatus {
                key,
                at: at + 100,
                status: 180,
            });
            let status = if n.is_multiple_of(4) { 487 } else { 200 };
            d.observe(Observation::CallStatus {
                key,
                at: at + 2000,
                status,
            });
            if status == 200 {
                d.observe(Observation::CallEnd {
                    call_id: format!("c{n}"),
                    at: at + 60_000,
                });
            }
            if n.is_multiple_of(1024) {
                d.tick(at);
            }
            black_box(d.drain().count())
        })
    });
}

criterion_group!(benches, bench, detector);
criterion_main!(benches);
