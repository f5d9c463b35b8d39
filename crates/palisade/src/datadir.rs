//! The data directory as the command line and the server meet it: a command that only
//! reads refuses a directory without a database (instead of creating an empty one where
//! it was run and printing nothing), and every failure to use it names the path once, with
//! what to do about it.
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use palisade_store::StoreError;

/// The accounts and bindings database under a data directory.
pub(crate) const DB_FILE: &str = "palisade.db";

/// `path`, and for a relative one the directory it is relative to.
fn shown(path: &Path) -> String {
    if path.is_absolute() {
        return path.display().to_string();
    }
    match std::env::current_dir() {
        Ok(cwd) => format!("{} (in {})", path.display(), cwd.display()),
        Err(_) => path.display().to_string(),
    }
}

/// Refuses a data directory that cannot be one: a path with a regular file where a
/// directory must be (named, with the fix).
pub(crate) fn usable(dir: &Path) -> anyhow::Result<()> {
    let mut at = PathBuf::new();
    for c in dir.components() {
        at.push(c);
        match std::fs::metadata(&at) {
            Ok(m) if !m.is_dir() => {
                return Err(anyhow!(
                    "data directory {}: {} is a file, not a directory; move that file aside, or choose another directory with --data-dir (server.data_dir)",
                    dir.display(),
                    at.display()
                ))
            }
            Ok(_) => {}
            Err(_) => break, // missing from here on: created when needed
        }
    }
    Ok(())
}

/// The data directory, created when missing (the server, `user add`, `user import`).
pub(crate) fn prepare(dir: &Path) -> anyhow::Result<()> {
    usable(dir)?;
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow!("cannot create data directory {}: {e}", shown(dir)))
}

/// For commands that only read (or change what must already be there): the database must
/// exist.
pub(crate) fn existing(dir: &Path) -> anyhow::Result<()> {
    usable(dir)?;
    let db = dir.join(DB_FILE);
    if db.is_file() {
        return Ok(());
    }
    Err(anyhow!(
        "no database at {}: name the server's data directory with --data-dir DIR, or its configuration with --config FILE (server.data_dir); `palisade user add` or `palisade serve` creates one",
        shown(&db)
    ))
}

/// For commands that read files of a data directory other than the database (the
/// evidence log): the directory must exist.
pub(crate) fn present(dir: &Path) -> anyhow::Result<()> {
    usable(dir)?;
    if dir.is_dir() {
        return Ok(());
    }
    Err(anyhow!(
        "no data directory at {}: name the server's data directory with --data-dir DIR, or its configuration with --config FILE (server.data_dir)",
        shown(dir)
    ))
}

/// One cause, once, with the file and what to do.
pub(crate) fn explain(e: StoreError, file: &Path) -> anyhow::Error {
    match e {
        StoreError::Db(db) => {
            // SQLITE_CORRUPT (11) and SQLITE_NOTADB (26): the file is not a usable database
            let damaged = db
                .sqlite_error()
                .is_some_and(|f| matches!(f.extended_code & 0xff, 11 | 26));
            if damaged {
                anyhow!(
                    "{}: {db}: restore it from a backup, or move it aside (a new, empty database is made in its place)",
                    shown(file)
                )
            } else {
                anyhow!("{}: {db}", shown(file))
            }
        }
        StoreError::Dir { path, source } => {
            anyhow!("cannot create data directory {path}: {source}")
        }
        other => anyhow!("{other}"),
    }
}

/// The text of an error for the operator: each cause once (`StoreError`'s text already
/// carries the SQLite error under it, which would otherwise be printed two or three
/// times).
pub(crate) fn error_text(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        if cause.downcast_ref::<StoreError>().is_some() {
            break;
        }
    }
    parts.join(": ")
}
