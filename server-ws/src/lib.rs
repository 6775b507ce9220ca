//! edgebus-server: the native edge server. It speaks the NATS client protocol over TCP and
//! WebSocket on top of the sans-IO `edgebus-core`, and owns everything the core must not:
//! sockets, clocks, tasks, files.

pub mod cli;
pub mod conf;
pub mod options;
pub mod auth;
pub mod client;
pub mod monitor;
pub mod server;
pub mod transport;
