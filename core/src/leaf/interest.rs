//! Interest across a leaf link, both ways: what we announce to the peer ([`Local`]) and what
//! the peer announced to us ([`Remote`]).
//!
//! Announcing follows nats-server (`updateSmap`): plain interest is counted per subject and
//! only its 0→1 and 1→0 edges cross (`LS+` / `LS-`); a queue group's interest is re-announced
//! with its new total weight on every change, so the peer can weigh the members behind us.

use alloc::vec::Vec;
use bytes::Bytes;
use hashbrown::HashMap;

/// One line to send: `LS+` (with `(queue, weight)` for a group) or `LS-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Add { subject: Bytes, queue: Option<(Bytes, u32)> },
    Remove { subject: Bytes, queue: Option<Bytes> },
}

type Key = (Bytes, Option<Bytes>);

/// The interest we announce on one link, counted per subject (and queue group).
#[derive(Debug, Default)]
pub struct Local {
    counts: HashMap<Key, u32>,
}

impl Local {
    /// One more local subscription; the line to send, if any.
    pub fn add(&mut self, subject: &[u8], queue: Option<&[u8]>) -> Option<Change> {
        let key = (Bytes::copy_from_slice(subject), queue.map(Bytes::copy_from_slice));
        let n = self.counts.entry(key.clone()).or_insert(0);
        *n += 1;
        match key.1 {
            Some(q) => Some(Change::Add { subject: key.0, queue: Some((q, *n)) }),
            None if *n == 1 => Some(Change::Add { subject: key.0, queue: None }),
            None => None,
        }
    }

    /// One local subscription fewer; the line to send, if any. A removal of something never
    /// added sends nothing.
    pub fn remove(&mut self, subject: &[u8], queue: Option<&[u8]>) -> Option<Change> {
        let key = (Bytes::copy_from_slice(subject), queue.map(Bytes::copy_from_slice));
        let n = self.counts.get_mut(&key)?;
        *n -= 1;
        let left = *n;
        if left == 0 {
            self.counts.remove(&key);
            return Some(Change::Remove { subject: key.0, queue: key.1 });
        }
        key.1.map(|q| Change::Add { subject: key.0, queue: Some((q, left)) })
    }

    /// Everything currently announced, as the `LS+` lines a fresh connection gets.
    pub fn snapshot(&self) -> Vec<Change> {
        let mut all: Vec<Change> = self
            .counts
            .iter()
            .map(|((s, q), n)| Change::Add { subject: s.clone(), queue: q.clone().map(|q| (q, *n)) })
            .collect();
        all.sort_by(|a, b| match (a, b) {
            (Change::Add { subject: x, queue: qx }, Change::Add { subject: y, queue: qy }) => {
                (x, qx.as_ref().map(|q| &q.0)).cmp(&(y, qy.as_ref().map(|q| &q.0)))
            }
            _ => core::cmp::Ordering::Equal,
        });
        all
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

/// What the peer's `LS+` / `LS-` did to its subscriptions here (one per subject or subject
/// and queue; the weight is not part of the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteChange {
    /// A new subscription to register.
    New,
    /// A queue group's weight changed; the subscription stays.
    Weight(u32),
    /// A subscription to drop.
    Gone,
    /// Nothing changes (a repeated plain `LS+`, an `LS-` for something never announced).
    Same,
}

/// The peer's announced interest, keyed as nats-server keys it.
#[derive(Debug, Default)]
pub struct Remote {
    subs: HashMap<Key, u32>,
}

impl Remote {
    pub fn add(&mut self, subject: &Bytes, queue: Option<(&Bytes, u32)>) -> RemoteChange {
        let key = (subject.clone(), queue.map(|q| q.0.clone()));
        let weight = queue.map_or(1, |q| q.1.max(1));
        match self.subs.insert(key, weight) {
            None => RemoteChange::New,
            Some(w) if w != weight => RemoteChange::Weight(weight),
            Some(_) => RemoteChange::Same,
        }
    }

    pub fn remove(&mut self, subject: &Bytes, queue: Option<&Bytes>) -> RemoteChange {
        let key = (subject.clone(), queue.cloned());
        match self.subs.remove(&key) {
            Some(_) => RemoteChange::Gone,
            None => RemoteChange::Same,
        }
    }

    /// The weight of a queue group's subscription (members behind the peer).
    pub fn weight(&self, subject: &Bytes, queue: &Bytes) -> u32 {
        self.subs.get(&(subject.clone(), Some(queue.clone()))).copied().unwrap_or(0)
    }

    pub fn len(&self) -> usize {
        self.subs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    /// Forgets everything (the connection ended): the keys that were registered.
    pub fn clear(&mut self) -> Vec<(Bytes, Option<Bytes>)> {
        self.subs.drain().map(|(k, _)| k).collect()
    }
}
