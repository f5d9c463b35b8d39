//! What the server runs with, made from the file: the core's configuration
//! ([`CoreConfig`]) and the shield's policy. Every value is checked here or in
//! [`super::checks`]; an error names its key.
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::bail;
use palisade_core::{Algorithm, CoreConfig, DigestUriCheck};

use super::{FileConfig, Listen};
use crate::account;

impl FileConfig {
    /// The shield policy this configuration describes (also used by `inspect`).
    pub(crate) fn policy(&self) -> anyhow::Result<palisade_shield::Policy> {
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

impl FileConfig {
    pub(crate) fn core(&self, listens: &[Listen]) -> anyhow::Result<CoreConfig> {
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
                if !account::valid_name(n) {
                    bail!("shield.protected: {n:?} is not a valid account name");
                }
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty configuration file means the core's own defaults (they are defined once,
    /// in `CoreConfig::default()`).
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
