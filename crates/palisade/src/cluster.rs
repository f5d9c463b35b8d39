//! `palisade cluster status`: the nodes of a cluster as the shared database has them.
use std::path::PathBuf;

use anyhow::anyhow;
use palisade_store::{NodeRow, PgStore};

use crate::clock::unix_now;
use crate::config;

/// A duration in milliseconds, shortly (`850 ms`, `12.3 s`, `5m 02s`, `3h 10m`, `2d 4h`).
fn short(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match ms {
        m if m < 1000 => format!("{} ms", m.max(0)),
        m if m < 60_000 => format!("{:.1} s", m as f64 / 1000.0),
        _ if s < 3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ if s < 86_400 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// `alive` or `dead` by the configured `[cluster] dead_after_ms`.
fn state(n: &NodeRow, dead_after_ms: u64) -> &'static str {
    if n.age_ms <= i64::try_from(dead_after_ms).unwrap_or(i64::MAX) {
        "alive"
    } else {
        "dead"
    }
}

/// Prints the nodes (a table, or JSON).
pub(crate) fn status(config: Option<&PathBuf>, json: bool) -> anyhow::Result<()> {
    let cfg = config::load(config)?;
    let Some(url) = &cfg.store.url else {
        return Err(anyhow!(
            "not a cluster: [store] url is not set (a cluster's nodes share a PostgreSQL database; name its configuration with --config FILE)"
        ));
    };
    let store = PgStore::open(url, 1, cfg.store.checkout_timeout())
        .map_err(|e| anyhow!("PostgreSQL at {}: {e}", palisade_store::redact_url(url)))?;
    let nodes = store.nodes(unix_now())?;
    let now_ms = crate::clock::now_ms();
    let dead = cfg.cluster.dead_after_ms;
    if json {
        let v: Vec<serde_json::Value> = nodes
            .iter()
            .map(|n| {
                serde_json::json!({
                    "node": n.name,
                    "state": state(n, dead),
                    "heartbeat_age_ms": n.age_ms,
                    "started_ms": n.started_ms,
                    "sip": n.sip,
                    "pid": n.pid,
                    "version": n.version,
                    "bindings": n.bindings,
                    "load": serde_json::from_str::<serde_json::Value>(&n.load).unwrap_or_default(),
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(v));
        return Ok(());
    }
    if nodes.is_empty() {
        println!(
            "no node has joined this cluster yet ([cluster] node in each server's configuration)"
        );
        return Ok(());
    }
    println!(
        "{:<16} {:<6} {:>10} {:>9} {:<22} {:>8} {:>13} {:>6} {:>8}  VERSION",
        "NODE", "STATE", "HEARTBEAT", "UP", "SIP", "BINDINGS", "REGISTRATIONS", "CALLS", "PID"
    );
    for n in &nodes {
        let load: serde_json::Value = serde_json::from_str(&n.load).unwrap_or_default();
        let num = |k: &str| {
            load.get(k)
                .and_then(|v| v.as_u64())
                .map_or("-".into(), |v| v.to_string())
        };
        println!(
            "{:<16} {:<6} {:>10} {:>9} {:<22} {:>8} {:>13} {:>6} {:>8}  {}",
            n.name,
            state(n, dead),
            format!("{} ago", short(n.age_ms)),
            short(now_ms - n.started_ms),
            if n.sip.is_empty() { "-" } else { &n.sip },
            n.bindings,
            num("registrations"),
            num("calls_active"),
            n.pid,
            n.version
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_shortly() {
        assert_eq!(short(850), "850 ms");
        assert_eq!(short(12_340), "12.3 s");
        assert_eq!(short(302_000), "5m 02s");
        assert_eq!(short(3 * 3600_000 + 600_000), "3h 10m");
        assert_eq!(short(2 * 86_400_000 + 4 * 3600_000), "2d 4h");
    }
}
