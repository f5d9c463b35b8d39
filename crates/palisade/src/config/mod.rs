//! Configuration: a TOML file with documented defaults, overridden by command-line flags.
//! Every key is optional; `palisade serve` with nothing at all runs on the defaults.
//!
//! The model and its defaults are here; what the server makes of it is in
//! `core_config` (the core's configuration, the shield's policy) and `checks` (relations
//! between keys, `palisade config check`).
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use palisade_core::{CoreConfig, DigestUriCheck, Transport};
use serde::Deserialize;

pub(crate) mod checks;
mod core_config;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct FileConfig {
    pub(crate) server: ServerSection,
    pub(crate) auth: AuthSection,
    pub(crate) registrar: RegistrarSection,
    pub(crate) tcp: TcpSection,
    pub(crate) tls: TlsSection,
    pub(crate) ws: WsSection,
    pub(crate) limits: LimitsSection,
    pub(crate) sdp: SdpSection,
    pub(crate) shield: ShieldSection,
    /// Campaign detection: thresholds, windows and responses per detector (see
    /// `palisade_detect::Config`); on by default.
    pub(crate) detect: palisade_detect::Config,
    pub(crate) notify: NotifySection,
    pub(crate) evidence: EvidenceSection,
    pub(crate) admin: AdminSection,
    /// HEP v3 capture of every SIP message in and out (off unless `collector` is set).
    pub(crate) hep: crate::hep::HepConfig,
    /// Where accounts, bindings, records and blocks are kept: SQLite under
    /// `server.data_dir` (the default), or the PostgreSQL database of `url`.
    pub(crate) store: palisade_store::StoreConfig,
    /// Membership of a cluster of nodes sharing one PostgreSQL database.
    pub(crate) cluster: ClusterSection,
    /// The media relay.
    pub(crate) media: MediaSection,
}

/// `[media]`: the relay that anchors calls' RTP/RTCP, holds it until the answer and
/// checks it packet by packet.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct MediaSection {
    /// Anchor the media of the calls it can (RTP/AVP family without ICE).
    pub(crate) enabled: bool,
    /// The relay's UDP ports, `FIRST-LAST` (pairs: even RTP, odd RTCP).
    pub(crate) ports: String,
    /// The address written in rewritten SDP (default: `server.advertise`, else the first
    /// listening address, 127.0.0.1 for an unspecified one).
    pub(crate) advertise: Option<IpAddr>,
    /// `"none"`, or `"callee-to-caller"`: early media (before the answer) allowed toward
    /// the caller. Never toward the callee.
    pub(crate) early: String,
    /// Seconds without a packet after the answer before a call's media is dead (its
    /// ports released); also the most a call's ports are held before an answer.
    pub(crate) timeout_s: u64,
}

impl Default for MediaSection {
    fn default() -> Self {
        MediaSection {
            enabled: true,
            ports: "30000-39999".into(),
            advertise: None,
            early: "none".into(),
            timeout_s: 60,
        }
    }
}

/// `[cluster]`: this server as one node of several that share a PostgreSQL database
/// (`[store] url`): one location, accounts, blocks and records for all of them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ClusterSection {
    /// This node's name, unique in the cluster; empty: not part of a cluster.
    pub(crate) node: String,
    /// A node whose heartbeat is older than this (milliseconds) is taken for dead: the
    /// others stop routing through it until it beats again.
    pub(crate) dead_after_ms: u64,
}

impl Default for ClusterSection {
    fn default() -> Self {
        ClusterSection {
            node: String::new(),
            dead_after_ms: 5_000,
        }
    }
}

/// The admin HTTP listener: the dashboard, `/metrics`, the JSON API (bearer token) and
/// the evidence log's tiles.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct AdminSection {
    /// `HOST:PORT`; empty: no listener. The default address is tried and, when taken, a
    /// warning is logged and the server runs without it; an address set here must bind.
    pub(crate) listen: String,
    /// The file holding the API's bearer token; default `<data_dir>/admin.token`,
    /// created with a random token (mode 0600) when missing.
    pub(crate) token_file: Option<PathBuf>,
}

/// Where the admin listener binds unless configured.
pub(crate) const DEFAULT_ADMIN: &str = "127.0.0.1:5089";

impl Default for AdminSection {
    fn default() -> Self {
        AdminSection {
            listen: DEFAULT_ADMIN.into(),
            token_file: None,
        }
    }
}

/// The signed evidence log (`crates/evidence`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct EvidenceSection {
    /// Record security decisions in the log (on by default).
    pub(crate) enabled: bool,
    /// The log's origin line and key name (default `<domain>/palisade-evidence`).
    pub(crate) origin: Option<String>,
    /// A file holding the Ed25519 seed (64 hex digits) instead of
    /// `<data_dir>/evidence.key` (created at first start, mode 0600).
    pub(crate) key: Option<PathBuf>,
    /// A signed checkpoint covers every entry at most this long after it was committed.
    pub(crate) checkpoint_interval_ms: u64,
    /// The blob store beside the log (refused messages, named by their SHA-256) holds
    /// at most this many MiB; once full, new entries say their content was not kept.
    pub(crate) blob_store_mb: u64,
    /// `decisions` (security decisions only) or `all` (every call and registration
    /// record too).
    pub(crate) records: EvidenceRecords,
    /// Witnesses asked to cosign each new checkpoint (C2SP tlog-witness).
    pub(crate) witnesses: Vec<WitnessEntry>,
}

/// A witness the server submits its checkpoints to.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct WitnessEntry {
    /// Its submission prefix: `http://HOST:PORT` or `https://HOST[:PORT][/PATH]`
    /// (add-checkpoint is POSTed under it).
    pub(crate) url: String,
    /// Its cosignature verifier key (`NAME+KEYID+BASE64(0x04 || KEY)`).
    pub(crate) key: String,
    /// For an `https://` witness under a private CA: a PEM file of the CAs trusted for
    /// it (then only those). Default: the Mozilla roots built into the binary.
    #[serde(default)]
    pub(crate) ca_file: Option<PathBuf>,
}

/// What the evidence log takes in besides security decisions.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum EvidenceRecords {
    /// Security decisions only.
    #[default]
    Decisions,
    /// Every call and registration record as well.
    All,
}

impl Default for EvidenceSection {
    fn default() -> Self {
        EvidenceSection {
            enabled: true,
            origin: None,
            key: None,
            checkpoint_interval_ms: 1000,
            blob_store_mb: 256,
            records: EvidenceRecords::Decisions,
            witnesses: Vec::new(),
        }
    }
}

/// `palisade notify targets`: what a targeted user is told.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct NotifySection {
    /// The text of the SIP MESSAGE (and the webhook's `text`).
    pub(crate) text: String,
    /// The user part of the MESSAGE's From (`sip:USER@domain`).
    pub(crate) from_user: String,
    /// A webhook URL (`http://` or `https://`) used when `--webhook` is not given.
    pub(crate) webhook: Option<String>,
    /// For `https://` webhooks under a private CA: a PEM file of the CAs trusted for
    /// them (then only those). Default: the Mozilla roots built into the binary.
    pub(crate) ca_file: Option<PathBuf>,
}

impl Default for NotifySection {
    fn default() -> Self {
        NotifySection {
            text: "Security notice from your SIP service: an account that took part in an attack campaign tried to call you. If your phone rang from an unknown caller, tell your operator.".into(),
            from_user: "security".into(),
            webhook: None,
            ca_file: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ServerSection {
    /// `udp:HOST:PORT`, `tcp:HOST:PORT`, `tls:HOST:PORT`. Default: UDP and TCP on 0.0.0.0:5060.
    pub(crate) listen: Vec<String>,
    /// The SIP domain served (also the digest realm). Default `localhost`.
    pub(crate) domain: String,
    /// Other names of this server (host names, IP addresses).
    pub(crate) aliases: Vec<String>,
    /// The address put in Via and Record-Route when listening on 0.0.0.0. Default: the
    /// listening address, or 127.0.0.1 for an unspecified one.
    pub(crate) advertise: Option<IpAddr>,
    /// Where the SQLite database (unless `[store] url` names PostgreSQL), the evidence
    /// log and the server's files live. Default `./palisade-data`.
    pub(crate) data_dir: PathBuf,
    /// error, warn, info, debug, trace. Default `info`.
    pub(crate) log_level: String,
    /// `text` (default) or `json` (one JSON object per line, for log shippers).
    pub(crate) log_format: String,
    /// Kernel receive/send buffer of each UDP socket, in bytes. Default 4 MiB (capped
    /// by net.core.rmem_max / wmem_max).
    pub(crate) udp_buffer: usize,
    /// Worker threads, each owning one shard of the core and one socket of the first UDP
    /// listening address (`SO_REUSEPORT`). Default 0: as many as the machine has cores.
    pub(crate) workers: usize,
    /// With several workers, a light UDP load is gathered on worker 0's socket (fewer
    /// wake-ups, less CPU per call) and spread over all of them once worker 0 is busy
    /// three quarters of the time. `false`: always spread by the kernel's hash.
    /// Default `true`.
    pub(crate) udp_gather: bool,
    /// Error answers per second to one unauthenticated UDP source address. Default 50.
    pub(crate) answer_rate: u32,
    /// Burst of error answers allowed above `answer_rate`. Default 200.
    pub(crate) answer_burst: u32,
    /// Most server transactions at once, the whole server's (each of the `workers` shards
    /// holds its share); past it requests get 503. Default 400000.
    pub(crate) max_transactions: usize,
    /// Bytes a 401/407 challenge to an unauthenticated UDP sender may exceed its request
    /// by (0: never larger). Default 256.
    pub(crate) challenge_allowance: usize,
    /// Bytes any other error answer to an unauthenticated UDP sender may exceed its
    /// request by. Default 0: never larger.
    pub(crate) answer_allowance: usize,
}

// The defaults of what the core does come from `CoreConfig::default()` (one place);
// this file adds only what the shell alone decides (listeners, data dir, sockets, TCP).
impl Default for ServerSection {
    fn default() -> Self {
        let c = CoreConfig::default();
        ServerSection {
            listen: vec!["udp:0.0.0.0:5060".into(), "tcp:0.0.0.0:5060".into()],
            domain: c.domain,
            aliases: vec![],
            advertise: None,
            data_dir: PathBuf::from("palisade-data"),
            log_level: "info".into(),
            log_format: "text".into(),
            udp_buffer: 4 << 20,
            workers: 0,
            udp_gather: true,
            answer_rate: c.answer_rate,
            answer_burst: c.answer_burst,
            max_transactions: c.max_transactions,
            challenge_allowance: c.challenge_allowance,
            answer_allowance: c.answer_allowance,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct AuthSection {
    /// Offered digest algorithms, in challenge order. Default `["sha-256", "md5"]`.
    pub(crate) algorithms: Vec<String>,
    /// `request-uri`, `request-uri-or-server` (default; what SIPp 3.6 needs) or `off`.
    pub(crate) digest_uri: String,
    /// Seconds a nonce stays valid. Default 300.
    pub(crate) nonce_ttl: u64,
    /// Challenge REGISTER. Default true.
    pub(crate) register: bool,
    /// Challenge out-of-dialog requests from local users. Default true.
    pub(crate) requests: bool,
    /// User-Agents (substrings, case ignored) offered MD5 only from the start: clients
    /// known to take the first challenge and not to know SHA-256. Other devices that
    /// walk away from a SHA-256-first challenge learn MD5 only by themselves. Default
    /// `["baresip v1.", "baresip v0.", "sipp"]`.
    pub(crate) md5_only_user_agents: Vec<String>,
}

impl Default for AuthSection {
    fn default() -> Self {
        let c = CoreConfig::default();
        AuthSection {
            algorithms: c
                .algorithms
                .iter()
                .map(|a| a.name().to_ascii_lowercase())
                .collect(),
            digest_uri: match c.digest_uri {
                DigestUriCheck::RequestUri => "request-uri",
                DigestUriCheck::RequestUriOrServer => "request-uri-or-server",
                DigestUriCheck::Off => "off",
            }
            .into(),
            nonce_ttl: c.nonce_ttl.as_secs(),
            register: c.authenticate_register,
            requests: c.authenticate_requests,
            md5_only_user_agents: c.md5_only_user_agents,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RegistrarSection {
    pub(crate) min_expires: u32,
    pub(crate) max_expires: u32,
    pub(crate) default_expires: u32,
    pub(crate) max_contacts: usize,
}

impl Default for RegistrarSection {
    fn default() -> Self {
        let c = CoreConfig::default();
        RegistrarSection {
            min_expires: c.min_expires,
            max_expires: c.max_expires,
            default_expires: c.default_expires,
            max_contacts: c.max_contacts,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct TcpSection {
    /// Seconds without traffic before a TCP/TLS connection is closed. Default 300.
    pub(crate) idle_timeout: u64,
    /// Most simultaneous TCP/TLS connections. Default 4096.
    pub(crate) max_connections: usize,
    /// Seconds a peer has to complete a message it has started. Default 10.
    pub(crate) message_timeout: u64,
}

/// Seconds a TCP/TLS peer has to complete a message it started (`tcp.message_timeout`).
pub(crate) const MESSAGE_TIMEOUT_S: u64 = 10;

impl Default for TcpSection {
    fn default() -> Self {
        TcpSection {
            idle_timeout: 300,
            max_connections: 4096,
            message_timeout: MESSAGE_TIMEOUT_S,
        }
    }
}

/// `[ws]`: the `ws:` and `wss:` listeners (RFC 7118). Their connections share
/// `tcp.idle_timeout` and `tcp.max_connections` with TCP and TLS; `wss:` uses `[tls]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct WsSection {
    /// Web origins (`https://phone.example.com`) whose pages may connect; a browser's
    /// upgrade from any other is refused with 403. Empty (the default): any page.
    pub(crate) origins: Vec<String>,
    /// Seconds between the server's WebSocket pings, which a browser answers by itself
    /// and which keep its connection (and so its registration) alive. Default 30.
    pub(crate) ping_interval: u64,
}

impl Default for WsSection {
    fn default() -> Self {
        WsSection {
            origins: Vec::new(),
            ping_interval: 30,
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct TlsSection {
    /// PEM certificate chain and private key, required for a `tls:` listener.
    pub(crate) cert: Option<PathBuf>,
    pub(crate) key: Option<PathBuf>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LimitsSection {
    pub(crate) max_message_size: Option<usize>,
    pub(crate) max_headers: Option<usize>,
    pub(crate) max_header_line: Option<usize>,
    pub(crate) max_via: Option<usize>,
    pub(crate) max_uri_length: Option<usize>,
    pub(crate) max_params: Option<usize>,
    pub(crate) max_body_size: Option<usize>,
}

/// Bounds of the SDP parser; defaults in `palisade_sdp::Limits`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct SdpSection {
    pub(crate) max_body_size: Option<usize>,
    pub(crate) max_lines: Option<usize>,
    pub(crate) max_line_length: Option<usize>,
    pub(crate) max_media: Option<usize>,
    pub(crate) max_formats: Option<usize>,
    pub(crate) max_attributes: Option<usize>,
    pub(crate) max_candidates: Option<usize>,
}

/// The exploit shield (defaults in `palisade_shield::Policy`). List keys replace the
/// default list; `extra_*` keys add to it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ShieldSection {
    pub(crate) enabled: bool,
    /// `drop` (default) or `refuse`.
    pub(crate) unknown_attributes: String,
    /// `drop` (default) or `refuse`: an rtpmap outside the codec registry.
    pub(crate) unknown_codecs: String,
    pub(crate) sdp_attributes: Option<Vec<String>>,
    pub(crate) extra_sdp_attributes: Vec<String>,
    pub(crate) headers: Option<Vec<String>>,
    pub(crate) extra_headers: Vec<String>,
    pub(crate) body_types: Option<Vec<String>>,
    pub(crate) multipart_types: Option<Vec<String>>,
    pub(crate) max_attribute_length: Option<usize>,
    pub(crate) max_sdp_text: Option<usize>,
    pub(crate) max_header_length: Option<usize>,
    pub(crate) max_message_size: Option<usize>,
    pub(crate) max_text_body: Option<usize>,
    pub(crate) max_parts: Option<usize>,
    /// Largest sender-chosen content of a forwarded offer, in bytes (default 384).
    pub(crate) max_residual_bytes: Option<u64>,
    /// `[shield.text]`: drop, keep or rewrite each free-text field.
    pub(crate) text: TextSection,
    /// Final response to callers a protected user does not accept: 480 (default), 403,
    /// 404, 486 or 603.
    pub(crate) protected_status: u16,
    /// Callers whose account is at least this many days old may also reach protected
    /// users; 0 (default) means only the allow-list counts.
    pub(crate) protected_min_account_age_days: u32,
    /// Protected users from configuration: `alice = ["bob", "carol"]`, merged with
    /// `palisade user protect` / `allow`.
    pub(crate) protected: std::collections::BTreeMap<String, Vec<String>>,
}

/// `[shield.text]`: each key is `drop`, `keep` or `rewrite` (defaults in
/// `palisade_shield::TextPolicy`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct TextSection {
    pub(crate) display_name: Option<String>,
    pub(crate) user_agent: Option<String>,
    pub(crate) server: Option<String>,
    pub(crate) subject: Option<String>,
    pub(crate) organization: Option<String>,
    pub(crate) call_info: Option<String>,
    pub(crate) max_length: Option<usize>,
}

impl Default for ShieldSection {
    fn default() -> Self {
        ShieldSection {
            enabled: true,
            unknown_attributes: "drop".into(),
            unknown_codecs: "drop".into(),
            sdp_attributes: None,
            extra_sdp_attributes: vec![],
            headers: None,
            extra_headers: vec![],
            body_types: None,
            multipart_types: None,
            max_attribute_length: None,
            max_sdp_text: None,
            max_header_length: None,
            max_message_size: None,
            max_text_body: None,
            max_parts: None,
            max_residual_bytes: None,
            text: TextSection::default(),
            protected_status: 480,
            protected_min_account_age_days: 0,
            protected: Default::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Listen {
    pub(crate) transport: Transport,
    pub(crate) addr: SocketAddr,
}

pub(crate) fn parse_listen(s: &str) -> anyhow::Result<Listen> {
    let (t, a) = s.split_once(':').with_context(|| {
        format!("listen {s:?}: expected udp:, tcp:, tls:, ws: or wss: followed by HOST:PORT")
    })?;
    let transport =
        Transport::parse(t).with_context(|| format!("listen {s:?}: unknown transport {t:?}"))?;
    let addr: SocketAddr = a
        .parse()
        .with_context(|| format!("listen {s:?}: {a:?} is not IP:PORT (use [v6]:port for IPv6)"))?;
    Ok(Listen { transport, addr })
}

pub(crate) fn load(path: Option<&PathBuf>) -> anyhow::Result<FileConfig> {
    match path {
        None => Ok(FileConfig::default()),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading config {}", p.display()))?;
            toml::from_str(&text).with_context(|| format!("config {}", p.display()))
        }
    }
}

impl FileConfig {
    pub(crate) fn listens(&self) -> anyhow::Result<Vec<Listen>> {
        self.server.listen.iter().map(|s| parse_listen(s)).collect()
    }
}

/// `palisade config defaults`: the configuration block of the README, which shows every
/// key with its default (a unit test holds the two together).
pub(crate) fn defaults_toml() -> &'static str {
    const README: &str = include_str!("../../../../README.md");
    const OPEN: &str = "```toml\n[server]";
    let start = README.find(OPEN).map_or(0, |i| i + "```toml\n".len());
    let rest = README.get(start..).unwrap_or_default();
    let end = rest.find("\n```").map_or(rest.len(), |e| e + 1);
    rest.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's `[detect]` block is what the server does with no configuration.
    #[test]
    fn the_readme_shows_the_detection_defaults() {
        let readme = include_str!("../../../../README.md");
        let start = readme
            .find("[detect]   ")
            .expect("a [detect] block in the README");
        let end = start
            + readme
                .get(start..)
                .and_then(|r| r.find("[notify]"))
                .expect("followed by [notify]");
        let file: FileConfig = toml::from_str(readme.get(start..end).unwrap()).unwrap();
        assert_eq!(file.detect, palisade_detect::Config::default());
        assert_eq!(
            format!("{:?}", file.evidence),
            format!("{:?}", EvidenceSection::default()),
            "the README's [evidence] block"
        );
    }

    /// `palisade config defaults` prints what the server does with no file at all.
    #[test]
    fn the_printed_defaults_are_the_defaults() {
        let text = defaults_toml();
        assert!(text.starts_with("[server]"), "{text}");
        assert!(text.contains("[notify]") && text.contains("\n[store]"));
        let file: FileConfig = toml::from_str(text).unwrap();
        let d = FileConfig::default();
        // what the server does with each (keys left out of a file are `None`, shown
        // with their default value in the block)
        assert_eq!(
            format!("{:?}", file.core(&[]).unwrap()),
            format!("{:?}", d.core(&[]).unwrap()),
            "the README's configuration block and the defaults differ"
        );
        for (a, b) in [
            (format!("{:?}", file.server), format!("{:?}", d.server)),
            (format!("{:?}", file.tcp), format!("{:?}", d.tcp)),
            (format!("{:?}", file.tls), format!("{:?}", d.tls)),
            (format!("{:?}", file.ws), format!("{:?}", d.ws)),
            (format!("{:?}", file.notify), format!("{:?}", d.notify)),
            (format!("{:?}", file.evidence), format!("{:?}", d.evidence)),
            (format!("{:?}", file.admin), format!("{:?}", d.admin)),
            (format!("{:?}", file.store), format!("{:?}", d.store)),
            (format!("{:?}", file.cluster), format!("{:?}", d.cluster)),
            (format!("{:?}", file.media), format!("{:?}", d.media)),
        ] {
            assert_eq!(
                a, b,
                "the README's configuration block and the defaults differ"
            );
        }
        assert_eq!(file.detect, d.detect);
        file.check().unwrap();
    }
}
