//! Taking messages out of a stream: expiry (`max_age`, per-message TTLs, the dedup window,
//! subject delete markers), single removals and purges, and when a removal must be durable
//! before it is answered.

use alloc::format;
use alloc::vec::Vec;

use super::{io_err, Stream, StreamEvent, NEVER};
use crate::jetstream::errors::ApiError;
use crate::subject;

impl Stream {
    pub(super) fn expire_dedup(&mut self, now: u64) {
        let window = self.config.duplicate_window.max(0) as u64;
        while let Some((t, _)) = self.dedup_order.front() {
            if now.saturating_sub(*t) < window {
                break;
            }
            if let Some((_, id)) = self.dedup_order.pop_front() {
                if self.dedup.get(&id).is_some_and(|(_, it)| now.saturating_sub(*it) >= window) {
                    self.dedup.remove(&id);
                }
            }
        }
    }

    /// Removes messages past `max_age` or their own TTL, writing a subject delete marker
    /// where the stream asks for them (`subject_delete_marker_ttl`) and a subject's last
    /// message went. Returns the removed sequences.
    pub fn expire(&mut self, now: u64) -> Result<Vec<u64>, ApiError> {
        self.expire_dedup(now);
        self.fire_schedules(now)?;
        let mut removed = Vec::new();
        while let Some(&(at, seq)) = self.ttls.iter().next() {
            if at > now {
                break;
            }
            self.ttls.remove(&(at, seq));
            if let Some(m) = self.index.get(&seq).cloned() {
                self.remove_unsynced(seq)?;
                removed.push((seq, m));
            }
        }
        let max_age = self.config.max_age_ns();
        if max_age > 0 {
            let due: Vec<u64> = self
                .index
                .iter()
                .take_while(|(_, m)| now.saturating_sub(m.time) >= max_age)
                .filter(|(_, m)| m.expires != NEVER)
                .map(|(s, _)| *s)
                .collect();
            for seq in due {
                if let Some(m) = self.index.get(&seq).cloned() {
                    self.remove_unsynced(seq)?;
                    removed.push((seq, m));
                }
            }
        }
        if let Some(marker_ttl) = self.config.subject_delete_marker_ttl {
            let marker_ttl = marker_ttl.max(1_000_000_000) as u64;
            for (_, m) in &removed {
                if m.marker || self.subjects.contains_key(&m.subject) {
                    continue;
                }
                let h = format!(
                    "NATS/1.0\r\nNats-Marker-Reason: MaxAge\r\nNats-TTL: {}\r\nNats-Rollup: sub\r\n\r\n",
                    crate::duration::format(marker_ttl)
                );
                let subject = m.subject.clone();
                self.append(now, &subject, Some(h.as_bytes()), b"", Some(marker_ttl), true)?;
            }
        }
        Ok(removed.into_iter().map(|(s, _)| s).collect())
    }

    /// When the next message expires (`max_age` or its own TTL).
    pub fn next_expiry(&self) -> Option<u64> {
        let ttl = self.ttls.iter().next().map(|(t, _)| *t);
        let max_age = self.config.max_age_ns();
        let age = if max_age > 0 {
            self.index.values().find(|m| m.expires != NEVER).map(|m| m.time.saturating_add(max_age))
        } else {
            None
        };
        [ttl, age, self.next_schedule()].into_iter().flatten().min()
    }

    /// Removes one message; false if it was not stored. Under `sync_interval: always` the
    /// removal is durable when this returns: a delete that was acknowledged must not come
    /// back after a power loss.
    pub fn remove(&mut self, seq: u64) -> Result<bool, ApiError> {
        let removed = self.remove_unsynced(seq)?;
        self.sync_if_always()?;
        Ok(removed)
    }

    /// [`Stream::remove`] without the sync, for callers that sync once for many removals
    /// (purge) or whose removals need not be durable (expiry: it happens again).
    pub(super) fn remove_unsynced(&mut self, seq: u64) -> Result<bool, ApiError> {
        if !self.index.contains_key(&seq) {
            return Ok(false);
        }
        // the store first: a store that refuses the removal (a failed sync stopped its
        // writes) leaves the index as it was, consistent with what is stored
        self.store.remove(seq).map_err(io_err)?;
        Ok(self.drop_from_index(seq))
    }

    /// Takes `seq` out of the in-memory index only, telling the consumers.
    pub(super) fn drop_from_index(&mut self, seq: u64) -> bool {
        let Some(m) = self.index.remove(&seq) else { return false };
        self.bytes -= m.size;
        if m.expires != 0 && m.expires != NEVER {
            self.ttls.remove(&(m.expires, seq));
        }
        self.events.push(StreamEvent::Removed(seq, m.subject.clone()));
        if let Some(seqs) = self.subjects.get_mut(&m.subject) {
            if let Ok(i) = seqs.binary_search(&seq) {
                seqs.remove(i);
            }
            if seqs.is_empty() {
                self.subjects.remove(&m.subject);
            }
        }
        self.first_seq = self.index.keys().next().copied().unwrap_or(self.last_seq + 1);
        true
    }

    /// Purges everything (or what matches `filter`), only below `seq`, or all but the newest
    /// `keep`; returns how many messages went.
    pub fn purge(&mut self, filter: Option<&str>, seq: Option<u64>, keep: Option<u64>) -> Result<u64, ApiError> {
        let victims: Vec<u64> = match filter.filter(|f| !f.is_empty() && *f != ">") {
            Some(f) => {
                let mut v: Vec<u64> = self
                    .subjects
                    .iter()
                    .filter(|(s, _)| subject::matches(f.as_bytes(), s))
                    .flat_map(|(_, seqs)| {
                        let keep_n = keep.unwrap_or(0) as usize;
                        let n = seqs.len().saturating_sub(keep_n);
                        seqs.iter().take(if keep.is_some() { n } else { seqs.len() }).copied().collect::<Vec<_>>()
                    })
                    .filter(|s| seq.is_none_or(|limit| *s < limit))
                    .collect();
                v.sort_unstable();
                v
            }
            None => {
                let all: Vec<u64> = self.index.keys().copied().collect();
                let n = all.len().saturating_sub(keep.unwrap_or(0) as usize);
                all.into_iter().take(n).filter(|s| seq.is_none_or(|limit| *s < limit)).collect()
            }
        };
        let whole = filter.is_none_or(|f| f.is_empty() || f == ">") && keep.is_none();
        if whole && victims.len() == self.index.len() && seq.is_none() {
            // Everything goes: one compaction instead of a removal per message.
            let before = self.last_seq + 1;
            self.store.compact(before).map_err(io_err)?;
            let n = self.index.len() as u64;
            self.index.clear();
            self.subjects.clear();
            self.bytes = 0;
            self.first_seq = before;
            self.ttls.clear();
            self.events.clear();
            self.cleared = true;
            self.sync_if_always()?;
            return Ok(n);
        }
        for s in &victims {
            self.remove_unsynced(*s)?;
        }
        self.sync_if_always()?;
        if let (Some(limit), true) = (seq, whole) {
            // Purging up to a sequence past the end moves the stream forward, as nats-server does.
            if limit > self.last_seq + 1 && self.index.is_empty() {
                self.last_seq = limit - 1;
                self.first_seq = limit;
            }
        }
        Ok(victims.len() as u64)
    }
}
