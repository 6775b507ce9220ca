//! A commit the browser refused (its storage quota): the bus goes back to what IndexedDB
//! holds, and nothing that rested on the lost writes is acknowledged.
//!
//! Acks wait for their commit (see [`super`]), so when a commit fails, every publish ack,
//! API reply and KV/object write waiting for it — or for any later commit, whose changes
//! were made on top of it — is still held. Those become errors: replies to the page's
//! requests are answered with JetStream's `insufficient resources` (10023, as the engine
//! refuses a publish past its store limits), direct calls fail with the same, and the rest
//! (deliveries of messages that were not stored) is dropped. Then the journal is reset to
//! the stored records and the engine recovers its file streams from it, so the streams in
//! memory are the streams a reload would show. Blocks are rewritten whole, so without the
//! reset a later commit would store the refused messages after all.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use bytes::Bytes;
use edgebus_core::broker::LocalBus;
use edgebus_core::jetstream::errors::ApiError;
use edgebus_core::jetstream::store::StoreError;
use edgebus_core::jetstream::Outbound;
use wasm_bindgen::JsValue;

use super::{now_ns, Inner};
use crate::disk::{Disk, Kind};
use crate::error::BusError;

/// What the page is told about a write that was not stored.
pub(super) fn refusal(e: &StoreError, kind: Kind) -> ApiError {
    match e {
        StoreError::NoSpace => ApiError::with(
            503,
            10023,
            match kind {
                Kind::Idb => "insufficient resources: the browser refused to store (IndexedDB quota exceeded)",
                Kind::Opfs => "insufficient resources: the browser refused to store (OPFS quota exceeded)",
            },
        ),
        other => ApiError::store_failed(format!("storage failed: {other}")),
    }
}

/// Goes back to what `db` holds after the commit failed with `e`.
pub(super) async fn recover(weak: &Weak<RefCell<Inner>>, db: &Rc<Disk>, e: StoreError) {
    web_sys::console::error_1(&JsValue::from_str(&format!("edgebus: {} commit failed: {e}", db.kind().label())));
    let error = refusal(&e, db.kind());
    // what is stored, read before anything else may commit (the commit loop is still ours)
    let stored = db.load().await;
    let Some(rc) = weak.upgrade() else { return };
    let mut i = rc.borrow_mut();
    let held = std::mem::take(&mut i.held);
    if let Some(j) = i.journal.clone() {
        let mut j = j.borrow_mut();
        drop(j.take_ops());
        match stored {
            Ok(stored) => j.reset_to(stored),
            Err(e) => {
                web_sys::console::error_1(&JsValue::from_str(&format!("edgebus: re-reading IndexedDB failed: {e}")));
            }
        }
    }
    let now = now_ns();
    let mut warnings = i.engine.engine_mut().reload_file_streams(now);
    if let Some(j) = i.journal.clone() {
        // recovery rewrites nothing on its own (as at open)
        drop(j.borrow_mut().take_ops());
        warnings.append(&mut j.borrow_mut().warnings);
    }
    for w in warnings {
        web_sys::console::warn_1(&JsValue::from_str(&format!("edgebus: {w}")));
    }
    let replies = format!("{}.R.", i.inbox_prefix);
    let body = Bytes::from(serde_json::json!({ "error": &error }).to_string());
    let js_conn = i.js_conn;
    for (_, o) in held {
        if o.headers.is_none() && o.route.starts_with(replies.as_bytes()) {
            LocalBus { broker: &mut i.broker, conn: js_conn }.publish(&Outbound::data(o.route, body.clone()));
        }
    }
    // every commit up to the open one is gone: later changes start a new number
    let failed = i.open_batch;
    i.open_batch += 1;
    let waiters = std::mem::take(&mut i.durable_waiters);
    let (gone, waiting): (Vec<_>, Vec<_>) = waiters.into_iter().partition(|(b, _)| *b <= failed);
    i.durable_waiters = waiting;
    drop(i);
    for (_, tx) in gone {
        let _ = tx.send(Err(BusError::from(error.clone())));
    }
}
