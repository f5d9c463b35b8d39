//! The scanner detectors (signatures, enumeration, password guessing, floods) and
//! repeated refusals, per source network.

use super::*;

#[test]
fn scanners_enumeration_and_guessing_are_found_per_network() {
    let mut d = det();
    probe(
        &mut d,
        T0,
        "192.0.2.50:5060",
        ProbeKind::Scanner,
        "100",
        "friendly-scanner",
    );
    let out: Vec<Output> = d.drain().collect();
    assert!(out.iter().any(|o| matches!(o, Output::Finding(f) if f.kind == FindingKind::Scanner && f.subject == Subject::Network(Network::parse("192.0.2.0/24").unwrap()))));
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Restrict(r) if r.per_minute.is_none())));
    for i in 0..10 {
        probe(
            &mut d,
            T0 + i,
            &format!("192.0.2.{}:5060", 60 + i),
            ProbeKind::UnknownUser,
            &format!("{}", 200 + i),
            "",
        );
    }
    assert!(d
        .drain()
        .any(|o| matches!(o, Output::Finding(f) if f.kind == FindingKind::Enumeration)));
    for i in 0..20 {
        probe(
            &mut d,
            T0 + i,
            "198.51.100.7:5060",
            ProbeKind::AuthFailed,
            "alice",
            "",
        );
    }
    let out: Vec<Output> = d.drain().collect();
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Finding(f) if f.kind == FindingKind::PasswordGuessing)));
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::Finding(f) if f.kind == FindingKind::Enumeration)),
        "one user is not an enumeration"
    );
    // spread over more than the window: nothing
    let mut d = det();
    for i in 0..30 {
        probe(
            &mut d,
            T0 + i * 61_000,
            "198.51.100.8:5060",
            ProbeKind::AuthFailed,
            &format!("u{i}"),
            "",
        );
    }
    assert!(!d.drain().any(|o| matches!(o, Output::Finding(_))));
}

#[test]
fn repeated_refusals_are_found() {
    let mut d = det();
    for i in 0..5 {
        d.observe(Observation::Refused {
            at: T0 + i,
            source: addr("192.0.2.1:5060"),
            account: "old1".into(),
            kind: "offer-refused".into(),
        });
    }
    assert!(d.drain().any(|o| matches!(o, Output::Finding(f) if f.kind == FindingKind::Refusals && f.subject == Subject::Account("old1".into()))));
}
