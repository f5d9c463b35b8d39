//! The wall clock, read in one place. The sans-IO crates never read it: the shell gives
//! them the time (Unix milliseconds for records and evidence entries, seconds for
//! binding expiries), and the command line reads it to resolve `--since`.
use anyhow::Context;

/// Unix time in milliseconds (0 if the clock is before 1970).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Unix time in seconds (0 if the clock is before 1970).
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `--since`: RFC 3339, a date, Unix seconds or an age (`15m`, `2h`, `7d`); none: all.
pub(crate) fn since(s: Option<&str>) -> anyhow::Result<i64> {
    match s {
        None => Ok(i64::MIN),
        Some(s) => palisade_detect::parse_time(s, now_ms()).with_context(|| {
            format!("--since {s:?}: use RFC 3339 (2026-11-30T16:00:00Z), a date, Unix seconds or an age (15m, 2h, 7d)")
        }),
    }
}
