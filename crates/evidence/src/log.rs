//! The appender: entries go to a write-ahead journal (group commit: one `fdatasync` for
//! many entries), and at each checkpoint to the tiles and entry bundles of the
//! `tlog-tiles` layout, then a signed checkpoint (written to a temporary file, synced,
//! renamed, directory synced). Only the right edge of the tree is kept in memory (at
//! most 255 hashes per tile level). After a crash, the state is the last checkpoint's
//! tiles plus the journal's entries after it: nothing that was committed is lost, and
//! every checkpoint ever published stays a prefix of the next.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::merkle::{leaf_hash, node_hash, tree_hash, Hash, HashReader, ProofError};
use crate::note::{Checkpoint, NoteSigner, NoteVerifier};
use crate::tiles::{
    bundle_path, fold, parse_bundle, tile_path, TileReader, MAX_ENTRY, TILE_HEIGHT, TILE_WIDTH,
};

/// Why the log could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The stored log is not consistent (a tile missing or short, a checkpoint that does
    /// not verify with this log's key).
    #[error("{0}")]
    Corrupt(String),
    /// An entry longer than 65,535 bytes.
    #[error("entry of {0} bytes (at most 65535)")]
    TooLong(usize),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LogError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    replace_file(path, bytes)
}

/// [`write_atomic`] of a file whose directory exists.
fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), LogError> {
    let tmp = path.with_extension("tmp-write");
    let mut f = File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_data().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    Ok(())
}

/// fsync of a directory (makes renames and new files in it durable).
pub fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// Hashes of the right edge of a tree of `size`: per tile level, the hashes of its
/// current partial tile.
struct Edge<'a> {
    levels: &'a [Vec<Hash>],
    size: u64,
}

impl HashReader for Edge<'_> {
    fn hash(&self, level: u8, index: u64) -> Result<Hash, ProofError> {
        let missing = ProofError::Missing { level, index };
        let tl = level / TILE_HEIGHT;
        let sub = u32::from(level % TILE_HEIGHT);
        let first = index << sub;
        let at_level = self.size >> (u32::from(tl) * u32::from(TILE_HEIGHT));
        let start = at_level / TILE_WIDTH * TILE_WIDTH;
        let edge = self.levels.get(usize::from(tl)).ok_or(missing.clone())?;
        let from = first.checked_sub(start).ok_or(missing.clone())? as usize;
        let run = edge.get(from..from + (1usize << sub)).ok_or(missing)?;
        Ok(fold(run))
    }
}

/// The roots of the perfect subtrees the first `size` leaves split into (RFC 9162's
/// decomposition, largest first), with their heights.
fn compact_range(r: &dyn HashReader, size: u64) -> Result<Vec<(u8, Hash)>, ProofError> {
    let mut out = Vec::new();
    let mut start = 0u64;
    for height in (0..64u8).rev() {
        let w = 1u64 << height;
        if size & w != 0 {
            out.push((height, r.hash(height, start >> height)?));
            start += w;
        }
    }
    Ok(out)
}

/// An append-only log in a directory (see the module documentation).
pub struct Log {
    dir: PathBuf,
    signer: NoteSigner,
    size: u64,
    durable: u64,
    published: u64,
    edge: Vec<Vec<Hash>>,
    /// The roots of the perfect subtrees the tree splits into, largest (leftmost) first,
    /// with their heights: kept as entries are added (one node hash per entry,
    /// amortized), so that a checkpoint's root is a fold of a few hashes, not of the
    /// partial tiles (up to 255 node hashes per tile level at every checkpoint).
    range: Vec<(u8, Hash)>,
    bundle: Vec<u8>,
    /// Full tiles and bundles completed since the last checkpoint: (path, bytes).
    pending: Vec<(String, Vec<u8>)>,
    /// Per tile level, the partial tile the last checkpoint wrote. A partial tile's path
    /// names its level, index and width, and its hashes follow from those, so a level
    /// whose edge did not move since (every level above 0 but once in 256 entries) is
    /// not written again.
    edge_on_disk: Vec<String>,
    /// Directories of the log known to exist (made or written in by this process).
    dirs_made: BTreeSet<PathBuf>,
    wal: BufWriter<File>,
    wal_path: PathBuf,
    /// The published checkpoint's note, with the cosignatures added to it.
    note: String,
}

const WAL: &str = "journal";

impl Log {
    /// Opens (creating) the log in `dir`, signed by `signer` (whose name is the origin).
    pub fn open(dir: &Path, signer: NoteSigner) -> Result<Log, LogError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let wal_path = dir.join(WAL);
        let verifier = NoteVerifier::parse(&signer.verifier_key())
            .map_err(|e| LogError::Corrupt(e.to_string()))?;
        let cp_path = dir.join("checkpoint");
        let published = match std::fs::read_to_string(&cp_path) {
            Ok(note) => {
                let text = verifier.open(&note).map_err(|e| {
                    LogError::Corrupt(format!(
                        "checkpoint does not verify with this log's key: {e}"
                    ))
                })?;
                let cp = Checkpoint::parse(text).map_err(|e| LogError::Corrupt(e.to_string()))?;
                Some(cp)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(&cp_path)(e)),
        };
        let mut log = Log {
            dir: dir.to_path_buf(),
            size: 0,
            durable: 0,
            published: 0,
            edge: Vec::new(),
            range: Vec::new(),
            bundle: Vec::new(),
            pending: Vec::new(),
            edge_on_disk: Vec::new(),
            dirs_made: BTreeSet::new(),
            wal: BufWriter::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .read(true)
                    .open(&wal_path)
                    .map_err(io(&wal_path))?,
            ),
            wal_path,
            signer,
            note: String::new(),
        };
        if let Some(cp) = published {
            log.load(&cp)?;
            log.note = std::fs::read_to_string(&cp_path).map_err(io(&cp_path))?;
        }
        log.replay()?;
        Ok(log)
    }

    /// Rebuilds the right edge from the tiles of a checkpoint.
    fn load(&mut self, cp: &Checkpoint) -> Result<(), LogError> {
        let n = cp.size;
        let mut level: u8 = 0;
        loop {
            let at_level = n >> (u32::from(level) * u32::from(TILE_HEIGHT));
            if at_level == 0 {
                break;
            }
            let w = at_level % TILE_WIDTH;
            let mut hashes = Vec::new();
            if w > 0 {
                let p = tile_path(level, at_level / TILE_WIDTH, w);
                let t = std::fs::read(self.dir.join(&p))
                    .map_err(|e| LogError::Corrupt(format!("{p}: {e}")))?;
                if t.len() as u64 != w * 32 {
                    return Err(LogError::Corrupt(format!(
                        "{p}: {} bytes, expected {}",
                        t.len(),
                        w * 32
                    )));
                }
                hashes = t.chunks(32).filter_map(|c| c.try_into().ok()).collect();
            }
            self.edge.push(hashes);
            level += 1;
        }
        let w = n % TILE_WIDTH;
        if w > 0 {
            let p = bundle_path(n / TILE_WIDTH, w);
            let b = std::fs::read(self.dir.join(&p))
                .map_err(|e| LogError::Corrupt(format!("{p}: {e}")))?;
            match parse_bundle(&b) {
                Ok(e) if e.len() as u64 == w => self.bundle = b,
                _ => return Err(LogError::Corrupt(format!("{p}: not {w} entries"))),
            }
        }
        self.size = n;
        self.durable = n;
        self.published = n;
        let root = tree_hash(
            &Edge {
                levels: &self.edge,
                size: n,
            },
            n,
        )
        .map_err(|e| LogError::Corrupt(format!("right edge: {e}")))?;
        if root != cp.root {
            return Err(LogError::Corrupt(
                "the tiles do not give the checkpoint's root".into(),
            ));
        }
        self.range = compact_range(
            &Edge {
                levels: &self.edge,
                size: n,
            },
            n,
        )
        .map_err(|e| LogError::Corrupt(format!("right edge: {e}")))?;
        Ok(())
    }

    /// Appends the journal's entries after the loaded state (a torn last record ends it).
    fn replay(&mut self) -> Result<(), LogError> {
        let mut f = File::open(&self.wal_path).map_err(io(&self.wal_path))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf).map_err(io(&self.wal_path))?;
        let mut at = 0usize;
        let mut entries = Vec::new();
        while let (Some(ix), Some(len)) = (buf.get(at..at + 8), buf.get(at + 8..at + 10)) {
            let index = u64::from_be_bytes(ix.try_into().unwrap_or([0; 8]));
            let len = usize::from(u16::from_be_bytes(len.try_into().unwrap_or([0; 2])));
            let Some(e) = buf.get(at + 10..at + 10 + len) else {
                break; // torn write: never acknowledged
            };
            entries.push((index, e.to_vec()));
            at += 10 + len;
        }
        for (index, e) in entries {
            if index < self.size {
                continue; // already in the tiles
            }
            if index != self.size {
                return Err(LogError::Corrupt(format!(
                    "journal jumps from entry {} to {index}",
                    self.size
                )));
            }
            self.add(&e);
        }
        self.durable = self.size;
        Ok(())
    }

    /// Entries appended (committed or not).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Entries made durable by [`Log::commit`].
    pub fn durable(&self) -> u64 {
        self.durable
    }

    /// Entries covered by the last signed checkpoint.
    pub fn published(&self) -> u64 {
        self.published
    }

    /// The verifier key of this log.
    pub fn verifier_key(&self) -> String {
        self.signer.verifier_key()
    }

    fn add(&mut self, entry: &[u8]) {
        let len = entry.len().min(MAX_ENTRY) as u16;
        self.bundle.extend_from_slice(&len.to_be_bytes());
        self.bundle.extend_from_slice(entry);
        let mut h = leaf_hash(entry);
        let mut node = (0u8, h);
        // the root of a tile this entry completes is made here on the way (height 8 for
        // a tile of entry hashes, 16 for one of tile hashes, ...)
        let mut tile_roots: [Option<Hash>; 8] = [None; 8];
        while let Some(&(height, left)) = self.range.last() {
            if height != node.0 {
                break;
            }
            self.range.pop();
            node = (height.saturating_add(1), node_hash(&left, &node.1));
            if node.0.is_multiple_of(TILE_HEIGHT) {
                let tile_level = usize::from(node.0 / TILE_HEIGHT).checked_sub(1);
                if let Some(slot) = tile_level.and_then(|l| tile_roots.get_mut(l)) {
                    *slot = Some(node.1);
                }
            }
        }
        self.range.push(node);
        let mut level = 0usize;
        loop {
            if self.edge.len() <= level {
                self.edge.push(Vec::new());
            }
            let Some(e) = self.edge.get_mut(level) else {
                break;
            };
            e.push(h);
            if e.len() as u64 != TILE_WIDTH {
                break;
            }
            let full = std::mem::take(e);
            let index = (self.size >> (level as u32 * u32::from(TILE_HEIGHT))) / TILE_WIDTH;
            h = tile_roots
                .get(level)
                .copied()
                .flatten()
                .unwrap_or_else(|| fold(&full));
            let bytes: Vec<u8> = full.iter().flatten().copied().collect();
            self.pending
                .push((tile_path(level as u8, index, TILE_WIDTH), bytes));
            level += 1;
        }
        self.size += 1;
        if self.size.is_multiple_of(TILE_WIDTH) {
            let b = std::mem::take(&mut self.bundle);
            self.pending
                .push((bundle_path(self.size / TILE_WIDTH - 1, TILE_WIDTH), b));
        }
    }

    /// Appends an entry (to memory and the journal's buffer); its index. Durable only
    /// after [`Log::commit`].
    pub fn append(&mut self, entry: &[u8]) -> Result<u64, LogError> {
        if entry.len() > MAX_ENTRY {
            return Err(LogError::TooLong(entry.len()));
        }
        let index = self.size;
        let mut rec = Vec::with_capacity(10 + entry.len());
        rec.extend_from_slice(&index.to_be_bytes());
        rec.extend_from_slice(&(entry.len() as u16).to_be_bytes());
        rec.extend_from_slice(entry);
        self.wal.write_all(&rec).map_err(io(&self.wal_path))?;
        // `add` advances `size` only after the journal accepted the record
        self.add(entry);
        Ok(index)
    }

    /// Group commit: makes every appended entry durable (one `fdatasync`); the new
    /// durable size.
    pub fn commit(&mut self) -> Result<u64, LogError> {
        if self.durable == self.size {
            return Ok(self.durable);
        }
        self.wal.flush().map_err(io(&self.wal_path))?;
        self.wal.get_ref().sync_data().map_err(io(&self.wal_path))?;
        self.durable = self.size;
        Ok(self.durable)
    }

    /// The tree head of everything appended.
    pub fn root(&self) -> Option<Hash> {
        if self.size == 0 {
            return None;
        }
        // RFC 9162's head: the left subtree is the largest perfect one, the right the
        // head of the rest, so the roots fold from the right.
        let mut it = self.range.iter().rev();
        let mut h = it.next()?.1;
        for (_, left) in it {
            h = node_hash(left, &h);
        }
        Some(h)
    }

    /// Writes the tiles and bundles and a signed checkpoint covering every committed
    /// entry (commits first). `None` when there is nothing new, or nothing at all (a
    /// size-0 checkpoint is never published).
    pub fn checkpoint(&mut self) -> Result<Option<Checkpoint>, LogError> {
        self.commit()?;
        if self.size == 0 || self.size == self.published {
            return Ok(None);
        }
        let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
        // (the completed tiles stay pending until the checkpoint is written: a failed one
        // is tried again whole at the next)
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        let mut edge_paths = Vec::with_capacity(self.edge.len());
        for (level, e) in self.edge.iter().enumerate() {
            let mut path = String::new();
            if !e.is_empty() {
                let at_level = self.size >> (level as u32 * u32::from(TILE_HEIGHT));
                path = tile_path(level as u8, at_level / TILE_WIDTH, e.len() as u64);
                if self.edge_on_disk.get(level) != Some(&path) {
                    files.push((path.clone(), e.iter().flatten().copied().collect()));
                }
            }
            edge_paths.push(path);
        }
        let w = self.size % TILE_WIDTH;
        if w > 0 {
            files.push((bundle_path(self.size / TILE_WIDTH, w), self.bundle.clone()));
        }
        if self.dirs_made.len() > 4096 {
            // (a bound: a log of billions of entries has more tile directories)
            self.dirs_made.clear();
        }
        for (p, bytes) in self.pending.iter().chain(&files) {
            let path = self.dir.join(p);
            if let Some(d) = path.parent() {
                if !self.dirs_made.contains(d) {
                    std::fs::create_dir_all(d).map_err(io(d))?;
                    self.dirs_made.insert(d.to_path_buf());
                }
                dirs.insert(d.to_path_buf());
            }
            if let Err(e) = replace_file(&path, bytes) {
                // (a directory removed under the log is made again next time)
                self.dirs_made.clear();
                return Err(e);
            }
        }
        for d in &dirs {
            sync_dir(d)?;
        }
        self.pending.clear();
        self.edge_on_disk = edge_paths;
        let cp = Checkpoint {
            origin: self.signer.name().to_string(),
            size: self.size,
            root: self
                .root()
                .ok_or_else(|| LogError::Corrupt("no root".into()))?,
        };
        let note = self.signer.sign(&cp.text());
        replace_file(&self.dir.join("checkpoint"), note.as_bytes())?;
        sync_dir(&self.dir)?;
        self.published = self.size;
        self.note = note;
        // The journal's entries are in the tiles now.
        self.wal.flush().map_err(io(&self.wal_path))?;
        let f = self.wal.get_mut();
        f.set_len(0).map_err(io(&self.wal_path))?;
        f.seek(SeekFrom::Start(0)).map_err(io(&self.wal_path))?;
        f.sync_data().map_err(io(&self.wal_path))?;
        Ok(Some(cp))
    }

    /// The published checkpoint as a signed note (with its cosignatures).
    pub fn note(&self) -> &str {
        &self.note
    }

    /// Adds witnesses' cosignature lines to the published checkpoint of `size` (the
    /// file is rewritten atomically). `false` when a newer checkpoint was published
    /// since (the lines are for an older one and are not added).
    pub fn add_cosignatures(&mut self, size: u64, lines: &str) -> Result<bool, LogError> {
        if size != self.published || self.note.is_empty() {
            return Ok(false);
        }
        let mut note = self.note.clone();
        for l in lines.lines().filter(|l| l.starts_with('\u{2014}')) {
            if !note.lines().any(|have| have == l) {
                note.push_str(l);
                note.push('\n');
            }
        }
        write_atomic(&self.dir.join("checkpoint"), note.as_bytes())?;
        sync_dir(&self.dir)?;
        self.note = note;
        Ok(true)
    }

    /// A reader of the published tree's hashes (for proofs).
    pub fn reader(&self) -> TileReader {
        TileReader::new(&self.dir, self.published)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The head the right edge's tiles give (as before the head was kept).
    fn tiles_head(log: &Log) -> Hash {
        let edge = Edge {
            levels: &log.edge,
            size: log.size,
        };
        tree_hash(&edge, log.size).unwrap()
    }

    /// The head kept as entries are added is the head the tiles give, at every size
    /// (across full tiles of both levels' partial runs), and after a reopen.
    #[test]
    fn the_kept_head_is_the_tiles_head_at_every_size() {
        let dir = std::env::temp_dir().join(format!("palisade-log-range-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let signer = || NoteSigner::new("example.com/range", &[9; 32]).unwrap();
        let mut log = Log::open(&dir, signer()).unwrap();
        assert_eq!(log.root(), None);
        for i in 0..700u32 {
            log.append(format!("entry {i}").as_bytes()).unwrap();
            assert_eq!(log.root(), Some(tiles_head(&log)), "size {}", log.size);
            if i == 300 || i == 520 {
                log.checkpoint().unwrap();
            }
        }
        let head = log.checkpoint().unwrap().unwrap().root;
        drop(log);
        let mut log = Log::open(&dir, signer()).unwrap();
        assert_eq!(log.root(), Some(head));
        log.append(b"one more").unwrap();
        assert_eq!(log.root(), Some(tiles_head(&log)));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A checkpoint writes a level's partial tile only when that edge moved, and one that
    /// fails (here: a directory stands where a completed tile goes) keeps the completed
    /// tiles for the next, which writes them: the reopened log has the same head.
    #[test]
    fn an_unmoved_partial_tile_is_kept_and_a_failed_checkpoint_loses_no_tile() {
        use std::os::unix::fs::MetadataExt;
        let dir = std::env::temp_dir().join(format!("palisade-log-edge-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let signer = || NoteSigner::new("example.com/edge", &[7; 32]).unwrap();
        let mut log = Log::open(&dir, signer()).unwrap();
        for i in 0..513u32 {
            log.append(format!("entry {i}").as_bytes()).unwrap();
        }
        log.checkpoint().unwrap().unwrap();
        let level1 = dir.join(tile_path(1, 0, 2));
        let inode = std::fs::metadata(&level1).unwrap().ino();
        log.append(b"entry 513").unwrap();
        log.checkpoint().unwrap().unwrap();
        assert_eq!(
            std::fs::metadata(&level1).unwrap().ino(),
            inode,
            "rewritten"
        );
        assert!(dir.join(tile_path(0, 2, 2)).is_file());

        for i in 514..768u32 {
            log.append(format!("entry {i}").as_bytes()).unwrap();
        }
        let full = dir.join(tile_path(0, 2, TILE_WIDTH));
        std::fs::create_dir_all(full.join("in-the-way")).unwrap();
        assert!(log.checkpoint().is_err());
        std::fs::remove_dir_all(&full).unwrap();
        let head = log.checkpoint().unwrap().unwrap().root;
        assert_eq!(
            std::fs::metadata(&full).unwrap().len(),
            TILE_WIDTH * 32,
            "the completed tile"
        );
        assert!(dir.join(tile_path(1, 0, 3)).is_file());
        drop(log);
        let log = Log::open(&dir, signer()).unwrap();
        assert_eq!(log.root(), Some(head));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
