//! Cost of the relay's per-packet decisions: one RTP packet with a 160-byte PCMU
//! payload (20 ms at 8 kHz), one RTCP SR+SDES compound, and the whole per-stream path
//! (source, checks, SSRC, budget, counters) for the RTP packet.
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
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use palisade_media::{
    check_rtcp, check_rtp, derive_budget, CodecInfo, Component, Expected, MediaKind, PayloadTypes,
    RtcpRules, RtpRules, Stream, StreamConfig,
};

fn pcmu() -> Vec<u8> {
    let mut p = vec![0x80, 0, 0x12, 0x34, 0, 0, 0x10, 0, 0xca, 0xfe, 0xba, 0xbe];
    p.resize(12 + 160, 0xd5);
    p
}

/// SR with one report block, then SDES with a CNAME (RFC 3550 §6.4.1, §6.5).
fn sr_sdes() -> Vec<u8> {
    let mut p = vec![0x81, 200, 0, 12];
    p.extend_from_slice(&[0xca, 0xfe, 0xba, 0xbe]);
    p.extend_from_slice(&[0; 20]);
    p.extend_from_slice(&[0x0b, 0xad, 0xca, 0xfe]);
    p.extend_from_slice(&[0; 20]);
    let cname = b"alice@192.0.2.10";
    let mut sdes = vec![0xca, 0xfe, 0xba, 0xbe, 1, cname.len() as u8];
    sdes.extend_from_slice(cname);
    sdes.push(0);
    while !sdes.len().is_multiple_of(4) {
        sdes.push(0);
    }
    p.extend_from_slice(&[0x81, 202, 0, (sdes.len() / 4) as u8]);
    p.extend_from_slice(&sdes);
    p
}

fn bench(c: &mut Criterion) {
    let rtp = pcmu();
    let rules = RtpRules::new(PayloadTypes::new(&[0, 8, 101]));
    assert!(check_rtp(&rtp, &rules).is_ok());
    c.bench_function("check_rtp_pcmu_160", |b| {
        b.iter(|| check_rtp(black_box(&rtp), black_box(&rules)))
    });

    let rtcp = sr_sdes();
    let rtcp_rules = RtcpRules::default();
    assert_eq!(check_rtcp(&rtcp, &rtcp_rules).unwrap().packets, 2);
    c.bench_function("check_rtcp_sr_sdes", |b| {
        b.iter(|| check_rtcp(black_box(&rtcp), black_box(&rtcp_rules)))
    });

    let peer: SocketAddr = "198.51.100.7:4000".parse().unwrap();
    let mut config = StreamConfig::new(
        rules,
        Expected {
            rtp: Some(peer),
            rtcp: None,
            signalling: Some(peer.ip()),
        },
    );
    let codecs = [CodecInfo {
        payload_type: 0,
        name: "PCMU",
        clock_rate: 8000,
        channels: 1,
    }];
    // a budget the benchmark never exhausts: the path is measured, not the refusal
    config.rtp_budget = Some(derive_budget(MediaKind::Audio, &codecs, Some(20), None));
    let t0 = Instant::now();
    let mut stream = Stream::new(config, t0);
    let mut n: u64 = 0;
    c.bench_function("stream_receive_rtp_pcmu_160", |b| {
        b.iter(|| {
            n += 1;
            // 20 ms apart, as a real stream
            let now = t0 + Duration::from_millis(20 * n);
            stream
                .receive(now, Component::Rtp, black_box(peer), black_box(&rtp))
                .is_ok()
        })
    });
    assert_eq!(stream.stats().refused.total(), 0);
}

criterion_group!(benches, bench);
criterion_main!(benches);
