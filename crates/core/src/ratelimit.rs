//! Answers to unauthenticated senders over UDP: a per-source budget and no amplification.
//!
//! A UDP source address is not proven (it can be spoofed), so every answer Palisade
//! makes up on its own to an unauthenticated datagram could be aimed at a victim. Two
//! rules keep that from being useful to anyone:
//!
//! - an answer is never larger than the datagram it answers (optional lines are removed
//!   first: `Server`, `Warning`, challenges after the first; if it is still larger it is
//!   not sent, and counted);
//! - error answers (status 300 and above, challenges included) to one source IP address
//!   are limited by a token bucket (`answer_rate` per second, bursts of `answer_burst`).
//!
//! A source address that has recently answered a digest challenge correctly has proven
//! that it receives what is sent to it (it echoed a nonce sent there): its answers are
//! not counted against a budget for `PROVEN_FOR` after that. This is what lets a busy
//! PBX, an office NAT or a load generator on one address be challenged thousands of times
//! a second, while a spoofed address (which can never answer a challenge) is held to
//! the budget. The size rule above applies to everyone.
//!
//! The tables are bounded (`MAX_SOURCES`); idle sources are swept, and when the bucket
//! table is full of active sources (a flood from spoofed addresses), the newcomers share
//! one overflow bucket instead of growing the table.
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Most sources tracked at once (in each table).
pub(crate) const MAX_SOURCES: usize = 65_536;

/// How long a source that answered a challenge correctly is exempt from the budget.
pub(crate) const PROVEN_FOR: Duration = Duration::from_secs(600);

struct Bucket {
    tokens: f64,
    at: Instant,
    /// When running dry was last reported (see [`AnswerBudget::report_due`]).
    reported: Option<Instant>,
}

pub(crate) struct AnswerBudget {
    rate: f64,
    burst: f64,
    buckets: crate::Map<IpAddr, Bucket>,
    overflow: Option<Bucket>,
    /// Sources that authenticated, and when they last did.
    proven: crate::Map<IpAddr, Instant>,
    /// Sweeps for a new source while a table was full (see [`crate::FullSweep`]).
    full: crate::FullSweep,
}

impl AnswerBudget {
    pub(crate) fn new(rate: u32, burst: u32) -> Self {
        AnswerBudget {
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: crate::Map::default(),
            overflow: None,
            proven: crate::Map::default(),
            full: crate::FullSweep::default(),
        }
    }

    /// Sweeps for a new source when a table is full, at most once per
    /// [`crate::FULL_SWEEP_EVERY`]: a sweep reads both tables whole, and a flood from ever new
    /// (spoofed) addresses would otherwise pay one per datagram once 65,536 are tracked.
    fn sweep_when_full(&mut self, now: Instant) {
        if self.full.due(now) {
            self.sweep(now);
        }
    }

    fn take(b: &mut Bucket, now: Instant, rate: f64, burst: f64) -> bool {
        let dt = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + dt * rate).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// `ip` answered a digest challenge correctly (over UDP, so at that address).
    pub(crate) fn proven(&mut self, now: Instant, ip: IpAddr) {
        if self.proven.len() >= MAX_SOURCES && !self.proven.contains_key(&ip) {
            self.sweep_when_full(now);
            if self.proven.len() >= MAX_SOURCES {
                return;
            }
        }
        self.proven.insert(ip, now);
    }

    /// `ip` answered a challenge correctly within `PROVEN_FOR`.
    pub(crate) fn is_proven(&self, now: Instant, ip: IpAddr) -> bool {
        self.proven
            .get(&ip)
            .is_some_and(|at| now.saturating_duration_since(*at) < PROVEN_FOR)
    }

    /// Spends one answer of `ip`'s budget; `false` when it is exhausted.
    pub(crate) fn allow(&mut self, now: Instant, ip: IpAddr) -> bool {
        if self
            .proven
            .get(&ip)
            .is_some_and(|at| now.saturating_duration_since(*at) < PROVEN_FOR)
        {
            return true;
        }
        let (rate, burst) = (self.rate, self.burst);
        if let Some(b) = self.buckets.get_mut(&ip) {
            return Self::take(b, now, rate, burst);
        }
        if self.buckets.len() >= MAX_SOURCES {
            self.sweep_when_full(now);
        }
        if self.buckets.len() >= MAX_SOURCES {
            let b = self.overflow.get_or_insert(Bucket {
                tokens: burst,
                at: now,
                reported: None,
            });
            return Self::take(b, now, rate, burst);
        }
        let b = self.buckets.entry(ip).or_insert(Bucket {
            tokens: burst,
            at: now,
            reported: None,
        });
        Self::take(b, now, rate, burst)
    }

    /// `ip`'s budget ran dry: is it time to report it again (at most every 10 s per
    /// source, so a flood is one observation every 10 s, not one per datagram)?
    pub(crate) fn report_due(&mut self, now: Instant, ip: IpAddr) -> bool {
        let Some(b) = self.buckets.get_mut(&ip) else {
            return false;
        };
        if b.reported
            .is_some_and(|r| now.saturating_duration_since(r) < Duration::from_secs(10))
        {
            return false;
        }
        b.reported = Some(now);
        true
    }

    /// Forgets sources whose bucket has refilled: they are indistinguishable from new.
    pub(crate) fn sweep(&mut self, now: Instant) {
        let full = Duration::from_secs_f64(self.burst / self.rate);
        self.buckets
            .retain(|_, b| now.saturating_duration_since(b.at) < full);
        self.proven
            .retain(|_, at| now.saturating_duration_since(*at) < PROVEN_FOR);
    }

    pub(crate) fn tracked(&self) -> usize {
        self.buckets.len() + self.proven.len()
    }
}

/// Removes optional lines from a locally made, body-less response until it is at most
/// `max` bytes: `Server` and `Warning` first, then every challenge after the first.
/// Returns the response unchanged when it already fits.
pub(crate) fn shrink(bytes: Vec<u8>, max: usize) -> Vec<u8> {
    if bytes.len() <= max {
        return bytes;
    }
    let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    let starts = |l: &[u8], name: &[u8]| {
        l.len() > name.len()
            && l.get(..name.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(name))
            && l.get(name.len()) == Some(&b':')
    };
    let mut seen_challenge = false;
    let mut out = Vec::with_capacity(bytes.len());
    let last = lines.len().saturating_sub(1);
    for (i, l) in lines.iter().enumerate() {
        if starts(l, b"Server") || starts(l, b"Warning") {
            continue;
        }
        if starts(l, b"WWW-Authenticate") || starts(l, b"Proxy-Authenticate") {
            if seen_challenge {
                continue;
            }
            seen_challenge = true;
        }
        out.extend_from_slice(l);
        if i != last {
            out.push(b'\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_refills_at_the_rate_and_caps_at_the_burst() {
        let t0 = Instant::now();
        let mut b = AnswerBudget::new(10, 3);
        let ip: IpAddr = [192, 0, 2, 1].into();
        assert!(b.allow(t0, ip) && b.allow(t0, ip) && b.allow(t0, ip));
        assert!(!b.allow(t0, ip));
        assert!(b.allow(t0 + Duration::from_millis(100), ip));
        assert!(!b.allow(t0 + Duration::from_millis(100), ip));
        // another source has its own budget
        assert!(b.allow(t0, [192, 0, 2, 2].into()));
        b.sweep(t0 + Duration::from_secs(10));
        assert_eq!(b.tracked(), 0);
    }

    /// A flood from ever new addresses: once the table is full they share the overflow
    /// bucket, and the table is read whole at most once a second, not per datagram.
    #[test]
    fn a_full_table_is_swept_at_most_once_a_second() {
        let t0 = Instant::now();
        let mut b = AnswerBudget::new(50, 200);
        let addr = |i: u32| IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        for i in 0..MAX_SOURCES as u32 {
            assert!(b.allow(t0, addr(i)));
        }
        assert_eq!(b.tracked(), MAX_SOURCES);
        // 100,000 datagrams from new addresses within a second: one sweep (every bucket
        // is still spending), then the overflow bucket's burst, then nothing
        let mut allowed = 0;
        for i in 0..100_000u32 {
            let at = t0 + Duration::from_micros(u64::from(i) * 9);
            allowed += usize::from(b.allow(at, addr(MAX_SOURCES as u32 + i)));
        }
        assert_eq!(b.full.count(), 1);
        assert!((200..=300).contains(&allowed), "{allowed}");
        // once the buckets have refilled, the next new source's look empties the table
        let later = t0 + Duration::from_secs(5);
        assert!(b.allow(later, addr(1_000_000)));
        assert_eq!(b.full.count(), 2);
        assert_eq!(b.tracked(), 1);
    }

    #[test]
    fn a_proven_source_is_not_held_to_the_budget_for_a_while() {
        let t0 = Instant::now();
        let mut b = AnswerBudget::new(1, 1);
        let ip: IpAddr = [192, 0, 2, 1].into();
        assert!(b.allow(t0, ip));
        assert!(!b.allow(t0, ip));
        b.proven(t0, ip);
        assert!((0..1000).all(|_| b.allow(t0, ip)));
        let later = t0 + PROVEN_FOR;
        assert!(b.allow(later, ip)); // the bucket refilled meanwhile
        assert!(!b.allow(later, ip));
    }

    #[test]
    fn shrink_drops_optional_lines_first() {
        let r = b"SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nWWW-Authenticate: Digest a=1\r\nWWW-Authenticate: Digest a=2\r\nServer: Palisade\r\nContent-Length: 0\r\n\r\n".to_vec();
        let s = shrink(r.clone(), 10_000);
        assert_eq!(s, r);
        let s = shrink(r.clone(), r.len() - 1);
        let text = String::from_utf8(s).unwrap();
        assert!(!text.contains("Server"));
        assert_eq!(text.matches("WWW-Authenticate").count(), 1);
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
    }
}
