//! The evidence log of the running server, checked by code nobody here wrote: Go's
//! `golang.org/x/mod/sumdb/note` and `tlog` (Debian's golang-golang-x-mod-dev, built
//! by this test from `tests/evidence/tlogverify.go`) verify the checkpoint, every
//! entry's inclusion and the consistency of two checkpoints; tampering is located by
//! `palisade evidence verify` and refused by Go; proofs check; the log continues across
//! a restart; a refusal is answered only once its entry is durable (kill -9 right after
//! the answer loses nothing).
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
#[path = "campaign/sim.rs"]
#[allow(dead_code)]
mod sim;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

/// Builds the Go verifier (once per test process).
fn go_verifier(dir: &Path) -> PathBuf {
    let out = dir.join("tlogverify");
    let src = root().join("tests/evidence/tlogverify.go");
    let r = Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg(&src)
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOCACHE", dir.join("gocache"))
        .env("GOFLAGS", "")
        .output()
        .expect("go must be installed (test.sh installs golang-go and golang-golang-x-mod-dev)");
    assert!(
        r.status.success(),
        "building the Go verifier: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    out
}

/// Stops the server as an operator does (SIGTERM) and waits for it to exit.
fn stop(mut server: Server) {
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if server.child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the server did not stop on SIGTERM");
}

/// A plain HTTP/1.1 GET on loopback: (status, body).
fn http_get(port: u16, path: &str) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&all[..split]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, all[split + 4..].to_vec())
}

/// `palisade evidence verify ARGS --data-dir DIR`.
fn verify<S: AsRef<std::ffi::OsStr>>(dir: &Path, args: &[S]) -> (bool, String) {
    run(Command::new(bin())
        .args(["evidence", "verify"])
        .args(args)
        .arg("--data-dir")
        .arg(dir))
}

fn run(cmd: &mut Command) -> (bool, String) {
    let o = cmd.output().unwrap();
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// `palisade evidence entries`: the published entries, one per line after their index.
fn entries_of(dir: &Path) -> String {
    String::from_utf8(cli(dir, &["evidence", "entries"]).stdout).unwrap()
}

/// `palisade evidence key`: the log's verifier key.
fn log_key(dir: &Path, args: &[&str]) -> String {
    let mut a = vec!["evidence", "key"];
    a.extend_from_slice(args);
    String::from_utf8(cli(dir, &a).stdout)
        .unwrap()
        .trim()
        .to_string()
}

/// Writes `palisade.toml` in the data directory; its path.
fn configured(data: &Path, toml: &str) -> String {
    let path = data.join("palisade.toml");
    std::fs::write(&path, toml).unwrap();
    path.to_str().unwrap().to_string()
}

/// A copy of a directory (to tamper with).
fn copy_dir(from: &Path, to: &Path) {
    assert!(Command::new("cp")
        .arg("-r")
        .arg(from)
        .arg(to)
        .status()
        .unwrap()
        .success());
}

fn size_of(dir: &Path) -> u64 {
    std::fs::read_to_string(dir.join("evidence/checkpoint"))
        .ok()
        .and_then(|t| t.lines().nth(1).and_then(|l| l.parse().ok()))
        .unwrap_or(0)
}

/// An offer the shield refuses (415): the body is not SDP.
fn hostile(c: &Client, port: u16, i: u32) -> String {
    let body = "MZ\u{1}\u{2}not a session description";
    let m = format!("INVITE sip:bob@127.0.0.1:{port} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{};branch=z9hG4bKev{i}\nMax-Forwards: 70\nFrom: <sip:mallory@evil.example>;tag=m{i}\nTo: <sip:bob@127.0.0.1:{port}>\nCall-ID: evil-{i}\nCSeq: 1 INVITE\nContact: <sip:mallory@127.0.0.1:{}>\nContent-Type: application/octet-stream\nContent-Length: {}\n\n{body}", c.port(), c.port(), body.len());
    c.send(port, &m);
    let r = c.recv_final();
    assert_eq!(r.status(), Some(415), "the shield refuses it");
    m.replace('\n', "\r\n") // as `send` puts it on the wire
}

#[test]
fn the_servers_log_verifies_with_go_and_tampering_is_located() {
    let port = ports();
    let data = tempdir("evidence");
    add_users(&data, &["alice", "bob"]);
    let admin = port + 7;
    let config = configured(&data, &format!("[admin]\nlisten = \"127.0.0.1:{admin}\"\n"));
    let server = Server::start_in(data, port, &["--config", &config]);
    let tmp = tempdir("evidence-go");
    let verifier = go_verifier(&tmp);
    let dir = server.dir.clone();
    let server_addr = format!("127.0.0.1:{}", server.port).parse().unwrap();
    let bank = sim::Bank::start("127.0.0.1", |_| sim::Answer::Never);
    let bob = sim::Ua::new("127.0.0.1", "bob", server_addr, "SimPhone/1.0");
    assert_eq!(bob.register_as("bob", bank.addr, 3600), 200);
    let c = Client::new();
    let sent: Vec<String> = (0..5).map(|i| hostile(&c, server.port, i)).collect();
    assert!(
        wait_until(Duration::from_secs(10), || size_of(&dir) >= 6),
        "server-start and five refusals are published"
    );
    let vkey = log_key(&dir, &[]);
    assert!(vkey.starts_with("127.0.0.1/palisade-evidence+"), "{vkey}");
    let old = tmp.join("old-checkpoint");
    std::fs::copy(dir.join("evidence/checkpoint"), &old).unwrap();
    for i in 5..8 {
        hostile(&c, server.port, i);
    }
    assert!(wait_until(Duration::from_secs(10), || size_of(&dir) >= 9));
    let evidence = dir.join("evidence");

    // The admin listener serves the log read-only, as tlog-tiles lays it out.
    let checkpoint = std::fs::read(evidence.join("checkpoint")).unwrap();
    assert_eq!(http_get(admin, "/evidence/checkpoint"), (200, checkpoint));
    let w = size_of(&dir);
    let tile = format!("tile/0/000.p/{w}");
    assert_eq!(
        http_get(admin, &format!("/evidence/{tile}")),
        (200, std::fs::read(evidence.join(&tile)).unwrap())
    );
    for hidden in [
        "/evidence/../evidence.key",
        "/evidence/journal",
        "/evidence/origin",
        "/palisade.db",
    ] {
        assert_eq!(http_get(admin, hidden).0, 404, "{hidden}");
    }

    // Go's x/mod: signature, every entry's inclusion, consistency with the older tree.
    let (ok, out) = run(Command::new(&verifier).arg(&evidence).arg(&vkey).arg(&old));
    assert!(ok, "Go verifier: {out}");
    assert!(
        out.contains("consistent with the tree of size") && out.contains("entries verified"),
        "{out}"
    );

    // The entries: canonical JSON, refusals with their SHA-256.
    let listing = entries_of(&dir);
    let refusal = listing
        .lines()
        .find(|l| l.contains("\"kind\":\"offer-refused\""))
        .expect("a refusal entry");
    let (index, entry) = refusal.split_once(' ').unwrap();
    let v: serde_json::Value = serde_json::from_str(entry).unwrap();
    assert_eq!(v["status"], 415);
    assert_eq!(v["sha256"].as_str().unwrap().len(), 64);
    // The refused message itself is in the blob store, named by the hash in the entry.
    assert_eq!(v["message_kept"], true, "{entry}");
    let blob_name = v["message_sha256"].as_str().unwrap().to_string();
    let blob = std::fs::read(evidence.join("blobs").join(&blob_name)).unwrap();
    assert!(
        sent.iter().any(|m| m.as_bytes() == blob),
        "the blob is the message exactly as it was sent"
    );
    assert_eq!(
        serde_json::to_string(&v).unwrap(),
        entry,
        "canonical: sorted keys, no spaces"
    );

    // A proof file of that entry, checked with the key only.
    let proof = tmp.join("refusal.tlog-proof");
    let (ok, out) = run(Command::new(bin())
        .args(["evidence", "proof", "--index", index, "--out"])
        .arg(&proof)
        .arg("--data-dir")
        .arg(&dir));
    assert!(ok, "{out}");
    let entry_file = tmp.join("entry.json");
    std::fs::write(&entry_file, entry).unwrap();
    let (ok, out) = run(Command::new(bin())
        .args(["evidence", "check-proof"])
        .arg(&proof)
        .arg("--entry")
        .arg(&entry_file)
        .args(["--key", &vkey]));
    assert!(ok, "{out}");
    let (ok, _) = run(Command::new(bin())
        .args(["evidence", "check-proof"])
        .arg(&proof)
        .args(["--entry", "{\"kind\":\"forged\"}", "--key", &vkey]));
    assert!(!ok, "another entry does not check");
    // ... and by Go's tlog (the proof file parsed by the Go program, CheckRecord)
    let (ok, out) = run(Command::new(&verifier)
        .arg("-proof")
        .arg(&proof)
        .arg(&entry_file)
        .arg(&vkey));
    assert!(
        ok && out.contains(&format!("ok: entry {index} is in the tree")),
        "{out}"
    );
    let forged = tmp.join("forged.json");
    std::fs::write(&forged, "{\"kind\":\"forged\"}").unwrap();
    let (ok, out) = run(Command::new(&verifier)
        .arg("-proof")
        .arg(&proof)
        .arg(&forged)
        .arg(&vkey));
    assert!(!ok, "Go refuses the proof for another entry: {out}");

    // Export, verify the copy (Palisade and Go), then tamper with copies.
    let export = tmp.join("export");
    assert!(cli(&dir, &["evidence", "export", export.to_str().unwrap()])
        .status
        .success());
    assert!(export.join("README").exists());
    let (ok, out) = verify(
        &dir,
        &[export.as_os_str(), OsStr::new("--key"), OsStr::new(&vkey)],
    );
    assert!(ok, "{out}");
    let (ok, out) = run(Command::new(&verifier).arg(&export).arg(&vkey));
    assert!(ok, "{out}");
    let size = size_of(&dir);
    let tile = format!(
        "tile/0/000.p/{}",
        std::fs::read_to_string(export.join("checkpoint"))
            .unwrap()
            .lines()
            .nth(1)
            .unwrap()
    );
    let bundle = tile.replace("tile/0/", "tile/entries/");
    for (what, path, at) in [("tile", &tile, 40usize), ("entry", &bundle, 20)] {
        let copy = tmp.join(format!("tampered-{what}"));
        copy_dir(&export, &copy);
        let p = copy.join(path);
        let mut b = std::fs::read(&p).unwrap();
        b[at] ^= 1;
        std::fs::write(&p, b).unwrap();
        let (ok, out) = verify(
            &dir,
            &[copy.as_os_str(), OsStr::new("--key"), OsStr::new(&vkey)],
        );
        assert!(!ok, "{what}: tampering found");
        assert!(out.contains(&tile), "{what}: located in {tile}: {out}");
        let (ok, out) = run(Command::new(&verifier).arg(&copy).arg(&vkey));
        assert!(!ok, "{what}: Go refuses it too: {out}");
    }

    // A blob changed or removed: found, and the entry that names it is given.
    let copy = tmp.join("tampered-blob");
    copy_dir(&export, &copy);
    let p = copy.join("blobs").join(&blob_name);
    let mut b = std::fs::read(&p).unwrap();
    b[10] ^= 1;
    std::fs::write(&p, b).unwrap();
    let (ok, out) = verify(
        &dir,
        &[copy.as_os_str(), OsStr::new("--key"), OsStr::new(&vkey)],
    );
    assert!(!ok, "blob tampering found");
    assert!(
        out.contains(&format!("blobs/{blob_name} (named by entry {index})")),
        "{out}"
    );
    std::fs::remove_file(&p).unwrap();
    let (ok, out) = verify(
        &dir,
        &[copy.as_os_str(), OsStr::new("--key"), OsStr::new(&vkey)],
    );
    assert!(!ok, "a missing blob is found");
    assert!(out.contains(&format!("entry {index}")), "{out}");

    // A restart: the log goes on (server-stop, server-start) and stays consistent.
    let last = tmp.join("last-seen");
    let (ok, out) = verify(&dir, &[OsStr::new("--last"), last.as_os_str()]);
    assert!(ok, "{out}");
    let port = server.port;
    stop(server);
    let server = Server::start_in(dir.clone(), port, &[]);
    let starts = || {
        entries_of(&dir)
            .matches("\"kind\":\"server-start\"")
            .count()
    };
    assert!(
        wait_until(Duration::from_secs(10), || starts() == 2),
        "the new start is published (size was {size})"
    );
    let (ok, out) = verify(&dir, &[OsStr::new("--last"), last.as_os_str()]);
    assert!(
        ok && out.contains("consistent with the last one seen"),
        "{out}"
    );
    let listing = entries_of(&dir);
    assert!(listing.contains("\"kind\":\"server-stop\""), "{listing}");
    assert_eq!(listing.matches("\"kind\":\"server-start\"").count(), 2);
    // kill -9 after more refusals: what was committed is back after the restart
    let c = Client::new();
    for i in 8..11 {
        hostile(&c, port, i);
    }
    // No waiting: a refusal is sent only once its entry is durable, so the kill right
    // after the last 415 arrived cannot lose it.
    drop(server); // SIGKILL: the last entries are in the journal, maybe not in a checkpoint
    let server = Server::start_in(dir.clone(), port, &[]);
    let refusals = || {
        entries_of(&dir)
            .matches("\"kind\":\"offer-refused\"")
            .count()
    };
    assert!(
        wait_until(Duration::from_secs(10), || refusals() == 11),
        "every committed refusal is in the log after kill -9 ({} found)",
        refusals()
    );
    let (ok, out) = verify(&dir, &[OsStr::new("--last"), last.as_os_str()]);
    assert!(ok, "{out}");
    let (ok, out) = run(Command::new(&verifier)
        .arg(dir.join("evidence"))
        .arg(&vkey)
        .arg(&old));
    assert!(ok, "{out}");
    drop(server);
}

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
        .skip(300)
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

/// A witness process (`palisade evidence witness`), killed when dropped.
struct WitnessProc(std::process::Child);

impl Drop for WitnessProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_witness(key: &Path, name: &str, log_key: &str, port: u16) -> WitnessProc {
    let child = Command::new(bin())
        .args(["evidence", "witness", "--key"])
        .arg(key)
        .args(["--name", name, "--log-key", log_key, "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || std::net::TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_ok()),
        "the witness listens"
    );
    WitnessProc(child)
}

/// Two witnesses (separate processes, own keys) cosign each new checkpoint through
/// C2SP tlog-witness; `verify` can require N of them; a witness that was down catches
/// up; a second log under the same key and origin (a fork) never gets a cosignature.
#[test]
fn witnesses_cosign_and_refuse_a_fork() {
    let port = ports();
    let data = tempdir("evidence-witness");
    add_users(&data, &["alice", "bob"]);
    // the log's key before its first start, so that the witnesses can be told it
    std::fs::write(data.join("evidence.key"), "11".repeat(32)).unwrap();
    let vkey = log_key(&data, &["--domain", "127.0.0.1"]);
    assert!(vkey.starts_with("127.0.0.1/palisade-evidence+"), "{vkey}");
    let tmp = tempdir("evidence-witness-keys");
    let (w1_port, w2_port) = (port + 8, port + 9);
    let wkey = |k: &Path, name: &str| {
        let o = Command::new(bin())
            .args(["evidence", "witness", "--key"])
            .arg(k)
            .args(["--name", name, "--print-key"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{o:?}");
        String::from_utf8(o.stdout).unwrap().trim().to_string()
    };
    let (k1, k2) = (tmp.join("w1.key"), tmp.join("w2.key"));
    let (wk1, wk2) = (wkey(&k1, "witness.test/w1"), wkey(&k2, "witness.test/w2"));
    let w1 = start_witness(&k1, "witness.test/w1", &vkey, w1_port);
    let w2 = start_witness(&k2, "witness.test/w2", &vkey, w2_port);
    let config = configured(&data, &format!(
            "[admin]\nlisten = \"127.0.0.1:{}\"\n[evidence]\ncheckpoint_interval_ms = 200\nwitnesses = [{{ url = \"http://127.0.0.1:{w1_port}\", key = \"{wk1}\" }}, {{ url = \"http://127.0.0.1:{w2_port}\", key = \"{wk2}\" }}]\n",
            port + 7
        ));
    let server = Server::start_in(data, port, &["--config", &config]);
    let dir = server.dir.clone();
    let bank = sim::Bank::start("127.0.0.1", |_| sim::Answer::Never);
    let bob = sim::Ua::new(
        "127.0.0.1",
        "bob",
        format!("127.0.0.1:{port}").parse().unwrap(),
        "SimPhone/1.0",
    );
    assert_eq!(bob.register_as("bob", bank.addr, 3600), 200);
    let c = Client::new();
    for i in 0..3 {
        hostile(&c, port, i);
    }
    let with = |keys: &[&str], n: usize| {
        let mut args: Vec<String> = Vec::new();
        for k in keys {
            args.push("--witness".into());
            args.push((*k).into());
        }
        args.push("--witnesses".into());
        args.push(n.to_string());
        verify(&dir, &args)
    };
    assert!(
        wait_until(Duration::from_secs(10), || size_of(&dir) >= 4
            && with(&[&wk1, &wk2], 2).0),
        "both witnesses cosign: {}",
        with(&[&wk1, &wk2], 2).1
    );
    assert!(
        wait_until(Duration::from_secs(10), || {
            let (ok, out) = with(&[&wk1, &wk2], 2);
            ok && out.contains("cosigned by witness.test/w1, witness.test/w2")
        }),
        "{}",
        with(&[&wk1, &wk2], 2).1
    );
    // the cosigned checkpoint is still a checkpoint Go verifies (it ignores the
    // cosignature lines it has no key for)
    let verifier = go_verifier(&tmp);
    let (ok, out) = run(Command::new(&verifier).arg(dir.join("evidence")).arg(&vkey));
    assert!(ok, "{out}");
    let note = std::fs::read_to_string(dir.join("evidence/checkpoint")).unwrap();
    assert_eq!(note.matches('\u{2014}').count(), 3, "{note}");

    // w2 goes down: new checkpoints carry w1's cosignature only
    drop(w2);
    let before = size_of(&dir);
    for i in 3..6 {
        hostile(&c, port, i);
    }
    assert!(wait_until(Duration::from_secs(10), || size_of(&dir)
        > before
        && with(&[&wk1], 1).0));
    // (a live log: a checkpoint is verified as read, and its cosignatures arrive a
    // moment after it is published)
    assert!(
        wait_until(Duration::from_secs(10), || {
            let (ok, out) = with(&[&wk1, &wk2], 2);
            !ok && out.contains("1 of the 2 required")
        }),
        "{}",
        with(&[&wk1, &wk2], 2).1
    );
    assert!(
        wait_until(Duration::from_secs(10), || with(&[&wk1, &wk2], 1).0),
        "{}",
        with(&[&wk1, &wk2], 1).1
    );
    // w2 back (same state): it is told where it stopped (409), then cosigns the newer
    // checkpoint with a consistency proof from its old size
    let w2 = start_witness(&k2, "witness.test/w2", &vkey, w2_port);
    hostile(&c, port, 6);
    assert!(
        wait_until(Duration::from_secs(10), || with(&[&wk1, &wk2], 2).0),
        "w2 catches up: {}",
        with(&[&wk1, &wk2], 2).1
    );

    // A fork: another log with the same key and origin but other entries. The
    // witnesses have cosigned a larger tree that this one does not extend: no
    // cosignature, ever.
    let fork_data = tempdir("evidence-fork");
    add_users(&fork_data, &["alice", "bob"]);
    std::fs::write(fork_data.join("evidence.key"), "11".repeat(32)).unwrap();
    let fork_port = ports();
    let fork_cfg = configured(&fork_data, &format!(
            "[admin]\nlisten = \"\"\n[evidence]\ncheckpoint_interval_ms = 100\nwitnesses = [{{ url = \"http://127.0.0.1:{w1_port}\", key = \"{wk1}\" }}]\n"
        ));
    let fork = Server::start_in(fork_data, fork_port, &["--config", &fork_cfg]);
    let fork_dir = fork.dir.clone();
    assert!(wait_until(Duration::from_secs(10), || size_of(&fork_dir) >= 1));
    std::thread::sleep(Duration::from_secs(1));
    let (ok, out) = verify(&fork_dir, &["--witness", &wk1]);
    assert!(!ok && out.contains("0 of the 1 required"), "{out}");
    // the real log is still cosigned by both
    hostile(&c, port, 7);
    assert!(wait_until(Duration::from_secs(10), || with(
        &[&wk1, &wk2],
        2
    )
    .0));
    drop((fork, server, w1, w2));
}
