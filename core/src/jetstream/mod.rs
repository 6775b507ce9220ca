//! JetStream: streams, consumers and the `$JS.API`, as a sans-IO engine.

pub mod config;
pub mod errors;
pub mod store;
pub mod stream;
pub mod time;
