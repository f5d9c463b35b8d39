//! Shared harness for tests against the real binary: a server on its own ports and data
//! directory, SIPp runs under `timeout`, and a small UDP SIP client.
// Helpers outside `#[test]` functions assert by panicking too (clippy.toml exempts only
// test functions and `#[cfg(test)]` modules from the workspace's panic-free lints).
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use palisade_sip::{parse_datagram, Limits, Message};

static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

/// Ten consecutive ports for one test, distinct across tests of this process and, by
/// the pid, unlikely to meet another process's; a block where any port is taken for
/// UDP or TCP — including by a connection of an earlier test in TIME_WAIT, which a
/// client binding that port without SO_REUSEADDR (SIPp) would trip on — is skipped.
pub(crate) fn ports() -> u16 {
    let base = 20_000 + (std::process::id() % 200) as u16 * 150;
    loop {
        let b = base + NEXT_PORT.fetch_add(10, Ordering::Relaxed);
        if (b..b + 10).all(port_is_free) || b > 60_000 {
            return b;
        }
    }
}

fn port_is_free(p: u16) -> bool {
    use socket2::{Domain, Socket, Type};
    let addr: SocketAddr = ([127, 0, 0, 1], p).into();
    let tcp = Socket::new(Domain::IPV4, Type::STREAM, None)
        .and_then(|s| s.bind(&addr.into()))
        .is_ok();
    tcp && std::net::UdpSocket::bind(addr).is_ok()
}

pub(crate) fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_palisade"))
}

pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub(crate) fn scenario(name: &str) -> PathBuf {
    let own = root().join("tests/sipp").join(name);
    if own.exists() {
        own
    } else {
        root().join("bench/harness/scenarios").join(name)
    }
}

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) dir: PathBuf,
    pub(crate) port: u16,
    pub(crate) log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh directory for one test. Its own counter: tests run in parallel, and two of
/// them may share a tag (a shared counter read with `load` once gave two tests the same
/// directory, each removing the other's files).
pub(crate) fn tempdir(tag: &str) -> PathBuf {
    static NEXT_DIR: AtomicU16 = AtomicU16::new(0);
    let d = std::env::temp_dir().join(format!(
        "palisade-it-{}-{tag}-{}",
        std::process::id(),
        NEXT_DIR.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub(crate) fn cli(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(bin())
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap();
    out
}

/// What `palisade ARGS --data-dir DIR` prints, parsed as JSON (for the `--json` forms).
pub(crate) fn cli_json(dir: &Path, args: &[&str]) -> serde_json::Value {
    serde_json::from_slice(&cli(dir, args).stdout).unwrap()
}

/// The call records (`palisade calls --json`) once at least `n` are written: the
/// detection thread writes them a moment after the calls end (within 5 s, or panics).
pub(crate) fn recorded_calls(dir: &Path, n: usize) -> Vec<serde_json::Value> {
    let mut calls = Vec::new();
    assert!(
        wait_until(Duration::from_secs(5), || {
            calls = cli_json(dir, &["calls", "--json"])["calls"]
                .as_array()
                .unwrap()
                .clone();
            calls.len() >= n
        }),
        "every call recorded: {calls:?}"
    );
    calls
}

pub(crate) fn add_users(dir: &Path, users: &[&str]) {
    for u in users {
        let out = cli(
            dir,
            &[
                "user",
                "add",
                u,
                "--password",
                "secret",
                "--domain",
                "127.0.0.1",
            ],
        );
        assert!(
            out.status.success(),
            "user add {u}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Server {
    /// Starts `palisade serve` on UDP and TCP `port` (plus whatever `extra` adds).
    pub(crate) fn start(tag: &str, users: &[&str], extra: &[&str]) -> Server {
        let port = ports();
        let dir = tempdir(tag);
        add_users(&dir, users);
        Self::start_in(dir, port, extra)
    }

    pub(crate) fn start_in(dir: PathBuf, port: u16, extra: &[&str]) -> Server {
        Self::start_with(dir, port, extra, "debug", &[])
    }

    /// Like [`Server::start_in`], with a log level and environment variables.
    pub(crate) fn start_with(
        dir: PathBuf,
        port: u16,
        extra: &[&str],
        log_level: &str,
        env: &[(&str, &str)],
    ) -> Server {
        // Each start its own log: a restarted server's does not overwrite the first's.
        let log = (1..)
            .map(|n| match n {
                1 => dir.join("server.log"),
                n => dir.join(format!("server.{n}.log")),
            })
            .find(|p| !p.exists())
            .unwrap();
        let child = Command::new(bin())
            .envs(env.iter().copied())
            .args([
                "serve",
                "--listen",
                &format!("udp:127.0.0.1:{port}"),
                "--listen",
                &format!("tcp:127.0.0.1:{port}"),
            ])
            .args(if extra.contains(&"--domain") {
                &[][..]
            } else {
                &["--domain", "127.0.0.1"][..]
            })
            .args(["--log-level", log_level])
            .args(if extra.contains(&"--auth-algorithms") {
                &[][..]
            } else {
                &["--auth-algorithms", "md5"][..]
            })
            .arg("--data-dir")
            .arg(&dir)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let s = Server {
            child,
            dir,
            port,
            log,
        };
        s.wait_ready();
        s
    }

    fn wait_ready(&self) {
        let c = Client::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            c.send(self.port, &format!("OPTIONS sip:127.0.0.1:{} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{};branch=z9hG4bKready{}\nMax-Forwards: 70\nFrom: <sip:probe@127.0.0.1>;tag=p\nTo: <sip:127.0.0.1>\nCall-ID: ready-{}\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n", self.port, c.port(), Instant::now().elapsed().as_nanos(), c.port()));
            if c.recv_timeout(Duration::from_millis(200)).is_some() {
                return;
            }
        }
        panic!(
            "server did not start:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) fn domain(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// Runs SIPp against the server and returns its exit status and output; the message
/// trace is in `dir/<name>_msg.log`.
pub(crate) fn sipp(server: &Server, name: &str, args: &[&str]) -> (bool, String) {
    let msg = server.dir.join(format!("{name}_msg.log"));
    let err = server.dir.join(format!("{name}_err.log"));
    let out = Command::new("timeout")
        .args(["-k", "5", "40", "sipp"])
        .arg(format!("127.0.0.1:{}", server.port))
        .args(args)
        .args(["-timeout", "30s", "-trace_msg", "-message_file"])
        .arg(&msg)
        .args(["-trace_err", "-error_file"])
        .arg(&err)
        .stdin(Stdio::null())
        .output()
        .expect("sipp (Debian package sip-tester) must be installed");
    let trace = std::fs::read_to_string(&msg).unwrap_or_default();
    let errors = std::fs::read_to_string(&err).unwrap_or_default();
    (
        out.status.success(),
        format!(
            "{trace}\n--- errors ---\n{errors}\n--- stdout ---\n{}",
            String::from_utf8_lossy(&out.stdout)
        ),
    )
}

/// A SIPp process in the background (a UAS); waited for with `finish`.
pub(crate) struct Bg {
    child: Child,
    pub(crate) trace: PathBuf,
}

pub(crate) fn sipp_bg(server: &Server, name: &str, args: &[&str]) -> Bg {
    let trace = server.dir.join(format!("{name}_msg.log"));
    let child = Command::new("timeout")
        .args(["-k", "5", "40", "sipp"])
        .args(args)
        .args(["-timeout", "30s", "-trace_msg", "-message_file"])
        .arg(&trace)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp must be installed");
    std::thread::sleep(Duration::from_millis(300));
    Bg { child, trace }
}

/// One left unfinished is stopped (its `timeout` would otherwise let it run on).
impl Drop for Bg {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SIPp (the child of `timeout`) first: it does not stop on SIGTERM
            let _ = Command::new("pkill")
                .args(["-KILL", "-P", &self.child.id().to_string()])
                .status();
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Bg {
    pub(crate) fn finish(mut self) -> (bool, String) {
        let ok = self.child.wait().map(|s| s.success()).unwrap_or(false);
        (ok, std::fs::read_to_string(&self.trace).unwrap_or_default())
    }
}

/// Writes a SIPp injection file.
pub(crate) fn csv(server: &Server, name: &str, lines: &[String]) -> PathBuf {
    let p = server.dir.join(name);
    let mut s = String::from("SEQUENTIAL\n");
    for l in lines {
        s.push_str(l);
        s.push('\n');
    }
    std::fs::write(&p, s).unwrap();
    p
}

/// A UDP SIP client on its own port.
pub(crate) struct Client {
    pub(crate) sock: UdpSocket,
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

impl Client {
    pub(crate) fn new() -> Client {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        Client { sock }
    }
    pub(crate) fn port(&self) -> u16 {
        self.sock.local_addr().unwrap().port()
    }
    pub(crate) fn send(&self, port: u16, text: &str) {
        let b = text.replace("\r\n", "\n").replace('\n', "\r\n");
        self.sock
            .send_to(b.as_bytes(), SocketAddr::from(([127, 0, 0, 1], port)))
            .unwrap();
    }
    pub(crate) fn recv_timeout(&self, t: Duration) -> Option<Message<'static>> {
        self.sock.set_read_timeout(Some(t)).unwrap();
        let mut buf = vec![0u8; 65536];
        let (n, _) = self.sock.recv_from(&mut buf).ok()?;
        Some(
            parse_datagram(&buf[..n], &Limits::default())
                .expect("server sent a well-formed message")
                .into_owned(),
        )
    }
    pub(crate) fn recv(&self) -> Message<'static> {
        self.recv_timeout(Duration::from_secs(5))
            .expect("a message within 5 s")
    }
    /// The next message that is not a 100 Trying.
    pub(crate) fn recv_final(&self) -> Message<'static> {
        loop {
            let m = self.recv();
            if m.status() != Some(100) {
                return m;
            }
        }
    }
}

/// One SIPp client run of one "call" from a one-line injection file.
fn sipp_once(
    server: &Server,
    name: &str,
    csv_line: String,
    scenario_file: &str,
    local_port: u16,
    keys: &[(&str, String)],
    extra: &[&str],
) -> (bool, String) {
    let inf = csv(server, &format!("{name}.csv"), &[csv_line]);
    let mut args: Vec<String> = vec![
        "-sf".into(),
        scenario(scenario_file).to_string_lossy().into_owned(),
        "-inf".into(),
        inf.to_string_lossy().into_owned(),
        "-key".into(),
        "domain".into(),
        server.domain(),
        "-m".into(),
        "1".into(),
        "-p".into(),
        local_port.to_string(),
    ];
    for (k, v) in keys {
        args.extend(["-key".to_string(), k.to_string(), v.clone()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    sipp(server, name, &refs)
}

/// Registers `user` (password `secret`) with SIPp, Contact at `contact_port`.
pub(crate) fn sipp_register(
    server: &Server,
    name: &str,
    user: &str,
    contact_port: u16,
    local_port: u16,
    scenario_file: &str,
    extra: &[&str],
) -> (bool, String) {
    let keys = [
        ("contact_host", "127.0.0.1".to_string()),
        ("contact_port", contact_port.to_string()),
        ("expires", "3600".to_string()),
    ];
    sipp_once(
        server,
        name,
        format!("{user};[authentication username={user} password=secret]"),
        scenario_file,
        local_port,
        &keys,
        extra,
    )
}

/// One call from `caller` to `callee` (password `secret`) with a SIPp UAC scenario.
pub(crate) fn sipp_call(
    server: &Server,
    name: &str,
    caller: &str,
    callee: &str,
    scenario_file: &str,
    local_port: u16,
    extra: &[&str],
) -> (bool, String) {
    sipp_once(
        server,
        name,
        format!("{caller};{callee};[authentication username={caller} password=secret]"),
        scenario_file,
        local_port,
        &[],
        extra,
    )
}

/// A SIPp UAS answering one call on `port`.
pub(crate) fn sipp_uas(
    server: &Server,
    name: &str,
    scenario_file: &str,
    port: u16,
    extra: &[&str],
) -> Bg {
    let sf = scenario(scenario_file);
    let port = port.to_string();
    let mut args = vec!["-sf", sf.to_str().unwrap_or(""), "-p", &port, "-m", "1"];
    args.extend_from_slice(extra);
    sipp_bg(server, name, &args)
}

/// One case of the hostile-offer corpus (tests/offers/cases.toml).
#[derive(serde::Deserialize)]
pub(crate) struct Case {
    pub(crate) name: String,
    pub(crate) tries: String,
    pub(crate) verdict: String,
    pub(crate) status: Option<u16>,
    pub(crate) hidden: Vec<String>,
    pub(crate) keep: Vec<String>,
    pub(crate) sipp: bool,
    /// Whether removing the hidden content is reported (a rewrite is not).
    #[serde(default = "yes")]
    pub(crate) reported: bool,
}

fn yes() -> bool {
    true
}

#[derive(serde::Deserialize)]
struct Cases {
    case: Vec<Case>,
}

pub(crate) fn offers_dir() -> PathBuf {
    root().join("tests/offers")
}

pub(crate) fn offer_cases() -> Vec<Case> {
    let text = std::fs::read_to_string(offers_dir().join("cases.toml")).unwrap();
    toml::from_str::<Cases>(&text).unwrap().case
}

/// Polls `cond` every 50 ms until it holds or `within` has passed; whether it held.
/// Tests wait on what they need (a binding stored, a process gone) instead of sleeping
/// a fixed time that is either too long or, on a loaded machine, too short.
pub(crate) fn wait_until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (up to 10 s) until the server's database holds a binding of `aor`, as
/// `palisade registrations --json` shows it (bindings are written behind).
pub(crate) fn wait_registered(dir: &Path, aor: &str) -> bool {
    let needle = format!("\"aor\":\"{aor}\"");
    wait_until(Duration::from_secs(10), || {
        String::from_utf8_lossy(&cli(dir, &["registrations", "--json"]).stdout).contains(&needle)
    })
}

/// A digest Authorization value (realm 127.0.0.1, qop=auth, nc 1, cnonce `cn`).
pub(crate) fn digest(
    alg: palisade_core::Algorithm,
    user: &str,
    pw: &str,
    nonce: &str,
    method: &str,
    uri: &str,
) -> String {
    let ha1 = alg.ha1(user, "127.0.0.1", pw);
    let ha2 = alg.hash_hex(&[method.as_bytes(), b":", uri.as_bytes()]);
    let r = alg.hash_hex(&[
        ha1.as_bytes(),
        b":",
        nonce.as_bytes(),
        b":00000001:cn:auth:",
        ha2.as_bytes(),
    ]);
    format!("Digest username=\"{user}\", realm=\"127.0.0.1\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{r}\", algorithm={}, qop=auth, nc=00000001, cnonce=\"cn\"", alg.name())
}

/// One HTTP/1.1 request to the admin listener at `addr` (`Connection: close`): the
/// status and the body. `token`: sent as a bearer token.
pub(crate) fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    use std::io::{Read, Write};
    // (0, why) when nothing listens: callers that wait for a listener poll with this
    let mut s = match std::net::TcpStream::connect(addr) {
        Ok(s) => s,
        Err(e) => return (0, e.to_string()),
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    // chunked answers (axum streams some bodies): joined back
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut rest = body;
        let mut joined = String::new();
        while let Some((len, after)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
            if n == 0 || after.len() < n {
                break;
            }
            joined.push_str(&after[..n]);
            rest = after[n..].trim_start_matches("\r\n");
        }
        joined
    } else {
        body.to_string()
    };
    (status, body)
}

/// A server with the admin listener on a port of its own (`[admin] listen`), plus the
/// extra configuration `more`; the server and the admin address.
pub(crate) fn start_with_admin(tag: &str, users: &[&str], more: &str) -> (Server, String) {
    let port = ports();
    let admin_port = ports();
    let dir = tempdir(tag);
    add_users(&dir, users);
    let cfg = dir.join("admin.toml");
    std::fs::write(
        &cfg,
        format!("[admin]\nlisten = \"127.0.0.1:{admin_port}\"\n{more}"),
    )
    .unwrap();
    let s = Server::start_in(dir, port, &["--config", cfg.to_str().unwrap()]);
    (s, format!("127.0.0.1:{admin_port}"))
}

/// The admin token the server created in its data directory.
pub(crate) fn admin_token(s: &Server) -> String {
    std::fs::read_to_string(s.dir.join("admin.token"))
        .unwrap()
        .trim()
        .to_string()
}

const CALL_SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

fn call_invite(
    s: &Server,
    c: &Client,
    caller: &str,
    callee: &str,
    call_id: &str,
    cseq: u32,
    auth: Option<(&str, &str)>,
) -> String {
    format!(
        "INVITE sip:{callee}@127.0.0.1:{p} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{cp};branch=z9hG4bK{call_id}{cseq};rport\nMax-Forwards: 70\nFrom: <sip:{caller}@127.0.0.1:{p}>;tag=f{call_id}\nTo: <sip:{callee}@127.0.0.1:{p}>\nCall-ID: {call_id}\nCSeq: {cseq} INVITE\nContact: <sip:{caller}@127.0.0.1:{cp}>\n{}Content-Type: application/sdp\nContent-Length: {}\n\n{CALL_SDP}",
        auth.map(|(h, v)| format!("{h}: {v}\n")).unwrap_or_default(),
        CALL_SDP.len(),
        p = s.port,
        cp = c.port()
    )
}

/// The next final answer to this call's INVITE with this CSeq (retransmitted answers to
/// earlier attempts are skipped).
pub(crate) fn final_answer(c: &Client, call_id: &str, cseq: u32) -> Message<'static> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Some(m) = c.recv_timeout(Duration::from_millis(500)) {
            if m.call_id() == Some(call_id)
                && m.cseq().map(|c| c.seq) == Some(cseq)
                && m.status().is_some_and(|s| s >= 200)
            {
                return m;
            }
        }
    }
    panic!("no final answer to {call_id}");
}

/// Sends `caller`'s (password `secret`) INVITE to `callee` on `c`, answers the
/// challenge and sends the INVITE again with credentials (CSeq 2), without waiting for
/// its answer: `Ok` with the challenge's status (401 or 407), `Err` with the status of
/// the first final answer when it was not a challenge.
pub(crate) fn send_authed_invite(
    s: &Server,
    c: &Client,
    caller: &str,
    callee: &str,
    call_id: &str,
) -> Result<u16, u16> {
    c.send(s.port, &call_invite(s, c, caller, callee, call_id, 1, None));
    let ch = final_answer(c, call_id, 1);
    let status = ch.status().unwrap_or(0);
    let header = match status {
        407 => "Proxy-Authorization",
        401 => "Authorization",
        other => return Err(other),
    };
    let nonce = ch
        .headers
        .iter()
        .find_map(|h| match h {
            palisade_sip::Header::WwwAuthenticate(c)
            | palisade_sip::Header::ProxyAuthenticate(c) => c.get("nonce").map(|n| n.into_owned()),
            _ => None,
        })
        .expect("a challenge with a nonce");
    let uri = format!("sip:{callee}@127.0.0.1:{}", s.port);
    let auth = digest(
        palisade_core::Algorithm::Md5,
        caller,
        "secret",
        &nonce,
        "INVITE",
        &uri,
    );
    c.send(
        s.port,
        &call_invite(s, c, caller, callee, call_id, 2, Some((header, &auth))),
    );
    Ok(status)
}

/// One authenticated call attempt from `caller` (password `secret`) to `callee`: the
/// status of the final answer to the authenticated INVITE.
pub(crate) fn authed_call(s: &Server, caller: &str, callee: &str) -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let c = Client::new();
    let call_id = format!("blk{}x{}", N.fetch_add(1, Ordering::Relaxed), c.port());
    match send_authed_invite(s, &c, caller, callee, &call_id) {
        Ok(_) => final_answer(&c, &call_id, 2).status().unwrap_or(0),
        Err(status) => status,
    }
}

/// Builds the Go transparency-log verifier (`tests/evidence/tlogverify.go`, on
/// golang.org/x/mod/sumdb) into `dir`.
pub(crate) fn go_verifier(dir: &Path) -> PathBuf {
    let out = dir.join("tlogverify");
    let src = root().join("tests/evidence/tlogverify.go");
    let r = std::process::Command::new("go")
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
