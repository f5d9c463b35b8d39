//! The Endpoint: owns the transaction tables, the location service and the
//! authenticator, and turns `(datagram, now)` and `(timeout, now)` into transmits and
//! events. No sockets, no clock, no database.
use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use palisade_sip::{
    parse_datagram, parse_uri, sanity, CSeq, Contact, Credentials, Header, Host, Limits, Message,
    Method, NameAddr, Param, ParseError, StartLine, Uri, Via,
};
use tracing::{debug, info, warn};

use crate::algorithms::Note;
use crate::auth::{Authenticator, Credential, DigestResponse, Verdict};
use crate::ratelimit::{shrink, AnswerBudget};
use crate::types::*;
use palisade_shield::{EventKind, Refusal, SecurityEvent};

const MAGIC: &str = "z9hG4bK";

/// A server transaction's identity (RFC 3261 section 17.2.3), hashed with a per-boot
/// salt: no string is built or stored per request.
type TxnKey = u64;
const OUR_BRANCH: &str = "z9hG4bKpal";
const SERVER_NAME: &str = "Palisade/0.1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SState {
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CState {
    Trying,
    Proceeding,
    Completed,
}

struct ServerTxn {
    invite: bool,
    state: SState,
    source: Peer,
    request: Vec<u8>,
    last: Option<Vec<u8>>,
    retrans: Duration,
    branches: Vec<String>,
    best: Option<(u16, Vec<u8>)>,
    cancelled: bool,
    final_sent: bool,
}

impl ServerTxn {
    fn new(invite: bool, source: Peer, request: Vec<u8>, t1: Duration) -> Self {
        ServerTxn {
            invite,
            state: SState::Proceeding,
            source,
            request,
            last: None,
            retrans: t1,
            branches: Vec::new(),
            best: None,
            cancelled: false,
            final_sent: false,
        }
    }
}

/// What is remembered of a non-INVITE request answered locally.
struct Answered {
    /// It carried valid credentials: a retransmission is not checked again (its nonce
    /// count would look like a replay).
    authed: bool,
}

struct ClientTxn {
    invite: bool,
    state: CState,
    dest: Peer,
    request: Vec<u8>,
    server: Option<TxnKey>,
    interval: Duration,
    provisional: bool,
    cancel_pending: bool,
    done: bool,
    /// Timer C (RFC 3261 section 16.6 step 11): when a ringing INVITE branch gives up.
    /// `None` until the first provisional; each provisional pushes it back.
    timer_c: Option<Instant>,
    /// Timer C fired and the branch was cancelled: if the callee does not answer the
    /// CANCEL either, the branch ends with a 408 after 64*T1.
    expired: bool,
}

/// Timer C: RFC 3261 says more than three minutes.
const TIMER_C: Duration = Duration::from_secs(181);

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TimerWhat {
    ClientTimerC(String),
    ServerRetrans(TxnKey),
    ServerTimeout(TxnKey),
    ServerEnd(TxnKey),
    ClientRetrans(String),
    ClientTimeout(String),
    ClientEnd(String),
    Bindings(String),
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    at: Instant,
    seq: u64,
    what: TimerWhat,
}

/// Counters for logs and metrics.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub requests: u64,
    pub responses: u64,
    pub malformed: u64,
    pub challenges: u64,
    pub auth_failures: u64,
    pub forwarded: u64,
    /// Requests refused by the shield (415/488/400/413).
    pub shield_refused: u64,
    /// Responses and ACKs whose body the shield refused.
    pub shield_answers_refused: u64,
    /// Headers, SDP attributes and SDP lines removed from forwarded messages.
    pub shield_dropped: u64,
    /// Calls refused because the callee is protected.
    pub protected_refused: u64,
    /// Answers to unauthenticated UDP senders not sent: the source's budget was spent.
    pub answers_rate_limited: u64,
    /// Answers to unauthenticated UDP senders not sent: larger than the request even
    /// without their optional lines.
    pub answers_too_large: u64,
    /// Requests refused with 503 because `max_transactions` was reached.
    pub overloaded: u64,
    /// Messages whose handling panicked (contained by the shell).
    pub panics: u64,
}

struct Target {
    ruri: Option<String>,
    dest: Peer,
    path: Vec<String>,
}

/// Who is being challenged (see [`Endpoint::challenge`]).
struct Challenge<'a> {
    proxy: bool,
    device: u64,
    ua: &'a str,
    txn: TxnKey,
    method: &'a str,
}

enum Decision {
    Reply(u16, &'static str, Vec<Header<'static>>),
    Forward(Vec<Target>, bool),
}

pub struct Endpoint {
    cfg: CoreConfig,
    auth: Authenticator,
    users: HashMap<String, Credential>,
    location: HashMap<String, Vec<Binding>>,
    servers: HashMap<TxnKey, ServerTxn>,
    clients: HashMap<String, ClientTxn>,
    timers: BinaryHeap<Reverse<Timer>>,
    seq: u64,
    out: VecDeque<Transmit>,
    events: VecDeque<Event>,
    salt: u64,
    /// Stream connections by the address their peer advertises in Via (RFC 5923 style),
    /// so that requests to that address reuse the connection.
    aliases: HashMap<(Transport, SocketAddr), u64>,
    answered: HashMap<u64, Answered>,
    answered_q: VecDeque<(Instant, u64)>,
    preauthenticated: bool,
    authed_now: bool,
    /// Protected users and their allow-lists.
    protected: HashMap<String, Vec<String>>,
    /// Account creation times (Unix seconds), for the protected-user age rule.
    created: HashMap<String, i64>,
    /// An instant and the Unix time it corresponds to (given by the shell).
    unix_base: Option<(Instant, i64)>,
    /// Per-source budget for answers to unauthenticated UDP senders.
    budget: AnswerBudget,
    /// The datagram being handled: when it arrived and its size (UDP only), the bound
    /// of what may be answered to its unproven source.
    inbound: Option<(Instant, usize)>,
    /// The source address of that datagram.
    inbound_ip: Option<IpAddr>,
    /// A locally made answer is being sent on a server transaction.
    answering: bool,
    /// When the per-client tables are next swept.
    next_sweep: Instant,
    /// Which digest algorithm each device gets first.
    algos: crate::algorithms::Memory,
    /// Key of the dialog tokens in our Record-Route (`pal=`).
    route_key: [u8; 32],
    pub stats: Stats,
}

/// How often the nonce counts, answer budgets and stale timers are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

fn hash64(parts: &[&[u8]], salt: u64) -> u64 {
    let mut h = DefaultHasher::new();
    salt.hash(&mut h);
    for p in parts {
        p.hash(&mut h);
    }
    h.finish()
}

fn uri_string(u: &Uri<'_>) -> String {
    let mut s = String::new();
    u.write(&mut s);
    s
}

/// Key of the server transaction a request belongs to (RFC 3261 section 17.2.3); with
/// `as_invite`, the key of the INVITE an ACK or CANCEL refers to.
fn server_key(m: &Message<'_>, as_invite: bool, salt: u64) -> TxnKey {
    let method = if as_invite {
        "INVITE"
    } else {
        m.method().map(|m| m.as_str()).unwrap_or("")
    };
    let mut h = DefaultHasher::new();
    salt.hash(&mut h);
    let via = m.top_via();
    let branch = via.and_then(|v| v.branch()).unwrap_or("");
    if let Some(v) = via {
        v.host.hash(&mut h);
        v.port.hash(&mut h);
    }
    branch.hash(&mut h);
    method.hash(&mut h);
    if !branch.starts_with(MAGIC) {
        // RFC 2543 peers: match on the request's identity as well.
        m.call_id().hash(&mut h);
        m.cseq().map(|c| c.seq).hash(&mut h);
        m.from().and_then(|f| f.tag()).hash(&mut h);
    }
    h.finish()
}

/// RFC 3581 and RFC 3261 section 18.2.1: note where the request really came from.
fn fix_top_via(m: &mut Message<'_>, from: Peer) {
    if let Some(Header::Via(v)) = m.headers.iter_mut().find(|h| matches!(h, Header::Via(_))) {
        let ip = from.addr.ip();
        let differs = match &v.host {
            Host::V4(a) => IpAddr::V4(*a) != ip,
            Host::V6(a) => IpAddr::V6(*a) != ip,
            Host::Domain(_) => true,
        };
        if differs && v.param("received").is_none() {
            v.params
                .push(Param::new("received", Some(Cow::Owned(ip.to_string()))));
        }
        if let Some(p) = v
            .params
            .iter_mut()
            .find(|p| p.name.eq_ignore_ascii_case("rport"))
        {
            if p.value.is_none() {
                p.value = Some(Cow::Owned(from.addr.port().to_string()));
                if v.param("received").is_none() {
                    v.params
                        .push(Param::new("received", Some(Cow::Owned(ip.to_string()))));
                }
            }
        }
    }
}

/// `msg` with the protocol version of every Via line read as `SIP/2.0`: a 505 answers
/// a client that speaks another version and echoes its Via (RFC 4475 `badvers`); this
/// is how such an answer is checked as well-formed.
fn via_as_sip_2_0(msg: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(msg)
        .split("\r\n")
        .map(|l| match l.split_once(':') {
            Some((n, v)) if n.trim().eq_ignore_ascii_case("via") || n.trim() == "v" => {
                match v
                    .trim_start()
                    .strip_prefix("SIP/")
                    .and_then(|r| r.split_once('/'))
                {
                    Some((_, rest)) => format!("Via: SIP/2.0/{rest}"),
                    None => l.to_string(),
                }
            }
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\r\n")
        .into_bytes()
}

fn bad_request_salvage(bytes: &[u8], e: &ParseError) -> Option<Vec<u8>> {
    // Answer a malformed request only if the lines a response needs are themselves clean.
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(bytes.get(..head_end).unwrap_or_default()).ok()?;
    if head
        .bytes()
        .any(|b| (b < 0x20 && b != b'\r' && b != b'\n' && b != b'\t') || b == 0x7f)
    {
        return None;
    }
    let mut lines = String::new();
    let mut have = [false; 5]; // Via, From, To, Call-ID, CSeq
    for line in head.split("\r\n").skip(1) {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let Some((name, _)) = line.split_once(':') else {
            continue;
        };
        let n = name.trim().to_ascii_lowercase();
        let idx = match n.as_str() {
            "via" | "v" => 0,
            "from" | "f" => 1,
            "to" | "t" => 2,
            "call-id" | "i" => 3,
            "cseq" => 4,
            _ => continue,
        };
        match have.get_mut(idx) {
            // Every Via; only the first From/To/Call-ID/CSeq (a repeated one, as in
            // RFC 4475 `multi01`, is the error itself).
            Some(h) if !*h || idx == 0 => *h = true,
            _ => continue,
        }
        lines.push_str(line);
        lines.push_str("\r\n");
    }
    // Via (where to send) and CSeq (what to match) are the minimum; RFC 4475 `insuf`
    // expects a 400 even when To, From and Call-ID are missing.
    if !(have[0] && have[4]) {
        return None;
    }
    let reason = e.to_string().replace(['"', '\\'], "'");
    let answer = format!(
        "SIP/2.0 {} {}\r\n{lines}Warning: 399 palisade \"{reason}\"\r\nServer: {SERVER_NAME}\r\nContent-Length: 0\r\n\r\n",
        e.status(),
        e.reason_phrase()
    )
    .into_bytes();
    // The copied lines are the sender's: when one of them is itself malformed, the
    // answer would be too, and nothing malformed leaves this server.
    salvaged_answer_parses(&answer).then_some(answer)
}

/// Whether an answer made from a malformed request's own lines is well-formed, given
/// what such an answer may lack: the From, To or Call-ID the request did not have
/// (RFC 4475 `insuf` is answered without them) and a Via in another SIP version (the
/// 505 to RFC 4475 `badvers` echoes it). Everything else must parse.
pub fn salvaged_answer_parses(answer: &[u8]) -> bool {
    let mut check = via_as_sip_2_0(answer);
    let text = String::from_utf8_lossy(&check).into_owned();
    let has = |names: &[&str]| {
        text.split("\r\n").skip(1).any(|l| {
            l.split_once(':')
                .is_some_and(|(n, _)| names.iter().any(|x| n.trim().eq_ignore_ascii_case(x)))
        })
    };
    let mut fill = String::new();
    for (names, line) in [
        (&["from", "f"][..], "From: <sip:check@invalid>;tag=c\r\n"),
        (&["to", "t"][..], "To: <sip:check@invalid>\r\n"),
        (&["call-id", "i"][..], "Call-ID: check\r\n"),
    ] {
        if !has(names) {
            fill.push_str(line);
        }
    }
    let head_len = check.len().saturating_sub(2);
    check.splice(head_len..head_len, fill.bytes());
    parse_datagram(&check, &Limits::default()).is_ok()
}

impl Endpoint {
    pub fn new(cfg: CoreConfig, secret: [u8; 32], now: Instant) -> Self {
        let salt = u64::from_le_bytes(secret[..8].try_into().unwrap_or([0; 8]));
        let auth = Authenticator::new(secret, now, cfg.nonce_ttl);
        let (cfg_rate, cfg_burst) = (cfg.answer_rate, cfg.answer_burst);
        // Dialog tokens must survive a restart (a call set up before it must still hang
        // up through us), so the shell gives a persisted key; otherwise one is derived
        // from the per-boot secret.
        let route_key = cfg.route_key.unwrap_or_else(|| {
            palisade_shield::sha256(&[&b"palisade route key\0"[..], &secret[..]].concat())
        });
        // Identifier rewrites (msid, cname, o= session id) must map a value the same way
        // for the whole dialog, across restarts too: keyed from the persisted route key.
        let mut cfg = cfg;
        cfg.shield.rewrite_key =
            palisade_shield::sha256(&[&b"palisade shield rewrite\0"[..], &route_key[..]].concat());
        let prealloc = cfg.preallocate;
        let cap = |n: usize| if prealloc { n } else { 0 };
        Endpoint {
            cfg,
            auth,
            users: HashMap::new(),
            location: HashMap::with_capacity(cap(1 << 14)),
            // Sized for a busy second up front: growing a large table rehashes it all
            // at once, a stall long enough to overflow a UDP receive buffer.
            servers: HashMap::with_capacity(cap(1 << 16)),
            clients: HashMap::with_capacity(cap(1 << 14)),
            timers: BinaryHeap::with_capacity(cap(1 << 16)),
            seq: 0,
            out: VecDeque::new(),
            events: VecDeque::new(),
            salt,
            aliases: HashMap::new(),
            answered: HashMap::with_capacity(cap(1 << 16)),
            answered_q: VecDeque::with_capacity(cap(1 << 16)),
            preauthenticated: false,
            authed_now: false,
            protected: HashMap::new(),
            created: HashMap::new(),
            unix_base: None,
            budget: AnswerBudget::new(cfg_rate, cfg_burst),
            inbound: None,
            inbound_ip: None,
            answering: false,
            next_sweep: now + SWEEP_EVERY,
            algos: crate::algorithms::Memory::default(),
            route_key,
            stats: Stats::default(),
        }
    }

    pub fn config(&self) -> &CoreConfig {
        &self.cfg
    }

    /// Replaces the set of provisioned accounts.
    pub fn set_users(&mut self, users: Vec<User>) {
        self.protected.clear();
        self.created.clear();
        for u in &users {
            if let Some(allow) = &u.protection {
                self.protected.insert(u.name.clone(), allow.clone());
            }
            self.created.insert(u.name.clone(), u.created_unix);
        }
        self.users = users.into_iter().map(|u| (u.name, u.credential)).collect();
    }

    /// Tells the core which Unix time `now` is (for account ages; the core never reads
    /// a clock itself).
    pub fn set_unix_time(&mut self, now: Instant, unix: i64) {
        self.unix_base = Some((now, unix));
    }

    fn unix_now(&self, now: Instant) -> Option<i64> {
        self.unix_base
            .map(|(at, u)| u + now.saturating_duration_since(at).as_secs() as i64)
    }

    /// Restores a binding loaded from storage at start-up.
    pub fn restore_binding(&mut self, b: Binding) {
        let at = b.expires_at;
        let aor = b.aor.clone();
        self.location.entry(aor.clone()).or_default().push(b);
        self.arm(at, TimerWhat::Bindings(aor));
    }

    pub fn bindings(&self) -> impl Iterator<Item = &Binding> {
        self.location.values().flatten()
    }

    pub fn transaction_count(&self) -> (usize, usize) {
        (self.servers.len(), self.clients.len())
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let t = self.timers.peek().map(|t| t.0.at);
        let a = self.answered_q.front().map(|a| a.0);
        [t, a, Some(self.next_sweep)].into_iter().flatten().min()
    }

    /// Entries in the timer queue (live and not yet discarded).
    pub fn timer_count(&self) -> usize {
        self.timers.len()
    }

    /// Sizes of the per-client tables: (nonce counts, answer budgets, connection
    /// aliases, answered non-INVITE requests).
    pub fn table_sizes(&self) -> (usize, usize, usize, usize) {
        (
            self.auth.tracked_nonces(),
            self.budget.tracked(),
            self.aliases.len(),
            self.answered.len(),
        )
    }

    /// Devices whose digest algorithm preference is remembered.
    pub fn devices_remembered(&self) -> usize {
        self.algos.len()
    }

    /// Sends an answer this server made up itself to the sender of the current
    /// request. Over UDP, to a sender that did not authenticate, an error answer spends
    /// the source's budget and must not be larger than the request (a digest challenge:
    /// not larger than the request plus `challenge_allowance`); see [`crate::ratelimit`].
    fn send_answer(&mut self, to: Peer, bytes: Vec<u8>) {
        let Some((now, len)) = self.inbound else {
            self.send(to, bytes);
            return;
        };
        if to.transport != Transport::Udp || self.authed_now {
            self.send(to, bytes);
            return;
        }
        let status = bytes
            .get(8..11)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| d.parse::<u16>().ok())
            .unwrap_or(0);
        if status >= 300 && !self.budget.allow(now, to.addr.ip()) {
            self.stats.answers_rate_limited += 1;
            debug!(peer = %to.addr, status, "answer not sent: the source's answer budget is spent");
            return;
        }
        if status < 300 {
            self.send(to, bytes);
            return;
        }
        // A challenge may exceed the request by `challenge_allowance`: a stock client's
        // first REGISTER (SIPp's is 330 bytes) is smaller than a 401 with one challenge.
        let max = if matches!(status, 401 | 407) {
            len + self.cfg.challenge_allowance
        } else {
            len + self.cfg.answer_allowance
        };
        let bytes = shrink(bytes, max);
        if bytes.len() > max {
            self.stats.answers_too_large += 1;
            debug!(peer = %to.addr, status, request = len, answer = bytes.len(), "answer not sent: larger than the request (no amplification)");
            return;
        }
        self.send(to, bytes);
    }

    /// Sweeps the per-client tables: nonce counts of expired nonces, idle answer
    /// budgets, and timer entries whose transaction or binding is gone.
    fn sweep(&mut self, now: Instant) {
        self.auth.sweep(now);
        self.budget.sweep(now);
        self.algos.sweep(now);
        let live = self.servers.len() + self.clients.len() + self.location.len();
        if self.timers.len() > 2 * live + 4096 {
            let timers = std::mem::take(&mut self.timers);
            self.timers = timers
                .into_iter()
                .filter(|Reverse(t)| self.timer_is_live(&t.what))
                .collect();
        }
    }

    fn timer_is_live(&self, w: &TimerWhat) -> bool {
        match w {
            TimerWhat::ServerRetrans(k) | TimerWhat::ServerTimeout(k) | TimerWhat::ServerEnd(k) => {
                self.servers.contains_key(k)
            }
            TimerWhat::ClientTimerC(k)
            | TimerWhat::ClientRetrans(k)
            | TimerWhat::ClientTimeout(k)
            | TimerWhat::ClientEnd(k) => self.clients.contains_key(k),
            TimerWhat::Bindings(aor) => self.location.contains_key(aor),
        }
    }

    /// The shell reports that handling `bytes` from `from` panicked (and was contained).
    /// Counts it, records a security event with the message's SHA-256, and answers 500
    /// when the message is a request that can still be answered: on its server
    /// transaction when one exists without a final response, else statelessly.
    pub fn record_panic(&mut self, now: Instant, from: Peer, bytes: &[u8]) {
        self.stats.panics += 1;
        self.inbound = None;
        self.answering = false;
        self.authed_now = false;
        let sha256 = palisade_shield::sha256(bytes);
        let Ok(msg) = parse_datagram(bytes, &self.cfg.limits) else {
            let ev = SecurityEvent {
                kind: EventKind::Panic,
                method: String::new(),
                caller: String::new(),
                callee: String::new(),
                source: peer_text(from),
                call_id: String::new(),
                reason: "panic while handling an unparsable message".into(),
                status: None,
                sha256,
            };
            self.events.push_back(Event::Security(ev));
            return;
        };
        let answer = msg.is_request() && msg.method() != Some(&Method::Ack);
        self.security(
            EventKind::Panic,
            from,
            &msg,
            "panic while handling this message; answered 500".into(),
            answer.then_some(500),
            sha256,
        );
        if !answer {
            return;
        }
        let key = server_key(&msg, false, self.salt);
        match self.servers.get(&key) {
            Some(t) if !t.final_sent => {
                self.reply(now, key, &msg, 500, "Server Internal Error", vec![]);
            }
            Some(_) => {}
            None => {
                let b = self.build_response(&msg, 500, "Server Internal Error", vec![]);
                self.send(from, b);
            }
        }
    }

    fn arm(&mut self, at: Instant, what: TimerWhat) {
        self.seq += 1;
        self.timers.push(Reverse(Timer {
            at,
            seq: self.seq,
            what,
        }));
    }

    fn send(&mut self, mut to: Peer, bytes: Vec<u8>) {
        if to.transport.reliable() && to.conn.is_none() {
            to.conn = self.aliases.get(&(to.transport, to.addr)).copied();
        }
        self.out.push_back(Transmit { to, bytes });
    }

    /// The shell reports a closed stream connection.
    pub fn connection_closed(&mut self, conn: u64) {
        self.aliases.retain(|_, c| *c != conn);
    }

    fn local(&self, t: Transport) -> Option<SocketAddr> {
        self.cfg
            .local
            .iter()
            .find(|(lt, _)| *lt == t)
            .map(|(_, a)| *a)
    }

    fn host_is_us(&self, host: &Host<'_>) -> bool {
        match host {
            Host::Domain(d) => {
                d.eq_ignore_ascii_case(&self.cfg.domain)
                    || self.cfg.aliases.iter().any(|a| a.eq_ignore_ascii_case(d))
            }
            Host::V4(a) => self.ip_is_us(IpAddr::V4(*a)),
            Host::V6(a) => self.ip_is_us(IpAddr::V6(*a)),
        }
    }

    fn ip_is_us(&self, ip: IpAddr) -> bool {
        self.cfg.local.iter().any(|(_, a)| a.ip() == ip)
            || self
                .cfg
                .aliases
                .iter()
                .any(|a| a.parse::<IpAddr>().ok() == Some(ip))
            || self.cfg.domain.parse::<IpAddr>().ok() == Some(ip)
    }

    /// Whether a request for `u` is for this server (RFC 3261 sections 16.4–16.5): a
    /// URI of our domain (or a configured alias) without a port, or with the port of
    /// one of our listeners; or our own address — a listener's IP address (or an IP
    /// alias) *and* its port (5060, 5061 for `sips:` or `transport=tls` when absent),
    /// over a transport we listen on. A URI on our host at another port is someone else
    /// (a phone or a PBX on the same machine), and is routed like any other address.
    fn uri_targets_us(&self, u: &Uri<'_>) -> bool {
        let Uri::Sip(s) = u else { return false };
        let transport = s.transport().and_then(Transport::parse);
        let tls = s.secure || transport == Some(Transport::Tls);
        let port_ok = |port: u16| {
            self.cfg.local.is_empty()
                || self.cfg.local.iter().any(|(t, a)| {
                    a.port() == port
                        && match transport {
                            Some(want) => *t == want,
                            None => true,
                        }
                })
        };
        let names_domain = match &s.host {
            Host::Domain(d) => {
                d.eq_ignore_ascii_case(&self.cfg.domain)
                    || self.cfg.aliases.iter().any(|a| a.eq_ignore_ascii_case(d))
            }
            Host::V4(a) => self.ip_is_domain(IpAddr::V4(*a)),
            Host::V6(a) => self.ip_is_domain(IpAddr::V6(*a)),
        };
        if names_domain {
            return s.port.is_none_or(port_ok);
        }
        let ip = match &s.host {
            Host::V4(a) => IpAddr::V4(*a),
            Host::V6(a) => IpAddr::V6(*a),
            Host::Domain(_) => return false,
        };
        self.ip_is_us(ip) && port_ok(s.port.unwrap_or(if tls { 5061 } else { 5060 }))
    }

    /// The domain (or an alias) is this IP address written as a literal.
    fn ip_is_domain(&self, ip: IpAddr) -> bool {
        self.cfg.domain.parse::<IpAddr>().ok() == Some(ip)
            || self
                .cfg
                .aliases
                .iter()
                .any(|a| a.parse::<IpAddr>().ok() == Some(ip))
    }

    /// A URI that addresses this server itself (host and, where given, port).
    fn uri_is_us(&self, u: &Uri<'_>) -> bool {
        let Uri::Sip(s) = u else { return false };
        if !self.host_is_us(&s.host) {
            return false;
        }
        match (&s.host, s.port) {
            (Host::Domain(d), None) if d.eq_ignore_ascii_case(&self.cfg.domain) => true,
            (_, port) => {
                let p = port.unwrap_or(if s.secure { 5061 } else { 5060 });
                self.cfg.local.iter().any(|(_, a)| a.port() == p) || self.cfg.local.is_empty()
            }
        }
    }

    fn via_is_us(&self, v: &Via<'_>) -> bool {
        self.host_is_us(&v.host)
            && self
                .cfg
                .local
                .iter()
                .any(|(_, a)| a.port() == v.port.unwrap_or(5060))
    }

    fn resolve(&self, u: &Uri<'_>) -> Option<Peer> {
        let Uri::Sip(s) = u else { return None };
        let transport = match s.transport().and_then(Transport::parse) {
            Some(t) => t,
            None if s.secure => Transport::Tls,
            None => Transport::Udp,
        };
        let ip: IpAddr = match &s.host {
            Host::V4(a) => IpAddr::V4(*a),
            Host::V6(a) => IpAddr::V6(*a),
            Host::Domain(d) if d.eq_ignore_ascii_case("localhost") => IpAddr::from([127, 0, 0, 1]),
            Host::Domain(_) => return None,
        };
        let port = s.port.unwrap_or(if transport == Transport::Tls {
            5061
        } else {
            5060
        });
        Some(Peer {
            transport,
            addr: SocketAddr::new(ip, port),
            conn: None,
        })
    }

    /// Where to send a request for a binding: the Contact's address when it is on the
    /// host the REGISTER came from over the same transport (one process may register for
    /// another port), otherwise the REGISTER's source, i.e. its NAT mapping or its
    /// TCP/TLS connection (RFC 3581 reasoning).
    fn binding_dest(&self, b: &Binding) -> Peer {
        match parse_uri(&b.contact, &self.cfg.limits)
            .ok()
            .and_then(|u| self.resolve(&u))
        {
            Some(p)
                if p.addr.ip() == b.source.addr.ip()
                    && p.transport == b.source.transport
                    && p.addr != b.source.addr =>
            {
                p
            }
            _ => b.source,
        }
    }

    fn aor_of(&self, u: &Uri<'_>) -> Option<(String, String)> {
        let Uri::Sip(s) = u else { return None };
        let user = s.user.as_deref()?;
        let decoded = palisade_sip::percent_decode(user);
        let user = String::from_utf8_lossy(&decoded).into_owned();
        Some((format!("{user}@{}", self.cfg.domain), user))
    }

    fn to_tag(&self, m: &Message<'_>) -> String {
        let h = hash64(
            &[
                m.call_id().unwrap_or("").as_bytes(),
                m.from().and_then(|f| f.tag()).unwrap_or("").as_bytes(),
            ],
            self.salt,
        );
        format!("{h:016x}")
    }

    // ---------------------------------------------------------------- input

    /// One datagram (UDP) or one framed message (TCP/TLS) from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: Peer, bytes: &[u8]) {
        if bytes.iter().all(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return; // keep-alive
        }
        self.authed_now = false;
        self.inbound = (from.transport == Transport::Udp).then_some((now, bytes.len()));
        self.inbound_ip = Some(from.addr.ip());
        self.handle_message(now, from, bytes);
        self.inbound = None;
        self.inbound_ip = None;
        self.authed_now = false;
    }

    fn handle_message(&mut self, now: Instant, from: Peer, bytes: &[u8]) {
        match parse_datagram(bytes, &self.cfg.limits) {
            Err(e) => {
                self.stats.malformed += 1;
                if e.is_response {
                    debug!(peer = %from.addr, error = %e, "dropped malformed response");
                } else if let Some(resp) = bad_request_salvage(bytes, &e) {
                    debug!(peer = %from.addr, status = e.status(), error = %e, "refused malformed request");
                    self.send_answer(from, resp);
                } else {
                    debug!(peer = %from.addr, error = %e, "dropped malformed request (no Via/From/To/Call-ID/CSeq to answer to)");
                }
            }
            Ok(m) if m.is_request() => self.on_request(now, from, m, bytes),
            Ok(m) => self.on_response(now, from, m, bytes),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if now >= self.next_sweep {
            self.sweep(now);
            self.next_sweep = now + SWEEP_EVERY;
        }
        while let Some(&(at, kh)) = self.answered_q.front() {
            if at > now {
                break;
            }
            self.answered_q.pop_front();
            self.answered.remove(&kh);
        }
        while let Some(t) = self.timers.peek() {
            if t.0.at > now {
                break;
            }
            let Some(Reverse(t)) = self.timers.pop() else {
                break;
            };
            self.fire(now, t.what);
        }
    }

    fn on_request(&mut self, now: Instant, from: Peer, mut msg: Message<'_>, raw: &[u8]) {
        self.stats.requests += 1;
        if let (Some(conn), Some(v)) = (from.conn, msg.top_via()) {
            let ip = match &v.host {
                Host::V4(a) => Some(IpAddr::V4(*a)),
                Host::V6(a) => Some(IpAddr::V6(*a)),
                Host::Domain(_) => None,
            };
            if ip == Some(from.addr.ip()) {
                let port = v.port.unwrap_or(if from.transport == Transport::Tls {
                    5061
                } else {
                    5060
                });
                if port != from.addr.port() && self.aliases.len() < 100_000 {
                    self.aliases.insert(
                        (from.transport, SocketAddr::new(from.addr.ip(), port)),
                        conn,
                    );
                }
            }
        }
        fix_top_via(&mut msg, from);
        let Some(method) = msg.method().cloned() else {
            return;
        };
        if method == Method::Ack {
            let ikey = server_key(&msg, true, self.salt);
            if let Some(t) = self.servers.get_mut(&ikey) {
                if t.state == SState::Completed {
                    t.state = SState::Confirmed;
                    let wait = if t.source.transport.reliable() {
                        Duration::ZERO
                    } else {
                        self.cfg.t4
                    };
                    self.arm(now + wait, TimerWhat::ServerEnd(ikey));
                }
                return;
            }
            self.forward_stateless(from, msg, raw);
            return;
        }
        let key = server_key(&msg, false, self.salt);
        if let Some(t) = self.servers.get(&key) {
            debug!(key, "retransmitted request absorbed");
            if let Some(last) = t.last.clone() {
                let to = t.source;
                self.send_answer(to, last);
            }
            return;
        }
        if self.servers.len() >= self.cfg.max_transactions && method != Method::Cancel {
            // Every transaction holds memory until its timers end: past the bound, the
            // request is refused statelessly (RFC 3261 section 21.5.4) and counted.
            self.stats.overloaded += 1;
            debug!(peer = %from.addr, "503: server.max_transactions reached");
            let bytes = self.build_response(
                &msg,
                503,
                "Service Unavailable",
                vec![Header::Other {
                    name: Cow::Borrowed("Retry-After"),
                    value: Cow::Borrowed("5"),
                }],
            );
            self.send_answer(from, bytes);
            return;
        }
        if method == Method::Cancel {
            self.on_cancel(now, from, &msg, key);
            return;
        }
        let invite = method == Method::Invite;
        if !invite {
            // A non-INVITE request answered here keeps no transaction: only a small
            // record, so that a retransmission gets the same answer (re-derived, without
            // authenticating again) until Timer J. This is what keeps memory flat at tens
            // of thousands of REGISTERs per second.
            let kh = key;
            let pre = self.answered.get(&kh).map(|a| a.authed);
            self.preauthenticated = pre.unwrap_or(false);
            self.authed_now = false;
            let decision = self.decide(now, from, &mut msg, raw);
            self.preauthenticated = false;
            match decision {
                Decision::Reply(status, reason, extra) => {
                    if pre.is_none() {
                        debug!(method = %method, call_id = msg.call_id().unwrap_or(""), peer = %from.addr, status, reason, "reply");
                        let wait = if from.transport.reliable() {
                            Duration::ZERO
                        } else {
                            self.cfg.t1 * 64
                        };
                        self.answered.insert(
                            kh,
                            Answered {
                                authed: self.authed_now,
                            },
                        );
                        self.answered_q.push_back((now + wait, kh));
                    }
                    let bytes = self.build_response(&msg, status, reason, extra);
                    self.send_answer(from, bytes);
                }
                Decision::Forward(targets, rr) => {
                    self.servers
                        .insert(key, ServerTxn::new(false, from, raw.to_vec(), self.cfg.t1));
                    debug!(method = %method, call_id = msg.call_id().unwrap_or(""), peer = %from.addr, branches = targets.len(), "forward");
                    self.forward(now, key, msg, targets, rr);
                }
            }
            return;
        }
        // INVITE: a full server transaction (Timer G/H retransmission, ACK matching).
        self.servers
            .insert(key, ServerTxn::new(true, from, Vec::new(), self.cfg.t1));
        match self.decide(now, from, &mut msg, raw) {
            Decision::Reply(status, reason, extra) => {
                debug!(method = %method, call_id = msg.call_id().unwrap_or(""), peer = %from.addr, status, reason, "reply");
                self.reply(now, key, &msg, status, reason, extra);
            }
            Decision::Forward(targets, rr) => {
                if let Some(t) = self.servers.get_mut(&key) {
                    // Kept only when forwarded, to build a 408 or 487 later.
                    t.request = raw.to_vec();
                }
                debug!(method = %method, call_id = msg.call_id().unwrap_or(""), peer = %from.addr, branches = targets.len(), "forward");
                self.forward(now, key, msg, targets, rr);
            }
        }
    }

    /// Routing, then the shield on whatever is to be forwarded: a refused request gets
    /// its answer here, before any branch exists.
    fn decide(&mut self, now: Instant, from: Peer, msg: &mut Message<'_>, raw: &[u8]) -> Decision {
        let d = self.route(now, from, msg, raw);
        if !matches!(d, Decision::Forward(..)) {
            return d;
        }
        match self.shield(from, msg, raw) {
            Ok(()) => d,
            Err(r) => {
                self.stats.shield_refused += 1;
                self.security(
                    EventKind::OfferRefused,
                    from,
                    msg,
                    r.reason.clone(),
                    Some(r.status),
                    r.sha256,
                );
                let mut extra = vec![warning(&r.reason)];
                for (n, v) in r.answer_headers() {
                    extra.push(Header::Other {
                        name: Cow::Borrowed(n),
                        value: Cow::Borrowed(v),
                    });
                }
                Decision::Reply(r.status, r.phrase(), extra)
            }
        }
    }

    /// Applies the shield to a message about to be forwarded; removed items become
    /// security events.
    fn shield(&mut self, from: Peer, msg: &mut Message<'_>, raw: &[u8]) -> Result<(), Refusal> {
        let dropped = palisade_shield::apply(&self.cfg.shield, msg, raw)?;
        for d in dropped {
            self.stats.shield_dropped += 1;
            self.security(
                EventKind::Dropped(d.what),
                from,
                msg,
                format!("{} {} not allowed by policy", d.what.as_str(), d.name),
                None,
                d.sha256,
            );
        }
        Ok(())
    }

    fn security(
        &mut self,
        kind: EventKind,
        from: Peer,
        msg: &Message<'_>,
        reason: String,
        status: Option<u16>,
        sha256: [u8; 32],
    ) {
        let method = msg
            .method()
            .or_else(|| msg.cseq().map(|c| &c.method))
            .map(|m| m.as_str().to_string())
            .unwrap_or_default();
        let ev = SecurityEvent {
            kind,
            method,
            caller: palisade_shield::aor(msg.from()),
            callee: palisade_shield::aor(msg.to()),
            source: peer_text(from),
            call_id: msg.call_id().unwrap_or("").to_string(),
            reason,
            status,
            sha256,
        };
        self.events.push_back(Event::Security(ev));
    }

    /// A protected callee's devices are reached only by callers on its allow-list (or,
    /// when configured, with an account older than the minimum age). The caller's
    /// identity counts only when it authenticated (or authentication of requests is
    /// off): a From header alone is not evidence.
    fn protected_refusal(
        &mut self,
        now: Instant,
        from: Peer,
        msg: &Message<'_>,
        raw: &[u8],
        ruri: &Uri<'_>,
        authenticated: bool,
    ) -> Option<Decision> {
        if self.protected.is_empty() {
            return None;
        }
        let (_, callee) = self.aor_of(ruri)?;
        let allow = self.protected.get(&callee)?;
        let trusted = authenticated || !self.cfg.authenticate_requests;
        let caller = msg
            .from()
            .and_then(|f| match &f.uri {
                Uri::Sip(s) if self.host_is_us(&s.host) => s.user.as_deref().map(str::to_string),
                _ => None,
            })
            .filter(|_| trusted);
        if let Some(c) = &caller {
            let full = format!("{c}@{}", self.cfg.domain);
            if *c == callee || allow.iter().any(|a| *a == *c || *a == full) {
                return None;
            }
            if let (Some(min), Some(created), Some(unix)) = (
                self.cfg.protected_min_age,
                self.created.get(c),
                self.unix_now(now),
            ) {
                if unix - created >= min.as_secs() as i64 {
                    return None;
                }
            }
        }
        self.stats.protected_refused += 1;
        let status = self.cfg.protected_status;
        let reason = if caller.is_some() {
            "callee is protected: caller not on its allow-list"
        } else {
            "callee is protected: caller not authenticated as a local account"
        };
        self.security(
            EventKind::ProtectedRefused,
            from,
            msg,
            reason.into(),
            Some(status),
            palisade_shield::sha256(raw),
        );
        Some(Decision::Reply(status, protected_phrase(status), vec![]))
    }

    fn route(&mut self, now: Instant, from: Peer, msg: &mut Message<'_>, raw: &[u8]) -> Decision {
        let method = msg.method().cloned().unwrap_or(Method::Options);
        // Loop detection (RFC 3261 section 16.3 step 4).
        if msg.vias().any(|v| self.via_is_us(v)) {
            let mine = format!("{OUR_BRANCH}{:08x}.", self.loop_hash(msg));
            if msg
                .vias()
                .any(|v| self.via_is_us(v) && v.branch().is_some_and(|b| b.starts_with(&mine)))
            {
                return Decision::Reply(482, "Loop Detected", vec![]);
            }
        }
        let popped = self.pop_own_routes(msg);
        let ruri = msg.request_uri().cloned();
        let Some(ruri) = ruri else {
            return Decision::Reply(400, "Bad Request", vec![]);
        };
        let next_route = msg.routes().next().map(|r| r.uri.clone());
        let to_us = self.uri_targets_us(&ruri);
        let self_addressed =
            self.uri_is_us(&ruri) && ruri.as_sip().is_some_and(|s| s.user.is_none());

        if self_addressed && next_route.is_none() {
            return match method {
                Method::Options => Decision::Reply(
                    200,
                    "OK",
                    vec![
                        Header::Allow(vec![
                            Method::Invite,
                            Method::Ack,
                            Method::Cancel,
                            Method::Bye,
                            Method::Options,
                            Method::Register,
                            Method::Message,
                            Method::Update,
                            Method::Info,
                            Method::Prack,
                        ]),
                        Header::Other {
                            name: Cow::Borrowed("Accept"),
                            value: Cow::Borrowed("application/sdp"),
                        },
                    ],
                ),
                Method::Register => self.register(now, from, msg),
                _ => Decision::Reply(
                    405,
                    "Method Not Allowed",
                    vec![Header::Allow(vec![Method::Options, Method::Register])],
                ),
            };
        }
        if msg.max_forwards() == Some(0) {
            return Decision::Reply(483, "Too Many Hops", vec![]);
        }
        if let Err(r) = sanity::check_request(msg) {
            let extra = if r.unsupported.is_empty() {
                vec![]
            } else {
                vec![Header::Other {
                    name: Cow::Borrowed("Unsupported"),
                    value: Cow::Owned(r.unsupported.join(", ")),
                }]
            };
            return Decision::Reply(r.status, r.reason, extra);
        }
        if method == Method::Register {
            if to_us {
                return self.register(now, from, msg);
            }
            return Decision::Reply(403, "Forbidden: not a domain of this registrar", vec![]);
        }
        let in_dialog = msg.to().and_then(|t| t.tag()).is_some();
        if in_dialog {
            let local_user = to_us && ruri.as_sip().is_some_and(|s| s.user.is_some());
            if popped == 0 && !local_user {
                // Every dialog through this proxy has its Record-Route: a request that
                // claims a dialog but did not come through us would use the proxy as a
                // relay toward any address (a device behind it, say).
                return Decision::Reply(
                    403,
                    "Forbidden: in-dialog request not routed through this proxy",
                    vec![],
                );
            }
            if popped == 0 && local_user {
                // A To tag does not make a caller allowed: a made-up "dialog" is an
                // initial request for the protection rules.
                if let Some(d) = self.protected_refusal(now, from, msg, raw, &ruri, false) {
                    return d;
                }
            }
            // Requests inside a dialog follow the route set the dialog established.
            if let Some(r) = next_route {
                return self.to_next_hop(
                    &r,
                    false,
                    (503, "Service Unavailable: next hop is not an IP address"),
                );
            }
            if to_us && ruri.as_sip().is_some_and(|s| s.user.is_some()) {
                return self.lookup(&ruri, false);
            }
            return self.to_next_hop(
                &ruri,
                false,
                (404, "Not Found: no route to the Request-URI"),
            );
        }
        // Out of dialog: who is calling?
        let caller_local = msg.from().is_some_and(|f| self.uri_targets_us(&f.uri));
        let mut authenticated = false;
        if caller_local && self.cfg.authenticate_requests {
            match self.check_auth(now, msg, true) {
                Ok(()) => authenticated = true,
                Err(d) => return d,
            }
        }
        if let Some(r) = next_route {
            if !authenticated && !to_us {
                return Decision::Reply(403, "Forbidden: relaying denied", vec![]);
            }
            return self.to_next_hop(
                &r,
                true,
                (503, "Service Unavailable: next hop is not an IP address"),
            );
        }
        if to_us {
            if let Some(d) = self.protected_refusal(now, from, msg, raw, &ruri, authenticated) {
                return d;
            }
            return self.lookup(&ruri, true);
        }
        if !authenticated {
            return Decision::Reply(403, "Forbidden: relaying denied", vec![]);
        }
        self.to_next_hop(&ruri, true, (404, "Not Found: no route to the Request-URI"))
    }

    /// Forwards to the host a URI names (a Route entry or the Request-URI), or refuses
    /// with `unreachable` when that host is not an IP address (no DNS yet).
    fn to_next_hop(
        &self,
        uri: &Uri<'_>,
        record_route: bool,
        unreachable: (u16, &'static str),
    ) -> Decision {
        match self.resolve(uri) {
            Some(dest) => Decision::Forward(
                vec![Target {
                    ruri: None,
                    dest,
                    path: vec![],
                }],
                record_route,
            ),
            None => Decision::Reply(unreachable.0, unreachable.1, vec![]),
        }
    }

    fn lookup(&mut self, ruri: &Uri<'_>, record_route: bool) -> Decision {
        let Some((aor, user)) = self.aor_of(ruri) else {
            return Decision::Reply(404, "Not Found", vec![]);
        };
        let now_live: Vec<Target> = {
            let mut b: Vec<&Binding> = self
                .location
                .get(&aor)
                .map(|v| v.iter().collect())
                .unwrap_or_default();
            b.sort_by_key(|x| std::cmp::Reverse(x.q));
            b.into_iter()
                .map(|b| Target {
                    ruri: Some(b.contact.clone()),
                    dest: self.binding_dest(b),
                    path: b.path.clone(),
                })
                .collect()
        };
        if now_live.is_empty() {
            if self.users.contains_key(&user) {
                return Decision::Reply(480, "Temporarily Unavailable", vec![]);
            }
            return Decision::Reply(404, "Not Found", vec![]);
        }
        Decision::Forward(now_live, record_route)
    }

    fn loop_hash(&self, m: &Message<'_>) -> u32 {
        let mut h = DefaultHasher::new();
        m.request_uri().hash(&mut h);
        m.call_id().hash(&mut h);
        m.from().and_then(|f| f.tag()).hash(&mut h);
        m.cseq().map(|c| c.seq).hash(&mut h);
        h.finish() as u32
    }

    /// Digest check; `Err` carries the answer to send (challenge or refusal).
    fn check_auth(&mut self, now: Instant, msg: &Message<'_>, proxy: bool) -> Result<(), Decision> {
        if self.preauthenticated {
            self.authed_now = true;
            return Ok(());
        }
        // The claimed identity and the device (account, User-Agent, source address),
        // for the choice of the algorithm offered first (see `crate::algorithms`).
        let claimed = if proxy { msg.from() } else { msg.to() };
        let claimed_user = claimed
            .and_then(|n| self.aor_of(&n.uri))
            .map(|(_, u)| u)
            .unwrap_or_default();
        let ua = msg
            .headers
            .iter()
            .find_map(|h| match h {
                Header::UserAgent(u) => Some(u.as_ref()),
                _ => None,
            })
            .unwrap_or("");
        let source = self.inbound_ip.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let device = crate::algorithms::device(&claimed_user, ua, source);
        let txn = server_key(msg, false, self.salt);
        let method = msg.method().map(|m| m.as_str()).unwrap_or("");
        let ch = Challenge {
            proxy,
            device,
            ua,
            txn,
            method,
        };
        let creds: Option<&Credentials<'_>> = msg.headers.iter().find_map(|h| match (h, proxy) {
            (Header::ProxyAuthorization(c), true) | (Header::Authorization(c), false)
                if c.is_digest() && c.get("realm").as_deref() == Some(self.cfg.domain.as_str()) =>
            {
                Some(c)
            }
            _ => None,
        });
        let Some(c) = creds else {
            match self.algos.no_credentials(now, device, txn, method) {
                Some(Note::FellBackToMd5) => warn!(
                    account = %claimed_user,
                    user_agent = ua,
                    source = %source,
                    "a device did not answer a SHA-256-first digest challenge (it does not support RFC 8760); offering it MD5 only from now on"
                ),
                Some(Note::NeverAnswers) => warn!(
                    account = %claimed_user,
                    user_agent = ua,
                    source = %source,
                    "a device does not answer digest challenges at all (wrong realm or no password configured?)"
                ),
                None => {}
            }
            return Err(self.challenge(now, &ch, false));
        };
        let g = |n: &str| c.get(n).unwrap_or(Cow::Borrowed(""));
        let (username, realm, nonce, uri, response, algorithm, qop, nc, cnonce) = (
            g("username"),
            g("realm"),
            g("nonce"),
            g("uri"),
            g("response"),
            g("algorithm"),
            g("qop"),
            g("nc"),
            g("cnonce"),
        );
        let d = DigestResponse {
            username: &username,
            realm: &realm,
            nonce: &nonce,
            uri: &uri,
            response: &response,
            algorithm: &algorithm,
            qop: &qop,
            nc: &nc,
            cnonce: &cnonce,
        };
        let used = crate::auth::Algorithm::parse(if algorithm.is_empty() {
            "MD5"
        } else {
            &algorithm
        });
        if used.is_some_and(|a| !self.cfg.algorithms.contains(&a)) {
            return Err(self.challenge(now, &ch, false));
        }
        let cred = self.users.get(username.as_ref());
        let verdict = self.auth.verify(now, method, &d, cred, &self.cfg.domain);
        let uri_ok = match self.cfg.digest_uri {
            DigestUriCheck::Off => true,
            DigestUriCheck::RequestUri | DigestUriCheck::RequestUriOrServer => {
                let ruri = msg.request_uri().map(uri_string).unwrap_or_default();
                uri == ruri
                    || (self.cfg.digest_uri == DigestUriCheck::RequestUriOrServer
                        && parse_uri(&uri, &self.cfg.limits).is_ok_and(|u| {
                            self.uri_is_us(&u) && u.as_sip().is_some_and(|s| s.user.is_none())
                        }))
            }
        };
        // The authenticated identity must be the one the request claims.
        if let Some(a) = used {
            let ok = matches!(verdict, Verdict::Ok) && uri_ok && claimed_user == username;
            self.algos.answered(now, device, a, ok);
        }
        match verdict {
            Verdict::Ok if uri_ok && claimed_user == username => {
                self.authed_now = true;
                if let Some((at, _)) = self.inbound {
                    // the nonce was sent to this address and came back: it is real
                    if let Some(ip) = self.inbound_ip {
                        self.budget.proven(at, ip);
                    }
                }
                Ok(())
            }
            Verdict::Ok => {
                self.stats.auth_failures += 1;
                Err(Decision::Reply(403, "Forbidden", vec![]))
            }
            Verdict::Stale => Err(self.challenge(now, &ch, true)),
            Verdict::Fail(why) => {
                self.stats.auth_failures += 1;
                debug!(why, "authentication failed");
                Err(Decision::Reply(403, "Forbidden", vec![]))
            }
        }
    }

    fn challenge(&mut self, now: Instant, ch: &Challenge<'_>, stale: bool) -> Decision {
        self.stats.challenges += 1;
        let proxy = ch.proxy;
        let nonce = self.auth.nonce(now);
        let mut headers = Vec::new();
        let order = self.algos.order(
            ch.device,
            ch.ua,
            &self.cfg.md5_only_user_agents,
            &self.cfg.algorithms,
        );
        if let Some(first) = order.first() {
            self.algos
                .challenged(now, ch.device, ch.txn, ch.method, *first);
        }
        for a in order {
            let mut params = vec![
                Param::new(
                    "realm",
                    Some(Cow::Owned(format!("\"{}\"", self.cfg.domain))),
                ),
                Param::new("nonce", Some(Cow::Owned(format!("\"{nonce}\"")))),
                Param::new("algorithm", Some(Cow::Borrowed(a.name()))),
                Param::new("qop", Some(Cow::Borrowed("\"auth\""))),
            ];
            if stale {
                params.push(Param::new("stale", Some(Cow::Borrowed("true"))));
            }
            let c = Credentials {
                scheme: Cow::Borrowed("Digest"),
                params,
            };
            headers.push(if proxy {
                Header::ProxyAuthenticate(c)
            } else {
                Header::WwwAuthenticate(c)
            });
        }
        if proxy {
            Decision::Reply(407, "Proxy Authentication Required", headers)
        } else {
            Decision::Reply(401, "Unauthorized", headers)
        }
    }

    // ---------------------------------------------------------------- registrar

    fn register(&mut self, now: Instant, from: Peer, msg: &Message<'_>) -> Decision {
        let Some(to) = msg.to() else {
            return Decision::Reply(400, "Bad Request", vec![]);
        };
        let Some((aor, user)) = self.aor_of(&to.uri) else {
            return Decision::Reply(
                400,
                "Bad Request: the address of record must be a SIP or SIPS URI with a user",
                vec![],
            );
        };
        if !matches!(&to.uri, Uri::Sip(s) if self.host_is_us(&s.host)) {
            return Decision::Reply(403, "Forbidden: not a domain of this registrar", vec![]);
        }
        if self.cfg.authenticate_register {
            if let Err(d) = self.check_auth(now, msg, false) {
                return d;
            }
        } else if !self.users.contains_key(&user) {
            return Decision::Reply(404, "Not Found", vec![]);
        }
        let call_id = msg.call_id().unwrap_or("").to_string();
        let cseq = msg.cseq().map(|c| c.seq).unwrap_or(0);
        let header_expires = msg.expires();
        let contacts: Vec<&Contact<'_>> = msg.contacts().collect();
        let path: Vec<String> = msg
            .headers
            .iter()
            .filter_map(|h| match h {
                Header::Path(p) => Some(uri_string(&p.uri)),
                _ => None,
            })
            .collect();
        let ua = msg
            .headers
            .iter()
            .find_map(|h| match h {
                Header::UserAgent(u) => Some(u.to_string()),
                _ => None,
            })
            .unwrap_or_default();
        if contacts.iter().any(|c| matches!(c, Contact::Star)) {
            if contacts.len() != 1 || header_expires != Some(0) {
                return Decision::Reply(
                    400,
                    "Bad Request: Contact * needs Expires: 0 and no other Contact",
                    vec![],
                );
            }
            if let Some(list) = self.location.remove(&aor) {
                for b in list {
                    self.events.push_back(Event::BindingRemoved {
                        aor: aor.clone(),
                        contact: b.contact,
                    });
                }
            }
            info!(aor, "all bindings removed");
            return self.registered(now, &aor, msg);
        }
        // Validate everything before changing anything: no half-applied REGISTER.
        let mut updates = Vec::new();
        for c in &contacts {
            let Contact::Addr(na) = c else { continue };
            let expires = na
                .expires()
                .or(header_expires)
                .unwrap_or(self.cfg.default_expires);
            if expires != 0 && expires < self.cfg.min_expires {
                return Decision::Reply(
                    423,
                    "Interval Too Brief",
                    vec![Header::MinExpires(self.cfg.min_expires)],
                );
            }
            if !matches!(na.uri, Uri::Sip(_)) {
                return Decision::Reply(
                    400,
                    "Bad Request: Contact must be a SIP or SIPS URI",
                    vec![],
                );
            }
            updates.push((
                uri_string(&na.uri),
                expires.min(self.cfg.max_expires),
                na.q_millis().unwrap_or(1000),
            ));
        }
        let list = self.location.entry(aor.clone()).or_default();
        let new_count = updates
            .iter()
            .filter(|(c, e, _)| *e > 0 && !list.iter().any(|b| &b.contact == c))
            .count();
        if list.len() + new_count > self.cfg.max_contacts {
            return Decision::Reply(
                403,
                "Forbidden: too many contacts for this address of record",
                vec![],
            );
        }
        let mut earliest = None;
        for (contact, expires, q) in updates {
            let existing = list.iter().position(|b| b.contact == contact);
            if let Some(old) = existing.and_then(|i| list.get(i)) {
                if old.call_id == call_id && old.cseq >= cseq {
                    continue; // out of order (RFC 3261 section 10.3 step 7)
                }
            }
            if expires == 0 {
                if let Some(i) = existing {
                    let b = list.remove(i);
                    self.events.push_back(Event::BindingRemoved {
                        aor: aor.clone(),
                        contact: b.contact,
                    });
                }
                continue;
            }
            let b = Binding {
                aor: aor.clone(),
                contact,
                expires_at: now + Duration::from_secs(expires.into()),
                q,
                call_id: call_id.clone(),
                cseq,
                path: path.clone(),
                source: from,
                user_agent: ua.clone(),
            };
            earliest = Some(earliest.map_or(b.expires_at, |e: Instant| e.min(b.expires_at)));
            self.events.push_back(Event::BindingSaved(b.clone()));
            match existing.and_then(|i| list.get_mut(i)) {
                Some(slot) => *slot = b,
                None => list.push(b),
            }
        }
        if list.is_empty() {
            self.location.remove(&aor);
        }
        if let Some(at) = earliest {
            self.arm(at, TimerWhat::Bindings(aor.clone()));
        }
        self.registered(now, &aor, msg)
    }

    fn registered(&self, now: Instant, aor: &str, msg: &Message<'_>) -> Decision {
        let mut extra: Vec<Header<'static>> = Vec::new();
        for b in self.location.get(aor).into_iter().flatten() {
            let Ok(uri) = parse_uri(&b.contact, &self.cfg.limits) else {
                continue;
            };
            let left = b.expires_at.saturating_duration_since(now).as_secs();
            extra.push(Header::Contact(Contact::Addr(NameAddr {
                display: None,
                uri: uri.into_owned(),
                params: vec![Param::new("expires", Some(Cow::Owned(left.to_string())))],
            })));
        }
        for h in &msg.headers {
            if let Header::Path(p) = h {
                extra.push(Header::Path(p.clone().into_owned()));
            }
        }
        Decision::Reply(200, "OK", extra)
    }

    // ---------------------------------------------------------------- responses we generate

    fn build_response(
        &self,
        req: &Message<'_>,
        status: u16,
        reason: &str,
        extra: Vec<Header<'_>>,
    ) -> Vec<u8> {
        let mut headers: Vec<Header<'_>> = Vec::with_capacity(8 + extra.len());
        let tag = self.to_tag(req);
        for h in &req.headers {
            match h {
                Header::Via(_) | Header::From(_) | Header::CallId(_) | Header::CSeq(_) => {
                    headers.push(h.clone())
                }
                Header::To(t) => {
                    let mut t = t.clone();
                    if status > 100 && t.tag().is_none() {
                        t.params
                            .push(Param::new("tag", Some(Cow::Owned(tag.clone()))));
                    }
                    headers.push(Header::To(t));
                }
                Header::RecordRoute(_) if (101..300).contains(&status) => headers.push(h.clone()),
                _ => {}
            }
        }
        headers.extend(extra);
        headers.push(Header::Server(Cow::Borrowed(SERVER_NAME)));
        let m = Message {
            start: StartLine::Response {
                code: status,
                reason: Cow::Borrowed(reason),
            },
            headers,
            body: Cow::Borrowed(&[]),
        };
        m.to_bytes()
    }

    /// Sends a locally generated response on a server transaction.
    fn reply(
        &mut self,
        now: Instant,
        key: TxnKey,
        req: &Message<'_>,
        status: u16,
        reason: &str,
        extra: Vec<Header<'_>>,
    ) {
        let bytes = self.build_response(req, status, reason, extra);
        self.answering = true;
        self.send_on_server(now, key, status, bytes);
        self.answering = false;
    }

    /// Sends a response (local or relayed) upstream and moves the server transaction on.
    fn send_on_server(&mut self, now: Instant, key: TxnKey, status: u16, bytes: Vec<u8>) {
        let (t1, t2) = (self.cfg.t1, self.cfg.t1 * 64);
        let Some(t) = self.servers.get_mut(&key) else {
            return;
        };
        let to = t.source;
        let reliable = to.transport.reliable();
        let mut arm = Vec::new();
        if status >= 200 {
            t.final_sent = true;
            t.last = Some(bytes.clone());
            if t.invite && status < 300 {
                // RFC 6026 Accepted: absorb INVITE retransmissions, relay further 2xx.
                t.state = SState::Accepted;
                t.last = None;
                arm.push((now + t2, TimerWhat::ServerEnd(key)));
            } else if t.invite {
                t.state = SState::Completed;
                if !reliable {
                    arm.push((now + t1, TimerWhat::ServerRetrans(key)));
                }
                arm.push((now + t2, TimerWhat::ServerTimeout(key)));
            } else {
                t.state = SState::Completed;
                arm.push((
                    now + if reliable { Duration::ZERO } else { t2 },
                    TimerWhat::ServerEnd(key),
                ));
            }
        } else if t.state == SState::Proceeding {
            t.last = Some(bytes.clone());
        }
        for (at, w) in arm {
            self.arm(at, w);
        }
        if self.answering {
            self.send_answer(to, bytes);
        } else {
            self.send(to, bytes);
        }
    }

    // ---------------------------------------------------------------- forwarding

    fn new_branch(&mut self, lh: u32) -> String {
        self.seq += 1;
        let u = hash64(&[&self.seq.to_be_bytes()], self.salt) as u32;
        format!("{OUR_BRANCH}{lh:08x}.{u:08x}{:x}", self.seq)
    }

    fn our_via(&self, transport: Transport, branch: String) -> Option<Header<'static>> {
        let local = self.local(transport)?;
        let host = match local.ip() {
            IpAddr::V4(a) => Host::V4(a),
            IpAddr::V6(a) => Host::V6(a),
        };
        Some(Header::Via(Via {
            transport: Cow::Borrowed(transport.via_name()),
            host,
            port: Some(local.port()),
            params: vec![Param::new("branch", Some(Cow::Owned(branch)))],
        }))
    }

    /// The dialog token our Record-Route carries (`pal=`): 16 hex digits of SHA-256
    /// over the route key and the Call-ID. An in-dialog request counts as routed through
    /// this proxy only when a Route naming us carries the token of its Call-ID, so that
    /// nobody can relay a made-up "dialog" request through Palisade by writing our
    /// address in a Route header.
    fn dialog_token(&self, call_id: &str) -> String {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(self.route_key);
        h.update(call_id.as_bytes());
        crate::auth::hex(h.finalize().get(..8).unwrap_or_default())
    }

    fn record_route(&self, transport: Transport, call_id: &str) -> Option<Header<'static>> {
        let local = self.local(transport)?;
        let host = match local.ip() {
            IpAddr::V4(a) => Host::V4(a),
            IpAddr::V6(a) => Host::V6(a),
        };
        let mut params = vec![];
        if transport != Transport::Udp {
            params.push(Param::new(
                "transport",
                Some(Cow::Borrowed(transport.param())),
            ));
        }
        params.push(Param::new("lr", None));
        params.push(Param::new(
            "pal",
            Some(Cow::Owned(self.dialog_token(call_id))),
        ));
        Some(Header::RecordRoute(NameAddr {
            display: None,
            uri: Uri::Sip(palisade_sip::SipUri {
                secure: transport == Transport::Tls,
                user: None,
                password: None,
                host,
                port: Some(local.port()),
                params,
                headers: vec![],
            }),
            params: vec![],
        }))
    }

    fn forward(
        &mut self,
        now: Instant,
        key: TxnKey,
        mut msg: Message<'_>,
        targets: Vec<Target>,
        record_route: bool,
    ) {
        let invite = msg.method() == Some(&Method::Invite);
        let inbound = self
            .servers
            .get(&key)
            .map(|t| t.source.transport)
            .unwrap_or(Transport::Udp);
        if invite {
            let trying = self.build_response(&msg, 100, "Trying", vec![]);
            self.send_on_server(now, key, 100, trying);
        }
        // Max-Forwards: decrement, or add it for RFC 2543 peers.
        match msg.headers.iter_mut().find_map(|h| match h {
            Header::MaxForwards(m) => Some(m),
            _ => None,
        }) {
            Some(m) => *m = m.saturating_sub(1),
            None => {
                let at = msg
                    .headers
                    .iter()
                    .rposition(|h| matches!(h, Header::Via(_)))
                    .map_or(0, |i| i + 1);
                msg.headers.insert(at, Header::MaxForwards(69));
            }
        }
        let lh = self.loop_hash(&msg);
        let mut branches = Vec::new();
        for t in targets {
            let mut m = msg.clone();
            if let Some(r) = &t.ruri {
                match parse_uri(r, &self.cfg.limits) {
                    Ok(u) => {
                        if let StartLine::Request { uri, .. } = &mut m.start {
                            *uri = u;
                        }
                    }
                    Err(_) => continue,
                }
            }
            let route_at = m
                .headers
                .iter()
                .position(|h| matches!(h, Header::Route(_)))
                .unwrap_or(m.headers.len());
            for (i, p) in t.path.iter().enumerate() {
                if let Ok(u) = parse_uri(p, &self.cfg.limits) {
                    m.headers.insert(
                        route_at + i,
                        Header::Route(NameAddr {
                            display: None,
                            uri: u,
                            params: vec![],
                        }),
                    );
                }
            }
            if record_route {
                let rr_at = m
                    .headers
                    .iter()
                    .position(|h| matches!(h, Header::RecordRoute(_)))
                    .unwrap_or(m.headers.len());
                let mut rrs = Vec::new();
                let call_id = m.call_id().unwrap_or("").to_string();
                if let Some(h) = self.record_route(t.dest.transport, &call_id) {
                    rrs.push(h);
                }
                if t.dest.transport != inbound {
                    if let Some(h) = self.record_route(inbound, &call_id) {
                        rrs.push(h);
                    }
                }
                for (i, h) in rrs.into_iter().enumerate() {
                    m.headers.insert(rr_at + i, h);
                }
            }
            let branch = self.new_branch(lh);
            let Some(via) = self.our_via(t.dest.transport, branch.clone()) else {
                continue;
            };
            m.headers.insert(0, via);
            let bytes = m.to_bytes();
            self.stats.forwarded += 1;
            self.start_client(now, t.dest, branch.clone(), bytes, invite, Some(key));
            branches.push(branch);
        }
        if branches.is_empty() {
            self.reply(now, key, &msg, 480, "Temporarily Unavailable", vec![]);
            return;
        }
        if let Some(s) = self.servers.get_mut(&key) {
            s.branches = branches;
        }
    }

    /// Sends a request on a new client transaction (Timer A/E retransmission, B/F
    /// timeout).
    fn start_client(
        &mut self,
        now: Instant,
        dest: Peer,
        branch: String,
        bytes: Vec<u8>,
        invite: bool,
        server: Option<TxnKey>,
    ) {
        self.clients.insert(
            branch.clone(),
            ClientTxn {
                invite,
                state: CState::Trying,
                dest,
                request: bytes.clone(),
                server,
                interval: self.cfg.t1,
                provisional: false,
                cancel_pending: false,
                done: false,
                timer_c: None,
                expired: false,
            },
        );
        if !dest.transport.reliable() {
            self.arm(now + self.cfg.t1, TimerWhat::ClientRetrans(branch.clone()));
        }
        self.arm(now + self.cfg.t1 * 64, TimerWhat::ClientTimeout(branch));
        self.send(dest, bytes);
    }

    /// A callee answered 2xx with content the shield refused: the caller gets a 502
    /// instead, so the dialog the callee believes in is acknowledged and ended here
    /// (ACK, then BYE on its own transaction), toward the hop the INVITE went to.
    fn end_refused_dialog(&mut self, now: Instant, dest: Peer, resp: &Message<'_>) {
        let Some(target) = resp.contacts().find_map(|c| match c {
            Contact::Addr(na) => Some(na.uri.clone()),
            _ => None,
        }) else {
            return;
        };
        let Some(seq) = resp.cseq().map(|c| c.seq) else {
            return;
        };
        // Route set toward the callee: the Record-Route entries above ours, nearest
        // first (RFC 3261 section 12.1.2 seen from our position).
        let rrs: Vec<&NameAddr<'_>> = resp.record_routes().collect();
        let routes: Vec<Header<'_>> = match rrs.iter().position(|r| self.uri_is_us(&r.uri)) {
            Some(i) => rrs
                .get(..i)
                .unwrap_or_default()
                .iter()
                .rev()
                .map(|r| Header::Route((*r).clone()))
                .collect(),
            None => vec![],
        };
        for (method, seq) in [(Method::Ack, seq), (Method::Bye, seq.saturating_add(1))] {
            let branch = self.new_branch(0);
            let Some(via) = self.our_via(dest.transport, branch.clone()) else {
                return;
            };
            let mut headers = vec![via, Header::MaxForwards(70)];
            headers.extend(routes.iter().cloned());
            for h in &resp.headers {
                if matches!(h, Header::From(_) | Header::To(_) | Header::CallId(_)) {
                    headers.push(h.clone());
                }
            }
            headers.push(Header::CSeq(palisade_sip::CSeq {
                seq,
                method: method.clone(),
            }));
            headers.push(Header::Other {
                name: Cow::Borrowed("Reason"),
                value: Cow::Borrowed("SIP;cause=502;text=\"answer refused by policy\""),
            });
            let ack = method == Method::Ack;
            let m = Message {
                start: StartLine::Request {
                    method,
                    uri: target.clone(),
                },
                headers,
                body: Cow::Borrowed(&[]),
            };
            let bytes = m.to_bytes();
            if ack {
                self.send(dest, bytes);
            } else {
                self.start_client(now, dest, branch, bytes, false, None);
            }
        }
    }

    /// A response built here in place of a relayed one the shield refused.
    fn local_answer(&self, skey: TxnKey, code: u16, reason: &str) -> Option<Vec<u8>> {
        let t = self.servers.get(&skey)?;
        let m = parse_datagram(&t.request, &self.cfg.limits).ok()?;
        let phrase = match code {
            502 => "Bad Gateway",
            _ => "Response Refused By Policy",
        };
        Some(self.build_response(&m, code, phrase, vec![warning(reason)]))
    }

    /// Loose routing (RFC 3261 section 16.4): remove the top Route entries that name
    /// this server.
    /// Removes the Route entries at the top that name this server and returns how many
    /// of them carried this dialog's token (see [`Endpoint::dialog_token`]): only those
    /// show that the request follows a Record-Route this server inserted.
    fn pop_own_routes(&self, msg: &mut Message<'_>) -> usize {
        // Computed only when a Route names us (most requests carry none).
        let mut token: Option<String> = None;
        let mut popped = 0;
        while let Some(idx) = msg
            .headers
            .iter()
            .position(|h| matches!(h, Header::Route(_)))
        {
            match msg.headers.get(idx) {
                Some(Header::Route(r)) if self.uri_is_us(&r.uri) => {
                    let signed = r
                        .uri
                        .as_sip()
                        .and_then(|s| s.param("pal"))
                        .and_then(|p| p.value.as_deref())
                        .is_some_and(|v| {
                            let t = token.get_or_insert_with(|| {
                                self.dialog_token(msg.call_id().unwrap_or(""))
                            });
                            crate::auth::ct_eq(v.as_bytes(), t.as_bytes())
                        });
                    msg.headers.remove(idx);
                    popped += usize::from(signed);
                }
                _ => break,
            }
        }
        popped
    }

    /// ACK for a 2xx and other requests relayed without a transaction.
    fn forward_stateless(&mut self, from: Peer, mut msg: Message<'_>, raw: &[u8]) {
        let popped = self.pop_own_routes(&mut msg);
        let next = msg
            .routes()
            .next()
            .map(|r| r.uri.clone())
            .or_else(|| msg.request_uri().cloned());
        let Some(next) = next else { return };
        let local_user =
            matches!(&next, Uri::Sip(s) if s.user.is_some() && self.uri_targets_us(&next));
        let protected_callee = || {
            !self.protected.is_empty()
                && self
                    .aor_of(&next)
                    .is_some_and(|(_, u)| self.protected.contains_key(&u))
        };
        if popped == 0 && (!local_user || protected_callee()) {
            // Not routed through us (see `route`): not relayed.
            debug!(peer = %from.addr, call_id = msg.call_id().unwrap_or(""), "ACK not relayed: it did not come through this proxy's Record-Route");
            return;
        }
        let dest = if self.uri_is_us(&next) || local_user {
            // addressed to a local user: the location service knows where
            match self.aor_of(&next).and_then(|(aor, _)| {
                self.location
                    .get(&aor)
                    .and_then(|l| l.first())
                    .map(|b| (self.binding_dest(b), b.contact.clone()))
            }) {
                Some((d, c)) => {
                    if let Ok(u) = parse_uri(&c, &self.cfg.limits) {
                        if let StartLine::Request { uri, .. } = &mut msg.start {
                            *uri = u.into_owned();
                        }
                    }
                    Some(d)
                }
                None => None,
            }
        } else {
            self.resolve(&next)
        };
        let Some(dest) = dest else {
            debug!(peer = %from.addr, "stateless request without a resolvable next hop dropped");
            return;
        };
        if let Err(r) = self.shield(from, &mut msg, raw) {
            // An ACK cannot be answered: it is not relayed, and the decision is recorded.
            self.stats.shield_answers_refused += 1;
            debug!(peer = %from.addr, call_id = msg.call_id().unwrap_or(""), reason = %r.reason, "ACK not relayed: refused by the shield");
            self.security(EventKind::AckRefused, from, &msg, r.reason, None, r.sha256);
            return;
        }
        match msg.headers.iter_mut().find_map(|h| match h {
            Header::MaxForwards(m) => Some(m),
            _ => None,
        }) {
            Some(0) => return,
            Some(m) => *m -= 1,
            None => {}
        }
        let top = msg
            .top_via()
            .and_then(|v| v.branch())
            .unwrap_or("")
            .to_string();
        let branch = format!(
            "{OUR_BRANCH}{:08x}.s{:x}",
            self.loop_hash(&msg),
            hash64(&[top.as_bytes()], self.salt)
        );
        let Some(via) = self.our_via(dest.transport, branch) else {
            return;
        };
        msg.headers.insert(0, via);
        self.send(dest, msg.to_bytes());
    }

    fn on_cancel(&mut self, now: Instant, from: Peer, msg: &Message<'_>, key: TxnKey) {
        let ikey = server_key(msg, true, self.salt);
        self.servers.insert(
            key,
            ServerTxn {
                invite: false,
                state: SState::Proceeding,
                source: from,
                request: Vec::new(),
                last: None,
                retrans: self.cfg.t1,
                branches: Vec::new(),
                best: None,
                cancelled: false,
                final_sent: false,
            },
        );
        let Some(inv) = self.servers.get_mut(&ikey) else {
            self.reply(
                now,
                key,
                msg,
                481,
                "Call/Transaction Does Not Exist",
                vec![],
            );
            return;
        };
        let pending = !inv.final_sent;
        if pending {
            inv.cancelled = true;
        }
        let branches = inv.branches.clone();
        self.reply(now, key, msg, 200, "OK", vec![]);
        debug!(
            call_id = msg.call_id().unwrap_or(""),
            branches = branches.len(),
            "cancel"
        );
        if pending {
            for b in branches {
                self.cancel_branch(now, &b);
            }
        }
    }

    fn cancel_branch(&mut self, now: Instant, branch: &str) {
        let Some(c) = self.clients.get_mut(branch) else {
            return;
        };
        if c.done || !c.invite {
            return;
        }
        if !c.provisional {
            c.cancel_pending = true;
            return;
        }
        c.cancel_pending = false;
        let dest = c.dest;
        let Some(cancel) = build_cancel_or_ack(&c.request, None, &self.cfg.limits) else {
            return;
        };
        let key = format!("{branch}|CANCEL");
        self.start_client(now, dest, key, cancel, false, None);
    }

    fn on_response(&mut self, now: Instant, from: Peer, mut msg: Message<'_>, raw: &[u8]) {
        self.stats.responses += 1;
        let Some(status) = msg.status() else { return };
        let Some(top) = msg.top_via() else { return };
        if !self.via_is_us(top) {
            debug!(peer = %from.addr, "dropped response whose top Via is not ours");
            return;
        }
        let branch = top.branch().unwrap_or("").to_string();
        let is_cancel = msg.cseq().is_some_and(|c| c.method == Method::Cancel);
        let key = if is_cancel {
            format!("{branch}|CANCEL")
        } else {
            branch.clone()
        };
        // Strip our Via for relaying.
        if let Some(i) = msg.headers.iter().position(|h| matches!(h, Header::Via(_))) {
            msg.headers.remove(i);
        }
        // The shield, toward the caller: a provisional loses a refused body (or is not
        // relayed), a refused final is replaced by one built here (a 2xx by 502).
        let mut relay_provisional = true;
        let mut replace: Option<(u16, String)> = None;
        if status > 100 {
            if let Err(r) = self.shield(from, &mut msg, raw) {
                self.stats.shield_answers_refused += 1;
                let action = if status < 200 {
                    palisade_shield::strip_body(&mut msg);
                    if self.shield(from, &mut msg, raw).is_ok() {
                        "provisional relayed without its body"
                    } else {
                        relay_provisional = false;
                        "provisional not relayed"
                    }
                } else if status < 300 {
                    replace = Some((502, r.reason.clone()));
                    "replaced by 502 toward the caller; the callee's dialog is ended"
                } else {
                    replace = Some((status, r.reason.clone()));
                    "replaced by a response built by the server"
                };
                debug!(peer = %from.addr, status, call_id = msg.call_id().unwrap_or(""), reason = %r.reason, action, "response refused by the shield");
                self.security(
                    EventKind::AnswerRefused,
                    from,
                    &msg,
                    format!("{}; {action}", r.reason),
                    Some(status),
                    r.sha256,
                );
            }
        }
        let Some(c) = self.clients.get_mut(&key) else {
            // No transaction (e.g. a 2xx retransmission after the INVITE transaction
            // ended): relay statelessly by the next Via. A 100 is hop-by-hop (RFC 3261
            // section 16.7 step 3) and never relayed; it was not shielded either.
            if replace.is_some() || !relay_provisional || status == 100 {
                return;
            }
            if let Some(dest) = msg.top_via().and_then(via_dest) {
                self.send(dest, msg.to_bytes());
            }
            return;
        };
        if status < 200 {
            if c.state == CState::Trying {
                c.state = CState::Proceeding;
                if !c.invite {
                    c.interval = self.cfg.t2;
                }
            }
            c.provisional = true;
            let first_c = c.invite && c.timer_c.is_none();
            if c.invite {
                c.timer_c = Some(now + TIMER_C);
            }
            let cancel_now = c.cancel_pending;
            let server = c.server;
            if first_c {
                self.arm(now + TIMER_C, TimerWhat::ClientTimerC(branch.clone()));
            }
            if cancel_now {
                self.cancel_branch(now, &branch);
            }
            if status > 100 && relay_provisional {
                if let Some(s) = server {
                    if self.servers.get(&s).is_some_and(|t| !t.final_sent) {
                        self.send_on_server(now, s, status, msg.to_bytes());
                    }
                }
            }
            return;
        }
        // Final response.
        if c.done {
            if c.invite && status >= 300 {
                if let Some(ack) = build_cancel_or_ack(&c.request, Some(&msg), &self.cfg.limits) {
                    let d = c.dest;
                    self.send(d, ack);
                }
            }
            return;
        }
        c.done = true;
        c.state = CState::Completed;
        let dest = c.dest;
        let reliable = c.dest.transport.reliable();
        let server = c.server;
        let invite = c.invite;
        let ack = if c.invite && status >= 300 {
            build_cancel_or_ack(&c.request, Some(&msg), &self.cfg.limits).map(|a| (c.dest, a))
        } else {
            None
        };
        if let Some((d, a)) = ack {
            self.send(d, a);
        }
        let end = if (invite && status < 300) || reliable {
            Duration::ZERO
        } else if invite {
            Duration::from_secs(32)
        } else {
            self.cfg.t4
        };
        self.arm(now + end, TimerWhat::ClientEnd(key));
        let Some(s) = server else { return };
        match replace {
            None => self.branch_final(now, s, status, msg.to_bytes()),
            Some((code, reason)) => {
                if invite && status < 300 {
                    self.end_refused_dialog(now, dest, &msg);
                }
                if let Some(b) = self.local_answer(s, code, &reason) {
                    self.branch_final(now, s, code, b);
                }
            }
        }
    }

    /// RFC 3261 section 16.7: collect finals, relay 2xx and 6xx at once, the best of the
    /// rest when every branch has answered.
    fn branch_final(&mut self, now: Instant, skey: TxnKey, status: u16, bytes: Vec<u8>) {
        let Some(s) = self.servers.get_mut(&skey) else {
            return;
        };
        if status < 300 {
            let first = !s.final_sent;
            let others = s.branches.clone();
            if s.final_sent && s.invite {
                // additional 2xx from another branch: relay it too
                let to = s.source;
                self.send(to, bytes);
            } else {
                self.send_on_server(now, skey, status, bytes);
            }
            if first {
                for b in others {
                    self.cancel_branch(now, &b);
                }
            }
            return;
        }
        if s.final_sent {
            return;
        }
        let better = match &s.best {
            None => true,
            Some((b, _)) => rank(status) < rank(*b),
        };
        if better {
            s.best = Some((status, bytes));
        }
        if status >= 600 {
            let others = s.branches.clone();
            for b in others {
                self.cancel_branch(now, &b);
            }
        }
        self.maybe_finish(now, skey);
    }

    fn maybe_finish(&mut self, now: Instant, skey: TxnKey) {
        let Some(s) = self.servers.get(&skey) else {
            return;
        };
        if s.final_sent {
            return;
        }
        let open = s
            .branches
            .iter()
            .any(|b| self.clients.get(b).is_some_and(|c| !c.done));
        let best_is_6xx = s.best.as_ref().is_some_and(|(b, _)| *b >= 600);
        if open && !best_is_6xx {
            return;
        }
        let Some(s) = self.servers.get_mut(&skey) else {
            return;
        };
        match s.best.take() {
            Some((status, bytes)) => self.send_on_server(now, skey, status, bytes),
            None => {
                let req = s.request.clone();
                if let Ok(m) = parse_datagram(&req, &self.cfg.limits) {
                    self.reply(now, skey, &m, 408, "Request Timeout", vec![]);
                }
            }
        }
    }

    // ---------------------------------------------------------------- timers

    fn fire(&mut self, now: Instant, what: TimerWhat) {
        match what {
            TimerWhat::ServerRetrans(k) => {
                let t2 = self.cfg.t2;
                let Some(t) = self.servers.get_mut(&k) else {
                    return;
                };
                if t.state != SState::Completed {
                    return;
                }
                t.retrans = (t.retrans * 2).min(t2);
                let next = t.retrans;
                if let Some(b) = t.last.clone() {
                    let to = t.source;
                    self.send(to, b);
                }
                self.arm(now + next, TimerWhat::ServerRetrans(k));
            }
            TimerWhat::ServerTimeout(k) => {
                if self
                    .servers
                    .get(&k)
                    .is_some_and(|t| t.state == SState::Completed)
                {
                    debug!(key = k, "no ACK for final response (Timer H)");
                    self.servers.remove(&k);
                }
            }
            TimerWhat::ServerEnd(k) => {
                self.servers.remove(&k);
            }
            TimerWhat::ClientRetrans(k) => {
                let t2 = self.cfg.t2;
                let Some(c) = self.clients.get_mut(&k) else {
                    return;
                };
                let active = matches!(
                    (c.invite, c.state),
                    (true, CState::Trying) | (false, CState::Trying | CState::Proceeding)
                );
                if !active || c.done {
                    return;
                }
                c.interval = if c.invite {
                    c.interval * 2
                } else {
                    (c.interval * 2).min(t2)
                };
                let next = c.interval;
                let (d, b) = (c.dest, c.request.clone());
                self.send(d, b);
                self.arm(now + next, TimerWhat::ClientRetrans(k));
            }
            TimerWhat::ClientTimeout(k) => {
                let Some(c) = self.clients.get_mut(&k) else {
                    return;
                };
                if c.done || (c.invite && c.state == CState::Proceeding && !c.expired) {
                    // Timer B only runs until a provisional; a ringing INVITE waits for
                    // the callee or a CANCEL.
                    return;
                }
                c.done = true;
                let server = c.server;
                self.clients.remove(&k);
                if let Some(s) = server {
                    self.maybe_finish(now, s);
                }
            }
            TimerWhat::ClientEnd(k) => {
                self.clients.remove(&k);
            }
            TimerWhat::ClientTimerC(k) => {
                let Some(c) = self.clients.get_mut(&k) else {
                    return;
                };
                match c.timer_c {
                    _ if c.done => {}
                    Some(at) if at > now => self.arm(at, TimerWhat::ClientTimerC(k)),
                    _ => {
                        c.expired = true;
                        debug!(
                            branch = k,
                            "Timer C: cancelling a branch that rang too long"
                        );
                        self.cancel_branch(now, &k);
                        self.arm(now + self.cfg.t1 * 64, TimerWhat::ClientTimeout(k));
                    }
                }
            }
            TimerWhat::Bindings(aor) => self.expire_bindings(now, &aor),
        }
    }

    fn expire_bindings(&mut self, now: Instant, aor: &str) {
        let Some(list) = self.location.get_mut(aor) else {
            return;
        };
        let mut gone = Vec::new();
        list.retain(|b| {
            if b.expires_at <= now {
                gone.push(b.contact.clone());
                false
            } else {
                true
            }
        });
        let next = list.iter().map(|b| b.expires_at).min();
        if list.is_empty() {
            self.location.remove(aor);
        }
        for contact in gone {
            info!(aor, contact, "binding expired");
            self.events.push_back(Event::BindingRemoved {
                aor: aor.to_string(),
                contact,
            });
        }
        if let Some(at) = next {
            self.arm(at, TimerWhat::Bindings(aor.to_string()));
        }
    }
}

/// `transport:ip:port` for an event, without `core::fmt` for the common IPv4 case.
fn peer_text(p: Peer) -> String {
    let mut out = String::with_capacity(32);
    out.push_str(p.transport.param());
    out.push(':');
    match p.addr {
        SocketAddr::V4(a) => {
            Host::V4(*a.ip()).write(&mut out);
            out.push(':');
            palisade_sip::push_num(&mut out, u64::from(a.port()));
        }
        SocketAddr::V6(a) => out.push_str(&a.to_string()),
    }
    out
}

fn protected_phrase(status: u16) -> &'static str {
    match status {
        403 => "Forbidden",
        404 => "Not Found",
        480 => "Temporarily Unavailable",
        486 => "Busy Here",
        603 => "Decline",
        _ => "Refused",
    }
}

/// `Warning: 399 palisade "reason"` (RFC 3261 section 20.43).
fn warning(reason: &str) -> Header<'static> {
    Header::Warning(palisade_sip::Warning {
        code: 399,
        agent: Cow::Borrowed("palisade"),
        text: Cow::Owned(reason.replace(['"', '\\'], "'")),
    })
}

/// Preference among final responses (lower is better), after RFC 3261 section 16.7.
fn rank(status: u16) -> u32 {
    let class = match status {
        600..=699 => 0,
        200..=299 => 1,
        401 | 407 | 415 | 420 | 484 => 2,
        300..=399 => 3,
        400..=499 => 4,
        _ => 5,
    };
    class * 1000 + u32::from(status)
}

/// Where a response goes according to a Via (received and rport win over sent-by).
fn via_dest(v: &Via<'_>) -> Option<Peer> {
    let transport = Transport::parse(&v.transport)?;
    let ip: IpAddr = match v.received() {
        Some(r) => r.trim_matches(['[', ']']).parse().ok()?,
        None => match &v.host {
            Host::V4(a) => IpAddr::V4(*a),
            Host::V6(a) => IpAddr::V6(*a),
            Host::Domain(_) => return None,
        },
    };
    let port = v.rport().flatten().or(v.port).unwrap_or(5060);
    Some(Peer {
        transport,
        addr: SocketAddr::new(ip, port),
        conn: None,
    })
}

/// CANCEL (no response given) or ACK for a non-2xx final (RFC 3261 sections 9.1 and
/// 17.1.1.3), built from the request a client transaction sent.
fn build_cancel_or_ack(
    request: &[u8],
    response: Option<&Message<'_>>,
    limits: &palisade_sip::Limits,
) -> Option<Vec<u8>> {
    let req = parse_datagram(request, limits).ok()?;
    let method = if response.is_some() {
        Method::Ack
    } else {
        Method::Cancel
    };
    let mut headers = Vec::new();
    if let Some(v) = req.top_via() {
        headers.push(Header::Via(v.clone()));
    }
    for h in &req.headers {
        match h {
            Header::Route(_) | Header::From(_) | Header::CallId(_) => headers.push(h.clone()),
            Header::To(t) => {
                let to = response.and_then(|r| r.to()).unwrap_or(t);
                headers.push(Header::To(to.clone()));
            }
            Header::CSeq(c) => headers.push(Header::CSeq(CSeq {
                seq: c.seq,
                method: method.clone(),
            })),
            _ => {}
        }
    }
    headers.push(Header::MaxForwards(70));
    let m = Message {
        start: StartLine::Request {
            method,
            uri: req.request_uri()?.clone(),
        },
        headers,
        body: Cow::Borrowed(&[]),
    };
    Some(m.to_bytes())
}
