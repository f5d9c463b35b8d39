//! The media-abuse detector: streams the relay cut, per account or network.

use super::*;

fn cut(at: Millis, call_id: &str, side: &str, account: &str, src: &str) -> Observation {
    Observation::MediaCut(MediaCut {
        at,
        call_id: call_id.into(),
        side: side.into(),
        account: account.into(),
        source: addr(src),
        reason: "rtp-payload-type".into(),
        refused: 51,
        sample_sha256: "5a".repeat(32),
    })
}

#[test]
fn a_callers_cut_stream_blocks_its_account_with_the_call_as_evidence() {
    let mut s = Sim::new();
    // an answered call in progress: its record names the callee
    let key = s.start(T0, "old1", "old2", "192.0.2.7:5060", false);
    s.d.observe(Observation::CallStatus {
        key,
        at: T0 + 500,
        status: 200,
    });
    s.collect();
    let call = s.d.calls_in_progress().next().unwrap().id;
    s.d.observe(cut(
        T0 + 5000,
        &format!("c{key}"),
        "caller",
        "old1",
        "192.0.2.7:40000",
    ));
    s.collect();
    let f = s
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::MediaAbuse)
        .expect("one cut is a finding");
    assert_eq!(f.kind.as_str(), "media-abuse");
    assert_eq!(f.subject, Subject::Account("old1".into()));
    assert_eq!(f.action, ActionKind::Block);
    assert_eq!(f.accounts, vec!["old1".to_string()]);
    assert!(f.records.contains(&Evidence::Call(call)), "{:?}", f.records);
    let Some(Evidence::Event(e)) = f.records.first() else {
        panic!("{:?}", f.records)
    };
    assert!(
        e.contains(&format!("call c{key} (caller side)"))
            && e.contains("rtp-payload-type")
            && e.contains("51 packets refused")
            && e.contains(&"5a".repeat(32)),
        "{e}"
    );
    assert_eq!(
        s.restrictions,
        vec![Restriction {
            subject: Subject::Account("old1".into()),
            until: T0 + 5000 + 3_600_000,
            per_minute: None,
            finding: f.id,
        }]
    );
    // a second cut adds to the finding; it does not raise another
    s.d.observe(cut(T0 + 9000, "other", "caller", "old1", "192.0.2.7:40002"));
    s.collect();
    let all: Vec<_> = s
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::MediaAbuse)
        .collect();
    assert_eq!(all.len(), 1);
    assert_eq!(s.restrictions.len(), 1);
}

#[test]
fn a_callees_or_an_unauthenticated_callers_cut_names_the_source_network() {
    let mut s = Sim::new();
    // the callee's stream: the account given (if any) is not the sender's
    s.d.observe(cut(T0, "c1", "callee", "old1", "198.51.100.9:30000"));
    // a caller without an account
    s.d.observe(cut(T0, "c2", "caller", "", "[2001:db8:1:2::5]:30000"));
    s.collect();
    assert_eq!(
        s.kinds(),
        vec![
            (
                FindingKind::MediaAbuse,
                Subject::Network(Network::parse("198.51.100.0/24").unwrap())
            ),
            (
                FindingKind::MediaAbuse,
                Subject::Network(Network::parse("2001:db8:1:2::/64").unwrap())
            ),
        ]
    );
    assert!(s.findings.iter().all(
        |f| f.accounts.is_empty() && !f.records.iter().any(|r| matches!(r, Evidence::Call(_)))
    ));
    assert_eq!(s.restrictions.len(), 2);
}

#[test]
fn the_threshold_and_window_are_the_configurations() {
    let mut cfg = Config::default();
    cfg.media.min_cuts = 2;
    cfg.media.window_s = 60;
    cfg.media.response.action = ActionKind::Alert;
    let mut d = Detector::new(cfg.clone(), (1, 1, 1));
    d.observe(cut(T0, "c1", "caller", "old1", "192.0.2.7:40000"));
    // the second cut comes after the window: still one in it
    d.observe(cut(T0 + 61_000, "c2", "caller", "old1", "192.0.2.7:40000"));
    assert!(!d.drain().any(|o| matches!(o, Output::Finding(_))));
    d.observe(cut(T0 + 62_000, "c3", "caller", "old1", "192.0.2.7:40000"));
    let out: Vec<Output> = d.drain().collect();
    assert!(out.iter().any(|o| matches!(o, Output::Finding(f)
        if f.kind == FindingKind::MediaAbuse && f.action == ActionKind::Alert
            && f.records.len() == 2)));
    assert!(
        !out.iter().any(|o| matches!(o, Output::Restrict(_))),
        "an alert restricts nothing"
    );
    cfg.media.enabled = false;
    let mut d = Detector::new(cfg, (1, 1, 1));
    for i in 0..5 {
        d.observe(cut(T0 + i, "c", "caller", "old1", "192.0.2.7:40000"));
    }
    assert_eq!(d.drain().count(), 0);
}
