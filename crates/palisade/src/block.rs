//! `palisade block list|add` and `palisade unblock`: the operator's hand on the
//! restrictions (blocks and rate limits) the detectors impose, on the store.
//!
//! The command changes the store and queues the change; the running server picks it up
//! within a second (its detection thread watches the records database), applies it in
//! the core once its evidence entry (`block` with `by: operator`, or `unblock` with
//! reason `operator`) is durable, and marks it recorded. When no server runs, the next
//! one to start applies the store as it is and records the queued changes then (each
//! entry carries `requested`, the time of the command).

use anyhow::{bail, Context};
use palisade_detect::{rfc3339, Network, Subject};
use palisade_store::{Block, Lifted};
use serde_json::{json, Value};

use crate::clock::now_ms;
use crate::db::Db;

/// The longest `--for`: ten years.
const MAX_FOR_MS: i64 = 3650 * 86_400_000;
/// The longest `--reason`.
const MAX_REASON: usize = 500;

const SUBJECT_HELP: &str = "write account:NAME (or a bare NAME), network:ADDR/24 (IPv4) or network:ADDR/64 (IPv6), or device:HEX (a wire fingerprint, 16 hex digits, as `palisade report devices` shows it)";

/// A subject as the operator writes it: `account:NAME`, `network:ADDR/PREFIX`,
/// `device:HEX`, or a bare account name (without `:` or `/`).
pub(crate) fn parse_subject(s: &str) -> Result<Subject, String> {
    let s = s.trim();
    let (kind, value) = match s.split_once(':') {
        Some((k @ ("account" | "network" | "device"), v)) => (k, v),
        Some(_) if !s.contains('/') && s.parse::<std::net::IpAddr>().is_err() => {
            return Err(format!("{s:?}: unknown kind of subject; {SUBJECT_HELP}"))
        }
        Some(_) => {
            return Err(format!(
                "{s:?}: a network is written network:ADDR/PREFIX; {SUBJECT_HELP}"
            ))
        }
        None if s.contains('/') => {
            return Err(format!(
                "{s:?}: a network is written network:ADDR/PREFIX; {SUBJECT_HELP}"
            ))
        }
        None => ("account", s),
    };
    if value.is_empty() {
        return Err(format!("{s:?}: nothing after {kind}:; {SUBJECT_HELP}"));
    }
    match kind {
        "account" => {
            if value.contains(['@', ':', '/']) || value.chars().any(char::is_whitespace) {
                return Err(format!(
                    "{s:?}: an account is its user name alone (no @domain, no spaces)"
                ));
            }
            Ok(Subject::Account(value.to_string()))
        }
        "device" => {
            if value.len() != 16 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "{s:?}: a device is its wire fingerprint, 16 hex digits"
                ));
            }
            u64::from_str_radix(value, 16)
                .map(Subject::Device)
                .map_err(|e| format!("{s:?}: {e}"))
        }
        _ => {
            if let Some(n) = Network::parse(value) {
                return Ok(Subject::Network(n));
            }
            // Say what would have been right.
            let hint = value
                .split_once('/')
                .and_then(|(a, _)| a.parse::<std::net::IpAddr>().ok())
                .map(|ip| format!(" (the network of {ip} is network:{})", Network::of(ip)))
                .unwrap_or_default();
            Err(format!(
                "{s:?}: networks are IPv4 /24 or IPv6 /64 with the host bits zero, as the detectors key them{hint}"
            ))
        }
    }
}

/// A duration as the operator writes it: a positive whole number and a unit, `s`, `m`,
/// `h`, `d` or `w` (`90s`, `30m`, `2h`, `7d`, `2w`); milliseconds.
pub(crate) fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let bad = || {
        format!("{s:?}: write a whole number and a unit: s, m, h, d or w (90s, 30m, 2h, 7d, 2w)")
    };
    let unit = s.chars().last().ok_or_else(bad)?;
    let mul: i64 = match unit {
        's' => 1_000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        'w' => 7 * 86_400_000,
        _ => return Err(bad()),
    };
    let n: i64 = s
        .strip_suffix(unit)
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse().ok())
        .ok_or_else(bad)?;
    if n == 0 {
        return Err(format!("{s:?}: a block lasts more than zero"));
    }
    match n.checked_mul(mul) {
        Some(ms) if ms <= MAX_FOR_MS => Ok(ms),
        _ => Err(format!("{s:?}: at most ten years (3650d)")),
    }
}

/// How the operator writes a subject (the inverse of [`parse_subject`]).
pub(crate) fn subject_text(s: &Subject) -> String {
    format!("{}:{}", s.kind(), s.value())
}

fn action(b: &Block) -> String {
    match b.per_minute {
        None => "block".into(),
        Some(n) => format!("rate-limit {n}/min"),
    }
}

fn why(b: &Block, kinds: &std::collections::HashMap<u64, String>) -> String {
    if b.finding == 0 {
        return b.reason.clone();
    }
    match kinds.get(&b.finding) {
        Some(k) => format!("F{} {k}", b.finding),
        None => format!("F{}", b.finding),
    }
}

fn block_json(b: &Block, kinds: &std::collections::HashMap<u64, String>) -> Value {
    json!({
        "id": b.id,
        "subject": subject_text(&b.subject),
        "subject_kind": b.subject.kind(),
        "subject_value": b.subject.value(),
        "action": if b.per_minute.is_some() { "rate-limit" } else { "block" },
        "per_minute": b.per_minute,
        "until": rfc3339(b.until),
        "by": b.by,
        "reason": why(b, kinds),
        "finding": (b.finding != 0).then(|| format!("F{}", b.finding)),
        "created": (b.created > 0).then(|| rfc3339(b.created)),
    })
}

/// `palisade block list [--json]`: the restrictions in force.
pub(crate) fn list(db: &Db, json: bool) -> anyhow::Result<()> {
    let s = db.records()?;
    let blocks = s.blocks(now_ms())?;
    let kinds: std::collections::HashMap<u64, String> = s
        .findings(i64::MIN)?
        .into_iter()
        .map(|f| (f.id, f.kind.as_str().to_string()))
        .collect();
    if json {
        let v: Vec<Value> = blocks.iter().map(|b| block_json(b, &kinds)).collect();
        println!("{}", json!({ "blocks": v }));
        return Ok(());
    }
    if blocks.is_empty() {
        println!("no blocks or rate limits in force");
        return Ok(());
    }
    let rows: Vec<[String; 6]> = blocks
        .iter()
        .map(|b| {
            [
                b.id.to_string(),
                subject_text(&b.subject),
                action(b),
                rfc3339(b.until),
                b.by.clone(),
                why(b, &kinds),
            ]
        })
        .collect();
    let head = ["ID", "SUBJECT", "ACTION", "UNTIL", "BY", "REASON"];
    let mut width = head.map(str::len);
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: [&str; 6]| {
        let mut out = String::new();
        for (i, (c, w)) in cells.iter().zip(width).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(head);
    for r in &rows {
        line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]);
    }
    Ok(())
}

/// `--reason` of `palisade block add`, trimmed: one line, not empty (checked before the
/// store is opened).
pub(crate) fn check_reason(reason: &str) -> anyhow::Result<&str> {
    let reason = reason.trim();
    if reason.is_empty() {
        bail!("--reason: say why (it goes into the evidence log)");
    }
    if reason.chars().count() > MAX_REASON || reason.chars().any(char::is_control) {
        bail!("--reason: one line of at most {MAX_REASON} characters");
    }
    Ok(reason)
}

/// `palisade block add SUBJECT --for DURATION --reason TEXT` (the reason checked by
/// [`check_reason`]).
pub(crate) fn add(db: &Db, subject: &Subject, for_ms: i64, reason: &str) -> anyhow::Result<()> {
    if let Subject::Account(name) = subject {
        if !db
            .storage()?
            .list_users(None)?
            .iter()
            .any(|u| &u.name == name)
        {
            bail!(
                "no account {name:?} in {} (`palisade user list` shows them); nothing blocked",
                db.shown()
            );
        }
    }
    let mut s = db.records()?;
    let now = now_ms();
    let (b, old) = s
        .add_block(subject, now + for_ms, reason, now)
        .context("adding the block")?;
    println!(
        "block {}: {} blocked until {} ({reason})",
        b.id,
        subject_text(subject),
        rfc3339(b.until)
    );
    if let Some(o) = old {
        let why = if o.finding == 0 {
            format!("the operator's: {}", o.reason)
        } else {
            format!("the detectors': finding F{}", o.finding)
        };
        println!(
            "  replaces {} {} ({why}; it ran until {})",
            action(&o),
            o.id,
            rfc3339(o.until)
        );
    }
    println!("  a running server applies it within 2 s and records it in its evidence log; if none runs, the next to start does");
    Ok(())
}

/// `palisade unblock ID`.
pub(crate) fn unblock(db: &Db, id: i64) -> anyhow::Result<()> {
    let mut s = db.records()?;
    match s.lift_block(id, now_ms())? {
        Lifted::Lifted(b) => {
            println!(
                "{} {} on {} lifted (it ran until {})",
                action(&b),
                b.id,
                subject_text(&b.subject),
                rfc3339(b.until)
            );
            println!("  a running server applies it within 2 s and records it in its evidence log; if none runs, the next to start does");
            Ok(())
        }
        Lifted::Ended(b) => bail!(
            "{} {} on {} already ended at {}; nothing lifted",
            action(&b),
            b.id,
            subject_text(&b.subject),
            rfc3339(b.until)
        ),
        Lifted::Unknown => bail!(
            "no block or rate limit numbered {id} (`palisade block list` shows those in force); nothing lifted"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_unambiguous() {
        assert_eq!(parse_subject("alice"), Ok(Subject::Account("alice".into())));
        assert_eq!(
            parse_subject("account:alice"),
            Ok(Subject::Account("alice".into()))
        );
        assert_eq!(
            parse_subject("network:192.0.2.0/24").map(|s| s.value()),
            Ok("192.0.2.0/24".to_string())
        );
        assert_eq!(
            parse_subject("network:2001:db8:1:2::/64").map(|s| s.value()),
            Ok("2001:db8:1:2::/64".to_string())
        );
        assert_eq!(
            parse_subject("device:00ff00ff00ff00ff"),
            Ok(Subject::Device(0x00ff_00ff_00ff_00ff))
        );
        for bad in [
            "",
            "account:",
            "account:alice@example.com",
            "192.0.2.0/24",
            "2001:db8::1",
            "network:192.0.2.7/24",
            "network:192.0.2.0/16",
            "network:bob",
            "device:123",
            "device:zzzzzzzzzzzzzzzz",
            "user:alice",
        ] {
            assert!(parse_subject(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_subject("network:192.0.2.7/24")
            .unwrap_err()
            .contains("network:192.0.2.0/24"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(90_000));
        assert_eq!(parse_duration("30m"), Ok(1_800_000));
        assert_eq!(parse_duration("2h"), Ok(7_200_000));
        assert_eq!(parse_duration("7d"), Ok(604_800_000));
        assert_eq!(parse_duration("2w"), Ok(1_209_600_000));
        for bad in [
            "",
            "h",
            "0h",
            "-1h",
            "1.5h",
            "10",
            "2x",
            "1h30m",
            "99999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }
}
