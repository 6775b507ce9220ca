//! The stream's side of an atomic batch commit: the checks nats-server makes on a batch as a
//! whole, then every message stored through the ordinary publish path with the store writes
//! held back and handed to the store in one [`StreamStore::append_batch`] call, so a power
//! loss can keep all of the batch or none of it.
//!
//! [`StreamStore::append_batch`]: crate::jetstream::store::StreamStore::append_batch

use alloc::borrow::Cow;
use alloc::collections::BTreeSet;
use alloc::format;
use alloc::vec::Vec;
use bytes::Bytes;

use super::{counter, parse_u64, Stream};
use crate::jetstream::batch::{unsupported_header, Staged, DUPLICATE_MSG};
use crate::jetstream::config::Discard;
use crate::jetstream::errors::ApiError;
use crate::proto::{header_value, Headers};

/// nats-server's `JSStreamWrongLastSequenceConstantErr`: an expectation on a subject the
/// batch itself writes earlier, or a last-sequence expectation past the first message.
const WRONG_LAST_SEQUENCE: ApiError =
    ApiError { code: 400, err_code: 10164, description: Cow::Borrowed("wrong last sequence") };

impl Stream {
    /// Stores a committed batch, all or nothing; returns the last sequence. With `eob` the
    /// last message gets `Nats-Batch-Commit: 1`, as nats-server stamps it.
    pub(crate) fn commit_batch(&mut self, now: u64, msgs: Vec<Staged>, eob: bool) -> Result<u64, ApiError> {
        self.check_batch(now, &msgs)?;
        let n = msgs.len();
        self.deferred = Some(Vec::new());
        let mut result = Ok(self.last_seq);
        for (i, m) in msgs.into_iter().enumerate() {
            let mut headers = m.headers.clone();
            if eob && i + 1 == n {
                if let Some(mut h) = headers.as_deref().and_then(|b| Headers::parse(b).ok()) {
                    h.insert("Nats-Batch-Commit", "1");
                    headers = Some(h.to_bytes());
                }
            }
            if headers.as_deref().and_then(|b| header_value(b, b"Nats-Rollup")).is_some() {
                // a rollup removes stored messages: what the batch wrote so far must be in
                // the store first (the batch stays atomic up to this message only)
                result = result.and_then(|s| self.flush_deferred().map(|()| s));
            }
            // one sync for the whole batch, after its last write (below)
            result = result
                .and_then(|_| self.publish_deferred(now, &m.subject, headers.as_deref(), &m.payload).map(|s| s.seq));
            if result.is_err() {
                break;
            }
        }
        if let Err(e) = result {
            // refused after the checks (a limit, say): nothing of the batch reaches the store,
            // and what it put in the index goes again (its sequences stay used)
            let held = self.deferred.take().unwrap_or_default();
            for m in held {
                self.remove_unsynced(m.seq)?;
            }
            return Err(e);
        }
        self.flush_deferred()?;
        self.deferred = None;
        let last = self.last_seq;
        let subjects: BTreeSet<Bytes> =
            self.index.range(self.last_seq + 1 - n as u64..).map(|(_, m)| m.subject.clone()).collect();
        for s in subjects {
            self.enforce_limits(&s)?;
        }
        self.sync_if_always()?;
        Ok(last)
    }

    /// Hands the held-back writes to the store in one call and stops holding them back.
    fn flush_deferred(&mut self) -> Result<(), ApiError> {
        let Some(writes) = self.deferred.take() else { return Ok(()) };
        let done = self.store.append_batch(&writes).map_err(|e| ApiError::store_failed(format!("{e}")));
        if done.is_ok() {
            self.deferred = Some(Vec::new());
        }
        done
    }

    /// What nats-server refuses in a batch before storing any of it.
    fn check_batch(&mut self, now: u64, msgs: &[Staged]) -> Result<(), ApiError> {
        self.expire_dedup(now);
        let mut ids = BTreeSet::new();
        let mut written = BTreeSet::new();
        for (i, m) in msgs.iter().enumerate() {
            let headers = m.headers.as_deref();
            let h = |name: &[u8]| headers.and_then(|b| header_value(b, name)).filter(|v| !v.is_empty());
            if h(b"Nats-Expected-Last-Msg-Id").is_some() {
                return Err(unsupported_header("Nats-Expected-Last-Msg-Id"));
            }
            let incr = counter::check_incr(self.config.allow_msg_counter, headers, &m.payload)?;
            if h(b"Nats-Expected-Stream").is_some_and(|s| s != self.config.name.as_bytes()) {
                return Err(ApiError::EXPECTED_STREAM);
            }
            if let Some(ttl) = h(b"Nats-TTL") {
                if !self.config.allow_msg_ttl {
                    return Err(ApiError::MSG_TTL_DISABLED);
                }
                super::parse_ttl(ttl)?;
            }
            if let Some(id) = h(b"Nats-Msg-Id") {
                if !ids.insert(id) || self.dedup.contains_key(id) {
                    return Err(DUPLICATE_MSG);
                }
            }
            if let Some(v) = h(b"Nats-Expected-Last-Sequence") {
                if parse_u64(v)? != self.last_seq {
                    return Err(ApiError::wrong_last_sequence(self.last_seq));
                }
                if i > 0 {
                    return Err(WRONG_LAST_SEQUENCE);
                }
            }
            if let Some(v) = h(b"Nats-Expected-Last-Subject-Sequence") {
                let on = h(b"Nats-Expected-Last-Subject-Sequence-Subject").unwrap_or(&m.subject);
                if written.contains(on) {
                    return Err(WRONG_LAST_SEQUENCE);
                }
                let actual = self.last_seq_for(on);
                if parse_u64(v)? != actual {
                    return Err(ApiError::wrong_last_sequence(actual));
                }
            }
            if incr.is_none() && self.config.allow_msg_counter {
                return Err(counter::INCR_MISSING);
            }
            self.check_schedule(now, &m.subject, headers)?;
            if let Some(r) = h(b"Nats-Rollup") {
                if !self.config.allow_rollup_hdrs || self.config.deny_purge {
                    return Err(ApiError::ROLLUP_DENIED);
                }
                if !r.eq_ignore_ascii_case(b"sub") && !r.eq_ignore_ascii_case(b"all") {
                    return Err(ApiError::rollup_invalid(&alloc::string::String::from_utf8_lossy(r)));
                }
            }
            written.insert(&m.subject[..]);
        }
        if self.config.discard == Discard::New
            && self.config.max_msgs > 0
            && (self.index.len() + msgs.len()) as i64 > self.config.max_msgs
        {
            return Err(ApiError::store_failed("maximum messages exceeded"));
        }
        Ok(())
    }
}
