//! Fingerprints a SIPp REGISTER (with Authorization) and a SIPp INVITE (with
//! Proxy-Authorization and an SDP offer, whose habits are taken too) N times each, to
//! count the instructions per message with callgrind:
//!
//! ```text
//! export CARGO_TARGET_DIR=target
//! cargo build --release -p palisade-detect --example fingerprint_loop
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/fp0 target/release/examples/fingerprint_loop 0
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/fpN target/release/examples/fingerprint_loop 10000
//! callgrind_annotate /tmp/fpN | grep -E 'fingerprint|sdp_habits|PROGRAM TOTALS'
//! ```
//!
//! (the difference of the two totals over N is the cost of one round: one REGISTER
//! fingerprint, one INVITE fingerprint and one `sdp_habits`; `callgrind_annotate`
//! splits it per function, and `fingerprint_loop N register` or `N invite` runs only
//! that message)
use std::hint::black_box;

const REGISTER: &[u8] = b"REGISTER sip:127.0.0.1:5480 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5492;branch=z9hG4bK-12345-1-0\r\n\
From: <sip:user1@127.0.0.1>;tag=12345SIPpTag001\r\n\
To: <sip:user1@127.0.0.1>\r\n\
Call-ID: 1-12345@127.0.0.1\r\n\
CSeq: 2 REGISTER\r\n\
Contact: sip:user1@127.0.0.1:5492\r\n\
Max-Forwards: 70\r\n\
Expires: 3600\r\n\
User-Agent: SIPp\r\n\
Authorization: Digest username=\"user1\",realm=\"127.0.0.1\",uri=\"sip:127.0.0.1:5480\",nonce=\"4f2a9c1e7b3d5a6f8e0c2b4d6a8f1e3c5b7d9a0c2e4f6a8b0d2c4e6f\",response=\"0a1b2c3d4e5f60718293a4b5c6d7e8f9\",algorithm=MD5,cnonce=\"6b8b4567\",qop=auth,nc=00000001\r\n\
Content-Length: 0\r\n\r\n";

const INVITE: &[u8] = b"INVITE sip:user2@127.0.0.1:5480 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5492;branch=z9hG4bK-12345-1-2;rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:user1@127.0.0.1:5480>;tag=12345SIPpTag001\r\n\
To: <sip:user2@127.0.0.1:5480>\r\n\
Call-ID: 1-12345@127.0.0.1\r\n\
CSeq: 2 INVITE\r\n\
Contact: <sip:user1@127.0.0.1:5492;transport=udp>\r\n\
Allow: INVITE, ACK, BYE, CANCEL, OPTIONS\r\n\
Supported: replaces\r\n\
User-Agent: sipp-bench\r\n\
Subject: benchmark call\r\n\
Proxy-Authorization: Digest username=\"user1\",realm=\"127.0.0.1\",uri=\"sip:user2@127.0.0.1:5480\",nonce=\"4f2a9c1e7b3d5a6f8e0c2b4d6a8f1e3c5b7d9a0c2e4f6a8b0d2c4e6f\",response=\"0a1b2c3d4e5f60718293a4b5c6d7e8f9\",algorithm=MD5,cnonce=\"6b8b4567\",qop=auth,nc=00000001\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 259\r\n\r\n";

const SDP: &[u8] = b"v=0\r\n\
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
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let which = args.next().unwrap_or_default();
    let (register, invite) = match which.as_str() {
        "register" => (true, false),
        "invite" => (false, true),
        _ => (true, true),
    };
    let mut acc = 0u64;
    for _ in 0..n {
        if register {
            acc ^= palisade_detect::fingerprint(black_box(REGISTER));
        }
        if invite {
            acc ^= palisade_detect::fingerprint(black_box(INVITE));
            acc ^= palisade_detect::sdp_habits(black_box(SDP), b"alice");
        }
    }
    println!(
        "register {:016x} invite {:016x} sdp {:016x} ({acc:016x})",
        palisade_detect::fingerprint(REGISTER),
        palisade_detect::fingerprint(INVITE),
        palisade_detect::sdp_habits(SDP, b"alice")
    );
}
