//! RFC 6962 / RFC 9162 Merkle tree hashing: leaf and node hashes, tree heads from the
//! hashes of complete subtrees, inclusion and consistency proofs and their verification.
//!
//! Hashes are addressed as Go's `tlog` and C2SP `tlog-tiles` do: the hash at *level* `l`
//! and *index* `i` is the root of the complete subtree over leaves
//! `[i * 2^l, (i + 1) * 2^l)`. A [`HashReader`] gives such hashes (from tiles on disk or
//! from memory); everything here is computed from them.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// RFC 6962 leaf hash: SHA-256(0x00 || entry).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(entry);
    h.finalize().into()
}

/// RFC 6962 interior node hash: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Why a proof or a tree could not be computed or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// A hash the computation needs is missing (tile absent or short).
    #[error("hash at level {level}, index {index} is not available")]
    Missing {
        /// Its level.
        level: u8,
        /// Its index.
        index: u64,
    },
    /// Arguments out of range (index ≥ size, old size > new size, size 0).
    #[error("out of range: {0}")]
    Range(String),
    /// The proof does not lead to the expected root.
    #[error("proof does not verify")]
    Mismatch,
}

/// Gives the hash of a complete subtree: level `level`, index `index`.
pub trait HashReader {
    /// The hash, or [`ProofError::Missing`].
    fn hash(&self, level: u8, index: u64) -> Result<Hash, ProofError>;
}

/// The largest power of two strictly smaller than `n` (`n` ≥ 2).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The root of the leaves `[start, end)`, where `start` is a multiple of the largest
/// power of two not larger than `end - start` (true of every range RFC 6962 recursion
/// visits).
pub fn subtree_hash(r: &dyn HashReader, start: u64, end: u64) -> Result<Hash, ProofError> {
    let n = end - start;
    if n == 0 {
        return Err(ProofError::Range("empty subtree".into()));
    }
    if n.is_power_of_two() && start.is_multiple_of(n) {
        let level = n.trailing_zeros() as u8;
        return r.hash(level, start >> level);
    }
    let k = split(n);
    let left = subtree_hash(r, start, start + k)?;
    let right = subtree_hash(r, start + k, end)?;
    Ok(node_hash(&left, &right))
}

/// The tree head (root hash) of the first `size` leaves; `size` must be at least 1 (the
/// empty tree has no head here: a size-0 checkpoint is never published).
pub fn tree_hash(r: &dyn HashReader, size: u64) -> Result<Hash, ProofError> {
    if size == 0 {
        return Err(ProofError::Range("a tree of size 0 has no head".into()));
    }
    subtree_hash(r, 0, size)
}

/// RFC 9162 section 2.1.3.1: the inclusion proof of leaf `index` in the tree of `size`.
pub fn inclusion_proof(r: &dyn HashReader, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
    if index >= size {
        return Err(ProofError::Range(format!(
            "index {index} not below size {size}"
        )));
    }
    let mut out = Vec::new();
    // Iterative form of PATH(m, D[start:end]); siblings collected leaf to root.
    let (mut start, mut end, mut m) = (0u64, size, index);
    let mut stack = Vec::new();
    while end - start > 1 {
        let k = split(end - start);
        if m < k {
            stack.push((start + k, end));
            end = start + k;
        } else {
            stack.push((start, start + k));
            start += k;
            m -= k;
        }
    }
    while let Some((a, b)) = stack.pop() {
        out.push(subtree_hash(r, a, b)?);
    }
    Ok(out)
}

/// RFC 9162 section 2.1.3.2: checks that `leaf` is entry `index` of the tree `(size, root)`.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::Range(format!(
            "index {index} not below size {size}"
        )));
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(ProofError::Mismatch);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode == 0 && &r == root {
        Ok(())
    } else {
        Err(ProofError::Mismatch)
    }
}

/// RFC 9162 section 2.1.4.1: the consistency proof between the trees of `old` and
/// `new` leaves (0 < old ≤ new).
pub fn consistency_proof(r: &dyn HashReader, old: u64, new: u64) -> Result<Vec<Hash>, ProofError> {
    if old == 0 || old > new {
        return Err(ProofError::Range(format!("sizes {old} and {new}")));
    }
    let mut out = Vec::new();
    if old == new {
        return Ok(out);
    }
    // SUBPROOF(m, D[start:end], b), iteratively: the right-hand subtrees are appended
    // after the recursion returns, so they are kept on a stack.
    let (mut start, mut end, mut m, mut b) = (0u64, new, old, true);
    let mut tail = Vec::new();
    loop {
        let n = end - start;
        if m == n {
            if !b {
                out.push(subtree_hash(r, start, end)?);
            }
            break;
        }
        let k = split(n);
        if m <= k {
            tail.push((start + k, end));
            end = start + k;
        } else {
            tail.push((start, start + k));
            start += k;
            m -= k;
            b = false;
        }
    }
    while let Some((a, z)) = tail.pop() {
        out.push(subtree_hash(r, a, z)?);
    }
    Ok(out)
}

/// RFC 9162 section 2.1.4.2: checks that the tree `(new, new_root)` extends
/// `(old, old_root)`.
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old == 0 || old > new {
        return Err(ProofError::Range(format!("sizes {old} and {new}")));
    }
    if old == new {
        return if proof.is_empty() && old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::Mismatch)
        };
    }
    let mut path: Vec<Hash> = proof.to_vec();
    if old.is_power_of_two() {
        path.insert(0, *old_root);
    }
    let (first, rest) = path.split_first().ok_or(ProofError::Mismatch)?;
    let (mut fnode, mut snode) = (old - 1, new - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if snode == 0 {
            return Err(ProofError::Mismatch);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode == 0 && &fr == old_root && &sr == new_root {
        Ok(())
    } else {
        Err(ProofError::Mismatch)
    }
}

/// All hashes of a tree held in memory (tests, small logs): level 0 the leaf hashes.
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    /// The tree of these entries.
    pub fn new(entries: &[&[u8]]) -> Self {
        let mut t = MemoryTree {
            levels: vec![Vec::new()],
        };
        for e in entries {
            t.push(leaf_hash(e));
        }
        t
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut h = leaf;
        let mut level = 0;
        loop {
            if self.levels.len() <= level {
                self.levels.push(Vec::new());
            }
            let Some(l) = self.levels.get_mut(level) else {
                return;
            };
            l.push(h);
            if l.len() % 2 == 1 {
                return;
            }
            let n = l.len();
            let (Some(a), Some(b)) = (l.get(n - 2), l.get(n - 1)) else {
                return;
            };
            h = node_hash(a, b);
            level += 1;
        }
    }

    /// Leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }
}

impl HashReader for MemoryTree {
    fn hash(&self, level: u8, index: u64) -> Result<Hash, ProofError> {
        self.levels
            .get(usize::from(level))
            .and_then(|l| l.get(usize::try_from(index).ok()?))
            .copied()
            .ok_or(ProofError::Missing { level, index })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(h: &Hash) -> String {
        hex::encode(h)
    }

    /// RFC 6962's reference tree: the eight leaves of the certificate-transparency test
    /// vectors (also used by Go's tlog tests) and their published roots.
    fn leaves() -> Vec<Vec<u8>> {
        vec![
            vec![],
            vec![0x00],
            vec![0x10],
            vec![0x20, 0x21],
            vec![0x30, 0x31],
            vec![0x40, 0x41, 0x42, 0x43],
            vec![0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
            vec![
                0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d,
                0x6e, 0x6f,
            ],
        ]
    }

    #[test]
    fn roots_match_the_rfc6962_test_vectors() {
        let l = leaves();
        let refs: Vec<&[u8]> = l.iter().map(Vec::as_slice).collect();
        let t = MemoryTree::new(&refs);
        let expect = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        for (n, e) in expect.iter().enumerate() {
            assert_eq!(
                hex(&tree_hash(&t, n as u64 + 1).unwrap()),
                *e,
                "size {}",
                n + 1
            );
        }
    }

    #[test]
    fn every_inclusion_and_consistency_proof_verifies_and_a_wrong_one_does_not() {
        let entries: Vec<Vec<u8>> = (0..70u32).map(|i| i.to_be_bytes().to_vec()).collect();
        let refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
        let t = MemoryTree::new(&refs);
        for size in 1..=70u64 {
            let root = tree_hash(&t, size).unwrap();
            for i in 0..size {
                let p = inclusion_proof(&t, i, size).unwrap();
                let leaf = leaf_hash(&entries[i as usize]);
                verify_inclusion(&leaf, i, size, &p, &root).unwrap();
                assert!(verify_inclusion(&leaf_hash(b"x"), i, size, &p, &root).is_err());
                if size > 1 {
                    let j = (i + 1) % size;
                    assert!(verify_inclusion(&leaf, j, size, &p, &root).is_err() || j == i);
                }
            }
            for old in 1..=size {
                let old_root = tree_hash(&t, old).unwrap();
                let p = consistency_proof(&t, old, size).unwrap();
                verify_consistency(old, size, &old_root, &root, &p).unwrap();
                let bad = leaf_hash(b"forged");
                assert!(verify_consistency(old, size, &bad, &root, &p).is_err() || old_root == bad);
                if old < size {
                    assert!(verify_consistency(old, size, &old_root, &bad, &p).is_err());
                }
            }
        }
    }
}
