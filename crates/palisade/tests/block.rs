//! `palisade block list|add` and `palisade unblock` against the real binary: a block
//! added while the server runs refuses the account's calls within 2 s and is an evidence
//! entry; lifted, the account calls again within 2 s; bad input changes nothing; a block
//! added while no server runs is applied and recorded by the next one to start.
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

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;

/// Calls until the answer is (`want`) or is not (`!want`) a 403; how long that took.
fn until_refused(s: &Server, caller: &str, want: bool, within: Duration) -> Duration {
    let t = Instant::now();
    loop {
        let st = authed_call(s, caller, "bob");
        if (st == 403) == want {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < within,
            "{caller}'s calls still answered {st} after {within:?}:\n{}",
            s.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn run(dir: &std::path::Path, args: &[&str]) -> Output {
    cli(dir, args)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The evidence log's entries of these kinds (as `palisade evidence entries` prints them).
fn entries(dir: &std::path::Path, kinds: &[&str]) -> Vec<serde_json::Value> {
    let o = run(dir, &["evidence", "entries"]);
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| {
            l.find('{')
                .and_then(|i| serde_json::from_str::<serde_json::Value>(&l[i..]).ok())
        })
        .filter(|v| kinds.iter().any(|k| v["kind"] == *k))
        .collect()
}

fn blocks(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let o = run(dir, &["block", "list", "--json"]);
    assert!(o.status.success(), "block list: {}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["blocks"].as_array().unwrap().clone()
}

/// The number `palisade block add` printed (`block N: ...`).
fn added_id(o: &Output) -> i64 {
    assert!(o.status.success(), "block add: {}", text(o));
    let out = String::from_utf8_lossy(&o.stdout);
    out.strip_prefix("block ")
        .and_then(|r| r.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no block number in {out:?}"))
}

fn stop(mut s: Server) {
    let pid = s.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    assert!(
        wait_until(Duration::from_secs(10), || s
            .child
            .try_wait()
            .is_ok_and(|st| st.is_some())),
        "the server stops on SIGTERM"
    );
}

#[test]
fn operator_blocks_reach_the_running_server_and_the_evidence_log() {
    let s = Server::start("block", &["alice", "bob", "carol"], &[]);
    let dir = s.dir.clone();
    // bob has no binding: an allowed call ends 480, a blocked one 403
    assert_eq!(authed_call(&s, "alice", "bob"), 480);
    let empty = run(&dir, &["block", "list"]);
    assert!(empty.status.success());
    assert!(text(&empty).contains("no blocks"), "{}", text(&empty));

    // A block while the server runs: refused within 2 s, an evidence entry.
    let o = run(
        &dir,
        &[
            "block",
            "add",
            "alice",
            "--for",
            "10m",
            "--reason",
            "fraud desk ticket 42",
        ],
    );
    let id = added_id(&o);
    let took = until_refused(&s, "alice", true, Duration::from_secs(2));
    eprintln!("block {id} applied within {took:?}");
    assert_eq!(
        authed_call(&s, "carol", "bob"),
        480,
        "only alice is blocked"
    );
    let list = blocks(&dir);
    assert_eq!(list.len(), 1, "{list:?}");
    let b = &list[0];
    assert_eq!(b["id"], id);
    assert_eq!(b["subject"], "account:alice");
    assert_eq!(b["action"], "block");
    assert_eq!(b["by"], "operator");
    assert_eq!(b["reason"], "fraud desk ticket 42");
    let until = b["until"].as_str().unwrap().to_string();
    let listed = text(&run(&dir, &["block", "list"]));
    for col in [
        "ID",
        "SUBJECT",
        "ACTION",
        "UNTIL",
        "BY",
        "REASON",
        "account:alice",
        &until,
        "operator",
        "fraud desk ticket 42",
    ] {
        assert!(listed.contains(col), "{col} missing from:\n{listed}");
    }
    let recorded = |kind: &str, reason: &str| {
        entries(&dir, &[kind]).into_iter().any(|e| {
            e["subject"]["account"] == "alice"
                && e["by"] == "operator"
                && e["reason"] == reason
                && e["block"] == id
        })
    };
    assert!(
        wait_until(Duration::from_secs(3), || recorded(
            "block",
            "fraud desk ticket 42"
        )),
        "the block is an evidence entry: {:?}",
        entries(&dir, &["block"])
    );

    // Bad input: a clear error, exit status 1 or 2, nothing changed.
    let before_list = blocks(&dir);
    let before_entries = entries(&dir, &["block", "unblock"]).len();
    for (args, status, says) in [
        (
            vec!["unblock", "9999"],
            1,
            "no block or rate limit numbered 9999",
        ),
        (vec!["unblock", "first"], 2, "invalid value"),
        (
            vec!["block", "add", "bob", "--for", "2x", "--reason", "r"],
            2,
            "whole number and a unit",
        ),
        (
            vec!["block", "add", "bob", "--for", "0h", "--reason", "r"],
            2,
            "more than zero",
        ),
        (vec!["block", "add", "bob", "--reason", "r"], 2, "--for"),
        (
            vec![
                "block",
                "add",
                "network:127.0.0.1/24",
                "--for",
                "1h",
                "--reason",
                "r",
            ],
            2,
            "network:127.0.0.0/24",
        ),
        (
            vec![
                "block",
                "add",
                "127.0.0.0/24",
                "--for",
                "1h",
                "--reason",
                "r",
            ],
            2,
            "network:ADDR/PREFIX",
        ),
        (
            vec![
                "block",
                "add",
                "device:12ab",
                "--for",
                "1h",
                "--reason",
                "r",
            ],
            2,
            "16 hex digits",
        ),
        (
            vec!["block", "add", "user:bob", "--for", "1h", "--reason", "r"],
            2,
            "unknown kind of subject",
        ),
        (
            vec!["block", "add", "mallory", "--for", "1h", "--reason", "r"],
            1,
            "no account \"mallory\"",
        ),
        (
            vec!["block", "add", "bob", "--for", "1h", "--reason", " "],
            1,
            "--reason",
        ),
    ] {
        let o = run(&dir, &args);
        assert_eq!(o.status.code(), Some(status), "{args:?}: {}", text(&o));
        assert!(
            text(&o).contains(says),
            "{args:?} should say {says:?}: {}",
            text(&o)
        );
    }
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(blocks(&dir), before_list, "bad input changed the blocks");
    assert_eq!(entries(&dir, &["block", "unblock"]).len(), before_entries);
    assert_eq!(authed_call(&s, "bob", "carol"), 480, "bob was not blocked");

    // Lifted: alice calls again within 2 s; an `unblock` entry with reason operator.
    let o = run(&dir, &["unblock", &id.to_string()]);
    assert!(o.status.success(), "unblock: {}", text(&o));
    let took = until_refused(&s, "alice", false, Duration::from_secs(2));
    eprintln!("unblock {id} applied within {took:?}");
    assert_eq!(authed_call(&s, "alice", "bob"), 480);
    assert!(blocks(&dir).is_empty());
    assert!(
        wait_until(Duration::from_secs(3), || recorded("unblock", "operator")),
        "the lifting is an evidence entry: {:?}",
        entries(&dir, &["unblock"])
    );
    let o = run(&dir, &["unblock", &id.to_string()]);
    assert_eq!(o.status.code(), Some(1), "lifted twice: {}", text(&o));

    // No server running: the next one to start applies the block and records it.
    stop(s);
    let o = run(
        &dir,
        &[
            "block",
            "add",
            "account:carol",
            "--for",
            "1h",
            "--reason",
            "while down",
        ],
    );
    let carol = added_id(&o);
    assert!(carol > id, "numbers are not reused");
    let s = Server::start_in(dir.clone(), ports(), &[]);
    assert_eq!(authed_call(&s, "carol", "bob"), 403, "applied at start");
    assert!(
        wait_until(Duration::from_secs(3), || entries(&dir, &["block"])
            .iter()
            .any(|e| e["block"] == carol
                && e["reason"] == "while down"
                && e["requested"].is_string())),
        "recorded by the next server: {:?}",
        entries(&dir, &["block"])
    );
    assert_eq!(
        authed_call(&s, "alice", "bob"),
        480,
        "alice's lifted block stays lifted"
    );
}

#[test]
fn blocks_added_and_lifted_through_the_admin_api_reach_the_running_server() {
    let (s, admin) = start_with_admin("block-api", &["alice", "bob"], "");
    let dir = s.dir.clone();
    let token = admin_token(&s);
    assert_eq!(authed_call(&s, "alice", "bob"), 480);
    let body = r#"{"subject":"account:alice","for":"10m","reason":"API test"}"#;
    // Without the token, or with a wrong one: refused, nothing changes, and the refused
    // mutation is an evidence entry.
    for t in [None, Some("not-the-token-at-all")] {
        let (st, _) = http(&admin, "POST", "/api/blocks", t, Some(body));
        assert_eq!(st, 401);
    }
    let (st, _) = http(&admin, "GET", "/api/blocks", None, None);
    assert_eq!(st, 401, "reads need the token too");
    assert!(blocks(&dir).is_empty());
    assert!(
        wait_until(Duration::from_secs(5), || entries(&dir, &["admin-refused"])
            .len()
            == 2),
        "two refused mutations recorded: {:?}",
        entries(&dir, &["admin-refused"])
    );
    // Bad input: a precise 400, nothing added.
    for (bad, what) in [
        (
            r#"{"subject":"nobody:x","for":"10m","reason":"r"}"#,
            "subject",
        ),
        (
            r#"{"subject":"account:alice","for":"10 parsecs","reason":"r"}"#,
            "for",
        ),
        (
            r#"{"subject":"account:alice","for":"10m","reason":""}"#,
            "reason",
        ),
        (r#"{"subject":"account:alice"}"#, "body"),
    ] {
        let (st, text) = http(&admin, "POST", "/api/blocks", Some(&token), Some(bad));
        assert_eq!(st, 400, "{bad}: {text}");
        assert!(text.contains(what), "{bad}: {text}");
    }
    assert!(blocks(&dir).is_empty());

    let (st, text) = http(&admin, "POST", "/api/blocks", Some(&token), Some(body));
    assert_eq!(st, 201, "{text}");
    let b: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(b["subject"], "account:alice");
    let id = b["id"].as_i64().unwrap();
    let took = until_refused(&s, "alice", true, Duration::from_secs(2));
    eprintln!("API block {id} applied within {took:?}");
    assert_eq!(
        authed_call(&s, "bob", "alice"),
        480,
        "only alice is blocked"
    );
    let (st, text) = http(&admin, "GET", "/api/blocks", Some(&token), None);
    assert_eq!(st, 200);
    let listed: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(listed[0]["id"], id, "{text}");

    let (st, text) = http(
        &admin,
        "DELETE",
        &format!("/api/blocks/{id}"),
        Some(&token),
        None,
    );
    assert_eq!(st, 200, "{text}");
    let took = until_refused(&s, "alice", false, Duration::from_secs(2));
    eprintln!("API block {id} lifted within {took:?}");
    let (st, _) = http(
        &admin,
        "DELETE",
        &format!("/api/blocks/{id}"),
        Some(&token),
        None,
    );
    assert_eq!(st, 404, "a lifted block is not lifted twice");
    assert!(wait_until(Duration::from_secs(5), || {
        entries(&dir, &["block"]).len() == 1 && entries(&dir, &["unblock"]).len() == 1
    }));
}
