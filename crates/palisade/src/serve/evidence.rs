//! The evidence thread: appends entries to the log as they come (group commit: one
//! `fdatasync` for whatever arrived together) and publishes a signed checkpoint every
//! `evidence.checkpoint_interval_ms`. The core never waits for it: senders use
//! `try_send`, and a full queue is counted and logged.

use super::*;
use palisade_evidence::Log;

/// Entries waiting for the evidence thread.
pub(super) const EVIDENCE_QUEUE: usize = 65_536;

/// A sender of entries that never blocks; counts what a full queue refused.
#[derive(Clone)]
pub(crate) struct EvidenceTx {
    tx: std::sync::mpsc::SyncSender<Vec<u8>>,
    dropped: Arc<std::sync::atomic::AtomicU64>,
}

impl EvidenceTx {
    pub(crate) fn send(&self, entry: Vec<u8>) {
        if self.tx.try_send(entry).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                error!(target: "palisade::security", dropped = n, "evidence entries dropped: the evidence thread is behind");
            }
        }
    }
}

/// Opens the log and starts its thread.
pub(super) fn start(
    cfg: &FileConfig,
    data_dir: &Path,
) -> anyhow::Result<(EvidenceTx, std::thread::JoinHandle<()>)> {
    let origin = crate::evidence::origin_of(data_dir, cfg)?;
    let signer = crate::evidence::signer(data_dir, cfg.evidence.key.as_deref(), &origin, true)?;
    crate::evidence::keep_origin(data_dir, &origin)?;
    let dir = crate::evidence::log_dir(data_dir);
    let log = Log::open(&dir, signer)
        .with_context(|| format!("opening the evidence log in {}", dir.display()))?;
    info!(size = log.size(), published = log.published(), origin, key = %log.verifier_key(), "evidence log open");
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(EVIDENCE_QUEUE);
    let interval = Duration::from_millis(cfg.evidence.checkpoint_interval_ms.max(10));
    let handle = std::thread::Builder::new()
        .name("palisade-evidence".into())
        .spawn(move || evidence_thread(log, rx, interval))?;
    Ok((
        EvidenceTx {
            tx,
            dropped: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        },
        handle,
    ))
}

fn evidence_thread(mut log: Log, rx: std::sync::mpsc::Receiver<Vec<u8>>, interval: Duration) {
    let mut last_checkpoint = Instant::now();
    let mut failing = false;
    loop {
        let wait = interval
            .saturating_sub(last_checkpoint.elapsed())
            .max(Duration::from_millis(1));
        let mut open = true;
        match rx.recv_timeout(wait) {
            Ok(e) => {
                append(&mut log, &e);
                // whatever else is already queued joins the same commit
                while let Ok(e) = rx.try_recv() {
                    append(&mut log, &e);
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => open = false,
        }
        if let Err(e) = log.commit() {
            if !failing {
                error!(target: "palisade::security", error = %e, "evidence log: commit failed");
            }
            failing = true;
        }
        if !open || last_checkpoint.elapsed() >= interval {
            last_checkpoint = Instant::now();
            match log.checkpoint() {
                Ok(Some(cp)) => {
                    failing = false;
                    debug!(size = cp.size, "evidence checkpoint published");
                }
                Ok(None) => {}
                Err(e) => {
                    if !failing {
                        error!(target: "palisade::security", error = %e, "evidence log: checkpoint failed");
                    }
                    failing = true;
                }
            }
        }
        if !open {
            info!(
                size = log.size(),
                published = log.published(),
                "evidence log closed"
            );
            return;
        }
    }
}

fn append(log: &mut Log, e: &[u8]) {
    if let Err(err) = log.append(e) {
        error!(target: "palisade::security", error = %err, "evidence log: append failed");
    }
}

/// The entry of a security event (shield decision, protected-user refusal, contained
/// panic, suppressed events).
pub(super) fn security_entry(e: &palisade_shield::SecurityEvent, unix_ms: i64) -> Vec<u8> {
    crate::evidence::entry(
        e.kind.as_str(),
        unix_ms,
        vec![
            ("method", serde_json::json!(e.method)),
            ("caller", serde_json::json!(e.caller)),
            ("callee", serde_json::json!(e.callee)),
            ("source", serde_json::json!(e.source)),
            ("call_id", serde_json::json!(e.call_id)),
            ("reason", serde_json::json!(e.reason)),
            ("status", serde_json::json!(e.status)),
            ("sha256", serde_json::json!(palisade_shield::hex(&e.sha256))),
        ],
    )
}
