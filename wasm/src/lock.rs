//! The one-writer rule of a persisted bus: its IndexedDB database is owned by exactly one
//! context (tab, worker) for the owner's whole life.
//!
//! IndexedDB itself lets any number of contexts of an origin open one database and write it,
//! and the store keeps each stream in memory and rewrites blocks whole (see [`crate::idb`]):
//! two owners would overwrite each other's acknowledged messages without an error anywhere.
//! So before a store is loaded its owner takes a Web Lock named after the database, and holds
//! it until the bus closes (or the context dies, when the browser frees it). A second context
//! opening the same name never gets to write: it waits a moment (the lock of a page being
//! reloaded is freed as its document goes away, possibly just after the new document asks),
//! then becomes a client of the owner ([`crate::tabs`]) and stays queued for the lock, which
//! makes it the next owner. [`acquire`] (fail with `StorageLockedError` after the wait) is the
//! one-writer rule on its own. Where there is no `navigator.locks` the one-writer rule cannot
//! be kept, so IndexedDB storage is refused there (fail closed).

use std::cell::RefCell;

use futures_channel::oneshot;
use futures_util::future::{self, Either};
use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::error::BusError;

/// How long a second opener waits for the lock before giving up, milliseconds: long enough
/// for the browser to free the lock of a document that is being reloaded or closed.
pub const WAIT_MS: u32 = 1_000;

/// A held Web Lock; dropping it frees the lock.
pub struct StoreLock {
    /// Resolves the promise the lock callback returned, which is what frees the lock.
    release: Function,
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        let _ = self.release.call0(&JsValue::NULL);
    }
}

/// The name of the lock guarding database `db_name` (one namespace per origin).
fn lock_name(db_name: &str) -> String {
    format!("edgebus:store:{db_name}")
}

fn get(target: &JsValue, key: &str) -> Option<JsValue> {
    Reflect::get(target, &JsValue::from_str(key)).ok().filter(|v| !v.is_undefined() && !v.is_null())
}

fn no_locks() -> BusError {
    BusError::Storage(
        "IndexedDB storage needs the Web Locks API (navigator.locks) to keep one writer per \
         database, and this context has none (it needs a secure context: https or localhost)"
            .into(),
    )
}

/// A lock request in the browser's queue.
pub struct Waiting {
    granted: oneshot::Receiver<()>,
    /// Settles when the request is done with: granted and released, refused or aborted.
    settled: JsFuture,
    lock: StoreLock,
}

impl Waiting {
    /// The lock once granted; `None` if the request ended without it (refused with
    /// `ifAvailable`, timed out or aborted by its signal).
    pub async fn granted(self) -> Option<StoreLock> {
        let Waiting { granted, settled, lock } = self;
        match future::select(granted, settled).await {
            Either::Left((Ok(()), _)) => Some(lock),
            _ => None,
        }
    }
}

/// Queues a request for lock `name` (`opts`: the Web Locks request options).
pub fn request(name: &str, opts: &Object) -> Result<Waiting, BusError> {
    let global: JsValue = js_sys::global().into();
    let locks = get(&global, "navigator").and_then(|n| get(&n, "locks")).ok_or_else(no_locks)?;
    let request: Function = get(&locks, "request").and_then(|f| f.dyn_into().ok()).ok_or_else(no_locks)?;

    let mut release = None;
    let held = Promise::new(&mut |resolve, _reject| release = Some(resolve));
    let release = release.ok_or_else(|| BusError::Storage("Promise executor did not run".into()))?;

    let (granted_tx, granted_rx) = oneshot::channel::<()>();
    let granted_tx = RefCell::new(Some(granted_tx));
    // Called by the browser once the lock is ours; the lock is held until `held` resolves.
    // With `ifAvailable` it is called with `null` when the lock is taken: then the sender is
    // dropped, which reads as refused.
    let on_grant = Closure::once_into_js(move |lock: JsValue| -> Promise {
        if let Some(tx) = granted_tx.borrow_mut().take() {
            if !lock.is_null() {
                let _ = tx.send(());
            }
        }
        held
    });
    let requested = request
        .call3(&locks, &JsValue::from_str(name), opts, &on_grant)
        .map_err(|e| BusError::Storage(format!("navigator.locks.request failed: {e:?}")))?;
    let requested: Promise = requested.dyn_into().map_err(|_| no_locks())?;
    Ok(Waiting { granted: granted_rx, settled: JsFuture::from(requested), lock: StoreLock { release } })
}

/// Takes the lock of database `db_name`, waiting up to [`WAIT_MS`] for another owner to let go.
pub async fn acquire(db_name: &str) -> Result<StoreLock, BusError> {
    let global: JsValue = js_sys::global().into();
    let opts = Object::new();
    if let Some(signal) = abort_after(&global, WAIT_MS) {
        let _ = Reflect::set(&opts, &"signal".into(), &signal);
    } else {
        // without a timeout signal, do not wait at all rather than possibly forever
        let _ = Reflect::set(&opts, &"ifAvailable".into(), &JsValue::TRUE);
    }
    // the request settled without granting: it timed out, or (`ifAvailable`) the lock was
    // taken; either way another context owns the store
    request(&lock_name(db_name), &opts)?.granted().await.ok_or_else(|| BusError::StorageLocked(db_name.into()))
}

/// Queues for the lock of database `db_name` with no time limit, until `signal` aborts it.
pub fn queue_store(db_name: &str, signal: &web_sys::AbortSignal) -> Result<Waiting, BusError> {
    let opts = Object::new();
    let _ = Reflect::set(&opts, &"signal".into(), signal);
    request(&lock_name(db_name), &opts)
}

/// The lock a client context of bus `db_name` holds for its life, so the leader learns when
/// the context is gone (its lock request is granted then) whether it said goodbye or not.
pub fn client_lock_name(db_name: &str, client: &str) -> String {
    format!("edgebus:client:{db_name}:{client}")
}

/// Queues for lock `name` with no time limit.
pub fn queue(name: &str) -> Result<Waiting, BusError> {
    request(name, &Object::new())
}

/// `AbortSignal.timeout(ms)`, where the context has it.
fn abort_after(global: &JsValue, ms: u32) -> Option<JsValue> {
    let class = get(global, "AbortSignal")?;
    let timeout: Function = get(&class, "timeout")?.dyn_into().ok()?;
    timeout.call1(&class, &JsValue::from(ms)).ok()
}
