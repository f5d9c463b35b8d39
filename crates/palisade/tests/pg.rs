//! The real binary on PostgreSQL (`[store] url`): accounts added and imported with
//! `--config`, a digest REGISTER that gets its 200 and leaves its binding in the
//! database's `bindings` table, a block added by the command line while the server runs
//! that the server enforces, and the reports read from the database, with no SQLite file
//! made under the data directory.
//!
//! Skipped, with a note, when `PALISADE_TEST_PG_URL` is not set (`./test.sh` starts a
//! private server and sets it). Each test works in a schema of its own (the URL's
//! `options=-c search_path=…`), dropped at its end.
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

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::*;
use palisade_detect::{ActionKind, Evidence, Finding, FindingKind, Output as Detected, Subject};
use palisade_store::{PgStore, Records};

/// A schema of its own in the database of `PALISADE_TEST_PG_URL`, dropped at the end.
struct Pg {
    base: String,
    schema: String,
    url: String,
}

impl Pg {
    /// `None` (and a note on stderr) when `PALISADE_TEST_PG_URL` is not set.
    fn new(case: &str) -> Option<Pg> {
        let Ok(base) = std::env::var("PALISADE_TEST_PG_URL") else {
            // straight to stderr: the test harness captures print! and eprint!
            let _ = writeln!(
                std::io::stderr(),
                "note: PALISADE_TEST_PG_URL is not set: {case} on PostgreSQL is skipped (./test.sh starts a server and sets it)"
            );
            return None;
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let schema = format!("it_{case}_{}_{nanos}", std::process::id());
        let mut c = postgres::Client::connect(&base, postgres::NoTls)
            .unwrap_or_else(|e| panic!("PALISADE_TEST_PG_URL: {e}"));
        c.batch_execute(&format!("CREATE SCHEMA {schema}")).unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        Some(Pg { base, schema, url })
    }

    /// A connection to this test's schema.
    fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).unwrap()
    }

    /// A configuration file in `dir` that names this database (and `dir` for the rest).
    fn config(&self, dir: &Path, admin: Option<u16>) -> PathBuf {
        let listen = admin.map_or(String::new(), |p| format!("127.0.0.1:{p}"));
        let text = format!(
            "[server]\ndata_dir = {dir:?}\ndomain = \"127.0.0.1\"\n\n[store]\nurl = {url:?}\nmax_connections = 4\n\n[admin]\nlisten = {listen:?}\n",
            dir = dir.display().to_string(),
            url = self.url,
        );
        let path = dir.join("pg.toml");
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.base, postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
        }
    }
}

/// `palisade ARGS --config FILE` (no `--data-dir`: the file says everything).
fn run(cfg: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .arg("--config")
        .arg(cfg)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(cfg: &Path, args: &[&str]) -> String {
    let o = run(cfg, args);
    assert!(o.status.success(), "{args:?}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json(cfg: &Path, args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok(cfg, args)).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// The server on `cfg`, with the test harness's listeners on `port`.
fn serve(dir: &Path, cfg: &Path, port: u16) -> Server {
    Server::start_in(
        dir.to_path_buf(),
        port,
        &["--config", cfg.to_str().unwrap()],
    )
}

/// No SQLite database was made: everything went to PostgreSQL.
fn no_sqlite(dir: &Path) {
    for f in ["palisade.db", "records.db"] {
        assert!(!dir.join(f).exists(), "{f} made under the data directory");
    }
}

#[test]
fn accounts_and_bindings_live_in_postgresql() {
    let Some(pg) = Pg::new("reg") else { return };
    let dir = tempdir("pg-reg");
    let cfg = pg.config(&dir, None);
    let check = Command::new(bin())
        .args(["config", "check"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        text(&check).contains("store PostgreSQL at"),
        "{}",
        text(&check)
    );
    // accounts by import and by add, before any server ran (the first command makes the
    // schema)
    let csv = dir.join("accounts.csv");
    std::fs::write(&csv, "name,password,domain\nalice,secret,127.0.0.1\n").unwrap();
    assert!(ok(&cfg, &["user", "import", csv.to_str().unwrap()]).contains("imported 1"));
    ok(&cfg, &["user", "add", "bob", "--password", "secret"]);
    ok(&cfg, &["user", "protect", "bob"]);
    ok(&cfg, &["user", "allow", "bob", "alice"]);
    let list = ok(&cfg, &["user", "list"]);
    assert!(
        list.contains("alice@127.0.0.1") && list.contains("bob@127.0.0.1 protected, allows: alice"),
        "{list}"
    );
    let users: i64 = pg
        .client()
        .query_one("SELECT count(*) FROM users", &[])
        .unwrap()
        .get(0);
    assert_eq!(users, 2);

    let s = serve(&dir, &cfg, ports());
    let (good, out) = sipp_register(&s, "reg", "alice", ports(), ports(), "register.xml", &[]);
    assert!(good, "REGISTER with digest: {out}\n{}", s.log_text());
    assert!(out.contains("SIP/2.0 200"), "{out}");
    // written behind, in the next group commit
    let mut c = pg.client();
    assert!(
        wait_until(Duration::from_secs(10), || c
            .query(
                "SELECT contact FROM bindings WHERE aor = 'alice@127.0.0.1'",
                &[]
            )
            .is_ok_and(|r| r.len() == 1)),
        "no binding of alice in PostgreSQL:\n{}",
        s.log_text()
    );
    let regs = ok(&cfg, &["registrations", "--json"]);
    assert!(regs.contains("\"aor\":\"alice@127.0.0.1\""), "{regs}");
    // removed accounts are gone from the server too (it polls the store's version)
    ok(&cfg, &["user", "remove", "bob"]);
    assert!(!ok(&cfg, &["user", "list"]).contains("bob"));
    assert!(
        wait_until(Duration::from_secs(5), || s
            .log_text()
            .contains("accounts reloaded")),
        "{}",
        s.log_text()
    );
    no_sqlite(&dir);
}

#[test]
fn blocks_and_reports_come_from_postgresql() {
    let Some(pg) = Pg::new("blk") else { return };
    let dir = tempdir("pg-blk");
    let admin = ports();
    let cfg = pg.config(&dir, Some(admin));
    for u in ["alice", "bob", "carol"] {
        ok(&cfg, &["user", "add", u, "--password", "secret"]);
    }
    let s = serve(&dir, &cfg, ports());
    // bob has no binding: an allowed call ends 480, a blocked one 403
    assert_eq!(authed_call(&s, "alice", "bob"), 480);
    assert!(ok(&cfg, &["block", "list"]).contains("no blocks"));
    let o = run(
        &cfg,
        &[
            "block", "add", "alice", "--for", "10m", "--reason", "ticket 7",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        wait_until(Duration::from_secs(2), || authed_call(&s, "alice", "bob")
            == 403),
        "the block did not reach the server within 2 s:\n{}",
        s.log_text()
    );
    assert_eq!(
        authed_call(&s, "carol", "bob"),
        480,
        "only alice is blocked"
    );
    let blocks = json(&cfg, &["block", "list", "--json"]);
    let b = &blocks["blocks"][0];
    assert_eq!(
        (b["subject"].as_str(), b["by"].as_str()),
        (Some("account:alice"), Some("operator")),
        "{blocks}"
    );
    // the admin API reads the same database (its handle opened once, at start)
    let (status, body) = http(
        &format!("127.0.0.1:{admin}"),
        "GET",
        "/api/blocks",
        Some(&admin_token(&s)),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("account:alice"), "{body}");
    // lifted: alice calls again
    let id = b["id"].as_i64().unwrap().to_string();
    ok(&cfg, &["unblock", &id]);
    assert!(
        wait_until(Duration::from_secs(2), || authed_call(&s, "alice", "bob")
            == 480),
        "the unblock did not reach the server within 2 s"
    );

    // the calls the detection thread recorded, read back by `palisade calls`
    assert!(
        wait_until(Duration::from_secs(10), || {
            let calls = json(&cfg, &["calls", "--json", "--user", "carol"]);
            calls["calls"].as_array().is_some_and(|c| !c.is_empty())
        }),
        "no call of carol recorded in PostgreSQL:\n{}",
        s.log_text()
    );
    let in_db: i64 = pg
        .client()
        .query_one("SELECT count(*) FROM calls WHERE caller = 'carol'", &[])
        .unwrap()
        .get(0);
    assert!(in_db >= 1);
    // a finding in the database is what `palisade report findings` shows
    let mut store = PgStore::open(&pg.url, 1, Duration::from_secs(10)).unwrap();
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    store
        .apply_outputs(&[Detected::Finding(Finding {
            id: 424_242,
            kind: FindingKind::Sweep,
            subject: Subject::Account("mallory".into()),
            score: 0.9,
            first_seen: t - 60_000,
            detected_at: t,
            updated_at: t,
            action: ActionKind::Alert,
            accounts: vec!["mallory".into()],
            records: vec![Evidence::Event("written by the test".into())],
            summary: "a sweep seen only in PostgreSQL".into(),
        })])
        .unwrap();
    let findings = json(&cfg, &["report", "findings", "--json"]);
    let f = &findings["findings"][0];
    assert_eq!(
        (f["id"].as_str(), f["summary"].as_str()),
        (Some("F424242"), Some("a sweep seen only in PostgreSQL")),
        "{findings}"
    );
    let targets = ok(&cfg, &["report", "targets"]);
    assert!(targets.contains("targeted user(s)"), "{targets}");
    let notified = json(&cfg, &["notify", "targets"]);
    assert!(notified["targets"].is_u64(), "{notified}");
    let devices = run(&cfg, &["report", "devices", "--json"]);
    assert!(devices.status.success(), "{}", text(&devices));
    no_sqlite(&dir);
}

#[test]
fn an_unreachable_database_is_named_without_its_password() {
    let dir = tempdir("pg-down");
    let cfg = dir.join("down.toml");
    // a port nothing listens on: refused at once
    std::fs::write(
        &cfg,
        "[store]\nurl = \"postgres://pal:s3cret@127.0.0.1:1/palisade\"\n",
    )
    .unwrap();
    for args in [
        &["user", "list"][..],
        &["block", "list"],
        &["report", "findings"],
    ] {
        let o = run(&cfg, args);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {t}");
        assert!(
            t.contains("PostgreSQL at postgres://pal:***@127.0.0.1:1/palisade")
                && t.contains("[store] url")
                && !t.contains("s3cret"),
            "{args:?}: {t}"
        );
    }
    std::fs::write(&cfg, "[store]\nurl = \"mysql://db/palisade\"\n").unwrap();
    let o = Command::new(bin())
        .args(["config", "check"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("postgres://"), "{}", text(&o));
}
