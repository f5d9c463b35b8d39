//! The one HTTP client of the server (ureq over rustls with ring): a POST to an
//! `http://` or `https://` URL with a 5 s bound on the whole exchange and at most
//! 64 KiB of answer read, for webhook notifications and witness submissions.
//!
//! Which servers an `https://` URL may reach: by default those whose certificate chains
//! to a CA of the Mozilla root programme, as compiled into the binary (webpki-roots),
//! so that a server verifies the same way on every host, a minimal container without
//! `/etc/ssl` included, and no file of the host can widen what it trusts. An endpoint
//! on the operator's own network, under a private CA, is reached by naming that CA's
//! PEM file (`notify.ca_file`, a witness's `ca_file`): the CAs of that file are then
//! the only ones trusted, as with curl's `--cacert`.
//!
//! No proxy from the environment and no redirects: the endpoints are the operator's,
//! and a webhook that answers 3xx has not taken the notification.
use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context;
use ureq::tls::{parse_pem, PemItem, RootCerts, TlsConfig};

/// The bound on one POST: connecting, sending and reading the answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The most of an answer's body read (a cosignature line or a webhook's reply is far
/// below it); the rest is ignored.
const MAX_ANSWER: u64 = 64 * 1024;

/// An HTTP client with its trusted roots (cheap to clone: the connection pool and the
/// TLS configuration are shared).
#[derive(Clone)]
pub(crate) struct Client {
    agent: ureq::Agent,
}

impl Client {
    /// A client that trusts the CAs of `ca_file` (PEM) for `https://`, or the Mozilla
    /// roots without it.
    pub(crate) fn new(ca_file: Option<&Path>) -> anyhow::Result<Client> {
        let roots = match ca_file {
            None => RootCerts::WebPki,
            Some(path) => {
                let pem = std::fs::read(path).with_context(|| path.display().to_string())?;
                let mut certs = Vec::new();
                for item in parse_pem(&pem) {
                    if let PemItem::Certificate(c) =
                        item.with_context(|| format!("{}: not PEM", path.display()))?
                    {
                        certs.push(c);
                    }
                }
                if certs.is_empty() {
                    anyhow::bail!("{}: no PEM certificate in it", path.display());
                }
                RootCerts::from(certs)
            }
        };
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(TIMEOUT))
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .user_agent("palisade")
            // one request per connection, as before: a pooled connection the peer
            // closed in between fails the next POST (seen once in 300 webhooks)
            .max_idle_connections(0)
            .max_idle_connections_per_host(0)
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build();
        Ok(Client {
            agent: ureq::Agent::new_with_config(config),
        })
    }

    /// POSTs `body` to `url`: the status and the body of the answer (at most 64 KiB,
    /// lossy UTF-8). An answer whose body breaks off (a peer that keeps the connection
    /// open past its head, say) still counts, with what arrived of it.
    pub(crate) fn post(
        &self,
        url: &str,
        content_type: &str,
        body: &str,
    ) -> anyhow::Result<(u16, String)> {
        let answer = self
            .agent
            .post(url)
            .content_type(content_type)
            .send(body)
            .with_context(|| format!("POST {url}"))?;
        let code = answer.status().as_u16();
        let mut bytes = Vec::new();
        // read_to_end keeps what it read before an error
        let _ = answer
            .into_body()
            .into_reader()
            .take(MAX_ANSWER)
            .read_to_end(&mut bytes);
        Ok((code, String::from_utf8_lossy(&bytes).into_owned()))
    }
}

impl Client {
    /// GETs `url`: the status and at most `max` bytes of the body (an error when the
    /// body is longer, or breaks off).
    pub(crate) fn get(&self, url: &str, max: u64) -> anyhow::Result<(u16, Vec<u8>)> {
        let answer = self
            .agent
            .get(url)
            .call()
            .with_context(|| format!("GET {url}"))?;
        let code = answer.status().as_u16();
        let mut bytes = Vec::new();
        answer
            .into_body()
            .into_reader()
            .take(max.saturating_add(1))
            .read_to_end(&mut bytes)
            .with_context(|| format!("GET {url}"))?;
        if bytes.len() as u64 > max {
            anyhow::bail!("GET {url}: the answer is longer than {max} bytes");
        }
        Ok((code, bytes))
    }
}

/// The client of webhook notifications: set once at start from `notify.ca_file`.
static WEBHOOKS: OnceLock<Client> = OnceLock::new();

/// Sets the roots webhook notifications trust (`notify.ca_file`); before the first
/// webhook is posted, once.
pub(crate) fn set_webhook_roots(ca_file: Option<&Path>) -> anyhow::Result<()> {
    let client = Client::new(ca_file).context("notify.ca_file")?;
    WEBHOOKS
        .set(client)
        .map_err(|_| anyhow::anyhow!("the webhook client was already set"))
}

/// POSTs `body` (JSON) to a webhook `url` (`http://` or `https://`); the answer's
/// status.
pub(crate) fn post_json(url: &str, body: &str) -> anyhow::Result<u16> {
    let client = match WEBHOOKS.get() {
        Some(c) => c,
        None => {
            let c = Client::new(None)?;
            WEBHOOKS.get_or_init(|| c)
        }
    };
    client
        .post(url, "application/json", body)
        .map(|(code, _)| code)
}

#[cfg(test)]
mod tests;
