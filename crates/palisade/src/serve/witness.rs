//! Submits each new checkpoint to the configured witnesses (C2SP tlog-witness
//! `add-checkpoint`, with a consistency proof from the size each witness last
//! cosigned) and hands the cosignatures that verify back to the evidence thread, which
//! adds them to the published checkpoint.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, Sender, SyncSender};

use anyhow::Context;
use palisade_evidence::CosignatureVerifier;
use tracing::{info, warn};

use crate::config::WitnessEntry;
use crate::http;
use crate::messages::EvidenceMsg;

struct Target {
    url: String,
    /// With the roots this witness is trusted under (its `ca_file`, or the default).
    client: http::Client,
    key: CosignatureVerifier,
    /// The size this witness last cosigned, as far as we know (0: ask).
    old: u64,
    failing: bool,
}

/// Starts the submitter when witnesses are configured: the sender of (size, note) of
/// each published checkpoint.
pub(super) fn start(
    witnesses: &[WitnessEntry],
    log_dir: &Path,
    back: SyncSender<EvidenceMsg>,
) -> anyhow::Result<Option<Sender<(u64, String)>>> {
    if witnesses.is_empty() {
        return Ok(None);
    }
    let mut targets = Vec::new();
    for w in witnesses {
        let key = CosignatureVerifier::parse(&w.key)
            .map_err(|e| anyhow::anyhow!("evidence.witnesses {}: {e}", w.url))?;
        let client = http::Client::new(w.ca_file.as_deref())
            .with_context(|| format!("evidence.witnesses {}: ca_file", w.url))?;
        targets.push(Target {
            url: format!("{}/add-checkpoint", w.url.trim_end_matches('/')),
            client,
            key,
            old: 0,
            failing: false,
        });
    }
    let (tx, rx) = channel::<(u64, String)>();
    let dir = log_dir.to_path_buf();
    std::thread::Builder::new()
        .name("palisade-witness".into())
        .spawn(move || submitter(dir, targets, rx, back))?;
    Ok(Some(tx))
}

fn submitter(
    dir: PathBuf,
    mut targets: Vec<Target>,
    rx: Receiver<(u64, String)>,
    back: SyncSender<EvidenceMsg>,
) {
    while let Ok(mut latest) = rx.recv() {
        // only the newest checkpoint matters
        while let Ok(newer) = rx.try_recv() {
            latest = newer;
        }
        let (size, note) = latest;
        let mut lines = String::new();
        for t in &mut targets {
            match submit(&dir, t, size, &note) {
                Ok(line) => {
                    if t.failing {
                        info!(witness = t.key.name(), size, "witness cosigns again");
                    }
                    t.failing = false;
                    lines.push_str(&line);
                }
                Err(e) => {
                    if !t.failing {
                        warn!(target: "palisade::security", witness = t.key.name(), url = t.url, error = %e, "witness did not cosign the checkpoint");
                    }
                    t.failing = true;
                }
            }
        }
        if !lines.is_empty() && back.send(EvidenceMsg::Cosigned(size, lines)).is_err() {
            return;
        }
    }
}

/// One `add-checkpoint` (a second one when the witness says it is at another size):
/// the cosignature line of this witness's key.
fn submit(dir: &Path, t: &mut Target, size: u64, note: &str) -> anyhow::Result<String> {
    for _ in 0..2 {
        if t.old > size {
            anyhow::bail!(
                "the witness has cosigned size {}, larger than this log's {size}: it saw another log under this origin",
                t.old
            );
        }
        let proof = if t.old > 0 && t.old < size {
            let reader = palisade_evidence::tiles::TileReader::new(dir, size);
            palisade_evidence::merkle::consistency_proof(&reader, t.old, size)
                .map_err(|e| anyhow::anyhow!("consistency proof {} to {size}: {e}", t.old))?
        } else {
            Vec::new()
        };
        let body = palisade_evidence::witness::add_checkpoint_request(t.old, &proof, note);
        let (code, answer) = t.client.post(&t.url, "text/plain", &body)?;
        match code {
            200 => {
                t.old = size;
                return answer
                    .lines()
                    .map(|l| format!("{l}\n"))
                    .find(|l| t.key.check(&format!("{note}{l}")).is_some())
                    .ok_or_else(|| {
                        anyhow::anyhow!("no valid cosignature by its key in the answer")
                    });
            }
            409 => {
                t.old = answer
                    .trim()
                    .parse()
                    .map_err(|_| anyhow::anyhow!("409 without a size"))?;
            }
            other => anyhow::bail!("HTTP {other}: {}", answer.trim()),
        }
    }
    anyhow::bail!("the witness's size kept changing")
}
