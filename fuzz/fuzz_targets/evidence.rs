//! What the evidence crate reads from others: a witness's `add-checkpoint` body (from
//! the network), signed notes, cosignatures, proof files, entry bundles. The first
//! byte picks the reader; with 1, the rest is the head of an add-checkpoint request
//! (old size, proof lines) put before a checkpoint this target signs, so that mutations
//! reach the consistency checks behind the signature. Any panic is a finding, and a
//! witness must never cosign a checkpoint that does not extend the one it holds.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use palisade_evidence::merkle::{tree_hash, MemoryTree};
use palisade_evidence::witness::add_checkpoint_request;
use palisade_evidence::{
    check_proof, kept_blob, Checkpoint, CosignatureVerifier, Cosigner, NoteSigner, NoteVerifier,
    Witness,
};

struct Fixture {
    log: NoteSigner,
    key: NoteVerifier,
    wkey: CosignatureVerifier,
    tree: MemoryTree,
    witness: Witness,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let log = NoteSigner::new("fuzz.example/log", &[5; 32]).unwrap();
        let key = NoteVerifier::parse(&log.verifier_key()).unwrap();
        let cosigner = Cosigner::new("fuzz.example/w", &[6; 32]).unwrap();
        let wkey = CosignatureVerifier::parse(&cosigner.verifier_key()).unwrap();
        let entries: Vec<Vec<u8>> = (0..600u32).map(|i| i.to_be_bytes().to_vec()).collect();
        let refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
        let tree = MemoryTree::new(&refs);
        let state =
            std::env::temp_dir().join(format!("palisade-fuzz-witness-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&state);
        std::fs::create_dir_all(&state).unwrap();
        let witness = Witness::new(cosigner, vec![key.clone()], &state);
        // the witness holds size 100 of the tree
        let cp = checkpoint(&log, &tree, 100);
        witness
            .add_checkpoint(&add_checkpoint_request(0, &[], &cp), 1)
            .unwrap();
        Fixture {
            log,
            key,
            wkey,
            tree,
            witness,
        }
    })
}

fn checkpoint(log: &NoteSigner, tree: &MemoryTree, size: u64) -> String {
    let root = tree_hash(tree, size).unwrap();
    log.sign(
        &Checkpoint {
            origin: "fuzz.example/log".into(),
            size,
            root,
        }
        .text(),
    )
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match mode % 4 {
        0 => {
            // any body at all: refused unless it is a signed, consistent checkpoint
            if let Ok(line) = f.witness.add_checkpoint(&text, 2) {
                panic!("cosigned a body this target did not sign: {line}");
            }
        }
        1 => {
            // a real checkpoint of this tree (size from the input) after any head
            let size = 100 + u64::from(rest.first().copied().unwrap_or(0));
            let cp = checkpoint(&f.log, &f.tree, size.min(600));
            let head = text.split("\n\n").next().unwrap_or("");
            let body = format!("{head}\n\n{cp}");
            let held = f.witness.last("fuzz.example/log").map(|c| c.size);
            if let Ok(line) = f.witness.add_checkpoint(&body, 3) {
                // only a real extension of what it held, with a valid cosignature
                assert!(held.is_some_and(|h| h <= size.min(600)));
                assert!(f.wkey.check(&format!("{cp}{line}")).is_some());
            }
        }
        2 => {
            if let Ok(t) = f.key.open(&text) {
                let _ = Checkpoint::parse(t);
            }
            let _ = f.wkey.check(&text);
            let _ = NoteVerifier::parse(&text);
            let _ = CosignatureVerifier::parse(&text);
            let _ = check_proof(&text, rest, &f.key);
        }
        _ => {
            let _ = palisade_evidence::tiles::parse_bundle(rest);
            let _ = kept_blob(rest);
        }
    }
});
