//! The media relay's checks and state machines under arbitrary bytes. The first byte
//! picks the stream's rules (rtcp-mux, SRTP and its tag size, reduced-size RTCP, latching
//! rule, early-media policy); the rest is checked whole as RTP and as RTCP under several
//! rules, then fed to a `Stream` as the first packet and, cut into records
//! (`[control][length][bytes]`), as a sequence of datagrams from the peer or strangers
//! over a simulated clock, interleaved with call events and port-pool operations.
//! Any panic is a finding, and so is a broken invariant: an accepted RTP packet's parts
//! not adding up to its length, a latch that moves, anything accepted after a cut,
//! counters that do not add up, media toward a callee before the answer, a port pair
//! handed out twice.
#![no_main]
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use palisade_media::{
    check_rtcp, check_rtp, classify, CallMedia, CallState, Component, Direction, EarlyMedia,
    EndReason, Expected, LatchRule, PacketKind, PayloadTypes, PortPool, PortRange, RtcpRules,
    RtpRules, Srtp, Stream, StreamConfig, DEFAULT_MEDIA_TIMEOUT,
};

fn check_validators(bytes: &[u8], rules: &RtpRules, rtcp: &RtcpRules) {
    for mux in [false, true] {
        let r = RtpRules {
            rtcp_mux: mux,
            ..*rules
        };
        if let Ok(h) = check_rtp(bytes, &r) {
            let trailer = r.srtp.map_or(0, |s| s.trailer_len());
            assert_eq!(
                h.header_len + h.payload_len + usize::from(h.padding) + trailer,
                bytes.len()
            );
            assert!(r.payload_types.contains(h.payload_type));
            assert!(!mux || !(64..=95).contains(&h.payload_type));
            assert!(bytes.len() <= r.max_len && h.header_len >= 12);
            assert!(!mux || classify(bytes) == PacketKind::Rtp);
        }
    }
    for reduced_size in [false, true] {
        let r = RtcpRules {
            reduced_size,
            ..*rtcp
        };
        if let Ok(info) = check_rtcp(bytes, &r) {
            assert!((200..=207).contains(&info.first_type));
            assert!(reduced_size || matches!(info.first_type, 200 | 201));
            if r.srtp.is_none() {
                assert!(info.packets >= 1 && !info.encrypted);
                assert_eq!(bytes.len() % 4, 0);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let srtp = (flags & 2 != 0).then_some(Srtp {
        tag_len: [4, 10, 16, 0][usize::from(flags >> 5 & 3)],
        mki_len: flags >> 7,
    });
    let mut rtp_rules = RtpRules::new(PayloadTypes::new(&[0, 8, 96, 101, 72]));
    rtp_rules.rtcp_mux = flags & 1 != 0;
    rtp_rules.srtp = srtp;
    let rtcp_rules = RtcpRules {
        reduced_size: flags & 4 != 0,
        srtp,
        ..RtcpRules::default()
    };
    check_validators(rest, &rtp_rules, &rtcp_rules);

    let peer: SocketAddr = "198.51.100.7:4000".parse().unwrap();
    let sources: [SocketAddr; 4] = [
        peer,
        "198.51.100.7:4001".parse().unwrap(),
        "192.0.2.66:4000".parse().unwrap(),
        "203.0.113.5:61000".parse().unwrap(),
    ];
    let mut config = StreamConfig::new(
        rtp_rules,
        Expected {
            rtp: Some(peer),
            rtcp: None,
            signalling: Some("203.0.113.5".parse().unwrap()),
        },
    );
    config.rtcp = rtcp_rules;
    config.latch = if flags & 8 != 0 {
        LatchRule::Strict
    } else {
        LatchRule::Nat
    };
    config.rtp_budget = Some(palisade_media::Budget {
        packets_per_s: 100,
        bytes_per_s: 20_000,
        burst_ms: 500,
    });
    config.cut.strikes = 5;
    let early = if flags & 16 != 0 {
        EarlyMedia::CalleeToCaller
    } else {
        EarlyMedia::None
    };

    let t0 = Instant::now();
    let mut now = t0;
    let mut stream = Stream::new(config, t0);
    let mut call = CallMedia::new(early, DEFAULT_MEDIA_TIMEOUT);
    let mut pool = PortPool::new(PortRange {
        first: 40000,
        last: 40009,
    })
    .unwrap();
    let mut leases = Vec::new();
    let mut fed = 0u64;
    let mut toward_callee_before_answer = 0u64;
    let mut ever_answered = false;

    let mut feed = |stream: &mut Stream, call: &mut CallMedia, now, c, from, bytes: &[u8]| {
        let latched = stream.peer(c);
        let cut = stream.is_cut();
        let verdict = stream.receive(now, c, from, bytes);
        fed += 1;
        if let Ok(_) = verdict {
            assert!(!cut, "accepted after the cut");
            assert!(latched.is_none_or(|p| p == from), "latch moved");
            assert_eq!(stream.peer(c), Some(from));
            // the caller's packets, toward the callee
            if call.forward(now, Direction::CallerToCallee) && call.state() != CallState::Answered {
                toward_callee_before_answer += 1;
            }
        }
        let s = stream.stats();
        assert_eq!(s.rtp_packets + s.rtcp_packets + s.refused.total(), fed);
    };

    feed(&mut stream, &mut call, now, Component::Rtp, peer, rest);
    let mut input = rest;
    while let Some((&control, tail)) = input.split_first() {
        let Some((&len, tail)) = tail.split_first() else {
            break;
        };
        now += Duration::from_millis(u64::from(control >> 4) * 7);
        match control & 0x0f {
            // call and pool events
            0 => {
                call.answer(now);
                ever_answered = true;
            }
            1 => call.end(EndReason::Cancel),
            2 => {
                let _ = call.handle_timeout(now);
            }
            3 => {
                if let Ok(p) = pool.allocate() {
                    leases.push(p);
                }
            }
            4 => {
                if !leases.is_empty() {
                    let l = leases.swap_remove(usize::from(len) % leases.len());
                    pool.release(l).unwrap();
                }
            }
            // a datagram of the next `len` bytes
            c => {
                let n = usize::from(len).min(tail.len());
                let (packet, after) = tail.split_at(n);
                let from = sources[usize::from(c & 3)];
                let component = if c & 4 != 0 {
                    Component::Rtcp
                } else {
                    Component::Rtp
                };
                feed(&mut stream, &mut call, now, component, from, packet);
                input = after;
                continue;
            }
        }
        input = tail;
    }
    while stream.poll_event().is_some() {}
    assert_eq!(toward_callee_before_answer, 0);
    if !ever_answered {
        assert_eq!(call.forwarded(Direction::CallerToCallee), 0);
    }
    let ports: BTreeSet<u16> = leases.iter().map(|l| l.rtp()).collect();
    assert_eq!(ports.len(), leases.len(), "a pair handed out twice");
    assert_eq!(pool.available() + leases.len(), pool.capacity());
    if let Some(sample) = stream.sample() {
        assert!(sample.bytes().len() <= palisade_media::SAMPLE_LEN);
    }
});
