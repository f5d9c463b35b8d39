//! Blocks and rate limits (the `restrictions` table of `records.db`) with the numbers an
//! operator names them by, and the queue of the operator's changes (`palisade block add`,
//! `palisade unblock`) that the running server applies and records in its evidence log.
//!
//! One restriction per subject (account, device or network), as the core holds them. A
//! detector's restriction keeps its number while the same finding extends it; a new
//! finding or an operator's block on the subject replaces it under a new number. The
//! detectors never replace an operator's block that is still in force.

use palisade_detect::{Restriction, Subject};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::{SqliteStore, StoreError};

/// Who imposed a restriction (`Block::by`): the detectors.
pub const BY_DETECTOR: &str = "detector";
/// Imposed by `palisade block add`.
pub const BY_OPERATOR: &str = "operator";

/// A restriction with its number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The number the operator names it by (`palisade unblock ID`); never reused.
    pub id: i64,
    /// What it applies to.
    pub subject: Subject,
    /// Until when (Unix ms).
    pub until: i64,
    /// `None`: a block; `Some(n)`: at most n calls a minute.
    pub per_minute: Option<u32>,
    /// The finding it comes from (0: the operator's).
    pub finding: u64,
    /// [`BY_DETECTOR`] or [`BY_OPERATOR`].
    pub by: String,
    /// The operator's reason (empty for a detector's: see its finding).
    pub reason: String,
    /// When it was imposed (Unix ms; 0 when unknown: made before numbers existed).
    pub created: i64,
}

impl Block {
    /// The restriction as the core and the detection thread hold it.
    pub fn restriction(&self) -> Restriction {
        Restriction {
            subject: self.subject.clone(),
            until: self.until,
            per_minute: self.per_minute,
            finding: self.finding,
        }
    }
}

/// An operator's change, queued for the running server (or the next one to start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockChange {
    /// Its place in the queue.
    pub seq: i64,
    /// When the operator made it (Unix ms).
    pub at: i64,
    /// `block` or `unblock`.
    pub action: String,
    /// The block added or lifted.
    pub block: Block,
}

/// What `palisade unblock ID` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lifted {
    /// Lifted (and queued for the server).
    Lifted(Block),
    /// No restriction has this number (or it was lifted before).
    Unknown,
    /// It had already ended at its `until`.
    Ended(Block),
}

const COLUMNS: &str = "id, subject_kind, subject, until, per_minute, finding, by, reason, created";

fn block_of(r: &Row<'_>) -> rusqlite::Result<Option<Block>> {
    let (k, v): (String, String) = (r.get(1)?, r.get(2)?);
    let Some(subject) = Subject::parse(&k, &v) else {
        return Ok(None);
    };
    Ok(Some(Block {
        id: r.get(0)?,
        subject,
        until: r.get(3)?,
        per_minute: r.get(4)?,
        finding: r.get::<_, i64>(5)?.max(0) as u64,
        by: r.get(6)?,
        reason: r.get(7)?,
        created: r.get(8)?,
    }))
}

/// The table of restrictions (numbered) and the queue of changes. A `restrictions` table
/// of before numbers (keyed by subject alone) is carried over, rows numbered in the
/// order they were written, under an exclusive lock (a server and a command opening the
/// file at once migrate it once).
pub(crate) fn schema(conn: &Connection) -> Result<(), StoreError> {
    const TABLES: &str = "CREATE TABLE IF NOT EXISTS restrictions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            subject_kind TEXT NOT NULL, subject TEXT NOT NULL, until INTEGER NOT NULL,
            per_minute INTEGER, finding INTEGER NOT NULL,
            by TEXT NOT NULL DEFAULT 'detector', reason TEXT NOT NULL DEFAULT '',
            created INTEGER NOT NULL DEFAULT 0,
            UNIQUE (subject_kind, subject));
         CREATE TABLE IF NOT EXISTS block_changes (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL,
            action TEXT NOT NULL, block INTEGER NOT NULL,
            subject_kind TEXT NOT NULL, subject TEXT NOT NULL, until INTEGER NOT NULL,
            per_minute INTEGER, finding INTEGER NOT NULL, by TEXT NOT NULL,
            reason TEXT NOT NULL, created INTEGER NOT NULL,
            recorded INTEGER);
         CREATE INDEX IF NOT EXISTS block_changes_pending ON block_changes (recorded);";
    let numbered = |c: &Connection| -> Result<Option<bool>, StoreError> {
        let mut st = c.prepare("SELECT name FROM pragma_table_info('restrictions')")?;
        let cols: Vec<String> = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        Ok((!cols.is_empty()).then(|| cols.iter().any(|c| c == "id")))
    };
    if numbered(conn)? != Some(false) {
        conn.execute_batch(TABLES)?;
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let migrated = (|| -> Result<(), StoreError> {
        if numbered(conn)? == Some(false) {
            conn.execute_batch(&format!(
                "ALTER TABLE restrictions RENAME TO restrictions_unnumbered;
                 {TABLES}
                 INSERT INTO restrictions (subject_kind, subject, until, per_minute, finding)
                    SELECT subject_kind, subject, until, per_minute, finding
                    FROM restrictions_unnumbered ORDER BY rowid;
                 DROP TABLE restrictions_unnumbered;"
            ))?;
        } else {
            conn.execute_batch(TABLES)?;
        }
        Ok(())
    })();
    match migrated {
        Ok(()) => conn.execute_batch("COMMIT")?,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
    }
    Ok(())
}

/// Writes a detector's restriction (inside the detection thread's transaction): the
/// same finding extends its row (same number); otherwise the subject's earlier row goes
/// unless it is an operator's block still in force, in which case this one is dropped.
pub(crate) fn save_detected(
    conn: &Connection,
    r: &Restriction,
    now: i64,
) -> Result<(), StoreError> {
    let (kind, value) = (r.subject.kind(), r.subject.value());
    let finding = r.finding as i64;
    let extended = conn
        .prepare_cached(
            "UPDATE restrictions SET until = ?3, per_minute = ?4
             WHERE subject_kind = ?1 AND subject = ?2 AND by = 'detector' AND finding = ?5",
        )?
        .execute(params![kind, value, r.until, r.per_minute, finding])?;
    if extended > 0 {
        return Ok(());
    }
    conn.prepare_cached(
        "DELETE FROM restrictions WHERE subject_kind = ?1 AND subject = ?2
         AND (by <> 'operator' OR until <= ?3)",
    )?
    .execute(params![kind, value, now])?;
    conn.prepare_cached(
        "INSERT OR IGNORE INTO restrictions (subject_kind, subject, until, per_minute, finding, by, created)
         VALUES (?1, ?2, ?3, ?4, ?5, 'detector', ?6)",
    )?
    .execute(params![kind, value, r.until, r.per_minute, finding, now])?;
    Ok(())
}

/// Unix time in milliseconds (0 if the clock is before 1970).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn queue(conn: &Connection, at: i64, action: &str, b: &Block) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO block_changes (at, action, block, subject_kind, subject, until, per_minute, finding, by, reason, created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            at,
            action,
            b.id,
            b.subject.kind(),
            b.subject.value(),
            b.until,
            b.per_minute,
            b.finding as i64,
            b.by,
            b.reason,
            b.created
        ],
    )?;
    Ok(())
}

impl SqliteStore {
    /// Restrictions in force at `now` (Unix ms), by number.
    pub fn blocks(&self, now: i64) -> Result<Vec<Block>, StoreError> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM restrictions WHERE until > ?1 ORDER BY id"
        ))?;
        let rows = st.query_map(params![now], block_of)?;
        Ok(rows
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect())
    }

    /// One restriction by number, in force or not.
    pub fn block(&self, id: i64) -> Result<Option<Block>, StoreError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM restrictions WHERE id = ?1"),
                params![id],
                block_of,
            )
            .optional()?
            .flatten())
    }

    /// The operator blocks `subject` until `until` (Unix ms) for `reason`: the subject's
    /// restriction (if any) is replaced, the change queued for the server. Returns the
    /// new block and the one it replaced, if that was in force.
    pub fn add_block(
        &mut self,
        subject: &Subject,
        until: i64,
        reason: &str,
        now: i64,
    ) -> Result<(Block, Option<Block>), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let (kind, value) = (subject.kind(), subject.value());
        let old = tx
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM restrictions WHERE subject_kind = ?1 AND subject = ?2"
                ),
                params![kind, value],
                block_of,
            )
            .optional()?
            .flatten()
            .filter(|b| b.until > now);
        tx.execute(
            "DELETE FROM restrictions WHERE subject_kind = ?1 AND subject = ?2",
            params![kind, value],
        )?;
        tx.execute(
            "INSERT INTO restrictions (subject_kind, subject, until, per_minute, finding, by, reason, created)
             VALUES (?1, ?2, ?3, NULL, 0, 'operator', ?4, ?5)",
            params![kind, value, until, reason, now],
        )?;
        let block = Block {
            id: tx.last_insert_rowid(),
            subject: subject.clone(),
            until,
            per_minute: None,
            finding: 0,
            by: BY_OPERATOR.into(),
            reason: reason.into(),
            created: now,
        };
        queue(&tx, now, "block", &block)?;
        tx.commit()?;
        Ok((block, old))
    }

    /// The operator lifts restriction `id` (a detector's or an operator's); the change is
    /// queued for the server. Nothing changes unless it is in force.
    pub fn lift_block(&mut self, id: i64, now: i64) -> Result<Lifted, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let Some(b) = tx
            .query_row(
                &format!("SELECT {COLUMNS} FROM restrictions WHERE id = ?1"),
                params![id],
                block_of,
            )
            .optional()?
            .flatten()
        else {
            return Ok(Lifted::Unknown);
        };
        if b.until <= now {
            return Ok(Lifted::Ended(b));
        }
        tx.execute("DELETE FROM restrictions WHERE id = ?1", params![id])?;
        queue(&tx, now, "unblock", &b)?;
        tx.commit()?;
        Ok(Lifted::Lifted(b))
    }

    /// The operator's changes the server has not recorded yet, oldest first.
    pub fn pending_block_changes(&self) -> Result<Vec<BlockChange>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT block, subject_kind, subject, until, per_minute, finding, by, reason, created, seq, at, action
             FROM block_changes WHERE recorded IS NULL ORDER BY seq",
        )?;
        let rows = st.query_map([], |r| {
            Ok(block_of(r)?.map(|block| BlockChange {
                seq: r.get(9).unwrap_or(0),
                at: r.get(10).unwrap_or(0),
                action: r.get(11).unwrap_or_default(),
                block,
            }))
        })?;
        Ok(rows
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect())
    }

    /// Marks a change recorded by the server (at `at`, Unix ms).
    pub fn block_change_recorded(&mut self, seq: i64, at: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE block_changes SET recorded = ?2 WHERE seq = ?1",
            params![seq, at],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_detect::{Network, Output};

    fn dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("palisade-blocks-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn detected(subject: Subject, until: i64, finding: u64) -> Output {
        Output::Restrict(Restriction {
            subject,
            until,
            per_minute: None,
            finding,
        })
    }

    #[test]
    fn an_unnumbered_table_is_carried_over() {
        let d = dir("migrate");
        std::fs::create_dir_all(&d).unwrap();
        {
            let c = Connection::open(d.join("records.db")).unwrap();
            c.execute_batch(
                "CREATE TABLE restrictions (
                    subject_kind TEXT NOT NULL, subject TEXT NOT NULL, until INTEGER NOT NULL,
                    per_minute INTEGER, finding INTEGER NOT NULL,
                    PRIMARY KEY (subject_kind, subject));
                 INSERT INTO restrictions VALUES ('account', 'mallory', 9000, NULL, 3);
                 INSERT INTO restrictions VALUES ('network', '192.0.2.0/24', 8000, 5, 4);",
            )
            .unwrap();
        }
        let s = SqliteStore::open_records(&d).unwrap();
        let b = s.blocks(0).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(
            (b[0].id, b[0].subject.value(), b[0].until),
            (1, "mallory".into(), 9000)
        );
        assert_eq!((b[1].id, b[1].per_minute, b[1].finding), (2, Some(5), 4));
        assert_eq!(b[0].by, BY_DETECTOR);
        assert_eq!(s.restrictions(0).unwrap().len(), 2);
        drop(s);
        // opened again: nothing to do, nothing lost
        let s = SqliteStore::open_records(&d).unwrap();
        assert_eq!(s.blocks(0).unwrap(), b);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn operator_blocks_have_numbers_and_queue_their_changes() {
        let d = dir("operator");
        let mut s = SqliteStore::open_records(&d).unwrap();
        let t = now_ms();
        let (min, hour) = (60_000, 3_600_000);
        let mallory = Subject::Account("mallory".into());
        let net = Subject::Network(Network::parse("192.0.2.0/24").unwrap());
        s.apply_outputs(&[detected(mallory.clone(), t + min, 7)])
            .unwrap();
        let first = s.blocks(t).unwrap();
        assert_eq!(first.len(), 1);
        // the same finding extends its row: same number
        s.apply_outputs(&[detected(mallory.clone(), t + 2 * min, 7)])
            .unwrap();
        assert_eq!(s.blocks(t).unwrap()[0].id, first[0].id);
        assert_eq!(s.blocks(t).unwrap()[0].until, t + 2 * min);
        // the operator's block replaces it
        let (b, old) = s.add_block(&mallory, t + hour, "fraud desk", t).unwrap();
        assert_eq!(old.map(|o| o.id), Some(first[0].id));
        assert!(b.id > first[0].id);
        assert_eq!(
            (b.by.as_str(), b.reason.as_str()),
            (BY_OPERATOR, "fraud desk")
        );
        // a detector does not replace it while it is in force
        s.apply_outputs(&[detected(mallory.clone(), t + 2 * hour, 8)])
            .unwrap();
        assert_eq!(s.blocks(t).unwrap(), vec![b.clone()]);
        assert_eq!(s.restrictions(t).unwrap(), vec![b.restriction()]);
        let (n, _) = s.add_block(&net, t + min, "scanner", t).unwrap();
        assert_eq!(s.block(n.id).unwrap(), Some(n.clone()));
        // lifting
        assert_eq!(s.lift_block(n.id + 100, t).unwrap(), Lifted::Unknown);
        assert_eq!(
            s.lift_block(n.id, t + min).unwrap(),
            Lifted::Ended(n.clone())
        );
        assert_eq!(s.lift_block(n.id, t).unwrap(), Lifted::Lifted(n.clone()));
        assert_eq!(s.lift_block(n.id, t).unwrap(), Lifted::Unknown);
        // the queue: two blocks and one lift, in order, until recorded
        let q = s.pending_block_changes().unwrap();
        assert_eq!(
            q.iter()
                .map(|c| (c.action.as_str(), c.block.id))
                .collect::<Vec<_>>(),
            [("block", b.id), ("block", n.id), ("unblock", n.id)]
        );
        assert_eq!(q[0].block, b);
        for c in &q {
            s.block_change_recorded(c.seq, t).unwrap();
        }
        assert!(s.pending_block_changes().unwrap().is_empty());
        // once the operator's block has ended (or was lifted), a detector may restrict
        // the subject again, under a new number
        assert!(matches!(s.lift_block(b.id, t).unwrap(), Lifted::Lifted(_)));
        s.apply_outputs(&[detected(mallory.clone(), t + hour, 9)])
            .unwrap();
        let now = s.blocks(t).unwrap();
        assert_eq!(now.len(), 1);
        assert!(now[0].id > n.id, "numbers are never reused");
        assert_eq!(now[0].by, BY_DETECTOR);
        let _ = std::fs::remove_dir_all(&d);
    }
}
