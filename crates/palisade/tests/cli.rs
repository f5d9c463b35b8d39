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
    assert!(
        !d.join("palisade.db").exists(),
        "no line of a bad file is applied (not even a database is made)"
    );

    let dup = d.join("dup.csv");
    std::fs::write(
        &dup,
        "name,password,domain\nu1,p1,a.example\nu1,p2,a.example\n",
    )
    .unwrap();
    let out = run(&d, &["user", "import", dup.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 3"));
    assert!(!d.join("palisade.db").exists());

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

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// An empty domain column takes `--domain` (or server.domain), never makes `name@`; a row
/// with no domain to take is refused by line; the running server names the accounts it
/// does not serve, and why.
#[test]
fn import_places_every_row_and_the_server_names_what_it_skips() {
    let d = tmp("impdom");
    let csv = d.join("users.csv");
    std::fs::write(
        &csv,
        "name,password,domain\nu1,p1,\nu2,p2, \nu3,p3,127.0.0.1\nu4,p4,\nu5,p5,\nx1,p6,other.example\nx2,p7,other.example\nx3,p8,third.example\n",
    )
    .unwrap();
    let out = run(
        &d,
        &[
            "user",
            "import",
            csv.to_str().unwrap(),
            "--domain",
            "127.0.0.1",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "imported 8 users");
    let list = users(&d);
    assert_eq!(list.len(), 8);
    assert!(!list.iter().any(|u| u.ends_with('@')), "{list:?}");
    assert!(list.contains(&"u1@127.0.0.1".to_string()), "{list:?}");
    assert!(list.contains(&"u2@127.0.0.1".to_string()), "{list:?}");
    // one account: singular
    let one = d.join("one.csv");
    std::fs::write(&one, "name,password\nsolo,pw\n").unwrap();
    let out = run(
        &d,
        &[
            "user",
            "import",
            one.to_str().unwrap(),
            "--domain",
            "127.0.0.1",
        ],
    );
    assert_eq!(stdout(&out).trim(), "imported 1 user", "{}", stderr(&out));

    // nothing to fall back on (a configuration whose domain is empty): the line is named
    let cfg = d.join("nodomain.toml");
    std::fs::write(&cfg, "[server]\ndomain = \"\"\n").unwrap();
    let nod = d.join("nod.csv");
    std::fs::write(&nod, "name,password,domain\nv1,p,a.example\nv2,p,\n").unwrap();
    let out = run(
        &d,
        &[
            "user",
            "import",
            nod.to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("line 3") && err.contains("no domain"), "{err}");
    assert_eq!(users(&d).len(), 9, "nothing imported");

    // the server serves 127.0.0.1 and says which accounts it leaves out
    let s = common::Server::start_in(d.clone(), common::ports(), &[]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !s.log_text().contains("state loaded") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let log = s.log_text();
    assert!(log.contains("users=6"), "{log}");
    let warn = log
        .lines()
        .find(|l| l.contains("accounts not served"))
        .unwrap_or_else(|| panic!("no warning about unserved accounts:\n{log}"));
    assert!(warn.contains("WARN"), "{warn}");
    for a in ["x1@other.example", "x2@other.example", "x3@third.example"] {
        assert!(warn.contains(a), "{warn}");
    }
    assert!(warn.contains("accounts=3"), "{warn}");
}

/// `palisade user list | head -1`: the reader goes away, the command ends quietly (by
/// SIGPIPE, as `cat` would), never with a panic.
#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    let d = tmp("pipe");
    let csv = d.join("many.csv");
    let mut text = String::from("name,password\n");
    for i in 0..3000 {
        text.push_str(&format!("user{i},pw{i}\n"));
    }
    std::fs::write(&csv, text).unwrap();
    assert!(run(
        &d,
        &[
            "user",
            "import",
            csv.to_str().unwrap(),
            "--domain",
            "127.0.0.1"
        ]
    )
    .status
    .success());
    // about 300 KB of JSON lines: far more than a pipe holds, so the writer meets the
    // closed pipe once head has its line
    let script = format!(
        "{} user list --json --data-dir {} | head -1 >/dev/null; echo \"status ${{PIPESTATUS[0]}}\" >&2",
        bin().display(),
        d.display()
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    let err = stderr(&out);
    assert!(err.contains("status 141"), "killed by SIGPIPE: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );
    // a reader that is gone before anything is written
    let script = format!(
        "{{ sleep 0.3; {} config defaults; echo \"status $?\" >&2; }} | true",
        bin().display()
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    let err = stderr(&out);
    assert!(
        err.contains("status 141") || err.contains("status 0"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// An allow-list holds local accounts: a name that is none is refused.
#[test]
fn allow_refuses_a_caller_that_does_not_exist() {
    let d = tmp("allow");
    common::add_users(&d, &["bob", "alice"]);
    let dom = ["--domain", "127.0.0.1"];
    let out = run(&d, &[&["user", "protect", "bob"][..], &dom].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(
        &d,
        &[&["user", "allow", "bob", "nosuch"][..], &dom].concat(),
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no user nosuch@127.0.0.1"),
        "{}",
        stderr(&out)
    );
    let out = run(&d, &[&["user", "allow", "bob", "alice"][..], &dom].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&d, &["user", "list", "--json"]);
    assert!(
        stdout(&out).contains("\"allow\":[\"alice\"]"),
        "{}",
        stdout(&out)
    );
    // removing a name that is not an account (any more) stays possible
    let out = run(
        &d,
        &[&["user", "allow", "bob", "nosuch", "--remove"][..], &dom].concat(),
    );
    assert!(
        stderr(&out).contains("not on the allow-list"),
        "{}",
        stderr(&out)
    );
}

/// Commands that read, run where there is no database, say so (naming the path and the
/// way to point at one) and create nothing.
#[test]
fn read_only_commands_refuse_a_missing_database() {
    let cwd = tmp("nodb");
    for args in [
        &["user", "list"][..],
        &["user", "protect", "bob"],
        &["user", "allow", "bob", "alice"],
        &["user", "remove", "bob"],
        &["registrations"],
        &["calls"],
        &["report", "findings"],
        &["report", "targets"],
        &["report", "devices"],
        &["notify", "targets"],
        &["evidence", "key"],
        &["evidence", "entries"],
        &["evidence", "verify"],
        &["evidence", "export", "out"],
        &["evidence", "proof", "--index", "0"],
    ] {
        let out = Command::new(bin())
            .args(args)
            .current_dir(&cwd)
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("palisade-data") && err.contains("--data-dir") && err.contains("--config"),
            "{args:?}: {err}"
        );
        assert!(err.contains(&cwd.display().to_string()), "{args:?}: {err}");
        assert!(
            !cwd.join("palisade-data").exists(),
            "{args:?} created palisade-data"
        );
    }
    // a command that adds makes the database where it is told
    let out = Command::new(bin())
        .args(["user", "add", "alice", "--password", "pw"])
        .current_dir(&cwd)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(cwd.join("palisade-data/palisade.db").is_file());
}

/// One cause, once, with the file and what to do about it.
#[test]
fn storage_errors_name_the_file_once_with_a_hint() {
    let d = tmp("notadb");
    std::fs::write(
        d.join("palisade.db"),
        "this is not a database, just text\n".repeat(200),
    )
    .unwrap();
    for args in [
        &["user", "list"][..],
        &["user", "add", "a", "--password", "b"],
    ] {
        let out = run(&d, args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert_eq!(err.matches("not a database").count(), 1, "{err}");
        assert!(!err.contains("Error code"), "{err}");
        assert!(
            err.contains(&d.join("palisade.db").display().to_string()),
            "{err}"
        );
        assert!(err.contains("move it aside"), "{err}");
    }
    // the server says the same, and starts nothing
    let out = Command::new(bin())
        .args(["serve", "--listen", "udp:127.0.0.1:0", "--data-dir"])
        .arg(&d)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.matches("not a database").count(), 1, "{err}");
    assert!(err.contains("move it aside"), "{err}");

    // a data directory under a regular file: the file is named, not route.key
    let file = d.join("plain-file");
    std::fs::write(&file, "x").unwrap();
    let under = file.join("data");
    for args in [
        &["serve", "--listen", "udp:127.0.0.1:0"][..],
        &["user", "add", "a", "--password", "b"],
        &["user", "list"],
    ] {
        let out = Command::new(bin())
            .args(args)
            .arg("--data-dir")
            .arg(&under)
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(!err.contains("route.key"), "{err}");
        assert!(
            err.contains(&format!("{} is a file, not a directory", file.display())),
            "{args:?}: {err}"
        );
        assert!(err.contains("move that file aside"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn registrations_say_when_there_are_none() {
    let d = tmp("noreg");
    common::add_users(&d, &["alice"]);
    let out = run(&d, &["registrations"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "no live registrations");
    // JSON lines: none at all (still valid: zero objects)
    let out = run(&d, &["registrations", "--json"]);
    assert!(out.status.success());
    assert_eq!(stdout(&out), "");
}

#[test]
fn evidence_verify_names_a_missing_path() {
    let d = tmp("evmiss");
    let missing = d.join("MISSING");
    let out = run(&d, &["evidence", "verify", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&missing.display().to_string()),
        "{}",
        stderr(&out)
    );
}

fn md5_hex(s: &str) -> String {
    use md5::{Digest, Md5};
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The password of `user add`: `--password-stdin`, or one line of standard input when it
/// is not a terminal (a terminal is asked twice, without echo); never its line end.
#[test]
fn user_add_reads_the_password_from_stdin() {
    use std::io::Write as _;
    let d = tmp("pwstdin");
    let add = |args: &[&str], input: &str| {
        let mut c = Command::new(bin())
            .args(["user", "add"])
            .args(args)
            .args(["--domain", "example.com", "--data-dir"])
            .arg(&d)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        c.wait_with_output().unwrap()
    };
    let out = add(&["alice", "--password-stdin"], "s3cret-a\n");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = add(&["bob"], "s3cret-b\r\n");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = add(&["carol"], "");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no password"), "{}", stderr(&out));
    let out = add(&["dave", "--password", "x", "--password-stdin"], "y\n");
    assert_eq!(
        out.status.code(),
        Some(2),
        "the two ways exclude each other"
    );

    let mut db = std::fs::read(d.join("palisade.db")).unwrap();
    db.extend(std::fs::read(d.join("palisade.db-wal")).unwrap_or_default());
    let db = String::from_utf8_lossy(&db);
    for (user, pw) in [("alice", "s3cret-a"), ("bob", "s3cret-b")] {
        let ha1 = md5_hex(&format!("{user}:example.com:{pw}"));
        assert!(db.contains(&ha1), "{user}'s HA1 is that of {pw:?}");
    }
    assert!(!db.contains("s3cret"));
}

/// `palisade config check FILE` answers "is my file right?"; relations between keys are
/// checked there and by `serve`; `palisade config defaults` prints a file that passes.
#[test]
fn config_check_and_defaults() {
    let d = tmp("cfgcheck");
    let out = Command::new(bin())
        .args(["config", "defaults"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let defaults = d.join("defaults.toml");
    std::fs::write(&defaults, &out.stdout).unwrap();
    assert!(stdout(&out).contains("[registrar]") && stdout(&out).contains("min_expires = 60"));
    let out = Command::new(bin())
        .args(["config", "check"])
        .arg(&defaults)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("ok: "), "{}", stdout(&out));

    for (text, keys) in [
        (
            "[registrar]\nmin_expires = 9000\n",
            &["registrar.min_expires", "registrar.max_expires"][..],
        ),
        ("[registrar]\nmax_expires = 0\n", &["registrar.max_expires"]),
        (
            "[server]\nlisten = [\"tls:127.0.0.1:5061\"]\n",
            &["tls.cert", "tls.key"],
        ),
        ("[server]\nlog_level = \"loud\"\n", &["server.log_level"]),
        ("[server]\nbogus = 1\n", &["bogus"]),
    ] {
        let f = d.join("bad.toml");
        std::fs::write(&f, text).unwrap();
        let out = Command::new(bin())
            .args(["config", "check"])
            .arg(&f)
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{text}: {err}");
        assert!(stdout(&out).is_empty());
        assert!(err.contains(&f.display().to_string()), "{text}: {err}");
        for k in keys {
            assert!(err.contains(k), "{text}: {err}");
        }
    }
    // serve refuses the same file before it binds anything
    let f = d.join("bad.toml");
    std::fs::write(&f, "[registrar]\nmin_expires = 9000\n").unwrap();
    let out = Command::new(bin())
        .args(["serve", "--listen", "udp:127.0.0.1:0", "--config"])
        .arg(&f)
        .arg("--data-dir")
        .arg(&d)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("registrar.min_expires"),
        "{}",
        stderr(&out)
    );
}
