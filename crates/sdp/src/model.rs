//! The session description model and its canonical writer.
use std::borrow::Cow;

use crate::attr::Attribute;
use crate::scan::num;

/// The `o=` line (RFC 8866 section 5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin<'a> {
    /// The originator's user name (`-` when none).
    pub username: Cow<'a, str>,
    /// The session id.
    pub session_id: u64,
    /// The session version (increased by each new offer).
    pub session_version: u64,
    /// `IN`
    pub nettype: Cow<'a, str>,
    /// `IP4` or `IP6`
    pub addrtype: Cow<'a, str>,
    /// The originator's address.
    pub address: Cow<'a, str>,
}

/// A `c=` line (RFC 8866 section 5.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection<'a> {
    /// `IN`
    pub nettype: Cow<'a, str>,
    /// `IP4` or `IP6`
    pub addrtype: Cow<'a, str>,
    /// The connection address.
    pub address: Cow<'a, str>,
    /// Multicast IPv4 TTL (`/ttl`).
    pub ttl: Option<u8>,
    /// Number of addresses (`/count`).
    pub count: Option<u32>,
}

/// A `b=` line (RFC 8866 section 5.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bandwidth<'a> {
    /// `AS`, `CT`, `TIAS`, ...
    pub bwtype: Cow<'a, str>,
    /// The bandwidth (kbit/s, or bit/s for `TIAS`).
    pub value: u64,
}

/// A `t=` line and its `r=` lines (RFC 8866 sections 5.9, 5.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing<'a> {
    /// Start time (NTP seconds; 0: unbounded).
    pub start: u64,
    /// Stop time (NTP seconds; 0: unbounded).
    pub stop: u64,
    /// `r=` lines, whitespace-normalised.
    pub repeats: Vec<Cow<'a, str>>,
}

/// A media description: the `m=` line and the lines under it (RFC 8866 section 5.14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media<'a> {
    /// `audio`, `video`, `application`, ...
    pub media: Cow<'a, str>,
    /// The transport port.
    pub port: u16,
    /// The number of ports (`/count`), when given.
    pub port_count: Option<u16>,
    /// The transport protocol (`RTP/AVP`, `UDP/TLS/RTP/SAVPF`, ...).
    pub proto: Cow<'a, str>,
    /// The media formats (payload types for RTP).
    pub formats: Vec<Cow<'a, str>>,
    /// `i=`
    pub info: Option<Cow<'a, str>>,
    /// `c=` lines of this medium.
    pub connections: Vec<Connection<'a>>,
    /// `b=` lines of this medium.
    pub bandwidths: Vec<Bandwidth<'a>>,
    /// `k=`
    pub key: Option<Cow<'a, str>>,
    /// `a=` lines of this medium, in order.
    pub attributes: Vec<Attribute<'a>>,
}

/// A session description (RFC 8866 section 5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session<'a> {
    /// `o=`
    pub origin: Origin<'a>,
    /// `s=`
    pub name: Cow<'a, str>,
    /// `i=`
    pub info: Option<Cow<'a, str>>,
    /// `u=`
    pub uri: Option<Cow<'a, str>>,
    /// `e=` lines.
    pub emails: Vec<Cow<'a, str>>,
    /// `p=` lines.
    pub phones: Vec<Cow<'a, str>>,
    /// The session-level `c=`.
    pub connection: Option<Connection<'a>>,
    /// Session-level `b=` lines.
    pub bandwidths: Vec<Bandwidth<'a>>,
    /// `t=` lines, each with its `r=` lines.
    pub times: Vec<Timing<'a>>,
    /// `z=`
    pub zone: Option<Cow<'a, str>>,
    /// The session-level `k=`.
    pub key: Option<Cow<'a, str>>,
    /// Session-level `a=` lines, in order.
    pub attributes: Vec<Attribute<'a>>,
    /// The media descriptions, in order.
    pub media: Vec<Media<'a>>,
}

fn line(out: &mut String, t: char, v: &str) {
    out.push(t);
    out.push('=');
    out.push_str(v);
    out.push_str("\r\n");
}

impl Connection<'_> {
    fn write(&self, out: &mut String) {
        out.push_str("c=");
        out.push_str(&self.nettype);
        out.push(' ');
        out.push_str(&self.addrtype);
        out.push(' ');
        out.push_str(&self.address);
        if let Some(t) = self.ttl {
            out.push('/');
            num(out, u64::from(t));
        }
        if let Some(c) = self.count {
            out.push('/');
            num(out, u64::from(c));
        }
        out.push_str("\r\n");
    }
}

fn write_bw(b: &[Bandwidth<'_>], out: &mut String) {
    for b in b {
        out.push_str("b=");
        out.push_str(&b.bwtype);
        out.push(':');
        num(out, b.value);
        out.push_str("\r\n");
    }
}

/// Writes the `a=` lines; returns the longest `name[:value]` written.
fn write_attrs(a: &[Attribute<'_>], out: &mut String) -> usize {
    let mut longest = 0;
    for a in a {
        out.push_str("a=");
        let start = out.len();
        a.write(out);
        longest = longest.max(out.len() - start);
        out.push_str("\r\n");
    }
    longest
}

impl Session<'_> {
    /// The canonical form: the RFC 8866 line order, single spaces, CRLF.
    pub fn to_string_canonical(&self) -> String {
        let mut out = String::with_capacity(512);
        self.write_canonical(&mut out);
        out
    }

    /// Appends the canonical form to `out` (a caller that knows the size it needs
    /// reserves it once, and nothing is copied afterwards). Returns the length of the
    /// longest attribute written (its `name[:value]`, what follows `a=`), so that a
    /// bound on it needs no second pass over the text.
    pub fn write_canonical(&self, out: &mut String) -> usize {
        line(out, 'v', "0");
        let o = &self.origin;
        out.push_str("o=");
        out.push_str(&o.username);
        out.push(' ');
        num(out, o.session_id);
        out.push(' ');
        num(out, o.session_version);
        out.push(' ');
        out.push_str(&o.nettype);
        out.push(' ');
        out.push_str(&o.addrtype);
        out.push(' ');
        out.push_str(&o.address);
        out.push_str("\r\n");
        line(out, 's', &self.name);
        if let Some(i) = &self.info {
            line(out, 'i', i);
        }
        if let Some(u) = &self.uri {
            line(out, 'u', u);
        }
        for e in &self.emails {
            line(out, 'e', e);
        }
        for p in &self.phones {
            line(out, 'p', p);
        }
        if let Some(c) = &self.connection {
            c.write(out);
        }
        write_bw(&self.bandwidths, out);
        for t in &self.times {
            out.push_str("t=");
            num(out, t.start);
            out.push(' ');
            num(out, t.stop);
            out.push_str("\r\n");
            for r in &t.repeats {
                line(out, 'r', r);
            }
        }
        if let Some(z) = &self.zone {
            line(out, 'z', z);
        }
        if let Some(k) = &self.key {
            line(out, 'k', k);
        }
        let mut longest = write_attrs(&self.attributes, out);
        for m in &self.media {
            out.push_str("m=");
            out.push_str(&m.media);
            out.push(' ');
            num(out, u64::from(m.port));
            if let Some(c) = m.port_count {
                out.push('/');
                num(out, u64::from(c));
            }
            out.push(' ');
            out.push_str(&m.proto);
            for f in &m.formats {
                out.push(' ');
                out.push_str(f);
            }
            out.push_str("\r\n");
            if let Some(i) = &m.info {
                line(out, 'i', i);
            }
            for c in &m.connections {
                c.write(out);
            }
            write_bw(&m.bandwidths, out);
            if let Some(k) = &m.key {
                line(out, 'k', k);
            }
            longest = longest.max(write_attrs(&m.attributes, out));
        }
        longest
    }
}

impl Attribute<'_> {
    /// The attribute's name as written after `a=`.
    pub fn name(&self) -> &str {
        match self {
            Attribute::Rtpmap { .. } => "rtpmap",
            Attribute::Fmtp { .. } => "fmtp",
            Attribute::Ptime(_) => "ptime",
            Attribute::MaxPtime(_) => "maxptime",
            Attribute::Direction(d) => d.as_str(),
            Attribute::Rtcp { .. } => "rtcp",
            Attribute::RtcpMux => "rtcp-mux",
            Attribute::RtcpRsize => "rtcp-rsize",
            Attribute::RtcpFb { .. } => "rtcp-fb",
            Attribute::IceUfrag(_) => "ice-ufrag",
            Attribute::IcePwd(_) => "ice-pwd",
            Attribute::IceOptions(_) => "ice-options",
            Attribute::IceLite => "ice-lite",
            Attribute::Candidate(_) => "candidate",
            Attribute::EndOfCandidates => "end-of-candidates",
            Attribute::Fingerprint { .. } => "fingerprint",
            Attribute::Setup(_) => "setup",
            Attribute::Mid(_) => "mid",
            Attribute::Group { .. } => "group",
            Attribute::Msid { .. } => "msid",
            Attribute::MsidSemantic(_) => "msid-semantic",
            Attribute::Ssrc { .. } => "ssrc",
            Attribute::SsrcGroup { .. } => "ssrc-group",
            Attribute::Extmap { .. } => "extmap",
            Attribute::Crypto { .. } => "crypto",
            Attribute::Label(_) => "label",
            Attribute::Framerate(_) => "framerate",
            Attribute::Content(_) => "content",
            Attribute::Other { name, .. } => name,
        }
    }

    /// Writes `name[:value]` (without `a=` and line end), straight into `out`: no
    /// temporary strings and no `core::fmt` (this runs for every attribute of every
    /// offer and answer the proxy forwards).
    pub fn write(&self, out: &mut String) {
        out.push_str(self.name());
        match self {
            Attribute::Rtpmap {
                pt,
                encoding,
                clock,
                channels,
            } => {
                out.push(':');
                num(out, u64::from(*pt));
                out.push(' ');
                out.push_str(encoding);
                out.push('/');
                num(out, u64::from(*clock));
                if let Some(c) = channels {
                    out.push('/');
                    num(out, u64::from(*c));
                }
            }
            Attribute::Fmtp { pt, params } => {
                out.push(':');
                out.push_str(pt);
                out.push(' ');
                for (i, (k, v)) in params.iter().enumerate() {
                    if i > 0 {
                        out.push(';');
                    }
                    out.push_str(k);
                    if let Some(v) = v {
                        out.push('=');
                        out.push_str(v);
                    }
                }
            }
            Attribute::Ptime(x)
            | Attribute::MaxPtime(x)
            | Attribute::IceUfrag(x)
            | Attribute::IcePwd(x)
            | Attribute::Setup(x)
            | Attribute::Mid(x)
            | Attribute::MsidSemantic(x)
            | Attribute::Label(x)
            | Attribute::Framerate(x) => {
                out.push(':');
                out.push_str(x);
            }
            Attribute::Direction(_)
            | Attribute::RtcpMux
            | Attribute::RtcpRsize
            | Attribute::IceLite
            | Attribute::EndOfCandidates => {}
            Attribute::Rtcp { port, address } => {
                out.push(':');
                num(out, u64::from(*port));
                if let Some(a) = address {
                    out.push(' ');
                    out.push_str(a);
                }
            }
            Attribute::RtcpFb { pt, value } => {
                out.push(':');
                out.push_str(pt);
                out.push(' ');
                out.push_str(value);
            }
            Attribute::IceOptions(o) => {
                out.push(':');
                join(out, o, ' ');
            }
            Attribute::Candidate(c) => {
                out.push(':');
                out.push_str(&c.foundation);
                out.push(' ');
                num(out, u64::from(c.component));
                out.push(' ');
                out.push_str(&c.transport);
                out.push(' ');
                num(out, u64::from(c.priority));
                out.push(' ');
                out.push_str(&c.address);
                out.push(' ');
                num(out, u64::from(c.port));
                out.push_str(" typ ");
                out.push_str(&c.typ);
                if let Some(r) = &c.raddr {
                    out.push_str(" raddr ");
                    out.push_str(r);
                }
                if let Some(r) = c.rport {
                    out.push_str(" rport ");
                    num(out, u64::from(r));
                }
                for (k, v) in &c.extensions {
                    out.push(' ');
                    out.push_str(k);
                    out.push(' ');
                    out.push_str(v);
                }
            }
            Attribute::Fingerprint { hash, value } => {
                out.push(':');
                out.push_str(hash);
                out.push(' ');
                out.push_str(value);
            }
            Attribute::Group { semantics, ids } => {
                out.push(':');
                out.push_str(semantics);
                for i in ids {
                    out.push(' ');
                    out.push_str(i);
                }
            }
            Attribute::Msid { id, appdata } => {
                out.push(':');
                out.push_str(id);
                if let Some(a) = appdata {
                    out.push(' ');
                    out.push_str(a);
                }
            }
            Attribute::Ssrc { id, name, value } => {
                out.push(':');
                num(out, u64::from(*id));
                out.push(' ');
                out.push_str(name);
                if let Some(v) = value {
                    out.push(':');
                    out.push_str(v);
                }
            }
            Attribute::SsrcGroup { semantics, ssrcs } => {
                out.push(':');
                out.push_str(semantics);
                for x in ssrcs {
                    out.push(' ');
                    num(out, u64::from(*x));
                }
            }
            Attribute::Extmap {
                id,
                direction,
                uri,
                extra,
            } => {
                out.push(':');
                num(out, u64::from(*id));
                if let Some(d) = direction {
                    out.push('/');
                    out.push_str(d);
                }
                out.push(' ');
                out.push_str(uri);
                if let Some(e) = extra {
                    out.push(' ');
                    out.push_str(e);
                }
            }
            Attribute::Crypto {
                tag,
                suite,
                key_params,
                session_params,
            } => {
                out.push(':');
                num(out, u64::from(*tag));
                out.push(' ');
                out.push_str(suite);
                out.push(' ');
                out.push_str(key_params);
                for p in session_params {
                    out.push(' ');
                    out.push_str(p);
                }
            }
            Attribute::Content(c) => {
                out.push(':');
                join(out, c, ',');
            }
            Attribute::Other { value, .. } => {
                if let Some(v) = value {
                    out.push(':');
                    out.push_str(v);
                }
            }
        }
    }
}

fn join(out: &mut String, items: &[Cow<'_, str>], sep: char) {
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push(sep);
        }
        out.push_str(x);
    }
}
