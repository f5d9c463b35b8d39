//! Verification of a whole log from its files: the checkpoint's signature, every entry
//! bundle, every tile recomputed from the entries, the root, consistency with the last
//! checkpoint the verifier saw, and the blobs. A failure says where: the entry, the
//! tile path and hash, or the checkpoint line.

use std::path::Path;

use crate::merkle::{leaf_hash, tree_hash, Hash, MemoryTree};
use crate::note::{Checkpoint, NoteVerifier};
use crate::tiles::{bundle_path, fold, parse_bundle, tile_path, TILE_HEIGHT, TILE_WIDTH};

/// What was verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// The checkpoint's signed note as verified (with any cosignatures on it).
    pub note: String,
    /// Tiles compared (entry bundles included).
    pub tiles: usize,
    /// Blobs whose content matches their name.
    pub blobs: usize,
    /// The first entry whose bytes were verified: 0, unless a partial copy (an export
    /// `--since`) holds the entries before it only as hashes (checked against the root
    /// through the tiles).
    pub first_entry: u64,
}

/// A verification failure and where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {why}")]
pub struct VerifyError {
    /// A file (and position in it), or `checkpoint line N`.
    pub location: String,
    /// What is wrong.
    pub why: String,
}

fn fail(location: impl Into<String>, why: impl Into<String>) -> VerifyError {
    VerifyError {
        location: location.into(),
        why: why.into(),
    }
}

/// Reads and checks the checkpoint of the log in `dir`: it and its signed note as read.
pub fn read_checkpoint(
    dir: &Path,
    key: &NoteVerifier,
) -> Result<(Checkpoint, String), VerifyError> {
    let note = std::fs::read_to_string(dir.join("checkpoint"))
        .map_err(|e| fail("checkpoint", e.to_string()))?;
    let text = key.open(&note).map_err(|e| match e {
        crate::note::NoteError::Format { line, why } => {
            fail(format!("checkpoint line {line}"), why)
        }
        other => fail("checkpoint signature", other.to_string()),
    })?;
    let cp = Checkpoint::parse(text).map_err(|e| match e {
        crate::note::NoteError::Checkpoint { line, why } => {
            fail(format!("checkpoint line {line}"), why)
        }
        other => fail("checkpoint", other.to_string()),
    })?;
    if cp.origin != key.name() {
        return Err(fail(
            "checkpoint line 1",
            format!(
                "origin {:?} is not the key's name {:?}",
                cp.origin,
                key.name()
            ),
        ));
    }
    if cp.size == 0 {
        return Err(fail(
            "checkpoint line 2",
            "a size-0 checkpoint is never published",
        ));
    }
    Ok((cp, note))
}

/// The blob an entry names as kept: canonical JSON puts `message_kept` right before
/// `message_sha256`.
pub fn kept_blob(entry: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"message_kept\":true,\"message_sha256\":\"";
    let at = memchr::memmem::find(entry, KEY)? + KEY.len();
    let hex = entry.get(at..at + 64)?;
    hex.iter()
        .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
        .then(|| String::from_utf8_lossy(hex).into_owned())
}

/// Verifies the log in `dir` with `key`; `last` is the last checkpoint this verifier
/// accepted (the log must extend it).
pub fn verify_dir(
    dir: &Path,
    key: &NoteVerifier,
    last: Option<&Checkpoint>,
) -> Result<Verified, VerifyError> {
    verify_dir_from(dir, key, last, false)
}

/// As [`verify_dir`]; with `partial`, leading entry bundles may be missing (a copy
/// exported `--since`): their level-0 tiles stand for them, and everything from the
/// first bundle present on is verified entry by entry.
pub fn verify_dir_from(
    dir: &Path,
    key: &NoteVerifier,
    last: Option<&Checkpoint>,
    partial: bool,
) -> Result<Verified, VerifyError> {
    let (cp, note) = read_checkpoint(dir, key)?;
    let n = cp.size;
    if let Some(l) = last {
        if l.size > n {
            return Err(fail(
                "checkpoint line 2",
                format!(
                    "size {n} is older than the last checkpoint seen (size {})",
                    l.size
                ),
            ));
        }
    }
    // Entries, bundle by bundle.
    let mut tree = MemoryTree::new(&[]);
    let mut leaves: Vec<Hash> = Vec::with_capacity(n.min(1 << 24) as usize);
    let mut tiles = 0;
    // (entry index, blob name) of the entries whose content the blob store kept
    let mut named: Vec<(u64, String)> = Vec::new();
    let bundles = n.div_ceil(TILE_WIDTH);
    let first = if partial {
        (0..bundles)
            .find(|b| {
                let w = (n - b * TILE_WIDTH).min(TILE_WIDTH);
                dir.join(bundle_path(*b, w)).exists()
            })
            .ok_or_else(|| fail("tile/entries", "no entry bundle at all"))?
    } else {
        0
    };
    for b in 0..bundles {
        let w = (n - b * TILE_WIDTH).min(TILE_WIDTH);
        if b < first {
            // not exported: the level-0 tile holds these entries' hashes
            let p = tile_path(0, b, w);
            let bytes = std::fs::read(dir.join(&p)).map_err(|e| fail(&p, e.to_string()))?;
            if bytes.len() as u64 != w * 32 {
                return Err(fail(
                    &p,
                    format!("{} bytes, expected {} (truncated?)", bytes.len(), w * 32),
                ));
            }
            for c in bytes.chunks(32) {
                let h: Hash = c.try_into().unwrap_or([0; 32]);
                leaves.push(h);
                tree.push(h);
            }
            continue;
        }
        let p = bundle_path(b, w);
        let bytes = std::fs::read(dir.join(&p)).map_err(|e| fail(&p, e.to_string()))?;
        let entries = parse_bundle(&bytes).map_err(|off| {
            fail(
                format!("{p} byte {off}"),
                "entry length runs past the end (truncated?)",
            )
        })?;
        if entries.len() as u64 != w {
            return Err(fail(
                &p,
                format!("holds {} entries, the checkpoint needs {w}", entries.len()),
            ));
        }
        for (k, e) in entries.into_iter().enumerate() {
            if let Some(sha) = kept_blob(e) {
                named.push((b * TILE_WIDTH + k as u64, sha));
            }
            let h = leaf_hash(e);
            leaves.push(h);
            tree.push(h);
        }
        tiles += 1;
    }
    // Tiles, level by level, recomputed and compared.
    let mut hashes = leaves;
    let mut level: u8 = 0;
    while !hashes.is_empty() {
        let mut next = Vec::new();
        for (t, chunk) in hashes.chunks(TILE_WIDTH as usize).enumerate() {
            let w = chunk.len() as u64;
            let p = tile_path(level, t as u64, w);
            let bytes = std::fs::read(dir.join(&p)).map_err(|e| fail(&p, e.to_string()))?;
            if bytes.len() as u64 != w * 32 {
                return Err(fail(
                    &p,
                    format!("{} bytes, expected {} (truncated?)", bytes.len(), w * 32),
                ));
            }
            for (k, (got, want)) in bytes.chunks(32).zip(chunk).enumerate() {
                if got != want {
                    let first = (t as u64 * TILE_WIDTH + k as u64)
                        << (u32::from(level) * u32::from(TILE_HEIGHT));
                    return Err(fail(
                        format!("{p} hash {k}"),
                        format!("differs from the entries (the subtree from entry {first})"),
                    ));
                }
            }
            tiles += 1;
            if w == TILE_WIDTH {
                next.push(fold(chunk));
            }
        }
        hashes = next;
        level += 1;
    }
    let root = tree_hash(&tree, n).map_err(|e| fail("tree", e.to_string()))?;
    if root != cp.root {
        return Err(fail(
            "checkpoint line 3",
            "the root hash does not match the entries",
        ));
    }
    if let Some(l) = last {
        let old = tree_hash(&tree, l.size).map_err(|e| fail("tree", e.to_string()))?;
        if old != l.root || l.origin != cp.origin {
            return Err(fail(
                "checkpoint",
                format!(
                    "not consistent with the last checkpoint seen (size {}): the log was rewritten",
                    l.size
                ),
            ));
        }
    }
    // Blobs: each named by the SHA-256 of its content; each one an entry says was kept
    // is there.
    let mut blobs = 0;
    let naming = |name: &str| {
        named
            .iter()
            .find(|(_, n)| n == name)
            .map_or(String::new(), |(i, _)| format!(" (named by entry {i})"))
    };
    let blob_dir = dir.join("blobs");
    if let Ok(rd) = std::fs::read_dir(&blob_dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let content = std::fs::read(e.path())
                .map_err(|err| fail(format!("blobs/{name}"), err.to_string()))?;
            let h = crate::sha256_hex(&content);
            if h != name {
                return Err(fail(
                    format!("blobs/{name}{}", naming(&name)),
                    "content does not match its name (SHA-256)",
                ));
            }
            blobs += 1;
        }
        for (i, name) in &named {
            if !blob_dir.join(name).is_file() {
                return Err(fail(
                    format!("entry {i}"),
                    format!("its message (blobs/{name}) was kept but is missing"),
                ));
            }
        }
    }
    Ok(Verified {
        checkpoint: cp,
        note,
        tiles,
        blobs,
        first_entry: first * TILE_WIDTH,
    })
}
