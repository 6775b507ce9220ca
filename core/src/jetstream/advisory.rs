//! The per-message consumer advisories (`MAX_DELIVERIES`, `MSG_TERMINATED`, `MSG_NAKED`):
//! their body and how they are published.

use alloc::format;
use alloc::string::String;
use serde::Serialize;

use super::engine::JetStream;
use super::time::rfc3339;

/// The body of the per-message consumer advisories (max deliveries, terminated, nak).
#[derive(Serialize)]
pub(super) struct MsgAdvisory<'a> {
    #[serde(rename = "type")]
    pub(super) kind: String,
    pub(super) id: String,
    pub(super) timestamp: String,
    pub(super) stream: &'a str,
    pub(super) consumer: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) consumer_seq: Option<u64>,
    pub(super) stream_seq: u64,
    pub(super) deliveries: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) reason: Option<String>,
}

impl<'a> MsgAdvisory<'a> {
    pub(super) fn new(stream: &'a str, consumer: &'a str, stream_seq: u64, deliveries: u32) -> Self {
        MsgAdvisory {
            kind: String::new(),
            id: String::new(),
            timestamp: String::new(),
            stream,
            consumer,
            consumer_seq: None,
            stream_seq,
            deliveries,
            reason: None,
        }
    }
}

impl JetStream {
    pub(super) fn max_deliveries_advisory(
        &mut self,
        stream: &str,
        consumer: &str,
        seq: u64,
        deliveries: u32,
        now: u64,
    ) {
        self.msg_advisory("MAX_DELIVERIES", "max_deliver", MsgAdvisory::new(stream, consumer, seq, deliveries), now);
    }

    /// Publishes `$JS.EVENT.ADVISORY.CONSUMER.<event>.<stream>.<consumer>` with type
    /// `io.nats.jetstream.advisory.v1.<kind>`.
    pub(super) fn msg_advisory(&mut self, event: &str, kind: &str, mut adv: MsgAdvisory<'_>, now: u64) {
        adv.kind = format!("io.nats.jetstream.advisory.v1.{kind}");
        adv.id = self.nuid();
        adv.timestamp = rfc3339(now);
        let subject = format!("$JS.EVENT.ADVISORY.CONSUMER.{event}.{}.{}", adv.stream, adv.consumer);
        self.advisory(subject, &adv);
    }
}
