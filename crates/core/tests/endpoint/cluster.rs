//! Two nodes of a cluster: a binding one node holds, seen by another as a remote binding
//! (its Path is the holding node's Route with the flow token), and a call routed through
//! the holding node onto the flow the phone registered from.
use super::*;

const KEY_A: [u8; 32] = [0xa1; 32];

fn node(ip: [u8; 4], key: [u8; 32]) -> H {
    let now = Instant::now();
    let local = SocketAddr::from((ip, 5060));
    let cfg = CoreConfig {
        domain: "example.com".into(),
        local: vec![(Transport::Udp, local), (Transport::Tcp, local)],
        route_key: Some(key),
        authenticate_register: false,
        authenticate_requests: false,
        ..CoreConfig::default()
    };
    let mut ep = Endpoint::new(cfg, [ip[3]; 32], now);
    ep.set_users(["alice", "bob"].iter().map(|n| user(n, 0, None)).collect());
    H { ep, now }
}

fn node_peer(ip: [u8; 4]) -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: SocketAddr::from((ip, 5060)),
        conn: None,
    }
}

/// Node A's binding as node B receives it from the shared location.
fn remote_copy(b: &Binding, holder: [u8; 4], token: &str) -> Binding {
    let mut path = vec![format!(
        "sip:{}.{}.{}.{}:5060;lr;flow={token}",
        holder[0], holder[1], holder[2], holder[3]
    )];
    path.extend(b.path.iter().cloned());
    Binding {
        source: node_peer(holder),
        path,
        ..b.clone()
    }
}

fn saved(h: &mut H) -> Binding {
    std::iter::from_fn(|| h.ep.poll_event())
        .find_map(|e| match e {
            Event::BindingSaved(b) => Some(b),
            _ => None,
        })
        .expect("the REGISTER saved a binding")
}

#[test]
fn a_call_entering_at_another_node_reaches_the_phone_through_the_holding_node() {
    let (ip_a, ip_b) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    let mut a = node(ip_a, KEY_A);
    let mut b = node(ip_b, [0xb2; 32]);
    let out = a.register("bob", BOB, 3600, 1);
    assert_eq!(status(&out[0].1), 200);
    let bound = saved(&mut a);
    assert_eq!(bound.source, peer(BOB));
    let token = FlowKey::new(&KEY_A).token(&bound.source);
    b.ep.apply_binding(remote_copy(&bound, ip_a, &token));

    b.send(peer(ALICE), &invite("x1", "bob"));
    let out = b.take();
    let (to, fwd, bytes) = out
        .iter()
        .find(|(_, m, _)| m.method().is_some())
        .expect("node B forwards the INVITE");
    assert_eq!(
        *to,
        node_peer(ip_a),
        "to the node holding the flow, not the phone"
    );
    let text = String::from_utf8_lossy(bytes);
    assert!(
        text.contains(&format!("Route: <sip:10.0.0.1:5060;lr;flow={token}>")),
        "{text}"
    );
    assert_eq!(
        fwd.request_uri().map(|u| u.to_string()),
        Some(format!("sip:bob@192.0.2.10:{BOB}"))
    );

    // node A sends it on the phone's flow, with its own Record-Route above B's
    a.send_bytes(node_peer(ip_b), bytes);
    let out = a.take();
    let (to, m, bytes) = out
        .iter()
        .find(|(_, m, _)| m.method().is_some())
        .expect("node A forwards the INVITE");
    assert_eq!(*to, peer(BOB));
    let text = String::from_utf8_lossy(bytes);
    assert!(
        !text.contains("flow="),
        "the flow route is consumed: {text}"
    );
    let rrs: Vec<String> = m.record_routes().map(|r| r.uri.to_string()).collect();
    assert_eq!(rrs.len(), 2, "{rrs:?}");
    assert!(rrs[0].starts_with("sip:10.0.0.1:5060;lr;pal="), "{rrs:?}");
    assert!(rrs[1].starts_with("sip:10.0.0.2:5060;lr;pal="), "{rrs:?}");
    assert_eq!(m.vias().count(), 3, "A's Via, B's Via, the caller's");

    // the 200 goes back through A to B, and B to the caller
    let ok = respond(m, 200, "OK", "b1");
    a.send_bytes(peer(BOB), &ok);
    let out = a.take();
    let (to, m, bytes) = out.iter().find(|(_, m, _)| status(m) == 200).unwrap();
    assert_eq!(*to, node_peer(ip_b));
    let bytes = bytes.clone();
    let _ = m;
    b.send_bytes(node_peer(ip_a), &bytes);
    let out = b.take();
    assert!(out
        .iter()
        .any(|(to, m, _)| *to == peer(ALICE) && status(m) == 200));
}

#[test]
fn a_forged_or_foreign_flow_token_relays_nothing() {
    let (ip_a, ip_b) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    let mut a = node(ip_a, KEY_A);
    let target = Peer {
        transport: Transport::Udp,
        addr: "203.0.113.9:5060".parse().unwrap(),
        conn: None,
    };
    let genuine = FlowKey::new(&KEY_A).token(&peer(BOB));
    // the tag of a genuine token on the body of another address
    let other = FlowKey::new(&[0xb2; 32]).token(&target);
    let forged = format!(
        "{}{}",
        &other[..other.len() - 16],
        &genuine[genuine.len() - 16..]
    );
    for token in [forged, other] {
        let req = format!(
            "INVITE sip:victim@203.0.113.9:5060 SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKf{}\nMax-Forwards: 70\nRoute: <sip:10.0.0.1:5060;lr;flow={token}>\nFrom: <sip:mallory@evil.example>;tag=m\nTo: <sip:victim@203.0.113.9>\nCall-ID: forged-{}\nCSeq: 1 INVITE\nContact: <sip:m@10.0.0.2>\nContent-Length: 0\n\n",
            &token[..8], &token[..8]
        );
        a.send(node_peer(ip_b), &req);
        let out = a.take();
        assert!(
            out.iter()
                .all(|(to, m, _)| m.method().is_none() && *to != target),
            "nothing goes to the forged flow"
        );
        assert!(out.iter().any(|(_, m, _)| status(m) == 403), "refused");
    }
}

#[test]
fn a_phone_on_a_tcp_connection_is_reached_on_that_connection() {
    let (ip_a, ip_b) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    let mut a = node(ip_a, KEY_A);
    let mut b = node(ip_b, [0xb2; 32]);
    let phone = Peer {
        transport: Transport::Tcp,
        addr: "198.51.100.20:40112".parse().unwrap(),
        conn: Some(7),
    };
    // behind a NAT: its Contact names a private address nobody can reach
    a.send(
        phone,
        "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/TCP 192.168.1.20:5060;branch=z9hG4bKtcpreg\nMax-Forwards: 70\nFrom: <sip:bob@example.com>;tag=t1\nTo: <sip:bob@example.com>\nCall-ID: tcp-reg\nCSeq: 1 REGISTER\nContact: <sip:bob@192.168.1.20:5060;transport=tcp>\nExpires: 600\nContent-Length: 0\n\n",
    );
    assert_eq!(status(&a.take()[0].1), 200);
    let bound = saved(&mut a);
    assert_eq!(bound.source, phone);
    let token = FlowKey::new(&KEY_A).token(&bound.source);
    b.ep.apply_binding(remote_copy(&bound, ip_a, &token));
    b.send(peer(ALICE), &invite("t1", "bob"));
    let out = b.take();
    let (to, _, bytes) = out
        .iter()
        .find(|(_, m, _)| m.method().is_some())
        .expect("B forwards");
    assert_eq!(*to, node_peer(ip_a));
    a.send_bytes(node_peer(ip_b), bytes);
    let out = a.take();
    let (to, m, _) = out
        .iter()
        .find(|(_, m, _)| m.method().is_some())
        .expect("A forwards");
    assert_eq!(*to, phone, "on the phone's own connection");
    assert_eq!(
        m.vias().next().map(|v| v.transport.to_string()),
        Some("TCP".to_string())
    );
}
