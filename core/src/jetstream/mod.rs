//! JetStream: streams, consumers and the `$JS.API`, as a sans-IO engine.

pub mod store;
