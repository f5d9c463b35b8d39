//! One detector for the cluster: a campaign and password guessing spread over the nodes
//! are found as on one node.
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::sim::{Answer, Bank, Outcome, Ua};
use super::*;

fn import(cfg: &Path, users: &[String], created: Option<&str>) {
    let dir = cfg.parent().unwrap();
    let mut csv = String::from(if created.is_some() {
        "name,password,created\n"
    } else {
        "name,password\n"
    });
    for u in users {
        match created {
            Some(c) => csv.push_str(&format!("{u},secret,{c}\n")),
            None => csv.push_str(&format!("{u},secret\n")),
        }
    }
    let f = dir.join(format!("import-{}.csv", users.len()));
    std::fs::write(&f, csv).unwrap();
    let o = palisade(
        cfg,
        &[
            "user",
            "import",
            f.to_str().unwrap(),
            "--domain",
            "127.0.0.1",
        ],
    );
    assert!(
        o.status.success(),
        "import: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The day-one campaign of `tests/campaign` on a smaller scale, its calls entering
/// through three nodes in turn: one detector (on whichever node leads) sees all of them,
/// restricts every campaign account while its sweep runs (enforced at every node), and
/// lists the targets as one node would.
#[test]
fn a_campaign_spread_over_three_nodes_is_found_as_on_one() {
    let Some(db) = Schema::new("campaign") else {
        return;
    };
    let nodes: Vec<(Server, PathBuf)> = ["a", "b", "c"].iter().map(|n| start(&db, n)).collect();
    let cfg = nodes[0].1.clone();
    let addr = |i: usize| -> SocketAddr {
        format!("127.0.0.1:{}", nodes[i % 3].0.port)
            .parse()
            .unwrap()
    };
    let targets: Vec<String> = (0..90).map(|i| format!("target{i}")).collect();
    let fresh: Vec<String> = (0..3).map(|i| format!("fresh{i}")).collect();
    import(&cfg, &targets, None);
    import(&cfg, &fresh, None);
    std::thread::sleep(Duration::from_millis(1500));
    let detectors = |cfg: &Path| -> usize {
        status(cfg)
            .values()
            .filter(|n| n["detector"] == true)
            .count()
    };
    assert!(
        wait_until(Duration::from_secs(5), || detectors(&cfg) == 1),
        "one node runs the detector: {:?}",
        status(&cfg)
    );
    // the targets' phones, registered at node a
    let bank = Bank::start("127.0.0.1", |_| Answer::Never);
    for t in &targets {
        let r = Ua::new("127.0.0.1", t, addr(0), "SimPhone/1.0");
        assert_eq!(r.register_as(t, bank.addr, 3600), 200, "{t} registers");
    }
    std::thread::sleep(Duration::from_secs(1));
    // each campaign account from its own address, each call through the next node
    let per = targets.len() / fresh.len();
    let threads: Vec<_> = fresh
        .iter()
        .enumerate()
        .map(|(i, acct)| {
            let acct = acct.clone();
            let mine = targets[i * per..(i + 1) * per].to_vec();
            let uas: Vec<Ua> = (0..3)
                .map(|k| {
                    let mut ua = Ua::new(
                        &format!("127.0.1.{}", 10 + i),
                        &acct,
                        addr(i + k),
                        "Linphone/5.1.0 (belle-sip/5.1.0)",
                    );
                    ua.compact = true;
                    ua
                })
                .collect();
            std::thread::spawn(move || {
                let me = uas[0].sock.local_addr().unwrap();
                assert_eq!(uas[0].register_as(&acct, me, 3600), 200);
                let outcomes: Vec<Outcome> = mine
                    .iter()
                    .enumerate()
                    .map(|(k, t)| uas[k % 3].call(t, Duration::from_millis(200), Duration::ZERO))
                    .collect();
                (acct, outcomes)
            })
        })
        .collect();
    let mut refused = 0;
    for h in threads {
        let (acct, outcomes) = h.join().unwrap();
        for o in &outcomes {
            assert!(
                matches!(o, Outcome::Cancelled | Outcome::Refused(403 | 503)),
                "{acct}: {o:?}"
            );
            refused += usize::from(matches!(o, Outcome::Refused(_)));
        }
    }
    // (one node, tests/campaign: 15 accounts x 20 calls, flagged after 10 strangers, at
    // least 60 of 300 refused: the same fifth here)
    assert!(
        refused >= targets.len() / 5,
        "the campaign was stopped while it ran, whichever node its calls entered: {refused} of {} refused",
        targets.len()
    );
    assert!(wait_until(Duration::from_secs(10), || {
        json(palisade(&cfg, &["calls", "--json"]))["calls"]
            .as_array()
            .is_some_and(|c| c.len() >= targets.len())
    }));
    let findings = json(palisade(&cfg, &["report", "findings", "--json"]));
    let findings = findings["findings"].as_array().unwrap().clone();
    let flagged: BTreeSet<String> = findings
        .iter()
        .filter(|f| f["action"] != "alert")
        .flat_map(|f| f["subject"]["accounts"].as_array().unwrap().clone())
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    for acct in &fresh {
        assert!(flagged.contains(acct), "{acct} restricted: {findings:#?}");
    }
    let kinds: BTreeSet<&str> = findings
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains("new-account-calls-strangers"), "{kinds:?}");
    assert!(kinds.contains("imitation-client"), "{kinds:?}");
    // (findings are updated behind the records, once a second: read until they settle)
    let called: BTreeSet<String> = targets.iter().cloned().collect();
    let read = || {
        let report = json(palisade(&cfg, &["report", "targets", "--json"]));
        let listed: BTreeSet<String> = report["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["user"].as_str().unwrap().to_string())
            .collect();
        let recall = called.intersection(&listed).count() as f64 / called.len() as f64;
        (report, listed, recall)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let (report, listed, recall) = loop {
        let r = read();
        if r.2 >= 0.99 || Instant::now() >= deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!("cluster campaign: recall {recall:.3}, refused {refused}");
    assert!(recall >= 0.99, "recall {recall}: {listed:?}");
    // a target reported as rung saw an INVITE (through node a), one that did not, none
    let invites = bank.invites.lock().unwrap().clone();
    for t in report["targets"].as_array().unwrap() {
        let user = t["user"].as_str().unwrap();
        let seen = invites.get(user).copied().unwrap_or(0);
        assert_eq!(
            t["rang"] == true,
            seen > 0,
            "{user}: rang {} but INVITEs {seen}",
            t["rang"]
        );
    }

    // the detector's node dies: another takes over within 10 s
    let leader = status(&cfg)
        .into_iter()
        .find(|(_, n)| n["detector"] == true)
        .map(|(name, _)| name)
        .unwrap();
    let mut nodes = nodes;
    let at = ["a", "b", "c"].iter().position(|n| *n == leader).unwrap();
    let (mut dead, _) = nodes.remove(at);
    dead.child.kill().unwrap();
    dead.child.wait().unwrap();
    let killed = Instant::now();
    let survivor = nodes[0].1.clone();
    assert!(
        wait_until(Duration::from_secs(10), || status(&survivor)
            .iter()
            .any(|(name, n)| *name != leader && n["detector"] == true)),
        "no node took the detector over: {:?}",
        status(&survivor)
    );
    eprintln!(
        "detector taken over from {leader} within {:?}",
        killed.elapsed()
    );
}

/// One REGISTER for `user` with a wrong password from `sock`, entering at `port`: the
/// status of the answer to the second attempt (the first is challenged).
fn guess(sock: &std::net::UdpSocket, port: u16, user: &str, n: usize) -> u16 {
    use palisade_sip::{parse_datagram, Header, Limits};
    let me = sock.local_addr().unwrap();
    let send = |cseq: u32, auth: &str| {
        let text = format!(
            "REGISTER sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKguess{n}x{cseq};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@127.0.0.1:{port}>;tag=g{n}\r\nTo: <sip:{user}@127.0.0.1:{port}>\r\nCall-ID: guess-{n}-{me}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{user}@{me}>\r\n{auth}Content-Length: 0\r\n\r\n"
        );
        sock.send_to(text.as_bytes(), ("127.0.0.1", port)).unwrap();
        let mut buf = vec![0u8; 65536];
        loop {
            let Ok((len, _)) = sock.recv_from(&mut buf) else {
                return None;
            };
            let m = parse_datagram(&buf[..len], &Limits::default())
                .unwrap()
                .into_owned();
            if m.cseq().map(|c| c.seq) == Some(cseq) && m.status() != Some(100) {
                return Some(m);
            }
        }
    };
    let Some(ch) = send(1, "") else { return 0 };
    let Some(nonce) = ch.headers.iter().find_map(|h| match h {
        Header::WwwAuthenticate(c) => c.get("nonce").map(|n| n.into_owned()),
        _ => None,
    }) else {
        return ch.status().unwrap_or(0);
    };
    let uri = format!("sip:127.0.0.1:{port}");
    let auth = digest(
        palisade_core::Algorithm::Md5,
        user,
        "wrong",
        &nonce,
        "REGISTER",
        &uri,
    );
    send(2, &format!("Authorization: {auth}\r\n")).map_or(0, |m| m.status().unwrap_or(0))
}

/// Password guessing spread over three nodes, each seeing fewer failures than the
/// detector's threshold (`min_auth_failures`, 20): found all the same, because one
/// detector counts them all, and the guessing network is then refused at every node.
#[test]
fn password_guessing_spread_over_the_nodes_is_counted_as_one() {
    let Some(db) = Schema::new("guess") else {
        return;
    };
    let nodes: Vec<(Server, PathBuf)> = ["a", "b", "c"].iter().map(|n| start(&db, n)).collect();
    let cfg = nodes[0].1.clone();
    add_accounts(&cfg, &["alice"]);
    std::thread::sleep(Duration::from_millis(1500));
    let sock = std::net::UdpSocket::bind("127.0.4.10:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    // 8 failures at each node: 24 in all, under 20 at any one
    for n in 0..24 {
        let port = nodes[n % 3].0.port;
        let st = guess(&sock, port, "alice", n);
        if st != 401 && st != 403 {
            break; // refused before the guess: the network is blocked already
        }
    }
    let found = || {
        json(palisade(&cfg, &["report", "findings", "--json"]))["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "password-guessing" && f["subject"]["network"] == "127.0.4.0/24")
    };
    assert!(
        wait_until(Duration::from_secs(10), found),
        "{:#}",
        json(palisade(&cfg, &["report", "findings", "--json"]))
    );
    // every node now refuses that network (a fresh source in it)
    let other = std::net::UdpSocket::bind("127.0.4.11:0").unwrap();
    other
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    for (s, _) in &nodes {
        let refused = wait_until(Duration::from_secs(3), || {
            !matches!(guess(&other, s.port, "alice", 99), 401)
        });
        assert!(
            refused,
            "port {} still challenges the blocked network",
            s.port
        );
    }
}
