//! How often a full table may be swept for room when something new arrives.
//!
//! A bounded table (the digest algorithm memory, the answer budget, the shell's
//! security-event budget) that is full takes no newcomer until an entry is forgotten. A
//! sweep for room reads the whole table, so one per arrival would let a flood of ever new
//! senders or made-up accounts make every arrival cost a pass over 65,536 entries; the
//! tables' periodic sweeps run besides this.
use std::time::{Duration, Instant};

/// While a table is full, a newcomer sweeps it for room at most this often.
pub const FULL_SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The sweeps a full table made for newcomers: at most one per [`FULL_SWEEP_EVERY`].
#[derive(Debug, Default, Clone)]
pub struct FullSweep {
    last: Option<Instant>,
    count: u64,
}

impl FullSweep {
    /// Whether a full table may be swept for a newcomer at `now`; when it may, this
    /// counts as its sweep.
    pub fn due(&mut self, now: Instant) -> bool {
        let due = self
            .last
            .is_none_or(|t| now.saturating_duration_since(t) >= FULL_SWEEP_EVERY);
        if due {
            self.last = Some(now);
            self.count += 1;
        }
        due
    }

    /// When the last sweep was.
    pub fn last(&self) -> Option<Instant> {
        self.last
    }

    /// Sweeps made so far.
    pub fn count(&self) -> u64 {
        self.count
    }
}
