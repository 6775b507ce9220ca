//! Go durations, the one parser and formatter for every place edgebus reads or prints one:
//! JetStream (`-NAK 5s`, `Nats-TTL: 1h30m`, `Exceeded MaxRequestExpires of 1.5s`), the
//! server's configuration file (`ping_interval: "2m"`, `sync_interval: 500ms`) and the
//! monitoring endpoints (`"uptime": "1d2h3m4s"`).
//!
//! nats-server reads all of these with Go's `time.ParseDuration` and prints them with
//! `time.Duration.String`, so this module follows those two functions rule for rule (signs,
//! the lone `"0"`, `.5s` and `1.s`, both micro signs, overflow at `i64::MAX` nanoseconds, the
//! float step for fractions, the exact error texts) rather than any looser notion of a
//! duration: a configuration or header nats-server accepts must mean the same here, and one
//! it refuses must be refused with the words its operators already know.

use alloc::format;
use alloc::string::String;
use core::fmt::{self, Write};

const NANOSECOND: u64 = 1;
const MICROSECOND: u64 = 1_000 * NANOSECOND;
const MILLISECOND: u64 = 1_000 * MICROSECOND;
const SECOND: u64 = 1_000 * MILLISECOND;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;

/// Why a text is not a duration. `Display` gives Go's `time.ParseDuration` texts, which the
/// configuration errors quote (`error parsing ping_interval: time: unknown unit "x" in
/// duration "5x"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationError<'a> {
    /// Not a duration, or more than Go's `time.Duration` holds (about 292 years).
    Invalid(&'a str),
    /// A number without a unit (`"5"`; only a lone `"0"` may omit it).
    MissingUnit(&'a str),
    /// A unit Go does not know (`"5x"`, `"1d"`).
    UnknownUnit { unit: &'a str, text: &'a str },
    /// A well-formed negative duration (`"-1s"`): Go accepts it, but no option, header or
    /// acknowledgement has a meaning for one, so it is refused rather than clamped.
    Negative(&'a str),
}

impl fmt::Display for DurationError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DurationError::Invalid(text) => write!(f, "time: invalid duration {}", GoQuote(text)),
            DurationError::MissingUnit(text) => write!(f, "time: missing unit in duration {}", GoQuote(text)),
            DurationError::UnknownUnit { unit, text } => {
                write!(f, "time: unknown unit {} in duration {}", GoQuote(unit), GoQuote(text))
            }
            DurationError::Negative(text) => write!(f, "negative duration {}", GoQuote(text)),
        }
    }
}

/// Go's `time.quote`: double quotes, `"` and `\` escaped, every byte of a control or
/// non-ASCII character as `\xHH`.
struct GoQuote<'a>(&'a str);

impl fmt::Display for GoQuote<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        for c in self.0.chars() {
            if c < ' ' || !c.is_ascii() {
                let mut utf8 = [0u8; 4];
                for b in c.encode_utf8(&mut utf8).bytes() {
                    write!(f, "\\x{b:02x}")?;
                }
            } else {
                if c == '"' || c == '\\' {
                    f.write_char('\\')?;
                }
                f.write_char(c)?;
            }
        }
        f.write_char('"')
    }
}

/// Parses a duration as Go's `time.ParseDuration` does (`"300ms"`, `"-1.5h"`, `"2h45m"`,
/// `"+3s"`, `"0"`) into nanoseconds, refusing negative ones ([`DurationError::Negative`];
/// `"-0s"` is zero). No whitespace is trimmed, as in Go: callers that read a header or an
/// ack body trim it first, as nats-server does.
pub fn parse(text: &str) -> Result<u64, DurationError<'_>> {
    let (negative, nanos) = parse_go(text)?;
    if negative && nanos > 0 {
        return Err(DurationError::Negative(text));
    }
    Ok(nanos)
}

/// Go's algorithm, returning the sign and the magnitude (at most `2^63`, and below that for
/// a positive duration).
fn parse_go(text: &str) -> Result<(bool, u64), DurationError<'_>> {
    const LIMIT: u64 = 1 << 63;
    let invalid = DurationError::Invalid(text);
    let mut s = text.as_bytes();
    let negative = s.first() == Some(&b'-');
    if let Some(b'-' | b'+') = s.first() {
        s = &s[1..];
    }
    if s == b"0" {
        return Ok((negative, 0));
    }
    if s.is_empty() {
        return Err(invalid);
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        // [0-9]*, refusing what would pass 2^63.
        let before = s.len();
        let mut int: u64 = 0;
        while let Some(&c) = s.first().filter(|c| c.is_ascii_digit()) {
            if int > LIMIT / 10 {
                return Err(invalid);
            }
            int = int * 10 + u64::from(c - b'0');
            if int > LIMIT {
                return Err(invalid);
            }
            s = &s[1..];
        }
        let had_int = s.len() != before;
        // (\.[0-9]*)?, keeping only the digits that fit, as Go does.
        let (mut frac, mut scale, mut had_frac) = (0u64, 1f64, false);
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let before = s.len();
            let mut overflow = false;
            while let Some(&c) = s.first().filter(|c| c.is_ascii_digit()) {
                s = &s[1..];
                if overflow {
                    continue;
                }
                if frac > (LIMIT - 1) / 10 {
                    overflow = true;
                    continue;
                }
                let next = frac * 10 + u64::from(c - b'0');
                if next > LIMIT {
                    overflow = true;
                    continue;
                }
                frac = next;
                scale *= 10.0;
            }
            had_frac = s.len() != before;
        }
        if !had_int && !had_frac {
            return Err(invalid);
        }
        let unit_len = s.iter().position(|c| *c == b'.' || c.is_ascii_digit()).unwrap_or(s.len());
        if unit_len == 0 {
            return Err(DurationError::MissingUnit(text));
        }
        let (unit, rest) = s.split_at(unit_len);
        s = rest;
        let unit = match unit {
            b"ns" => NANOSECOND,
            b"us" => MICROSECOND,
            b"\xc2\xb5s" | b"\xce\xbcs" => MICROSECOND, // U+00B5 micro sign, U+03BC mu
            b"ms" => MILLISECOND,
            b"s" => SECOND,
            b"m" => MINUTE,
            b"h" => HOUR,
            _ => {
                // `unit` ends where `text` does or before an ASCII byte, so it is whole chars.
                let start = text.len() - s.len() - unit_len;
                let unit = text.get(start..start + unit_len).unwrap_or_default();
                return Err(DurationError::UnknownUnit { unit, text });
            }
        };
        if int > LIMIT / unit {
            return Err(invalid);
        }
        let mut v = int * unit;
        if frac > 0 {
            // Go takes this step in float64 (exact to the nanosecond for fractions of an
            // hour); doing the same keeps every rounding identical. No float is parsed.
            v += (frac as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid);
            }
        }
        total += v;
        if total > LIMIT {
            return Err(invalid);
        }
    }
    if !negative && total > LIMIT - 1 {
        return Err(invalid);
    }
    Ok((negative, total))
}

/// Go's `time.Duration.String`: `"0s"`, `"999ns"`, `"1.5µs"`, `"1.5ms"`, `"1.5s"`,
/// `"1m30s"`, `"2h0m0s"`; never days, since days differ in length.
pub fn format(nanos: u64) -> String {
    let mut out = String::new();
    if nanos < SECOND {
        let (unit, per) = match nanos {
            0 => return "0s".into(),
            n if n < MICROSECOND => ("ns", NANOSECOND),
            n if n < MILLISECOND => ("µs", MICROSECOND),
            _ => ("ms", MILLISECOND),
        };
        push_with_fraction(&mut out, nanos, per);
        out.push_str(unit);
        return out;
    }
    let secs = nanos / SECOND;
    let (h, m) = (secs / 3600, (secs / 60) % 60);
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if secs >= 60 {
        let _ = write!(out, "{m}m");
    }
    push_with_fraction(&mut out, nanos % MINUTE, SECOND);
    out.push('s');
    out
}

/// `value / per` with the remainder as a decimal fraction, trailing zeros dropped.
fn push_with_fraction(out: &mut String, value: u64, per: u64) {
    let _ = write!(out, "{}", value / per);
    let frac = value % per;
    if frac > 0 {
        let mut digits = per.ilog10() as usize;
        let mut frac = frac;
        while frac.is_multiple_of(10) {
            frac /= 10;
            digits -= 1;
        }
        let _ = write!(out, ".{frac:0digits$}");
    }
}

/// nats-server's uptime rendering (`myUptime`), coarser than a Go duration: whole seconds,
/// with days and years (of 365 days) in front: `"45s"`, `"3m7s"`, `"1d2h3m4s"`, `"1y0d0h0m9s"`.
pub fn uptime(secs: u64) -> String {
    let (mins, hours, days) = (secs / 60, secs / 3600, secs / 86_400);
    let years = days / 365;
    if years > 0 {
        format!("{years}y{}d{}h{}m{}s", days % 365, hours % 24, mins % 60, secs % 60)
    } else if days > 0 {
        format!("{days}d{}h{}m{}s", hours % 24, mins % 60, secs % 60)
    } else if hours > 0 {
        format!("{hours}h{}m{}s", mins % 60, secs % 60)
    } else if mins > 0 {
        format!("{mins}m{}s", secs % 60)
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use alloc::string::ToString;

    /// Every form either former parser (JetStream's, the configuration file's) accepted,
    /// with the values Go's `time.ParseDuration` gives them.
    #[test]
    fn accepts_what_go_accepts() {
        for (text, nanos) in [
            ("0", 0),
            ("+0", 0),
            ("-0", 0),
            ("-0s", 0),
            ("0s", 0),
            ("5s", 5 * SECOND),
            ("+3s", 3 * SECOND),
            ("2s", 2 * SECOND),
            ("2m", 2 * MINUTE),
            ("1h", HOUR),
            ("1m30s", 90 * SECOND),
            ("1h30m", 90 * MINUTE),
            ("2h45m", 165 * MINUTE),
            ("500ms", 500 * MILLISECOND),
            ("1.5s", 1_500 * MILLISECOND),
            ("1.5h", 90 * MINUTE),
            ("2.3h", 8_280_000_000_000),
            (".5s", 500 * MILLISECOND),
            ("1.s", SECOND),
            ("10us", 10 * MICROSECOND),
            ("10µs", 10 * MICROSECOND),
            ("1.5µs", 1_500),
            ("3μs7ns", 3_007),
            ("1h2m3s4ms5us6ns", 3_723_004_005_006),
            ("0.0000000015s", 1),
            ("1000h", 1_000 * HOUR),
            ("1.000000000000000000001s", SECOND),
            ("9223372036854775807ns", i64::MAX as u64),
            ("2562047h47m16.854775807s", i64::MAX as u64),
        ] {
            assert_eq!(parse(text), Ok(nanos), "{text}");
        }
    }

    #[test]
    fn refuses_what_go_refuses_with_gos_words() {
        for text in [
            "",
            "+",
            "-",
            ".s",
            "-.s",
            " 2s",
            "9223372036854775808ns",
            "2562048h",
            "5000000h",
            "99999999999999999999h",
            "99999999999999999999999999999999999999999999s",
        ] {
            assert_eq!(parse(text), Err(DurationError::Invalid(text)), "{text:?}");
        }
        for text in ["5", "1.5", "1.2.3s", "1..s", "3s4"] {
            assert_eq!(parse(text), Err(DurationError::MissingUnit(text)), "{text:?}");
        }
        assert_eq!(parse("5x"), Err(DurationError::UnknownUnit { unit: "x", text: "5x" }));
        assert_eq!(parse("s"), Err(DurationError::Invalid("s")));
        assert_eq!(parse("1d"), Err(DurationError::UnknownUnit { unit: "d", text: "1d" }));
        assert_eq!(parse("2é"), Err(DurationError::UnknownUnit { unit: "é", text: "2é" }));
        assert_eq!(parse("1S"), Err(DurationError::UnknownUnit { unit: "S", text: "1S" }));
        // A unit runs to the next digit or dot, spaces and exponents included.
        assert_eq!(parse("1m 30s"), Err(DurationError::UnknownUnit { unit: "m ", text: "1m 30s" }));
        assert_eq!(parse("2s "), Err(DurationError::UnknownUnit { unit: "s ", text: "2s " }));
        assert_eq!(parse("1e3s"), Err(DurationError::UnknownUnit { unit: "e", text: "1e3s" }));
        assert_eq!(parse("-1s"), Err(DurationError::Negative("-1s")));
        assert_eq!(parse("-9223372036854775808ns"), Err(DurationError::Negative("-9223372036854775808ns")));

        assert_eq!(parse("5x").unwrap_err().to_string(), r#"time: unknown unit "x" in duration "5x""#);
        assert_eq!(parse("5").unwrap_err().to_string(), r#"time: missing unit in duration "5""#);
        assert_eq!(parse("a\"b").unwrap_err().to_string(), r#"time: invalid duration "a\"b""#);
        assert_eq!(parse("1é").unwrap_err().to_string(), r#"time: unknown unit "\xc3\xa9" in duration "1\xc3\xa9""#);
        assert_eq!(parse("-1s").unwrap_err().to_string(), r#"negative duration "-1s""#);
    }

    #[test]
    fn formats_as_go_prints() {
        for (nanos, text) in [
            (0, "0s"),
            (1, "1ns"),
            (999, "999ns"),
            (1_000, "1µs"),
            (1_500, "1.5µs"),
            (100 * MILLISECOND, "100ms"),
            (1_500_000, "1.5ms"),
            (1_000_001, "1.000001ms"),
            (SECOND, "1s"),
            (1_500 * MILLISECOND, "1.5s"),
            (SECOND + 1, "1.000000001s"),
            (90 * SECOND, "1m30s"),
            (MINUTE, "1m0s"),
            (2 * HOUR, "2h0m0s"),
            (HOUR + 500 * MILLISECOND, "1h0m0.5s"),
            (i64::MAX as u64, "2562047h47m16.854775807s"),
        ] {
            assert_eq!(format(nanos), text, "{nanos}");
            assert_eq!(parse(text), Ok(nanos), "{text} reads back");
        }
    }

    #[test]
    fn uptime_as_nats_server_prints_it() {
        assert_eq!(uptime(0), "0s");
        assert_eq!(uptime(45), "45s");
        assert_eq!(uptime(187), "3m7s");
        assert_eq!(uptime(3600), "1h0m0s");
        assert_eq!(uptime(93_784), "1d2h3m4s");
        assert_eq!(uptime(365 * 86_400 + 9), "1y0d0h0m9s");
    }
}
