//! The whole sans-IO core, driven like a server under attack: a sequence of
//! (datagram from a peer, time step) built from realistic templates — REGISTER with
//! digest credentials for a provisioned user, INVITE with SDP and Proxy-Authorization,
//! provisional and final responses to what the proxy forwarded, CANCEL, ACK, BYE and
//! re-INVITE inside the dialog, MESSAGE — whose header values and bodies the fuzzer
//! mutates with multi-byte and invalid UTF-8, NUL and control bytes, overlong numbers,
//! unbalanced quotes and brackets and odd IP literals.
//!
//! After every input it checks invariants, not only "no panic":
//! - every transmitted message parses again;
//! - whatever is forwarded or relayed to another peer is a fixed point of the shield
//!   (the shield would neither refuse nor remove anything in it);
//! - content the shield must remove (a hidden header and SDP attribute in an unmutated
//!   template) never leaves the server;
//! - transactions and timers stay bounded while the sequence runs, and once the clock has
//!   run past every timer, no transaction, answered-request record, nonce count or
//!   budget is left and only the bindings' timers remain.
#![no_main]
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use palisade_core::{salvaged_answer_parses, CoreConfig, Endpoint, Peer, Transport, User};
use palisade_core::{Algorithm, Credential};
use palisade_shield::{apply, Policy};
use palisade_sip::{parse_datagram, Limits};

const MARK: &[u8] = b"XHIDDENX";

/// Feeds the core's observations to the detectors and their restrictions back to the
/// core; other events are dropped.
fn detect(ep: &mut Endpoint, det: &mut palisade_detect::Detector, since_start: Duration) {
    while let Some(e) = ep.poll_event() {
        if let palisade_core::Event::Observation(o) = e {
            det.observe(o);
        }
    }
    det.tick(1_800_000_000_000 + since_start.as_millis() as i64);
    for o in det.drain().collect::<Vec<_>>() {
        if let palisade_detect::Output::Restrict(r) = o {
            ep.restrict(r);
        }
    }
}

/// Bytes the fuzzer splices into header values and bodies (the SIP dictionary covers
/// the names; these are the values that broke parsers before).
const TOKENS: &[&[u8]] = &[
    "é".as_bytes(),
    "日本".as_bytes(),
    b"\xff\xfe",
    b"\xc3",
    b"\x00",
    b"\x01",
    b"\x7f",
    b"\t",
    b"\r\n",
    b"\r\n ",
    b"\"",
    b"\\",
    b"<",
    b">",
    b"[",
    b"]",
    b"[::1",
    b"[::ffff:1.2.3.4]",
    b"999.1.1.1",
    b"1.2.3.4.5",
    b"0x7f.1",
    b"%zz",
    b"%00",
    b";",
    b",",
    b"=",
    b"99999999999999999999",
    b"-1",
    b"4294967296",
    "Moé, 1 Jan 2020 00:00:00 GMT".as_bytes(),
    b"sip:",
    b"sips:x@[::1]:5061",
    b"tel:+1",
    b"z9hG4bK",
    b";tag=",
    b";branch=",
    b";rport",
    b";received=",
    b";lr",
    b"a=candidate:1 1 UDP 1 999.1.1.1 1 typ host\r\n",
    b"m=video 0 RTP/AVP 96\r\n",
];

fn peer(port: u16, transport: Transport) -> Peer {
    Peer {
        transport,
        addr: SocketAddr::from(([192, 0, 2, 10], port)),
        conn: (transport != Transport::Udp).then_some(u64::from(port)),
    }
}

const ALICE: u16 = 5061;
const BOB: u16 = 5062;

/// Reads the fuzzer's bytes as choices; past the end every choice is 0.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (a, b) = self.data.split_at(n);
        self.data = b;
        a
    }
    fn done(&self) -> bool {
        self.data.is_empty()
    }
}

fn md5_digest(user: &str, nonce: &str, method: &str, uri: &str, nc: &str) -> String {
    let a = Algorithm::Md5;
    a.response(
        &a.ha1(user, "example.com", "pw"),
        nonce,
        nc,
        "cn",
        "auth",
        method,
        uri,
    )
}

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\ni=XHIDDENX\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=x-hidden:XHIDDENX\r\na=sendrecv\r\n";

/// What the harness remembers of the conversation so far, to build the next message
/// the way a real peer would.
#[derive(Default)]
struct Dialog {
    nonce: Option<String>,
    nc: u32,
    /// The last request the server sent to bob (a forwarded INVITE, BYE, ...).
    to_bob: Option<Vec<u8>>,
    /// The last 2xx the server relayed to alice.
    to_alice_2xx: Option<Vec<u8>>,
    seq: u32,
}

/// The lines of `msg` (a message the server sent) whose names are in `names`.
fn lines_named(msg: &[u8], names: &[&str]) -> String {
    let text = String::from_utf8_lossy(msg);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let mut out = String::new();
    for l in head.split("\r\n").skip(1) {
        let name = l.split(':').next().unwrap_or("").trim();
        if names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            out.push_str(l);
            out.push_str("\r\n");
        }
    }
    out
}

fn header_value(msg: &[u8], name: &str) -> Option<String> {
    lines_named(msg, &[name])
        .lines()
        .next()
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// Builds the next message of template `t`.
fn template(t: u8, d: &mut Dialog) -> (u16, String) {
    d.seq += 1;
    let n = d.seq;
    let body = |ctype: &str, body: &str| {
        format!(
            "Content-Type: {ctype}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let auth = |d: &mut Dialog, header: &str, method: &str, uri: &str, user: &str| {
        let nonce = d.nonce.clone().unwrap_or_else(|| "0".repeat(56));
        d.nc += 1;
        let nc = format!("{:08x}", d.nc);
        let resp = md5_digest(user, &nonce, method, uri, &nc);
        format!("{header}: Digest username=\"{user}\", realm=\"example.com\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\", algorithm=MD5, qop=auth, nc={nc}, cnonce=\"cn\"\r\n")
    };
    match t % 12 {
        0 | 1 => {
            let user = if t % 12 == 0 { "alice" } else { "bob" };
            let port = if user == "alice" { ALICE } else { BOB };
            let a = auth(d, "Authorization", "REGISTER", "sip:example.com", user);
            (port, format!("REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:{port};branch=z9hG4bKr{n};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@example.com>;tag=r{port}\r\nTo: <sip:{user}@example.com>\r\nCall-ID: reg-{user}\r\nCSeq: {n} REGISTER\r\nContact: <sip:{user}-0x1@192.0.2.10:{port}>;expires=3600\r\n{a}User-Agent: fuzz-phone/1.0\r\nX-Hidden: XHIDDENX\r\nContent-Length: 0\r\n\r\n"))
        }
        2 | 3 => {
            let a = auth(d, "Proxy-Authorization", "INVITE", "sip:bob@example.com", "alice");
            (ALICE, format!("INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:{ALICE};branch=z9hG4bKi{n};rport\r\nMax-Forwards: 70\r\nFrom: \"Alice\" <sip:alice@example.com>;tag=a{n}\r\nTo: <sip:bob@example.com>\r\nCall-ID: call-{n}\r\nCSeq: 1 INVITE\r\nContact: <sip:alice-0x2@192.0.2.10:{ALICE}>\r\n{a}X-Hidden: XHIDDENX\r\nAlert-Info: <http://XHIDDENX>\r\n{}", body("application/sdp", SDP)))
        }
        4 | 5 => {
            // bob answers what the server last sent him
            let Some(req) = d.to_bob.clone() else {
                return template(2, d);
            };
            let statuses = [100u16, 180, 183, 200, 486, 487, 500, 200];
            let status = statuses[usize::from(t / 12) % statuses.len()];
            let method = header_value(&req, "CSeq").unwrap_or_default();
            let copy = lines_named(&req, &["Via", "From", "Call-ID", "CSeq", "Record-Route"]);
            let to = header_value(&req, "To").unwrap_or_default();
            let to = if to.contains("tag=") { to } else { format!("{to};tag=b{n}") };
            let with_sdp = method.ends_with("INVITE") && (status == 183 || status == 200);
            let tail = if with_sdp {
                body("application/sdp", SDP)
            } else {
                "Content-Length: 0\r\n\r\n".to_string()
            };
            (BOB, format!("SIP/2.0 {status} Whatever\r\n{copy}To: {to}\r\nContact: <sip:bob-0x1@192.0.2.10:{BOB}>\r\nX-Hidden: XHIDDENX\r\n{tail}"))
        }
        6 => {
            let m = d.seq.saturating_sub(1);
            (ALICE, format!("CANCEL sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:{ALICE};branch=z9hG4bKi{m};rport\r\nMax-Forwards: 70\r\nFrom: \"Alice\" <sip:alice@example.com>;tag=a{m}\r\nTo: <sip:bob@example.com>\r\nCall-ID: call-{m}\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n"))
        }
        7..=9 => {
            // alice inside the dialog of the last 2xx: ACK, BYE or re-INVITE
            let Some(ok) = d.to_alice_2xx.clone() else {
                return template(2, d);
            };
            let method = ["ACK", "BYE", "INVITE"][usize::from(t % 12 - 7)];
            let mut routes: Vec<String> = lines_named(&ok, &["Record-Route"])
                .lines()
                .filter_map(|l| l.split_once(':').map(|(_, v)| v.trim().to_string()))
                .collect();
            routes.reverse();
            let route = routes
                .iter()
                .map(|r| format!("Route: {r}\r\n"))
                .collect::<String>();
            let from = header_value(&ok, "From").unwrap_or_default();
            let to = header_value(&ok, "To").unwrap_or_default();
            let call_id = header_value(&ok, "Call-ID").unwrap_or_default();
            let cseq = if method == "ACK" { 1 } else { 2 + n };
            let tail = if method == "BYE" {
                "Content-Length: 0\r\n\r\n".to_string()
            } else {
                body("application/sdp", SDP)
            };
            (ALICE, format!("{method} sip:bob-0x1@192.0.2.10:{BOB} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:{ALICE};branch=z9hG4bKd{n};rport\r\nMax-Forwards: 70\r\n{route}From: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:alice-0x2@192.0.2.10:{ALICE}>\r\nX-Hidden: XHIDDENX\r\n{tail}"))
        }
        10 => {
            let a = auth(d, "Proxy-Authorization", "MESSAGE", "sip:bob@example.com", "alice");
            (ALICE, format!("MESSAGE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:{ALICE};branch=z9hG4bKm{n};rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=m{n}\r\nTo: <sip:bob@example.com>\r\nCall-ID: msg-{n}\r\nCSeq: 1 MESSAGE\r\n{a}X-Hidden: XHIDDENX\r\n{}", body("text/plain", "hello")))
        }
        _ => (ALICE, format!("OPTIONS sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:{ALICE};branch=z9hG4bKo{n}\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=o{n}\r\nTo: <sip:example.com>\r\nCall-ID: opt-{n}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")),
    }
}

/// Applies the fuzzer's mutations to one message; `true` when anything changed.
fn mutate(msg: &mut Vec<u8>, inp: &mut Input<'_>) -> bool {
    let count = inp.byte() % 4;
    let mut changed = false;
    for _ in 0..count {
        let kind = inp.byte();
        let at = usize::from(inp.byte()) << 8 | usize::from(inp.byte());
        let at = if msg.is_empty() {
            0
        } else {
            at % (msg.len() + 1)
        };
        let payload: Vec<u8> = match kind % 8 {
            0..=3 => TOKENS[usize::from(inp.byte()) % TOKENS.len()].to_vec(),
            _ => {
                let n = usize::from(inp.byte() % 64);
                inp.bytes(n).to_vec()
            }
        };
        // The fuzzer may not write the marker itself: it only checks what the shield
        // must remove from the templates.
        let payload: Vec<u8> = payload
            .windows(1)
            .map(|w| if w == b"X" { b'x' } else { w[0] })
            .collect();
        match kind >> 5 {
            0 | 1 => {
                // insert
                msg.splice(at..at, payload);
            }
            2 | 3 => {
                // overwrite the rest of the line (a header value)
                let end = msg[at..]
                    .windows(2)
                    .position(|w| w == b"\r\n")
                    .map_or(msg.len(), |p| at + p);
                msg.splice(at..end, payload);
            }
            4 => {
                // delete a line
                let end = msg[at..]
                    .windows(2)
                    .position(|w| w == b"\r\n")
                    .map_or(msg.len(), |p| at + p + 2);
                msg.drain(at..end);
            }
            5 => {
                // duplicate a line
                let end = msg[at..]
                    .windows(2)
                    .position(|w| w == b"\r\n")
                    .map_or(msg.len(), |p| at + p + 2);
                let line = msg[at..end].to_vec();
                msg.splice(end..end, line);
            }
            6 => msg.truncate(at),
            _ => {
                // overlong repetition
                let rep: Vec<u8> = payload
                    .iter()
                    .copied()
                    .cycle()
                    .take(payload.len() * 50)
                    .collect();
                msg.splice(at..at, rep);
            }
        }
        changed = true;
    }
    changed
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Drains what the endpoint transmits and checks it (see the top of this file). `from`:
/// the peer whose input caused it, or `None` for what timers sent.
fn check_transmits(
    ep: &mut Endpoint,
    from: Option<Peer>,
    mutated: bool,
    d: &mut Dialog,
    policy: &Policy,
) {
    while let Some(tx) = ep.poll_transmit() {
        if !mutated {
            assert!(
                !contains(&tx.bytes, MARK),
                "hidden content left the server:\n{}",
                String::from_utf8_lossy(&tx.bytes)
            );
        }
        let m = match parse_datagram(&tx.bytes, &Limits::default()) {
            Ok(m) => Some(m),
            // A 400/505 made from a malformed request's own lines may lack what the
            // request lacked (RFC 4475 insuf, badvers); the rest must be well-formed.
            Err(_) if tx.bytes.starts_with(b"SIP/2.0 4") || tx.bytes.starts_with(b"SIP/2.0 5") => {
                assert!(
                    salvaged_answer_parses(&tx.bytes),
                    "malformed answer:\n{}",
                    String::from_utf8_lossy(&tx.bytes)
                );
                None
            }
            Err(e) => panic!(
                "transmitted message does not parse: {e}\n{}",
                String::from_utf8_lossy(&tx.bytes)
            ),
        };
        let Some(m) = m else { continue };
        if from.is_some_and(|f| tx.to.addr != f.addr) {
            // forwarded or relayed because of this input: a fixed point of the shield
            // (answers echo the sender's own headers; what timers send was checked when
            // first sent, or is built by the server from what it checked)
            let mut again = m.clone();
            match apply(policy, &mut again, &tx.bytes) {
                Ok(dropped) => assert!(
                    dropped.is_empty(),
                    "the shield would still remove {dropped:?} from\n{}",
                    String::from_utf8_lossy(&tx.bytes)
                ),
                Err(r) => panic!(
                    "the shield would refuse what was sent ({r:?}):\n{}",
                    String::from_utf8_lossy(&tx.bytes)
                ),
            }
        }
        if tx.to.addr.port() == BOB && m.is_request() {
            d.to_bob = Some(tx.bytes.clone());
        }
        if tx.to.addr.port() == ALICE && m.status().is_some_and(|s| (200..300).contains(&s)) {
            d.to_alice_2xx = Some(tx.bytes.clone());
        }
        if let Some(n) = header_value(&tx.bytes, "WWW-Authenticate")
            .or_else(|| header_value(&tx.bytes, "Proxy-Authenticate"))
            .and_then(|c| {
                c.split("nonce=\"")
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .map(str::to_string)
            })
        {
            d.nonce = Some(n);
            d.nc = 0;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input { data };
    let t0 = Instant::now();
    let mut now = t0;
    let cfg = CoreConfig {
        domain: "example.com".into(),
        local: vec![
            (Transport::Udp, "10.0.0.1:5060".parse().unwrap()),
            (Transport::Tcp, "10.0.0.1:5060".parse().unwrap()),
        ],
        algorithms: vec![Algorithm::Md5, Algorithm::Sha256],
        preallocate: false,
        observe: true,
        ..CoreConfig::default()
    };
    let mut ep = Endpoint::new(cfg, [7; 32], now);
    ep.set_unix_time(now, 1_800_000_000);
    let start = now;
    // The campaign detectors, fed with what the core observes, their restrictions
    // applied back to the core (thresholds low, so that fuzzed traffic reaches them).
    let mut dcfg = palisade_detect::Config::default();
    dcfg.sweep.min_callees = 2;
    dcfg.new_accounts.min_strangers = 1;
    dcfg.new_accounts.min_accounts = 1;
    dcfg.scan.min_users = 2;
    dcfg.scan.min_auth_failures = 2;
    dcfg.refusals.min_refusals = 1;
    let mut det = palisade_detect::Detector::new(dcfg, (1, 1, 1));
    det.set_accounts([
        ("alice".to_string(), 1_800_000_000_000),
        ("bob".to_string(), 0),
    ]);
    det.add_profile("baresip", 1);
    // The endpoint's own policy (its rewrite key); the residual cap is left out of the
    // fixed-point check: what the proxy adds (its Via, its Record-Route) counts there
    // on a second pass, and the cap has tests of its own.
    let policy = Policy {
        max_residual_bytes: u64::MAX,
        ..ep.config().shield.clone()
    };
    ep.set_users(
        ["alice", "bob"]
            .iter()
            .map(|n| User {
                name: n.to_string(),
                credential: Credential::from_password(n, "example.com", "pw"),
                created_unix: 0,
                protection: (*n == "bob" && data.first() == Some(&0x55))
                    .then(|| vec!["alice".to_string()]),
            })
            .collect(),
    );
    let mut d = Dialog::default();
    let mut inputs = 0usize;
    while !inp.done() && inputs < 64 {
        inputs += 1;
        let t = inp.byte();
        let transport = if inp.byte() & 1 == 0 {
            Transport::Udp
        } else {
            Transport::Tcp
        };
        let (port, text) = template(t, &mut d);
        let mut msg = text.into_bytes();
        let mutated = if t == 255 {
            // raw bytes: the parser's own territory, through the whole core
            let n = usize::from(inp.byte());
            msg = inp.bytes(n).to_vec();
            true
        } else {
            mutate(&mut msg, &mut inp)
        };
        let from = peer(port, transport);
        ep.handle_datagram(now, from, &msg);
        let step = Duration::from_millis(u64::from(inp.byte()) * 40);
        check_transmits(&mut ep, Some(from), mutated, &mut d, &policy);
        detect(&mut ep, &mut det, now - start);
        if t % 17 == 3 {
            // a notification to a user (who may or may not have a device)
            let _ = ep.notify(
                now,
                if t & 1 == 0 { "bob" } else { "alice" },
                "security",
                "notice",
            );
        }
        now += step;
        ep.handle_timeout(now);
        check_transmits(&mut ep, None, true, &mut d, &policy);
        detect(&mut ep, &mut det, now - start);
        let (servers, clients) = ep.transaction_count();
        assert!(
            servers <= inputs,
            "{servers} server transactions after {inputs} inputs"
        );
        assert!(
            clients <= 16 * inputs,
            "{clients} client transactions after {inputs} inputs"
        );
        assert!(
            ep.timer_count() <= 64 * inputs + 16,
            "{} timers",
            ep.timer_count()
        );
    }
    // Run the clock past every timer (Timer C is 181 s, nonces live 300 s, a source
    // that authenticated is exempt from the answer budget for 600 s).
    for _ in 0..140 {
        now += Duration::from_secs(5);
        ep.handle_timeout(now);
        check_transmits(&mut ep, None, true, &mut d, &policy);
        while ep.poll_event().is_some() {}
    }
    assert_eq!(
        ep.transaction_count(),
        (0, 0),
        "transactions left after 700 s"
    );
    let (nonces, budgets, aliases, answered) = ep.table_sizes();
    assert_eq!(
        (nonces, budgets, answered),
        (0, 0, 0),
        "tables left after 700 s"
    );
    let _ = aliases; // stream connections are closed by the shell, not by time
                     // Only the bindings' expiry timers may remain (at most one armed per input).
    assert!(
        ep.timer_count() <= inputs + 1,
        "{} timers left after {inputs} inputs",
        ep.timer_count()
    );
});
