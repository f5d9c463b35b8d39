//! The Endpoint: owns the transaction tables, the location service and the
//! authenticator, and turns `(datagram, now)` and `(timeout, now)` into transmits and
//! events. No sockets, no clock, no database.
use std::borrow::Cow;
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
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

mod authn;
mod bindings;
mod guard;
mod identity;
mod notify;
mod observe;
mod proxy;
mod receive;
mod registrar;
mod response;
mod salvage;
mod timer;
mod transaction;
mod transport;

pub use self::receive::is_keepalive;
pub use self::salvage::salvaged_answer_parses;
use self::{
    guard::*, identity::*, notify::*, observe::*, proxy::*, registrar::*, response::*, timer::*,
    transaction::*, transport::*,
};

/// Counters for logs and metrics.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Requests handled.
    pub requests: u64,
    /// Responses handled.
    pub responses: u64,
    /// Messages that did not parse.
    pub malformed: u64,
    /// 401/407 challenges sent.
    pub challenges: u64,
    /// Credentials that did not verify (answered 403).
    pub auth_failures: u64,
    /// Requests forwarded on client transactions.
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
    /// Requests received, by method ([`METHOD_LABELS`]).
    pub requests_by_method: [u64; METHOD_LABELS.len()],
    /// Responses sent (made here or relayed), by class: 1xx at 0 ... 6xx at 5.
    pub responses_by_class: [u64; 6],
    /// Shield decisions recorded, by kind ([`palisade_shield::EventKind::LABELS`]).
    pub security_by_kind: [u64; palisade_shield::EventKind::LABELS.len()],
}

/// The method label of a metric: the methods Palisade knows, and `other` for the rest
/// (a bounded label set whatever arrives).
pub const METHOD_LABELS: [&str; 15] = [
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "REGISTER",
    "OPTIONS",
    "INFO",
    "PRACK",
    "SUBSCRIBE",
    "NOTIFY",
    "UPDATE",
    "MESSAGE",
    "REFER",
    "PUBLISH",
    "other",
];

/// The slot of a method in [`Stats::requests_by_method`].
pub fn method_slot(m: &Method<'_>) -> usize {
    match m {
        Method::Invite => 0,
        Method::Ack => 1,
        Method::Bye => 2,
        Method::Cancel => 3,
        Method::Register => 4,
        Method::Options => 5,
        Method::Info => 6,
        Method::Prack => 7,
        Method::Subscribe => 8,
        Method::Notify => 9,
        Method::Update => 10,
        Method::Message => 11,
        Method::Refer => 12,
        Method::Publish => 13,
        Method::Extension(_) => 14,
    }
}

impl Stats {
    /// Counts a response sent upstream.
    pub(crate) fn response_sent(&mut self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 6) - 1;
        if let Some(n) = self.responses_by_class.get_mut(class) {
            *n += 1;
        }
    }
}

enum Decision {
    Reply(u16, &'static str, Vec<Header<'static>>),
    Forward(Vec<Target>, bool),
}

/// What is known about the message being handled; set by `handle_datagram` and reset
/// after it.
#[derive(Default)]
struct Handling {
    /// UDP: when the datagram arrived and its size, the bound of what may be answered
    /// to its unproven source.
    datagram: Option<(Instant, usize)>,
    /// Its source address.
    ip: Option<IpAddr>,
    /// Its credentials were verified (see [`authn`]): answers to it are not held to the
    /// per-source answer budget.
    authenticated: Option<Authenticated>,
    /// Its source (for observations).
    source: Option<SocketAddr>,
    /// Its transport's name.
    transport: &'static str,
    /// Its server transaction's key, once computed (`check_auth` needs it too).
    txn: Option<TxnKey>,
    /// Its wire fingerprint (INVITE and REGISTER, when observing or restricting).
    fingerprint: u64,
    /// How its offer is written ([`palisade_detect::sdp_habits`]), taken (when observing)
    /// from the body as received: the shield rewrites the body it forwards.
    sdp_habits: Option<u64>,
    /// Its User-Agent as received (at most 128 characters), taken before the shield
    /// (which by default drops the header from what it forwards) for the call record.
    user_agent: Option<String>,
    /// A restriction refused it (the finding's number).
    blocked: Option<u64>,
    /// Its source network is restricted, but it carries credentials: only credentials
    /// that verify get it served (authenticated traffic is budgeted per account); no
    /// fresh challenge is given to it, except `stale` to a correct password.
    network_restricted: bool,
}

/// Proof, returned by [`Endpoint::check_auth`], that a request carried valid digest
/// credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Authenticated {
    /// Verified now, for this account.
    Now(String),
    /// A retransmission of a request whose first copy was verified.
    Before,
}

/// The sans-IO SIP core: registrar, stateful proxy and digest authentication as one
/// state machine (see the crate documentation).
pub struct Endpoint {
    cfg: CoreConfig,
    auth: Authenticator,
    /// Accounts and where they are (see [`Directory`]).
    dir: Directory,
    /// The transaction layer's state (see [`Transactions`]).
    tx: Transactions,
    out: VecDeque<Transmit>,
    events: VecDeque<Event>,
    salt: u64,
    /// Stream connections by the address their peer advertises in Via (RFC 5923 style),
    /// so that requests to that address reuse the connection.
    aliases: crate::Map<(Transport, SocketAddr), u64>,
    /// The aliases each connection was given (so that its closing removes them without
    /// a look at every alias).
    conn_aliases: crate::Map<u64, Vec<(Transport, SocketAddr)>>,
    /// The addresses of record that have (or had) a WebSocket binding made over each
    /// connection, replicas included: its closing looks at these, not at every binding
    /// (with hundreds of thousands of bindings in every shard, a scan of them for each
    /// closed stream connection let anyone who opens and closes connections spend the
    /// shards' time).
    ws_aors: crate::Map<u64, Vec<String>>,
    /// An instant and the Unix time in milliseconds it corresponds to (given by the shell).
    unix_base: Option<(Instant, i64)>,
    /// Per-source budget for answers to unauthenticated UDP senders.
    budget: AnswerBudget,
    /// What is known about the message being handled (reset for each message).
    handling: Handling,
    /// When the per-client tables are next swept.
    next_sweep: Instant,
    /// Which digest algorithm each device gets first.
    algos: crate::algorithms::Memory,
    /// Key of the dialog tokens in our Record-Route (`pal=`).
    /// The dialog tokens' MAC keys (derived from the route key).
    dialog_mac: crate::mac::Mac,
    /// This node's flow tokens (cluster routing through the node that holds a flow).
    flows: crate::FlowKey,
    /// The media relay, when the shell runs one (see [`crate::MediaAnchor`]).
    media: Option<Box<dyn crate::MediaAnchor>>,
    /// Restrictions from the campaign detectors.
    restrictions: Restrictions,
    /// The scanner search's answer for the last User-Agent seen.
    scanner_memo: palisade_detect::ScannerMemo,
    /// Notifications in flight.
    notifying: Notifying,
    /// Which shard owns a Call-ID (this core is `cfg.shard.0` of them).
    shards: crate::Shards,
    /// The domain and aliases written as IP addresses.
    literal: LiteralAddresses,
    /// Counters for logs and metrics.
    pub stats: Stats,
}

impl Endpoint {
    /// A core with `cfg`; `secret` (random per boot) keys nonces and transaction keys.
    pub fn new(cfg: CoreConfig, secret: [u8; 32], now: Instant) -> Self {
        let salt = u64::from_le_bytes(secret[..8].try_into().unwrap_or([0; 8]));
        let auth =
            Authenticator::new(secret, now, cfg.nonce_ttl).for_shard(cfg.shard.0, cfg.shard.1);
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
        let shards = crate::Shards::new(&secret, cfg.shard.1);
        let prealloc = cfg.preallocate;
        // each shard sees its share of the traffic: the tables are split among them
        let share = cfg.shard.1.max(1);
        let cap = |n: usize| if prealloc { n / share } else { 0 };
        Endpoint {
            literal: LiteralAddresses::of(&cfg),
            cfg,
            auth,
            dir: Directory {
                users: crate::Map::default(),
                location: crate::Map::with_capacity_and_hasher(cap(1 << 14), Default::default()),
                protected: crate::Map::default(),
                created: crate::Map::default(),
            },
            tx: Transactions {
                servers: TxnMap::with_capacity_and_hasher(cap(1 << 16), Default::default()),
                clients: ClientMap::with_capacity_and_hasher(cap(1 << 14), Default::default()),
                timers: TimerQueue::with_capacity(cap(1 << 16), now),
                seq: 0,
                answered: TxnMap::with_capacity_and_hasher(cap(1 << 16), Default::default()),
                answered_q: VecDeque::with_capacity(cap(1 << 16)),
            },
            // Sized for a busy second up front: growing a large table rehashes it all
            // at once, a stall long enough to overflow a UDP receive buffer.
            out: VecDeque::new(),
            events: VecDeque::new(),
            salt,
            shards,
            aliases: crate::Map::default(),
            conn_aliases: crate::Map::default(),
            ws_aors: crate::Map::default(),
            unix_base: None,
            budget: AnswerBudget::new(cfg_rate, cfg_burst),
            handling: Handling::default(),
            next_sweep: now + SWEEP_EVERY,
            algos: crate::algorithms::Memory::default(),
            dialog_mac: crate::mac::Mac::derived(b"palisade dialog token", &route_key),
            flows: crate::FlowKey::new(&route_key),
            media: None,
            restrictions: Restrictions::default(),
            scanner_memo: palisade_detect::ScannerMemo::default(),
            notifying: Notifying::default(),
            stats: Stats::default(),
        }
    }

    /// The configuration in use (with the rewrite key the core derived for the shield).
    pub fn config(&self) -> &CoreConfig {
        &self.cfg
    }

    /// Replaces the shield's policy and the parser's limits (a configuration reload);
    /// the identifier rewrite key stays (dialogs in progress keep their mapping).
    pub fn set_policy(&mut self, shield: palisade_shield::Policy, limits: Limits) {
        let key = self.cfg.shield.rewrite_key;
        self.cfg.shield = shield;
        self.cfg.shield.rewrite_key = key;
        self.cfg.limits = limits;
    }

    /// Replaces the set of provisioned accounts.
    pub fn set_users(&mut self, users: Vec<User>) {
        self.dir.protected.clear();
        self.dir.created.clear();
        for u in &users {
            if let Some(allow) = &u.protection {
                self.dir.protected.insert(u.name.clone(), allow.clone());
            }
            self.dir.created.insert(u.name.clone(), u.created_unix);
        }
        // room in the location for every account's address of record (most accounts
        // register): it does not rehash while the phones come in
        let more = users.len().saturating_sub(self.dir.location.len());
        self.dir.location.reserve(more);
        self.dir.users = users.into_iter().map(|u| (u.name, u.credential)).collect();
    }

    /// Tells the core which Unix time (in seconds) `now` is (for account ages and the
    /// end of restrictions; the core never reads a clock itself).
    pub fn set_unix_time(&mut self, now: Instant, unix: i64) {
        self.set_unix_time_ms(now, unix.saturating_mul(1000));
    }

    /// As [`Endpoint::set_unix_time`], in milliseconds: what the shell gives, so that a
    /// restriction ends on this shard at the millisecond its `until` names (the
    /// detection thread, which records the lifting, reads the same wall clock).
    pub fn set_unix_time_ms(&mut self, now: Instant, unix_ms: i64) {
        self.unix_base = Some((now, unix_ms));
    }

    fn unix_now(&self, now: Instant) -> Option<i64> {
        self.unix_base.map(|(at, ms)| {
            ms.saturating_add(now.saturating_duration_since(at).as_millis() as i64)
                .div_euclid(1000)
        })
    }

    /// Anchors calls' media at this relay from now on (see [`crate::MediaAnchor`]).
    pub fn set_media(&mut self, media: Box<dyn crate::MediaAnchor>) {
        self.media = Some(media);
    }

    /// This node's token for a flow (see [`crate::FlowKey`]): what other nodes of a
    /// cluster put in their Route to have a request sent on that flow.
    pub fn flow_token(&self, p: &Peer) -> String {
        self.flows.token(p)
    }

    /// The shards, as this core routes them (see [`crate::Shards`]).
    pub fn shards(&self) -> &crate::Shards {
        &self.shards
    }

    /// Every current binding.
    pub fn bindings(&self) -> impl Iterator<Item = &Binding> {
        self.dir.location.values().flatten().map(|l| &l.binding)
    }

    /// Live transactions: (server, client).
    pub fn transaction_count(&self) -> (usize, usize) {
        (self.tx.servers.len(), self.tx.clients.len())
    }

    /// Message bytes the server transactions hold (requests kept to answer them later,
    /// responses kept for retransmissions, the best branch answer so far).
    pub fn server_transaction_bytes(&self) -> usize {
        self.tx
            .servers
            .values()
            .map(|t| {
                t.request.len()
                    + t.last.as_ref().map_or(0, Vec::len)
                    + t.best.as_ref().map_or(0, |(_, b)| b.len())
            })
            .sum()
    }

    /// The next message to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    /// The next event for the shell (persistence, security events), if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Endpoint::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let t = self.tx.timers.next_at();
        let a = self.tx.answered_q.front().map(|a| a.0);
        [t, a, Some(self.next_sweep)].into_iter().flatten().min()
    }

    /// Entries in the timer queue (live and not yet discarded).
    pub fn timer_count(&self) -> usize {
        self.tx.timers.len()
    }

    /// Sizes of the per-client tables: (nonce counts, answer budgets, connection
    /// aliases, answered non-INVITE requests).
    pub fn table_sizes(&self) -> (usize, usize, usize, usize) {
        (
            self.auth.tracked_nonces(),
            self.budget.tracked(),
            self.aliases.len(),
            self.tx.answered.len(),
        )
    }

    /// Devices whose digest algorithm preference is remembered.
    pub fn devices_remembered(&self) -> usize {
        self.algos.len()
    }

    /// Fires what is due at `now`: timers, the end of answered-request records, the sweep.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now >= self.next_sweep {
            self.sweep(now);
            self.sweep_restrictions(now);
            self.next_sweep = now + SWEEP_EVERY;
        }
        while let Some(&(at, kh)) = self.tx.answered_q.front() {
            if at > now {
                break;
            }
            self.tx.answered_q.pop_front();
            self.tx.answered.remove(&kh);
        }
        while let Some(what) = self.next_due(now) {
            self.fire(now, what);
        }
    }

    fn on_request(&mut self, now: Instant, from: Peer, mut msg: Message<'_>, raw: &[u8]) {
        self.stats.requests += 1;
        if let Some(n) = msg
            .method()
            .and_then(|m| self.stats.requests_by_method.get_mut(method_slot(m)))
        {
            *n += 1;
        }
        if let (Some(conn), Some(v)) = (from.conn, msg.top_via()) {
            if v.host.ip() == Some(from.addr.ip()) {
                let port = v.port.unwrap_or(from.transport.default_port());
                if port != from.addr.port() && self.aliases.len() < 100_000 {
                    let key = (from.transport, SocketAddr::new(from.addr.ip(), port));
                    if self.aliases.insert(key, conn) != Some(conn) {
                        let keys = self.conn_aliases.entry(conn).or_default();
                        if !keys.contains(&key) {
                            keys.push(key);
                        }
                    }
                }
            }
        }
        fix_top_via(&mut msg, from);
        let Some(method) = msg.method().cloned() else {
            return;
        };
        if method == Method::Ack {
            let ikey = server_key(&msg, true, self.salt);
            if let Some(t) = self.tx.servers.get_mut(&ikey) {
                if t.state == SState::Completed {
                    t.state = SState::Confirmed;
                    let wait = if t.source.transport.reliable() {
                        Duration::ZERO
                    } else {
                        self.cfg.t4
                    };
                    self.tx.arm_after(now, wait, TimerWhat::IorJ(ikey));
                }
                return;
            }
            self.forward_stateless(from, msg, raw);
            return;
        }
        let key = server_key(&msg, false, self.salt);
        self.handling.txn = Some(key);
        if let Some(t) = self.tx.servers.get(&key) {
            debug!(key, "retransmitted request absorbed");
            if let Some(last) = t.last.clone() {
                let to = t.source;
                self.send_answer(to, last);
            }
            return;
        }
        if self.tx.servers.len() >= self.cfg.max_transactions && method != Method::Cancel {
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
        let initial = msg.to().and_then(|t| t.tag()).is_none();
        if self.cfg.observe || !self.restrictions.is_empty() {
            // Only requests that carry credentials can be observed (a call or a
            // registration is recorded once authenticated): the challenged first copy
            // is not fingerprinted, unless a device restriction needs it.
            // (the header scan only for the requests that can be observed)
            let credentials = || {
                msg.headers
                    .iter()
                    .any(|h| matches!(h, Header::Authorization(_) | Header::ProxyAuthorization(_)))
            };
            // (the scan once, for the requests whose records or fingerprint it decides)
            let signed = initial
                && (invite || method == Method::Register || method == Method::Message)
                && credentials();
            if initial
                && (invite || method == Method::Register)
                && (signed || self.restrictions.has_devices())
            {
                // (the parse saw every line of the head: without a folded one, the
                // fingerprint needs none after the last core header)
                self.handling.fingerprint = if msg.received.unfolded {
                    palisade_detect::fingerprint_unfolded(raw)
                } else {
                    palisade_detect::fingerprint(raw)
                };
            }
            // What a call or text record keeps of the request as the caller sent it, before
            // the shield rewrites what it forwards (see `call_started`).
            if self.cfg.observe && signed && method != Method::Register {
                self.handling.user_agent =
                    Some(observe::first_chars(observe::user_agent(&msg), 128));
                if invite {
                    self.handling.sdp_habits =
                        Some(palisade_detect::sdp_habits(&msg.body, from_user(&msg)));
                }
            }
            if self.cfg.observe {
                self.watch(now, &method, initial, &msg);
            }
            if initial {
                if let Some(Decision::Reply(status, reason, extra)) =
                    self.network_refusal(now, from.addr.ip())
                {
                    // A network restriction is a per-address budget: it holds back
                    // unauthenticated traffic, not a phone that proves its account.
                    if credentials() {
                        self.handling.network_restricted = true;
                    } else {
                        debug!(method = %method, peer = %from.addr, status, "refused: the source network is restricted");
                        let bytes = self.build_response(&msg, status, reason, extra);
                        self.send_answer(from, bytes);
                        return;
                    }
                }
            }
        }
        if !invite {
            // A non-INVITE request answered here keeps no transaction: only a small
            // record, so that a retransmission gets the same answer (re-derived, without
            // authenticating again) until Timer J. This is what keeps memory flat at tens
            // of thousands of REGISTERs per second.
            let kh = key;
            let pre = self.tx.answered.get(&kh).map(|a| a.authed);
            if pre == Some(true) {
                // Its first copy carried valid credentials: its nonce count would look
                // like a replay now, and the answer is the same.
                self.handling.authenticated = Some(Authenticated::Before);
            }
            let decision = self.decide(now, from, &mut msg, raw);
            if initial && pre.is_none() && matches!(method, Method::Message) {
                // texts are records too (campaigns by MESSAGE): when sent on, or
                // refused by a restriction
                match &decision {
                    Decision::Forward(..) => {
                        self.call_started(now, key, &msg, None);
                    }
                    Decision::Reply(status, ..) if self.handling.blocked.is_some() => {
                        self.call_started(now, key, &msg, Some(*status));
                    }
                    Decision::Reply(..) => {}
                }
            }
            match decision {
                Decision::Reply(status, reason, extra) => {
                    if pre.is_none() {
                        debug!(method = %method, call_id = msg.call_id().unwrap_or(""), peer = %from.addr, status, reason, "reply");
                        let wait = if from.transport.reliable() {
                            Duration::ZERO
                        } else {
                            self.cfg.t1 * 64
                        };
                        self.tx.answered.insert(
                            kh,
                            Answered {
                                authed: self.handling.authenticated.is_some(),
                            },
                        );
                        self.tx.answered_q.push_back((now + wait, kh));
                    }
                    let bytes = self.build_response(&msg, status, reason, extra);
                    self.send_answer(from, bytes);
                }
                Decision::Forward(targets, rr) => {
                    self.tx
                        .servers
                        .insert(key, ServerTxn::new(false, from, raw.to_vec(), self.cfg.t1));
                    debug!(method = %method, call_id = msg.call_id().unwrap_or(""), peer = %from.addr, branches = targets.len(), "forward");
                    self.forward(now, key, msg, targets, rr);
                }
            }
            return;
        }
        // INVITE: a full server transaction (Timer G/H retransmission, ACK matching).
        self.tx
            .servers
            .insert(key, ServerTxn::new(true, from, Vec::new(), self.cfg.t1));
        match self.decide(now, from, &mut msg, raw) {
            Decision::Reply(status, reason, extra) => {
                debug!(method = %method, call_id = msg.call_id().unwrap_or(""), peer = %from.addr, status, reason, "reply");
                if initial && status >= 200 {
                    self.call_started(now, key, &msg, Some(status));
                }
                self.reply(now, key, &msg, status, reason, extra);
            }
            Decision::Forward(targets, rr) => {
                let watch = initial && self.call_started(now, key, &msg, None);
                if let Some(t) = self.tx.servers.get_mut(&key) {
                    // Kept only when forwarded, to build a 408 or 487 later.
                    t.request = raw.to_vec();
                    t.call = u8::from(watch);
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
        if self.handling.network_restricted
            && self.handling.authenticated.is_none()
            && !matches!(d, Decision::Reply(401 | 403 | 407, ..))
        {
            // from a restricted network, only what authenticated is served (a 401/407
            // here is the `stale` challenge to a correct password)
            return Decision::Reply(403, "Forbidden: blocked by campaign detection", vec![]);
        }
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
}

/// The From user as the request writes it (empty when there is none): what
/// [`palisade_detect::sdp_habits`] compares the offer's `o=` user with.
fn from_user<'m>(msg: &'m Message<'_>) -> &'m [u8] {
    msg.from()
        .and_then(|n| n.uri.as_sip())
        .and_then(|s| s.user.as_deref())
        .unwrap_or_default()
        .as_bytes()
}
