//! A small campaign simulator on loopback: SIP user agents written here (digest
//! authentication, INVITE/CANCEL/BYE, REGISTER) and "phone banks" that answer for many
//! registered users on one socket. Bounded in count and time: every wait has a timeout.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use palisade_sip::{parse_datagram, Header, Limits, Message};

static SEQ: AtomicU64 = AtomicU64::new(1);

fn next() -> u64 {
    SEQ.fetch_add(1, Ordering::Relaxed)
}

/// A 16-hex-digit token that looks random (as a real client's tags and branches do).
fn token() -> String {
    format!(
        "{:016x}",
        next().wrapping_mul(0x9e37_79b9_7f4a_7c15) | 0xa000_0000_0000_0000
    )
}

fn md5hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn nonce_of(m: &Message<'_>) -> Option<String> {
    m.headers.iter().find_map(|h| match h {
        Header::WwwAuthenticate(c) | Header::ProxyAuthenticate(c)
            if c.get("algorithm")
                .is_none_or(|a| a.eq_ignore_ascii_case("MD5")) =>
        {
            c.get("nonce").map(|n| n.into_owned())
        }
        _ => None,
    })
}

/// The To header line of a response (with its tag), CRLF-terminated.
fn to_line(m: &Message<'_>) -> String {
    let mut s = String::new();
    if let Some(h) = m.headers.iter().find(|h| matches!(h, Header::To(_))) {
        h.write(&mut s);
    }
    s
}

/// How a user agent writes its messages: its User-Agent (the claim), and the layout of
/// this module (so every simulated client has one fingerprint), or with `compact` the
/// compact header names and Call-ID and CSeq right after the Via (another client's
/// habits: the reverse-engineered client of a campaign).
pub(crate) struct Ua {
    pub(crate) sock: UdpSocket,
    pub(crate) user: String,
    pub(crate) server: SocketAddr,
    pub(crate) ua: String,
    pub(crate) compact: bool,
    domain: String,
}

/// A request written with compact header names, Call-ID and CSeq moved up after Via.
fn compacted(text: &str) -> String {
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
    let mut lines: Vec<String> = head.split("\r\n").map(str::to_string).collect();
    for l in lines.iter_mut().skip(1) {
        for (long, short) in [
            ("Via: ", "v: "),
            ("From: ", "f: "),
            ("To: ", "t: "),
            ("Call-ID: ", "i: "),
            ("Contact: ", "m: "),
            ("Content-Type: ", "c: "),
            ("Content-Length: ", "l: "),
        ] {
            if let Some(rest) = l.strip_prefix(long) {
                *l = format!("{short}{rest}");
            }
        }
    }
    let mut out: Vec<String> = Vec::new();
    let moved: Vec<String> = lines
        .iter()
        .filter(|l| l.starts_with("i: ") || l.starts_with("CSeq: "))
        .cloned()
        .collect();
    for l in lines {
        if l.starts_with("i: ") || l.starts_with("CSeq: ") {
            continue;
        }
        let via = l.starts_with("v: ");
        out.push(l);
        if via {
            out.extend(moved.iter().cloned());
        }
    }
    format!("{}\r\n\r\n{body}", out.join("\r\n"))
}

/// What happened to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Answered,
    Cancelled,
    /// A final status other than 2xx/487 (403 blocked, 503 rate limited, 480, ...).
    Refused(u16),
    /// No final answer in time.
    Lost,
}

impl Ua {
    /// A user agent bound to `bind` (an address in 127.0.0.0/8, port 0).
    pub(crate) fn new(bind: &str, user: &str, server: SocketAddr, ua: &str) -> Ua {
        let sock = UdpSocket::bind(format!("{bind}:0")).unwrap();
        Ua {
            sock,
            user: user.into(),
            server,
            ua: ua.into(),
            compact: false,
            domain: server.to_string(),
        }
    }

    fn me(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    fn send(&self, text: &str) {
        let text = if self.compact {
            compacted(text)
        } else {
            text.to_string()
        };
        let _ = self.sock.send_to(text.as_bytes(), self.server);
    }

    /// The next message (any), or `None` after `t`.
    fn recv(&self, t: Duration) -> Option<Message<'static>> {
        let deadline = Instant::now() + t;
        let mut buf = vec![0u8; 65536];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.sock.set_read_timeout(Some(left)).unwrap();
            let (n, _) = self.sock.recv_from(&mut buf).ok()?;
            if let Ok(m) = parse_datagram(&buf[..n], &Limits::default()) {
                return Some(m.into_owned());
            }
        }
    }

    /// The next response to `cseq_method` that is not a 100, within `t`.
    fn response(&self, method: &str, t: Duration) -> Option<Message<'static>> {
        let deadline = Instant::now() + t;
        loop {
            let m = self.recv(deadline.saturating_duration_since(Instant::now()))?;
            let s = m.status()?;
            if s == 100 || m.cseq().is_none_or(|c| c.method.as_str() != method) {
                continue;
            }
            return Some(m);
        }
    }

    fn digest(&self, method: &str, uri: &str, nonce: &str, header: &str) -> String {
        let ha1 = md5hex(&format!("{}:{}:secret", self.user, "127.0.0.1"));
        let ha2 = md5hex(&format!("{method}:{uri}"));
        let resp = md5hex(&format!("{ha1}:{nonce}:00000001:c0ffee:auth:{ha2}"));
        format!("{header}: Digest username=\"{}\", realm=\"127.0.0.1\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"c0ffee\"\r\n", self.user)
    }

    /// Registers `aor_user` (this UA's account when it is `self.user`) with contact
    /// `contact` for `expires` s; the final status.
    pub(crate) fn register_as(&self, aor_user: &str, contact: SocketAddr, expires: u32) -> u16 {
        let ruri = format!("sip:{}", self.domain);
        // (the Call-ID of the same form as a call's: a client has one generator of them,
        // and its registrations and calls are held to one fingerprint)
        let call_id = format!("{}-sim@{}", token(), self.me().ip());
        let tag = token();
        let build = |cseq: u32, auth: &str| {
            let b = token();
            format!("REGISTER {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{b};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{aor_user}@{d}>;tag={tag}\r\nTo: <sip:{aor_user}@{d}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{aor_user}@{contact}>\r\nExpires: {expires}\r\nUser-Agent: {ua}\r\n{auth}Content-Length: 0\r\n\r\n", me = self.me(), d = self.domain, ua = self.ua)
        };
        for attempt in 0..3 {
            let cseq = next() as u32;
            self.send(&build(cseq, ""));
            let Some(ch) = self.response("REGISTER", Duration::from_millis(1500)) else {
                continue;
            };
            if ch.status() != Some(401) {
                return ch.status().unwrap_or(0);
            }
            let nonce = nonce_of(&ch).unwrap();
            let auth = self.digest("REGISTER", &ruri, &nonce, "Authorization");
            self.send(&build(cseq + 1, &auth));
            if let Some(r) = self.response("REGISTER", Duration::from_millis(1500)) {
                return r.status().unwrap_or(0);
            }
            let _ = attempt;
        }
        0
    }

    /// Calls `callee`: rings, then hangs up after `cancel_after` unless answered
    /// before; an answered call talks for `talk` and ends with a BYE.
    pub(crate) fn call(&self, callee: &str, cancel_after: Duration, talk: Duration) -> Outcome {
        self.call_with(
            callee,
            cancel_after,
            None,
            |_| {},
            |_| std::thread::sleep(talk),
        )
    }

    /// [`Ua::call`] with the media port the offer names (a random one without), `ringing`
    /// run once at the first provisional response (with the media address of its SDP,
    /// if it has one), and `talk` run once answered with the
    /// media address of the answer (its `c=` and `m=` port), instead of a pause.
    pub(crate) fn call_with(
        &self,
        callee: &str,
        cancel_after: Duration,
        media_port: Option<u16>,
        mut ringing_hook: impl FnMut(Option<SocketAddr>),
        mut talk: impl FnMut(Option<SocketAddr>),
    ) -> Outcome {
        let ruri = format!("sip:{callee}@{}", self.domain);
        let call_id = format!("{}-sim@{}", token(), self.me().ip());
        let tag = token();
        let sdp = format!("v=0\r\no=- {n} 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {p} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n", n = next(), ip = self.me().ip(), p = media_port.unwrap_or(4000 + (next() % 1000 * 2) as u16));
        let invite = |branch: &str, cseq: u32, auth: &str| {
            format!("INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{u}@{d}>;tag={tag}\r\nTo: <sip:{callee}@{d}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} INVITE\r\nContact: <sip:{u}@{me}>\r\nUser-Agent: {ua}\r\n{auth}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}", sdp.len(), me = self.me(), u = self.user, d = self.domain, ua = self.ua)
        };
        let ack_for = |branch: &str, cseq: u32, resp: &Message<'_>| {
            let to = to_line(resp);
            format!("ACK {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{u}@{d}>;tag={tag}\r\n{to}Call-ID: {call_id}\r\nCSeq: {cseq} ACK\r\nContent-Length: 0\r\n\r\n", me = self.me(), u = self.user, d = self.domain)
        };
        let b1 = token();
        self.send(&invite(&b1, 1, ""));
        let Some(ch) = self.response("INVITE", Duration::from_secs(3)) else {
            return Outcome::Lost;
        };
        if ch.status() != Some(407) {
            let s = ch.status().unwrap_or(0);
            self.send(&ack_for(&b1, 1, &ch));
            return Outcome::Refused(s);
        }
        self.send(&ack_for(&b1, 1, &ch));
        let nonce = nonce_of(&ch).unwrap();
        let auth = self.digest("INVITE", &ruri, &nonce, "Proxy-Authorization");
        let b2 = token();
        self.send(&invite(&b2, 2, &auth));
        let started = Instant::now();
        let mut ringing: Option<Instant> = None;
        let final_resp = loop {
            let wait = match ringing {
                Some(r) => cancel_after.saturating_sub(r.elapsed()),
                None => Duration::from_secs(5).saturating_sub(started.elapsed()),
            };
            if wait.is_zero() {
                if ringing.is_none() {
                    return Outcome::Lost;
                }
                // give up: CANCEL (same branch as the INVITE)
                self.send(&format!("CANCEL {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{b2};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{u}@{d}>;tag={tag}\r\nTo: <sip:{callee}@{d}>\r\nCall-ID: {call_id}\r\nCSeq: 2 CANCEL\r\nContent-Length: 0\r\n\r\n", me = self.me(), u = self.user, d = self.domain));
                let deadline = Instant::now() + Duration::from_secs(3);
                let fin = loop {
                    let Some(m) = self.recv(deadline.saturating_duration_since(Instant::now()))
                    else {
                        return Outcome::Lost;
                    };
                    if m.cseq().is_some_and(|c| c.method.as_str() == "INVITE")
                        && m.status().is_some_and(|s| s >= 200)
                    {
                        break m;
                    }
                };
                break fin;
            } else {
                let Some(m) = self.response("INVITE", wait) else {
                    continue;
                };
                match m.status() {
                    Some(s) if s < 200 => {
                        if ringing.is_none() && s > 100 {
                            ringing_hook(answer_media(&m));
                        }
                        ringing.get_or_insert_with(Instant::now);
                        continue;
                    }
                    _ => break m,
                }
            }
        };
        let status = final_resp.status().unwrap_or(0);
        if status >= 300 {
            self.send(&ack_for(&b2, 2, &final_resp));
            return if status == 487 {
                Outcome::Cancelled
            } else {
                Outcome::Refused(status)
            };
        }
        // 2xx: ACK and BYE through the Record-Route, to the callee's Contact.
        let route: String = final_resp
            .record_routes()
            .map(|r| format!("Route: <{}>\r\n", r.uri))
            .collect();
        let target = final_resp
            .contacts()
            .find_map(|c| match c {
                palisade_sip::Contact::Addr(a) => Some(a.uri.to_string()),
                _ => None,
            })
            .unwrap_or_else(|| ruri.clone());
        let to = to_line(&final_resp);
        let in_dialog = |method: &str, cseq: u32| {
            let b = token();
            format!("{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{b};rport\r\n{route}Max-Forwards: 70\r\nFrom: <sip:{u}@{d}>;tag={tag}\r\n{to}Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n", me = self.me(), u = self.user, d = self.domain)
        };
        self.send(&in_dialog("ACK", 2));
        talk(answer_media(&final_resp));
        self.send(&in_dialog("BYE", 3));
        let _ = self.response("BYE", Duration::from_secs(3));
        Outcome::Answered
    }
}

/// The media address an SDP body names: its first `c=` and `m=audio` port.
pub(crate) fn answer_media(m: &Message<'_>) -> Option<SocketAddr> {
    let body = std::str::from_utf8(&m.body).ok()?;
    // the media's own c= (after its m=) or the session's
    let after = body.find("m=audio").map_or(body, |i| &body[i..]);
    let ip = after
        .lines()
        .chain(body.lines())
        .find_map(|l| l.trim().strip_prefix("c=IN IP4 "))?
        .trim();
    let port = body
        .lines()
        .find_map(|l| l.trim().strip_prefix("m=audio "))?
        .split(' ')
        .next()?;
    format!("{ip}:{port}").parse().ok()
}

/// How a bank's user answers an INVITE.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Answer {
    /// Rings and answers after this long.
    After(Duration),
    /// Rings until the caller gives up.
    Never,
}

/// Many registered users on one socket: answers INVITEs by policy, CANCEL, BYE,
/// MESSAGE (recorded).
pub(crate) struct Bank {
    pub(crate) addr: SocketAddr,
    pub(crate) messages: Arc<Mutex<Vec<(String, String)>>>,
    pub(crate) invites: Arc<Mutex<HashMap<String, u32>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Bank {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn response(
    req: &Message<'_>,
    status: u16,
    reason: &str,
    tag: &str,
    extra: &str,
    body: &str,
) -> Vec<u8> {
    let mut out = format!("SIP/2.0 {status} {reason}\r\n");
    let mut s = String::new();
    for h in &req.headers {
        match h {
            Header::Via(_)
            | Header::From(_)
            | Header::CallId(_)
            | Header::CSeq(_)
            | Header::RecordRoute(_) => {
                s.clear();
                h.write(&mut s);
                out.push_str(&s);
            }
            Header::To(t) => {
                s.clear();
                h.write(&mut s);
                if t.tag().is_none() && status > 100 {
                    s = s.replace("\r\n", &format!(";tag={tag}\r\n"));
                }
                out.push_str(&s);
            }
            _ => {}
        }
    }
    out.push_str(extra);
    out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    out.into_bytes()
}

impl Bank {
    /// A bank on `bind` whose users answer by `policy(user)`.
    pub(crate) fn start(bind: &str, policy: impl Fn(&str) -> Answer + Send + 'static) -> Bank {
        let sock = UdpSocket::bind(format!("{bind}:0")).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(10)))
            .unwrap();
        let addr = sock.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let messages = Arc::new(Mutex::new(Vec::new()));
        let invites = Arc::new(Mutex::new(HashMap::new()));
        let (st, ms, inv) = (stop.clone(), messages.clone(), invites.clone());
        let thread = std::thread::spawn(move || {
            // Call-ID -> (when to answer, the INVITE, where from)
            let mut pending: HashMap<String, (Option<Instant>, Message<'static>, SocketAddr)> =
                HashMap::new();
            let mut buf = vec![0u8; 65536];
            let sdp = format!("v=0\r\no=- 7 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n", ip = addr.ip());
            while !st.load(Ordering::Relaxed) {
                let now = Instant::now();
                let due: Vec<String> = pending
                    .iter()
                    .filter(|(_, (at, _, _))| at.is_some_and(|a| a <= now))
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in due {
                    if let Some((_, inv, from)) = pending.remove(&k) {
                        let user = inv
                            .request_uri()
                            .and_then(|u| u.as_sip())
                            .and_then(|s| s.user.as_deref())
                            .unwrap_or("")
                            .to_string();
                        let extra = format!(
                            "Contact: <sip:{user}@{addr}>\r\nContent-Type: application/sdp\r\n"
                        );
                        let _ =
                            sock.send_to(&response(&inv, 200, "OK", "bank", &extra, &sdp), from);
                    }
                }
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(m) = parse_datagram(&buf[..n], &Limits::default()) else {
                    continue;
                };
                let Some(method) = m.method().map(|m| m.as_str().to_string()) else {
                    continue; // responses (to nothing we send) are ignored
                };
                let m = m.into_owned();
                let user = m
                    .request_uri()
                    .and_then(|u| u.as_sip())
                    .and_then(|s| s.user.as_deref())
                    .unwrap_or("")
                    .to_string();
                let call_id = m.call_id().unwrap_or("").to_string();
                match method.as_str() {
                    "INVITE" => {
                        *inv.lock().unwrap().entry(user.clone()).or_insert(0) += 1;
                        let _ = sock.send_to(&response(&m, 180, "Ringing", "bank", "", ""), from);
                        let at = match policy(&user) {
                            Answer::After(d) => Some(Instant::now() + d),
                            Answer::Never => None,
                        };
                        pending.insert(call_id, (at, m, from));
                    }
                    "CANCEL" => {
                        let _ = sock.send_to(&response(&m, 200, "OK", "bank", "", ""), from);
                        if let Some((_, inv, ifrom)) = pending.remove(&call_id) {
                            let _ = sock.send_to(
                                &response(&inv, 487, "Request Terminated", "bank", "", ""),
                                ifrom,
                            );
                        }
                    }
                    "ACK" => {}
                    "MESSAGE" => {
                        let body = String::from_utf8_lossy(&m.body).into_owned();
                        ms.lock().unwrap().push((user, body));
                        let _ = sock.send_to(&response(&m, 200, "OK", "bank", "", ""), from);
                    }
                    _ => {
                        let _ = sock.send_to(&response(&m, 200, "OK", "bank", "", ""), from);
                    }
                }
            }
        });
        Bank {
            addr,
            messages,
            invites,
            stop,
            thread: Some(thread),
        }
    }
}
