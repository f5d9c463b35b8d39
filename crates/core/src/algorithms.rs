//! Which digest algorithms to offer to which device (RFC 8760, RFC 7616).
//!
//! A server may offer several challenges, most preferred first, and a client should use
//! the first one it supports. Stock clients do not all manage: SIPp 3.6 takes the first
//! challenge whatever its algorithm and gives up when it does not know it; baresip 1.0
//! (libre 1.1) gives up as soon as any challenge names an algorithm it does not know,
//! even when MD5 comes first. Offering SHA-256 locks them out, while offering MD5 first
//! would make every compliant client use MD5. Palisade keeps the configured order
//! (`auth.algorithms`, SHA-256 first) and learns per device which ones need MD5 alone:
//!
//! - a device is an account (the user the request claims), its User-Agent and its source
//!   IP address;
//! - when a device that was challenged with SHA-256 first comes back with a new request
//!   of the same method (not a retransmission) and no credentials, it walked away from
//!   the challenge: from then on it is offered MD5 alone (one warning line per device);
//! - a device that authenticates with SHA-256 gets the configured order again;
//! - User-Agents listed in `auth.md5_only_user_agents` (substring match, ASCII case
//!   ignored) are offered MD5 alone from the start;
//! - a device that walks away from an MD5-only challenge too gets one warning line
//!   (it does not answer challenges at all: wrong realm, no password);
//! - the memory is bounded (`MAX_DEVICES`) and a device not seen for `FORGET_AFTER` is
//!   forgotten, so a device that was upgraded is tried with SHA-256 first again.
//!
//! The trade-off: the first attempt of a device that cannot do SHA-256 fails (unless its
//! User-Agent is listed), and a device that merely gave up after a challenge for another
//! reason is moved to MD5; an attacker can only ever move its own account's device.
use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::auth::Algorithm;

/// Most devices remembered at once.
pub(crate) const MAX_DEVICES: usize = 65_536;
/// A device not seen for this long is forgotten.
pub(crate) const FORGET_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

/// What one device is known to do.
struct Device {
    md5_only: bool,
    /// The last challenge: its transaction, method, and whether SHA-256 led it.
    pending: Option<(u64, u8, bool)>,
    seen: Instant,
    /// A warning about this device was logged already.
    warned: bool,
}

/// What the caller should log after [`Memory::no_credentials`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Note {
    /// The device walked away from a SHA-256-first challenge: MD5 only from now on.
    FellBackToMd5,
    /// The device walked away from an MD5-only challenge too.
    NeverAnswers,
}

/// Notes (warning lines) per minute at most: a flood from made-up accounts must not
/// become a flood of warnings. The state changes are made all the same.
pub(crate) const NOTES_PER_MINUTE: u32 = 20;

#[derive(Default)]
pub(crate) struct Memory {
    devices: crate::Map<u64, Device>,
    /// The current minute's start and the notes given in it.
    notes: Option<(Instant, u32)>,
    /// Sweeps for a new device while the table was full (see [`crate::FullSweep`]: each
    /// reads the whole table, and made-up account names fill it).
    full: crate::FullSweep,
}

/// The identity of a device.
pub(crate) fn device(account: &str, user_agent: &str, ip: IpAddr) -> u64 {
    // Keyed per process (from the OS, see `crate::Map`): the account and User-Agent are
    // the sender's choice, and the device ids key a table.
    static KEY: OnceLock<ahash::RandomState> = OnceLock::new();
    KEY.get_or_init(ahash::RandomState::new)
        .hash_one((account, user_agent, ip))
}

/// Whether `needle` occurs in `hay`, ASCII case ignored (what lower-casing both and
/// `str::contains` answer, without the two copies).
fn contains_ignore_case(hay: &str, needle: &str) -> bool {
    let n = needle.as_bytes();
    n.is_empty()
        || hay
            .as_bytes()
            .windows(n.len())
            .any(|w| w.eq_ignore_ascii_case(n))
}

fn method_code(m: &str) -> u8 {
    m.bytes()
        .fold(0u8, |a, b| a.wrapping_mul(31).wrapping_add(b))
}

impl Memory {
    fn entry(&mut self, now: Instant, key: u64) -> Option<&mut Device> {
        // (the length first: below the bound no lookup is needed before the entry's)
        if self.devices.len() >= MAX_DEVICES && !self.devices.contains_key(&key) {
            if self.full.due(now) {
                self.sweep(now);
            }
            if self.devices.len() >= MAX_DEVICES {
                return None;
            }
        }
        let d = self.devices.entry(key).or_insert(Device {
            md5_only: false,
            pending: None,
            seen: now,
            warned: false,
        });
        d.seen = now;
        Some(d)
    }

    /// The challenges to offer: `configured`, or MD5 alone for devices that need it
    /// (when MD5 is configured at all).
    pub(crate) fn order(
        &self,
        key: u64,
        user_agent: &str,
        listed: &[String],
        configured: &[Algorithm],
    ) -> Vec<Algorithm> {
        let md5_only = self.devices.get(&key).is_some_and(|d| d.md5_only)
            || listed
                .iter()
                .any(|l| !l.is_empty() && contains_ignore_case(user_agent, l));
        if md5_only && configured.contains(&Algorithm::Md5) {
            return vec![Algorithm::Md5];
        }
        configured.to_vec()
    }

    /// A challenge led by `first` was sent to the device for transaction `txn`.
    pub(crate) fn challenged(
        &mut self,
        now: Instant,
        key: u64,
        txn: u64,
        method: &str,
        first: Algorithm,
    ) {
        if let Some(d) = self.entry(now, key) {
            d.pending = Some((txn, method_code(method), first == Algorithm::Sha256));
        }
    }

    /// The device sent a request that needs credentials without any, in transaction
    /// `txn`. Returns what to log, at most once per device.
    pub(crate) fn no_credentials(
        &mut self,
        now: Instant,
        key: u64,
        txn: u64,
        method: &str,
    ) -> Option<Note> {
        let d = self.devices.get_mut(&key)?;
        d.seen = now;
        let (ptxn, pmethod, sha_first) = d.pending?;
        if ptxn == txn || pmethod != method_code(method) {
            return None; // a retransmission, or another request in flight
        }
        d.pending = None;
        let note = if sha_first && !d.md5_only {
            d.md5_only = true;
            Note::FellBackToMd5
        } else if !d.warned {
            d.warned = true;
            Note::NeverAnswers
        } else {
            return None;
        };
        let (start, n) = match self.notes {
            Some((start, n)) if now.saturating_duration_since(start) < Duration::from_secs(60) => {
                (start, n)
            }
            _ => (now, 0),
        };
        self.notes = Some((start, n.saturating_add(1)));
        (n < NOTES_PER_MINUTE).then_some(note)
    }

    /// The device answered a challenge (rightly or wrongly) with `alg`.
    /// (A device that answers was challenged, so it is known: nothing is inserted here,
    /// which keeps the authenticated path free of table growth.)
    pub(crate) fn answered(&mut self, now: Instant, key: u64, alg: Algorithm, ok: bool) {
        if let Some(d) = self.devices.get_mut(&key) {
            d.seen = now;
            d.pending = None;
            if ok && alg == Algorithm::Sha256 {
                d.md5_only = false;
            }
        }
    }

    pub(crate) fn sweep(&mut self, now: Instant) {
        self.devices
            .retain(|_, d| now.saturating_duration_since(d.seen) < FORGET_AFTER);
    }

    pub(crate) fn len(&self) -> usize {
        self.devices.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Md5];

    #[test]
    fn contains_ignore_case_is_lowercased_contains() {
        for (h, n) in [
            ("Baresip v1.0", "baresip v1."),
            ("SIPp", "sipp"),
            ("x", "xy"),
            ("", "a"),
            ("a", ""),
            ("Grüße SIPP", "sipp"),
            ("ÄSIPP", "äsipp"),
        ] {
            assert_eq!(
                contains_ignore_case(h, n),
                h.to_ascii_lowercase().contains(&n.to_ascii_lowercase()),
                "{h} {n}"
            );
        }
    }

    #[test]
    fn a_device_that_walks_away_from_sha256_gets_md5_only() {
        let t = Instant::now();
        let mut m = Memory::default();
        let k = device("alice", "baresip v1.0.0", [127, 0, 0, 1].into());
        assert_eq!(m.order(k, "x", &[], &BOTH), BOTH);
        m.challenged(t, k, 1, "REGISTER", Algorithm::Sha256);
        // a retransmission of the same request is not walking away
        assert_eq!(m.no_credentials(t, k, 1, "REGISTER"), None);
        // nor is another method in flight
        assert_eq!(m.no_credentials(t, k, 2, "SUBSCRIBE"), None);
        assert_eq!(
            m.no_credentials(t, k, 3, "REGISTER"),
            Some(Note::FellBackToMd5)
        );
        assert_eq!(m.order(k, "x", &[], &BOTH), [Algorithm::Md5]);
        m.challenged(t, k, 3, "REGISTER", Algorithm::Md5);
        assert_eq!(
            m.no_credentials(t, k, 4, "REGISTER"),
            Some(Note::NeverAnswers)
        );
        m.challenged(t, k, 4, "REGISTER", Algorithm::Md5);
        assert_eq!(m.no_credentials(t, k, 5, "REGISTER"), None, "warned once");
        // a SHA-256 success brings SHA-256 back first
        m.answered(t, k, Algorithm::Sha256, true);
        assert_eq!(m.order(k, "x", &[], &BOTH), BOTH);
        // other devices are not affected; listed User-Agents get MD5 only at once
        let other = device("bob", "baresip v1.0.0", [127, 0, 0, 1].into());
        assert_eq!(m.order(other, "x", &[], &BOTH), BOTH);
        assert_eq!(
            m.order(other, "Baresip v1.0.0", &["baresip v1.".into()], &BOTH),
            [Algorithm::Md5]
        );
        m.sweep(t + FORGET_AFTER);
        assert_eq!(m.len(), 0);
    }

    #[test]
    fn notes_are_limited_per_minute() {
        let t = Instant::now();
        let mut m = Memory::default();
        let mut notes = 0;
        for i in 0..100u32 {
            let k = device(&format!("fake{i}"), "", [192, 0, 2, 1].into());
            m.challenged(t, k, 1, "REGISTER", Algorithm::Sha256);
            notes += usize::from(m.no_credentials(t, k, 2, "REGISTER").is_some());
            // the state changed all the same
            assert_eq!(m.order(k, "", &[], &BOTH), [Algorithm::Md5]);
        }
        assert_eq!(notes, NOTES_PER_MINUTE as usize);
        let k = device("later", "", [192, 0, 2, 1].into());
        m.challenged(t, k, 1, "REGISTER", Algorithm::Sha256);
        let later = t + Duration::from_secs(61);
        assert_eq!(
            m.no_credentials(later, k, 2, "REGISTER"),
            Some(Note::FellBackToMd5)
        );
    }

    /// Once the table is full of devices seen lately, new devices are not remembered,
    /// and the table is read whole for them at most once per [`crate::FULL_SWEEP_EVERY`]
    /// (not once per challenge); a device forgotten meanwhile makes room again.
    #[test]
    fn a_full_table_is_swept_at_most_once_a_second() {
        let t0 = Instant::now();
        let mut m = Memory::default();
        let ip: IpAddr = [192, 0, 2, 7].into();
        let first = device("old", "", ip);
        m.challenged(t0, first, 1, "REGISTER", Algorithm::Sha256);
        let t1 = t0 + Duration::from_secs(3600);
        for i in 1..MAX_DEVICES {
            m.challenged(
                t1,
                device(&format!("u{i}"), "", ip),
                1,
                "REGISTER",
                Algorithm::Sha256,
            );
        }
        assert_eq!(m.len(), MAX_DEVICES);
        assert_eq!(m.full.count(), 0);
        // 5,000 new devices within a second: one sweep, none of them remembered
        for i in 0..5_000u32 {
            let at = t1 + Duration::from_micros(u64::from(i) * 100);
            let k = device(&format!("new{i}"), "", ip);
            m.challenged(at, k, 1, "REGISTER", Algorithm::Sha256);
            assert!(m.no_credentials(at, k, 2, "REGISTER").is_none());
        }
        assert_eq!(m.full.count(), 1);
        assert_eq!(m.len(), MAX_DEVICES);
        // the first device is forgotten a week after it was seen: the next look makes
        // room, once a second has passed since the last one
        let week = t0 + FORGET_AFTER + Duration::from_secs(1);
        let k = device("after", "", ip);
        m.challenged(week, k, 1, "REGISTER", Algorithm::Sha256);
        assert_eq!(m.full.count(), 2);
        assert_eq!(
            m.no_credentials(week, k, 2, "REGISTER"),
            Some(Note::FellBackToMd5)
        );
        assert_eq!(m.len(), MAX_DEVICES);
    }
}
