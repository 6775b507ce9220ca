//! A stream's `subject_transform` and `republish`: their configuration, nats-server's checks
//! on it, the subject a captured message is stored under, and the copy published after it
//! is stored. The mapping rules themselves are [`crate::transform`].

use alloc::borrow::Cow;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde::Serialize;

use super::config::StreamConfig;
use super::engine::JetStream;
use super::errors::ApiError;
use super::stream::Stored;
use super::time::rfc3339;
use super::Outbound;
use crate::transform::{validate_mapping, SubjectTransform};
use crate::vecmap::VecMap;

fn is_false(b: &bool) -> bool {
    !*b
}

/// `subject_transform`: applied to a captured message before anything else, so the stream
/// stores (and limits, deduplicates, checks) it under the mapped subject.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct SubjectTransformConfig {
    pub src: String,
    pub dest: String,
}

/// `republish`: after a message is stored, a copy goes to the mapped subject with the stream's
/// headers (lightweight clients follow a stream this way without a consumer).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct RePublish {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub src: String,
    pub dest: String,
    #[serde(skip_serializing_if = "is_false")]
    pub headers_only: bool,
}

/// nats-server's checks on both, in its order and words; also fills in what it fills in
/// (an empty republish source means `>`; `>` → `>` with a transform on the stream's only
/// subject republishes under the transformed subject).
pub(super) fn check(cfg: &mut StreamConfig) -> Result<(), ApiError> {
    if let Some(t) = &cfg.subject_transform {
        if !t.src.is_empty() && crate::subject::validate_subscribe(t.src.as_bytes()).is_err() {
            return Err(ApiError::with(400, 10155, format!("stream transform source: invalid subject {}", t.src)));
        }
        validate_mapping(&t.src, &t.dest).map_err(|e| ApiError::with(400, 10156, format!("stream transform: {e}")))?;
    }
    let Some(r) = &mut cfg.republish else { return Ok(()) };
    if r.src.is_empty() {
        r.src = ">".into();
    }
    if let Some(t) = &cfg.subject_transform {
        if r.src == ">" && r.dest == ">" && cfg.subjects.len() == 1 && t.src == cfg.subjects[0] {
            r.src = t.dest.clone();
            r.dest = t.dest.clone();
        }
    }
    if cfg.subjects.iter().any(|s| crate::subject::overlaps(r.dest.as_bytes(), s.as_bytes())) {
        return Err(ApiError::stream_config("stream configuration for republish destination forms a cycle"));
    }
    if SubjectTransform::new(&r.src, &r.dest).is_err() {
        return Err(ApiError::stream_config(format!(
            "stream configuration for republish with transform from '{}' to '{}' not valid",
            r.src, r.dest
        )));
    }
    Ok(())
}

/// The compiled rules of one stream (compiled per message: a rule is a few tokens, and the
/// stream's config stays the one place they live).
fn compiled(rule: Option<(&str, &str)>) -> Option<SubjectTransform> {
    rule.and_then(|(src, dest)| SubjectTransform::new(src, dest).ok().flatten())
}

/// The subject a captured message is stored under: mapped when the stream's transform
/// matches it, as published otherwise.
pub(super) fn stored_subject<'a>(
    cfg: &StreamConfig,
    subject: &'a [u8],
    random: &mut dyn FnMut() -> u32,
) -> Cow<'a, [u8]> {
    let rule = cfg.subject_transform.as_ref().map(|t| (t.src.as_str(), t.dest.as_str()));
    match compiled(rule).and_then(|t| t.map(subject, random)) {
        Some(mapped) => Cow::Owned(mapped),
        None => Cow::Borrowed(subject),
    }
}

/// Where a stored message is republished, if anywhere (a mapped subject that is not a valid
/// publish subject stops the republish, as in nats-server).
pub(super) fn republish_to(cfg: &StreamConfig, subject: &[u8], random: &mut dyn FnMut() -> u32) -> Option<Vec<u8>> {
    let rule = cfg.republish.as_ref().map(|r| (r.src.as_str(), r.dest.as_str()));
    let to = compiled(rule)?.map(subject, random)?;
    crate::subject::validate_publish(&to).is_ok().then_some(to)
}

/// A stored message, as [`republished`] needs it.
pub(super) struct MsgRef<'a> {
    pub stream: &'a str,
    pub subject: &'a [u8],
    pub seq: u64,
    pub time: u64,
    /// The sequence of the previous message on the same subject (0 if none).
    pub last_seq: u64,
    pub headers: Option<&'a [u8]>,
    pub payload: &'a [u8],
}

/// The republished copy: the message's own headers followed by `Nats-Stream`,
/// `Nats-Subject`, `Nats-Sequence`, `Nats-Time-Stamp`, `Nats-Last-Sequence` (and
/// `Nats-Msg-Size` without the body when `headers_only`).
pub(super) fn republished(to: Vec<u8>, m: &MsgRef<'_>, headers_only: bool) -> Outbound {
    let mut h: Vec<u8> = match m.headers {
        Some(h) if h.ends_with(b"\r\n\r\n") => h[..h.len() - 2].to_vec(),
        _ => b"NATS/1.0\r\n".to_vec(),
    };
    let subject = String::from_utf8_lossy(m.subject);
    let mut add = |k: &str, v: &str| h.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    add("Nats-Stream", m.stream);
    add("Nats-Subject", &subject);
    add("Nats-Sequence", &format!("{}", m.seq));
    add("Nats-Time-Stamp", &rfc3339(m.time));
    add("Nats-Last-Sequence", &format!("{}", m.last_seq));
    if headers_only {
        add("Nats-Msg-Size", &format!("{}", m.payload.len()));
    }
    h.extend_from_slice(b"\r\n");
    let to = bytes::Bytes::from(to);
    let payload = if headers_only { bytes::Bytes::new() } else { bytes::Bytes::copy_from_slice(m.payload) };
    Outbound { route: to.clone(), subject: to, reply: None, headers: Some(bytes::Bytes::from(h)), payload }
}

impl JetStream {
    /// Stores a captured message in stream `name` under its transformed subject, and queues
    /// its republished copy (not for a duplicate, which is not stored again).
    pub(super) fn store_transformed(
        &mut self,
        name: &str,
        now: u64,
        subject: &[u8],
        headers: Option<&[u8]>,
        payload: &[u8],
        defer: bool,
    ) -> Result<Stored, ApiError> {
        let entry = self.streams.get_mut(name).ok_or(ApiError::STREAM_NOT_FOUND)?;
        let rng = &mut self.rng;
        let mut random = || rng.u32(..);
        let subject = stored_subject(&entry.stream.config, subject, &mut random);
        let to = republish_to(&entry.stream.config, &subject, &mut random);
        let last_seq = if to.is_some() { entry.stream.last_seq_for(&subject) } else { 0 };
        // deferred: durable at the engine's group commit, which also holds this step's output
        let stored = if defer {
            entry.stream.publish_deferred(now, &subject, headers, payload)?
        } else {
            entry.stream.publish(now, &subject, headers, payload)?
        };
        if let (Some(to), false) = (to, stored.duplicate) {
            let headers_only = entry.stream.config.republish.as_ref().is_some_and(|r| r.headers_only);
            let m = MsgRef { stream: name, subject: &subject, seq: stored.seq, time: now, last_seq, headers, payload };
            self.out.push(republished(to, &m, headers_only));
            if defer && entry.stream.acks_wait_for_sync() {
                self.hold_last_copy(name);
            }
        }
        Ok(stored)
    }

    /// The subject a message published to stream `name` is stored under (an atomic batch
    /// stages it so, then its checks and its commit see what will be stored).
    pub(super) fn transformed_subject(&mut self, name: &str, subject: &[u8]) -> Vec<u8> {
        let Some(entry) = self.streams.get(name) else { return subject.to_vec() };
        let rng = &mut self.rng;
        let mut random = || rng.u32(..);
        stored_subject(&entry.stream.config, subject, &mut random).into_owned()
    }

    /// What each stored subject's last sequence was before a batch commits, for the
    /// `Nats-Last-Sequence` of its republished copies; empty when the stream does not
    /// republish.
    pub(super) fn last_seqs_before(&self, name: &str, subjects: &[&[u8]]) -> VecMap<Vec<u8>, u64> {
        let Some(entry) = self.streams.get(name) else { return VecMap::new() };
        if entry.stream.config.republish.is_none() {
            return VecMap::new();
        }
        subjects.iter().map(|s| (s.to_vec(), entry.stream.last_seq_for(s))).collect()
    }

    /// Queues the republished copies of a committed batch (`first..=last`), as the ordinary
    /// publish path does for one message; `last_seqs` from [`Self::last_seqs_before`].
    pub(super) fn republish_committed(
        &mut self,
        name: &str,
        first: u64,
        last: u64,
        mut last_seqs: VecMap<Vec<u8>, u64>,
    ) -> Result<(), ApiError> {
        let Some(entry) = self.streams.get_mut(name) else { return Ok(()) };
        let Some(headers_only) = entry.stream.config.republish.as_ref().map(|r| r.headers_only) else {
            return Ok(());
        };
        let rng = &mut self.rng;
        let mut random = || rng.u32(..);
        for seq in first..=last {
            let Some(m) = entry.stream.load(seq)? else { continue };
            let prev = last_seqs.insert(m.subject.to_vec(), seq).unwrap_or(0);
            if let Some(to) = republish_to(&entry.stream.config, &m.subject, &mut random) {
                let r = MsgRef {
                    stream: name,
                    subject: &m.subject,
                    seq,
                    time: m.time,
                    last_seq: prev,
                    headers: m.headers.as_deref(),
                    payload: &m.payload,
                };
                self.out.push(republished(to, &r, headers_only));
            }
        }
        Ok(())
    }
}
