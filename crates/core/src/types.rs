use std::net::SocketAddr;
use std::time::{Duration, Instant};

use palisade_sip::Limits;

use crate::auth::{Algorithm, Credential};

/// A SIP transport (RFC 3261 section 18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Datagrams; the core retransmits (timers A, E, G).
    Udp,
    /// A byte stream framed by Content-Length.
    Tcp,
    /// TCP under TLS (`sips:` and `transport=tls`).
    Tls,
    /// WebSocket (RFC 7118): one message per frame on a connection the client opened;
    /// the server cannot open one, so a phone on it is reached only on its connection.
    Ws,
    /// WebSocket under TLS (RFC 7118 `WSS`).
    Wss,
}

impl Transport {
    /// The name in a Via's sent-protocol (`SIP/2.0/UDP`).
    pub fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
        }
    }
    /// The value of a URI's `transport` parameter.
    pub fn param(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Ws => "ws",
            Transport::Wss => "wss",
        }
    }
    /// A stream transport: no retransmissions by the transaction layer.
    pub fn reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }
    /// The port a URI or Via without one means (RFC 3261 sections 18.1.1, 19.1.2;
    /// RFC 7118 section 5.2): 5061 for TLS, 80 for WS, 443 for WSS, 5060 otherwise.
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Tls => 5061,
            Transport::Udp | Transport::Tcp => 5060,
            Transport::Ws => 80,
            Transport::Wss => 443,
        }
    }
    /// A WebSocket transport (RFC 7118): its peers are reached only on the connection
    /// they opened, whatever their Via or Contact say (`.invalid` hosts).
    pub fn websocket(self) -> bool {
        matches!(self, Transport::Ws | Transport::Wss)
    }
    /// Parses `udp`, `tcp`, `tls`, `ws`, `wss` (ASCII case ignored).
    pub fn parse(s: &str) -> Option<Transport> {
        const NAMES: [(&str, Transport); 5] = [
            ("udp", Transport::Udp),
            ("tcp", Transport::Tcp),
            ("tls", Transport::Tls),
            ("ws", Transport::Ws),
            ("wss", Transport::Wss),
        ];
        NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(s))
            .map(|(_, t)| *t)
    }
}

/// Where a message came from or goes to. `conn` names a stream connection the shell
/// owns; `None` on a stream transport asks the shell to use (or open) any connection to
/// `addr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    /// The transport of the message.
    pub transport: Transport,
    /// The remote address.
    pub addr: SocketAddr,
    /// The stream connection, when the message came on (or must go on) one.
    pub conn: Option<u64>,
}

/// A message for the shell to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where it goes.
    pub to: Peer,
    /// The whole message, as written canonically.
    pub bytes: Vec<u8>,
}

/// A registered contact of an address of record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// `user@domain`
    pub aor: String,
    /// The Contact URI as written canonically.
    pub contact: String,
    /// When it expires unless refreshed.
    pub expires_at: Instant,
    /// q in thousandths.
    pub q: u16,
    /// Call-ID of the REGISTER that made it (RFC 3261 section 10.3 step 7: a refresh
    /// must carry the same Call-ID with a higher CSeq).
    pub call_id: String,
    /// CSeq of that REGISTER.
    pub cseq: u32,
    /// Path URIs (RFC 3327), used as a Route set toward the contact.
    pub path: Vec<String>,
    /// Where the REGISTER came from: requests for this contact are sent there (RFC 3581
    /// style NAT traversal, and the same connection for TCP/TLS).
    pub source: Peer,
    /// The User-Agent of the REGISTER (for operators and, later, the detectors).
    pub user_agent: String,
}

/// Things the shell must act on besides sending: persistence of bindings, and the
/// shield's security decisions (for the logs, the detectors and the evidence log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A binding was added or refreshed: store it.
    BindingSaved(Binding),
    /// A binding was removed or expired: delete it.
    BindingRemoved {
        /// Its address of record.
        aor: String,
        /// Its contact URI.
        contact: String,
    },
    /// A shield decision, a protected-user refusal or a contained panic.
    Security(palisade_shield::SecurityEvent),
    /// What happened to a call, a registration or a probing request, for the campaign
    /// detectors (only when [`CoreConfig::observe`] is on).
    Observation(palisade_detect::Observation),
    /// A notification ([`crate::Endpoint::notify`]) ended: `delivered` when a device of
    /// the user accepted it (2xx).
    Notified {
        /// The user notified.
        user: String,
        /// A device accepted it.
        delivered: bool,
    },
}

/// A provisioned account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The account name (the user part of its address of record).
    pub name: String,
    /// Its digest secrets (HA1 per algorithm).
    pub credential: Credential,
    /// When the account was created (Unix seconds).
    pub created_unix: i64,
    /// `Some(allow-list)` for a protected user: only these callers (local account names)
    /// may reach the user's devices.
    pub protection: Option<Vec<String>>,
}

/// How the digest `uri` parameter must relate to the Request-URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestUriCheck {
    /// Must equal the Request-URI (strict RFC 3261 reading).
    RequestUri,
    /// The Request-URI, or a SIP URI naming this server (what SIPp 3.6 sends).
    RequestUriOrServer,
    /// Not checked (as Kamailio).
    Off,
}

/// Everything the core is configured with (the shell fills it from the configuration
/// file; `Default` is the documented default of every key).
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// The SIP domain this server is responsible for; also the digest realm.
    pub domain: String,
    /// Other host names or addresses that mean "this server" in URIs.
    pub aliases: Vec<String>,
    /// Listening addresses as advertised in Via and Record-Route, per transport.
    pub local: Vec<(Transport, SocketAddr)>,
    /// Digest algorithms offered, in challenge order (`auth.algorithms`).
    pub algorithms: Vec<Algorithm>,
    /// How long a nonce is valid (`auth.nonce_ttl`).
    pub nonce_ttl: Duration,
    /// How the digest `uri` must relate to the Request-URI (`auth.digest_uri`).
    pub digest_uri: DigestUriCheck,
    /// Challenge out-of-dialog requests (INVITE, MESSAGE, ...) from local users.
    pub authenticate_requests: bool,
    /// Challenge REGISTER.
    pub authenticate_register: bool,
    /// Shortest registration accepted; shorter gets 423 (`registrar.min_expires`).
    pub min_expires: u32,
    /// Longest registration granted (`registrar.max_expires`).
    pub max_expires: u32,
    /// Registration granted when the REGISTER asks for none (`registrar.default_expires`).
    pub default_expires: u32,
    /// Most contacts per address of record (`registrar.max_contacts`).
    pub max_contacts: usize,
    /// Report calls, registrations and probing requests as [`Event::Observation`]s
    /// (`detect.enabled`).
    pub observe: bool,
    /// RFC 3261 T1, the round-trip estimate (500 ms).
    pub t1: Duration,
    /// RFC 3261 T2, the longest retransmission interval (4 s).
    pub t2: Duration,
    /// RFC 3261 T4, how long a message stays in the network (5 s).
    pub t4: Duration,
    /// Bounds of the message parser (`limits.*`).
    pub limits: Limits,
    /// The exploit shield's policy for everything forwarded.
    pub shield: palisade_shield::Policy,
    /// Final response to a caller refused by a protected user (`shield.protected_status`).
    pub protected_status: u16,
    /// Callers whose account is at least this old may reach protected users too
    /// (`shield.protected_min_account_age_days`); `None`: only the allow-list.
    pub protected_min_age: Option<Duration>,
    /// Error answers per second to one unauthenticated UDP source
    /// (`server.answer_rate`), and the burst allowed above that (`server.answer_burst`).
    pub answer_rate: u32,
    /// See `answer_rate`.
    pub answer_burst: u32,
    /// Most server transactions at once (`server.max_transactions`); past it new
    /// requests get 503.
    pub max_transactions: usize,
    /// Bytes by which a 401/407 challenge to an unauthenticated UDP sender may exceed
    /// its request (`server.challenge_allowance`); 0: never larger. Every other error
    /// answer is never larger than its request.
    pub challenge_allowance: usize,
    /// Bytes by which any other error answer may exceed its request
    /// (`server.answer_allowance`); default 0: never larger.
    pub answer_allowance: usize,
    /// Size the tables for a busy server up front (a server: yes; a fuzz target or a
    /// test that makes thousands of endpoints: no).
    pub preallocate: bool,
    /// User-Agents (substrings, ASCII case ignored) offered MD5 only from the start
    /// (`auth.md5_only_user_agents`); others learn it (see `crate::algorithms`).
    pub md5_only_user_agents: Vec<String>,
    /// Key of the dialog tokens in our Record-Route; the shell keeps it in the data
    /// directory so that dialogs outlive a restart. `None`: derived from the per-boot
    /// secret.
    pub route_key: Option<[u8; 32]>,
    /// This core's shard and the number of shards (`server.workers`): `(0, 1)` for a
    /// single core. Messages reach it by the hash of their Call-ID (see
    /// [`crate::Shards`]); the Call-IDs it originates are chosen to hash to it.
    pub shard: (usize, usize),
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            domain: "localhost".into(),
            aliases: Vec::new(),
            local: Vec::new(),
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            nonce_ttl: Duration::from_secs(300),
            digest_uri: DigestUriCheck::RequestUriOrServer,
            authenticate_requests: true,
            authenticate_register: true,
            min_expires: 60,
            max_expires: 7200,
            observe: false,
            default_expires: 3600,
            max_contacts: 10,
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            limits: Limits::default(),
            shield: palisade_shield::Policy::default(),
            protected_status: 480,
            protected_min_age: None,
            answer_rate: 50,
            answer_burst: 200,
            max_transactions: 400_000,
            challenge_allowance: 256,
            answer_allowance: 0,
            preallocate: true,
            md5_only_user_agents: vec!["baresip v1.".into(), "baresip v0.".into(), "sipp".into()],
            route_key: None,
            shard: (0, 1),
        }
    }
}
