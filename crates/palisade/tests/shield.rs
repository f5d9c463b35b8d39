//! The shield end to end: the hostile-offer corpus (tests/offers) sent through the real
//! server to a SIPp callee, asserting on what the callee actually received; a malicious
//! callee's answer; protected users from the CLI; the security event file.
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

use std::path::Path;
use std::time::Duration;

use common::*;
use palisade_sip::Header;

fn call_id(c: &Case) -> String {
    format!("case-{}@evil.example", c.name)
}

fn split(bytes: &[u8]) -> (&[u8], &[u8]) {
    let i = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("case has a head");
    (&bytes[..i + 2], &bytes[i + 4..])
}

/// The case's message as a SIPp `<send>` body: addresses, Call-ID and lengths made SIPp's.
fn sipp_message(bytes: &[u8]) -> String {
    let (head, body) = split(bytes);
    let head = std::str::from_utf8(head).expect("SIPp cases are text");
    let body = std::str::from_utf8(body).expect("SIPp cases are text");
    let mut msg = String::new();
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        let l = if line.starts_with("Via:") {
            "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]".to_string()
        } else if line.starts_with("Call-ID:") {
            "Call-ID: [call_id]".to_string()
        } else if line.starts_with("Contact:") {
            "Contact: <sip:mallory@[local_ip]:[local_port]>".to_string()
        } else if line.starts_with("Content-Length:") {
            "Content-Length: [len]".to_string()
        } else {
            line.to_string()
        };
        msg.push_str(&l);
        msg.push('\n');
    }
    msg.push('\n');
    msg.push_str(&body.replace("\r\n", "\n"));
    assert!(!msg.contains("]]>"));
    msg
}

fn write_scenario(dir: &Path, name: &str, msg: &str, flow: &str) -> std::path::PathBuf {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\" ?>\n<scenario name=\"{name}\">\n<send><![CDATA[\n{msg}\n]]></send>\n{flow}</scenario>\n"
    );
    let p = dir.join(format!("{name}.xml"));
    std::fs::write(&p, xml).unwrap();
    p
}

/// A SIPp scenario that sends the case's message and expects `status` as the final
/// answer (then ACKs it).
fn scenario_for(c: &Case, bytes: &[u8], status: u16, dir: &Path) -> std::path::PathBuf {
    let flow = format!(
        r#"<recv response="100" optional="true"/>
<recv response="{status}"/>
<send><![CDATA[
ACK sip:bob@localhost SIP/2.0
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
"#
    );
    write_scenario(
        dir,
        &format!("offer-{}", c.name),
        &sipp_message(bytes),
        &flow,
    )
}

/// A whole call with the case's offer: 200 (with the callee's answer, through the
/// shield), ACK and BYE along the Record-Route, 200.
fn call_scenario_for(c: &Case, bytes: &[u8], dir: &Path) -> std::path::PathBuf {
    let flow = r#"<recv response="100" optional="true"/>
<recv response="180" optional="true"/>
<recv response="183" optional="true"/>
<recv response="200" rrs="true"/>
<send><![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[routes]
[last_From:]
[last_To:]
[last_Call-ID:]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
<send><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[routes]
[last_From:]
[last_To:]
[last_Call-ID:]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
<recv response="200"/>
"#;
    write_scenario(dir, &format!("call-{}", c.name), &sipp_message(bytes), flow)
}

/// One SIPp caller run of a generated scenario, with the Call-ID given.
fn run_caller(s: &Server, name: &str, sf: &Path, cid: &str) -> (bool, String) {
    let port = (s.port + 3).to_string();
    let sf = sf.to_string_lossy();
    sipp(
        s,
        name,
        &["-sf", &sf, "-m", "1", "-p", &port, "-cid_str", cid],
    )
}

/// The security event file once it holds `needle` (the storage thread writes in
/// batches), or whatever it holds after two seconds.
fn events_with(s: &Server, needle: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        let e = std::fs::read_to_string(s.dir.join("security-events.jsonl")).unwrap_or_default();
        if e.contains(needle) || std::time::Instant::now() > deadline {
            return e;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One message block of a SIPp trace per received message.
fn received_blocks(trace: &str) -> Vec<String> {
    trace
        .split("----------------------------------------------- ")
        .filter(|b| b.contains("message received"))
        .map(|b| b.replace('\r', ""))
        .collect()
}

#[test]
fn hostile_offers_never_reach_the_callee_and_real_offers_do() {
    let s = Server::start("offers", &["bob"], &[]);
    let uas_port = register_bob(&s);
    let cases = offer_cases();
    let accepted = cases.iter().filter(|c| c.verdict == "accept").count();
    let m = accepted.to_string();
    let uas = sipp_uas(&s, "callee", "uas_busy.xml", uas_port, &["-m", &m]);
    let raw = Client::new();
    for (i, c) in cases.iter().enumerate() {
        let bytes = std::fs::read(offers_dir().join(format!("{}.sip", c.name))).unwrap();
        let want = if c.verdict == "accept" {
            486 // the callee's own answer: the offer reached it
        } else {
            c.status.unwrap()
        };
        if c.sipp {
            let sf = scenario_for(c, &bytes, want, &s.dir);
            let (ok, trace) = run_caller(&s, &format!("caller-{}", c.name), &sf, &call_id(c));
            assert!(
                ok,
                "case {} ({}): expected {want}\n{trace}",
                c.name, c.tries
            );
        } else {
            // Bytes SIPp cannot carry: sent as they are, only the addresses made ours.
            let (head, body) = split(&bytes);
            let head = String::from_utf8_lossy(head)
                .replace("192.0.2.66:5060", &format!("127.0.0.1:{}", raw.port()))
                .replace("branch=z9hG4bK-", &format!("branch=z9hG4bK{i}-"));
            let mut out = head.into_bytes();
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(body);
            raw.sock.send_to(&out, ("127.0.0.1", s.port)).unwrap();
            let cid = call_id(c);
            let r = loop {
                let r = raw.recv_final();
                if r.call_id() == Some(cid.as_str()) {
                    break r;
                }
            };
            assert_eq!(r.status(), Some(want), "case {} ({})", c.name, c.tries);
            // ACK the final, hop by hop, so the server stops retransmitting it.
            let mut ack = String::from("ACK sip:bob@localhost SIP/2.0\r\n");
            for h in &r.headers {
                if matches!(
                    h,
                    Header::Via(_) | Header::From(_) | Header::To(_) | Header::CallId(_)
                ) {
                    h.write(&mut ack);
                }
            }
            ack.push_str("CSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n");
            raw.sock
                .send_to(ack.as_bytes(), ("127.0.0.1", s.port))
                .unwrap();
        }
    }
    let (ok, trace) = uas.finish();
    assert!(ok, "the callee did not get every accepted offer:\n{trace}");
    let blocks = received_blocks(&trace);
    for c in &cases {
        let cid = call_id(c);
        let got: Vec<&String> = blocks
            .iter()
            .filter(|b| b.contains("INVITE sip:") && b.contains(&cid))
            .collect();
        if c.verdict == "reject" {
            assert!(
                got.is_empty(),
                "case {} ({}) reached the callee",
                c.name,
                c.tries
            );
            continue;
        }
        assert_eq!(got.len(), 1, "case {}: INVITEs at the callee", c.name);
        for k in &c.keep {
            let k = k.replace('\r', "");
            assert!(
                got[0].contains(&k),
                "case {}: {k:?} lost on the way:\n{}",
                c.name,
                got[0]
            );
        }
    }
    for c in &cases {
        for h in &c.hidden {
            assert!(
                !trace.contains(h.as_str()),
                "case {} ({}): {h:?} reached the callee",
                c.name,
                c.tries
            );
        }
    }
    // Every decision is on record, with the Call-ID and the hash.
    let last = cases.iter().rev().find(|c| c.verdict == "reject").unwrap();
    let events = events_with(&s, &call_id(last));
    for c in cases.iter().filter(|c| c.verdict == "reject") {
        let line = events
            .lines()
            .find(|l| l.contains(&call_id(c)))
            .unwrap_or_else(|| panic!("no security event for {}:\n{events}", c.name));
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["kind"], "offer-refused");
        assert_eq!(v["status"], c.status.unwrap());
        assert_eq!(v["caller"], "mallory@evil.example");
        assert_eq!(v["callee"], "bob@localhost");
        assert_eq!(v["sha256"].as_str().unwrap().len(), 64);
    }
    assert!(events.contains("\"kind\":\"sdp-attribute-dropped\""));
    assert!(s.log_text().contains("palisade::security"));
}

/// Writes uac_expect.xml with the expected final status filled in.
fn expect_scenario(s: &Server, status: u16) -> String {
    let text = std::fs::read_to_string(scenario("uac_expect.xml"))
        .unwrap()
        .replace("EXPECTED_STATUS", &status.to_string());
    let p = s.dir.join(format!("uac_expect_{status}.xml"));
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

/// Registers bob with SIPp, Contact at the port the SIPp callee will use; returns it.
fn register_bob(s: &Server) -> u16 {
    let uas_port = s.port + 1;
    let (ok, t) = sipp_register(
        s,
        "reg",
        "bob",
        uas_port,
        s.port + 2,
        "register_any.xml",
        &[],
    );
    assert!(ok, "{t}");
    uas_port
}

fn call_expecting(s: &Server, name: &str, caller: &str, status: u16, port: u16) -> (bool, String) {
    let sf = expect_scenario(s, status);
    sipp_call(s, name, caller, "bob", &sf, port, &[])
}

#[test]
fn a_hostile_answer_is_not_relayed_and_the_dialog_is_ended() {
    let s = Server::start("answer", &["alice", "bob"], &[]);
    let uas_port = register_bob(&s);
    let uas = sipp_uas(&s, "callee", "uas_hostile_answer.xml", uas_port, &[]);
    let (ok, trace) = call_expecting(&s, "caller", "alice", 502, s.port + 3);
    assert!(ok, "{trace}\n{}", s.log_text());
    assert!(!trace.contains("HOSTILE-ANSWER-PAYLOAD"), "{trace}");
    assert!(trace.contains("Warning: 399 palisade"));
    let (ok, callee) = uas.finish();
    assert!(
        ok,
        "the callee's dialog was not acknowledged and ended:\n{callee}"
    );
    assert!(callee.contains("BYE sip:bob@"));
    let events = events_with(&s, "answer-refused");
    assert!(events.contains("\"kind\":\"answer-refused\""), "{events}");
}

#[test]
fn protected_user_rings_only_for_its_allow_list() {
    let s = Server::start("protect", &["alice", "bob", "carol"], &[]);
    for args in [
        &["user", "protect", "bob", "--domain", "127.0.0.1"][..],
        &["user", "allow", "bob", "alice", "--domain", "127.0.0.1"][..],
    ] {
        let out = cli(&s.dir, args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = cli(
        &s.dir,
        &["user", "allow", "nobody", "alice", "--domain", "127.0.0.1"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no user nobody@127.0.0.1"));
    let out = cli(&s.dir, &["user", "list", "--domain", "127.0.0.1"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("bob@127.0.0.1 protected, allows: alice"));
    // the running server picks the change up from the database (polled every second)
    std::thread::sleep(Duration::from_millis(2500));

    let uas_port = register_bob(&s);
    let uas = sipp_uas(&s, "callee", "uas_busy.xml", uas_port, &["-m", "1"]);
    let (ok, trace) = call_expecting(&s, "carol", "carol", 480, s.port + 3);
    assert!(
        ok,
        "carol must be refused with 480:\n{trace}\n{}",
        s.log_text()
    );
    let (ok, trace) = call_expecting(&s, "alice", "alice", 486, s.port + 4);
    assert!(ok, "alice is allowed and must reach the phone:\n{trace}");
    let (ok, callee) = uas.finish();
    assert!(ok, "{callee}");
    let invites = received_blocks(&callee)
        .into_iter()
        .filter(|b| b.contains("INVITE sip:"))
        .collect::<Vec<_>>();
    assert_eq!(invites.len(), 1, "only alice's call rang:\n{callee}");
    assert!(invites[0].contains("From: <sip:alice@"));
    let events = events_with(&s, "protected-user-refused");
    let refused: Vec<&str> = events
        .lines()
        .filter(|l| l.contains("protected-user-refused"))
        .collect();
    assert_eq!(refused.len(), 1, "{events}");
    assert!(refused[0].contains("\"caller\":\"carol@127.0.0.1\""));

    // protection off: carol gets through again
    let out = cli(
        &s.dir,
        &["user", "protect", "bob", "--off", "--domain", "127.0.0.1"],
    );
    assert!(out.status.success());
    std::thread::sleep(Duration::from_millis(2500));
    let uas = sipp_uas(&s, "callee2", "uas_busy.xml", uas_port, &["-m", "1"]);
    let (ok, trace) = call_expecting(&s, "carol2", "carol", 486, s.port + 5);
    assert!(ok, "{trace}");
    assert!(uas.finish().0);
}

/// Every real offer that SIPp can carry makes a whole call: the callee (SIPp's UAS)
/// gets the offer, answers 180 and 200 with its own SDP (which passes the shield toward
/// the caller), and ACK and BYE go through along the Record-Route.
#[test]
fn real_offers_connect() {
    let s = Server::start("connect", &["bob"], &[]);
    let uas_port = register_bob(&s);
    let cases: Vec<Case> = offer_cases()
        .into_iter()
        .filter(|c| c.name.starts_with("real-") && c.name != "real-lf-line-ends")
        .collect();
    assert!(
        cases.len() >= 5,
        "SIPp, baresip, Linphone, Chrome and Firefox offers"
    );
    let m = cases.len().to_string();
    let uas = sipp_uas(&s, "callee", "uas.xml", uas_port, &["-m", &m]);
    for c in &cases {
        let bytes = std::fs::read(offers_dir().join(format!("{}.sip", c.name))).unwrap();
        let sf = call_scenario_for(c, &bytes, &s.dir);
        let cid = format!("call-{}@evil.example", c.name);
        let (ok, trace) = run_caller(&s, &format!("call-{}", c.name), &sf, &cid);
        assert!(ok, "{} did not connect:\n{trace}\n{}", c.name, s.log_text());
        assert!(
            trace.contains("SIP/2.0 200 OK") && trace.contains("v=0"),
            "{trace}"
        );
    }
    let (ok, callee) = uas.finish();
    assert!(ok, "the callee did not complete every call:\n{callee}");
}
