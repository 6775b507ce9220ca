//! edgebus in the browser: the core's broker and JetStream engine running in the page, with
//! JetStream storage in IndexedDB, exposed to JavaScript through wasm-bindgen.
//!
//! - [`api`]: the JavaScript surface (`open`, `Bus`), conversions only, a file per concern.
//! - [`bus`]: the in-page runtime: broker + engine as local connections, the pump, timers
//!   (gloo-timers) and the rule that acks wait for the IndexedDB commit.
//! - [`idb`]: `IdbStore`, the write-behind IndexedDB store behind the engine's sync storage
//!   traits (messages packed in blocks, one transaction per commit).
//! - [`opfs`], [`opfs_log`]: the same records on the Origin Private File System, in an
//!   append-only checksummed log a dedicated worker writes and flushes; [`disk`] picks one.
//! - [`lock`]: the Web Lock that makes one context the only writer of a bus's database.
//! - [`jetstream`]: the page's JetStream client, speaking `$JS.API` over the bus. KV and the
//!   object store are the core's (`edgebus_core::kv`, `objstore`), called on the engine
//!   directly (`bus::engine_call`).
//! - [`socket`]: the link to a server: hosts the core's [`link`] state machine over the
//!   browser's WebSocket, one timer and the outbox's IndexedDB records.
//! - [`tabs`]: one bus per origin and name: the store's owner leads, every other tab or
//!   worker is its client over a `BroadcastChannel` (the same link state machine).

pub mod api;
pub mod bus;
pub mod convert;
// the stores: JetStream's, left out of the core-only build but for an empty `Disk` type
#[cfg(feature = "jetstream")]
pub mod disk;
#[cfg(not(feature = "jetstream"))]
#[path = "disk_none.rs"]
pub mod disk;
pub mod error;
#[cfg(feature = "jetstream")]
pub mod idb;
#[cfg(feature = "jetstream")]
pub mod jetstream;
#[cfg(feature = "jetstream")]
pub mod lock;
#[cfg(feature = "jetstream")]
pub mod opfs;
#[cfg(feature = "jetstream")]
pub mod opfs_log;
pub mod socket;
#[cfg(feature = "jetstream")]
pub mod tabs;

pub use edgebus_core as core;
/// The link's protocol, outbox and backoff: the core's, whatever hosts it.
pub use edgebus_core::link;

use wasm_bindgen::prelude::*;

/// Runs when the module is instantiated: in debug builds, panics show up in the console with
/// their message. Release builds leave the hook out: it links the panic formatting
/// machinery into the bundle, and a panic there is a bug that traps either way.
#[wasm_bindgen(start)]
pub fn start() {
    #[cfg(debug_assertions)]
    console_error_panic_hook::set_once();
}
