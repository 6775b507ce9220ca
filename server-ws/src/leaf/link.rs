//! One live leaf link and the per-account list that tells links of subscription changes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::BytesMut;
use edgebus_core::leaf::{advertises, js_denied, write_interest, Local, Origin};
use parking_lot::{Mutex, RwLock};

use crate::accounts::Account;
use crate::client::{Client, Sub};

/// What `/leafz` shows of the peer.
#[derive(Debug, Clone, Default)]
pub struct PeerMeta {
    pub name: String,
    pub server_id: String,
    pub remote_account: String,
}

/// One leaf link past its handshake.
pub struct LeafLink {
    /// The link's connection: its subscriptions are the peer's interest, its buffer the
    /// bytes to the peer.
    pub client: Arc<Client>,
    pub account: Arc<Account>,
    /// We dialled the peer (it is our hub); else it dialled us.
    pub solicited: bool,
    pub peer: Mutex<PeerMeta>,
    pub started: SystemTime,
    pub in_msgs: AtomicU64,
    pub in_bytes: AtomicU64,
    /// Subscriptions the peer announced, for `/leafz`.
    pub remote_subs: AtomicU64,
    /// What we announced, counted as the core's [`Local`] counts it.
    local: Mutex<Local>,
}

impl LeafLink {
    pub(crate) fn new(client: Arc<Client>, account: Arc<Account>, solicited: bool, peer: PeerMeta) -> LeafLink {
        LeafLink {
            client,
            account,
            solicited,
            peer: Mutex::new(peer),
            started: SystemTime::now(),
            in_msgs: AtomicU64::new(0),
            in_bytes: AtomicU64::new(0),
            remote_subs: AtomicU64::new(0),
            local: Mutex::new(Local::default()),
        }
    }

    /// A subscription appeared (`added`) or went in this link's account: announce the
    /// change if the core's rule says this link hears of it.
    fn announce(&self, sub: &Sub, added: bool) {
        let origin = match sub.client.leaf.get() {
            Some(solicited) => Origin::Leaf { id: sub.client.id, solicited: *solicited },
            None => Origin::Local,
        };
        if !advertises(origin, self.client.id, self.solicited)
            || js_denied(&sub.subject)
            || self.client.leaf_perms().is_some_and(|p| !p.announces(&sub.subject))
        {
            return;
        }
        let change = {
            let mut local = self.local.lock();
            if added {
                local.add(&sub.subject, sub.queue.as_deref())
            } else {
                local.remove(&sub.subject, sub.queue.as_deref())
            }
        };
        if let Some(c) = change {
            let mut line = BytesMut::new();
            write_interest(&mut line, &c);
            self.client.push(&line);
        }
    }
}

/// The links of one account. The account calls it under its trie's write lock, so a link
/// attached in between never misses or doubles a change.
#[derive(Default)]
pub struct Links {
    list: RwLock<Vec<Arc<LeafLink>>>,
    any: AtomicBool,
}

impl Links {
    pub(crate) fn added(&self, sub: &Sub) {
        self.each(|l| l.announce(sub, true));
    }

    pub(crate) fn removed(&self, sub: &Sub) {
        self.each(|l| l.announce(sub, false));
    }

    fn each(&self, f: impl Fn(&LeafLink)) {
        if !self.any.load(Ordering::Acquire) {
            return;
        }
        for l in self.list.read().iter() {
            f(l);
        }
    }

    /// Adds a link; `existing` visits the subscriptions already there, which it announces.
    pub(crate) fn attach(&self, link: &Arc<LeafLink>, existing: impl FnOnce(&mut dyn FnMut(&Sub))) {
        existing(&mut |s| link.announce(s, true));
        let mut list = self.list.write();
        list.push(link.clone());
        self.any.store(true, Ordering::Release);
    }

    pub(crate) fn detach(&self, link: &Arc<LeafLink>) {
        let mut list = self.list.write();
        list.retain(|l| !Arc::ptr_eq(l, link));
        self.any.store(!list.is_empty(), Ordering::Release);
    }
}
