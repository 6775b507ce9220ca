//! Routing from a publisher to its receivers, on whichever thread publishes (a connection's
//! reader, the JetStream engine): the publisher's own match cache, the delivery rule of
//! [`edgebus_core::route`], and the counting rules of [`edgebus_core::policy`].

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use edgebus_core::jetstream::consumer::ACK_PREFIX;
use edgebus_core::jetstream::host::Inbound;
use edgebus_core::leaf::{delivery_in, delivery_out, js_denied, Fanout};
use edgebus_core::policy::accounts::{is_response_subject, with_request_info, RESPONSE_PREFIX};
use edgebus_core::policy::{self, Count};
use edgebus_core::route::route_local_first;
use edgebus_core::sublist::{MatchCache, MatchResult};

use crate::accounts::{Account, ReplyTo};
use crate::client::{Client, SubRef};
use crate::server::Shared;

/// The publishing half of routing, owned by whoever publishes (a connection's reader, the
/// JetStream engine): the account it publishes in, a private match cache of that account's
/// trie, the queue-group RNG, and the bookkeeping of a publish (expired auto-unsubscribes, a
/// receiver to stall on). The cache holds one account's results only: changing the account
/// empties it, so accounts never share a match.
pub struct Router {
    account: Arc<Account>,
    cache: MatchCache<SubRef>,
    /// The last subject routed and its result: a publisher repeating one subject skips even
    /// the cache's hash lookup.
    last: Option<(u64, Arc<MatchResult<SubRef>>)>,
    /// The subject of `last`, in a buffer reused across subjects (no allocation per change).
    last_subject: Vec<u8>,
    sinks: Sinks,
    /// A buffer for subjects mapped between accounts.
    mapped: Vec<u8>,
    /// A buffer for service requests forwarded with their `Nats-Request-Info` header.
    request: Vec<u8>,
}

/// What delivering to a match result needs, apart from the result itself.
struct Sinks {
    rng: fastrand::Rng,
    expired: Vec<SubRef>,
    /// A receiver whose backlog passed the stall mark during this read.
    stalled: Option<Arc<Client>>,
    /// Receivers given their first bytes since their writer last looked, woken together by
    /// [`Router::wake_writers`] once the publisher has routed everything it read. As in
    /// nats-server, a receiver then gets one write per batch of input rather than a
    /// trickle of small ones, which costs its reader a wake-up and a syscall each.
    wakes: Vec<Arc<Client>>,
    max_pending: usize,
    /// Leaf peers a message goes to, each given one `LMSG` after the match is walked.
    leaves: Fanout<LeafTarget>,
    /// For a message from a leaf peer: the queue groups it may go to (the peer picked us
    /// for those); plain subscribers get it regardless.
    queue_filter: Option<Vec<Bytes>>,
}

/// A leaf link's connection, compared by identity.
struct LeafTarget(Arc<Client>);

impl PartialEq for LeafTarget {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// One message being routed.
#[derive(Clone, Copy)]
struct Msg<'a> {
    from: u64,
    echo: bool,
    /// The subject matched (a JetStream delivery's deliver subject).
    route: &'a [u8],
    /// The subject shown in the `MSG` line.
    subject: &'a [u8],
    reply: Option<&'a [u8]>,
    header_len: Option<usize>,
    message: &'a [u8],
}

impl Router {
    pub fn new(shared: &Shared, account: Arc<Account>) -> Router {
        Router {
            account,
            cache: MatchCache::default(),
            last: None,
            last_subject: Vec::new(),
            sinks: Sinks {
                rng: fastrand::Rng::new(),
                expired: Vec::new(),
                stalled: None,
                wakes: Vec::new(),
                max_pending: usize::try_from(shared.opts.max_pending).unwrap_or(usize::MAX),
                leaves: Fanout::default(),
                queue_filter: None,
            },
            mapped: Vec::new(),
            request: Vec::new(),
        }
    }

    /// The account this router publishes in.
    pub fn account(&self) -> &Arc<Account> {
        &self.account
    }

    /// Publishes in `account` from now on (a client authenticated into it).
    pub fn set_account(&mut self, account: Arc<Account>) {
        if !Arc::ptr_eq(&self.account, &account) {
            self.account = account;
            self.cache = MatchCache::default();
            self.last = None;
        }
    }

    /// A receiver whose backlog passed the stall mark since the last call.
    pub fn take_stalled(&mut self) -> Option<Arc<Client>> {
        self.sinks.stalled.take()
    }

    pub fn max_pending(&self) -> usize {
        self.sinks.max_pending
    }

    /// Wakes the writers of the receivers that got something since the last call. Every
    /// publisher calls this after each batch it routes.
    pub fn wake_writers(&mut self) {
        for c in self.sinks.wakes.drain(..) {
            c.wake.notify_one();
        }
    }

    /// Delivers one message to every subscription matching `route_subject`, showing
    /// `msg_subject` in the `MSG` line (they differ for JetStream deliveries, which go to an
    /// inbox but carry the stream subject). Returns how many deliveries were made.
    #[allow(clippy::too_many_arguments)]
    pub fn route(
        &mut self,
        shared: &Shared,
        from: u64,
        echo: bool,
        route_subject: &[u8],
        msg_subject: &[u8],
        reply: Option<&[u8]>,
        header_len: Option<usize>,
        message: &[u8],
    ) -> usize {
        let genid = self.account.generation();
        let fresh = matches!(&self.last, Some((g, _)) if *g == genid && self.last_subject == route_subject);
        if !fresh {
            let r = match self.cache.get(genid, route_subject) {
                Some(r) => r,
                None => {
                    let (g, r) = self.account.match_subject(route_subject);
                    // an ack subject carries its message's sequence numbers, so it is routed
                    // once: caching it would only churn the cache
                    if !route_subject.starts_with(ACK_PREFIX) {
                        self.cache.insert(g, route_subject, r.clone());
                    }
                    r
                }
            };
            self.last_subject.clear();
            self.last_subject.extend_from_slice(route_subject);
            self.last = Some((genid, r));
        }
        let msg = Msg { from, echo, route: route_subject, subject: msg_subject, reply, header_len, message };
        // borrowed, not cloned: no reference count traffic per message on a repeated subject
        let mut delivered = match &self.last {
            Some((_, result)) => self.sinks.deliver(shared, result, msg),
            None => 0,
        };
        // a JetStream delivery (to an inbox, showing the stream subject) stays in its account
        if self.account.crosses() && route_subject == msg_subject {
            delivered += self.cross(shared, msg);
        }
        delivered
    }

    /// Routes a message into the accounts it reaches through imports: the importers of a
    /// stream this account exports, the exporter of a service it imports, and the requester
    /// of a service answer. Not cached: only configurations with imports take this path.
    fn cross(&mut self, shared: &Shared, msg: Msg<'_>) -> usize {
        let account = self.account.clone();
        let mut mapped = std::mem::take(&mut self.mapped);
        let mut delivered = 0;
        for link in &account.streams_out {
            if let (true, Some(target)) = (link.map.map(msg.subject, &mut mapped), shared.accounts.get(link.target)) {
                let (_, result) = target.match_subject(&mapped);
                delivered += self.sinks.deliver(shared, &result, Msg { route: &mapped, subject: &mapped, ..msg });
            }
        }
        for link in &account.services_out {
            if let (true, Some(target)) = (link.map.map(msg.subject, &mut mapped), shared.accounts.get(link.target)) {
                let reply = msg.reply.map(|r| {
                    let token = response_subject(&mut self.sinks.rng);
                    let to = ReplyTo { account: account.index, reply: Bytes::copy_from_slice(r) };
                    target.responses.lock().insert(token.clone(), to, now());
                    token
                });
                let (_, result) = target.match_subject(&mapped);
                let mut with_info = std::mem::take(&mut self.request);
                let header_len = with_request_info(&account.name, msg.header_len, msg.message, &mut with_info);
                let forwarded = Msg {
                    route: &mapped,
                    subject: &mapped,
                    reply: reply.as_deref(),
                    header_len: Some(header_len),
                    message: &with_info,
                    ..msg
                };
                let n = self.sinks.deliver(shared, &result, forwarded);
                self.request = with_info;
                if let (0, Some(token)) = (n, &reply) {
                    target.responses.lock().take(token, 0);
                }
                delivered += n;
            }
        }
        if account.answers_services && is_response_subject(msg.subject) {
            let to = account.responses.lock().take(msg.subject, now());
            if let Some(target) = to.as_ref().and_then(|to| shared.accounts.get(to.account).map(|a| (a, &to.reply))) {
                let (account, reply) = target;
                let (_, result) = account.match_subject(reply);
                delivered += self.sinks.deliver(shared, &result, Msg { route: reply, subject: reply, ..msg });
            }
        }
        self.mapped = mapped;
        delivered
    }
}

/// A fresh reply subject for a forwarded service request (nats-server's shape:
/// `_R_.<prefix>.<random>`).
fn response_subject(rng: &mut fastrand::Rng) -> Vec<u8> {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut s = RESPONSE_PREFIX.to_vec();
    for i in 0..17 {
        if i == 6 {
            s.push(b'.');
        } else {
            s.push(ALPHABET[rng.usize(..ALPHABET.len())]);
        }
    }
    s
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl Sinks {
    /// Delivers `msg` to the subscriptions of `result` (one member per queue group).
    fn deliver(&mut self, shared: &Shared, result: &MatchResult<SubRef>, msg: Msg<'_>) -> usize {
        if result.plain.is_empty() && result.queues.is_empty() {
            return 0;
        }
        let max_pending = self.max_pending;
        let expired = &mut self.expired;
        let stall = &mut self.stalled;
        let wakes = &mut self.wakes;
        let leaves = &mut self.leaves;
        let filter = self.queue_filter.as_deref();
        let is_leaf = |sub: &SubRef| sub.client.leaf.get().is_some();
        let delivered = route_local_first(result, &mut self.rng, is_leaf, |sub| {
            if sub.closed.load(Ordering::Relaxed) || !policy::echo_allows(msg.echo, sub.client.id == msg.from) {
                return false;
            }
            if let (Some(f), Some(q)) = (filter, &sub.queue) {
                if !f.contains(q) {
                    return false;
                }
            }
            if sub.client.leaf.get().is_some() {
                if js_denied(msg.route) || sub.client.leaf_perms().is_some_and(|p| !p.delivers(msg.route)) {
                    return false;
                }
                leaves.add(LeafTarget(sub.client.clone()), sub.queue.as_ref());
                return true;
            }
            let perms = sub.client.perms.get();
            if perms.is_some_and(|p| p.withholds(msg.subject)) {
                return false;
            }
            let (mut stalled, mut wake) = (false, false);
            let ok = match sub.client.deliver(
                Some(sub),
                &sub.sid,
                msg.subject,
                msg.reply,
                msg.header_len,
                msg.message,
                max_pending,
                shared,
                &mut stalled,
                &mut wake,
            ) {
                Count::Refuse => false,
                Count::DeliverLast => {
                    expired.push(sub.clone());
                    true
                }
                Count::Deliver => true,
            };
            if stalled && stall.is_none() {
                *stall = Some(sub.client.clone());
            }
            if wake {
                wakes.push(sub.client.clone());
            }
            if let (true, Some(p)) = (ok, perms) {
                p.delivered(msg.reply);
            }
            ok
        });
        if !self.leaves.is_empty() {
            self.deliver_leaves(shared, msg);
        }
        if !self.expired.is_empty() {
            for sub in self.expired.drain(..) {
                sub.account.remove_sub(&sub);
                sub.client.num_subs.fetch_sub(1, Ordering::Relaxed);
            }
        }
        delivered
    }
}

impl Sinks {
    /// One `LMSG` to each leaf peer gathered while walking the match.
    fn deliver_leaves(&mut self, shared: &Shared, msg: Msg<'_>) {
        let (subject, reply) = delivery_out(msg.route, msg.subject, msg.reply);
        for (LeafTarget(client), queues) in self.leaves.drain() {
            let names: Vec<&[u8]> = queues.iter().map(|q| q.as_ref()).collect();
            let (mut stalled, mut wake) = (false, false);
            client.deliver_leaf(
                subject,
                reply.as_deref(),
                &names,
                msg.header_len,
                msg.message,
                self.max_pending,
                shared,
                &mut stalled,
                &mut wake,
            );
            // a leaf whose user has allow_responses may answer what it was sent
            if let Some(p) = client.leaf_perms() {
                p.delivered(reply.as_deref());
            }
            if stalled && self.stalled.is_none() {
                self.stalled = Some(client.clone());
            }
            if wake {
                self.wakes.push(client);
            }
        }
    }
}

impl Router {
    /// Routes a message that came from leaf peer `from`, to the queue groups it names only
    /// (and every plain subscriber): the peer picked our side for those groups.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn route_from_leaf(
        &mut self,
        shared: &Shared,
        from: u64,
        subject: &[u8],
        reply: Option<&[u8]>,
        queues: &[Bytes],
        header_len: Option<usize>,
        message: &[u8],
    ) -> usize {
        self.sinks.queue_filter = Some(queues.to_vec());
        let (shown, reply) = delivery_in(subject, reply);
        let n = self.route(shared, from, false, subject, shown, reply, header_len, message);
        self.sinks.queue_filter = None;
        n
    }

    /// Tells publisher `from` that its request on `subject` reached nobody, on its own
    /// subscription to `reply` (see [`policy::no_responders_target`]). Reply subjects are
    /// mostly unique inboxes, so the match is not cached.
    pub fn no_responders(&mut self, shared: &Shared, from: u64, subject: &[u8], reply: &[u8]) {
        let (_, matched) = self.account.match_subject(reply);
        let Some(sub) = policy::no_responders_target(&matched, |s| s.client.id == from && !s.is_closed()) else {
            return;
        };
        let status = policy::no_responders_headers(subject);
        let (mut stalled, mut wake) = (false, false);
        let client = &sub.client;
        // not counted against the subscription's limit (see `policy::no_responders_target`)
        client.deliver(
            None,
            &sub.sid,
            reply,
            None,
            Some(status.len()),
            &status,
            self.sinks.max_pending,
            shared,
            &mut stalled,
            &mut wake,
        );
        if wake {
            self.sinks.wakes.push(client.clone());
        }
    }
}

/// Where an in-process subscriber (the JetStream host) takes its deliveries. Called from
/// inside routing, so it must not block on anything a router may hold.
pub trait InternalSink: Send + Sync {
    /// Takes one message; false once the subscriber has gone.
    fn deliver(&self, subject: &[u8], reply: Option<&[u8]>, header_len: Option<usize>, message: &[u8]) -> bool;
}

/// A message handed to an in-process subscriber, owned, for when it is processed later.
pub struct InternalMsg {
    pub subject: Bytes,
    pub reply: Option<Bytes>,
    pub headers: Option<Bytes>,
    pub payload: Bytes,
}

impl InternalMsg {
    /// The message as input for the JetStream engine.
    pub fn inbound(&self) -> Inbound<'_> {
        Inbound {
            subject: &self.subject,
            reply: self.reply.as_deref(),
            headers: self.headers.as_deref(),
            payload: &self.payload,
        }
    }

    pub fn copy_of(subject: &[u8], reply: Option<&[u8]>, header_len: Option<usize>, message: &[u8]) -> InternalMsg {
        let (headers, payload) = match header_len {
            Some(h) if h <= message.len() => {
                (Some(Bytes::copy_from_slice(&message[..h])), Bytes::copy_from_slice(&message[h..]))
            }
            _ => (None, Bytes::copy_from_slice(message)),
        };
        InternalMsg {
            subject: Bytes::copy_from_slice(subject),
            reply: reply.map(Bytes::copy_from_slice),
            headers,
            payload,
        }
    }
}
