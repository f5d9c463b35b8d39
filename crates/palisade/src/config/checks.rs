//! Checks across keys, and `palisade config check`: everything `palisade serve` checks of
//! its configuration before it binds a socket.
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use palisade_core::Transport;

use super::{load, FileConfig, RegistrarSection};
use crate::{account, datadir};

impl FileConfig {
    /// Relations between keys (and values that make no sense alone), each error naming
    /// the keys: a file that sets `registrar.min_expires` above `registrar.max_expires`
    /// is refused, not quietly bent into shape.
    pub(crate) fn relations(&self) -> anyhow::Result<()> {
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
        let m = &self.media;
        if m.ports.parse::<palisade_media::PortRange>().is_err() {
            bail!("media.ports {:?}: write FIRST-LAST with even ports from 1024 up, FIRST below LAST (e.g. \"30000-39999\")", m.ports);
        }
        if !matches!(m.early.as_str(), "none" | "callee-to-caller") {
            bail!("media.early {:?}: \"none\" or \"callee-to-caller\" (early media never goes toward the callee)", m.early);
        }
        if m.timeout_s == 0 {
            bail!("media.timeout_s must be at least 1");
        }
        let node = &self.cluster.node;
        if !node.is_empty() {
            let fine = node.len() <= 63
                && node
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
                && !node.starts_with('.');
            if !fine {
                bail!("cluster.node {node:?}: a node name is 1 to 63 letters, digits, '-', '_' or '.', not starting with '.' (it names the node's directory in an evidence export)");
            }
            if self.store.url.is_none() {
                bail!("cluster.node {node:?} needs [store] url: the nodes of a cluster share a PostgreSQL database");
            }
            if self.cluster.dead_after_ms < 1000 {
                bail!(
                    "cluster.dead_after_ms ({}) must be at least 1000: nodes beat once a second",
                    self.cluster.dead_after_ms
                );
            }
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
        if !account::valid_name(&self.notify.from_user) {
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
                if !u.starts_with("http://") && !u.starts_with("https://") {
                    bail!("{key} {u:?}: only http:// and https:// URLs are supported");
                }
            }
        }
        // (its text names the key; never the URL, which may hold a password)
        self.store.check().map_err(|e| anyhow::anyhow!("{e}"))?;
        for o in &self.ws.origins {
            let (scheme, host) = o.split_once("://").unwrap_or_default();
            if !matches!(scheme, "http" | "https") || host.is_empty() || host.contains('/') {
                bail!("ws.origins {o:?}: an origin is scheme://host[:port], as https://phone.example.com");
            }
        }
        if self.ws.ping_interval == 0 {
            bail!("ws.ping_interval must be at least 1 (seconds)");
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
    pub(crate) fn check(&self) -> anyhow::Result<String> {
        let listens = self.listens()?;
        let core = self.core(&listens)?;
        if self.server.log_level.parse::<tracing::Level>().is_err() {
            bail!(
                "server.log_level {:?}: use error, warn, info, debug or trace",
                self.server.log_level
            );
        }
        if !matches!(self.server.log_format.as_str(), "text" | "json") {
            bail!(
                "server.log_format {:?}: use text or json",
                self.server.log_format
            );
        }
        if let Some(c) = &self.hep.collector {
            crate::hep::parse_collector(c)?;
        }
        datadir::usable(&self.server.data_dir)?;
        if let Some(l) = listens
            .iter()
            .find(|l| matches!(l.transport, Transport::Tls | Transport::Wss))
        {
            let (Some(cert), Some(key)) = (&self.tls.cert, &self.tls.key) else {
                bail!(
                    "a {}: listener needs tls.cert and tls.key",
                    l.transport.param()
                );
            };
            for (k, p) in [("tls.cert", cert), ("tls.key", key)] {
                std::fs::metadata(p).with_context(|| format!("{k} {}", p.display()))?;
            }
        }
        if let Some(k) = &self.evidence.key {
            std::fs::metadata(k).with_context(|| format!("evidence.key {}", k.display()))?;
        }
        for (key, ca) in std::iter::once(("notify.ca_file", &self.notify.ca_file)).chain(
            self.evidence
                .witnesses
                .iter()
                .map(|w| ("evidence.witnesses.ca_file", &w.ca_file)),
        ) {
            if let Some(p) = ca {
                std::fs::metadata(p).with_context(|| format!("{key} {}", p.display()))?;
            }
        }
        let store = match &self.store.url {
            Some(url) => format!(", store PostgreSQL at {}", palisade_store::redact_url(url)),
            None => String::new(),
        };
        Ok(format!(
            "domain {}, listening on {}, data in {}{store}, digest {}",
            core.domain,
            self.server.listen.join(" "),
            self.server.data_dir.display(),
            self.auth.algorithms.join(", ")
        ))
    }
}

/// `palisade config check FILE`.
pub(crate) fn check_file(path: &PathBuf) -> anyhow::Result<()> {
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
            (
                "[store]\nurl = \"mysql://pal:s3cret@db/palisade\"\n",
                &["[store] url", "mysql://", "postgres://"],
            ),
            ("[store]\nmax_connections = 0\n", &["max_connections"]),
            ("[store]\ncommit_window_ms = 0\n", &["commit_window_ms"]),
            (
                "[store]\ncommit_window_ms = 10001\n",
                &["commit_window_ms", "10000"],
            ),
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
}
