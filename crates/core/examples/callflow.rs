//! Calls through the sans-IO core, for counting instructions per call with the shield on
//! and off (deterministic, unlike wall-clock figures on a shared machine):
//!
//! ```sh
//! cargo build --release -p palisade-core --example callflow
//! valgrind --tool=callgrind target/release/examples/callflow on 2000
//! valgrind --tool=callgrind target/release/examples/callflow off 2000
//! ```
//!
//! Each call is what the SIPp harness sends (`../shared/bench`): INVITE with SIPp's offer
//! from the caller, 100 Trying, 180 and 200 with SIPp's answer from the callee, ACK and
//! BYE from the caller, 200 to the BYE; digest authentication off (the shield does not
//! touch it). The Endpoint's own work per call is what is measured: parsing, the shield,
//! transactions, forwarding and writing; sockets are not involved.
// A example, not library code: it may stop on a failed setup by panicking, and
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use palisade_core::Credential;
use palisade_core::{Binding, CoreConfig, Endpoint, Peer, Transport, User};

const SDP: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

fn peer(port: u16) -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        conn: None,
    }
}

/// The value of the first header `name` in a message the core sent.
fn header<'a>(msg: &'a str, name: &str) -> &'a str {
    msg.split("\r\n")
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": ")))
        .unwrap_or("")
}

/// The header lines a response copies from the request it answers.
fn copied(req: &str) -> String {
    req.split("\r\n")
        .filter(|l| {
            l.starts_with("Via:")
                || l.starts_with("From:")
                || l.starts_with("Call-ID:")
                || l.starts_with("CSeq:")
                || l.starts_with("Record-Route:")
        })
        .map(|l| format!("{l}\r\n"))
        .collect()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let shield = args.next().as_deref() != Some("off");
    let calls: u32 = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let mut now = Instant::now();
    let mut cfg = CoreConfig {
        domain: "127.0.0.1".into(),
        local: vec![(Transport::Udp, "127.0.0.1:5080".parse().unwrap())],
        authenticate_register: false,
        authenticate_requests: false,
        ..CoreConfig::default()
    };
    cfg.shield.enabled = shield;
    let mut ep = Endpoint::new(cfg, [3; 32], now);
    let (caller, callee) = (peer(5091), peer(5090));
    ep.set_users(vec![User {
        name: "callee1".into(),
        credential: Credential::from_password("callee1", "127.0.0.1", "pw"),
        created_unix: 0,
        protection: None,
    }]);
    ep.restore_binding(Binding {
        aor: "callee1@127.0.0.1".into(),
        contact: "sip:callee1@127.0.0.1:5090".into(),
        expires_at: now + Duration::from_secs(86_400),
        q: 1000,
        call_id: "reg".into(),
        cseq: 1,
        path: vec![],
        source: callee,
        user_agent: "sipp".into(),
    });
    let mut sent = 0usize;
    for i in 0..calls {
        let cid = format!("{i}-4242@127.0.0.1");
        let invite = format!(
            "INVITE sip:callee1@127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5091;branch=z9hG4bK-4242-{i}-0\r\nFrom: sipp <sip:caller1@127.0.0.1:5080>;tag=4242SIPpTag00{i}\r\nTo: <sip:callee1@127.0.0.1:5080>\r\nCall-ID: {cid}\r\nCSeq: 1 INVITE\r\nContact: sip:caller1@127.0.0.1:5091\r\nMax-Forwards: 70\r\nSubject: Performance Test\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
            SDP.len()
        );
        ep.handle_datagram(now, caller, invite.as_bytes());
        let mut fwd = String::new();
        while let Some(t) = ep.poll_transmit() {
            sent += 1;
            if t.to.addr == callee.addr {
                fwd = String::from_utf8(t.bytes).unwrap_or_default();
            }
        }
        let base = copied(&fwd);
        let to = format!("To: {};tag=uas{i}\r\n", header(&fwd, "To"));
        let ringing = format!("SIP/2.0 180 Ringing\r\n{base}{to}Contact: <sip:127.0.0.1:5090>\r\nContent-Length: 0\r\n\r\n");
        ep.handle_datagram(now, callee, ringing.as_bytes());
        let ok = format!(
            "SIP/2.0 200 OK\r\n{base}{to}Contact: <sip:127.0.0.1:5090>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
            SDP.len()
        );
        ep.handle_datagram(now, callee, ok.as_bytes());
        let mut ok_relayed = String::new();
        while let Some(t) = ep.poll_transmit() {
            sent += 1;
            if t.to.addr == caller.addr {
                ok_relayed = String::from_utf8(t.bytes).unwrap_or_default();
            }
        }
        let route: String = ok_relayed
            .split("\r\n")
            .filter(|l| l.starts_with("Record-Route:"))
            .map(|l| format!("Route: {}\r\n", l.trim_start_matches("Record-Route: ")))
            .collect();
        let dialog = format!(
            "Via: SIP/2.0/UDP 127.0.0.1:5091;branch=z9hG4bK-4242-{i}-X\r\n{route}From: sipp <sip:caller1@127.0.0.1:5080>;tag=4242SIPpTag00{i}\r\n{to}Call-ID: {cid}\r\nMax-Forwards: 70\r\n"
        );
        let ack = format!(
            "ACK sip:127.0.0.1:5090 SIP/2.0\r\n{}CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
            dialog.replace("-X", "-5")
        );
        ep.handle_datagram(now, caller, ack.as_bytes());
        let bye = format!(
            "BYE sip:127.0.0.1:5090 SIP/2.0\r\n{}CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
            dialog.replace("-X", "-9")
        );
        ep.handle_datagram(now, caller, bye.as_bytes());
        let mut fwd_bye = String::new();
        while let Some(t) = ep.poll_transmit() {
            sent += 1;
            if t.to.addr == callee.addr {
                fwd_bye = String::from_utf8(t.bytes).unwrap_or_default();
            }
        }
        let bye_ok = format!(
            "SIP/2.0 200 OK\r\n{}{to}Content-Length: 0\r\n\r\n",
            copied(&fwd_bye)
        );
        ep.handle_datagram(now, callee, bye_ok.as_bytes());
        while ep.poll_transmit().is_some() {
            sent += 1;
        }
        now += Duration::from_millis(1);
        ep.handle_timeout(now);
    }
    // every call: 100 and INVITE, 180, 200, ACK, BYE, 200 = 7 messages out
    println!(
        "shield {}: {calls} calls, {sent} messages sent ({} per call)",
        if shield { "on" } else { "off" },
        sent as f64 / f64::from(calls.max(1))
    );
}
