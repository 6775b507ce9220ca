//! One stream: its message index, limits, deduplication and the publish-time checks.
//!
//! The index (subject, size and time of every message, and per-subject sequence lists)
//! lives here in memory; the store only keeps bytes. That makes limits, per-subject lookups
//! and consumer scans independent of the backend.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;
use hashbrown::HashMap;
use serde::Serialize;

use super::config::{Discard, StreamConfig};
use super::errors::ApiError;
use super::store::{counted_size, StoreError, StoredMsg, StreamStore};
use super::time::rfc3339;
use crate::proto::header_value;
use crate::subject;

mod batch;
mod commit;
mod counter;
mod counter_sources;
mod mirror;
mod removal;
mod schedule;

/// Largest header block a stored message may carry.
const MAX_HEADER_SIZE: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub(crate) struct MsgIndex {
    pub(crate) subject: Bytes,
    pub(crate) size: u64,
    pub(crate) time: u64,
    /// Per-message expiry (`Nats-TTL`): 0 none, [`NEVER`] exempt from `max_age` too.
    pub(crate) expires: u64,
    /// A subject delete marker the stream wrote itself.
    pub(crate) marker: bool,
}

/// `Nats-TTL: never`: the message outlives `max_age`.
pub(crate) const NEVER: u64 = u64::MAX;

/// What changed in the stream, in order, for the consumers to follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StreamEvent {
    Appended(u64, Bytes),
    Removed(u64, Bytes),
}

/// Parses a `Nats-TTL` value: seconds, a Go duration, or `never`; at least one second.
pub(crate) fn parse_ttl(v: &[u8]) -> Result<u64, ApiError> {
    let s = core::str::from_utf8(v).map_err(|_| ApiError::MSG_TTL_INVALID)?.trim();
    if s.eq_ignore_ascii_case("never") || s == "-1" {
        return Ok(NEVER);
    }
    let ns = match s.parse::<u64>() {
        Ok(secs) => secs.checked_mul(1_000_000_000).ok_or(ApiError::MSG_TTL_INVALID)?,
        Err(_) => crate::duration::parse(s).map_err(|_| ApiError::MSG_TTL_INVALID)?,
    };
    if ns < 1_000_000_000 {
        return Err(ApiError::MSG_TTL_INVALID);
    }
    Ok(ns)
}

/// What a successful publish produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub seq: u64,
    pub duplicate: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StreamState {
    pub messages: u64,
    pub bytes: u64,
    pub first_seq: u64,
    pub first_ts: String,
    pub last_seq: u64,
    pub last_ts: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub num_subjects: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subjects: Option<BTreeMap<String, u64>>,
    #[serde(skip_serializing_if = "is_zero")]
    pub num_deleted: u64,
    pub consumer_count: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

pub struct Stream {
    pub config: StreamConfig,
    /// Creation time, ns since the epoch.
    pub created: u64,
    store: alloc::boxed::Box<dyn StreamStore>,
    index: BTreeMap<u64, MsgIndex>,
    /// Sequences of the stored messages on each subject, ascending.
    subjects: HashMap<Bytes, VecDeque<u64>>,
    first_seq: u64,
    last_seq: u64,
    last_time: u64,
    bytes: u64,
    /// `Nats-Msg-Id` → (sequence, time) within the duplicate window, and the ids in time
    /// order so that expiring them is cheap.
    dedup: HashMap<Bytes, (u64, u64)>,
    dedup_order: VecDeque<(u64, Bytes)>,
    last_msg_id: Option<Bytes>,
    /// Appends and removals since the engine last looked, so consumers can follow;
    /// `cleared` says everything went at once (consumers then recount).
    events: Vec<StreamEvent>,
    cleared: bool,
    /// Messages with a per-message TTL, by expiry.
    ttls: alloc::collections::BTreeSet<(u64, u64)>,
    /// Writes held back while an atomic batch commits (see `stream/batch.rs`).
    deferred: Option<Vec<StoredMsg>>,
    /// Armed message schedules by subject (`stream/schedule.rs`), and whether the stream is
    /// storing what one produced (exempt from the client-only header checks).
    schedules: crate::vecmap::VecMap<Bytes, schedule::Armed>,
    firing: bool,
    /// Storing a message a source copied (`stream/counter_sources.rs`).
    sourced: bool,
    /// Publishes waiting for one sync under `always` (see `stream/commit.rs`).
    group: commit::Group,
}

fn io_err(e: StoreError) -> ApiError {
    ApiError::stream_general(format!("{e}"))
}

impl Stream {
    pub fn new(config: StreamConfig, created: u64, store: alloc::boxed::Box<dyn StreamStore>) -> Stream {
        let last_seq = config.first_seq.unwrap_or(1).saturating_sub(1);
        Stream {
            config,
            created,
            store,
            index: BTreeMap::new(),
            subjects: HashMap::new(),
            first_seq: last_seq + 1,
            last_seq,
            last_time: 0,
            bytes: 0,
            dedup: HashMap::new(),
            dedup_order: VecDeque::new(),
            last_msg_id: None,
            events: Vec::new(),
            cleared: false,
            ttls: alloc::collections::BTreeSet::new(),
            deferred: None,
            schedules: crate::vecmap::VecMap::new(),
            firing: false,
            sourced: false,
            group: commit::Group::default(),
        }
    }

    /// Rebuilds the index from the store after a restart. `last_seq` comes from the
    /// stream's saved state when messages at the end were removed; the scan supplies the rest.
    pub fn recover(&mut self, now: u64, saved_last_seq: u64) -> Result<(), StoreError> {
        // Each message is indexed as the scan hands it over (the closure borrows the fields
        // it fills, the scan the store), so no list of every message is held meanwhile; the
        // index itself is built in one go at the end: a stream of a million messages spent
        // a sixth of its open in one-by-one inserts (profiled in the page).
        let mut index = Vec::new();
        let (storage, window) = (self.config.storage, self.config.duplicate_window.max(0) as u64);
        self.store.scan(&mut |m| {
            // one lookup per message: the subject's list, and its key to share
            let subj = match self.subjects.get_key_value_mut(&m.subject[..]) {
                Some((key, seqs)) => {
                    seqs.push_back(m.seq);
                    key.clone()
                }
                None => {
                    // a copy of its own, as `intern` makes: never a slice of a larger buffer
                    let key = Bytes::copy_from_slice(&m.subject);
                    self.subjects.insert(key.clone(), VecDeque::from([m.seq]));
                    key
                }
            };
            let size = counted_size(storage, m.size, m.headers_len);
            self.bytes += size;
            self.last_seq = self.last_seq.max(m.seq);
            self.last_time = self.last_time.max(m.time);
            if let Some(id) = &m.msg_id {
                if now.saturating_sub(m.time) < window {
                    self.dedup.insert(id.clone(), (m.seq, m.time));
                    self.dedup_order.push_back((m.time, id.clone()));
                }
            }
            // the last message's id, none if it had none, as nats-server restores it
            if m.seq == self.last_seq {
                self.last_msg_id = m.msg_id;
            }
            let expires = match m.ttl.as_deref().map(parse_ttl) {
                Some(Ok(NEVER)) => NEVER,
                Some(Ok(ttl)) => {
                    self.ttls.insert((m.time.saturating_add(ttl), m.seq));
                    m.time.saturating_add(ttl)
                }
                _ => 0,
            };
            index.push((m.seq, MsgIndex { subject: subj, size, time: m.time, expires, marker: m.marker }));
        })?;
        if self.index.is_empty() {
            // sorts (nothing to do for a store that scans in order), later entries win
            self.index = index.into_iter().collect();
        } else {
            self.index.extend(index);
        }
        self.last_seq = self.last_seq.max(saved_last_seq).max(self.store.last_seq());
        self.first_seq = self.index.keys().next().copied().unwrap_or(self.last_seq + 1);
        self.recover_schedules(now);
        Ok(())
    }

    fn intern(&self, subject: &[u8]) -> Bytes {
        match self.subjects.get_key_value(subject) {
            Some((k, _)) => k.clone(),
            None => Bytes::copy_from_slice(subject),
        }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Does this stream capture messages published on `subject`?
    pub fn captures(&self, subject: &[u8]) -> bool {
        self.config.subjects.iter().any(|s| subject::matches(s.as_bytes(), subject))
    }

    /// Bytes held, as the stream's state reports them.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
    pub fn msgs(&self) -> u64 {
        self.index.len() as u64
    }
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }
    pub fn first_seq(&self) -> u64 {
        self.first_seq
    }

    pub fn state(&self, consumers: usize, subjects_filter: Option<&str>) -> StreamState {
        let first_ts = self.index.values().next().map_or(0, |m| m.time);
        let num_deleted = if self.index.is_empty() {
            0
        } else {
            (self.last_seq - self.first_seq + 1).saturating_sub(self.index.len() as u64)
        };
        let subjects = subjects_filter.map(|f| {
            self.subjects
                .iter()
                .filter(|(s, seqs)| !seqs.is_empty() && subject::matches(f.as_bytes(), s))
                .map(|(s, seqs)| (String::from_utf8_lossy(s).into_owned(), seqs.len() as u64))
                .collect::<BTreeMap<_, _>>()
        });
        StreamState {
            messages: self.index.len() as u64,
            bytes: self.bytes,
            first_seq: if self.last_seq == 0 && self.index.is_empty() { 0 } else { self.first_seq },
            first_ts: rfc3339(first_ts),
            last_seq: self.last_seq,
            last_ts: rfc3339(if self.index.is_empty() { 0 } else { self.last_time }),
            num_subjects: self.subjects.values().filter(|s| !s.is_empty()).count() as u64,
            // no matching subject is no `subjects` at all, as in nats-server
            subjects: subjects.filter(|m| !m.is_empty()),
            num_deleted,
            consumer_count: consumers as u64,
        }
    }

    /// Stores a published message after the checks nats-server makes, in its order, without
    /// syncing (see `stream/commit.rs`); also returns its message id, if it has one.
    fn store_checked(
        &mut self,
        now: u64,
        subj: &[u8],
        headers: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<(Stored, Option<Bytes>), ApiError> {
        if self.config.sealed {
            return Err(ApiError::SEALED);
        }
        let hdr_len = headers.map_or(0, |h| h.len());
        if self.config.max_msg_size >= 0 && (hdr_len + payload.len()) as i64 > self.config.max_msg_size {
            return Err(ApiError::MSG_TOO_BIG);
        }
        if hdr_len > MAX_HEADER_SIZE {
            return Err(ApiError::HEADER_TOO_BIG);
        }
        let h = |name: &[u8]| headers.and_then(|b| header_value(b, name));
        let incr = match self.sourced {
            true => counter_sources::sourced_incr(headers)?,
            false => counter::check_incr(self.config.allow_msg_counter, headers, payload)?,
        };
        if let Some(expected) = h(b"Nats-Expected-Stream") {
            if expected != self.config.name.as_bytes() {
                return Err(ApiError::EXPECTED_STREAM);
            }
        }
        self.expire_dedup(now);
        let msg_id = h(b"Nats-Msg-Id").filter(|id| !id.is_empty());
        if let Some(id) = msg_id {
            if let Some((seq, _)) = self.dedup.get(id) {
                return Ok((Stored { seq: *seq, duplicate: true }, None));
            }
        }
        if let Some(v) = h(b"Nats-Expected-Last-Sequence") {
            let want = parse_u64(v)?;
            if want != self.last_seq {
                return Err(ApiError::wrong_last_sequence(self.last_seq));
            }
        }
        // compared with the id of the last message, whether or not it had one; an empty
        // expectation is no expectation, as in nats-server
        if let Some(v) = h(b"Nats-Expected-Last-Msg-Id").filter(|v| !v.is_empty()) {
            let last = self.last_msg_id.as_deref().unwrap_or(b"");
            if v != last {
                return Err(ApiError::wrong_last_msg_id(&String::from_utf8_lossy(last)));
            }
        }
        if let Some(v) = h(b"Nats-Expected-Last-Subject-Sequence") {
            let want = parse_u64(v)?;
            let on = h(b"Nats-Expected-Last-Subject-Sequence-Subject").filter(|s| !s.is_empty()).unwrap_or(subj);
            let actual = self.last_seq_for(on);
            if want != actual {
                return Err(ApiError::wrong_last_sequence(actual));
            }
        }
        let (armed, scheduled) = self.check_schedule(now, subj, headers)?;
        let headers = scheduled.as_deref().or(headers);
        let counted = match (&incr, self.config.allow_msg_counter) {
            (None, true) => return Err(counter::INCR_MISSING),
            (Some(incr), true) => Some(self.counter_write(subj, incr, headers, payload)?),
            (_, false) => None,
        };
        let payload = counted.as_ref().map_or(payload, |c| c.0.as_bytes());
        let headers = counted.as_ref().and_then(|c| c.1.as_deref()).or(headers);
        let h = |name: &[u8]| headers.and_then(|b| header_value(b, name));
        let rollup = match h(b"Nats-Rollup").filter(|r| !r.is_empty()) {
            None => None,
            Some(r) => {
                if !self.config.allow_rollup_hdrs || self.config.deny_purge {
                    return Err(ApiError::ROLLUP_DENIED);
                }
                let r = String::from_utf8_lossy(r).to_ascii_lowercase();
                match r.as_str() {
                    "sub" => Some(false),
                    "all" => Some(true),
                    _ => return Err(ApiError::rollup_invalid(&r)),
                }
            }
        };
        let mut rewritten_headers = None;
        let ttl = match h(b"Nats-TTL") {
            None => None,
            Some(_) if !self.config.allow_msg_ttl => return Err(ApiError::MSG_TTL_DISABLED),
            Some(v) => {
                let mut ttl = parse_ttl(v)?;
                // With limit markers and history, a key's TTL may not undercut the marker's
                // (ADR-48): raise it and store the raised value.
                if let Some(marker) = self.config.subject_delete_marker_ttl {
                    let marker = marker.max(0) as u64;
                    if self.config.max_msgs_per_subject > 1 && ttl != NEVER && ttl < marker {
                        ttl = marker;
                        if let Some(mut parsed) = headers.and_then(|b| crate::proto::Headers::parse(b).ok()) {
                            parsed.insert("Nats-TTL", &format!("{}", marker / 1_000_000_000));
                            rewritten_headers = Some(parsed.to_bytes());
                        }
                    }
                }
                Some(ttl)
            }
        };
        let headers = match &rewritten_headers {
            Some(b) => Some(&b[..]),
            None => headers,
        };
        let hdr_len = headers.map_or(0, |h| h.len());
        let size = counted_size(self.config.storage, (subj.len() + hdr_len + payload.len() + 16) as u64, hdr_len);
        if self.config.discard == Discard::New && rollup.is_none() {
            if self.config.max_msgs > 0 && self.index.len() as i64 >= self.config.max_msgs {
                return Err(ApiError::store_failed("maximum messages exceeded"));
            }
            if self.config.max_bytes > 0 && (self.bytes + size) as i64 > self.config.max_bytes {
                return Err(ApiError::store_failed("maximum bytes exceeded"));
            }
            if self.config.discard_new_per_subject
                && self.config.max_msgs_per_subject > 0
                && self.subjects.get(subj).map_or(0, |s| s.len()) as i64 >= self.config.max_msgs_per_subject
            {
                return Err(ApiError::store_failed("maximum messages per subject exceeded"));
            }
        }
        let seq = self.append(now, subj, headers, payload, ttl, false)?;
        self.last_msg_id = msg_id.map(Bytes::copy_from_slice);
        if let Some(id) = &self.last_msg_id {
            self.dedup.insert(id.clone(), (seq, now));
            self.dedup_order.push_back((now, id.clone()));
        }
        match rollup {
            Some(true) => {
                self.purge(None, Some(seq), None)?;
            }
            Some(false) if subject::has_wildcard(subj) => {
                // rolls up all it matches, as nats-server's purge does (nats.py `kv.purge("a.*")`)
                let filter = core::str::from_utf8(subj).map_err(|_| ApiError::stream_config("invalid subject"))?;
                self.purge(Some(filter), Some(seq), None)?;
            }
            Some(false) => {
                let older: Vec<u64> = self
                    .subjects
                    .get(subj)
                    .map(|s| s.iter().copied().filter(|s| *s < seq).collect())
                    .unwrap_or_default();
                for s in older {
                    self.remove(s)?;
                }
            }
            None => {}
        }
        self.after_schedule_store(subj, seq, armed, headers)?;
        if self.deferred.is_some() {
            // an atomic batch: limits and sync once the whole batch is written
            return Ok((Stored { seq, duplicate: false }, self.last_msg_id.clone()));
        }
        self.enforce_limits(subj)?;
        Ok((Stored { seq, duplicate: false }, self.last_msg_id.clone()))
    }

    /// Stores a message that passed the checks (or that the stream writes itself: markers).
    fn append(
        &mut self,
        now: u64,
        subj: &[u8],
        headers: Option<&[u8]>,
        payload: &[u8],
        ttl: Option<u64>,
        marker: bool,
    ) -> Result<u64, ApiError> {
        let seq = self.last_seq + 1;
        let hdr_len = headers.map_or(0, <[u8]>::len);
        let size = counted_size(self.config.storage, (subj.len() + hdr_len + payload.len() + 16) as u64, hdr_len);
        let msg = StoredMsg {
            seq,
            subject: self.intern(subj),
            headers: headers.map(Bytes::copy_from_slice),
            payload: Bytes::copy_from_slice(payload),
            time: now,
        };
        match &mut self.deferred {
            Some(held) => held.push(msg.clone()),
            None => self.store.append(&msg).map_err(|e| ApiError::store_failed(format!("{e}")))?,
        }
        self.subjects.entry(msg.subject.clone()).or_default().push_back(seq);
        let expires = match ttl {
            Some(NEVER) => NEVER,
            Some(t) => {
                self.ttls.insert((now.saturating_add(t), seq));
                now.saturating_add(t)
            }
            None => 0,
        };
        self.index.insert(seq, MsgIndex { subject: msg.subject.clone(), size, time: now, expires, marker });
        if self.index.len() == 1 {
            self.first_seq = seq;
        }
        self.last_seq = seq;
        self.last_time = now;
        self.bytes += size;
        self.events.push(StreamEvent::Appended(seq, msg.subject));
        self.note_append(seq);
        Ok(seq)
    }

    fn enforce_limits(&mut self, subj: &[u8]) -> Result<(), ApiError> {
        if self.config.max_msgs_per_subject > 0 {
            let n = self.config.max_msgs_per_subject as usize;
            while self.subjects.get(subj).map_or(0, |s| s.len()) > n {
                let Some(oldest) = self.subjects.get(subj).and_then(|s| s.front().copied()) else { break };
                self.remove(oldest)?;
            }
        }
        if self.config.max_msgs > 0 {
            while self.index.len() as i64 > self.config.max_msgs {
                let Some(first) = self.index.keys().next().copied() else { break };
                self.remove(first)?;
            }
        }
        if self.config.max_bytes > 0 {
            while self.bytes as i64 > self.config.max_bytes {
                let Some(first) = self.index.keys().next().copied() else { break };
                self.remove(first)?;
            }
        }
        Ok(())
    }

    /// Last sequence stored on `filter` (wildcards allowed), 0 if none.
    pub fn last_seq_for(&self, filter: &[u8]) -> u64 {
        if !subject::has_wildcard(filter) {
            return self.subjects.get(filter).and_then(|s| s.back().copied()).unwrap_or(0);
        }
        self.subjects
            .iter()
            .filter(|(s, _)| subject::matches(filter, s))
            .filter_map(|(_, q)| q.back().copied())
            .max()
            .unwrap_or(0)
    }

    /// First sequence ≥ `start` whose subject satisfies `wanted`.
    pub(crate) fn next_matching(&self, start: u64, mut wanted: impl FnMut(&[u8]) -> bool) -> Option<u64> {
        self.index.range(start..).find(|(_, m)| wanted(&m.subject)).map(|(s, _)| *s)
    }

    /// How many stored messages from `start` on satisfy `wanted`.
    pub(crate) fn count_matching(&self, start: u64, mut wanted: impl FnMut(&[u8]) -> bool) -> u64 {
        self.index.range(start..).filter(|(_, m)| wanted(&m.subject)).count() as u64
    }

    /// The sequence of the last message on each subject matching `wanted`, ascending.
    pub(crate) fn last_per_subject(&self, mut wanted: impl FnMut(&[u8]) -> bool) -> Vec<u64> {
        let mut v: Vec<u64> =
            self.subjects.iter().filter(|(s, _)| wanted(s)).filter_map(|(_, q)| q.back().copied()).collect();
        v.sort_unstable();
        v
    }

    /// Adds to `out` the last sequence at or below `max_seq` on each subject matching
    /// `filter` (wildcards allowed).
    pub(crate) fn last_on_each_subject(&self, filter: &[u8], max_seq: u64, out: &mut Vec<u64>) {
        let last_upto = |q: &VecDeque<u64>| q.partition_point(|s| *s <= max_seq).checked_sub(1).map(|i| q[i]);
        if !subject::has_wildcard(filter) {
            out.extend(self.subjects.get(filter).and_then(last_upto));
            return;
        }
        out.extend(self.subjects.iter().filter(|(s, _)| subject::matches(filter, s)).filter_map(|(_, q)| last_upto(q)));
    }

    /// First sequence stored at or after `time`.
    pub(crate) fn seq_at_time(&self, time: u64) -> u64 {
        self.index.iter().find(|(_, m)| m.time >= time).map_or(self.last_seq + 1, |(s, _)| *s)
    }

    /// The sequences missing between the first and the last stored message.
    pub(crate) fn deleted(&self) -> Vec<u64> {
        let mut out = Vec::new();
        let mut next = self.first_seq;
        for seq in self.index.keys() {
            out.extend(next..*seq);
            next = seq + 1;
        }
        out
    }

    pub(crate) fn meta(&self, seq: u64) -> Option<&MsgIndex> {
        self.index.get(&seq)
    }

    pub fn contains(&self, seq: u64) -> bool {
        self.index.contains_key(&seq)
    }

    /// Reads a stored message.
    pub fn load(&mut self, seq: u64) -> Result<Option<StoredMsg>, ApiError> {
        if !self.index.contains_key(&seq) {
            return Ok(None);
        }
        if let Some(held) = self.deferred.as_ref().and_then(|d| d.iter().find(|m| m.seq == seq)) {
            return Ok(Some(held.clone()));
        }
        self.store.load(seq).map_err(io_err)
    }

    /// Appends and removals since the last call, and whether the stream was cleared
    /// wholesale (everything before the events).
    pub(crate) fn take_events(&mut self) -> (Vec<StreamEvent>, bool) {
        (core::mem::take(&mut self.events), core::mem::replace(&mut self.cleared, false))
    }

    pub fn store_mut(&mut self) -> &mut dyn StreamStore {
        &mut *self.store
    }

    /// Replaces the configuration (update), re-applying limits.
    pub fn update_config(&mut self, config: StreamConfig) -> Result<(), ApiError> {
        self.config = config;
        let subjects: Vec<Bytes> = self.subjects.keys().cloned().collect();
        for s in subjects {
            self.enforce_limits(&s)?;
        }
        Ok(())
    }
}

fn parse_u64(v: &[u8]) -> Result<u64, ApiError> {
    core::str::from_utf8(v).ok().and_then(|s| s.trim().parse().ok()).ok_or(ApiError::BAD_REQUEST)
}

#[cfg(test)]
mod tests;
