//! The parsed form of a configuration file: a tree of values, each remembering where it
//! was written so that later checks (types, ranges) can still name file and line.

use super::error::Pos;

/// One value, with the position of its first character.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub kind: ValueKind,
    pub pos: Pos,
    /// Source text of an integer written with a size suffix (`4MB`, `2m`). nats-server reads
    /// an unquoted `2m` as two million; keeping the text lets a duration key see what the
    /// author almost certainly meant (two minutes) and say so.
    pub raw: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ValueKind {
    String(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
    /// An ISO 8601 Zulu timestamp (`2024-01-02T03:04:05Z`), kept as written.
    Datetime(String),
    Array(Vec<Value>),
    /// Keys in file order; a key written twice keeps only its last value.
    Map(Vec<Entry>),
}

/// One `key: value` of a map.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key as written (case preserved; lookups by option name ignore case).
    pub key: String,
    pub key_pos: Pos,
    pub value: Value,
    /// The key was referenced as `$key`: it is a variable definition, not an option, so it
    /// must not be reported as an unknown field (nats-server skips these too).
    pub used_as_variable: bool,
}

impl Value {
    pub(crate) fn new(kind: ValueKind, pos: Pos) -> Self {
        Value { kind, pos, raw: None }
    }

    /// The value of `key` in a map (ASCII case-insensitive, the last definition wins), or
    /// `None` if this is not a map or has no such key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match &self.kind {
            ValueKind::Map(entries) => entries.iter().rev().find(|e| e.key.eq_ignore_ascii_case(key)).map(|e| &e.value),
            _ => None,
        }
    }

    /// A short name of the value's type for error messages.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            ValueKind::String(_) => "a string",
            ValueKind::Integer(_) => "an integer",
            ValueKind::Float(_) => "a float",
            ValueKind::Bool(_) => "a boolean",
            ValueKind::Datetime(_) => "a datetime",
            ValueKind::Array(_) => "an array",
            ValueKind::Map(_) => "a map",
        }
    }

    /// Moves the value (and everything inside it) to `pos`: a value copied through `$VAR`
    /// should be reported where it is used, not where the variable was defined.
    pub(crate) fn relocate(&mut self, pos: &Pos) {
        self.pos = pos.clone();
        match &mut self.kind {
            ValueKind::Array(items) => items.iter_mut().for_each(|v| v.relocate(pos)),
            ValueKind::Map(entries) => {
                for e in entries {
                    e.key_pos = pos.clone();
                    e.value.relocate(pos);
                }
            }
            _ => {}
        }
    }
}

/// Multiplier for an integer's unit suffix, as nats-server's `conf/parse.go` defines them:
/// a bare letter is a power of 1000 (`k`, `m`, `g`, `t`, `p`, `e`), the letter followed by
/// `b`, `i` or `ib` a power of 1024 (`KB`, `Mi`, `GiB`). Case does not matter.
pub(crate) fn size_multiplier(suffix: &str) -> Option<i64> {
    const K: i64 = 1000;
    const KI: i64 = 1024;
    let m = match suffix.to_ascii_lowercase().as_str() {
        "" => 1,
        "k" => K,
        "kb" | "ki" | "kib" => KI,
        "m" => K.pow(2),
        "mb" | "mi" | "mib" => KI.pow(2),
        "g" => K.pow(3),
        "gb" | "gi" | "gib" => KI.pow(3),
        "t" => K.pow(4),
        "tb" | "ti" | "tib" => KI.pow(4),
        "p" => K.pow(5),
        "pb" | "pi" | "pib" => KI.pow(5),
        "e" => K.pow(6),
        "eb" | "ei" | "eib" => KI.pow(6),
        _ => return None,
    };
    Some(m)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn size_suffixes() {
        assert_eq!(size_multiplier("k"), Some(1000));
        assert_eq!(size_multiplier("KB"), Some(1024));
        assert_eq!(size_multiplier("KiB"), Some(1024));
        assert_eq!(size_multiplier("mb"), Some(1 << 20));
        assert_eq!(size_multiplier("M"), Some(1_000_000));
        assert_eq!(size_multiplier("Gi"), Some(1 << 30));
        assert_eq!(size_multiplier("eb"), Some(1 << 60));
        assert_eq!(size_multiplier("kbb"), None);
    }
}
