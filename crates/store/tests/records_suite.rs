//! One suite for every backend of [`Records`], in the manner of `storage_suite.rs`: each
//! case is written once over a [`Backend`], and runs on a fresh SQLite directory
//! (`records.db`, accounts in `palisade.db`) always and on PostgreSQL (a schema of its
//! own in the database of `PALISADE_TEST_PG_URL`) when that is set. The cases after the
//! shared ones concern PostgreSQL alone: numbers unique across nodes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::path::PathBuf;

mod common;

use common::{unique, Pg};
use palisade_detect::{
    ActionKind, CallRecord, Evidence, Finding, FindingKind, Network, Output, RegistrationRecord,
    Restriction, Subject,
};
use palisade_store::{
    open_records, Lifted, Records, SqliteStore, Storage, StoreConfig, UserRow, BY_DETECTOR,
    BY_OPERATOR, RECORD_RANGE,
};

/// Where one case's records live; every [`Backend::records`] is another handle on them.
trait Backend {
    fn records(&self) -> Box<dyn Records + Send>;
    /// The accounts (SQLite: another file; PostgreSQL: the same database).
    fn accounts(&self) -> Box<dyn Storage + Send>;
}

struct Sqlite {
    dir: PathBuf,
}

impl Sqlite {
    fn new(case: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("palisade-records-{}", unique(case)));
        Sqlite { dir }
    }
}

impl Backend for Sqlite {
    fn records(&self) -> Box<dyn Records + Send> {
        open_records(&StoreConfig::default(), &self.dir).unwrap()
    }
    fn accounts(&self) -> Box<dyn Storage + Send> {
        Box::new(SqliteStore::open(&self.dir).unwrap())
    }
}

impl Drop for Sqlite {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Backend for Pg {
    fn records(&self) -> Box<dyn Records + Send> {
        open_records(&self.config(2), std::path::Path::new("/nonexistent")).unwrap()
    }
    fn accounts(&self) -> Box<dyn Storage + Send> {
        Box::new(self.node())
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn src(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn call(id: u64, caller: &str, callee: &str, at: i64) -> CallRecord {
    CallRecord {
        id,
        call_id: format!("call-{id}@example.com"),
        caller: caller.into(),
        callee: callee.into(),
        source: src("192.0.2.7:5060"),
        transport: "udp",
        user_agent: "Softphone/1.0".into(),
        fingerprint: 0xdead_beef_0000_0001,
        sdp: u64::MAX,
        invite_at: at,
        ringing_at: None,
        answered_at: None,
        final_at: Some(at + 5),
        ended_at: None,
        status: Some(487),
        blocked: false,
        message: false,
    }
}

fn registration(id: u64, account: &str, at: i64) -> RegistrationRecord {
    RegistrationRecord {
        id,
        at,
        account: account.into(),
        source: src("[2001:db8::1]:5061"),
        transport: "tls",
        user_agent: "Phone/2".into(),
        fingerprint: 42,
        first_seen: at,
    }
}

fn finding(id: u64, subject: Subject, first_seen: i64, detected_at: i64) -> Finding {
    Finding {
        id,
        kind: FindingKind::Sweep,
        subject,
        score: 0.75,
        first_seen,
        detected_at,
        updated_at: detected_at,
        action: ActionKind::Block,
        accounts: vec!["mallory".into()],
        records: vec![Evidence::Event("probe \"x\"".into())],
        summary: "rang and cancelled".into(),
    }
}

fn detected(subject: Subject, until: i64, finding: u64) -> Output {
    Output::Restrict(Restriction {
        subject,
        until,
        per_minute: None,
        finding,
    })
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

fn outputs_are_written_and_read_back(b: &dyn Backend) {
    let mut s = b.records();
    let (c0, r0, f0) = s.next_ids().unwrap();
    let t = 1_700_000_000_000;
    let mut c1 = call(c0, "mallory", "alice", t);
    c1.ringing_at = Some(t + 1);
    let mut c2 = call(c0 + 1, "mallory", "bob", t + 10);
    c2.blocked = true;
    c2.status = Some(403);
    let mut c3 = call(c0 + 2, "alice", "bob", t + 20);
    c3.message = true;
    c3.transport = "tcp";
    c3.status = None;
    let regs = [
        registration(r0, "mallory", t - 100),
        registration(r0 + 1, "alice", t - 50),
        registration(r0 + 2, "mallory", t - 10),
    ];
    let mallory = Subject::Account("mallory".into());
    let mut f = finding(f0, mallory.clone(), t, t + 5);
    f.records.push(Evidence::Call(c1.id));
    f.records.push(Evidence::Registration(r0));
    let r = Restriction {
        subject: mallory.clone(),
        until: now_ms() + 3_600_000,
        per_minute: Some(3),
        finding: f.id,
    };
    let mut outs: Vec<Output> = vec![
        Output::Call(c1.clone()),
        Output::Call(c2.clone()),
        Output::Call(c3.clone()),
    ];
    outs.extend(regs.iter().cloned().map(Output::Registration));
    outs.push(Output::Finding(f.clone()));
    outs.push(Output::Restrict(r.clone()));
    s.apply_outputs(&outs).unwrap();

    // another handle reads it all back
    let s = b.records();
    assert_eq!(
        s.calls(0, None).unwrap(),
        [c1.clone(), c2.clone(), c3.clone()]
    );
    assert_eq!(s.calls(0, Some("bob")).unwrap(), [c2.clone(), c3.clone()]);
    assert_eq!(s.calls(t + 15, None).unwrap(), [c3.clone()]);
    assert!(s.calls(0, Some("nobody")).unwrap().is_empty());
    assert_eq!(s.registrations_since(t - 60).unwrap(), regs[1..]);
    assert_eq!(
        sorted(s.first_registrations().unwrap()),
        [
            ("alice".to_string(), t - 50),
            ("mallory".to_string(), t - 100)
        ]
    );
    assert_eq!(
        sorted(s.call_pairs(t + 5).unwrap()),
        [
            ("alice".to_string(), "bob".to_string()),
            ("mallory".to_string(), "bob".to_string())
        ]
    );
    assert_eq!(s.findings(0).unwrap(), [f.clone()]);
    assert_eq!(s.restrictions(now_ms()).unwrap(), std::slice::from_ref(&r));
    assert!(s.restrictions(r.until).unwrap().is_empty());

    // targets: alice from the finding's evidence (it rang), bob from the call a
    // restriction refused once the account was detected
    let targets = s.targets(0).unwrap();
    assert_eq!(
        targets
            .iter()
            .map(|t| (t.user.as_str(), t.calls, t.rang, t.findings.clone()))
            .collect::<Vec<_>>(),
        [
            ("alice", 1, true, vec![f.id]),
            ("bob", 1, false, vec![f.id])
        ]
    );
    assert_eq!(targets[0].callers, ["mallory"]);
    assert!(s.targets(t + 11).unwrap().is_empty());

    // records are written once; a finding is rewritten as it grows
    let mut s = b.records();
    let mut again = c1.clone();
    again.callee = "carol".into();
    let mut grown = f.clone();
    grown.records.push(Evidence::Call(c2.id));
    grown.updated_at = t + 30;
    grown.score = 0.9;
    // (and the first of two with one number in a batch stays)
    let c4 = call(c3.id + 1, "dave", "erin", t + 40);
    let mut c4_again = c4.clone();
    c4_again.callee = "frank".into();
    s.apply_outputs(&[
        Output::Call(again),
        Output::Finding(grown.clone()),
        Output::Call(c4.clone()),
        Output::Call(c4_again),
    ])
    .unwrap();
    assert_eq!(s.calls(0, None).unwrap()[0], c1);
    assert_eq!(s.calls(t + 40, None).unwrap(), std::slice::from_ref(&c4));
    assert_eq!(s.findings(0).unwrap(), [grown.clone()]);
    assert_eq!(s.findings(t + 30).unwrap(), [grown.clone()]);
    assert!(s.findings(t + 31).unwrap().is_empty());

    // an update whose lists stay as written moves only its score, time, action, summary
    let mut touched = grown.clone();
    touched.score = 0.95;
    touched.updated_at = t + 35;
    touched.action = palisade_detect::ActionKind::Block;
    touched.summary = "still going".into();
    s.apply_outputs(&[Output::FindingUpdate(palisade_detect::FindingUpdate {
        id: touched.id,
        score: touched.score,
        updated_at: touched.updated_at,
        action: touched.action,
        summary: touched.summary.clone(),
    })])
    .unwrap();
    assert_eq!(s.findings(0).unwrap(), [touched.clone()]);
    assert_eq!(s.findings(t + 35).unwrap(), [touched]);

    // the next numbers are past those written
    let (c, r, f) = s.next_ids().unwrap();
    assert!(c > c4.id && r > regs[2].id && f > f0, "{c} {r} {f}");
}

fn account_ages_are_the_accounts_creation_times(b: &dyn Backend) {
    let mut a = b.accounts();
    a.import_users(&[UserRow {
        name: "old".into(),
        domain: "example.com".into(),
        ha1_md5: "00".into(),
        ha1_sha256: "11".into(),
        created: 1_000_000,
    }])
    .unwrap();
    a.add_user(&UserRow {
        name: "new".into(),
        domain: "example.org".into(),
        ha1_md5: "22".into(),
        ha1_sha256: "33".into(),
        created: 0,
    })
    .unwrap();
    let ages = sorted(b.accounts().account_ages().unwrap());
    assert_eq!(ages.len(), 2);
    assert_eq!(ages[0].0, "new");
    assert!(ages[0].1 > 1_600_000_000, "{ages:?}");
    assert_eq!(ages[1], ("old".to_string(), 1_000_000));
}

fn blocks_are_numbered_lifted_and_queued(b: &dyn Backend) {
    let mut s = b.records();
    let t = now_ms();
    let (min, hour) = (60_000, 3_600_000);
    let mallory = Subject::Account("mallory".into());
    let net = Subject::Network(Network::parse("192.0.2.0/24").unwrap());
    s.apply_outputs(&[detected(mallory.clone(), t + min, 7)])
        .unwrap();
    let first = s.blocks(t).unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].by, BY_DETECTOR);
    // the same finding extends its row: same number
    s.apply_outputs(&[detected(mallory.clone(), t + 2 * min, 7)])
        .unwrap();
    assert_eq!(s.blocks(t).unwrap()[0].id, first[0].id);
    assert_eq!(s.blocks(t).unwrap()[0].until, t + 2 * min);
    // the operator's block replaces it (from another handle), and the version the
    // server polls for such changes moves
    let v = s.block_changes_version().unwrap();
    assert_eq!(
        s.block_changes_version().unwrap(),
        v,
        "stable while nothing changes"
    );
    let mut o = b.records();
    let (blk, old) = o.add_block(&mallory, t + hour, "fraud desk", t).unwrap();
    assert_ne!(
        s.block_changes_version().unwrap(),
        v,
        "moved by the operator's block"
    );
    assert_eq!(old.map(|o| o.id), Some(first[0].id));
    assert!(blk.id > first[0].id);
    assert_eq!(
        (blk.by.as_str(), blk.reason.as_str()),
        (BY_OPERATOR, "fraud desk")
    );
    // a detector does not replace it while it is in force
    s.apply_outputs(&[detected(mallory.clone(), t + 2 * hour, 8)])
        .unwrap();
    assert_eq!(s.blocks(t).unwrap(), vec![blk.clone()]);
    assert_eq!(s.restrictions(t).unwrap(), vec![blk.restriction()]);
    let (n, old) = o.add_block(&net, t + min, "scanner", t).unwrap();
    assert_eq!(old, None);
    assert_eq!(s.blocks(t).unwrap(), vec![blk.clone(), n.clone()]);
    // lifting
    assert_eq!(o.lift_block(n.id + 100, t).unwrap(), Lifted::Unknown);
    assert_eq!(
        o.lift_block(n.id, t + min).unwrap(),
        Lifted::Ended(n.clone())
    );
    assert_eq!(o.lift_block(n.id, t).unwrap(), Lifted::Lifted(n.clone()));
    assert_eq!(o.lift_block(n.id, t).unwrap(), Lifted::Unknown);
    // the queue: two blocks and one lift, in order, until recorded
    let q = s.pending_block_changes().unwrap();
    assert_eq!(
        q.iter()
            .map(|c| (c.action.as_str(), c.block.id, c.at))
            .collect::<Vec<_>>(),
        [
            ("block", blk.id, t),
            ("block", n.id, t),
            ("unblock", n.id, t)
        ]
    );
    assert_eq!(q[0].block, blk);
    assert!(q[0].seq < q[1].seq && q[1].seq < q[2].seq);
    s.block_change_recorded(q[0].seq, t).unwrap();
    assert_eq!(s.pending_block_changes().unwrap(), q[1..]);
    for c in &q[1..] {
        s.block_change_recorded(c.seq, t).unwrap();
    }
    assert!(s.pending_block_changes().unwrap().is_empty());
    // once the operator's block is lifted, a detector may restrict the subject again,
    // under a new number
    assert!(matches!(
        o.lift_block(blk.id, t).unwrap(),
        Lifted::Lifted(_)
    ));
    s.apply_outputs(&[detected(mallory.clone(), t + hour, 9)])
        .unwrap();
    let now = s.blocks(t).unwrap();
    assert_eq!(now.len(), 1);
    assert!(now[0].id > n.id, "numbers are never reused");
    assert_eq!((now[0].by.as_str(), now[0].finding), (BY_DETECTOR, 9));
}

fn notifications_are_set_read_and_queued(b: &dyn Backend) {
    let mut s = b.records();
    assert_eq!(s.notification("alice", "sip").unwrap(), None);
    s.set_notification("bob", "sip", "queued", "hello bob", 2_000)
        .unwrap();
    s.set_notification("alice", "sip", "queued", "hello alice", 1_000)
        .unwrap();
    s.set_notification("alice", "webhook", "queued", "{}", 1_500)
        .unwrap();
    let s2 = b.records();
    assert_eq!(
        s2.queued("sip").unwrap(),
        [
            ("alice".to_string(), "hello alice".to_string()),
            ("bob".to_string(), "hello bob".to_string())
        ]
    );
    assert_eq!(s2.queued("webhook").unwrap().len(), 1);
    s.set_notification("alice", "sip", "sent", "delivered", 3_000)
        .unwrap();
    s.set_notification("alice", "webhook", "failed", "HTTP 500", 3_000)
        .unwrap();
    let n = s2.notification("alice", "sip").unwrap().unwrap();
    assert_eq!(
        (
            n.user.as_str(),
            n.channel.as_str(),
            n.state.as_str(),
            n.detail.as_str()
        ),
        ("alice", "sip", "sent", "delivered")
    );
    assert_eq!(
        s2.notification("alice", "webhook").unwrap().unwrap().state,
        "failed"
    );
    assert_eq!(s2.queued("sip").unwrap().len(), 1);
    assert!(s2.queued("webhook").unwrap().is_empty());
    // queued again (a new report): waiting once more
    s.set_notification("alice", "webhook", "queued", "{\"again\":1}", 4_000)
        .unwrap();
    assert_eq!(
        s2.queued("webhook").unwrap(),
        [("alice".to_string(), "{\"again\":1}".to_string())]
    );
}

fn old_records_are_purged(b: &dyn Backend) {
    let mut s = b.records();
    let (c0, r0, f0) = s.next_ids().unwrap();
    let t = 1_700_000_000_000;
    let f = finding(f0, Subject::Device(9), t, t);
    s.apply_outputs(&[
        Output::Call(call(c0, "a", "b", t - 2_000)),
        Output::Call(call(c0 + 1, "a", "c", t)),
        Output::Registration(registration(r0, "a", t - 1_000)),
        Output::Registration(registration(r0 + 1, "a", t + 1)),
        Output::Finding(f.clone()),
    ])
    .unwrap();
    assert_eq!(s.purge_records(t).unwrap(), 2);
    assert_eq!(
        s.calls(0, None)
            .unwrap()
            .iter()
            .map(|c| c.id)
            .collect::<Vec<_>>(),
        [c0 + 1]
    );
    assert_eq!(
        s.registrations_since(0)
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>(),
        [r0 + 1]
    );
    // findings stay
    assert_eq!(s.findings(0).unwrap(), [f]);
    assert_eq!(s.purge_records(t).unwrap(), 0);
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[test]
            fn $case() {
                super::$case(&super::Sqlite::new(stringify!($case)));
            })*
        }
        mod on_postgres {
            $(#[test]
            fn $case() {
                if let Some(b) = super::Pg::new(stringify!($case)) {
                    super::$case(&b);
                }
            })*
        }
    };
}

suite!(
    outputs_are_written_and_read_back,
    account_ages_are_the_accounts_creation_times,
    blocks_are_numbered_lifted_and_queued,
    notifications_are_set_read_and_queued,
    old_records_are_purged,
);

// PostgreSQL alone from here on.

#[test]
fn pg_record_numbers_are_unique_across_nodes() {
    let Some(b) = Pg::new("ids_nodes") else {
        return;
    };
    let (mut one, mut two) = (b.node(), b.node());
    // both detectors start at the same moment: each gets a range of its own
    let (a, ra, fa) = one.next_ids().unwrap();
    let (c, rc, fc) = two.next_ids().unwrap();
    assert_eq!((a, a), (ra, fa));
    assert_eq!((c, c), (rc, fc));
    assert!(a.abs_diff(c) >= RECORD_RANGE, "{a} {c}");
    // each numbers its records on from its start; nothing collides, nothing is dropped
    let t = 1_700_000_000_000;
    let batch = |start: u64, who: &str| -> Vec<Output> {
        (0..5)
            .map(|i| Output::Call(call(start + i, who, "victim", t + i as i64)))
            .chain((0..5).map(|i| Output::Registration(registration(start + i, who, t))))
            .collect()
    };
    one.apply_outputs(&batch(a, "one")).unwrap();
    two.apply_outputs(&batch(c, "two")).unwrap();
    assert_eq!(one.calls(0, None).unwrap().len(), 10);
    assert_eq!(two.registrations_since(0).unwrap().len(), 10);
    // a detector that takes over later starts past both
    let (d, _, _) = b.node().next_ids().unwrap();
    assert!(d >= a.max(c) + RECORD_RANGE, "{d}");
    // blocks added from both nodes at once get distinct numbers
    let ids: Vec<i64> = std::thread::scope(|s| {
        let hs: Vec<_> = [one.clone(), two.clone()]
            .into_iter()
            .enumerate()
            .map(|(i, mut n)| {
                s.spawn(move || {
                    (0..10)
                        .map(|k| {
                            let subject = Subject::Account(format!("acct{i}-{k}"));
                            n.add_block(&subject, now_ms() + 60_000, "test", now_ms())
                                .unwrap()
                                .0
                                .id
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        sorted(ids.clone())
            .windows(2)
            .filter(|w| w[0] == w[1])
            .count(),
        0
    );
    assert_eq!(one.blocks(0).unwrap().len(), 20);
    assert_eq!(two.pending_block_changes().unwrap().len(), 20);
}

#[test]
fn pg_operators_on_two_nodes_block_one_subject_at_once() {
    let Some(b) = Pg::new("block_race") else {
        return;
    };
    let nodes = [b.node(), b.node(), b.node()];
    let subject = Subject::Account("mallory".into());
    let t = now_ms();
    let added: Vec<(i64, bool)> = std::thread::scope(|s| {
        let hs: Vec<_> = nodes
            .iter()
            .cloned()
            .map(|mut n| {
                let subject = subject.clone();
                s.spawn(move || {
                    (0..10)
                        .map(|_| {
                            let (b, old) = n.add_block(&subject, t + 60_000, "race", t).unwrap();
                            (b.id, old.is_some())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    // every block was made (and queued) under a number of its own, each but the first
    // replacing one in force; one is left
    let ids: Vec<i64> = sorted(added.iter().map(|a| a.0).collect());
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert_eq!(added.iter().filter(|a| !a.1).count(), 1);
    let left = nodes[0].blocks(t).unwrap();
    assert_eq!(left.len(), 1);
    assert!(ids.contains(&left[0].id));
    assert_eq!(nodes[1].pending_block_changes().unwrap().len(), 30);
}

#[test]
fn pg_tables_mirror_sqlite_column_for_column() {
    let Some(b) = Pg::new("mirror") else {
        return;
    };
    let node = b.node();
    let lite = Sqlite::new("mirror");
    drop(lite.records());
    let conn = rusqlite::Connection::open(lite.dir.join("records.db")).unwrap();
    for table in [
        "calls",
        "registrations",
        "findings",
        "notifications",
        "restrictions",
        "block_changes",
    ] {
        let mut st = conn
            .prepare("SELECT name FROM pragma_table_info(?1)")
            .unwrap();
        let sqlite: Vec<String> = sorted(
            st.query_map([table], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap(),
        );
        let pg: Vec<String> = sorted(
            node.with_connection(|c| {
                Ok(c.query(
                    "SELECT column_name::TEXT FROM information_schema.columns
                     WHERE table_schema = current_schema() AND table_name = $1",
                    &[&table],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect())
            })
            .unwrap(),
        );
        assert!(!sqlite.is_empty());
        assert_eq!(pg, sqlite, "{table}");
    }
}
