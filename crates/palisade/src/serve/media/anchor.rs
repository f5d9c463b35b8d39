//! The core's media hook (`palisade_core::MediaAnchor`), one per shard: it reads the
//! offer and the answer of each call (the shield's canonical SDP), takes relay ports
//! for every media line it can anchor, binds their sockets before the rewritten offer
//! leaves (so that nothing sent to them is lost), writes the relay's address and ports
//! into the SDP, and tells the relay thread what to expect.
//!
//! What is anchored: media lines with a port and an RTP profile (`RTP/AVP`, `RTP/AVPF`,
//! `RTP/SAVP`, `RTP/SAVPF`) and no ICE. An offer with ICE (WebRTC: DTLS-SRTP, ICE,
//! BUNDLE) passes through as the shield rebuilt it: anchoring it would mean answering
//! ICE checks as an ICE-lite agent and keeping the DTLS handshake end to end, which the
//! relay does not do yet; the phones' own ICE and DTLS protect that media, and the
//! shield still checks its description.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;

use palisade_core::{MediaAnchor, Peer};
use palisade_media::{
    derive_budget, CodecInfo, Expected, MediaKind, PayloadTypes, PortPair, RtpRules, Srtp,
    StreamConfig,
};
use palisade_sdp::{Attribute, Connection, Media, Session};
use tracing::{debug, warn};

use super::types::{Leg, MediaCmd, Shared};

/// A relay pair's port numbers (the pair itself goes to the relay thread, which puts
/// it back in the pool once its sockets are closed).
#[derive(Clone, Copy)]
struct Ports {
    rtp: u16,
    rtcp: u16,
}

impl Ports {
    fn of(p: &PortPair) -> Ports {
        Ports {
            rtp: p.rtp(),
            rtcp: p.rtcp(),
        }
    }
}

/// The relay ports of one call: who called (the INVITE's transport source), and per
/// anchored media line its index and its caller-facing and callee-facing ports.
#[derive(Clone)]
struct CallPorts {
    caller: SocketAddr,
    lines: Vec<(usize, Ports, Ports)>,
}

impl CallPorts {
    /// An SDP written by the caller goes to the callee (and names the callee-facing
    /// ports), one by the callee the other way.
    fn by_caller(&self, author: &Peer) -> bool {
        author.addr == self.caller
    }
}

/// One shard's anchor: the relay ports of its calls, by Call-ID.
pub(crate) struct Anchor {
    shared: Arc<Shared>,
    calls: HashMap<String, CallPorts>,
}

impl Anchor {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Anchor {
            shared,
            calls: HashMap::new(),
        }
    }

    fn send(&self, cmd: MediaCmd) {
        self.shared.relay.send(cmd);
    }
}

/// Whether the relay anchors this media line.
fn anchorable(m: &Media<'_>) -> bool {
    m.port != 0
        && matches!(
            m.proto.to_ascii_uppercase().as_str(),
            "RTP/AVP" | "RTP/AVPF" | "RTP/SAVP" | "RTP/SAVPF"
        )
}

fn has_ice(s: &Session<'_>) -> bool {
    let ice = |a: &Attribute<'_>| {
        matches!(
            a,
            Attribute::Candidate(_) | Attribute::IceUfrag(_) | Attribute::IceLite
        )
    };
    s.attributes.iter().any(ice) || s.media.iter().any(|m| m.attributes.iter().any(ice))
}

/// The address a party wrote for a media line: its `c=` (the line's, or the session's)
/// and `m=` port; its `a=rtcp`; whether it muxes RTCP.
fn party(s: &Session<'_>, m: &Media<'_>) -> (Option<SocketAddr>, Option<SocketAddr>, bool) {
    let ip = m
        .connections
        .first()
        .or(s.connection.as_ref())
        .and_then(|c| c.address.parse::<IpAddr>().ok());
    let rtp = ip.map(|ip| SocketAddr::new(ip, m.port));
    let mut rtcp = None;
    let mut mux = false;
    for a in &m.attributes {
        match a {
            Attribute::Rtcp { port, address } => {
                let at = address
                    .as_deref()
                    .and_then(|a| a.rsplit(' ').next())
                    .and_then(|a| a.parse::<IpAddr>().ok())
                    .or(ip);
                rtcp = at.map(|ip| SocketAddr::new(ip, *port));
            }
            Attribute::RtcpMux => mux = true,
            _ => {}
        }
    }
    (rtp, rtcp, mux)
}

/// The stream rules for what a party negotiated on a media line.
pub(crate) fn stream_config(m: &Media<'_>, expected: Expected, mux: bool) -> StreamConfig {
    let mut pts = PayloadTypes::new(&[]);
    for f in &m.formats {
        if let Ok(pt) = f.parse::<u8>() {
            pts.insert(pt);
        }
    }
    let mut rules = RtpRules::new(pts);
    rules.rtcp_mux = mux;
    if m.proto.to_ascii_uppercase().contains("SAVP") {
        rules.srtp = Some(Srtp::default());
    }
    let mut cfg = StreamConfig::new(rules, expected);
    let codecs: Vec<CodecInfo<'_>> = m
        .attributes
        .iter()
        .filter_map(|a| match a {
            Attribute::Rtpmap {
                pt,
                encoding,
                clock,
                channels,
            } => Some(CodecInfo {
                payload_type: *pt,
                name: encoding,
                clock_rate: *clock,
                channels: channels.unwrap_or(1),
            }),
            _ => None,
        })
        .collect();
    let ptime = m.attributes.iter().find_map(|a| match a {
        Attribute::Ptime(p) => p.parse::<u32>().ok(),
        _ => None,
    });
    let kind = if m.media.eq_ignore_ascii_case("video") {
        MediaKind::Video
    } else {
        MediaKind::Audio
    };
    cfg.rtp_budget = Some(derive_budget(kind, &codecs, ptime, None));
    cfg
}

/// Points a media line at the relay: its `c=`, port and `a=rtcp`.
fn rewrite(m: &mut Media<'_>, at: IpAddr, pair: Ports) {
    let addrtype = if at.is_ipv4() { "IP4" } else { "IP6" };
    m.connections = vec![Connection {
        nettype: Cow::Borrowed("IN"),
        addrtype: Cow::Borrowed(addrtype),
        address: Cow::Owned(at.to_string()),
        ttl: None,
        count: None,
    }];
    m.port = pair.rtp;
    for a in m.attributes.iter_mut() {
        if let Attribute::Rtcp { port, address } = a {
            *port = pair.rtcp;
            if address.is_some() {
                *address = Some(Cow::Owned(format!("IN {addrtype} {at}")));
            }
        }
    }
}

/// The session-level `c=` and `o=` of a description some of whose media the relay
/// anchors now name the relay, so that neither party learns the other's address; a
/// media line the relay does not anchor keeps the address it had (written on the line).
fn hide_session(s: &mut Session<'_>, at: IpAddr) {
    let addrtype = if at.is_ipv4() { "IP4" } else { "IP6" };
    if let Some(c) = s.connection.clone() {
        for m in s.media.iter_mut() {
            if m.port != 0 && m.connections.is_empty() {
                m.connections.push(c.clone());
            }
        }
        s.connection = Some(Connection {
            nettype: Cow::Borrowed("IN"),
            addrtype: Cow::Borrowed(addrtype),
            address: Cow::Owned(at.to_string()),
            ttl: None,
            count: None,
        });
    }
    s.origin.addrtype = Cow::Borrowed(addrtype);
    s.origin.address = Cow::Owned(at.to_string());
}

/// Binds the sockets of a relay pair (the RTCP one unless the line muxes).
fn bind(ip: IpAddr, pair: &PortPair, mux: bool) -> std::io::Result<(UdpSocket, Option<UdpSocket>)> {
    let rtp = UdpSocket::bind((ip, pair.rtp()))?;
    rtp.set_nonblocking(true)?;
    let rtcp = if mux {
        None
    } else {
        let s = UdpSocket::bind((ip, pair.rtcp()))?;
        s.set_nonblocking(true)?;
        Some(s)
    };
    Ok((rtp, rtcp))
}

impl Anchor {
    /// A pair whose sockets bind (a port another program holds is skipped: tried a few
    /// times, then given up).
    fn take_pair(&self, mux: bool) -> Result<(PortPair, (UdpSocket, Option<UdpSocket>)), String> {
        let mut pool = self
            .shared
            .pool
            .lock()
            .map_err(|_| "relay pool poisoned".to_string())?;
        let mut skipped = Vec::new();
        let got = loop {
            let pair = pool
                .allocate()
                .map_err(|_| "no media relay ports left (media.ports)".to_string())?;
            match bind(self.shared.bind, &pair, mux) {
                Ok(s) => break Ok((pair, s)),
                Err(e) if skipped.len() < 256 => {
                    debug!(port = pair.rtp(), error = %e, "relay port taken by another program; skipped");
                    skipped.push(pair);
                }
                Err(e) => {
                    skipped.push(pair);
                    break Err(format!("binding relay ports failed: {e}"));
                }
            }
        };
        for p in skipped {
            let _ = pool.release(p);
        }
        got
    }

    fn release(&self, pairs: Vec<PortPair>) {
        if let Ok(mut pool) = self.shared.pool.lock() {
            for p in pairs {
                let _ = pool.release(p);
            }
        }
    }

    /// A description of a call already anchored (an answer, or a new offer of either
    /// side): pointed at the relay ports its reader uses, and the relay told where its
    /// author now is.
    fn update(&mut self, call_id: &str, author: &Peer, sdp: &[u8]) -> Option<Vec<u8>> {
        let call = self.calls.get(call_id)?.clone();
        let mut s = palisade_sdp::parse(sdp, &self.shared.limits).ok()?;
        let session = s.clone();
        let by_caller = call.by_caller(author);
        let mut lines = Vec::new();
        for (i, pa, pb) in &call.lines {
            let Some(m) = s.media.get_mut(*i) else {
                continue;
            };
            if !anchorable(m) {
                continue;
            }
            let (rtp, rtcp, mux) = party(&session, session.media.get(*i).unwrap_or(m));
            let expected = Expected {
                rtp,
                rtcp,
                signalling: Some(author.addr.ip()),
            };
            lines.push((*i, stream_config(m, expected, mux)));
            rewrite(m, self.shared.advertise, if by_caller { *pb } else { *pa });
        }
        self.send(MediaCmd::Expect {
            call: call_id.to_string(),
            caller_side: by_caller,
            lines,
        });
        hide_session(&mut s, self.shared.advertise);
        Some(s.to_string_canonical().into_bytes())
    }
}

impl MediaAnchor for Anchor {
    fn offer(
        &mut self,
        call_id: &str,
        offerer: &Peer,
        account: Option<&str>,
        sdp: &[u8],
    ) -> Result<Option<Vec<u8>>, String> {
        let Ok(mut s) = palisade_sdp::parse(sdp, &self.shared.limits) else {
            return Ok(None); // (the shield wrote it: it parses; nothing to anchor else)
        };
        if has_ice(&s) || !s.media.iter().any(anchorable) {
            return Ok(None);
        }
        if self.calls.contains_key(call_id) {
            // a new offer in the call (re-INVITE, either side): same ports
            return Ok(self.update(call_id, offerer, sdp));
        }
        let session = s.clone();
        let mut legs = Vec::new();
        let mut pairs = Vec::new();
        for (i, m) in s.media.iter_mut().enumerate() {
            if !anchorable(m) {
                continue;
            }
            let (rtp, rtcp, mux) = party(&session, session.media.get(i).unwrap_or(m));
            let expected = Expected {
                rtp,
                rtcp,
                signalling: Some(offerer.addr.ip()),
            };
            let caller = stream_config(m, expected, mux);
            let taken = self.take_pair(mux).and_then(|a| match self.take_pair(mux) {
                Ok(b) => Ok((a, b)),
                Err(e) => {
                    self.release(vec![a.0]);
                    Err(e)
                }
            });
            let ((pa, sa), (pb, sb)) = match taken {
                Ok(x) => x,
                Err(e) => {
                    warn!(call_id, error = %e, "media relay: call refused");
                    let held: Vec<PortPair> = legs
                        .into_iter()
                        .flat_map(|l: Leg| [l.caller_pair, l.callee_pair])
                        .collect();
                    self.release(held);
                    return Err(e);
                }
            };
            rewrite(m, self.shared.advertise, Ports::of(&pb));
            pairs.push((i, Ports::of(&pa), Ports::of(&pb)));
            legs.push(Leg {
                line: i,
                caller_pair: pa,
                callee_pair: pb,
                caller_sockets: sa,
                callee_sockets: sb,
                caller,
                mux,
            });
        }
        self.calls.insert(
            call_id.to_string(),
            CallPorts {
                caller: offerer.addr,
                lines: pairs,
            },
        );
        self.send(MediaCmd::Offer {
            call: call_id.to_string(),
            account: account.map(str::to_string),
            legs,
        });
        hide_session(&mut s, self.shared.advertise);
        Ok(Some(s.to_string_canonical().into_bytes()))
    }

    fn answer(&mut self, call_id: &str, answerer: &Peer, sdp: &[u8]) -> Option<Vec<u8>> {
        self.update(call_id, answerer, sdp)
    }

    fn answered(&mut self, call_id: &str) {
        if self.calls.contains_key(call_id) {
            self.send(MediaCmd::Answered {
                call: call_id.to_string(),
            });
        }
    }

    fn ended(&mut self, call_id: &str) {
        if self.calls.remove(call_id).is_some() {
            // (the relay closes the sockets, then puts the ports back)
            self.send(MediaCmd::End {
                call: call_id.to_string(),
            });
        }
    }
}
