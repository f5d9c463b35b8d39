//! SIP over WebSocket (RFC 7118) against the real binary, with a client written here
//! from RFC 6455 and RFC 7118 alone (the HTTP upgrade, masked frames from the client,
//! one SIP message per frame): it registers with digest over `ws:`, is called from a
//! UDP SIPp whose offer is a browser's and answers, gets the ACK and the BYE on its
//! connection, calls a UDP SIPp callee with its own WebRTC offer, and is refused for a
//! missing subprotocol, a foreign Origin and a frame over the size limit.
// Helpers outside `#[test]` functions assert by panicking too (clippy.toml exempts only
// test functions and `#[cfg(test)]` modules from the workspace's panic-free lints).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]
#[path = "common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use palisade_core::Algorithm;
use palisade_sip::{parse_datagram, Contact, Header, Limits, Message};

/// RFC 6455 section 1.3: appended to the key before hashing.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// What the server answered to an upgrade request: status and head.
struct Upgrade {
    status: u16,
    head: String,
    ws: Option<Ws>,
}

/// A byte stream under the WebSocket: TCP (`ws:`) or TLS (`wss:`).
trait Io: Read + Write + Send {}
impl<T: Read + Write + Send> Io for T {}

/// A WebSocket client connection (RFC 6455), carrying SIP (RFC 7118).
struct Ws {
    s: Box<dyn Io>,
    /// Pings the server sent (each answered).
    pings: usize,
}

fn tcp(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

impl Ws {
    /// Opens a connection and asks for an upgrade with these extra header lines.
    fn upgrade(port: u16, headers: &[&str]) -> Upgrade {
        Ws::upgrade_on(Box::new(tcp(port)), port, headers)
    }

    /// Asks for an upgrade on an open stream.
    fn upgrade_on(mut s: Box<dyn Io>, port: u16, headers: &[&str]) -> Upgrade {
        use sha1::Digest;
        let key = base64(&std::process::id().to_be_bytes().repeat(4));
        let mut req = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n");
        for h in headers {
            req.push_str(h);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        // the head, byte by byte: nothing of the first frame is read with it
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match s.read(&mut b) {
                Ok(1) => head.push(b[0]),
                _ => break,
            }
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let ws = (status == 101).then(|| {
            let accept = base64(&sha1::Sha1::digest(format!("{key}{GUID}").as_bytes()));
            let lower = head.to_ascii_lowercase();
            assert!(
                lower.contains(&format!(
                    "sec-websocket-accept: {}",
                    accept.to_ascii_lowercase()
                )),
                "{head}"
            );
            assert!(lower.contains("sec-websocket-protocol: sip\r\n"), "{head}");
            Ws { s, pings: 0 }
        });
        Upgrade { status, head, ws }
    }

    fn open(port: u16) -> Ws {
        let u = Ws::upgrade(port, &["Sec-WebSocket-Protocol: sip"]);
        u.ws.unwrap_or_else(|| panic!("upgrade refused: {}", u.head))
    }

    /// One frame from the client: FIN, the opcode, the masked payload.
    fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x80 | opcode];
        let n = payload.len();
        if n < 126 {
            f.push(0x80 | n as u8);
        } else if n <= 0xffff {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
        let mask = [0x5a, 0x13, 0xc7, 0x88];
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        f
    }

    fn send_frame(&mut self, opcode: u8, payload: &[u8]) {
        self.s.write_all(&Ws::frame(opcode, payload)).unwrap();
    }

    /// Sends one SIP message (LF line ends become CRLF) in one text frame.
    fn send(&mut self, text: &str) {
        let b = text.replace("\r\n", "\n").replace('\n', "\r\n");
        self.send_frame(1, b.as_bytes());
    }

    /// The next data frame (opcode, payload); pings are answered on the way. `None`
    /// when the connection ends.
    fn next_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            let mut h = [0u8; 2];
            self.s.read_exact(&mut h).ok()?;
            let opcode = h[0] & 0x0f;
            assert_eq!(h[1] & 0x80, 0, "a server does not mask (RFC 6455 5.1)");
            let len = match h[1] & 0x7f {
                126 => {
                    let mut l = [0u8; 2];
                    self.s.read_exact(&mut l).ok()?;
                    u64::from(u16::from_be_bytes(l))
                }
                127 => {
                    let mut l = [0u8; 8];
                    self.s.read_exact(&mut l).ok()?;
                    u64::from_be_bytes(l)
                }
                n => u64::from(n),
            };
            let mut p = vec![0u8; len as usize];
            self.s.read_exact(&mut p).ok()?;
            match opcode {
                0x9 => {
                    self.pings += 1;
                    // (a write to a connection the server closed may fail: not ours to judge)
                    let _ = self.s.write_all(&Ws::frame(0xA, &p));
                }
                0xA => {}
                _ => return Some((opcode, p)),
            }
        }
    }

    /// The next SIP message; `None` when the connection ends or a close frame comes.
    fn recv(&mut self) -> Option<Message<'static>> {
        loop {
            let (op, p) = self.next_frame()?;
            if op == 0x8 {
                return None;
            }
            assert!(op == 1 || op == 2, "a data frame: {op}");
            if p.iter().all(|b| matches!(b, b'\r' | b'\n')) {
                continue;
            }
            return Some(
                parse_datagram(&p, &Limits::default())
                    .expect("one whole SIP message per frame (RFC 7118 5.1)")
                    .into_owned(),
            );
        }
    }

    /// The next message that is not a provisional response.
    fn recv_final(&mut self) -> Message<'static> {
        loop {
            let m = self.recv().expect("a message");
            if m.status().is_none_or(|s| s >= 200) {
                return m;
            }
        }
    }

    /// The next request of this method (responses and other requests are skipped).
    fn recv_request(&mut self, method: &str) -> Message<'static> {
        loop {
            let m = self.recv().unwrap_or_else(|| panic!("no {method}"));
            if m.method().map(|x| x.as_str()) == Some(method) {
                return m;
            }
        }
    }
}

/// The browser's `.invalid` host (RFC 7118 section 5.2).
const HOST: &str = "df7jal23ls0d.invalid";

/// A browser's audio offer and answer (as in tests/sipp/webrtc_*.xml).
const OFFER: &str = "v=0\no=- 4611731400430051336 2 IN IP4 127.0.0.1\ns=-\nt=0 0\na=group:BUNDLE 0\na=extmap-allow-mixed\na=msid-semantic: WMS stream1\nm=audio 9 UDP/TLS/RTP/SAVPF 111 126\nc=IN IP4 0.0.0.0\na=rtcp:9 IN IP4 0.0.0.0\na=candidate:1467250027 1 udp 2122260223 192.168.0.196 46243 typ host generation 0 network-id 1\na=candidate:842163049 1 udp 1686052607 203.0.113.7 46243 typ srflx raddr 192.168.0.196 rport 46243 generation 0 network-id 1\na=ice-ufrag:EsAw\na=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y\na=ice-options:trickle\na=fingerprint:sha-256 D2:FA:0E:C3:22:59:5E:14:95:69:92:3D:13:B4:84:24:2C:C2:A2:C0:3E:FD:34:8E:5E:EA:6F:AF:52:CE:E6:0F\na=setup:actpass\na=mid:0\na=sendrecv\na=msid:stream1 track1\na=rtcp-mux\na=rtpmap:111 opus/48000/2\na=rtcp-fb:111 transport-cc\na=fmtp:111 minptime=10;useinbandfec=1\na=rtpmap:126 telephone-event/8000\na=ssrc:1001 cname:abcd1234\n";
const ANSWER: &str = "v=0\no=- 2890844526 2 IN IP4 127.0.0.1\ns=-\nt=0 0\na=group:BUNDLE 0\na=msid-semantic: WMS callee\nm=audio 9 UDP/TLS/RTP/SAVPF 111 126\nc=IN IP4 0.0.0.0\na=rtcp:9 IN IP4 0.0.0.0\na=candidate:3348149082 1 udp 2122260223 10.0.0.7 51372 typ host generation 0 network-id 1\na=ice-ufrag:Qx7z\na=ice-pwd:T4o2vWq8RkLmZp0sYc3nHa9d\na=fingerprint:sha-256 19:E2:1C:3B:4B:9F:81:E6:B8:5C:F4:A5:A8:D8:73:04:BB:05:2F:70:9F:04:A9:0E:05:E9:26:33:E8:70:88:A2\na=setup:active\na=mid:0\na=sendrecv\na=msid:callee track9\na=rtcp-mux\na=rtpmap:111 opus/48000/2\na=fmtp:111 minptime=10;useinbandfec=1\na=rtpmap:126 telephone-event/8000\na=ssrc:2002 cname:efgh5678\n";

/// What must reach the other side of a WebRTC call unchanged.
fn assert_webrtc_kept(sdp: &str, ufrag: &str) {
    for needed in [
        format!("a=ice-ufrag:{ufrag}"),
        "a=ice-pwd:".to_string(),
        "a=fingerprint:sha-256 ".to_string(),
        "a=group:BUNDLE 0".to_string(),
        "a=candidate:".to_string(),
        "a=rtcp-mux".to_string(),
        "UDP/TLS/RTP/SAVPF 111".to_string(),
    ] {
        assert!(sdp.contains(&needed), "{needed} missing from\n{sdp}");
    }
}

fn crlf(s: &str) -> String {
    s.replace('\n', "\r\n")
}

fn nonce(m: &Message<'_>) -> String {
    m.headers
        .iter()
        .find_map(|h| match h {
            Header::WwwAuthenticate(c) | Header::ProxyAuthenticate(c) => {
                c.get("nonce").map(|n| n.into_owned())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no challenge in {m:?}"))
}

/// Registers `user` (password `secret`) over the connection, answering the challenge.
fn register(ws: &mut Ws, user: &str, expires: u32) -> Message<'static> {
    let text = |cseq: u32, auth: &str| {
        format!("REGISTER sip:127.0.0.1 SIP/2.0\nVia: SIP/2.0/WS {HOST};branch=z9hG4bKwsr{cseq}{expires}\nMax-Forwards: 70\nFrom: <sip:{user}@127.0.0.1>;tag=wsreg\nTo: <sip:{user}@127.0.0.1>\nCall-ID: ws-reg-{user}\nCSeq: {cseq} REGISTER\nContact: <sip:{user}x1@{HOST};transport=ws;ob>;+sip.instance=\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\"\nExpires: {expires}\nSupported: path, outbound, gruu\n{auth}User-Agent: rfc7118-test-client\nContent-Length: 0\n\n")
    };
    ws.send(&text(1, ""));
    let ch = ws.recv_final();
    assert_eq!(ch.status(), Some(401), "{ch:?}");
    let auth = digest(
        Algorithm::Md5,
        user,
        "secret",
        &nonce(&ch),
        "REGISTER",
        "sip:127.0.0.1",
    );
    ws.send(&text(2, &format!("Authorization: {auth}\n")));
    ws.recv_final()
}

/// A response to `req` from the browser: its Vias, From, To (tagged), Call-ID, CSeq
/// and Record-Route, and a body.
fn answer(req: &Message<'_>, status: &str, body: &str) -> String {
    let mut out = format!("SIP/2.0 {status}\r\n");
    let mut s = String::new();
    for h in &req.headers {
        s.clear();
        match h {
            Header::Via(_)
            | Header::From(_)
            | Header::CallId(_)
            | Header::CSeq(_)
            | Header::RecordRoute(_) => {
                h.write(&mut s);
                out.push_str(&s);
            }
            Header::To(_) => {
                h.write(&mut s);
                out.push_str(&s.replace("\r\n", ";tag=wsb\r\n"));
            }
            _ => {}
        }
    }
    out.push_str(&format!(
        "Contact: <sip:alicex1@{HOST};transport=ws;ob>\r\n"
    ));
    if !body.is_empty() {
        out.push_str("Content-Type: application/sdp\r\n");
    }
    out.push_str(&format!(
        "Content-Length: {}\r\n\r\n{}",
        crlf(body).len(),
        crlf(body)
    ));
    out
}

fn ws_server(tag: &str, users: &[&str], config: &str) -> (Server, u16) {
    let port = ports();
    let ws_port = port + 7;
    let dir = tempdir(tag);
    add_users(&dir, users);
    let cfg = dir.join("ws.toml");
    std::fs::write(&cfg, config).unwrap();
    let s = Server::start_in(
        dir,
        port,
        &[
            "--listen",
            &format!("ws:127.0.0.1:{ws_port}"),
            "--config",
            cfg.to_str().unwrap(),
        ],
    );
    (s, ws_port)
}

#[test]
fn a_websocket_phone_registers_with_digest_and_answers_a_call_from_udp() {
    let (s, ws_port) = ws_server("ws-callee", &["alice", "bob"], "");
    let mut ws = Ws::open(ws_port);
    let ok = register(&mut ws, "alice", 600);
    assert_eq!(ok.status(), Some(200), "{ok:?}");
    // RFC 5626 keep-alive: a double CRLF gets a CRLF
    ws.send_frame(1, b"\r\n\r\n");
    assert_eq!(ws.next_frame(), Some((1, b"\r\n".to_vec())));
    assert!(wait_registered(&s.dir, "alice@127.0.0.1"));

    // bob calls from UDP (SIPp) with a browser's offer; alice answers on her connection
    let callee = std::thread::spawn(move || {
        let invite = ws.recv_request("INVITE");
        ws.send(&answer(&invite, "180 Ringing", ""));
        ws.send(&answer(&invite, "200 OK", ANSWER));
        let ack = ws.recv_request("ACK");
        let bye = ws.recv_request("BYE");
        ws.send(&answer(&bye, "200 OK", ""));
        (ws, invite, ack, bye)
    });
    let (ok, trace) = sipp_call(&s, "uac", "bob", "alice", "webrtc_uac.xml", s.port + 3, &[]);
    let (ws, invite, ack, bye) = callee.join().unwrap();
    assert!(
        ok,
        "the UDP caller's call failed:\n{trace}\n{}",
        s.log_text()
    );
    let sdp = String::from_utf8_lossy(&invite.body).into_owned();
    assert_webrtc_kept(&sdp, "EsAw");
    let top = invite.top_via().unwrap();
    assert_eq!(&*top.transport, "WS", "our Via toward the browser");
    let rr: Vec<String> = invite.record_routes().map(|r| r.uri.to_string()).collect();
    assert_eq!(rr.len(), 2, "one Record-Route per side: {rr:?}");
    assert!(
        rr[0].contains(&format!(":{ws_port};transport=ws;")),
        "{rr:?}"
    );
    assert_eq!(ack.call_id(), invite.call_id());
    assert_eq!(bye.call_id(), invite.call_id());
    // the caller got the browser's answer with its meaning intact
    assert!(trace.contains("a=ice-ufrag:Qx7z"), "{trace}");
    assert!(trace.contains("a=fingerprint:sha-256 19:E2:1C"), "{trace}");

    // the connection goes: its binding goes with it
    drop(ws);
    assert!(
        wait_until(Duration::from_secs(10), || {
            !String::from_utf8_lossy(&cli(&s.dir, &["registrations", "--json"]).stdout)
                .contains("alice@127.0.0.1")
        }),
        "the binding outlived its WebSocket connection:\n{}",
        s.log_text()
    );
}

#[test]
fn a_websocket_phone_calls_a_udp_phone_with_its_webrtc_offer() {
    let (s, ws_port) = ws_server("ws-caller", &["alice", "bob"], "");
    let uas_port = s.port + 1;
    let (ok, t) = sipp_register(&s, "reg", "bob", uas_port, s.port + 2, "register.xml", &[]);
    assert!(ok, "{t}");
    let uas = sipp_uas(&s, "uas", "webrtc_uas.xml", uas_port, &[]);
    let mut ws = Ws::open(ws_port);
    assert_eq!(register(&mut ws, "alice", 600).status(), Some(200));

    let ruri = "sip:bob@127.0.0.1";
    let invite = |cseq: u32, auth: &str| {
        format!("INVITE {ruri} SIP/2.0\nVia: SIP/2.0/WS {HOST};branch=z9hG4bKwsi{cseq}\nMax-Forwards: 70\nFrom: <sip:alice@127.0.0.1>;tag=wsa\nTo: <sip:bob@127.0.0.1>\nCall-ID: ws-call-1\nCSeq: {cseq} INVITE\nContact: <sip:alicex1@{HOST};transport=ws;ob>\n{auth}Content-Type: application/sdp\nContent-Length: {}\n\n{}", crlf(OFFER).len(), OFFER)
    };
    ws.send(&invite(1, ""));
    let ch = ws.recv_final();
    assert_eq!(ch.status(), Some(407), "{ch:?}");
    ws.send(&format!("ACK {ruri} SIP/2.0\nVia: SIP/2.0/WS {HOST};branch=z9hG4bKwsi1\nMax-Forwards: 70\nFrom: <sip:alice@127.0.0.1>;tag=wsa\nTo: <sip:bob@127.0.0.1>;tag={}\nCall-ID: ws-call-1\nCSeq: 1 ACK\nContent-Length: 0\n\n", ch.to().and_then(|t| t.tag()).unwrap_or("")));
    let auth = digest(
        Algorithm::Md5,
        "alice",
        "secret",
        &nonce(&ch),
        "INVITE",
        ruri,
    );
    ws.send(&invite(2, &format!("Proxy-Authorization: {auth}\n")));
    let ok = ws.recv_final();
    assert_eq!(ok.status(), Some(200), "{ok:?}");
    assert_webrtc_kept(&String::from_utf8_lossy(&ok.body), "Qx7z");
    let to_tag = ok.to().and_then(|t| t.tag()).unwrap().to_string();
    let Some(Contact::Addr(c)) = ok.contacts().next() else {
        panic!("a Contact in the 200")
    };
    let target = c.uri.to_string();
    // the route set: the Record-Route reversed (RFC 3261 12.1.2)
    let routes: String = ok
        .record_routes()
        .map(|r| format!("Route: <{}>\n", r.uri))
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    assert!(routes.contains("transport=ws"), "{routes}");
    let in_dialog = |method: &str, cseq: u32| {
        format!("{method} {target} SIP/2.0\nVia: SIP/2.0/WS {HOST};branch=z9hG4bKws{method}{cseq}\nMax-Forwards: 70\n{routes}From: <sip:alice@127.0.0.1>;tag=wsa\nTo: <sip:bob@127.0.0.1>;tag={to_tag}\nCall-ID: ws-call-1\nCSeq: {cseq} {method}\nContent-Length: 0\n\n")
    };
    ws.send(&in_dialog("ACK", 2));
    std::thread::sleep(Duration::from_millis(200));
    ws.send(&in_dialog("BYE", 3));
    let bye_ok = ws.recv_final();
    assert_eq!(bye_ok.status(), Some(200), "{bye_ok:?}");
    let (ok, trace) = uas.finish();
    assert!(
        ok,
        "the UDP callee's call failed:\n{trace}\n{}",
        s.log_text()
    );
    // the callee got the browser's offer with its meaning intact
    assert_webrtc_kept(&trace, "EsAw");
}

#[test]
fn a_hostile_webrtc_offer_from_a_websocket_phone_is_refused_like_any_other() {
    let (s, ws_port) = ws_server("ws-hostile", &["alice", "bob"], "");
    // (bob is registered on UDP; nothing there answers: no offer gets that far)
    let (ok, t) = sipp_register(
        &s,
        "reg",
        "bob",
        s.port + 1,
        s.port + 2,
        "register.xml",
        &[],
    );
    assert!(ok, "{t}");
    let mut ws = Ws::open(ws_port);
    assert_eq!(register(&mut ws, "alice", 600).status(), Some(200));
    let ruri = "sip:bob@127.0.0.1";
    let hostile = [
        (
            "a fingerprint that is not hex pairs",
            OFFER.replace(
                "a=fingerprint:sha-256 D2:FA:0E:C3",
                "a=fingerprint:sha-256 UEsDBBQACAgIAHIDDEADBEEF0x90x90x90 D2:FA:0E:C3",
            ),
        ),
        (
            "an ICE password of 100 characters",
            OFFER.replace("bP+XJMM09aR8AiX1jdukzR6Y", &"p".repeat(100)),
        ),
        (
            "a candidate with a bad address",
            OFFER.replace(
                "192.168.0.196 46243 typ host",
                "192.168.0.999 46243 typ host",
            ),
        ),
    ];
    for (n, (what, sdp)) in hostile.iter().enumerate() {
        let call_id = format!("ws-hostile-{n}");
        let invite = |cseq: u32, auth: &str| {
            format!("INVITE {ruri} SIP/2.0\nVia: SIP/2.0/WS {HOST};branch=z9hG4bKwsh{n}x{cseq}\nMax-Forwards: 70\nFrom: <sip:alice@127.0.0.1>;tag=wsh{n}\nTo: <sip:bob@127.0.0.1>\nCall-ID: {call_id}\nCSeq: {cseq} INVITE\nContact: <sip:alicex1@{HOST};transport=ws;ob>\n{auth}Content-Type: application/sdp\nContent-Length: {}\n\n{}", crlf(sdp).len(), sdp)
        };
        ws.send(&invite(1, ""));
        let ch = ws.recv_final();
        assert_eq!(ch.status(), Some(407), "{what}: {ch:?}");
        let auth = digest(
            Algorithm::Md5,
            "alice",
            "secret",
            &nonce(&ch),
            "INVITE",
            ruri,
        );
        ws.send(&invite(2, &format!("Proxy-Authorization: {auth}\n")));
        let refused = ws.recv_final();
        assert_eq!(refused.status(), Some(488), "{what}: {refused:?}");
    }
    drop(s);
}

#[test]
fn the_server_pings_and_closes_a_connection_that_stays_silent() {
    let (_s, ws_port) = ws_server(
        "ws-idle",
        &["alice"],
        "[tcp]\nidle_timeout = 2\nmessage_timeout = 1\n[ws]\nping_interval = 1\n",
    );
    let mut ws = Ws::open(ws_port);
    // nothing read, nothing answered: the pings go unanswered
    std::thread::sleep(Duration::from_millis(3500));
    let (op, p) = ws.next_frame().expect("a close frame");
    assert_eq!(op, 0x8);
    assert_eq!(u16::from_be_bytes([p[0], p[1]]), 1001, "going away (idle)");
    assert!(ws.pings >= 1, "the server pinged first");
    assert!(ws.next_frame().is_none(), "and the connection is closed");
}

#[test]
fn upgrades_without_sip_from_a_foreign_origin_or_with_an_oversized_frame_are_refused() {
    let (s, ws_port) = ws_server(
        "ws-refuse",
        &["alice"],
        "[ws]\norigins = [\"https://phone.example.com\"]\n[limits]\nmax_message_size = 4096\n",
    );
    // RFC 7118 section 4: the "sip" subprotocol, or nothing
    let u = Ws::upgrade(ws_port, &[]);
    assert_eq!(u.status, 400, "{}", u.head);
    let u = Ws::upgrade(ws_port, &["Sec-WebSocket-Protocol: chat, superchat"]);
    assert_eq!(u.status, 400, "{}", u.head);
    // a page of another site (RFC 6455 section 10.2)
    let u = Ws::upgrade(
        ws_port,
        &[
            "Sec-WebSocket-Protocol: sip",
            "Origin: https://evil.example",
        ],
    );
    assert_eq!(u.status, 403, "{}", u.head);
    let u = Ws::upgrade(
        ws_port,
        &[
            "Sec-WebSocket-Protocol: sip",
            "Origin: https://phone.example.com",
        ],
    );
    assert_eq!(u.status, 101, "{}", u.head);

    // a frame over limits.max_message_size: closed with 1009 before its payload is read
    let mut ws = Ws::open(ws_port);
    let started = Instant::now();
    let f = Ws::frame(1, &vec![b'x'; 5000]);
    ws.s.write_all(&f[..64]).unwrap();
    let (op, p) = ws.next_frame().expect("a close frame");
    assert_eq!(op, 0x8);
    assert_eq!(u16::from_be_bytes([p[0], p[1]]), 1009, "message too big");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(ws.next_frame().is_none(), "and the connection is closed");
    // the server goes on serving
    let mut ws = Ws::open(ws_port);
    assert_eq!(register(&mut ws, "alice", 600).status(), Some(200));
    drop(s);
}

#[test]
fn a_phone_registers_over_wss_with_the_tls_certificate() {
    use std::sync::Arc;
    use tokio_rustls::rustls;
    let port = ports();
    let wss_port = port + 7;
    let dir = tempdir("wss");
    add_users(&dir, &["alice"]);
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
    std::fs::write(&cfg, format!("[tls]\ncert = {cert:?}\nkey = {key:?}\n")).unwrap();
    let s = Server::start_in(
        dir,
        port,
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--listen",
            &format!("wss:127.0.0.1:{wss_port}"),
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
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let tls = rustls::StreamOwned::new(conn, tcp(wss_port));
    let u = Ws::upgrade_on(Box::new(tls), wss_port, &["Sec-WebSocket-Protocol: sip"]);
    let mut ws =
        u.ws.unwrap_or_else(|| panic!("upgrade refused: {}", u.head));
    let ok = register(&mut ws, "alice", 600);
    assert_eq!(ok.status(), Some(200), "{ok:?}");
    assert!(wait_registered(&s.dir, "alice@127.0.0.1"));
    let regs =
        String::from_utf8_lossy(&cli(&s.dir, &["registrations", "--json"]).stdout).into_owned();
    assert!(regs.contains("\"transport\":\"wss\""), "{regs}");
}

/// The softphone's bundle is what `crates/palisade/phone/build.mjs` makes of the
/// locked JsSIP and esbuild (./test.sh runs `npm ci` there).
#[test]
fn the_committed_jssip_bundle_is_rebuilt_byte_for_byte() {
    let dir = root().join("crates/palisade/phone");
    assert!(
        dir.join("node_modules/jssip").exists(),
        "jssip is not installed: ./test.sh runs `npm ci` in {}",
        dir.display()
    );
    let out = std::process::Command::new("node")
        .arg(dir.join("build.mjs"))
        .arg("--check")
        .output()
        .expect("node (Debian package nodejs)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two Chromium pages of the softphone register over `ws:`, call each other with
/// audio flowing, hang up, and one calls a SIPp callee (tests/dashboard/phone.mjs).
#[test]
fn two_browsers_call_each_other_through_the_softphone_in_chromium() {
    use std::io::BufRead;
    let port = ports();
    let (ws_port, admin_port) = (port + 7, port + 8);
    let dir = tempdir("phone");
    add_users(&dir, &["alice", "bob", "carol"]);
    let cfg = dir.join("phone.toml");
    std::fs::write(
        &cfg,
        format!("[admin]\nlisten = \"127.0.0.1:{admin_port}\"\n"),
    )
    .unwrap();
    let s = Server::start_in(
        dir,
        port,
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--listen",
            &format!("ws:127.0.0.1:{ws_port}"),
        ],
    );
    // carol is a SIPp phone on UDP answering with a WebRTC answer
    let uas_port = s.port + 1;
    let (ok, t) = sipp_register(
        &s,
        "reg",
        "carol",
        uas_port,
        s.port + 2,
        "register.xml",
        &[],
    );
    assert!(ok, "{t}");
    let uas = sipp_uas(&s, "uas", "webrtc_uas.xml", uas_port, &[]);
    let tests = root().join("crates/palisade/tests/dashboard");
    assert!(
        tests.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: ./test.sh runs `npm ci` in {}",
        tests.display()
    );
    let shots = std::env::var("PHONE_SHOTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| s.dir.join("screenshots"));
    let mut node = std::process::Command::new("node")
        .arg(tests.join("phone.mjs"))
        .env("PHONE_URL", format!("http://127.0.0.1:{admin_port}/phone"))
        .env("CALLEE", "carol")
        .env("SHOTS_DIR", &shots)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node (Debian package nodejs)");
    let done = std::io::BufReader::new(node.stdout.take().unwrap())
        .lines()
        .next()
        .and_then(Result::ok);
    let out = node.wait_with_output().unwrap();
    assert_eq!(
        done.as_deref(),
        Some("DONE"),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.log_text()
    );
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("audio: alice received"), "{stderr}");
    assert!(stderr.contains("refused: 488"), "{stderr}");
    let (ok, trace) = uas.finish();
    assert!(ok, "the SIPp callee's call failed:\n{trace}");
    for f in [
        "phone-1-registered.png",
        "phone-2-incoming.png",
        "phone-3-in-call.png",
        "phone-4-ended.png",
        "phone-5-refused.png",
    ] {
        assert!(shots.join(f).exists(), "{f}");
    }
}
