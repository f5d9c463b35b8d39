//! Three nodes of a cluster on one PostgreSQL database (the server `./test.sh` starts,
//! `PALISADE_TEST_PG_URL`; skipped with a note without it), each test in a schema of its
//! own: a phone registered at one node is called through another (the call goes through
//! the node holding the phone's flow), survives that node's `kill -9` by registering at a
//! third, and keeps exactly one binding; a block made at one node is enforced at the
//! others within a second.
// Helpers outside `#[test]` functions assert by panicking too (clippy.toml exempts only
// test functions and `#[cfg(test)]` modules from the workspace's panic-free lints).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;

/// A schema of its own in the test database, dropped at the end.
struct Schema {
    base: String,
    name: String,
    url: String,
}

fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            url,
            "-X",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .output()
        .expect("psql (Debian postgresql-client) must be installed");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Schema {
    fn new(tag: &str) -> Option<Schema> {
        let Ok(base) = std::env::var("PALISADE_TEST_PG_URL") else {
            eprintln!("note: PALISADE_TEST_PG_URL is not set: the cluster tests are skipped (./test.sh starts a PostgreSQL server and sets it)");
            return None;
        };
        let name = format!("cluster_{tag}_{}", std::process::id());
        psql(
            &base,
            &format!("DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"),
        );
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{name}");
        Some(Schema { base, name, url })
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([&self.base, "-X", "-q", "-c"])
            .arg(format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name))
            .output();
    }
}

/// A node's configuration file in its own data directory.
fn node_config(db: &Schema, name: &str) -> (PathBuf, PathBuf) {
    let dir = tempdir(&format!("cluster-{name}"));
    let cfg = dir.join("node.toml");
    std::fs::write(
        &cfg,
        format!(
            "[store]\nurl = \"{}\"\n\n[cluster]\nnode = \"{name}\"\ndead_after_ms = 2000\n\n[admin]\nlisten = \"\"\n",
            db.url
        ),
    )
    .unwrap();
    (dir, cfg)
}

fn palisade(cfg: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .arg("--config")
        .arg(cfg)
        .output()
        .unwrap()
}

fn start(db: &Schema, name: &str) -> (Server, PathBuf) {
    let (dir, cfg) = node_config(db, name);
    let port = ports();
    let s = Server::start_in(dir, port, &["--config", cfg.to_str().unwrap()]);
    (s, cfg)
}

fn add_accounts(cfg: &Path, users: &[&str]) {
    for u in users {
        let o = palisade(
            cfg,
            &[
                "user",
                "add",
                u,
                "--password",
                "secret",
                "--domain",
                "127.0.0.1",
            ],
        );
        assert!(
            o.status.success(),
            "user add {u}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// `palisade cluster status --json`, by node name.
fn status(cfg: &Path) -> serde_json::Map<String, serde_json::Value> {
    let o = palisade(cfg, &["cluster", "status", "--json"]);
    assert!(
        o.status.success(),
        "cluster status: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|n| (n["node"].as_str().unwrap().to_string(), n.clone()))
        .collect()
}

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
}

/// A node's configuration file.
fn node_cfg(s: &Server) -> PathBuf {
    s.dir.join("node.toml")
}

/// The caller's port: the last Via of the INVITE.
fn ports_of_caller(invite: &str) -> u16 {
    *via_ports(invite).last().unwrap()
}

#[test]
fn a_block_made_at_one_node_is_enforced_at_the_others_within_a_second() {
    let Some(db) = Schema::new("block") else {
        return;
    };
    let (a, cfg_a) = start(&db, "a");
    let (b, _) = start(&db, "b");
    let (c, _) = start(&db, "c");
    add_accounts(&cfg_a, &["alice", "bob", "carol"]);
    std::thread::sleep(Duration::from_millis(1500));
    for s in [&a, &b, &c] {
        // bob has no binding: an allowed call ends 480, a blocked one 403
        assert_eq!(authed_call(s, "alice", "bob"), 480, "{}", s.log_text());
    }
    let o = palisade(
        &cfg_a,
        &[
            "block",
            "add",
            "alice",
            "--for",
            "10m",
            "--reason",
            "cluster test",
        ],
    );
    assert!(
        o.status.success(),
        "block add: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let blocked = Instant::now();
    for s in [&b, &c] {
        loop {
            let st = authed_call(s, "alice", "bob");
            if st == 403 {
                break;
            }
            assert!(
                blocked.elapsed() < Duration::from_secs(1),
                "alice still answered {st} after {:?} at port {}",
                blocked.elapsed(),
                s.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("enforced at port {} after {:?}", s.port, blocked.elapsed());
    }
    assert_eq!(
        authed_call(&b, "carol", "bob"),
        480,
        "only alice is blocked"
    );
    drop(a);
}
