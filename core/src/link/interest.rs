//! The link's subscriptions on the other side: the configured imports (and the inbox), plus
//! subjects the local side asks for while the link lives ([`super::Link::want`]). A tab's
//! link to its bus's leader imports nothing by configuration and mirrors the tab's own
//! subscriptions instead, so what no subscriber of the tab wants never crosses to it.
//!
//! A server sends a message once per matching subscription of a connection; the link
//! publishes what it receives locally, where every matching local subscriber gets it once.
//! So of the copies one message arrives in, only the one for the matching subscription
//! with the lowest sid is kept ([`Subs::is_copy`]).

use alloc::string::String;
use alloc::vec::Vec;

use bytes::{Bytes, BytesMut};

use crate::proto::{write_sub, write_unsub};
use crate::subject::matches;

/// Sids of the configured subscriptions start at 1; those asked for later start here.
const FIRST_WANTED_SID: u64 = 1 << 32;

fn parse_sid(sid: &[u8]) -> Option<u64> {
    core::str::from_utf8(sid).ok()?.parse().ok()
}

/// One subscription on the wire.
struct Sub {
    sid: u64,
    subject: String,
    /// The local side's key for it (`None`: a configured one).
    key: Option<u64>,
}

/// The link's subscriptions on the other side.
pub(super) struct Subs {
    subs: Vec<Sub>,
    next_sid: u64,
    /// Whether any subscription was asked for later: only then can two of the link's own
    /// subscriptions overlap in a way the configuration did not choose.
    wanted: bool,
}

impl Subs {
    pub(super) fn new(configured: impl Iterator<Item = String>) -> Self {
        let subs: Vec<Sub> =
            configured.enumerate().map(|(i, subject)| Sub { sid: i as u64 + 1, subject, key: None }).collect();
        Subs { subs, next_sid: FIRST_WANTED_SID, wanted: false }
    }

    /// Writes a `SUB` for every subscription (a new connection's handshake).
    pub(super) fn write_all(&self, out: &mut BytesMut) {
        for s in &self.subs {
            let mut b = itoa::Buffer::new();
            write_sub(out, s.subject.as_bytes(), None, b.format(s.sid).as_bytes());
        }
    }

    /// Adds subscription `key` on `subject`; writes its `SUB` when `live`.
    pub(super) fn add(&mut self, key: u64, subject: &str, live: Option<&mut BytesMut>) {
        let sid = self.next_sid;
        self.next_sid += 1;
        self.wanted = true;
        if let Some(out) = live {
            let mut b = itoa::Buffer::new();
            write_sub(out, subject.as_bytes(), None, b.format(sid).as_bytes());
        }
        self.subs.push(Sub { sid, subject: subject.into(), key: Some(key) });
    }

    /// Removes subscription `key`; writes its `UNSUB` when `live`.
    pub(super) fn remove(&mut self, key: u64, live: Option<&mut BytesMut>) {
        let Some(at) = self.subs.iter().position(|s| s.key == Some(key)) else { return };
        let sub = self.subs.remove(at);
        if let Some(out) = live {
            let mut b = itoa::Buffer::new();
            write_unsub(out, b.format(sub.sid).as_bytes(), None);
        }
    }

    /// The subject to route a message that came for subscription `sid` on locally, when it
    /// is not the message's own: the subscription's, if literal (see [`super::Msg::route`]).
    pub(super) fn route(&self, sid: &[u8], subject: &[u8]) -> Option<Bytes> {
        let sid = parse_sid(sid)?;
        let sub = self.subs.iter().find(|s| s.sid == sid)?;
        let literal = !sub.subject.split('.').any(|t| t == "*" || t == ">");
        (literal && sub.subject.as_bytes() != subject).then(|| Bytes::copy_from_slice(sub.subject.as_bytes()))
    }

    /// Whether a message on `subject` that came for subscription `sid` is a second copy: a
    /// subscription of the link with a lower sid matches the subject too, and its copy is
    /// the one published locally.
    pub(super) fn is_copy(&self, sid: &[u8], subject: &[u8]) -> bool {
        if !self.wanted {
            return false;
        }
        let Some(sid) = parse_sid(sid) else { return false };
        self.subs.iter().any(|s| s.sid < sid && matches(s.subject.as_bytes(), subject))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use alloc::vec;

    #[test]
    fn wanted_subscriptions_and_copies() {
        let mut subs = Subs::new(vec![String::from("_INBOX.t.>")].into_iter());
        let mut out = BytesMut::new();
        subs.write_all(&mut out);
        assert_eq!(&out[..], b"SUB _INBOX.t.> 1\r\n");
        assert!(!subs.is_copy(b"1", b"_INBOX.t.1"));
        out.clear();
        subs.add(7, "a.>", Some(&mut out));
        subs.add(8, "a.b", None);
        assert_eq!(&out[..], b"SUB a.> 4294967296\r\n");
        // a.b matches both: the copy for a.> (the lower sid) is kept
        assert!(!subs.is_copy(b"4294967296", b"a.b"));
        assert!(subs.is_copy(b"4294967297", b"a.b"));
        assert!(!subs.is_copy(b"4294967296", b"a.c"));
        // a delivery under another subject than its subscription's routes on the latter
        assert_eq!(subs.route(b"4294967297", b"s.1"), Some(Bytes::from_static(b"a.b")));
        assert_eq!(subs.route(b"4294967297", b"a.b"), None);
        assert_eq!(subs.route(b"4294967296", b"s.1"), None, "a wildcard subscription");
        out.clear();
        subs.remove(7, Some(&mut out));
        assert_eq!(&out[..], b"UNSUB 4294967296\r\n");
        assert!(!subs.is_copy(b"4294967297", b"a.b"));
        out.clear();
        subs.write_all(&mut out);
        assert_eq!(&out[..], b"SUB _INBOX.t.> 1\r\nSUB a.b 4294967297\r\n");
    }
}
