//! Gathered or spread: where the kernel puts the datagrams that arrive on the workers'
//! shared UDP address.
//!
//! Spread (the kernel's `SO_REUSEPORT` hash of the sender's address) keeps every core
//! busy under load, but at a light load it costs more CPU per call than one worker: each
//! worker sleeps and wakes for nearly every datagram (a busy one finds several queued
//! and takes them in one receive), and a call whose datagrams reach both workers moves
//! its shard's memory between the cores. Measured with the SIPp harness at 2,000
//! calls/s: two spread workers used 28 % more CPU per call than one.
//!
//! So while the load is light the steering program (see `sys::attach_steering`) sends
//! every datagram from the network to worker 0's socket ("gathered"), and worker 0 runs
//! the calls of the other shards itself while their workers sleep. Worker 0 measures the
//! share of time each worker is awake over windows of [`WINDOW`]: gathered, it spreads as
//! soon as its own share passes [`SPREAD_ABOVE`]; spread, it gathers again once the
//! workers' shares added up stay below [`GATHER_BELOW`] for [`QUIET_WINDOWS`] windows in
//! a row. The gap between the two keeps a load near one of them from switching back and
//! forth. A switch replaces the program of the socket group (one `setsockopt`); datagrams
//! already queued on a socket stay there and are read by its worker.

use std::time::{Duration, Instant};

/// How long worker 0 measures before it decides.
pub(super) const WINDOW: Duration = Duration::from_millis(200);
/// Gathered: worker 0 awake more than this share of a window spreads the datagrams.
pub(super) const SPREAD_ABOVE: f64 = 0.75;
/// Spread: the workers' awake shares added up below this (a load one worker carries at
/// well under [`SPREAD_ABOVE`], spread costing more per call) gathers them again...
pub(super) const GATHER_BELOW: f64 = 0.5;
/// ...once it held for this many windows in a row.
pub(super) const QUIET_WINDOWS: u32 = 5;

// Spread costs more CPU per call than gathered: the load at which spread adds up to
// GATHER_BELOW must be one that gathered carries below SPREAD_ABOVE.
const _: () = assert!(GATHER_BELOW < SPREAD_ABOVE);

/// Worker 0's view of the load, one window at a time.
pub(super) struct Balance {
    gathered: bool,
    since: Instant,
    /// Each worker's total time asleep (µs) at the start of the window.
    asleep: Vec<u64>,
    quiet: u32,
}

impl Balance {
    /// Starts gathered (a server starts idle), before any of the `workers` slept.
    pub(super) fn new(now: Instant, workers: usize) -> Self {
        Balance {
            gathered: true,
            since: now,
            asleep: vec![0; workers],
            quiet: 0,
        }
    }

    #[cfg(test)]
    fn gathered(&self) -> bool {
        self.gathered
    }

    /// Whether a window has passed (then [`Balance::check`] decides).
    pub(super) fn due(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.since) >= WINDOW
    }

    /// Called by worker 0 on each pass with every worker's total time asleep so far
    /// (µs, worker order); `Some(gathered)` when the datagrams must now be gathered
    /// (`true`) or spread (`false`).
    pub(super) fn check(&mut self, now: Instant, asleep: &[u64]) -> Option<bool> {
        let wall = now.saturating_duration_since(self.since);
        if wall < WINDOW {
            return None;
        }
        let wall_us = wall.as_micros().max(1) as f64;
        let (mut first, mut total) = (0.0, 0.0);
        for (i, (&now_asleep, then)) in asleep.iter().zip(self.asleep.iter_mut()).enumerate() {
            // (a sleep is counted when it ends, so a long one that began in the last
            // window can exceed this one: the share is clamped)
            let slept = now_asleep.saturating_sub(*then) as f64;
            let share = (1.0 - slept / wall_us).clamp(0.0, 1.0);
            if i == 0 {
                first = share;
            }
            total += share;
            *then = now_asleep;
        }
        self.since = now;
        let next = decide(self.gathered, first, total, &mut self.quiet);
        (next != self.gathered).then(|| {
            self.gathered = next;
            next
        })
    }
}

/// The decision for one window: worker 0's awake share and the sum of all the workers'
/// shares; `quiet` counts the light windows in a row while spread.
fn decide(gathered: bool, first: f64, total: f64, quiet: &mut u32) -> bool {
    if gathered {
        *quiet = 0;
        return first <= SPREAD_ABOVE;
    }
    if total < GATHER_BELOW {
        *quiet += 1;
    } else {
        *quiet = 0;
    }
    if *quiet >= QUIET_WINDOWS {
        *quiet = 0;
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asleep totals after a window in which each worker was awake `shares[i]` of it.
    fn step(b: &mut Balance, t: &mut Instant, totals: &mut [u64], shares: &[f64]) -> Option<bool> {
        *t += WINDOW;
        let w = WINDOW.as_micros() as f64;
        for (tot, s) in totals.iter_mut().zip(shares) {
            *tot += ((1.0 - s) * w) as u64;
        }
        b.check(*t, totals)
    }

    #[test]
    fn a_busy_gatherer_spreads_at_once_and_a_light_spread_gathers_after_quiet_windows() {
        let mut t = Instant::now();
        let mut totals = [0u64, 0];
        let mut b = Balance::new(t, totals.len());
        assert!(b.gathered());
        // light load: stays gathered
        assert_eq!(step(&mut b, &mut t, &mut totals, &[0.7, 0.0]), None);
        // nothing decided before a whole window
        assert_eq!(b.check(t + WINDOW / 2, &totals), None);
        // worker 0 past the threshold: spread in that window
        assert_eq!(step(&mut b, &mut t, &mut totals, &[0.8, 0.0]), Some(false));
        assert!(!b.gathered());
        // spread at a load between the thresholds: stays spread
        for _ in 0..20 {
            assert_eq!(step(&mut b, &mut t, &mut totals, &[0.3, 0.25]), None);
        }
        // light, but one busy window in between restarts the count
        for _ in 0..QUIET_WINDOWS - 1 {
            assert_eq!(step(&mut b, &mut t, &mut totals, &[0.1, 0.1]), None);
        }
        assert_eq!(step(&mut b, &mut t, &mut totals, &[0.3, 0.3]), None);
        for _ in 0..QUIET_WINDOWS - 1 {
            assert_eq!(step(&mut b, &mut t, &mut totals, &[0.1, 0.1]), None);
        }
        assert_eq!(
            step(&mut b, &mut t, &mut totals, &[0.1, 0.1]),
            Some(true),
            "{QUIET_WINDOWS} light windows in a row gather"
        );
        assert!(b.gathered());
    }

    #[test]
    fn a_sleep_longer_than_the_window_counts_as_idle_not_as_a_negative_load() {
        let mut t = Instant::now();
        let mut b = Balance::new(t, 2);
        t += WINDOW;
        // worker 0 reports more sleep than the window held (a sleep that began before it)
        let long = 3 * WINDOW.as_micros() as u64;
        assert_eq!(b.check(t, &[long, long]), None);
        assert!(b.gathered());
        // then a window without any sleep: worker 0 was awake throughout
        t += WINDOW;
        assert_eq!(b.check(t, &[long, long]), Some(false));
    }

    #[test]
    fn the_thresholds_leave_a_gap() {
        let mut q = 0;
        assert!(!decide(true, SPREAD_ABOVE + 0.01, 0.0, &mut q));
        assert!(decide(true, SPREAD_ABOVE, 0.0, &mut q));
        assert!(!decide(false, 0.0, GATHER_BELOW, &mut q));
        assert_eq!(q, 0);
    }
}
