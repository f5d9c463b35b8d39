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
#[path = "../common/mod.rs"]
mod common;
#[path = "../campaign/sim.rs"]
#[allow(dead_code)]
mod sim;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

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

mod durability;
mod witness;
