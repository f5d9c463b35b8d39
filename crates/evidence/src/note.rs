//! C2SP `signed-note` with Ed25519 and C2SP `tlog-checkpoint`.
//!
//! A note is UTF-8 text ending in a newline, a blank line, and signature lines
//! `— NAME BASE64(KEYID || SIGNATURE)`. For Ed25519 the key ID is the first four bytes of
//! SHA-256(NAME || 0x0A || 0x01 || PUBLIC KEY), and a verifier key is written
//! `NAME+HEX(KEYID)+BASE64(0x01 || PUBLIC KEY)`. A checkpoint is the note text
//! `ORIGIN\nSIZE\nBASE64(ROOT)\n` (no extension lines here).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::merkle::Hash;

/// Ed25519's algorithm byte in signed notes.
const ED25519: u8 = 0x01;

/// Why a note or a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The key text is not `NAME+HEX+BASE64` of an Ed25519 key.
    #[error("verifier key: {0}")]
    Key(String),
    /// The note is not well formed (line given, 1-based).
    #[error("note line {line}: {why}")]
    Format {
        /// Line number.
        line: usize,
        /// What is wrong.
        why: String,
    },
    /// No signature by the key verifies.
    #[error("no valid signature by {0}")]
    Unsigned(String),
    /// The checkpoint body is not `origin`, size, root.
    #[error("checkpoint line {line}: {why}")]
    Checkpoint {
        /// Line number.
        line: usize,
        /// What is wrong.
        why: String,
    },
}

fn key_id(name: &str, public: &[u8; 32]) -> [u8; 4] {
    key_id_for(name, ED25519, public)
}

/// SHA-256(NAME || 0x0A || ALGORITHM || PUBLIC KEY)[:4].
pub(crate) fn key_id_for(name: &str, alg: u8, public: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', alg]);
    h.update(public);
    let d: [u8; 32] = h.finalize().into();
    let mut id = [0u8; 4];
    id.copy_from_slice(d.get(..4).unwrap_or(&[0; 4]));
    id
}

/// A verifier key's text: `NAME+HEX(KEYID)+BASE64(ALGORITHM || PUBLIC KEY)`.
pub(crate) fn key_text(name: &str, alg: u8, public: &[u8; 32]) -> String {
    let mut raw = vec![alg];
    raw.extend_from_slice(public);
    format!(
        "{name}+{}+{}",
        hex::encode(key_id_for(name, alg, public)),
        B64.encode(raw)
    )
}

/// Parses a verifier key of algorithm `alg` (`NAME+HEX(KEYID)+BASE64(ALG || KEY)`):
/// its name, key ID and Ed25519 key. `other` says what a key of another algorithm is not.
pub(crate) fn parse_key(
    text: &str,
    alg: u8,
    other: &str,
) -> Result<(String, [u8; 4], VerifyingKey), NoteError> {
    let mut parts = text.trim().splitn(3, '+');
    let (Some(name), Some(hex), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(NoteError::Key("expected NAME+KEYID+KEY".into()));
    };
    if !valid_name(name) || hex.len() != 8 {
        return Err(NoteError::Key("bad name or key ID".into()));
    }
    let raw = B64
        .decode(b64)
        .map_err(|e| NoteError::Key(format!("key is not base64: {e}")))?;
    let (Some(&a), Some(public)) = (raw.first(), raw.get(1..)) else {
        return Err(NoteError::Key(other.into()));
    };
    if a != alg {
        return Err(NoteError::Key(other.into()));
    }
    let public: [u8; 32] = public
        .try_into()
        .map_err(|_| NoteError::Key("an Ed25519 key is 32 bytes".into()))?;
    let key = VerifyingKey::from_bytes(&public).map_err(|e| NoteError::Key(e.to_string()))?;
    let id = key_id_for(name, alg, &public);
    if hex::encode(id) != hex.to_ascii_lowercase() {
        return Err(NoteError::Key("key ID does not match the key".into()));
    }
    Ok((name.to_string(), id, key))
}

pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['+', ' ', '\n']) && !name.chars().any(char::is_whitespace)
}

/// A note signer: a name and an Ed25519 key.
pub struct NoteSigner {
    name: String,
    key: SigningKey,
}

impl NoteSigner {
    /// A signer from a 32-byte seed.
    pub fn new(name: &str, seed: &[u8; 32]) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::Key(format!(
                "{name:?} is not a key name (no spaces or '+')"
            )));
        }
        Ok(NoteSigner {
            name: name.to_string(),
            key: SigningKey::from_bytes(seed),
        })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its verifier key, `NAME+HEX(KEYID)+BASE64(0x01 || PUBLIC KEY)`.
    pub fn verifier_key(&self) -> String {
        key_text(&self.name, ED25519, &self.key.verifying_key().to_bytes())
    }

    /// The signed note of `text` (which must end in a newline).
    pub fn sign(&self, text: &str) -> String {
        let sig = self.key.sign(text.as_bytes()).to_bytes();
        let public = self.key.verifying_key().to_bytes();
        let mut raw = key_id(&self.name, &public).to_vec();
        raw.extend_from_slice(&sig);
        format!("{text}\n\u{2014} {} {}\n", self.name, B64.encode(raw))
    }
}

/// A verifier key.
#[derive(Clone, Debug)]
pub struct NoteVerifier {
    name: String,
    id: [u8; 4],
    key: VerifyingKey,
}

impl NoteVerifier {
    /// Parses `NAME+HEX(KEYID)+BASE64(0x01 || PUBLIC KEY)`.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let (name, id, key) = parse_key(text, ED25519, "not an Ed25519 key")?;
        Ok(NoteVerifier { name, id, key })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks a signed note and returns its text (the signed part).
    pub fn open<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
        let Some(split) = note.rfind("\n\n") else {
            return Err(NoteError::Format {
                line: note.lines().count(),
                why: "no blank line before the signatures".into(),
            });
        };
        let text = note.get(..split + 1).unwrap_or("");
        let sigs = note.get(split + 2..).unwrap_or("");
        let first_sig_line = text.lines().count() + 2;
        if !sigs.ends_with('\n') {
            return Err(NoteError::Format {
                line: first_sig_line,
                why: "signature lines must end in a newline".into(),
            });
        }
        for (i, line) in sigs.lines().enumerate() {
            let Some(rest) = line.strip_prefix("\u{2014} ") else {
                return Err(NoteError::Format {
                    line: first_sig_line + i,
                    why: "a signature line starts with an em dash and a space".into(),
                });
            };
            let Some((name, b64)) = rest.split_once(' ') else {
                return Err(NoteError::Format {
                    line: first_sig_line + i,
                    why: "signature line: NAME SIGNATURE".into(),
                });
            };
            if name != self.name {
                continue;
            }
            let Ok(raw) = B64.decode(b64) else { continue };
            if raw.get(..4) != Some(&self.id[..]) || raw.len() != 4 + 64 {
                continue;
            }
            let Ok(sig) = Signature::from_slice(raw.get(4..).unwrap_or_default()) else {
                continue;
            };
            if self.key.verify(text.as_bytes(), &sig).is_ok() {
                return Ok(text);
            }
        }
        Err(NoteError::Unsigned(self.name.clone()))
    }
}

/// A checkpoint: origin, tree size, root hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line.
    pub origin: String,
    /// Entries in the tree.
    pub size: u64,
    /// The tree head.
    pub root: Hash,
}

impl Checkpoint {
    /// The note text.
    pub fn text(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// Parses a checkpoint's text (the signed part of its note).
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let bad = |line: usize, why: &str| NoteError::Checkpoint {
            line,
            why: why.to_string(),
        };
        let lines: Vec<&str> = text.split_terminator('\n').collect();
        let [origin, size, root] = lines.as_slice() else {
            return Err(bad(
                lines.len().min(4),
                "a checkpoint has exactly three lines here",
            ));
        };
        if origin.is_empty() {
            return Err(bad(1, "empty origin"));
        }
        let size: u64 = size
            .parse()
            .ok()
            .filter(|_| !size.starts_with('0') || *size == "0")
            .ok_or_else(|| bad(2, "the size is a decimal number without leading zeros"))?;
        let root: Hash = B64
            .decode(root)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| bad(3, "the root is the base64 of 32 bytes"))?;
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_open_and_refuse() {
        let s = NoteSigner::new("example.com/log", &[7; 32]).unwrap();
        let vk = s.verifier_key();
        let v = NoteVerifier::parse(&vk).unwrap();
        let c = Checkpoint {
            origin: "example.com/log".into(),
            size: 42,
            root: [9; 32],
        };
        let note = s.sign(&c.text());
        let text = v.open(&note).unwrap();
        assert_eq!(Checkpoint::parse(text).unwrap(), c);
        // any change to the text breaks the signature
        let forged = note.replacen("42", "43", 1);
        assert!(matches!(v.open(&forged), Err(NoteError::Unsigned(_))));
        // another key does not verify it
        let other = NoteVerifier::parse(
            &NoteSigner::new("example.com/log", &[8; 32])
                .unwrap()
                .verifier_key(),
        )
        .unwrap();
        assert!(other.open(&note).is_err());
        // a key whose ID does not match
        let mut bad = vk.clone();
        bad.replace_range(vk.find('+').unwrap() + 1..vk.find('+').unwrap() + 3, "zz");
        assert!(NoteVerifier::parse(&bad).is_err());
        assert!(Checkpoint::parse("o\n01\nAAAA\n").is_err());
        assert!(Checkpoint::parse("o\n1\n").is_err());
    }
}
