//! Following origins: each mirror or source is a [`Link`] that remembers the last origin
//! sequence it took. On every engine tick a link copies at most [`BATCH`] messages, so a large
//! origin is caught up over several ticks (the deadline stays "now" while work is left) and
//! never stalls the engine. Deletes and purges on the origin are not copied, as in
//! nats-server: a link only ever reads forward.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;

use super::super::config::StreamConfig;
use super::super::engine::{Interest, JetStream};
use super::super::errors::ApiError;
use super::super::store::StoredMsg;
use super::super::stream::Stream;
use super::super::time::parse_rfc3339;
use super::super::SubChange;
use super::external::Remote;
use super::StreamSource;
use crate::proto::Headers;

/// The most messages one link copies in one tick.
pub(crate) const BATCH: usize = 256;

/// How long a link waits after its stream refused a message (full, too big, …).
pub(crate) const RETRY: u64 = 1_000_000_000;

/// The header a sourced message carries: `<stream> <seq> <filters> <destinations> <subject>`.
pub(crate) const SOURCE_HEADER: &str = "Nats-Stream-Source";

/// One origin being followed.
pub(crate) struct Link {
    pub(crate) cfg: StreamSource,
    pub(crate) iname: String,
    /// The last origin sequence taken or passed over; `None` until the origin was first seen
    /// and the start (`opt_start_seq`, `opt_start_time`, else its first message) resolved.
    pub(crate) sseq: Option<u64>,
    /// When the origin was last seen (0: never, shown as `active: -1`).
    pub(crate) last: u64,
    /// After a refusal, when to try again (nats-server shows no error for these).
    pub(crate) retry_at: u64,
    /// For an origin elsewhere (`external`): the consumer read through (`external.rs`).
    pub(crate) remote: Option<Remote>,
    /// The consumer kept on a work-queue or interest origin here (`drain.rs`).
    pub(crate) drain: Option<String>,
    /// Why the origin cannot be read now (`error` in stream info, as nats-server shows the
    /// failed consumer create: the origin not found, a create refused elsewhere).
    pub(crate) err: Option<serde_json::Value>,
}

/// The links of one stream, and the configuration they were built from.
#[derive(Default)]
pub(crate) struct Links {
    mirror: Option<StreamSource>,
    sources: Vec<StreamSource>,
    pub(crate) links: Vec<Link>,
}

impl Links {
    fn built_from(&self, cfg: &StreamConfig) -> bool {
        self.mirror == cfg.mirror && self.sources == cfg.sources
    }

    /// Last origin sequence per link, for the stream's saved metadata.
    pub(crate) fn positions(&self) -> BTreeMap<String, u64> {
        self.links.iter().filter_map(|l| l.sseq.map(|s| (l.iname.clone(), s))).collect()
    }

    pub(crate) fn get(&self, iname: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.iname == iname)
    }

    /// Links for `cfg`, keeping the positions (and the consumers of external origins) this
    /// one had for the same origins; what it had for others is left in `self`.
    fn rebuilt(&mut self, cfg: &StreamConfig, saved: &BTreeMap<String, u64>) -> Links {
        let all = cfg.mirror.iter().chain(cfg.sources.iter());
        let links = all
            .map(|s| {
                let iname = s.iname();
                let kept = self.links.iter().position(|l| l.iname == iname).map(|i| self.links.remove(i));
                let sseq = kept.as_ref().and_then(|l| l.sseq).or_else(|| saved.get(&iname).copied());
                let last = kept.as_ref().map_or(0, |l| l.last);
                let drain = kept.as_ref().and_then(|l| l.drain.clone());
                let err = kept.as_ref().and_then(|l| l.err.clone());
                let remote = s.external.as_ref().map(|_| kept.and_then(|l| l.remote).unwrap_or_default());
                Link { cfg: s.clone(), sseq, last, retry_at: 0, remote, iname, drain, err }
            })
            .collect();
        Links { mirror: cfg.mirror.clone(), sources: cfg.sources.clone(), links }
    }

    /// The consumers these links keep on local origins: (origin, consumer).
    fn drains(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.links.iter().filter_map(|l| l.drain.clone().map(|c| (l.cfg.name.clone(), c)))
    }

    /// The subjects the engine holds for these links' external consumers.
    fn remote_subjects(&self) -> impl Iterator<Item = &String> {
        self.links.iter().filter_map(|l| l.remote.as_ref()).flat_map(Remote::subjects)
    }
}

fn sourcing(cfg: &StreamConfig) -> bool {
    cfg.mirror.is_some() || !cfg.sources.is_empty()
}

/// Where a link starts on an origin it sees for the first time.
fn start_seq(origin: &Stream, cfg: &StreamSource) -> u64 {
    if cfg.opt_start_seq > 0 {
        return cfg.opt_start_seq;
    }
    match cfg.opt_start_time.as_deref().and_then(parse_rfc3339) {
        Some(t) => origin.seq_at_time(t),
        None => origin.first_seq().max(1),
    }
}

/// A sourced message's headers: the origin's, less what must not be checked or applied again
/// here (an older source header, `Nats-Expected-*`, `Nats-Batch-*`), plus the source header.
pub(crate) fn sourced_headers(orig: Option<&[u8]>, value: &str) -> Bytes {
    let mut h = orig.and_then(|b| Headers::parse(b).ok()).unwrap_or_default();
    h.entries.retain(|(n, _)| n != SOURCE_HEADER && !n.starts_with("Nats-Expected-") && !n.starts_with("Nats-Batch-"));
    h.append(SOURCE_HEADER, value);
    h.to_bytes()
}

/// `Nats-Stream-Source` for origin message `seq` on `subject` through link `iname`.
pub(crate) fn source_header(iname: &str, seq: u64, subject: &[u8]) -> String {
    let mut parts = iname.splitn(3, ' ');
    let (name, filters, dests) = (parts.next().unwrap_or(""), parts.next().unwrap_or(">"), parts.next().unwrap_or(">"));
    format!("{name} {seq} {filters} {dests} {}", String::from_utf8_lossy(subject))
}

/// The link and origin sequence a stored `Nats-Stream-Source` value names.
pub(crate) fn parse_source_header(v: &str) -> Option<(String, u64)> {
    let f: Vec<&str> = v.split(' ').collect();
    if f.len() < 4 {
        return None;
    }
    Some((format!("{} {} {}", f[0], f[2], f[3]), f[1].parse().ok()?))
}

impl JetStream {
    /// After a restart: each link resumes after the last origin sequence it took, from the
    /// saved metadata and from the messages stored since it was saved (`saved_last_seq` on),
    /// so that a message copied just before a crash is neither lost nor copied twice.
    pub(in super::super) fn restore_sourcing(
        &mut self,
        name: &str,
        mut saved: BTreeMap<String, u64>,
        saved_last_seq: u64,
    ) {
        let Some(e) = self.streams.get_mut(name) else { return };
        if !sourcing(&e.stream.config) {
            return;
        }
        let last = e.stream.last_seq();
        if let Some(m) = &e.stream.config.mirror {
            if last > 0 {
                let p = saved.entry(m.iname()).or_insert(0);
                *p = (*p).max(last);
            }
        } else {
            let mut seq = saved_last_seq + 1;
            while let Some(s) = e.stream.next_matching(seq, |_| true) {
                seq = s + 1;
                let Ok(Some(m)) = e.stream.load(s) else { continue };
                let v = m.headers.as_deref().and_then(|h| crate::proto::header_value(h, SOURCE_HEADER.as_bytes()));
                if let Some((iname, sseq)) = v.and_then(|v| parse_source_header(&String::from_utf8_lossy(v))) {
                    let p = saved.entry(iname).or_insert(0);
                    *p = (*p).max(sseq);
                }
            }
        }
        let links = Links::default().rebuilt(&e.stream.config, &saved);
        self.sourcing.insert(name.into(), links);
    }

    /// When the links next need a tick: now while an origin has messages a link has not
    /// taken (or links must be built or dropped), at a retry time after a refusal.
    pub(in super::super) fn sources_deadline(&self, now: u64) -> Option<u64> {
        let mut next: Option<u64> = None;
        let mut sourcing_streams = 0;
        for (name, e) in &self.streams {
            if !sourcing(&e.stream.config) {
                continue;
            }
            sourcing_streams += 1;
            let Some(links) = self.sourcing.get(name).filter(|l| l.built_from(&e.stream.config)) else {
                return Some(now);
            };
            for l in &links.links {
                if let Some(r) = &l.remote {
                    let at = r.deadline(l.last).max(now);
                    next = Some(next.map_or(at, |n| n.min(at)));
                    continue;
                }
                if l.retry_at > now {
                    next = Some(next.map_or(l.retry_at, |n| n.min(l.retry_at)));
                    continue;
                }
                let Some(o) = self.streams.get(&l.cfg.name) else { continue };
                if l.sseq.is_none_or(|s| o.stream.visible_last() > s) {
                    return Some(now);
                }
            }
        }
        if self.sourcing.len() != sourcing_streams {
            return Some(now);
        }
        next
    }

    /// One tick of every link: builds and drops links as configurations changed, then copies
    /// what each may.
    pub(in super::super) fn pump_sources(&mut self, now: u64, interest: &dyn Interest) {
        let streams = &self.streams;
        let mut dropped: Vec<String> = Vec::new();
        let mut drains: Vec<(String, String)> = Vec::new();
        self.sourcing.retain(|n, l| {
            let keep = streams.get(n).is_some_and(|e| sourcing(&e.stream.config));
            if !keep {
                dropped.extend(l.remote_subjects().cloned());
                drains.extend(l.drains());
            }
            keep
        });
        for (name, e) in &self.streams {
            if !sourcing(&e.stream.config) {
                continue;
            }
            let links = self.sourcing.entry(name.clone()).or_default();
            if !links.built_from(&e.stream.config) {
                let fresh = links.rebuilt(&e.stream.config, &BTreeMap::new());
                dropped.extend(links.remote_subjects().cloned());
                drains.extend(links.drains());
                *links = fresh;
            }
        }
        // the consumers of external origins no longer followed: stop listening (the origin
        // drops them after their inactive threshold)
        self.subs.extend(dropped.into_iter().map(SubChange::Remove));
        for (origin, cname) in drains {
            self.drop_drain(&origin, &cname, now);
        }
        let names: Vec<String> = self.sourcing.keys().cloned().collect();
        for name in names {
            let n = self.sourcing.get(&name).map_or(0, |l| l.links.len());
            let mut stored = false;
            for i in 0..n {
                stored |= self.pump_link(&name, i, now);
            }
            if stored {
                self.pump_stream(&name, now, interest);
            }
        }
    }

    /// Copies up to [`BATCH`] messages through link `i` of stream `name`; whether any was stored.
    fn pump_link(&mut self, name: &str, i: usize, now: u64) -> bool {
        let Some(link) = self.sourcing.get(name).and_then(|l| l.links.get(i)) else { return false };
        if link.remote.is_some() {
            self.pump_remote(name, i, now);
            return false;
        }
        if link.retry_at > now {
            return false;
        }
        let (cfg, iname, sseq) = (link.cfg.clone(), link.iname.clone(), link.sseq);
        let is_mirror = self.streams.get(name).is_some_and(|e| e.stream.config.mirror.is_some());
        let found = self.streams.contains_key(&cfg.name);
        if let Some(link) = self.sourcing.get_mut(name).and_then(|l| l.links.get_mut(i)) {
            link.err = (!found).then(|| serde_json::json!(ApiError::STREAM_NOT_FOUND));
        }
        let Some(origin) = self.streams.get_mut(&cfg.name) else { return false };
        let from = sseq.map_or_else(|| start_seq(&origin.stream, &cfg), |s| s + 1);
        let mut batch: Vec<StoredMsg> = Vec::new();
        let mut passed = from.saturating_sub(1);
        let mut failed = None;
        while batch.len() < BATCH {
            // only what a sync covers is copied (`stream/commit.rs`)
            let visible = origin.stream.visible_last();
            let Some(seq) = origin.stream.next_matching(passed + 1, |s| cfg.takes(s)).filter(|s| *s <= visible) else {
                passed = passed.max(visible);
                break;
            };
            match origin.stream.load(seq) {
                Ok(Some(m)) => batch.push(m),
                Ok(None) => {}
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
            passed = seq;
        }
        let mut taken = from.saturating_sub(1);
        let mut stored = false;
        let mut took: Vec<u64> = Vec::new();
        for m in &batch {
            let subject = cfg.map(&m.subject).unwrap_or_else(|| m.subject.to_vec());
            let result = if is_mirror {
                match self.streams.get_mut(name) {
                    Some(e) => e.stream.store_mirrored(m.seq, m.time, &subject, m.headers.as_deref(), &m.payload),
                    None => return stored,
                }
            } else {
                self.store_sourced(name, now, &iname, m, &subject)
            };
            match result {
                Ok(()) => {
                    stored = true;
                    taken = m.seq;
                    took.push(m.seq);
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if failed.is_none() {
            taken = passed;
        }
        let drain = if took.is_empty() { None } else { self.ack_taken(name, &cfg, &iname, is_mirror, &took, now) };
        let Some(link) = self.sourcing.get_mut(name).and_then(|l| l.links.get_mut(i)) else { return stored };
        if drain.is_some() {
            link.drain = drain;
        }
        link.sseq = Some(taken);
        link.last = now;
        link.retry_at = if failed.is_some() { now + RETRY } else { 0 };
        stored
    }

    /// Stores one sourced message as a publish into `name` would be, with its source header
    /// (a duplicate by `Nats-Msg-Id` is passed over, as nats-server does).
    pub(super) fn store_sourced(
        &mut self,
        name: &str,
        now: u64,
        iname: &str,
        m: &StoredMsg,
        subject: &[u8],
    ) -> Result<(), ApiError> {
        let headers = sourced_headers(m.headers.as_deref(), &source_header(iname, m.seq, &m.subject));
        let mark = |js: &mut JetStream, on: bool| {
            if let Some(e) = js.streams.get_mut(name) {
                e.stream.set_sourced(on);
            }
        };
        mark(self, true);
        let result = self.store_msg(name, now, subject, Some(&headers), &m.payload, false);
        mark(self, false);
        result.map(|_| ())
    }
}
