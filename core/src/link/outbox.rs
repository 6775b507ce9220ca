//! The outbox: every publish on an exported subject, stamped with a `Nats-Msg-Id`, kept until
//! the server confirmed it.
//!
//! Confirmation is a `PING` after each batch: a server answers `PONG` only after it processed
//! every `PUB` before it. Entries sent but unconfirmed when the connection drops are sent
//! again on the next connection with the same id, so a stream on the server dedups them.
//! With durable storage, what [`Outbox::take_commit`] returns is written by the host; entries
//! confirmed before a commit started are never written at all.

use alloc::collections::VecDeque;
use alloc::format;
use alloc::vec::Vec;

use bytes::Bytes;

use crate::proto::Headers;

/// Unconfirmed outbox entries on the wire at most (then wait for a `PONG`).
pub const MAX_IN_FLIGHT: usize = 512;
/// Unconfirmed outbox bytes on the wire at most.
pub const MAX_IN_FLIGHT_BYTES: usize = 1 << 20;
/// The header that makes a server stream drop a resent message.
pub use crate::proto::MSG_ID;

/// Adds `Nats-Msg-Id: id` to a header block (or makes one); an id already there is kept, so
/// a publisher that chose its own id keeps the dedup it asked for.
pub fn stamp_msg_id(headers: Option<&[u8]>, id: &str) -> Bytes {
    let mut h = headers.and_then(|h| Headers::parse(h).ok()).unwrap_or_default();
    if h.get(MSG_ID).is_none() {
        h.append(MSG_ID, id);
    }
    h.to_bytes()
}

/// One kept publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub subject: Bytes,
    pub reply: Option<Bytes>,
    /// Always present: it carries the `Nats-Msg-Id`.
    pub headers: Bytes,
    pub payload: Bytes,
}

const NO_REPLY: u32 = u32::MAX;

impl Entry {
    pub fn size(&self) -> usize {
        self.subject.len() + self.reply.as_ref().map_or(0, Bytes::len) + self.headers.len() + self.payload.len()
    }

    /// The stored record: lengths (u32 LE) of subject, reply, headers, then the bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size() + 12);
        out.extend_from_slice(&(self.subject.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.reply.as_ref().map_or(NO_REPLY, |r| r.len() as u32).to_le_bytes());
        out.extend_from_slice(&(self.headers.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.subject);
        if let Some(r) = &self.reply {
            out.extend_from_slice(r);
        }
        out.extend_from_slice(&self.headers);
        out.extend_from_slice(&self.payload);
        out
    }

    /// A stored record back; `None` if it is cut short (storage is outside input).
    pub fn decode(seq: u64, data: &[u8]) -> Option<Entry> {
        let bytes = Bytes::copy_from_slice(data);
        let len = |at: usize| -> Option<u32> { Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?)) };
        let (slen, rlen, hlen) = (len(0)? as usize, len(4)?, len(8)? as usize);
        let mut at: usize = 12;
        let mut take = |n: usize| -> Option<Bytes> {
            let end = at.checked_add(n).filter(|e| *e <= bytes.len())?;
            let b = bytes.slice(at..end);
            at = end;
            Some(b)
        };
        let subject = take(slen)?;
        let reply = if rlen == NO_REPLY { None } else { Some(take(rlen as usize)?) };
        let headers = take(hlen)?;
        let payload = bytes.slice(at..);
        Some(Entry { seq, subject, reply, headers, payload })
    }
}

/// What one outbox commit writes: new entries, and the deletion of every stored entry up to
/// and including `delete_upto` (they were confirmed).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct OutboxCommit {
    pub puts: Vec<(u64, Vec<u8>)>,
    pub delete_upto: Option<u64>,
}

impl OutboxCommit {
    pub fn is_empty(&self) -> bool {
        self.puts.is_empty() && self.delete_upto.is_none()
    }
}

/// Publishes on exported subjects that the server has not confirmed yet, in order.
#[derive(Debug, Default)]
pub struct Outbox {
    entries: VecDeque<Entry>,
    next_seq: u64,
    /// Entries up to here were written to the current connection.
    sent_upto: u64,
    /// Entries up to here are (or are being) stored.
    persisted_upto: u64,
    /// Entries up to here were confirmed by the server.
    confirmed_upto: u64,
    /// Stored entries up to here were (or are being) deleted.
    deleted_upto: u64,
    /// Whether entries are kept in storage at all.
    durable: bool,
}

impl Outbox {
    /// An outbox holding `stored` (what storage had, in any order).
    pub fn new(durable: bool, mut stored: Vec<Entry>) -> Self {
        stored.sort_by_key(|e| e.seq);
        let last = stored.last().map_or(0, |e| e.seq);
        let first = stored.first().map_or(1, |e| e.seq).max(1);
        Outbox {
            entries: stored.into(),
            next_seq: last + 1,
            sent_upto: 0,
            persisted_upto: last,
            confirmed_upto: first - 1,
            deleted_upto: first - 1,
            durable,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keeps a publish; `id_prefix` + the sequence becomes its `Nats-Msg-Id` unless it has one.
    pub fn push(
        &mut self,
        id_prefix: &str,
        subject: Bytes,
        reply: Option<Bytes>,
        headers: Option<&[u8]>,
        payload: Bytes,
    ) {
        let seq = self.next_seq.max(1);
        self.next_seq = seq + 1;
        let headers = stamp_msg_id(headers, &format!("{id_prefix}{seq}"));
        self.entries.push_back(Entry { seq, subject, reply, headers, payload });
    }

    /// Every entry not confirmed yet, in order (a host taking over what its server would have
    /// received: a tab that becomes its bus's leader feeds them to its own engine).
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// A new connection: everything unconfirmed is sent again.
    pub fn rewind(&mut self) {
        self.sent_upto = self.confirmed_upto;
    }

    /// The next entries to write, within the in-flight limits; marks them sent.
    pub fn next_batch(&mut self) -> Vec<Entry> {
        let mut in_flight = 0;
        let mut bytes = 0;
        let mut batch = Vec::new();
        for e in &self.entries {
            if e.seq <= self.sent_upto {
                in_flight += 1;
                bytes += e.size();
                continue;
            }
            if in_flight >= MAX_IN_FLIGHT || (bytes >= MAX_IN_FLIGHT_BYTES && in_flight > 0) {
                break;
            }
            in_flight += 1;
            bytes += e.size();
            batch.push(e.clone());
        }
        if let Some(last) = batch.last() {
            self.sent_upto = last.seq;
        }
        batch
    }

    /// The highest sequence written to the current connection.
    pub fn sent_upto(&self) -> u64 {
        self.sent_upto
    }

    /// The server processed everything up to `seq`.
    pub fn confirm(&mut self, seq: u64) {
        while self.entries.front().is_some_and(|e| e.seq <= seq) {
            self.entries.pop_front();
        }
        self.confirmed_upto = self.confirmed_upto.max(seq);
    }

    /// What to write to storage now (entries confirmed before being stored are never written).
    pub fn take_commit(&mut self) -> OutboxCommit {
        let mut c = OutboxCommit::default();
        if !self.durable {
            return c;
        }
        if self.confirmed_upto > self.deleted_upto && self.deleted_upto < self.persisted_upto {
            c.delete_upto = Some(self.confirmed_upto.min(self.persisted_upto));
        }
        self.deleted_upto = self.deleted_upto.max(self.confirmed_upto);
        for e in self.entries.iter().filter(|e| e.seq > self.persisted_upto) {
            c.puts.push((e.seq, e.encode()));
        }
        if let Some(last) = self.entries.back() {
            self.persisted_upto = self.persisted_upto.max(last.seq);
        }
        self.persisted_upto = self.persisted_upto.max(self.confirmed_upto);
        c
    }

    /// Whether [`Outbox::take_commit`] has anything to write.
    pub fn commit_pending(&self) -> bool {
        self.durable
            && (self.entries.back().is_some_and(|e| e.seq > self.persisted_upto)
                || (self.confirmed_upto > self.deleted_upto && self.deleted_upto < self.persisted_upto))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use alloc::vec;

    #[test]
    fn msg_id_stamping_keeps_headers_and_existing_ids() {
        let h = stamp_msg_id(None, "a-1");
        assert_eq!(&h[..], b"NATS/1.0\r\nNats-Msg-Id: a-1\r\n\r\n");
        let h = stamp_msg_id(Some(b"NATS/1.0\r\nX: y\r\n\r\n"), "a-2");
        let parsed = Headers::parse(&h).unwrap();
        assert_eq!((parsed.get("X"), parsed.get(MSG_ID)), (Some("y"), Some("a-2")));
        let h = stamp_msg_id(Some(b"NATS/1.0\r\nNats-Msg-Id: mine\r\n\r\n"), "a-3");
        assert_eq!(Headers::parse(&h).unwrap().get_all(MSG_ID).collect::<Vec<_>>(), vec!["mine"]);
    }

    #[test]
    fn entry_roundtrip() {
        let e = Entry {
            seq: 9,
            subject: Bytes::from_static(b"orders.1"),
            reply: Some(Bytes::from_static(b"r.1")),
            headers: stamp_msg_id(None, "x-9"),
            payload: Bytes::from_static(b"hello"),
        };
        assert_eq!(Entry::decode(9, &e.encode()).unwrap(), e);
        let e2 = Entry { reply: None, payload: Bytes::new(), ..e };
        assert_eq!(Entry::decode(9, &e2.encode()).unwrap(), e2);
        assert!(Entry::decode(1, &e2.encode()[..10]).is_none());
        assert!(Entry::decode(1, &[0xff; 16]).is_none(), "lengths past the end");
    }

    #[test]
    fn reloaded_outbox_continues_its_sequence() {
        let stored: Vec<Entry> = [5u64, 4]
            .iter()
            .map(|s| Entry {
                seq: *s,
                subject: Bytes::from_static(b"orders.x"),
                reply: None,
                headers: stamp_msg_id(None, &format!("old-{s}")),
                payload: Bytes::new(),
            })
            .collect();
        let mut ob = Outbox::new(true, stored);
        assert!(!ob.commit_pending());
        ob.push("new-", Bytes::from_static(b"orders.y"), None, None, Bytes::new());
        let c = ob.take_commit();
        assert_eq!(c.puts.len(), 1);
        assert_eq!(c.puts[0].0, 6);
        let batch = ob.next_batch();
        assert_eq!(batch.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![4, 5, 6]);
        ob.confirm(6);
        assert_eq!(ob.take_commit().delete_upto, Some(6));
    }

    #[test]
    fn in_flight_is_bounded() {
        let mut ob = Outbox::new(false, Vec::new());
        for _ in 0..(MAX_IN_FLIGHT + 10) {
            ob.push("p-", Bytes::from_static(b"a"), None, None, Bytes::new());
        }
        assert_eq!(ob.next_batch().len(), MAX_IN_FLIGHT);
        assert!(ob.next_batch().is_empty());
        ob.confirm(100);
        assert_eq!(ob.next_batch().len(), 10);
        assert!(ob.take_commit().is_empty(), "a memory outbox stores nothing");
    }
}
