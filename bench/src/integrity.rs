//! What arrived must be exactly what was sent (issue 16): every benchmark message carries its
//! sequence number, and each receiver checks the numbers it sees, so a loss, a duplicate or
//! a reordering fails the scenario (and the run) instead of bending a rate.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{BufMut, Bytes, BytesMut};

/// Bytes of a payload taken by the sequence number (little-endian u64).
const SEQ_LEN: usize = 8;

/// Payloads of one size, each starting with its sequence number. They are cut from shared
/// 64 KiB blocks so numbering a message costs a copy, not an allocation: the load client has
/// to stay cheaper than the servers it measures.
pub(crate) struct Numbered {
    size: usize,
    template: Vec<u8>,
    block: BytesMut,
}

impl Numbered {
    /// `size` is the whole payload; at least [`SEQ_LEN`] so the number fits.
    pub(crate) fn new(size: usize) -> Numbered {
        let size = size.max(SEQ_LEN);
        Numbered { size, template: vec![b'x'; size - SEQ_LEN], block: BytesMut::new() }
    }

    pub(crate) fn get(&mut self, seq: u64) -> Bytes {
        if self.block.capacity() < self.size {
            self.block = BytesMut::with_capacity((64 * 1024).max(self.size));
        }
        self.block.put_u64_le(seq);
        self.block.extend_from_slice(&self.template);
        self.block.split_to(self.size).freeze()
    }
}

/// The sequence number a payload carries; `None` for a payload that is not one of ours.
pub(crate) fn seq_of(payload: &[u8], size: usize) -> Option<u64> {
    if payload.len() != size.max(SEQ_LEN) {
        return None;
    }
    let head: [u8; SEQ_LEN] = payload.get(..SEQ_LEN)?.try_into().ok()?;
    Some(u64::from_le_bytes(head))
}

/// What one receiver saw that it should not have.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Faults {
    /// Messages sent that never arrived (where this receiver should have had them).
    pub(crate) lost: u64,
    /// Messages that arrived more than once.
    pub(crate) duplicated: u64,
    /// Messages that arrived after a later one from the same publisher.
    pub(crate) reordered: u64,
    /// Payloads that are not a message of this run (wrong size or number out of range).
    pub(crate) foreign: u64,
}

impl Faults {
    pub(crate) fn is_clean(&self) -> bool {
        *self == Faults::default()
    }

    pub(crate) fn add(&mut self, o: Faults) {
        self.lost += o.lost;
        self.duplicated += o.duplicated;
        self.reordered += o.reordered;
        self.foreign += o.foreign;
    }
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} lost, {} duplicated, {} out of order, {} foreign",
            self.lost, self.duplicated, self.reordered, self.foreign
        )
    }
}

/// Which messages of `0..n` have been seen, shared by receivers that split one stream
/// between them (a queue group): a number seen twice is a duplicate wherever it landed.
pub(crate) struct Seen {
    bits: Vec<AtomicU64>,
    n: u64,
}

impl Seen {
    pub(crate) fn new(n: u64) -> Seen {
        Seen { bits: (0..n.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(), n }
    }

    /// Marks `seq`; false when it was already marked (or is out of range).
    fn mark(&self, seq: u64) -> bool {
        let Some(word) = self.bits.get((seq / 64) as usize) else {
            return false;
        };
        let bit = 1u64 << (seq % 64);
        word.fetch_or(bit, Ordering::Relaxed) & bit == 0
    }

    /// How many of `0..n` were never marked.
    pub(crate) fn missing(&self) -> u64 {
        let marked: u64 = self.bits.iter().map(|w| u64::from(w.load(Ordering::Relaxed).count_ones())).sum();
        self.n - marked
    }
}

/// One receiver's check of the numbers it sees.
pub(crate) struct Checker {
    size: usize,
    n: u64,
    /// The next number expected, for a receiver that must see all of `0..n` in order.
    next: u64,
    /// The highest number seen so far, for a queue member (it sees a rising subset).
    last: Option<u64>,
    /// The numbers seen by every member of a queue group; `None` for a receiver that
    /// must see the whole stream itself.
    shared: Option<std::sync::Arc<Seen>>,
    seen_own: Seen,
    pub(crate) faults: Faults,
}

impl Checker {
    /// A receiver that must see every message of `0..n`, each once, in order.
    pub(crate) fn all(n: u64, size: usize) -> Checker {
        Checker { size, n, next: 0, last: None, shared: None, seen_own: Seen::new(n), faults: Faults::default() }
    }

    /// A queue-group member: its share rises, and no number lands twice in the group.
    pub(crate) fn member(n: u64, size: usize, group: std::sync::Arc<Seen>) -> Checker {
        Checker { size, n, next: 0, last: None, shared: Some(group), seen_own: Seen::new(0), faults: Faults::default() }
    }

    pub(crate) fn check(&mut self, payload: &[u8]) {
        let Some(seq) = seq_of(payload, self.size).filter(|s| *s < self.n) else {
            self.faults.foreign += 1;
            return;
        };
        let seen = self.shared.as_deref().unwrap_or(&self.seen_own);
        if !seen.mark(seq) {
            self.faults.duplicated += 1;
            return;
        }
        if self.shared.is_none() {
            // a number ahead of the expected one leaves a gap, counted as lost at the end
            // unless the missing ones turn up later (then they count as reordered)
            if seq < self.next {
                self.faults.reordered += 1;
            }
            self.next = self.next.max(seq + 1);
        } else {
            if self.last.is_some_and(|l| seq < l) {
                self.faults.reordered += 1;
            }
            self.last = Some(self.last.map_or(seq, |l| l.max(seq)));
        }
    }

    /// The faults of a receiver that had to see all of `0..n` (losses included).
    pub(crate) fn finish_all(mut self) -> Faults {
        self.faults.lost = self.seen_own.missing();
        self.faults
    }

    /// The faults of a queue member (the group's losses are counted once, by the caller,
    /// from the shared [`Seen`]).
    pub(crate) fn finish_member(self) -> Faults {
        self.faults
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn feed(c: &mut Checker, seqs: &[u64]) {
        let mut p = Numbered::new(16);
        for &s in seqs {
            c.check(&p.get(s));
        }
    }

    #[test]
    fn in_order_stream_is_clean() {
        let mut c = Checker::all(5, 16);
        feed(&mut c, &[0, 1, 2, 3, 4]);
        assert!(c.finish_all().is_clean());
    }

    #[test]
    fn loss_duplicate_reorder_and_foreign_are_each_caught() {
        let mut c = Checker::all(5, 16);
        feed(&mut c, &[0, 2, 1, 2, 9]);
        c.check(b"short");
        let f = c.finish_all();
        assert_eq!(f, Faults { lost: 2, duplicated: 1, reordered: 1, foreign: 2 });
    }

    #[test]
    fn queue_group_duplicates_across_members_are_caught() {
        let group = Arc::new(Seen::new(4));
        let mut a = Checker::member(4, 16, group.clone());
        let mut b = Checker::member(4, 16, group.clone());
        feed(&mut a, &[0, 2]);
        feed(&mut b, &[1, 2]);
        assert_eq!(a.finish_member().duplicated, 0);
        assert_eq!(b.finish_member().duplicated, 1);
        assert_eq!(group.missing(), 1);
    }

    #[test]
    fn numbered_payloads_have_the_size_asked_for() {
        let mut p = Numbered::new(1024);
        for s in 0..200 {
            let b = p.get(s);
            assert_eq!(b.len(), 1024);
            assert_eq!(seq_of(&b, 1024), Some(s));
        }
    }
}
