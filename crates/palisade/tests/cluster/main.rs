//! Three nodes of a cluster on one PostgreSQL database (the server `./test.sh` starts,
//! `PALISADE_TEST_PG_URL`; skipped with a note without it), each test in a schema of its
//! own: a phone registered at one node is called through another (the call goes through
//! the node holding the phone's flow), survives that node's `kill -9` by registering at a
//! third, and keeps exactly one binding; a block made at one node is enforced at the
//! others within a second.
// Helpers outside `#[test]` functions assert by panicking too (clippy.toml exempts only
// test functions and `#[cfg(test)]` modules from the workspace's panic-free lints).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]
#[path = "../common/mod.rs"]
mod common;
#[allow(dead_code)] // (the campaign tests use the rest)
#[path = "../campaign/sim.rs"]
mod sim;

mod detection;
mod routing;
mod shared;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

/// A schema of its own in the test database, dropped at the end.
pub(crate) struct Schema {
    base: String,
    name: String,
    url: String,
}

pub(crate) fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            url,
            "-X",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .output()
        .expect("psql (Debian postgresql-client) must be installed");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Schema {
    fn new(tag: &str) -> Option<Schema> {
        let Ok(base) = std::env::var("PALISADE_TEST_PG_URL") else {
            eprintln!("note: PALISADE_TEST_PG_URL is not set: the cluster tests are skipped (./test.sh starts a PostgreSQL server and sets it)");
            return None;
        };
        let name = format!("cluster_{tag}_{}", std::process::id());
        psql(
            &base,
            &format!("DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"),
        );
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{name}");
        Some(Schema { base, name, url })
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if std::env::var_os("PALISADE_TEST_KEEP_SCHEMA").is_some() {
            eprintln!("schema {} kept (PALISADE_TEST_KEEP_SCHEMA)", self.name);
            return;
        }
        let _ = Command::new("psql")
            .args([&self.base, "-X", "-q", "-c"])
            .arg(format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name))
            .output();
    }
}

/// A node's configuration file in its own data directory.
pub(crate) fn node_config(db: &Schema, name: &str) -> (PathBuf, PathBuf) {
    let dir = tempdir(&format!("cluster-{name}"));
    let cfg = dir.join("node.toml");
    std::fs::write(
        &cfg,
        format!(
            "[store]\nurl = \"{}\"\n\n[cluster]\nnode = \"{name}\"\ndead_after_ms = 2000\n\n[admin]\nlisten = \"127.0.0.1:0\"\n",
            db.url
        ),
    )
    .unwrap();
    (dir, cfg)
}

pub(crate) fn palisade(cfg: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .arg("--config")
        .arg(cfg)
        .output()
        .unwrap()
}

pub(crate) fn start(db: &Schema, name: &str) -> (Server, PathBuf) {
    let (dir, cfg) = node_config(db, name);
    let port = ports();
    let s = Server::start_in(dir, port, &["--config", cfg.to_str().unwrap()]);
    (s, cfg)
}

pub(crate) fn add_accounts(cfg: &Path, users: &[&str]) {
    for u in users {
        let o = palisade(
            cfg,
            &[
                "user",
                "add",
                u,
                "--password",
                "secret",
                "--domain",
                "127.0.0.1",
            ],
        );
        assert!(
            o.status.success(),
            "user add {u}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// `palisade cluster status --json`, by node name.
pub(crate) fn status(cfg: &Path) -> serde_json::Map<String, serde_json::Value> {
    let o = palisade(cfg, &["cluster", "status", "--json"]);
    assert!(
        o.status.success(),
        "cluster status: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|n| (n["node"].as_str().unwrap().to_string(), n.clone()))
        .collect()
}

pub(crate) fn json(o: Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}
