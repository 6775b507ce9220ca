//! Typed values read out of a parsed JSON [`Value`], for the `$JS.API` bodies and what the
//! stores keep. serde's derive wrote one visitor per type (78 KB of the page's module for
//! 37 types); here a type's reader is a list of its fields, each read by a helper shared by
//! every field of that kind, so the code per type is a few calls.
//!
//! The rules are the ones the derives had: a missing field takes its default, `null` is an
//! error unless the field is optional or reads `null` as its default ([`Fields::or`]),
//! unknown fields are ignored, integers are range-checked, enums are read by name. Error
//! texts keep serde's words without a position ("invalid type: string \"x\", expected i64").

use alloc::collections::{BTreeMap, VecDeque};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use serde_json::{Map, Value};

/// Why a JSON value is not the type asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiJsonError(String);

impl ApiJsonError {
    pub fn new(text: impl Into<String>) -> Self {
        ApiJsonError(text.into())
    }
}

impl fmt::Display for ApiJsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<ApiJsonError> for String {
    fn from(e: ApiJsonError) -> String {
        e.0
    }
}

pub type Result<T> = core::result::Result<T, ApiJsonError>;

/// A type read out of a JSON value.
pub trait FromJson: Sized {
    fn from_json(v: &Value) -> Result<Self>;
}

/// Parses `text` and reads a `T` out of it. A syntax error keeps serde_json's text (with its
/// position); a type error has none, a value having no position.
pub fn from_slice<T: FromJson>(text: &[u8]) -> Result<T> {
    T::from_json(&parse(text)?)
}

/// Parses `text` into a `Value`: the one parser, called (not inlined) for every type read.
#[inline(never)]
pub fn parse(text: &[u8]) -> Result<Value> {
    serde_json::from_slice(text).map_err(|e| ApiJsonError(format!("{e}")))
}

/// How serde names the value it did not expect.
fn unexpected(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(n) if n.is_f64() => format!("floating point `{n}`"),
        Value::Number(n) => format!("integer `{n}`"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "sequence".into(),
        Value::Object(_) => "map".into(),
    }
}

/// `invalid type: <what v is>, expected <expected>`.
pub fn invalid_type(v: &Value, expected: &str) -> ApiJsonError {
    ApiJsonError(format!("invalid type: {}, expected {expected}", unexpected(v)))
}

/// An enum's name: the string, or the key of a one-key object (serde's form of a variant,
/// `{"limits":null}`) with its value, which [`unit_variant`] checks once the name is known.
pub fn enum_name<'a>(v: &'a Value, what: &str) -> Result<(&'a str, Option<&'a Value>)> {
    match v {
        Value::String(s) => Ok((s, None)),
        Value::Object(m) if m.len() == 1 => match m.iter().next() {
            Some((k, value)) => Ok((k, Some(value))),
            None => Err(invalid_type(v, what)),
        },
        _ => Err(invalid_type(v, what)),
    }
}

/// A unit variant in serde's map form carries `null`.
pub fn unit_variant(value: Option<&Value>) -> Result<()> {
    match value {
        None | Some(Value::Null) => Ok(()),
        Some(other) => Err(invalid_type(other, "unit variant")),
    }
}

/// The error for a name that is none of `names`, worded as serde words it.
pub fn unknown_variant(name: &str, names: &[&str]) -> ApiJsonError {
    let expected = match names {
        [] => String::from("there are no variants"),
        [a] => format!("expected `{a}`"),
        [a, b] => format!("expected `{a}` or `{b}`"),
        _ => {
            let list: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            format!("expected one of {}", list.join(", "))
        }
    };
    ApiJsonError(format!("unknown variant `{name}`, {expected}"))
}

/// Implements [`FromJson`] for a unit enum read by name: `json_enum!(Ty, "enum Ty", ["a" |
/// "alias" => Ty::A, "b" => Ty::B])`. Every name is listed in the error, in the order given
/// (serde lists a variant's names sorted).
#[macro_export]
macro_rules! json_enum {
    ($ty:ty, $what:literal, [$($name:literal $(| $alias:literal)* => $variant:expr),+ $(,)?]) => {
        impl $crate::json::FromJson for $ty {
            fn from_json(v: &serde_json::Value) -> $crate::json::typed::Result<Self> {
                let (name, value) = $crate::json::typed::enum_name(v, $what)?;
                let variant = match name {
                    $($name $(| $alias)* => $variant,)+
                    other => return Err($crate::json::typed::unknown_variant(other, &[$($name $(, $alias)*),+])),
                };
                $crate::json::typed::unit_variant(value).map(|()| variant)
            }
        }
    };
}

/// A JSON object's fields, read one by one.
#[derive(Clone, Copy)]
pub struct Fields<'a>(&'a Map<String, Value>);

impl<'a> Fields<'a> {
    /// The object `v`; `what` names the type for the error ("struct StreamConfig").
    pub fn of(v: &'a Value, what: &str) -> Result<Self> {
        v.as_object().map(Fields).ok_or_else(|| invalid_type(v, what))
    }

    /// The raw value of `key`, if present.
    pub fn raw(&self, key: &str) -> Option<&'a Value> {
        self.0.get(key)
    }

    /// `#[serde(default)]`: a missing field takes `default`; any value present, `null`
    /// included, must read as a `T` (`Option`s read `null` as `None`).
    pub fn get<T: FromJson>(&self, key: &str, default: T) -> Result<T> {
        match self.0.get(key) {
            None => Ok(default),
            Some(v) => T::from_json(v),
        }
    }

    /// A field that clients send as `null` when unset: missing or `null` takes `default`.
    pub fn or<T: FromJson>(&self, key: &str, default: T) -> Result<T> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => T::from_json(v),
        }
    }

    /// A field without a default: missing is an error.
    pub fn need<T: FromJson>(&self, key: &str) -> Result<T> {
        match self.0.get(key) {
            None => Err(ApiJsonError(format!("missing field `{key}`"))),
            Some(v) => T::from_json(v),
        }
    }
}

impl FromJson for Value {
    fn from_json(v: &Value) -> Result<Self> {
        Ok(v.clone())
    }
}

impl FromJson for String {
    fn from_json(v: &Value) -> Result<Self> {
        v.as_str().map(String::from).ok_or_else(|| invalid_type(v, "a string"))
    }
}

impl FromJson for bool {
    fn from_json(v: &Value) -> Result<Self> {
        v.as_bool().ok_or_else(|| invalid_type(v, "a boolean"))
    }
}

/// An integer in `[min, max]`, named `what` in the error; a fraction is a type error and an
/// integer out of range an invalid value, as serde words them.
fn integer(v: &Value, min: i128, max: i128, what: &str) -> Result<i128> {
    let n = match v {
        Value::Number(n) => n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from)),
        _ => None,
    };
    match n {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        Some(n) => Err(ApiJsonError(format!("invalid value: integer `{n}`, expected {what}"))),
        None => Err(invalid_type(v, what)),
    }
}

macro_rules! json_int {
    ($($ty:ty => $what:literal),+) => {$(
        impl FromJson for $ty {
            fn from_json(v: &Value) -> Result<Self> {
                let n = integer(v, <$ty>::MIN as i128, <$ty>::MAX as i128, $what)?;
                <$ty>::try_from(n).map_err(|_| ApiJsonError(format!("invalid value: integer `{n}`, expected {}", $what)))
            }
        }
    )+};
}
json_int!(i64 => "i64", u64 => "u64", u32 => "u32", u16 => "u16", u8 => "u8", usize => "usize");

impl<T: FromJson> FromJson for Option<T> {
    fn from_json(v: &Value) -> Result<Self> {
        match v {
            Value::Null => Ok(None),
            v => T::from_json(v).map(Some),
        }
    }
}

/// A pair, written as a two-element array.
impl<A: FromJson, B: FromJson> FromJson for (A, B) {
    fn from_json(v: &Value) -> Result<Self> {
        match v.as_array().map(Vec::as_slice) {
            Some([a, b]) => Ok((A::from_json(a)?, B::from_json(b)?)),
            Some(other) => Err(ApiJsonError(format!("invalid length {}, expected a tuple of size 2", other.len()))),
            None => Err(invalid_type(v, "a tuple of size 2")),
        }
    }
}

impl<T: FromJson> FromJson for Vec<T> {
    fn from_json(v: &Value) -> Result<Self> {
        v.as_array().ok_or_else(|| invalid_type(v, "a sequence"))?.iter().map(T::from_json).collect()
    }
}

impl<T: FromJson> FromJson for VecDeque<T> {
    fn from_json(v: &Value) -> Result<Self> {
        Vec::<T>::from_json(v).map(VecDeque::from)
    }
}

impl<T: FromJson> FromJson for BTreeMap<String, T> {
    fn from_json(v: &Value) -> Result<Self> {
        let m = v.as_object().ok_or_else(|| invalid_type(v, "a map"))?;
        m.iter().map(|(k, v)| Ok((k.clone(), T::from_json(v)?))).collect()
    }
}

/// Integer keys, written as JSON strings (as serde_json writes them).
impl<T: FromJson> FromJson for BTreeMap<u64, T> {
    fn from_json(v: &Value) -> Result<Self> {
        let m = v.as_object().ok_or_else(|| invalid_type(v, "a map"))?;
        m.iter()
            .map(|(k, v)| {
                let key = k.parse::<u64>().map_err(|_| invalid_type(&Value::String(k.clone()), "u64"))?;
                Ok((key, T::from_json(v)?))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use alloc::string::ToString;
    use serde::de::DeserializeOwned;

    /// Our text for `text` read as `T`, and serde's own (reading the same value).
    fn both<T: FromJson + DeserializeOwned + fmt::Debug>(text: &str) -> (String, String) {
        let v: Value = serde_json::from_str(text).unwrap();
        let serde = serde_json::from_value::<T>(v.clone()).unwrap_err().to_string();
        (T::from_json(&v).unwrap_err().to_string(), serde)
    }

    #[test]
    fn texts_are_serdes() {
        for text in [r#""x""#, "1.5", "-1", "true", "null", "[1]", r#"{"a":1}"#, "18446744073709551616"] {
            let (ours, serde) = both::<u64>(text);
            assert_eq!(ours, serde, "u64 {text}");
        }
        for text in ["9223372036854775808", "1e3", r#""5""#] {
            let (ours, serde) = both::<i64>(text);
            assert_eq!(ours, serde, "i64 {text}");
        }
        for (text, (ours, serde)) in [
            ("4294967296", both::<u32>("4294967296")),
            ("70000", both::<u16>("70000")),
            ("-3", both::<usize>("-3")),
            ("1", both::<String>("1")),
            (r#""t""#, both::<bool>(r#""t""#)),
            (r#"{"a":"b"}"#, both::<Vec<String>>(r#"{"a":"b"}"#)),
            ("[]", both::<BTreeMap<String, String>>("[]")),
            (r#"[1,"x"]"#, both::<Vec<u64>>(r#"[1,"x"]"#)),
            (r#""a\nb""#, both::<Vec<u64>>(r#""a\nb""#)),
            ("[1]", both::<(u8, u8)>("[1]")),
            ("300", both::<u8>("300")),
        ] {
            assert_eq!(ours, serde, "{text}");
        }
    }

    #[test]
    fn fields_take_defaults_nulls_and_keys() {
        let v: Value = serde_json::from_str(r#"{"a":null,"b":3,"m":{"7":1}}"#).unwrap();
        let f = Fields::of(&v, "struct T").unwrap();
        assert_eq!(f.or("a", 9u64).unwrap(), 9);
        assert!(f.get("a", 9u64).is_err());
        assert_eq!(f.get("a", Some(1u64)).unwrap(), None);
        assert_eq!((f.get("b", 0u64).unwrap(), f.get("zz", 4u64).unwrap()), (3, 4));
        assert_eq!(f.need::<u64>("zz").unwrap_err().to_string(), "missing field `zz`");
        assert_eq!(f.get("m", BTreeMap::<u64, u64>::new()).unwrap().get(&7), Some(&1));
        assert!(from_slice::<u64>(b"{").unwrap_err().to_string().contains("EOF"));
    }
}
