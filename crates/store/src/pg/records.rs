//! [`Records`] on PostgreSQL: the tables of migration 2, the same semantics as
//! `records.rs` and `blocks.rs` on SQLite, statement for statement where SQL allows.
//!
//! Numbers: the detector's (records, findings) come from ranges of `record_id_ranges`
//! ([`RECORD_RANGE`] each, see [`Records::next_ids`] here); restrictions and block
//! changes take identity columns. Concurrent writers on one subject meet on the
//! `(subject_kind, subject)` key and its row lock, never on a lock of the table: a
//! detector's restriction gives way to a row written meanwhile (`ON CONFLICT DO
//! NOTHING`, as `INSERT OR IGNORE` on SQLite); an operator's block locks the subject's
//! row and renumbers it in place, or inserts one and looks again if another writer was
//! first (SQLite takes the file's write lock for the same effect).

use std::cell::RefCell;

use palisade_detect::{
    ActionKind, CallRecord, Finding, FindingKind, Output, RegistrationRecord, Restriction, Subject,
};
use postgres::{GenericClient, Row};

use super::{PgConn, PgStore};
use crate::records::{
    addr, evidence_json, evidence_of, hex, names_json, static_transport, targets_of, unhex,
};
use crate::{Block, BlockChange, Lifted, Notification, Records, StoreError, Target, BY_OPERATOR};

/// How many numbers of each kind (calls, registrations, findings) one detector may use
/// from the start [`Records::next_ids`] gave it: 10^12, the sequence's increment. At
/// 10,000 calls a second without a restart, a range lasts three years; the sequence
/// holds over nine million ranges.
pub const RECORD_RANGE: u64 = 1_000_000_000_000;

/// How many times an operator's block looks again for the subject's row when other
/// writers insert one between its look and its insert, then remove it before it looks
/// again.
const ADD_BLOCK_ATTEMPTS: u32 = 5;

// Records arrive by the thousand a second: one statement per kind and batch, its
// columns as arrays (a row a round trip cost ~0.2 ms). The first of two rows with one id
// stays, as with SQLite's INSERT OR IGNORE.
const INSERT_CALLS: &str = "INSERT INTO calls (id, call_id, caller, callee, source, transport, user_agent, fingerprint, sdp, invite_at, ringing_at, answered_at, final_at, ended_at, status, blocked, kind, outcome)
     SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::TEXT[],
       $10::BIGINT[], $11::BIGINT[], $12::BIGINT[], $13::BIGINT[], $14::BIGINT[], $15::INTEGER[], $16::BOOLEAN[], $17::TEXT[], $18::TEXT[])
     ON CONFLICT (id) DO NOTHING";
const INSERT_REGISTRATIONS: &str = "INSERT INTO registrations (id, at, account, source, transport, user_agent, fingerprint, first_seen)
     SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::TEXT[], $8::BIGINT[])
     ON CONFLICT (id) DO NOTHING";
const SAVE_FINDING: &str = "INSERT INTO findings (id, kind, subject_kind, subject, score, first_seen, detected_at, updated_at, action, accounts, records, summary)
     VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)
     ON CONFLICT (id) DO UPDATE SET kind = EXCLUDED.kind, subject_kind = EXCLUDED.subject_kind,
       subject = EXCLUDED.subject, score = EXCLUDED.score, first_seen = EXCLUDED.first_seen,
       detected_at = EXCLUDED.detected_at, updated_at = EXCLUDED.updated_at,
       action = EXCLUDED.action, accounts = EXCLUDED.accounts, records = EXCLUDED.records,
       summary = EXCLUDED.summary";
/// A finding whose lists stay as written: only what an update moves.
const UPDATE_FINDING: &str =
    "UPDATE findings SET score = $2, updated_at = $3, action = $4, summary = $5 WHERE id = $1";
const EXTEND_RESTRICTION: &str = "UPDATE restrictions SET until = $3, per_minute = $4
     WHERE subject_kind = $1 AND subject = $2 AND \"by\" = 'detector' AND finding = $5";
const DROP_RESTRICTION: &str = "DELETE FROM restrictions WHERE subject_kind = $1 AND subject = $2
     AND (\"by\" <> 'operator' OR until <= $3)";
const INSERT_RESTRICTION: &str =
    "INSERT INTO restrictions (subject_kind, subject, until, per_minute, finding, \"by\", created)
     VALUES ($1, $2, $3, $4, $5, 'detector', $6) ON CONFLICT (subject_kind, subject) DO NOTHING";
const NEXT_RANGE: &str = "SELECT nextval('record_id_ranges')";
const CALLS: &str = "SELECT id, call_id, caller, callee, source, transport, user_agent, fingerprint, sdp, invite_at, ringing_at, answered_at, final_at, ended_at, status, blocked, kind
     FROM calls WHERE invite_at >= $1 AND ($2::TEXT IS NULL OR caller = $2 OR callee = $2)
     ORDER BY invite_at, id";
const CALL_BY_ID: &str = "SELECT id, call_id, caller, callee, source, transport, user_agent, fingerprint, sdp, invite_at, ringing_at, answered_at, final_at, ended_at, status, blocked, kind
     FROM calls WHERE id = $1 AND invite_at >= $2";
const CALLS_REFUSED: &str = "SELECT id, call_id, caller, callee, source, transport, user_agent, fingerprint, sdp, invite_at, ringing_at, answered_at, final_at, ended_at, status, blocked, kind
     FROM calls WHERE caller = $1 AND invite_at >= $2
       AND (blocked OR ($3 AND outcome = 'rejected' AND invite_at <= $4))
     ORDER BY invite_at, id";
const REGISTRATIONS: &str =
    "SELECT id, at, account, source, transport, user_agent, fingerprint, first_seen
     FROM registrations WHERE at >= $1 ORDER BY at, id";
const FIRST_REGISTRATIONS: &str = "SELECT account, MIN(at) FROM registrations GROUP BY account";
const CALL_PAIRS: &str = "SELECT DISTINCT caller, callee FROM calls WHERE invite_at >= $1";
const FINDINGS: &str = "SELECT id, kind, subject_kind, subject, score, first_seen, detected_at, updated_at, action, accounts, records, summary
     FROM findings WHERE updated_at >= $1 ORDER BY detected_at, id";
const RESTRICTIONS: &str =
    "SELECT subject_kind, subject, until, per_minute, finding FROM restrictions WHERE until > $1";
const PURGE_CALLS: &str = "DELETE FROM calls WHERE invite_at < $1";
const PURGE_REGISTRATIONS: &str = "DELETE FROM registrations WHERE at < $1";
const NOTIFICATION: &str = "SELECT \"user\", channel, state, detail FROM notifications WHERE \"user\" = $1 AND channel = $2";
const SET_NOTIFICATION: &str = "INSERT INTO notifications (\"user\", channel, state, created, done_at, detail)
     VALUES ($1, $2, $3::TEXT, $4::BIGINT, CASE WHEN $3::TEXT = 'queued' THEN NULL ELSE $4::BIGINT END, $5)
     ON CONFLICT (\"user\", channel) DO UPDATE SET state = EXCLUDED.state,
       detail = EXCLUDED.detail, done_at = EXCLUDED.done_at";
const QUEUED: &str = "SELECT \"user\", detail FROM notifications WHERE channel = $1 AND state = 'queued' ORDER BY created, \"user\"";
const BLOCK_COLUMNS: &str =
    "id, subject_kind, subject, until, per_minute, finding, \"by\", reason, created";
const BLOCKS: &str =
    "SELECT id, subject_kind, subject, until, per_minute, finding, \"by\", reason, created
     FROM restrictions WHERE until > $1 ORDER BY id";
const PENDING: &str = "SELECT block, subject_kind, subject, until, per_minute, finding, \"by\", reason, created, seq, at, action
     FROM block_changes WHERE recorded IS NULL ORDER BY seq";
const RECORDED: &str = "UPDATE block_changes SET recorded = $2 WHERE seq = $1";
// (the primary key's index answers it; a change queued later has a higher number)
const CHANGES_VERSION: &str = "SELECT COALESCE(max(seq), 0) FROM block_changes";
const QUEUE_CHANGE: &str = "INSERT INTO block_changes (at, action, block, subject_kind, subject, until, per_minute, finding, \"by\", reason, created)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
const ACCOUNT_AGES: &str = "SELECT name, created FROM users";

fn id(v: u64) -> i64 {
    // ids past i64::MAX cannot come from the detector (its ranges start far below)
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn u64_of(column: &'static str, v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Value { column, value: v })
}

fn call_of(r: &Row) -> Result<CallRecord, StoreError> {
    let source: String = r.try_get(4)?;
    let transport: String = r.try_get(5)?;
    let fp: String = r.try_get(7)?;
    let sdp: String = r.try_get(8)?;
    let status: Option<i32> = r.try_get(14)?;
    let kind: String = r.try_get(16)?;
    Ok(CallRecord {
        id: u64_of("calls.id", r.try_get(0)?)?,
        call_id: r.try_get(1)?,
        caller: r.try_get(2)?,
        callee: r.try_get(3)?,
        source: addr(&source),
        transport: static_transport(&transport),
        user_agent: r.try_get(6)?,
        fingerprint: unhex(&fp),
        sdp: unhex(&sdp),
        invite_at: r.try_get(9)?,
        ringing_at: r.try_get(10)?,
        answered_at: r.try_get(11)?,
        final_at: r.try_get(12)?,
        ended_at: r.try_get(13)?,
        status: status
            .map(|s| {
                u16::try_from(s).map_err(|_| StoreError::Value {
                    column: "calls.status",
                    value: i64::from(s),
                })
            })
            .transpose()?,
        blocked: r.try_get(15)?,
        message: kind == "message",
    })
}

fn finding_of(r: &Row) -> Result<Option<Finding>, StoreError> {
    let kind: String = r.try_get(1)?;
    let sk: String = r.try_get(2)?;
    let sv: String = r.try_get(3)?;
    let action: String = r.try_get(8)?;
    let accounts: String = r.try_get(9)?;
    let records: String = r.try_get(10)?;
    let (Some(kind), Some(subject)) = (FindingKind::parse(&kind), Subject::parse(&sk, &sv)) else {
        return Ok(None);
    };
    Ok(Some(Finding {
        id: u64_of("findings.id", r.try_get(0)?)?,
        kind,
        subject,
        score: r.try_get(4)?,
        first_seen: r.try_get(5)?,
        detected_at: r.try_get(6)?,
        updated_at: r.try_get(7)?,
        action: ActionKind::parse_or_alert(&action),
        accounts: serde_json::from_str(&accounts).unwrap_or_default(),
        records: evidence_of(&records),
        summary: r.try_get(11)?,
    }))
}

fn per_minute(v: Option<i64>) -> Result<Option<u32>, StoreError> {
    v.map(|n| {
        u32::try_from(n).map_err(|_| StoreError::Value {
            column: "restrictions.per_minute",
            value: n,
        })
    })
    .transpose()
}

/// A block from `id, subject_kind, subject, until, per_minute, finding, by, reason,
/// created` (a subject this build cannot parse: `None`, as on SQLite).
fn block_of(r: &Row) -> Result<Option<Block>, StoreError> {
    let (k, v): (String, String) = (r.try_get(1)?, r.try_get(2)?);
    let Some(subject) = Subject::parse(&k, &v) else {
        return Ok(None);
    };
    let finding: i64 = r.try_get(5)?;
    Ok(Some(Block {
        id: r.try_get(0)?,
        subject,
        until: r.try_get(3)?,
        per_minute: per_minute(r.try_get(4)?)?,
        finding: finding.max(0) as u64,
        by: r.try_get(6)?,
        reason: r.try_get(7)?,
        created: r.try_get(8)?,
    }))
}

fn queue(c: &mut impl GenericClient, at: i64, action: &str, b: &Block) -> Result<(), StoreError> {
    c.execute(
        QUEUE_CHANGE,
        &[
            &at,
            &action,
            &b.id,
            &b.subject.kind(),
            &b.subject.value(),
            &b.until,
            &b.per_minute.map(i64::from),
            &id(b.finding),
            &b.by,
            &b.reason,
            &b.created,
        ],
    )?;
    Ok(())
}

fn select_block(
    c: &mut impl GenericClient,
    filter: &str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
) -> Result<Option<Block>, StoreError> {
    let sql = format!("SELECT {BLOCK_COLUMNS} FROM restrictions WHERE {filter} FOR UPDATE");
    match c.query_opt(sql.as_str(), params)? {
        Some(r) => block_of(&r),
        None => Ok(None),
    }
}

impl PgStore {
    fn rows<T>(
        &self,
        sql: &'static str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
        f: impl Fn(&Row) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        self.with(|c| {
            let st = c.prepare(sql)?;
            c.client.query(&st, params)?.iter().map(f).collect()
        })
    }

    /// Every account's name and creation time (Unix seconds), all domains.
    pub(crate) fn pg_account_ages(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.rows(ACCOUNT_AGES, &[], |r| Ok((r.try_get(0)?, r.try_get(1)?)))
    }
}

fn apply(c: &mut PgConn, outs: &[Output], now: i64) -> Result<(), StoreError> {
    let call = c.prepare(INSERT_CALLS)?;
    let reg = c.prepare(INSERT_REGISTRATIONS)?;
    let fin = c.prepare(SAVE_FINDING)?;
    let touch = c.prepare(UPDATE_FINDING)?;
    let extend = c.prepare(EXTEND_RESTRICTION)?;
    let drop = c.prepare(DROP_RESTRICTION)?;
    let insert = c.prepare(INSERT_RESTRICTION)?;
    let mut tx = c.client.transaction()?;
    let mut calls: Vec<&CallRecord> = Vec::new();
    let mut regs: Vec<&RegistrationRecord> = Vec::new();
    for o in outs {
        match o {
            Output::Call(r) => calls.push(r),
            Output::Registration(r) => regs.push(r),
            Output::Finding(f) => {
                tx.execute(
                    &fin,
                    &[
                        &id(f.id),
                        &f.kind.as_str(),
                        &f.subject.kind(),
                        &f.subject.value(),
                        &f.score,
                        &f.first_seen,
                        &f.detected_at,
                        &f.updated_at,
                        &f.action.as_str(),
                        &names_json(&f.accounts),
                        &evidence_json(&f.records),
                        &f.summary,
                    ],
                )?;
            }
            Output::FindingUpdate(u) => {
                tx.execute(
                    &touch,
                    &[
                        &id(u.id),
                        &u.score,
                        &u.updated_at,
                        &u.action.as_str(),
                        &u.summary,
                    ],
                )?;
            }
            Output::Restrict(r) => {
                // as blocks::save_detected: the same finding extends its row; otherwise
                // the subject's row goes unless an operator's block is in force
                let (kind, value) = (r.subject.kind(), r.subject.value());
                let finding = id(r.finding);
                let pm = r.per_minute.map(i64::from);
                if tx.execute(&extend, &[&kind, &value, &r.until, &pm, &finding])? > 0 {
                    continue;
                }
                tx.execute(&drop, &[&kind, &value, &now])?;
                tx.execute(&insert, &[&kind, &value, &r.until, &pm, &finding, &now])?;
            }
        }
    }
    if !calls.is_empty() {
        let col = |f: fn(&CallRecord) -> String| calls.iter().map(|r| f(r)).collect::<Vec<_>>();
        let at = |f: fn(&CallRecord) -> Option<i64>| calls.iter().map(|r| f(r)).collect::<Vec<_>>();
        tx.execute(
            &call,
            &[
                &calls.iter().map(|r| id(r.id)).collect::<Vec<_>>(),
                &col(|r| r.call_id.clone()),
                &col(|r| r.caller.clone()),
                &col(|r| r.callee.clone()),
                &col(|r| r.source.to_string()),
                &col(|r| r.transport.to_string()),
                &col(|r| r.user_agent.clone()),
                &col(|r| hex(r.fingerprint)),
                &col(|r| hex(r.sdp)),
                &calls.iter().map(|r| r.invite_at).collect::<Vec<_>>(),
                &at(|r| r.ringing_at),
                &at(|r| r.answered_at),
                &at(|r| r.final_at),
                &at(|r| r.ended_at),
                &calls
                    .iter()
                    .map(|r| r.status.map(i32::from))
                    .collect::<Vec<_>>(),
                &calls.iter().map(|r| r.blocked).collect::<Vec<_>>(),
                &col(|r| if r.message { "message" } else { "call" }.to_string()),
                &col(|r| r.outcome().to_string()),
            ],
        )?;
    }
    if !regs.is_empty() {
        let col =
            |f: fn(&RegistrationRecord) -> String| regs.iter().map(|r| f(r)).collect::<Vec<_>>();
        tx.execute(
            &reg,
            &[
                &regs.iter().map(|r| id(r.id)).collect::<Vec<_>>(),
                &regs.iter().map(|r| r.at).collect::<Vec<_>>(),
                &col(|r| r.account.clone()),
                &col(|r| r.source.to_string()),
                &col(|r| r.transport.to_string()),
                &col(|r| r.user_agent.clone()),
                &col(|r| hex(r.fingerprint)),
                &regs.iter().map(|r| r.first_seen).collect::<Vec<_>>(),
            ],
        )?;
    }
    tx.commit()?;
    Ok(())
}

impl Records for PgStore {
    fn apply_outputs(&mut self, outs: &[Output]) -> Result<(), StoreError> {
        let now = crate::blocks::now_ms();
        self.with(|c| apply(c, outs, now))
    }

    /// The start of a range of [`RECORD_RANGE`] numbers reserved for the caller alone
    /// (one `nextval` of `record_id_ranges`), the same start for the three kinds: every
    /// call takes a new range, so two nodes' detectors, or a detector and the one that
    /// took over after it, never number two records alike, whatever the order of their
    /// commits. The detector must not use more than [`RECORD_RANGE`] numbers of a kind
    /// from one start (it would run into the next range).
    fn next_ids(&self) -> Result<(u64, u64, u64), StoreError> {
        let start: i64 = self.with(|c| {
            let st = c.prepare(NEXT_RANGE)?;
            Ok(c.client.query_one(&st, &[])?.try_get(0)?)
        })?;
        let n = u64_of("record_id_ranges", start)?;
        Ok((n, n, n))
    }

    fn calls(&self, since: i64, user: Option<&str>) -> Result<Vec<CallRecord>, StoreError> {
        self.rows(CALLS, &[&since, &user], call_of)
    }

    fn registrations_since(&self, since: i64) -> Result<Vec<RegistrationRecord>, StoreError> {
        self.rows(REGISTRATIONS, &[&since], |r| {
            let source: String = r.try_get(3)?;
            let transport: String = r.try_get(4)?;
            let fp: String = r.try_get(6)?;
            Ok(RegistrationRecord {
                id: u64_of("registrations.id", r.try_get(0)?)?,
                at: r.try_get(1)?,
                account: r.try_get(2)?,
                source: addr(&source),
                transport: static_transport(&transport),
                user_agent: r.try_get(5)?,
                fingerprint: unhex(&fp),
                first_seen: r.try_get(7)?,
            })
        })
    }

    fn first_registrations(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.rows(FIRST_REGISTRATIONS, &[], |r| {
            Ok((r.try_get(0)?, r.try_get(1)?))
        })
    }

    fn call_pairs(&self, since: i64) -> Result<Vec<(String, String)>, StoreError> {
        self.rows(CALL_PAIRS, &[&since], |r| {
            Ok((r.try_get(0)?, r.try_get(1)?))
        })
    }

    fn findings(&self, since: i64) -> Result<Vec<Finding>, StoreError> {
        Ok(self
            .rows(FINDINGS, &[&since], finding_of)?
            .into_iter()
            .flatten()
            .collect())
    }

    fn restrictions(&self, now: i64) -> Result<Vec<Restriction>, StoreError> {
        let rows = self.rows(RESTRICTIONS, &[&now], |r| {
            let (k, v): (String, String) = (r.try_get(0)?, r.try_get(1)?);
            let finding: i64 = r.try_get(4)?;
            Ok(match Subject::parse(&k, &v) {
                Some(subject) => Some(Restriction {
                    subject,
                    until: r.try_get(2)?,
                    per_minute: per_minute(r.try_get(3)?)?,
                    finding: finding.max(0) as u64,
                }),
                None => None,
            })
        })?;
        Ok(rows.into_iter().flatten().collect())
    }

    fn targets(&self, since: i64) -> Result<Vec<Target>, StoreError> {
        let findings = self.findings(0)?;
        self.with(|c| {
            let one = c.prepare(CALL_BY_ID)?;
            let after = c.prepare(CALLS_REFUSED)?;
            // both lookups run on this one connection, one after the other
            let client = RefCell::new(&mut c.client);
            targets_of(
                findings,
                since,
                |call, since| {
                    client
                        .borrow_mut()
                        .query(&one, &[&id(call), &since])?
                        .iter()
                        .map(call_of)
                        .collect()
                },
                |account, from, refusals, detected| {
                    client
                        .borrow_mut()
                        .query(&after, &[&account, &from, &refusals, &detected])?
                        .iter()
                        .map(call_of)
                        .collect()
                },
            )
        })
    }

    fn purge_records(&mut self, before: i64) -> Result<usize, StoreError> {
        self.with(|c| {
            let calls = c.prepare(PURGE_CALLS)?;
            let regs = c.prepare(PURGE_REGISTRATIONS)?;
            let a = c.client.execute(&calls, &[&before])?;
            let b = c.client.execute(&regs, &[&before])?;
            Ok(usize::try_from(a + b).unwrap_or(usize::MAX))
        })
    }

    fn notification(&self, user: &str, channel: &str) -> Result<Option<Notification>, StoreError> {
        Ok(self
            .rows(NOTIFICATION, &[&user, &channel], |r| {
                Ok(Notification {
                    user: r.try_get(0)?,
                    channel: r.try_get(1)?,
                    state: r.try_get(2)?,
                    detail: r.try_get(3)?,
                })
            })?
            .into_iter()
            .next())
    }

    fn set_notification(
        &mut self,
        user: &str,
        channel: &str,
        state: &str,
        detail: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            let st = c.prepare(SET_NOTIFICATION)?;
            c.client
                .execute(&st, &[&user, &channel, &state, &now, &detail])?;
            Ok(())
        })
    }

    fn queued(&self, channel: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.rows(QUEUED, &[&channel], |r| Ok((r.try_get(0)?, r.try_get(1)?)))
    }

    fn blocks(&self, now: i64) -> Result<Vec<Block>, StoreError> {
        Ok(self
            .rows(BLOCKS, &[&now], block_of)?
            .into_iter()
            .flatten()
            .collect())
    }

    fn add_block(
        &mut self,
        subject: &Subject,
        until: i64,
        reason: &str,
        now: i64,
    ) -> Result<(Block, Option<Block>), StoreError> {
        self.with(|c| {
            let mut tx = c.client.transaction()?;
            let (kind, value) = (subject.kind(), subject.value());
            // The subject's row, if any, is locked first and renumbered in place: no
            // other writer can slip a row in between. Only when there was none may
            // another writer insert one meanwhile: the insert then gives way (ON
            // CONFLICT) and we look again, now seeing it committed.
            let mut attempts = 0;
            let (id, old) = loop {
                attempts += 1;
                if let Some(old) = select_block(
                    &mut tx,
                    "subject_kind = $1 AND subject = $2",
                    &[&kind, &value],
                )? {
                    let id: i64 = tx
                        .query_one(
                            "UPDATE restrictions SET id = nextval(pg_get_serial_sequence('restrictions', 'id')),
                               until = $2, per_minute = NULL, finding = 0, \"by\" = 'operator',
                               reason = $3, created = $4
                             WHERE id = $1 RETURNING id",
                            &[&old.id, &until, &reason, &now],
                        )?
                        .try_get(0)?;
                    break (id, Some(old).filter(|b| b.until > now));
                }
                let row = tx.query_opt(
                    "INSERT INTO restrictions (subject_kind, subject, until, per_minute, finding, \"by\", reason, created)
                     VALUES ($1, $2, $3, NULL, 0, 'operator', $4, $5)
                     ON CONFLICT (subject_kind, subject) DO NOTHING RETURNING id",
                    &[&kind, &value, &until, &reason, &now],
                )?;
                match row {
                    Some(r) => break (r.try_get::<_, i64>(0)?, None),
                    None if attempts < ADD_BLOCK_ATTEMPTS => continue,
                    None => return Err(StoreError::Config(format!(
                        "block of {kind} {value}: other writers kept adding and removing its restriction; try again"
                    ))),
                }
            };
            let block = Block {
                id,
                subject: subject.clone(),
                until,
                per_minute: None,
                finding: 0,
                by: BY_OPERATOR.into(),
                reason: reason.into(),
                created: now,
            };
            queue(&mut tx, now, "block", &block)?;
            tx.commit()?;
            Ok((block, old))
        })
    }

    fn lift_block(&mut self, id: i64, now: i64) -> Result<Lifted, StoreError> {
        self.with(|c| {
            let mut tx = c.client.transaction()?;
            let Some(b) = select_block(&mut tx, "id = $1", &[&id])? else {
                return Ok(Lifted::Unknown);
            };
            if b.until <= now {
                return Ok(Lifted::Ended(b));
            }
            tx.execute("DELETE FROM restrictions WHERE id = $1", &[&id])?;
            queue(&mut tx, now, "unblock", &b)?;
            tx.commit()?;
            Ok(Lifted::Lifted(b))
        })
    }

    fn pending_block_changes(&self) -> Result<Vec<BlockChange>, StoreError> {
        let rows = self.rows(PENDING, &[], |r| {
            Ok(match block_of(r)? {
                Some(block) => Some(BlockChange {
                    seq: r.try_get(9)?,
                    at: r.try_get(10)?,
                    action: r.try_get(11)?,
                    block,
                }),
                None => None,
            })
        })?;
        Ok(rows.into_iter().flatten().collect())
    }

    fn block_change_recorded(&mut self, seq: i64, at: i64) -> Result<(), StoreError> {
        self.with(|c| {
            let st = c.prepare(RECORDED)?;
            c.client.execute(&st, &[&seq, &at])?;
            Ok(())
        })
    }

    fn block_changes_version(&self) -> Result<i64, StoreError> {
        let v = self.rows(CHANGES_VERSION, &[], |r| Ok(r.try_get::<_, i64>(0)?))?;
        Ok(v.first().copied().unwrap_or(0))
    }
}
