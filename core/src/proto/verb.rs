//! Recognising an operation's verb byte by byte, as nats-server's state machine does.
//!
//! nats-server decides on the verb one byte at a time: `PUBX` is refused at the `X`, before
//! any newline, so a client that sends a megabyte of garbage (or one byte every 100 ms) is
//! answered at its first impossible byte instead of when a line ends. The same rule decides
//! where an operation's argument starts and whether it may be attached to the verb.

/// How a verb's control line continues after the verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `PING`, `PONG`, `+OK`: whatever follows, up to the newline, is ignored.
    Bare,
    /// `PUB`, `SUB`, `-ERR`, …: a space or a tab must follow the verb.
    Spaced,
    /// `CONNECT`, `INFO`: the argument may follow the verb directly.
    Attached,
}

/// The verbs one direction of the protocol knows, in the order a role indexes them.
pub type Verbs = [(&'static [u8], Shape)];

/// What the bytes at the start of an operation say so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scan {
    /// Every byte so far starts some verb; more are needed to tell.
    Need,
    /// No verb starts with these bytes: nats-server's `Unknown Protocol Operation`.
    Bad,
    /// Verb `index` of the table, `len` bytes long.
    Verb { index: usize, len: usize, shape: Shape },
}

/// The longest prefix [`scan`] needs to decide: the longest verb and the byte after it.
pub(super) const WINDOW: usize = 8;

/// Matches the start of an operation (at most [`WINDOW`] bytes are read) against `verbs`.
pub(super) fn scan(verbs: &Verbs, b: &[u8]) -> Scan {
    let b = &b[..b.len().min(WINDOW)];
    let mut possible = false;
    for (index, &(verb, shape)) in verbs.iter().enumerate() {
        let n = b.len().min(verb.len());
        if !b[..n].eq_ignore_ascii_case(&verb[..n]) {
            continue;
        }
        if b.len() <= verb.len() && (b.len() < verb.len() || shape == Shape::Spaced) {
            possible = true;
            continue;
        }
        match shape {
            Shape::Bare | Shape::Attached => return Scan::Verb { index, len: verb.len(), shape },
            Shape::Spaced if is_space(b[verb.len()]) => return Scan::Verb { index, len: verb.len(), shape },
            Shape::Spaced => {}
        }
    }
    if possible {
        Scan::Need
    } else {
        Scan::Bad
    }
}

/// The separators nats-server accepts between a verb and its arguments.
pub(super) fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: &Verbs =
        &[(b"PUB", Shape::Spaced), (b"PING", Shape::Bare), (b"CONNECT", Shape::Attached), (b"+OK", Shape::Bare)];

    #[test]
    fn decides_at_the_first_impossible_byte() {
        assert_eq!(scan(V, b""), Scan::Need);
        assert_eq!(scan(V, b"p"), Scan::Need);
        assert_eq!(scan(V, b"PUB"), Scan::Need);
        assert_eq!(scan(V, b"PUBX"), Scan::Bad);
        assert_eq!(scan(V, b"PUB\r\n"), Scan::Bad);
        assert_eq!(scan(V, b"pub\tx"), Scan::Verb { index: 0, len: 3, shape: Shape::Spaced });
        assert_eq!(scan(V, b"PINGxyz"), Scan::Verb { index: 1, len: 4, shape: Shape::Bare });
        assert_eq!(scan(V, b"CONNECT{}"), Scan::Verb { index: 2, len: 7, shape: Shape::Attached });
        assert_eq!(scan(V, b"+O"), Scan::Need);
        assert_eq!(scan(V, b"X"), Scan::Bad);
        assert_eq!(scan(V, b" PING"), Scan::Bad);
        assert_eq!(scan(V, b"\r\n"), Scan::Bad);
    }
}
