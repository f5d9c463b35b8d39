//! Budgets for what the shell writes: security events per source address (a flood is
//! counted, not written line by line) and warning lines per minute.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tracing::warn;

/// Security events recorded per second from one source address, and the burst above
/// that: a flood of hostile offers from one place must not fill the disk one line per
/// datagram. What is over the budget is counted and recorded as one `events-suppressed`
/// event per source and minute.
pub(super) const EVENT_RATE: f64 = 50.0;
pub(super) const EVENT_BURST: f64 = 500.0;
/// Most sources with an event budget at once; beyond it, newcomers share one budget.
pub(super) const EVENT_SOURCES: usize = 65_536;

pub(super) struct EventBudget {
    pub(super) sources: HashMap<String, (f64, Instant, u64)>,
    /// When the suppressed counts were last recorded.
    pub(super) reported: Instant,
    /// Sweeps for a new source while the table was full (a flood from ever new, spoofed
    /// addresses would otherwise pay one per event once `EVENT_SOURCES` are tracked).
    pub(super) full: palisade_core::FullSweep,
}

impl EventBudget {
    /// `source` is `transport:address:port`; the budget is per address.
    pub(super) fn allow(&mut self, source: &str, now: Instant) -> bool {
        let addr = source
            .split_once(':')
            .map(|(_, rest)| rest.rsplit_once(':').map_or(rest, |(a, _)| a))
            .unwrap_or(source);
        if !self.sources.contains_key(addr)
            && self.sources.len() >= EVENT_SOURCES
            && self.full.due(now)
        {
            self.sources.retain(|_, (_, at, n)| {
                *n > 0 || now.duration_since(*at).as_secs_f64() < EVENT_BURST / EVENT_RATE
            });
        }
        let key = if self.sources.contains_key(addr) || self.sources.len() < EVENT_SOURCES {
            addr
        } else {
            "*"
        };
        if !self.sources.contains_key(key) {
            self.sources.insert(key.to_string(), (EVENT_BURST, now, 0));
        }
        let Some(e) = self.sources.get_mut(key) else {
            return true;
        };
        e.0 = (e.0 + now.duration_since(e.1).as_secs_f64() * EVENT_RATE).min(EVENT_BURST);
        e.1 = now;
        if e.0 >= 1.0 {
            e.0 -= 1.0;
            true
        } else {
            e.2 += 1;
            false
        }
    }

    /// The sources that went over their budget since the last call, with the count.
    pub(super) fn take_suppressed(&mut self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for (src, (_, _, n)) in self.sources.iter_mut() {
            if *n > 0 {
                out.push((src.clone(), std::mem::take(n)));
            }
        }
        out
    }
}

/// Warning lines per window that hostile traffic may cause.
pub(super) const WARN_LINES: u64 = 50;
pub(super) const WARN_WINDOW: Duration = Duration::from_secs(60);

/// At most `WARN_LINES` lines per `WARN_WINDOW`; counts what it suppresses.
pub(super) struct LineBudget {
    pub(super) window: Instant,
    pub(super) used: u64,
    pub(super) suppressed: u64,
}

impl LineBudget {
    pub(super) fn new() -> Self {
        LineBudget {
            window: Instant::now(),
            used: 0,
            suppressed: 0,
        }
    }

    pub(super) fn allow(&mut self) -> bool {
        if self.window.elapsed() >= WARN_WINDOW {
            if self.suppressed > 0 {
                warn!(
                    suppressed = self.suppressed,
                    window_s = WARN_WINDOW.as_secs(),
                    "warning lines suppressed (see the totals lines and security-events.jsonl)"
                );
            }
            self.window = Instant::now();
            self.used = 0;
            self.suppressed = 0;
        }
        if self.used < WARN_LINES {
            self.used += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn event_budget_is_per_address_and_counts_what_it_suppresses() {
        let t = std::time::Instant::now();
        let mut b = super::EventBudget {
            sources: std::collections::HashMap::new(),
            reported: t,
            full: palisade_core::FullSweep::default(),
        };
        let burst = super::EVENT_BURST as u64;
        let allowed = (0..burst + 100)
            .filter(|i| b.allow(&format!("udp:192.0.2.1:{}", 5000 + i), t))
            .count() as u64;
        assert_eq!(allowed, burst, "one budget for every port of an address");
        assert!(
            b.allow("udp:192.0.2.2:5060", t),
            "another address has its own"
        );
        assert!(b.allow("tcp:[2001:db8::1]:5060", t));
        assert_eq!(b.take_suppressed(), vec![("192.0.2.1".to_string(), 100)]);
        assert!(b.take_suppressed().is_empty());
        // the budget refills with time
        assert!(b.allow("udp:192.0.2.1:5000", t + std::time::Duration::from_secs(1)));
    }

    /// Once the table is full, new addresses share one budget, and the table is swept
    /// for room at most once a second (not for every event of a new address).
    #[test]
    fn a_full_event_table_is_swept_at_most_once_a_second() {
        let t = std::time::Instant::now();
        let mut b = super::EventBudget {
            sources: std::collections::HashMap::new(),
            reported: t,
            full: palisade_core::FullSweep::default(),
        };
        let addr = |i: u32| format!("udp:{}:5060", std::net::Ipv4Addr::from(0x0a00_0000 + i));
        for i in 0..super::EVENT_SOURCES as u32 {
            assert!(b.allow(&addr(i), t));
        }
        assert_eq!(b.sources.len(), super::EVENT_SOURCES);
        assert!(b.full.last().is_none());
        let at = t + std::time::Duration::from_millis(100);
        for i in 0..1_000u32 {
            b.allow(&addr(1_000_000 + i), at);
        }
        assert_eq!(
            b.full.last(),
            Some(at),
            "one sweep, at the first new address"
        );
        // the overflow budget ("*") is the one entry added
        assert_eq!(b.sources.len(), super::EVENT_SOURCES + 1);
        // 20 s later every budget has refilled: the next new address makes room
        let later = t + std::time::Duration::from_secs(20);
        assert!(b.allow(&addr(2_000_000), later));
        assert_eq!(b.full.last(), Some(later));
        assert!(b.sources.len() <= 3, "{}", b.sources.len());
    }
}
