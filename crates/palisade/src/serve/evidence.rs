//! The evidence thread: appends entries to the log as they come (group commit: one
//! `fdatasync` for whatever arrived together) and publishes a signed checkpoint every
//! `evidence.checkpoint_interval_ms`. The core never waits for it: senders use
//! `try_send`, and a full queue is counted and logged.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use palisade_evidence::Log;
use tracing::{debug, error, info};

use super::router::Router;
use super::telemetry::Telemetry;
use super::witness;
use crate::config::WitnessEntry;
use crate::evidence::{entry, keep_origin, signer, LogSettings};
use crate::messages::{EvidenceItem, EvidenceMsg, Inbound};

/// Entries waiting for the evidence thread.
pub(super) const EVIDENCE_QUEUE: usize = 65_536;

/// A sender of entries that never blocks; counts what a full queue refused.
#[derive(Clone)]
pub(super) struct EvidenceTx {
    tx: SyncSender<EvidenceMsg>,
    dropped: Arc<AtomicU64>,
    /// Bytes the blob store may still take (`evidence.blob_store_mb`).
    blob_room: Arc<AtomicI64>,
}

impl EvidenceTx {
    /// Asks the thread to end after what is queued (waits for room: at shutdown only).
    pub(super) fn close(&self) {
        let _ = self.tx.send(EvidenceMsg::Close);
    }

    /// Queues `entry`; `then` comes back through the inbound queue once the entry is
    /// durable. When the queue is full the entry is counted and dropped and `then` is
    /// returned, to be done at once (the server does not stop answering because its
    /// log is behind; the error line says so).
    pub(super) fn send(
        &self,
        entry: Vec<u8>,
        then: Option<Inbound>,
    ) -> Result<(), Option<Inbound>> {
        self.send_with(entry, None, then)
    }

    /// As [`EvidenceTx::send`], with content for the blob store (reserved with
    /// [`EvidenceTx::reserve_blob`]).
    pub(super) fn send_with(
        &self,
        entry: Vec<u8>,
        blob: Option<Vec<u8>>,
        then: Option<Inbound>,
    ) -> Result<(), Option<Inbound>> {
        let item = EvidenceItem {
            entry,
            blob,
            then,
            queued: Instant::now(),
        };
        match self.tx.try_send(EvidenceMsg::Entry(item)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(m)) | Err(TrySendError::Disconnected(m)) => {
                let EvidenceMsg::Entry(item) = m else {
                    return Err(None);
                };
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    error!(target: "palisade::security", dropped = n, "evidence entries dropped: the evidence thread is behind");
                }
                Err(item.then)
            }
        }
    }

    /// Whether content of `len` bytes may go to the blob store (which is bounded: once
    /// full, entries say the content was not kept, and what is kept stays).
    pub(super) fn reserve_blob(&self, len: usize) -> bool {
        let len = len as i64;
        let left = self.blob_room.fetch_sub(len, Ordering::Relaxed);
        if left >= len {
            true
        } else {
            self.blob_room.fetch_add(len, Ordering::Relaxed);
            false
        }
    }
}

/// Bytes in the blob directory now.
fn blob_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Opens the log and starts its thread.
pub(super) fn start(
    settings: &LogSettings,
    blob_store_mb: u64,
    interval: Duration,
    witnesses: &[WitnessEntry],
    inbound: Router,
    telemetry: Arc<Telemetry>,
) -> anyhow::Result<(EvidenceTx, JoinHandle<()>)> {
    let origin = settings.origin()?;
    let signer = signer(&settings.data_dir, settings.key.as_deref(), &origin, true)?;
    keep_origin(&settings.data_dir, &origin)?;
    let dir = settings.log_dir();
    let log = Log::open(&dir, signer)
        .with_context(|| format!("opening the evidence log in {}", dir.display()))?;
    let blobs = dir.join("blobs");
    // what a crash left half-written (never named by a durable entry)
    let _ = std::fs::remove_dir_all(staging(&blobs));
    let used = blob_bytes(&blobs);
    let room = blob_store_mb.saturating_mul(1 << 20).saturating_sub(used);
    info!(size = log.size(), published = log.published(), origin, key = %log.verifier_key(), blob_bytes = used, "evidence log open");
    let (tx, rx) = sync_channel::<EvidenceMsg>(EVIDENCE_QUEUE);
    let witnesses = witness::start(witnesses, &dir, tx.clone())?;
    let dropped = Arc::new(AtomicU64::new(0));
    let counted = dropped.clone();
    let handle = std::thread::Builder::new()
        .name("palisade-evidence".into())
        .spawn(move || {
            evidence_thread(
                log, blobs, rx, interval, inbound, witnesses, counted, telemetry,
            )
        })?;
    Ok((
        EvidenceTx {
            tx,
            dropped,
            blob_room: Arc::new(AtomicI64::new(i64::try_from(room).unwrap_or(i64::MAX))),
        },
        handle,
    ))
}

/// Latencies in steps of 50 µs below 100 ms and of 5 ms from there to 10 s (the last
/// step holds everything slower): 3,981 counters (31 KiB). (It had 200,001 steps of
/// 50 µs, 1.6 MB zeroed at start for each of the thread's two histograms, read for
/// one log line at shutdown.)
struct Histogram {
    counts: Vec<u64>,
    n: u64,
}

impl Histogram {
    const FINE_US: u128 = 50;
    const FINE_STEPS: usize = 2_000;
    const COARSE_US: u128 = 5_000;
    /// The index of the last step (10 s and slower).
    const LAST: usize = Self::FINE_STEPS + 1_980;

    fn new() -> Self {
        Histogram {
            counts: vec![0; Self::LAST + 1],
            n: 0,
        }
    }

    /// The step a latency of `us` microseconds falls in.
    fn index(us: u128) -> usize {
        let fine_end = Self::FINE_US * Self::FINE_STEPS as u128;
        if us < fine_end {
            (us / Self::FINE_US) as usize
        } else {
            let coarse = (us - fine_end) / Self::COARSE_US;
            Self::FINE_STEPS + coarse.min((Self::LAST - Self::FINE_STEPS) as u128) as usize
        }
    }

    /// The upper edge of step `i`, in microseconds.
    fn upper_us(i: usize) -> u128 {
        if i < Self::FINE_STEPS {
            (i as u128 + 1) * Self::FINE_US
        } else {
            Self::FINE_US * Self::FINE_STEPS as u128
                + ((i - Self::FINE_STEPS) as u128 + 1) * Self::COARSE_US
        }
    }

    fn add(&mut self, d: Duration) {
        if let Some(c) = self.counts.get_mut(Self::index(d.as_micros())) {
            *c += 1;
            self.n += 1;
        }
    }

    /// The `q` quantile in milliseconds (upper edge of its step).
    fn quantile_ms(&self, q: f64) -> f64 {
        let want = ((self.n as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= want {
                return Self::upper_us(i) as f64 / 1000.0;
            }
        }
        0.0
    }
}

/// Writes a blob (content named by its SHA-256) unless it is there; the file to sync
/// before the commit that makes its entry durable. The content goes to a temporary file
/// outside `blobs/` first (`blobs.tmp/`, emptied at start), so that a crash never leaves
/// a file in `blobs/` whose content is not its name.
fn write_blob(dir: &Path, content: &[u8]) -> Option<PathBuf> {
    let name = palisade_evidence::sha256_hex(content);
    let path = dir.join(&name);
    if path.exists() {
        return None;
    }
    let tmp = staging(dir).join(&name);
    let r = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::create_dir_all(staging(dir)))
        .and_then(|()| std::fs::write(&tmp, content))
        .and_then(|()| std::fs::rename(&tmp, &path));
    match r {
        Ok(()) => Some(path),
        Err(e) => {
            error!(target: "palisade::security", error = %e, path = %path.display(), "evidence log: writing a blob failed");
            None
        }
    }
}

/// Where blobs are written before they are renamed into place.
fn staging(blobs: &Path) -> PathBuf {
    blobs.with_extension("tmp")
}

#[allow(clippy::too_many_arguments)] // the thread's whole context, given once at its start
fn evidence_thread(
    mut log: Log,
    blobs: PathBuf,
    rx: Receiver<EvidenceMsg>,
    interval: Duration,
    inbound: Router,
    witnesses: Option<Sender<(u64, String)>>,
    dropped: Arc<AtomicU64>,
    telemetry: Arc<Telemetry>,
) {
    telemetry
        .evidence_entries
        .store(log.size(), Ordering::Relaxed);
    let mut last_checkpoint = Instant::now();
    let mut failing = false;
    let mut effects = Vec::new();
    let mut unsynced: Vec<PathBuf> = Vec::new();
    // enqueue times of the entries committed since the last checkpoint
    let mut uncovered: Vec<Instant> = Vec::new();
    let mut batch: Vec<Instant> = Vec::new();
    let (mut to_durable, mut to_checkpoint) = (Histogram::new(), Histogram::new());
    macro_rules! take {
        ($msg:expr) => {{
            match $msg {
                EvidenceMsg::Entry(item) => {
                    if let Some(b) = &item.blob {
                        unsynced.extend(write_blob(&blobs, b));
                    }
                    append(&mut log, &item.entry);
                    effects.extend(item.then);
                    batch.push(item.queued);
                }
                EvidenceMsg::Close => {}
                EvidenceMsg::Cosigned(size, lines) => match log.add_cosignatures(size, &lines) {
                    Ok(true) => debug!(size, "checkpoint cosigned"),
                    Ok(false) => {}
                    Err(e) => {
                        error!(target: "palisade::security", error = %e, "evidence log: adding cosignatures failed")
                    }
                },
            }
        }};
    }
    loop {
        let wait = interval
            .saturating_sub(last_checkpoint.elapsed())
            .max(Duration::from_millis(1));
        let mut open = true;
        match rx.recv_timeout(wait) {
            Ok(item) => {
                open &= !matches!(item, EvidenceMsg::Close);
                take!(item);
                // whatever else is already queued joins the same commit
                while let Ok(item) = rx.try_recv() {
                    open &= !matches!(item, EvidenceMsg::Close);
                    take!(item);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => open = false,
        }
        if let Some(d) = telemetry.dropped.get(Telemetry::queue("evidence")) {
            d.store(dropped.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        // the blobs first, then the entries that name them (the directory only when this
        // batch put a blob in it: a blob of an earlier batch was synced with that one)
        let mut synced = true;
        if !unsynced.is_empty() {
            for p in unsynced.drain(..) {
                synced &= std::fs::File::open(&p).and_then(|f| f.sync_all()).is_ok();
            }
            synced = synced && palisade_evidence::log::sync_dir(&blobs).is_ok();
        }
        match log.commit() {
            Ok(_) if synced => failing = false,
            Ok(_) => {
                if !failing {
                    error!(target: "palisade::security", "evidence log: syncing blobs failed");
                }
                failing = true;
            }
            Err(e) => {
                if !failing {
                    error!(target: "palisade::security", error = %e, "evidence log: commit failed; decisions are carried out without their entry being durable");
                }
                failing = true;
            }
        }
        for q in batch.drain(..) {
            to_durable.add(q.elapsed());
            uncovered.push(q);
        }
        // The entries are durable: what waited for them may happen.
        for then in effects.drain(..) {
            let _ = inbound.blocking_send(then);
        }
        if !open || last_checkpoint.elapsed() >= interval {
            last_checkpoint = Instant::now();
            match log.checkpoint() {
                Ok(Some(cp)) => {
                    debug!(size = cp.size, "evidence checkpoint published");
                    telemetry.evidence_entries.store(cp.size, Ordering::Relaxed);
                    telemetry
                        .checkpoint_ms
                        .store(crate::clock::now_ms(), Ordering::Relaxed);
                    if let Some(w) = &witnesses {
                        let _ = w.send((cp.size, log.note().to_string()));
                    }
                    for q in uncovered.drain(..) {
                        to_checkpoint.add(q.elapsed());
                    }
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
                appended = to_durable.n,
                dropped = dropped.load(Ordering::Relaxed),
                durable_p50_ms = to_durable.quantile_ms(0.5),
                durable_p99_ms = to_durable.quantile_ms(0.99),
                checkpoint_p50_ms = to_checkpoint.quantile_ms(0.5),
                checkpoint_p99_ms = to_checkpoint.quantile_ms(0.99),
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
/// `message`: the whole message the decision was taken on, as received, and whether
/// the blob store kept it (named by its SHA-256, which the entry gives).
pub(super) fn security_entry(
    e: &palisade_shield::SecurityEvent,
    unix_ms: i64,
    message: Option<(&[u8], bool)>,
) -> Vec<u8> {
    let mut fields = Vec::new();
    if let Some((m, kept)) = message {
        fields.push((
            "message_sha256",
            serde_json::json!(palisade_evidence::sha256_hex(m)),
        ));
        fields.push(("message_kept", serde_json::json!(kept)));
    }
    entry(
        e.kind.as_str(),
        unix_ms,
        [
            fields,
            vec![
                ("method", serde_json::json!(e.method)),
                ("caller", serde_json::json!(e.caller)),
                ("callee", serde_json::json!(e.callee)),
                ("source", serde_json::json!(e.source)),
                ("call_id", serde_json::json!(e.call_id)),
                ("reason", serde_json::json!(e.reason)),
                ("status", serde_json::json!(e.status)),
                ("sha256", serde_json::json!(hex::encode(e.sha256))),
            ],
        ]
        .concat(),
    )
}

#[cfg(test)]
mod tests {
    use super::Histogram;
    use std::time::Duration;

    #[test]
    fn latency_steps_are_50_us_then_5_ms_and_a_quantile_is_its_steps_upper_edge() {
        // each step ends where the next begins, and the last holds everything slower
        for i in 0..Histogram::LAST {
            let edge = Histogram::upper_us(i);
            assert_eq!(Histogram::index(edge - 1), i, "below the edge of step {i}");
            assert_eq!(Histogram::index(edge), i + 1, "at the edge of step {i}");
        }
        assert_eq!(Histogram::upper_us(1_999), 100_000);
        assert_eq!(Histogram::upper_us(2_000), 105_000);
        assert_eq!(Histogram::index(10_000_000), Histogram::LAST);
        assert_eq!(Histogram::index(u128::MAX), Histogram::LAST);
        let mut h = Histogram::new();
        assert_eq!(h.quantile_ms(0.5), 0.0, "nothing counted");
        for us in [10, 60, 120, 99_999, 100_000, 250_000, 20_000_000] {
            h.add(Duration::from_micros(us));
        }
        assert_eq!(h.n, 7);
        assert_eq!(h.quantile_ms(0.0), 0.05); // the first: 10 µs
        assert_eq!(h.quantile_ms(0.5), 100.0); // the fourth: 99,999 µs
        assert_eq!(h.quantile_ms(0.7), 105.0); // the fifth: 100 ms
        assert_eq!(h.quantile_ms(0.8), 255.0); // the sixth: 250 ms
        assert_eq!(h.quantile_ms(0.99), 10_005.0); // 20 s: the last step
    }
}
