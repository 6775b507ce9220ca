//! Building the destination subject from a matched subject's tokens, function by function,
//! with nats-server's results for edge cases (a position or size out of range leaves the
//! token whole).

use alloc::vec::Vec;

use super::{Part, SubjectTransform};

/// 32-bit FNV-1a, the hash nats-server's `partition` uses.
pub(super) fn fnv1a(key: &[u8]) -> u32 {
    key.iter().fold(0x811c_9dc5u32, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

fn push_num(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(alloc::format!("{n}").as_bytes());
}

/// A size argument that applies to a token of `len` bytes: above zero and below the length.
fn inside(n: i32, len: usize) -> Option<usize> {
    usize::try_from(n).ok().filter(|&n| n > 0 && n < len)
}

impl SubjectTransform {
    pub(super) fn apply(&self, tokens: &[&[u8]], random: &mut dyn FnMut() -> u32) -> Vec<u8> {
        let mut out = Vec::new();
        let tok = |i: usize| tokens.get(i).copied().unwrap_or(b"");
        let last = self.parts.len().saturating_sub(1);
        for (i, part) in self.parts.iter().enumerate() {
            match part {
                Part::Rest => break,
                Part::Literal(l) => out.extend_from_slice(l),
                Part::Wildcard(at) => out.extend_from_slice(tok(*at)),
                Part::Partition { buckets, tokens: from } => {
                    let key: Vec<u8> = if from.is_empty() {
                        tokens.join(&b'.')
                    } else {
                        from.iter().flat_map(|&t| tok(t).iter().copied()).collect()
                    };
                    // nats-server divides by the count as an unsigned 32-bit number
                    let n = *buckets as u32;
                    push_num(&mut out, if n == 0 { 0 } else { fnv1a(&key) % n });
                }
                Part::SplitFromLeft(at, pos) => {
                    let t = tok(*at);
                    match inside(*pos, t.len()) {
                        Some(p) => split_at(&mut out, t, p),
                        None => out.extend_from_slice(t),
                    }
                }
                Part::SplitFromRight(at, pos) => {
                    let t = tok(*at);
                    match inside(*pos, t.len()) {
                        Some(p) => split_at(&mut out, t, t.len() - p),
                        None => out.extend_from_slice(t),
                    }
                }
                Part::SliceFromLeft(at, size) => {
                    let t = tok(*at);
                    match inside(*size, t.len()) {
                        Some(s) => join_chunks(&mut out, t.chunks(s)),
                        None => out.extend_from_slice(t),
                    }
                }
                Part::SliceFromRight(at, size) => {
                    let t = tok(*at);
                    match inside(*size, t.len()) {
                        Some(s) => {
                            let head = t.len() % s;
                            let chunks = (head > 0).then(|| &t[..head]).into_iter().chain(t[head..].chunks(s));
                            join_chunks(&mut out, chunks);
                        }
                        None => out.extend_from_slice(t),
                    }
                }
                Part::Split(at, delim) => split_on(&mut out, tok(*at), delim),
                Part::Left(at, size) => {
                    let t = tok(*at);
                    out.extend_from_slice(inside(*size, t.len()).map_or(t, |s| &t[..s]));
                }
                Part::Right(at, size) => {
                    let t = tok(*at);
                    out.extend_from_slice(inside(*size, t.len()).map_or(t, |s| &t[t.len() - s..]));
                }
                Part::Random(n) => {
                    // Go's rand.Int31() is non-negative: keep 31 bits
                    let draw = i64::from(random() & 0x7fff_ffff);
                    let r = if *n == 0 { 0 } else { draw % i64::from(*n) };
                    out.extend_from_slice(alloc::format!("{r}").as_bytes());
                }
            }
            if i < last {
                out.push(b'.');
            }
        }
        if matches!(self.parts.last(), Some(Part::Rest)) {
            let from = self.src_tokens.saturating_sub(1);
            out.extend_from_slice(&tokens.get(from..).unwrap_or_default().join(&b'.'));
        }
        out
    }
}

fn split_at(out: &mut Vec<u8>, t: &[u8], p: usize) {
    out.extend_from_slice(&t[..p]);
    out.push(b'.');
    out.extend_from_slice(&t[p..]);
}

fn join_chunks<'a>(out: &mut Vec<u8>, chunks: impl Iterator<Item = &'a [u8]>) {
    for (i, c) in chunks.enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        out.extend_from_slice(c);
    }
}

/// `split`: the pieces between delimiters become tokens; empty pieces vanish.
fn split_on(out: &mut Vec<u8>, t: &[u8], delim: &[u8]) {
    let pieces: Vec<&[u8]> = if delim.is_empty() {
        // Go splits at every UTF-8 sequence when the separator is empty
        match core::str::from_utf8(t) {
            Ok(s) => s.char_indices().map(|(i, c)| &t[i..i + c.len_utf8()]).collect(),
            Err(_) => t.chunks(1).collect(),
        }
    } else {
        let mut v = Vec::new();
        let mut rest = t;
        while let Some(p) = rest.windows(delim.len()).position(|w| w == delim) {
            v.push(&rest[..p]);
            rest = &rest[p + delim.len()..];
        }
        v.push(rest);
        v
    };
    for (j, piece) in pieces.iter().enumerate() {
        out.extend_from_slice(piece);
        let next_nonempty = pieces.get(j + 1).is_some_and(|n| !n.is_empty());
        if next_nonempty && !(j == 0 && piece.is_empty()) {
            out.push(b'.');
        }
    }
}
