//! Counter streams (`allow_msg_counter`, ADR-49): `Nats-Incr` adds a signed integer of any
//! size to the subject's running total, stored as `{"val":"<total>"}`.
//!
//! The core is `no_std` without a big-integer crate, so totals are added as decimal digit
//! strings: an increment is rare next to the I/O around it, and this keeps any size exact.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::cmp::Ordering;

use super::Stream;
use crate::jetstream::errors::ApiError;
use crate::proto::header_value;

pub(crate) const INCR_DISABLED: ApiError =
    ApiError { code: 400, err_code: 10168, description: alloc::borrow::Cow::Borrowed("message counters is disabled") };
pub(crate) const INCR_MISSING: ApiError = ApiError {
    code: 400,
    err_code: 10169,
    description: alloc::borrow::Cow::Borrowed("message counter increment is missing"),
};
pub(crate) const INCR_PAYLOAD: ApiError =
    ApiError { code: 400, err_code: 10170, description: alloc::borrow::Cow::Borrowed("message counter has payload") };
pub(crate) const INCR_INVALID: ApiError = ApiError {
    code: 400,
    err_code: 10171,
    description: alloc::borrow::Cow::Borrowed("message counter increment is invalid"),
};
pub(crate) const COUNTER_BROKEN: ApiError =
    ApiError { code: 400, err_code: 10172, description: alloc::borrow::Cow::Borrowed("message counter is broken") };

/// A signed integer of any size: sign and decimal digits, most significant first, no
/// leading zeros (zero is the empty magnitude, never negative).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BigInt {
    negative: bool,
    digits: Vec<u8>,
}

impl BigInt {
    /// Parses what Go's `big.Int.SetString(s, 10)` takes: an optional sign, then digits.
    pub(crate) fn parse(s: &[u8]) -> Option<BigInt> {
        let (negative, rest) = match s.first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        if rest.is_empty() || !rest.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let digits: Vec<u8> = rest.iter().skip_while(|d| **d == b'0').map(|d| d - b'0').collect();
        Some(BigInt { negative: negative && !digits.is_empty(), digits })
    }

    pub(crate) fn add(&self, other: &BigInt) -> BigInt {
        if self.negative == other.negative {
            return BigInt { negative: self.negative, digits: add_mag(&self.digits, &other.digits) }.norm();
        }
        match cmp_mag(&self.digits, &other.digits) {
            Ordering::Equal => BigInt { negative: false, digits: Vec::new() },
            Ordering::Greater => {
                BigInt { negative: self.negative, digits: sub_mag(&self.digits, &other.digits) }.norm()
            }
            Ordering::Less => BigInt { negative: other.negative, digits: sub_mag(&other.digits, &self.digits) }.norm(),
        }
    }

    pub(crate) fn zero() -> BigInt {
        BigInt { negative: false, digits: Vec::new() }
    }

    pub(crate) fn neg(&self) -> BigInt {
        BigInt { negative: !self.negative && !self.digits.is_empty(), digits: self.digits.clone() }
    }

    fn norm(mut self) -> BigInt {
        let zeros = self.digits.iter().take_while(|d| **d == 0).count();
        self.digits.drain(..zeros);
        if self.digits.is_empty() {
            self.negative = false;
        }
        self
    }
}

impl core::fmt::Display for BigInt {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.digits.is_empty() {
            return f.write_str("0");
        }
        if self.negative {
            f.write_str("-")?;
        }
        let s: String = self.digits.iter().map(|d| char::from(b'0' + d)).collect();
        f.write_str(&s)
    }
}

fn cmp_mag(a: &[u8], b: &[u8]) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn add_mag(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len().max(b.len()) + 1);
    let (mut i, mut j, mut carry) = (a.len(), b.len(), 0u8);
    while i > 0 || j > 0 || carry > 0 {
        let mut d = carry;
        if i > 0 {
            i -= 1;
            d += a[i];
        }
        if j > 0 {
            j -= 1;
            d += b[j];
        }
        out.push(d % 10);
        carry = d / 10;
    }
    out.reverse();
    out
}

/// `a - b` for `a >= b`.
fn sub_mag(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len());
    let (mut j, mut borrow) = (b.len(), 0i8);
    for i in (0..a.len()).rev() {
        let mut d = a[i] as i8 - borrow;
        if j > 0 {
            j -= 1;
            d -= b[j] as i8;
        }
        borrow = i8::from(d < 0);
        out.push(if d < 0 { d + 10 } else { d } as u8);
    }
    out.reverse();
    out
}

/// The `Nats-Incr` of a publish, checked as nats-server checks it before anything else: a
/// value that is no integer is refused on any stream; a valid one only on a counter stream,
/// with an empty payload and none of the headers that make no sense for a counter.
pub(crate) fn check_incr(allow: bool, headers: Option<&[u8]>, payload: &[u8]) -> Result<Option<BigInt>, ApiError> {
    let h = |name: &[u8]| headers.and_then(|b| header_value(b, name));
    let Some(v) = h(b"Nats-Incr").filter(|v| !v.is_empty()) else { return Ok(None) };
    let incr = BigInt::parse(v).ok_or(INCR_INVALID)?;
    if !allow {
        return Err(INCR_DISABLED);
    }
    if !payload.is_empty() {
        return Err(INCR_PAYLOAD);
    }
    let clashing = [
        &b"Nats-Rollup"[..],
        b"Nats-Expected-Stream",
        b"Nats-Expected-Last-Msg-Id",
        b"Nats-Expected-Last-Subject-Sequence-Subject",
        b"Nats-Expected-Last-Sequence",
        b"Nats-Expected-Last-Subject-Sequence",
    ];
    if clashing.iter().any(|name| h(name).is_some_and(|v| !v.is_empty())) {
        return Err(INCR_INVALID);
    }
    Ok(Some(incr))
}

/// The value inside a stored counter body, `{"val":"…"}`.
pub(super) fn body_value(payload: &[u8]) -> Option<BigInt> {
    let body = serde_json::from_slice::<serde_json::Value>(payload).ok()?;
    let val: String = crate::json::Fields::of(&body, "struct Body").ok()?.get("val", String::new()).ok()?;
    if val.is_empty() {
        return Some(BigInt { negative: false, digits: Vec::new() });
    }
    BigInt::parse(val.as_bytes())
}

impl Stream {
    /// The total a stored counter message holds, for the publish ack (`val`).
    pub(crate) fn counter_value(&mut self, seq: u64) -> Option<String> {
        let msg = self.load(seq).ok().flatten()?;
        body_value(&msg.payload).map(|v| format!("{v}"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use alloc::string::ToString;

    fn big(s: &str) -> BigInt {
        BigInt::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn adds_signed_integers_of_any_size() {
        assert_eq!(big("+5").add(&big("3")).to_string(), "8");
        assert_eq!(big("8").add(&big("-10")).to_string(), "-2");
        assert_eq!(big("-2").add(&big("+100")).to_string(), "98");
        assert_eq!(big("5").add(&big("-5")).to_string(), "0");
        assert_eq!(big("-0").to_string(), "0");
        assert_eq!(big("007").to_string(), "7");
        let huge = "123456789012345678901234567890123456789";
        assert_eq!(big(huge).add(&big("1")).to_string(), "123456789012345678901234567890123456790");
        assert_eq!(big("-1000000000000000000000000").add(&big("1")).to_string(), "-999999999999999999999999");
        assert_eq!(big("99999999999999999999").add(&big("1")).to_string(), "100000000000000000000");
    }

    #[test]
    fn refuses_what_go_refuses() {
        for bad in ["", "+", "-", "1.5", "1e3", "x", " 1", "1_000", "0x10"] {
            assert!(BigInt::parse(bad.as_bytes()).is_none(), "{bad:?}");
        }
    }
}
