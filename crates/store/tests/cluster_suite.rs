//! What the nodes of a cluster share on PostgreSQL beyond [`Storage`] and [`Records`]:
//! the nodes table and heartbeats, the change notifications, the queue of observations
//! for the detector and the detector's lock. PostgreSQL only (`PALISADE_TEST_PG_URL`;
//! skipped with a note without it), each case in a schema of its own.
// Helpers outside `#[test]` functions assert by panicking too (clippy.toml exempts only
// test functions and `#[cfg(test)]` modules from the workspace's panic-free lints).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::Pg;
use palisade_detect::Subject;
use palisade_store::{BindingOp, BindingRow, ClusterChange, NodeJoin, Records, Storage, UserRow};

fn row(aor: &str, node: &str) -> BindingRow {
    BindingRow {
        aor: aor.into(),
        contact: format!("sip:{aor}"),
        expires: i64::MAX / 2,
        q: 1000,
        call_id: "c".into(),
        cseq: 1,
        path: String::new(),
        transport: "udp".into(),
        source: "192.0.2.1:5060".into(),
        user_agent: "ua".into(),
        node: node.into(),
        flow: format!("flow-of-{node}"),
    }
}

#[test]
fn pg_nodes_join_beat_and_show_what_they_hold() {
    let Some(pg) = Pg::new("nodes") else { return };
    let mut s = pg.node();
    let a = NodeJoin {
        name: "a",
        sip: "127.0.0.1:5060",
        admin: "127.0.0.1:5089",
        evidence_key: "origin+1234+key",
        version: "1.0",
    };
    s.join(&a).unwrap();
    s.join(&NodeJoin {
        name: "b",
        sip: "",
        admin: "",
        evidence_key: "",
        ..a
    })
    .unwrap();
    assert!(s.heartbeat("a", r#"{"registrations":3}"#).unwrap());
    assert!(
        !s.heartbeat("nobody", "{}").unwrap(),
        "a node without a row"
    );
    s.apply_bindings(&[
        BindingOp::Save(row("x@d", "a")),
        BindingOp::Save(row("y@d", "a")),
        BindingOp::Save(row("z@d", "b")),
    ])
    .unwrap();
    let nodes = s.nodes(0).unwrap();
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!((nodes[0].bindings, nodes[1].bindings), (2, 1));
    assert_eq!(nodes[0].sip, "127.0.0.1:5060");
    assert_eq!(nodes[0].admin, "127.0.0.1:5089");
    assert_eq!(nodes[0].evidence_key, "origin+1234+key");
    assert_eq!(nodes[1].admin, "");
    assert_eq!(nodes[0].load, r#"{"registrations":3}"#);
    assert_eq!(nodes[0].pid, i64::from(std::process::id()));
    assert!((0..5_000).contains(&nodes[0].age_ms), "{:?}", nodes[0]);
    std::thread::sleep(Duration::from_millis(300));
    let later = s.nodes(0).unwrap();
    assert!(later[1].age_ms >= 300, "b did not beat: {:?}", later[1]);
    // a restart under the same name is the same node
    s.join(&NodeJoin {
        sip: "127.0.0.1:5062",
        version: "1.1",
        ..a
    })
    .unwrap();
    let nodes = s.nodes(0).unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(
        (nodes[0].sip.as_str(), nodes[0].version.as_str()),
        ("127.0.0.1:5062", "1.1")
    );
}

/// Changes until `want` of them came (or 5 s passed).
fn changes(l: &mut palisade_store::Listener, want: usize) -> Vec<ClusterChange> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut out = Vec::new();
    while out.len() < want && Instant::now() < deadline {
        out.extend(l.wait(Duration::from_millis(200)).unwrap());
    }
    out
}

#[test]
fn pg_a_listener_hears_bindings_accounts_and_blocks_change() {
    let Some(pg) = Pg::new("listen") else { return };
    let mut other = pg.node();
    let s = pg.node();
    let mut l = s.listener().unwrap();
    assert_eq!(changes(&mut l, 1), [ClusterChange::Resync]);
    other
        .apply_bindings(&[
            BindingOp::Save(row("x@d", "a")),
            BindingOp::Save(row("y@d", "a")),
        ])
        .unwrap();
    let got = changes(&mut l, 2);
    let keys: BTreeSet<(String, String)> = got
        .iter()
        .map(|c| match c {
            ClusterChange::Binding { aor, contact } => (aor.clone(), contact.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(keys.len(), 2, "{got:?}");
    let named = s
        .bindings_named(&keys.iter().cloned().collect::<Vec<_>>(), 0)
        .unwrap();
    assert_eq!(named.len(), 2);
    assert!(named.iter().all(|r| r.node == "a" && r.flow == "flow-of-a"));
    other
        .apply_bindings(&[BindingOp::Remove {
            aor: "x@d".into(),
            contact: "sip:x@d".into(),
            node: "a".into(),
        }])
        .unwrap();
    assert!(
        matches!(&changes(&mut l, 1)[..], [ClusterChange::Binding { aor, .. }] if aor == "x@d")
    );
    assert!(s
        .bindings_named(&[("x@d".into(), "sip:x@d".into())], 0)
        .unwrap()
        .is_empty());
    other
        .add_user(&UserRow {
            name: "alice".into(),
            domain: "d".into(),
            ha1_md5: "0".repeat(32),
            ha1_sha256: "0".repeat(64),
            created: 0,
        })
        .unwrap();
    assert_eq!(changes(&mut l, 1), [ClusterChange::Settings]);
    other
        .add_block(&Subject::Account("alice".into()), i64::MAX / 2, "test", 1)
        .unwrap();
    assert_eq!(changes(&mut l, 1), [ClusterChange::Settings]);
    // another schema's changes are not heard
    let Some(elsewhere) = Pg::new("listen_other") else {
        return;
    };
    elsewhere
        .node()
        .apply_bindings(&[BindingOp::Save(row("q@d", "z"))])
        .unwrap();
    assert!(l.wait(Duration::from_millis(500)).unwrap().is_empty());
}

#[test]
fn pg_observations_reach_one_taker_once_in_order() {
    let Some(pg) = Pg::new("observations") else {
        return;
    };
    let s = pg.node();
    let sent: Vec<String> = (0..40).map(|i| format!("{{\"n\":{i}}}")).collect();
    for chunk in sent.chunks(7) {
        s.ship_observations("b", chunk).unwrap();
    }
    s.ship_observations("b", &[]).unwrap();
    let (t1, t2) = (pg.node(), pg.node());
    let taken: Vec<Vec<(String, String)>> = std::thread::scope(|sc| {
        let h: Vec<_> = [&t1, &t2]
            .into_iter()
            .map(|t| {
                sc.spawn(move || {
                    let mut got = Vec::new();
                    loop {
                        let batch = t.take_observations(5).unwrap();
                        if batch.is_empty() {
                            return got;
                        }
                        got.extend(batch);
                    }
                })
            })
            .collect();
        h.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<&String> = taken.iter().flatten().map(|(_, b)| b).collect();
    assert_eq!(all.len(), 40, "each once");
    for t in &taken {
        let nums: Vec<i64> = t
            .iter()
            .map(|(n, b)| {
                assert_eq!(n, "b");
                serde_json::from_str::<serde_json::Value>(b).unwrap()["n"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        assert!(nums.windows(2).all(|w| w[0] < w[1]), "in order: {nums:?}");
    }
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 40);
}

#[test]
fn pg_one_node_leads_the_detector_and_another_takes_over() {
    let Some(pg) = Pg::new("lead") else { return };
    let (a, b) = (pg.node(), pg.node());
    let mut lead = a.lead().unwrap().expect("the first node leads");
    assert!(lead.held(Duration::from_secs(2)));
    assert!(b.lead().unwrap().is_none(), "one leader at a time");
    drop(lead);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(mut l) = b.lead().unwrap() {
            assert!(l.held(Duration::from_secs(2)));
            break;
        }
        assert!(Instant::now() < deadline, "the lock was not released");
        std::thread::sleep(Duration::from_millis(100));
    }
}
