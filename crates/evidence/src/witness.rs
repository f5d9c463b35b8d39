//! Witnesses: C2SP `tlog-cosignature` (Ed25519, `cosignature/v1`) and the witness side
//! of C2SP `tlog-witness`'s `add-checkpoint`.
//!
//! A cosignature is a signature line `— NAME BASE64(KEYID || TIMESTAMP || SIGNATURE)`
//! where KEYID is the first four bytes of SHA-256(NAME || 0x0A || 0x04 || PUBLIC KEY),
//! TIMESTAMP is 8 bytes big-endian (seconds), and SIGNATURE is Ed25519 over
//! `cosignature/v1\ntime TIMESTAMP\n` followed by the checkpoint's note text. A witness
//! cosigns a checkpoint only when it is consistent with the last one it cosigned for
//! that origin, and records it before answering.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use crate::merkle::{verify_consistency, Hash};
use crate::note::{
    key_id_for, key_text, parse_key, valid_name, Checkpoint, NoteError, NoteVerifier,
};

/// The algorithm byte of Ed25519 cosignatures (`cosignature/v1`).
pub const COSIGNATURE_V1: u8 = 0x04;

fn signed_message(text: &str, time: u64) -> String {
    format!("cosignature/v1\ntime {time}\n{text}")
}

/// A witness's key: a name and an Ed25519 key used for cosignatures.
pub struct Cosigner {
    name: String,
    key: SigningKey,
}

impl Cosigner {
    /// A cosigner from a 32-byte seed.
    pub fn new(name: &str, seed: &[u8; 32]) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::Key(format!(
                "{name:?} is not a key name (no spaces or '+')"
            )));
        }
        Ok(Cosigner {
            name: name.to_string(),
            key: SigningKey::from_bytes(seed),
        })
    }

    /// Its verifier key: `NAME+HEX(KEYID)+BASE64(0x04 || PUBLIC KEY)`.
    pub fn verifier_key(&self) -> String {
        key_text(
            &self.name,
            COSIGNATURE_V1,
            &self.key.verifying_key().to_bytes(),
        )
    }

    /// The cosignature line (ending in a newline) of a checkpoint's note text at `time`.
    pub fn cosign(&self, text: &str, time: u64) -> String {
        let sig = self
            .key
            .sign(signed_message(text, time).as_bytes())
            .to_bytes();
        let public = self.key.verifying_key().to_bytes();
        let mut raw = key_id_for(&self.name, COSIGNATURE_V1, &public).to_vec();
        raw.extend_from_slice(&time.to_be_bytes());
        raw.extend_from_slice(&sig);
        format!("\u{2014} {} {}\n", self.name, B64.encode(raw))
    }
}

/// A witness's verifier key, to check its cosignatures.
#[derive(Clone, Debug)]
pub struct CosignatureVerifier {
    name: String,
    id: [u8; 4],
    key: VerifyingKey,
}

impl CosignatureVerifier {
    /// Parses `NAME+HEX(KEYID)+BASE64(0x04 || PUBLIC KEY)`.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let (name, id, key) = parse_key(
            text,
            COSIGNATURE_V1,
            "not a cosignature/v1 key (algorithm 0x04)",
        )?;
        Ok(CosignatureVerifier { name, id, key })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The time of this witness's valid cosignature on `note`, if it has one. Lines of
    /// other keys are ignored.
    pub fn check(&self, note: &str) -> Option<u64> {
        let split = note.rfind("\n\n")?;
        let text = note.get(..split + 1)?;
        let sigs = note.get(split + 2..)?;
        sigs.lines().find_map(|line| {
            let rest = line.strip_prefix("\u{2014} ")?;
            let (name, b64) = rest.split_once(' ')?;
            if name != self.name {
                return None;
            }
            let raw = B64.decode(b64).ok()?;
            if raw.get(..4)? != self.id || raw.len() != 4 + 8 + 64 {
                return None;
            }
            let time = u64::from_be_bytes(raw.get(4..12)?.try_into().ok()?);
            let sig = Signature::from_slice(raw.get(12..)?).ok()?;
            self.key
                .verify(signed_message(text, time).as_bytes(), &sig)
                .is_ok()
                .then_some(time)
        })
    }
}

/// The body of an `add-checkpoint` request: `old SIZE`, the consistency proof (one
/// base64 hash a line), a blank line, the signed checkpoint.
pub fn add_checkpoint_request(old: u64, proof: &[Hash], note: &str) -> String {
    let mut s = format!("old {old}\n");
    for h in proof {
        s.push_str(&B64.encode(h));
        s.push('\n');
    }
    s.push('\n');
    s.push_str(note);
    s
}

/// A refused `add-checkpoint`: the HTTP status and body C2SP tlog-witness prescribes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// 400, 403, 404, 409 or 422 (500 when the state cannot be written).
    pub status: u16,
    /// The body (for 409: the size of the last cosigned checkpoint and a newline).
    pub body: String,
}

fn refuse(status: u16, body: impl Into<String>) -> Refused {
    Refused {
        status,
        body: body.into(),
    }
}

/// The witness: its key, the logs it follows, and where it records the last checkpoint
/// it cosigned for each.
pub struct Witness {
    cosigner: Cosigner,
    logs: Vec<NoteVerifier>,
    state: PathBuf,
}

impl Witness {
    /// A witness of `logs`, keeping its state in `state` (a directory).
    pub fn new(cosigner: Cosigner, logs: Vec<NoteVerifier>, state: &Path) -> Self {
        Witness {
            cosigner,
            logs,
            state: state.to_path_buf(),
        }
    }

    /// Its verifier key.
    pub fn verifier_key(&self) -> String {
        self.cosigner.verifier_key()
    }

    fn state_file(&self, origin: &str) -> PathBuf {
        self.state.join(crate::sha256_hex(origin.as_bytes()))
    }

    /// The last checkpoint cosigned for `origin`.
    pub fn last(&self, origin: &str) -> Option<Checkpoint> {
        let note = std::fs::read_to_string(self.state_file(origin)).ok()?;
        let key = self.logs.iter().find(|k| k.name() == origin)?;
        Checkpoint::parse(key.open(&note).ok()?).ok()
    }

    /// `POST add-checkpoint`: `old SIZE`, consistency proof lines, a blank line, the
    /// signed checkpoint. On success the cosignature line(s); the checkpoint is recorded
    /// (before the answer) as the last one cosigned.
    pub fn add_checkpoint(&self, body: &str, now: u64) -> Result<String, Refused> {
        let bad = |why: &str| refuse(400, format!("{why}\n"));
        let (head, note) = body
            .split_once("\n\n")
            .ok_or_else(|| bad("expected: old line, proof lines, a blank line, a checkpoint"))?;
        let mut lines = head.split('\n');
        let old: u64 = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .filter(|n| *n == "0" || !n.starts_with('0'))
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| bad("the first line is `old SIZE`"))?;
        let mut proof: Vec<Hash> = Vec::new();
        for l in lines {
            let h: Hash = B64
                .decode(l)
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| bad("a proof line is one base64 SHA-256 hash"))?;
            proof.push(h);
        }
        if proof.len() > 63 {
            return Err(bad("more than 63 proof lines"));
        }
        let origin = note.lines().next().unwrap_or("");
        let key = self
            .logs
            .iter()
            .find(|k| k.name() == origin)
            .ok_or_else(|| refuse(404, "unknown log\n"))?;
        let text = key.open(note).map_err(|e| refuse(403, format!("{e}\n")))?;
        let cp = Checkpoint::parse(text).map_err(|e| refuse(400, format!("{e}\n")))?;
        if old > cp.size {
            return Err(bad("old size is larger than the checkpoint's"));
        }
        let last = self.last(origin);
        let last_size = last.as_ref().map_or(0, |c| c.size);
        if old != last_size {
            return Err(refuse(409, format!("{last_size}\n")));
        }
        match &last {
            None => {
                if !proof.is_empty() {
                    return Err(refuse(422, "a proof from size 0\n"));
                }
                if cp.size == 0 {
                    return Err(refuse(422, "a size-0 checkpoint\n"));
                }
            }
            Some(l) => verify_consistency(l.size, cp.size, &l.root, &cp.root, &proof)
                .map_err(|e| refuse(422, format!("not consistent: {e}\n")))?,
        }
        // recorded before the answer: the next request must extend this one
        crate::log::write_atomic(&self.state_file(origin), note.as_bytes())
            .and_then(|()| crate::log::sync_dir(&self.state))
            .map_err(|e| refuse(500, format!("{e}\n")))?;
        Ok(self.cosigner.cosign(text, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{consistency_proof, MemoryTree};
    use crate::note::NoteSigner;

    fn request(old: u64, proof: &[Hash], note: &str) -> String {
        add_checkpoint_request(old, proof, note)
    }

    #[test]
    fn a_witness_cosigns_only_what_extends_what_it_cosigned() {
        let dir = std::env::temp_dir().join(format!("palisade-witness-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let log = NoteSigner::new("log.example/l", &[1; 32]).unwrap();
        let other = NoteSigner::new("log.example/l", &[2; 32]).unwrap();
        let w = Witness::new(
            Cosigner::new("witness.example/w", &[9; 32]).unwrap(),
            vec![NoteVerifier::parse(&log.verifier_key()).unwrap()],
            &dir,
        );
        let wkey = CosignatureVerifier::parse(&w.verifier_key()).unwrap();
        let entries: Vec<Vec<u8>> = (0..40u32).map(|i| i.to_be_bytes().to_vec()).collect();
        let refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
        let tree = MemoryTree::new(&refs);
        let cp = |n: u64, signer: &NoteSigner| {
            let root = crate::merkle::tree_hash(&tree, n).unwrap();
            signer.sign(
                &Checkpoint {
                    origin: "log.example/l".into(),
                    size: n,
                    root,
                }
                .text(),
            )
        };
        // first contact: old 0, no proof
        let note10 = cp(10, &log);
        let line = w
            .add_checkpoint(&request(0, &[], &note10), 1_700_000_000)
            .unwrap();
        let cosigned = format!("{note10}{line}");
        assert_eq!(wkey.check(&cosigned), Some(1_700_000_000));
        assert_eq!(wkey.check(&note10), None);
        // the log's own key still opens the cosigned note
        NoteVerifier::parse(&log.verifier_key())
            .unwrap()
            .open(&cosigned)
            .unwrap();
        // a stale old size: 409 with the witness's size
        let note20 = cp(20, &log);
        let r = w.add_checkpoint(&request(0, &[], &note20), 1).unwrap_err();
        assert_eq!((r.status, r.body.as_str()), (409, "10\n"));
        // a wrong proof: 422; the right one: cosigned
        let proof = consistency_proof(&tree, 10, 20).unwrap();
        let mut bad = proof.clone();
        bad[0][0] ^= 1;
        assert_eq!(
            w.add_checkpoint(&request(10, &bad, &note20), 1)
                .unwrap_err()
                .status,
            422
        );
        assert!(w.add_checkpoint(&request(10, &proof, &note20), 2).is_ok());
        assert_eq!(w.last("log.example/l").unwrap().size, 20);
        // another key for the same origin: 403; an unknown origin: 404; garbage: 400
        let forged = cp(30, &other);
        let p = consistency_proof(&tree, 20, 30).unwrap();
        assert_eq!(
            w.add_checkpoint(&request(20, &p, &forged), 3)
                .unwrap_err()
                .status,
            403
        );
        let stranger = NoteSigner::new("other.example/x", &[3; 32]).unwrap();
        let s = stranger.sign(
            &Checkpoint {
                origin: "other.example/x".into(),
                size: 1,
                root: [0; 32],
            }
            .text(),
        );
        assert_eq!(
            w.add_checkpoint(&request(0, &[], &s), 3)
                .unwrap_err()
                .status,
            404
        );
        assert_eq!(w.add_checkpoint("old x\n\n", 3).unwrap_err().status, 400);
        // a fork of the same size it cosigned: 422
        let fork = log.sign(
            &Checkpoint {
                origin: "log.example/l".into(),
                size: 20,
                root: [7; 32],
            }
            .text(),
        );
        assert_eq!(
            w.add_checkpoint(&request(20, &[], &fork), 4)
                .unwrap_err()
                .status,
            422
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
