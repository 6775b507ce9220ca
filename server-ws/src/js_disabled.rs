//! The `$JS.API` of an account without JetStream on a server that runs it: an in-process
//! subscriber that answers every API request with nats-server's `503 10039 JetStream not
//! enabled for account` (the core's [`not_enabled_response`]), so a client of that account
//! gets the error nats-server gives rather than no responders or another account's streams.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use edgebus_core::jetstream::disabled::not_enabled_response;
use parking_lot::Mutex;

use crate::accounts::Account;
use crate::client::{Client, SubRef};
use crate::router::{InternalSink, Router};
use crate::server::Shared;

/// The subscriber of one account; dropping it (at shutdown) ends its answers.
pub struct NotEnabled {
    shared: Arc<Shared>,
    client: Arc<Client>,
    router: Mutex<Router>,
    sub: Mutex<Option<SubRef>>,
}

impl NotEnabled {
    /// Subscribes the answerer in `account`.
    pub fn start(shared: Arc<Shared>, account: Arc<Account>) -> Arc<NotEnabled> {
        let id = shared.next_cid.fetch_add(1, Ordering::Relaxed);
        let me = Arc::new_cyclic(|weak: &Weak<NotEnabled>| {
            let sink: Weak<dyn InternalSink> = weak.clone();
            NotEnabled {
                router: Mutex::new(Router::new(&shared, account.clone())),
                client: Arc::new(Client::internal(id, sink)),
                shared: shared.clone(),
                sub: Mutex::new(None),
            }
        });
        *me.sub.lock() = me.client.subscribe_internal(&account, "$JS.API.>");
        me
    }

    /// Unsubscribes (at shutdown).
    pub fn stop(&self) {
        if let Some(sub) = self.sub.lock().take() {
            self.client.unsubscribe_internal(&sub);
        }
    }
}

impl InternalSink for NotEnabled {
    fn deliver(&self, subject: &[u8], reply: Option<&[u8]>, _header_len: Option<usize>, _message: &[u8]) -> bool {
        let (Some(reply), Some(body)) = (reply.filter(|r| !r.is_empty()), not_enabled_response(subject)) else {
            return true;
        };
        // try_lock: an answer routed to a subscriber that is this answerer again (a reply
        // subject under `$JS.API.`) is dropped rather than deadlocking
        if let Some(mut router) = self.router.try_lock() {
            router.route(&self.shared, self.client.id, false, reply, reply, None, None, &body);
            router.wake_writers();
        }
        true
    }
}
