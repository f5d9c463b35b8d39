//! SIP over WebSocket (RFC 7118): a browser registers with an `.invalid` contact over
//! its connection, is called from UDP on that connection, the dialog's route set
//! crosses the transports, and its bindings go with the connection.

use super::*;

const WS_CONN: u64 = 7;

fn ws_peer() -> Peer {
    Peer {
        transport: Transport::Ws,
        addr: SocketAddr::from(([198, 51, 100, 5], 40_000)),
        conn: Some(WS_CONN),
    }
}

fn ws_h() -> H {
    let now = Instant::now();
    let cfg = CoreConfig {
        domain: "example.com".into(),
        local: vec![
            (Transport::Udp, "10.0.0.1:5060".parse().unwrap()),
            (Transport::Ws, "10.0.0.1:8080".parse().unwrap()),
        ],
        authenticate_register: false,
        authenticate_requests: false,
        ..CoreConfig::default()
    };
    let mut ep = Endpoint::new(cfg, [9; 32], now);
    ep.set_users(["alice", "bob"].iter().map(|n| user(n, 0, None)).collect());
    H { ep, now }
}

fn ws_register(h: &mut H, expires: u32) -> Vec<(Peer, Message<'static>, Vec<u8>)> {
    h.send(
        ws_peer(),
        &format!("REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKws{expires}\nMax-Forwards: 70\nFrom: <sip:bob@example.com>;tag=w1\nTo: <sip:bob@example.com>\nCall-ID: ws-reg\nCSeq: {} REGISTER\nContact: <sip:k3l2@df7jal23ls0d.invalid;transport=ws;ob>;+sip.instance=\"<urn:uuid:00000000-0000-4000-8000-000000000001>\"\nExpires: {expires}\n{PHONE}Content-Length: 0\n\n", 1 + expires % 7),
    );
    h.take()
}

#[test]
fn a_browser_registered_over_websocket_is_called_on_its_connection() {
    let mut h = ws_h();
    let out = ws_register(&mut h, 600);
    assert_eq!(out.len(), 1);
    assert_eq!(status(&out[0].1), 200);
    assert_eq!(out[0].0, ws_peer(), "the answer goes on the connection");
    match h.ep.poll_event() {
        Some(Event::BindingSaved(b)) => assert_eq!(b.source, ws_peer()),
        e => panic!("{e:?}"),
    }

    h.send(peer(ALICE), &invite("w1", "bob"));
    let out = h.take();
    assert_eq!(out.len(), 2, "100 Trying and the INVITE");
    let (to, fwd, _) = &out[1];
    assert_eq!(
        *to,
        ws_peer(),
        "the .invalid contact is reached on its connection"
    );
    assert_eq!(
        fwd.request_uri().unwrap().to_string(),
        "sip:k3l2@df7jal23ls0d.invalid;transport=ws;ob"
    );
    let top = fwd.top_via().unwrap();
    assert_eq!((&*top.transport, top.port), ("WS", Some(8080)));
    // bridging UDP to WS: one Record-Route per side, the callee's side on top
    let rr: Vec<String> = fwd.record_routes().map(|r| r.uri.to_string()).collect();
    assert_eq!(rr.len(), 2, "{rr:?}");
    assert!(
        rr[0].starts_with("sip:10.0.0.1:8080;transport=ws;lr;pal="),
        "{rr:?}"
    );
    assert!(rr[1].starts_with("sip:10.0.0.1:5060;lr;pal="), "{rr:?}");

    // the browser answers on its connection; the answer reaches the caller
    let ok = respond(fwd, 200, "OK", "b1");
    h.send_bytes(ws_peer(), &ok);
    let out = h.take();
    assert!(
        out.iter()
            .any(|(to, m, _)| *to == peer(ALICE) && status(m) == 200),
        "{out:?}"
    );

    // the caller's BYE follows the route set (reversed) to the browser's connection
    let bye = format!(
        "BYE sip:k3l2@df7jal23ls0d.invalid;transport=ws;ob SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:{ALICE};branch=z9hG4bKbye1;rport\nMax-Forwards: 70\nRoute: <{}>\nRoute: <{}>\nFrom: <sip:alice@example.com>;tag=a1\nTo: <sip:bob@example.com>;tag=b1\nCall-ID: call-w1\nCSeq: 2 BYE\nContent-Length: 0\n\n",
        rr[1], rr[0]
    );
    h.send(peer(ALICE), &bye);
    let out = h.take();
    let (to, m, _) = out
        .iter()
        .find(|(_, m, _)| m.method() == Some(&palisade_sip::Method::Bye))
        .unwrap_or_else(|| panic!("the BYE forwarded: {out:?}"));
    assert_eq!(*to, ws_peer());
    assert_eq!(&*m.top_via().unwrap().transport, "WS");
    assert_eq!(m.routes().count(), 0, "both of our entries popped");
}

#[test]
fn a_websocket_client_s_via_gets_received_and_rport() {
    let mut h = ws_h();
    let out = ws_register(&mut h, 600);
    let v = out[0].1.top_via().unwrap();
    assert_eq!(v.received(), Some("198.51.100.5"));
    assert_eq!(v.rport(), Some(Some(40_000)));
}

#[test]
fn a_closed_websocket_connection_takes_its_bindings_with_it() {
    let mut h = ws_h();
    ws_register(&mut h, 600);
    while h.ep.poll_event().is_some() {}
    // another connection closing changes nothing
    h.ep.connection_closed(WS_CONN + 1);
    assert!(h.ep.poll_event().is_none());
    assert_eq!(h.ep.bindings().count(), 1);
    h.ep.connection_closed(WS_CONN);
    match h.ep.poll_event() {
        Some(Event::BindingRemoved { aor, .. }) => assert_eq!(aor, "bob@example.com"),
        e => panic!("{e:?}"),
    }
    assert_eq!(h.ep.bindings().count(), 0);
    h.send(peer(ALICE), &invite("w2", "bob"));
    let out = h.take();
    assert!(
        out.iter().any(|(_, m, _)| status(m) == 480),
        "a registered user without a live connection is unavailable: {out:?}"
    );
}

/// A shard drops its copies of another shard's WebSocket bindings when their connection
/// closes; bindings over other connections and over UDP stay, and so does everything when
/// an unrelated connection closes, whatever the table holds. A stream connection's Via
/// alias goes with it.
#[test]
fn a_closed_connection_takes_its_replicas_and_aliases_with_it() {
    let mut h = ws_h();
    ws_register(&mut h, 600);
    let copy = |aor: &str, contact: &str, transport: Transport, conn: Option<u64>| Binding {
        aor: aor.into(),
        contact: contact.into(),
        expires_at: h.now + Duration::from_secs(600),
        q: 1000,
        call_id: format!("c-{aor}"),
        cseq: 1,
        path: vec![],
        source: Peer {
            transport,
            addr: SocketAddr::from(([198, 51, 100, 9], 41_000)),
            conn,
        },
        user_agent: String::new(),
    };
    let replicas = [
        copy(
            "alice@example.com",
            "sip:a1@x.invalid;transport=ws",
            Transport::Ws,
            Some(70),
        ),
        copy(
            "alice@example.com",
            "sip:a2@x.invalid;transport=ws",
            Transport::Ws,
            Some(71),
        ),
        copy(
            "carol@example.com",
            "sip:carol@198.51.100.9:41000",
            Transport::Udp,
            None,
        ),
    ];
    for b in replicas {
        h.ep.apply_binding(b);
    }
    // 2,000 more UDP copies: what an unrelated close must not look through
    for i in 0..2_000 {
        h.ep.apply_binding(copy(
            &format!("u{i}@example.com"),
            &format!("sip:u{i}@198.51.100.9:41000"),
            Transport::Udp,
            None,
        ));
    }
    while h.ep.poll_event().is_some() {}
    assert_eq!(h.ep.bindings().count(), 2_004);
    h.ep.connection_closed(99);
    assert_eq!(h.ep.bindings().count(), 2_004);
    // a replica's connection: its copy goes, silently (the shard that made it reports)
    h.ep.connection_closed(70);
    assert!(h.ep.poll_event().is_none());
    let alice: Vec<String> = (h.ep.bindings())
        .filter(|b| b.aor == "alice@example.com")
        .map(|b| b.contact.clone())
        .collect();
    assert_eq!(alice, ["sip:a2@x.invalid;transport=ws"]);
    h.ep.connection_closed(71);
    assert!(h.ep.bindings().all(|b| b.aor != "alice@example.com"));
    assert_eq!(h.ep.bindings().count(), 2_002);
    // the local WebSocket binding: removed and reported
    h.ep.connection_closed(WS_CONN);
    assert!(matches!(
        h.ep.poll_event(),
        Some(Event::BindingRemoved { .. })
    ));
    assert_eq!(h.ep.bindings().count(), 2_001);
    // a TCP peer that advertises another port in its Via is reached on its connection
    // by that address (an alias); the alias goes when the connection closes
    let tcp = Peer {
        transport: Transport::Tcp,
        addr: SocketAddr::from(([192, 0, 2, 10], 50_000)),
        conn: Some(80),
    };
    h.send(tcp, "OPTIONS sip:example.com SIP/2.0\nVia: SIP/2.0/TCP 192.0.2.10:5070;branch=z9hG4bKopt1\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=o1\nTo: <sip:example.com>\nCall-ID: opt-1\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n");
    h.take();
    assert_eq!(h.ep.table_sizes().2, 1);
    h.ep.connection_closed(81);
    assert_eq!(h.ep.table_sizes().2, 1);
    h.ep.connection_closed(80);
    assert_eq!(h.ep.table_sizes().2, 0);
    assert_eq!(h.ep.bindings().count(), 2_001);
}

#[test]
fn websocket_names_and_default_ports() {
    assert_eq!(Transport::parse("WS"), Some(Transport::Ws));
    assert_eq!(Transport::parse("wss"), Some(Transport::Wss));
    assert_eq!(Transport::Ws.via_name(), "WS");
    assert_eq!(Transport::Wss.via_name(), "WSS");
    assert_eq!(Transport::Ws.default_port(), 80);
    assert_eq!(Transport::Wss.default_port(), 443);
    assert!(Transport::Ws.reliable() && Transport::Wss.reliable());
}

#[test]
fn a_browser_calls_a_udp_phone_and_is_reached_back_inside_the_dialog() {
    let mut h = ws_h();
    h.register("bob", BOB, 600, 1);
    let sdp = SDP;
    h.send(
        ws_peer(),
        &format!(
            "INVITE sip:bob@example.com SIP/2.0\nVia: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKwsinv\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=wa\nTo: <sip:bob@example.com>\nCall-ID: ws-call\nCSeq: 1 INVITE\nContact: <sip:k3l2@df7jal23ls0d.invalid;transport=ws;ob>\nContent-Type: application/sdp\nContent-Length: {}\n\n{sdp}",
            crlf_len(sdp)
        ),
    );
    let out = h.take();
    assert_eq!(out[0].0, ws_peer(), "100 Trying on the connection");
    let (to, fwd, _) = &out[1];
    assert_eq!(*to, peer(BOB));
    let rr: Vec<String> = fwd.record_routes().map(|r| r.uri.to_string()).collect();
    assert_eq!(rr.len(), 2, "{rr:?}");
    assert!(rr[0].starts_with("sip:10.0.0.1:5060;lr;pal="), "{rr:?}");
    assert!(
        rr[1].starts_with("sip:10.0.0.1:8080;transport=ws;lr;pal="),
        "{rr:?}"
    );
    assert!(
        rr[1].contains(";ws="),
        "the browser's side names its connection"
    );
    let ok = respond(fwd, 200, "OK", "bb");
    h.send_bytes(peer(BOB), &ok);
    let out = h.take();
    assert!(out
        .iter()
        .any(|(to, m, _)| *to == ws_peer() && status(m) == 200));

    // bob hangs up: his route set is the Record-Route as received
    let bye = |routes: &str| {
        format!(
            "BYE sip:k3l2@df7jal23ls0d.invalid;transport=ws;ob SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:{BOB};branch=z9hG4bKbyeb{};rport\nMax-Forwards: 70\n{routes}From: <sip:bob@example.com>;tag=bb\nTo: <sip:alice@example.com>;tag=wa\nCall-ID: ws-call\nCSeq: 1 BYE\nContent-Length: 0\n\n",
            routes.len()
        )
    };
    h.send(
        peer(BOB),
        &bye(&format!("Route: <{}>\nRoute: <{}>\n", rr[0], rr[1])),
    );
    let out = h.take();
    let (to, _, _) = out
        .iter()
        .find(|(_, m, _)| m.method() == Some(&palisade_sip::Method::Bye))
        .unwrap_or_else(|| panic!("BYE forwarded: {out:?}"));
    assert_eq!(*to, ws_peer());

    // the connection's token without the dialog's is worth nothing
    let forged = rr[1].replace(";pal=", ";x=");
    h.send(peer(BOB), &bye(&format!("Route: <{forged}>\n")));
    let out = h.take();
    assert!(
        out.iter().all(|(to, _, _)| *to != ws_peer()),
        "a ws= token outside its dialog's entry is not honoured: {out:?}"
    );
}
