//! Sustained appends to the evidence log on this machine's disk, as the server's
//! evidence thread does them: entries arrive in batches, each batch is one group commit
//! (`fdatasync`), a signed checkpoint every second.
//!
//! `cargo run --release -p palisade-evidence --example append -- [ENTRIES] [BATCH] [DIR]`
//! (defaults 200000, 200, a temporary directory). Prints appends/s and the p50/p99
//! time from a batch's first append to its commit (to durable) and to the checkpoint
//! covering it (to signed).
// A example, not library code: it may stop on a failed setup by panicking, and
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]
use std::time::{Duration, Instant};

use palisade_evidence::{Log, NoteSigner};

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v.get(((v.len() as f64 - 1.0) * p) as usize)
        .copied()
        .unwrap_or_default()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let batch: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let dir = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::env::temp_dir().join(format!("palisade-append-{}", std::process::id()))
        });
    let _ = std::fs::remove_dir_all(&dir);
    let signer = NoteSigner::new("bench.example/evidence", &[1; 32]).unwrap();
    let mut log = Log::open(&dir, signer).unwrap();
    // a realistic entry: an offer-refused record (~330 bytes of canonical JSON)
    let entry = |i: u64| {
        format!("{{\"call_id\":\"{i:016x}@198.51.100.7\",\"callee\":\"bob@example.com\",\"caller\":\"mallory@evil.example\",\"kind\":\"offer-refused\",\"method\":\"INVITE\",\"reason\":\"SDP line 7: attribute value over 256 bytes\",\"sha256\":\"{:064x}\",\"source\":\"udp:198.51.100.7:5060\",\"status\":488,\"time\":\"2026-11-30T18:00:00.123Z\"}}", i as u128 * 7919)
            .into_bytes()
    };
    let start = Instant::now();
    let mut to_durable = Vec::new();
    let mut to_signed = Vec::new();
    let mut waiting: Vec<Instant> = Vec::new();
    let mut last_cp = Instant::now();
    let mut i = 0;
    while i < n {
        let t0 = Instant::now();
        for _ in 0..batch.min(n - i) {
            log.append(&entry(i)).unwrap();
            i += 1;
        }
        log.commit().unwrap();
        to_durable.push(t0.elapsed());
        waiting.push(t0);
        if last_cp.elapsed() >= Duration::from_secs(1) || i == n {
            log.checkpoint().unwrap();
            last_cp = Instant::now();
            for w in waiting.drain(..) {
                to_signed.push(w.elapsed());
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{n} entries in batches of {batch}: {:.0} appends/s; to durable p50 {:?} p99 {:?}; to signed checkpoint p50 {:?} p99 {:?}; {} batches",
        n as f64 / secs,
        pct(&mut to_durable, 0.5),
        pct(&mut to_durable, 0.99),
        pct(&mut to_signed, 0.5),
        pct(&mut to_signed, 0.99),
        to_signed.len(),
    );
    let _ = std::fs::remove_dir_all(&dir);
}
