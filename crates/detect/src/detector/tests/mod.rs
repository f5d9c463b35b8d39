use super::*;
use std::net::SocketAddr;

mod findings;
mod media;
mod profiles;
mod scan;
mod trunk;

const T0: Millis = 1_764_000_000_000;
const DAY: Millis = 86_400_000;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn det() -> Detector {
    let mut d = Detector::new(Config::default(), (1, 1, 1));
    d.set_accounts(
        (0..1000)
            .map(|i| (format!("old{i}"), T0 - 365 * DAY))
            .chain((0..100).map(|i| (format!("new{i}"), T0 - 60_000))),
    );
    d
}

struct Sim {
    d: Detector,
    key: u64,
    findings: Vec<Finding>,
    restrictions: Vec<Restriction>,
    calls: HashMap<u64, CallRecord>,
}

impl Sim {
    fn new() -> Sim {
        Sim {
            d: det(),
            key: 0,
            findings: vec![],
            restrictions: vec![],
            calls: HashMap::default(),
        }
    }
    fn collect(&mut self) {
        for o in self.d.drain().collect::<Vec<_>>() {
            match o {
                Output::Finding(f) => {
                    self.findings.retain(|g| g.id != f.id);
                    self.findings.push(f)
                }
                Output::FindingUpdate(u) => {
                    // as the stores apply it: the finding was written whole before
                    let f = self
                        .findings
                        .iter_mut()
                        .find(|f| f.id == u.id)
                        .expect("an update follows the finding's whole write");
                    f.score = u.score;
                    f.updated_at = u.updated_at;
                    f.action = u.action;
                    f.summary = u.summary;
                }
                Output::Restrict(r) => self.restrictions.push(r),
                Output::Call(c) => {
                    self.calls.insert(c.id, c);
                }
                Output::Registration(_) => {}
            }
        }
    }
    /// One call: rings `ring_ms`, then answered (talk `talk`) or cancelled.
    fn call(
        &mut self,
        at: Millis,
        caller: &str,
        callee: &str,
        src: &str,
        answer: Option<Millis>,
        ring_ms: Millis,
    ) {
        let key = self.start(at, caller, callee, src, false);
        self.d.observe(Observation::CallStatus {
            key,
            at: at + 100,
            status: 180,
        });
        match answer {
            Some(talk) => {
                self.d.observe(Observation::CallStatus {
                    key,
                    at: at + 100 + ring_ms,
                    status: 200,
                });
                self.d.observe(Observation::CallEnd {
                    call_id: format!("c{key}"),
                    at: at + 100 + ring_ms + talk,
                });
            }
            None => self.d.observe(Observation::CallStatus {
                key,
                at: at + 100 + ring_ms,
                status: 487,
            }),
        }
        self.collect();
    }
    /// A call's INVITE (or a MESSAGE) is seen; its key.
    fn start(&mut self, at: Millis, caller: &str, callee: &str, src: &str, message: bool) -> u64 {
        self.key += 1;
        let key = self.key;
        self.d.observe(Observation::CallStart(CallStart {
            key,
            at,
            call_id: format!("c{key}"),
            caller: caller.into(),
            callee: callee.into(),
            source: addr(src),
            transport: "udp",
            user_agent: String::new(),
            fingerprint: 7,
            sdp: 0,
            blocked: false,
            message,
        }));
        key
    }
    /// One MESSAGE.
    fn text(&mut self, at: Millis, caller: &str, callee: &str, src: &str) {
        self.start(at, caller, callee, src, true);
        self.collect();
    }
    fn kinds(&self) -> Vec<(FindingKind, Subject)> {
        let mut v: Vec<_> = self
            .findings
            .iter()
            .map(|f| (f.kind, f.subject.clone()))
            .collect();
        v.sort();
        v
    }
}

#[test]
fn a_ring_and_cancel_sweep_is_found_and_blocked() {
    let mut s = Sim::new();
    for i in 0..25 {
        s.call(
            T0 + i * 5000,
            "old1",
            &format!("old{}", 100 + i),
            "192.0.2.7:5060",
            None,
            2000,
        );
    }
    let f = s
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::Sweep)
        .expect("sweep found");
    assert_eq!(f.subject, Subject::Account("old1".into()));
    assert_eq!(f.accounts, vec!["old1".to_string()]);
    assert_eq!(f.action, ActionKind::Block);
    assert!(
        f.records.len() >= 20,
        "rests on the calls: {:?}",
        f.records.len()
    );
    // found at the 20th distinct callee, not later
    assert_eq!(f.detected_at, T0 + 19 * 5000 + 2100);
    assert_eq!(s.restrictions.len(), 1, "one restriction, not one per call");
    assert_eq!(s.restrictions[0].subject, Subject::Account("old1".into()));
    assert_eq!(s.restrictions[0].per_minute, None);
    let c = s.calls.values().find(|c| c.callee == "old100").unwrap();
    assert_eq!(c.outcome(), "cancelled");
    assert_eq!(c.ring_ms(), Some(2000));
}

#[test]
fn a_call_centre_that_is_answered_is_not_a_sweep() {
    let mut s = Sim::new();
    // 300 distinct callees in 10 minutes, 70 % answered with 2-minute talks
    for i in 0..300 {
        let answer = (i % 10 < 7).then_some(120_000);
        s.call(
            T0 + i * 2000,
            "old2",
            &format!("old{}", 300 + i),
            "198.51.100.9:5060",
            answer,
            8000,
        );
    }
    assert!(s.findings.is_empty(), "{:?}", s.kinds());
}

#[test]
fn a_user_whose_calls_go_unanswered_but_few_callees_is_not_a_sweep() {
    let mut s = Sim::new();
    for i in 0..60 {
        s.call(
            T0 + i * 3000,
            "old3",
            &format!("old{}", 10 + i % 5),
            "198.51.100.10:5060",
            None,
            20_000,
        );
    }
    assert!(s.findings.is_empty(), "{:?}", s.kinds());
}

#[test]
fn a_new_account_calling_strangers_is_rate_limited_and_old_contacts_do_not_count() {
    let mut s = Sim::new();
    // new0 already talked to old50..old59 (restored from the store): not strangers
    for i in 50..60 {
        s.d.restore_pair(&format!("old{i}"), "new0");
    }
    for i in 50..60 {
        s.call(
            T0 + i * 1000,
            "new0",
            &format!("old{i}"),
            "203.0.113.5:5060",
            Some(60_000),
            3000,
        );
    }
    assert!(s.findings.is_empty(), "{:?}", s.kinds());
    // strangers who are answered and talk: not a campaign (a new user's first day)
    for i in 0..10 {
        s.call(
            T0 + 100_000 + i * 1000,
            "new0",
            &format!("old{i}"),
            "203.0.113.5:5060",
            Some(60_000),
            3000,
        );
    }
    assert!(s.findings.is_empty(), "{:?}", s.kinds());
    // strangers rung briefly and cancelled: behaviour
    for i in 0..10 {
        s.call(
            T0 + 200_000 + i * 1000,
            "new1",
            &format!("old{}", 200 + i),
            "203.0.113.5:5060",
            None,
            500,
        );
    }
    let f = s
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::Strangers)
        .expect("found");
    assert_eq!(f.subject, Subject::Account("new1".into()));
    assert_eq!(f.records.len(), 10, "it rests on the ten calls");
    assert_eq!(s.restrictions[0].per_minute, Some(2));
    // an old account doing the same is not flagged
    let mut s = Sim::new();
    for i in 0..30 {
        s.call(
            T0 + i * 1000,
            "old5",
            &format!("old{}", 100 + i),
            "203.0.113.6:5060",
            Some(60_000),
            3000,
        );
    }
    assert!(s.findings.is_empty(), "{:?}", s.kinds());
}

fn reg(d: &mut Detector, at: Millis, account: &str, src: &str, ua: &str, fp: u64) {
    d.observe(Observation::Registered(Registration {
        at,
        account: account.into(),
        source: addr(src),
        transport: "udp",
        user_agent: ua.into(),
        fingerprint: fp,
    }));
}

#[test]
fn a_farm_of_new_accounts_is_found_per_network_and_device_but_an_office_is_not() {
    let mut d = det();
    for i in 0..5 {
        reg(
            &mut d,
            T0 + i * 1000,
            &format!("new{i}"),
            &format!("203.0.113.{}:5060", 10 + i),
            "",
            99,
        );
    }
    let out: Vec<Output> = d.drain().collect();
    let farms: Vec<&Finding> = out
        .iter()
        .filter_map(|o| match o {
            Output::Finding(f) if f.kind == FindingKind::Farm => Some(f),
            _ => None,
        })
        .collect();
    assert_eq!(farms.len(), 2, "network and device");
    assert!(farms
        .iter()
        .any(|f| f.subject == Subject::Network(Network::parse("203.0.113.0/24").unwrap())));
    assert!(farms.iter().any(|f| f.subject == Subject::Device(99)));
    assert_eq!(farms[0].accounts.len(), 5);
    assert!(
        !out.iter().any(|o| matches!(o, Output::Restrict(_))),
        "a farm is an alert by default"
    );
    // 50 established phones behind one address registering at once
    let mut d = det();
    for i in 0..50 {
        reg(
            &mut d,
            T0 + i,
            &format!("old{i}"),
            "198.51.100.1:5060",
            "",
            99,
        );
    }
    assert!(!d.drain().any(|o| matches!(o, Output::Finding(_))));
}

#[test]
fn an_imitation_is_a_client_that_claims_a_family_and_writes_otherwise() {
    let mut d = det();
    d.add_profile("baresip", 1);
    reg(
        &mut d,
        T0,
        "old1",
        "192.0.2.1:5060",
        "baresip v1.0.0 (x86_64/linux)",
        1,
    );
    assert!(!d.drain().any(|o| matches!(o, Output::Finding(_))));
    reg(
        &mut d,
        T0,
        "new1",
        "192.0.2.2:5060",
        "baresip v1.0.0 (x86_64/linux)",
        2,
    );
    let f: Vec<Finding> = d
        .drain()
        .filter_map(|o| match o {
            Output::Finding(f) => Some(f),
            _ => None,
        })
        .collect();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].kind, FindingKind::Imitation);
    assert_eq!(f[0].subject, Subject::Device(2));
    // learned profiles: three established accounts teach a family's fingerprint
    let mut d = det();
    for i in 0..3 {
        reg(
            &mut d,
            T0,
            &format!("old{i}"),
            "192.0.2.1:5060",
            "Acme/2.0",
            10,
        );
    }
    reg(&mut d, T0, "old9", "192.0.2.9:5060", "Acme/2.0", 10);
    assert!(!d.drain().any(|o| matches!(o, Output::Finding(_))));
    reg(&mut d, T0 + 10, "new5", "192.0.2.5:5060", "Acme/2.1", 11);
    assert!(d
        .drain()
        .any(|o| matches!(o, Output::Finding(f) if f.kind == FindingKind::Imitation)));
    // new accounts cannot teach a profile
    let mut d = det();
    for i in 0..5 {
        reg(
            &mut d,
            T0,
            &format!("new{i}"),
            "192.0.2.1:5060",
            "Other/1",
            20 + i as u64,
        );
    }
    assert!(!d
        .drain()
        .any(|o| matches!(o, Output::Finding(f) if f.kind == FindingKind::Imitation)));
}

#[test]
fn state_is_bounded_and_idle_subjects_are_evicted() {
    let cfg = Config {
        max_subjects: 10,
        ..Config::default()
    };
    let mut d = Detector::new(cfg, (1, 1, 1));
    for i in 0..100 {
        probe(
            &mut d,
            T0,
            &format!("10.{i}.0.1:5060"),
            ProbeKind::UnknownUser,
            "x",
            "",
        );
    }
    assert_eq!(d.tracked().1, 10);
    assert_eq!(d.overflow, 90);
    d.tick(T0 + 3_600_001);
    assert_eq!(d.tracked().1, 0);
}

#[test]
fn a_finding_is_updated_not_repeated_and_a_lapsed_block_is_renewed() {
    let mut s = Sim::new();
    for i in 0..40 {
        s.call(
            T0 + i * 1000,
            "old1",
            &format!("old{}", 100 + i),
            "192.0.2.7:5060",
            None,
            1000,
        );
    }
    assert_eq!(s.findings.len(), 1);
    assert_eq!(s.restrictions.len(), 1);
    s.d.tick(T0 + 50_000);
    s.collect();
    assert!(s.findings[0].records.len() >= 40);
    // after the block ran out (1 h), the sweep goes on: blocked again
    for i in 0..25 {
        s.call(
            T0 + 3_700_000 + i * 1000,
            "old1",
            &format!("old{}", 200 + i),
            "192.0.2.7:5060",
            None,
            1000,
        );
    }
    assert_eq!(s.findings.len(), 1);
    assert_eq!(s.restrictions.len(), 2);
}

#[test]
fn on_day_one_a_call_centre_is_never_restricted_and_a_sweep_still_is() {
    // Every account new, every phone behind one address, one client.
    let mut s = Sim::new();
    for i in 0..100 {
        reg(
            &mut s.d,
            T0 + i,
            &format!("new{i}"),
            "198.51.100.1:5060",
            "SimPhone/1.0",
            5,
        );
    }
    s.collect();
    // farms are context: alerts, never restrictions
    assert!(s.findings.iter().all(|f| f.action == ActionKind::Alert));
    assert!(s.restrictions.is_empty());
    // the call centre: 150 strangers, 70 % answered, short talks
    for i in 0..150 {
        let answer = (i % 10 < 7).then_some(20);
        s.call(
            T0 + 10_000 + i * 500,
            "new1",
            &format!("cust{i}"),
            "198.51.100.1:5060",
            answer,
            300,
        );
    }
    assert!(
        !s.findings
            .iter()
            .any(|f| f.kind != FindingKind::Farm && f.accounts.contains(&"new1".to_string())),
        "{:?}",
        s.kinds()
    );
    assert!(s.restrictions.is_empty());
    // a new account in the same office ringing and cancelling on strangers
    for i in 0..12 {
        s.call(
            T0 + 200_000 + i * 500,
            "new2",
            &format!("t{i}"),
            "198.51.100.1:5060",
            None,
            200,
        );
    }
    let f = s
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::Strangers)
        .expect("found");
    assert_eq!(f.accounts, vec!["new2".to_string()]);
    assert_eq!(s.restrictions.len(), 1);
    assert_eq!(s.restrictions[0].subject, Subject::Account("new2".into()));
}

#[test]
fn callees_who_call_back_are_counter_evidence() {
    let mut s = Sim::new();
    for i in 0..30 {
        s.call(
            T0 + i * 1000,
            "old1",
            &format!("old{}", 100 + i),
            "203.0.113.6:5060",
            None,
            500,
        );
        // a third of them call back at once
        if i % 3 == 0 {
            s.call(
                T0 + i * 1000 + 500,
                &format!("old{}", 100 + i),
                "old1",
                "203.0.113.7:5060",
                Some(1000),
                500,
            );
        }
    }
    assert!(
        !s.findings.iter().any(|f| f.kind == FindingKind::Sweep),
        "{:?}",
        s.kinds()
    );
    // without the call-backs: a sweep
    let mut s = Sim::new();
    for i in 0..30 {
        s.call(
            T0 + i * 1000,
            "old1",
            &format!("old{}", 100 + i),
            "203.0.113.6:5060",
            None,
            500,
        );
    }
    assert!(s.findings.iter().any(|f| f.kind == FindingKind::Sweep));
}

#[test]
fn a_text_sweep_is_found_like_a_call_sweep() {
    let mut s = Sim::new();
    for i in 0..12 {
        s.text(
            T0 + i * 1000,
            "new3",
            &format!("old{}", 300 + i),
            "203.0.113.8:5060",
        );
    }
    let f = s
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::Strangers)
        .expect("found");
    assert!(f.summary.contains("texts"), "{}", f.summary);
    assert_eq!(s.restrictions.len(), 1);
    assert!(s.calls.values().all(|c| c.outcome() == "message"));
    // texts that get replies are a conversation
    let mut s = Sim::new();
    for i in 0..12 {
        let peer = format!("old{}", 300 + i);
        s.text(T0 + i * 1000, "new3", &peer, "203.0.113.8:5060");
        s.text(T0 + i * 1000 + 10, &peer, "new3", "203.0.113.9:5060");
    }
    assert!(s.findings.is_empty(), "{:?}", s.kinds());
}

#[test]
fn imitation_fires_on_new_accounts_and_profiles_are_learned_from_standing_not_age() {
    let mut s = Sim::new();
    // day one: ten new accounts of one phone model; they earn standing by talking
    for i in 0..10 {
        reg(
            &mut s.d,
            T0,
            &format!("new{i}"),
            "198.51.100.1:5060",
            "Acme/2.0",
            10,
        );
    }
    // the campaign's five new accounts claim the same model, write otherwise, and
    // register first: they must not teach the profile their own fingerprint
    for i in 50..55 {
        reg(
            &mut s.d,
            T0,
            &format!("new{i}"),
            "203.0.113.1:5060",
            "Acme/2.0",
            66,
        );
    }
    s.collect();
    assert!(!s.findings.iter().any(|f| f.kind == FindingKind::Imitation));
    for i in 0..5 {
        s.call(
            T0 + 1000 + i,
            &format!("new{i}"),
            &format!("new{}", i + 5),
            "198.51.100.1:5060",
            Some(5000),
            300,
        );
    }
    // the attackers register again (or call): now compared, and found
    for i in 50..55 {
        reg(
            &mut s.d,
            T0 + 4_000_000,
            &format!("new{i}"),
            "203.0.113.1:5060",
            "Acme/2.0",
            66,
        );
    }
    s.d.tick(T0 + 4_000_000);
    s.collect();
    let f: Vec<&Finding> = s
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::Imitation)
        .collect();
    assert_eq!(f.len(), 1, "{:?}", s.kinds());
    assert_eq!(f[0].subject, Subject::Device(66));
    assert_eq!(f[0].accounts.len(), 5);
    // the genuine phones are not imitations
    reg(
        &mut s.d,
        T0 + 4_000_001,
        "new9",
        "198.51.100.1:5060",
        "Acme/2.0",
        10,
    );
    s.collect();
    assert_eq!(
        s.findings
            .iter()
            .filter(|f| f.kind == FindingKind::Imitation)
            .count(),
        1
    );
}

#[test]
fn a_farm_is_an_alert_whatever_the_configuration() {
    let mut cfg = Config::default();
    cfg.new_accounts.farm_response.action = ActionKind::Block;
    let mut d = Detector::new(cfg, (1, 1, 1));
    for i in 0..10 {
        reg(&mut d, T0 + i, &format!("n{i}"), "198.51.100.1:5060", "", 3);
    }
    let out: Vec<Output> = d.drain().collect();
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Finding(f) if f.kind == FindingKind::Farm)));
    assert!(!out.iter().any(|o| matches!(o, Output::Restrict(_))));
}

#[test]
fn a_sweep_is_judged_within_its_own_window() {
    // 25 short rings, one every 100 s: never 20 within the sweep's 600 s
    let mut s = Sim::new();
    for i in 0..25 {
        s.call(
            T0 + i * 100_000,
            "old1",
            &format!("old{}", 100 + i),
            "203.0.113.6:5060",
            None,
            500,
        );
    }
    assert!(s.findings.is_empty(), "{:?}", s.kinds());
}

#[test]
fn calls_in_progress_are_listed_until_their_end() {
    let mut s = Sim::new();
    let ids = |s: &Sim| {
        let mut v: Vec<String> = s.d.calls_in_progress().map(|c| c.call_id.clone()).collect();
        v.sort();
        v
    };
    let a = s.start(1_000, "alice", "bob", "192.0.2.1:5060", false);
    let b = s.start(1_100, "carol", "dave", "192.0.2.2:5060", false);
    s.start(1_150, "erin", "bob", "192.0.2.3:5060", true); // a MESSAGE is not a call
    assert_eq!(ids(&s), ["c1", "c2"]);
    s.d.observe(Observation::CallStatus {
        key: a,
        at: 1_200,
        status: 180,
    });
    s.d.observe(Observation::CallStatus {
        key: a,
        at: 1_300,
        status: 200,
    });
    s.d.observe(Observation::CallStatus {
        key: b,
        at: 1_300,
        status: 486,
    });
    assert_eq!(ids(&s), ["c1"], "answered stays, rejected goes");
    let rec = s.d.calls_in_progress().next().unwrap();
    assert_eq!(
        (rec.ringing_at, rec.answered_at),
        (Some(1_200), Some(1_300))
    );
    s.d.observe(Observation::CallEnd {
        call_id: "c1".into(),
        at: 5_000,
    });
    assert!(ids(&s).is_empty());
}

fn probe(d: &mut Detector, at: Millis, src: &str, kind: ProbeKind, user: &str, ua: &str) {
    d.observe(Observation::Probe(Probe {
        at,
        source: addr(src),
        kind,
        user: user.into(),
        user_agent: ua.into(),
    }));
}
