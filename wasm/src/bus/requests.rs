//! The page's requests and their replies: one wildcard inbox subscription and one sweeper
//! timer for them all, publish-and-collect for fetches and listings, and the channel
//! subscriptions Rust tasks read.

#[cfg(feature = "jetstream")]
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use bytes::Bytes;
use edgebus_core::broker::Delivery;
use edgebus_core::proto::Headers;
#[cfg(feature = "jetstream")]
use futures_channel::mpsc;
use futures_channel::oneshot;
#[cfg(feature = "jetstream")]
use futures_util::future::{select, Either};
#[cfg(feature = "jetstream")]
use futures_util::StreamExt;
use gloo_timers::future::TimeoutFuture;
use hashbrown::HashMap;

use super::{after, now_ms, Handler, Inner, Shared};
use crate::error::BusError;

/// Requests waiting for their reply. Like nats.js, the bus answers them all through one
/// wildcard subscription (`<inbox prefix>.R.*`) instead of a subscription per request: a
/// per-request subscription changes the subscription trie twice per request, and every
/// change empties the broker's match cache. Timeouts share one timer too ([`arm_sweeper`]),
/// rather than one `setTimeout`/`clearTimeout` pair per request.
#[derive(Default)]
pub(super) struct Requests {
    sid: Option<u64>,
    next: u64,
    /// Token → (deadline in ms since the epoch, where the reply goes).
    waiting: HashMap<u64, (u64, Waiter)>,
    /// (deadline, token), sorted. Requests mostly share one timeout and are answered in
    /// the order they were made, so inserts land at the back and removals near the front,
    /// each cheap in a ring buffer; a `BTreeSet` cost 9 KB of the core-only module.
    deadlines: VecDeque<(u64, u64)>,
    /// When the sweeper wakes next, and its generation (a newer sweeper retires older ones).
    sweep_at: Option<u64>,
    sweep_gen: u64,
}

/// Where a reply goes: a request's own channel, or its slot in a group made together.
enum Waiter {
    One(oneshot::Sender<Delivery>),
    #[cfg(feature = "jetstream")]
    Group(Rc<Group>, usize),
}

impl Waiter {
    fn answer(self, d: Delivery) {
        match self {
            Waiter::One(tx) => drop(tx.send(d)),
            #[cfg(feature = "jetstream")]
            Waiter::Group(g, slot) => g.settle(slot, Some(d)),
        }
    }

    /// The request timed out or the bus closed: no reply will come.
    fn abandon(self) {
        match self {
            Waiter::One(tx) => drop(tx),
            #[cfg(feature = "jetstream")]
            Waiter::Group(g, slot) => g.settle(slot, None),
        }
    }
}

/// The replies of requests made together ([`request_many`]), gathered in one place with one
/// wake-up for them all: a stream publish batch has one request per message, and a channel
/// and a wake-up per reply was a tenth of the page's work per publish (profiled).
#[cfg(feature = "jetstream")]
struct Group {
    replies: RefCell<Vec<Option<Delivery>>>,
    /// Requests registered and not yet answered, timed out or closed.
    left: Cell<usize>,
    done: RefCell<Option<oneshot::Sender<()>>>,
}

#[cfg(feature = "jetstream")]
impl Group {
    fn settle(&self, slot: usize, d: Option<Delivery>) {
        if let Some(r) = self.replies.borrow_mut().get_mut(slot) {
            *r = d;
        }
        let left = self.left.get().saturating_sub(1);
        self.left.set(left);
        if left == 0 {
            if let Some(tx) = self.done.borrow_mut().take() {
                let _ = tx.send(());
            }
        }
    }
}

impl Requests {
    /// Forgets every waiting request (the bus closed: their callers see it closed).
    pub(super) fn clear(&mut self) {
        for (_, (_, w)) in self.waiting.drain() {
            w.abandon();
        }
        self.deadlines.clear();
    }

    fn forget_deadline(&mut self, deadline: u64, token: u64) {
        if let Ok(at) = self.deadlines.binary_search(&(deadline, token)) {
            self.deadlines.remove(at);
        }
    }
}

impl Inner {
    /// A reply subject for a new request and where its reply will arrive; `None` from the
    /// receiver means the request timed out or the bus closed.
    fn register_request(&mut self, timeout_ms: u32) -> Result<(u64, String, oneshot::Receiver<Delivery>), BusError> {
        let (tx, rx) = oneshot::channel();
        let (token, reply) = self.register(timeout_ms, Waiter::One(tx))?;
        Ok((token, reply, rx))
    }

    fn register(&mut self, timeout_ms: u32, waiter: Waiter) -> Result<(u64, String), BusError> {
        self.check_open()?;
        if self.requests.sid.is_none() {
            let subject = format!("{}.R.*", self.inbox_prefix);
            self.requests.sid = Some(self.subscribe(&subject, None, Handler::Mux)?);
        }
        let token = self.requests.next;
        self.requests.next += 1;
        let deadline = now_ms() + u64::from(timeout_ms);
        self.requests.waiting.insert(token, (deadline, waiter));
        let at = self.requests.deadlines.partition_point(|e| *e < (deadline, token));
        self.requests.deadlines.insert(at, (deadline, token));
        Ok((token, format!("{}.R.{token}", self.inbox_prefix)))
    }

    fn cancel_request(&mut self, token: u64) {
        if let Some((deadline, _)) = self.requests.waiting.remove(&token) {
            self.requests.forget_deadline(deadline, token);
        }
    }

    /// Hands a reply to its request (a reply nobody waits for any more is dropped).
    pub(super) fn answer(&mut self, d: Delivery) {
        let token = d.subject.rsplit(|b| *b == b'.').next().and_then(|t| std::str::from_utf8(t).ok()?.parse().ok());
        let Some(token) = token else { return };
        if let Some((deadline, w)) = self.requests.waiting.remove(&token) {
            self.requests.forget_deadline(deadline, token);
            w.answer(d);
        }
    }

    /// Drops the requests whose deadline passed (their callers see a timeout).
    fn expire_requests(&mut self, now: u64) {
        while let Some(&(deadline, token)) = self.requests.deadlines.front() {
            if deadline > now {
                break;
            }
            self.requests.deadlines.pop_front();
            if let Some((_, w)) = self.requests.waiting.remove(&token) {
                w.abandon();
            }
        }
    }
}

#[cfg(feature = "jetstream")]
/// Subscribes a channel; the caller unsubscribes when done.
pub fn subscribe_chan(rc: &Shared, subject: &str) -> Result<(u64, mpsc::UnboundedReceiver<Delivery>), BusError> {
    let (tx, rx) = mpsc::unbounded();
    let sid = rc.borrow_mut().subscribe(subject, None, Handler::Chan(tx))?;
    Ok((sid, rx))
}

/// The status code of a header-only status message (`NATS/1.0 503`), if it is one.
pub fn status_of(d: &Delivery) -> Option<u16> {
    if !d.payload.is_empty() {
        return None;
    }
    d.headers.as_deref().and_then(|h| Headers::parse(h).ok()).and_then(|h| h.status)
}

/// Publishes a request and waits for one reply.
pub async fn request(
    rc: &Shared,
    subject: &str,
    headers: Option<Bytes>,
    payload: &[u8],
    timeout_ms: u32,
) -> Result<Delivery, BusError> {
    let rx = {
        let mut i = rc.borrow_mut();
        let (token, reply, rx) = i.register_request(timeout_ms)?;
        if let Err(e) = i.publish(subject, Some(&reply), headers.as_deref(), payload) {
            i.cancel_request(token);
            return Err(e);
        }
        rx
    };
    arm_sweeper(rc);
    after(rc);
    match rx.await {
        Ok(d) if status_of(&d) == Some(503) => Err(BusError::NoResponders(subject.into())),
        Ok(d) => Ok(d),
        Err(_) if rc.borrow().closed => Err(BusError::Closed),
        Err(_) => Err(BusError::Timeout),
    }
}

#[cfg(feature = "jetstream")]
/// Publishes every `(subject, payload)` as a request, all before one pump (so a JetStream
/// engine stores them together and one commit covers them), and waits for every reply,
/// answering in the same order.
pub async fn request_many<'a>(
    rc: &Shared,
    msgs: impl ExactSizeIterator<Item = (&'a str, &'a [u8])>,
    timeout_ms: u32,
) -> Vec<Result<Delivery, BusError>> {
    let (done, finished) = oneshot::channel();
    let group = Rc::new(Group {
        replies: RefCell::new((0..msgs.len()).map(|_| None).collect()),
        // the loop below holds one count itself, so that no reply settles the group early
        left: Cell::new(1),
        done: RefCell::new(Some(done)),
    });
    let mut sent = Vec::with_capacity(msgs.len());
    {
        let mut i = rc.borrow_mut();
        for (slot, (subject, payload)) in msgs.enumerate() {
            let outcome = i.register(timeout_ms, Waiter::Group(group.clone(), slot)).and_then(|(token, reply)| {
                group.left.set(group.left.get() + 1);
                i.publish(subject, Some(&reply), None, payload).inspect_err(|_| {
                    // never published: no reply can come
                    if let Some((deadline, _)) = i.requests.waiting.remove(&token) {
                        i.requests.forget_deadline(deadline, token);
                    }
                    group.left.set(group.left.get() - 1);
                })
            });
            sent.push((subject, outcome));
        }
    }
    group.settle(usize::MAX, None);
    arm_sweeper(rc);
    after(rc);
    let _ = finished.await;
    let replies = std::mem::take(&mut *group.replies.borrow_mut());
    let closed = rc.borrow().closed;
    sent.into_iter()
        .zip(replies)
        .map(|((subject, outcome), reply)| {
            outcome?;
            match reply {
                Some(d) if status_of(&d) == Some(503) => Err(BusError::NoResponders(subject.into())),
                Some(d) => Ok(d),
                None if closed => Err(BusError::Closed),
                None => Err(BusError::Timeout),
            }
        })
        .collect()
}

/// Makes sure a timer wakes at the earliest request deadline.
fn arm_sweeper(rc: &Shared) {
    let (generation, ms) = {
        let mut i = rc.borrow_mut();
        let Some(&(deadline, _)) = i.requests.deadlines.front() else { return };
        if i.requests.sweep_at.is_some_and(|at| at <= deadline) {
            return;
        }
        i.requests.sweep_at = Some(deadline);
        i.requests.sweep_gen += 1;
        (i.requests.sweep_gen, deadline.saturating_sub(now_ms()).min(u64::from(u32::MAX / 2)) as u32)
    };
    let weak = Rc::downgrade(rc);
    wasm_bindgen_futures::spawn_local(async move {
        TimeoutFuture::new(ms).await;
        let Some(rc) = weak.upgrade() else { return };
        {
            let mut i = rc.borrow_mut();
            if i.requests.sweep_gen != generation {
                return;
            }
            i.requests.sweep_at = None;
            i.expire_requests(now_ms());
        }
        arm_sweeper(&rc);
    });
}

#[cfg(feature = "jetstream")]
/// Collects messages on a fresh inbox subscription until `done` says stop or `timeout_ms`
/// passes; publishes `subject` with the inbox as reply first (if given).
pub async fn collect(
    rc: &Shared,
    inbox: &str,
    publish: Option<(&str, &[u8])>,
    timeout_ms: u32,
    mut done: impl FnMut(&Delivery) -> Collect,
) -> Result<Vec<Delivery>, BusError> {
    let (sid, mut rx) = subscribe_chan(rc, inbox)?;
    if let Some((subject, body)) = publish {
        let sent = rc.borrow_mut().publish(subject, Some(inbox), None, body);
        if let Err(e) = sent {
            rc.borrow_mut().unsubscribe(sid, 0);
            return Err(e);
        }
    }
    after(rc);
    let mut timer = TimeoutFuture::new(timeout_ms);
    let mut got = Vec::new();
    while let Either::Left((Some(d), _)) = select(rx.next(), &mut timer).await {
        match done(&d) {
            Collect::Keep => got.push(d),
            Collect::KeepAndStop => {
                got.push(d);
                break;
            }
            Collect::Skip => {}
            Collect::Stop => break,
        }
    }
    rc.borrow_mut().unsubscribe(sid, 0);
    Ok(got)
}

#[cfg(feature = "jetstream")]
/// What [`collect`] does with one message.
pub enum Collect {
    Keep,
    KeepAndStop,
    Skip,
    Stop,
}
