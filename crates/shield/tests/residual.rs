//! The residual channel (issue 13): for any offer the shield accepts, the sender-chosen
//! content it forwards stays within `shield.max_residual_bytes`, and the count is not a
//! figure that ignores what was chosen: every free value the generator put into an
//! accepted offer is at least counted.
// Helpers outside `#[test]` functions assert by panicking too (clippy.toml exempts only
// test functions and `#[cfg(test)]` modules from the workspace's panic-free lints).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]
use palisade_shield::{apply_measured, Policy};
use palisade_sip::{parse_datagram, Limits};
use proptest::prelude::*;

const ICE: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/";

fn ice_string(seed: &[u8]) -> String {
    seed.iter()
        .map(|b| char::from(ICE[usize::from(*b) % ICE.len()]))
        .collect()
}

#[derive(Debug, Clone)]
struct Offer {
    call_id: String,
    ufrag: String,
    pwd: String,
    candidates: Vec<(bool, u32, u16)>,
    ssrcs: Vec<u32>,
    cname: String,
    version: u64,
}

fn offer() -> impl Strategy<Value = Offer> {
    (
        proptest::collection::vec(any::<u8>(), 1..120),
        proptest::collection::vec(any::<u8>(), 4..40),
        proptest::collection::vec(any::<u8>(), 22..70),
        proptest::collection::vec((any::<bool>(), any::<u32>(), 1u16..), 0..16),
        proptest::collection::vec(any::<u32>(), 0..12),
        proptest::collection::vec(any::<u8>(), 1..60),
        any::<u64>(),
    )
        .prop_map(|(c, u, p, candidates, ssrcs, cname, version)| Offer {
            call_id: ice_string(&c).replace(['+', '/'], "-"),
            ufrag: ice_string(&u),
            pwd: ice_string(&p),
            candidates,
            ssrcs,
            cname: ice_string(&cname).replace(['+', '/'], "x"),
            version: version >> 1,
        })
}

fn message(o: &Offer) -> Vec<u8> {
    let mut sdp = format!(
        "v=0\r\no=- 1 {} IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n",
        o.version
    );
    for (i, (v6, prio, port)) in o.candidates.iter().enumerate() {
        let addr = if *v6 {
            format!("2001:db8::{:x}", i + 1)
        } else {
            format!("10.0.{}.{}", i / 250, i % 250 + 1)
        };
        sdp.push_str(&format!(
            "a=candidate:{i} 1 udp {prio} {addr} {port} typ host\r\n"
        ));
    }
    sdp.push_str(&format!(
        "a=ice-ufrag:{}\r\na=ice-pwd:{}\r\na=fingerprint:sha-256 {}\r\na=setup:actpass\r\na=mid:0\r\na=rtpmap:111 opus/48000/2\r\n",
        o.ufrag,
        o.pwd,
        ["AB"; 32].join(":")
    ));
    for s in &o.ssrcs {
        sdp.push_str(&format!("a=ssrc:{s} cname:{}\r\n", o.cname));
    }
    format!(
        "INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@example.com>;tag=1\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: {}\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@192.0.2.1:5060>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: {}\r\n\r\n{sdp}",
        o.call_id,
        sdp.len()
    )
    .into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn accepted_offers_stay_within_the_bound_and_count_what_was_chosen(o in offer()) {
        let policy = Policy::default();
        let raw = message(&o);
        let mut m = parse_datagram(&raw, &Limits::default()).unwrap().into_owned();
        match apply_measured(&policy, &mut m, &raw) {
            Ok(v) => {
                let n = v.residual.bytes();
                prop_assert!(n <= policy.max_residual_bytes, "{n} > bound");
                // Lower bound from what the generator chose and the shield kept:
                // ICE credentials at 6 bits a character, the Call-ID at 6.49, a 32-byte
                // fingerprint, 4 bytes of address per IPv4 and 16 per IPv6 candidate.
                let mut bits = (o.ufrag.len() + o.pwd.len()) as u64 * 6000
                    + o.call_id.len() as u64 * 6490
                    + 32 * 8000;
                for (v6, _, _) in &o.candidates {
                    bits += if *v6 { 128_000 } else { 32_000 };
                }
                let at_least = bits / 8000;
                prop_assert!(n >= at_least, "counted {n}, the chosen values alone carry {at_least}");
                let fields: u64 = v.residual.fields().map(|(_, b)| b).sum();
                prop_assert!(fields >= n, "per-field figures ({fields}) under the total ({n})");
            }
            Err(r) => {
                // Refusals here are the bounds: ICE credentials, or the residual cap.
                prop_assert_eq!(r.status, 488);
                prop_assert!(
                    r.reason.contains("shield.max_residual_bytes")
                        || r.reason.contains("ice-")
                        || r.reason.contains("sdp."),
                    "unexpected refusal: {}", r.reason
                );
            }
        }
    }
}

/// The real clients' offers in the corpus stay under the default bound (their figures
/// are in the README).
#[test]
fn real_offers_are_within_the_default_bound() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/offers");
    for name in [
        "real-sipp",
        "real-baresip",
        "real-linphone",
        "real-chrome-webrtc",
        "real-firefox-webrtc",
    ] {
        let raw = std::fs::read(format!("{dir}/{name}.sip")).unwrap();
        let mut m = parse_datagram(&raw, &Limits::default())
            .unwrap()
            .into_owned();
        let v = apply_measured(&Policy::default(), &mut m, &raw).unwrap();
        let n = v.residual.bytes();
        assert!(n > 50 && n <= 256, "{name}: {n}");
    }
}
