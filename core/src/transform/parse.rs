//! Reading one destination token: a literal, a `$n` placeholder or a `{{function(args)}}`.
//! The rules (names, argument counts, which argument must be a number) are nats-server's, so
//! a mapping it refuses is refused here with the same words.

use alloc::vec::Vec;

use super::MappingError;

/// What a destination token turns into, before source positions are resolved: the indexes
/// here are still the 1-based wildcard numbers the user wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Placeholder {
    Literal,
    Wildcard(i64),
    Partition { buckets: i32, wildcards: Vec<i64> },
    SplitFromLeft(i64, i32),
    SplitFromRight(i64, i32),
    SliceFromLeft(i64, i32),
    SliceFromRight(i64, i32),
    Split(i64, Vec<u8>),
    Left(i64, i32),
    Right(i64, i32),
    Random(i32),
}

impl Placeholder {
    /// The wildcard numbers the function reads (none for literals and `random`).
    pub(super) fn wildcards(&self) -> Vec<i64> {
        match self {
            Placeholder::Literal | Placeholder::Random(_) => Vec::new(),
            Placeholder::Partition { wildcards, .. } => wildcards.clone(),
            Placeholder::Wildcard(i)
            | Placeholder::SplitFromLeft(i, _)
            | Placeholder::SplitFromRight(i, _)
            | Placeholder::SliceFromLeft(i, _)
            | Placeholder::SliceFromRight(i, _)
            | Placeholder::Split(i, _)
            | Placeholder::Left(i, _)
            | Placeholder::Right(i, _) => alloc::vec![*i],
        }
    }
}

/// Function names as nats-server's patterns accept them: lower case, except that the letters
/// at the marked positions (the start of each word) may also be upper case.
const FUNCTIONS: [(&str, &[usize]); 10] = [
    ("wildcard", &[0]),
    ("partition", &[0]),
    ("splitfromleft", &[0, 5, 9]),
    ("splitfromright", &[0, 5, 9]),
    ("slicefromleft", &[0, 5, 9]),
    ("slicefromright", &[0, 5, 9]),
    ("split", &[0]),
    ("left", &[0]),
    ("right", &[0]),
    ("random", &[0]),
];

fn name_is(written: &[u8], canonical: &str, flexible: &[usize]) -> bool {
    written.len() == canonical.len()
        && written
            .iter()
            .zip(canonical.bytes())
            .enumerate()
            .all(|(i, (&w, c))| w == c || (flexible.contains(&i) && w.to_ascii_lowercase() == c))
}

fn trim(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

/// Go's `strconv.Atoi` after trimming spaces: an optional sign and decimal digits.
fn int(arg: &[u8]) -> Option<i64> {
    core::str::from_utf8(trim(arg)).ok()?.parse().ok()
}

fn int32(arg: &[u8]) -> Option<i32> {
    core::str::from_utf8(trim(arg)).ok()?.parse().ok()
}

/// Splits the argument list at each comma and the whitespace after it.
fn args(list: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = list;
    while let Some(p) = rest.iter().position(|&b| b == b',') {
        out.push(&rest[..p]);
        let after = &rest[p + 1..];
        let skip = after.iter().take_while(|b| b.is_ascii_whitespace()).count();
        rest = &after[skip..];
    }
    out.push(rest);
    out
}

/// Splits `{{ name ( args ) }}` into the name and the argument text; `None` when the token is
/// not shaped like a call at all.
fn call(inner: &[u8]) -> Option<(&[u8], &[u8])> {
    let open = inner.iter().position(|&b| b == b'(')?;
    let close = inner.iter().rposition(|&b| b == b')')?;
    if close < open || !trim(&inner[close + 1..]).is_empty() {
        return None;
    }
    Some((trim(&inner[..open]), &inner[open + 1..close]))
}

/// Reads one destination token.
pub(super) fn placeholder(token: &[u8]) -> Result<Placeholder, MappingError> {
    let len = token.len();
    if len <= 1 {
        return Ok(Placeholder::Literal);
    }
    if token[0] == b'$' {
        // `$n` is the old form of {{wildcard(n)}}; any other `$…` stays as written
        return Ok(int_strict(&token[1..]).map_or(Placeholder::Literal, Placeholder::Wildcard));
    }
    if !(len > 4 && token.starts_with(b"{{") && token.ends_with(b"}}")) {
        return Ok(Placeholder::Literal);
    }
    let (name, list) = call(&token[2..len - 2]).ok_or(MappingError::UnknownFunction)?;
    let Some(&(function, _)) = FUNCTIONS.iter().find(|(c, flex)| name_is(name, c, flex)) else {
        return Err(MappingError::UnknownFunction);
    };
    let a = args(list);
    match function {
        "wildcard" => match a.as_slice() {
            [[]] => Err(MappingError::NotEnoughArgs),
            [only] => int(only).map(Placeholder::Wildcard).ok_or(MappingError::InvalidArg),
            _ => Err(MappingError::TooManyArgs),
        },
        "partition" => {
            let buckets = int(a[0]).filter(|n| *n <= i64::from(i32::MAX)).ok_or(MappingError::InvalidArg)?;
            let wildcards = a[1..].iter().map(|t| int(t).ok_or(MappingError::InvalidArg)).collect::<Result<_, _>>()?;
            // nats-server keeps the low 32 bits of a count below i32::MIN
            Ok(Placeholder::Partition { buckets: buckets as i32, wildcards })
        }
        "split" => {
            let [i, delim] = two(&a)?;
            let i = int(i).ok_or(MappingError::InvalidArg)?;
            if delim.contains(&b' ') || delim.contains(&b'.') {
                return Err(MappingError::InvalidArg);
            }
            Ok(Placeholder::Split(i, delim.to_vec()))
        }
        "random" => {
            let [n] = a.as_slice() else { return Err(MappingError::NotEnoughArgs) };
            let n = int(n).filter(|n| *n <= i64::from(i32::MAX)).ok_or(MappingError::InvalidArg)?;
            Ok(Placeholder::Random(n as i32))
        }
        _ => {
            let [i, n] = two(&a)?;
            let i = int(i).ok_or(MappingError::InvalidArg)?;
            let n = int32(n).ok_or(MappingError::InvalidArg)?;
            Ok(match function {
                "splitfromleft" => Placeholder::SplitFromLeft(i, n),
                "splitfromright" => Placeholder::SplitFromRight(i, n),
                "slicefromleft" => Placeholder::SliceFromLeft(i, n),
                "slicefromright" => Placeholder::SliceFromRight(i, n),
                "left" => Placeholder::Left(i, n),
                _ => Placeholder::Right(i, n),
            })
        }
    }
}

/// `$n` must be digits (with an optional sign) exactly: no trimming.
fn int_strict(b: &[u8]) -> Option<i64> {
    core::str::from_utf8(b).ok()?.parse().ok()
}

fn two<'a>(a: &[&'a [u8]]) -> Result<[&'a [u8]; 2], MappingError> {
    match a {
        [x, y] => Ok([x, y]),
        [_] | [] => Err(MappingError::NotEnoughArgs),
        _ => Err(MappingError::TooManyArgs),
    }
}

/// Is this a `{{left(…)}}` or `{{right(…)}}` call (which nats-server's `ValidateMapping` does
/// not know)?
pub(super) fn is_left_or_right(token: &[u8]) -> bool {
    let inner = token.strip_prefix(b"{{").and_then(|t| t.strip_suffix(b"}}"));
    inner.and_then(call).is_some_and(|(name, _)| name_is(name, "left", &[0]) || name_is(name, "right", &[0]))
}
