//! Leaf-node links: this server as a leaf of a NATS cluster (the remotes it dials) and as the
//! hub of leaves that dial it. The protocol's rules are the core's [`edgebus_core::leaf`];
//! this module does the I/O and ties a link into routing.
//!
//! A link is a connection ([`crate::client::Client`]) whose subscriptions are the peer's
//! announced interest: the router delivers to it like to any subscriber, except that one
//! message becomes one `LMSG` per peer (see `router.rs`), and a message that came over the
//! link never goes back (the echo rule of its own connection). Our interest reaches the peer
//! through [`Links`], which the account calls on every subscription change.
//!
//! - `options`: the `leafnodes` block.
//! - `link`: [`LeafLink`] (one live link: what it announced, its peer) and [`Links`].
//! - `conn`: one link's connection, both roles: handshake, interest, messages, keepalive.
//! - `solicit`: dialling a remote's URLs with backoff.
//! - `remotes`: the remotes being dialled, started and stopped as a reload changes them.
//! - `accept`: the leaf port, and leaves on the WebSocket port (`/leafnode`).
//! - `monitor`: `/leafz`.

mod accept;
mod conn;
mod link;
mod monitor;
pub mod options;
pub mod remotes;
mod solicit;

pub use accept::{accept_loop, bind, serve_ws};
pub use link::{LeafLink, Links};
pub use monitor::leafz;
pub use remotes::Dialling;
