//! # palisade-store: what Palisade keeps across restarts
//!
//! Accounts (HA1 values only, never passwords) and registrar bindings, behind the
//! [`Storage`] trait. The embedded default is SQLite ([`SqliteStore`]): one file under
//! the data directory, no server to install. A cluster shares one PostgreSQL database
//! ([`PgStore`], `[store] url`); [`open_storage`] picks one from the [`StoreConfig`]. Both
//! pass one suite of tests (`tests/storage_suite.rs`). The server's hot path never waits
//! on either: bindings are written behind, in batches, from events of the sans-IO core.
//!
//! Records, findings, blocks and notifications are behind the [`Records`] trait, on
//! SQLite (`records.db`, a file of its own) or in the same PostgreSQL database
//! (`tests/records_suite.rs`).
use std::path::Path;

use palisade_detect::{CallRecord, Finding, Output, RegistrationRecord, Restriction, Subject};
use rusqlite::{params, Connection, OptionalExtension};

mod blocks;
mod config;
mod journal;
mod pg;
mod record_log;
mod records;
mod text;
pub use blocks::{Block, BlockChange, Lifted, BY_DETECTOR, BY_OPERATOR};
pub use config::{
    open_records, open_storage, redact_url, StoreConfig, DEFAULT_CHECKOUT_TIMEOUT_MS,
    DEFAULT_MAX_CONNECTIONS,
};
pub use pg::{
    ClusterChange, Leadership, Listener, NodeJoin, NodeRow, PgStore, PoolStatus, CONNECT_TIMEOUT,
    RECORD_RANGE,
};
pub use records::{Notification, Target};
pub use text::{addr_text, hex16};

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    Dir {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The bindings journal could not be read or written.
    #[error("bindings journal {path}: {source}")]
    Journal {
        /// The file (or its directory).
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The call and registration records' files could not be read or written.
    #[error("call and registration records {path}: {source}")]
    Records {
        /// The file (or its directory).
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// An account of that name and domain exists already.
    #[error("user {0} already exists")]
    UserExists(String),
    /// PostgreSQL refused or failed, or could not be reached (the text carries the
    /// server's message or the network's error, which the client's own text leaves to
    /// its source).
    #[error("PostgreSQL: {}", causes(.0))]
    Postgres(#[from] postgres::Error),
    /// Every connection of the pool stayed busy for the whole checkout timeout.
    #[error("no PostgreSQL connection came free in {waited_ms} ms: all {max} ([store] max_connections) are busy")]
    PoolTimeout {
        /// The pool's bound.
        max: usize,
        /// How long the checkout waited.
        waited_ms: u64,
    },
    /// `[store] url` is not a PostgreSQL URL (the text never repeats the URL, which may
    /// hold a password).
    #[error("[store] url: {0}")]
    Url(String),
    /// A setting is out of range.
    #[error("{0}")]
    Config(String),
    /// A schema migration failed (and was rolled back).
    #[error("PostgreSQL schema migration {version} ({name}) failed: {}", causes(.source))]
    Migration {
        /// Its number.
        version: i32,
        /// What it does.
        name: &'static str,
        /// Why it failed.
        source: postgres::Error,
    },
    /// A stored number does not fit its field (the row was written by something else).
    #[error("{column} holds {value}, out of range")]
    Value {
        /// `table.column`.
        column: &'static str,
        /// The value.
        value: i64,
    },
}

/// An error's text followed by each of its causes' (once each): `postgres::Error` says
/// only "db error" or "error connecting to server" and keeps the server's message or
/// the socket's error in its source.
pub(crate) fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(c) = next {
        let t = c.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        next = c.source();
    }
    text
}

/// An account: its name, domain and HA1 digests (never a password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// The user part.
    pub name: String,
    /// The SIP domain (the digest realm).
    pub domain: String,
    /// MD5(name:realm:password), hex.
    pub ha1_md5: String,
    /// SHA-256(name:realm:password), hex.
    pub ha1_sha256: String,
    /// Unix seconds; set by the store when the row is added (0), or kept from another
    /// system on import (so that account ages stay true for the detectors).
    pub created: i64,
}

/// A protected user's setting: only callers on `allow` reach the user's devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protection {
    /// The protected user.
    pub name: String,
    /// Its domain.
    pub domain: String,
    /// The local accounts that may call it.
    pub allow: Vec<String>,
}

/// A registrar binding as stored (see `palisade_core::Binding`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingRow {
    /// The address of record.
    pub aor: String,
    /// The Contact URI.
    pub contact: String,
    /// Unix seconds.
    pub expires: i64,
    /// The Contact's q value, in thousandths.
    pub q: u16,
    /// Call-ID of the REGISTER that made it.
    pub call_id: String,
    /// CSeq of that REGISTER.
    pub cseq: u32,
    /// Path URIs, newline-separated.
    pub path: String,
    /// The transport it arrived on (`udp`, `tcp`, `tls`).
    pub transport: String,
    /// The address it arrived from (`ip:port`).
    pub source: String,
    /// The registering device's User-Agent.
    pub user_agent: String,
    /// The cluster node the REGISTER came through, which holds its flow (`""` on a
    /// server that is not part of a cluster).
    pub node: String,
    /// That node's token for the flow (see `palisade_core::FlowKey`; `""` outside a
    /// cluster): other nodes route requests for this binding through the node with it.
    pub flow: String,
}

/// A change of the location, as the storage thread writes it.
pub enum BindingOp {
    /// Adds or refreshes a binding.
    Save(BindingRow),
    /// Removes the binding of this contact.
    Remove {
        /// The address of record.
        aor: String,
        /// The Contact URI.
        contact: String,
        /// The node removing it: a binding another node saved since (the phone
        /// registered again elsewhere) is left alone.
        node: String,
    },
}

/// Storage operations the server and the CLI need.
pub trait Storage {
    /// Adds an account ([`StoreError::UserExists`] when it exists).
    fn add_user(&mut self, u: &UserRow) -> Result<(), StoreError>;
    /// Removes an account; `false` when there was none.
    fn remove_user(&mut self, name: &str, domain: &str) -> Result<bool, StoreError>;
    /// The accounts of a domain (or all), by name.
    fn list_users(&self, domain: Option<&str>) -> Result<Vec<UserRow>, StoreError>;
    /// All or nothing: either every row is added or none is.
    fn import_users(&mut self, rows: &[UserRow]) -> Result<usize, StoreError>;
    /// A number that changes whenever another connection commits a change of the
    /// accounts or their protections (cheap to poll; compare, never order). SQLite's
    /// moves on every commit of another connection to the file (bindings included), and
    /// not on this connection's own; PostgreSQL's only with accounts, protections and
    /// allow-lists, on every connection's commits (see [`PgStore`]).
    fn version(&self) -> Result<i64, StoreError>;
    /// Writes a batch of binding changes in one transaction.
    fn apply_bindings(&mut self, ops: &[BindingOp]) -> Result<(), StoreError>;
    /// The bindings not expired at `now_unix`.
    fn load_bindings(&self, now_unix: i64) -> Result<Vec<BindingRow>, StoreError>;
    /// Turns protection on or off; `false` when the user does not exist.
    fn set_protected(&mut self, name: &str, domain: &str, on: bool) -> Result<bool, StoreError>;
    /// Adds (`allow`) or removes a caller on a user's allow-list; `false` when the user
    /// does not exist (or, on removal, the caller was not listed).
    fn set_allowed(
        &mut self,
        name: &str,
        domain: &str,
        caller: &str,
        allow: bool,
    ) -> Result<bool, StoreError>;
    /// Protected users of a domain (or all), with their allow-lists.
    fn protections(&self, domain: Option<&str>) -> Result<Vec<Protection>, StoreError>;
    /// Every account's name and creation time (Unix seconds), all domains (the
    /// detectors' account ages).
    fn account_ages(&self) -> Result<Vec<(String, i64)>, StoreError>;
    /// Makes every commit of this handle durable before it returns, for the server's
    /// binding writer. SQLite: `synchronous=FULL` on this connection (with its default
    /// `NORMAL`, a WAL commit survives the process being killed, but the machine losing
    /// power only from the next checkpoint on). Nothing to do where commits are durable
    /// already (PostgreSQL's own `synchronous_commit` decides there).
    fn sync_every_commit(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// What the campaign detectors keep and the reports read: call and registration
/// records, findings, restrictions (blocks) with the queue of the operator's changes,
/// and notifications. SQLite keeps them in `records.db` ([`SqliteStore::open_records`]),
/// PostgreSQL in the cluster's database ([`PgStore`]); `tests/records_suite.rs` holds
/// both to the same semantics.
pub trait Records {
    /// Writes what the detector produced, in one transaction: records are written once
    /// (an id already stored is left alone), a finding replaces its earlier state, a
    /// restriction never replaces an operator's block still in force.
    fn apply_outputs(&mut self, outs: &[Output]) -> Result<(), StoreError>;
    /// The first (call, registration, finding) numbers the detector may use; it numbers
    /// on from them by itself. SQLite: the first free ones. PostgreSQL: the start of a
    /// range reserved for this caller alone (see [`PgStore`]).
    fn next_ids(&self) -> Result<(u64, u64, u64), StoreError>;
    /// Call records since `since` (Unix ms), optionally of one user (as caller or
    /// callee), oldest first.
    fn calls(&self, since: i64, user: Option<&str>) -> Result<Vec<CallRecord>, StoreError>;
    /// Registration records since `since`, oldest first.
    fn registrations_since(&self, since: i64) -> Result<Vec<RegistrationRecord>, StoreError>;
    /// Each account's first registration on record.
    fn first_registrations(&self) -> Result<Vec<(String, i64)>, StoreError>;
    /// Distinct (caller, callee) pairs with a call since `since`.
    fn call_pairs(&self, since: i64) -> Result<Vec<(String, String)>, StoreError>;
    /// Findings updated since `since`, oldest detection first.
    fn findings(&self, since: i64) -> Result<Vec<Finding>, StoreError>;
    /// Restrictions still in force at `now` (Unix ms).
    fn restrictions(&self, now: i64) -> Result<Vec<Restriction>, StoreError>;
    /// The users a campaign rang or tried to ring since `since` (Unix ms).
    fn targets(&self, since: i64) -> Result<Vec<Target>, StoreError>;
    /// Deletes call and registration records older than `before` (Unix ms); how many.
    fn purge_records(&mut self, before: i64) -> Result<usize, StoreError>;
    /// The notification of `user` on `channel`, if any was made.
    fn notification(&self, user: &str, channel: &str) -> Result<Option<Notification>, StoreError>;
    /// Records a notification's state (`queued`, `sent`, `failed`) at `now` (Unix ms).
    fn set_notification(
        &mut self,
        user: &str,
        channel: &str,
        state: &str,
        detail: &str,
        now: i64,
    ) -> Result<(), StoreError>;
    /// Notifications of `channel` waiting for delivery: (user, detail), oldest first.
    fn queued(&self, channel: &str) -> Result<Vec<(String, String)>, StoreError>;
    /// Restrictions in force at `now` (Unix ms), by number.
    fn blocks(&self, now: i64) -> Result<Vec<Block>, StoreError>;
    /// The operator blocks `subject` until `until` for `reason`: the subject's
    /// restriction is replaced and the change queued; returns the new block and the one
    /// it replaced, if that was in force.
    fn add_block(
        &mut self,
        subject: &Subject,
        until: i64,
        reason: &str,
        now: i64,
    ) -> Result<(Block, Option<Block>), StoreError>;
    /// The operator lifts restriction `id`; queued for the server if it was in force.
    fn lift_block(&mut self, id: i64, now: i64) -> Result<Lifted, StoreError>;
    /// The operator's changes the server has not recorded yet, oldest first.
    fn pending_block_changes(&self) -> Result<Vec<BlockChange>, StoreError>;
    /// Marks a change recorded by the server (at `at`, Unix ms).
    fn block_change_recorded(&mut self, seq: i64, at: i64) -> Result<(), StoreError>;
    /// A number that moves when the operator may have queued a block change (cheap to
    /// poll; compare, never order): the server reads [`Records::pending_block_changes`]
    /// only when it moved. SQLite: `records.db`'s `data_version` (any commit of another
    /// connection). PostgreSQL: the newest change's number, whoever queued it.
    fn block_changes_version(&self) -> Result<i64, StoreError>;
}

/// Opens `DIR/FILE` (creating the directory): WAL journal, normal sync, a 5 s busy
/// timeout.
fn connect(dir: &Path, file: &str) -> Result<Connection, StoreError> {
    std::fs::create_dir_all(dir).map_err(|e| StoreError::Dir {
        path: dir.display().to_string(),
        source: e,
    })?;
    let conn = Connection::open(dir.join(file))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")?;
    Ok(conn)
}

/// The embedded store: one SQLite database for accounts (`palisade.db`), an
/// append-only journal for the bindings (`bindings.journal`, see `journal.rs`), another
/// database (`records.db`) for what the detectors keep.
pub struct SqliteStore {
    conn: Connection,
    /// The data directory, on a `palisade.db` handle (where its journal is).
    dir: Option<std::path::PathBuf>,
    /// The journal's writer end, opened by the first [`Storage::apply_bindings`].
    journal: Option<journal::Journal>,
    /// [`Storage::sync_every_commit`] was asked for.
    sync: std::sync::atomic::AtomicBool,
    /// The call and registration records, on a `records.db` handle (see
    /// `record_log.rs`).
    log: Option<record_log::RecordLog>,
}

/// A write transaction whose `BEGIN` and `COMMIT` are cached statements: the hot writers
/// (bindings, records) commit several times a second, and `Connection::transaction`
/// compiles both statements anew every time (about a third of a small batch's cost).
/// Dropped without [`CachedTx::commit`], it rolls back.
pub(crate) struct CachedTx<'c> {
    conn: &'c Connection,
    open: bool,
}

impl<'c> CachedTx<'c> {
    pub(crate) fn begin(conn: &'c Connection) -> Result<Self, StoreError> {
        conn.prepare_cached("BEGIN")?.execute([])?;
        Ok(CachedTx { conn, open: true })
    }

    pub(crate) fn commit(mut self) -> Result<(), StoreError> {
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        self.open = false;
        Ok(())
    }
}

impl std::ops::Deref for CachedTx<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for CachedTx<'_> {
    fn drop(&mut self) {
        if self.open {
            // A failed COMMIT leaves the transaction open too; nothing to report here,
            // the error that brought us here has been returned.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) `DIR/palisade.db`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let conn = connect(dir, "palisade.db")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS users (
                name TEXT NOT NULL, domain TEXT NOT NULL,
                ha1_md5 TEXT NOT NULL, ha1_sha256 TEXT NOT NULL,
                created INTEGER NOT NULL DEFAULT (strftime('%s','now')),
                PRIMARY KEY (name, domain));
             CREATE TABLE IF NOT EXISTS bindings (
                aor TEXT NOT NULL, contact TEXT NOT NULL, expires INTEGER NOT NULL,
                q INTEGER NOT NULL, call_id TEXT NOT NULL, cseq INTEGER NOT NULL,
                path TEXT NOT NULL, transport TEXT NOT NULL, source TEXT NOT NULL,
                user_agent TEXT NOT NULL, node TEXT NOT NULL DEFAULT '',
                flow TEXT NOT NULL DEFAULT '',
                PRIMARY KEY (aor, contact));
             CREATE TABLE IF NOT EXISTS protected (
                name TEXT NOT NULL, domain TEXT NOT NULL,
                PRIMARY KEY (name, domain));
             CREATE TABLE IF NOT EXISTS allowed_callers (
                name TEXT NOT NULL, domain TEXT NOT NULL, caller TEXT NOT NULL,
                PRIMARY KEY (name, domain, caller));",
        )?;
        // files made before bindings named their node
        let has_node: bool = conn.query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('bindings') WHERE name = 'node'",
            [],
            |r| r.get(0),
        )?;
        if !has_node {
            conn.execute_batch(
                "ALTER TABLE bindings ADD COLUMN node TEXT NOT NULL DEFAULT '';
                 ALTER TABLE bindings ADD COLUMN flow TEXT NOT NULL DEFAULT '';",
            )?;
        }
        Ok(SqliteStore {
            conn,
            dir: Some(dir.to_path_buf()),
            journal: None,
            sync: false.into(),
            log: None,
        })
    }

    /// Opens (creating if needed) `DIR/records.db`: findings, restrictions,
    /// notifications; and the call and registration records in `DIR/records/` (records
    /// an earlier version kept in `records.db` move there). A file of its own: the
    /// detection thread writes it, and every commit to `palisade.db` tells the server
    /// that accounts may have changed (it reloads them).
    pub fn open_records(dir: &Path) -> Result<Self, StoreError> {
        let conn = connect(dir, "records.db")?;
        records::schema(&conn)?;
        blocks::schema(&conn)?;
        let mut s = SqliteStore {
            conn,
            dir: None,
            journal: None,
            sync: false.into(),
            log: Some(record_log::RecordLog::new(dir)),
        };
        s.move_old_records()?;
        Ok(s)
    }
}

impl Storage for SqliteStore {
    fn add_user(&mut self, u: &UserRow) -> Result<(), StoreError> {
        let exists: Option<i64> = self
            .conn
            .query_row(
                "SELECT 1 FROM users WHERE name=?1 AND domain=?2",
                params![u.name, u.domain],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_some() {
            return Err(StoreError::UserExists(format!("{}@{}", u.name, u.domain)));
        }
        self.conn.execute(
            "INSERT INTO users (name, domain, ha1_md5, ha1_sha256) VALUES (?1, ?2, ?3, ?4)",
            params![u.name, u.domain, u.ha1_md5, u.ha1_sha256],
        )?;
        Ok(())
    }

    fn remove_user(&mut self, name: &str, domain: &str) -> Result<bool, StoreError> {
        let tx = self.conn.transaction()?;
        let n = tx.execute(
            "DELETE FROM users WHERE name=?1 AND domain=?2",
            params![name, domain],
        )?;
        tx.execute(
            "DELETE FROM protected WHERE name=?1 AND domain=?2",
            params![name, domain],
        )?;
        tx.execute(
            "DELETE FROM allowed_callers WHERE name=?1 AND domain=?2",
            params![name, domain],
        )?;
        tx.commit()?;
        Ok(n > 0)
    }

    fn list_users(&self, domain: Option<&str>) -> Result<Vec<UserRow>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT name, domain, ha1_md5, ha1_sha256, created FROM users WHERE ?1 IS NULL OR domain=?1 ORDER BY domain, name",
        )?;
        let rows = st.query_map(params![domain], |r| {
            Ok(UserRow {
                name: r.get(0)?,
                domain: r.get(1)?,
                ha1_md5: r.get(2)?,
                ha1_sha256: r.get(3)?,
                created: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn import_users(&mut self, rows: &[UserRow]) -> Result<usize, StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut check = tx.prepare("SELECT 1 FROM users WHERE name=?1 AND domain=?2")?;
            let mut ins = tx.prepare(
                "INSERT INTO users (name, domain, ha1_md5, ha1_sha256, created)
                 VALUES (?1, ?2, ?3, ?4, COALESCE(NULLIF(?5, 0), strftime('%s','now')))",
            )?;
            for u in rows {
                if check.exists(params![u.name, u.domain])? {
                    return Err(StoreError::UserExists(format!("{}@{}", u.name, u.domain)));
                }
                ins.execute(params![
                    u.name,
                    u.domain,
                    u.ha1_md5,
                    u.ha1_sha256,
                    u.created
                ])?;
            }
        }
        tx.commit()?;
        Ok(rows.len())
    }

    fn version(&self) -> Result<i64, StoreError> {
        // cached: both server threads ask several times a second
        Ok(self
            .conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?)
    }

    fn apply_bindings(&mut self, ops: &[BindingOp]) -> Result<(), StoreError> {
        let now = journal::unix_seconds();
        let j = self.journal_writer()?;
        j.append(ops, now)
    }

    fn load_bindings(&self, now_unix: i64) -> Result<Vec<BindingRow>, StoreError> {
        let mut fold = journal::Fold::new();
        for b in self.table_bindings()? {
            journal::apply(&mut fold, BindingOp::Save(b));
        }
        if let Some(dir) = &self.dir {
            journal::read(dir, &mut fold)?;
        }
        Ok(fold
            .into_values()
            .filter(|b| b.expires > now_unix)
            .collect())
    }

    fn set_protected(&mut self, name: &str, domain: &str, on: bool) -> Result<bool, StoreError> {
        if !self.user_exists(name, domain)? {
            return Ok(false);
        }
        if on {
            self.conn.execute(
                "INSERT OR IGNORE INTO protected (name, domain) VALUES (?1, ?2)",
                params![name, domain],
            )?;
        } else {
            self.conn.execute(
                "DELETE FROM protected WHERE name=?1 AND domain=?2",
                params![name, domain],
            )?;
        }
        Ok(true)
    }

    fn set_allowed(
        &mut self,
        name: &str,
        domain: &str,
        caller: &str,
        allow: bool,
    ) -> Result<bool, StoreError> {
        if !self.user_exists(name, domain)? {
            return Ok(false);
        }
        if allow {
            self.conn.execute(
                "INSERT OR IGNORE INTO allowed_callers (name, domain, caller) VALUES (?1, ?2, ?3)",
                params![name, domain, caller],
            )?;
            Ok(true)
        } else {
            Ok(self.conn.execute(
                "DELETE FROM allowed_callers WHERE name=?1 AND domain=?2 AND caller=?3",
                params![name, domain, caller],
            )? > 0)
        }
    }

    fn account_ages(&self) -> Result<Vec<(String, i64)>, StoreError> {
        SqliteStore::account_ages(self)
    }

    fn sync_every_commit(&self) -> Result<(), StoreError> {
        // (accounts and protections keep SQLite's own durability; the bindings journal
        // syncs each append)
        self.conn.execute_batch("PRAGMA synchronous=FULL;")?;
        self.sync.store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn protections(&self, domain: Option<&str>) -> Result<Vec<Protection>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT name, domain FROM protected WHERE ?1 IS NULL OR domain=?1 ORDER BY domain, name",
        )?;
        let mut out: Vec<Protection> = st
            .query_map(params![domain], |r| {
                Ok(Protection {
                    name: r.get(0)?,
                    domain: r.get(1)?,
                    allow: vec![],
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut al = self.conn.prepare(
            "SELECT caller FROM allowed_callers WHERE name=?1 AND domain=?2 ORDER BY caller",
        )?;
        for p in &mut out {
            p.allow = al
                .query_map(params![p.name, p.domain], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
        }
        Ok(out)
    }
}

impl SqliteStore {
    fn user_exists(&self, name: &str, domain: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM users WHERE name=?1 AND domain=?2")?
            .exists(params![name, domain])?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(n: &str) -> UserRow {
        UserRow {
            name: n.into(),
            domain: "example.com".into(),
            ha1_md5: "a".into(),
            ha1_sha256: "b".into(),
            created: 0,
        }
    }

    #[test]
    fn protection_and_allow_lists() {
        let dir = std::env::temp_dir().join(format!("palisade-store-prot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut s = SqliteStore::open(&dir).unwrap();
        s.add_user(&user("alice")).unwrap();
        assert!(!s.set_protected("nobody", "example.com", true).unwrap());
        assert!(s.set_protected("alice", "example.com", true).unwrap());
        assert!(s.set_allowed("alice", "example.com", "bob", true).unwrap());
        assert!(s
            .set_allowed("alice", "example.com", "carol", true)
            .unwrap());
        assert!(s
            .set_allowed("alice", "example.com", "carol", false)
            .unwrap());
        assert!(!s
            .set_allowed("alice", "example.com", "carol", false)
            .unwrap());
        let p = s.protections(Some("example.com")).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].allow, vec!["bob".to_string()]);
        assert!(s.list_users(None).unwrap()[0].created > 1_600_000_000);
        assert!(s.set_protected("alice", "example.com", false).unwrap());
        assert!(s.protections(None).unwrap().is_empty());
        // removing the user removes its settings
        s.set_protected("alice", "example.com", true).unwrap();
        s.remove_user("alice", "example.com").unwrap();
        assert!(s.protections(None).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn users_and_bindings_persist() {
        let dir = std::env::temp_dir().join(format!("palisade-store-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let mut s = SqliteStore::open(&dir).unwrap();
            s.add_user(&user("alice")).unwrap();
            assert!(matches!(
                s.add_user(&user("alice")),
                Err(StoreError::UserExists(_))
            ));
            // import is all or nothing
            assert!(s.import_users(&[user("bob"), user("alice")]).is_err());
            assert_eq!(s.list_users(None).unwrap().len(), 1);
            assert_eq!(s.import_users(&[user("bob"), user("carol")]).unwrap(), 2);
            let b = BindingRow {
                aor: "alice@example.com".into(),
                contact: "sip:alice@192.0.2.1".into(),
                expires: 2000,
                q: 1000,
                call_id: "c".into(),
                cseq: 1,
                path: String::new(),
                transport: "udp".into(),
                source: "192.0.2.1:5060".into(),
                user_agent: "x".into(),
                node: String::new(),
                flow: String::new(),
            };
            s.apply_bindings(&[BindingOp::Save(b.clone())]).unwrap();
            assert_eq!(s.load_bindings(1000).unwrap(), vec![b]);
            assert!(
                s.load_bindings(3000).unwrap().is_empty(),
                "expired bindings are not loaded"
            );
        }
        let mut s = SqliteStore::open(&dir).unwrap();
        assert_eq!(s.list_users(Some("example.com")).unwrap().len(), 3);
        assert_eq!(s.load_bindings(0).unwrap().len(), 1);
        s.apply_bindings(&[BindingOp::Remove {
            aor: "alice@example.com".into(),
            contact: "sip:alice@192.0.2.1".into(),
            node: String::new(),
        }])
        .unwrap();
        assert!(s.load_bindings(0).unwrap().is_empty());
        assert!(s.remove_user("bob", "example.com").unwrap());
        assert!(!s.remove_user("bob", "example.com").unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
