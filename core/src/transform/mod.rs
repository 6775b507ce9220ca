//! Subject transforms: nats-server's subject mapping (`server/subject_transform.go`), used by a
//! stream's `subject_transform`, `republish`, and anything else that rewrites a subject by a
//! `src` → `dest` rule.
//!
//! The source is a subject with `*` / `>` wildcards (empty means `>`); the destination names the
//! source's wildcards as `$n` or `{{wildcard(n)}}` and may call `partition`, `split`,
//! `splitFromLeft`, `splitFromRight`, `sliceFromLeft`, `sliceFromRight`, `left`, `right` and
//! `random`. Partitions hash with 32-bit FNV-1a as nats-server does, so a key lands in the same
//! partition on both. `random` takes its numbers from the caller, so the core stays free of
//! any entropy source of its own.

mod apply;
mod parse;
#[cfg(test)]
mod tests;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use parse::Placeholder;

/// What one destination token produces, with wildcard numbers resolved to source token
/// positions.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(Vec<u8>),
    /// The destination's trailing `>`: the rest of the subject goes there.
    Rest,
    Wildcard(usize),
    Partition {
        buckets: i32,
        tokens: Vec<usize>,
    },
    SplitFromLeft(usize, i32),
    SplitFromRight(usize, i32),
    SliceFromLeft(usize, i32),
    SliceFromRight(usize, i32),
    Split(usize, Vec<u8>),
    Left(usize, i32),
    Right(usize, i32),
    Random(i32),
}

/// A compiled `src` → `dest` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectTransform {
    src: String,
    dest: String,
    /// How many tokens the source has (its `>` counted).
    src_tokens: usize,
    parts: Vec<Part>,
}

/// Why a mapping destination was refused, in nats-server's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MappingError {
    InvalidTransform,
    UnknownFunction,
    IndexOutOfRange,
    NotEnoughArgs,
    InvalidArg,
    TooManyArgs,
}

impl MappingError {
    fn text(self) -> &'static str {
        match self {
            MappingError::InvalidTransform => "invalid transform",
            MappingError::UnknownFunction => "unknown function",
            MappingError::IndexOutOfRange => "wildcard index out of range",
            MappingError::NotEnoughArgs => "not enough arguments passed to the function",
            MappingError::InvalidArg => "function argument is invalid or in the wrong format",
            MappingError::TooManyArgs => "too many arguments passed to the function",
        }
    }
}

/// Why a transform could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransformError {
    /// The source or destination is not a valid subject, the destination has a `*`, or only
    /// one of them ends in `>`.
    BadSubject,
    /// A destination token is wrong; `token` is the token as written (with `: [n]` appended
    /// for an out-of-range wildcard number, as nats-server reports it).
    Destination { error: MappingError, token: String },
}

impl fmt::Display for TransformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransformError::BadSubject => f.write_str("invalid subject"),
            TransformError::Destination { error, token } if token.is_empty() => {
                write!(f, "invalid mapping destination: {}", error.text())
            }
            TransformError::Destination { error, token } => {
                write!(f, "invalid mapping destination: {} in {token}", error.text())
            }
        }
    }
}

fn dest_err(error: MappingError, token: &[u8]) -> TransformError {
    TransformError::Destination { error, token: String::from_utf8_lossy(token).into_owned() }
}

/// Splits a pattern into tokens and counts its wildcards; `None` if a token is empty or
/// something follows `>`.
fn subject_info(s: &[u8]) -> Option<(Vec<&[u8]>, usize, bool)> {
    if s.is_empty() {
        return None;
    }
    let tokens: Vec<&[u8]> = s.split(|&b| b == b'.').collect();
    let (mut pwcs, mut fwc) = (0, false);
    for t in &tokens {
        if t.is_empty() || fwc {
            return None;
        }
        match *t {
            b">" => fwc = true,
            b"*" => pwcs += 1,
            _ => {}
        }
    }
    Some((tokens, pwcs, fwc))
}

impl SubjectTransform {
    /// Compiles a rule. An empty `dest` means "no transform" (`Ok(None)`), as in nats-server.
    pub fn new(src: &str, dest: &str) -> Result<Option<SubjectTransform>, TransformError> {
        if dest.is_empty() {
            return Ok(None);
        }
        let src = if src.is_empty() { ">" } else { src };
        let (Some((stoks, npwcs, sfwc)), Some((dtoks, dpwcs, dfwc))) =
            (subject_info(src.as_bytes()), subject_info(dest.as_bytes()))
        else {
            return Err(TransformError::BadSubject);
        };
        if dpwcs > 0 || sfwc != dfwc {
            return Err(TransformError::BadSubject);
        }
        // wildcard number (1-based) -> source token position
        let positions: Vec<usize> = stoks.iter().enumerate().filter(|(_, t)| **t == b"*").map(|(i, _)| i).collect();
        let mut parts = Vec::with_capacity(dtoks.len());
        for token in &dtoks {
            let ph = parse::placeholder(token).map_err(|e| dest_err(e, token))?;
            if npwcs == 0 && !sfwc {
                // a literal source has no wildcards to read: only functions that need none
                match ph {
                    Placeholder::Literal | Placeholder::Random(_) | Placeholder::Partition { .. } => {}
                    _ => return Err(dest_err(MappingError::IndexOutOfRange, token)),
                }
            }
            let mut resolved = Vec::new();
            if npwcs > 0 || sfwc {
                for n in ph.wildcards() {
                    if n > npwcs as i64 {
                        let shown = alloc::format!("{}: [{n}]", String::from_utf8_lossy(token));
                        return Err(TransformError::Destination { error: MappingError::IndexOutOfRange, token: shown });
                    }
                    // nats-server reads numbers below 1 as the first source token
                    let pos = usize::try_from(n - 1).ok().and_then(|i| positions.get(i)).copied().unwrap_or(0);
                    resolved.push(pos);
                }
            }
            let at = resolved.first().copied().unwrap_or(0);
            parts.push(match ph {
                Placeholder::Literal if *token == b">" => Part::Rest,
                Placeholder::Literal => Part::Literal(token.to_vec()),
                Placeholder::Wildcard(_) => Part::Wildcard(at),
                Placeholder::Partition { buckets, .. } => Part::Partition { buckets, tokens: resolved },
                Placeholder::SplitFromLeft(_, n) => Part::SplitFromLeft(at, n),
                Placeholder::SplitFromRight(_, n) => Part::SplitFromRight(at, n),
                Placeholder::SliceFromLeft(_, n) => Part::SliceFromLeft(at, n),
                Placeholder::SliceFromRight(_, n) => Part::SliceFromRight(at, n),
                Placeholder::Split(_, d) => Part::Split(at, d),
                Placeholder::Left(_, n) => Part::Left(at, n),
                Placeholder::Right(_, n) => Part::Right(at, n),
                Placeholder::Random(n) => Part::Random(n),
            });
        }
        Ok(Some(SubjectTransform { src: src.into(), dest: dest.into(), src_tokens: stoks.len(), parts }))
    }

    pub fn source(&self) -> &str {
        &self.src
    }

    pub fn destination(&self) -> &str {
        &self.dest
    }

    /// Does the destination call `random`? A caller without numbers to give can refuse it.
    pub fn uses_random(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Random(_)))
    }

    /// Maps a literal subject that the source matches; `None` when it does not match (or is
    /// not a valid literal subject). `random` draws a number for each `{{random(n)}}`.
    pub fn map(&self, subject: &[u8], random: &mut dyn FnMut() -> u32) -> Option<Vec<u8>> {
        if self.src == ">" && self.dest == ">" {
            return Some(subject.to_vec());
        }
        let tokens: Vec<&[u8]> = subject.split(|&b| b == b'.').collect();
        if tokens.iter().any(|t| t.is_empty() || *t == b"*" || *t == b">") {
            return None;
        }
        if self.src != ">" && !crate::subject::matches(self.src.as_bytes(), subject) {
            return None;
        }
        Some(self.apply(&tokens, random))
    }

    /// [`SubjectTransform::map`] for a destination without `random`.
    pub fn map_plain(&self, subject: &[u8]) -> Option<Vec<u8>> {
        self.map(subject, &mut || 0)
    }
}

/// nats-server's `ValidateMapping`: the destination's tokens are checked as subject tokens and
/// known functions before the transform is built (a stream's `subject_transform` goes through
/// this).
pub fn validate_mapping(src: &str, dest: &str) -> Result<(), TransformError> {
    if dest.is_empty() {
        return Ok(());
    }
    let mut after_fwc = false;
    for t in dest.as_bytes().split(|&b| b == b'.') {
        if t.is_empty() || after_fwc {
            return Err(dest_err(MappingError::InvalidTransform, t));
        }
        if t.len() > 4 && t.starts_with(b"{{") && t.ends_with(b"}}") {
            // nats-server 2.14's check predates `left` / `right`: a stream refuses them
            let unknown =
                matches!(parse::placeholder(t), Err(MappingError::UnknownFunction)) || parse::is_left_or_right(t);
            if unknown {
                return Err(dest_err(MappingError::UnknownFunction, t));
            }
            continue;
        }
        if t == b">" {
            after_fwc = true;
        } else if t.iter().any(|b| matches!(b, b'\t' | b'\n' | 0x0c | b'\r' | b' ')) {
            return Err(TransformError::Destination { error: MappingError::InvalidTransform, token: String::new() });
        }
    }
    SubjectTransform::new(src, dest).map(|_| ())
}
