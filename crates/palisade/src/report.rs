//! `palisade calls`, `palisade report findings|targets` and `palisade notify targets`:
//! read what the detectors stored (while the server runs or after it stopped) and tell
//! the targeted users.

use std::time::Duration;

use anyhow::bail;
use palisade_detect::{rfc3339, CallRecord, Evidence, Finding};
use palisade_store::Target;
use serde_json::{json, Value};

use crate::clock::{now_ms, since};
use crate::db::Db;

/// Output format of a report.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Text,
    Json,
    Csv,
}

impl Format {
    pub(crate) fn of(json: bool, csv: bool) -> anyhow::Result<Format> {
        match (json, csv) {
            (true, true) => bail!("--json and --csv exclude each other"),
            (true, false) => Ok(Format::Json),
            (false, true) => Ok(Format::Csv),
            _ => Ok(Format::Text),
        }
    }
}

fn opt_time(t: Option<i64>) -> Value {
    t.map_or(Value::Null, |t| Value::String(rfc3339(t)))
}

fn call_json(c: &CallRecord) -> Value {
    json!({
        "id": c.id, "kind": if c.message { "message" } else { "call" },
        "call_id": c.call_id, "caller": c.caller, "callee": c.callee,
        "source": c.source.to_string(), "transport": c.transport, "user_agent": c.user_agent,
        "fingerprint": format!("{:016x}", c.fingerprint), "sdp_habits": format!("{:016x}", c.sdp),
        "invite_at": rfc3339(c.invite_at), "ringing_at": opt_time(c.ringing_at),
        "answered_at": opt_time(c.answered_at), "final_at": opt_time(c.final_at),
        "ended_at": opt_time(c.ended_at), "status": c.status, "outcome": c.outcome(),
        "ring_ms": c.ring_ms(), "talk_ms": c.talk_ms(),
    })
}

/// `palisade calls`.
pub(crate) fn calls(
    db: &Db,
    since_t: Option<&str>,
    user: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let s = db.records()?;
    let calls = s.calls(since(since_t)?, user)?;
    if json {
        let v: Vec<Value> = calls.iter().map(call_json).collect();
        println!("{}", json!({ "calls": v }));
        return Ok(());
    }
    for c in &calls {
        println!(
            "{} #{} {} -> {} {} status {} ring {} talk {} from {}:{} ({})",
            rfc3339(c.invite_at),
            c.id,
            c.caller,
            c.callee,
            c.outcome(),
            c.status.map_or("-".into(), |s| s.to_string()),
            c.ring_ms()
                .map_or("-".into(), |r| format!("{:.1}s", r as f64 / 1000.0)),
            c.talk_ms()
                .map_or("-".into(), |r| format!("{:.1}s", r as f64 / 1000.0)),
            c.transport,
            c.source,
            c.user_agent
        );
    }
    Ok(())
}

fn subject_json(f: &Finding) -> Value {
    json!({ f.subject.kind(): f.subject.value(), "accounts": f.accounts })
}

fn finding_json(f: &Finding) -> Value {
    let records: Vec<Value> = f
        .records
        .iter()
        .map(|e| match e {
            Evidence::Call(id) => json!({ "call": id }),
            Evidence::Registration(id) => json!({ "registration": id }),
            Evidence::Event(t) => json!({ "event": t }),
        })
        .collect();
    json!({
        "id": format!("F{}", f.id), "kind": f.kind.as_str(), "subject": subject_json(f),
        "score": (f.score * 1000.0).round() / 1000.0, "first_seen": rfc3339(f.first_seen),
        "detected_at": rfc3339(f.detected_at), "updated_at": rfc3339(f.updated_at),
        "action": f.action.as_str(), "summary": f.summary, "records": records,
    })
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// `palisade report findings`.
pub(crate) fn findings(db: &Db, since_t: Option<&str>, fmt: Format) -> anyhow::Result<()> {
    let s = db.records()?;
    let list = s.findings(since(since_t)?)?;
    match fmt {
        Format::Json => {
            let v: Vec<Value> = list.iter().map(finding_json).collect();
            println!("{}", json!({ "findings": v }));
        }
        Format::Csv => {
            println!("id,kind,subject_kind,subject,score,first_seen,detected_at,action,accounts,records,summary");
            for f in &list {
                println!(
                    "F{},{},{},{},{:.3},{},{},{},{},{},{}",
                    f.id,
                    f.kind.as_str(),
                    f.subject.kind(),
                    csv_field(&f.subject.value()),
                    f.score,
                    rfc3339(f.first_seen),
                    rfc3339(f.detected_at),
                    f.action.as_str(),
                    csv_field(&f.accounts.join(" ")),
                    f.records.len(),
                    csv_field(&f.summary)
                );
            }
        }
        Format::Text => {
            for f in &list {
                println!(
                    "F{} {} {} {} score {:.2} detected {} (first seen {}), action {}: {}",
                    f.id,
                    f.kind.as_str(),
                    f.subject.kind(),
                    f.subject.value(),
                    f.score,
                    rfc3339(f.detected_at),
                    rfc3339(f.first_seen),
                    f.action.as_str(),
                    f.summary
                );
            }
            if list.is_empty() {
                println!("no findings");
            }
        }
    }
    Ok(())
}

fn target_json(t: &Target) -> Value {
    json!({
        "user": t.user, "first_call": rfc3339(t.first_call), "last_call": rfc3339(t.last_call),
        "calls": t.calls, "rang": t.rang, "callers": t.callers,
        "findings": t.findings.iter().map(|f| format!("F{f}")).collect::<Vec<_>>(),
    })
}

/// `palisade report devices`: each (account, User-Agent, wire fingerprint) seen
/// registering, with when and from where; what a profiles file is made from.
pub(crate) fn devices(db: &Db, since_t: Option<&str>, fmt: Format) -> anyhow::Result<()> {
    let s = db.records()?;
    // (account, User-Agent, fingerprint) -> (first seen, last seen, records, source)
    type Seen = (i64, i64, u64, String);
    let mut by: std::collections::BTreeMap<(String, String, u64), Seen> = Default::default();
    for r in s.registrations_since(since(since_t)?)? {
        let e = by
            .entry((r.account.clone(), r.user_agent.clone(), r.fingerprint))
            .or_insert((r.first_seen, r.at, 0, String::new()));
        e.0 = e.0.min(r.first_seen);
        e.1 = e.1.max(r.at);
        e.2 += 1;
        e.3 = format!("{}:{}", r.transport, r.source);
    }
    match fmt {
        Format::Json => {
            let v: Vec<Value> = by
                .iter()
                .map(|((a, ua, fp), (first, last, n, src))| {
                    json!({"account": a, "user_agent": ua, "family": palisade_detect::ua_family(ua),
                        "fingerprint": format!("{fp:016x}"), "first_seen": rfc3339(*first),
                        "last_seen": rfc3339(*last), "records": n, "source": src})
                })
                .collect();
            println!("{}", json!({ "devices": v }));
        }
        Format::Csv => {
            println!("account,user_agent,family,fingerprint,first_seen,last_seen,records,source");
            for ((a, ua, fp), (first, last, n, src)) in &by {
                println!(
                    "{},{},{},{fp:016x},{},{},{n},{}",
                    csv_field(a),
                    csv_field(ua),
                    palisade_detect::ua_family(ua),
                    rfc3339(*first),
                    rfc3339(*last),
                    csv_field(src)
                );
            }
        }
        Format::Text => {
            for ((a, ua, fp), (first, last, n, src)) in &by {
                println!(
                    "{a} {fp:016x} {ua:?} first {} last {} ({n} records, {src})",
                    rfc3339(*first),
                    rfc3339(*last)
                );
            }
        }
    }
    Ok(())
}

/// `palisade report targets`.
pub(crate) fn targets(db: &Db, since_t: Option<&str>, fmt: Format) -> anyhow::Result<()> {
    let s = db.records()?;
    let list = s.targets(since(since_t)?)?;
    match fmt {
        Format::Json => {
            let v: Vec<Value> = list.iter().map(target_json).collect();
            println!("{}", json!({ "targets": v }));
        }
        Format::Csv => {
            println!("user,first_call,last_call,calls,rang,callers,findings");
            for t in &list {
                let f: Vec<String> = t.findings.iter().map(|f| format!("F{f}")).collect();
                println!(
                    "{},{},{},{},{},{},{}",
                    csv_field(&t.user),
                    rfc3339(t.first_call),
                    rfc3339(t.last_call),
                    t.calls,
                    t.rang,
                    csv_field(&t.callers.join(" ")),
                    f.join(" ")
                );
            }
        }
        Format::Text => {
            for t in &list {
                println!(
                    "{}: {} call(s) {} .. {}, {}, from {} (findings {})",
                    t.user,
                    t.calls,
                    rfc3339(t.first_call),
                    rfc3339(t.last_call),
                    if t.rang { "rang" } else { "did not ring" },
                    t.callers.join(", "),
                    t.findings
                        .iter()
                        .map(|f| format!("F{f}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            println!("{} targeted user(s)", list.len());
        }
    }
    Ok(())
}

/// `palisade notify targets`: each target is told once per channel (a SIP MESSAGE, a
/// webhook POST), both sent by the running server once the notification's evidence
/// entry is durable; `wait` for them. Prints a JSON summary.
pub(crate) fn notify(
    db: &Db,
    since_t: Option<&str>,
    webhook: Option<&str>,
    text: &str,
    wait: Duration,
) -> anyhow::Result<()> {
    let mut s = db.records()?;
    let list = s.targets(since(since_t)?)?;
    let (mut queued, mut already) = (0u64, 0u64);
    let mut waiting = Vec::new();
    let mut hooks = Vec::new();
    for t in &list {
        match s.notification(&t.user, "sip")? {
            Some(_) => already += 1,
            None => {
                s.set_notification(&t.user, "sip", "queued", text, now_ms())?;
                queued += 1;
                waiting.push(t.user.clone());
            }
        }
        if let Some(url) = webhook {
            match s.notification(&t.user, "webhook")? {
                Some(n) if n.state == "sent" => already += 1,
                Some(n) if n.state == "queued" => hooks.push(t.user.clone()),
                _ => {
                    // sent by the running server once its evidence entry is durable
                    let body = json!({ "user": t.user, "text": text, "target": target_json(t) })
                        .to_string();
                    let detail = json!({ "url": url, "body": body }).to_string();
                    s.set_notification(&t.user, "webhook", "queued", &detail, now_ms())?;
                    hooks.push(t.user.clone());
                }
            }
        }
    }
    // Optionally wait for the running server to deliver them.
    let deadline = std::time::Instant::now() + wait;
    let (mut delivered, mut sent, mut failed) = (0u64, 0u64, 0u64);
    loop {
        waiting.retain(|u| {
            let done = s
                .notification(u, "sip")
                .ok()
                .flatten()
                .is_some_and(|n| n.state == "sent");
            if done {
                delivered += 1;
            }
            !done
        });
        hooks.retain(|u| match s.notification(u, "webhook").ok().flatten() {
            Some(n) if n.state == "sent" => {
                sent += 1;
                false
            }
            Some(n) if n.state == "failed" => {
                failed += 1;
                false
            }
            _ => true,
        });
        if (waiting.is_empty() && hooks.is_empty()) || std::time::Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let summary = json!({
        "targets": list.len(),
        "sent": sent + delivered,
        "queued": queued - delivered + hooks.len() as u64,
        "already": already,
        "failed": failed,
        "sip": { "delivered": delivered, "queued": queued - delivered },
        "webhook": { "sent": sent, "failed": failed, "queued": hooks.len() },
    });
    println!("{summary}");
    Ok(())
}
