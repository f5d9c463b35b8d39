//! The values the detector takes in and gives out (its configuration is in `config`).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;

/// Unix time in milliseconds.
pub type Millis = i64;

/// What the core saw (made on the core's thread: plain values, no references).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Observation {
    /// An authenticated caller's initial INVITE to a local user was routed (forwarded,
    /// refused, or refused because a restriction blocks the caller).
    CallStart(CallStart),
    /// A response the server sent on that INVITE's server transaction (provisional or
    /// final), or the final status it answered with itself.
    CallStatus {
        /// [`CallStart::key`] of the call.
        key: u64,
        /// When.
        at: Millis,
        /// The status code.
        status: u16,
    },
    /// A BYE for a dialog (either side), by Call-ID.
    CallEnd {
        /// The dialog's Call-ID.
        call_id: String,
        /// When.
        at: Millis,
    },
    /// A REGISTER that authenticated and changed or refreshed bindings.
    Registered(Registration),
    /// A request that looks like probing: see [`ProbeKind`].
    Probe(Probe),
    /// A shield refusal or a protected-user refusal.
    Refused {
        /// When.
        at: Millis,
        /// Where from.
        source: SocketAddr,
        /// The calling account (empty when unknown).
        account: String,
        /// The event kind (`offer-refused`, `protected-refused`, ...).
        kind: String,
    },
    /// The media relay cut a stream that kept sending malformed packets.
    MediaCut(MediaCut),
}

/// `udp`, `tcp` or `tls` (an alias, so that serde does not take the field for a
/// borrowed string).
pub type TransportName = &'static str;

/// Observations travel between the nodes of a cluster (to the one detector) as JSON: a
/// transport name is one of the three the core writes, back as the same static string.
mod transport_name {
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &&'static str, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(t)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
        let t = String::deserialize(d)?;
        ["udp", "tcp", "tls", "ws", "wss"]
            .into_iter()
            .find(|k| k.eq_ignore_ascii_case(&t))
            .ok_or_else(|| serde::de::Error::custom(format!("unknown transport {t:?}")))
    }
}

/// A call attempt as the core saw its INVITE.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CallStart {
    /// The server transaction's key (what [`Observation::CallStatus`] refers to).
    pub key: u64,
    /// When the INVITE arrived.
    pub at: Millis,
    /// Its Call-ID.
    pub call_id: String,
    /// The authenticated calling account.
    pub caller: String,
    /// The called user (user part of the To URI).
    pub callee: String,
    /// Where it came from.
    pub source: SocketAddr,
    /// `udp`, `tcp` or `tls`.
    #[serde(with = "transport_name")]
    pub transport: TransportName,
    /// The User-Agent it claims (empty when none).
    pub user_agent: String,
    /// Its wire fingerprint ([`crate::fingerprint`]).
    pub fingerprint: u64,
    /// How its offer is written ([`crate::sdp_habits`]).
    pub sdp: u64,
    /// A restriction refused it: it rang no one.
    pub blocked: bool,
    /// A MESSAGE (a text), not an INVITE: it is done once sent, and a reply from the
    /// callee is its counter-evidence.
    pub message: bool,
}

/// An authenticated registration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Registration {
    /// When.
    pub at: Millis,
    /// The account.
    pub account: String,
    /// Where from.
    pub source: SocketAddr,
    /// `udp`, `tcp` or `tls`.
    #[serde(with = "transport_name")]
    pub transport: TransportName,
    /// The User-Agent it claims.
    pub user_agent: String,
    /// Its wire fingerprint.
    pub fingerprint: u64,
}

/// A media stream the relay cut: its party kept sending malformed packets (more than
/// the relay's cut rule allows, `palisade_media::CutRule`). Made by the relay thread,
/// which knows the call's media but not its records.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MediaCut {
    /// When.
    pub at: Millis,
    /// The call's Call-ID.
    pub call_id: String,
    /// Whose stream: `caller` or `callee`.
    pub side: String,
    /// The account the stream's sender belongs to: the caller's authenticated account
    /// when the cut stream is the caller's; empty otherwise (the finding is then about
    /// the source's network).
    pub account: String,
    /// Where the first offending packet came from.
    pub source: SocketAddr,
    /// Why it was refused (`palisade_media::Reason`, e.g. `rtp-payload-type`).
    pub reason: String,
    /// Packets of the stream the relay refused (by source excepted).
    pub refused: u64,
    /// SHA-256 (hex) of the first offending packet as the evidence log's `media-cut`
    /// entry names it (its first 256 bytes; empty when none was kept).
    pub sample_sha256: String,
}

/// What kind of probing a request looked like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ProbeKind {
    /// Credentials that did not verify.
    AuthFailed,
    /// A REGISTER or call for a user this server does not have.
    UnknownUser,
    /// A User-Agent or From of a known scanner.
    Scanner,
    /// The source spent its answer budget (the core stopped answering it).
    Flood,
}

impl ProbeKind {
    /// Its name in records and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::AuthFailed => "auth-failed",
            ProbeKind::UnknownUser => "unknown-user",
            ProbeKind::Scanner => "scanner",
            ProbeKind::Flood => "flood",
        }
    }
}

/// A request that looked like probing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Probe {
    /// When.
    pub at: Millis,
    /// Where from.
    pub source: SocketAddr,
    /// What it looked like.
    pub kind: ProbeKind,
    /// The user name it was about (To or Request-URI user; may be empty).
    pub user: String,
    /// The User-Agent it claimed.
    pub user_agent: String,
}

/// A source network: an IPv4 /24 or an IPv6 /64 (never a single address: one address
/// may be a whole office behind NAT, and an attacker changes addresses within a network
/// for free).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Network {
    /// The network address (host bits zero).
    pub addr: IpAddr,
    /// Prefix length (24 or 64).
    pub prefix: u8,
}

impl Network {
    /// The network of an address.
    pub fn of(ip: IpAddr) -> Network {
        match ip {
            IpAddr::V4(v4) => {
                let o = v4.octets();
                Network {
                    addr: IpAddr::from([o[0], o[1], o[2], 0]),
                    prefix: 24,
                }
            }
            IpAddr::V6(v6) => {
                let s = v6.segments();
                Network {
                    addr: IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0]),
                    prefix: 64,
                }
            }
        }
    }

    /// Parses `ADDR/PREFIX` as written by `Display`.
    pub fn parse(s: &str) -> Option<Network> {
        let (a, p) = s.split_once('/')?;
        let addr: IpAddr = a.parse().ok()?;
        let prefix: u8 = p.parse().ok()?;
        (Network::of(addr) == Network { addr, prefix }).then_some(Network { addr, prefix })
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Who a finding or a restriction is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// A local account.
    Account(String),
    /// A device: a wire fingerprint.
    Device(u64),
    /// A source network.
    Network(Network),
}

impl Subject {
    /// `account`, `device` or `network`.
    pub fn kind(&self) -> &'static str {
        match self {
            Subject::Account(_) => "account",
            Subject::Device(_) => "device",
            Subject::Network(_) => "network",
        }
    }

    /// The value as stored: the account name, 16 hex digits, or `ADDR/PREFIX`.
    pub fn value(&self) -> String {
        match self {
            Subject::Account(a) => a.clone(),
            Subject::Device(d) => format!("{d:016x}"),
            Subject::Network(n) => n.to_string(),
        }
    }

    /// The inverse of (`kind`, `value`).
    pub fn parse(kind: &str, value: &str) -> Option<Subject> {
        match kind {
            "account" => Some(Subject::Account(value.to_string())),
            "device" => u64::from_str_radix(value, 16).ok().map(Subject::Device),
            "network" => Network::parse(value).map(Subject::Network),
            _ => None,
        }
    }
}

/// The kinds of finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FindingKind {
    /// Ring-and-cancel sweep over many callees.
    Sweep,
    /// A new account calling many strangers.
    Strangers,
    /// Many new accounts from one network or device.
    Farm,
    /// A client that writes unlike the family it claims.
    Imitation,
    /// A known scanner's signature.
    Scanner,
    /// Many user names probed from one network.
    Enumeration,
    /// Many authentication failures from one network.
    PasswordGuessing,
    /// A network that keeps spending its answer budget.
    Flood,
    /// Repeated shield or protected-user refusals.
    Refusals,
    /// Media streams cut by the relay for malformed packets.
    MediaAbuse,
}

impl FindingKind {
    /// Every kind.
    pub const ALL: [FindingKind; 10] = [
        FindingKind::Sweep,
        FindingKind::Strangers,
        FindingKind::Farm,
        FindingKind::Imitation,
        FindingKind::Scanner,
        FindingKind::Enumeration,
        FindingKind::PasswordGuessing,
        FindingKind::Flood,
        FindingKind::Refusals,
        FindingKind::MediaAbuse,
    ];

    /// Its name in reports and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Sweep => "ring-and-cancel-sweep",
            FindingKind::Strangers => "new-account-calls-strangers",
            FindingKind::Farm => "account-farm",
            FindingKind::Imitation => "imitation-client",
            FindingKind::Scanner => "scanner",
            FindingKind::Enumeration => "user-enumeration",
            FindingKind::PasswordGuessing => "password-guessing",
            FindingKind::Flood => "flood",
            FindingKind::Refusals => "repeated-refusals",
            FindingKind::MediaAbuse => "media-abuse",
        }
    }

    /// The inverse of `as_str`.
    pub fn parse(s: &str) -> Option<FindingKind> {
        FindingKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// What a finding points to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Evidence {
    /// A call record (its id).
    Call(u64),
    /// A registration record (its id).
    Registration(u64),
    /// A probe or refusal, described (these are not stored one by one).
    Event(String),
}

/// A detector's conclusion.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Its number (unique in the data directory).
    pub id: u64,
    /// What was seen.
    pub kind: FindingKind,
    /// About whom.
    pub subject: Subject,
    /// 0..=1: how far past the thresholds.
    pub score: f64,
    /// When the first observation it rests on happened.
    pub first_seen: Millis,
    /// When it was detected.
    pub detected_at: Millis,
    /// When it was last updated (more evidence).
    pub updated_at: Millis,
    /// The response taken.
    pub action: ActionKind,
    /// The accounts it names (the subject itself, the accounts of a farm or device).
    pub accounts: Vec<String>,
    /// What it rests on (at most [`MAX_EVIDENCE`]).
    pub records: Vec<Evidence>,
    /// One line for people.
    pub summary: String,
}

/// Most evidence items kept per finding.
pub const MAX_EVIDENCE: usize = 1000;

/// The response a detector takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    /// Record the finding only.
    Alert,
    /// Let the subject start at most `limit_per_minute` calls a minute.
    #[serde(rename = "rate-limit")]
    Limit,
    /// Refuse the subject's calls (a network: every request).
    Block,
}

impl ActionKind {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Alert => "alert",
            ActionKind::Limit => "rate-limit",
            ActionKind::Block => "block",
        }
    }

    /// The inverse of `as_str`; anything else is an alert (the mildest response).
    pub fn parse_or_alert(s: &str) -> ActionKind {
        match s {
            "block" => ActionKind::Block,
            "rate-limit" => ActionKind::Limit,
            _ => ActionKind::Alert,
        }
    }
}

/// A restriction the core applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restriction {
    /// On whom.
    pub subject: Subject,
    /// Until when (Unix ms).
    pub until: Millis,
    /// `None`: block; `Some(n)`: at most n calls a minute.
    pub per_minute: Option<u32>,
    /// The finding it comes from.
    pub finding: u64,
}

/// A finished (or updated) call attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    /// Its number (unique in the data directory).
    pub id: u64,
    /// The Call-ID.
    pub call_id: String,
    /// The calling account.
    pub caller: String,
    /// The called user.
    pub callee: String,
    /// Where the INVITE came from.
    pub source: SocketAddr,
    /// `udp`, `tcp`, `tls`.
    pub transport: &'static str,
    /// The claimed User-Agent.
    pub user_agent: String,
    /// Wire fingerprint.
    pub fingerprint: u64,
    /// SDP habits.
    pub sdp: u64,
    /// INVITE time.
    pub invite_at: Millis,
    /// First 18x.
    pub ringing_at: Option<Millis>,
    /// 2xx.
    pub answered_at: Option<Millis>,
    /// Final non-2xx (487 after a CANCEL).
    pub final_at: Option<Millis>,
    /// BYE.
    pub ended_at: Option<Millis>,
    /// The final status, once known.
    pub status: Option<u16>,
    /// A restriction refused it.
    pub blocked: bool,
    /// A MESSAGE, not a call.
    pub message: bool,
}

impl CallRecord {
    /// `in-progress`, `answered`, `cancelled` (before answer), `blocked`, `rejected`
    /// (the callee said no: 486, 600, 603, 4xx), `failed` (no one reachable, 408,
    /// 480, 5xx) or `message` (a MESSAGE that was sent on).
    pub fn outcome(&self) -> &'static str {
        if self.blocked {
            return "blocked";
        }
        if self.message {
            return "message";
        }
        match self.status {
            None => "in-progress",
            Some(200..=299) => "answered",
            Some(487) => "cancelled",
            Some(404 | 408 | 410 | 480 | 500..=599) => "failed",
            Some(_) => "rejected",
        }
    }

    /// Ring time: from the first 18x to the answer or the final response.
    pub fn ring_ms(&self) -> Option<Millis> {
        let end = self.answered_at.or(self.final_at)?;
        Some(end - self.ringing_at?)
    }

    /// Talk time: from the answer to the BYE.
    pub fn talk_ms(&self) -> Option<Millis> {
        Some(self.ended_at? - self.answered_at?)
    }
}

/// A registration record (one per account, device and source, renewed hourly).
#[derive(Debug, Clone, PartialEq)]
pub struct RegistrationRecord {
    /// Its number.
    pub id: u64,
    /// When.
    pub at: Millis,
    /// The account.
    pub account: String,
    /// Where from.
    pub source: SocketAddr,
    /// `udp`, `tcp`, `tls`.
    pub transport: &'static str,
    /// The claimed User-Agent.
    pub user_agent: String,
    /// Wire fingerprint.
    pub fingerprint: u64,
    /// When this account was first seen with this fingerprint.
    pub first_seen: Millis,
}

/// The parts of a finding an update changes when its lists stay as written.
#[derive(Debug, Clone, PartialEq)]
pub struct FindingUpdate {
    /// The finding's number.
    pub id: u64,
    /// Its score now.
    pub score: f64,
    /// When it was last seen going on.
    pub updated_at: Millis,
    /// Its action now.
    pub action: ActionKind,
    /// Its summary now.
    pub summary: String,
}

/// What the detector gives the store.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Insert or replace a call record.
    Call(CallRecord),
    /// Insert a registration record.
    Registration(RegistrationRecord),
    /// Insert or replace a finding.
    Finding(Finding),
    /// A finding written before whose lists (accounts, evidence) have not changed since:
    /// only its score, summary, action and last update move (a farm of a thousand
    /// accounts is not rewritten whole every few seconds while it goes on).
    FindingUpdate(FindingUpdate),
    /// Apply (and store) a restriction.
    Restrict(Restriction),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_travel_as_json_and_come_back_the_same() {
        let all = vec![
            Observation::CallStart(CallStart {
                key: u64::MAX,
                at: 1_700_000_000_000,
                call_id: "c@x".into(),
                caller: "alice".into(),
                callee: "bob".into(),
                source: "192.0.2.1:5060".parse().unwrap(),
                transport: "tls",
                user_agent: "UA \"quoted\"".into(),
                fingerprint: 7,
                sdp: 9,
                blocked: true,
                message: false,
            }),
            Observation::CallStatus {
                key: 3,
                at: 4,
                status: 486,
            },
            Observation::CallEnd {
                call_id: "c@x".into(),
                at: 5,
            },
            Observation::Registered(Registration {
                at: 6,
                account: "carol".into(),
                source: "[2001:db8::1]:5061".parse().unwrap(),
                transport: "udp",
                user_agent: String::new(),
                fingerprint: 0,
            }),
            Observation::Probe(Probe {
                at: 7,
                source: "198.51.100.1:1".parse().unwrap(),
                kind: ProbeKind::Scanner,
                user: "100".into(),
                user_agent: "friendly-scanner".into(),
            }),
            Observation::Refused {
                at: 8,
                source: "198.51.100.2:2".parse().unwrap(),
                account: String::new(),
                kind: "offer-refused".into(),
            },
            Observation::MediaCut(MediaCut {
                at: 9,
                call_id: "m@x".into(),
                side: "caller".into(),
                account: "alice".into(),
                source: "[2001:db8::7]:40000".parse().unwrap(),
                reason: "rtp-payload-type".into(),
                refused: 51,
                sample_sha256: "ab".repeat(32),
            }),
        ];
        for o in all {
            let text = serde_json::to_string(&o).unwrap();
            let back: Observation = serde_json::from_str(&text).unwrap();
            assert_eq!(back, o, "{text}");
        }
        let bad = r#"{"Registered":{"at":1,"account":"a","source":"192.0.2.1:1","transport":"carrier-pigeon","user_agent":"","fingerprint":0}}"#;
        assert!(serde_json::from_str::<Observation>(bad).is_err());
    }
}
