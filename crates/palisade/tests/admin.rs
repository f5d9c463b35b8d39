//! The operator's surface against the real binary: `/metrics` (checked by `promtool`
//! and scraped by a real Prometheus), the JSON API's token, configuration reload
//! (SIGHUP and the API; a bad file is refused and the old configuration keeps serving),
//! HEP capture to a collector, JSON logs, and the dashboard in a real Chromium.
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

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// An INVITE from alice to herself (registered) whose body the shield refuses (an unknown body type: 415), with
/// `auth` as its Proxy-Authorization.
fn refused_offer(s: &Server, c: &Client, n: u32, cseq: u32, auth: Option<&str>) -> String {
    let body = "<evil/>";
    format!(
        "INVITE sip:alice@127.0.0.1:{p} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{cp};branch=z9hG4bKrf{n}x{cseq}\nMax-Forwards: 70\nFrom: <sip:alice@127.0.0.1:{p}>;tag=rf{n}\nTo: <sip:alice@127.0.0.1:{p}>\nCall-ID: refused-{n}-{cp}\nCSeq: {cseq} INVITE\nContact: <sip:alice@127.0.0.1:{cp}>\n{}Content-Type: application/x-evil\nContent-Length: {}\n\n{body}",
        auth.map(|a| format!("Proxy-Authorization: {a}\n")).unwrap_or_default(),
        body.len(),
        p = s.port,
        cp = c.port()
    )
}

/// alice (password `secret`) offers a body the shield refuses, authenticated: the final
/// status.
fn refused_call(s: &Server, n: u32) -> u16 {
    let c = Client::new();
    c.send(s.port, &refused_offer(s, &c, n, 1, None));
    let challenge = c.recv_timeout(Duration::from_secs(5)).expect("a challenge");
    if challenge.status() != Some(407) {
        return challenge.status().unwrap_or(0);
    }
    let nonce = challenge
        .headers
        .iter()
        .find_map(|h| match h {
            palisade_sip::Header::ProxyAuthenticate(c) => c.get("nonce").map(|n| n.into_owned()),
            _ => None,
        })
        .expect("a nonce");
    let uri = format!("sip:alice@127.0.0.1:{}", s.port);
    let auth = digest(
        palisade_core::Algorithm::Md5,
        "alice",
        "secret",
        &nonce,
        "INVITE",
        &uri,
    );
    c.send(s.port, &refused_offer(s, &c, n, 2, Some(&auth)));
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Some(m) = c.recv_timeout(Duration::from_millis(500)) {
            if m.cseq().map(|c| c.seq) == Some(2) && m.status().is_some_and(|st| st >= 200) {
                return m.status().unwrap_or(0);
            }
        }
    }
    0
}

/// The value of an exposition line `name{labels} value` (the first that starts so).
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn metrics(admin: &str) -> String {
    let (st, text) = http(admin, "GET", "/metrics", None, None);
    assert_eq!(st, 200);
    text
}

#[test]
fn metrics_are_valid_and_move_with_traffic() {
    let (s, admin) = start_with_admin("metrics", &["alice", "bob"], "");
    let before = metrics(&admin);
    assert_eq!(
        sample(&before, "palisade_sip_requests_total{method=\"REGISTER\"}"),
        Some(0.0)
    );
    // idle, the UDP datagrams are gathered on one worker (or there is only one)
    assert_eq!(
        sample(&before, "palisade_udp_receiving_workers "),
        Some(1.0)
    );
    // promtool, Prometheus's own checker, accepts the exposition as it is served
    let check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; ./test.sh installs it)");
    use std::io::Write as _;
    check
        .stdin
        .as_ref()
        .unwrap()
        .write_all(before.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}\n{before}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for name in [
        "palisade_registrations",
        "palisade_calls_active",
        "palisade_transactions",
        "palisade_blocks_active",
        "palisade_evidence_entries_total",
        "palisade_queue_depth{queue=\"shard\"}",
        "palisade_dropped_total{queue=\"store\"}",
        "palisade_findings_total{kind=\"scanner\"}",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    ] {
        assert!(sample(&before, name).is_some(), "{name} missing:\n{before}");
    }

    // a registration and a refused offer move their counters
    let (ok, out) = sipp_register(&s, "reg", "alice", ports(), ports(), "register.xml", &[]);
    assert!(ok, "{out}");
    assert_eq!(refused_call(&s, 1), 415);
    let moved = wait_until(Duration::from_secs(5), || {
        let m = metrics(&admin);
        sample(&m, "palisade_sip_requests_total{method=\"REGISTER\"}") >= Some(2.0)
            && sample(&m, "palisade_sip_responses_total{code_class=\"2xx\"}") >= Some(1.0)
            && sample(&m, "palisade_registrations ") == Some(1.0)
            && sample(
                &m,
                "palisade_shield_refusals_total{reason=\"offer-refused\"}",
            ) >= Some(1.0)
    });
    assert!(moved, "counters did not move:\n{}", metrics(&admin));
    // the same numbers as JSON for the dashboard, behind the token
    let token = admin_token(&s);
    let (st, _) = http(&admin, "GET", "/api/overview", None, None);
    assert_eq!(st, 401);
    let (st, text) = http(&admin, "GET", "/api/overview", Some(&token), None);
    assert_eq!(st, 200);
    let o: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(o["requests"]["REGISTER"].as_u64() >= Some(2), "{o}");
    assert_eq!(o["registrations"], 1);
    let (st, text) = http(&admin, "GET", "/api/registrations", Some(&token), None);
    assert_eq!(st, 200);
    let regs: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(regs[0]["aor"], "alice@127.0.0.1", "{regs}");
    let (st, text) = http(&admin, "GET", "/api/users", Some(&token), None);
    assert_eq!(st, 200);
    assert!(text.contains("\"bob\"") && !text.contains("ha1"), "{text}");
    let (st, text) = http(&admin, "GET", "/api/openapi.json", None, None);
    assert_eq!(st, 200);
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(doc["paths"]["/api/blocks"]["post"].is_object());
}

/// `/api/calls` lists a call in progress (its list is made by the detection thread when
/// asked, so the answer is fresh, not up to a second old).
#[test]
fn the_api_lists_a_call_in_progress() {
    let (s, admin) = start_with_admin("calls-api", &["alice", "bob"], "");
    let token = admin_token(&s);
    let (st, text) = http(&admin, "GET", "/api/calls", Some(&token), None);
    assert_eq!((st, text.as_str()), (200, "[]"), "no call yet");
    // alice registers (SIPp, then gone: her contact never answers, so bob's call stays
    // in progress)
    let (ok, out) = sipp_register(&s, "reg", "alice", ports(), ports(), "register.xml", &[]);
    assert!(ok, "{out}");
    let c = Client::new();
    let call_id = format!("listed-{}", c.port());
    assert_eq!(
        send_authed_invite(&s, &c, "bob", "alice", &call_id),
        Ok(407),
        "challenged, then sent with credentials"
    );
    let trying = c.recv_timeout(Duration::from_secs(5)).expect("100 Trying");
    assert_eq!(trying.status(), Some(100));
    let mut last = String::new();
    let listed = wait_until(Duration::from_secs(10), || {
        let (st, text) = http(&admin, "GET", "/api/calls", Some(&token), None);
        assert_eq!(st, 200);
        last = text;
        let v: serde_json::Value = serde_json::from_str(&last).unwrap();
        v.as_array().is_some_and(|a| {
            a.len() == 1
                && a[0]["call_id"] == call_id.as_str()
                && a[0]["caller"] == "bob"
                && a[0]["callee"] == "alice"
                && a[0]["state"] == "trying"
                && a[0]["source"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("127.0.0.1:"))
        })
    });
    assert!(listed, "the call is listed: {last}");
    assert!(
        wait_until(Duration::from_secs(5), || sample(
            &metrics(&admin),
            "palisade_calls_active "
        ) == Some(1.0)),
        "and counted"
    );
}

#[test]
fn a_real_prometheus_scrapes_the_server() {
    let (s, admin) = start_with_admin("prometheus", &["alice", "bob"], "");
    let dir = s.dir.join("prometheus");
    std::fs::create_dir_all(&dir).unwrap();
    let web = ports();
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: palisade\n    static_configs:\n      - targets: ['{admin}']\n"
        ),
    )
    .unwrap();
    /// Stops Prometheus however the test ends (a failed assertion included).
    struct Stop(std::process::Child);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let prom = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{web}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
        .spawn()
        .expect("prometheus (Debian package prometheus; ./test.sh installs it)");
    let prom = Stop(prom);
    let query = |q: &str| -> Option<f64> {
        let path = format!(
            "/api/v1/query?query={}",
            q.replace('"', "%22")
                .replace('{', "%7B")
                .replace('}', "%7D")
                .replace('=', "%3D")
        );
        let (st, text) = http(&format!("127.0.0.1:{web}"), "GET", &path, None, None);
        if st != 200 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    };
    // a first scrape with the counters at zero
    let seen = wait_until(Duration::from_secs(30), || {
        query("palisade_sip_requests_total{method=\"REGISTER\"}") == Some(0.0)
    });
    let log = || std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
    assert!(seen, "Prometheus never scraped the server:\n{}", log());
    let (ok, out) = sipp_register(&s, "reg", "alice", ports(), ports(), "register.xml", &[]);
    assert!(ok, "{out}");
    for n in 0..3 {
        assert_eq!(refused_call(&s, n), 415);
    }
    let moved = wait_until(Duration::from_secs(30), || {
        query("palisade_sip_requests_total{method=\"REGISTER\"}") >= Some(2.0)
            && query("palisade_shield_refusals_total{reason=\"offer-refused\"}") >= Some(3.0)
    });
    drop(prom);
    assert!(
        moved,
        "the query API did not show the counters moving:\n{}\n{}",
        metrics(&admin),
        log()
    );
}

#[test]
fn a_bad_configuration_is_refused_and_the_old_one_keeps_serving() {
    let (s, admin) = start_with_admin("reload", &["alice"], "");
    let token = admin_token(&s);
    let cfg = s.dir.join("admin.toml");
    let good = std::fs::read_to_string(&cfg).unwrap();
    let c = Client::new();
    let options = |n: u32| {
        format!("OPTIONS sip:127.0.0.1:{p} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{cp};branch=z9hG4bKrl{n}\nMax-Forwards: 70\nFrom: <sip:probe@127.0.0.1>;tag=r{n}\nTo: <sip:127.0.0.1>\nCall-ID: reload-{n}-{cp}\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n", p = s.port, cp = c.port())
    };

    // a file that does not parse: 400 with its error, an evidence entry, still serving
    std::fs::write(&cfg, format!("{good}\n[shield\nbroken = ")).unwrap();
    let (st, text) = http(&admin, "POST", "/api/reload", Some(&token), None);
    assert_eq!(st, 400, "{text}");
    assert!(
        text.contains("admin.toml") || text.contains("TOML") || text.contains("config"),
        "{text}"
    );
    c.send(s.port, &options(1));
    assert_eq!(
        c.recv_timeout(Duration::from_secs(5))
            .and_then(|m| m.status()),
        Some(200),
        "the server answers after a refused reload"
    );
    // a file that parses but does not check (an unknown log format): refused too
    std::fs::write(&cfg, format!("[server]\nlog_format = \"xml\"\n{good}")).unwrap();
    let (st, text) = http(&admin, "POST", "/api/reload", Some(&token), None);
    assert_eq!(st, 400, "{text}");
    assert!(text.contains("log_format"), "{text}");
    // SIGHUP with a bad file: refused, logged (a refusal more than the two above: the
    // signal is taken on its own, and the good file below must not be written before)
    let refusals = || s.log_text().matches("configuration reload refused").count();
    let before = refusals();
    std::fs::write(&cfg, "[detect\n").unwrap();
    let pid = s.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    assert!(
        wait_until(Duration::from_secs(5), || refusals() > before),
        "{}",
        s.log_text()
    );
    c.send(s.port, &options(2));
    assert_eq!(
        c.recv_timeout(Duration::from_secs(5))
            .and_then(|m| m.status()),
        Some(200)
    );

    // a good file: the shield's change applied live, the server's named as needing a
    // restart
    std::fs::write(
        &cfg,
        format!("{good}\n[shield]\nextra_headers = [\"X-Ticket\"]\n[server]\nworkers = 1\n"),
    )
    .unwrap();
    let (st, text) = http(&admin, "POST", "/api/reload", Some(&token), None);
    assert_eq!(st, 200, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["applied"], serde_json::json!(["shield"]), "{v}");
    assert_eq!(v["restart_needed"], serde_json::json!(["server"]), "{v}");
    // the same again: nothing more to apply
    let (st, text) = http(&admin, "POST", "/api/reload", Some(&token), None);
    assert_eq!(st, 200);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["applied"], serde_json::json!([]), "{v}");
    let (st, _) = http(&admin, "POST", "/api/reload", None, None);
    assert_eq!(st, 401);
    // every attempt is in the evidence log (once its checkpoint is out)
    let reloads = || {
        let out = cli(&s.dir, &["evidence", "entries"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (
            text.lines().filter(|l| l.contains("config-reload")).count(),
            text,
        )
    };
    assert!(
        wait_until(Duration::from_secs(10), || reloads().0 >= 5),
        "{}",
        reloads().1
    );
}

#[test]
fn every_message_in_and_out_is_captured_as_hep3() {
    let collector = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    collector
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let at = collector.local_addr().unwrap();
    let (s, _) = start_with_admin(
        "hep",
        &["alice"],
        &format!("[hep]\ncollector = \"udp:{at}\"\nnode_id = 77\n"),
    );
    let c = Client::new();
    let call_id = format!("hep-{}", c.port());
    c.send(s.port, &format!("OPTIONS sip:127.0.0.1:{p} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{cp};branch=z9hG4bKhep\nMax-Forwards: 70\nFrom: <sip:probe@127.0.0.1>;tag=h\nTo: <sip:127.0.0.1>\nCall-ID: {call_id}\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n", p = s.port, cp = c.port()));
    assert!(c.recv_timeout(Duration::from_secs(5)).is_some());
    // the start-up probes were captured too: look for this exchange's two packets
    let (mut request, mut answer) = (false, false);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 65_536];
    while Instant::now() < deadline && !(request && answer) {
        let Ok(n) = collector.recv(&mut buf) else {
            break;
        };
        let p = &buf[..n];
        assert_eq!(&p[..4], b"HEP3");
        assert_eq!(u16::from_be_bytes([p[4], p[5]]) as usize, n, "total length");
        let text = String::from_utf8_lossy(p);
        if !text.contains(&call_id) {
            continue;
        }
        request |= text.contains("OPTIONS sip:");
        answer |= text.contains("SIP/2.0 200");
    }
    assert!(request && answer, "request {request}, answer {answer}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let (s, _) = start_with_admin("jsonlog", &["alice"], "[server]\nlog_format = \"json\"\n");
    assert!(wait_until(Duration::from_secs(5), || s
        .log_text()
        .contains("listening")));
    let text = s.log_text();
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with('{')).collect();
    assert!(lines.len() >= 3, "{text}");
    for l in lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
        assert!(v["timestamp"].is_string() && v["level"].is_string(), "{l}");
    }
}

#[test]
fn the_dashboard_in_chromium_shows_a_registration_and_lifts_a_block() {
    let (s, admin) = start_with_admin("dashboard", &["alice", "bob"], "");
    let token = admin_token(&s);
    let (st, text) = http(
        &admin,
        "POST",
        "/api/blocks",
        Some(&token),
        Some(r#"{"subject":"account:bob","for":"1h","reason":"dashboard test"}"#),
    );
    assert_eq!(st, 201, "{text}");
    let block: serde_json::Value = serde_json::from_str(&text).unwrap();
    let id = block["id"].as_i64().unwrap().to_string();
    let tests = root().join("crates/palisade/tests/dashboard");
    assert!(
        tests.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: ./test.sh runs `npm ci` in {}",
        tests.display()
    );
    let shots = std::env::var("DASHBOARD_SHOTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| s.dir.join("screenshots"));
    let mut node = Command::new("node")
        .arg(tests.join("run.mjs"))
        .env("PALISADE_URL", format!("http://{admin}/"))
        .env("PALISADE_TOKEN", &token)
        .env("EXPECT_AOR", "alice@127.0.0.1")
        .env("BLOCK_ID", &id)
        .env("SHOTS_DIR", &shots)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node (Debian package nodejs)");
    let mut lines = BufReader::new(node.stdout.take().unwrap()).lines();
    let ready = lines.next().and_then(Result::ok);
    assert_eq!(ready.as_deref(), Some("READY"), "the page did not open");
    // the phone registers while the page is open
    let (ok, out) = sipp_register(&s, "reg", "alice", ports(), ports(), "register.xml", &[]);
    assert!(ok, "{out}");
    let done = lines.next().and_then(Result::ok);
    let out = node.wait_with_output().unwrap();
    assert_eq!(
        done.as_deref(),
        Some("DONE"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success());
    // the lift went through the API: the block is gone from the server's list
    let (st, text) = http(&admin, "GET", "/api/blocks", Some(&token), None);
    assert_eq!(st, 200);
    assert_eq!(text.trim(), "[]", "{text}");
    for f in [
        "1-logged-in.png",
        "2-registration.png",
        "4-block-lifted.png",
    ] {
        assert!(shots.join(f).exists(), "{f}");
    }
}
