//! What nodes of a cluster share beyond accounts and records: the `nodes` table (each
//! node's heartbeat, SIP address and load), the bindings of one node as the others read
//! them, and a [`Listener`] for the change notifications of migration 3.

use std::collections::BTreeSet;
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator as _;
use postgres::Client;

use super::{binding_of, pool::Manage as _, PgStore, BINDING_COLUMNS};
use crate::{BindingRow, StoreError};

/// One node as the `nodes` table has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRow {
    /// `[cluster] node`.
    pub name: String,
    /// The SIP address other nodes route through (`udp:HOST:PORT`).
    pub sip: String,
    /// When it started, milliseconds since the epoch (the database's clock).
    pub started_ms: i64,
    /// Milliseconds since its last heartbeat (the database's clock).
    pub age_ms: i64,
    /// Its process id on its machine.
    pub pid: i64,
    /// Its version.
    pub version: String,
    /// Its admin listener (`HOST:PORT`, empty for none): its evidence log's tiles.
    pub admin: String,
    /// The verifier key of its evidence log (empty when evidence is off).
    pub evidence_key: String,
    /// What it said about its load at the last heartbeat (a JSON object).
    pub load: String,
    /// Bindings held through it (not expired).
    pub bindings: i64,
}

/// What a node says of itself when it joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeJoin<'a> {
    /// `[cluster] node`.
    pub name: &'a str,
    /// Its SIP address for the other nodes (`HOST:PORT`, UDP; empty for none).
    pub sip: &'a str,
    /// Its admin listener (`HOST:PORT`; empty for none).
    pub admin: &'a str,
    /// Its evidence log's verifier key (empty when evidence is off).
    pub evidence_key: &'a str,
    /// Its version.
    pub version: &'a str,
}

/// A change another node (or the CLI) made, as a notification announces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterChange {
    /// The binding of this address of record and contact changed (read it again).
    Binding {
        /// The address of record.
        aor: String,
        /// The Contact URI.
        contact: String,
    },
    /// Accounts, protections, allow-lists or restrictions changed.
    Settings,
    /// Notifications may have been lost (the connection was new or came back): read
    /// everything again.
    Resync,
}

const NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::BIGINT";

impl PgStore {
    /// Records this node (or refreshes it, after a restart under the same name) with a
    /// fresh heartbeat.
    pub fn join(&self, node: &NodeJoin<'_>) -> Result<(), StoreError> {
        let pid = i64::from(std::process::id());
        let sql = format!(
            "INSERT INTO nodes (name, sip, started, heartbeat, pid, version, admin, evidence_key)
             VALUES ($1, $2, {NOW_MS}, {NOW_MS}, $3, $4, $5, $6)
             ON CONFLICT (name) DO UPDATE SET sip = EXCLUDED.sip, started = EXCLUDED.started,
               heartbeat = EXCLUDED.heartbeat, pid = EXCLUDED.pid, version = EXCLUDED.version,
               admin = EXCLUDED.admin, evidence_key = EXCLUDED.evidence_key"
        );
        self.with(|c| {
            c.client.execute(
                &sql,
                &[
                    &node.name,
                    &node.sip,
                    &pid,
                    &node.version,
                    &node.admin,
                    &node.evidence_key,
                ],
            )?;
            Ok(())
        })
    }

    /// This node's heartbeat, with its load (a JSON object); `false` when its row is
    /// gone (removed by an operator): [`PgStore::join`] again.
    pub fn heartbeat(&self, name: &str, load: &str) -> Result<bool, StoreError> {
        let sql = format!("UPDATE nodes SET heartbeat = {NOW_MS}, load = $2 WHERE name = $1");
        self.with(|c| Ok(c.client.execute(&sql, &[&name, &load])? == 1))
    }

    /// Every node, by name.
    pub fn nodes(&self, now_unix: i64) -> Result<Vec<NodeRow>, StoreError> {
        let sql = format!(
            "SELECT n.name, n.sip, n.started, {NOW_MS} - n.heartbeat, n.pid, n.version, n.load,
                    n.admin, n.evidence_key,
                    (SELECT COUNT(*) FROM bindings b WHERE b.node = n.name AND b.expires > $1)
             FROM nodes n ORDER BY n.name"
        );
        self.with(|c| {
            let mut out = Vec::new();
            for r in c.client.query(&sql, &[&now_unix])? {
                out.push(NodeRow {
                    name: r.try_get(0)?,
                    sip: r.try_get(1)?,
                    started_ms: r.try_get(2)?,
                    age_ms: r.try_get(3)?,
                    pid: r.try_get(4)?,
                    version: r.try_get(5)?,
                    load: r.try_get(6)?,
                    admin: r.try_get(7)?,
                    evidence_key: r.try_get(8)?,
                    bindings: r.try_get(9)?,
                });
            }
            Ok(out)
        })
    }

    /// The current rows of these bindings (those deleted or expired are absent).
    pub fn bindings_named(
        &self,
        keys: &[(String, String)],
        now_unix: i64,
    ) -> Result<Vec<BindingRow>, StoreError> {
        if keys.is_empty() {
            return Ok(vec![]);
        }
        let aors: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
        let contacts: Vec<&str> = keys.iter().map(|k| k.1.as_str()).collect();
        let sql = format!(
            "SELECT {BINDING_COLUMNS} FROM bindings
             WHERE (aor, contact) IN (SELECT * FROM unnest($1::TEXT[], $2::TEXT[]))
               AND expires > $3"
        );
        self.with(|c| {
            c.client
                .query(&sql, &[&aors, &contacts, &now_unix])?
                .iter()
                .map(binding_of)
                .collect()
        })
    }

    /// A connection of its own (outside the pool) that listens for the cluster's change
    /// notifications.
    pub fn listener(&self) -> Result<Listener, StoreError> {
        let mut client = self.pool.manager().connect()?.client;
        let schema: String = client
            .query_one("SELECT current_schema()", &[])?
            .try_get(0)?;
        for what in ["bindings", "settings"] {
            let channel = format!("palisade_{what}_{schema}").replace('"', "");
            client.batch_execute(&format!("LISTEN \"{channel}\""))?;
        }
        Ok(Listener {
            client,
            fresh: true,
        })
    }
}

impl PgStore {
    /// Queues observations (JSON) of this node for the detector's node.
    pub fn ship_observations(&self, node: &str, bodies: &[String]) -> Result<(), StoreError> {
        if bodies.is_empty() {
            return Ok(());
        }
        self.with(|c| {
            c.client.execute(
                "INSERT INTO observations (node, body) SELECT $1, b FROM unnest($2::TEXT[]) AS b",
                &[&node, &bodies],
            )?;
            Ok(())
        })
    }

    /// Takes (and deletes) at most `limit` queued observations, oldest first: (node,
    /// JSON). Several takers never get the same one.
    pub fn take_observations(&self, limit: i64) -> Result<Vec<(String, String)>, StoreError> {
        self.with(|c| {
            let rows = c.client.query(
                "DELETE FROM observations WHERE id IN
                   (SELECT id FROM observations ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
                 RETURNING id, node, body",
                &[&limit],
            )?;
            let mut out: Vec<(i64, String, String)> = Vec::with_capacity(rows.len());
            for r in rows {
                out.push((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?));
            }
            out.sort_by_key(|o| o.0);
            Ok(out.into_iter().map(|(_, n, b)| (n, b)).collect())
        })
    }

    /// The detector's lock, when no other node holds it: a connection of its own that
    /// holds it for as long as it lives (a node that dies, or loses its connection,
    /// releases it, and another takes it over).
    pub fn lead(&self) -> Result<Option<Leadership>, StoreError> {
        let mut client = self.pool.manager().connect()?.client;
        // one lock per schema: clusters that share a database in different schemas
        // each have their detector
        let got: bool = client
            .query_one(
                "SELECT pg_try_advisory_lock(hashtext('palisade detector'), hashtext(current_schema()))",
                &[],
            )?
            .try_get(0)?;
        Ok(got.then_some(Leadership { client }))
    }
}

/// The detector's advisory lock, held by this connection.
pub struct Leadership {
    client: Client,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership").finish_non_exhaustive()
    }
}

impl Leadership {
    /// Whether the lock is still held (its connection answers within `timeout`).
    pub fn held(&mut self, timeout: Duration) -> bool {
        !self.client.is_closed() && self.client.is_valid(timeout).is_ok()
    }
}

/// A dedicated connection that has run `LISTEN` on the cluster's channels.
pub struct Listener {
    client: Client,
    fresh: bool,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener").finish_non_exhaustive()
    }
}

impl Listener {
    /// The changes announced within `wait` (at once when some are pending), merged: a
    /// binding changed twice is named once. The first call says [`ClusterChange::Resync`]
    /// (whatever changed before the `LISTEN` was not announced). An error means the
    /// connection is gone: open another listener, which resyncs.
    pub fn wait(&mut self, wait: Duration) -> Result<Vec<ClusterChange>, StoreError> {
        let mut out = Vec::new();
        if std::mem::take(&mut self.fresh) {
            out.push(ClusterChange::Resync);
        }
        let mut seen = BTreeSet::new();
        let mut settings = false;
        let mut n = self.client.notifications();
        let mut first = if out.is_empty() {
            n.timeout_iter(wait).next()?
        } else {
            None
        };
        loop {
            let note = match first.take() {
                Some(x) => x,
                None => match n.iter().next()? {
                    Some(x) => x,
                    None => break,
                },
            };
            if note.channel().starts_with("palisade_settings_") {
                settings = true;
                continue;
            }
            let parsed: Option<(String, String)> = serde_json::from_str(note.payload()).ok();
            if let Some(key) = parsed {
                if seen.insert(key.clone()) {
                    out.push(ClusterChange::Binding {
                        aor: key.0,
                        contact: key.1,
                    });
                }
            }
            if seen.len() >= 10_000 {
                break;
            }
        }
        if settings {
            out.push(ClusterChange::Settings);
        }
        drop(n);
        if self.client.is_closed() {
            return Err(StoreError::Config(
                "the listening connection to PostgreSQL closed".into(),
            ));
        }
        Ok(out)
    }
}
