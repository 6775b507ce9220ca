//! Host-agnostic scenarios: what clients see from the core's broker and JetStream engine,
//! played in a simulation (`sim`) with protocol connections exchanging real NATS bytes and a
//! clock moved by hand. Every host (the server, the page) runs these same pieces, so these
//! scenarios pin the behaviour once, without sockets, threads or sleeping.
//! `core/tests/jetstream_engine.rs` covers the engine's rules call by call; here the same
//! engine is reached the way clients reach it, through the broker.

#![allow(clippy::unwrap_used)]

mod consumer_controls;
mod jetstream;
mod kv;
mod objstore;
mod pubsub;
mod sim;
