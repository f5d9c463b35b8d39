//! Witnesses (`palisade evidence witness`) cosign the server's checkpoints and refuse a
//! fork.

use super::*;

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
