//! Profiles per request: a call is judged on what calls taught, a registration on what
//! registrations taught (shipped fingerprints count for both).

use super::*;

/// A call from `caller` claiming `ua` with the INVITE fingerprint `fp`; answered (and
/// ended) when `answered`, else cancelled after a long ring.
fn call_as(
    s: &mut Sim,
    at: Millis,
    (caller, callee): (&str, &str),
    ua: &str,
    fp: u64,
    answered: bool,
) {
    s.key += 1;
    let key = s.key;
    s.d.observe(Observation::CallStart(CallStart {
        key,
        at,
        call_id: format!("c{key}"),
        caller: caller.into(),
        callee: callee.into(),
        source: addr("198.51.100.7:5060"),
        transport: "udp",
        user_agent: ua.into(),
        fingerprint: fp,
        sdp: 0,
        blocked: false,
        message: false,
    }));
    let status = if answered { 200 } else { 487 };
    s.d.observe(Observation::CallStatus {
        key,
        at: at + 9000,
        status,
    });
    if answered {
        s.d.observe(Observation::CallEnd {
            call_id: format!("c{key}"),
            at: at + 60_000,
        });
    }
    s.collect();
}

fn imitations(s: &Sim) -> Vec<&Finding> {
    s.findings
        .iter()
        .filter(|f| f.kind == FindingKind::Imitation)
        .collect()
}

#[test]
fn calls_are_judged_on_what_calls_taught_not_on_what_registrations_taught() {
    let mut s = Sim::new();
    // Day one: six new accounts of one phone model, whose stack writes its REGISTER
    // (fingerprint 10) unlike its INVITE (fingerprint 20).
    for i in 0..6 {
        reg(
            &mut s.d,
            T0,
            &format!("new{i}"),
            "198.51.100.7:5060",
            "Acme/2.0",
            10,
        );
    }
    // Five of them are called by phones of another model and answer: they earn
    // standing and teach the family their REGISTER.
    for i in 0..5 {
        call_as(
            &mut s,
            T0 + 1000 * i,
            (&format!("new{}", 20 + i), &format!("new{i}")),
            "Other/1.0",
            77,
            true,
        );
    }
    for i in 0..6 {
        reg(
            &mut s.d,
            T0 + 100_000,
            &format!("new{i}"),
            "198.51.100.7:5060",
            "Acme/2.0",
            10,
        );
    }
    s.collect();
    assert!(imitations(&s).is_empty(), "{:?}", s.kinds());
    // The model's first call, from the one account without standing: no call taught the
    // family anything yet, so it is not judged (judged on registrations, it was an
    // imitation: fingerprint 20 is none of the family's).
    call_as(&mut s, T0 + 200_000, ("new5", "new0"), "Acme/2.0", 20, true);
    assert!(imitations(&s).is_empty(), "{:?}", s.kinds());
    // Three accounts in good standing call: the family's INVITE is learned.
    for i in 0..3 {
        call_as(
            &mut s,
            T0 + 300_000 + 1000 * i,
            (&format!("new{i}"), "new4"),
            "Acme/2.0",
            20,
            true,
        );
    }
    assert!(imitations(&s).is_empty(), "{:?}", s.kinds());
    // A new account claiming the model but writing its INVITE otherwise is found ...
    reg(
        &mut s.d,
        T0 + 400_000,
        "new40",
        "203.0.113.9:5060",
        "Acme/2.0",
        10,
    );
    call_as(
        &mut s,
        T0 + 400_100,
        ("new40", "new1"),
        "Acme/2.0",
        66,
        false,
    );
    let found = imitations(&s);
    assert_eq!(found.len(), 1, "{:?}", s.kinds());
    assert_eq!(found[0].subject, Subject::Device(66));
    assert_eq!(found[0].accounts, vec!["new40".to_string()]);
    // ... and the genuine INVITE of a new account is not; nor is a REGISTER written
    // like the model's INVITE judged known (the two stay apart).
    call_as(
        &mut s,
        T0 + 500_000,
        ("new41", "new2"),
        "Acme/2.0",
        20,
        false,
    );
    assert_eq!(imitations(&s).len(), 1, "{:?}", s.kinds());
    reg(
        &mut s.d,
        T0 + 600_000,
        "new42",
        "203.0.113.9:5060",
        "Acme/2.0",
        20,
    );
    s.collect();
    let found = imitations(&s);
    assert_eq!(found.len(), 2, "{:?}", s.kinds());
    assert!(
        found.iter().any(|f| f.subject == Subject::Device(20)),
        "{:?}",
        s.kinds()
    );
}
