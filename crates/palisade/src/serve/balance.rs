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
//! forth.
//!
//! Awake is not busy: a worker that the machine's other programs keep off the CPU (SIPp
//! beside it on a two-core machine) is awake but not running, and spreading then only
//! adds hand-overs. So an awake share past a threshold is checked against the CPU time
//! the workers actually used (read from the kernel, one system call per worker, only in
//! windows where the awake shares call for it: never at a light load): the CPU share
//! decides, from the window after the one that first called for it.
//!
//! A switch replaces the program of the socket group (one `setsockopt`); datagrams
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
    /// When the window that began at `since` ends (compared on each pass).
    due_at: Option<Instant>,
    /// Each worker's total time asleep (µs) at the start of the window.
    asleep: Vec<u64>,
    /// Each worker's CPU time (µs) at the start of the window, when it was read then.
    cpu: Option<Vec<u64>>,
    quiet: u32,
}

impl Balance {
    /// Starts gathered (a server starts idle), before any of the `workers` slept.
    pub(super) fn new(now: Instant, workers: usize) -> Self {
        Balance {
            gathered: true,
            since: now,
            due_at: now.checked_add(WINDOW),
            asleep: vec![0; workers],
            cpu: None,
            quiet: 0,
        }
    }

    #[cfg(test)]
    fn gathered(&self) -> bool {
        self.gathered
    }

    /// Whether a window has passed (then [`Balance::check`] decides).
    pub(super) fn due(&self, now: Instant) -> bool {
        // (a comparison of instants on each pass, not a difference taken)
        self.due_at.is_none_or(|end| now >= end)
    }

    /// Called by worker 0 on each pass with every worker's total time asleep so far
    /// (µs, worker order) and a way to read their CPU times so far (µs; called only when
    /// the awake shares call for it); `Some(gathered)` when the datagrams must now be
    /// gathered (`true`) or spread (`false`).
    pub(super) fn check(
        &mut self,
        now: Instant,
        asleep: &[u64],
        cpu: impl FnOnce() -> Vec<u64>,
    ) -> Option<bool> {
        let wall = now.saturating_duration_since(self.since);
        if wall < WINDOW {
            return None;
        }
        let wall_us = wall.as_micros().max(1) as f64;
        // (a sleep is counted when it ends, so a long one that began in the last window
        // can exceed this one: the share is clamped)
        let (first, total) = first_and_total(
            asleep
                .iter()
                .zip(&self.asleep)
                .map(|(a, then)| 1.0 - a.saturating_sub(*then) as f64 / wall_us),
        );
        for (then, &a) in self.asleep.iter_mut().zip(asleep) {
            *then = a;
        }
        self.since = now;
        self.due_at = now.checked_add(WINDOW);
        // Busy at most as long as awake: below the thresholds the awake shares decide
        // alone; past them, the CPU shares of this window do (read at its start too),
        // and without those this window decides nothing.
        let past = if self.gathered {
            first > SPREAD_ABOVE
        } else {
            total >= GATHER_BELOW
        };
        let (first, total) = if past {
            let used = cpu();
            let shares = self.cpu.as_ref().map(|then| {
                first_and_total(
                    used.iter()
                        .zip(then)
                        .map(|(u, t)| u.saturating_sub(*t) as f64 / wall_us),
                )
            });
            self.cpu = Some(used);
            match shares {
                Some(s) => s,
                None => {
                    // (no decision: the load is checked again next window)
                    self.quiet = 0;
                    return None;
                }
            }
        } else {
            self.cpu = None;
            (first, total)
        };
        let next = decide(self.gathered, first, total, &mut self.quiet);
        (next != self.gathered).then(|| {
            self.gathered = next;
            // (the next windows start from the awake shares again)
            self.cpu = None;
            next
        })
    }
}

/// Worker 0's share and the sum of all the workers' shares (each clamped to 0..=1),
/// from the shares in worker order.
fn first_and_total(shares: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut first, mut total) = (0.0, 0.0);
    for (i, share) in shares.enumerate() {
        let share = share.clamp(0.0, 1.0);
        if i == 0 {
            first = share;
        }
        total += share;
    }
    (first, total)
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

    /// One window in which each worker was awake `awake[i]` of it and busy on a CPU
    /// `busy[i]` of it; the totals run on.
    struct Run {
        b: Balance,
        t: Instant,
        asleep: Vec<u64>,
        cpu: Vec<u64>,
        cpu_reads: u32,
    }

    impl Run {
        fn new(workers: usize) -> Run {
            let t = Instant::now();
            Run {
                b: Balance::new(t, workers),
                t,
                asleep: vec![0; workers],
                cpu: vec![0; workers],
                cpu_reads: 0,
            }
        }

        fn step(&mut self, awake: &[f64], busy: &[f64]) -> Option<bool> {
            self.t += WINDOW;
            let w = WINDOW.as_micros() as f64;
            for (tot, s) in self.asleep.iter_mut().zip(awake) {
                *tot += ((1.0 - s) * w) as u64;
            }
            for (tot, s) in self.cpu.iter_mut().zip(busy) {
                *tot += (s * w) as u64;
            }
            let cpu = self.cpu.clone();
            let reads = &mut self.cpu_reads;
            self.b.check(self.t, &self.asleep, || {
                *reads += 1;
                cpu
            })
        }

        /// A window where busy is awake (a machine with cores to spare).
        fn plain(&mut self, shares: &[f64]) -> Option<bool> {
            self.step(shares, shares)
        }
    }

    #[test]
    fn a_busy_gatherer_spreads_and_a_light_spread_gathers_after_quiet_windows() {
        let mut r = Run::new(2);
        assert!(r.b.gathered());
        // light load: stays gathered, and no CPU time is read
        assert_eq!(r.plain(&[0.7, 0.0]), None);
        assert_eq!(r.cpu_reads, 0);
        // nothing decided before a whole window
        let half = r.t + WINDOW / 2;
        assert_eq!(r.b.check(half, &r.asleep.clone(), Vec::new), None);
        // worker 0 past the threshold: its CPU time is read, and the next window busy
        // past it too spreads
        assert_eq!(r.plain(&[0.8, 0.0]), None);
        assert_eq!(r.cpu_reads, 1);
        assert_eq!(r.plain(&[0.8, 0.0]), Some(false));
        assert!(!r.b.gathered());
        // spread at a load between the thresholds: stays spread
        for _ in 0..20 {
            assert_eq!(r.plain(&[0.3, 0.25]), None);
        }
        // light, but one busy window in between restarts the count
        for _ in 0..QUIET_WINDOWS - 1 {
            assert_eq!(r.plain(&[0.1, 0.1]), None);
        }
        assert_eq!(r.plain(&[0.3, 0.3]), None);
        for _ in 0..QUIET_WINDOWS - 1 {
            assert_eq!(r.plain(&[0.1, 0.1]), None);
        }
        assert_eq!(
            r.plain(&[0.1, 0.1]),
            Some(true),
            "{QUIET_WINDOWS} light windows in a row gather"
        );
        assert!(r.b.gathered());
    }

    #[test]
    fn awake_but_kept_off_the_cpu_is_not_load() {
        // SIPp beside the server on two cores: worker 0 is awake 90 % of each window but
        // runs 50 %: spreading would only add hand-overs
        let mut r = Run::new(2);
        for _ in 0..20 {
            assert_eq!(r.step(&[0.9, 0.0], &[0.5, 0.0]), None);
        }
        assert!(r.b.gathered());
        assert_eq!(r.cpu_reads, 20, "read in every window that called for it");
        // it really is busy: spread
        assert_eq!(r.step(&[0.95, 0.0], &[0.8, 0.0]), Some(false));
        // spread, awake shares adding up past the gathering threshold while the CPU
        // shares stay under it: light, gathers after the quiet windows (the first
        // window after the switch only reads the CPU times)
        assert_eq!(r.step(&[0.4, 0.4], &[0.2, 0.2]), None);
        for _ in 0..QUIET_WINDOWS - 1 {
            assert_eq!(r.step(&[0.4, 0.4], &[0.2, 0.2]), None);
        }
        assert_eq!(r.step(&[0.4, 0.4], &[0.2, 0.2]), Some(true));
    }

    #[test]
    fn a_sleep_longer_than_the_window_counts_as_idle_not_as_a_negative_load() {
        let mut t = Instant::now();
        let mut b = Balance::new(t, 2);
        t += WINDOW;
        // worker 0 reports more sleep than the window held (a sleep that began before it)
        let long = 3 * WINDOW.as_micros() as u64;
        assert_eq!(b.check(t, &[long, long], || vec![0, 0]), None);
        assert!(b.gathered());
        // then windows without any sleep, busy throughout: spread (once the CPU time is
        // known from the start of a window)
        let w = WINDOW.as_micros() as u64;
        t += WINDOW;
        assert_eq!(b.check(t, &[long, long], || vec![w, 0]), None);
        t += WINDOW;
        assert_eq!(b.check(t, &[long, long], || vec![2 * w, 0]), Some(false));
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
