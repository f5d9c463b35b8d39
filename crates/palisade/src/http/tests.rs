//! The client against real listeners on loopback: plain HTTP, and HTTPS with a
//! certificate made by `openssl` under a private CA that only the configured CA file
//! names.
use super::*;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;

use tokio_rustls::rustls;

/// A fresh directory under the system's temporary one.
fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("palisade-http-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A private CA (ca.pem) and a certificate for 127.0.0.1 that it signed (cert.pem,
/// key.pem), in `dir`.
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (ca, ca_key) = (dir.join("ca.pem"), dir.join("ca.key"));
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let openssl = |subject: &str, key: &Path, out: &Path, extra: &[&std::ffi::OsStr]| {
        let st = std::process::Command::new("openssl")
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

/// Reads one HTTP request (head and Content-Length body) from `s`: (head, body), or
/// nothing when the connection ends first (a client that refused the certificate).
fn read_request(s: &mut impl Read) -> Option<(String, String)> {
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
            if let Some(body) = body.get(..len) {
                return Some((head.to_string(), body.to_string()));
            }
        }
    }
}

/// A server that takes one request per connection and answers `answer`; what it
/// received comes out of the receiver.
fn serve(
    tls: Option<Arc<rustls::ServerConfig>>,
    answer: &'static [u8],
) -> (u16, Receiver<(String, String)>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(tcp) = s else { continue };
            tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let got = match &tls {
                None => {
                    let mut tcp: TcpStream = tcp;
                    let Some(got) = read_request(&mut tcp) else {
                        continue;
                    };
                    let _ = tcp.write_all(answer);
                    got
                }
                Some(cfg) => {
                    let conn = rustls::ServerConnection::new(cfg.clone()).unwrap();
                    let mut s = rustls::StreamOwned::new(conn, tcp);
                    let Some(got) = read_request(&mut s) else {
                        continue;
                    };
                    let _ = s.write_all(answer);
                    s.conn.send_close_notify();
                    let _ = s.flush();
                    got
                }
            };
            let _ = tx.send(got);
        }
    });
    (port, rx)
}

fn tls_config(cert: &Path, key: &Path) -> Arc<rustls::ServerConfig> {
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
    Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap(),
    )
}

/// An `https://` webhook under a private CA: with that CA's file the JSON arrives
/// whole, over TLS, and the answer's status and body come back; with the default
/// (Mozilla) roots the same server is refused for its certificate, and nothing is
/// posted.
#[test]
fn https_post_is_verified_against_the_configured_ca() {
    let dir = tempdir("https");
    let (ca, cert, key) = certificates(&dir);
    let (port, got) = serve(
        Some(tls_config(&cert, &key)),
        b"HTTP/1.1 202 Accepted\r\nContent-Length: 6\r\nContent-Type: text/plain\r\n\r\nthanks",
    );
    let url = format!("https://127.0.0.1:{port}/hook");
    let body = r#"{"user":"alice","text":"Security notice"}"#;

    let client = Client::new(Some(&ca)).unwrap();
    let (code, answer) = client.post(&url, "application/json", body).unwrap();
    assert_eq!((code, answer.as_str()), (202, "thanks"));
    let (head, received) = got.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(received, body);
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("post /hook http/1.1\r\n"), "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(head.contains("user-agent: palisade"), "{head}");

    let e = Client::new(None)
        .unwrap()
        .post(&url, "application/json", body)
        .unwrap_err();
    assert!(
        format!("{e:#}")
            .to_ascii_lowercase()
            .contains("certificate"),
        "{e:#}"
    );
    assert!(
        got.recv_timeout(Duration::from_millis(500)).is_err(),
        "nothing reaches a server whose certificate was refused"
    );
    // the webhook client trusts what `notify.ca_file` names
    set_webhook_roots(Some(&ca)).unwrap();
    assert_eq!(post_json(&url, body).unwrap(), 202);
    assert_eq!(got.recv_timeout(Duration::from_secs(5)).unwrap().1, body);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Plain `http://` keeps working; an error status is an answer, not an error; at most
/// 64 KiB of an answer's body is read.
#[test]
fn plain_http_statuses_and_the_answer_cap() {
    let (port, got) = serve(
        None,
        b"HTTP/1.1 409 Conflict\r\nContent-Length: 3\r\n\r\n12\n",
    );
    let client = Client::new(None).unwrap();
    let url = format!("http://127.0.0.1:{port}/w/add-checkpoint");
    assert_eq!(
        client.post(&url, "text/plain", "old 0\n\nx\n").unwrap(),
        (409, "12\n".to_string())
    );
    assert_eq!(got.recv().unwrap().1, "old 0\n\nx\n");

    let big = Box::leak(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n{}",
            "a".repeat(100_000)
        )
        .into_bytes()
        .into_boxed_slice(),
    );
    let (port, _got) = serve(None, big);
    let (code, answer) = client
        .post(&format!("http://127.0.0.1:{port}/"), "text/plain", "x")
        .unwrap();
    assert_eq!((code, answer.len()), (200, 64 * 1024));
}

/// A CA file that holds no certificate, or none at all, is refused when the client is
/// made (at start), not at the first POST.
#[test]
fn a_ca_file_without_certificates_is_refused() {
    let dir = tempdir("ca");
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let e = Client::new(Some(&empty)).err().unwrap();
    assert!(format!("{e:#}").contains("no PEM certificate"), "{e:#}");
    assert!(Client::new(Some(&dir.join("missing.pem"))).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
