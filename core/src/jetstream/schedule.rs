//! Message schedule patterns (`Nats-Schedule`, ADR-51) as nats-server 2.14 reads them:
//! `@at <RFC 3339>`, `@every <Go duration ≥ 1s>`, six-field cron (`sec min hour dom month
//! dow`) and the predefined `@yearly` … `@hourly`. Pure functions of the time handed in.
//!
//! Time zones: the core carries no zone database, so `Nats-Schedule-Time-Zone` is taken
//! only when it names UTC; any other zone is refused as invalid (nats-server accepts every
//! IANA name).

use alloc::borrow::Cow;

use super::errors::ApiError;
use super::time::{civil_from_days, days_from_civil, parse_rfc3339};

const fn err(err_code: u16, d: &'static str) -> ApiError {
    ApiError { code: 400, err_code, description: Cow::Borrowed(d) }
}
pub(crate) const DISABLED: ApiError = err(10188, "message schedules is disabled");
pub(crate) const PATTERN_INVALID: ApiError = err(10189, "message schedules pattern is invalid");
pub(crate) const TARGET_INVALID: ApiError = err(10190, "message schedules target is invalid");
pub(crate) const TTL_INVALID: ApiError = err(10191, "message schedules invalid per-message TTL");
pub(crate) const ROLLUP_INVALID: ApiError = err(10192, "message schedules invalid rollup");
pub(crate) const SOURCE_INVALID: ApiError = err(10203, "message schedules source is invalid");
pub(crate) const SCHEDULER_INVALID: ApiError = err(10212, "message schedules invalid scheduler");
pub(crate) const TIME_ZONE_INVALID: ApiError = err(10223, "message schedules time zone is invalid");

const SEC: u64 = 1_000_000_000;

/// When a schedule next fires after `ts`, and whether it repeats. `Ok(None)`: no pattern.
/// `tz` is the `Nats-Schedule-Time-Zone` header, `now` the host's time (a repeating
/// schedule that fell behind restarts from now, as nats-server's does).
pub(crate) fn next_fire(pattern: &[u8], tz: Option<&[u8]>, ts: u64, now: u64) -> Result<Option<(u64, bool)>, ApiError> {
    let zoned = match tz {
        None => false,
        Some(b"UTC") | Some(b"Etc/UTC") => true,
        Some(_) => return Err(TIME_ZONE_INVALID),
    };
    if pattern.is_empty() {
        return Ok(None);
    }
    let pattern = core::str::from_utf8(pattern).map_err(|_| PATTERN_INVALID)?;
    if let Some(at) = pattern.strip_prefix("@at ") {
        if zoned {
            return Err(PATTERN_INVALID);
        }
        return parse_rfc3339(at).map(|t| Some((t, false))).ok_or(PATTERN_INVALID);
    }
    if let Some(every) = pattern.strip_prefix("@every ") {
        if zoned {
            return Err(PATTERN_INVALID);
        }
        let dur = crate::duration::parse(every).map_err(|_| PATTERN_INVALID)?;
        if dur < SEC {
            return Err(PATTERN_INVALID);
        }
        let mut next = round_sec(ts).saturating_add(dur);
        if next < now {
            next = round_sec(now).saturating_add(dur);
        }
        return Ok(Some((next, true)));
    }
    let pattern = match pattern {
        "@yearly" | "@annually" => "0 0 0 1 1 *",
        "@monthly" => "0 0 0 1 * *",
        "@weekly" => "0 0 0 * * 0",
        "@daily" | "@midnight" => "0 0 0 * * *",
        "@hourly" => "0 0 * * * *",
        p => p,
    };
    let cron = Cron::parse(pattern).ok_or(PATTERN_INVALID)?;
    let mut next = cron.next_after(ts).ok_or(PATTERN_INVALID)?;
    if next < now {
        next = cron.next_after(round_sec(now)).ok_or(PATTERN_INVALID)?;
    }
    Ok(Some((next, true)))
}

/// Go's `Round(time.Second)`: halves away from zero.
fn round_sec(ts: u64) -> u64 {
    (ts.saturating_add(SEC / 2) / SEC) * SEC
}

/// A parsed six-field cron pattern: one bit per allowed value; `*` in the day fields is
/// remembered because it changes how day-of-month and day-of-week combine (as in crontab).
struct Cron {
    sec: u64,
    min: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
}

const STAR: u64 = 1 << 63;
const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

impl Cron {
    fn parse(pattern: &str) -> Option<Cron> {
        let f: alloc::vec::Vec<&str> = pattern.split_ascii_whitespace().collect();
        let [s, mi, h, d, mo, w] = f.as_slice() else { return None };
        Some(Cron {
            sec: field(s, 0, 59, &[], 0)?,
            min: field(mi, 0, 59, &[], 0)?,
            hour: field(h, 0, 23, &[], 0)?,
            dom: field(d, 1, 31, &[], 0)?,
            month: field(mo, 1, 12, &MONTHS, 1)?,
            dow: field(w, 0, 6, &DAYS, 0)?,
        })
    }

    fn day_matches(&self, day: u32, weekday: u32) -> bool {
        let dom = self.dom & (1 << day) != 0;
        let dow = self.dow & (1 << weekday) != 0;
        if self.dom & STAR != 0 || self.dow & STAR != 0 {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first matching second strictly after `ts`, within five years (UTC).
    fn next_after(&self, ts: u64) -> Option<u64> {
        let mut t = (ts / SEC + 1) as i64;
        let (start_year, _, _) = civil_from_days(t.div_euclid(86_400));
        loop {
            let days = t.div_euclid(86_400);
            let (y, m, d) = civil_from_days(days);
            if y > start_year + 5 {
                return None;
            }
            if self.month & (1 << m) == 0 {
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                t = days_from_civil(ny, nm, 1) * 86_400;
                continue;
            }
            let weekday = (days + 4).rem_euclid(7) as u32;
            if !self.day_matches(d, weekday) {
                t = (days + 1) * 86_400;
                continue;
            }
            let rem = t.rem_euclid(86_400);
            let (h, mi, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
            if self.hour & (1 << h) == 0 {
                t = days * 86_400 + (h + 1) * 3600;
                continue;
            }
            if self.min & (1 << mi) == 0 {
                t = days * 86_400 + h * 3600 + (mi + 1) * 60;
                continue;
            }
            if self.sec & (1 << s) == 0 {
                t += 1;
                continue;
            }
            return u64::try_from(t).ok().map(|t| t * SEC);
        }
    }
}

/// One comma-separated cron field: `*`/`?`, numbers or names, `a-b` ranges, `/step`.
fn field(text: &str, min: u32, max: u32, names: &[&str], name_base: u32) -> Option<u64> {
    let mut bits = 0u64;
    for expr in text.split(',').filter(|e| !e.is_empty()) {
        let mut parts = expr.split('/');
        let range = parts.next()?;
        let step = parts.next();
        if parts.next().is_some() {
            return None;
        }
        let value = |s: &str| -> Option<u32> {
            let lower = s.to_ascii_lowercase();
            names.iter().position(|n| *n == lower).map(|i| i as u32 + name_base).or_else(|| s.parse::<u32>().ok())
        };
        let mut extra = 0;
        let (start, mut end) = if range == "*" || range == "?" {
            extra = STAR;
            (min, max)
        } else {
            let mut lh = range.split('-');
            let lo = value(lh.next()?)?;
            let hi = match lh.next() {
                Some(h) => value(h)?,
                None => lo,
            };
            if lh.next().is_some() {
                return None;
            }
            (lo, hi)
        };
        let step = match step {
            None => 1,
            Some(s) => {
                if !range.contains('-') && extra == 0 {
                    end = max;
                }
                let n = s.parse::<u32>().ok()?;
                if n > 1 {
                    extra = 0;
                }
                n
            }
        };
        if start < min || end > max || start > end || step == 0 {
            return None;
        }
        let mut i = start;
        while i <= end {
            bits |= 1 << i;
            i += step;
        }
        bits |= extra;
    }
    Some(bits)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const T: u64 = 1_764_000_000 * SEC; // 2025-11-24T16:00:00Z, a Monday

    #[test]
    fn at_every_and_cron() {
        assert_eq!(next_fire(b"@at 2025-11-24T16:00:05Z", None, T, T).unwrap(), Some((T + 5 * SEC, false)));
        assert_eq!(next_fire(b"@every 2s", None, T + 400_000_000, T).unwrap(), Some((T + 2 * SEC, true)));
        assert_eq!(next_fire(b"*/10 * * * * *", None, T, T).unwrap(), Some((T + 10 * SEC, true)));
        assert_eq!(next_fire(b"0 30 * * * *", None, T, T).unwrap(), Some((T + 1800 * SEC, true)));
        assert_eq!(next_fire(b"@daily", None, T, T).unwrap(), Some((T + 8 * 3600 * SEC, true)));
        // next Sunday midnight: 2025-11-30
        assert_eq!(next_fire(b"@weekly", None, T, T).unwrap(), Some((T + (5 * 24 + 8) * 3600 * SEC, true)));
        assert_eq!(next_fire(b"0 0 0 1 jan *", None, T, T).unwrap().unwrap().0, 1_767_225_600 * SEC);
        assert_eq!(next_fire(b"", None, T, T).unwrap(), None);
    }

    #[test]
    fn refuses_what_nats_server_refuses() {
        for bad in
            [&b"@every 100ms"[..], b"@at tomorrow", b"* * * * *", b"61 * * * * *", b"@sometimes", b"5-1 * * * * *"]
        {
            assert_eq!(next_fire(bad, None, T, T).unwrap_err().err_code, 10189, "{bad:?}");
        }
        assert_eq!(next_fire(b"@at 2025-11-24T16:00:05Z", Some(b"UTC"), T, T).unwrap_err().err_code, 10189);
        assert_eq!(next_fire(b"0 0 0 * * *", Some(b""), T, T).unwrap_err().err_code, 10223);
        assert!(next_fire(b"0 0 0 * * *", Some(b"UTC"), T, T).unwrap().is_some());
    }
}
