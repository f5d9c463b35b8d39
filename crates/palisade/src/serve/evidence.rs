//! The evidence thread: appends entries to the log as they come (group commit: one
//! `fdatasync` for whatever arrived together) and publishes a signed checkpoint every
//! `evidence.checkpoint_interval_ms`. The core never waits for it: senders use
//! `try_send`, and a full queue is counted and logged.

use super::*;
use palisade_evidence::Log;

/// Entries waiting for the evidence thread.
pub(super) const EVIDENCE_QUEUE: usize = 65_536;

/// An entry, and what may happen only once it is durable (an answer to send, a
/// restriction to apply, a notification to deliver): the evidence thread hands that
/// back to the core thread after its commit.
type Item = (Vec<u8>, Option<Inbound>);

/// A sender of entries that never blocks; counts what a full queue refused.
#[derive(Clone)]
pub(super) struct EvidenceTx {
    tx: std::sync::mpsc::SyncSender<Item>,
    dropped: Arc<std::sync::atomic::AtomicU64>,
}

impl EvidenceTx {
    /// Queues `entry`; `then` comes back through the inbound queue once the entry is
    /// durable. When the queue is full the entry is counted and dropped and `then` is
    /// returned, to be done at once (the server does not stop answering because its
    /// log is behind; the error line says so).
    pub(super) fn send(
        &self,
        entry: Vec<u8>,
        then: Option<Inbound>,
    ) -> Result<(), Option<Inbound>> {
        match self.tx.try_send((entry, then)) {
            Ok(()) => Ok(()),
            Err(std::sync::mpsc::TrySendError::Full((_, then)))
            | Err(std::sync::mpsc::TrySendError::Disconnected((_, then))) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    error!(target: "palisade::security", dropped = n, "evidence entries dropped: the evidence thread is behind");
                }
                Err(then)
            }
        }
    }
}

/// Opens the log and starts its thread.
pub(super) fn start(
    cfg: &FileConfig,
    data_dir: &Path,
    inbound: mpsc::Sender<Inbound>,
) -> anyhow::Result<(EvidenceTx, std::thread::JoinHandle<()>)> {
    let origin = crate::evidence::origin_of(data_dir, cfg)?;
    let signer = crate::evidence::signer(data_dir, cfg.evidence.key.as_deref(), &origin, true)?;
    crate::evidence::keep_origin(data_dir, &origin)?;
    let dir = crate::evidence::log_dir(data_dir);
    let log = Log::open(&dir, signer)
        .with_context(|| format!("opening the evidence log in {}", dir.display()))?;
    info!(size = log.size(), published = log.published(), origin, key = %log.verifier_key(), "evidence log open");
    let (tx, rx) = std::sync::mpsc::sync_channel::<Item>(EVIDENCE_QUEUE);
    let interval = Duration::from_millis(cfg.evidence.checkpoint_interval_ms.max(10));
    let handle = std::thread::Builder::new()
        .name("palisade-evidence".into())
        .spawn(move || evidence_thread(log, rx, interval, inbound))?;
    Ok((
        EvidenceTx {
            tx,
            dropped: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        },
        handle,
    ))
}

fn evidence_thread(
    mut log: Log,
    rx: std::sync::mpsc::Receiver<Item>,
    interval: Duration,
    inbound: mpsc::Sender<Inbound>,
) {
    let mut last_checkpoint = Instant::now();
    let mut failing = false;
    let mut effects = Vec::new();
    loop {
        let wait = interval
            .saturating_sub(last_checkpoint.elapsed())
            .max(Duration::from_millis(1));
        let mut open = true;
        match rx.recv_timeout(wait) {
            Ok((e, then)) => {
                append(&mut log, &e);
                effects.extend(then);
                // whatever else is already queued joins the same commit
                while let Ok((e, then)) = rx.try_recv() {
                    append(&mut log, &e);
                    effects.extend(then);
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => open = false,
        }
        match log.commit() {
            Ok(_) => failing = false,
            Err(e) => {
                if !failing {
                    error!(target: "palisade::security", error = %e, "evidence log: commit failed; decisions are carried out without their entry being durable");
                }
                failing = true;
            }
        }
        // The entries are durable: what waited for them may happen.
        for then in effects.drain(..) {
            let _ = inbound.blocking_send(then);
        }
        if !open || last_checkpoint.elapsed() >= interval {
            last_checkpoint = Instant::now();
            match log.checkpoint() {
                Ok(Some(cp)) => debug!(size = cp.size, "evidence checkpoint published"),
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
