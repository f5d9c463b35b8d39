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

/// A witness's verifier key (`--print-key`; the key file is made if missing).
fn witness_key(key: &Path, name: &str) -> String {
    let o = Command::new(bin())
        .args(["evidence", "witness", "--key"])
        .arg(key)
        .args(["--name", name, "--print-key"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    String::from_utf8(o.stdout).unwrap().trim().to_string()
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
    let (k1, k2) = (tmp.join("w1.key"), tmp.join("w2.key"));
    let (wk1, wk2) = (
        witness_key(&k1, "witness.test/w1"),
        witness_key(&k2, "witness.test/w2"),
    );
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

/// A private CA (ca.pem) and a certificate for 127.0.0.1 that it signed (cert.pem,
/// key.pem), made by `openssl` in `dir`.
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (ca, ca_key) = (dir.join("ca.pem"), dir.join("ca.key"));
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let openssl = |subject: &str, key: &Path, out: &Path, extra: &[&OsStr]| {
        let st = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", subject, "-keyout"])
            .arg(key)
            .arg("-out")
            .arg(out)
            .args(extra)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl");
        assert!(st.success());
    };
    openssl("/CN=Palisade test CA", &ca_key, &ca, &[]);
    openssl(
        "/CN=127.0.0.1",
        &key,
        &cert,
        &[
            "-addext".as_ref(),
            "subjectAltName=IP:127.0.0.1".as_ref(),
            "-addext".as_ref(),
            "basicConstraints=critical,CA:FALSE".as_ref(),
            "-CA".as_ref(),
            ca.as_os_str(),
            "-CAkey".as_ref(),
            ca_key.as_os_str(),
        ],
    );
    (ca, cert, key)
}

/// One HTTP request or answer with a Content-Length body, read whole: its text, or
/// nothing when the connection ends first (a client that refused the certificate).
fn read_message(s: &mut impl std::io::Read) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if body.len() >= len {
                return Some(text);
            }
        }
    }
}

/// An HTTPS front for a plain-HTTP witness (TLS ends here, with `cert`): each request
/// is passed on to `127.0.0.1:backend` and its answer back. Its port, and the requests
/// it received.
fn tls_front(
    cert: &Path,
    key: &Path,
    backend: u16,
) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    use tokio_rustls::rustls;
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(cert).unwrap(),
    ))
    .collect::<Result<Vec<_>, _>>()
    .unwrap();
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(key).unwrap(),
    ))
    .unwrap()
    .unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap(),
    );
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = got.clone();
    std::thread::spawn(move || {
        for tcp in l.incoming() {
            let Ok(tcp) = tcp else { continue };
            tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let Some(request) = read_message(&mut tls) else {
                continue;
            };
            seen.lock().unwrap().push(request.clone());
            let Ok(mut plain) = std::net::TcpStream::connect(("127.0.0.1", backend)) else {
                continue; // the witness is down: the connection just closes
            };
            plain
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            plain.write_all(request.as_bytes()).unwrap();
            if let Some(answer) = read_message(&mut plain) {
                let _ = tls.write_all(answer.as_bytes());
            }
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    (port, got)
}

/// A witness reached over HTTPS under a private CA (a TLS front made here with an
/// openssl certificate): the server verifies the witness's certificate against the
/// witness's `ca_file`, its `add-checkpoint` arrives whole under the URL's path, and
/// the cosignature that comes back is published (`verify --witness` checks it).
#[test]
fn a_witness_over_https_cosigns() {
    let port = ports();
    let data = tempdir("evidence-witness-https");
    add_users(&data, &["alice", "bob"]);
    std::fs::write(data.join("evidence.key"), "22".repeat(32)).unwrap();
    let vkey = log_key(&data, &["--domain", "127.0.0.1"]);
    let tmp = tempdir("evidence-witness-https-keys");
    let k = tmp.join("w.key");
    let wk = witness_key(&k, "witness.test/tls");
    let w = start_witness(&k, "witness.test/tls", &vkey, port + 8);
    let (ca, cert, key) = certificates(&tmp);
    let (front, requests) = tls_front(&cert, &key, port + 8);
    let config = configured(
        &data,
        &format!(
            "[admin]\nlisten = \"\"\n[evidence]\ncheckpoint_interval_ms = 200\nwitnesses = [{{ url = \"https://127.0.0.1:{front}/tlog\", key = \"{wk}\", ca_file = {ca:?} }}]\n"
        ),
    );
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
    for i in 0..2 {
        hostile(&c, port, i);
    }
    assert!(
        wait_until(Duration::from_secs(10), || size_of(&dir) >= 2
            && verify(&dir, &["--witness", &wk]).0),
        "the witness over https cosigns: {}\n{}",
        verify(&dir, &["--witness", &wk]).1,
        server.log_text()
    );
    let got = requests.lock().unwrap().clone();
    let first = got.first().expect("a request reached the HTTPS front");
    assert!(
        first.starts_with("POST /tlog/add-checkpoint HTTP/1.1\r\n"),
        "{first}"
    );
    let body = first.split_once("\r\n\r\n").unwrap().1;
    assert!(
        body.starts_with("old 0\n\n127.0.0.1/palisade-evidence\n"),
        "{body}"
    );
    drop((server, w));
}

/// The witness's listener refuses with the status that says why: another path (404),
/// another method (405), no Content-Length (400), a body over 64 KiB (413), a body that
/// is not an add-checkpoint request (400, from the witness itself).
#[test]
fn the_witness_listener_refuses_precisely() {
    use std::io::Write;
    let port = ports();
    let tmp = tempdir("witness-refusals");
    let k = tmp.join("w.key");
    let data = tempdir("witness-refusals-log");
    std::fs::write(data.join("evidence.key"), "33".repeat(32)).unwrap();
    let vkey = log_key(&data, &["--domain", "127.0.0.1"]);
    let _w = start_witness(&k, "witness.test/r", &vkey, port);
    let ask = |request: &str| {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let answer = read_message(&mut s).unwrap();
        let status: u16 = answer.split(' ').nth(1).unwrap().parse().unwrap();
        (status, answer.split_once("\r\n\r\n").unwrap().1.to_string())
    };
    let h = "Host: 127.0.0.1\r\nConnection: close";
    assert_eq!(
        ask(&format!("GET /add-checkpoint HTTP/1.1\r\n{h}\r\n\r\n")).0,
        405
    );
    assert_eq!(
        ask(&format!(
            "POST /other HTTP/1.1\r\n{h}\r\nContent-Length: 0\r\n\r\n"
        ))
        .0,
        404
    );
    assert_eq!(
        ask(&format!(
            "POST /add-checkpoint HTTP/1.1\r\n{h}\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"
        )),
        (400, "a Content-Length is required\n".into())
    );
    assert_eq!(
        ask(&format!(
            "POST /w/add-checkpoint HTTP/1.1\r\n{h}\r\nContent-Length: 70000\r\n\r\n"
        ))
        .0,
        413
    );
    let (status, why) = ask(&format!(
        "POST /w/add-checkpoint HTTP/1.1\r\n{h}\r\nContent-Length: 8\r\n\r\nnonsense"
    ));
    assert_eq!(status, 400, "{why}");
}
