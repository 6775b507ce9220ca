//! Ack policy `flow_control` (API level 4): the consumer a mirror or source on another
//! server reads an interest or work-queue stream through (`sourcing.rs`). Nothing is acked
//! message by message; the answer to a flow-control request names the last delivery and
//! stream sequence the reader has stored (`Nats-Last-Consumer` / `Nats-Last-Stream`), and
//! that acks everything up to it, as an ack-all would. So a request must go out whenever
//! deliveries wait on acks: when `max_ack_pending` is reached, and with each heartbeat while
//! anything is pending (nats-server's `sendFlowControl` on both occasions). No ack wait:
//! what was delivered and not answered for is sent again when the reader re-creates the
//! consumer ([`Consumer::restart_sourcing`]).

use alloc::format;
use alloc::vec::Vec;
use bytes::Bytes;

use super::super::config::AckPolicy;
use super::super::stream::Stream;
use super::super::Outbound;
use super::Consumer;
use crate::proto::{header_value, Headers};

impl Consumer {
    /// Whether this consumer acks by flow control.
    pub(super) fn acks_by_flow_control(&self) -> bool {
        self.state.config.ack_policy == AckPolicy::FlowControl
    }

    /// Sends a flow-control request to `target` covering what is pending now.
    pub(super) fn request_flow_control(&mut self, target: &Bytes, out: &mut Vec<Outbound>) {
        self.fc_token += 1;
        let reply = Bytes::from(format!("$JS.FC.{}.{}.{}", self.stream, self.name, self.fc_token));
        let h = Headers::with_status(100, Some("FlowControl Request")).to_bytes();
        out.push(Outbound {
            route: target.clone(),
            subject: target.clone(),
            reply: Some(reply.clone()),
            headers: Some(h),
            payload: Bytes::new(),
        });
        self.fc_pending = Some(reply);
        self.fc_covered = (self.fc_msgs, self.fc_bytes);
    }

    /// A flow-control request when acks are what deliveries wait on (see the module doc):
    /// `stalled` is true at `max_ack_pending`, false at a heartbeat with anything pending.
    pub(super) fn flow_control_for_acks(&mut self, target: &Bytes, stalled: bool, out: &mut Vec<Outbound>) {
        let due = if stalled { self.at_max_ack_pending() } else { !self.state.pending.is_empty() };
        if self.acks_by_flow_control() && self.fc_pending.is_none() && due {
            self.request_flow_control(target, out);
        }
    }

    /// The reader answered a flow-control request (on its reply subject, with `headers`).
    /// Returns the stream sequences the answer acknowledged, for retention.
    pub fn flow_control_answer(&mut self, subject: &[u8], headers: Option<&[u8]>) -> Vec<u64> {
        let current = self.fc_pending.as_deref() == Some(subject);
        self.flow_control_reply(subject);
        if !current || !self.acks_by_flow_control() {
            return Vec::new();
        }
        let num = |name: &[u8]| {
            headers
                .and_then(|h| header_value(h, name))
                .and_then(|v| core::str::from_utf8(v).ok()?.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        let (dseq, sseq) = (num(b"Nats-Last-Consumer"), num(b"Nats-Last-Stream"));
        if sseq == 0 {
            return Vec::new();
        }
        let acked: Vec<u64> = self.state.pending.range(..=sseq).map(|(s, _)| *s).collect();
        for s in &acked {
            self.state.pending.remove(s);
            self.redeliver.remove(s);
        }
        if sseq > self.state.ack_floor_s && sseq < self.state.sseq {
            self.state.ack_floor_s = sseq;
            self.state.ack_floor_c = dseq.min(self.state.dseq).max(self.state.ack_floor_c);
        }
        if self.state.pending.is_empty() {
            self.update_ack_floor();
        }
        self.dirty = true;
        acked
    }

    /// A durable sourcing consumer asked for again (the reader lost its deliveries and
    /// starts a new run): it starts over at its ack floor, so what was delivered and not
    /// acked goes out again, as nats-server's `resetStartingSeq(0)` does for it.
    pub fn restart_sourcing(&mut self, stream: &Stream) {
        if self.state.config.sourcing && self.acks_by_flow_control() {
            self.reset_start(self.state.ack_floor_s + 1, stream);
        }
    }

    /// Everything up to stream sequence `seq` counts as delivered and acknowledged: a
    /// local mirror or source took it in place (`source/drain.rs`).
    pub fn taken_through(&mut self, seq: u64, stream: &Stream) {
        if seq < self.state.sseq && seq <= self.state.ack_floor_s {
            return;
        }
        self.state.sseq = self.state.sseq.max(seq + 1);
        self.state.delivered_sseq = self.state.delivered_sseq.max(seq);
        self.state.ack_floor_s = self.state.ack_floor_s.max(seq);
        self.recount(stream);
        self.dirty = true;
    }
}
