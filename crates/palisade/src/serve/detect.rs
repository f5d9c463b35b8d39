//! The detection thread: takes the core's observations (never blocking the core: when
//! its queue is full, observations are counted and dropped), runs the campaign
//! detectors, writes records and findings to the store in batches, and hands the
//! restrictions back to the core. Restrictions and current findings survive a restart
//! (loaded from the store at start).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use palisade_detect::{
    Config as DetectConfig, Detector, FindingKind, Output, Restriction, Subject,
};
use palisade_store::{Records, Storage};
use tracing::{debug, error, info, warn};

use super::detect_entries::{call_entry, registration_entry};
use super::detect_role::{Role, Step};
use super::evidence::EvidenceTx;
use super::router::Router;
use super::telemetry::{CallView, Telemetry};
use crate::clock::now_ms;
use crate::db::Db;
use crate::evidence::entry;
use crate::http;
use crate::messages::{DetectMsg, Hook, Inbound};

/// How often the detection thread writes what it assembled.
const WRITE_EVERY: Duration = Duration::from_millis(1000);

/// Observations waiting for the detection thread.
pub(super) const DETECT_QUEUE: usize = 65_536;

/// The fingerprints of the real clients the test suite runs (captured from their
/// traffic; see the README's "Campaign detection"): a family's profile is known from
/// the first message, not only after it was learned.
const SHIPPED_PROFILES: &str = include_str!("../../../../dist/profiles.toml");

/// How soon a queued notification is tried again when it could not be delivered (a
/// device that registers meanwhile gets it within this time).
const NOTIFY_RETRY: Duration = Duration::from_secs(5);

/// Posts webhook notifications one at a time (http or https, 5 s timeouts) and reports
/// each result to the detection thread.
pub(super) fn webhook_thread(rx: Receiver<Hook>, results: SyncSender<DetectMsg>) {
    while let Ok(h) = rx.recv() {
        let r = http::post_json(&h.url, &h.body).map_err(|e| format!("{e:#}"));
        if results.send(DetectMsg::Hooked(h.user, r)).is_err() {
            return;
        }
    }
}

/// The entry of a notification about to be sent (the sending waits for it).
fn notification_entry(kind: &str, user: &str, channel: &str, content: &str) -> Vec<u8> {
    entry(
        kind,
        now_ms(),
        vec![
            ("user", serde_json::json!(user)),
            ("channel", serde_json::json!(channel)),
            (
                "sha256",
                serde_json::json!(palisade_evidence::sha256_hex(content.as_bytes())),
            ),
        ],
    )
}

/// Parses a profiles file: `family = ["16 hex digits", ...]` lines (TOML).
pub(super) fn parse_profiles(text: &str) -> anyhow::Result<Vec<(String, u64)>> {
    let t: BTreeMap<String, Vec<String>> =
        toml::from_str(text).context("profiles: expected `family = [\"hex\", ...]` lines")?;
    let mut out = Vec::new();
    for (family, fps) in t {
        for fp in fps {
            let v = u64::from_str_radix(&fp, 16)
                .with_context(|| format!("profiles: {family}: {fp:?} is not 16 hex digits"))?;
            out.push((family.clone(), v));
        }
    }
    Ok(out)
}

/// Everything the detector needs from the store and the profile files, loaded before
/// the server starts (so that a bad profiles file stops the start with a clear error).
pub(super) fn prepare(
    cfg: &DetectConfig,
    accounts: &dyn Storage,
    store: &dyn Records,
) -> anyhow::Result<(Detector, Vec<Restriction>)> {
    let mut d = Detector::new(cfg.clone(), store.next_ids()?);
    for (f, fp) in parse_profiles(SHIPPED_PROFILES)? {
        d.add_profile(&f, fp);
    }
    if let Some(p) = &cfg.profiles {
        let text = std::fs::read_to_string(p)
            .with_context(|| format!("reading detect.profiles {}", p.display()))?;
        for (f, fp) in parse_profiles(&text).with_context(|| p.display().to_string())? {
            d.add_profile(&f, fp);
        }
    }
    let now = now_ms();
    d.set_accounts(
        accounts
            .account_ages()?
            .into_iter()
            .map(|(n, c)| (n, c.saturating_mul(1000))),
    );
    for (a, at) in store.first_registrations()? {
        d.restore_first_seen(a, at);
    }
    let retention = (cfg.retention_days as i64).saturating_mul(86_400_000);
    for (a, b) in store.call_pairs(now - retention)? {
        d.restore_pair(&a, &b);
    }
    for f in store.findings(now - 86_400_000)? {
        d.restore_finding(f);
    }
    let restrictions = store.restrictions(now)?;
    Ok((d, restrictions))
}

/// How often the detection thread looks for the operator's changes (a cheap check of
/// `Records::block_changes_version`; the queue is read only when it moved): with the
/// evidence commit after it, a change reaches the core well within 2 s.
const CHANGES_EVERY: Duration = Duration::from_millis(250);

/// A restriction in force, as the detection thread follows it.
struct Active {
    r: Restriction,
    /// Its number in the store (not known yet for a detector's restriction of this run).
    block: Option<i64>,
    /// Imposed by the operator (`palisade block add`).
    operator: bool,
}

impl Active {
    fn of(b: &palisade_store::Block) -> Active {
        Active {
            r: b.restriction(),
            block: Some(b.id),
            operator: b.by == palisade_store::BY_OPERATOR,
        }
    }

    fn detected(r: Restriction) -> Active {
        Active {
            r,
            block: None,
            operator: false,
        }
    }

    fn by(&self) -> &'static str {
        if self.operator {
            palisade_store::BY_OPERATOR
        } else {
            palisade_store::BY_DETECTOR
        }
    }

    /// The kind of the entry that records its end.
    fn lifted_kind(&self) -> &'static str {
        if self.r.per_minute.is_some() {
            "rate-limit-lifted"
        } else {
            "unblock"
        }
    }

    /// The fields that name it in an entry.
    fn fields(&self) -> Vec<(&'static str, serde_json::Value)> {
        let r = &self.r;
        let mut f = vec![
            (
                "subject",
                serde_json::json!({ r.subject.kind(): r.subject.value() }),
            ),
            (
                "until",
                serde_json::json!(palisade_detect::rfc3339(r.until)),
            ),
            ("by", serde_json::json!(self.by())),
        ];
        if r.finding != 0 {
            f.push(("finding", serde_json::json!(format!("F{}", r.finding))));
        }
        if let Some(id) = self.block {
            f.push(("block", serde_json::json!(id)));
        }
        f
    }
}

/// Applies the operator's queued changes, oldest first: each becomes an evidence entry
/// (`block` with `by: operator` and the reason; `unblock` or `rate-limit-lifted` with
/// reason `operator`), and reaches the core once that entry is durable. At start they
/// are changes made while no server ran: the core has the store's restrictions already,
/// and they are recorded now (`requested`: when the command ran).
fn operator_changes(
    store: &mut dyn Records,
    active: &mut HashMap<Subject, Active>,
    evidence: Option<&EvidenceTx>,
    inbound: &Router,
) {
    let changes = match store.pending_block_changes() {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "reading the operator's block changes failed");
            return;
        }
    };
    for c in changes {
        let b = &c.block;
        let requested = (
            "requested",
            serde_json::json!(palisade_detect::rfc3339(c.at)),
        );
        let (entry, then) = if c.action == "block" {
            let a = Active::of(b);
            let mut fields = a.fields();
            fields.push(("per_minute", serde_json::json!(b.per_minute)));
            fields.push(("reason", serde_json::json!(b.reason)));
            fields.push(requested);
            info!(target: "palisade::security", block = b.id, subject = %b.subject.value(), until = %palisade_detect::rfc3339(b.until), reason = %b.reason, "blocked by the operator");
            active.insert(b.subject.clone(), a);
            (
                entry(
                    if b.per_minute.is_some() {
                        "rate-limit"
                    } else {
                        "block"
                    },
                    now_ms(),
                    fields,
                ),
                Inbound::Restrict(b.restriction()),
            )
        } else {
            let a = Active::of(b);
            let mut fields = a.fields();
            // who lifted it (its `by` says who imposed it)
            fields.retain(|(k, _)| *k != "by");
            fields.push(("imposed_by", serde_json::json!(a.by())));
            fields.push(("by", serde_json::json!(palisade_store::BY_OPERATOR)));
            fields.push(("reason", serde_json::json!("operator")));
            fields.push(requested);
            info!(target: "palisade::security", block = b.id, subject = %b.subject.value(), "lifted by the operator");
            active.remove(&b.subject);
            (
                entry(a.lifted_kind(), now_ms(), fields),
                Inbound::Lift(b.subject.clone()),
            )
        };
        let now_or_later = match evidence {
            Some(ev) => ev.send(entry, Some(then)).err().flatten(),
            None => Some(then),
        };
        if let Some(then) = now_or_later {
            let _ = inbound.blocking_send(then);
        }
        if let Err(e) = store.block_change_recorded(c.seq, now_ms()) {
            warn!(error = %e, seq = c.seq, "marking an operator's block change recorded failed");
        }
    }
}

/// How long the detection thread naps between takes while observations keep coming: as
/// long as its idle poll, so a busy server costs it four wake-ups a second (at 100 ms
/// these naps were 0.5 of the 16 system calls per call at 20 calls/s). A finding's
/// response (a block) comes at most this much later than the observation that made it;
/// the core's own limits (rate, ring budgets) act at once.
const BUSY_NAP: Duration = Duration::from_millis(250);

/// The counts the admin listener shows and, when `/api/calls` asked for it, the list of
/// calls in progress. The list is made only on request: copying every call in progress
/// each second cost about a thousand instructions per call whether anyone looked or not.
fn publish(t: &Telemetry, d: &Detector, blocks: usize, list: bool) {
    t.calls_active
        .store(d.calls_in_progress().count() as u64, Ordering::Relaxed);
    t.blocks_active.store(blocks as u64, Ordering::Relaxed);
    if !list {
        return;
    }
    let calls: Vec<CallView> = d
        .calls_in_progress()
        .take(1000)
        .map(|c| CallView {
            call_id: c.call_id.clone(),
            caller: c.caller.clone(),
            callee: c.callee.clone(),
            state: if c.answered_at.is_some() {
                "answered"
            } else if c.ringing_at.is_some() {
                "ringing"
            } else {
                "trying"
            },
            since: c.invite_at,
            source: palisade_store::addr_text(&c.source),
            user_agent: c.user_agent.clone(),
        })
        .collect();
    if let Ok(mut c) = t.calls.lock() {
        *c = calls;
    }
    t.calls_published.fetch_add(1, Ordering::Release);
}

#[allow(clippy::too_many_arguments)] // the thread's whole context, given once at its start
pub(super) fn detect_thread(
    db: Db,
    mut d: Detector,
    rx: Receiver<DetectMsg>,
    inbound: Router,
    evidence: Option<EvidenceTx>,
    records_all: bool,
    restrictions: Vec<Restriction>,
    telemetry: Arc<Telemetry>,
    node: String,
) {
    let record = |e: Vec<u8>| {
        if let Some(ev) = &evidence {
            let _ = ev.send(e, None);
        }
    };
    let accounts = match db.storage() {
        Ok(s) => s,
        Err(e) => {
            error!(error = %e, "detection thread cannot open the database; campaign detection is off");
            return;
        }
    };
    let mut store = match db.records() {
        Ok(s) => s,
        Err(e) => {
            error!(error = %e, "detection thread cannot open the database; campaign detection is off");
            return;
        }
    };
    // In a cluster one node detects; the others hand it their observations.
    let mut role = match (&db, node.as_str()) {
        (Db::Pg(pg, _), n) if !n.is_empty() => Some(Role::new(pg.clone(), n)),
        _ => None,
    };
    let retention = (d.config().retention_days as i64).saturating_mul(86_400_000);
    let mut last_tick = Instant::now();
    let mut last_accounts = Instant::now();
    let mut last_purge: Option<Instant> = None;
    let mut last_notify = Instant::now();
    // Queued SIP notifications: `None` while the core delivers one, `Some(t)`: try again
    // after `t` (no device was registered, or none accepted it).
    let mut pending: HashMap<String, Option<Instant>> = HashMap::new();
    // SIP notifications whose `notification` entry was sent in this run (retries of the
    // same notification do not repeat it).
    let mut announced: HashSet<String> = HashSet::new();
    // Webhook notifications handed on and not answered yet.
    let mut hooks_pending: HashSet<String> = HashSet::new();
    let mut outs: Vec<Output> = Vec::new();
    let mut last_write = Instant::now();
    // Restrictions in force, one per subject as the core holds them (with their number
    // and who imposed them), to record when each one lapses.
    let mut active: HashMap<Subject, Active> = match store.blocks(now_ms()) {
        Ok(blocks) => blocks
            .iter()
            .map(|b| (b.subject.clone(), Active::of(b)))
            .collect(),
        Err(_) => restrictions
            .into_iter()
            .map(|r| (r.subject.clone(), Active::detected(r)))
            .collect(),
    };
    // The operator's changes (`palisade block add`, `palisade unblock`): looked for at
    // start and whenever the store says one may have been queued.
    let mut records_version: Option<i64> = None;
    let mut last_changes: Option<Instant> = None;
    let mut changes_failing = false;
    // a restriction among the outputs not written yet
    let mut restrict_pending = false;
    let mut busy = false;
    let mut last_published = Instant::now();
    telemetry.detecting.store(true, Ordering::Release);
    loop {
        // While observations keep coming, the thread sleeps a short while and takes what
        // arrived: a sender never finds it blocked in `recv`, so handing it a batch costs
        // the workers no futex wake-up (nor this thread a wait). Idle, it blocks.
        let first = if busy {
            std::thread::sleep(BUSY_NAP);
            match rx.try_recv() {
                Ok(m) => Some(m),
                Err(std::sync::mpsc::TryRecvError::Empty) => None,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => break,
            }
        } else {
            // (the cluster's detector also takes the other nodes' observations from
            // the store: it looks more often)
            let idle = if role.as_ref().is_some_and(Role::leading) {
                Duration::from_millis(50)
            } else {
                Duration::from_millis(250)
            };
            match rx.recv_timeout(idle) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        };
        busy = first.is_some();
        let mut n = 0;
        let mut next = first;
        while let Some(m) = next {
            match m {
                DetectMsg::Observe(batch) => match role.as_mut() {
                    Some(r) if !r.leading() => batch.into_iter().for_each(|o| r.forward(o)),
                    _ => batch.into_iter().for_each(|o| d.observe(o)),
                },
                DetectMsg::Notified(user, ok) => {
                    pending.insert(user.clone(), Some(Instant::now() + NOTIFY_RETRY));
                    if ok {
                        pending.remove(&user);
                        let text = store
                            .notification(&user, "sip")
                            .ok()
                            .flatten()
                            .map(|n| n.detail)
                            .unwrap_or_default();
                        if let Err(e) =
                            store.set_notification(&user, "sip", "sent", &text, now_ms())
                        {
                            warn!(error = %e, user, "recording a delivered notification failed");
                        }
                        info!(target: "palisade::security", user, "notification delivered by SIP MESSAGE");
                        record(notification_entry(
                            "notification-delivered",
                            &user,
                            "sip",
                            &text,
                        ));
                    }
                }
                DetectMsg::Config(c) => {
                    d.set_config(*c);
                    info!("detection settings reloaded");
                }
                DetectMsg::Hooked(user, result) => {
                    hooks_pending.remove(&user);
                    let (state, detail) = match &result {
                        Ok(code) if (200..300).contains(code) => ("sent", format!("HTTP {code}")),
                        Ok(code) => ("failed", format!("HTTP {code}")),
                        Err(e) => ("failed", e.clone()),
                    };
                    if let Err(e) =
                        store.set_notification(&user, "webhook", state, &detail, now_ms())
                    {
                        warn!(error = %e, user, "recording a webhook notification failed");
                    }
                    if state == "sent" {
                        info!(target: "palisade::security", user, "notification delivered by webhook");
                        record(notification_entry(
                            "notification-delivered",
                            &user,
                            "webhook",
                            &detail,
                        ));
                    } else {
                        warn!(target: "palisade::security", user, detail, "webhook notification failed");
                    }
                }
            }
            n += 1;
            if n >= 20_000 {
                break;
            }
            next = rx.try_recv().ok();
        }
        if let Some(r) = role.as_mut() {
            match r.step() {
                Step::Took => {
                    // what the previous leader recorded, as at a start
                    match prepare(&d.config().clone(), &*accounts, &*store) {
                        Ok((fresh, _)) => d = fresh,
                        Err(e) => {
                            error!(error = %e, "cluster detection: rebuilding the detector from the records failed; it starts from what this node knew")
                        }
                    }
                }
                Step::Lost | Step::Same => {}
            }
            for o in r.take() {
                d.observe(o);
            }
        }
        // a node of a cluster that does not run the detector leaves the shared work (the
        // operator's block queue, notifications, purges) to the one that does
        let follower = role.as_ref().is_some_and(|r| !r.leading());
        let now = now_ms();
        if last_tick.elapsed() >= Duration::from_secs(1) {
            d.tick(now);
            last_tick = Instant::now();
            // The core lifts a restriction at its `until` (given in its entry); the
            // lifting is recorded here.
            active.retain(|_, a| {
                let r = &a.r;
                if r.until > now {
                    return true;
                }
                info!(target: "palisade::security", subject = %r.subject.value(), finding = r.finding, by = a.by(), "restriction lapsed");
                let mut fields = a.fields();
                fields.push(("reason", serde_json::json!("expired")));
                record(entry(a.lifted_kind(), now, fields));
                false
            });
        }
        if !follower && last_changes.is_none_or(|t| t.elapsed() >= CHANGES_EVERY) {
            last_changes = Some(Instant::now());
            match store.block_changes_version() {
                Ok(v) => {
                    if std::mem::take(&mut changes_failing) {
                        info!("the operator's block changes can be read again");
                    }
                    if Some(v) != records_version {
                        records_version = Some(v);
                        operator_changes(&mut *store, &mut active, evidence.as_ref(), &inbound);
                    }
                }
                // (once per outage: looked at four times a second)
                Err(e) if !changes_failing => {
                    changes_failing = true;
                    warn!(error = %e, "reading the operator's block changes failed; tried again until it works");
                }
                Err(_) => {}
            }
        }
        // Findings are logged and restrictions reach the core at once; records are
        // written in groups: one transaction per second (or per 5,000 records), not one
        // per wake-up (at thousands of calls a second, per-transaction costs dominate).
        for o in d.drain() {
            if let Output::Finding(f) = &o {
                if f.detected_at == f.updated_at {
                    if let Some(c) = FindingKind::ALL
                        .iter()
                        .position(|k| *k == f.kind)
                        .and_then(|i| telemetry.findings.get(i))
                    {
                        c.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            match &o {
                Output::Finding(f) if f.detected_at == f.updated_at => {
                    warn!(target: "palisade::security", id = f.id, kind = f.kind.as_str(), subject = %f.subject.value(), score = f.score, action = f.action.as_str(), summary = %f.summary, "campaign finding");
                    record(entry(
                        "finding",
                        f.detected_at,
                        vec![
                            ("finding", serde_json::json!(format!("F{}", f.id))),
                            ("finding_kind", serde_json::json!(f.kind.as_str())),
                            (
                                "subject",
                                serde_json::json!({ f.subject.kind(): f.subject.value() }),
                            ),
                            ("accounts", serde_json::json!(f.accounts)),
                            (
                                "score",
                                serde_json::json!((f.score * 1000.0).round() / 1000.0),
                            ),
                            ("action", serde_json::json!(f.action.as_str())),
                            ("summary", serde_json::json!(f.summary)),
                        ],
                    ));
                }
                Output::Call(c) if records_all => record(call_entry(c)),
                Output::Registration(r) if records_all => record(registration_entry(r)),
                Output::Restrict(r)
                    if active
                        .get(&r.subject)
                        .is_some_and(|a| a.operator && a.r.until > now_ms()) =>
                {
                    // The operator's block on this subject stands (the store keeps it too).
                    debug!(subject = %r.subject.value(), finding = r.finding, "a detector's restriction on a subject the operator blocked: not applied");
                }
                Output::Restrict(r) => {
                    active.insert(r.subject.clone(), Active::detected(r.clone()));
                    // applied by the core once its entry is durable
                    let entry = entry(
                        if r.per_minute.is_some() {
                            "rate-limit"
                        } else {
                            "block"
                        },
                        now_ms(),
                        vec![
                            ("finding", serde_json::json!(format!("F{}", r.finding))),
                            (
                                "subject",
                                serde_json::json!({ r.subject.kind(): r.subject.value() }),
                            ),
                            (
                                "until",
                                serde_json::json!(palisade_detect::rfc3339(r.until)),
                            ),
                            ("per_minute", serde_json::json!(r.per_minute)),
                        ],
                    );
                    let apply = Inbound::Restrict(r.clone());
                    let now_or_later = match &evidence {
                        Some(ev) => ev.send(entry, Some(apply)).err().flatten(),
                        None => Some(apply),
                    };
                    if let Some(apply) = now_or_later {
                        let _ = inbound.blocking_send(apply);
                    }
                }
                _ => {}
            }
            restrict_pending |= matches!(o, Output::Restrict(_));
            outs.push(o);
        }
        let asked = telemetry.calls_wanted.swap(false, Ordering::Acquire);
        if asked || last_published.elapsed() >= Duration::from_secs(1) {
            last_published = Instant::now();
            publish(&telemetry, &d, active.len(), asked);
        }
        // (a restriction at once: in a cluster the other nodes apply it from the store)
        let urgent = std::mem::take(&mut restrict_pending) && role.is_some();
        if !outs.is_empty()
            && (urgent || outs.len() >= 5_000 || last_write.elapsed() >= WRITE_EVERY)
        {
            last_write = Instant::now();
            match store.apply_outputs(&outs) {
                Ok(()) => outs.clear(),
                Err(e) => {
                    // Kept and retried with the next batch (bounded: beyond it, dropped
                    // with a count).
                    error!(error = %e, pending = outs.len(), "writing detection records failed");
                    if outs.len() > 100_000 {
                        error!(
                            dropped = outs.len(),
                            "detection records dropped: the database keeps failing"
                        );
                        outs.clear();
                    }
                }
            }
        }
        if last_accounts.elapsed() >= Duration::from_secs(30) {
            // An account created since is "new" until its age is known (the safe side).
            last_accounts = Instant::now();
            if let Ok(ages) = accounts.account_ages() {
                d.set_accounts(ages.into_iter().map(|(n, c)| (n, c.saturating_mul(1000))));
            }
        }
        if !follower && last_purge.is_none_or(|p| p.elapsed() >= Duration::from_secs(3600)) {
            last_purge = Some(Instant::now());
            match store.purge_records(now - retention) {
                Ok(0) => {}
                Ok(n) => info!(
                    deleted = n,
                    days = retention / 86_400_000,
                    "old call and registration records deleted"
                ),
                Err(e) => warn!(error = %e, "deleting old records failed"),
            }
        }
        if !follower && last_notify.elapsed() >= Duration::from_secs(1) {
            last_notify = Instant::now();
            // A notification is sent only once its entry is durable: the entry rides
            // to the evidence thread and the sending comes back from there.
            let send_after = |entry: Vec<u8>, then: Inbound| {
                let now_or_later = match &evidence {
                    Some(ev) => ev.send(entry, Some(then)).err().flatten(),
                    None => Some(then),
                };
                if let Some(then) = now_or_later {
                    let _ = inbound.blocking_send(then);
                }
            };
            if let Ok(q) = store.queued("sip") {
                for (user, text) in q {
                    let due = match pending.get(&user) {
                        None => true,
                        Some(None) => false,
                        Some(Some(t)) => *t <= Instant::now(),
                    };
                    if due {
                        pending.insert(user.clone(), None);
                        let entry = (!announced.contains(&user))
                            .then(|| notification_entry("notification", &user, "sip", &text));
                        announced.insert(user.clone());
                        let then = Inbound::Notify { user, text };
                        match entry {
                            Some(e) => send_after(e, then),
                            None => {
                                let _ = inbound.blocking_send(then);
                            }
                        }
                    }
                }
            }
            if let Ok(q) = store.queued("webhook") {
                for (user, detail) in q {
                    if hooks_pending.contains(&user) {
                        continue;
                    }
                    let v: serde_json::Value = serde_json::from_str(&detail).unwrap_or_default();
                    let (Some(url), Some(body)) = (
                        v.get("url").and_then(serde_json::Value::as_str),
                        v.get("body").and_then(serde_json::Value::as_str),
                    ) else {
                        let _ = store.set_notification(
                            &user,
                            "webhook",
                            "failed",
                            "malformed queued webhook",
                            now_ms(),
                        );
                        continue;
                    };
                    hooks_pending.insert(user.clone());
                    let entry = notification_entry("notification", &user, "webhook", body);
                    send_after(
                        entry,
                        Inbound::Webhook(Hook {
                            user,
                            url: url.to_string(),
                            body: body.to_string(),
                        }),
                    );
                }
            }
        }
    }
    telemetry.detecting.store(false, Ordering::Release);
    d.flush_in_progress();
    outs.extend(d.drain());
    if let Err(e) = store.apply_outputs(&outs) {
        error!(error = %e, "writing the last detection records failed");
    }
    // The detector's tables are left to the process's exit, as the cores' are (see
    // `serve::run`): freeing them one entry at a time only delays the exit.
    std::mem::forget(d);
}
