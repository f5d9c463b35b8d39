//! Transport concerns (RFC 3261 section 18, RFC 3581): fixing the top Via of what arrives
//! (received/rport), where a response goes by its Via, sending (with the answer budget
//! for unproven UDP sources), and where a binding or URI is reached.

use super::*;

/// RFC 3581 and RFC 3261 section 18.2.1: note where the request really came from.
/// A WebSocket client's sent-by is a made-up `.invalid` name (RFC 7118 section 5.4):
/// its Via always gets `received` and `rport`, so that a response relayed by the Via
/// alone (a 2xx retransmission) finds the client's connection by its address.
pub(super) fn fix_top_via(m: &mut Message<'_>, from: Peer) {
    if let Some(Header::Via(v)) = m.headers.iter_mut().find(|h| matches!(h, Header::Via(_))) {
        if from.transport.websocket() && v.param("rport").is_none() {
            v.params.push(Param::new("rport", None));
        }
        let ip = from.addr.ip();
        let differs = v.host.ip() != Some(ip);
        if differs && v.param("received").is_none() {
            v.params
                .push(Param::new("received", Some(Cow::Owned(ip_text(ip)))));
        }
        if let Some(p) = v
            .params
            .iter_mut()
            .find(|p| p.name.eq_ignore_ascii_case("rport"))
        {
            if p.value.is_none() {
                let mut port = String::with_capacity(5);
                palisade_sip::push_num(&mut port, u64::from(from.addr.port()));
                p.value = Some(Cow::Owned(port));
                if v.param("received").is_none() {
                    v.params
                        .push(Param::new("received", Some(Cow::Owned(ip_text(ip)))));
                }
            }
        }
    }
}

/// An address as text, without `core::fmt` for the common IPv4 case.
fn ip_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => {
            let mut out = String::with_capacity(15);
            Host::V4(a).write(&mut out);
            out
        }
        IpAddr::V6(a) => a.to_string(),
    }
}

/// `transport:ip:port` for an event, without `core::fmt` for the common IPv4 case.
pub(super) fn peer_text(p: Peer) -> String {
    let mut out = String::with_capacity(32);
    out.push_str(p.transport.param());
    out.push(':');
    match p.addr {
        SocketAddr::V4(a) => {
            Host::V4(*a.ip()).write(&mut out);
            out.push(':');
            palisade_sip::push_num(&mut out, u64::from(a.port()));
        }
        SocketAddr::V6(a) => out.push_str(&a.to_string()),
    }
    out
}

/// Where a response goes according to a Via (received and rport win over sent-by).
pub(super) fn via_dest(v: &Via<'_>) -> Option<Peer> {
    let transport = Transport::parse(&v.transport)?;
    let ip: IpAddr = match v.received() {
        Some(r) => r.trim_matches(['[', ']']).parse().ok()?,
        None => v.host.ip()?,
    };
    let port = v
        .rport()
        .flatten()
        .or(v.port)
        .unwrap_or(transport.default_port());
    Some(Peer {
        transport,
        addr: SocketAddr::new(ip, port),
        conn: None,
    })
}

impl Endpoint {
    /// Sends an answer this server made up itself to the sender of the current
    /// request. Over UDP, to a sender that did not authenticate, an error answer spends
    /// the source's budget and must not be larger than the request (a digest challenge:
    /// not larger than the request plus `challenge_allowance`); see [`crate::ratelimit`].
    pub(super) fn send_answer(&mut self, to: Peer, bytes: Vec<u8>) {
        // `SIP/2.0 NNN`: this server wrote the status line
        let status = bytes
            .get(8..11)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| d.parse::<u16>().ok())
            .unwrap_or(0);
        let Some((now, len)) = self.handling.datagram else {
            self.stats.response_sent(status);
            self.send(to, bytes);
            return;
        };
        if to.transport != Transport::Udp || self.handling.authenticated.is_some() {
            self.stats.response_sent(status);
            self.send(to, bytes);
            return;
        }
        if status >= 300 && !self.budget.allow(now, to.addr.ip()) {
            self.stats.answers_rate_limited += 1;
            debug!(peer = %to.addr, status, "answer not sent: the source's answer budget is spent");
            if self.cfg.observe && self.budget.report_due(now, to.addr.ip()) {
                self.probe(now, palisade_detect::ProbeKind::Flood, String::new(), "");
            }
            return;
        }
        if status < 300 {
            self.stats.response_sent(status);
            self.send(to, bytes);
            return;
        }
        // A challenge may exceed the request by `challenge_allowance`: a stock client's
        // first REGISTER (SIPp's is 330 bytes) is smaller than a 401 with one challenge.
        let max = if matches!(status, 401 | 407) {
            len + self.cfg.challenge_allowance
        } else {
            len + self.cfg.answer_allowance
        };
        let bytes = shrink(bytes, max);
        if bytes.len() > max {
            self.stats.answers_too_large += 1;
            debug!(peer = %to.addr, status, request = len, answer = bytes.len(), "answer not sent: larger than the request (no amplification)");
            return;
        }
        self.stats.response_sent(status);
        self.send(to, bytes);
    }

    pub(super) fn send(&mut self, mut to: Peer, bytes: Vec<u8>) {
        if to.transport.reliable() && to.conn.is_none() {
            to.conn = self.aliases.get(&(to.transport, to.addr)).copied();
        }
        self.out.push_back(Transmit { to, bytes });
    }

    pub(super) fn resolve(&self, u: &Uri<'_>) -> Option<Peer> {
        let Uri::Sip(s) = u else { return None };
        let transport = match s.transport().and_then(Transport::parse) {
            Some(t) => t,
            None if s.secure => Transport::Tls,
            None => Transport::Udp,
        };
        let ip: IpAddr = match &s.host {
            Host::Domain(d) if d.eq_ignore_ascii_case("localhost") => IpAddr::from([127, 0, 0, 1]),
            h => h.ip()?,
        };
        let port = s.port.unwrap_or(transport.default_port());
        Some(Peer {
            transport,
            addr: SocketAddr::new(ip, port),
            conn: None,
        })
    }

    /// Where to send a request for a binding: the Contact's address when it is on the
    /// host the REGISTER came from over the same transport (one process may register for
    /// another port), otherwise the REGISTER's source, i.e. its NAT mapping or its
    /// TCP/TLS connection (RFC 3581 reasoning).
    pub(super) fn binding_dest(&self, b: &Located) -> Peer {
        if !b.path.is_empty() {
            // RFC 3327: the request goes through the Path, whose first hop is where the
            // REGISTER came from (an edge proxy, or the cluster node holding the flow).
            return b.source;
        }
        self.contact_or_source(&b.uri, b.source)
    }

    /// The Contact's address when it is on the host `source` is, over the same
    /// transport, at another port; otherwise `source` (see [`Endpoint::binding_dest`]).
    pub(super) fn contact_or_source(&self, contact: &Uri<'_>, source: Peer) -> Peer {
        if source.transport.websocket() {
            // RFC 7118: only the client's own connection reaches it
            return source;
        }
        match self.resolve(contact) {
            Some(p)
                if p.addr.ip() == source.addr.ip()
                    && p.transport == source.transport
                    && p.addr != source.addr =>
            {
                p
            }
            _ => source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn via(text: &str) -> Via<'static> {
        let raw = format!(
            "SIP/2.0 200 OK\r\nVia: {text}\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        );
        let m = parse_datagram(raw.as_bytes(), &Limits::default())
            .unwrap()
            .into_owned();
        m.top_via().unwrap().clone()
    }

    #[test]
    fn a_response_goes_where_the_via_says() {
        let p = via_dest(&via("SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK1")).unwrap();
        assert_eq!(p.addr, "192.0.2.1:5070".parse().unwrap());
        // received and rport win over sent-by (RFC 3581)
        let p = via_dest(&via(
            "SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1;received=192.0.2.9;rport=40000",
        ))
        .unwrap();
        assert_eq!(p.addr, "192.0.2.9:40000".parse().unwrap());
        // no port: the transport's default, 5061 for TLS
        let p = via_dest(&via("SIP/2.0/TLS 192.0.2.1;branch=z9hG4bK1")).unwrap();
        assert_eq!((p.transport, p.addr.port()), (Transport::Tls, 5061));
        let p = via_dest(&via("SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK1")).unwrap();
        assert_eq!(p.addr.port(), 5060);
        // a name without received cannot be reached without DNS
        assert!(via_dest(&via("SIP/2.0/UDP pc.example.com;branch=z9hG4bK1")).is_none());
    }
}
