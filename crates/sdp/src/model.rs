//! The session description model and its canonical writer.
use std::borrow::Cow;

use crate::attr::{num, Attribute};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin<'a> {
    pub username: Cow<'a, str>,
    pub session_id: u64,
    pub session_version: u64,
    /// `IN`
    pub nettype: Cow<'a, str>,
    /// `IP4` or `IP6`
    pub addrtype: Cow<'a, str>,
    pub address: Cow<'a, str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection<'a> {
    pub nettype: Cow<'a, str>,
    pub addrtype: Cow<'a, str>,
    pub address: Cow<'a, str>,
    /// Multicast IPv4 TTL (`/ttl`).
    pub ttl: Option<u8>,
    /// Number of addresses (`/count`).
    pub count: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bandwidth<'a> {
    pub bwtype: Cow<'a, str>,
    pub value: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing<'a> {
    pub start: u64,
    pub stop: u64,
    /// `r=` lines, whitespace-normalised.
    pub repeats: Vec<Cow<'a, str>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media<'a> {
    pub media: Cow<'a, str>,
    pub port: u16,
    pub port_count: Option<u16>,
    pub proto: Cow<'a, str>,
    pub formats: Vec<Cow<'a, str>>,
    pub info: Option<Cow<'a, str>>,
    pub connections: Vec<Connection<'a>>,
    pub bandwidths: Vec<Bandwidth<'a>>,
    pub key: Option<Cow<'a, str>>,
    pub attributes: Vec<Attribute<'a>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session<'a> {
    pub origin: Origin<'a>,
    pub name: Cow<'a, str>,
    pub info: Option<Cow<'a, str>>,
    pub uri: Option<Cow<'a, str>>,
    pub emails: Vec<Cow<'a, str>>,
    pub phones: Vec<Cow<'a, str>>,
    pub connection: Option<Connection<'a>>,
    pub bandwidths: Vec<Bandwidth<'a>>,
    pub times: Vec<Timing<'a>>,
    pub zone: Option<Cow<'a, str>>,
    pub key: Option<Cow<'a, str>>,
    pub attributes: Vec<Attribute<'a>>,
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

fn write_attrs(a: &[Attribute<'_>], out: &mut String) {
    for a in a {
        out.push_str("a=");
        a.write(out);
        out.push_str("\r\n");
    }
}

impl Session<'_> {
    /// The canonical form: the RFC 8866 line order, single spaces, CRLF.
    pub fn to_string_canonical(&self) -> String {
        let mut out = String::with_capacity(512);
        line(&mut out, 'v', "0");
        let o = &self.origin;
        out.push_str("o=");
        out.push_str(&o.username);
        out.push(' ');
        num(&mut out, o.session_id);
        out.push(' ');
        num(&mut out, o.session_version);
        out.push(' ');
        out.push_str(&o.nettype);
        out.push(' ');
        out.push_str(&o.addrtype);
        out.push(' ');
        out.push_str(&o.address);
        out.push_str("\r\n");
        line(&mut out, 's', &self.name);
        if let Some(i) = &self.info {
            line(&mut out, 'i', i);
        }
        if let Some(u) = &self.uri {
            line(&mut out, 'u', u);
        }
        for e in &self.emails {
            line(&mut out, 'e', e);
        }
        for p in &self.phones {
            line(&mut out, 'p', p);
        }
        if let Some(c) = &self.connection {
            c.write(&mut out);
        }
        write_bw(&self.bandwidths, &mut out);
        for t in &self.times {
            out.push_str("t=");
            num(&mut out, t.start);
            out.push(' ');
            num(&mut out, t.stop);
            out.push_str("\r\n");
            for r in &t.repeats {
                line(&mut out, 'r', r);
            }
        }
        if let Some(z) = &self.zone {
            line(&mut out, 'z', z);
        }
        if let Some(k) = &self.key {
            line(&mut out, 'k', k);
        }
        write_attrs(&self.attributes, &mut out);
        for m in &self.media {
            out.push_str("m=");
            out.push_str(&m.media);
            out.push(' ');
            num(&mut out, u64::from(m.port));
            if let Some(c) = m.port_count {
                out.push('/');
                num(&mut out, u64::from(c));
            }
            out.push(' ');
            out.push_str(&m.proto);
            for f in &m.formats {
                out.push(' ');
                out.push_str(f);
            }
            out.push_str("\r\n");
            if let Some(i) = &m.info {
                line(&mut out, 'i', i);
            }
            for c in &m.connections {
                c.write(&mut out);
            }
            write_bw(&m.bandwidths, &mut out);
            if let Some(k) = &m.key {
                line(&mut out, 'k', k);
            }
            write_attrs(&m.attributes, &mut out);
        }
        out
    }
}
