//! Feeds the detector N registrations of new accounts from one address (SIPp's
//! REGISTER with credentials, fingerprinted as the core does it), 50 a second, and
//! writes what it outputs to a records database in a temporary directory, once per
//! simulated second as the server's detection thread does; then 40 idle seconds of
//! ticks (as the bench's tail) and the shutdown flush. To count the instructions per
//! registration with callgrind:
//!
//! ```text
//! cargo build --release -p palisade-store --example registration_loop
//! valgrind --tool=callgrind target/release/examples/registration_loop 1300
//! valgrind --tool=callgrind target/release/examples/registration_loop 300
//! ```
//!
//! (the difference of the totals over 1,000 is the cost per registration: fingerprint,
//! detector, records). With a second argument `digest`, it also prints a digest of
//! every output and of the rows read back, to compare two versions' results.
use palisade_detect::{fingerprint, Config, Detector, Millis, Observation, Output, Registration};
use palisade_store::SqliteStore;

fn register(user: &str, k: u64) -> Vec<u8> {
    format!(
        "REGISTER sip:127.0.0.1:5480 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5492;branch=z9hG4bK-4711-{k}-2;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@127.0.0.1:5480>;tag=4711R{k}\r\n\
         To: <sip:{user}@127.0.0.1:5480>\r\n\
         Call-ID: {k}-4711@127.0.0.1\r\n\
         CSeq: 2 REGISTER\r\n\
         Contact: <sip:{user}@127.0.0.1:5492;transport=udp>\r\n\
         Authorization: Digest username=\"{user}\",realm=\"127.0.0.1\",uri=\"sip:127.0.0.1:5480\",nonce=\"6a1f0c2b9e8d7f3a5c4b2e1d0f9a8b7c\",response=\"0123456789abcdef0123456789abcdef\",algorithm=MD5\r\n\
         Expires: 3600\r\n\
         User-Agent: sipp-bench\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// A batch of outputs as text, in an order of its own: the detector's tables iterate in
/// a per-process order, so that findings written at the same tick may come in either.
fn batch_text(outs: &[Output]) -> Vec<String> {
    let mut v: Vec<String> = outs.iter().map(|o| format!("{o:?}")).collect();
    v.sort();
    v
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1300);
    let dir = std::env::temp_dir().join(format!("palisade-regloop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let Ok(mut store) = SqliteStore::open_records(&dir) else {
        std::process::exit(2);
    };
    let t0: Millis = 1_800_000_000_000;
    let mut d = Detector::new(Config::default(), (1, 1, 1));
    d.set_accounts((0..n).map(|i| (format!("user{i}"), t0 - 60_000)));
    let Ok(source) = "127.0.0.1:5492".parse::<std::net::SocketAddr>() else {
        std::process::exit(2);
    };
    let digest = std::env::args().nth(2).as_deref() == Some("digest");
    let mut seen = std::collections::hash_map::DefaultHasher::new();
    let mut outs: Vec<Output> = Vec::new();
    let (mut written, mut fps) = (0usize, 0u64);
    let mut last_tick = t0;
    let mut step = |d: &mut Detector, at: Millis, outs: &mut Vec<Output>| {
        if at - last_tick >= 1000 {
            d.tick(at);
            last_tick = at;
        }
        outs.extend(d.drain());
        if at % 1000 == 0 && !outs.is_empty() {
            written += outs.len();
            if digest {
                std::hash::Hash::hash(&batch_text(outs), &mut seen);
            }
            if store.apply_outputs(outs).is_err() {
                std::process::exit(3);
            }
            outs.clear();
        }
    };
    // 50 a second: one every 20 ms
    for k in 0..n {
        let at = t0 + k as i64 * 20;
        let account = format!("user{k}");
        let fp = fingerprint(&register(&account, k));
        fps = fps.wrapping_add(fp);
        d.observe(Observation::Registered(Registration {
            at,
            account,
            source,
            transport: "udp",
            user_agent: "sipp-bench".into(),
            fingerprint: fp,
        }));
        step(&mut d, at, &mut outs);
    }
    // the tail: idle seconds
    let end = t0 + n as i64 * 20;
    for s in 1..=40 {
        step(&mut d, end + s * 1000 - end % 1000, &mut outs);
    }
    d.flush_in_progress();
    outs.extend(d.drain());
    written += outs.len();
    if store.apply_outputs(&outs).is_err() {
        std::process::exit(3);
    }
    if digest {
        std::hash::Hash::hash(&batch_text(&outs), &mut seen);
        let rows = (
            store.registrations_since(0).map_err(|e| e.to_string()),
            store.findings(0).map_err(|e| e.to_string()),
        );
        std::hash::Hash::hash(&format!("{rows:?}"), &mut seen);
        println!("digest {:016x}", std::hash::Hasher::finish(&seen));
    }
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    println!("{n} registrations, {written} outputs written, fingerprints {fps:016x}");
}
