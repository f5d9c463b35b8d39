//! Imitation profiles with real SIPp traffic: a call is judged on what calls taught,
//! a registration on what registrations taught.
//!
//! SIPp's scenario files write the REGISTER and the INVITE with their headers in other
//! orders, so a family whose clients are SIPp has two fingerprints, one per request, as
//! a real stack may have. Run under a User-Agent no shipped profile names, the family is
//! learned only from accounts in good standing.
// Helpers outside `#[test]` functions assert by panicking too (clippy.toml exempts only
// test functions and `#[cfg(test)]` modules from the workspace's panic-free lints).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;

/// `file` (a SIPp scenario of the suite) with its User-Agent replaced by `ua`, written in
/// the server's directory; its path.
fn with_user_agent(s: &Server, file: &str, ua: &str) -> String {
    let text = std::fs::read_to_string(scenario(file)).unwrap();
    assert!(text.contains("User-Agent: sipp-bench"), "{file}");
    let path = s.dir.join(format!("{}-{file}", ua.replace('/', "_")));
    std::fs::write(
        &path,
        text.replace("User-Agent: sipp-bench", &format!("User-Agent: {ua}")),
    )
    .unwrap();
    path.to_string_lossy().into_owned()
}

/// Three phones of one model register and answer calls from phones of another model:
/// they earn standing, and the model's REGISTER is learned. The model's first caller
/// then calls: its INVITE is written unlike the model's REGISTER, and no call of that
/// model has been learned yet, so it is not judged (judged on the registrations, it
/// was taken for an imitation of its own model: the code before the profiles were kept
/// per request fails here).
#[test]
fn a_models_first_call_is_not_judged_on_what_its_registrations_taught() {
    let port = ports();
    let dir = tempdir("profiles-per-request");
    add_users(&dir, &["bob1", "bob2", "bob3", "c1", "c2", "c3", "c4"]);
    let s = Server::start_in(dir, port, &["--auth-algorithms", "md5"]);
    let uas_port = s.port + 1;
    let register = with_user_agent(&s, "register.xml", "acme-phone/1.0");
    for (i, bob) in ["bob1", "bob2", "bob3"].iter().enumerate() {
        let (ok, trace) = sipp_register(
            &s,
            &format!("reg{i}"),
            bob,
            uas_port,
            s.port + 2,
            &register,
            &[],
        );
        assert!(ok, "REGISTER of {bob} failed:\n{trace}\n{}", s.log_text());
    }
    let other = with_user_agent(&s, "uac.xml", "other-phone/2.0");
    let acme = with_user_agent(&s, "uac.xml", "acme-phone/1.0");
    let calls = [
        ("c1", "bob1", &other),
        ("c2", "bob2", &other),
        ("c3", "bob3", &other),
        ("c4", "bob1", &acme),
    ];
    for (i, (caller, callee, uac)) in calls.iter().enumerate() {
        let uas = sipp_uas(&s, &format!("uas{i}"), "uas.xml", uas_port, &[]);
        let (ok, trace) = sipp_call(
            &s,
            &format!("uac{i}"),
            caller,
            callee,
            uac,
            s.port + 3,
            &["-d", "200"],
        );
        assert!(
            ok,
            "call {caller} -> {callee} failed:\n{trace}\n{}",
            s.log_text()
        );
        let (uas_ok, uas_trace) = uas.finish();
        assert!(uas_ok, "UAS failed:\n{uas_trace}");
    }
    // every call recorded, the last with the model's User-Agent and its INVITE's
    // fingerprint, which is not the REGISTER's
    let recorded = recorded_calls(&s.dir, calls.len());
    let last = recorded
        .iter()
        .find(|c| c["caller"] == "c4")
        .expect("c4's call recorded");
    assert_eq!(last["user_agent"], "acme-phone/1.0", "{last}");
    assert_eq!(last["outcome"], "answered", "{last}");
    let registrations = cli_json(&s.dir, &["report", "devices", "--json"]).to_string();
    let fp = last["fingerprint"].as_str().unwrap();
    assert!(
        !registrations.contains(fp),
        "the INVITE's fingerprint {fp} is not a REGISTER's: {registrations}"
    );
    let findings = cli_json(&s.dir, &["report", "findings", "--json"]);
    assert!(
        !findings.to_string().contains("imitation-client"),
        "the model's own call was taken for an imitation: {findings}\ncalls: {recorded:?}"
    );
}
