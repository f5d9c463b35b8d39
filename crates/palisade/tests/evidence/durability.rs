//! Every call and registration as an entry (`evidence.records = "all"`), and nothing
//! visible lost or forked by `kill -9` under load.

use super::*;

/// `evidence.records = "all"`: every call and registration record is an entry too, and
/// the log still verifies with Go.
#[test]
fn with_records_all_calls_and_registrations_are_entries() {
    let port = ports();
    let data = tempdir("evidence-all");
    add_users(&data, &["alice", "bob"]);
    let config = configured(&data, &format!(
            "[admin]\nlisten = \"127.0.0.1:{}\"\n[evidence]\nrecords = \"all\"\ncheckpoint_interval_ms = 200\n",
            port + 7
        ));
    let server = Server::start_in(data, port, &["--config", &config]);
    let dir = server.dir.clone();
    let server_addr = format!("127.0.0.1:{}", server.port).parse().unwrap();
    let bank = sim::Bank::start("127.0.0.1", |_| {
        sim::Answer::After(Duration::from_millis(50))
    });
    let bob = sim::Ua::new("127.0.0.1", "bob", server_addr, "SimPhone/1.0");
    assert_eq!(bob.register_as("bob", bank.addr, 3600), 200);
    let alice = sim::Ua::new("127.0.0.1", "alice", server_addr, "SimPhone/1.0");
    for _ in 0..3 {
        assert!(matches!(
            alice.call("bob", Duration::from_secs(5), Duration::from_millis(20)),
            sim::Outcome::Answered
        ));
    }
    let entries = || entries_of(&dir);
    assert!(
        wait_until(Duration::from_secs(10), || entries()
            .matches("\"kind\":\"call\"")
            .count()
            == 3),
        "three call records in the log: {}",
        entries()
    );
    let listing = entries();
    let call = listing
        .lines()
        .find(|l| l.contains("\"kind\":\"call\""))
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(call.split_once(' ').unwrap().1).unwrap();
    assert_eq!(v["caller"], "alice");
    assert_eq!(v["callee"], "bob");
    assert_eq!(v["outcome"], "answered");
    assert!(v["answered"].is_string() && v["ended"].is_string(), "{v}");
    assert!(
        listing.contains("\"kind\":\"registration\"") && listing.contains("\"account\":\"bob\""),
        "{listing}"
    );
    let tmp = tempdir("evidence-all-go");
    let verifier = go_verifier(&tmp);
    let vkey = log_key(&dir, &[]);
    let (ok, out) = run(Command::new(&verifier).arg(dir.join("evidence")).arg(&vkey));
    assert!(ok, "{out}");
    drop(server);
}

/// Sends hostile offers one after another until `stop`, from its own socket; the
/// Call-IDs that were answered 415 (the refusal was visible outside).
fn refusals_until(
    port: u16,
    round: u32,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<String> {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let me = sock.local_addr().unwrap();
    let body = "MZ\u{1}\u{2}not a session description";
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 65536];
    let mut i = 0u32;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        i += 1;
        let call_id = format!("crash-{round}-{i}");
        let m = format!("INVITE sip:bob@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKcr{round}x{i}\r\nMax-Forwards: 70\r\nFrom: <sip:mallory@evil.example>;tag=c{i}\r\nTo: <sip:bob@127.0.0.1:{port}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:mallory@{me}>\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        std::thread::sleep(Duration::from_millis(2)); // load, not a flood: ~300/s each
        if sock.send_to(m.as_bytes(), ("127.0.0.1", port)).is_err() {
            continue;
        }
        while let Ok(n) = sock.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]);
            if text.starts_with("SIP/2.0 415") && text.contains(&call_id) {
                seen.push(call_id.clone());
                break;
            }
        }
    }
    seen
}

/// kill -9 at random moments under a stream of refusals, again and again: afterwards
/// every refusal a client saw is in the log, and every checkpoint published on the way
/// is consistent with the final log (Palisade's verifier and Go's).
#[test]
fn kill_9_under_load_loses_no_visible_entry_and_forks_nothing() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let port = ports();
    let data = tempdir("evidence-crash");
    add_users(&data, &["alice", "bob"]);
    let config = configured(
        &data,
        &format!(
            "[admin]\nlisten = \"127.0.0.1:{}\"\n[evidence]\ncheckpoint_interval_ms = 50\n",
            port + 7
        ),
    );
    let mut dir = data;
    let tmp = tempdir("evidence-crash-cps");
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("seed {seed}");
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut visible = Vec::new();
    let mut checkpoints: Vec<(u64, Vec<u8>)> = Vec::new();
    let bank = sim::Bank::start("127.0.0.1", |_| sim::Answer::Never);
    for round in 0..8u32 {
        let server = Server::start_in(dir.clone(), port, &["--config", &config]);
        dir = server.dir.clone();
        let bob = sim::Ua::new(
            "127.0.0.1",
            "bob",
            format!("127.0.0.1:{port}").parse().unwrap(),
            "SimPhone/1.0",
        );
        assert_eq!(bob.register_as("bob", bank.addr, 3600), 200);
        let stop = Arc::new(AtomicBool::new(false));
        let loaders: Vec<_> = (0..2)
            .map(|k| {
                let stop = stop.clone();
                std::thread::spawn(move || refusals_until(port, round * 10 + k, stop))
            })
            .collect();
        // copies of the checkpoints published while it runs
        let deadline = std::time::Instant::now() + Duration::from_millis(150 + rand(700));
        while std::time::Instant::now() < deadline {
            if let Ok(cp) = std::fs::read(dir.join("evidence/checkpoint")) {
                if checkpoints.last().is_none_or(|(_, c)| *c != cp) {
                    checkpoints.push((size_of(&dir), cp));
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(server); // SIGKILL, the loaders still sending
        stop.store(true, Ordering::Relaxed);
        for l in loaders {
            visible.extend(l.join().unwrap());
        }
    }
    assert!(visible.len() > 100, "load: {} refusals seen", visible.len());
    assert!(
        checkpoints.len() > 8,
        "{} checkpoints seen",
        checkpoints.len()
    );
    // Restarted once more: the journal's entries are published.
    let server = Server::start_in(dir.clone(), port, &["--config", &config]);
    let listing = || entries_of(&dir);
    let missing = || {
        let l = listing();
        visible
            .iter()
            .filter(|c| !l.contains(&format!("\"call_id\":\"{c}\"")))
            .cloned()
            .collect::<Vec<_>>()
    };
    wait_until(Duration::from_secs(15), || missing().is_empty());
    let lost = missing();
    assert!(
        lost.is_empty(),
        "every refusal that was seen is in the log: {} of {} missing, e.g. {:?}",
        lost.len(),
        visible.len(),
        lost.first()
    );
    // Every checkpoint seen is a prefix of the final log.
    // (at most 10 of them, spread over the run: each verification reads the whole log)
    let step = checkpoints.len().div_ceil(10);
    for (i, (size, cp)) in checkpoints.iter().enumerate().step_by(step) {
        let last = tmp.join(format!("seen-{i}"));
        std::fs::write(&last, cp).unwrap();
        let (ok, out) = verify(&dir, &[OsStr::new("--last"), last.as_os_str()]);
        assert!(ok, "checkpoint {i} (size {size}): {out}");
    }
    let verifier = go_verifier(&tmp);
    let vkey = log_key(&dir, &[]);
    let first = tmp.join("first");
    std::fs::write(&first, &checkpoints[0].1).unwrap();
    let (ok, out) = run(Command::new(&verifier)
        .arg(dir.join("evidence"))
        .arg(&vkey)
        .arg(&first));
    assert!(ok, "{out}");
    // An export of the entries since a time: the bundles from that entry on, every hash
    // tile; verifies with --partial (not without: the missing bundles are named), and a
    // changed entry in it is still found.
    // (first more load, so that the log holds entries of more than one second past the
    // first bundle whatever the machine's speed: a loaded machine let fewer through)
    let stop = Arc::new(AtomicBool::new(false));
    let more = {
        let stop = stop.clone();
        std::thread::spawn(move || refusals_until(port, 99, stop))
    };
    let began = std::time::Instant::now();
    let enough = wait_until(Duration::from_secs(30), || {
        began.elapsed() >= Duration::from_millis(2500) && size_of(&dir) >= 600
    });
    stop.store(true, Ordering::Relaxed);
    let _ = more.join();
    assert!(enough, "the log grew to {} entries only", size_of(&dir));
    let listing = listing();
    let time_of = |line: &str| {
        serde_json::from_str::<serde_json::Value>(line.split_once(' ').unwrap().1).unwrap()["time"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // a time whose first entry is past the first bundle (RFC 3339 strings of one form
    // sort as times; many entries share a second)
    let (t, index) = listing
        .lines()
        .skip(256)
        .map(time_of)
        .map(|t| {
            let i = listing.lines().position(|l| time_of(l) >= t).unwrap() as u64;
            (t, i)
        })
        .find(|(_, i)| *i >= 256)
        .expect("entries over several seconds");
    let export = tmp.join("since");
    let (ok, out) = run(Command::new(bin())
        .args(["evidence", "export", "--since", &t])
        .arg(&export)
        .arg("--data-dir")
        .arg(&dir));
    assert!(ok, "{out}");
    let from = index / 256 * 256;
    assert!(out.contains(&format!("(from index {from})")), "{out}");
    assert!(!export.join("tile/entries/000").exists());
    let (ok, out) = verify(
        &dir,
        &[
            export.as_os_str(),
            OsStr::new("--partial"),
            OsStr::new("--key"),
            OsStr::new(&vkey),
        ],
    );
    assert!(ok, "{out}");
    assert!(out.contains(&format!("(from index {from};")), "{out}");
    let (ok, out) = verify(
        &dir,
        &[export.as_os_str(), OsStr::new("--key"), OsStr::new(&vkey)],
    );
    assert!(!ok && out.contains("tile/entries/000"), "{out}");
    let bundle = export.join(format!("tile/entries/{:03}", from / 256));
    let mut b = std::fs::read(&bundle).unwrap();
    b[30] ^= 1;
    std::fs::write(&bundle, b).unwrap();
    let (ok, out) = verify(
        &dir,
        &[
            export.as_os_str(),
            OsStr::new("--partial"),
            OsStr::new("--key"),
            OsStr::new(&vkey),
        ],
    );
    assert!(!ok, "a changed entry in a partial copy is found: {out}");
    eprintln!(
        "{} refusals seen over 8 kills, {} checkpoints, final size {}",
        visible.len(),
        checkpoints.len(),
        size_of(&dir)
    );
    drop(server);
}
