//! The receiving half of a connection's permissions, which other connections' readers (and
//! the JetStream engine) consult while they deliver to it: the delivery filter for denied
//! subjects under a wider wildcard subscription, and the reply grants of `allow_responses`.
//! The rules are the core's [`edgebus_core::policy::permissions`]; this only puts them
//! behind locks, because deliveries come from many threads. A connection without
//! permissions has none of this, and routing to it checks one empty `OnceLock`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

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

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}
