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

#[path = "common/messages.rs"]
mod messages;
use messages::{INVITE, OK200, REGISTER};

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
