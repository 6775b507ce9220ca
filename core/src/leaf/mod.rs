//! The leaf-node protocol between two servers (section 14 of the wire-protocol reference):
//! the pure parts every host shares, so a server soliciting a hub and a server accepting a
//! leaf decide the same things the same way.
//!
//! - `wire`: the encoders of `LS+`, `LS-` and `LMSG`; what a leaf peer sends is read by the
//!   shared protocol parser in its leaf role ([`crate::proto::LeafRole`]).
//! - `handshake`: the `INFO` and `CONNECT` bodies of the leaf port, the checks an accepting
//!   side applies to a `CONNECT`, and the soliciting side's handshake steps
//!   (`info_on_connect`).
//! - `interest`: what we announce (reference-counted plain interest, re-announced queue
//!   weights) and what the peer announced to us.
//! - `forward`: which interest is announced to which link, which messages cross, and the one
//!   `LMSG` per peer with its queue list.
//! - `creds`: reading a `.creds` file (user JWT and nkey seed) for a remote's `credentials`.
//! - `perms`: a user's permissions on a leaf link, oriented as nats-server orients them on
//!   each side, and the `import`/`export` of the connect-info `INFO`.
//! - `jsack`: a JetStream delivery's deliver subject and stream subject on one `LMSG`.
//! - `remotes`: a remote's URLs (credentials in them), their rotation with the hub's gossiped
//!   `leafnode_urls`, and the reconnect schedule (the link's [`crate::link::Backoff`]).
//! - loop detection: every side subscribes a unique `$LDS.<random>` subject; seeing our own
//!   come back means the link closes a loop ([`lds_subject`], [`is_own_loop`]).

mod creds;
mod forward;
mod handshake;
mod interest;
mod jsack;
mod perms;
mod remotes;
#[cfg(test)]
mod tests;
mod wire;

pub use crate::proto::{LeafMsg, LeafOp};
pub use creds::{parse_creds, Creds, CredsError};
pub use forward::{advertises, js_denied, Fanout, Origin};
pub use handshake::{check_connect, needs_tls, ConnectRefusal, LeafConnect, LeafInfo, SolicitStep, Solicitor};
pub use interest::{Change, Local, Remote, RemoteChange};
pub use jsack::{delivery_in, delivery_out};
pub use perms::{LeafViolation, LinkPermissions, SubjectPermission};
pub use remotes::{Attempt, LeafUrl, Remotes, Scheme, UrlError, DEFAULT_LEAF_PORT};
pub use wire::{write_interest, write_lmsg};

use alloc::string::String;

/// Where loop-detection subjects start.
pub const LDS_PREFIX: &str = "$LDS.";

/// A fresh loop-detection subject: `$LDS.` and 22 random base62 characters, as nats-server
/// draws them.
pub fn lds_subject(rng: &mut fastrand::Rng) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut s = String::from(LDS_PREFIX);
    for _ in 0..22 {
        s.push(char::from(ALPHABET[rng.usize(..ALPHABET.len())]));
    }
    s
}

/// True when the peer announced our own loop-detection subject: the link closes a loop (the
/// peer reached us through another path) and must be closed with
/// `Loop detected for leafnode account=…`.
pub fn is_own_loop(own_lds: &[u8], announced: &[u8]) -> bool {
    announced == own_lds
}
