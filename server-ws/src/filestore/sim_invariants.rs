//! What must hold after every recovery of the simulated server ([`super::sim_workload`]),
//! checked against what its clients were told:
//! - nothing read back was never published, and an acknowledged message reads back under its
//!   sequence, intact;
//! - `sync_interval: always`: every acknowledged message is there; a message whose removal
//!   was confirmed never comes back; sequences are gapless apart from removals;
//! - with an interval: what was lost was all acknowledged after the last sync (so younger
//!   than the interval), and is exactly a suffix unless an fsync failed (`EIO`) since that
//!   sync: the failed fsync threw one file's dirty pages away while the kernel may still
//!   write back a later segment's by itself, so the unsynced part may come back with holes.
//!   nats-server promises no more for unsynced data (its recovery keeps every intact record
//!   of every block); what a sync covered is never lost either way;
//! - a message id is stored at most once within the duplicate window;
//! - an atomic batch is there whole or not at all;
//! - the consumer's ack floor is never below one the engine reported after confirming an ack.
//!
//! What recovery found is on the disk for good, so it joins what must survive later crashes.

use std::collections::{BTreeSet, HashMap};

use edgebus_core::jetstream::store::StoredMsg;
use edgebus_core::proto::header_value;

use super::sim_engine::STREAM;
use super::sim_workload::{Msg, World, DUP_WINDOW, KV, T0};

impl World {
    pub(crate) fn check_recovered(&mut self) -> Result<(), String> {
        let s = self.check_stream(STREAM)?;
        self.check_stream(KV)?;
        // what recovery found counts as synced from here on
        self.failed_at_sync = self.disk.stats().failed_fsyncs;
        self.check_batches(&s)?;
        check_dedup(&s)?;
        if self.mode.durable() {
            let floor = self.ack_floor()?;
            if floor < self.consumer.confirmed_floor {
                return Err(format!(
                    "consumer ack floor went back from {} (reported after a confirmed ack) to {floor}",
                    self.consumer.confirmed_floor
                ));
            }
        }
        Ok(())
    }

    /// Checks one recovered stream against its model; returns what it holds.
    fn check_stream(&mut self, name: &'static str) -> Result<Vec<StoredMsg>, String> {
        let eio_since_sync = self.disk.stats().failed_fsyncs > self.failed_at_sync;
        let (first, last, _) = self.node.state_of(name).ok_or(format!("stream {name} is gone"))?;
        let mut held = Vec::new();
        for seq in first.max(1)..=last {
            match self.node.msg_of(name, seq) {
                Ok(Some(m)) => held.push(m),
                Ok(None) => {}
                Err(e) => return Err(format!("{name} seq {seq} reported damaged: {e}")),
            }
        }
        let present: BTreeSet<u64> = held.iter().map(|m| m.seq).collect();
        let durable = self.mode.durable();
        let model = self.streams.get_mut(name).ok_or("no model")?;
        for m in &held {
            let seq = m.seq;
            match self.sent.get(&m.payload[..]) {
                None => return Err(format!("{name} seq {seq} holds a message never published")),
                Some(s) if s.as_bytes() != m.subject => return Err(format!("{name} seq {seq} has the wrong subject")),
                Some(_) => {}
            }
            if let Some(a) = model.acked.get(&seq) {
                if a.subject.as_bytes() != m.subject || a.payload[..] != m.payload[..] {
                    return Err(format!("{name} seq {seq} changed"));
                }
            }
            if durable && model.deleted.contains(&seq) {
                return Err(format!("{name} seq {seq} came back after its removal was confirmed"));
            }
        }
        let lost: Vec<u64> = model.acked.keys().copied().filter(|s| !present.contains(s)).collect();
        if durable {
            if let Some(seq) = lost.first() {
                return Err(format!("{name}: acknowledged seq {seq} lost ({} lost in all)", lost.len()));
            }
            let top = model.acked.keys().next_back().copied().unwrap_or(0);
            let used_up = |s: u64| model.refused.iter().any(|&(lo, hi)| s > lo && hi.is_none_or(|hi| s < hi));
            let gap = (first.max(1)..=last.min(top)).find(|&s| {
                !present.contains(&s) && !model.deleted.contains(&s) && !model.maybe.contains(&s) && !used_up(s)
            });
            if let Some(seq) = gap {
                return Err(format!("{name}: seq {seq} missing, never removed ({first}..={last})"));
            }
        } else if let Some(&oldest) = lost.first() {
            if oldest <= model.synced {
                return Err(format!("{name}: seq {oldest} lost although synced (synced up to {})", model.synced));
            }
            let kept_newer = model.acked.range(oldest..).find(|(s, _)| present.contains(s));
            if let Some((seq, m)) = kept_newer.filter(|_| !eio_since_sync) {
                return Err(format!(
                    "{name}: lost seq {oldest} but kept the newer {seq}: a hole, not a suffix ({m:?})"
                ));
            }
            if let Some(m) = lost.iter().filter_map(|s| model.acked.get(s)).find(|m| m.at < model.synced_at) {
                return Err(format!("{name}: lost a message acknowledged before the last sync: {m:?}"));
            }
            self.out.lost_unsynced += lost.len() as u64;
        }
        for seq in &lost {
            model.acked.remove(seq);
        }
        // what a failed removal took is gone for good once it is not there after a restart
        for seq in std::mem::take(&mut model.maybe) {
            if !present.contains(&seq) {
                model.deleted.insert(seq);
            }
        }
        // what recovery found is on the disk: later crashes must keep it
        for m in &held {
            model.acked.entry(m.seq).or_insert_with(|| Msg {
                subject: String::from_utf8_lossy(&m.subject).into_owned(),
                payload: m.payload.to_vec(),
                at: T0,
            });
        }
        let top = |s: Option<&u64>| s.copied().unwrap_or(0);
        model.highest = top(model.acked.keys().next_back()).max(top(model.deleted.last()));
        model.synced = model.highest;
        Ok(held)
    }

    /// Every committed batch that no removal may have touched is there whole or not at all.
    fn check_batches(&self, held: &[StoredMsg]) -> Result<(), String> {
        let payloads: BTreeSet<&[u8]> = held.iter().map(|m| &m.payload[..]).collect();
        for b in self.batches.iter().filter(|b| b.removals_before == self.removals) {
            let n = b.payloads.iter().filter(|p| payloads.contains(&p[..])).count();
            if n != 0 && n != b.payloads.len() {
                return Err(format!("a batch of {} kept {n} of its messages", b.payloads.len()));
            }
        }
        Ok(())
    }
}

/// No message id is stored twice within the duplicate window.
fn check_dedup(held: &[StoredMsg]) -> Result<(), String> {
    let mut last: HashMap<&[u8], &StoredMsg> = HashMap::new();
    for m in held {
        let Some(id) = m.headers.as_deref().and_then(|h| header_value(h, b"Nats-Msg-Id")) else { continue };
        if let Some(prev) = last.insert(id, m) {
            if m.time.saturating_sub(prev.time) < DUP_WINDOW {
                return Err(format!(
                    "id {} stored twice within the window: seq {} and {}",
                    String::from_utf8_lossy(id),
                    prev.seq,
                    m.seq
                ));
            }
        }
    }
    Ok(())
}
