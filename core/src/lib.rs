//! edgebus-core: the sans-IO heart of edgebus.
//!
//! Everything here is deterministic: no sockets, no files, no clock, no threads, no sleeping.
//! Bytes and typed operations go in, typed events and bytes come out, and time (where it
//! matters) is an argument. That is what lets the same code run inside a browser tab compiled
//! to WebAssembly, inside the tokio server, and in tests that step time by hand.
//!
//! - [`subject`]: subject and queue-name rules, the reference matcher.
//! - [`sublist`]: the subscription trie and its match cache.
//! - [`proto`]: the NATS wire protocol, both directions.
//! - [`session`]: one client connection's protocol state machine.
//! - [`policy`]: the connection rules every host applies (`SUB` answers, echo,
//!   auto-unsubscribe, no-responders, `CONNECT`).
//! - [`route`]: the delivery rule (plain subscribers, one member per queue group).
//! - [`broker`]: a complete single-threaded Core NATS broker over the pieces above.
//! - [`jetstream`]: streams, consumers and the `$JS.API`, with a pluggable store.
//! - [`kv`] and [`objstore`]: key-value buckets and object stores over streams.
//! - [`link`]: the link to another NATS server (client side, outbox, backoff).
//! - [`leaf`]: the leaf-node protocol between servers (interest, `LMSG`, handshake).

#![no_std]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod base64;
pub mod broker;
pub mod duration;
#[cfg(feature = "jetstream")]
pub mod jetstream;
pub mod json;
#[cfg(feature = "kv")]
pub mod kv;
pub mod leaf;
pub mod link;
#[cfg(feature = "objstore")]
pub mod objstore;
#[cfg(feature = "jetstream")]
pub mod pcgroups;
pub mod policy;
pub mod proto;
pub mod route;
pub mod session;
pub mod subject;
pub mod sublist;
pub mod transform;
pub mod vecmap;

/// The nats-server version edgebus reports: clients gate features on it (nats.js enables KV,
/// direct get and batch get only for recent servers), so it names the protocol level matched.
pub const NATS_VERSION: &str = "2.14.0";
