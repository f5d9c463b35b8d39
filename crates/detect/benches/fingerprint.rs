//! Cost of the wire fingerprint of one INVITE (the budget: under 2 µs).
use criterion::{black_box, criterion_group, criterion_main, Criterion};

const INVITE: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\nMax-Forwards: 70\r\nTo: Bob <sip:bob@example.com>\r\nFrom: Alice <sip:alice@example.com>;tag=1928301774\r\nCall-ID: a84b4c76e66710@pc33.example.com\r\nCSeq: 314159 INVITE\r\nContact: <sip:alice@192.0.2.10:5060>\r\nUser-Agent: baresip v1.0.0 (x86_64/linux)\r\nAllow: INVITE,ACK,BYE,CANCEL,OPTIONS,NOTIFY,SUBSCRIBE,INFO,MESSAGE,UPDATE,REFER\r\nSupported: replaces,norefersub,100rel\r\nContent-Type: application/sdp\r\nContent-Length: 142\r\n\r\nv=0\r\no=- 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

fn bench(c: &mut Criterion) {
    c.bench_function("fingerprint_invite", |b| {
        b.iter(|| palisade_detect::fingerprint(black_box(INVITE)))
    });
    c.bench_function("sdp_habits", |b| {
        b.iter(|| palisade_detect::sdp_habits(black_box(&INVITE[INVITE.len() - 142..])))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
