//! C2SP `tlog-proof`: a self-contained, offline-verifiable proof that an entry is in the
//! log: `c2sp.org/tlog-proof@v1`, `index N`, the inclusion proof's hashes (base64, one
//! per line), a blank line, and the signed checkpoint.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use crate::merkle::{inclusion_proof, leaf_hash, verify_inclusion, Hash, HashReader};
use crate::note::{Checkpoint, NoteVerifier};

const HEADER: &str = "c2sp.org/tlog-proof@v1";

/// A parsed proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The entry's index.
    pub index: u64,
    /// The inclusion proof.
    pub hashes: Vec<Hash>,
    /// The signed checkpoint note.
    pub checkpoint: String,
}

/// Writes the proof of entry `index` in the tree of the signed checkpoint `note`
/// (whose size is `size`), from `reader`.
pub fn make_proof(
    reader: &dyn HashReader,
    index: u64,
    size: u64,
    note: &str,
) -> Result<String, String> {
    let hashes = inclusion_proof(reader, index, size).map_err(|e| e.to_string())?;
    let mut out = format!("{HEADER}\nindex {index}\n");
    for h in hashes {
        out.push_str(&B64.encode(h));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(note);
    Ok(out)
}

/// Parses a proof file.
pub fn parse_proof(text: &str) -> Result<Proof, String> {
    let (head, note) = text
        .split_once("\n\n")
        .ok_or("no blank line between the proof and the checkpoint")?;
    let mut lines = head.lines();
    if lines.next() != Some(HEADER) {
        return Err(format!("line 1: expected {HEADER}"));
    }
    let mut index = None;
    let mut hashes = Vec::new();
    for (i, l) in lines.enumerate() {
        if let Some(rest) = l.strip_prefix("extra ") {
            let _ = rest; // opaque, not used by Palisade
        } else if let Some(n) = l.strip_prefix("index ") {
            index = Some(
                n.parse::<u64>()
                    .map_err(|_| format!("line {}: bad index", i + 2))?,
            );
        } else {
            let h: Hash = B64
                .decode(l)
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or(format!("line {}: not a base64 hash", i + 2))?;
            hashes.push(h);
        }
    }
    Ok(Proof {
        index: index.ok_or("no index line")?,
        hashes,
        checkpoint: note.to_string(),
    })
}

/// Checks a proof file for `entry` with the log's verifier key; the checkpoint it is
/// in.
pub fn check_proof(
    text: &str,
    entry: &[u8],
    key: &NoteVerifier,
) -> Result<(u64, Checkpoint), String> {
    let p = parse_proof(text)?;
    let body = key
        .open(&p.checkpoint)
        .map_err(|e| format!("checkpoint: {e}"))?;
    let cp = Checkpoint::parse(body).map_err(|e| e.to_string())?;
    if cp.origin != key.name() {
        return Err(format!(
            "checkpoint of {:?}, not of {:?}",
            cp.origin,
            key.name()
        ));
    }
    verify_inclusion(&leaf_hash(entry), p.index, cp.size, &p.hashes, &cp.root).map_err(|e| {
        format!(
            "entry {} is not in the tree of size {}: {e}",
            p.index, cp.size
        )
    })?;
    Ok((p.index, cp))
}
