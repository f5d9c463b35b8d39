//! The C2SP `tlog-tiles` layout: tiles of up to 256 hashes (height 8) at
//! `tile/<L>/<N>[.p/<W>]`, entry bundles at `tile/entries/<N>[.p/<W>]` (each entry
//! prefixed by its length, 16 bits big-endian), `<N>` written in groups of three digits,
//! all but the last prefixed `x` (`1234067` → `x001/x234/067`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::merkle::{node_hash, Hash, HashReader, ProofError};

/// Hashes per full tile.
pub const TILE_WIDTH: u64 = 256;
/// Levels of the tree per tile level.
pub const TILE_HEIGHT: u8 = 8;
/// Longest entry (its length is written in 16 bits).
pub const MAX_ENTRY: usize = 65_535;

/// `N` of a tile path.
pub fn index_path(mut n: u64) -> String {
    let mut groups = vec![format!("{:03}", n % 1000)];
    n /= 1000;
    while n > 0 {
        groups.push(format!("x{:03}", n % 1000));
        n /= 1000;
    }
    groups.reverse();
    groups.join("/")
}

/// The path of tile `index` of `level` with `width` hashes (256: full).
pub fn tile_path(level: u8, index: u64, width: u64) -> String {
    let base = format!("tile/{level}/{}", index_path(index));
    if width >= TILE_WIDTH {
        base
    } else {
        format!("{base}.p/{width}")
    }
}

/// The path of entry bundle `index` holding `width` entries.
pub fn bundle_path(index: u64, width: u64) -> String {
    let base = format!("tile/entries/{}", index_path(index));
    if width >= TILE_WIDTH {
        base
    } else {
        format!("{base}.p/{width}")
    }
}

/// The entries of a bundle, or where it is malformed (byte offset).
pub fn parse_bundle(b: &[u8]) -> Result<Vec<&[u8]>, usize> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let (Some(&hi), Some(&lo)) = (b.get(at), b.get(at + 1)) else {
            return Err(at);
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        let Some(e) = b.get(at + 2..at + 2 + len) else {
            return Err(at);
        };
        out.push(e);
        at += 2 + len;
    }
    Ok(out)
}

/// The root of a power-of-two run of hashes.
pub fn fold(hashes: &[Hash]) -> Hash {
    let mut v: Vec<Hash> = hashes.to_vec();
    while v.len() > 1 {
        v = v
            .chunks(2)
            .map(|c| match c {
                [a, b] => node_hash(a, b),
                [a] => *a,
                _ => [0; 32],
            })
            .collect();
    }
    v.first().copied().unwrap_or([0; 32])
}

/// Width of tile `index` at tile level `level` in a tree of `size` entries (0: none).
pub fn tile_width(size: u64, level: u8, index: u64) -> u64 {
    let at_level = size >> (u32::from(level) * u32::from(TILE_HEIGHT));
    at_level.saturating_sub(index * TILE_WIDTH).min(TILE_WIDTH)
}

/// Every file of a tree of `size` in the tlog-tiles layout: the hash tiles of each level
/// and the entry bundles, with the bundle's index for bundles.
pub fn tree_files(size: u64) -> Vec<(String, Option<u64>)> {
    let mut out = Vec::new();
    let mut level: u8 = 0;
    loop {
        let at_level = size >> (u32::from(level) * u32::from(TILE_HEIGHT));
        if at_level == 0 {
            break;
        }
        for i in 0..at_level.div_ceil(TILE_WIDTH) {
            out.push((tile_path(level, i, tile_width(size, level, i)), None));
        }
        level += 1;
    }
    for b in 0..size.div_ceil(TILE_WIDTH) {
        out.push((bundle_path(b, tile_width(size, 0, b)), Some(b)));
    }
    out
}

/// Reads hashes of a tree of a given size from its tiles under a directory.
pub struct TileReader {
    root: PathBuf,
    size: u64,
    cache: RefCell<HashMap<String, Vec<u8>>>,
}

impl TileReader {
    /// Tiles under `root` (the directory holding `tile/`), for the tree of `size`.
    pub fn new(root: &Path, size: u64) -> Self {
        TileReader {
            root: root.to_path_buf(),
            size,
            cache: RefCell::new(HashMap::new()),
        }
    }

    fn tile(&self, level: u8, index: u64) -> Option<Vec<u8>> {
        let w = tile_width(self.size, level, index);
        if w == 0 {
            return None;
        }
        let p = tile_path(level, index, w);
        if let Some(t) = self.cache.borrow().get(&p) {
            return Some(t.clone());
        }
        let t = std::fs::read(self.root.join(&p)).ok()?;
        if t.len() as u64 != w * 32 {
            return None;
        }
        let mut c = self.cache.borrow_mut();
        if c.len() > 64 {
            c.clear();
        }
        c.insert(p, t.clone());
        Some(t)
    }
}

impl HashReader for TileReader {
    fn hash(&self, level: u8, index: u64) -> Result<Hash, ProofError> {
        let missing = ProofError::Missing { level, index };
        let tl = level / TILE_HEIGHT;
        let sub = u32::from(level % TILE_HEIGHT);
        // the hashes at level 8*tl under this node
        let first = index << sub;
        let count = 1u64 << sub;
        let tile_index = first / TILE_WIDTH;
        let t = self.tile(tl, tile_index).ok_or(missing.clone())?;
        let off = (first % TILE_WIDTH) as usize;
        let end = off + count as usize;
        if end * 32 > t.len() {
            return Err(missing);
        }
        let hashes: Vec<Hash> = t
            .get(off * 32..end * 32)
            .unwrap_or_default()
            .chunks(32)
            .filter_map(|c| c.try_into().ok())
            .collect();
        Ok(fold(&hashes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_as_the_spec_writes_them() {
        assert_eq!(index_path(0), "000");
        assert_eq!(index_path(1234067), "x001/x234/067");
        assert_eq!(index_path(1000), "x001/000");
        assert_eq!(tile_path(0, 1234067, 256), "tile/0/x001/x234/067");
        assert_eq!(tile_path(1, 3, 17), "tile/1/003.p/17");
        assert_eq!(bundle_path(5, 256), "tile/entries/005");
        assert_eq!(bundle_path(5, 2), "tile/entries/005.p/2");
        assert_eq!(tile_width(70_000, 0, 273), 112);
        assert_eq!(tile_width(70_000, 1, 1), 17);
        assert_eq!(tile_width(70_000, 0, 300), 0);
        let files = tree_files(70_000);
        assert_eq!(files.len(), 274 + 2 + 1 + 274);
        assert!(files.contains(&("tile/2/000.p/1".into(), None)));
        assert!(files.contains(&("tile/0/273.p/112".into(), None)));
        assert!(files.contains(&("tile/1/001.p/17".into(), None)));
        assert!(files.contains(&("tile/entries/273.p/112".into(), Some(273))));
    }

    #[test]
    fn bundles_parse_and_refuse_truncation() {
        let b = [0, 1, b'a', 0, 2, b'b', b'c'];
        assert_eq!(parse_bundle(&b).unwrap(), vec![&b"a"[..], &b"bc"[..]]);
        assert_eq!(parse_bundle(&b[..6]), Err(3));
    }
}
