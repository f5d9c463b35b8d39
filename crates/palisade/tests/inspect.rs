//! `palisade inspect` against the real binary: verdicts, JSON keys, stdin, exit codes.
use std::io::Write;
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
}

fn corpus(f: &str) -> String {
    format!("{}/../../../shared/corpus/{f}", env!("CARGO_MANIFEST_DIR"))
}

fn json_lines(out: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn accepted_files_exit_zero_with_canonical_form() {
    let out = bin()
        .args([
            "inspect",
            "--json",
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
