//! Parses each benchmark message N times (N from argv, default 1000): a fixed workload
//! for counting instructions of the parser with callgrind rather than a wall clock.
//!
//! ```text
//! export CARGO_TARGET_DIR=target
//! cargo build --release -p palisade-sip --example parse_loop
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.0 target/release/examples/parse_loop 0 invite_sdp
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.1k target/release/examples/parse_loop 1000 invite_sdp
//! callgrind_annotate --inclusive=no /tmp/cg.1k | head -40
//! ```
//!
//! The difference of the two totals ("Collected" in the annotate output), divided by N,
//! is the cost of one `parse_datagram` of that message. The second argument picks one
//! message (`invite_sdp`, `register_auth`, `ok200`); without it every message is parsed
//! N times. With a third argument `write`, each parse is followed by a canonical write.
//! The messages are those of `benches/parse.rs`.
#![allow(clippy::print_stdout)]
use std::hint::black_box;

use palisade_sip::{parse_datagram, Limits};

#[path = "../benches/common/messages.rs"]
mod messages;
use messages::{INVITE, OK200, REGISTER};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let only = args.next();
    let write = args.next().as_deref() == Some("write");
    let limits = Limits::default();
    let mut out = Vec::with_capacity(2048);
    let mut ok = 0usize;
    for (name, msg) in [
        ("invite_sdp", INVITE),
        ("register_auth", REGISTER),
        ("ok200", OK200),
    ] {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        for _ in 0..n {
            if let Ok(m) = parse_datagram(black_box(msg.as_bytes()), &limits) {
                ok += 1;
                if write {
                    out.clear();
                    m.write_to(&mut out);
                    black_box(&out);
                }
                black_box(&m);
            }
        }
    }
    println!("{ok} parsed");
}
