//! The log on disk: appends, checkpoints, reopening after a crash, proofs, and
//! verification that finds and locates every tampering.
// Helpers outside `#[test]` functions assert by panicking too (clippy.toml exempts only
// test functions and `#[cfg(test)]` modules from the workspace's panic-free lints).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]
use std::path::{Path, PathBuf};

use palisade_evidence::merkle::{consistency_proof, verify_consistency};
use palisade_evidence::*;

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("palisade-evidence-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn signer() -> NoteSigner {
    NoteSigner::new("test.example/evidence", &[3; 32]).unwrap()
}

fn key() -> NoteVerifier {
    NoteVerifier::parse(&signer().verifier_key()).unwrap()
}

fn entry(i: u64) -> Vec<u8> {
    format!(
        "{{\"i\":{i},\"pad\":\"{}\"}}",
        "x".repeat((i % 40) as usize)
    )
    .into_bytes()
}

/// A log of `n` entries with a checkpoint every `every`.
fn build(d: &Path, n: u64, every: u64) -> Vec<Checkpoint> {
    let mut log = Log::open(d, signer()).unwrap();
    let mut cps = Vec::new();
    for i in 0..n {
        assert_eq!(log.append(&entry(i)).unwrap(), i);
        if (i + 1) % every == 0 {
            cps.push(log.checkpoint().unwrap().unwrap());
        }
    }
    if let Some(cp) = log.checkpoint().unwrap() {
        cps.push(cp);
    }
    cps
}

#[test]
fn a_log_verifies_across_tile_boundaries_and_reopens_where_it_was() {
    let d = dir("grow");
    let cps = build(&d, 70_000, 9_999);
    let v = verify_dir(&d, &key(), Some(&cps[0])).unwrap();
    assert_eq!(v.checkpoint.size, 70_000);
    assert!(v.tiles > 280, "{} tiles", v.tiles);
    // consistency between every pair of published checkpoints, from the tiles
    let r = tiles::TileReader::new(&d, 70_000);
    for a in &cps {
        let p = consistency_proof(&r, a.size, 70_000).unwrap();
        verify_consistency(a.size, 70_000, &a.root, &cps.last().unwrap().root, &p).unwrap();
    }
    // reopen and continue: the same tree
    let mut log = Log::open(&d, signer()).unwrap();
    assert_eq!(log.size(), 70_000);
    for i in 70_000..70_300 {
        log.append(&entry(i)).unwrap();
    }
    let cp = log.checkpoint().unwrap().unwrap();
    assert_eq!(cp.size, 70_300);
    verify_dir(&d, &key(), Some(cps.last().unwrap())).unwrap();
    // a proof file for an entry, checked against the key
    let note = std::fs::read_to_string(d.join("checkpoint")).unwrap();
    let proof = make_proof(&log.reader(), 65_537, cp.size, &note).unwrap();
    assert_eq!(
        check_proof(&proof, &entry(65_537), &key()).unwrap().0,
        65_537
    );
    assert!(check_proof(&proof, &entry(65_538), &key()).is_err());
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn committed_entries_survive_a_crash_before_the_checkpoint() {
    let d = dir("crash");
    let mut log = Log::open(&d, signer()).unwrap();
    for i in 0..300 {
        log.append(&entry(i)).unwrap();
    }
    log.checkpoint().unwrap();
    for i in 300..700 {
        log.append(&entry(i)).unwrap();
    }
    log.commit().unwrap();
    // appended but never committed: may be lost, must not corrupt
    log.append(&entry(700)).unwrap();
    drop(log); // "crash": no checkpoint after 300
    let mut log = Log::open(&d, signer()).unwrap();
    assert!(
        log.size() >= 700,
        "the committed entries are back: {}",
        log.size()
    );
    let cp = log.checkpoint().unwrap().unwrap();
    let v = verify_dir(&d, &key(), None).unwrap();
    assert_eq!(v.checkpoint, cp);
    // a torn journal record at the end is ignored
    for i in log.size()..log.size() + 5 {
        log.append(&entry(i)).unwrap();
    }
    log.commit().unwrap();
    let size = log.size();
    drop(log);
    let j = d.join("journal");
    let len = std::fs::metadata(&j).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&j)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let log = Log::open(&d, signer()).unwrap();
    assert_eq!(log.size(), size - 1);
    let _ = std::fs::remove_dir_all(&d);
}

/// The crash windows of a checkpoint: after the new tiles were written but before the
/// checkpoint was renamed into place (the old checkpoint stands), and after the rename
/// but before the journal was truncated (the journal repeats entries the tiles have).
/// Both reopen to the same entries, and the next checkpoint extends the old one.
#[test]
fn a_crash_inside_a_checkpoint_loses_nothing_and_forks_nothing() {
    let d = dir("crash-in-checkpoint");
    let mut log = Log::open(&d, signer()).unwrap();
    for i in 0..300 {
        log.append(&entry(i)).unwrap();
    }
    let first = log.checkpoint().unwrap().unwrap();
    for i in 300..600 {
        log.append(&entry(i)).unwrap();
    }
    log.commit().unwrap();
    // the files as they are before the second checkpoint
    let journal = std::fs::read(d.join("journal")).unwrap();
    let old_note = std::fs::read(d.join("checkpoint")).unwrap();
    let second = log.checkpoint().unwrap().unwrap();
    drop(log);

    // 1. rename not done: the old checkpoint, the new tiles beside it, the full journal
    std::fs::write(d.join("checkpoint"), &old_note).unwrap();
    std::fs::write(d.join("journal"), &journal).unwrap();
    let mut log = Log::open(&d, signer()).unwrap();
    assert_eq!((log.published(), log.size()), (300, 600));
    assert_eq!(log.checkpoint().unwrap().unwrap(), second);
    drop(log);

    // 2. rename done, journal not truncated: entries 300..600 both in tiles and journal
    std::fs::write(d.join("journal"), &journal).unwrap();
    let mut log = Log::open(&d, signer()).unwrap();
    assert_eq!((log.published(), log.size()), (600, 600));
    for i in 600..650 {
        log.append(&entry(i)).unwrap();
    }
    let third = log.checkpoint().unwrap().unwrap();
    let v = verify_dir(&d, &key(), Some(&first)).unwrap();
    assert_eq!(v.checkpoint, third);
    verify_dir(&d, &key(), Some(&second)).unwrap();
    let _ = std::fs::remove_dir_all(&d);
}

fn flip(path: &Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    b[at] ^= 1;
    std::fs::write(path, b).unwrap();
}

#[test]
fn every_tampering_is_found_and_located() {
    let base = dir("tamper-base");
    let cps = build(&base, 1_000, 400);
    let copy = |tag: &str| {
        let d = dir(tag);
        let status = std::process::Command::new("cp")
            .arg("-r")
            .arg(&base)
            .arg(&d)
            .status()
            .unwrap();
        assert!(status.success());
        d
    };
    let blob = copy("blob");
    std::fs::create_dir_all(blob.join("blobs")).unwrap();
    std::fs::write(
        blob.join("blobs").join(sha256_hex(b"refused message")),
        b"refused message",
    )
    .unwrap();
    verify_dir(&blob, &key(), None).unwrap();
    type Damage = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Damage, &str)> = vec![
        (
            "entry",
            Box::new(|d: &Path| flip(&d.join("tile/entries/001"), 5)),
            "tile/0/001 hash 0",
        ),
        (
            "tile",
            Box::new(|d: &Path| flip(&d.join("tile/0/002"), 64)),
            "tile/0/002 hash 2",
        ),
        (
            "tile1",
            Box::new(|d: &Path| flip(&d.join("tile/1/000.p/3"), 40)),
            "tile/1/000.p/3 hash 1",
        ),
        (
            "truncated-tile",
            Box::new(|d: &Path| {
                let p = d.join("tile/0/003.p/232");
                let b = std::fs::read(&p).unwrap();
                std::fs::write(&p, &b[..b.len() - 32]).unwrap();
            }),
            "tile/0/003.p/232",
        ),
        (
            "truncated-bundle",
            Box::new(|d: &Path| {
                let p = d.join("tile/entries/003.p/232");
                let b = std::fs::read(&p).unwrap();
                std::fs::write(&p, &b[..b.len() - 5]).unwrap();
            }),
            "tile/entries/003.p/232 byte",
        ),
        (
            "checkpoint-size",
            Box::new(|d: &Path| {
                let p = d.join("checkpoint");
                let t = std::fs::read_to_string(&p)
                    .unwrap()
                    .replacen("\n1000\n", "\n999\n", 1);
                std::fs::write(&p, t).unwrap();
            }),
            "checkpoint signature",
        ),
        (
            "checkpoint-sig",
            Box::new(|d: &Path| {
                let p = d.join("checkpoint");
                let t = std::fs::read_to_string(&p).unwrap();
                let at = t.len() - 10;
                flip(&p, at);
            }),
            "checkpoint",
        ),
        (
            "blob",
            Box::new(|d: &Path| {
                std::fs::create_dir_all(d.join("blobs")).unwrap();
                let name = sha256_hex(b"refused message");
                std::fs::write(d.join("blobs").join(name), b"refused massage").unwrap();
            }),
            "blobs/",
        ),
    ];
    for (tag, damage, place) in cases {
        let d = copy(tag);
        damage(&d);
        let e = verify_dir(&d, &key(), None).expect_err(tag);
        assert!(e.to_string().starts_with(place), "{tag}: {e}");
        let _ = std::fs::remove_dir_all(&d);
    }
    // an older checkpoint presented after a newer one was seen
    let d = copy("older");
    let newest = cps.last().unwrap().clone();
    let mut log = Log::open(&d, signer()).unwrap();
    for i in 1_000..1_010 {
        log.append(&entry(i)).unwrap();
    }
    let later = log.checkpoint().unwrap().unwrap();
    drop(log);
    let e = verify_dir(&base, &key(), Some(&later)).unwrap_err();
    assert!(
        e.to_string()
            .contains("older than the last checkpoint seen"),
        "{e}"
    );
    verify_dir(&d, &key(), Some(&newest)).unwrap();
    // a rewritten log (same size, other entries) is not consistent with what was seen
    let fork = dir("fork");
    let mut log = Log::open(&fork, signer()).unwrap();
    for i in 0..1_000 {
        log.append(&entry(i + 1)).unwrap();
    }
    log.checkpoint().unwrap();
    let e = verify_dir(&fork, &key(), Some(&cps[0])).unwrap_err();
    assert!(e.to_string().contains("not consistent"), "{e}");
    for d in [base, blob, d, fork] {
        let _ = std::fs::remove_dir_all(d);
    }
}
