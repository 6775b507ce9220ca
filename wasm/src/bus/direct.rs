//! Direct engine calls: how the page hosts the core's KV and object store. They run the core
//! function on the engine in place of a `$JS.API` round trip over the bus, under the same
//! rules as the bus's own traffic: order (what was published earlier reaches the engine
//! first) and durability (the answer waits for the IndexedDB commit).

use edgebus_core::jetstream::{Interest, JetStream};
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
        let batch = if i.journal.as_ref().is_some_and(|j| j.borrow().pending()) {
            Some(i.open_batch)
        } else if i.committing {
            Some(i.open_batch - 1)
        } else {
            None
        };
        (r, batch)
    };
    after(rc);
    Ok(out)
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
