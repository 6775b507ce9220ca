//! JetStream: streams, consumers and the `$JS.API`, as a sans-IO engine.
//!
//! The engine is a client of the bus like any other: the host delivers to it the messages
//! published on the subjects it asks for ([`JetStream::subscriptions`]), calls it on a timer
//! ([`JetStream::next_deadline`]), and publishes what it returns ([`Outbound`]). It answers
//! interest questions through [`Interest`], so push consumers only deliver while someone
//! listens, as in nats-server.

mod advisory;
mod api;
mod batch;
pub mod client;
pub mod config;
mod config_read;
pub mod consumer;
mod direct;
pub mod disabled;
pub mod domain;
mod engine;
pub mod errors;
mod fast_batch;
#[cfg(test)]
mod fast_batch_tests;
mod features;
#[cfg(test)]
mod features_tests;
mod group_commit;
pub mod host;
pub mod limits;
mod persist;
mod reload;
mod schedule;
mod source;
mod sourcing;
pub mod store;
pub mod stream;
mod stream_meta;
// request bodies as nats-server reads them (listed here, out of order, to merge cleanly)
mod request;
pub mod time;
mod transforms;

pub use engine::{Interest, JetStream, PubAck, Stats, SubChange};

use bytes::Bytes;

/// A message the engine wants published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    /// The subject to route on (an inbox, a deliver subject, an advisory subject).
    pub route: Bytes,
    /// The subject shown to receivers. For consumer deliveries it is the message's stream
    /// subject while `route` is the inbox: clients tell data from status messages by it.
    pub subject: Bytes,
    pub reply: Option<Bytes>,
    pub headers: Option<Bytes>,
    pub payload: Bytes,
}

impl Outbound {
    /// A header-only status message (`NATS/1.0 404 No Messages`, heartbeats, …).
    pub fn status(to: Bytes, headers: Bytes) -> Outbound {
        Outbound { route: to.clone(), subject: to, reply: None, headers: Some(headers), payload: Bytes::new() }
    }

    /// A plain message with a JSON (or other) body.
    pub fn data(to: Bytes, payload: Bytes) -> Outbound {
        Outbound { route: to.clone(), subject: to, reply: None, headers: None, payload }
    }
}
