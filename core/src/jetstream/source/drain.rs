//! A work-queue or interest origin followed by a mirror or source in this engine.
//! nats-server reads such an origin through a durable sourcing consumer that acks by flow
//! control (`sourcing.rs`), so what the copy stored counts as acknowledged there and a work
//! queue is drained by its sources. A local link reads the origin in place all the same;
//! beside that it keeps the consumer nats-server would have on the origin (`JS_SRC_<id>` /
//! `JS_MIRROR_<id>`: listed and counted as nats-server's is, never bound to a subscriber) and
//! moves its ack floor over what the link took, which retires those messages under the
//! origin's retention (from the lowest sequence a copy took to the highest, as nats-server's
//! ack of the range does: messages a filter passed over in between go too). When the link goes, so does the consumer (nats-server's
//! `tryDeleteSourcingConsumer`), and the origin keeps what comes after.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::super::config::{AckPolicy, ConsumerConfig, Retention};
use super::super::consumer::Consumer;
use super::super::engine::JetStream;
use super::external::stable_id;
use super::StreamSource;

/// The heartbeat of a flow-control-acked consumer (nats-server allows only this one).
const HEARTBEAT: i64 = 1_000_000_000;

/// The consumer a local link of stream `name` keeps on its origin.
pub(super) fn consumer_name(name: &str, iname: &str, domain: Option<&str>, is_mirror: bool) -> String {
    format!("JS_{}_{}", if is_mirror { "MIRROR" } else { "SRC" }, stable_id(name, iname, domain))
}

impl JetStream {
    /// Acknowledges through the link's consumer on origin `cfg.name` the origin sequences
    /// `taken` (creating the consumer first); nothing for a limits origin. Returns the
    /// consumer's name when the link keeps one.
    pub(super) fn ack_taken(
        &mut self,
        name: &str,
        cfg: &StreamSource,
        iname: &str,
        is_mirror: bool,
        taken: &[u64],
        now: u64,
    ) -> Option<String> {
        let origin = self.streams.get(&cfg.name)?;
        if origin.stream.config.retention == Retention::Limits {
            return None;
        }
        let cname = consumer_name(name, iname, self.domain.as_deref(), is_mirror);
        if !origin.consumers.contains_key(&cname) {
            let deliver = format!("$JS.{}.{}", if is_mirror { "M" } else { "S" }, self.nuid());
            let mut config = ConsumerConfig {
                durable_name: Some(cname.clone()),
                name: Some(cname.clone()),
                deliver_subject: Some(deliver),
                ack_policy: AckPolicy::FlowControl,
                flow_control: true,
                idle_heartbeat: HEARTBEAT,
                sourcing: true,
                ..Default::default()
            };
            let mut filters: Vec<String> = cfg.subject_transforms.iter().map(|t| t.src.clone()).collect();
            if !cfg.filter_subject.is_empty() {
                filters = alloc::vec![cfg.filter_subject.clone()];
            }
            match filters.len() {
                0 => {}
                1 => config.filter_subject = filters.pop(),
                _ => config.filter_subjects = filters,
            }
            let origin = self.streams.get_mut(&cfg.name)?;
            config.normalize(&origin.stream.config).ok()?;
            let c = Consumer::new(cname.clone(), &origin.stream, config, now);
            let _ = origin.stream.store_mut().save_consumer(&cname, &c.saved_state());
            origin.consumers.insert(cname.clone(), c);
        }
        let origin = self.streams.get_mut(&cfg.name)?;
        if let (Some(c), Some(last)) = (origin.consumers.get_mut(&cname), taken.iter().max()) {
            c.taken_through(*last, &origin.stream);
        }
        // the ack covers every sequence from the lowest taken to the last, also what a filter
        // passed over in between (nats-server's ack-all walk from its floor)
        if let (Some(lo), Some(hi)) = (taken.iter().min(), taken.iter().max()) {
            self.retire_range(&cfg.name, *lo, *hi);
        }
        self.settle_events(&cfg.name);
        Some(cname)
    }

    /// Deletes the consumer a dropped local link kept on `origin`.
    pub(super) fn drop_drain(&mut self, origin: &str, cname: &str, now: u64) {
        self.delete_consumer(origin, cname, now);
    }
}
