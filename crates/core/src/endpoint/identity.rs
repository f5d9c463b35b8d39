//! Who "we" are: our listeners, domain and aliases. Decides whether a host, an address, a
//! URI or a Via names this server.

use super::*;

/// The domain and the aliases that are IP address literals, parsed once (they were
/// parsed for every URI and Via compared with them).
#[derive(Default)]
pub(super) struct LiteralAddresses {
    domain: Option<IpAddr>,
    aliases: Vec<IpAddr>,
}

impl LiteralAddresses {
    pub(super) fn of(cfg: &CoreConfig) -> Self {
        LiteralAddresses {
            domain: cfg.domain.parse().ok(),
            aliases: cfg.aliases.iter().filter_map(|a| a.parse().ok()).collect(),
        }
    }
}

/// Host names compared as DNS does (ASCII case ignored), the exact match (what phones
/// send) first: a byte comparison instead of a case fold of each pair.
fn same_name(a: &str, b: &str) -> bool {
    a == b || a.eq_ignore_ascii_case(b)
}

impl Endpoint {
    pub(super) fn local(&self, t: Transport) -> Option<SocketAddr> {
        self.cfg
            .local
            .iter()
            .find(|(lt, _)| *lt == t)
            .map(|(_, a)| *a)
    }

    pub(super) fn host_is_us(&self, host: &Host<'_>) -> bool {
        match host {
            Host::Domain(d) => {
                same_name(d, &self.cfg.domain) || self.cfg.aliases.iter().any(|a| same_name(a, d))
            }
            h => h.ip().is_some_and(|ip| self.ip_is_us(ip)),
        }
    }

    pub(super) fn ip_is_us(&self, ip: IpAddr) -> bool {
        self.cfg.local.iter().any(|(_, a)| a.ip() == ip)
            || self.literal.aliases.contains(&ip)
            || self.literal.domain == Some(ip)
    }

    /// Whether a request for `u` is for this server (RFC 3261 sections 16.4–16.5): a
    /// URI of our domain (or a configured alias) without a port, or with the port of
    /// one of our listeners; or our own address — a listener's IP address (or an IP
    /// alias) *and* its port (5060, 5061 for `sips:` or `transport=tls` when absent),
    /// over a transport we listen on. A URI on our host at another port is someone else
    /// (a phone or a PBX on the same machine), and is routed like any other address.
    pub(super) fn uri_targets_us(&self, u: &Uri<'_>) -> bool {
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
                same_name(d, &self.cfg.domain) || self.cfg.aliases.iter().any(|a| same_name(a, d))
            }
            h => h.ip().is_some_and(|ip| self.ip_is_domain(ip)),
        };
        if names_domain {
            return s.port.is_none_or(port_ok);
        }
        let Some(ip) = s.host.ip() else {
            return false;
        };
        let default = match transport {
            Some(t) => t,
            None if tls => Transport::Tls,
            None => Transport::Udp,
        };
        self.ip_is_us(ip) && port_ok(s.port.unwrap_or(default.default_port()))
    }

    /// The domain (or an alias) is this IP address written as a literal.
    pub(super) fn ip_is_domain(&self, ip: IpAddr) -> bool {
        self.literal.domain == Some(ip) || self.literal.aliases.contains(&ip)
    }

    /// A URI that addresses this server itself (host and, where given, port).
    pub(super) fn uri_is_us(&self, u: &Uri<'_>) -> bool {
        let Uri::Sip(s) = u else { return false };
        if !self.host_is_us(&s.host) {
            return false;
        }
        match (&s.host, s.port) {
            (Host::Domain(d), None) if same_name(d, &self.cfg.domain) => true,
            (_, port) => {
                let t = if s.secure {
                    Transport::Tls
                } else {
                    Transport::Udp
                };
                let p = port.unwrap_or(t.default_port());
                self.cfg.local.iter().any(|(_, a)| a.port() == p) || self.cfg.local.is_empty()
            }
        }
    }

    pub(super) fn via_is_us(&self, v: &Via<'_>) -> bool {
        self.host_is_us(&v.host)
            && self.cfg.local.iter().any(|(_, a)| {
                // a Via's sent-by without a port means its transport's default
                // (5061 for TLS: RFC 3261 section 18.2.2)
                let t = Transport::parse(&v.transport).unwrap_or(Transport::Udp);
                a.port() == v.port.unwrap_or(t.default_port())
            })
    }

    pub(super) fn to_tag(&self, m: &Message<'_>) -> String {
        let h = hash64(
            &[
                m.call_id().unwrap_or("").as_bytes(),
                m.from().and_then(|f| f.tag()).unwrap_or("").as_bytes(),
            ],
            self.salt,
        );
        // `{h:016x}` without `core::fmt`
        let mut t = String::with_capacity(16);
        crate::mac::push_hex_u64(&mut t, h, 16);
        t
    }

    // ---------------------------------------------------------------- input
}
