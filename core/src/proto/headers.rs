//! NATS header blocks (ADR-4): `NATS/1.0[ <status>[ <description>]]\r\n`, then `Name: value`
//! lines, then a blank line. Status and description live on the version line and are not
//! headers, which is why they are fields here rather than entries.

use alloc::string::String;
use alloc::vec::Vec;
use bytes::{BufMut, BytesMut};
use core::fmt;

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
        for line in lines {
            if line.is_empty() {
                continue;
            }
            let line = core::str::from_utf8(line).map_err(|_| HeaderError::BadLine)?;
            let (n, v) = line.split_once(':').ok_or(HeaderError::BadLine)?;
            h.entries.push((n.trim().into(), v.trim().into()));
        }
        Ok(h)
    }
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
}
