//! Which interest and which messages cross which leaf link.
//!
//! A message is never sent back over the link it came in on: the peer's interest is held
//! as subscriptions of the link's own connection, and the echo rule keeps a connection's
//! messages from its own subscriptions. What is left here is what a host cannot see from
//! one subscription: which interest a link announces, and one `LMSG` per peer however many
//! of its subscriptions a message matches.

use alloc::vec::Vec;
use bytes::Bytes;

/// Where a subscription comes from, as a leaf link sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A local connection (client, in-process engine).
    Local,
    /// The peer of a leaf link: `id` is the link's connection, `solicited` says whether we
    /// dialled it (it is our hub) or it dialled us (we are its hub).
    Leaf { id: u64, solicited: bool },
}

/// Whether a subscription of `origin` is announced over the link `link` (`solicited` when we
/// dialled it). As nats-server: a link never hears its own peer's interest back; a spoke
/// (a link we dialled) only hears interest of local connections and of leaves that dialled
/// us, never what another hub announced (that would join two hubs through us).
pub fn advertises(origin: Origin, link: u64, link_solicited: bool) -> bool {
    match origin {
        Origin::Local => true,
        Origin::Leaf { id, .. } if id == link => false,
        Origin::Leaf { solicited, .. } => !(solicited && link_solicited),
    }
}

/// Subjects that never cross a leaf link in an ordinary account (nats-server's
/// `denyAllClientJs`: `$JS.API.>`, `$KV.>`, `$OBJ.>`): each side's JetStream answers its own
/// clients, and without JetStream domains a request crossing would be answered by both.
const JS_DENIED: [&[u8]; 3] = [b"$JS.API.", b"$KV.", b"$OBJ."];

/// Whether `subject` (a message subject, or a subscription's, wildcards included) lies within
/// what never crosses a leaf link. A wider subscription (`>`, `$JS.>`) still crosses; the
/// messages under it that are denied do not.
pub fn js_denied(subject: &[u8]) -> bool {
    JS_DENIED.iter().any(|p| subject.starts_with(p))
}

/// The leaf peers one message goes to, gathered while routing: each peer gets a single
/// `LMSG` naming the queue groups of its that were picked, however many of its
/// subscriptions matched.
#[derive(Debug)]
pub struct Fanout<K> {
    targets: Vec<(K, Vec<Bytes>)>,
}

impl<K> Default for Fanout<K> {
    fn default() -> Self {
        Fanout { targets: Vec::new() }
    }
}

impl<K: PartialEq> Fanout<K> {
    /// A subscription of peer `k` matched: plainly (`queue` is `None`) or as the member
    /// picked for its group.
    pub fn add(&mut self, k: K, queue: Option<&Bytes>) {
        let i = match self.targets.iter().position(|(t, _)| *t == k) {
            Some(i) => i,
            None => {
                self.targets.push((k, Vec::new()));
                self.targets.len() - 1
            }
        };
        if let Some(q) = queue {
            let qs = &mut self.targets[i].1;
            if !qs.contains(q) {
                qs.push(q.clone());
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Each peer with the queue groups to name (empty: plain interest only).
    pub fn drain(&mut self) -> impl Iterator<Item = (K, Vec<Bytes>)> + '_ {
        self.targets.drain(..)
    }
}
