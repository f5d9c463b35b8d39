//! `palisade inspect` against the real binary: verdicts, JSON keys, stdin, exit codes.
// Helpers outside `#[test]` functions assert by panicking too (clippy.toml exempts only
// test functions and `#[cfg(test)]` modules from the workspace's panic-free lints).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]
use std::io::Write;
use std::process::{Command, Stdio};

mod common;
use common::{offer_cases, offers_dir, Case};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
}

fn corpus(f: &str) -> String {
    format!("{}/../../tests/corpus/{f}", env!("CARGO_MANIFEST_DIR"))
}

fn json_lines(out: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn accepted_files_exit_zero_with_canonical_form() {
    // The message layer alone: wsinv's SDP (`a=rtpmap:31 LPC`, no clock rate) is for the
    // shield to refuse, see `the_shield_refuses_rfc4475_sdp_without_clock_rate`.
    let out = bin()
        .args([
            "inspect",
            "--json",
            "--message-only",
            &corpus("rfc4475/wsinv.dat"),
            &corpus("rfc5118/ipv6-good"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v = json_lines(&out.stdout);
    assert_eq!(v.len(), 2);
    assert_eq!(v[0]["verdict"], "accept");
    assert!(v[0]["status"].is_null());
    assert_eq!(v[0]["method"], "INVITE");
    assert_eq!(v[0]["call_id"], "wsinv.ndaksdj@192.0.2.1");
    let canonical = v[0]["canonical"].as_str().unwrap();
    assert!(
        canonical.starts_with("INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\r\n")
    );
    assert!(canonical.contains("\r\nMax-Forwards: 68\r\n"));
    assert!(v[0]["file"].as_str().unwrap().ends_with("wsinv.dat"));
}

#[test]
fn rejected_files_exit_one_with_status_reason_offset() {
    let out = bin()
        .args([
            "inspect",
            "--json",
            "--message-only",
            &corpus("rfc4475/wsinv.dat"),
            &corpus("rfc4475/mcl01.dat"),
            &corpus("rfc4475/badvers.dat"),
            &corpus("rfc4475/bigcode.dat"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v = json_lines(&out.stdout);
    assert_eq!(v[1]["verdict"], "reject");
    assert_eq!(v[1]["status"], 400);
    assert_eq!(v[1]["header"], "Content-Length");
    assert!(v[1]["reason"].as_str().unwrap().contains("only once"));
    assert!(v[1]["offset"].as_u64().unwrap() > 0);
    assert!(v[1].get("canonical").is_none());
    assert_eq!(v[2]["status"], 505);
    // A malformed response is dropped, never answered.
    assert_eq!(v[3]["verdict"], "reject");
    assert!(v[3]["status"].is_null());
    assert_eq!(v[3]["action"], "drop");
}

#[test]
fn stdin_and_text_output() {
    let mut child = bin()
        .args(["inspect", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"OPTIONS sip:x@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h.example.com;branch=z9hG4bK1\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:x@example.com>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 0\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("-: accept request OPTIONS Call-ID c1\n"),
        "{text}"
    );
}

#[test]
fn usage_and_io_errors_exit_two() {
    let out = bin()
        .args(["inspect", "/nonexistent/file.sip"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/file.sip"));
    let out = bin().args(["inspect"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = bin()
        .args([
            "inspect",
            "--limit",
            "limits.bogus=3",
            &corpus("rfc4475/wsinv.dat"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn limits_can_be_set_from_the_command_line() {
    let out = bin()
        .args([
            "inspect",
            "--json",
            "--limit",
            "limits.max_via=3",
            &corpus("rfc4475/longreq.dat"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v = json_lines(&out.stdout);
    assert_eq!(v[0]["status"], 483);
    assert!(v[0]["reason"].as_str().unwrap().contains("limits.max_via"));
}

#[test]
fn the_shield_refuses_rfc4475_sdp_without_clock_rate() {
    let out = bin()
        .args([
            "inspect",
            "--json",
            &corpus("rfc4475/wsinv.dat"),
            &corpus("rfc4475/invut.dat"),
            &corpus("rfc4475/mpart01.dat"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v = json_lines(&out.stdout);
    assert_eq!(v[0]["status"], 488);
    assert!(v[0]["reason"].as_str().unwrap().contains("a=rtpmap"));
    assert_eq!(v[0]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(v[1]["status"], 415, "invut: application/unknownformat");
    assert_eq!(
        v[2]["status"], 415,
        "mpart01: text/plain and octet-stream parts"
    );
}

fn offers() -> (String, Vec<Case>) {
    (offers_dir().to_string_lossy().into_owned(), offer_cases())
}

/// Every hostile and real offer of tests/offers through `inspect`: the verdict and
/// status, and for accepted ones the exact forwarded form keeps what must be kept and
/// contains nothing that was hidden.
#[test]
fn hostile_offer_corpus_through_inspect() {
    let (dir, cases) = offers();
    assert!(cases.len() >= 40);
    let files: Vec<String> = cases
        .iter()
        .map(|c| format!("{dir}/{}.sip", c.name))
        .collect();
    let out = bin()
        .arg("inspect")
        .arg("--json")
        .args(&files)
        .output()
        .unwrap();
    let v = json_lines(&out.stdout);
    assert_eq!(v.len(), cases.len());
    for (c, r) in cases.iter().zip(&v) {
        let what = format!("{} ({})", c.name, c.tries);
        assert_eq!(r["verdict"], c.verdict.as_str(), "{what}: {r}");
        if c.verdict == "reject" {
            assert_eq!(r["status"], c.status.unwrap(), "{what}: {r}");
            assert!(!r["reason"].as_str().unwrap().is_empty());
            continue;
        }
        let canonical = r["canonical"].as_str().unwrap();
        for h in &c.hidden {
            assert!(
                !canonical.contains(h.as_str()),
                "{what}: {h:?} forwarded:\n{canonical}"
            );
        }
        for k in &c.keep {
            assert!(
                canonical.contains(k.as_str()),
                "{what}: {k:?} lost:\n{canonical}"
            );
        }
        if !c.hidden.is_empty() && c.reported && !c.name.starts_with("multipart") {
            assert!(
                !r["dropped"].as_array().unwrap().is_empty(),
                "{what}: what was removed is reported"
            );
        }
        // What inspect shows is what a second pass would forward unchanged.
        let again = bin()
            .args(["inspect", "--json", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut ch| {
                ch.stdin.take().unwrap().write_all(canonical.as_bytes())?;
                ch.wait_with_output()
            })
            .unwrap();
        let a = &json_lines(&again.stdout)[0];
        assert_eq!(
            a["canonical"].as_str().unwrap(),
            canonical,
            "{what}: idempotent"
        );
    }
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn policy_comes_from_the_config_file() {
    let (dir, _) = offers();
    let cfg = std::env::temp_dir().join(format!("palisade-inspect-{}.toml", std::process::id()));
    std::fs::write(
        &cfg,
        "[shield]\nunknown_attributes = \"refuse\"\n[shield.text]\nsubject = \"keep\"\n",
    )
    .unwrap();
    let out = bin()
        .args(["inspect", "--json", "--config"])
        .arg(&cfg)
        .arg(format!("{dir}/hidden-unknown-attribute.sip"))
        .arg(format!("{dir}/header-subject.sip"))
        .output()
        .unwrap();
    let v = json_lines(&out.stdout);
    assert_eq!(v[0]["status"], 488);
    assert!(v[0]["reason"]
        .as_str()
        .unwrap()
        .contains("shield.sdp_attributes"));
    assert_eq!(v[1]["verdict"], "accept");
    assert!(v[1]["canonical"].as_str().unwrap().contains("Subject: "));
    std::fs::write(&cfg, "[shield]\nunknown_attributes = \"maybe\"\n").unwrap();
    let out = bin()
        .args(["inspect", "--config"])
        .arg(&cfg)
        .arg(format!("{dir}/real-sipp.sip"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("shield.unknown_attributes"));
    let _ = std::fs::remove_file(&cfg);
}

/// A message written by hand in an editor has LF line ends: the verdict says that SIP
/// needs CRLF, not only that the header section never ends.
#[test]
fn bare_lf_line_ends_are_named() {
    let lf = "OPTIONS sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\nMax-Forwards: 70\nFrom: <sip:a@example.com>;tag=1\nTo: <sip:bob@example.com>\nCall-ID: lf\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n";
    let mut child = bin()
        .args(["inspect", "--json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lf.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v = json_lines(&out.stdout);
    let reason = v[0]["reason"].as_str().unwrap();
    assert!(reason.contains("SIP needs CRLF"), "{reason}");
    assert_eq!(v[0]["offset"], 35, "the first bare LF");
    // the same message with CRLF is accepted
    let crlf = lf.replace('\n', "\r\n");
    let mut child = bin()
        .args(["inspect", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(crlf.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
