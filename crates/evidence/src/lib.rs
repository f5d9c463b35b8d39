//! # palisade-evidence: records that hold up
//!
//! Every security decision of the server is an entry of an append-only Merkle log (RFC
//! 6962 / RFC 9162 hashing) stored in the C2SP `tlog-tiles` layout, with C2SP
//! `tlog-checkpoint`s signed as C2SP `signed-note`s with Ed25519. Anyone holding the
//! verifier key can check the log offline — with this crate ([`verify_dir`]), or with
//! Go's `golang.org/x/mod/sumdb/{note,tlog}`, which the test suite does.
//!
//! Choices: the primitives are `ed25519-dalek`, `sha2` and `base64`. The `signed_note`
//! and `tlog_tiles` crates (Cloudflare's azul) were considered: `tlog_tiles` pulls in
//! `url` and ICU (about 40 crates) for path handling this log does not need, and the
//! note format is a page of code over `ed25519-dalek`, so both are implemented here.

pub mod log;
pub mod merkle;
pub mod note;
pub mod proof;
pub mod tiles;
pub mod verify;
pub mod witness;

pub use log::{Log, LogError};
pub use merkle::{Hash, HashReader};
pub use note::{Checkpoint, NoteError, NoteSigner, NoteVerifier};
pub use proof::{check_proof, make_proof, Proof};
pub use verify::{kept_blob, verify_dir, verify_dir_from, Verified, VerifyError};
pub use witness::{CosignatureVerifier, Cosigner, Witness};

use sha2::{Digest, Sha256};

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
