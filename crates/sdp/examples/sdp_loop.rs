//! Parses (and, with `write`, canonically writes) the SIPp benchmark's offer N times: a
//! fixed workload for counting the instructions of the SDP parser with callgrind.
//!
//! ```text
//! cargo build --release -p palisade-sdp --example sdp_loop
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/sdp.0 target/release/examples/sdp_loop 0
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/sdp.N target/release/examples/sdp_loop 10000
//! ```
//!
//! The difference of the two totals over N is the cost of one parse (and write).
#![allow(clippy::print_stdout)]
use std::hint::black_box;

/// The offer of `bench/harness/scenarios/uac.xml` as SIPp sends it.
const OFFER: &[u8] = b"v=0\r\n\
o=user1 2890844526 2890844526 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0 8 9 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let write = args.next().as_deref() == Some("write");
    let limits = palisade_sdp::Limits::default();
    let mut out = String::with_capacity(1024);
    let mut ok = 0usize;
    for _ in 0..n {
        if let Ok(s) = palisade_sdp::parse(black_box(OFFER), &limits) {
            ok += 1;
            if write {
                out.clear();
                s.write_canonical(&mut out);
                black_box(&out);
            }
        }
    }
    println!("{ok} of {n} parsed");
}
