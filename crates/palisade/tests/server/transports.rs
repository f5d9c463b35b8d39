//! TLS, the socket an answer leaves from, and several workers sharing registrations
//! and calls.

use super::*;

#[test]
fn tls_call() {
    use std::sync::Arc;
    use tokio_rustls::rustls;
    let dir = tempdir("tls");
    add_users(&dir, &["bob"]);
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let st = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl");
    assert!(st.success());
    let cfg = dir.join("palisade.toml");
    std::fs::write(&cfg, format!("[tls]\ncert = {:?}\nkey = {:?}\n", cert, key)).unwrap();
    let port = ports();
    let tls_port = port + 1;
    let s = Server::start_in(
        dir.clone(),
        port,
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--listen",
            &format!("tls:127.0.0.1:{tls_port}"),
        ],
    );

    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(&cert).unwrap(),
    )) {
        roots.add(c.unwrap()).unwrap();
    }
    let config = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    let connect = || {
        let tcp = std::net::TcpStream::connect(("127.0.0.1", tls_port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let conn = rustls::ClientConnection::new(config.clone(), name).unwrap();
        rustls::StreamOwned::new(conn, tcp)
    };
    fn send(st: &mut impl Write, text: &str) {
        st.write_all(text.replace("\r\n", "\n").replace('\n', "\r\n").as_bytes())
            .unwrap();
        st.flush().unwrap();
    }
    fn recv(st: &mut impl Read, buf: &mut Vec<u8>) -> Message<'static> {
        let mut chunk = [0u8; 4096];
        loop {
            if let Ok(palisade_sip::Frame::Message {
                message, consumed, ..
            }) = palisade_sip::frame_stream(buf, &palisade_sip::Limits::default())
            {
                let m = message.into_owned();
                buf.drain(..consumed);
                return m;
            }
            let n = st.read(&mut chunk).expect("TLS read");
            assert!(n > 0, "connection closed");
            buf.extend_from_slice(&chunk[..n]);
        }
    }
    let mut bob = connect();
    let bob_local = bob.sock.local_addr().unwrap().port();
    let mut bbuf = Vec::new();
    send(
        &mut bob,
        &register_text(&s, bob_local, "bob", 1, 600, None, "TLS"),
    );
    let ch = recv(&mut bob, &mut bbuf);
    assert_eq!(ch.status(), Some(401));
    let nonce = challenge_nonce(&ch, "MD5");
    let auth = digest(
        Algorithm::Md5,
        "bob",
        "secret",
        &nonce,
        "REGISTER",
        &format!("sip:127.0.0.1:{}", s.port),
    );
    send(
        &mut bob,
        &register_text(&s, bob_local, "bob", 2, 600, Some(&auth), "TLS"),
    );
    assert_eq!(recv(&mut bob, &mut bbuf).status(), Some(200));

    let mut caller = connect();
    let c_local = caller.sock.local_addr().unwrap().port();
    let mut cbuf = Vec::new();
    send(
        &mut caller,
        &external_invite(&s, c_local, "bob", "tls1", "TLS"),
    );
    assert_eq!(recv(&mut caller, &mut cbuf).status(), Some(100));
    let inv = recv(&mut bob, &mut bbuf);
    assert_eq!(inv.method().unwrap().as_str(), "INVITE");
    assert!(inv
        .record_routes()
        .next()
        .unwrap()
        .uri
        .to_string()
        .contains("transport=tls"));
    send(&mut bob, &answer(&inv, 200));
    let ok = recv(&mut caller, &mut cbuf);
    assert_eq!(ok.status(), Some(200));
    let route = ok.record_routes().next().unwrap().uri.to_string();
    send(&mut caller, &format!("ACK sip:bob@127.0.0.1:{bob_local};transport=tls SIP/2.0\nVia: SIP/2.0/TLS 127.0.0.1:{c_local};branch=z9hG4bKtlsack\nRoute: <{route}>\nMax-Forwards: 70\nFrom: <sip:ext@example.net>;tag=etls1\nTo: <sip:bob@127.0.0.1:{}>;tag=callee\nCall-ID: tls1@example.net\nCSeq: 1 ACK\nContent-Length: 0\n\n", s.port));
    assert_eq!(recv(&mut bob, &mut bbuf).method().unwrap().as_str(), "ACK");
    send(&mut caller, &format!("BYE sip:bob@127.0.0.1:{bob_local};transport=tls SIP/2.0\nVia: SIP/2.0/TLS 127.0.0.1:{c_local};branch=z9hG4bKtlsbye\nRoute: <{route}>\nMax-Forwards: 70\nFrom: <sip:ext@example.net>;tag=etls1\nTo: <sip:bob@127.0.0.1:{}>;tag=callee\nCall-ID: tls1@example.net\nCSeq: 2 BYE\nContent-Length: 0\n\n", s.port));
    let bye = recv(&mut bob, &mut bbuf);
    assert_eq!(bye.method().unwrap().as_str(), "BYE");
    send(&mut bob, &answer(&bye, 200));
    assert_eq!(recv(&mut caller, &mut cbuf).status(), Some(200));
}

/// With two UDP listeners (two addresses), an answer leaves from the socket its request
/// arrived on: a phone behind NAT only lets in what comes from the address it wrote to.
#[test]
fn an_answer_leaves_from_the_socket_the_request_arrived_on() {
    let port = ports();
    let dir = tempdir("two-sockets");
    add_users(&dir, &["alice"]);
    let second = format!("udp:127.0.0.2:{port}");
    let s = Server::start_in(dir, port, &["--listen", &second]);
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let me = sock.local_addr().unwrap();
    for (i, to) in ["127.0.0.2", "127.0.0.1", "127.0.0.2"].iter().enumerate() {
        let req = format!("OPTIONS sip:{to}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKtwo{i}\r\nMax-Forwards: 70\r\nFrom: <sip:x@127.0.0.1>;tag=t{i}\r\nTo: <sip:{to}>\r\nCall-ID: two-sockets-{i}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n");
        sock.send_to(req.as_bytes(), format!("{to}:{port}"))
            .unwrap();
        let mut buf = [0u8; 4096];
        let (_, from) = sock.recv_from(&mut buf).expect("an answer");
        assert_eq!(
            from.to_string(),
            format!("{to}:{port}"),
            "request {i} went to {to}: {}",
            String::from_utf8_lossy(&buf)
        );
    }
    drop(s);
}

/// Four workers (`server.workers = 4`, more than this machine's cores): SIPp registers 16
/// callees and places 48 authenticated calls to them, each with its own Call-ID, so the
/// messages of most calls arrive at a worker that does not own them and are handed over
/// (registrations saved on one shard, calls routed by another, responses from the
/// callee's socket forwarded to the caller's shard). Every call completes, and the
/// server says how many workers it runs. The datagrams are spread by the kernel's hash
/// (`udp_gather = false`; gathered, the default at this light load, every datagram would
/// reach worker 0, which runs the other shards itself while they sleep: the path every
/// other test on a machine with several cores takes).
#[test]
fn four_workers_share_registrations_and_calls() {
    let callees: Vec<String> = (1..=16).map(|i| format!("callee{i}")).collect();
    let callers: Vec<String> = (1..=48).map(|i| format!("caller{i}")).collect();
    let names: Vec<&str> = callees
        .iter()
        .chain(callers.iter())
        .map(String::as_str)
        .collect();
    let dir = tempdir("workers");
    add_users(&dir, &names);
    let cfg = dir.join("palisade.toml");
    std::fs::write(&cfg, "[server]\nworkers = 4\nudp_gather = false\n").unwrap();
    let port = ports();
    let s = Server::start_in(dir, port, &["--config", cfg.to_str().unwrap()]);
    assert!(
        s.log_text().contains("workers=4"),
        "the server reports its workers:\n{}",
        s.log_text()
    );
    let uas_port = s.port + 1;
    let regs: Vec<String> = callees
        .iter()
        .map(|c| format!("{c};[authentication username={c} password=secret]"))
        .collect();
    let inf = csv(&s, "callees.csv", &regs);
    let (ok, trace) = sipp(
        &s,
        "reg",
        &[
            "-sf",
            scenario("register.xml").to_str().unwrap(),
            "-inf",
            inf.to_str().unwrap(),
            "-key",
            "domain",
            &s.domain(),
            "-key",
            "contact_host",
            "127.0.0.1",
            "-key",
            "contact_port",
            &uas_port.to_string(),
            "-key",
            "expires",
            "3600",
            "-m",
            "16",
            "-r",
            "50",
            "-p",
            &(s.port + 2).to_string(),
        ],
    );
    assert!(ok, "registrations failed:\n{trace}");
    let uas = sipp_bg(
        &s,
        "uas",
        &[
            "-sf",
            scenario("uas.xml").to_str().unwrap(),
            "-p",
            &uas_port.to_string(),
            "-m",
            "48",
        ],
    );
    let calls: Vec<String> = callers
        .iter()
        .enumerate()
        .map(|(i, c)| {
            format!(
                "{c};callee{};[authentication username={c} password=secret]",
                i % 16 + 1
            )
        })
        .collect();
    let inf = csv(&s, "calls.csv", &calls);
    let (ok, trace) = sipp(
        &s,
        "uac",
        &[
            "-sf",
            scenario("uac.xml").to_str().unwrap(),
            "-inf",
            inf.to_str().unwrap(),
            "-key",
            "domain",
            &s.domain(),
            "-m",
            "48",
            "-r",
            "40",
            "-l",
            "20",
            "-d",
            "100",
            "-p",
            &(s.port + 3).to_string(),
        ],
    );
    assert!(ok, "calls failed:\n{trace}\n{}", s.log_text());
    assert_eq!(
        trace
            .matches("SIP/2.0 407 Proxy Authentication Required")
            .count(),
        48,
        "every call was challenged and answered"
    );
    let (uas_ok, uas_trace) = uas.finish();
    assert!(uas_ok, "UAS failed:\n{uas_trace}");
    assert_eq!(
        uas_trace.matches("\nBYE sip:").count() + usize::from(uas_trace.starts_with("BYE sip:")),
        48,
        "every call reached its callee and was hung up through the proxy"
    );
    // Declined calls need the transaction's owner: the proxy ACKs the callee's 486 itself
    // (hop by hop) and relays it to the caller, whose ACK ends its server transaction. A
    // 486 handled by a shard without the client transaction would be relayed without
    // that ACK, and the callee's scenario would fail waiting for it.
    let busy = sipp_bg(
        &s,
        "busy",
        &[
            "-sf",
            scenario("uas_busy.xml").to_str().unwrap(),
            "-p",
            &uas_port.to_string(),
            "-m",
            "24",
        ],
    );
    let expect = std::fs::read_to_string(scenario("uac_expect.xml"))
        .unwrap()
        .replace("EXPECTED_STATUS", "486");
    let expect_file = s.dir.join("uac_expect_486.xml");
    std::fs::write(&expect_file, expect).unwrap();
    let (ok, trace) = sipp(
        &s,
        "declined",
        &[
            "-sf",
            expect_file.to_str().unwrap(),
            "-inf",
            inf.to_str().unwrap(),
            "-key",
            "domain",
            &s.domain(),
            "-m",
            "24",
            "-r",
            "40",
            "-p",
            &(s.port + 4).to_string(),
        ],
    );
    assert!(ok, "declined calls failed:\n{trace}\n{}", s.log_text());
    let (busy_ok, busy_trace) = busy.finish();
    assert!(
        busy_ok,
        "the callee did not get the proxy's ACK for every 486:\n{busy_trace}"
    );
}
