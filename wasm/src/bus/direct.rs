//! Direct engine calls: how the page hosts the core's KV and object store. They run the core
//! function on the engine in place of a `$JS.API` round trip over the bus, under the same
//! rules as the bus's own traffic: order (what was published earlier reaches the engine
//! first) and durability (the answer waits for the IndexedDB commit).

use edgebus_core::jetstream::errors::ApiError;
use edgebus_core::jetstream::{Interest, JetStream, PubAck};
use futures_channel::oneshot;

use super::{after, now_ns, Inner, Shared};
use crate::error::BusError;

/// Runs `f` on the engine directly, as the core's KV and object store expect to be hosted
/// (`f` gets the engine, `now` and the bus's interest), then pumps, so watchers and push
/// consumers get what `f` stored. Whatever the page published before reaches the engine
/// first, so writes keep their call order. Returns `f`'s result and the commit that must
/// finish before it may be reported ([`durable`]): the one holding what `f` wrote, or, for a
/// call that wrote nothing, the one holding earlier writes, so the page never acts on a
/// value a reload could take back (the rule held engine replies follow).
pub fn engine_call<R>(
    rc: &Shared,
    f: impl FnOnce(&mut JetStream, u64, &dyn Interest) -> R,
) -> Result<(R, Option<u64>), BusError> {
    let out = {
        let mut i = rc.borrow_mut();
        i.check_open()?;
        // this context's engine has no store: only the leader's may answer
        crate::tabs::refuse_in_client(&i, "KV and the object store")?;
        let now = now_ns();
        i.pump(now);
        let Inner { broker, engine, .. } = &mut *i;
        let interest = |s: &[u8]| broker.has_interest(s);
        let r = f(engine.engine_mut(), now, &interest);
        (r, i.durable_batch())
    };
    after(rc);
    Ok(out)
}

/// [`publish_direct`]'s acks, in order, and the commit they wait for.
pub(crate) type DirectAcks = (Vec<Result<PubAck, ApiError>>, Option<u64>);

/// Stream publishes without headers, stored by the engine directly when that is all a
/// request over the bus would do: each captured by a stream that acknowledges, none that
/// another connection (a subscriber, another tab, the link) would receive, none the broker
/// would refuse. Then a publish costs the store and no reply subject, routing, JSON ack or
/// reply hand-back (together most of the page's work per publish, profiled). `None`: some
/// message needs the bus, so the caller sends them all that way, in order. The acks, like
/// any engine reply, may only be reported once [`durable`] of the batch returned.
pub fn publish_direct(rc: &Shared, msgs: &[(&str, &[u8])]) -> Result<Option<DirectAcks>, BusError> {
    let out = {
        let mut i = rc.borrow_mut();
        i.check_open()?;
        if i.tabs.as_ref().is_some_and(crate::tabs::Hub::is_client) {
            return Ok(None);
        }
        let now = now_ns();
        // what the page published before reaches the engine first
        i.pump(now);
        let Inner { broker, engine, js_conn, .. } = &mut *i;
        let js = engine.engine_mut();
        let mut checked: Option<&str> = None;
        for &(subject, payload) in msgs {
            if broker.check_publish(subject.as_bytes(), payload.len()).is_err() {
                return Ok(None);
            }
            // a burst mostly repeats one subject: its interest and stream are looked up once
            if checked == Some(subject) {
                continue;
            }
            let direct = !broker.interest_beyond(*js_conn, subject.as_bytes())
                && js.stream_for(subject.as_bytes()).is_some_and(|s| js.stream_config(&s).is_some_and(|c| !c.no_ack));
            if !direct {
                return Ok(None);
            }
            checked = Some(subject);
        }
        let interest = |s: &[u8]| broker.has_interest(s);
        let acks = msgs
            .iter()
            .map(|(subject, payload)| js.publish(now, subject.as_bytes(), None, payload, &interest))
            .collect();
        (acks, i.durable_batch())
    };
    after(rc);
    Ok(Some(out))
}

impl Inner {
    /// The commit that must finish before what the engine just did may be reported: the one
    /// holding its writes, or, when it wrote nothing, the one holding earlier writes.
    fn durable_batch(&self) -> Option<u64> {
        if self.journal.as_ref().is_some_and(|j| j.borrow().pending()) {
            Some(self.open_batch)
        } else if self.committing {
            Some(self.open_batch - 1)
        } else {
            None
        }
    }
}

/// Waits until commit `batch` (from [`engine_call`]) is durable.
pub async fn durable(rc: &Shared, batch: Option<u64>) -> Result<(), BusError> {
    let Some(batch) = batch else { return Ok(()) };
    let rx = {
        let mut i = rc.borrow_mut();
        let (tx, rx) = oneshot::channel();
        i.durable_waiters.push((batch, tx));
        rx
    };
    rx.await.map_err(|_| BusError::Closed)?
}

pub(super) fn wake_durable(rc: &Shared, batch: u64) {
    let ready: Vec<_> = {
        let mut i = rc.borrow_mut();
        let (ready, waiting) = std::mem::take(&mut i.durable_waiters).into_iter().partition(|(b, _)| *b <= batch);
        i.durable_waiters = waiting;
        ready
    };
    for (_, tx) in ready {
        let _ = tx.send(Ok(()));
    }
}
