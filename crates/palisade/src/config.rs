//! Configuration: a TOML file with documented defaults, overridden by command-line flags.
//! Every key is optional; `palisade serve` with nothing at all runs on the defaults.
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use palisade_core::Algorithm;
use palisade_core::{CoreConfig, DigestUriCheck, Transport};
use serde::Deserialize;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    pub server: ServerSection,
    pub auth: AuthSection,
    pub registrar: RegistrarSection,
    pub tcp: TcpSection,
    pub tls: TlsSection,
    pub limits: LimitsSection,
    pub sdp: SdpSection,
    pub shield: ShieldSection,
    /// Campaign detection: thresholds, windows and responses per detector (see
    /// `palisade_detect::Config`); on by default.
    pub detect: palisade_detect::Config,
    pub notify: NotifySection,
    pub evidence: EvidenceSection,
    pub admin: AdminSection,
}

/// The admin HTTP listener: read-only, serves the evidence log at `/evidence/...`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSection {
    /// `HOST:PORT`; empty: no listener. The default address is tried and, when taken, a
    /// warning is logged and the server runs without it; an address set here must bind.
    pub listen: String,
}

/// Where the admin listener binds unless configured.
pub const DEFAULT_ADMIN: &str = "127.0.0.1:5089";

impl Default for AdminSection {
    fn default() -> Self {
        AdminSection {
            listen: DEFAULT_ADMIN.into(),
        }
    }
}

/// The signed evidence log (`crates/evidence`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvidenceSection {
    /// Record security decisions in the log (on by default).
    pub enabled: bool,
    /// The log's origin line and key name (default `<domain>/palisade-evidence`).
    pub origin: Option<String>,
    /// A file holding the Ed25519 seed (64 hex digits) instead of
    /// `<data_dir>/evidence.key` (created at first start, mode 0600).
    pub key: Option<PathBuf>,
    /// A signed checkpoint covers every entry at most this long after it was committed.
    pub checkpoint_interval_ms: u64,
    /// The blob store beside the log (refused messages, named by their SHA-256) holds
    /// at most this many MiB; once full, new entries say their content was not kept.
    pub blob_store_mb: u64,
    /// `decisions` (security decisions only) or `all` (every call and registration
    /// record too).
    pub records: EvidenceRecords,
    /// Witnesses asked to cosign each new checkpoint (C2SP tlog-witness).
    pub witnesses: Vec<WitnessEntry>,
}

/// A witness the server submits its checkpoints to.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct WitnessEntry {
    /// Its submission prefix: `http://HOST:PORT` (add-checkpoint is POSTed under it).
    pub url: String,
    /// Its cosignature verifier key (`NAME+KEYID+BASE64(0x04 || KEY)`).
    pub key: String,
}

/// What the evidence log takes in besides security decisions.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum EvidenceRecords {
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
pub struct NotifySection {
    /// The text of the SIP MESSAGE (and the webhook's `text`).
    pub text: String,
    /// The user part of the MESSAGE's From (`sip:USER@domain`).
    pub from_user: String,
    /// A webhook URL (`http://HOST:PORT/PATH`) used when `--webhook` is not given.
    pub webhook: Option<String>,
}

impl Default for NotifySection {
    fn default() -> Self {
        NotifySection {
            text: "Security notice from your SIP service: an account that took part in an attack campaign tried to call you. If your phone rang from an unknown caller, tell your operator.".into(),
            from_user: "security".into(),
            webhook: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// `udp:HOST:PORT`, `tcp:HOST:PORT`, `tls:HOST:PORT`. Default: UDP and TCP on 0.0.0.0:5060.
    pub listen: Vec<String>,
    /// The SIP domain served (also the digest realm). Default `localhost`.
    pub domain: String,
    /// Other names of this server (host names, IP addresses).
    pub aliases: Vec<String>,
    /// The address put in Via and Record-Route when listening on 0.0.0.0. Default: the
    /// listening address, or 127.0.0.1 for an unspecified one.
    pub advertise: Option<IpAddr>,
    /// Where the SQLite database lives. Default `./palisade-data`.
    pub data_dir: PathBuf,
    /// error, warn, info, debug, trace. Default `info`.
    pub log_level: String,
    /// Kernel receive/send buffer of each UDP socket, in bytes. Default 4 MiB (capped
    /// by net.core.rmem_max / wmem_max).
    pub udp_buffer: usize,
    /// Worker threads, each owning one shard of the core and one socket of the first UDP
    /// listening address (`SO_REUSEPORT`). Default 0: as many as the machine has cores.
    pub workers: usize,
    /// Error answers per second to one unauthenticated UDP source address. Default 50.
    pub answer_rate: u32,
    /// Burst of error answers allowed above `answer_rate`. Default 200.
    pub answer_burst: u32,
    /// Most server transactions at once; past it requests get 503. Default 100000.
    pub max_transactions: usize,
    /// Bytes a 401/407 challenge to an unauthenticated UDP sender may exceed its request
    /// by (0: never larger). Default 256.
    pub challenge_allowance: usize,
    /// Bytes any other error answer to an unauthenticated UDP sender may exceed its
    /// request by. Default 0: never larger.
    pub answer_allowance: usize,
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
            udp_buffer: 4 << 20,
            workers: 0,
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
pub struct AuthSection {
    /// Offered digest algorithms, in challenge order. Default `["sha-256", "md5"]`.
    pub algorithms: Vec<String>,
    /// `request-uri`, `request-uri-or-server` (default; what SIPp 3.6 needs) or `off`.
    pub digest_uri: String,
    /// Seconds a nonce stays valid. Default 300.
    pub nonce_ttl: u64,
    /// Challenge REGISTER. Default true.
    pub register: bool,
    /// Challenge out-of-dialog requests from local users. Default true.
    pub requests: bool,
    /// User-Agents (substrings, case ignored) offered MD5 only from the start: clients
    /// known to take the first challenge and not to know SHA-256. Other devices that
    /// walk away from a SHA-256-first challenge learn MD5 only by themselves. Default
    /// `["baresip v1.", "baresip v0.", "sipp"]`.
    pub md5_only_user_agents: Vec<String>,
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
pub struct RegistrarSection {
    pub min_expires: u32,
    pub max_expires: u32,
    pub default_expires: u32,
    pub max_contacts: usize,
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
pub struct TcpSection {
    /// Seconds without traffic before a TCP/TLS connection is closed. Default 300.
    pub idle_timeout: u64,
    /// Most simultaneous TCP/TLS connections. Default 4096.
    pub max_connections: usize,
    /// Seconds a peer has to complete a message it has started. Default 10.
    pub message_timeout: u64,
}

impl Default for TcpSection {
    fn default() -> Self {
        TcpSection {
            idle_timeout: 300,
            max_connections: 4096,
            message_timeout: crate::serve::MESSAGE_TIMEOUT_S,
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    /// PEM certificate chain and private key, required for a `tls:` listener.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    pub max_message_size: Option<usize>,
    pub max_headers: Option<usize>,
    pub max_header_line: Option<usize>,
    pub max_via: Option<usize>,
    pub max_uri_length: Option<usize>,
    pub max_params: Option<usize>,
    pub max_body_size: Option<usize>,
}

/// Bounds of the SDP parser; defaults in `palisade_sdp::Limits`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SdpSection {
    pub max_body_size: Option<usize>,
    pub max_lines: Option<usize>,
    pub max_line_length: Option<usize>,
    pub max_media: Option<usize>,
    pub max_formats: Option<usize>,
    pub max_attributes: Option<usize>,
    pub max_candidates: Option<usize>,
}

/// The exploit shield (defaults in `palisade_shield::Policy`). List keys replace the
/// default list; `extra_*` keys add to it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShieldSection {
    pub enabled: bool,
    /// `drop` (default) or `refuse`.
    pub unknown_attributes: String,
    /// `drop` (default) or `refuse`: an rtpmap outside the codec registry.
    pub unknown_codecs: String,
    pub sdp_attributes: Option<Vec<String>>,
    pub extra_sdp_attributes: Vec<String>,
    pub headers: Option<Vec<String>>,
    pub extra_headers: Vec<String>,
    pub body_types: Option<Vec<String>>,
    pub multipart_types: Option<Vec<String>>,
    pub max_attribute_length: Option<usize>,
    pub max_sdp_text: Option<usize>,
    pub max_header_length: Option<usize>,
    pub max_message_size: Option<usize>,
    pub max_text_body: Option<usize>,
    pub max_parts: Option<usize>,
    /// Largest sender-chosen content of a forwarded offer, in bytes (default 384).
    pub max_residual_bytes: Option<u64>,
    /// `[shield.text]`: drop, keep or rewrite each free-text field.
    pub text: TextSection,
    /// Final response to callers a protected user does not accept: 480 (default), 403,
    /// 404, 486 or 603.
    pub protected_status: u16,
    /// Callers whose account is at least this many days old may also reach protected
    /// users; 0 (default) means only the allow-list counts.
    pub protected_min_account_age_days: u32,
    /// Protected users from configuration: `alice = ["bob", "carol"]`, merged with
    /// `palisade user protect` / `allow`.
    pub protected: std::collections::BTreeMap<String, Vec<String>>,
}

/// `[shield.text]`: each key is `drop`, `keep` or `rewrite` (defaults in
/// `palisade_shield::TextPolicy`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TextSection {
    pub display_name: Option<String>,
    pub user_agent: Option<String>,
    pub server: Option<String>,
    pub subject: Option<String>,
    pub organization: Option<String>,
    pub call_info: Option<String>,
    pub max_length: Option<usize>,
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

impl FileConfig {
    /// The shield policy this configuration describes (also used by `inspect`).
    pub fn policy(&self) -> anyhow::Result<palisade_shield::Policy> {
        let mut p = palisade_shield::Policy::default();
        let sh = &self.shield;
        p.enabled = sh.enabled;
        p.unknown_attributes = match sh.unknown_attributes.as_str() {
            "drop" => palisade_shield::UnknownAttribute::Drop,
            "refuse" => palisade_shield::UnknownAttribute::Refuse,
            other => bail!("shield.unknown_attributes: {other:?} is not drop or refuse"),
        };
        p.unknown_codecs = match sh.unknown_codecs.as_str() {
            "drop" => palisade_shield::UnknownAttribute::Drop,
            "refuse" => palisade_shield::UnknownAttribute::Refuse,
            other => bail!("shield.unknown_codecs: {other:?} is not drop or refuse"),
        };
        if let Some(v) = &sh.sdp_attributes {
            p.sdp_attributes = v.iter().cloned().collect();
        }
        p.sdp_attributes
            .extend(sh.extra_sdp_attributes.iter().cloned());
        if let Some(v) = &sh.headers {
            p.headers = v.clone();
        }
        p.headers.extend(sh.extra_headers.iter().cloned());
        if let Some(v) = &sh.body_types {
            p.body_types = v.iter().map(|t| t.to_ascii_lowercase()).collect();
        }
        if let Some(v) = &sh.multipart_types {
            p.multipart_types = v.iter().map(|t| t.to_ascii_lowercase()).collect();
        }
        for (key, v, slot) in [
            (
                "shield.max_attribute_length",
                sh.max_attribute_length,
                &mut p.max_attribute_length,
            ),
            ("shield.max_sdp_text", sh.max_sdp_text, &mut p.max_sdp_text),
            (
                "shield.max_header_length",
                sh.max_header_length,
                &mut p.max_header_length,
            ),
            (
                "shield.max_message_size",
                sh.max_message_size,
                &mut p.max_message_size,
            ),
            (
                "shield.max_text_body",
                sh.max_text_body,
                &mut p.max_text_body,
            ),
            ("shield.max_parts", sh.max_parts, &mut p.max_parts),
        ] {
            if let Some(v) = v {
                if v == 0 {
                    bail!("{key} must be at least 1");
                }
                *slot = v;
            }
        }
        if let Some(v) = sh.max_residual_bytes {
            if v == 0 {
                bail!("shield.max_residual_bytes must be at least 1");
            }
            p.max_residual_bytes = v;
        }
        let t = &sh.text;
        for (key, v, slot) in [
            (
                "shield.text.display_name",
                &t.display_name,
                &mut p.text.display_name,
            ),
            (
                "shield.text.user_agent",
                &t.user_agent,
                &mut p.text.user_agent,
            ),
            ("shield.text.server", &t.server, &mut p.text.server),
            ("shield.text.subject", &t.subject, &mut p.text.subject),
            (
                "shield.text.organization",
                &t.organization,
                &mut p.text.organization,
            ),
            ("shield.text.call_info", &t.call_info, &mut p.text.call_info),
        ] {
            if let Some(v) = v {
                *slot = palisade_shield::TextAction::parse(v)
                    .ok_or_else(|| anyhow::anyhow!("{key}: {v:?} is not drop, keep or rewrite"))?;
            }
        }
        if p.text.call_info == palisade_shield::TextAction::Rewrite {
            bail!("shield.text.call_info: rewrite is not offered (a Call-Info value is a URL a device fetches): drop or keep");
        }
        if let Some(v) = t.max_length {
            if v == 0 {
                bail!("shield.text.max_length must be at least 1");
            }
            p.text.max_length = v;
        }
        let l = &self.sdp;
        for (key, v, slot) in [
            (
                "sdp.max_body_size",
                l.max_body_size,
                &mut p.sdp_limits.max_body_size,
            ),
            ("sdp.max_lines", l.max_lines, &mut p.sdp_limits.max_lines),
            (
                "sdp.max_line_length",
                l.max_line_length,
                &mut p.sdp_limits.max_line_length,
            ),
            ("sdp.max_media", l.max_media, &mut p.sdp_limits.max_media),
            (
                "sdp.max_formats",
                l.max_formats,
                &mut p.sdp_limits.max_formats,
            ),
            (
                "sdp.max_attributes",
                l.max_attributes,
                &mut p.sdp_limits.max_attributes,
            ),
            (
                "sdp.max_candidates",
                l.max_candidates,
                &mut p.sdp_limits.max_candidates,
            ),
        ] {
            if let Some(v) = v {
                if v == 0 {
                    bail!("{key} must be at least 1");
                }
                *slot = v;
            }
        }
        p.realm = Some(self.server.domain.clone());
        Ok(p)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen {
    pub transport: Transport,
    pub addr: SocketAddr,
}

pub fn parse_listen(s: &str) -> anyhow::Result<Listen> {
    let (t, a) = s.split_once(':').with_context(|| {
        format!("listen {s:?}: expected udp:HOST:PORT, tcp:HOST:PORT or tls:HOST:PORT")
    })?;
    let transport =
        Transport::parse(t).with_context(|| format!("listen {s:?}: unknown transport {t:?}"))?;
    let addr: SocketAddr = a
        .parse()
        .with_context(|| format!("listen {s:?}: {a:?} is not IP:PORT (use [v6]:port for IPv6)"))?;
    Ok(Listen { transport, addr })
}

pub fn load(path: Option<&PathBuf>) -> anyhow::Result<FileConfig> {
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
    pub fn listens(&self) -> anyhow::Result<Vec<Listen>> {
        self.server.listen.iter().map(|s| parse_listen(s)).collect()
    }

    pub fn core(&self, listens: &[Listen]) -> anyhow::Result<CoreConfig> {
        self.relations()?;
        let mut c = CoreConfig {
            domain: self.server.domain.clone(),
            ..CoreConfig::default()
        };
        let mut algorithms = Vec::new();
        for a in &self.auth.algorithms {
            let Some(alg) = Algorithm::parse(a) else {
                bail!("auth.algorithms: unknown algorithm {a:?} (md5, sha-256)")
            };
            if !algorithms.contains(&alg) {
                algorithms.push(alg);
            }
        }
        if algorithms.is_empty() {
            bail!("auth.algorithms: at least one algorithm is needed");
        }
        c.algorithms = algorithms;
        c.digest_uri = match self.auth.digest_uri.as_str() {
            "request-uri" => DigestUriCheck::RequestUri,
            "request-uri-or-server" => DigestUriCheck::RequestUriOrServer,
            "off" => DigestUriCheck::Off,
            other => {
                bail!("auth.digest_uri: {other:?} is not request-uri, request-uri-or-server or off")
            }
        };
        c.nonce_ttl = Duration::from_secs(self.auth.nonce_ttl.max(1));
        c.authenticate_register = self.auth.register;
        c.authenticate_requests = self.auth.requests;
        c.md5_only_user_agents = self.auth.md5_only_user_agents.clone();
        c.min_expires = self.registrar.min_expires;
        c.max_expires = self.registrar.max_expires;
        c.default_expires = self.registrar.default_expires;
        c.max_contacts = self.registrar.max_contacts.max(1);
        c.observe = self.detect.enabled;
        c.answer_rate = self.server.answer_rate.max(1);
        c.answer_burst = self.server.answer_burst.max(1);
        c.max_transactions = self.server.max_transactions.max(1);
        c.challenge_allowance = self.server.challenge_allowance;
        c.answer_allowance = self.server.answer_allowance;
        let l = &self.limits;
        for (key, v) in [
            ("max_message_size", l.max_message_size),
            ("max_headers", l.max_headers),
            ("max_header_line", l.max_header_line),
            ("max_via", l.max_via),
            ("max_uri_length", l.max_uri_length),
            ("max_params", l.max_params),
            ("max_body_size", l.max_body_size),
        ] {
            if let Some(v) = v {
                c.limits.set(key, v).map_err(anyhow::Error::msg)?;
            }
        }
        let mut aliases = self.server.aliases.clone();
        aliases.push("localhost".into());
        for l in listens {
            let ip = match (l.addr.ip().is_unspecified(), self.server.advertise) {
                (_, Some(a)) => a,
                (true, None) => IpAddr::from([127, 0, 0, 1]),
                (false, None) => l.addr.ip(),
            };
            c.local
                .push((l.transport, SocketAddr::new(ip, l.addr.port())));
            aliases.push(ip.to_string());
            if !l.addr.ip().is_unspecified() {
                aliases.push(l.addr.ip().to_string());
            }
        }
        c.aliases = aliases;
        c.shield = self.policy()?;
        if !matches!(self.shield.protected_status, 403 | 404 | 480 | 486 | 603) {
            bail!(
                "shield.protected_status: {} is not one of 403, 404, 480, 486, 603",
                self.shield.protected_status
            );
        }
        c.protected_status = self.shield.protected_status;
        c.protected_min_age = (self.shield.protected_min_account_age_days > 0).then(|| {
            Duration::from_secs(u64::from(self.shield.protected_min_account_age_days) * 86_400)
        });
        for (user, allow) in &self.shield.protected {
            for n in std::iter::once(user).chain(allow) {
                if !crate::users::valid_name(n) {
                    bail!("shield.protected: {n:?} is not a valid account name");
                }
            }
        }
        Ok(c)
    }
}

impl FileConfig {
    /// Relations between keys (and values that make no sense alone), each error naming
    /// the keys: a file that sets `registrar.min_expires` above `registrar.max_expires`
    /// is refused, not quietly bent into shape.
    pub fn relations(&self) -> anyhow::Result<()> {
        let r = &self.registrar;
        if r.max_expires == 0 {
            bail!("registrar.max_expires = 0: every binding would expire at once; it must be at least 1 (default {})", RegistrarSection::default().max_expires);
        }
        if r.min_expires > r.max_expires {
            bail!(
                "registrar.min_expires ({}) is above registrar.max_expires ({}): no registration could satisfy both",
                r.min_expires,
                r.max_expires
            );
        }
        if r.default_expires < r.min_expires || r.default_expires > r.max_expires {
            bail!(
                "registrar.default_expires ({}) must lie between registrar.min_expires ({}) and registrar.max_expires ({})",
                r.default_expires,
                r.min_expires,
                r.max_expires
            );
        }
        let t = &self.tcp;
        if t.message_timeout > t.idle_timeout {
            bail!(
                "tcp.message_timeout ({} s) is above tcp.idle_timeout ({} s): an idle connection would be closed before a slow message could time out",
                t.message_timeout,
                t.idle_timeout
            );
        }
        for (key, v) in [
            ("registrar.max_contacts", self.registrar.max_contacts as u64),
            ("auth.nonce_ttl", self.auth.nonce_ttl),
            ("server.answer_rate", u64::from(self.server.answer_rate)),
            ("server.answer_burst", u64::from(self.server.answer_burst)),
            (
                "server.max_transactions",
                self.server.max_transactions as u64,
            ),
            ("tcp.idle_timeout", t.idle_timeout),
            ("tcp.message_timeout", t.message_timeout),
            ("tcp.max_connections", t.max_connections as u64),
        ] {
            if v == 0 {
                bail!("{key} must be at least 1");
            }
        }
        if self.evidence.checkpoint_interval_ms < 10 {
            bail!(
                "evidence.checkpoint_interval_ms ({}) must be at least 10",
                self.evidence.checkpoint_interval_ms
            );
        }
        if self.server.domain.trim().is_empty() {
            bail!("server.domain must not be empty (the SIP domain served, also the digest realm)");
        }
        if let (Some(_), None) | (None, Some(_)) = (&self.tls.cert, &self.tls.key) {
            bail!("tls.cert and tls.key go together: give both or neither");
        }
        if !crate::users::valid_name(&self.notify.from_user) {
            bail!(
                "notify.from_user {:?} is not a valid user name",
                self.notify.from_user
            );
        }
        for (key, url) in std::iter::once(("notify.webhook", self.notify.webhook.as_deref())).chain(
            self.evidence
                .witnesses
                .iter()
                .map(|w| ("evidence.witnesses.url", Some(w.url.as_str()))),
        ) {
            if let Some(u) = url {
                if !u.starts_with("http://") {
                    bail!("{key} {u:?}: only http:// URLs are supported");
                }
            }
        }
        if !self.admin.listen.is_empty() && self.admin.listen.parse::<SocketAddr>().is_err() {
            bail!(
                "admin.listen {:?} is not IP:PORT (\"\" for no listener)",
                self.admin.listen
            );
        }
        Ok(())
    }

    /// Everything `palisade serve` checks of its configuration before it binds a socket:
    /// `palisade config check`. Returns one line about what the file configures.
    pub fn check(&self) -> anyhow::Result<String> {
        let listens = self.listens()?;
        let core = self.core(&listens)?;
        if self.server.log_level.parse::<tracing::Level>().is_err() {
            bail!(
                "server.log_level {:?}: use error, warn, info, debug or trace",
                self.server.log_level
            );
        }
        crate::datadir::usable(&self.server.data_dir)?;
        if listens.iter().any(|l| l.transport == Transport::Tls) {
            let (Some(cert), Some(key)) = (&self.tls.cert, &self.tls.key) else {
                bail!("a tls: listener needs tls.cert and tls.key");
            };
            for (k, p) in [("tls.cert", cert), ("tls.key", key)] {
                std::fs::metadata(p).with_context(|| format!("{k} {}", p.display()))?;
            }
        }
        if let Some(k) = &self.evidence.key {
            std::fs::metadata(k).with_context(|| format!("evidence.key {}", k.display()))?;
        }
        Ok(format!(
            "domain {}, listening on {}, data in {}, digest {}",
            core.domain,
            self.server.listen.join(" "),
            self.server.data_dir.display(),
            self.auth.algorithms.join(", ")
        ))
    }
}

/// `palisade config defaults`: the configuration block of the README, which shows every
/// key with its default (a unit test holds the two together).
pub fn defaults_toml() -> &'static str {
    const README: &str = include_str!("../../../README.md");
    const OPEN: &str = "```toml\n[server]";
    let start = README.find(OPEN).map_or(0, |i| i + "```toml\n".len());
    let end = README[start..]
        .find("\n```")
        .map_or(README.len(), |e| start + e + 1);
    &README[start..end]
}

/// `palisade config check FILE`.
pub fn check_file(path: &PathBuf) -> anyhow::Result<()> {
    let cfg = load(Some(path))?;
    let summary = cfg
        .check()
        .with_context(|| format!("config {}", path.display()))?;
    println!("ok: {}: {summary}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty configuration file means the core's own defaults (they are defined once,
    /// in `CoreConfig::default()`).
    /// The README's `[detect]` block is what the server does with no configuration.
    #[test]
    fn the_readme_shows_the_detection_defaults() {
        let readme = include_str!("../../../README.md");
        let start = readme
            .find("[detect]   ")
            .expect("a [detect] block in the README");
        let end = start
            + readme[start..]
                .find("[notify]")
                .expect("followed by [notify]");
        let file: FileConfig = toml::from_str(&readme[start..end]).unwrap();
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
        assert!(text.contains("[notify]"));
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
            (format!("{:?}", file.notify), format!("{:?}", d.notify)),
            (format!("{:?}", file.evidence), format!("{:?}", d.evidence)),
            (format!("{:?}", file.admin), format!("{:?}", d.admin)),
        ] {
            assert_eq!(
                a, b,
                "the README's configuration block and the defaults differ"
            );
        }
        assert_eq!(file.detect, d.detect);
        file.check().unwrap();
    }

    #[test]
    fn relations_between_keys_are_checked() {
        for (text, keys) in [
            (
                "[registrar]\nmin_expires = 9000\n",
                &["registrar.min_expires", "registrar.max_expires"][..],
            ),
            ("[registrar]\nmax_expires = 0\n", &["registrar.max_expires"]),
            (
                "[registrar]\ndefault_expires = 30\n",
                &["registrar.default_expires", "registrar.min_expires"],
            ),
            (
                "[tcp]\nmessage_timeout = 600\n",
                &["tcp.message_timeout", "tcp.idle_timeout"],
            ),
            (
                "[registrar]\nmax_contacts = 0\n",
                &["registrar.max_contacts"],
            ),
            ("[tls]\ncert = \"c.pem\"\n", &["tls.cert", "tls.key"]),
            ("[server]\ndomain = \"\"\n", &["server.domain"]),
            ("[admin]\nlisten = \"nowhere\"\n", &["admin.listen"]),
        ] {
            let file: FileConfig = toml::from_str(text).unwrap();
            let e = file.core(&[]).unwrap_err().to_string();
            for k in keys {
                assert!(e.contains(k), "{text}: {e}");
            }
        }
        let ok: FileConfig =
            toml::from_str("[registrar]\nmin_expires = 1\nmax_expires = 1\ndefault_expires = 1\n")
                .unwrap();
        ok.core(&[]).unwrap();
    }

    #[test]
    fn an_empty_file_means_the_core_defaults() {
        let file: FileConfig = toml::from_str("").unwrap();
        let c = file.core(&[]).unwrap();
        let d = CoreConfig::default();
        assert_eq!(c.domain, d.domain);
        assert_eq!(c.algorithms, d.algorithms);
        assert_eq!(c.digest_uri, d.digest_uri);
        assert_eq!(c.nonce_ttl, d.nonce_ttl);
        assert_eq!(c.md5_only_user_agents, d.md5_only_user_agents);
        assert_eq!(
            (
                c.min_expires,
                c.max_expires,
                c.default_expires,
                c.max_contacts
            ),
            (
                d.min_expires,
                d.max_expires,
                d.default_expires,
                d.max_contacts
            )
        );
        assert_eq!(
            (c.answer_rate, c.answer_burst, c.max_transactions),
            (d.answer_rate, d.answer_burst, d.max_transactions)
        );
        assert_eq!(
            (c.challenge_allowance, c.answer_allowance),
            (d.challenge_allowance, d.answer_allowance)
        );
        // the shield's policy is the default one, with this server's digest realm
        assert_eq!(c.shield.realm.as_deref(), Some(d.domain.as_str()));
        assert_eq!(
            palisade_shield::Policy {
                realm: None,
                ..c.shield
            },
            d.shield
        );
    }
}
