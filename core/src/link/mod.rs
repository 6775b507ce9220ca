//! The link to another NATS server: the client side of the protocol as a sans-IO state
//! machine. The page hosts it over the browser's WebSocket (`bus.connect`); a server hosts it
//! over TCP or WebSocket for a leaf-node link.
//!
//! A link answers the server's `INFO` with `CONNECT` (echo off, user/pass or token), then
//! subscribes every imported subject and the local side's inbox prefix (so replies to local
//! requests come back). Local publishes on exported subjects enter the [`Outbox`] stamped
//! with a `Nats-Msg-Id`; while connected they go out in bounded batches, each followed by a
//! `PING` whose `PONG` confirms it, and after a drop everything unconfirmed goes out again
//! with the same ids, so a stream on the server drops what it already has. Keepalive pings
//! find a server gone silent; attempts are spaced by [`Backoff`].
//!
//! The host contract is quinn-proto's: inputs are `handle_*` calls with `now` (nanoseconds
//! since the Unix epoch), outputs are polled.
//!
//! 1. [`Link::new`], then [`Link::connect`] (and [`Link::close`] to end it).
//! 2. Feed it what happens: [`Link::handle_open`], [`Link::handle_data`] with the socket's
//!    bytes, [`Link::handle_close`] when the socket closes or fails (or
//!    [`Link::handle_dial_error`] when it cannot be created at all), [`Link::handle_timeout`]
//!    when the deadline passed, [`Link::handle_export`] / [`Link::handle_reply`] with local
//!    messages, [`Link::handle_persisted`] when a storage write finished.
//! 3. After every input, drain: [`Link::poll_event`] until `None` ([`Event::Dial`]: open a
//!    socket; [`Event::Hangup`]: drop it; status changes; [`Event::Deliver`]: publish locally;
//!    [`Event::Persist`]: write to storage; [`Event::Confirmed`]), then
//!    [`Link::poll_transmit`] (bytes to write) and [`Link::poll_timeout`] (re-arm the one
//!    timer). Delivering a message locally may hand new input in: drain again until quiet.
//!
//! A flush needs no command: every outbox batch already ends with the `PING` that confirms
//! it, so a host's flush waits for [`Event::Confirmed`] with nothing `remaining`.
//!
//! [`BrokerPort`] wires a link to a [`crate::broker::Broker`] as one of its local
//! connections (the export subscriptions, the echo rule, one-shot reply subscriptions).
//!
//! - `config`: subjects, credentials, `CONNECT`, the [`Schedule`].
//! - `error`: [`BadSubject`], [`LinkError`].
//! - `outbox`: kept publishes, their ids and stored records.
//! - `backoff`: the reconnect schedule.
//! - `interest`: the link's subscriptions on the other side, configured and asked for.
//! - `machine`: the [`Link`] state machine.
//! - `port`: the broker adapter.

mod backoff;
mod config;
mod error;
mod interest;
mod machine;
mod outbox;
mod port;
#[cfg(test)]
mod tests;

pub use backoff::Backoff;
pub use config::{LinkConfig, Schedule, LANG};
pub use error::{BadSubject, LinkError};
pub use machine::{Event, Link, LinkState, Msg, Stats, MAX_AUTH_FAILURES};
pub use outbox::{stamp_msg_id, Entry, Outbox, OutboxCommit, MAX_IN_FLIGHT, MAX_IN_FLIGHT_BYTES, MSG_ID};
pub use port::BrokerPort;
