//! An account that calls all the time (a PBX's trunk) is assessed at a constant share of
//! its window per attempt, not at every attempt, and a sweep from it is still found, at
//! most that share of its window later than when every attempt was assessed.

use super::calls::ASSESS_EVERY_SHARE;
use super::*;

/// What the current finding of `kind` on `account` rests on (empty without one).
fn evidence_of(s: &Sim, kind: FindingKind, account: &str) -> Vec<Evidence> {
    (s.d.active.get(&(kind, Subject::Account(account.into()))))
        .map(|a| a.f.records.clone())
        .unwrap_or_default()
}

/// A busy trunk (3,000 calls in 300 s to 900 users, seven in ten answered), then a
/// ring-and-cancel sweep from it over users it never called, ten attempts a second:
/// the assessments of the busy part, and the attempt of the sweep at which it was found.
fn trunk_then_sweep(share: usize) -> (u64, usize, Sim) {
    let mut s = Sim::new();
    s.d.assess_share = share;
    for i in 0..3000 {
        s.call(
            T0 + i * 100,
            "old1",
            &format!("old{}", 10 + i % 900),
            "192.0.2.9:5060",
            (i % 10 < 7).then_some(30_000),
            3000,
        );
    }
    s.collect();
    assert!(s.findings.is_empty(), "{:?}", s.kinds());
    let busy = s.d.assessments;
    let mut found_at = None;
    for i in 0..4000 {
        s.call(
            T0 + 300_000 + i * 100,
            "old1",
            &format!("old{}", 2000 + i),
            "192.0.2.9:5060",
            None,
            500,
        );
        if found_at.is_none() && !s.findings.is_empty() {
            found_at = Some(i as usize);
        }
    }
    (busy, found_at.expect("the sweep is found"), s)
}

#[test]
fn a_trunk_is_assessed_a_share_of_its_window_at_a_time_and_its_sweep_is_still_found() {
    let (every_busy, every_found, _) = trunk_then_sweep(usize::MAX);
    let (busy, found, mut s) = trunk_then_sweep(ASSESS_EVERY_SHARE);
    // every attempt: a read of the window per attempt from the 20th (`min_callees`) on;
    // a sixteenth at a time: about 32 + 16 × ln(3000 / 32), 105
    assert_eq!(every_busy, 3000 - 19);
    assert!((60..200).contains(&busy), "{busy} assessments");
    // found no earlier, and at most a sixteenth of the window (4,096 at most) later
    assert!(
        (every_found..=every_found + 4096 / ASSESS_EVERY_SHARE).contains(&found),
        "found at attempt {found} of the sweep; {every_found} when every attempt is assessed"
    );
    assert!(
        s.findings.iter().all(|f| f.kind == FindingKind::Sweep),
        "{:?}",
        s.kinds()
    );
    // once found, it keeps the schedule (its window holds 4,096 attempts: assessed
    // once every 256), where every attempt was assessed before
    let before = s.d.assessments;
    for i in 0..100 {
        s.call(
            T0 + 800_000 + i * 100,
            "old1",
            &format!("new{}", i % 100),
            "192.0.2.9:5060",
            None,
            500,
        );
    }
    let assessed = s.d.assessments - before;
    assert!(assessed <= 1, "{assessed} assessments in 100 attempts");
}

/// A found account's attempts between its assessments join its finding's evidence
/// without a read of its window (an account found but only alerted on may go on calling
/// thousands of times).
#[test]
fn a_found_account_s_attempts_between_assessments_join_its_finding() {
    let mut s = Sim::new();
    for i in 0..40 {
        s.call(
            T0 + i * 100,
            "old1",
            &format!("old{}", 100 + i),
            "192.0.2.9:5060",
            None,
            500,
        );
    }
    let records = |s: &Sim| evidence_of(s, FindingKind::Sweep, "old1");
    let evidence = records(&s).len();
    assert!(evidence > 0);
    // (the schedule alone would assess it again only after its whole window)
    s.d.assess_share = 1;
    let before = s.d.assessments;
    let mut ids = vec![];
    for i in 0..30 {
        s.call(
            T0 + 10_000 + i * 100,
            "old1",
            &format!("old{}", 200 + i),
            "192.0.2.9:5060",
            None,
            500,
        );
        ids.push(Evidence::Call(s.d.next_call - 1));
    }
    assert_eq!(s.d.assessments, before);
    let after = records(&s);
    assert_eq!(after.get(evidence..), Some(&ids[..]));
}

/// A found account whose restriction ran out is assessed at its next attempt, not a
/// share of its window later: the restriction is applied again at once.
#[test]
fn a_found_account_whose_restriction_ran_out_is_assessed_at_its_next_attempt() {
    let mut s = Sim::new();
    s.d.cfg.sweep.response = Response {
        action: ActionKind::Block,
        duration_s: 60,
        limit_per_minute: 0,
    };
    for i in 0..300 {
        s.call(
            T0 + i * 100,
            "old1",
            &format!("old{}", 100 + i),
            "192.0.2.9:5060",
            None,
            500,
        );
    }
    s.collect();
    assert_eq!(s.restrictions.len(), 1, "{:?}", s.kinds());
    s.restrictions.clear();
    // (from here on the schedule alone would assess it only after its whole window
    // again: 300 attempts)
    s.d.assess_share = 1;
    // within the block: attempts between assessments restrict nothing anew
    let before = s.d.assessments;
    s.call(T0 + 30_100, "old1", "old500", "192.0.2.9:5060", None, 500);
    s.collect();
    assert_eq!(s.d.assessments, before);
    assert!(s.restrictions.is_empty());
    // past it: the next attempt is assessed and blocked again
    let detected = s.findings.first().map_or(0, |f| f.detected_at);
    s.call(
        detected + 60_000,
        "old1",
        "old501",
        "192.0.2.9:5060",
        None,
        500,
    );
    s.collect();
    assert_eq!(s.d.assessments, before + 1);
    assert_eq!(s.restrictions.len(), 1);
}

#[test]
fn a_busy_account_that_turns_suspect_is_assessed_at_its_next_attempt() {
    let mut s = Sim::new();
    // 100 unanswered calls to distinct users, each after a long ring: no answer, but no
    // sweep's pattern either (none is short)
    let ring = 20_000;
    for i in 0..100 {
        s.call(
            T0 + i * 1000,
            "old1",
            &format!("old{}", 100 + i),
            "192.0.2.9:5060",
            None,
            ring,
        );
    }
    s.collect();
    assert!(s.findings.is_empty(), "{:?}", s.kinds());
    // one offer of it refused: suspect in itself, and read again at its very next attempt
    // (its window of 100 would otherwise be read again only every sixth)
    s.d.observe(Observation::Refused {
        at: T0 + 100_500,
        source: addr("192.0.2.9:5060"),
        account: "old1".into(),
        kind: "offer-refused".into(),
    });
    s.collect();
    let before = s.d.assessments;
    s.call(T0 + 101_000, "old1", "old300", "192.0.2.9:5060", None, ring);
    assert_eq!(s.d.assessments, before + 1);
    assert!(
        s.findings.iter().any(|f| f.kind == FindingKind::Sweep),
        "{:?}",
        s.kinds()
    );
}

/// A trunk's window (hundreds of attempts) is walked to mark calls returned only when
/// the caller and the trunk had a call before: strangers calling it cost no walk, a
/// partner's call back still marks the trunk's calls to it, and once the pairs' table is
/// full (a pair may then be missing from it) every call walks, as before.
#[test]
fn calls_to_a_trunk_walk_its_window_only_when_the_pair_had_a_call_before() {
    let mut s = Sim::new();
    for i in 0..600 {
        s.call(
            T0 + i * 100,
            "old1",
            &format!("old{}", 10 + i % 300),
            "192.0.2.9:5060",
            Some(30_000),
            3000,
        );
    }
    assert_eq!(s.d.reciprocity_walks, 0);
    // 200 users the trunk never called call it
    for i in 0..200 {
        s.call(
            T0 + 60_000 + i * 100,
            &format!("old{}", 500 + i),
            "old1",
            "192.0.2.10:5060",
            Some(1000),
            500,
        );
    }
    assert_eq!(s.d.reciprocity_walks, 0);
    // one it called does: one walk, and the trunk's two calls to it are marked
    s.call(
        T0 + 90_000,
        "old10",
        "old1",
        "192.0.2.10:5060",
        Some(1000),
        500,
    );
    assert_eq!(s.d.reciprocity_walks, 1);
    let trunk = s.d.accounts.get(&s.d.id("old1")).expect("tracked");
    let me = h("old10");
    let marked: Vec<bool> = (trunk.calls.iter())
        .filter(|c| c.callee == me)
        .map(|c| c.called_back)
        .collect();
    assert_eq!(marked, vec![true, true]);

    // a full table of pairs: a call walks whether or not its pair is in it
    let mut s = Sim::new();
    s.d.cfg.max_subjects = 10;
    for i in 0..60 {
        s.call(
            T0 + i * 100,
            "old1",
            &format!("old{}", 10 + i),
            "192.0.2.9:5060",
            None,
            500,
        );
    }
    assert_eq!(s.d.pairs.len(), 40);
    s.call(
        T0 + 10_000,
        "old300",
        "old1",
        "192.0.2.10:5060",
        Some(1000),
        500,
    );
    assert_eq!(s.d.reciprocity_walks, 1);
}

/// Between assessments, a new account found calling strangers adds to that finding only
/// its attempts to strangers (as its assessment counts them).
#[test]
fn between_assessments_a_strangers_finding_gains_only_calls_to_strangers() {
    let mut s = Sim::new();
    for i in 0..12 {
        s.call(
            T0 + i * 500,
            "new5",
            &format!("t{i}"),
            "198.51.100.1:5060",
            None,
            200,
        );
    }
    let records = |s: &Sim| evidence_of(s, FindingKind::Strangers, "new5");
    let evidence = records(&s).len();
    assert!(evidence > 0, "{:?}", s.kinds());
    s.d.assess_share = 1;
    let before = s.d.assessments;
    let mut strangers = vec![];
    for i in 0..6 {
        // a callee it called before (no stranger), then one it never called
        s.call(
            T0 + 10_000 + i * 1000,
            "new5",
            "t0",
            "198.51.100.1:5060",
            None,
            200,
        );
        s.call(
            T0 + 10_500 + i * 1000,
            "new5",
            &format!("u{i}"),
            "198.51.100.1:5060",
            None,
            200,
        );
        strangers.push(Evidence::Call(s.d.next_call - 1));
    }
    assert_eq!(s.d.assessments, before);
    assert_eq!(records(&s).get(evidence..), Some(&strangers[..]));
}
