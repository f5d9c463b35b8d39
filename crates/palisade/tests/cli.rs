//! Account provisioning from the command line: add, list, remove, and an all-or-nothing
//! CSV import whose bad line is named.
use std::path::{Path, PathBuf};

mod common;
use common::{bin, cli as run, tempdir};
use std::process::Command;

fn tmp(tag: &str) -> PathBuf {
    tempdir(&format!("cli-{tag}"))
}

fn users(dir: &Path) -> Vec<String> {
    let out = run(dir, &["user", "list"]);
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn add_list_remove() {
    let d = tmp("alr");
    assert!(run(
        &d,
        &[
            "user",
            "add",
            "alice",
            "--password",
            "s3cr3tpw",
            "--domain",
            "example.com"
        ]
    )
    .status
    .success());
    let dup = run(
        &d,
        &[
            "user",
            "add",
            "alice",
            "--password",
            "other",
            "--domain",
            "example.com",
        ],
    );
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
    let bad = run(&d, &["user", "add", "al ice", "--password", "pw"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid user name"));
    assert_eq!(users(&d), vec!["alice@example.com"]);
    // The database holds digests, never the password.
    let mut db = std::fs::read(d.join("palisade.db")).unwrap();
    db.extend(std::fs::read(d.join("palisade.db-wal")).unwrap_or_default());
    assert!(
        db.windows(5).any(|w| w == b"alice"),
        "the account is in the files read"
    );
    assert!(!db.windows(8).any(|w| w == b"s3cr3tpw"));
    assert!(
        run(&d, &["user", "remove", "alice", "--domain", "example.com"])
            .status
            .success()
    );
    assert!(users(&d).is_empty());
    assert!(
        !run(&d, &["user", "remove", "alice", "--domain", "example.com"])
            .status
            .success()
    );
}

#[test]
fn import_is_all_or_nothing_and_names_the_bad_line() {
    let d = tmp("imp");
    let bad = d.join("bad.csv");
    std::fs::write(&bad, "name,password\nu1,p1\nu2,p2\nu 3,p3\nu4,p4\n").unwrap();
    let out = run(
        &d,
        &[
            "user",
            "import",
            bad.to_str().unwrap(),
            "--domain",
            "example.com",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 4"), "{err}");
    assert!(err.contains("nothing imported"), "{err}");
    assert!(users(&d).is_empty(), "no line of a bad file is applied");

    let dup = d.join("dup.csv");
    std::fs::write(
        &dup,
        "name,password,domain\nu1,p1,a.example\nu1,p2,a.example\n",
    )
    .unwrap();
    let out = run(&d, &["user", "import", dup.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 3"));
    assert!(users(&d).is_empty());

    let good = d.join("good.csv");
    let mut text = String::from("name,password\n");
    for i in 0..2000 {
        text.push_str(&format!("user{i},pw{i}\n"));
    }
    std::fs::write(&good, text).unwrap();
    let out = run(
        &d,
        &[
            "user",
            "import",
            good.to_str().unwrap(),
            "--domain",
            "example.com",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(users(&d).len(), 2000);
    // Importing again collides with existing accounts: refused whole.
    let out = run(
        &d,
        &[
            "user",
            "import",
            good.to_str().unwrap(),
            "--domain",
            "example.com",
        ],
    );
    assert!(!out.status.success());
    assert_eq!(users(&d).len(), 2000);
}

#[test]
fn bad_config_is_refused_with_a_clear_message() {
    let d = tmp("cfg");
    let cfg = d.join("bad.toml");
    std::fs::write(&cfg, "[server]\nlisten = [\"udp:not-an-address\"]\n").unwrap();
    let out = Command::new(bin())
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .arg("--data-dir")
        .arg(&d)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not IP:PORT"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&cfg, "[server]\nbogus = 1\n").unwrap();
    let out = Command::new(bin())
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .arg("--data-dir")
        .arg(&d)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus"));
}
