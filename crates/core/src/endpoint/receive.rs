//! The entry of a message: keep-alives passed over, the parse (done here, or by the
//! shell with any shard's endpoint before it picks the shard), malformed requests
//! answered from what could be salvaged, then requests and responses to their handlers.

use std::time::Instant;

use palisade_sip::{parse_datagram, Message, ParseError};
use tracing::debug;

use super::salvage::bad_request_salvage;
use super::{Endpoint, Handling};
use crate::types::{Peer, Transport};

/// Only CR, LF and NUL bytes: a keep-alive (RFC 5626 pings, and the NUL-padded ones some
/// phones send), answered by nothing and counted as no message.
pub fn is_keepalive(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| matches!(b, b'\r' | b'\n' | 0))
}

impl Endpoint {
    /// One datagram (UDP) or one framed message (TCP/TLS) from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: Peer, bytes: &[u8]) {
        if is_keepalive(bytes) {
            return;
        }
        let parsed = self.parse(bytes);
        self.handle_parsed(now, from, bytes, parsed);
    }

    /// `bytes` parsed within this endpoint's limits, as [`Endpoint::handle_datagram`]
    /// parses them: a shell that must look at a message before it picks the shard to run
    /// it on (its Call-ID) parses it once, with any shard's endpoint (they share their
    /// limits), and hands the result to [`Endpoint::handle_parsed`] of the shard it picks.
    pub fn parse<'a>(&self, bytes: &'a [u8]) -> Result<Message<'a>, ParseError> {
        parse_datagram(bytes, &self.cfg.limits)
    }

    /// One message from `from`, already parsed from `bytes` by [`Endpoint::parse`] (of
    /// this endpoint or another with the same limits): handled exactly as
    /// [`Endpoint::handle_datagram`] handles `bytes`.
    pub fn handle_parsed(
        &mut self,
        now: Instant,
        from: Peer,
        bytes: &[u8],
        parsed: Result<Message<'_>, ParseError>,
    ) {
        if is_keepalive(bytes) {
            return;
        }
        self.handling = Handling {
            datagram: (from.transport == Transport::Udp).then_some((now, bytes.len())),
            ip: Some(from.addr.ip()),
            authenticated: None,
            source: Some(from.addr),
            transport: from.transport.param(),
            txn: None,
            fingerprint: 0,
            sdp_habits: None,
            user_agent: None,
            blocked: None,
            network_restricted: false,
        };
        self.handle_message(now, from, bytes, parsed);
        self.handling = Handling::default();
    }

    fn handle_message(
        &mut self,
        now: Instant,
        from: Peer,
        bytes: &[u8],
        parsed: Result<Message<'_>, ParseError>,
    ) {
        match parsed {
            Err(e) => {
                self.stats.malformed += 1;
                if e.is_response {
                    debug!(peer = %from.addr, error = %e, "dropped malformed response");
                } else if let Some(resp) = bad_request_salvage(bytes, &e) {
                    debug!(peer = %from.addr, status = e.status(), error = %e, "refused malformed request");
                    self.send_answer(from, resp);
                } else {
                    debug!(peer = %from.addr, error = %e, "dropped malformed request (no Via/From/To/Call-ID/CSeq to answer to)");
                }
            }
            Ok(m) if m.is_request() => self.on_request(now, from, m, bytes),
            Ok(m) => self.on_response(now, from, m, bytes),
        }
    }
}
