//! RFC 3339 times (UTC) without a date library: days from the civil date and back.

use crate::Millis;

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number (inverse of `days_from_civil`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `2026-11-30T16:24:54.123Z` (milliseconds only when not zero).
pub fn rfc3339(ms: Millis) -> String {
    let secs = ms.div_euclid(1000);
    let frac = ms.rem_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    let (hh, mm, ss) = (s / 3600, s % 3600 / 60, s % 60);
    if frac == 0 {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{frac:03}Z")
    }
}

fn num(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A time given on a command line: RFC 3339 (`2026-11-30T16:00:00Z`, an offset
/// `+01:00`, fractional seconds), a date (`2026-11-30`, midnight UTC), Unix seconds, or
/// an age before `now` (`90s`, `15m`, `2h`, `7d`).
pub fn parse_time(s: &str, now: Millis) -> Option<Millis> {
    let s = s.trim();
    if let Some(unit) = s.chars().last().filter(|c| "smhd".contains(*c)) {
        if let Some(n) = s.strip_suffix(unit).and_then(num) {
            let mul = match unit {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                _ => 86_400,
            };
            return Some(now - n.checked_mul(mul * 1000)?);
        }
    }
    if let Some(n) = num(s) {
        return n.checked_mul(1000);
    }
    let (date, rest) = match s.split_once(['T', 't', ' ']) {
        Some((d, r)) => (d, Some(r)),
        None => (s, None),
    };
    let mut dp = date.split('-');
    let (y, m, d) = (num(dp.next()?)?, num(dp.next()?)?, num(dp.next()?)?);
    if dp.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let day = days_from_civil(y, m, d);
    let Some(rest) = rest else {
        return Some(day * 86_400_000);
    };
    // time, then Z or ±hh:mm
    let (time, offset) = if let Some(t) = rest.strip_suffix(['Z', 'z']) {
        (t, 0)
    } else {
        let at = rest.rfind(['+', '-'])?;
        let (t, o) = (rest.get(..at)?, rest.get(at..)?);
        let sign = if o.starts_with('-') { -1 } else { 1 };
        let (oh, om) = o.get(1..)?.split_once(':')?;
        (t, sign * (num(oh)? * 3600 + num(om)? * 60))
    };
    let (whole, frac) = match time.split_once('.') {
        Some((w, f)) => (w, f),
        None => (time, ""),
    };
    let mut tp = whole.split(':');
    let (hh, mm, ss) = (num(tp.next()?)?, num(tp.next()?)?, num(tp.next()?)?);
    if tp.next().is_some() || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let ms = if frac.is_empty() {
        0
    } else {
        let f: String = frac.chars().chain("000".chars()).take(3).collect();
        num(&f)?
    };
    Some((day * 86_400 + hh * 3600 + mm * 60 + ss - offset) * 1000 + ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for ms in [
            0,
            1_764_519_894_000,
            1_764_519_894_123,
            951_782_400_000,
            -86_400_000,
        ] {
            assert_eq!(parse_time(&rfc3339(ms), 0), Some(ms), "{}", rfc3339(ms));
        }
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn forms() {
        let now = 1_000_000_000;
        assert_eq!(parse_time("15m", now), Some(now - 900_000));
        assert_eq!(parse_time("2h", now), Some(now - 7_200_000));
        assert_eq!(parse_time("1764519894", now), Some(1_764_519_894_000));
        assert_eq!(
            parse_time("2026-11-30", now),
            parse_time("2026-11-30T00:00:00Z", now)
        );
        assert_eq!(
            parse_time("2026-11-30T17:00:00+01:00", now),
            parse_time("2026-11-30T16:00:00Z", now)
        );
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-11-30T25:00:00Z",
            "12x",
            "2026-11-30T10:00",
        ] {
            assert_eq!(parse_time(bad, now), None, "{bad}");
        }
    }
}
