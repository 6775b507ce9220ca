//! Atomic batch publish (`allow_atomic`, ADR-50): messages carrying `Nats-Batch-Id` are
//! staged out of sight until the one with `Nats-Batch-Commit`, then stored all together or
//! not at all, with nats-server 2.14's limits and errors.
//!
//! Staged batches live here, in the engine, because one limit spans every stream (1,000 in
//! flight on a server). On the server they are not persisted: an open batch is lost with the
//! process, which abandons it as nats-server's timeout would. A store that keeps open batches
//! (the page's, [`super::store::StreamStore::keeps_open_batches`]) gets each staged message
//! as a record and has them back after a reload, the batch's idle timer restarted. A
//! committed batch reaches the store as one unit ([`super::stream::Stream::commit_batch`]).

use alloc::borrow::Cow;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;
use serde_json::json;

use super::engine::{Interest, JetStream, PubAck};
use super::errors::ApiError;
use super::time::rfc3339;
use super::Outbound;
use crate::proto::header_value;

/// nats-server's defaults (`streamMaxAtomicBatch*`, `streamDefaultMaxBatchTimeout`).
pub(crate) const MAX_BATCH_SIZE: usize = 1000;
pub(crate) const MAX_INFLIGHT_PER_STREAM: usize = 50;
pub(crate) const MAX_INFLIGHT_TOTAL: usize = 1000;
pub(crate) const BATCH_TIMEOUT: u64 = 10_000_000_000;

const fn err(code: u16, err_code: u16, d: &'static str) -> ApiError {
    ApiError { code, err_code, description: Cow::Borrowed(d) }
}
const DISABLED: ApiError = err(400, 10174, "atomic publish is disabled");
const MISSING_SEQ: ApiError = err(400, 10175, "atomic publish sequence is missing");
const INCOMPLETE: ApiError = err(400, 10176, "atomic publish batch is incomplete");
const INVALID_ID: ApiError = err(400, 10179, "atomic publish batch ID is invalid");
const INVALID_COMMIT: ApiError = err(400, 10200, "atomic publish batch commit is invalid");
pub(crate) const DUPLICATE_MSG: ApiError = err(400, 10201, "atomic publish batch contains duplicate message id");
const TOO_MANY_INFLIGHT: ApiError = err(429, 10210, "atomic publish too many inflight");

fn too_large(max: usize) -> ApiError {
    ApiError::with(400, 10199, format!("atomic publish batch is too large: {max}"))
}
pub(crate) fn unsupported_header(h: &str) -> ApiError {
    ApiError::with(400, 10177, format!("atomic publish unsupported header used: {h}"))
}

/// A message waiting for its batch's commit.
#[derive(Debug, Clone)]
pub(crate) struct Staged {
    pub(crate) subject: Bytes,
    pub(crate) headers: Option<Bytes>,
    pub(crate) payload: Bytes,
}

struct Open {
    msgs: Vec<Staged>,
    last_active: u64,
}

/// The open batches of every stream, by (stream, batch id).
#[derive(Default)]
pub(super) struct Batches {
    open: crate::vecmap::VecMap<(String, String), Open>,
    /// The fast-ingest batches (`fast_batch.rs`), under the same timer.
    pub(super) fast: super::fast_batch::FastBatches,
}

impl Batches {
    pub(super) fn next_deadline(&self) -> Option<u64> {
        let atomic = self.open.values().map(|b| b.last_active.saturating_add(BATCH_TIMEOUT)).min();
        atomic.into_iter().chain(self.fast.next_deadline()).min()
    }

    fn in_stream(&self, stream: &str) -> usize {
        self.open.keys().filter(|(s, _)| s == stream).count()
    }
}

enum Commit {
    No,
    /// `1`: store this message and commit.
    Store,
    /// `eob`: commit without storing this message.
    EndOfBatch,
}

impl JetStream {
    /// A published message with `Nats-Batch-Id`, on stream `name`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_batch_msg(
        &mut self,
        now: u64,
        name: &str,
        id: &[u8],
        subject: &[u8],
        reply: Option<&[u8]>,
        headers: &[u8],
        payload: &[u8],
        interest: &dyn Interest,
    ) {
        let Some(entry) = self.streams.get(name) else { return };
        let reply = reply.filter(|r| !r.is_empty() && !entry.stream.config.no_ack).map(Bytes::copy_from_slice);
        let result = self.stage(now, name, id, subject, headers, payload);
        let body = match result {
            Ok(None) => Some(Bytes::new()),
            Ok(Some(ack)) => serde_json::to_vec(&ack).ok().map(Bytes::from),
            Err(e) => serde_json::to_vec(&json!({"error": e, "stream": name, "seq": 0})).ok().map(Bytes::from),
        };
        if let (Some(to), Some(body)) = (reply, body) {
            self.out.push(Outbound::data(to, body));
        }
        self.pump_stream(name, now, interest);
    }

    /// Stages or commits; `Ok(None)` for a staged message (the empty ack).
    fn stage(
        &mut self,
        now: u64,
        name: &str,
        id: &[u8],
        subject: &[u8],
        headers: &[u8],
        payload: &[u8],
    ) -> Result<Option<PubAck>, ApiError> {
        let config = &self.streams.get(name).ok_or(ApiError::STREAM_NOT_FOUND)?.stream.config;
        if config.sealed {
            return Err(ApiError::SEALED);
        }
        if config.max_msg_size >= 0 && (headers.len() + payload.len()) as i64 > config.max_msg_size {
            return Err(ApiError::MSG_TOO_BIG);
        }
        if !config.allow_atomic {
            return Err(DISABLED);
        }
        if id.len() > 64 {
            return Err(INVALID_ID);
        }
        let h = |n: &[u8]| header_value(headers, n);
        // a sequence that is no number reads as the largest one, as nats-server's parse gives
        let seq = h(b"Nats-Batch-Sequence")
            .filter(|v| !v.is_empty())
            .map(|v| core::str::from_utf8(v).ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or(u64::MAX))
            .ok_or(MISSING_SEQ)?;
        let commit = match h(b"Nats-Batch-Commit") {
            None => Commit::No,
            Some(b"1") => Commit::Store,
            Some(b"eob") => Commit::EndOfBatch,
            Some(_) => Commit::Store,
        };
        let commit_invalid = h(b"Nats-Batch-Commit").is_some_and(|c| c != b"1" && c != b"eob");
        let eob = matches!(commit, Commit::EndOfBatch);
        let size = seq.saturating_sub(u64::from(eob));
        let key = (String::from(name), String::from_utf8_lossy(id).into_owned());
        if !self.batches.open.contains_key(&key) {
            if seq != 1 {
                return Err(if size > MAX_BATCH_SIZE as u64 { too_large(MAX_BATCH_SIZE) } else { INCOMPLETE });
            }
            if self.batches.in_stream(name) >= MAX_INFLIGHT_PER_STREAM || self.batches.open.len() >= MAX_INFLIGHT_TOTAL
            {
                return Err(TOO_MANY_INFLIGHT);
            }
            self.batches.open.insert(key.clone(), Open { msgs: Vec::new(), last_active: now });
        }
        if commit_invalid {
            self.close_batch(&key);
            return Err(INVALID_COMMIT);
        }
        let Some(open) = self.batches.open.get_mut(&key) else { return Err(INCOMPLETE) };
        if seq != open.msgs.len() as u64 + 1 || (seq == 1 && eob) {
            self.abandon(now, &key, "incomplete");
            return Err(INCOMPLETE);
        }
        if size > MAX_BATCH_SIZE as u64 {
            self.abandon(now, &key, "large");
            return Err(too_large(MAX_BATCH_SIZE));
        }
        open.last_active = now;
        if !eob {
            // staged under the subject the stream stores it as: the batch's checks, its
            // commit and its republished copies all see the transformed subject
            let stored = self.transformed_subject(name, subject);
            let Some(open) = self.batches.open.get_mut(&key) else { return Err(INCOMPLETE) };
            open.msgs.push(Staged {
                subject: Bytes::from(stored),
                headers: Some(Bytes::copy_from_slice(headers)),
                payload: Bytes::copy_from_slice(payload),
            });
        }
        if matches!(commit, Commit::No) {
            return self.keep_staged(now, &key).map(|()| None);
        }
        let Some(Open { msgs, .. }) = self.close_batch(&key) else { return Err(INCOMPLETE) };
        let storage = self.streams.get(name).ok_or(ApiError::STREAM_NOT_FOUND)?.stream.config.storage;
        self.check_room(storage)?;
        let subjects: Vec<&[u8]> = msgs.iter().map(|m| &m.subject[..]).collect();
        let before = self.last_seqs_before(name, &subjects);
        let n = msgs.len() as u64;
        let entry = self.streams.get_mut(name).ok_or(ApiError::STREAM_NOT_FOUND)?;
        let last = entry.stream.commit_batch(now, msgs, eob)?;
        self.republish_committed(name, (last + 1).saturating_sub(n), last, before)?;
        Ok(Some(PubAck {
            stream: name.into(),
            domain: self.domain.clone(),
            seq: last,
            duplicate: false,
            val: None,
            batch: Some(key.1),
            count: Some(size),
        }))
    }

    /// Removes an open batch, and its staged records where the store keeps them (in the
    /// same commit as a batch's messages, so a reload finds either the batch or its records).
    fn close_batch(&mut self, key: &(String, String)) -> Option<Open> {
        let open = self.batches.open.remove(key);
        if let Some(store) = self.keeping_store(&key.0) {
            // a record left behind is dropped at the next open: nothing to answer here
            drop(store.unstage(&key.1));
        }
        open
    }

    /// The store of stream `name` if it keeps open batches.
    fn keeping_store(&mut self, name: &str) -> Option<&mut dyn super::store::StreamStore> {
        let store = self.streams.get_mut(name)?.stream.store_mut();
        store.keeps_open_batches().then_some(store)
    }

    /// Hands the message just staged in batch `key` to a store that keeps open batches. A
    /// store that refuses it fails the batch: its empty ack must not promise a reload keeps it.
    fn keep_staged(&mut self, now: u64, key: &(String, String)) -> Result<(), ApiError> {
        let Some(open) = self.batches.open.get(key) else { return Ok(()) };
        let (index, Some(last)) = (open.msgs.len().saturating_sub(1), open.msgs.last()) else { return Ok(()) };
        let record = encode_staged(last);
        let Some(store) = self.keeping_store(&key.0) else { return Ok(()) };
        match store.stage(&key.1, index, &record) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.abandon(now, key, "incomplete");
                Err(ApiError::store_failed(format!("{e}")))
            }
        }
    }

    /// Takes back the open batches stream `name`'s store kept, as if their last message had
    /// just arrived. A batch whose records do not decode is dropped whole (never half).
    pub(super) fn restore_open_batches(&mut self, name: &str, now: u64) {
        let Some(store) = self.keeping_store(name) else { return };
        let Ok(kept) = store.staged() else { return };
        for (id, records) in kept {
            let msgs: Option<Vec<Staged>> = records.iter().map(|r| decode_staged(r)).collect();
            match msgs {
                Some(msgs) if !msgs.is_empty() => {
                    self.batches.open.insert((name.into(), id), Open { msgs, last_active: now });
                }
                _ => {
                    if let Some(store) = self.keeping_store(name) {
                        drop(store.unstage(&id));
                    }
                }
            }
        }
    }

    fn abandon(&mut self, now: u64, key: &(String, String), reason: &str) {
        self.close_batch(key);
        let id = self.nuid();
        self.advisory(
            format!("$JS.EVENT.ADVISORY.STREAM.BATCH_ABANDONED.{}", key.0),
            &json!({"type": "io.nats.jetstream.advisory.v1.stream_batch_abandoned", "id": id,
                    "timestamp": rfc3339(now), "stream": key.0, "batch": key.1, "reason": reason}),
        );
    }

    /// Abandons the batches idle for [`BATCH_TIMEOUT`].
    pub(super) fn expire_batches(&mut self, now: u64) {
        self.batches.fast.expire(now);
        let idle: Vec<(String, String)> = self
            .batches
            .open
            .iter()
            .filter(|(_, b)| now.saturating_sub(b.last_active) >= BATCH_TIMEOUT)
            .map(|(k, _)| k.clone())
            .collect();
        for key in idle {
            self.abandon(now, &key, "timeout");
        }
    }
}

/// A staged message as a store keeps it: subject length and header length (u32, little
/// endian), subject, headers, payload.
fn encode_staged(m: &Staged) -> Vec<u8> {
    let headers = m.headers.as_deref().unwrap_or_default();
    let mut out = Vec::with_capacity(8 + m.subject.len() + headers.len() + m.payload.len());
    out.extend_from_slice(&(m.subject.len() as u32).to_le_bytes());
    out.extend_from_slice(&(headers.len() as u32).to_le_bytes());
    out.extend_from_slice(&m.subject);
    out.extend_from_slice(headers);
    out.extend_from_slice(&m.payload);
    out
}

fn decode_staged(r: &[u8]) -> Option<Staged> {
    let len = |at: usize| r.get(at..at + 4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
    let (subject_len, headers_len) = (len(0)? as usize, len(4)? as usize);
    let rest = r.get(8..)?;
    let subject = rest.get(..subject_len)?;
    let headers = rest.get(subject_len..subject_len.checked_add(headers_len)?)?;
    let payload = rest.get(subject_len + headers_len..)?;
    Some(Staged {
        subject: Bytes::copy_from_slice(subject),
        headers: (!headers.is_empty()).then(|| Bytes::copy_from_slice(headers)),
        payload: Bytes::copy_from_slice(payload),
    })
}

/// The batch id of a published message, if it is part of an atomic batch.
pub(super) fn batch_id(headers: Option<&[u8]>) -> Option<&[u8]> {
    headers.and_then(|h| header_value(h, b"Nats-Batch-Id")).filter(|v| !v.is_empty())
}
