//! The receiving half of a connection's permissions, which other connections' readers (and
//! the JetStream engine) consult while they deliver to it: the delivery filter for denied
//! subjects under a wider wildcard subscription, and the reply grants of `allow_responses`;
//! and a leaf link's permissions with the answers its peer was granted.
//! The rules are the core's [`edgebus_core::policy::permissions`]; this only puts them
//! behind locks, because deliveries come from many threads. A connection without
//! permissions has none of this, and routing to it checks one empty `OnceLock`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use edgebus_core::leaf::{LeafViolation, LinkPermissions};
use edgebus_core::policy::permissions::{DeliveryFilter, Permissions, ReplyGrants};
use parking_lot::Mutex;

pub struct ReceiverPermissions {
    /// Set once a wildcard subscription could overlap a subscribe-deny entry; until then no
    /// delivery takes the filter's lock.
    filtering: AtomicBool,
    filter: Mutex<DeliveryFilter>,
    grants: Option<Mutex<ReplyGrants>>,
}

impl ReceiverPermissions {
    pub fn new(perms: Arc<Permissions>) -> ReceiverPermissions {
        ReceiverPermissions {
            filtering: AtomicBool::new(false),
            grants: perms.response().map(|r| Mutex::new(ReplyGrants::new(r))),
            filter: Mutex::new(DeliveryFilter::new(perms)),
        }
    }

    pub fn start_filtering(&self) {
        self.filtering.store(true, Ordering::Release);
    }

    /// Must a message on `subject` be withheld from this connection?
    pub fn withholds(&self, subject: &[u8]) -> bool {
        self.filtering.load(Ordering::Acquire) && self.filter.lock().denies(subject)
    }

    /// A message with `reply` was delivered: with `allow_responses`, the connection may answer.
    pub fn delivered(&self, reply: Option<&[u8]>) {
        if let (Some(g), Some(r)) = (&self.grants, reply) {
            g.lock().record(r, now());
        }
    }

    /// Uses a reply grant for a publish the static rules refused.
    pub fn take_grant(&self, subject: &[u8]) -> bool {
        self.grants.as_ref().is_some_and(|g| g.lock().take(subject, now()))
    }
}

/// A leaf link's permissions (the core's mapping of a user's rules onto the link), and, on
/// the hub for a user with `allow_responses`, the answers the leaf may send back to what was
/// delivered to it.
pub struct LeafPermissions {
    link: LinkPermissions,
    grants: Option<Mutex<ReplyGrants>>,
}

impl LeafPermissions {
    pub fn new(link: LinkPermissions) -> LeafPermissions {
        LeafPermissions { grants: link.response().map(|r| Mutex::new(ReplyGrants::new(r))), link }
    }

    /// A message with `reply` was delivered to the leaf: with `allow_responses`, it may answer.
    pub fn delivered(&self, reply: Option<&[u8]>) {
        if let (Some(g), Some(r)) = (&self.grants, reply) {
            g.lock().record(r, now());
        }
    }

    /// May the leaf's message on `subject` enter (see [`LinkPermissions::admit`])?
    pub fn admit(&self, subject: &[u8]) -> Result<bool, LeafViolation> {
        match &self.grants {
            Some(g) => self.link.admit(subject, Some(&mut g.lock()), now()),
            None => self.link.admit(subject, None, now()),
        }
    }
}

impl std::ops::Deref for LeafPermissions {
    type Target = LinkPermissions;

    fn deref(&self) -> &LinkPermissions {
        &self.link
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}
