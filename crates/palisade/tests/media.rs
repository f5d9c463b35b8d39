//! The media relay against the real binary: audio both ways between a caller written
//! here and SIPp as the callee (its RTP echo), crafted RTP and RTCP dropped while the
//! call goes on, nothing delivered to a callee whose call was cancelled, 503 when the
//! relay's ports run out, and a stream of malformed packets cut, kept as evidence and
//! found by the detectors (the caller's account blocked, its callee a target).
// Helpers outside `#[test]` functions assert by panicking too (clippy.toml exempts only
// test functions and `#[cfg(test)]` modules from the workspace's panic-free lints).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]
mod common;
#[allow(dead_code)] // (the campaign tests use the rest)
#[path = "campaign/sim.rs"]
mod sim;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::*;
use sim::{Answer, Bank, Outcome, Ua};

/// An RTP packet: version 2, payload type `pt`, 160 bytes of payload.
fn rtp(seq: u16, pt: u8) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    p.extend((0..160u32).map(|i| (i as u8) ^ (seq as u8)));
    p
}

/// Packets the relay must refuse: each with why.
fn crafted() -> Vec<(&'static str, Vec<u8>)> {
    let mut bad_version = rtp(9000, 0);
    bad_version[0] = 0x40;
    let mut csrc = rtp(9001, 0);
    csrc[0] = 0x8f; // 15 CSRCs announced, 160 bytes of payload... fits; make it short
    csrc.truncate(20);
    let wrong_pt = rtp(9002, 96);
    let mut ext = rtp(9003, 0);
    ext[0] = 0x90; // extension bit
    ext[12..16].copy_from_slice(&[0xbe, 0xde, 0xff, 0xff]); // 65535 words: overruns
                                                            // RTCP on the RTP port without rtcp-mux is not RTP either: an RR with a bad length
    let rtcp_bad_len = vec![0x81, 201, 0x00, 0x20, 0, 0, 0, 1];
    vec![
        ("version 1", bad_version),
        ("CSRC overrun", csrc),
        ("payload type not negotiated", wrong_pt),
        ("extension overrun", ext),
        ("RTCP with a bad length", rtcp_bad_len),
    ]
}

/// RTCP datagrams the relay must refuse at an RTCP port, with the reason it counts.
fn crafted_rtcp() -> Vec<(&'static str, Vec<u8>)> {
    // an RR (one word of header, the sender's SSRC) whose length says 8 more words
    let bad_length = vec![0x80, 201, 0x00, 0x08, 0, 0, 0, 1];
    // a packet type nobody defined (210), as the first and only packet
    let unknown = vec![0x80, 210, 0x00, 0x01, 0, 0, 0, 1];
    // an RR announcing 31 report blocks in a one-word body
    let reports = vec![0x9f, 201, 0x00, 0x01, 0, 0, 0, 1];
    vec![
        ("rtcp-length", bad_length),
        ("rtcp-unknown-type", unknown),
        ("rtcp-report-blocks", reports),
    ]
}

/// A counter of `/metrics`: the value on the first line starting with `series`.
fn metric(admin: &str, series: &str) -> u64 {
    let (_, body) = http(admin, "GET", "/metrics", None, None);
    body.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

fn collect(sock: &UdpSocket, within: Duration) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            got.push(buf[..n].to_vec());
        }
    }
    got
}

#[test]
fn audio_flows_both_ways_through_the_relay_and_crafted_packets_do_not() {
    let (s, admin) = start_with_admin("media-echo", &["alice", "bob"], "");
    let uas_port = ports();
    let media_port = ports();
    let (ok, trace) = sipp_register(&s, "reg", "bob", uas_port, ports(), "register.xml", &[]);
    assert!(ok, "REGISTER: {trace}");
    let mp = media_port.to_string();
    let uas = sipp_uas(&s, "uas", "uas.xml", uas_port, &["-rtp_echo", "-mp", &mp]);
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    let my_port = media.local_addr().unwrap().port();
    let caller = Ua::new(
        "127.0.0.1",
        "alice",
        format!("127.0.0.1:{}", s.port).parse().unwrap(),
        "SimPhone/1.0",
    );
    let mut relay: Option<SocketAddr> = None;
    let mut echoed = Vec::new();
    let mut sent = Vec::new();
    let outcome = caller.call_with(
        "bob",
        Duration::from_secs(5),
        Some(my_port),
        |_| {},
        |answer| {
            relay = answer;
            let Some(to) = answer else { return };
            let bad = crafted();
            for seq in 0..50u16 {
                let p = rtp(seq, 0);
                media.send_to(&p, to).unwrap();
                sent.push(p);
                if let Some((_, b)) = bad.get(usize::from(seq / 10)) {
                    if seq % 10 == 5 {
                        media.send_to(b, to).unwrap();
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            // crafted RTCP at the relay's RTCP port (the offer has no rtcp-mux)
            let rtcp_to = SocketAddr::new(to.ip(), to.port() + 1);
            let rtcp_sock = UdpSocket::bind("127.0.0.1:0");
            if let Ok(r) = &rtcp_sock {
                for (_, b) in crafted_rtcp() {
                    r.send_to(&b, rtcp_to).unwrap();
                }
            }
            echoed = collect(&media, Duration::from_millis(500));
        },
    );
    assert_eq!(outcome, Outcome::Answered, "{}", s.log_text());
    let relay = relay.expect("the answer names a media address");
    assert_eq!(relay.ip().to_string(), "127.0.0.1");
    assert!(
        (30_000..40_000).contains(&relay.port()),
        "the caller is answered with a relay port, not the callee's {media_port}: {relay}"
    );
    let (uas_ok, uas_trace) = uas.finish();
    assert!(uas_ok, "{uas_trace}");
    // the callee was offered a relay port too, not the caller's own
    let offered = uas_trace
        .lines()
        .find(|l| l.starts_with("m=audio "))
        .expect("the INVITE's offer");
    assert!(!offered.contains(&format!(" {my_port} ")), "{offered}");
    // audio both ways: what the callee got it echoed, and it came back
    let valid: Vec<&Vec<u8>> = echoed.iter().filter(|p| sent.contains(p)).collect();
    assert!(
        valid.len() >= 48,
        "{} of 50 packets came back through the relay and SIPp's echo",
        valid.len()
    );
    for (why, b) in crafted() {
        assert!(
            !echoed.contains(&b),
            "the relay forwarded a crafted packet: {why}"
        );
    }
    assert_eq!(echoed.len(), valid.len(), "only what was sent came back");
    // each refusal counted by its reason
    for reason in [
        "rtp-version",
        "rtp-csrc-overrun",
        "rtp-payload-type",
        "rtp-extension-overrun",
        "rtcp-length",
        "rtcp-unknown-type",
        "rtcp-report-blocks",
    ] {
        let n = metric(
            &admin,
            &format!("palisade_media_refused_total{{reason=\"{reason}\"}}"),
        );
        assert!(n >= 1, "{reason} counted: {n}");
    }
    assert!(metric(&admin, "palisade_media_packets_total{result=\"forwarded\"}") >= 96);
    // after the BYE the relay's ports are closed: nothing goes through
    std::thread::sleep(Duration::from_millis(200));
    for seq in 100..110u16 {
        let _ = media.send_to(&rtp(seq, 0), relay);
    }
    assert!(collect(&media, Duration::from_millis(400)).is_empty());
}

#[test]
fn a_cancelled_call_delivers_no_media_to_the_callee() {
    let s = Server::start("media-cancel", &["alice", "bob"], &[]);
    let uas_port = ports();
    let (ok, trace) = sipp_register(&s, "reg", "bob", uas_port, ports(), "register.xml", &[]);
    assert!(ok, "REGISTER: {trace}");
    // the callee's media address (in its 183): a socket of this test
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sink_port = sink.local_addr().unwrap().port().to_string();
    let uas = sipp_uas(
        &s,
        "uas",
        "uas_early.xml",
        uas_port,
        &["-key", "media_sink", &sink_port],
    );
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    let caller = Ua::new(
        "127.0.0.1",
        "alice",
        format!("127.0.0.1:{}", s.port).parse().unwrap(),
        "SimPhone/1.0",
    );
    let mut early_relay = None;
    let outcome = caller.call_with(
        "bob",
        Duration::from_millis(1500),
        Some(media.local_addr().unwrap().port()),
        |early| {
            early_relay = early;
            // the caller streams while it rings
            if let Some(to) = early {
                for seq in 0..30u16 {
                    media.send_to(&rtp(seq, 0), to).unwrap();
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        },
        |_| {},
    );
    assert_eq!(outcome, Outcome::Cancelled);
    let to = early_relay.expect("the 183's SDP names the relay");
    assert!((30_000..40_000).contains(&to.port()), "{to}");
    let (uas_ok, uas_trace) = uas.finish();
    assert!(uas_ok, "{uas_trace}");
    let got = collect(&sink, Duration::from_millis(300));
    assert!(got.is_empty(), "the callee received {} packets", got.len());
    assert!(collect(&media, Duration::from_millis(100)).is_empty());
}

#[test]
fn the_relay_answers_503_when_its_ports_run_out() {
    let cfg = tempdir("media-ports").join("media.toml");
    // one call's worth: two pairs (caller side, callee side)
    let first = 30_000 + (std::process::id() % 400) as u16 * 20;
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    std::fs::write(
        &cfg,
        format!("[media]\nports = \"{first}-{}\"\n", first + 3),
    )
    .unwrap();
    let s = Server::start(
        "media-ports",
        &["alice", "bob", "carol"],
        &["--config", cfg.to_str().unwrap()],
    );
    let server: SocketAddr = format!("127.0.0.1:{}", s.port).parse().unwrap();
    let bank = Bank::start("127.0.0.1", |_| Answer::Never);
    let r = Ua::new("127.0.0.1", "bob", server, "SimPhone/1.0");
    assert_eq!(r.register_as("bob", bank.addr, 3600), 200);
    // a first call rings (holding the two pairs) while a second is tried
    let ringing = std::thread::spawn(move || {
        let a = Ua::new("127.0.0.1", "alice", server, "SimPhone/1.0");
        a.call("bob", Duration::from_millis(2500), Duration::ZERO)
    });
    std::thread::sleep(Duration::from_millis(800));
    let c = Ua::new("127.0.0.1", "carol", server, "SimPhone/1.0");
    assert_eq!(
        c.call("bob", Duration::from_millis(500), Duration::ZERO),
        Outcome::Refused(503),
        "{}",
        s.log_text()
    );
    assert_eq!(ringing.join().unwrap(), Outcome::Cancelled);
    // once it ended, its ports came back: the next call rings again
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        c.call("bob", Duration::from_millis(400), Duration::ZERO),
        Outcome::Cancelled
    );
}

/// The JSON a `palisade report ...` command printed.
fn report(dir: &std::path::Path, what: &str) -> serde_json::Value {
    let o = cli(dir, &["report", what, "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn a_stream_that_keeps_sending_malformed_packets_is_cut_with_evidence_and_found() {
    let (s, admin) = start_with_admin("media-cut", &["alice", "bob"], "");
    let uas_port = ports();
    let media_port = ports();
    let (ok, trace) = sipp_register(&s, "reg", "bob", uas_port, ports(), "register.xml", &[]);
    assert!(ok, "REGISTER: {trace}");
    let mp = media_port.to_string();
    let uas = sipp_uas(&s, "uas", "uas.xml", uas_port, &["-rtp_echo", "-mp", &mp]);
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    let caller = Ua::new(
        "127.0.0.1",
        "alice",
        format!("127.0.0.1:{}", s.port).parse().unwrap(),
        "SimPhone/1.0",
    );
    let mut before = 0;
    let mut after = 0;
    let outcome = caller.call_with(
        "bob",
        Duration::from_secs(5),
        Some(media.local_addr().unwrap().port()),
        |_| {},
        |answer| {
            let Some(to) = answer else { return };
            // at once after the 200 OK: the relay took the answer before these (its
            // anchor woke it when the 200 OK went through)
            for seq in 0..5u16 {
                media.send_to(&rtp(seq, 0), to).unwrap();
            }
            before = collect(&media, Duration::from_millis(300)).len();
            // a payload type never negotiated, sixty times: a strike each
            for seq in 5..65u16 {
                media.send_to(&rtp(seq, 97), to).unwrap();
            }
            std::thread::sleep(Duration::from_millis(200));
            for seq in 65..75u16 {
                media.send_to(&rtp(seq, 0), to).unwrap();
            }
            after = collect(&media, Duration::from_millis(300)).len();
        },
    );
    assert_eq!(outcome, Outcome::Answered);
    let _ = uas.finish();
    assert_eq!(
        before, 5,
        "the valid packets sent at once after the answer went through before the cut"
    );
    assert_eq!(
        metric(&admin, "palisade_media_packets_total{result=\"held\"}"),
        0,
        "no packet after the answer was held as if it had not come"
    );
    assert_eq!(after, 0, "nothing goes through a cut stream");
    assert_eq!(metric(&admin, "palisade_media_streams_cut_total"), 1);
    // the evidence entry, and the sample in the blob store under its SHA-256
    let dir = s.dir.clone();
    let entry = || {
        let o = cli(&dir, &["evidence", "entries"]);
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .find(|l| l.contains("\"kind\":\"media-cut\""))
            .map(str::to_string)
    };
    assert!(wait_until(Duration::from_secs(5), || entry().is_some()));
    let e = entry().unwrap();
    assert!(
        e.contains("\"reason\":\"rtp-payload-type\"") && e.contains("\"message_kept\":true"),
        "{e}"
    );
    let sha = e.split("\"message_sha256\":\"").nth(1).unwrap()[..64].to_string();
    let blob = std::fs::read(dir.join("evidence/blobs").join(&sha)).unwrap();
    assert_eq!(
        blob,
        rtp(5, 97)[..blob.len()].to_vec(),
        "the first offending packet"
    );
    // a finding about the caller's account (it authenticated; the stream was its own),
    // resting on the call and naming the entry's sample; the account is blocked
    let call_id = e.split("\"call_id\":\"").nth(1).unwrap();
    let call_id = call_id[..call_id.find('"').unwrap()].to_string();
    let finding = || {
        report(&dir, "findings")["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["kind"] == "media-abuse")
            .cloned()
    };
    assert!(
        wait_until(Duration::from_secs(5), || finding().is_some()),
        "no media-abuse finding: {}",
        report(&dir, "findings")
    );
    let f = finding().unwrap();
    assert_eq!(f["subject"]["account"], "alice", "{f}");
    assert_eq!(f["action"], "block", "{f}");
    let records = f["records"].to_string();
    assert!(
        records.contains(&format!("call {call_id} (caller side)"))
            && records.contains(&sha)
            && records.contains("rtp-payload-type")
            && records.contains("\"call\":"),
        "{f}"
    );
    let blocks = String::from_utf8_lossy(&cli(&dir, &["block", "list"]).stdout).into_owned();
    assert!(blocks.contains("alice"), "{blocks}");
    // bob, whose phone the malformed stream was aimed at, is a target (once the
    // answered call's record is written, at its BYE)
    let bob_targeted = || {
        report(&dir, "targets")["targets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| {
                t["user"] == "bob"
                    && t["findings"]
                        .to_string()
                        .contains(f["id"].as_str().unwrap())
            })
    };
    assert!(
        wait_until(Duration::from_secs(5), bob_targeted),
        "{}",
        report(&dir, "targets")
    );
}
