//! Subject and queue-group rules, as nats-server applies them.
//!
//! Subjects are byte strings, never required to be UTF-8: nats-server treats them as bytes and
//! clients put UTF-8 in them freely, so validating encodings would only cost time. Tokens are
//! separated by `.`; `*` matches exactly one token and `>` one or more trailing tokens, and each
//! is a wildcard only when it is the whole token (`foo*` is a literal token).

use core::fmt;

/// Why a subject was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubjectError {
    /// The subject is empty.
    Empty,
    /// Two dots in a row, or a leading or trailing dot.
    EmptyToken,
    /// A space, tab, CR, LF or form feed inside a token.
    Whitespace,
    /// `>` stands somewhere other than the last token.
    FullWildcardNotLast,
    /// A wildcard where only literal subjects are allowed (publishing).
    Wildcard,
}

impl fmt::Display for SubjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SubjectError::Empty => "subject is empty",
            SubjectError::EmptyToken => "subject has an empty token",
            SubjectError::Whitespace => "subject contains whitespace",
            SubjectError::FullWildcardNotLast => "'>' must be the last token",
            SubjectError::Wildcard => "subject contains a wildcard",
        })
    }
}

/// The separator between tokens.
pub const SEP: u8 = b'.';
/// The single-token wildcard.
pub const PWC: u8 = b'*';
/// The trailing multi-token wildcard.
pub const FWC: u8 = b'>';

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0x0c)
}

/// Iterates the tokens of a subject (without validating it).
pub fn tokens(subject: &[u8]) -> impl Iterator<Item = &[u8]> {
    subject.split(|b| *b == SEP)
}

/// Checks a subscription subject: wildcards allowed, `>` only last.
pub fn validate_subscribe(subject: &[u8]) -> Result<(), SubjectError> {
    if subject.is_empty() {
        return Err(SubjectError::Empty);
    }
    let mut seen_fwc = false;
    for tok in tokens(subject) {
        if tok.is_empty() {
            return Err(SubjectError::EmptyToken);
        }
        if seen_fwc {
            return Err(SubjectError::FullWildcardNotLast);
        }
        if tok.iter().any(|b| is_space(*b)) {
            return Err(SubjectError::Whitespace);
        }
        if tok == [FWC] {
            seen_fwc = true;
        }
    }
    Ok(())
}

/// Checks a publish subject: a valid subject with no wildcard tokens.
pub fn validate_publish(subject: &[u8]) -> Result<(), SubjectError> {
    validate_subscribe(subject)?;
    if has_wildcard(subject) {
        return Err(SubjectError::Wildcard);
    }
    Ok(())
}

/// True when some token is exactly `*` or `>`.
pub fn has_wildcard(subject: &[u8]) -> bool {
    tokens(subject).any(|t| t == [PWC] || t == [FWC])
}

/// Checks a queue-group name: non-empty and free of whitespace (dots and wildcard characters
/// are accepted, as nats-server accepts them).
pub fn validate_queue(queue: &[u8]) -> Result<(), SubjectError> {
    if queue.is_empty() {
        return Err(SubjectError::Empty);
    }
    if queue.iter().any(|b| is_space(*b)) {
        return Err(SubjectError::Whitespace);
    }
    Ok(())
}

/// Does `pattern` (possibly with wildcards) match the published `subject`?
///
/// This is the plain, allocation-free reference matcher: the sublist is checked against it,
/// and stream/consumer filters use it where a trie would be overkill. A subject with an empty
/// token matches nothing, as in nats-server.
pub fn matches(pattern: &[u8], subject: &[u8]) -> bool {
    if subject.is_empty() || tokens(subject).any(|t| t.is_empty()) {
        return false;
    }
    let mut pt = tokens(pattern);
    let mut st = tokens(subject);
    loop {
        match (pt.next(), st.next()) {
            (None, None) => return true,
            (Some(p), Some(_)) if p == [FWC] => return true,
            (Some(p), Some(s)) => {
                if p != [PWC] && p != s {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// Is every subject matched by `narrow` also matched by `wide`? Used to reject overlapping
/// stream subjects and to check consumer filters against a stream.
pub fn is_subset(narrow: &[u8], wide: &[u8]) -> bool {
    let mut nt = tokens(narrow);
    let mut wt = tokens(wide);
    loop {
        match (nt.next(), wt.next()) {
            (None, None) => return true,
            // `>` stands for one or more tokens: `a` is not in `a.>`
            (Some(_), Some(w)) if w == [FWC] => return true,
            (Some(n), Some(w)) => {
                if n == [FWC] {
                    return false;
                }
                if w == [PWC] {
                    continue;
                }
                if n == [PWC] || n != w {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// Could some subject be matched by both patterns?
pub fn overlaps(a: &[u8], b: &[u8]) -> bool {
    let mut at = tokens(a);
    let mut bt = tokens(b);
    loop {
        match (at.next(), bt.next()) {
            (None, None) => return true,
            // `>` stands for one or more tokens: `a` and `a.>` share nothing
            (Some(x), Some(y)) if x == [FWC] || y == [FWC] => return true,
            (Some(x), Some(y)) => {
                if x != [PWC] && y != [PWC] && x != y {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_rules() {
        for ok in [&b"foo"[..], b"foo.bar", b"foo.*", b"*", b">", b"foo.>", b"foo*.bar", b"h\xc3\xa9llo", b"*.*.>"] {
            assert_eq!(validate_subscribe(ok), Ok(()), "{:?}", ok);
        }
        assert_eq!(validate_subscribe(b""), Err(SubjectError::Empty));
        for bad in [&b"foo..bar"[..], b".foo", b"foo.", b"."] {
            assert_eq!(validate_subscribe(bad), Err(SubjectError::EmptyToken));
        }
        assert_eq!(validate_subscribe(b"foo.>.bar"), Err(SubjectError::FullWildcardNotLast));
        assert_eq!(validate_subscribe(b"foo bar"), Err(SubjectError::Whitespace));
    }

    #[test]
    fn publish_rules() {
        assert_eq!(validate_publish(b"foo.bar"), Ok(()));
        assert_eq!(validate_publish(b"foo.*"), Err(SubjectError::Wildcard));
        assert_eq!(validate_publish(b"foo.>"), Err(SubjectError::Wildcard));
        assert_eq!(validate_publish(b"foo*"), Ok(()));
    }

    #[test]
    fn matching() {
        assert!(matches(b"a.*", b"a.b"));
        assert!(!matches(b"a.*", b"a.b.c"));
        assert!(!matches(b"a.*", b"a"));
        assert!(matches(b"a.>", b"a.b.c"));
        assert!(!matches(b"a.>", b"a"));
        assert!(matches(b">", b"a"));
        assert!(!matches(b">", b"a..b"));
        assert!(matches(b"a.*", b"a.*"));
        assert!(!matches(b"a.b", b"a.*"));
        assert!(matches(b"*.end", b"x.end"));
    }

    #[test]
    fn subsets_and_overlaps() {
        assert!(is_subset(b"a.b", b"a.*"));
        assert!(is_subset(b"a.*", b"a.>"));
        assert!(!is_subset(b"a.>", b"a.*"));
        assert!(is_subset(b"a.>", b">"));
        assert!(overlaps(b"a.*", b"*.b"));
        assert!(!overlaps(b"a.b", b"a.c"));
        assert!(overlaps(b"a.>", b"a.b.c"));
        assert!(!overlaps(b"a.*", b"a.b.c"));
        assert!(!overlaps(b"hello", b"hello.>"));
        assert!(!overlaps(b"hello.>", b"hello"));
        assert!(overlaps(b">", b"hello"));
        assert!(!is_subset(b"a", b"a.>"));
        assert!(is_subset(b"a.b", b"a.>"));
    }
}
