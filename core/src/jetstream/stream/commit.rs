//! Group commit: under `sync_interval: always` a publish is acknowledged only once a sync
//! covering it has returned, but one sync may cover many publishes. The engine appends every
//! publish of one step with [`Stream::publish_deferred`], holds their acks, and calls
//! [`Stream::commit`] once before it lets any output go; a host that feeds it whatever
//! arrived while the previous step was syncing thus pays one fsync per step, not per message.
//!
//! A failed sync fails every publish it was to cover, and every later one: after a failed
//! fsync the kernel may have dropped the dirty pages, so a later successful sync proves
//! nothing about them (PostgreSQL's "fsyncgate"). The stream remembers the failure until it is
//! recovered from what is really stored.
//!
//! Nothing appended under `always` leaves the engine before its sync either: consumers
//! (push, pull, KV watchers), mirrors and sources see a stream only up to
//! [`Stream::visible_last`], the sequence before the first append no sync has covered yet.
//! nats-server gets the same order for free, because its store call fsyncs before the
//! stream signals its consumers. When the sync fails, the appends it was to cover leave the
//! stream's index ([`Stream::forget_unsynced`]) as if they had never been stored: nobody
//! saw them, so nobody can miss them after a power loss. Their sequences stay used up.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;

use super::{Stored, Stream};
use crate::jetstream::errors::ApiError;

/// Appends that wait for a sync, and the failure that ended syncing for good.
#[derive(Default)]
pub(super) struct Group {
    /// Something was appended (or removed) under `always` since the last sync.
    waiting: bool,
    /// Message ids of those appends: forgotten if their sync fails, so that a retry with the
    /// same id is stored instead of being answered as a stored duplicate.
    ids: Vec<Bytes>,
    /// The first failed sync's error.
    failed: Option<String>,
    /// The first sequence appended since the last sync (under `always`), and the stream's
    /// last message id before it, to put back if that sync fails.
    first_unsynced: Option<(u64, Option<Bytes>)>,
}

impl Stream {
    /// Stores a published message and makes it durable as the stream's policy asks before
    /// returning: what in-process callers (KV, the object store, the page) need, whose answer
    /// is the return value.
    pub fn publish(
        &mut self,
        now: u64,
        subj: &[u8],
        headers: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<Stored, ApiError> {
        let stored = self.publish_deferred(now, subj, headers, payload)?;
        self.commit()?;
        Ok(stored)
    }

    /// Stores a published message; under `always` it is durable only after the next
    /// [`Stream::commit`] returned `Ok`, and its ack must wait for that.
    pub fn publish_deferred(
        &mut self,
        now: u64,
        subj: &[u8],
        headers: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<Stored, ApiError> {
        if let Some(e) = &self.group.failed {
            return Err(ApiError::store_failed(e.clone()));
        }
        let (stored, msg_id) = self.store_checked(now, subj, headers, payload)?;
        if self.store.sync_always() && !stored.duplicate {
            self.group.waiting = true;
            self.group.ids.extend(msg_id);
        }
        Ok(stored)
    }

    /// Whether a publish's ack must wait for [`Stream::commit`] (`sync_interval: always`).
    pub fn acks_wait_for_sync(&self) -> bool {
        self.store.sync_always()
    }

    /// Notes an append that waits for a sync under `always` (every append goes through here:
    /// publishes, markers, batches, copies from sources).
    pub(super) fn note_append(&mut self, seq: u64) {
        if self.store.sync_always() {
            self.group.waiting = true;
            if self.group.first_unsynced.is_none() {
                self.group.first_unsynced = Some((seq, self.last_msg_id.clone()));
            }
        }
    }

    /// The last sequence that may leave the engine: the one before the first append no sync
    /// has covered yet (only `always` holds appends back; an interval delivers at once).
    pub fn visible_last(&self) -> u64 {
        match &self.group.first_unsynced {
            Some((first, _)) => first.saturating_sub(1),
            None => self.last_seq,
        }
    }

    /// Whether stored message `seq` may leave the engine (see [`Stream::visible_last`]).
    pub fn visible(&self, seq: u64) -> bool {
        seq <= self.visible_last()
    }

    /// Whether appends are waiting for a sync: the engine commits such a stream before it
    /// lets its output go.
    pub fn has_unsynced(&self) -> bool {
        self.group.first_unsynced.is_some()
    }

    /// Makes every deferred publish durable with one sync. `Err` if that sync, or any sync
    /// since the stream was opened, failed: nothing waiting may then be acknowledged.
    pub fn commit(&mut self) -> Result<(), ApiError> {
        if self.group.waiting {
            // the error is kept in `group.failed`
            let _ = self.sync_now();
        }
        match &self.group.failed {
            Some(e) => Err(ApiError::store_failed(e.clone())),
            None => Ok(()),
        }
    }

    /// Syncs the store if the stream's policy is `always`: a removal that is answered must
    /// be durable, and the sync covers the deferred publishes too.
    pub(super) fn sync_if_always(&mut self) -> Result<(), ApiError> {
        if !self.store.sync_always() {
            return Ok(());
        }
        self.sync_now().map_err(ApiError::store_failed)
    }

    /// One sync, never retried into success after a failure.
    fn sync_now(&mut self) -> Result<(), String> {
        if let Some(e) = self.group.failed.clone() {
            // whatever was appended since cannot be made durable either
            self.forget_unsynced();
            return Err(e);
        }
        let ids = core::mem::take(&mut self.group.ids);
        self.group.waiting = false;
        match self.store.sync() {
            Ok(()) => {
                self.group.first_unsynced = None;
                Ok(())
            }
            Err(e) => {
                for id in ids {
                    self.dedup.remove(&id);
                }
                self.forget_unsynced();
                let e = format!("{e}");
                self.group.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Takes every message appended since the last sync out of the index, the subject
    /// lists, the byte count, the TTLs and the last message id, as if it had never been
    /// stored; the consumers hear of it as removals. The store is not asked to remove them:
    /// it refuses every write after a failed sync, and a restart reads back only what it
    /// really holds.
    fn forget_unsynced(&mut self) {
        let Some((first, last_id)) = self.group.first_unsynced.take() else { return };
        let gone: Vec<u64> = self.index.range(first..).map(|(s, _)| *s).collect();
        for seq in gone {
            self.drop_from_index(seq);
        }
        self.last_msg_id = last_id;
        self.last_time = self.index.values().next_back().map_or(0, |m| m.time);
    }
}
