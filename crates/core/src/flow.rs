//! Flow tokens: how a cluster node names one of its own flows (the UDP address, or the
//! TCP/TLS connection, a REGISTER came from) to the other nodes, in the spirit of RFC
//! 5626 section 5.2. A node writes the token beside each binding it holds in the shared
//! location; another node that routes a request to that binding sends it to the holding
//! node with the token in a Route header (`;flow=TOKEN`), and the holding node sends it
//! on the flow the token names. The token carries the flow in the clear and a MAC under
//! a key only the holding node has, so that nobody can make a node relay toward an
//! address of their choosing by writing a token themselves.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::mac::Mac;
use crate::types::{Peer, Transport};

/// Bytes of the MAC a token carries (64 bits, hex-encoded).
const TAG: usize = 8;

/// Makes and checks this node's flow tokens.
#[derive(Clone)]
pub struct FlowKey {
    mac: Mac,
}

impl std::fmt::Debug for FlowKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FlowKey(..)")
    }
}

fn transport_byte(t: Transport) -> u8 {
    match t {
        Transport::Udp => 0,
        Transport::Tcp => 1,
        Transport::Tls => 2,
        Transport::Ws => 3,
        Transport::Wss => 4,
    }
}

fn encode(p: &Peer) -> Vec<u8> {
    let mut b = Vec::with_capacity(28);
    b.push(transport_byte(p.transport));
    match p.addr.ip() {
        IpAddr::V4(a) => {
            b.push(4);
            b.extend_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            b.push(6);
            b.extend_from_slice(&a.octets());
        }
    }
    b.extend_from_slice(&p.addr.port().to_be_bytes());
    if let Some(c) = p.conn {
        b.extend_from_slice(&c.to_be_bytes());
    }
    b
}

fn decode(b: &[u8]) -> Option<Peer> {
    let (&t, rest) = b.split_first()?;
    let transport = match t {
        0 => Transport::Udp,
        1 => Transport::Tcp,
        2 => Transport::Tls,
        3 => Transport::Ws,
        4 => Transport::Wss,
        _ => return None,
    };
    let (&fam, rest) = rest.split_first()?;
    let (ip, rest): (IpAddr, &[u8]) = match fam {
        4 => {
            let (a, r) = rest.split_first_chunk::<4>()?;
            (IpAddr::V4(Ipv4Addr::from(*a)), r)
        }
        6 => {
            let (a, r) = rest.split_first_chunk::<16>()?;
            (IpAddr::V6(Ipv6Addr::from(*a)), r)
        }
        _ => return None,
    };
    let (port, rest) = rest.split_first_chunk::<2>()?;
    let conn = match rest.len() {
        0 => None,
        8 => Some(u64::from_be_bytes(rest.try_into().ok()?)),
        _ => return None,
    };
    if transport.reliable() != conn.is_some() {
        return None;
    }
    Some(Peer {
        transport,
        addr: SocketAddr::new(ip, u16::from_be_bytes(*port)),
        conn,
    })
}

impl FlowKey {
    /// The flow key of a node, derived from its route key (the secret of its data
    /// directory that also signs its Record-Route entries).
    pub fn new(route_key: &[u8; 32]) -> FlowKey {
        FlowKey {
            mac: Mac::derived(b"palisade flow token", route_key),
        }
    }

    /// The token of a flow: lower-case hex, safe as a URI parameter value.
    pub fn token(&self, p: &Peer) -> String {
        let body = encode(p);
        let tag = self.mac.tag(&body);
        let mut s = String::with_capacity((body.len() + TAG) * 2);
        palisade_sip::push_hex(&mut s, &body);
        palisade_sip::push_hex(&mut s, tag.get(..TAG).unwrap_or_default());
        s
    }

    /// The flow a token of this key names; `None` for anything else (a token of another
    /// node or key, a forged or damaged one).
    pub fn peer(&self, token: &str) -> Option<Peer> {
        let raw = hex::decode(token).ok()?;
        let split = raw.len().checked_sub(TAG)?;
        let (body, tag) = raw.split_at_checked(split)?;
        let want = self.mac.tag(body);
        if !crate::auth::ct_eq(tag, want.get(..TAG)?) {
            return None;
        }
        decode(body)
    }
}

#[cfg(test)]
#[allow(clippy::string_slice)] // hex tokens are ASCII
mod tests {
    use super::*;

    fn key(b: u8) -> FlowKey {
        FlowKey::new(&[b; 32])
    }

    #[test]
    fn a_token_names_its_flow_and_only_under_its_key() {
        let flows = [
            Peer {
                transport: Transport::Udp,
                addr: "192.0.2.7:5060".parse().unwrap(),
                conn: None,
            },
            Peer {
                transport: Transport::Tcp,
                addr: "[2001:db8::1]:40000".parse().unwrap(),
                conn: Some(77),
            },
            Peer {
                transport: Transport::Tls,
                addr: "198.51.100.1:5061".parse().unwrap(),
                conn: Some(u64::MAX),
            },
            Peer {
                transport: Transport::Ws,
                addr: "198.51.100.2:40000".parse().unwrap(),
                conn: Some(5),
            },
            Peer {
                transport: Transport::Wss,
                addr: "198.51.100.3:40001".parse().unwrap(),
                conn: Some(6),
            },
        ];
        for p in flows {
            let t = key(1).token(&p);
            assert!(t.bytes().all(|c| c.is_ascii_hexdigit()), "{t}");
            assert_eq!(key(1).peer(&t), Some(p));
            assert_eq!(key(2).peer(&t), None, "another node's key");
        }
    }

    #[test]
    fn forged_or_damaged_tokens_name_nothing() {
        let p = Peer {
            transport: Transport::Udp,
            addr: "192.0.2.7:5060".parse().unwrap(),
            conn: None,
        };
        let t = key(3).token(&p);
        // another address with the old tag
        let other = key(3).token(&Peer {
            addr: "192.0.2.8:5060".parse().unwrap(),
            ..p
        });
        let forged = format!("{}{}", &other[..other.len() - 16], &t[t.len() - 16..]);
        assert_eq!(key(3).peer(&forged), None);
        for bad in ["", "zz", &t[..t.len() - 1], &t[2..], "00"] {
            assert_eq!(key(3).peer(bad), None, "{bad:?}");
        }
        // a UDP flow may not carry a connection, nor a stream flow lack one
        let mut body = encode(&p);
        body.extend_from_slice(&9u64.to_be_bytes());
        assert_eq!(decode(&body), None);
    }
}
