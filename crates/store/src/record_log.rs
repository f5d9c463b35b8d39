//! The embedded store's call and registration records: append-only text files, one per
//! kind and hour of the record's time (`DIR/records/calls-2026-12-05T17.tsv`, by the
//! call's INVITE time; `registrations-….tsv`, by the registration's).
//!
//! The detection thread writes a call's record once, when the call ends, and a
//! registration's when a device is new. As SQLite rows (three B-trees for a call: the
//! table and two indexes) a call record cost about 17k instructions and its share of a
//! commit's page writes and locks; appended here it is one line formatted into the
//! batch, and a batch is one `write` per file. The reports read the files of the hours
//! they ask for; records are written in the order the calls end, and readers sort.
//!
//! A line is tab-separated fields (`\`, tab, CR and LF escaped as `\\`, `\t`, `\r`,
//! `\n`) ending in LF: a call is `C`, its number, Call-ID, caller, callee, source,
//! transport, User-Agent, fingerprint and SDP habits (16 hex digits each), the times
//! of the INVITE, first 18x, 2xx, final non-2xx and BYE (Unix ms, empty when none),
//! the status (empty when none), `1` when a restriction refused it, and `m` for a
//! MESSAGE or `c` for a call. A registration is `R`, its number, time, account,
//! source, transport, User-Agent, fingerprint and first-seen time. A number written
//! twice keeps its first line (records are written once; a batch that failed is
//! written again). A last line without its LF (a crash while writing) is not read, and
//! the writer cuts it off before it appends to that file; a line of the wrong shape is
//! skipped and counted in a warning.
//!
//! Purging deletes the files of the hours before the limit and rewrites the file of
//! the limit's hour without the older lines (a new file renamed over it).
use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use palisade_detect::{CallRecord, RegistrationRecord};
use tracing::warn;

use crate::records::{addr, static_transport, unhex};

mod fields;
use crate::StoreError;
use fields::{end_line, push_field, push_hex, push_num, push_opt, push_source};

/// The records' directory, in the data directory.
pub(crate) const DIR: &str = "records";
const CALLS: &str = "calls";
const REGISTRATIONS: &str = "registrations";
const SUFFIX: &str = ".tsv";
/// Files kept open for appending (the current hour's, and the previous one's for calls
/// that started in it).
const OPEN_FILES: usize = 4;
/// Room a batch of lines of one file starts with: about five calls' lines (a larger
/// batch grows, by doubling).
const BATCH_BYTES: usize = 1024;
const HOUR_MS: i64 = 3_600_000;
/// The last hour whose name keeps four digits of year (9999-12-31T23).
const LAST_MS: i64 = 253_402_300_799_999;

fn io_err(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Records {
        path: path.display().to_string(),
        source,
    }
}

/// The hour of `ms`, counted from 1970 (within the years a name can hold).
fn hour_of(ms: i64) -> i64 {
    ms.clamp(0, LAST_MS).div_euclid(HOUR_MS)
}

/// An hour as its files name it: `2026-12-05T17` (names of one kind sort as their
/// hours do).
fn hour_name(h: i64) -> String {
    let t = palisade_detect::rfc3339(h.saturating_mul(HOUR_MS));
    t.get(..13).unwrap_or("0000-00-00T00").to_string()
}

fn hour(ms: i64) -> String {
    hour_name(hour_of(ms))
}

fn file_name(kind: &str, hour: &str) -> String {
    format!("{kind}-{hour}{SUFFIX}")
}

pub(crate) fn encode_call(out: &mut Vec<u8>, c: &CallRecord) {
    out.extend_from_slice(b"C\t");
    push_num(out, c.id);
    push_field(out, &c.call_id);
    push_field(out, &c.caller);
    push_field(out, &c.callee);
    push_source(out, &c.source);
    push_field(out, c.transport);
    push_field(out, &c.user_agent);
    push_hex(out, c.fingerprint);
    push_hex(out, c.sdp);
    push_num(out, c.invite_at);
    push_opt(out, c.ringing_at);
    push_opt(out, c.answered_at);
    push_opt(out, c.final_at);
    push_opt(out, c.ended_at);
    push_opt(out, c.status);
    out.extend_from_slice(if c.blocked { b"1\t" } else { b"0\t" });
    out.extend_from_slice(if c.message { b"m\t" } else { b"c\t" });
    end_line(out);
}

pub(crate) fn encode_registration(out: &mut Vec<u8>, r: &RegistrationRecord) {
    out.extend_from_slice(b"R\t");
    push_num(out, r.id);
    push_num(out, r.at);
    push_field(out, &r.account);
    push_source(out, &r.source);
    push_field(out, r.transport);
    push_field(out, &r.user_agent);
    push_hex(out, r.fingerprint);
    push_num(out, r.first_seen);
    end_line(out);
}

/// A field with its escapes undone; `None` for an escape we never write.
fn text(f: &[u8]) -> Option<String> {
    if !f.contains(&b'\\') {
        return std::str::from_utf8(f).ok().map(str::to_string);
    }
    let mut out = Vec::with_capacity(f.len());
    let mut it = f.iter();
    while let Some(&b) = it.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        out.push(match it.next()? {
            b'\\' => b'\\',
            b't' => b'\t',
            b'n' => b'\n',
            b'r' => b'\r',
            _ => return None,
        });
    }
    String::from_utf8(out).ok()
}

fn num<T: std::str::FromStr>(f: &[u8]) -> Option<T> {
    std::str::from_utf8(f).ok()?.parse().ok()
}

fn opt<T: std::str::FromStr>(f: &[u8]) -> Option<Option<T>> {
    if f.is_empty() {
        Some(None)
    } else {
        num(f).map(Some)
    }
}

fn hex(f: &[u8]) -> Option<u64> {
    (f.len() == 16 && f.iter().all(u8::is_ascii_hexdigit))
        .then(|| std::str::from_utf8(f).map_or(0, unhex))
}

fn fields<const N: usize>(line: &[u8], tag: u8) -> Option<[&[u8]; N]> {
    let mut it = line.split(|&b| b == b'\t');
    if it.next()? != [tag] {
        return None;
    }
    let mut out = [&[][..]; N];
    for slot in &mut out {
        *slot = it.next()?;
    }
    it.next().is_none().then_some(out)
}

pub(crate) fn decode_call(line: &[u8]) -> Option<CallRecord> {
    let [id, call_id, caller, callee, source, transport, ua, fp, sdp, invite, ringing, answered, fin, ended, status, blocked, kind] =
        fields::<17>(line, b'C')?;
    Some(CallRecord {
        id: num(id)?,
        call_id: text(call_id)?,
        caller: text(caller)?,
        callee: text(callee)?,
        source: addr(std::str::from_utf8(source).ok()?),
        transport: static_transport(std::str::from_utf8(transport).ok()?),
        user_agent: text(ua)?,
        fingerprint: hex(fp)?,
        sdp: hex(sdp)?,
        invite_at: num(invite)?,
        ringing_at: opt(ringing)?,
        answered_at: opt(answered)?,
        final_at: opt(fin)?,
        ended_at: opt(ended)?,
        status: opt(status)?,
        blocked: match blocked {
            b"1" => true,
            b"0" => false,
            _ => return None,
        },
        message: match kind {
            b"m" => true,
            b"c" => false,
            _ => return None,
        },
    })
}

pub(crate) fn decode_registration(line: &[u8]) -> Option<RegistrationRecord> {
    let [id, at, account, source, transport, ua, fp, first_seen] = fields::<8>(line, b'R')?;
    Some(RegistrationRecord {
        id: num(id)?,
        at: num(at)?,
        account: text(account)?,
        source: addr(std::str::from_utf8(source).ok()?),
        transport: static_transport(std::str::from_utf8(transport).ok()?),
        user_agent: text(ua)?,
        fingerprint: hex(fp)?,
        first_seen: num(first_seen)?,
    })
}

/// The complete lines of `bytes` (a last one without its LF is being written, or was
/// cut by a crash: not read).
fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let complete = bytes
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(&[][..], |i| bytes.get(..i).unwrap_or_default());
    complete.split(|&b| b == b'\n').filter(|l| !l.is_empty())
}

/// The records' files: the writer end (the detection thread's) keeps a few open for
/// appending; every other use only reads.
pub(crate) struct RecordLog {
    dir: PathBuf,
    /// By (kind, hour): the name is made only to open one (it formats the hour's date,
    /// thousands of instructions, and each batch of records would pay it).
    open: BTreeMap<(&'static str, i64), File>,
}

impl RecordLog {
    /// The records of the data directory `data` (`data/records/`, created by the first
    /// write).
    pub(crate) fn new(data: &Path) -> Self {
        RecordLog {
            dir: data.join(DIR),
            open: BTreeMap::new(),
        }
    }

    /// The files of `kind` whose hour is `from` or later (all with `None`), oldest first.
    fn files(&self, kind: &str, from: Option<&str>) -> Result<Vec<(String, PathBuf)>, StoreError> {
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&self.dir, e)),
        };
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| io_err(&self.dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(h) = name
                .strip_prefix(kind)
                .and_then(|r| r.strip_prefix('-'))
                .and_then(|r| r.strip_suffix(SUFFIX))
                .filter(|h| h.len() == 13)
            else {
                continue;
            };
            if from.is_none_or(|f| h >= f) {
                out.push((h.to_string(), entry.path()));
            }
        }
        out.sort();
        Ok(out)
    }

    fn read(path: &Path) -> Result<Vec<u8>, StoreError> {
        match std::fs::read(path) {
            Ok(b) => Ok(b),
            // (purged meanwhile)
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(io_err(path, e)),
        }
    }

    /// Every record of `kind` in the files from hour `from`, decoded, first line of a
    /// number only.
    fn scan<T>(
        &self,
        kind: &str,
        from: Option<&str>,
        decode: impl Fn(&[u8]) -> Option<T>,
        id: impl Fn(&T) -> u64,
        mut keep: impl FnMut(T),
    ) -> Result<(), StoreError> {
        let mut seen = HashSet::new();
        let mut bad = 0usize;
        for (_, path) in self.files(kind, from)? {
            let bytes = Self::read(&path)?;
            for line in lines(&bytes) {
                match decode(line) {
                    Some(r) if seen.insert(id(&r)) => keep(r),
                    Some(_) => {}
                    None => bad += 1,
                }
            }
        }
        if bad > 0 {
            warn!(kind, lines = bad, dir = %self.dir.display(), "record lines of the wrong shape skipped");
        }
        Ok(())
    }

    /// The records of `kind` whose time (`at`) is `since` or later, oldest first.
    fn since<T>(
        &self,
        kind: &str,
        since: i64,
        decode: impl Fn(&[u8]) -> Option<T>,
        id: impl Fn(&T) -> u64,
        at: impl Fn(&T) -> i64,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        self.scan(kind, Some(&hour(since)), decode, &id, |r| {
            if at(&r) >= since {
                out.push(r);
            }
        })?;
        out.sort_by_key(|r| (at(r), id(r)));
        Ok(out)
    }

    /// Call records whose INVITE is at `since` or later, oldest first.
    pub(crate) fn calls(&self, since: i64) -> Result<Vec<CallRecord>, StoreError> {
        self.since(CALLS, since, decode_call, |c| c.id, |c| c.invite_at)
    }

    /// Registration records at `since` or later, oldest first.
    pub(crate) fn registrations(&self, since: i64) -> Result<Vec<RegistrationRecord>, StoreError> {
        self.since(
            REGISTRATIONS,
            since,
            decode_registration,
            |r| r.id,
            |r| r.at,
        )
    }

    /// The highest call and registration numbers written (0 when none).
    pub(crate) fn max_ids(&self) -> Result<(u64, u64), StoreError> {
        let (mut c, mut r) = (0, 0);
        self.scan(CALLS, None, decode_call, |x| x.id, |x| c = c.max(x.id))?;
        self.scan(
            REGISTRATIONS,
            None,
            decode_registration,
            |x| x.id,
            |x| r = r.max(x.id),
        )?;
        Ok((c, r))
    }

    /// Appends the records, one `write` per file they go to.
    pub(crate) fn append<'r>(
        &mut self,
        calls: impl Iterator<Item = &'r CallRecord>,
        registrations: impl Iterator<Item = &'r RegistrationRecord>,
    ) -> Result<(), StoreError> {
        // by file: (kind, hour); a batch's lines start with room for a few (no growth
        // of the buffer for the first lines, byte by byte as they are written)
        let mut batches: BTreeMap<(&'static str, i64), Vec<u8>> = BTreeMap::new();
        let buffer = || Vec::with_capacity(BATCH_BYTES);
        for c in calls {
            let out = batches.entry((CALLS, hour_of(c.invite_at)));
            encode_call(out.or_insert_with(buffer), c);
        }
        for r in registrations {
            let out = batches.entry((REGISTRATIONS, hour_of(r.at)));
            encode_registration(out.or_insert_with(buffer), r);
        }
        for (key, bytes) in batches {
            let file = self.file(key)?;
            if let Err(e) = file.write_all(&bytes) {
                // (reopened, and its tail checked, at the next write)
                self.open.remove(&key);
                return Err(io_err(
                    &self.dir.join(file_name(key.0, &hour_name(key.1))),
                    e,
                ));
            }
        }
        Ok(())
    }

    /// The file `name`, open for appending; a line cut short at its end is cut off
    /// first.
    fn file(&mut self, key: (&'static str, i64)) -> Result<&mut File, StoreError> {
        if !self.open.contains_key(&key) {
            std::fs::create_dir_all(&self.dir).map_err(|e| io_err(&self.dir, e))?;
            let path = self.dir.join(file_name(key.0, &hour_name(key.1)));
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .read(true)
                .open(&path)
                .map_err(|e| io_err(&path, e))?;
            cut_torn_tail(&file, &path)?;
            while self.open.len() >= OPEN_FILES {
                // the oldest hour's goes
                let Some(oldest) = self.open.keys().min_by_key(|&&(_, h)| h).copied() else {
                    break;
                };
                self.open.remove(&oldest);
            }
            self.open.insert(key, file);
        }
        self.open
            .get_mut(&key)
            .ok_or_else(|| io_err(&self.dir, std::io::ErrorKind::NotFound.into()))
    }

    /// Makes the records written so far durable (the migration from `records.db` does
    /// before it deletes the rows).
    pub(crate) fn sync(&mut self) -> Result<(), StoreError> {
        for (&(kind, h), f) in &self.open {
            f.sync_all()
                .map_err(|e| io_err(&self.dir.join(file_name(kind, &hour_name(h))), e))?;
        }
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Deletes the records older than `before`; how many lines went.
    pub(crate) fn purge(&mut self, before: i64) -> Result<usize, StoreError> {
        let limit = hour(before);
        let mut gone = 0;
        // (the writer reopens what it needs)
        self.open.clear();
        for (kind, time_of) in [
            (
                CALLS,
                (|l: &[u8]| decode_call(l).map(|c| c.invite_at)) as fn(&[u8]) -> Option<i64>,
            ),
            (REGISTRATIONS, |l: &[u8]| {
                decode_registration(l).map(|r| r.at)
            }),
        ] {
            for (h, path) in self.files(kind, None)? {
                if h > limit {
                    break;
                }
                let bytes = Self::read(&path)?;
                if h < limit {
                    gone += lines(&bytes).count();
                    match std::fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(io_err(&path, e)),
                    }
                    continue;
                }
                // the limit's hour: keep its lines from `before` on
                let mut kept = Vec::with_capacity(bytes.len());
                let mut dropped = 0;
                for line in lines(&bytes) {
                    if time_of(line).is_some_and(|t| t >= before) {
                        kept.extend_from_slice(line);
                        kept.push(b'\n');
                    } else {
                        dropped += 1;
                    }
                }
                if dropped > 0 {
                    let tmp = path.with_extension("tsv.tmp");
                    std::fs::write(&tmp, &kept).map_err(|e| io_err(&tmp, e))?;
                    std::fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))?;
                    gone += dropped;
                }
            }
        }
        Ok(gone)
    }
}

/// Cuts off a last line without its LF (a write a crash interrupted), so that the next
/// line starts on its own.
fn cut_torn_tail(file: &File, path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::FileExt as _;
    let len = file.metadata().map_err(|e| io_err(path, e))?.len();
    if len == 0 {
        return Ok(());
    }
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, len - 1)
        .map_err(|e| io_err(path, e))?;
    if last == [b'\n'] {
        return Ok(());
    }
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    warn!(path = %path.display(), cut = bytes.len() - keep, "a record line cut short (a crash while writing) is cut off");
    file.set_len(keep as u64).map_err(|e| io_err(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: u64, at: i64) -> CallRecord {
        CallRecord {
            id,
            call_id: "a\tb\\c\nd\re@h".into(),
            caller: "alice".into(),
            callee: "bob".into(),
            source: "[2001:db8::1]:5060".parse().unwrap(),
            transport: "tls",
            user_agent: "Phone/1.0 (ünïcode)".into(),
            fingerprint: 0x0123_4567_89ab_cdef,
            sdp: u64::MAX,
            invite_at: at,
            ringing_at: Some(at + 1),
            answered_at: None,
            final_at: Some(at + 3),
            ended_at: None,
            status: Some(486),
            blocked: true,
            message: false,
        }
    }

    fn registration(id: u64, at: i64) -> RegistrationRecord {
        RegistrationRecord {
            id,
            at,
            account: "mallory".into(),
            source: addr("192.0.2.7:5070"),
            transport: "udp",
            user_agent: String::new(),
            fingerprint: 7,
            first_seen: at - 5,
        }
    }

    #[test]
    fn lines_round_trip_with_every_separator_escaped() {
        let c = call(42, 1_700_000_000_000);
        let mut out = Vec::new();
        encode_call(&mut out, &c);
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        assert_eq!(out.last(), Some(&b'\n'));
        let line = out.strip_suffix(b"\n").unwrap_or_default();
        assert_eq!(decode_call(line), Some(c));
        let r = registration(7, 1_700_000_000_000);
        out.clear();
        encode_registration(&mut out, &r);
        let line = out.strip_suffix(b"\n").unwrap_or_default();
        assert_eq!(decode_registration(line), Some(r));
        // a field short or one too many is refused (a line cut inside its last field is
        // why readers take only lines that end in LF)
        let short = line.rsplitn(2, |&b| b == b'\t').nth(1).unwrap();
        assert_eq!(decode_registration(short), None);
        assert_eq!(decode_registration(&[line, b"\t1"].concat()), None);
        // unknown escapes and foreign tags are refused
        assert_eq!(text(b"a\\x"), None);
        assert_eq!(decode_call(line), None);
    }

    #[test]
    fn hours_name_files_in_time_order() {
        assert_eq!(hour(1_700_000_000_000), "2023-11-14T22");
        assert_eq!(hour(-5), "1970-01-01T00");
        assert_eq!(hour(i64::MAX), "9999-12-31T23");
        assert!(hour(1_700_000_000_000) < hour(1_700_000_000_000 + HOUR_MS));
    }

    #[test]
    fn a_torn_last_line_is_not_read_and_is_cut_before_the_next_append() {
        let dir = std::env::temp_dir().join(format!("palisade-reclog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let t = 1_700_000_000_000;
        let mut log = RecordLog::new(&dir);
        let (a, b) = (call(1, t), call(2, t + 10));
        log.append([&a].into_iter(), std::iter::empty()).unwrap();
        // a crash in the middle of the next line
        let path = dir.join(DIR).join(file_name(CALLS, &hour(t)));
        let mut torn = Vec::new();
        encode_call(&mut torn, &b);
        torn.truncate(torn.len() / 2);
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&torn)
            .unwrap();
        assert_eq!(RecordLog::new(&dir).calls(0).ok(), Some(vec![a.clone()]));
        // a new writer cuts it off and appends whole lines
        let mut log = RecordLog::new(&dir);
        log.append([&b].into_iter(), std::iter::empty()).unwrap();
        assert_eq!(RecordLog::new(&dir).calls(0).ok(), Some(vec![a, b]));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn records_of_an_earlier_version_move_out_of_records_db() {
        let dir = std::env::temp_dir().join(format!("palisade-reclog-old-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        drop(crate::SqliteStore::open_records(&dir).unwrap());
        let conn = rusqlite::Connection::open(dir.join("records.db")).unwrap();
        conn.execute_batch(
            "INSERT INTO calls (id, call_id, caller, callee, source, transport, user_agent,
                 fingerprint, sdp, invite_at, ringing_at, blocked, outcome)
               VALUES (5, 'c@h', 'alice', 'bob', '192.0.2.1:5060', 'udp', 'UA',
                 '00000000000000ff', '0000000000000001', 1700000000000, 1700000000100, 0, 'in-progress');
             INSERT INTO registrations (id, at, account, source, transport, user_agent,
                 fingerprint, first_seen)
               VALUES (9, 1700000000000, 'alice', '192.0.2.1:5060', 'tcp', 'UA',
                 '0000000000000002', 1699999999000);",
        )
        .unwrap();
        drop(conn);
        for _ in 0..2 {
            let s = crate::SqliteStore::open_records(&dir).unwrap();
            let calls = s.calls(0, None).unwrap();
            assert_eq!(calls.len(), 1);
            let c = &calls[0];
            assert_eq!(
                (c.id, c.caller.as_str(), c.callee.as_str()),
                (5, "alice", "bob")
            );
            assert_eq!(
                (c.fingerprint, c.sdp, c.ringing_at),
                (255, 1, Some(1_700_000_000_100))
            );
            let regs = s.registrations_since(0).unwrap();
            assert_eq!(regs.len(), 1);
            assert_eq!(
                (regs[0].id, regs[0].transport, regs[0].fingerprint),
                (9, "tcp", 2)
            );
            let (c, r, _) = s.next_ids().unwrap();
            assert!(c > 5 && r > 9, "{c} {r}");
        }
        let conn = rusqlite::Connection::open(dir.join("records.db")).unwrap();
        let left: i64 = conn
            .query_row(
                "SELECT (SELECT COUNT(*) FROM calls) + (SELECT COUNT(*) FROM registrations)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
