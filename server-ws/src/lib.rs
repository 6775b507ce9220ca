//! edgebus-server: the native edge server. It speaks the NATS client protocol over TCP and
//! WebSocket on top of the sans-IO `edgebus-core`, and owns everything the core must not:
//! sockets, clocks, tasks, files.

pub mod accounts;
pub mod auth;
pub mod cli;
pub mod client;
pub mod conf;
pub mod conn;
pub mod filestore;
pub mod jetstream;
pub mod js_disabled;
pub mod lame_duck;
pub mod leaf;
pub mod limits;
pub mod log_level;
pub mod log_sink;
pub mod monitor;
pub mod options;
pub mod perms;
pub mod reload;
pub mod router;
pub mod server;
pub mod signals;
pub mod tls;
pub mod transport;
pub mod trim;
pub mod ws;
