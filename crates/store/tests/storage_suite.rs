//! One suite for every backend of [`Storage`]: each case is written once, over a
//! [`Backend`] that opens handles on one store, and runs against a fresh SQLite directory
//! always and against PostgreSQL when `PALISADE_TEST_PG_URL` names a database that the
//! tests may create schemas in (`./test.sh` starts a private server and sets it). Each
//! PostgreSQL case works in a schema of its own (dropped at the end), so cases run in
//! parallel. A few cases after the shared ones concern PostgreSQL alone: migrations when
//! nodes start together, and the bound of the connection pool.
// Helpers outside `#[test]` functions assert by panicking too (clippy.toml exempts only
// test functions and `#[cfg(test)]` modules from the workspace's panic-free lints).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

mod common;

use common::{unique, Pg};
use palisade_store::{
    open_storage, BindingOp, BindingRow, PgStore, Storage, StoreConfig, StoreError, UserRow,
};

/// Where one case's store lives; every [`Backend::open`] is another handle on the same
/// data (another connection for SQLite, another pool, as a second node would have, for
/// PostgreSQL).
trait Backend {
    fn open(&self) -> Box<dyn Storage + Send>;
}

struct Sqlite {
    dir: PathBuf,
}

impl Sqlite {
    fn new(case: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("palisade-suite-{}", unique(case)));
        Sqlite { dir }
    }
}

impl Backend for Sqlite {
    fn open(&self) -> Box<dyn Storage + Send> {
        open_storage(&StoreConfig::default(), &self.dir).unwrap()
    }
}

impl Drop for Sqlite {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Backend for Pg {
    fn open(&self) -> Box<dyn Storage + Send> {
        open_storage(&self.config(2), std::path::Path::new("/nonexistent")).unwrap()
    }
}

fn user(name: &str, domain: &str) -> UserRow {
    UserRow {
        name: name.into(),
        domain: domain.into(),
        ha1_md5: format!("md5-{name}"),
        ha1_sha256: format!("sha-{name}"),
        created: 0,
    }
}

fn binding(aor: &str, contact: &str, expires: i64) -> BindingRow {
    BindingRow {
        aor: aor.into(),
        contact: contact.into(),
        expires,
        q: 1000,
        call_id: format!("call-{contact}"),
        cseq: 1,
        path: String::new(),
        transport: "udp".into(),
        source: "192.0.2.1:5060".into(),
        user_agent: "ua".into(),
        node: String::new(),
        flow: String::new(),
    }
}

fn names(rows: &[UserRow]) -> Vec<String> {
    rows.iter()
        .map(|u| format!("{}@{}", u.name, u.domain))
        .collect()
}

const D: &str = "example.com";

fn users_are_added_listed_and_removed(b: &dyn Backend) {
    let mut s = b.open();
    assert!(s.list_users(None).unwrap().is_empty());
    let mut carol = user("carol", "b.example");
    carol.created = 1234; // add_user stamps its own time
    for u in [user("bob", D), user("alice", D), user("Zed", D), carol] {
        s.add_user(&u).unwrap();
    }
    let e = s.add_user(&user("alice", D)).unwrap_err();
    assert!(
        matches!(&e, StoreError::UserExists(n) if n == "alice@example.com"),
        "{e}"
    );
    // the same name in another domain is another account
    s.add_user(&user("alice", "b.example")).unwrap();
    // by domain, then name, bytewise (capitals first)
    assert_eq!(
        names(&s.list_users(None).unwrap()),
        [
            "alice@b.example",
            "carol@b.example",
            "Zed@example.com",
            "alice@example.com",
            "bob@example.com"
        ]
    );
    let bob = s.list_users(Some(D)).unwrap().remove(2);
    assert_eq!(
        (bob.ha1_md5.as_str(), bob.ha1_sha256.as_str()),
        ("md5-bob", "sha-bob")
    );
    assert!(s
        .list_users(None)
        .unwrap()
        .iter()
        .all(|u| u.created > 1_600_000_000));
    assert!(s.list_users(Some("nobody.example")).unwrap().is_empty());
    assert!(s.remove_user("bob", D).unwrap());
    assert!(!s.remove_user("bob", D).unwrap());
    assert!(!s.remove_user("alice", "c.example").unwrap());
    assert_eq!(
        names(&s.list_users(Some(D)).unwrap()),
        ["Zed@example.com", "alice@example.com"]
    );
}

fn import_is_all_or_nothing(b: &dyn Backend) {
    let mut s = b.open();
    s.add_user(&user("alice", D)).unwrap();
    let e = s
        .import_users(&[user("bob", D), user("alice", D)])
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::UserExists(n) if n == "alice@example.com"),
        "{e}"
    );
    assert_eq!(s.list_users(None).unwrap().len(), 1, "bob was rolled back");
    // a name twice in one batch
    assert!(matches!(
        s.import_users(&[user("dan", D), user("dan", D)]),
        Err(StoreError::UserExists(_))
    ));
    assert_eq!(s.list_users(None).unwrap().len(), 1);
    // an imported account keeps its age; 0 means "now"
    let mut old = user("bob", D);
    old.created = 1_500_000_000;
    assert_eq!(s.import_users(&[old, user("carol", D)]).unwrap(), 2);
    let all = s.list_users(Some(D)).unwrap();
    assert_eq!(
        names(&all),
        ["alice@example.com", "bob@example.com", "carol@example.com"]
    );
    assert_eq!(all[1].created, 1_500_000_000);
    assert!(all[2].created > 1_600_000_000);
    assert_eq!(s.import_users(&[]).unwrap(), 0);
}

fn bindings_are_saved_refreshed_removed_and_expire(b: &dyn Backend) {
    let mut s = b.open();
    let a1 = binding("alice@example.com", "sip:alice@192.0.2.1", 2000);
    let a2 = binding("alice@example.com", "sip:alice@192.0.2.2", 1500);
    let mut bob = binding("bob@example.com", "sip:bob@192.0.2.9;transport=tcp", 2000);
    (bob.q, bob.cseq) = (u16::MAX, u32::MAX);
    bob.path = "<sip:edge1.example.com;lr>\n<sip:edge2.example.com;lr>".into();
    s.apply_bindings(&[
        BindingOp::Save(bob.clone()),
        BindingOp::Save(a2.clone()),
        BindingOp::Save(a1.clone()),
    ])
    .unwrap();
    // by AOR, then contact; every field as written
    assert_eq!(
        s.load_bindings(1000).unwrap(),
        vec![a1.clone(), a2.clone(), bob.clone()]
    );
    assert_eq!(
        s.load_bindings(1500).unwrap(),
        vec![a1.clone(), bob.clone()],
        "expired bindings are not loaded"
    );
    assert!(s.load_bindings(2000).unwrap().is_empty());
    // a refresh replaces the row
    let mut a1b = a1.clone();
    (a1b.expires, a1b.cseq, a1b.source) = (5000, 2, "198.51.100.7:5070".into());
    a1b.user_agent = "ua 2".into();
    s.apply_bindings(&[BindingOp::Save(a1b.clone())]).unwrap();
    assert_eq!(s.load_bindings(3000).unwrap(), vec![a1b.clone()]);
    // in order within a batch: removed, then saved again; a removal of nothing is fine
    let mut a2b = a2.clone();
    a2b.expires = 6000;
    s.apply_bindings(&[
        BindingOp::Remove {
            aor: a1.aor.clone(),
            contact: a1.contact.clone(),
            node: String::new(),
        },
        BindingOp::Save(a2b.clone()),
        BindingOp::Remove {
            aor: a2.aor.clone(),
            contact: a2.contact.clone(),
            node: String::new(),
        },
        BindingOp::Save(a2b.clone()),
        BindingOp::Remove {
            aor: "nobody@example.com".into(),
            contact: "sip:x".into(),
            node: String::new(),
        },
    ])
    .unwrap();
    assert_eq!(s.load_bindings(0).unwrap(), vec![a2b, bob]);
    s.apply_bindings(&[]).unwrap();
}

fn protections_and_allow_lists(b: &dyn Backend) {
    let mut s = b.open();
    s.add_user(&user("alice", D)).unwrap();
    s.add_user(&user("bob", D)).unwrap();
    s.add_user(&user("alice", "b.example")).unwrap();
    // unknown users: false, nothing stored
    assert!(!s.set_protected("nobody", D, true).unwrap());
    assert!(!s.set_protected("nobody", D, false).unwrap());
    assert!(!s.set_allowed("nobody", D, "bob", true).unwrap());
    assert!(!s.set_allowed("nobody", D, "bob", false).unwrap());
    assert!(!s.set_protected("alice", "c.example", true).unwrap());
    assert!(s.protections(None).unwrap().is_empty());

    assert!(s.set_protected("alice", D, true).unwrap());
    assert!(s.set_protected("alice", D, true).unwrap(), "twice is fine");
    for caller in ["carol", "bob", "Dave", "carol"] {
        assert!(s.set_allowed("alice", D, caller, true).unwrap());
    }
    assert!(s.set_allowed("alice", D, "erin", true).unwrap());
    assert!(s.set_allowed("alice", D, "erin", false).unwrap());
    assert!(
        !s.set_allowed("alice", D, "erin", false).unwrap(),
        "not listed"
    );
    // an allow-list without protection is kept but not listed
    assert!(s.set_allowed("bob", D, "alice", true).unwrap());
    assert!(s.set_protected("alice", "b.example", true).unwrap());
    let p = s.protections(None).unwrap();
    assert_eq!(
        p.iter()
            .map(|p| format!("{}@{}", p.name, p.domain))
            .collect::<Vec<_>>(),
        ["alice@b.example", "alice@example.com"]
    );
    assert!(p[0].allow.is_empty());
    assert_eq!(p[1].allow, ["Dave", "bob", "carol"]);
    assert_eq!(s.protections(Some(D)).unwrap(), vec![p[1].clone()]);
    assert!(s.protections(Some("nobody.example")).unwrap().is_empty());
    // bob's list shows once he is protected
    assert!(s.set_protected("bob", D, true).unwrap());
    assert_eq!(s.protections(Some(D)).unwrap()[1].allow, ["alice"]);
    assert!(s.set_protected("bob", D, false).unwrap());
    assert!(
        s.set_protected("bob", D, false).unwrap(),
        "off twice: still a user"
    );
    assert_eq!(s.protections(Some(D)).unwrap().len(), 1);
    // removing a user removes its settings: a new account of that name starts bare
    assert!(s.remove_user("alice", D).unwrap());
    s.add_user(&user("alice", D)).unwrap();
    assert!(s.protections(Some(D)).unwrap().is_empty());
    assert!(s.set_protected("alice", D, true).unwrap());
    assert!(s.protections(Some(D)).unwrap()[0].allow.is_empty());
}

fn version_moves_when_another_handle_commits(b: &dyn Backend) {
    let mut writer = b.open();
    let reader = b.open();
    let mut v = reader.version().unwrap();
    assert_eq!(reader.version().unwrap(), v, "stable while nothing changes");
    let moved = |what: &str, v: &mut i64| {
        let now = reader.version().unwrap();
        assert_ne!(now, *v, "version did not move after {what}");
        *v = now;
    };
    writer.add_user(&user("alice", D)).unwrap();
    moved("add_user", &mut v);
    writer.import_users(&[user("bob", D)]).unwrap();
    moved("import_users", &mut v);
    writer.set_protected("alice", D, true).unwrap();
    moved("set_protected", &mut v);
    writer.set_allowed("alice", D, "bob", true).unwrap();
    moved("set_allowed", &mut v);
    writer.set_allowed("alice", D, "bob", false).unwrap();
    moved("set_allowed (removal)", &mut v);
    writer.set_protected("alice", D, false).unwrap();
    moved("set_protected (off)", &mut v);
    writer.remove_user("bob", D).unwrap();
    moved("remove_user", &mut v);
    assert_eq!(reader.version().unwrap(), v);
}

fn two_handles_see_each_others_writes(b: &dyn Backend) {
    let (mut one, mut two) = (b.open(), b.open());
    one.add_user(&user("alice", D)).unwrap();
    assert_eq!(names(&two.list_users(None).unwrap()), ["alice@example.com"]);
    assert!(matches!(
        two.add_user(&user("alice", D)),
        Err(StoreError::UserExists(_))
    ));
    two.set_protected("alice", D, true).unwrap();
    assert_eq!(one.protections(None).unwrap().len(), 1);
    let bind = binding("alice@example.com", "sip:alice@192.0.2.1", 9000);
    two.apply_bindings(&[BindingOp::Save(bind.clone())])
        .unwrap();
    assert_eq!(one.load_bindings(0).unwrap(), vec![bind]);
    // both writing at once, as two nodes would
    std::thread::scope(|s| {
        for (tag, store) in [("a", &mut one), ("b", &mut two)] {
            s.spawn(move || {
                for i in 0..25 {
                    store.add_user(&user(&format!("{tag}{i:02}"), D)).unwrap();
                    let aor = format!("{tag}{i:02}@example.com");
                    store
                        .apply_bindings(&[BindingOp::Save(binding(&aor, "sip:x", 9000))])
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(one.list_users(Some(D)).unwrap().len(), 51);
    assert_eq!(two.list_users(Some(D)).unwrap().len(), 51);
    assert_eq!(one.load_bindings(0).unwrap().len(), 51);
    assert_eq!(two.load_bindings(0).unwrap(), one.load_bindings(0).unwrap());
}

fn reopening_keeps_everything(b: &dyn Backend) {
    {
        let mut s = b.open();
        s.add_user(&user("alice", D)).unwrap();
        s.set_protected("alice", D, true).unwrap();
        s.set_allowed("alice", D, "bob", true).unwrap();
        s.apply_bindings(&[BindingOp::Save(binding("alice@example.com", "sip:a", 9000))])
            .unwrap();
    }
    for _ in 0..2 {
        let s = b.open();
        assert_eq!(names(&s.list_users(None).unwrap()), ["alice@example.com"]);
        assert_eq!(s.protections(None).unwrap()[0].allow, ["bob"]);
        assert_eq!(s.load_bindings(0).unwrap().len(), 1);
    }
}

/// A binding belongs to the node that saved it last: a phone that registers again
/// through another node moves its row there (never a second row), and a removal by the
/// node it left (its expiry there) leaves the row alone.
fn bindings_belong_to_the_node_that_saved_them_last(b: &dyn Backend) {
    let mut s = b.open();
    let mut at_a = binding("bob@example.com", "sip:bob@192.0.2.9:5060", 5000);
    (at_a.node, at_a.flow) = ("a".into(), "f1".into());
    s.apply_bindings(&[BindingOp::Save(at_a.clone())]).unwrap();
    let mut at_c = at_a.clone();
    (at_c.node, at_c.flow, at_c.cseq) = ("c".into(), "f2".into(), 2);
    s.apply_bindings(&[BindingOp::Save(at_c.clone())]).unwrap();
    assert_eq!(s.load_bindings(0).unwrap(), vec![at_c.clone()]);
    let remove = |node: &str| BindingOp::Remove {
        aor: at_a.aor.clone(),
        contact: at_a.contact.clone(),
        node: node.into(),
    };
    s.apply_bindings(&[remove("a")]).unwrap();
    assert_eq!(
        s.load_bindings(0).unwrap(),
        vec![at_c],
        "a no longer holds it"
    );
    s.apply_bindings(&[remove("c")]).unwrap();
    assert!(s.load_bindings(0).unwrap().is_empty());
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
    users_are_added_listed_and_removed,
    import_is_all_or_nothing,
    bindings_are_saved_refreshed_removed_and_expire,
    bindings_belong_to_the_node_that_saved_them_last,
    protections_and_allow_lists,
    version_moves_when_another_handle_commits,
    two_handles_see_each_others_writes,
    reopening_keeps_everything,
);

// PostgreSQL alone from here on.

fn applied_migrations(store: &PgStore) -> Vec<i32> {
    store
        .with_connection(|c| {
            Ok(c.query(
                "SELECT version FROM schema_migrations ORDER BY version",
                &[],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
        })
        .unwrap()
}

#[test]
fn pg_migrations_run_once_when_nodes_open_together_and_again() {
    let Some(b) = Pg::new("migrations") else {
        return;
    };
    let latest = PgStore::latest_schema_version();
    assert!(latest >= 1);
    // three nodes starting at the same moment on an empty schema
    let nodes: Vec<PgStore> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3).map(|_| s.spawn(|| b.node())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let expected: Vec<i32> = (1..=latest).collect();
    for n in &nodes {
        assert_eq!(n.schema_version(), latest);
    }
    assert_eq!(applied_migrations(&nodes[0]), expected);
    let mut first = nodes.into_iter().next().unwrap();
    first.add_user(&user("alice", D)).unwrap();
    drop(first);
    // opened again: nothing applied twice, nothing lost
    let again = b.node();
    assert_eq!(applied_migrations(&again), expected);
    assert_eq!(again.list_users(None).unwrap().len(), 1);
}

#[test]
fn pg_version_moves_once_per_transaction_whoever_writes() {
    let Some(b) = Pg::new("version_xact") else {
        return;
    };
    let mut node = b.node();
    let v0 = node.version().unwrap();
    let many: Vec<UserRow> = (0..100).map(|i| user(&format!("u{i:03}"), D)).collect();
    node.import_users(&many).unwrap();
    assert_eq!(node.version().unwrap(), v0 + 1, "one import, one step");
    // bindings do not move it: every node writes them all the time
    node.apply_bindings(&[BindingOp::Save(binding("u000@example.com", "sip:u", 9000))])
        .unwrap();
    assert_eq!(node.version().unwrap(), v0 + 1);
    // SQL run by hand (a provisioning system, say) moves it too, and a rollback does not
    node.with_connection(|c| {
        let mut tx = c.transaction()?;
        tx.execute("UPDATE users SET ha1_md5 = 'x' WHERE name = 'u001'", &[])?;
        tx.execute("DELETE FROM users WHERE name = 'u002'", &[])?;
        tx.commit()?;
        let mut tx = c.transaction()?;
        tx.execute("DELETE FROM users", &[])?;
        tx.rollback()?;
        Ok(())
    })
    .unwrap();
    assert_eq!(node.version().unwrap(), v0 + 2);
    assert_eq!(node.list_users(None).unwrap().len(), 99);
}

/// Holds a connection of `store` on a thread of `s` until the returned sender is dropped
/// (the receiver says when it has one).
fn hold<'s>(
    s: &'s std::thread::Scope<'s, '_>,
    store: &'s PgStore,
) -> (mpsc::Receiver<()>, mpsc::Sender<()>) {
    let (got_tx, got) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    s.spawn(move || {
        store
            .with_connection(|_| {
                got_tx.send(()).unwrap();
                let _ = release_rx.recv();
                Ok(())
            })
            .unwrap()
    });
    (got, release)
}

#[test]
fn pg_the_pool_is_bounded() {
    let Some(b) = Pg::new("pool") else {
        return;
    };
    let store = PgStore::open(&b.url, 2, Duration::from_secs(60)).unwrap();
    std::thread::scope(|s| {
        let (got_a, release_a) = hold(s, &store);
        let (got_b, _release_b) = hold(s, &store);
        got_a.recv().unwrap();
        got_b.recv().unwrap();
        let third = s.spawn(|| store.list_users(None));
        let mut waited = false;
        for _ in 0..3000 {
            let st = store.pool_status();
            assert!(st.open <= 2, "{st:?}");
            if st.waiting == 1 {
                waited = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            waited,
            "the third checkout never waited: {:?}",
            store.pool_status()
        );
        assert_eq!(store.pool_status().open, 2);
        drop(release_a);
        assert!(third.join().unwrap().unwrap().is_empty());
    });
    let st = store.pool_status();
    assert_eq!((st.max, st.open, st.idle, st.waiting), (2, 2, 2, 0));
}

#[test]
fn pg_a_checkout_times_out_with_a_clear_error() {
    let Some(b) = Pg::new("pool_timeout") else {
        return;
    };
    let store = PgStore::open(&b.url, 2, Duration::from_millis(200)).unwrap();
    std::thread::scope(|s| {
        let (got_a, _release_a) = hold(s, &store);
        let (got_b, _release_b) = hold(s, &store);
        got_a.recv().unwrap();
        got_b.recv().unwrap();
        let e = store.version().unwrap_err();
        assert!(matches!(e, StoreError::PoolTimeout { max: 2, .. }), "{e}");
        assert!(e.to_string().contains("max_connections"), "{e}");
        assert_eq!(store.pool_status().open, 2);
    });
    // and once they are back, it works
    assert!(store.version().is_ok());
}

#[test]
fn pg_an_unreachable_server_is_an_error_not_a_hang() {
    // (no server needed) a port nothing listens on (bound, then closed)
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = PgStore::open(
        &format!("postgres://postgres@127.0.0.1:{port}/x"),
        2,
        Duration::from_secs(5),
    )
    .unwrap_err();
    assert!(matches!(e, StoreError::Postgres(_)), "{e}");
}
