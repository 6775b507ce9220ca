//! The JetStream engine: every stream and consumer, fed messages and time by the host.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;
use serde::Serialize;

use super::advisory::MsgAdvisory;
use super::config::{Retention, StorageType, StreamConfig};
use super::consumer::{parse_ack_subject, AckOutcome, Consumers, PushWaiting, ACK_PREFIX};
use super::domain;
use super::errors::ApiError;
use super::group_commit::{pub_answer, Held};
use super::limits::StoreLimits;
use super::store::{Storage, StoredMsg};
use super::stream::{Stream, StreamEvent};
use super::Outbound;

/// Answers "is anybody subscribed to this subject?" for push consumers.
pub trait Interest {
    fn has_interest(&self, subject: &[u8]) -> bool;
}

impl<F: Fn(&[u8]) -> bool> Interest for F {
    fn has_interest(&self, subject: &[u8]) -> bool {
        self(subject)
    }
}

/// A change to the engine's subscriptions for the host to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubChange {
    Add(String),
    Remove(String),
}

/// Engine totals, as monitoring reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub streams: u64,
    pub consumers: u64,
    pub messages: u64,
    pub bytes: u64,
    pub memory: u64,
    pub storage: u64,
    /// The sums of the streams' `max_bytes` per storage type (see [`StoreLimits`]).
    pub reserved_memory: u64,
    pub reserved_storage: u64,
    pub api_total: u64,
    pub api_errors: u64,
}

/// A publish acknowledgement, as `{"stream","seq","duplicate"}` on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PubAck {
    pub stream: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    pub seq: u64,
    #[serde(skip_serializing_if = "core::ops::Not::not")]
    pub duplicate: bool,
    /// A counter's total after this increment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val: Option<String>,
    /// The committed atomic batch and its size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

pub(super) struct Entry {
    pub(super) stream: Stream,
    pub(super) consumers: Consumers,
    /// The last sequence written into the saved meta, to notice when it must be saved again.
    pub(super) saved_last_seq: u64,
}

impl Entry {
    /// Removes `seq` if the stream's retention says it is finished.
    fn retire_one(&mut self, seq: u64) {
        match self.stream.config.retention {
            Retention::Limits => {}
            Retention::Workqueue => {
                let _ = self.stream.remove(seq);
            }
            Retention::Interest => {
                let Some(subject) = self.stream.meta(seq).map(|m| m.subject.clone()) else { return };
                if self.consumers.values().all(|c| c.is_done_with(seq, &subject)) {
                    let _ = self.stream.remove(seq);
                }
            }
        }
    }
}

/// Subjects the engine always listens on.
const API_SUBJECTS: [&str; 3] = ["$JS.API.>", "$JS.ACK.>", "$JS.FC.>"];

pub struct JetStream {
    pub(super) streams: crate::vecmap::VecMap<String, Entry>,
    pub(super) file: Box<dyn Storage>,
    pub(super) memory: Box<dyn Storage>,
    pub(super) out: Vec<Outbound>,
    /// Publishes of this step waiting for their sync, and their acks.
    pub(super) held: Held,
    pub(super) subs: Vec<SubChange>,
    pub(super) api_total: u64,
    pub(super) api_errors: u64,
    pub(super) rng: fastrand::Rng,
    next_save: u64,
    /// When push consumers without interest next look for some (interest is polled).
    interest_poll: u64,
    /// Push consumers without a subscriber, over every stream (kept by each [`Consumers`]).
    pub(super) push_waiting: PushWaiting,
    pub(super) limits: StoreLimits,
    /// `jetstream { domain }`: see `domain.rs`.
    pub(super) domain: Option<String>,
    /// Atomic batches staged until their commit.
    pub(super) batches: super::batch::Batches,
    /// Mirrors and sources following their origins, by stream.
    pub(super) sourcing: crate::vecmap::VecMap<String, super::source::Links>,
}

/// How often a push consumer without a subscriber checks again.
pub(super) const INTEREST_POLL: u64 = 50_000_000;

/// How often dirty consumer states and stream metas are written out.
const SAVE_INTERVAL: u64 = 1_000_000_000;

impl JetStream {
    /// Opens the engine, recovering every stream the file storage holds. Streams that fail to
    /// load are reported and skipped, never fatal.
    pub fn new(file: Box<dyn Storage>, memory: Box<dyn Storage>, now: u64, seed: u64) -> (JetStream, Vec<String>) {
        let mut js = JetStream {
            streams: crate::vecmap::VecMap::new(),
            file,
            memory,
            out: Vec::new(),
            held: Held::default(),
            subs: API_SUBJECTS.iter().map(|s| SubChange::Add((*s).into())).collect(),
            api_total: 0,
            api_errors: 0,
            rng: fastrand::Rng::with_seed(seed),
            next_save: now + SAVE_INTERVAL,
            interest_poll: now,
            push_waiting: PushWaiting::default(),
            limits: StoreLimits::default(),
            domain: None,
            batches: Default::default(),
            sourcing: crate::vecmap::VecMap::new(),
        };
        let mut warnings = Vec::new();
        match js.file.recover() {
            Ok(found) => {
                for (meta, store) in found {
                    if let Err(e) = js.restore(meta, store, now, &mut warnings) {
                        warnings.push(e);
                    }
                }
            }
            Err(e) => warnings.push(format!("recovering streams: {e}")),
        }
        (js, warnings)
    }

    /// Subscription changes to apply, in order (the API subjects first).
    pub fn subscriptions(&mut self) -> Vec<SubChange> {
        core::mem::take(&mut self.subs)
    }

    /// Messages to publish, in order. Publishes waiting for a sync are made durable first
    /// (see `group_commit.rs`): no ack leaves before the sync that covers it. Hosts run
    /// [`JetStream::commit_step`] before, which also delivers what the sync made visible.
    pub fn take_outbound(&mut self) -> Vec<Outbound> {
        let _ = self.commit_publishes();
        core::mem::take(&mut self.out)
    }

    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    pub fn consumer_count(&self) -> usize {
        self.streams.values().map(|e| e.consumers.len()).sum()
    }

    /// Totals for monitoring (`/jsz`, `/varz`).
    pub fn stats(&self) -> Stats {
        let (memory, storage) = self.usage();
        let messages = self.streams.values().map(|e| e.stream.msgs()).sum();
        Stats {
            streams: self.stream_count() as u64,
            consumers: self.consumer_count() as u64,
            messages,
            bytes: memory + storage,
            memory,
            storage,
            reserved_memory: self.reserved(StorageType::Memory),
            reserved_storage: self.reserved(StorageType::File),
            api_total: self.api_total,
            api_errors: self.api_errors,
        }
    }

    /// Total bytes stored in streams of each storage type: (memory, file).
    pub fn usage(&self) -> (u64, u64) {
        (self.used(StorageType::Memory), self.used(StorageType::File))
    }

    /// A message published on one of the engine's subjects.
    pub fn handle_msg(
        &mut self,
        now: u64,
        subject: &[u8],
        reply: Option<&[u8]>,
        headers: Option<&[u8]>,
        payload: &[u8],
        interest: &dyn Interest,
    ) {
        if let Some(rest) = subject.strip_prefix(b"$JS.API.") {
            self.api(now, rest, reply.map(Bytes::copy_from_slice), headers, payload, interest);
        } else if let Some(mapped) = self.domain.as_deref().and_then(|d| domain::map(d, subject)) {
            match mapped {
                domain::Mapped::Api(rest) => {
                    self.api(now, rest, reply.map(Bytes::copy_from_slice), headers, payload, interest)
                }
                domain::Mapped::Publish(subject) => self.on_publish(now, subject, reply, headers, payload, interest),
            }
        } else if subject.starts_with(ACK_PREFIX) {
            self.on_ack(now, subject, reply, payload, interest);
        } else if let Some(rest) = subject.strip_prefix(b"$JS.FC.") {
            // $JS.FC.<stream>.<consumer>.<token>
            let toks: Vec<&[u8]> = rest.split(|b| *b == b'.').collect();
            if let [stream, consumer, _token] = toks.as_slice() {
                let stream = String::from_utf8_lossy(stream).into_owned();
                let consumer = String::from_utf8_lossy(consumer).into_owned();
                if let Some(c) = self.streams.get_mut(&stream).and_then(|e| e.consumers.get_mut(&consumer)) {
                    let acked = c.flow_control_answer(subject, headers);
                    self.retire(&stream, &acked);
                }
                self.pump_stream(&stream, now, interest);
            }
        } else if !self.external_msg(now, subject, reply, headers, payload, interest) {
            self.on_publish(now, subject, reply, headers, payload, interest);
        }
    }

    fn on_publish(
        &mut self,
        now: u64,
        subject: &[u8],
        reply: Option<&[u8]>,
        headers: Option<&[u8]>,
        payload: &[u8],
        interest: &dyn Interest,
    ) {
        let Some(name) = self.stream_for(subject) else { return };
        if self.on_batch_publish(now, &name, subject, reply, headers, payload, interest) {
            return;
        }
        let result = self.store_msg(&name, now, subject, headers, payload, true);
        let (no_ack, wait) =
            self.streams.get(&name).map_or((false, false), |e| (e.stream.config.no_ack, e.stream.acks_wait_for_sync()));
        let wait = wait && result.is_ok();
        if wait {
            self.defer_sync(&name);
        }
        if let (Some(reply), false) = (reply.filter(|r| !r.is_empty()), no_ack) {
            self.out.push(Outbound::data(Bytes::copy_from_slice(reply), pub_answer(&result, &name)));
            if wait {
                self.hold_last_ack(&name);
            }
        }
        self.pump_stream(&name, now, interest);
    }

    /// The stream that captures `subject`, if any.
    pub fn stream_for(&self, subject: &[u8]) -> Option<String> {
        self.streams.iter().find(|(_, e)| e.stream.captures(subject)).map(|(n, _)| n.clone())
    }

    pub(super) fn store_msg(
        &mut self,
        name: &str,
        now: u64,
        subject: &[u8],
        headers: Option<&[u8]>,
        payload: &[u8],
        defer: bool,
    ) -> Result<PubAck, ApiError> {
        let storage = self.streams.get(name).ok_or(ApiError::STREAM_NOT_FOUND)?.stream.config.storage;
        self.check_room(storage)?;
        let stored = self.store_transformed(name, now, subject, headers, payload, defer)?;
        let entry = self.streams.get_mut(name).ok_or(ApiError::STREAM_NOT_FOUND)?;
        if !stored.duplicate && entry.stream.config.retention == Retention::Interest && entry.consumers.is_empty() {
            // Nobody is interested: the sequence is used, the message not kept.
            let _ = entry.stream.remove(stored.seq);
        }
        let counter = entry.stream.config.allow_msg_counter && !stored.duplicate;
        let val = counter.then(|| entry.stream.counter_value(stored.seq)).flatten();
        let domain = self.domain.clone();
        Ok(PubAck {
            stream: name.into(),
            domain,
            seq: stored.seq,
            duplicate: stored.duplicate,
            val,
            batch: None,
            count: None,
        })
    }

    /// Publishes into whichever stream captures `subject`, as a client publish would, and
    /// returns the ack (for in-process hosts: the browser runtime, KV and object stores).
    pub fn publish(
        &mut self,
        now: u64,
        subject: &[u8],
        headers: Option<&[u8]>,
        payload: &[u8],
        interest: &dyn Interest,
    ) -> Result<PubAck, ApiError> {
        let name = self.stream_for(subject).ok_or(ApiError::STREAM_NOT_FOUND)?;
        let result = self.store_msg(&name, now, subject, headers, payload, false);
        self.pump_stream(&name, now, interest);
        result
    }

    /// Creates a stream from a configuration (the `STREAM.CREATE` rules: an identical
    /// existing stream is fine, a different one is an error).
    pub fn add_stream(&mut self, now: u64, mut config: StreamConfig) -> Result<(), ApiError> {
        config.normalize()?;
        let config = self.with_mirror_direct(config);
        if let Some(e) = self.streams.get(&config.name) {
            return if e.stream.config == config { Ok(()) } else { Err(ApiError::STREAM_NAME_EXISTS) };
        }
        let overlap = self.streams.values().any(|e| {
            e.stream
                .config
                .subjects
                .iter()
                .any(|a| config.subjects.iter().any(|b| crate::subject::overlaps(a.as_bytes(), b.as_bytes())))
        });
        if overlap {
            return Err(ApiError::SUBJECTS_OVERLAP);
        }
        self.check_create(&config).and_then(|()| self.check_sourcing(&config))?;
        self.create_stream(config, now).map_err(|e| ApiError::stream_create(format!("{e}")))
    }

    /// A stream's configuration.
    pub fn stream_config(&self, name: &str) -> Option<&StreamConfig> {
        self.streams.get(name).map(|e| &e.stream.config)
    }

    /// Every stream's name, in order (hosts list KV buckets and object stores by name).
    pub fn stream_name_list(&self) -> impl Iterator<Item = &str> {
        self.streams.keys().map(String::as_str)
    }

    /// The state of a stream (messages, bytes, sequences).
    pub fn stream_state(&self, name: &str) -> Option<super::stream::StreamState> {
        self.streams.get(name).map(|e| e.stream.state(e.consumers.len(), None))
    }

    /// Removes a stream and everything in it.
    pub fn remove_stream(&mut self, name: &str) -> bool {
        self.delete_stream(name)
    }

    /// The newest message on `filter` (wildcards allowed) in stream `name`.
    pub fn last_msg(&mut self, name: &str, filter: &[u8]) -> Result<Option<StoredMsg>, ApiError> {
        let e = self.streams.get_mut(name).ok_or(ApiError::STREAM_NOT_FOUND)?;
        let seq = e.stream.last_seq_for(filter);
        if seq == 0 {
            return Ok(None);
        }
        e.stream.load(seq)
    }

    /// One message by sequence.
    pub fn msg(&mut self, name: &str, seq: u64) -> Result<Option<StoredMsg>, ApiError> {
        let e = self.streams.get_mut(name).ok_or(ApiError::STREAM_NOT_FOUND)?;
        e.stream.load(seq)
    }

    /// The first stored message on `filter` at or after sequence `start` (streaming reads).
    pub fn next_msg(&mut self, name: &str, filter: &[u8], start: u64) -> Result<Option<StoredMsg>, ApiError> {
        let e = self.streams.get_mut(name).ok_or(ApiError::STREAM_NOT_FOUND)?;
        match e.stream.next_matching(start, |s| crate::subject::matches(filter, s)) {
            Some(seq) => e.stream.load(seq),
            None => Ok(None),
        }
    }

    /// Every stored message on `filter`, in order (`last_per_subject`: only each subject's
    /// newest).
    pub fn messages(&mut self, name: &str, filter: &[u8], last_per_subject: bool) -> Result<Vec<StoredMsg>, ApiError> {
        let e = self.streams.get_mut(name).ok_or(ApiError::STREAM_NOT_FOUND)?;
        let wanted = |s: &[u8]| crate::subject::matches(filter, s);
        let seqs: Vec<u64> = if last_per_subject {
            e.stream.last_per_subject(wanted)
        } else {
            let mut v = Vec::new();
            let mut at = 0;
            while let Some(seq) = e.stream.next_matching(at, wanted) {
                v.push(seq);
                at = seq + 1;
            }
            v
        };
        let mut out = Vec::with_capacity(seqs.len());
        for seq in seqs {
            if let Some(m) = e.stream.load(seq)? {
                out.push(m);
            }
        }
        Ok(out)
    }

    /// Purges messages on `filter` from stream `name`, keeping the newest `keep` per subject.
    pub fn purge(
        &mut self,
        now: u64,
        name: &str,
        filter: Option<&str>,
        keep: Option<u64>,
        interest: &dyn Interest,
    ) -> Result<u64, ApiError> {
        let e = self.streams.get_mut(name).ok_or(ApiError::STREAM_NOT_FOUND)?;
        if e.stream.config.deny_purge || e.stream.config.sealed {
            return Err(ApiError::PURGE_DENIED);
        }
        let n = e.stream.purge(filter, None, keep)?;
        self.save_stream_meta(name);
        self.pump_stream(name, now, interest);
        Ok(n)
    }

    fn on_ack(&mut self, now: u64, subject: &[u8], reply: Option<&[u8]>, payload: &[u8], interest: &dyn Interest) {
        let Some(ack) = parse_ack_subject(subject) else { return };
        let sseq = ack.stream_seq;
        let (Ok(stream), Ok(consumer)) = (core::str::from_utf8(ack.stream), core::str::from_utf8(ack.consumer)) else {
            return;
        };
        let stream = String::from(stream);
        let reply_bytes = reply.map(Bytes::copy_from_slice);
        let Some(entry) = self.streams.get_mut(&stream) else { return };
        let Some(c) = entry.consumers.get_mut(consumer) else { return };
        // a sequence past the consumer's cursor was never delivered as far as it knows (its
        // state from before a power loss was lost): the ack does nothing, so nothing is
        // confirmed, and the client's AckSync fails rather than promise no redelivery
        let known = sseq < c.state.sseq;
        let mut out = Vec::new();
        let outcome = c.ack(now, sseq, payload, reply_bytes.as_ref(), interest, &mut out);
        if matches!(outcome, AckOutcome::Acked(_) | AckOutcome::Terminated { .. }) {
            c.last_ack = now;
        }
        // The "double ack" below tells the client its ack is done. With `sync_interval:
        // always` that must mean durable, as a publish's ack does: save the consumer's state
        // (fsynced at once) before confirming, and confirm nothing if that failed. Otherwise
        // a power loss after the confirmation moves the ack floor back and redelivers. Saved
        // even when this ack changed nothing: an earlier ack that asked for no confirmation
        // (or a redelivery that found its message gone) may have, and that is what the
        // client now relies on.
        let mut confirm = reply_bytes.is_some() && known;
        if confirm && entry.stream.acks_wait_for_sync() {
            confirm = entry.stream.store_mut().save_consumer(&c.name, &c.saved_state()).is_ok();
            c.dirty = !confirm;
        }
        let cname = c.name.clone();
        self.out.append(&mut out);
        match outcome {
            AckOutcome::Acked(seqs) => self.retire(&stream, &seqs),
            AckOutcome::Terminated { sseq, cseq, deliveries, reason } => {
                let adv = MsgAdvisory {
                    consumer_seq: Some(cseq),
                    reason: Some(reason),
                    ..MsgAdvisory::new(&stream, &cname, sseq, deliveries)
                };
                self.msg_advisory("MSG_TERMINATED", "terminated", adv, now);
                self.retire_terminated(&stream, sseq);
            }
            AckOutcome::Naked { sseq, cseq, deliveries } => {
                let adv =
                    MsgAdvisory { consumer_seq: Some(cseq), ..MsgAdvisory::new(&stream, &cname, sseq, deliveries) };
                self.msg_advisory("MSG_NAKED", "nak", adv, now);
            }
            AckOutcome::None => {}
        }
        // the "double ack": an empty reply once the ack is processed, except for `+NXT`,
        // whose reply subject is the inbox of the pull it makes (nats-server skips it too)
        let asks_next = payload.trim_ascii_start().starts_with(b"+NXT");
        if let Some(r) = reply_bytes.filter(|_| confirm && !asks_next) {
            self.out.push(Outbound::data(r, Bytes::new()));
        }
        self.pump_stream(&stream, now, interest);
    }

    /// Removes messages that retention says are finished after acks.
    pub(super) fn retire(&mut self, stream: &str, seqs: &[u64]) {
        let Some(entry) = self.streams.get_mut(stream) else { return };
        for s in seqs {
            entry.retire_one(*s);
        }
    }

    /// [`Self::retire`] for every stored message in `from..=to`: a consumer deleted or reset
    /// may have been the last holder of a whole stream's worth. Walks the stored messages,
    /// not the numbers, so a range full of gaps costs what it holds and a long one is not
    /// collected into a list first.
    pub(super) fn retire_range(&mut self, stream: &str, from: u64, to: u64) {
        let Some(entry) = self.streams.get_mut(stream) else { return };
        if entry.stream.config.retention == Retention::Limits {
            return;
        }
        let mut next = from;
        while let Some(seq) = entry.stream.next_matching(next, |_| true).filter(|s| *s <= to) {
            entry.retire_one(seq);
            next = seq + 1;
        }
    }

    fn retire_terminated(&mut self, stream: &str, seq: u64) {
        let is_wq = self.streams.get(stream).is_some_and(|e| e.stream.config.retention != Retention::Limits);
        if is_wq {
            self.retire(stream, &[seq]);
        }
    }

    pub(super) fn advisory<T: Serialize>(&mut self, subject: String, body: &T) {
        if let Ok(json) = serde_json::to_vec(body) {
            self.out.push(Outbound::data(Bytes::from(subject), Bytes::from(json)));
        }
    }

    /// A 22-character random id in the style of a NATS nuid.
    pub(super) fn nuid(&mut self) -> String {
        super::consumer::priority::nuid(&mut self.rng)
    }

    /// Delivers what can be delivered on one stream's consumers and settles removals.
    pub(super) fn pump_stream(&mut self, name: &str, now: u64, interest: &dyn Interest) {
        // appends and removals reach the consumers before they deliver
        self.settle_events(name);
        if self.streams.get(name).is_some_and(|e| e.stream.has_unsynced()) {
            // held back until the step's commit (`group_commit.rs`), which pumps again
            self.defer_sync(name);
        }
        let Some(entry) = self.streams.get_mut(name) else { return };
        let mut out = Vec::new();
        let mut acked = Vec::new();
        entry.consumers.bind_push(now, interest);
        for c in entry.consumers.values_mut() {
            c.deliver(&mut entry.stream, now, interest, &mut out, &mut acked);
        }
        let exhausted: Vec<(String, u64, u32)> = entry
            .consumers
            .values_mut()
            .flat_map(|c| {
                let n = c.name.clone();
                c.take_exhausted().into_iter().map(move |(s, d)| (n.clone(), s, d))
            })
            .collect();
        self.out.append(&mut out);
        if !acked.is_empty() {
            self.retire(name, &acked);
        }
        for (cname, seq, deliveries) in exhausted {
            self.max_deliveries_advisory(name, &cname, seq, deliveries, now);
        }
        self.consumer_advisories(name, now);
        self.settle_events(name);
    }

    /// Tells the consumers of `name` what the stream appended and dropped, in order.
    pub(super) fn settle_events(&mut self, name: &str) {
        let Some(entry) = self.streams.get_mut(name) else { return };
        let (events, cleared) = entry.stream.take_events();
        if cleared {
            for c in entry.consumers.values_mut() {
                c.recount(&entry.stream);
            }
        }
        for ev in events {
            for c in entry.consumers.values_mut() {
                match &ev {
                    StreamEvent::Appended(seq, subject) => c.on_append(*seq, subject),
                    StreamEvent::Removed(seq, subject) => c.on_remove(*seq, subject),
                }
            }
        }
    }

    /// When the engine next needs [`JetStream::handle_timeout`].
    pub fn next_deadline(&self, now: u64) -> Option<u64> {
        let mut next = Some(self.next_save);
        next = next.min(self.batches.next_deadline()).or(next);
        next = next.min(self.sources_deadline(now)).or(next);
        let mut consider = |t: Option<u64>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n: u64| n.min(t)));
            }
        };
        for e in self.streams.values() {
            consider(e.stream.next_expiry());
            for c in e.consumers.values() {
                consider(c.next_deadline());
                let threshold = c.config().inactive_threshold;
                if threshold > 0 {
                    consider(Some(c.last_active + threshold as u64));
                }
                if c.is_push() && !c.push_bound() {
                    consider(Some(self.interest_poll.max(now.saturating_sub(INTEREST_POLL))));
                }
            }
        }
        next
    }

    /// Whether a push consumer waits for someone to subscribe to its deliver subject: a host
    /// that learns of new subscriptions cheaply calls [`JetStream::recheck_push_interest`]
    /// then, instead of leaving the consumer to the next interest poll.
    pub fn awaits_push_interest(&self) -> bool {
        self.push_waiting.get() > 0
    }

    /// How many push consumers wait for a subscriber on their deliver subject.
    pub fn push_consumers_waiting(&self) -> usize {
        self.push_waiting.get()
    }

    /// Delivers on the streams whose push consumers had no subscriber, now that one may have
    /// come (nats-server starts delivering when the interest arrives; clients such as
    /// async-nats and nats.py create the consumer before they subscribe its deliver subject).
    pub fn recheck_push_interest(&mut self, now: u64, interest: &dyn Interest) {
        let waiting: Vec<String> =
            self.streams.iter().filter(|(_, e)| e.consumers.awaits_push_interest()).map(|(n, _)| n.clone()).collect();
        for name in &waiting {
            self.pump_stream(name, now, interest);
        }
    }

    /// Fires everything due at `now`: expiries, redeliveries, pull timeouts, heartbeats,
    /// inactive consumers, and the periodic save of consumer state.
    pub fn handle_timeout(&mut self, now: u64, interest: &dyn Interest) {
        self.interest_poll = now + INTEREST_POLL;
        self.expire_batches(now);
        self.pump_sources(now, interest);
        let names: Vec<String> = self.streams.keys().cloned().collect();
        for name in &names {
            let mut gone = Vec::new();
            if let Some(entry) = self.streams.get_mut(name) {
                let _ = entry.stream.expire(now);
                let mut out = Vec::new();
                entry.consumers.bind_push(now, interest);
                for c in entry.consumers.values_mut() {
                    if !c.is_push() && c.has_waiting() {
                        c.last_active = now;
                    }
                    c.on_timeout(now, &mut out);
                    let threshold = c.config().inactive_threshold;
                    if threshold > 0 && now.saturating_sub(c.last_active) >= threshold as u64 {
                        gone.push(c.name.clone());
                    }
                }
                self.out.append(&mut out);
            }
            self.pump_stream(name, now, interest);
            for cname in gone {
                self.delete_consumer(name, &cname, now);
            }
        }
        if now >= self.next_save {
            self.flush();
            self.next_save = now + SAVE_INTERVAL;
        }
    }

    pub(super) fn change_subjects(&mut self, old: &[String], new: &[String]) {
        for s in old {
            if !new.contains(s) {
                self.subs.push(SubChange::Remove(s.clone()));
            }
        }
        for s in new {
            if !old.contains(s) {
                self.subs.push(SubChange::Add(s.clone()));
            }
        }
    }

    pub(super) fn delete_stream(&mut self, name: &str) -> bool {
        let Some(mut entry) = self.streams.remove(name) else { return false };
        let mut out = Vec::new();
        for c in entry.consumers.values_mut() {
            c.release_waiting(&mut out);
        }
        self.out.append(&mut out);
        for s in &entry.stream.config.subjects {
            self.subs.push(SubChange::Remove(s.clone()));
        }
        let _ = entry.stream.store_mut().destroy();
        true
    }

    pub(super) fn delete_consumer(&mut self, stream: &str, name: &str, _now: u64) -> bool {
        let Some(entry) = self.streams.get_mut(stream) else { return false };
        let Some(mut c) = entry.consumers.remove(name) else { return false };
        let mut out = Vec::new();
        c.release_waiting(&mut out);
        self.out.append(&mut out);
        let _ = entry.stream.store_mut().remove_consumer(name);
        if entry.stream.config.retention == Retention::Interest {
            // messages only this consumer still held may go now
            let (first, last) = (entry.stream.first_seq(), entry.stream.last_seq());
            self.retire_range(stream, first, last);
            self.settle_events(stream);
        }
        true
    }
}
