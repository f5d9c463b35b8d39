//! The repository carries everything its tests, benchmarks and fuzzers read: a fresh clone
//! alone passes `./test.sh` (nothing from `../shared` is required).
// Helpers outside `#[test]` functions assert by panicking too (clippy.toml exempts only
// test functions and `#[cfg(test)]` modules from the workspace's panic-free lints).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every file under `dir` (recursively), skipping build output, VCS data and what the
/// fuzzers generate (`fuzz/corpus`, `fuzz/artifacts`: ignored by git, not read by tests).
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let name = e.file_name();
        let name = name.to_string_lossy();
        if p.is_dir() {
            if !matches!(name.as_ref(), "target" | ".git" | "artifacts")
                && !p.ends_with("fuzz/corpus")
            {
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

/// The `[name]` keywords of a SIPp scenario that are not SIPp's own: each needs a
/// `-key name value` on the command line (SIPp leaves an unknown one unreplaced).
fn scenario_keys(xml: &str) -> std::collections::BTreeSet<String> {
    const BUILTIN: &[&str] = &[
        "authentication",
        "branch",
        "call_id",
        "call_number",
        "cseq",
        "len",
        "local_ip",
        "local_ip_type",
        "local_port",
        "media_ip",
        "media_ip_type",
        "media_port",
        "next_url",
        "peer_tag_param",
        "pid",
        "remote_ip",
        "remote_port",
        "routes",
        "service",
        "transport",
    ];
    // comments describe the scenario; only what it sends counts
    let mut text = String::new();
    let mut rest = xml;
    while let Some(i) = rest.find("<!--") {
        text.push_str(&rest[..i]);
        rest = rest[i..].find("-->").map_or("", |j| &rest[i + j + 3..]);
    }
    text.push_str(rest);
    let mut keys = std::collections::BTreeSet::new();
    for part in text.split('[').skip(1) {
        let Some(word) = part.split(']').next() else {
            continue;
        };
        let plain = !word.is_empty()
            && word
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit());
        if plain
            && !BUILTIN.contains(&word)
            && !word.starts_with("field")
            && !word.starts_with("last_")
            && !word.bytes().all(|b| b.is_ascii_digit())
        {
            keys.insert(word.to_string());
        }
    }
    keys
}

/// What a new user reads in the README works as written: the SIPp lines give every
/// `-key` their scenario uses, the binary is reachable, the configuration commands exist.
#[test]
fn the_readme_commands_are_complete() {
    let root = root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    // logical lines (backslash continuations joined)
    let joined = readme.replace("\\\n", " ");
    let mut checked = Vec::new();
    for line in joined.lines() {
        let t = line.trim();
        if !t.starts_with("sipp ") {
            continue;
        }
        let Some(sf) = t.split_whitespace().skip_while(|w| *w != "-sf").nth(1) else {
            continue;
        };
        let xml = std::fs::read_to_string(root.join(sf))
            .unwrap_or_else(|e| panic!("README names scenario {sf}: {e}"));
        let words: Vec<&str> = t.split_whitespace().collect();
        let given: Vec<&str> = words
            .windows(2)
            .filter(|w| w[0] == "-key")
            .map(|w| w[1])
            .collect();
        for k in scenario_keys(&xml) {
            assert!(
                given.contains(&k.as_str()),
                "README: `{t}` lacks -key {k} (used by {sf})"
            );
        }
        checked.push(sf.to_string());
    }
    for s in ["register.xml", "uac.xml", "uas.xml"] {
        assert!(
            checked.iter().any(|c| c.ends_with(s)),
            "a SIPp line with {s}: {checked:?}"
        );
    }
    assert_eq!(
        scenario_keys(
            &std::fs::read_to_string(root.join("bench/harness/scenarios/register.xml")).unwrap()
        )
        .into_iter()
        .collect::<Vec<_>>(),
        ["contact_host", "contact_port", "domain", "expires"]
    );
    for needle in [
        "cargo install --path crates/palisade",
        "target/release/palisade",
        "palisade config check",
        "palisade config defaults",
        "--password-stdin",
        "audio_source    aufile,",
    ] {
        assert!(readme.contains(needle), "README: {needle}");
    }
}

/// The Rust sources of the workspace (crates and fuzz targets), with their text.
fn rust_sources() -> Vec<(PathBuf, String)> {
    let root = root();
    let mut all = Vec::new();
    for d in ["crates", "fuzz"] {
        files(&root.join(d), &mut all);
    }
    all.into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .filter_map(|p| std::fs::read_to_string(&p).ok().map(|t| (p, t)))
        .collect()
}

/// A file over ~800 lines is a sign that a layer hides inside another (DESIGN): split
/// it by responsibility.
#[test]
fn no_source_file_is_over_800_lines() {
    let long: Vec<String> = rust_sources()
        .iter()
        .filter(|(_, t)| t.lines().count() > 800)
        .map(|(p, t)| format!("{}: {} lines", p.display(), t.lines().count()))
        .collect();
    assert!(long.is_empty(), "{long:#?}");
}

/// The lints live in one place: every crate takes `[workspace.lints]`, no crate repeats
/// a header of its own, and `unsafe` (denied there) is allowed only by the binary's two
/// modules over system calls and its allocator.
#[test]
fn one_lint_table_and_unsafe_in_three_modules_only() {
    let root = root();
    let workspace = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert!(workspace.contains("[workspace.lints.rust]\nunsafe_code = \"deny\""));
    for c in std::fs::read_dir(root.join("crates")).unwrap().flatten() {
        let manifest = std::fs::read_to_string(c.path().join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains("[lints]\nworkspace = true"),
            "{}: [lints] workspace = true",
            c.path().display()
        );
    }
    let mut unsafe_allowed = Vec::new();
    for (p, text) in rust_sources() {
        if p.ends_with(file!()) {
            continue;
        }
        for line in text.lines().map(str::trim) {
            if line.starts_with("//") {
                continue;
            }
            if line.contains("allow(unsafe_code)") {
                unsafe_allowed.push(p.strip_prefix(&root).unwrap().display().to_string());
            }
            assert!(
                !line.contains("forbid(unsafe_code)") && !line.starts_with("#![cfg_attr("),
                "{}: a lint header of its own: {line}",
                p.display()
            );
        }
    }
    unsafe_allowed.sort();
    assert_eq!(
        unsafe_allowed,
        [
            "crates/palisade/src/alloc.rs",
            "crates/palisade/src/serve/sys.rs",
            "crates/palisade/src/term.rs"
        ]
    );
}

/// The binary's modules name what they import: a glob (`use super::*`) only in a test
/// module, after its `#[cfg(test)]`, or in a test module's own file (`tests.rs`, or a
/// file under a `tests/` folder of the sources).
#[test]
fn the_binary_imports_by_name() {
    let mut globs = Vec::new();
    for (p, text) in rust_sources() {
        if !p.to_string_lossy().contains("crates/palisade/src/") {
            continue;
        }
        let path = p.to_string_lossy();
        let tail = path.rsplit("crates/palisade/src/").next().unwrap_or("");
        let mut in_tests = tail.ends_with("/tests.rs") || tail.contains("tests/");
        for line in text.lines() {
            in_tests |= line.trim() == "#[cfg(test)]";
            let t = line.trim();
            if t.starts_with("use ") && t.ends_with("::*;") && !in_tests {
                globs.push(format!("{}: {t}", p.display()));
            }
        }
    }
    assert!(globs.is_empty(), "{globs:#?}");
}

/// The modules of the binary and the modules each one names (`crate::`, `super::`,
/// `self::` paths, and declared children used by name), test modules left out.
fn binary_module_graph() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let src = root().join("crates/palisade/src");
    let mut paths = Vec::new();
    files(&src, &mut paths);
    let mut text = std::collections::BTreeMap::new();
    for p in paths {
        let rel = p.strip_prefix(&src).unwrap().with_extension("");
        let mut segs: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into()).collect();
        if matches!(segs.last().map(String::as_str), Some("mod" | "main")) {
            segs.pop();
        }
        let code = std::fs::read_to_string(&p).unwrap();
        let code = code.split("#[cfg(test)]").next().unwrap_or_default();
        let code: Vec<&str> = code
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect();
        text.insert(segs.join("::"), code.join("\n"));
    }
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut graph = std::collections::BTreeMap::new();
    for (m, code) in &text {
        let own: Vec<&str> = m.split("::").filter(|s| !s.is_empty()).collect();
        let mut to = std::collections::BTreeSet::new();
        let mut resolve = |base: Vec<&str>, path: Vec<String>| {
            let mut target = base.join("::");
            for k in (1..=path.len()).rev() {
                let mut c: Vec<&str> = base.clone();
                c.extend(path.iter().take(k).map(String::as_str));
                if text.contains_key(&c.join("::")) {
                    target = c.join("::");
                    break;
                }
            }
            if target != *m {
                to.insert(target);
            }
        };
        for (kw, base) in [
            ("crate::", Vec::new()),
            (
                "super::",
                own.iter()
                    .take(own.len().saturating_sub(1))
                    .copied()
                    .collect(),
            ),
            ("self::", own.clone()),
        ] {
            for (at, _) in code.match_indices(kw) {
                let rest = code.get(at + kw.len()..).unwrap_or_default();
                let items: Vec<&str> = match rest.strip_prefix('{') {
                    Some(group) => group
                        .split('}')
                        .next()
                        .unwrap_or_default()
                        .split(',')
                        .collect(),
                    None => vec![rest],
                };
                for item in items {
                    let path: Vec<String> = item
                        .trim()
                        .split("::")
                        .map(ident)
                        .take_while(|s| !s.is_empty())
                        .collect();
                    resolve(base.clone(), path);
                }
            }
        }
        // children declared here and named without a prefix (`worker::run(..)`)
        for line in code.lines() {
            let t = line.trim();
            let t = t.strip_prefix("pub(crate) ").unwrap_or(t);
            if let Some(child) = t.strip_prefix("mod ").and_then(|c| c.strip_suffix(';')) {
                let used = code.lines().any(|l| {
                    let l = l.trim();
                    !l.starts_with("mod ")
                        && !l.starts_with("pub(crate) mod ")
                        && l.match_indices(&format!("{child}::")).any(|(i, _)| {
                            i == 0
                                || !l[..i].ends_with(|c: char| {
                                    c.is_ascii_alphanumeric() || c == '_' || c == ':'
                                })
                        })
                });
                if used {
                    let mut c = own.clone();
                    c.push(child);
                    resolve(Vec::new(), c.iter().map(|s| s.to_string()).collect());
                }
            }
        }
        graph.insert(m.clone(), to);
    }
    graph
}

/// The binary's modules import one way: no module is reached again from a module it
/// imports (leaves such as `clock`, `http`, `messages` import none of the server's).
#[test]
fn the_binarys_modules_form_no_circle() {
    let graph = binary_module_graph();
    fn visit(
        m: &str,
        graph: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
        circles: &mut Vec<String>,
    ) {
        if let Some(i) = path.iter().position(|p| p == m) {
            circles.push(format!("{} -> {m}", path[i..].join(" -> ")));
            return;
        }
        if !done.insert(m.to_string()) {
            return;
        }
        path.push(m.to_string());
        for n in graph.get(m).into_iter().flatten() {
            visit(n, graph, path, done, circles);
        }
        path.pop();
    }
    let mut circles = Vec::new();
    let mut done = std::collections::BTreeSet::new();
    for m in graph.keys() {
        visit(m, &graph, &mut Vec::new(), &mut done, &mut circles);
    }
    assert!(circles.is_empty(), "{circles:#?}");
    for leaf in ["clock", "http", "account", "messages", "datadir"] {
        assert_eq!(
            graph.get(leaf),
            Some(&Default::default()),
            "{leaf} is a leaf"
        );
    }
    assert!(graph["serve"].contains("serve::shell"), "{graph:#?}");
}
