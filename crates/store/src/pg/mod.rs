//! The PostgreSQL store: the same [`Storage`] as SQLite, for nodes that share one
//! database (`[store] url = "postgres://…"`).
//!
//! Connections come from a small bounded pool ([`pool`]); each keeps its prepared
//! statements. The client is the synchronous `postgres` crate: the store is called from
//! plain threads (the storage and detection threads, the CLI, the admin API's blocking
//! tasks), never from inside an async task, where its calls would block the executor.
//! Its schema is made and upgraded by numbered migrations ([`migrations`]) when a store
//! is opened.
//!
//! Semantics follow [`SqliteStore`](crate::SqliteStore) call for call (the shared suites in
//! `tests/storage_suite.rs` and `tests/records_suite.rs` hold both to it), with two
//! differences: [`Storage::version`] and [`Records::next_ids`](crate::Records::next_ids)
//! (see [`PgStore`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use postgres::{Client, NoTls, Row, Statement};

use crate::{BindingOp, BindingRow, Protection, Storage, StoreError, UserRow};

mod cluster;
mod migrations;
mod pool;
mod records;

pub use cluster::{ClusterChange, Leadership, Listener, NodeJoin, NodeRow};

pub use pool::PoolStatus;
pub use records::RECORD_RANGE;

/// How long opening a connection may take when the URL does not say (`connect_timeout`).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// An idle connection unused for longer than this is checked with an empty query before
/// it is handed out (the server may have closed it meanwhile: a restart, a failover, an
/// idle timeout).
const CHECK_IDLE_AFTER: Duration = Duration::from_secs(30);
/// How long that check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// A connection and the statements prepared on it.
pub(crate) struct PgConn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl PgConn {
    /// `sql` prepared on this connection, once.
    fn prepare(&mut self, sql: &'static str) -> Result<Statement, StoreError> {
        if let Some(st) = self.statements.get(sql) {
            return Ok(st.clone());
        }
        let st = self.client.prepare(sql)?;
        self.statements.insert(sql, st.clone());
        Ok(st)
    }
}

struct Manager {
    config: postgres::Config,
}

impl pool::Manage for Manager {
    type Conn = PgConn;

    fn connect(&self) -> Result<PgConn, StoreError> {
        Ok(PgConn {
            client: self.config.connect(NoTls)?,
            statements: HashMap::new(),
        })
    }

    fn usable(&self, conn: &mut PgConn, idle: Duration) -> bool {
        !conn.client.is_closed()
            && (idle < CHECK_IDLE_AFTER || conn.client.is_valid(CHECK_TIMEOUT).is_ok())
    }

    fn reusable(&self, conn: &PgConn) -> bool {
        !conn.client.is_closed()
    }
}

/// Accounts, bindings and protections ([`Storage`]), and records, findings, blocks and
/// notifications ([`Records`](crate::Records)), in a PostgreSQL database that several
/// nodes share.
///
/// Numbers stay unique across nodes without `MAX(id) + 1`: restrictions and the queue of
/// block changes take identity columns; the detector, which numbers its records and
/// findings itself, starts from [`Records::next_ids`](crate::Records::next_ids), which
/// here reserves a range of [`RECORD_RANGE`](crate::RECORD_RANGE) numbers of its own
/// (one `nextval` of a sequence that steps by that much), so that two detectors, or a
/// detector and the one that took over from it, never write the same number.
///
/// Cloning gives another handle on the same pool.
///
/// [`Storage::version`] is the `store_version` row, which a trigger moves in the same
/// commit as any change of `users`, `protected` or `allowed_callers`, whoever made it
/// (this handle included, unlike SQLite's `data_version`, which ignores the connection's
/// own commits: a node may reload its accounts once more than needed, never once too
/// few). A statement that changed no row may move it too. Bindings do not move it.
#[derive(Clone)]
pub struct PgStore {
    pool: Arc<pool::Pool<Manager>>,
    schema_version: i32,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("pool", &self.pool.status())
            .field("schema_version", &self.schema_version)
            .finish()
    }
}

/// Refuses anything but a `postgres://` or `postgresql://` URL (the client would also
/// take `key=value` strings: one spelling in the configuration is enough). The error
/// names the scheme only, never the rest, which may hold a password.
pub(crate) fn check_url(url: &str) -> Result<(), StoreError> {
    let scheme = url.split_once("://").map(|(s, _)| s);
    match scheme {
        Some(s) if s.eq_ignore_ascii_case("postgres") || s.eq_ignore_ascii_case("postgresql") => {
            Ok(())
        }
        Some(s) => Err(StoreError::Url(format!(
            "the scheme is {s}://; PostgreSQL URLs start with postgres:// or postgresql:// (leave url out for SQLite under data_dir)"
        ))),
        None => Err(StoreError::Url(
            "not a URL; write postgres://USER@HOST:PORT/DATABASE (leave url out for SQLite under data_dir)"
                .into(),
        )),
    }
}

impl PgStore {
    /// Connects to the database of `url` (`postgres://user[:password]@host[:port]/db`,
    /// with libpq's parameters after `?`), with at most `max_connections` connections
    /// and checkouts that wait at most `checkout_timeout`; applies the migrations the
    /// database lacks.
    pub fn open(
        url: &str,
        max_connections: u32,
        checkout_timeout: Duration,
    ) -> Result<Self, StoreError> {
        check_url(url)?;
        if max_connections == 0 {
            return Err(StoreError::Config(
                "[store] max_connections must be at least 1".into(),
            ));
        }
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e: postgres::Error| StoreError::Url(crate::causes(&e)))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("palisade");
        }
        let max = usize::try_from(max_connections).unwrap_or(usize::MAX);
        let pool = pool::Pool::new(Manager { config }, max, checkout_timeout);
        let schema_version = pool.with(|c| migrations::migrate(&mut c.client))?;
        Ok(PgStore {
            pool: Arc::new(pool),
            schema_version,
        })
    }

    /// The schema's version: the highest migration applied to the database.
    pub fn schema_version(&self) -> i32 {
        self.schema_version
    }

    /// The highest migration this build knows.
    pub fn latest_schema_version() -> i32 {
        migrations::MIGRATIONS.last().map_or(0, |m| m.version)
    }

    /// The pool's connections at this moment.
    pub fn pool_status(&self) -> PoolStatus {
        self.pool.status()
    }

    /// Runs `f` on a connection of the pool (for what the [`Storage`] interface does not
    /// cover yet, such as a change feed, and for tests). The connection goes back to the
    /// pool afterwards: leave no transaction open and no session setting changed.
    pub fn with_connection<T>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.pool.with(|c| f(&mut c.client))
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut PgConn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.pool.with(f)
    }
}

const ADD_USER: &str =
    "INSERT INTO users (name, domain, ha1_md5, ha1_sha256) VALUES ($1, $2, $3, $4)
     ON CONFLICT (domain, name) DO NOTHING";
const IMPORT_USER: &str = "INSERT INTO users (name, domain, ha1_md5, ha1_sha256, created)
     VALUES ($1, $2, $3, $4, COALESCE(NULLIF($5::BIGINT, 0), floor(extract(epoch FROM now()))::BIGINT))
     ON CONFLICT (domain, name) DO NOTHING";
const REMOVE_USER: &str = "DELETE FROM users WHERE name = $1 AND domain = $2";
const LIST_USERS: &str = "SELECT name, domain, ha1_md5, ha1_sha256, created FROM users
     WHERE $1::TEXT IS NULL OR domain = $1 ORDER BY domain, name";
const VERSION: &str = "SELECT version FROM store_version";
const SAVE_BINDING: &str = "INSERT INTO bindings (aor, contact, expires, q, call_id, cseq, path, transport, source, user_agent, node, flow)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
     ON CONFLICT (aor, contact) DO UPDATE SET expires = EXCLUDED.expires, q = EXCLUDED.q,
       call_id = EXCLUDED.call_id, cseq = EXCLUDED.cseq, path = EXCLUDED.path,
       transport = EXCLUDED.transport, source = EXCLUDED.source, user_agent = EXCLUDED.user_agent,
       node = EXCLUDED.node, flow = EXCLUDED.flow";
const REMOVE_BINDING: &str = "DELETE FROM bindings WHERE aor = $1 AND contact = $2 AND node = $3";
pub(crate) const BINDING_COLUMNS: &str =
    "aor, contact, expires, q, call_id, cseq, path, transport, source, user_agent, node, flow";
const LOAD_BINDINGS: &str =
    "SELECT aor, contact, expires, q, call_id, cseq, path, transport, source, user_agent, node, flow
     FROM bindings WHERE expires > $1 ORDER BY aor, contact";
// One round trip each; the user's row is share-locked so that it cannot go between the
// check and the insert (the foreign key would refuse the insert then).
const PROTECT: &str =
    "WITH u AS (SELECT name, domain FROM users WHERE name = $1 AND domain = $2 FOR KEY SHARE),
       i AS (INSERT INTO protected (name, domain) SELECT name, domain FROM u ON CONFLICT DO NOTHING)
     SELECT EXISTS (SELECT 1 FROM u)";
const UNPROTECT: &str = "WITH d AS (DELETE FROM protected WHERE name = $1 AND domain = $2)
     SELECT EXISTS (SELECT 1 FROM users WHERE name = $1 AND domain = $2)";
const ALLOW: &str = "WITH u AS (SELECT name, domain FROM users WHERE name = $1 AND domain = $2 FOR KEY SHARE),
       i AS (INSERT INTO allowed_callers (name, domain, caller) SELECT name, domain, $3 FROM u ON CONFLICT DO NOTHING)
     SELECT EXISTS (SELECT 1 FROM u)";
const DISALLOW: &str =
    "DELETE FROM allowed_callers WHERE name = $1 AND domain = $2 AND caller = $3";
const PROTECTIONS: &str = "SELECT p.name, p.domain,
       COALESCE(array_agg(a.caller ORDER BY a.caller) FILTER (WHERE a.caller IS NOT NULL), '{}')
     FROM protected p
     LEFT JOIN allowed_callers a ON a.name = p.name AND a.domain = p.domain
     WHERE $1::TEXT IS NULL OR p.domain = $1
     GROUP BY p.domain, p.name ORDER BY p.domain, p.name";

fn user_exists(u: &UserRow) -> StoreError {
    StoreError::UserExists(format!("{}@{}", u.name, u.domain))
}

fn user_of(r: &Row) -> Result<UserRow, StoreError> {
    Ok(UserRow {
        name: r.try_get(0)?,
        domain: r.try_get(1)?,
        ha1_md5: r.try_get(2)?,
        ha1_sha256: r.try_get(3)?,
        created: r.try_get(4)?,
    })
}

pub(crate) fn binding_of(r: &Row) -> Result<BindingRow, StoreError> {
    let q: i32 = r.try_get(3)?;
    let cseq: i64 = r.try_get(5)?;
    Ok(BindingRow {
        aor: r.try_get(0)?,
        contact: r.try_get(1)?,
        expires: r.try_get(2)?,
        q: u16::try_from(q).map_err(|_| StoreError::Value {
            column: "bindings.q",
            value: i64::from(q),
        })?,
        call_id: r.try_get(4)?,
        cseq: u32::try_from(cseq).map_err(|_| StoreError::Value {
            column: "bindings.cseq",
            value: cseq,
        })?,
        path: r.try_get(6)?,
        transport: r.try_get(7)?,
        source: r.try_get(8)?,
        user_agent: r.try_get(9)?,
        node: r.try_get(10)?,
        flow: r.try_get(11)?,
    })
}

impl Storage for PgStore {
    fn add_user(&mut self, u: &UserRow) -> Result<(), StoreError> {
        self.with(|c| {
            let st = c.prepare(ADD_USER)?;
            let n = c
                .client
                .execute(&st, &[&u.name, &u.domain, &u.ha1_md5, &u.ha1_sha256])?;
            if n == 0 {
                return Err(user_exists(u));
            }
            Ok(())
        })
    }

    fn remove_user(&mut self, name: &str, domain: &str) -> Result<bool, StoreError> {
        // the user's protection and allow-list go with it (ON DELETE CASCADE)
        self.with(|c| {
            let st = c.prepare(REMOVE_USER)?;
            Ok(c.client.execute(&st, &[&name, &domain])? > 0)
        })
    }

    fn list_users(&self, domain: Option<&str>) -> Result<Vec<UserRow>, StoreError> {
        self.with(|c| {
            let st = c.prepare(LIST_USERS)?;
            c.client
                .query(&st, &[&domain])?
                .iter()
                .map(user_of)
                .collect()
        })
    }

    fn import_users(&mut self, rows: &[UserRow]) -> Result<usize, StoreError> {
        self.with(|c| {
            let st = c.prepare(IMPORT_USER)?;
            let mut tx = c.client.transaction()?;
            for u in rows {
                let n = tx.execute(
                    &st,
                    &[&u.name, &u.domain, &u.ha1_md5, &u.ha1_sha256, &u.created],
                )?;
                if n == 0 {
                    // dropping the transaction rolls every row back
                    return Err(user_exists(u));
                }
            }
            tx.commit()?;
            Ok(rows.len())
        })
    }

    fn version(&self) -> Result<i64, StoreError> {
        self.with(|c| {
            let st = c.prepare(VERSION)?;
            Ok(c.client.query_one(&st, &[])?.try_get(0)?)
        })
    }

    fn apply_bindings(&mut self, ops: &[BindingOp]) -> Result<(), StoreError> {
        self.with(|c| {
            let save = c.prepare(SAVE_BINDING)?;
            let remove = c.prepare(REMOVE_BINDING)?;
            let mut tx = c.client.transaction()?;
            for op in ops {
                match op {
                    BindingOp::Save(b) => {
                        tx.execute(
                            &save,
                            &[
                                &b.aor,
                                &b.contact,
                                &b.expires,
                                &i32::from(b.q),
                                &b.call_id,
                                &i64::from(b.cseq),
                                &b.path,
                                &b.transport,
                                &b.source,
                                &b.user_agent,
                                &b.node,
                                &b.flow,
                            ],
                        )?;
                    }
                    BindingOp::Remove { aor, contact, node } => {
                        tx.execute(&remove, &[aor, contact, node])?;
                    }
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn load_bindings(&self, now_unix: i64) -> Result<Vec<BindingRow>, StoreError> {
        self.with(|c| {
            let st = c.prepare(LOAD_BINDINGS)?;
            c.client
                .query(&st, &[&now_unix])?
                .iter()
                .map(binding_of)
                .collect()
        })
    }

    fn set_protected(&mut self, name: &str, domain: &str, on: bool) -> Result<bool, StoreError> {
        self.with(|c| {
            let st = c.prepare(if on { PROTECT } else { UNPROTECT })?;
            Ok(c.client.query_one(&st, &[&name, &domain])?.try_get(0)?)
        })
    }

    fn set_allowed(
        &mut self,
        name: &str,
        domain: &str,
        caller: &str,
        allow: bool,
    ) -> Result<bool, StoreError> {
        self.with(|c| {
            if allow {
                let st = c.prepare(ALLOW)?;
                Ok(c.client
                    .query_one(&st, &[&name, &domain, &caller])?
                    .try_get(0)?)
            } else {
                let st = c.prepare(DISALLOW)?;
                Ok(c.client.execute(&st, &[&name, &domain, &caller])? > 0)
            }
        })
    }

    fn account_ages(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.pg_account_ages()
    }

    fn protections(&self, domain: Option<&str>) -> Result<Vec<Protection>, StoreError> {
        self.with(|c| {
            let st = c.prepare(PROTECTIONS)?;
            c.client
                .query(&st, &[&domain])?
                .iter()
                .map(|r| {
                    Ok(Protection {
                        name: r.try_get(0)?,
                        domain: r.try_get(1)?,
                        allow: r.try_get(2)?,
                    })
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_postgres_urls_are_taken_and_errors_hide_the_rest() {
        assert!(check_url("postgres://u@127.0.0.1:5432/db").is_ok());
        assert!(check_url("PostgreSQL://u@h/db").is_ok());
        let e = check_url("mysql://root:hunter2@h/db")
            .unwrap_err()
            .to_string();
        assert!(e.contains("mysql://") && e.contains("postgres://"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = check_url("host=h user=u password=hunter2").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = PgStore::open("postgres://u@h/db", 0, Duration::from_secs(1)).unwrap_err();
        assert!(e.to_string().contains("max_connections"), "{e}");
        let e = PgStore::open(
            "postgres://u:hunter2@h:notaport/db",
            1,
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(matches!(e, StoreError::Url(_)), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}
