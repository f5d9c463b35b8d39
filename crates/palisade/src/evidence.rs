//! The evidence log's key, its entries, and `palisade evidence ...`: key, entries,
//! verify, proof, check-proof, export.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use palisade_evidence::tiles::{bundle_path, parse_bundle, TILE_WIDTH};
use palisade_evidence::{check_proof, make_proof, Checkpoint, NoteSigner, NoteVerifier};
use serde_json::{json, Map, Value};

use crate::{clock, datadir};

/// Where the log lives under a data directory.
pub(crate) fn log_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("evidence")
}

fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("evidence.key")
}

/// The signer of the log: its Ed25519 seed from `key` (config) or
/// `<data_dir>/evidence.key`, created on first use (mode 0600) when `create`.
pub(crate) fn signer(
    data_dir: &Path,
    key: Option<&Path>,
    origin: &str,
    create: bool,
) -> anyhow::Result<NoteSigner> {
    if key.is_none() && !create {
        datadir::present(data_dir)?;
    }
    let path = key.map_or_else(|| key_path(data_dir), Path::to_path_buf);
    let s = seed(&path, create && key.is_none()).map_err(|e| {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound)
        {
            anyhow::anyhow!(
                "{}: no evidence key yet (the server creates it at its first start)",
                path.display()
            )
        } else {
            e
        }
    })?;
    NoteSigner::new(origin, &s).map_err(|e| anyhow::anyhow!("evidence.origin: {e}"))
}

/// An Ed25519 seed kept as 64 hex digits in `path`; when it is missing and `create`, a
/// new one from the operating system's random source (file mode 0600, written to a
/// temporary file and renamed).
pub(crate) fn seed(path: &Path, create: bool) -> anyhow::Result<[u8; 32]> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let t = text.trim();
            let bytes: Vec<u8> = (0..t.len() / 2)
                .filter_map(|i| {
                    t.get(i * 2..i * 2 + 2)
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                })
                .collect();
            bytes.try_into().map_err(|_| {
                anyhow::anyhow!(
                    "{}: expected 64 hex digits (an Ed25519 seed)",
                    path.display()
                )
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let mut s = [0u8; 32];
            getrandom::getrandom(&mut s).map_err(|e| anyhow::anyhow!("random source: {e}"))?;
            if let Some(d) = path.parent() {
                std::fs::create_dir_all(d)?;
            }
            let hex = hex::encode(s);
            let tmp = path.with_extension("tmp");
            {
                use std::io::Write as _;
                use std::os::unix::fs::OpenOptionsExt as _;
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&tmp)
                    .with_context(|| format!("creating {}", tmp.display()))?;
                f.write_all(hex.as_bytes())?;
                f.sync_all()?;
            }
            std::fs::rename(&tmp, path)?;
            Ok(s)
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("reading {}", path.display()))),
    }
}

/// What the evidence commands and the server need of the configuration to find a log
/// and its key: `server.data_dir`, `server.domain`, `evidence.origin`, `evidence.key`.
pub(crate) struct LogSettings {
    pub(crate) data_dir: PathBuf,
    /// The SIP domain, which names the log when no origin is configured.
    pub(crate) domain: String,
    /// `evidence.origin`.
    pub(crate) origin: Option<String>,
    /// `evidence.key`: a seed file instead of `<data_dir>/evidence.key`.
    pub(crate) key: Option<PathBuf>,
    /// `[cluster] node` (empty outside a cluster): a new log's default origin names it,
    /// so that each node's log is told apart.
    pub(crate) node: String,
}

impl LogSettings {
    /// The log's origin (and key name). Fixed when the log is created (kept in
    /// `<data_dir>/evidence/origin`): `evidence.origin`, or `<domain>/palisade-evidence`
    /// (`<domain>/palisade-evidence/<node>` for a node of a cluster).
    /// A later configuration that names another origin is refused (it would fork the
    /// log).
    pub(crate) fn origin(&self) -> anyhow::Result<String> {
        let file = log_dir(&self.data_dir).join("origin");
        match std::fs::read_to_string(&file) {
            Ok(o) => {
                let o = o.trim().to_string();
                if let Some(want) = &self.origin {
                    if *want != o {
                        bail!(
                            "evidence.origin {want:?}: this log's origin is {o:?} ({})",
                            file.display()
                        );
                    }
                }
                Ok(o)
            }
            Err(_) => Ok(self
                .origin
                .clone()
                .unwrap_or_else(|| match self.node.as_str() {
                    "" => format!("{}/palisade-evidence", self.domain),
                    node => format!("{}/palisade-evidence/{node}", self.domain),
                })),
        }
    }

    /// The log's signer (see [`signer`]), under its origin.
    pub(crate) fn signer(&self, create: bool) -> anyhow::Result<NoteSigner> {
        signer(&self.data_dir, self.key.as_deref(), &self.origin()?, create)
    }

    /// Where the log lives.
    pub(crate) fn log_dir(&self) -> PathBuf {
        log_dir(&self.data_dir)
    }
}

/// Records the origin of a new log.
pub(crate) fn keep_origin(data_dir: &Path, origin: &str) -> anyhow::Result<()> {
    let dir = log_dir(data_dir);
    let file = dir.join("origin");
    if !file.exists() {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(&file, format!("{origin}\n"))?;
    }
    Ok(())
}

/// Bytes past which a string field is cut to its first this many characters.
const MAX_FIELD: usize = 2048;

/// A string field as an entry keeps it: past [`MAX_FIELD`] bytes, its first
/// [`MAX_FIELD`] characters (so that an entry always fits the log).
fn bounded(v: &str) -> std::borrow::Cow<'_, str> {
    if v.len() > MAX_FIELD {
        v.chars().take(MAX_FIELD).collect::<String>().into()
    } else {
        v.into()
    }
}

/// A canonical JSON entry (sorted keys, no insignificant whitespace): `kind`, `time`
/// (RFC 3339), and the given fields; strings are bounded so that an entry always fits
/// the log's 65,535 bytes.
pub(crate) fn entry(kind: &str, time_ms: i64, fields: Vec<(&str, Value)>) -> Vec<u8> {
    let mut m = Map::new();
    m.insert("kind".into(), json!(kind));
    m.insert("time".into(), json!(palisade_detect::rfc3339(time_ms)));
    for (k, v) in fields {
        let v = match v {
            Value::String(s) if s.len() > MAX_FIELD => Value::String(bounded(&s).into_owned()),
            other => other,
        };
        m.insert(k.to_string(), v);
    }
    // serde_json's map is ordered by key (no preserve_order feature): canonical order
    let mut out = Value::Object(m).to_string().into_bytes();
    out.truncate(palisade_evidence::tiles::MAX_ENTRY);
    out
}

/// An entry written field by field, as [`entry`] writes it, without building a JSON
/// value tree: for the entries made per call and per registration (`records = "all"`),
/// where the tree cost about as much as the rest of the entry's way into the log. The
/// caller gives the keys in sorted order, `kind` and `time` among them (the tests compare
/// each such entry with [`entry`]'s).
pub(crate) struct EntryWriter {
    out: Vec<u8>,
    fields: usize,
}

impl EntryWriter {
    pub(crate) fn new() -> Self {
        let mut out = Vec::with_capacity(384);
        out.push(b'{');
        EntryWriter { out, fields: 0 }
    }

    fn key(&mut self, key: &str) {
        if self.fields > 0 {
            self.out.push(b',');
        }
        self.fields += 1;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    /// A string field, bounded as [`entry`] bounds it ([`bounded`]).
    pub(crate) fn str(&mut self, key: &str, v: &str) {
        self.key(key);
        let v = bounded(v);
        let v = v.as_ref();
        if v.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
            self.out.push(b'"');
            self.out.extend_from_slice(v.as_bytes());
            self.out.push(b'"');
        } else if serde_json::to_writer(&mut self.out, v).is_err() {
            // (writing into a Vec does not fail; an empty string keeps the JSON whole)
            self.out.extend_from_slice(b"\"\"");
        }
    }

    /// A number field.
    pub(crate) fn num(&mut self, key: &str, v: u64) {
        self.key(key);
        // (serde_json writes integers without `core::fmt`; into a Vec it cannot fail)
        let _ = serde_json::to_writer(&mut self.out, &v);
    }

    fn null(&mut self, key: &str) {
        self.key(key);
        self.out.extend_from_slice(b"null");
    }

    /// `null` when absent.
    pub(crate) fn opt_num(&mut self, key: &str, v: Option<u64>) {
        match v {
            Some(v) => self.num(key, v),
            None => self.null(key),
        }
    }

    /// A time as RFC 3339 text, `null` when absent.
    pub(crate) fn opt_time(&mut self, key: &str, ms: Option<i64>) {
        match ms {
            Some(ms) => self.str(key, &palisade_detect::rfc3339(ms)),
            None => self.null(key),
        }
    }

    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.out.push(b'}');
        self.out.truncate(palisade_evidence::tiles::MAX_ENTRY);
        self.out
    }
}

/// The entries of the published log, with their indexes.
fn entries(dir: &Path, size: u64) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for b in 0..size.div_ceil(TILE_WIDTH) {
        let w = (size - b * TILE_WIDTH).min(TILE_WIDTH);
        let p = bundle_path(b, w);
        let bytes = std::fs::read(dir.join(&p)).with_context(|| p.clone())?;
        let es =
            parse_bundle(&bytes).map_err(|off| anyhow::anyhow!("{p}: malformed at byte {off}"))?;
        out.extend(es.into_iter().map(<[u8]>::to_vec));
    }
    Ok(out)
}

fn published(dir: &Path, key: &NoteVerifier) -> anyhow::Result<(Checkpoint, String)> {
    let note = std::fs::read_to_string(dir.join("checkpoint"))
        .with_context(|| format!("{}: no checkpoint yet", dir.display()))?;
    let text = key
        .open(&note)
        .map_err(|e| anyhow::anyhow!("checkpoint: {e}"))?;
    Ok((
        Checkpoint::parse(text).map_err(|e| anyhow::anyhow!("{e}"))?,
        note,
    ))
}

/// `palisade evidence key`.
pub(crate) fn key(log: &LogSettings) -> anyhow::Result<()> {
    println!("{}", log.signer(false)?.verifier_key());
    Ok(())
}

fn verifier(log: &LogSettings, vkey: Option<&str>) -> anyhow::Result<NoteVerifier> {
    let text = match vkey {
        Some(k) => k.to_string(),
        None => log.signer(false)?.verifier_key(),
    };
    NoteVerifier::parse(&text).map_err(|e| anyhow::anyhow!("{e}"))
}

/// The log directory named by a command line: DIR itself when it holds a checkpoint,
/// else DIR/evidence (a data directory).
fn resolve_dir(dir: &Path) -> PathBuf {
    if dir.join("checkpoint").exists() || !log_dir(dir).exists() {
        dir.to_path_buf()
    } else {
        log_dir(dir)
    }
}

/// What `palisade evidence verify` is asked.
pub(crate) struct VerifyOpts {
    /// The log's directory (default: the data directory's).
    pub(crate) dir: Option<PathBuf>,
    /// The verifier key (default: the data directory's key).
    pub(crate) key: Option<String>,
    /// A file with the last checkpoint this verifier accepted.
    pub(crate) last: Option<PathBuf>,
    /// Witnesses' cosignature keys.
    pub(crate) witnesses: Vec<String>,
    /// How many of them must have cosigned.
    pub(crate) required: usize,
    /// Leading entry bundles may be missing (an export `--since`).
    pub(crate) partial: bool,
}

/// `palisade evidence verify`. `last`: a file holding the last checkpoint this verifier
/// accepted; the log must extend it, and it is replaced by the new one on success.
pub(crate) fn verify(log: &LogSettings, opts: &VerifyOpts) -> anyhow::Result<()> {
    let data_dir = log.data_dir.as_path();
    let (last, required) = (opts.last.as_deref(), opts.required);
    match &opts.dir {
        Some(d) if !d.exists() => bail!(
            "{}: no such file or directory (the log to verify: a copy, an export or a data directory)",
            d.display()
        ),
        Some(_) => {}
        None => datadir::present(data_dir)?,
    }
    let key = verifier(log, opts.key.as_deref())?;
    let wkeys = opts
        .witnesses
        .iter()
        .map(|w| {
            palisade_evidence::CosignatureVerifier::parse(w)
                .map_err(|e| anyhow::anyhow!("--witness {w}: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if required > wkeys.len() {
        bail!(
            "--witnesses {required}: only {} witness keys given",
            wkeys.len()
        );
    }
    let dir = resolve_dir(opts.dir.as_deref().unwrap_or(&log_dir(data_dir)));
    let last_cp = match last.map(std::fs::read_to_string) {
        Some(Ok(note)) => {
            let text = key.open(&note).map_err(|e| {
                anyhow::anyhow!(
                    "{}: {e}",
                    last.map(|p| p.display().to_string()).unwrap_or_default()
                )
            })?;
            Some(Checkpoint::parse(text).map_err(|e| anyhow::anyhow!("{e}"))?)
        }
        Some(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => None,
        Some(Err(e)) => return Err(e.into()),
        None => None,
    };
    let v = palisade_evidence::verify_dir_from(&dir, &key, last_cp.as_ref(), opts.partial)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // Cosignatures on the checkpoint verified (not on a newer one a live log may have
    // published since) by the witnesses named.
    let cosigned: Vec<&str> = wkeys
        .iter()
        .filter(|w| w.check(&v.note).is_some())
        .map(|w| w.name())
        .collect();
    if cosigned.len() < required {
        bail!(
            "checkpoint signatures: {} of the {required} required witness cosignatures (cosigned by: {})",
            cosigned.len(),
            if cosigned.is_empty() {
                "none".to_string()
            } else {
                cosigned.join(", ")
            }
        );
    }
    if let Some(p) = last {
        std::fs::write(p, &v.note)?;
    }
    println!(
        "ok: {} entries{}, {} tiles and {} blobs verified; checkpoint {} of {}{}{}",
        v.checkpoint.size - v.first_entry,
        if v.first_entry > 0 {
            format!(
                " (from index {}; the {} before as hashes only)",
                v.first_entry, v.first_entry
            )
        } else {
            String::new()
        },
        v.tiles,
        v.blobs,
        v.checkpoint.size,
        v.checkpoint.origin,
        last_cp.map_or(String::new(), |c| format!(
            ", consistent with the last one seen (size {})",
            c.size
        )),
        if cosigned.is_empty() {
            String::new()
        } else {
            format!(", cosigned by {}", cosigned.join(", "))
        }
    );
    Ok(())
}

/// `palisade evidence entries [--json]`: the published entries with their indexes.
pub(crate) fn list(log: &LogSettings) -> anyhow::Result<()> {
    let key = verifier(log, None)?;
    let dir = log.log_dir();
    let (cp, _) = published(&dir, &key)?;
    for (i, e) in entries(&dir, cp.size)?.iter().enumerate() {
        println!("{i} {}", String::from_utf8_lossy(e));
    }
    Ok(())
}

/// `palisade evidence proof --index N | --finding ID [--out FILE]`.
pub(crate) fn proof(
    log: &LogSettings,
    index: Option<u64>,
    finding: Option<&str>,
    out: Option<&Path>,
) -> anyhow::Result<()> {
    let key = verifier(log, None)?;
    let dir = log.log_dir();
    let (cp, note) = published(&dir, &key)?;
    let index = match (index, finding) {
        (Some(i), None) => i,
        (None, Some(f)) => {
            let id = f.trim_start_matches('F');
            let want = format!("\"finding\":\"F{id}\"");
            let es = entries(&dir, cp.size)?;
            es.iter()
                .position(|e| String::from_utf8_lossy(e).contains(&want))
                .with_context(|| format!("no entry of finding F{id} in the published log"))?
                as u64
        }
        _ => bail!("give --index N or --finding ID"),
    };
    if index >= cp.size {
        bail!(
            "entry {index} is not in the published log (size {})",
            cp.size
        );
    }
    let reader = palisade_evidence::tiles::TileReader::new(&dir, cp.size);
    let text = make_proof(&reader, index, cp.size, &note).map_err(|e| anyhow::anyhow!(e))?;
    match out {
        Some(p) => {
            std::fs::write(p, &text)?;
            println!(
                "proof of entry {index} in checkpoint {} written to {}",
                cp.size,
                p.display()
            );
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// `palisade evidence check-proof FILE --entry ENTRY --key VKEY`: ENTRY is a file
/// holding the entry's bytes, `-` for standard input, or the entry itself.
pub(crate) fn check(file: &Path, entry_arg: &str, vkey: &str) -> anyhow::Result<()> {
    let key = NoteVerifier::parse(vkey).map_err(|e| anyhow::anyhow!("{e}"))?;
    let text = std::fs::read_to_string(file).with_context(|| file.display().to_string())?;
    let entry = if entry_arg == "-" {
        let mut v = Vec::new();
        std::io::stdin().read_to_end(&mut v)?;
        v
    } else if Path::new(entry_arg).is_file() {
        std::fs::read(entry_arg)?
    } else {
        entry_arg.as_bytes().to_vec()
    };
    let entry = entry
        .strip_suffix(b"\n")
        .map(<[u8]>::to_vec)
        .unwrap_or(entry);
    let (index, cp) = check_proof(&text, &entry, &key).map_err(|e| anyhow::anyhow!(e))?;
    println!(
        "ok: entry {index} is in the log {} of size {} (signature verified)",
        cp.origin, cp.size
    );
    Ok(())
}

/// `palisade evidence export [--since T] DIR`: the log as static files (tlog-tiles at the
/// root of DIR, blobs beside it) and a README saying how to verify it. With `since`,
/// every hash tile and the checkpoint, but only the entry bundles from the one holding
/// the first entry at or after T, and the blobs those entries name.
pub(crate) fn export(log: &LogSettings, to: &Path, since: Option<&str>) -> anyhow::Result<()> {
    let key = verifier(log, None)?;
    let from = log.log_dir();
    let (cp, note) = published(&from, &key)?;
    let since_ms = clock::since(since)?;
    let all = entries(&from, cp.size)?;
    // the first entry at or after T (entries are in time order)
    let first = if since.is_some() {
        all.iter()
            .position(|e| {
                serde_json::from_slice::<Value>(e)
                    .ok()
                    .and_then(|v| v.get("time").and_then(Value::as_str).map(str::to_string))
                    .and_then(|t| palisade_detect::parse_time(&t, 0))
                    .is_some_and(|t| t >= since_ms)
            })
            .unwrap_or(all.len()) as u64
    } else {
        0
    };
    let first_bundle = (first / TILE_WIDTH).min(cp.size.saturating_sub(1) / TILE_WIDTH);
    std::fs::create_dir_all(to)?;
    // the checkpoint as read (the tiles below are those of its size)
    std::fs::write(to.join("checkpoint"), &note)?;
    let mut files = 0usize;
    for (p, bundle) in palisade_evidence::tiles::tree_files(cp.size) {
        if bundle.is_some_and(|b| b < first_bundle) {
            continue;
        }
        let dest = to.join(&p);
        if let Some(d) = dest.parent() {
            std::fs::create_dir_all(d)?;
        }
        std::fs::copy(from.join(&p), &dest).with_context(|| p.clone())?;
        files += 1;
    }
    let mut blobs = 0usize;
    for e in all.iter().skip((first_bundle * TILE_WIDTH) as usize) {
        if let Some(name) = palisade_evidence::kept_blob(e) {
            let src = from.join("blobs").join(&name);
            if src.exists() {
                std::fs::create_dir_all(to.join("blobs"))?;
                std::fs::copy(&src, to.join("blobs").join(&name))?;
                blobs += 1;
            }
        }
    }
    let exported_from = first_bundle * TILE_WIDTH;
    let partial = if exported_from > 0 {
        format!(
            "This copy holds the entries from index {exported_from} on (exported --since {}); the\n\
             ones before are present as hashes only, checked against the signed root:\n\
             verify it with --partial.\n\n",
            since.unwrap_or("")
        )
    } else {
        String::new()
    };
    std::fs::write(
        to.join("README"),
        format!(
            "Palisade evidence log {origin}, {size} entries (C2SP tlog-tiles layout).\n\n\
             {partial}\
             Verifier key: {vkey}\n\n\
             Verify with Palisade:  palisade evidence verify {dir}{flag} --key '{vkey}'\n\
             or with any C2SP tlog-tiles client (Go: golang.org/x/mod/sumdb/note and tlog).\n\
             Entries are canonical JSON; tile/entries/N holds 256 of them, each after its\n\
             length (16 bits, big-endian). blobs/ holds the refused messages, each named by\n\
             its SHA-256 (the message_sha256 of the entry that refused it).\n",
            origin = cp.origin,
            size = cp.size,
            vkey = log.signer(false)?.verifier_key(),
            dir = to.display(),
            flag = if exported_from > 0 { " --partial" } else { "" },
        ),
    )?;
    println!(
        "exported {} entries (from index {exported_from}), {files} tiles and bundles, {blobs} blobs to {}",
        cp.size - exported_from,
        to.display()
    );
    Ok(())
}
