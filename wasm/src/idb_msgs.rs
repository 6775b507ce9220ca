//! A block's messages in sequence order: a sorted `Vec`, not a `BTreeMap`. Messages are
//! appended in sequence order nearly always, so an append is a push; a block holds at most
//! [`super::BLOCK_MAX_MSGS`], so a lookup is a short binary search and a removal a short
//! shift. The map's insert was a quarter of the store's work per publish (profiled in the
//! page).

use edgebus_core::jetstream::store::StoredMsg;

#[derive(Default, Debug, PartialEq)]
pub(super) struct Msgs(Vec<StoredMsg>);

impl Msgs {
    /// Adds `msg`, replacing a message of the same sequence.
    pub(super) fn insert(&mut self, msg: StoredMsg) {
        if self.0.last().is_none_or(|last| last.seq < msg.seq) {
            self.0.push(msg);
            return;
        }
        match self.find(msg.seq) {
            Ok(at) => self.0[at] = msg,
            Err(at) => self.0.insert(at, msg),
        }
    }

    fn find(&self, seq: u64) -> Result<usize, usize> {
        self.0.binary_search_by_key(&seq, |m| m.seq)
    }

    pub(super) fn get(&self, seq: u64) -> Option<&StoredMsg> {
        self.find(seq).ok().map(|at| &self.0[at])
    }

    pub(super) fn remove(&mut self, seq: u64) -> Option<StoredMsg> {
        self.find(seq).ok().map(|at| self.0.remove(at))
    }

    /// Drops the messages before sequence `before`.
    pub(super) fn drop_before(&mut self, before: u64) {
        let at = self.0.partition_point(|m| m.seq < before);
        self.0.drain(..at);
    }

    /// The messages after sequence `seq`, in order.
    pub(super) fn after(&self, seq: u64) -> impl Iterator<Item = &StoredMsg> {
        self.0[self.0.partition_point(|m| m.seq <= seq)..].iter()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &StoredMsg> {
        self.0.iter()
    }

    pub(super) fn first_seq(&self) -> Option<u64> {
        self.0.first().map(|m| m.seq)
    }

    pub(super) fn last_seq(&self) -> Option<u64> {
        self.0.last().map(|m| m.seq)
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use bytes::Bytes;

    fn msg(seq: u64, body: &'static [u8]) -> StoredMsg {
        StoredMsg {
            seq,
            subject: Bytes::from_static(b"s"),
            headers: None,
            payload: Bytes::from_static(body),
            time: seq,
        }
    }

    fn seqs(m: &Msgs) -> Vec<u64> {
        m.iter().map(|m| m.seq).collect()
    }

    /// Kept in sequence order whatever the order of inserts, one message per sequence, as the
    /// map it replaces.
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn messages_stay_in_sequence_order() {
        let mut m = Msgs::default();
        for seq in [3, 4, 7, 1, 5] {
            m.insert(msg(seq, b"a"));
        }
        m.insert(msg(4, b"b"));
        assert_eq!(seqs(&m), [1, 3, 4, 5, 7]);
        assert_eq!(m.get(4).unwrap().payload, Bytes::from_static(b"b"));
        assert!(m.get(2).is_none());
        assert_eq!(m.after(3).map(|m| m.seq).collect::<Vec<_>>(), [4, 5, 7]);
        assert_eq!(m.after(0).count(), 5);
        assert_eq!(m.after(7).count(), 0);
        assert_eq!(m.remove(5).unwrap().seq, 5);
        assert!(m.remove(5).is_none());
        m.drop_before(4);
        assert_eq!(seqs(&m), [4, 7]);
        assert_eq!((m.first_seq(), m.last_seq(), m.len()), (Some(4), Some(7), 2));
        m.drop_before(8);
        assert!(m.is_empty());
    }
}
