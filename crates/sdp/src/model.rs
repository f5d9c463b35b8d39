//! The session description model and its canonical writer.
use crate::attr::{num, Attribute};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub username: String,
    pub session_id: u64,
    pub session_version: u64,
    /// `IN`
    pub nettype: String,
    /// `IP4` or `IP6`
    pub addrtype: String,
    pub address: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub nettype: String,
    pub addrtype: String,
    pub address: String,
    /// Multicast IPv4 TTL (`/ttl`).
    pub ttl: Option<u8>,
    /// Number of addresses (`/count`).
    pub count: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bandwidth {
    pub bwtype: String,
    pub value: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    pub start: u64,
    pub stop: u64,
    /// `r=` lines, whitespace-normalised.
    pub repeats: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub media: String,
    pub port: u16,
    pub port_count: Option<u16>,
    pub proto: String,
    pub formats: Vec<String>,
    pub info: Option<String>,
    pub connections: Vec<Connection>,
    pub bandwidths: Vec<Bandwidth>,
    pub key: Option<String>,
    pub attributes: Vec<Attribute>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub origin: Origin,
    pub name: String,
    pub info: Option<String>,
    pub uri: Option<String>,
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    pub connection: Option<Connection>,
    pub bandwidths: Vec<Bandwidth>,
    pub times: Vec<Timing>,
    pub zone: Option<String>,
    pub key: Option<String>,
    pub attributes: Vec<Attribute>,
    pub media: Vec<Media>,
}

fn line(out: &mut String, t: char, v: &str) {
    out.push(t);
    out.push('=');
    out.push_str(v);
    out.push_str("\r\n");
}

impl Connection {
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

fn write_bw(b: &[Bandwidth], out: &mut String) {
    for b in b {
        out.push_str("b=");
        out.push_str(&b.bwtype);
        out.push(':');
        num(out, b.value);
        out.push_str("\r\n");
    }
}

fn write_attrs(a: &[Attribute], out: &mut String) {
    for a in a {
        out.push_str("a=");
        a.write(out);
        out.push_str("\r\n");
    }
}

impl Session {
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
