//! `palisade cluster status`: the nodes of a cluster as the shared database has them;
//! `palisade evidence export DIR --cluster`: every node's evidence log, fetched from its
//! admin listener and verified under the key it published.
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use palisade_evidence::{Checkpoint, NoteVerifier};
use palisade_store::{NodeRow, PgStore};

use crate::clock::unix_now;
use crate::config;

/// The cluster's database, from a configuration file's `[store]`.
fn open(config: Option<&PathBuf>) -> anyhow::Result<(config::FileConfig, PgStore)> {
    let cfg = config::load(config)?;
    let Some(url) = &cfg.store.url else {
        return Err(anyhow!(
            "not a cluster: [store] url is not set (a cluster's nodes share a PostgreSQL database; name its configuration with --config FILE)"
        ));
    };
    let store = PgStore::open(url, 1, cfg.store.checkout_timeout())
        .map_err(|e| anyhow!("PostgreSQL at {}: {e}", palisade_store::redact_url(url)))?;
    Ok((cfg, store))
}

/// The most one file of a log (a checkpoint, a tile, an entry bundle) may weigh.
const MAX_FILE: u64 = 64 << 20;

/// One node's log, fetched into `to` and verified under its published key: the size of
/// its tree.
fn fetch_log(http: &crate::http::Client, n: &NodeRow, to: &Path) -> anyhow::Result<u64> {
    if n.evidence_key.is_empty() {
        return Err(anyhow!("its evidence log is off (evidence.enabled)"));
    }
    if n.admin.is_empty() {
        return Err(anyhow!(
            "it has no admin listener (admin.listen), which serves its log"
        ));
    }
    let key = NoteVerifier::parse(&n.evidence_key).map_err(|e| anyhow!("its key: {e}"))?;
    let base = format!("http://{}/evidence/", n.admin);
    let get = |path: &str| -> anyhow::Result<Vec<u8>> {
        let (code, body) = http.get(&format!("{base}{path}"), MAX_FILE)?;
        if code != 200 {
            return Err(anyhow!("GET {base}{path}: status {code}"));
        }
        Ok(body)
    };
    let note = String::from_utf8(get("checkpoint")?).context("its checkpoint is not text")?;
    let text = key
        .open(&note)
        .map_err(|e| anyhow!("its checkpoint: {e}"))?;
    let cp = Checkpoint::parse(text).map_err(|e| anyhow!("its checkpoint: {e}"))?;
    std::fs::create_dir_all(to)?;
    std::fs::write(to.join("checkpoint"), &note)?;
    for (p, _) in palisade_evidence::tiles::tree_files(cp.size) {
        let body = get(&p)?;
        let dest = to.join(&p);
        if let Some(d) = dest.parent() {
            std::fs::create_dir_all(d)?;
        }
        std::fs::write(&dest, body)?;
    }
    std::fs::write(to.join("key"), format!("{}\n", n.evidence_key))?;
    // the copy holds together: the same checks as `palisade evidence verify`
    let log = crate::evidence::LogSettings {
        data_dir: to.to_path_buf(),
        domain: String::new(),
        origin: None,
        key: None,
        node: n.name.clone(),
    };
    crate::evidence::verify(
        &log,
        &crate::evidence::VerifyOpts {
            dir: Some(to.to_path_buf()),
            key: Some(n.evidence_key.clone()),
            last: None,
            witnesses: vec![],
            required: 0,
            partial: false,
        },
    )?;
    Ok(cp.size)
}

/// `palisade evidence export DIR --cluster`: each node's log under `DIR/<node>/`, with
/// its key in `DIR/<node>/key`. A node whose log cannot be fetched (it is down, it has no
/// admin listener) is named, the others are exported, and the command fails.
pub(crate) fn export_evidence(config: Option<&PathBuf>, to: &Path) -> anyhow::Result<()> {
    let (_, store) = open(config)?;
    let nodes = store.nodes(unix_now())?;
    if nodes.is_empty() {
        return Err(anyhow!("no node has joined this cluster"));
    }
    let http = crate::http::Client::new(None)?;
    let mut readme = String::from(
        "Evidence logs of a Palisade cluster: one log per node, each in the directory named\n\
         after the node, with its verifier key in `key`. Verify one with\n\n\
         \x20   palisade evidence verify --dir NODE --key \"$(cat NODE/key)\"\n\n\
         or with any tlog-tiles verifier (golang.org/x/mod/sumdb/tlog).\n\n",
    );
    let mut failed = Vec::new();
    for n in &nodes {
        match fetch_log(&http, n, &to.join(&n.name)) {
            Ok(size) => {
                println!("{}: {size} entries, verified", n.name);
                readme.push_str(&format!(
                    "{}: {size} entries, key {}\n",
                    n.name, n.evidence_key
                ));
            }
            Err(e) => {
                println!("{}: not exported: {e:#}", n.name);
                readme.push_str(&format!("{}: not exported: {e:#}\n", n.name));
                failed.push(n.name.clone());
            }
        }
    }
    std::fs::create_dir_all(to)?;
    std::fs::write(to.join("README"), readme)?;
    if !failed.is_empty() {
        return Err(anyhow!(
            "the logs of {} could not be exported (see above); the others are in {}",
            failed.join(", "),
            to.display()
        ));
    }
    Ok(())
}

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
    let (cfg, store) = open(config)?;
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
                    "detector": serde_json::from_str::<serde_json::Value>(&n.load).ok().and_then(|l| l.get("detector").and_then(serde_json::Value::as_bool)).unwrap_or(false) && state(n, dead) == "alive",
                    "admin": n.admin,
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
        "{:<16} {:<6} {:>10} {:>9} {:<22} {:>8} {:>13} {:>6} {:<8} {:>8}  VERSION",
        "NODE",
        "STATE",
        "HEARTBEAT",
        "UP",
        "SIP",
        "BINDINGS",
        "REGISTRATIONS",
        "CALLS",
        "DETECTOR",
        "PID"
    );
    for n in &nodes {
        let load: serde_json::Value = serde_json::from_str(&n.load).unwrap_or_default();
        let num = |k: &str| {
            load.get(k)
                .and_then(|v| v.as_u64())
                .map_or("-".into(), |v| v.to_string())
        };
        let detector = load
            .get("detector")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
            && state(n, dead) == "alive";
        println!(
            "{:<16} {:<6} {:>10} {:>9} {:<22} {:>8} {:>13} {:>6} {:<8} {:>8}  {}",
            n.name,
            state(n, dead),
            format!("{} ago", short(n.age_ms)),
            short(now_ms - n.started_ms),
            if n.sip.is_empty() { "-" } else { &n.sip },
            n.bindings,
            num("registrations"),
            num("calls_active"),
            if detector { "yes" } else { "-" },
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
        assert_eq!(short(3 * 3_600_000 + 600_000), "3h 10m");
        assert_eq!(short(2 * 86_400_000 + 4 * 3_600_000), "2d 4h");
    }
}
