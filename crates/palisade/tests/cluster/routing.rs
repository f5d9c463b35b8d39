//! One location for the cluster: calls routed through the node that holds the phone's
//! flow, a node's death, a whole-cluster restart, a node killed under load.
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::*;

/// The INVITE a SIPp UAS received, from its message trace.
fn received_invite(trace: &str) -> &str {
    let at = trace.find("INVITE sip:").expect("the UAS got an INVITE");
    let rest = &trace[at..];
    &rest[..rest
        .find("\r\n\r\n")
        .or_else(|| rest.find("\n\n"))
        .unwrap_or(rest.len())]
}

fn via_ports(invite: &str) -> Vec<u16> {
    invite
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("via:"))
        .filter_map(|l| {
            let hostport = l.split_whitespace().nth(2)?;
            let hostport = hostport.split(';').next()?;
            hostport.rsplit(':').next()?.parse().ok()
        })
        .collect()
}

/// One SIPp call from alice entering at `entry` to bob, answered by a SIPp UAS on
/// `uas_port`: the INVITE the UAS received.
fn call_through(entry: &Server, uas_port: u16, name: &str) -> String {
    let uas = sipp_uas(entry, &format!("{name}-uas"), "uas.xml", uas_port, &[]);
    let (ok, trace) = sipp_call(
        entry,
        &format!("{name}-uac"),
        "alice",
        "bob",
        "uac.xml",
        ports(),
        &["-d", "200"],
    );
    assert!(ok, "call {name} failed:\n{trace}\n{}", entry.log_text());
    let (uas_ok, uas_trace) = uas.finish();
    assert!(uas_ok, "UAS of {name} failed:\n{uas_trace}");
    assert!(
        uas_trace.contains("ACK sip:") && uas_trace.contains("BYE sip:"),
        "{uas_trace}"
    );
    received_invite(&uas_trace).to_string()
}

#[test]
fn a_phone_registered_at_one_node_is_called_through_another_and_moves_when_its_node_dies() {
    let Some(db) = Schema::new("route") else {
        return;
    };
    let (mut a, cfg_a) = start(&db, "a");
    let (b, _) = start(&db, "b");
    let (c, _) = start(&db, "c");
    add_accounts(&cfg_a, &["alice", "bob"]);
    // every node took the accounts (polled, at most a second)
    std::thread::sleep(Duration::from_millis(1500));

    let uas_port = ports();
    let (ok, trace) = sipp_register(&a, "reg-a", "bob", uas_port, ports(), "register.xml", &[]);
    assert!(ok, "REGISTER at a failed:\n{trace}\n{}", a.log_text());
    let registered = Instant::now();
    // written behind (the group commit), then counted by the cluster's status
    assert!(
        wait_until(Duration::from_secs(3), || status(&cfg_a)["a"]["bindings"]
            == 1),
        "{:?}",
        status(&cfg_a)
    );
    let nodes = status(&cfg_a);
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    for n in ["a", "b", "c"] {
        assert_eq!(nodes[n]["state"], "alive", "{nodes:?}");
    }
    // the other nodes see it within a second (LISTEN/NOTIFY)
    std::thread::sleep(Duration::from_secs(1).saturating_sub(registered.elapsed()));

    let invite = call_through(&b, uas_port, "first");
    assert_eq!(
        via_ports(&invite),
        vec![a.port, b.port, ports_of_caller(&invite)],
        "the INVITE came through b, then a (which holds the phone's flow):\n{invite}"
    );

    // a dies; the phone registers again, at c, from the same socket
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let (ok, trace) = sipp_register(&c, "reg-c", "bob", uas_port, ports(), "register.xml", &[]);
    assert!(ok, "REGISTER at c failed:\n{trace}\n{}", c.log_text());
    assert!(
        wait_until(Duration::from_secs(3), || status(&node_cfg(&c))["c"]
            ["bindings"]
            == 1),
        "{:?}",
        status(&node_cfg(&c))
    );
    std::thread::sleep(Duration::from_secs(1));
    let invite = call_through(&b, uas_port, "second");
    assert_eq!(
        via_ports(&invite)[..2],
        [c.port, b.port],
        "now through c:\n{invite}"
    );
    // exactly one binding, held through c
    let rows = psql(
        &db.url,
        "SELECT node || ' ' || contact FROM bindings WHERE aor = 'bob@127.0.0.1'",
    );
    assert_eq!(rows.lines().count(), 1, "{rows}");
    assert!(rows.starts_with("c "), "{rows}");
    let nodes = status(&node_cfg(&b));
    assert_eq!(nodes["c"]["bindings"], 1, "{nodes:?}");
    assert_eq!(nodes["a"]["bindings"], 0, "{nodes:?}");
    // a's heartbeat stopped with it
    let deadline = Instant::now() + Duration::from_secs(5);
    while status(&node_cfg(&b))["a"]["state"] != "dead" {
        assert!(Instant::now() < deadline, "a still alive in cluster status");
        std::thread::sleep(Duration::from_millis(200));
    }

    // The whole cluster goes down at once (kill -9) and comes back: the binding that got
    // its 200 OK is there, routed through c again.
    let (b_dir, b_port, c_dir, c_port) = (b.dir.clone(), b.port, c.dir.clone(), c.port);
    for mut s in [b, c] {
        s.child.kill().unwrap();
        s.child.wait().unwrap();
    }
    let restart = |dir: &PathBuf, port: u16| {
        let cfg = dir.join("node.toml");
        Server::start_in(dir.clone(), port, &["--config", cfg.to_str().unwrap()])
    };
    let c = restart(&c_dir, c_port);
    let b = restart(&b_dir, b_port);
    assert!(
        wait_until(Duration::from_secs(5), || status(&node_cfg(&b))
            .values()
            .filter(|n| n["state"] == "alive")
            .count()
            == 2),
        "{:?}",
        status(&node_cfg(&b))
    );
    std::thread::sleep(Duration::from_secs(1));
    let invite = call_through(&b, uas_port, "after-restart");
    assert_eq!(
        via_ports(&invite)[..2],
        [c.port, b.port],
        "through c after the restart:\n{invite}"
    );
}

/// A node's configuration file.
fn node_cfg(s: &Server) -> PathBuf {
    s.dir.join("node.toml")
}

/// The caller's port: the last Via of the INVITE.
fn ports_of_caller(invite: &str) -> u16 {
    *via_ports(invite).last().unwrap()
}

/// A SIPp caller in the background: `n` calls from alice to bob entering at `entry`, ten
/// a second.
fn call_load(entry: &Server, name: &str, n: usize) -> Bg {
    let lines: Vec<String> = (0..n)
        .map(|_| "alice;bob;[authentication username=alice password=secret]".to_string())
        .collect();
    let inf = csv(entry, &format!("{name}.csv"), &lines);
    let (sf, target, count, local) = (
        scenario("uac.xml"),
        format!("127.0.0.1:{}", entry.port),
        n.to_string(),
        ports().to_string(),
    );
    sipp_bg(
        entry,
        name,
        &[
            &target,
            "-sf",
            sf.to_str().unwrap(),
            "-inf",
            inf.to_str().unwrap(),
            "-key",
            "domain",
            &target,
            "-m",
            &count,
            "-r",
            "10",
            "-p",
            &local,
            "-d",
            "200",
        ],
    )
}

#[test]
fn a_node_killed_under_load_leaves_the_others_serving() {
    let Some(db) = Schema::new("underload") else {
        return;
    };
    let (b, cfg_b) = start(&db, "b");
    let (c, _) = start(&db, "c");
    let (mut d, _) = start(&db, "d");
    add_accounts(&cfg_b, &["alice", "bob"]);
    std::thread::sleep(Duration::from_millis(1500));
    let uas_port = ports();
    let (ok, trace) = sipp_register(&c, "reg", "bob", uas_port, ports(), "register.xml", &[]);
    assert!(ok, "REGISTER at c failed:\n{trace}");
    std::thread::sleep(Duration::from_millis(1500));
    // one callee answers the calls of both loads
    let (sf, port) = (scenario("uas.xml"), uas_port.to_string());
    let uas = sipp_bg(
        &c,
        "uas",
        &["-sf", sf.to_str().unwrap(), "-p", &port, "-m", "60"],
    );
    let doomed = call_load(&d, "through-d", 30);
    let kept = call_load(&b, "through-b", 30);
    std::thread::sleep(Duration::from_millis(1500));
    d.child.kill().unwrap();
    d.child.wait().unwrap();
    let (ok, trace) = kept.finish();
    let invites = trace.matches("INVITE sip:bob@").count();
    assert!(
        ok,
        "every call through b completed while d died mid-load ({invites} INVITEs sent):\n{}",
        b.log_text()
    );
    drop(doomed);
    drop(uas);
    assert_eq!(status(&cfg_b)["c"]["state"], "alive");
}
