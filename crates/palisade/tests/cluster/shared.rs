//! Decisions made at one node hold at the others: blocks, accounts; every node's
//! evidence log exported and verified.
use std::process::Command;
use std::time::{Duration, Instant};

use super::*;

#[test]
fn blocks_and_accounts_made_at_one_node_hold_at_the_others_within_a_second() {
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

    // an account added at one node can call through the others within a second
    add_accounts(&cfg_a, &["dave"]);
    let added = Instant::now();
    for s in [&b, &c] {
        loop {
            let st = authed_call(s, "dave", "bob");
            if st == 480 {
                break;
            }
            assert!(
                added.elapsed() < Duration::from_secs(1),
                "dave's call still answered {st} after {:?} at port {}",
                added.elapsed(),
                s.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "account usable at port {} after {:?}",
            s.port,
            added.elapsed()
        );
    }

    // Every node's evidence log (the block is in one of them), fetched from its admin
    // listener and verified by Palisade, then by Go's tlog.
    // (the block's entry is published with the detector's node's next checkpoint: the
    // export is repeated until it is in)
    let verifier = go_verifier(&a.dir);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut round = 0;
    let (blocks, said) = loop {
        round += 1;
        let export = a.dir.join(format!("cluster-evidence-{round}"));
        let o = palisade(
            &cfg_a,
            &["evidence", "export", export.to_str().unwrap(), "--cluster"],
        );
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.status.success(), "export --cluster: {said}");
        let mut blocks = 0;
        for node in ["a", "b", "c"] {
            let dir = export.join(node);
            let key = std::fs::read_to_string(dir.join("key")).unwrap();
            assert!(
                key.starts_with(&format!("127.0.0.1/palisade-evidence/{node}+")),
                "{key}"
            );
            let out = Command::new(&verifier)
                .arg(&dir)
                .arg(key.trim())
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && text.contains("entries verified"),
                "{node}: {text}"
            );
            // (the entries: JSON in the bundles, full ones and partial ones in `N.p/`)
            let mut todo = vec![dir.join("tile/entries")];
            while let Some(d) = todo.pop() {
                for e in std::fs::read_dir(&d).unwrap() {
                    let p = e.unwrap().path();
                    if p.is_dir() {
                        todo.push(p);
                    } else {
                        let b = std::fs::read(&p).unwrap();
                        blocks += String::from_utf8_lossy(&b)
                            .matches("\"kind\":\"block\"")
                            .count();
                    }
                }
            }
        }
        if blocks >= 1 || Instant::now() >= deadline {
            break (blocks, said);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        blocks >= 1,
        "the operator's block is in one node's log: {said}"
    );
    // a node that is down is named, and the command fails
    drop(c);
    std::thread::sleep(Duration::from_millis(200));
    let o = palisade(
        &cfg_a,
        &[
            "evidence",
            "export",
            a.dir.join("partial").to_str().unwrap(),
            "--cluster",
        ],
    );
    let said =
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && said.contains("c: not exported"),
        "{said}"
    );
    drop(a);
}
