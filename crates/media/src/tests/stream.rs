use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::{cat, rr, rtp, sdes_cname};
use crate::{
    derive_budget, may_latch, Accepted, Budget, CodecInfo, Component, Expected, LatchRule,
    MediaKind, PayloadTypes, Reason, Refusal, RtpError, RtpRules, Stream, StreamConfig,
    StreamEvent, SAMPLE_LEN,
};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn config(expected: Expected) -> StreamConfig {
    StreamConfig::new(RtpRules::new(PayloadTypes::new(&[0, 101])), expected)
}

fn phone() -> Expected {
    Expected {
        rtp: Some(addr("198.51.100.7:4000")),
        rtcp: None,
        signalling: Some(ip("198.51.100.7")),
    }
}

const PCMU: usize = 160;

#[test]
fn latching_rules() {
    let nat = LatchRule::Nat;
    let strict = LatchRule::Strict;
    let public = Some(addr("198.51.100.7:4000"));
    let private = Some(addr("192.168.1.20:4000"));
    let sig = Some(ip("203.0.113.5"));
    // exact
    assert!(may_latch(strict, public, None, addr("198.51.100.7:4000")));
    assert!(may_latch(nat, private, sig, addr("192.168.1.20:4000")));
    // public address, port rewritten
    assert!(may_latch(nat, public, None, addr("198.51.100.7:5555")));
    assert!(!may_latch(strict, public, None, addr("198.51.100.7:5555")));
    // private address, media from the signalling source's NAT
    assert!(may_latch(nat, private, sig, addr("203.0.113.5:61000")));
    assert!(!may_latch(nat, private, sig, addr("203.0.113.6:61000")));
    // a private address alone is not "public, any port"
    assert!(!may_latch(nat, private, sig, addr("192.168.1.20:4001")));
    // strict: the signalling source only when nothing was signalled
    assert!(may_latch(strict, None, sig, addr("203.0.113.5:1")));
    assert!(!may_latch(strict, private, sig, addr("203.0.113.5:1")));
    assert!(!may_latch(strict, None, None, addr("203.0.113.5:1")));
    // nothing known: anyone (Nat only)
    assert!(may_latch(nat, private, None, addr("192.0.2.99:1")));
    assert!(may_latch(
        nat,
        Some(addr("0.0.0.0:0")),
        None,
        addr("192.0.2.99:1")
    ));
    // CGNAT and IPv6 unique-local addresses are not public
    assert!(!crate::is_public(ip("100.64.1.1")));
    assert!(!crate::is_public(ip("fd00::1")));
    assert!(!crate::is_public(ip("::ffff:10.0.0.1")));
    assert!(crate::is_public(ip("2001:db8::1")));
}

#[test]
fn the_first_valid_packet_latches_and_strangers_are_refused() {
    let t0 = Instant::now();
    let mut s = Stream::new(config(phone()), t0);
    let stranger = addr("192.0.2.66:4000");
    let peer = addr("198.51.100.7:4002");
    let p = rtp(0, 1, 9, PCMU);
    assert_eq!(
        s.receive(t0, Component::Rtp, stranger, &p),
        Err(Refusal::Source)
    );
    // a malformed packet from an eligible source does not latch
    assert!(s.receive(t0, Component::Rtp, peer, &p[..5]).is_err());
    assert_eq!(s.peer(Component::Rtp), None);
    assert!(matches!(
        s.receive(t0, Component::Rtp, peer, &p),
        Ok(Accepted::Rtp(h)) if h.ssrc == 9
    ));
    assert_eq!(
        s.poll_event(),
        Some(StreamEvent::Latched {
            component: Component::Rtp,
            peer
        })
    );
    assert_eq!(s.poll_event(), None);
    // once latched, the signalled address itself is a stranger
    let signalled = addr("198.51.100.7:4000");
    assert_eq!(
        s.receive(t0, Component::Rtp, signalled, &p),
        Err(Refusal::Source)
    );
    assert_eq!(s.stats().refused.get(Reason::Source), 2);
    assert_eq!(s.stats().refused.get(Reason::RtpTooShort), 1);
    assert_eq!((s.stats().rtp_packets, s.stats().rtp_bytes), (1, 172));
    assert_eq!(s.last_packet(), Some(t0));
    // a re-offer releases the latch
    s.set_expected(phone());
    assert!(s.receive(t0, Component::Rtp, signalled, &p).is_ok());
    assert_eq!(s.peer(Component::Rtp), Some(signalled));
}

#[test]
fn rtcp_on_its_own_port_latches_to_the_rtp_peers_address() {
    let t0 = Instant::now();
    let mut s = Stream::new(config(phone()), t0);
    let compound = cat(&[&rr(9), &sdes_cname(9, b"bob")]);
    // port + 1 by default
    assert!(s
        .receive(t0, Component::Rtcp, addr("198.51.100.7:4001"), &compound)
        .is_ok());
    let mut s = Stream::new(
        config(Expected {
            rtp: Some(addr("192.168.0.2:4000")),
            rtcp: None,
            signalling: Some(ip("203.0.113.5")),
        }),
        t0,
    );
    assert!(s
        .receive(
            t0,
            Component::Rtp,
            addr("203.0.113.5:30000"),
            &rtp(0, 1, 9, 160)
        )
        .is_ok());
    assert!(s
        .receive(t0, Component::Rtcp, addr("203.0.113.5:30001"), &compound)
        .is_ok());
    assert_eq!(s.peer(Component::Rtcp), Some(addr("203.0.113.5:30001")));
    assert_eq!(s.stats().rtcp_packets, 1);
    // RTP on the RTCP port is checked as RTCP
    assert!(matches!(
        s.receive(
            t0,
            Component::Rtcp,
            addr("203.0.113.5:30001"),
            &rtp(0, 2, 9, 160)
        ),
        Err(Refusal::Rtcp(_))
    ));
}

#[test]
fn rtcp_mux_demultiplexes_on_the_rtp_port() {
    let t0 = Instant::now();
    let mut c = config(phone());
    c.rtp.rtcp_mux = true;
    let mut s = Stream::new(c, t0);
    let peer = addr("198.51.100.7:4000");
    assert!(matches!(
        s.receive(t0, Component::Rtp, peer, &rtp(0, 1, 9, 160)),
        Ok(Accepted::Rtp(_))
    ));
    assert!(matches!(
        s.receive(
            t0,
            Component::Rtp,
            peer,
            &cat(&[&rr(9), &sdes_cname(9, b"x")])
        ),
        Ok(Accepted::Rtcp(_))
    ));
    assert_eq!(s.peer(Component::Rtcp), Some(peer));
    assert_eq!(
        s.receive(t0, Component::Rtp, peer, &[0, 1, 0, 0]),
        Err(Refusal::NotRtp(crate::PacketKind::Stun))
    );
    assert_eq!(s.stats().refused.get(Reason::NotRtp), 1);
    assert_eq!(
        s.receive(t0, Component::Rtp, peer, &[0x40, 0, 0, 0]),
        Err(Refusal::NotRtp(crate::PacketKind::Other))
    );
    assert_eq!(s.stats().refused.get(Reason::NotRtp), 2);
}

#[test]
fn stun_keepalives_are_refused_without_a_strike() {
    let t0 = Instant::now();
    let mut c = config(phone());
    c.cut.strikes = 1;
    let mut s = Stream::new(c, t0);
    let peer = addr("198.51.100.7:4000");
    // an RFC 5389 binding request on the RTP and RTCP ports of a stream without mux
    let stun = [
        0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
    ];
    for _ in 0..10 {
        assert_eq!(
            s.receive(t0, Component::Rtp, peer, &stun),
            Err(Refusal::NotRtp(crate::PacketKind::Stun))
        );
        assert!(s
            .receive(t0, Component::Rtcp, addr("198.51.100.7:4001"), &stun)
            .is_err());
    }
    assert!(!s.is_cut() && s.sample().is_none());
    assert!(s
        .receive(t0, Component::Rtp, peer, &rtp(0, 1, 9, 160))
        .is_ok());
}

#[test]
fn ssrc_changes_are_limited_per_minute() {
    let t0 = Instant::now();
    let mut s = Stream::new(config(phone()), t0);
    let peer = addr("198.51.100.7:4000");
    let mut send = |at: Instant, ssrc| s.receive(at, Component::Rtp, peer, &rtp(0, 1, ssrc, 160));
    assert!(send(t0, 1).is_ok());
    for ssrc in 2..=4 {
        assert!(send(t0, ssrc).is_ok(), "change to {ssrc} allowed");
    }
    assert_eq!(
        send(t0 + Duration::from_secs(10), 5),
        Err(Refusal::SsrcChange {
            current: 4,
            offered: 5
        })
    );
    assert!(send(t0 + Duration::from_secs(10), 4).is_ok());
    assert!(send(t0 + Duration::from_secs(61), 5).is_ok());
    assert_eq!(s.ssrc(), Some(5));
    assert_eq!(s.stats().ssrc_changes, 4);
    assert_eq!(s.stats().refused.get(Reason::SsrcChange), 1);
}

#[test]
fn budgets_drop_floods_and_refill_with_time() {
    let t0 = Instant::now();
    let mut c = config(phone());
    c.rtp_budget = Some(Budget {
        packets_per_s: 50,
        bytes_per_s: 100_000,
        burst_ms: 100,
    });
    let mut s = Stream::new(c, t0);
    let peer = addr("198.51.100.7:4000");
    let p = rtp(0, 1, 9, 160);
    // a bucket of 5 packets
    for _ in 0..5 {
        assert!(s.receive(t0, Component::Rtp, peer, &p).is_ok());
    }
    assert_eq!(
        s.receive(t0, Component::Rtp, peer, &p),
        Err(Refusal::PacketRate)
    );
    // 20 ms is one packet's worth at 50/s
    let t1 = t0 + Duration::from_millis(20);
    assert!(s.receive(t1, Component::Rtp, peer, &p).is_ok());
    assert_eq!(
        s.receive(t1, Component::Rtp, peer, &p),
        Err(Refusal::PacketRate)
    );
    // bytes: 10 kB bucket; a 1400-byte packet stream runs dry first
    let mut c = config(phone());
    c.rtp_budget = Some(Budget {
        packets_per_s: 1000,
        bytes_per_s: 100_000,
        burst_ms: 100,
    });
    let mut s = Stream::new(c, t0);
    let big = rtp(0, 1, 9, 1388);
    let accepted = (0..20)
        .filter(|_| s.receive(t0, Component::Rtp, peer, &big).is_ok())
        .count();
    assert_eq!(accepted, 7);
    assert_eq!(s.stats().refused.get(Reason::Bandwidth), 13);
    // over-budget refusals never cut
    assert!(!s.is_cut());
}

#[test]
fn a_stream_that_keeps_sending_malformed_packets_is_cut() {
    let t0 = Instant::now();
    let mut s = Stream::new(config(phone()), t0);
    let peer = addr("198.51.100.7:4000");
    assert!(s
        .receive(t0, Component::Rtp, peer, &rtp(0, 1, 9, 160))
        .is_ok());
    s.poll_event();
    let mut bad = rtp(0, 2, 9, 300);
    bad[0] = 0x40; // version 1
                   // 50 strikes spread over two windows do not cut
    for i in 0..30u64 {
        let at = t0 + Duration::from_millis(100 * i);
        assert!(s.receive(at, Component::Rtp, peer, &bad).is_err());
    }
    let t1 = t0 + Duration::from_secs(11);
    for i in 0..50u64 {
        let at = t1 + Duration::from_millis(10 * i);
        assert!(s.receive(at, Component::Rtp, peer, &bad).is_err());
    }
    assert!(!s.is_cut());
    assert!(s
        .receive(t1, Component::Rtp, peer, &rtp(0, 3, 9, 160))
        .is_ok());
    // the 51st in the window cuts
    assert_eq!(
        s.receive(t1, Component::Rtp, peer, &bad),
        Err(Refusal::Rtp(RtpError::BadVersion(1)))
    );
    assert!(s.is_cut());
    assert_eq!(s.poll_event(), Some(StreamEvent::Cut));
    assert_eq!(s.poll_event(), None);
    assert_eq!(
        s.receive(t1, Component::Rtp, peer, &rtp(0, 4, 9, 160)),
        Err(Refusal::Cut)
    );
    let sample = s.sample().unwrap();
    assert_eq!(sample.len, 312);
    assert_eq!(sample.bytes(), &bad[..SAMPLE_LEN]);
    assert_eq!(sample.refusal, Refusal::Rtp(RtpError::BadVersion(1)));
    assert_eq!((sample.from, sample.at), (peer, t0));
    assert_eq!(s.stats().refused.get(Reason::RtpVersion), 81);
    assert_eq!(s.stats().refused.get(Reason::Cut), 1);
    assert_eq!(s.stats().refused.total(), 82);
    let nonzero: Vec<_> = s.stats().refused.nonzero().collect();
    assert_eq!(nonzero, [(Reason::Cut, 1), (Reason::RtpVersion, 81)]);
}

#[test]
fn strangers_cannot_get_a_stream_cut() {
    let t0 = Instant::now();
    let mut s = Stream::new(config(phone()), t0);
    for _ in 0..1000 {
        let _ = s.receive(t0, Component::Rtp, addr("192.0.2.1:9"), &[0x40; 20]);
    }
    assert!(!s.is_cut());
    assert!(s.sample().is_none());
    assert_eq!(s.stats().refused.get(Reason::Source), 1000);
}

#[test]
fn derived_budgets_carry_every_legitimate_stream() {
    let pcmu = CodecInfo {
        payload_type: 0,
        name: "PCMU",
        clock_rate: 8000,
        channels: 1,
    };
    let dtmf = CodecInfo {
        payload_type: 101,
        name: "telephone-event",
        clock_rate: 8000,
        channels: 1,
    };
    let b = derive_budget(MediaKind::Audio, &[pcmu, dtmf], Some(20), None);
    // 50 packets/s of 172 bytes = 8600 B/s; the budget is far above, not absurdly so
    assert!(b.packets_per_s >= 100 && b.packets_per_s <= 400, "{b:?}");
    assert!(b.bytes_per_s >= 17_200 && b.bytes_per_s <= 100_000, "{b:?}");
    let opus = CodecInfo {
        payload_type: 111,
        name: "opus",
        clock_rate: 48000,
        channels: 2,
    };
    let o = derive_budget(MediaKind::Audio, &[opus], None, None);
    assert!(o.bytes_per_s >= 2 * 510_000 / 8, "{o:?}");
    let v = derive_budget(MediaKind::Video, &[], None, Some(2000));
    assert!(
        v.bytes_per_s >= 2 * 250_000 && v.packets_per_s >= 1000,
        "{v:?}"
    );
    let unknown = CodecInfo {
        name: "X-NEW",
        ..pcmu
    };
    assert!(derive_budget(MediaKind::Audio, &[unknown], Some(20), None).bytes_per_s >= 64_000);

    // a 20 ms PCMU stream with jitter bursts passes its derived budget untouched
    let t0 = Instant::now();
    let mut c = config(phone());
    c.rtp_budget = Some(b);
    let mut s = Stream::new(c, t0);
    let peer = addr("198.51.100.7:4000");
    for i in 0..3000u64 {
        // every 50th packet arrives with the 10 before it, bunched
        let at = t0 + Duration::from_millis(20 * i - if i % 50 < 10 { 20 * (i % 50) } else { 0 });
        let p = rtp(0, u16::try_from(i % 65536).unwrap(), 9, 160);
        assert!(
            s.receive(at, Component::Rtp, peer, &p).is_ok(),
            "packet {i}"
        );
    }
}
