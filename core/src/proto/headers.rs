//! NATS header blocks (ADR-4): `NATS/1.0[ <status>[ <description>]]\r\n`, then `Name: value`
//! lines, then a blank line. Status and description live on the version line and are not
//! headers, which is why they are fields here rather than entries.
//!
//! One reading of the lines serves both ways in: [`fields`] walks a raw block as slices of
//! it, which [`header_value`] uses for the lookups on the publish and store paths (no
//! allocation per lookup), and [`Headers::parse`] uses to build an owned, editable block. So a
//! name, a value and a malformed line mean the same to the stream that indexes a message and
//! to the API that returns it.

use alloc::string::String;
use alloc::vec::Vec;
use bytes::{BufMut, BytesMut};
use core::fmt;

/// Header a publisher sets to have a stream drop a repeat of the message (dedup window): set
/// by stream publishers and by the link's outbox, read by streams.
pub const MSG_ID: &str = "Nats-Msg-Id";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    pub status: Option<u16>,
    pub description: Option<String>,
    /// In order, names case-preserved, repeats allowed.
    pub entries: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderError {
    /// The block does not start with `NATS/1.0`.
    NotNats,
    /// A status code that is not three digits.
    BadStatus,
    /// A header line without a `:` or not UTF-8.
    BadLine,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HeaderError::NotNats => "header block does not start with NATS/1.0",
            HeaderError::BadStatus => "invalid status code",
            HeaderError::BadLine => "invalid header line",
        })
    }
}

const VERSION: &[u8] = b"NATS/1.0";

impl Headers {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_status(status: u16, description: Option<&str>) -> Self {
        Headers { status: Some(status), description: description.map(String::from), entries: Vec::new() }
    }

    /// A block of `pairs` in order (repeats kept), as a client's plain publish carries its
    /// headers.
    pub fn from_pairs(pairs: &[(String, String)]) -> Self {
        let mut h = Headers::new();
        for (k, v) in pairs {
            h.append(k, v);
        }
        h
    }

    /// The encoded block, or `None` when there is nothing to send (no status, no entries).
    pub fn to_block(&self) -> Option<bytes::Bytes> {
        (self.status.is_some() || !self.entries.is_empty()).then(|| self.to_bytes())
    }

    /// Appends a header (repeats allowed).
    pub fn append(&mut self, name: &str, value: &str) -> &mut Self {
        self.entries.push((name.into(), value.into()));
        self
    }

    /// Replaces every value of `name` with one.
    pub fn insert(&mut self, name: &str, value: &str) -> &mut Self {
        self.entries.retain(|(n, _)| n != name);
        self.append(name, value)
    }

    /// The first value of `name` (exact, case-sensitive match, as nats-server looks headers up).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn remove(&mut self, name: &str) {
        self.entries.retain(|(n, _)| n != name);
    }

    /// Writes the block, including the terminating blank line.
    pub fn encode(&self, out: &mut BytesMut) {
        out.put_slice(VERSION);
        if let Some(s) = self.status {
            let mut b = itoa::Buffer::new();
            out.put_u8(b' ');
            out.put_slice(b.format(s).as_bytes());
            if let Some(d) = &self.description {
                out.put_u8(b' ');
                out.put_slice(d.as_bytes());
            }
        }
        out.put_slice(b"\r\n");
        for (n, v) in &self.entries {
            out.put_slice(n.as_bytes());
            out.put_slice(b": ");
            out.put_slice(v.as_bytes());
            out.put_slice(b"\r\n");
        }
        out.put_slice(b"\r\n");
    }

    pub fn to_bytes(&self) -> bytes::Bytes {
        let mut b = BytesMut::new();
        self.encode(&mut b);
        b.freeze()
    }

    /// Parses a header block (with or without its trailing blank line).
    pub fn parse(block: &[u8]) -> Result<Headers, HeaderError> {
        let mut lines = block.split(|b| *b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        let first = lines.next().ok_or(HeaderError::NotNats)?;
        let rest = first.strip_prefix(VERSION).ok_or(HeaderError::NotNats)?;
        let mut h = Headers::new();
        let rest = core::str::from_utf8(rest).map_err(|_| HeaderError::BadLine)?.trim();
        if !rest.is_empty() {
            let (code, desc) = match rest.split_once(' ') {
                Some((c, d)) => (c, Some(d.trim())),
                None => (rest, None),
            };
            if code.len() != 3 {
                return Err(HeaderError::BadStatus);
            }
            h.status = Some(code.parse().map_err(|_| HeaderError::BadStatus)?);
            h.description = desc.filter(|d| !d.is_empty()).map(String::from);
        }
        for field in fields(block) {
            let (n, v) = field?;
            let text = |b| core::str::from_utf8(b).map_err(|_| HeaderError::BadLine);
            h.entries.push((text(n)?.into(), text(v)?.into()));
        }
        Ok(h)
    }
}

/// The `Name: value` lines of a raw block after its version line, as slices of it. A name
/// is every byte before the first `:` (as nats-server matches it: no trimming, case kept);
/// a value is the rest with surrounding ASCII whitespace dropped. Blank lines are skipped; a
/// line without a colon is a [`HeaderError::BadLine`], and the walk goes on after it.
pub fn fields(block: &[u8]) -> Fields<'_> {
    let mut f = Fields { rest: block };
    f.next_line();
    f
}

/// The iterator [`fields`] returns.
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    /// Takes the next line off `rest`, without its `\r\n` (or bare `\n`).
    fn next_line(&mut self) -> &'a [u8] {
        let (line, rest) = match self.rest.iter().position(|b| *b == b'\n') {
            Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
            None => (self.rest, &[][..]),
        };
        self.rest = rest;
        line.strip_suffix(b"\r").unwrap_or(line)
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(&'a [u8], &'a [u8]), HeaderError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.rest.is_empty() {
            let line = self.next_line();
            if line.is_empty() {
                continue;
            }
            return Some(match line.iter().position(|b| *b == b':') {
                Some(colon) => Ok((&line[..colon], line[colon + 1..].trim_ascii())),
                None => Err(HeaderError::BadLine),
            });
        }
        None
    }
}

/// The first value of header `name` in a raw block (exact, case-sensitive name, as
/// nats-server looks headers up), without allocating; malformed lines are passed over.
pub fn header_value<'a>(block: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    fields(block).flatten().find(|(n, _)| *n == name).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip_and_status() {
        let mut h = Headers::with_status(503, None);
        h.append("Nats-Subject", "nobody.home");
        assert_eq!(&h.to_bytes()[..], b"NATS/1.0 503\r\nNats-Subject: nobody.home\r\n\r\n");
        assert_eq!(Headers::parse(&h.to_bytes()).unwrap(), h);
        let p = Headers::parse(b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 10\r\n\r\n").unwrap();
        assert_eq!((p.status, p.description.as_deref()), (Some(408), Some("Request Timeout")));
        assert_eq!(p.get("Nats-Pending-Messages"), Some("10"));
        assert_eq!(Headers::parse(b"HTTP/1.1\r\n"), Err(HeaderError::NotNats));
        assert_eq!(Headers::parse(b"NATS/1.0 5\r\n"), Err(HeaderError::BadStatus));
    }

    #[test]
    fn one_reading_for_lookups_and_parsing() {
        let block: &[u8] = b"NATS/1.0\r\nNats-Msg-Id:  abc \r\nX: y\r\nX:z\r\nEmpty:\r\n\r\n";
        assert_eq!(header_value(block, b"Nats-Msg-Id"), Some(&b"abc"[..]));
        assert_eq!(header_value(block, b"nats-msg-id"), None, "names are case-sensitive");
        assert_eq!(header_value(block, b"X"), Some(&b"y"[..]), "the first of repeats");
        assert_eq!(header_value(block, b"Empty"), Some(&b""[..]));
        assert_eq!(header_value(block, b"Missing"), None);
        let parsed = Headers::parse(block).unwrap();
        let owned: Vec<(&str, &str)> = parsed.entries.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        assert_eq!(owned, [("Nats-Msg-Id", "abc"), ("X", "y"), ("X", "z"), ("Empty", "")]);
        for (i, f) in fields(block).enumerate() {
            let (n, v) = f.unwrap();
            assert_eq!((n, v), (owned[i].0.as_bytes(), owned[i].1.as_bytes()));
        }

        // A bare `\n` ends a line too; the version line is never a header, even with a colon.
        let lf: &[u8] = b"NATS/1.0 408 Request: Timeout\nA: 1\n\n";
        assert_eq!(header_value(lf, b"A"), Some(&b"1"[..]));
        assert_eq!(header_value(lf, b"NATS/1.0 408 Request"), None);

        // A line without a colon: lookups pass over it, parsing refuses the block.
        let bad: &[u8] = b"NATS/1.0\r\nnot a header\r\nB: 2\r\n\r\n";
        assert_eq!(header_value(bad, b"B"), Some(&b"2"[..]));
        assert_eq!(Headers::parse(bad), Err(HeaderError::BadLine));
        assert_eq!(fields(bad).next(), Some(Err(HeaderError::BadLine)));

        // A name is what precedes the colon, as nats-server matches it.
        let spaced: &[u8] = b"NATS/1.0\r\nA : 1\r\n\r\n";
        assert_eq!(header_value(spaced, b"A"), None);
        assert_eq!(header_value(spaced, b"A "), Some(&b"1"[..]));
        assert!(fields(b"").next().is_none());
        assert!(fields(b"NATS/1.0").next().is_none());
    }
}
