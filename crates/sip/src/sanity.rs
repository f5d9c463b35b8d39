//! Stateless checks a server applies to a well-formed request before routing it, in the
//! spirit of Kamailio's `sanity` module. They need no configuration and no state: what
//! depends on the server's domains, users or dialogs (404, 482, 483 for a request not
//! addressed to the server itself, ...) belongs to the core.
use crate::header::Header;
use crate::message::Message;
use crate::uri::Uri;

/// A refusal: the status to answer with, a fixed reason, and for 420 the option tags to
/// list in an Unsupported header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The status to answer with.
    pub status: u16,
    /// A fixed reason phrase (never the sender's bytes).
    pub reason: &'static str,
    /// For 420: the option tags this server does not support.
    pub unsupported: Vec<String>,
}

/// Option tags this server supports as a proxy (Proxy-Require) — none yet.
pub const PROXY_SUPPORTED: &[&str] = &[];

/// Checks a parsed request. Responses are not checked here (a proxy forwards or drops
/// them by Via).
pub fn check_request(msg: &Message<'_>) -> Result<(), Refusal> {
    let Some(uri) = msg.request_uri() else {
        return Ok(());
    };
    // RFC 3261 section 8.2.2.1 / 16.3: a Request-URI scheme the server cannot route.
    if let Uri::Other { .. } = uri {
        return Err(Refusal {
            status: 416,
            reason: "Unsupported URI Scheme in Request-URI",
            unsupported: Vec::new(),
        });
    }
    // RFC 3261 section 16.3 step 4: Proxy-Require tags the proxy does not support.
    let unsupported: Vec<String> = msg
        .headers
        .iter()
        .filter_map(|h| match h {
            Header::ProxyRequire(v) => Some(v),
            _ => None,
        })
        .flatten()
        .filter(|t| !PROXY_SUPPORTED.iter().any(|s| s.eq_ignore_ascii_case(t)))
        .map(|t| t.to_string())
        .collect();
    if !unsupported.is_empty() {
        return Err(Refusal {
            status: 420,
            reason: "Bad Extension: Proxy-Require lists an unsupported option",
            unsupported,
        });
    }
    Ok(())
}
