//! Call and registration records, findings, restrictions and notifications: what the
//! campaign detectors write (from the server's detection thread, in batches) and what
//! the reports read (from the CLI, while the server runs or after it stopped).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use palisade_detect::{
    ActionKind, CallRecord, Evidence, Finding, FindingKind, Output, RegistrationRecord,
    Restriction, Subject,
};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::record_log::RecordLog;
pub(crate) use crate::text::{evidence_json, evidence_of, names_json};
use crate::{SqliteStore, StoreError};

pub(crate) fn schema(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS calls (
            id INTEGER PRIMARY KEY, call_id TEXT NOT NULL, caller TEXT NOT NULL,
            callee TEXT NOT NULL, source TEXT NOT NULL, transport TEXT NOT NULL,
            user_agent TEXT NOT NULL, fingerprint TEXT NOT NULL, sdp TEXT NOT NULL,
            invite_at INTEGER NOT NULL, ringing_at INTEGER, answered_at INTEGER,
            final_at INTEGER, ended_at INTEGER, status INTEGER,
            blocked INTEGER NOT NULL, outcome TEXT NOT NULL);
         CREATE INDEX IF NOT EXISTS calls_at ON calls (invite_at);
         CREATE INDEX IF NOT EXISTS calls_caller ON calls (caller, invite_at);
         DROP INDEX IF EXISTS calls_callee;
         CREATE TABLE IF NOT EXISTS registrations (
            id INTEGER PRIMARY KEY, at INTEGER NOT NULL, account TEXT NOT NULL,
            source TEXT NOT NULL, transport TEXT NOT NULL, user_agent TEXT NOT NULL,
            fingerprint TEXT NOT NULL, first_seen INTEGER NOT NULL);
         CREATE INDEX IF NOT EXISTS registrations_at ON registrations (at);
         CREATE INDEX IF NOT EXISTS registrations_account ON registrations (account);
         CREATE TABLE IF NOT EXISTS findings (
            id INTEGER PRIMARY KEY, kind TEXT NOT NULL, subject_kind TEXT NOT NULL,
            subject TEXT NOT NULL, score REAL NOT NULL, first_seen INTEGER NOT NULL,
            detected_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
            action TEXT NOT NULL, accounts TEXT NOT NULL, records TEXT NOT NULL,
            summary TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS notifications (
            user TEXT NOT NULL, channel TEXT NOT NULL, state TEXT NOT NULL,
            created INTEGER NOT NULL, done_at INTEGER, detail TEXT NOT NULL,
            PRIMARY KEY (user, channel));",
    )?;
    // Added later: whether a record is a call or a text (MESSAGE).
    let has_kind: bool = conn
        .prepare("SELECT 1 FROM pragma_table_info('calls') WHERE name = 'kind'")?
        .exists([])?;
    if !has_kind {
        conn.execute_batch("ALTER TABLE calls ADD COLUMN kind TEXT NOT NULL DEFAULT 'call'")?;
    }
    Ok(())
}

/// A fingerprint as 16 hex digits (big-endian: `format!("{v:016x}")`).
pub(crate) fn hex(v: u64) -> String {
    crate::text::hex16(v)
}

pub(crate) fn unhex(s: &str) -> u64 {
    u64::from_str_radix(s, 16).unwrap_or(0)
}

pub(crate) fn static_transport(s: &str) -> &'static str {
    match s {
        "tcp" => "tcp",
        "tls" => "tls",
        _ => "udp",
    }
}

pub(crate) fn addr(s: &str) -> SocketAddr {
    s.parse()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
}

fn call_of(r: &Row<'_>) -> rusqlite::Result<CallRecord> {
    let transport: String = r.get(5)?;
    let source: String = r.get(4)?;
    let fp: String = r.get(7)?;
    let sdp: String = r.get(8)?;
    Ok(CallRecord {
        id: r.get::<_, i64>(0)? as u64,
        call_id: r.get(1)?,
        caller: r.get(2)?,
        callee: r.get(3)?,
        source: addr(&source),
        transport: static_transport(&transport),
        user_agent: r.get(6)?,
        fingerprint: unhex(&fp),
        sdp: unhex(&sdp),
        invite_at: r.get(9)?,
        ringing_at: r.get(10)?,
        answered_at: r.get(11)?,
        final_at: r.get(12)?,
        ended_at: r.get(13)?,
        status: r.get(14)?,
        blocked: r.get::<_, i64>(15)? != 0,
        message: r.get::<_, String>(16)? == "message",
    })
}

const CALL_COLUMNS: &str = "id, call_id, caller, callee, source, transport, user_agent, fingerprint, sdp, invite_at, ringing_at, answered_at, final_at, ended_at, status, blocked, kind";

fn finding_of(r: &Row<'_>) -> rusqlite::Result<Option<Finding>> {
    let kind: String = r.get(1)?;
    let sk: String = r.get(2)?;
    let sv: String = r.get(3)?;
    let action: String = r.get(8)?;
    let accounts: String = r.get(9)?;
    let records: String = r.get(10)?;
    let (Some(kind), Some(subject)) = (FindingKind::parse(&kind), Subject::parse(&sk, &sv)) else {
        return Ok(None);
    };
    Ok(Some(Finding {
        id: r.get::<_, i64>(0)? as u64,
        kind,
        subject,
        score: r.get(4)?,
        first_seen: r.get(5)?,
        detected_at: r.get(6)?,
        updated_at: r.get(7)?,
        action: ActionKind::parse_or_alert(&action),
        accounts: serde_json::from_str(&accounts).unwrap_or_default(),
        records: evidence_of(&records),
        summary: r.get(11)?,
    }))
}

const FINDING_COLUMNS: &str = "id, kind, subject_kind, subject, score, first_seen, detected_at, updated_at, action, accounts, records, summary";

/// A user who received a call attempt from an account named by a finding.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The account name (no domain).
    pub user: String,
    /// First and last such call (Unix ms).
    pub first_call: i64,
    /// Last such call.
    pub last_call: i64,
    /// How many.
    pub calls: u64,
    /// Whether any of them rang (or was answered).
    pub rang: bool,
    /// The flagged accounts that called.
    pub callers: Vec<String>,
    /// The findings naming those accounts.
    pub findings: Vec<u64>,
}

/// A notification's state for one user and channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The user.
    pub user: String,
    /// `sip` or `webhook`.
    pub channel: String,
    /// `queued`, `sent` or `failed`.
    pub state: String,
    /// What was sent, or why it failed.
    pub detail: String,
}

/// [`Records::targets`](crate::Records::targets) over any backend: `one(id, since)` is
/// call `id` if it began at or after `since`; `after(account, from, refusals, detected)`
/// the account's calls from `from` that a restriction refused (or, with `refusals`, that
/// the shield rejected until `detected`), oldest first.
pub(crate) fn targets_of(
    findings: Vec<Finding>,
    since: i64,
    mut one: impl FnMut(u64, i64) -> Result<Vec<CallRecord>, StoreError>,
    mut after: impl FnMut(&str, i64, bool, i64) -> Result<Vec<CallRecord>, StoreError>,
) -> Result<Vec<Target>, StoreError> {
    let mut by_call: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    let mut refused: Vec<(String, i64, i64, u64, bool)> = Vec::new();
    for f in findings {
        if f.action == ActionKind::Alert
            || !matches!(
                f.kind,
                FindingKind::Sweep
                    | FindingKind::Strangers
                    | FindingKind::Refusals
                    | FindingKind::MediaAbuse
            )
        {
            continue;
        }
        for e in &f.records {
            if let Evidence::Call(id) = e {
                by_call.entry(*id).or_default().insert(f.id);
            }
        }
        if let Subject::Account(a) = &f.subject {
            let refusals = f.kind == FindingKind::Refusals;
            refused.push((a.clone(), f.first_seen, f.detected_at, f.id, refusals));
        }
    }
    let mut out: BTreeMap<String, Target> = BTreeMap::new();
    let mut add = |c: CallRecord, ids: &BTreeSet<u64>| {
        let t = out.entry(c.callee.clone()).or_insert_with(|| Target {
            user: c.callee.clone(),
            first_call: c.invite_at,
            last_call: c.invite_at,
            calls: 0,
            rang: false,
            callers: Vec::new(),
            findings: Vec::new(),
        });
        t.first_call = t.first_call.min(c.invite_at);
        t.last_call = t.last_call.max(c.invite_at);
        t.calls += 1;
        t.rang |= c.ringing_at.is_some() || c.answered_at.is_some() || c.message;
        if !t.callers.contains(&c.caller) {
            t.callers.push(c.caller.clone());
        }
        for id in ids {
            if !t.findings.contains(id) {
                t.findings.push(*id);
            }
        }
    };
    for (id, ids) in &by_call {
        for c in one(*id, since)? {
            add(c, ids);
        }
    }
    for (account, first, detected, id, refusals) in refused {
        let ids = BTreeSet::from([id]);
        let from = if refusals { first } else { detected };
        for c in after(&account, from.max(since), refusals, detected)? {
            if !by_call.contains_key(&c.id) {
                add(c, &ids);
            }
        }
    }
    Ok(out.into_values().collect())
}

fn no_records() -> StoreError {
    StoreError::Config("this handle (palisade.db) keeps no records".to_string())
}

impl SqliteStore {
    fn log(&self) -> Result<&RecordLog, StoreError> {
        self.log.as_ref().ok_or_else(no_records)
    }

    fn log_mut(&mut self) -> Result<&mut RecordLog, StoreError> {
        self.log.as_mut().ok_or_else(no_records)
    }

    /// Moves the call and registration records an earlier version kept in
    /// `records.db` into the record files (appended and synced, then deleted from the
    /// tables: after a crash between the two they are appended again at the next open,
    /// and readers keep the first line of a number).
    pub(crate) fn move_old_records(&mut self) -> Result<(), StoreError> {
        let calls = {
            let mut st = self.conn.prepare(&format!(
                "SELECT {CALL_COLUMNS} FROM calls ORDER BY invite_at, id"
            ))?;
            let rows = st.query_map([], call_of)?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        let regs = self.old_registrations()?;
        if calls.is_empty() && regs.is_empty() {
            return Ok(());
        }
        let Some(log) = self.log.as_mut() else {
            return Ok(());
        };
        log.append(calls.iter(), regs.iter())?;
        log.sync()?;
        self.conn
            .execute_batch("BEGIN; DELETE FROM calls; DELETE FROM registrations; COMMIT;")?;
        tracing::info!(
            calls = calls.len(),
            registrations = regs.len(),
            "call and registration records moved from records.db to the records directory"
        );
        Ok(())
    }

    fn old_registrations(&self) -> Result<Vec<RegistrationRecord>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT id, at, account, source, transport, user_agent, fingerprint, first_seen FROM registrations ORDER BY at, id",
        )?;
        let rows = st.query_map([], |r| {
            let source: String = r.get(3)?;
            let transport: String = r.get(4)?;
            let fp: String = r.get(6)?;
            Ok(RegistrationRecord {
                id: r.get::<_, i64>(0)? as u64,
                at: r.get(1)?,
                account: r.get(2)?,
                source: addr(&source),
                transport: static_transport(&transport),
                user_agent: r.get(5)?,
                fingerprint: unhex(&fp),
                first_seen: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Writes what the detector produced: the call and registration records appended
    /// to their files, then findings and restrictions in one transaction (none when the
    /// batch holds none). A batch that fails is written again whole: its records'
    /// numbers are then in the files twice, and readers keep the first.
    pub fn apply_outputs(&mut self, outs: &[Output]) -> Result<(), StoreError> {
        let calls = outs.iter().filter_map(|o| match o {
            Output::Call(c) => Some(c),
            _ => None,
        });
        let regs = outs.iter().filter_map(|o| match o {
            Output::Registration(r) => Some(r),
            _ => None,
        });
        self.log_mut()?.append(calls, regs)?;
        if outs
            .iter()
            .all(|o| matches!(o, Output::Call(_) | Output::Registration(_)))
        {
            return Ok(());
        }
        let tx = crate::CachedTx::begin(&self.conn)?;
        {
            let mut fin = tx.prepare_cached(&format!(
                "INSERT OR REPLACE INTO findings ({FINDING_COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)"
            ))?;
            for o in outs {
                match o {
                    Output::Call(_) | Output::Registration(_) => {}
                    Output::Finding(f) => {
                        fin.execute(params![
                            f.id as i64,
                            f.kind.as_str(),
                            f.subject.kind(),
                            f.subject.value(),
                            f.score,
                            f.first_seen,
                            f.detected_at,
                            f.updated_at,
                            f.action.as_str(),
                            names_json(&f.accounts),
                            evidence_json(&f.records),
                            f.summary,
                        ])?;
                    }
                    Output::FindingUpdate(u) => {
                        // (its row was written whole before, in this order; a row lost
                        // to a failing database stays lost, as the error lines said)
                        tx.prepare_cached(
                            "UPDATE findings SET score=?2, updated_at=?3, action=?4, summary=?5 WHERE id=?1",
                        )?
                        .execute(params![
                            u.id as i64,
                            u.score,
                            u.updated_at,
                            u.action.as_str(),
                            u.summary
                        ])?;
                    }
                    Output::Restrict(r) => {
                        // numbered, and never over an operator's block in force
                        crate::blocks::save_detected(&tx, r, crate::blocks::now_ms())?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The first free (call, registration, finding) numbers.
    pub fn next_ids(&self) -> Result<(u64, u64, u64), StoreError> {
        let next = |t: &str| -> Result<u64, StoreError> {
            let n: i64 = self.conn.query_row(
                &format!("SELECT COALESCE(MAX(id), 0) + 1 FROM {t}"),
                [],
                |r| r.get(0),
            )?;
            Ok(n.max(1) as u64)
        };
        let (calls, regs) = self.log()?.max_ids()?;
        Ok((calls + 1, regs + 1, next("findings")?))
    }

    /// Call records since `since` (Unix ms), optionally of one user (as caller or
    /// callee), oldest first.
    pub fn calls(&self, since: i64, user: Option<&str>) -> Result<Vec<CallRecord>, StoreError> {
        let mut calls = self.log()?.calls(since)?;
        if let Some(u) = user {
            calls.retain(|c| c.caller == u || c.callee == u);
        }
        Ok(calls)
    }

    /// Registration records since `since`, oldest first.
    pub fn registrations_since(&self, since: i64) -> Result<Vec<RegistrationRecord>, StoreError> {
        self.log()?.registrations(since)
    }

    /// Every account's name and creation time (Unix seconds), all domains.
    pub fn account_ages(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut st = self.conn.prepare("SELECT name, created FROM users")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Each account's first registration on record.
    pub fn first_registrations(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut first: BTreeMap<String, i64> = BTreeMap::new();
        // (oldest first: an account's first line is its first registration)
        for r in self.log()?.registrations(i64::MIN)? {
            first.entry(r.account).or_insert(r.at);
        }
        Ok(first.into_iter().collect())
    }

    /// Distinct (caller, callee) pairs with a call since `since`.
    pub fn call_pairs(&self, since: i64) -> Result<Vec<(String, String)>, StoreError> {
        let pairs: BTreeSet<(String, String)> = self
            .log()?
            .calls(since)?
            .into_iter()
            .map(|c| (c.caller, c.callee))
            .collect();
        Ok(pairs.into_iter().collect())
    }

    /// Findings updated since `since`, oldest detection first.
    pub fn findings(&self, since: i64) -> Result<Vec<Finding>, StoreError> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {FINDING_COLUMNS} FROM findings WHERE updated_at >= ?1 ORDER BY detected_at, id"
        ))?;
        let rows = st.query_map(params![since], finding_of)?;
        Ok(rows
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect())
    }

    /// Restrictions still in force at `now` (Unix ms).
    pub fn restrictions(&self, now: i64) -> Result<Vec<Restriction>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT subject_kind, subject, until, per_minute, finding FROM restrictions WHERE until > ?1",
        )?;
        let rows = st.query_map(params![now], |r| {
            let k: String = r.get(0)?;
            let v: String = r.get(1)?;
            Ok(Subject::parse(&k, &v).map(|subject| Restriction {
                subject,
                until: r.get(2).unwrap_or(0),
                per_minute: r.get(3).unwrap_or(None),
                finding: r.get::<_, i64>(4).unwrap_or(0) as u64,
            }))
        })?;
        Ok(rows
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect())
    }

    /// Lifts a restriction (`palisade unblock`); `false` when there was none.
    pub fn lift(&mut self, s: &Subject) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "DELETE FROM restrictions WHERE subject_kind = ?1 AND subject = ?2",
            params![s.kind(), s.value()],
        )?;
        Ok(n > 0)
    }

    /// The users a campaign rang or tried to ring since `since` (Unix ms): the callees
    /// of the calls (and texts) that a *restricting* finding (sweep, new account
    /// calling strangers, repeated refusals, media abuse; action other than `alert`)
    /// rests on, and of the calls of its account that a restriction refused after it
    /// was detected.
    /// Context alone (a farm, an imitation alert) names no targets, and an account's
    /// other callees are not targets because of it.
    pub fn targets(&self, since: i64) -> Result<Vec<Target>, StoreError> {
        let calls = self.log()?.calls(since)?;
        targets_of(
            self.findings(0)?,
            since,
            |id, since| {
                Ok(calls
                    .iter()
                    .filter(|c| c.id == id && c.invite_at >= since)
                    .cloned()
                    .collect())
            },
            // Refused toward them: the account's calls a restriction refused once it was
            // detected; for repeated refusals, its calls the shield refused meanwhile.
            |account, from, refusals, detected| {
                Ok(calls
                    .iter()
                    .filter(|c| {
                        c.caller == account
                            && c.invite_at >= from
                            && (c.blocked
                                || (refusals
                                    && c.outcome() == "rejected"
                                    && c.invite_at <= detected))
                    })
                    .cloned()
                    .collect())
            },
        )
    }

    /// Deletes call and registration records older than `before` (Unix ms).
    pub fn purge_records(&mut self, before: i64) -> Result<usize, StoreError> {
        self.log_mut()?.purge(before)
    }

    /// The notification of `user` on `channel`, if any was made.
    pub fn notification(
        &self,
        user: &str,
        channel: &str,
    ) -> Result<Option<Notification>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT user, channel, state, detail FROM notifications WHERE user = ?1 AND channel = ?2",
                params![user, channel],
                |r| {
                    Ok(Notification {
                        user: r.get(0)?,
                        channel: r.get(1)?,
                        state: r.get(2)?,
                        detail: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    /// Records a notification's state (`queued`, `sent`, `failed`) at `now` (Unix ms).
    pub fn set_notification(
        &mut self,
        user: &str,
        channel: &str,
        state: &str,
        detail: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO notifications (user, channel, state, created, done_at, detail)
             VALUES (?1, ?2, ?3, ?4, CASE WHEN ?3 = 'queued' THEN NULL ELSE ?4 END, ?5)
             ON CONFLICT (user, channel) DO UPDATE SET state = ?3, detail = ?5,
               done_at = CASE WHEN ?3 = 'queued' THEN NULL ELSE ?4 END",
            params![user, channel, state, now, detail],
        )?;
        Ok(())
    }

    /// Notifications of `channel` waiting for delivery: (user, detail).
    pub fn queued(&self, channel: &str) -> Result<Vec<(String, String)>, StoreError> {
        // cached: the server asks every second, per channel
        let mut st = self.conn.prepare_cached(
            "SELECT user, detail FROM notifications WHERE channel = ?1 AND state = 'queued' ORDER BY created",
        )?;
        let rows = st.query_map([channel], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

// The trait over the inherent methods (which the binary still calls by name; inherent
// methods win over the trait's in method resolution, so each line below calls the
// inherent one).
impl crate::Records for SqliteStore {
    fn apply_outputs(&mut self, outs: &[Output]) -> Result<(), StoreError> {
        SqliteStore::apply_outputs(self, outs)
    }
    fn next_ids(&self) -> Result<(u64, u64, u64), StoreError> {
        SqliteStore::next_ids(self)
    }
    fn calls(&self, since: i64, user: Option<&str>) -> Result<Vec<CallRecord>, StoreError> {
        SqliteStore::calls(self, since, user)
    }
    fn registrations_since(&self, since: i64) -> Result<Vec<RegistrationRecord>, StoreError> {
        SqliteStore::registrations_since(self, since)
    }
    fn first_registrations(&self) -> Result<Vec<(String, i64)>, StoreError> {
        SqliteStore::first_registrations(self)
    }
    fn call_pairs(&self, since: i64) -> Result<Vec<(String, String)>, StoreError> {
        SqliteStore::call_pairs(self, since)
    }
    fn findings(&self, since: i64) -> Result<Vec<Finding>, StoreError> {
        SqliteStore::findings(self, since)
    }
    fn restrictions(&self, now: i64) -> Result<Vec<Restriction>, StoreError> {
        SqliteStore::restrictions(self, now)
    }
    fn targets(&self, since: i64) -> Result<Vec<Target>, StoreError> {
        SqliteStore::targets(self, since)
    }
    fn purge_records(&mut self, before: i64) -> Result<usize, StoreError> {
        SqliteStore::purge_records(self, before)
    }
    fn notification(&self, user: &str, channel: &str) -> Result<Option<Notification>, StoreError> {
        SqliteStore::notification(self, user, channel)
    }
    fn set_notification(
        &mut self,
        user: &str,
        channel: &str,
        state: &str,
        detail: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        SqliteStore::set_notification(self, user, channel, state, detail, now)
    }
    fn queued(&self, channel: &str) -> Result<Vec<(String, String)>, StoreError> {
        SqliteStore::queued(self, channel)
    }
    fn blocks(&self, now: i64) -> Result<Vec<crate::Block>, StoreError> {
        SqliteStore::blocks(self, now)
    }
    fn add_block(
        &mut self,
        subject: &Subject,
        until: i64,
        reason: &str,
        now: i64,
    ) -> Result<(crate::Block, Option<crate::Block>), StoreError> {
        SqliteStore::add_block(self, subject, until, reason, now)
    }
    fn lift_block(&mut self, id: i64, now: i64) -> Result<crate::Lifted, StoreError> {
        SqliteStore::lift_block(self, id, now)
    }
    fn pending_block_changes(&self) -> Result<Vec<crate::BlockChange>, StoreError> {
        SqliteStore::pending_block_changes(self)
    }
    fn block_change_recorded(&mut self, seq: i64, at: i64) -> Result<(), StoreError> {
        SqliteStore::block_change_recorded(self, seq, at)
    }
    fn block_changes_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use palisade_detect::Network;

    fn call(id: u64, caller: &str, callee: &str, at: i64, rang: bool) -> CallRecord {
        CallRecord {
            id,
            call_id: format!("c{id}"),
            caller: caller.into(),
            callee: callee.into(),
            source: "192.0.2.1:5060".parse().unwrap(),
            transport: "udp",
            user_agent: "ua".into(),
            fingerprint: 0xabc,
            sdp: 1,
            invite_at: at,
            ringing_at: rang.then_some(at + 100),
            answered_at: None,
            final_at: Some(at + 2000),
            ended_at: None,
            status: Some(487),
            blocked: !rang,
            message: false,
        }
    }

    #[test]
    fn records_findings_and_targets_round_trip() {
        let dir = std::env::temp_dir().join(format!("palisade-records-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut s = SqliteStore::open_records(&dir).unwrap();
        let f = Finding {
            id: 1,
            kind: FindingKind::Sweep,
            subject: Subject::Account("mallory".into()),
            score: 0.9,
            first_seen: 1000,
            detected_at: 1500,
            updated_at: 6000,
            action: ActionKind::Block,
            accounts: vec!["mallory".into()],
            records: vec![Evidence::Call(1), Evidence::Event("x \"y\"".into())],
            summary: "s".into(),
        };
        let r = Restriction {
            subject: Subject::Network(Network::parse("192.0.2.0/24").unwrap()),
            until: 10_000,
            per_minute: Some(2),
            finding: 1,
        };
        s.apply_outputs(&[
            Output::Call(call(1, "mallory", "bob", 1000, true)),
            Output::Call(call(2, "mallory", "carol", 2000, false)),
            Output::Call(call(3, "mallory", "bob", 3000, false)),
            Output::Call(call(4, "alice", "dave", 3000, true)),
            Output::Finding(f.clone()),
            Output::Restrict(r.clone()),
        ])
        .unwrap();
        assert_eq!(s.next_ids().unwrap(), (5, 1, 2));
        assert_eq!(s.calls(0, None).unwrap().len(), 4);
        assert_eq!(s.calls(0, Some("bob")).unwrap().len(), 2);
        assert_eq!(s.calls(2500, None).unwrap().len(), 2);
        assert_eq!(
            s.calls(0, None).unwrap()[0],
            call(1, "mallory", "bob", 1000, true)
        );
        assert_eq!(s.findings(0).unwrap(), vec![f.clone()]);
        assert_eq!(s.restrictions(9_999).unwrap(), vec![r.clone()]);
        assert!(s.restrictions(10_000).unwrap().is_empty());
        let t = s.targets(0).unwrap();
        assert_eq!(
            t.iter().map(|t| t.user.as_str()).collect::<Vec<_>>(),
            ["bob", "carol"]
        );
        assert_eq!(
            (t[0].calls, t[0].rang, t[0].first_call, t[0].last_call),
            (2, true, 1000, 3000)
        );
        assert_eq!((t[1].calls, t[1].rang), (1, false));
        assert_eq!(t[0].callers, vec!["mallory".to_string()]);
        assert_eq!(t[0].findings, vec![1]);
        assert_eq!(s.targets(2500).unwrap().len(), 1);
        // context alone names no targets: an alert about alice (a farm, say), and
        // mallory's answered call that no finding rests on
        let mut farm = f.clone();
        (farm.id, farm.kind, farm.action) = (7, FindingKind::Farm, ActionKind::Alert);
        farm.subject = Subject::Account("alice".into());
        farm.records = vec![Evidence::Call(4)];
        let mut talk = call(5, "mallory", "erin", 2500, true);
        (talk.status, talk.answered_at) = (Some(200), Some(2600));
        s.apply_outputs(&[Output::Finding(farm), Output::Call(talk)])
            .unwrap();
        assert_eq!(
            s.targets(0)
                .unwrap()
                .iter()
                .map(|t| t.user.as_str())
                .collect::<Vec<_>>(),
            ["bob", "carol"]
        );
        assert!(s.lift(&r.subject).unwrap());
        assert!(s.restrictions(0).unwrap().is_empty());
        // notifications: one row per user and channel
        assert_eq!(s.notification("bob", "sip").unwrap(), None);
        s.set_notification("bob", "sip", "queued", "hello", 1)
            .unwrap();
        assert_eq!(
            s.queued("sip").unwrap(),
            vec![("bob".to_string(), "hello".to_string())]
        );
        s.set_notification("bob", "sip", "sent", "hello", 2)
            .unwrap();
        assert!(s.queued("sip").unwrap().is_empty());
        assert_eq!(s.notification("bob", "sip").unwrap().unwrap().state, "sent");
        assert_eq!(s.purge_records(2500).unwrap(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
