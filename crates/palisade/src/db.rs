//! The store as the binary opens it: SQLite files under the data directory (the
//! default, `palisade.db` and `records.db`), or the PostgreSQL database of `[store] url`
//! that the nodes of a cluster share. Every command and thread of the server that uses
//! the store gets its handles here, as the [`Storage`] and [`Records`] traits, so that
//! nothing else names a backend.
//!
//! A [`Db`] is opened once per process and cloned where needed: on PostgreSQL it holds
//! the process's one connection pool (`[store] max_connections`) and each handle is
//! another reference to it; on SQLite each handle is a connection of its own, opened by
//! the thread that uses it (as SQLite wants).
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use palisade_store::{redact_url, PgStore, Records, SqliteStore, Storage, StoreConfig, StoreError};

use crate::datadir::{self, DB_FILE};

/// The records database under a data directory.
const RECORDS_FILE: &str = "records.db";

/// An opened store: where each handle comes from.
#[derive(Clone)]
pub(crate) enum Db {
    /// SQLite under this data directory.
    Sqlite(PathBuf),
    /// PostgreSQL: the process's pool, and its URL without the password (for messages).
    Pg(PgStore, String),
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown())
    }
}

/// What to check when PostgreSQL cannot be used, after its error.
const PG_HINT: &str = "check that the server runs and accepts connections from this host, that the database exists and that the user may log in to it and create tables ([store] url)";

/// A PostgreSQL failure to open: the URL (never its password) and what to check.
fn explain_pg(e: StoreError, shown: &str) -> anyhow::Error {
    match e {
        // these name `[store]` and the fix already
        StoreError::Url(_) | StoreError::Config(_) => anyhow!("{e}"),
        StoreError::PoolTimeout { .. } => anyhow!("{shown}: {e}"),
        other => anyhow!("{shown}: {other}; {PG_HINT}"),
    }
}

impl Db {
    /// Opens the store `cfg` names, creating what is missing: the data directory and its
    /// SQLite files, or (on PostgreSQL) the schema, with the migrations the database
    /// lacks (the server, `user add`, `user import`).
    pub(crate) fn open(cfg: &StoreConfig, data_dir: &Path) -> anyhow::Result<Db> {
        match &cfg.url {
            None => {
                datadir::prepare(data_dir)?;
                Ok(Db::Sqlite(data_dir.to_path_buf()))
            }
            Some(url) => {
                let shown = format!("PostgreSQL at {}", redact_url(url));
                let pg = PgStore::open(url, cfg.max_connections, cfg.checkout_timeout())
                    .map_err(|e| explain_pg(e, &shown))?;
                Ok(Db::Pg(pg, shown))
            }
        }
    }

    /// For commands that read (or change what must already be there): on SQLite the
    /// database must exist under the data directory (instead of an empty one being made
    /// where the command ran); a PostgreSQL database is connected to as by [`Db::open`].
    pub(crate) fn existing(cfg: &StoreConfig, data_dir: &Path) -> anyhow::Result<Db> {
        if cfg.url.is_none() {
            datadir::existing(data_dir)?;
        }
        Db::open(cfg, data_dir)
    }

    /// Accounts, protections and bindings: on SQLite a new connection to `palisade.db`.
    pub(crate) fn storage(&self) -> anyhow::Result<Box<dyn Storage + Send>> {
        match self {
            Db::Sqlite(dir) => SqliteStore::open(dir)
                .map(|s| Box::new(s) as Box<dyn Storage + Send>)
                .map_err(|e| datadir::explain(e, &dir.join(DB_FILE))),
            Db::Pg(pg, _) => Ok(Box::new(pg.clone())),
        }
    }

    /// Records, findings, blocks and notifications: on SQLite a new connection to
    /// `records.db`.
    pub(crate) fn records(&self) -> anyhow::Result<Box<dyn Records + Send>> {
        match self {
            Db::Sqlite(dir) => SqliteStore::open_records(dir)
                .map(|s| Box::new(s) as Box<dyn Records + Send>)
                .map_err(|e| datadir::explain(e, &dir.join(RECORDS_FILE))),
            Db::Pg(pg, _) => Ok(Box::new(pg.clone())),
        }
    }

    /// Where the store is, for messages and logs: the SQLite database's path, or
    /// `PostgreSQL at URL` without the password.
    pub(crate) fn shown(&self) -> String {
        match self {
            Db::Sqlite(dir) => dir.join(DB_FILE).display().to_string(),
            Db::Pg(_, shown) => shown.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_that_cannot_be_reached_is_named_without_its_password() {
        // a port nothing listens on (connection refused at once)
        let cfg = StoreConfig {
            url: Some("postgres://pal:s3cret@127.0.0.1:1/palisade?connect_timeout=2".into()),
            ..StoreConfig::default()
        };
        let e = Db::open(&cfg, Path::new("/nonexistent"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("postgres://pal:***@127.0.0.1:1/palisade") && !e.contains("s3cret"),
            "{e}"
        );
        assert!(e.contains("[store] url") && e.contains("refused"), "{e}");
        let bad = StoreConfig {
            url: Some("mysql://pal:s3cret@db/palisade".into()),
            ..StoreConfig::default()
        };
        let e = Db::open(&bad, Path::new("/nonexistent"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("mysql://") && !e.contains("s3cret"), "{e}");
    }
}
