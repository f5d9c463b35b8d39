//! Feeds the detector N calls (start, ringing, answer or cancel, BYE) from 10,000
//! accounts, half of them new, to count its instructions per call with callgrind:
//!
//! ```text
//! cargo build --release -p palisade-detect --example detector_loop
//! valgrind --tool=callgrind target/release/examples/detector_loop 20000
//! valgrind --tool=callgrind target/release/examples/detector_loop 0
//! ```
//!
//! (the difference of the totals over N is the detector's cost per call, off the core;
//! a second argument K makes the calls come from the first K accounts only, e.g. 1:
//! one trunk that places every call; a third, `sweep`, makes every call a ring-and-cancel
//! of 300 ms, so that the callers are found, e.g. `detector_loop 8000 1 sweep`: one
//! account found sweeping and going on, as an alert lets it)
use palisade_detect::*;

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let callers: u64 = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .filter(|&k| k > 0)
        .unwrap_or(10_000);
    let t0: Millis = 1_800_000_000_000;
    let sweep = std::env::args().nth(3).as_deref() == Some("sweep");
    let mut d = Detector::new(Config::default(), (1, 1, 1));
    d.set_accounts((0..10_000).map(|i| (format!("u{i}"), if i % 2 == 0 { 0 } else { t0 })));
    let source: std::net::SocketAddr = "192.0.2.1:5060".parse().unwrap_or_else(|_| {
        std::process::exit(2);
    });
    let mut outputs = 0usize;
    for k in 0..n {
        let at = t0 + k as i64 * 10;
        d.observe(Observation::CallStart(CallStart {
            key: k,
            at,
            call_id: format!("c{k}"),
            caller: format!("u{}", k % callers),
            callee: format!("u{}", k.wrapping_mul(7919) % 10_000),
            source,
            transport: "udp",
            user_agent: "baresip v1.0.0".into(),
            fingerprint: 1,
            sdp: 2,
            blocked: false,
            message: false,
        }));
        d.observe(Observation::CallStatus {
            key: k,
            at: at + 100,
            status: 180,
        });
        if k % 10 < 7 && !sweep {
            d.observe(Observation::CallStatus {
                key: k,
                at: at + 2000,
                status: 200,
            });
            d.observe(Observation::CallEnd {
                call_id: format!("c{k}"),
                at: at + 60_000,
            });
        } else {
            d.observe(Observation::CallStatus {
                key: k,
                at: at + if sweep { 400 } else { 5000 },
                status: 487,
            });
        }
        if k % 512 == 0 {
            d.tick(at);
            outputs += d.drain().count();
        }
    }
    outputs += d.drain().count();
    println!(
        "{n} calls, {outputs} outputs, {} assessments",
        d.assessments
    );
}
