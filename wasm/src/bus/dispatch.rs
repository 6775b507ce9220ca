//! Handing the page's deliveries to their handlers: JavaScript callbacks get them in packed
//! batches (one call per batch instead of one per message), Rust tasks through channels,
//! request replies through the shared inbox.

use std::collections::VecDeque;

use bytes::Bytes;
use edgebus_core::broker::Delivery;
#[cfg(feature = "jetstream")]
use futures_channel::mpsc;
use hashbrown::HashMap;
use wasm_bindgen::JsValue;

use super::{after, Handler, Inner, Shared};

/// Most messages one call of a JavaScript subscription callback carries.
const BATCH_MAX_MSGS: usize = 4096;
/// Most payload bytes one such call carries (a batch is one `Uint8Array`).
const BATCH_MAX_BYTES: usize = 1 << 20;

/// Consecutive deliveries to one JavaScript subscription, packed so that crossing into
/// JavaScript costs one call and three or four values per batch instead of an object, a
/// string and a typed array per message.
struct Batch {
    callback: js_sys::Function,
    data: Vec<u8>,
    ends: Vec<u32>,
    /// Every message's subject, or `None` while all share `deliveries[0]`'s.
    subjects: Option<Vec<Bytes>>,
    first_subject: Bytes,
    /// `first_subject` as a JS string, when known already.
    first_subject_js: Option<JsValue>,
    /// Per message, only when some message carries a reply or headers.
    extras: Option<Vec<JsValue>>,
}

impl Batch {
    fn new(callback: js_sys::Function, d: &Delivery) -> Batch {
        let mut b = Batch {
            callback,
            data: Vec::new(),
            ends: Vec::new(),
            subjects: None,
            first_subject: d.subject.clone(),
            first_subject_js: None,
            extras: None,
        };
        b.push(d);
        b
    }

    fn full(&self) -> bool {
        self.ends.len() >= BATCH_MAX_MSGS || self.data.len() >= BATCH_MAX_BYTES
    }

    fn push(&mut self, d: &Delivery) {
        let n = self.ends.len();
        if self.subjects.is_none() && d.subject != self.first_subject {
            self.subjects = Some(vec![self.first_subject.clone(); n]);
        }
        if let Some(s) = &mut self.subjects {
            s.push(d.subject.clone());
        }
        if d.reply.is_some() || d.headers.is_some() {
            let extras = self.extras.get_or_insert_with(|| vec![JsValue::UNDEFINED; n]);
            extras.push(crate::convert::msg_extra(d));
        } else if let Some(e) = &mut self.extras {
            e.push(JsValue::UNDEFINED);
        }
        self.data.extend_from_slice(&d.payload);
        self.ends.push(self.data.len() as u32);
    }

    /// `callback(data, ends, subjects, extras)`: payload `i` is `data[ends[i-1]..ends[i]]`;
    /// `subjects` is one string when every message shares it; `extras[i]` is `undefined` or
    /// `{ reply?, headers?, status?, description? }`, and `extras` itself is `undefined` when
    /// no message has any of those.
    fn call(self) {
        let data = js_sys::Uint8Array::from(&self.data[..]);
        let ends = js_sys::Uint32Array::from(&self.ends[..]);
        let subjects: JsValue = match self.subjects {
            None => self
                .first_subject_js
                .unwrap_or_else(|| JsValue::from_str(&String::from_utf8_lossy(&self.first_subject))),
            Some(list) => {
                list.iter().map(|s| JsValue::from_str(&String::from_utf8_lossy(s))).collect::<js_sys::Array>().into()
            }
        };
        let extras: JsValue = match self.extras {
            None => JsValue::UNDEFINED,
            Some(list) => list.into_iter().collect::<js_sys::Array>().into(),
        };
        if let Err(e) = self.callback.call4(&JsValue::NULL, &data, &ends, &subjects, &extras) {
            web_sys::console::error_2(&JsValue::from_str("edgebus: subscription callback threw"), &e);
        }
    }
}

/// What one turn of [`dispatch`] hands out.
enum Next {
    /// Replies handed to waiting requests: no JavaScript ran, nothing to pump.
    Answered,
    Batch(Batch),
    #[cfg_attr(not(feature = "jetstream"), allow(dead_code))]
    Kv(js_sys::Function, String, Delivery),
    #[cfg(feature = "jetstream")]
    Chan(mpsc::UnboundedSender<Delivery>, Delivery),
}

type Group = std::iter::Peekable<std::vec::IntoIter<Delivery>>;

/// Splits the queued deliveries by subscription, each subscription's in their order, the
/// subscriptions in the order they first appear. Subscriptions are independent (as if each
/// had its own connection), so with several on one subject each still gets its messages in
/// long batches rather than one at a time in turn.
fn groups(queue: VecDeque<Delivery>) -> Vec<(u64, Group)> {
    if let Some(first) = queue.front().map(|d| d.sub) {
        if queue.iter().all(|d| d.sub == first) {
            return vec![(first, Vec::from(queue).into_iter().peekable())];
        }
    }
    let mut index: HashMap<u64, usize> = HashMap::new();
    let mut out: Vec<(u64, Vec<Delivery>)> = Vec::new();
    for d in queue {
        let n = *index.entry(d.sub).or_insert_with(|| {
            out.push((d.sub, Vec::new()));
            out.len() - 1
        });
        out[n].1.push(d);
    }
    out.into_iter().map(|(sub, list)| (sub, list.into_iter().peekable())).collect()
}

/// Takes the next delivery of subscription `sub` off `group` (with the ones behind it, for a
/// JavaScript callback), counting them against the subscription's `max`. `None` once the
/// subscription is gone: the rest of the group is dropped.
fn next_of(i: &mut Inner, sub: u64, group: &mut Group) -> Option<Next> {
    let entry = i.subs.get_mut(&sub)?;
    if matches!(entry.handler, Handler::Mux) {
        for d in group.by_ref() {
            i.answer(d);
        }
        return Some(Next::Answered);
    }
    let d = group.next()?;
    entry.received += 1;
    let next = match &entry.handler {
        Handler::Js { callback, kv: Some(bucket) } => Next::Kv(callback.clone(), bucket.clone(), d),
        #[cfg(feature = "jetstream")]
        Handler::Chan(tx) => Next::Chan(tx.clone(), d),
        Handler::Js { callback, kv: None } => {
            let mut batch = Batch::new(callback.clone(), &d);
            while !batch.full() && (entry.max == 0 || entry.received < entry.max) {
                let Some(n) = group.next() else { break };
                entry.received += 1;
                batch.push(&n);
            }
            if batch.subjects.is_none() {
                let cached = i.subject_js.as_ref().filter(|(b, _)| *b == batch.first_subject).map(|(_, v)| v.clone());
                let js = cached.unwrap_or_else(|| {
                    let v = JsValue::from_str(&String::from_utf8_lossy(&batch.first_subject));
                    i.subject_js = Some((batch.first_subject.clone(), v.clone()));
                    v
                });
                batch.first_subject_js = Some(js);
            }
            Next::Batch(batch)
        }
        Handler::Mux => Next::Answered,
    };
    if entry.max > 0 && entry.received >= entry.max {
        i.subs.remove(&sub);
        i.mirror(sub, None);
    }
    Some(next)
}

/// Hands queued deliveries to their handlers, outside any borrow (callbacks may publish).
pub fn dispatch(rc: &Shared) {
    {
        let mut i = rc.borrow_mut();
        if i.dispatching {
            return;
        }
        i.dispatching = true;
    }
    loop {
        let groups = {
            let mut i = rc.borrow_mut();
            if i.queue.is_empty() {
                i.dispatching = false;
                return;
            }
            groups(std::mem::take(&mut i.queue))
        };
        for (sub, mut group) in groups {
            while group.peek().is_some() {
                let Some(next) = next_of(&mut rc.borrow_mut(), sub, &mut group) else { break };
                match next {
                    // Waking a Rust task runs no JavaScript, so nothing new can be queued.
                    Next::Answered => continue,
                    #[cfg(feature = "jetstream")]
                    Next::Chan(tx, d) => {
                        let _ = tx.unbounded_send(d);
                        continue;
                    }
                    Next::Batch(batch) => batch.call(),
                    #[cfg(feature = "jetstream")]
                    Next::Kv(callback, bucket, d) => {
                        if let Some(value) = crate::convert::kv_entry(&bucket, &d) {
                            if let Err(e) = callback.call1(&JsValue::NULL, &value) {
                                web_sys::console::error_2(
                                    &JsValue::from_str("edgebus: subscription callback threw"),
                                    &e,
                                );
                            }
                        }
                    }
                    // the core-only build has no KV: no handler carries a bucket
                    #[cfg(not(feature = "jetstream"))]
                    Next::Kv(..) => {}
                }
                // What the callback published is queued behind this round (see `groups`).
                after(rc);
            }
        }
    }
}
