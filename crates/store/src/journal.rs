//! The embedded store's location: an append-only journal of binding changes
//! (`bindings.journal` beside `palisade.db`).
//!
//! A registration changes one binding; writing it as an SQLite upsert cost about 20k
//! instructions and seven system calls (WAL frames, locks, the sync) for every batch.
//! The journal appends each batch as one `write` (with `O_DSYNC` on the server's
//! writer), and the state is the journal folded: the last change of each (AOR, Contact)
//! wins. When the file has grown to twice what it held after the last fold (and at
//! least [`COMPACT_MIN`]), the writer folds it into a new file of the live bindings,
//! synced and renamed over the old one, so a restart reads about one record per binding.
//!
//! File: the 8-byte [`MAGIC`], then records `[len: u32 LE][check: u64 LE][payload]`;
//! the payload is an operation (1 = save, 2 = remove) and its fields (strings as a u32
//! LE length and UTF-8 bytes, numbers little-endian). A record cut short by a crash, or
//! whose check does not match, ends the journal: readers stop there and the writer cuts
//! the file back to it before it appends. Other processes (the CLI's `registrations`,
//! the admin API) only read.
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use crate::{BindingOp, BindingRow, StoreError};

/// The file's name in the data directory.
pub(crate) const FILE: &str = "bindings.journal";
/// The first bytes of a journal (format 1).
const MAGIC: &[u8; 8] = b"PALBJ1\r\n";
/// The smallest journal that is ever folded.
const COMPACT_MIN: u64 = 4 << 20;
/// The largest record a reader accepts (a binding's strings are bounded far below this
/// by the SIP parser's limits; anything longer is damage).
const MAX_RECORD: usize = 1 << 20;
const SAVE: u8 = 1;
const REMOVE: u8 = 2;

fn io_err(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Journal {
        path: path.display().to_string(),
        source,
    }
}

/// The check of a record: FNV-1a's constants over 8-byte words, then the tail bytes.
/// It finds torn and zero-filled tails, not an adversary (the file is the server's own).
fn check(payload: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut words = payload.chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        h = (h ^ u64::from_le_bytes(b)).wrapping_mul(0x0100_0000_01b3);
    }
    for &b in words.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (h ^ payload.len() as u64).wrapping_mul(0x0100_0000_01b3)
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(s.as_bytes().get(..len as usize).unwrap_or_default());
}

/// Appends one operation as a record to `out`.
fn encode(out: &mut Vec<u8>, op: &BindingOp) {
    let start = out.len();
    out.extend_from_slice(&[0u8; 12]);
    match op {
        BindingOp::Save(b) => {
            out.push(SAVE);
            put_str(out, &b.aor);
            put_str(out, &b.contact);
            out.extend_from_slice(&b.expires.to_le_bytes());
            out.extend_from_slice(&b.q.to_le_bytes());
            put_str(out, &b.call_id);
            out.extend_from_slice(&b.cseq.to_le_bytes());
            for s in [
                &b.path,
                &b.transport,
                &b.source,
                &b.user_agent,
                &b.node,
                &b.flow,
            ] {
                put_str(out, s);
            }
        }
        BindingOp::Remove { aor, contact, node } => {
            out.push(REMOVE);
            put_str(out, aor);
            put_str(out, contact);
            put_str(out, node);
        }
    }
    let payload = out.get(start + 12..).unwrap_or_default();
    let len = u32::try_from(payload.len())
        .unwrap_or(u32::MAX)
        .to_le_bytes();
    let sum = check(payload).to_le_bytes();
    if let Some(head) = out.get_mut(start..start + 12) {
        let (l, c) = head.split_at_mut(4);
        l.copy_from_slice(&len);
        c.copy_from_slice(&sum);
    }
}

/// Reads a record's fields in order; `None` on a payload that does not hold them.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn bytes<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    fn string(&mut self) -> Option<String> {
        let len = u32::from_le_bytes(self.bytes::<4>()?) as usize;
        let (s, rest) = self.0.split_at_checked(len)?;
        self.0 = rest;
        String::from_utf8(s.to_vec()).ok()
    }
}

fn decode(payload: &[u8]) -> Option<BindingOp> {
    let (&op, rest) = payload.split_first()?;
    let mut f = Fields(rest);
    let op = match op {
        SAVE => BindingOp::Save(BindingRow {
            aor: f.string()?,
            contact: f.string()?,
            expires: i64::from_le_bytes(f.bytes()?),
            q: u16::from_le_bytes(f.bytes()?),
            call_id: f.string()?,
            cseq: u32::from_le_bytes(f.bytes()?),
            path: f.string()?,
            transport: f.string()?,
            source: f.string()?,
            user_agent: f.string()?,
            node: f.string()?,
            flow: f.string()?,
        }),
        REMOVE => BindingOp::Remove {
            aor: f.string()?,
            contact: f.string()?,
            node: f.string()?,
        },
        _ => return None,
    };
    f.0.is_empty().then_some(op)
}

/// The location as a fold of operations: (AOR, Contact) → binding.
pub(crate) type Fold = BTreeMap<(String, String), BindingRow>;

/// Applies one operation to a fold, as the server's location does: a save replaces, a
/// remove takes the binding only if the same node saved it.
pub(crate) fn apply(fold: &mut Fold, op: BindingOp) {
    match op {
        BindingOp::Save(b) => {
            fold.insert((b.aor.clone(), b.contact.clone()), b);
        }
        BindingOp::Remove { aor, contact, node } => {
            let key = (aor, contact);
            if fold.get(&key).is_some_and(|b| b.node == node) {
                fold.remove(&key);
            }
        }
    }
}

/// Folds the journal's bytes into `fold`; returns how many bytes were whole records
/// (the rest, if any, is a torn or damaged tail). A file that is not a journal is an
/// error; an empty one is an empty journal.
fn fold_bytes(path: &Path, data: &[u8], fold: &mut Fold) -> Result<usize, StoreError> {
    if data.is_empty() {
        return Ok(0);
    }
    let Some(mut rest) = data.strip_prefix(MAGIC.as_slice()) else {
        if MAGIC.starts_with(data) {
            // the header itself was cut short: nothing was ever written after it
            return Ok(0);
        }
        return Err(io_err(
            path,
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not a Palisade bindings journal (its first bytes differ)",
            ),
        ));
    };
    let mut good = MAGIC.len();
    while let Some((head, body)) = rest.split_first_chunk::<12>() {
        let (l, c) = head.split_at(4);
        let len = u32::from_le_bytes(l.try_into().unwrap_or_default()) as usize;
        let sum = u64::from_le_bytes(c.try_into().unwrap_or_default());
        if len == 0 || len > MAX_RECORD {
            break;
        }
        let Some((payload, after)) = body.split_at_checked(len) else {
            break;
        };
        if check(payload) != sum {
            break;
        }
        let Some(op) = decode(payload) else { break };
        apply(fold, op);
        good += 12 + len;
        rest = after;
    }
    Ok(good)
}

/// Reads and folds the journal of `dir` (missing: empty).
pub(crate) fn read(dir: &Path, fold: &mut Fold) -> Result<(), StoreError> {
    let path = dir.join(FILE);
    match std::fs::read(&path) {
        Ok(data) => fold_bytes(&path, &data, fold).map(|_| ()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(&path, e)),
    }
}

/// The writer's end of the journal: one per data directory (the server's storage
/// thread; the CLI never writes bindings).
pub(crate) struct Journal {
    dir: PathBuf,
    path: PathBuf,
    file: File,
    len: u64,
    /// The length past which the next append folds the file.
    compact_at: u64,
    /// Every append durable before it returns (the server's writer: one per group
    /// commit).
    pub(crate) sync: bool,
    /// The file was opened with `O_DSYNC`: each `write` returns once its data is on
    /// disk, so a synced append is one system call, not a `write` and an `fdatasync`.
    dsync: bool,
    buf: Vec<u8>,
}

/// Opens the journal for appending, with `O_DSYNC` when `dsync`.
fn open_append(path: &Path, dsync: bool, read: bool) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    OpenOptions::new()
        .read(read)
        .append(true)
        .create(true)
        .custom_flags(if dsync { libc::O_DSYNC } else { 0 })
        .open(path)
}

impl Journal {
    /// Opens the journal of `dir` for appending (creating it): a torn tail is cut off
    /// first, so that what is appended next is read. `sync`: every append is durable
    /// when it returns (the file is opened with `O_DSYNC`).
    pub(crate) fn open(dir: &Path, sync: bool) -> Result<Journal, StoreError> {
        let path = dir.join(FILE);
        let mut file = open_append(&path, sync, true).map_err(|e| io_err(&path, e))?;
        let mut data = Vec::new();
        file.read_to_end(&mut data).map_err(|e| io_err(&path, e))?;
        let mut fold = Fold::new();
        let good = fold_bytes(&path, &data, &mut fold)?;
        let mut len = data.len() as u64;
        if good < MAGIC.len() {
            // new, or only a cut header: start it afresh
            file.set_len(0).map_err(|e| io_err(&path, e))?;
            file.write_all(MAGIC).map_err(|e| io_err(&path, e))?;
            file.sync_all().map_err(|e| io_err(&path, e))?;
            sync_dir(dir)?;
            len = MAGIC.len() as u64;
        } else if (good as u64) < len {
            tracing::warn!(
                path = %path.display(),
                cut = len - good as u64,
                "bytes after the bindings journal's last whole record (a write cut short by a crash) were cut off"
            );
            file.set_len(good as u64).map_err(|e| io_err(&path, e))?;
            file.sync_all().map_err(|e| io_err(&path, e))?;
            len = good as u64;
        }
        Ok(Journal {
            dir: dir.to_path_buf(),
            path,
            file,
            len,
            compact_at: COMPACT_MIN.max(len.saturating_mul(2)),
            sync,
            dsync: sync,
            buf: Vec::new(),
        })
    }

    /// Appends a batch in one write (synced when [`Journal::sync`] is set); folds the
    /// file when it has grown enough. `now_unix` drops expired bindings from a fold.
    pub(crate) fn append(&mut self, ops: &[BindingOp], now_unix: i64) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        self.buf.clear();
        for op in ops {
            encode(&mut self.buf, op);
        }
        if let Err(e) = self.file.write_all(&self.buf) {
            // a partial write would leave a torn record before the next batch: cut it
            let _ = self.file.set_len(self.len);
            return Err(io_err(&self.path, e));
        }
        self.len += self.buf.len() as u64;
        if self.sync && !self.dsync {
            self.file.sync_data().map_err(|e| io_err(&self.path, e))?;
        }
        if self.len > self.compact_at {
            self.compact(now_unix)?;
        }
        Ok(())
    }

    /// Rewrites the journal as the live bindings alone: a new file, synced, renamed
    /// over the old one, the directory synced; then appends go to the new file.
    pub(crate) fn compact(&mut self, now_unix: i64) -> Result<(), StoreError> {
        let mut fold = Fold::new();
        read(&self.dir, &mut fold)?;
        let tmp = self.dir.join(format!("{FILE}.tmp"));
        self.buf.clear();
        self.buf.extend_from_slice(MAGIC);
        for b in fold.into_values().filter(|b| b.expires > now_unix) {
            encode(&mut self.buf, &BindingOp::Save(b));
        }
        let mut f = File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
        f.write_all(&self.buf).map_err(|e| io_err(&tmp, e))?;
        f.sync_all().map_err(|e| io_err(&tmp, e))?;
        drop(f);
        std::fs::rename(&tmp, &self.path).map_err(|e| io_err(&self.path, e))?;
        sync_dir(&self.dir)?;
        self.file =
            open_append(&self.path, self.dsync, false).map_err(|e| io_err(&self.path, e))?;
        self.len = self.buf.len() as u64;
        self.compact_at = COMPACT_MIN.max(self.len.saturating_mul(2));
        self.buf = Vec::new();
        Ok(())
    }
}

/// Makes a rename or a creation in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, e))
}

/// Now, in Unix seconds (0 before 1970).
pub(crate) fn unix_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl crate::SqliteStore {
    /// Rows of the `bindings` table: where bindings were kept before the journal. The
    /// journal's writer moves them into the journal when it opens; until then (a file
    /// from an earlier version that no server has opened since) they are read from here.
    pub(crate) fn table_bindings(&self) -> Result<Vec<BindingRow>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT aor, contact, expires, q, call_id, cseq, path, transport, source, user_agent, node, flow
             FROM bindings",
        )?;
        let rows = st.query_map([], |r| {
            Ok(BindingRow {
                aor: r.get(0)?,
                contact: r.get(1)?,
                expires: r.get(2)?,
                q: r.get(3)?,
                call_id: r.get(4)?,
                cseq: r.get(5)?,
                path: r.get(6)?,
                transport: r.get(7)?,
                source: r.get(8)?,
                user_agent: r.get(9)?,
                node: r.get(10)?,
                flow: r.get(11)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The journal's writer end, opened on first use. Opening moves the rows of the
    /// old `bindings` table into the journal (appended as saves and synced, then
    /// deleted from the table): after a crash between the two they are appended again
    /// at the next open, which changes nothing (the journal gets no other change before
    /// the table is empty).
    pub(crate) fn journal_writer(&mut self) -> Result<&mut Journal, StoreError> {
        let sync = self.sync.load(std::sync::atomic::Ordering::Relaxed);
        if self.journal.is_none() {
            let dir = self.dir.clone().ok_or_else(|| {
                StoreError::Config("this handle (records.db) keeps no bindings".to_string())
            })?;
            let mut j = Journal::open(&dir, sync)?;
            let old: Vec<BindingOp> = self
                .table_bindings()?
                .into_iter()
                .map(BindingOp::Save)
                .collect();
            if !old.is_empty() {
                j.sync = true;
                j.append(&old, unix_seconds())?;
                self.conn.execute("DELETE FROM bindings", [])?;
                tracing::info!(
                    bindings = old.len(),
                    "bindings moved from palisade.db into bindings.journal"
                );
            }
            self.journal = Some(j);
        }
        let j = self
            .journal
            .as_mut()
            .ok_or_else(|| StoreError::Config("bindings journal not open".to_string()))?;
        j.sync = sync;
        Ok(j)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::Storage as _;

    fn row(aor: &str, contact: &str, expires: i64, node: &str) -> BindingRow {
        BindingRow {
            aor: aor.into(),
            contact: contact.into(),
            expires,
            q: 1000,
            call_id: "c@h".into(),
            cseq: 7,
            path: "<sip:p1>\n<sip:p2>".into(),
            transport: "udp".into(),
            source: "192.0.2.1:5060".into(),
            user_agent: "Phone/1 ünïcode".into(),
            node: node.into(),
            flow: "f".into(),
        }
    }

    fn tmp(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("palisade-journal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn folded(dir: &Path) -> Vec<BindingRow> {
        let mut f = Fold::new();
        read(dir, &mut f).unwrap();
        f.into_values().collect()
    }

    #[test]
    fn the_last_change_of_each_binding_wins_and_a_remove_needs_its_node() {
        let dir = tmp("fold");
        // (synced, as the server's writer: O_DSYNC)
        let mut j = Journal::open(&dir, true).unwrap();
        let a1 = row("a@x", "sip:a@1", 100, "");
        let mut a1b = a1.clone();
        a1b.expires = 200;
        j.append(
            &[
                BindingOp::Save(a1.clone()),
                BindingOp::Save(row("b@x", "sip:b@1", 100, "n1")),
                BindingOp::Save(a1b.clone()),
                BindingOp::Remove {
                    aor: "b@x".into(),
                    contact: "sip:b@1".into(),
                    node: "n2".into(),
                },
            ],
            0,
        )
        .unwrap();
        assert_eq!(folded(&dir), vec![a1b, row("b@x", "sip:b@1", 100, "n1")]);
        j.append(
            &[BindingOp::Remove {
                aor: "b@x".into(),
                contact: "sip:b@1".into(),
                node: "n1".into(),
            }],
            0,
        )
        .unwrap();
        assert_eq!(folded(&dir).len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_torn_tail_is_ignored_by_readers_and_cut_by_the_writer() {
        let dir = tmp("torn");
        let a = row("a@x", "sip:a@1", 100, "");
        let b = row("b@x", "sip:b@1", 100, "");
        Journal::open(&dir, false)
            .unwrap()
            .append(&[BindingOp::Save(a.clone()), BindingOp::Save(b.clone())], 0)
            .unwrap();
        let path = dir.join(FILE);
        let whole = std::fs::read(&path).unwrap();
        // every cut inside the second record leaves the first alone
        let mut one = Vec::new();
        encode(&mut one, &BindingOp::Save(a.clone()));
        let first_end = MAGIC.len() + one.len();
        for cut in first_end..whole.len() {
            std::fs::write(&path, &whole[..cut]).unwrap();
            assert_eq!(folded(&dir), vec![a.clone()], "cut at {cut}");
        }
        // a damaged byte in the second record ends the journal there too
        let mut bad = whole.clone();
        let last = bad.len() - 3;
        bad[last] ^= 0x55;
        std::fs::write(&path, &bad).unwrap();
        assert_eq!(folded(&dir), vec![a.clone()]);
        // zeros past the end (a file extended by a crash) likewise
        let mut zeros = whole[..first_end].to_vec();
        zeros.extend_from_slice(&[0u8; 64]);
        std::fs::write(&path, &zeros).unwrap();
        assert_eq!(folded(&dir), vec![a.clone()]);
        // the writer cuts the tail, so its next append is read
        let mut j = Journal::open(&dir, false).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            first_end as u64,
            "the zeros were cut"
        );
        j.append(&[BindingOp::Save(b.clone())], 0).unwrap();
        assert_eq!(folded(&dir), vec![a, b]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_file_that_is_not_a_journal_is_refused_not_overwritten() {
        let dir = tmp("foreign");
        std::fs::write(dir.join(FILE), b"SQLite format 3\0 and more").unwrap();
        assert!(matches!(
            Journal::open(&dir, false),
            Err(StoreError::Journal { .. })
        ));
        let mut f = Fold::new();
        assert!(read(&dir, &mut f).is_err());
        assert_eq!(
            std::fs::read(dir.join(FILE)).unwrap(),
            b"SQLite format 3\0 and more"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_fold_keeps_the_live_bindings_and_appends_continue_after_it() {
        let dir = tmp("compact");
        let mut j = Journal::open(&dir, false).unwrap();
        for i in 0..50 {
            let expires = if i % 2 == 0 { 1000 } else { 10 };
            j.append(
                &[BindingOp::Save(row(
                    &format!("u{i}@x"),
                    "sip:c",
                    expires,
                    "",
                ))],
                0,
            )
            .unwrap();
        }
        let before = std::fs::metadata(dir.join(FILE)).unwrap().len();
        j.compact(500).unwrap();
        let after = std::fs::metadata(dir.join(FILE)).unwrap().len();
        assert!(after < before, "{after} < {before}");
        assert_eq!(folded(&dir).len(), 25, "the expired half is gone");
        j.append(&[BindingOp::Save(row("late@x", "sip:c", 1000, ""))], 500)
            .unwrap();
        let all = folded(&dir);
        assert_eq!(all.len(), 26);
        assert!(all.iter().any(|b| b.aor == "late@x"));
        assert!(!dir.join(format!("{FILE}.tmp")).exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn every_record_decodes_to_what_was_encoded() {
        for op in [
            BindingOp::Save(row("a@x", "sip:a@[2001:db8::1]:5060;ob", -5, "node-1")),
            BindingOp::Remove {
                aor: String::new(),
                contact: "sip:a".into(),
                node: "n".into(),
            },
        ] {
            let mut out = Vec::new();
            encode(&mut out, &op);
            let back = decode(&out[12..]).unwrap();
            let mut again = Vec::new();
            encode(&mut again, &back);
            assert_eq!(out, again);
        }
    }

    #[test]
    fn bindings_of_the_old_table_are_read_and_moved_into_the_journal() {
        let dir = std::env::temp_dir().join(format!("palisade-store-move-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let s = crate::SqliteStore::open(&dir).unwrap();
            s.conn
                .execute(
                    "INSERT INTO bindings (aor, contact, expires, q, call_id, cseq, path, transport, source, user_agent)
                     VALUES ('a@x', 'sip:a@1', 5000, 1000, 'c', 1, '', 'udp', '192.0.2.1:5060', 'ua')",
                    [],
                )
                .unwrap();
        }
        let mut s = crate::SqliteStore::open(&dir).unwrap();
        assert_eq!(
            s.load_bindings(1000).unwrap().len(),
            1,
            "read from the table"
        );
        let b = BindingRow {
            aor: "b@x".into(),
            contact: "sip:b@1".into(),
            expires: 5000,
            q: 1000,
            call_id: "c".into(),
            cseq: 1,
            path: String::new(),
            transport: "udp".into(),
            source: "192.0.2.2:5060".into(),
            user_agent: "ua".into(),
            node: String::new(),
            flow: String::new(),
        };
        s.apply_bindings(&[BindingOp::Save(b)]).unwrap();
        let left: i64 = s
            .conn
            .query_row("SELECT COUNT(*) FROM bindings", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0, "the table was emptied");
        let all = crate::SqliteStore::open(&dir)
            .unwrap()
            .load_bindings(1000)
            .unwrap();
        let aors: Vec<&str> = all.iter().map(|b| b.aor.as_str()).collect();
        assert_eq!(aors, ["a@x", "b@x"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
