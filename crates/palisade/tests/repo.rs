//! The repository carries everything its tests, benchmarks and fuzzers read: a fresh clone
//! alone passes `./test.sh` (nothing from `../shared` is required).
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every file under `dir` (recursively), skipping build output and VCS data.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let name = e.file_name();
        let name = name.to_string_lossy();
        if p.is_dir() {
            if !matches!(name.as_ref(), "target" | ".git" | "artifacts") {
                files(&p, out);
            }
        } else {
            out.push(p);
        }
    }
}

#[test]
fn no_test_or_script_reads_outside_the_repository() {
    let root = root();
    let mut all = Vec::new();
    for d in ["crates", "tests", "bench", "fuzz", ".ci"] {
        files(&root.join(d), &mut all);
    }
    all.push(root.join("test.sh"));
    let mut offenders = Vec::new();
    for p in all {
        // prose may name ../shared as where a copy came from; code and scripts do not read it
        if p.extension().is_some_and(|e| e == "md") || p.ends_with(file!()) {
            continue;
        }
        let Ok(text) = std::fs::read(&p) else {
            continue;
        };
        // code, not comments: a comment may say where something came from
        for line in String::from_utf8_lossy(&text).lines() {
            let t = line.trim_start();
            if ["//", "#", "<!--"].iter().any(|c| t.starts_with(c)) {
                continue;
            }
            for needle in ["../shared", "shared/corpus", "shared/bench"] {
                if line.contains(needle) {
                    offenders.push(format!("{}: {}", p.display(), line.trim()));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}

#[test]
fn the_corpus_and_the_benchmark_scenarios_are_in_the_repository() {
    let root = root();
    let count = |d: &str| {
        std::fs::read_dir(root.join(d))
            .unwrap_or_else(|e| panic!("{d}: {e}"))
            .count()
    };
    assert_eq!(count("tests/corpus/rfc4475"), 49, "RFC 4475 messages");
    assert_eq!(count("tests/corpus/rfc5118"), 12, "RFC 5118 messages");
    for s in ["register.xml", "uac.xml", "uas.xml"] {
        assert!(
            root.join("bench/harness/scenarios").join(s).is_file(),
            "bench/harness/scenarios/{s}"
        );
    }
    for f in ["run.sh", "analyze.py", "install.sh", "bench_kamailio.sh"] {
        assert!(
            root.join("bench/harness").join(f).is_file(),
            "bench/harness/{f}"
        );
    }
    // CRLF line ends as on the wire (a checkout that converted them would break the corpus)
    let wsinv = std::fs::read(root.join("tests/corpus/rfc4475/wsinv.dat")).unwrap();
    assert!(wsinv.windows(2).any(|w| w == b"\r\n"));
}

/// `tests/corpus/extract.py` takes the messages out of an RFC's text the way the RFC says
/// (base64 tar archive between the marker lines, page furniture dropped, the Perl listing's
/// markers not mistaken for the archive's): checked offline on a synthetic RFC built from
/// the committed messages.
#[test]
fn the_corpus_extraction_script_recovers_every_message() {
    let out = Command::new("python3")
        .arg(root().join("tests/corpus/extract.py"))
        .arg("--selftest")
        .output()
        .expect("python3 (./test.sh installs it)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("selftest: ok"));
}
