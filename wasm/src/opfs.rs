//! JetStream storage on the Origin Private File System.
//!
//! `FileSystemSyncAccessHandle` — the only OPFS handle with a `flush()` that is cheap and a
//! write that lands where it is told — exists only in dedicated workers. So the bus keeps
//! running where it was opened and starts one small dedicated worker (the way SQLite's wasm
//! build persists) that owns the store's two files and does file I/O only: read both, append
//! a frame and flush, write a compacted file and flush, truncate. Every rule about what the
//! bytes mean is here and in [`crate::opfs_log`], in Rust; the worker is a dozen lines of
//! JavaScript built from a string (a `Blob` URL), so bundlers need to know nothing about it.
//!
//! The bus hands over what the IndexedDB store would commit ([`crate::disk`]): one frame per
//! commit, acknowledged once the worker flushed it. The bus has at most one commit in flight
//! and takes everything journalled meanwhile into the next one, so many publishes in flight
//! share one write+flush (group commit). Messages to the worker are handled in order, which
//! keeps the file and [`State`] (the live records, kept here for compaction) in step.

use std::cell::{Cell, Ref, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use bytes::Bytes;
use edgebus_core::jetstream::store::StoreError;
use futures_channel::oneshot;
use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Blob, BlobPropertyBag, MessageEvent, Url, Worker};

use crate::opfs_log::{self, Batch, State};

/// A log is compacted once it is this long and four times its live records.
const COMPACT_MIN: usize = 16 << 20;

/// The worker: file I/O on `FileSystemSyncAccessHandle`s, one request at a time, in order.
/// Two files take turns (`<name>.0.log`, `<name>.1.log`); `active` is the one appended to.
/// Each handle call can be an IPC to the browser (Chromium's in-memory profiles route every
/// one), so an append is one `write` and one `flush`: the files' sizes are kept here
/// (`size`), not asked of the handle, as only this worker's exclusive handles change them.
/// A request that needs no `await` is answered within its `onmessage`, without a promise
/// hop. Requests carry no id: they are answered once each, in order. An append, one per
/// commit, is posted as the frame's bytes alone, so neither side builds or reads an object
/// for it (the channel was a tenth of the page's own time per sequential publish). A failed append is cut back off, so the file never keeps half of a refused write.
/// Another context's handle may still be closing when this one opens (a reload, a
/// take-over after a crash): opening retries for about a second.
const WORKER: &str = r#"
let files = null, size = [0, 0], active = 0;
const dir = async () => (await navigator.storage.getDirectory()).getDirectoryHandle('edgebus', { create: true });
const readAll = (i) => { const f = files[i], b = new Uint8Array(size[i]); let at = 0; while (at < b.length) { const n = f.read(b.subarray(at), { at }); if (n <= 0) break; at += n; } return b.subarray(0, at); };
const writeAll = (f, b, at) => { let o = 0; while (o < b.length) { const n = f.write(b.subarray(o), { at: at + o }); if (n <= 0) throw new Error('short write'); o += n; } };
const cut = (i, len) => { files[i].truncate(len); size[i] = len; };
async function handle(d, name) {
  const fh = await d.getFileHandle(name, { create: true });
  for (let i = 0; ; i++) {
    try { return await fh.createSyncAccessHandle(); } catch (e) {
      if (e.name !== 'NoModificationAllowedError' || i >= 50) throw e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
const ops = {
  probe: async () => typeof FileSystemFileHandle !== 'undefined' && 'createSyncAccessHandle' in FileSystemFileHandle.prototype && !!(navigator.storage && navigator.storage.getDirectory),
  async open(m) { const d = await dir(); files = [await handle(d, m.name + '.0.log'), await handle(d, m.name + '.1.log')]; size = files.map((f) => f.getSize()); },
  read() { const a = readAll(0), b = readAll(1); return [[a, b], [a.buffer, b.buffer]]; },
  use(m) { active = m.file; cut(active, m.len); cut(1 - active, 0); files[0].flush(); files[1].flush(); },
  append(data) { const f = files[active], at = size[active]; try { writeAll(f, data, at); size[active] = at + data.length; f.flush(); } catch (e) { try { cut(active, at); f.flush(); } catch (_) {} throw e; } },
  compact(m) { const next = 1 - active; cut(next, 0); writeAll(files[next], m.data, 0); size[next] = m.data.length; files[next].flush(); cut(active, 0); files[active].flush(); active = next; },
  close() { if (files) for (const f of files) f.close(); files = null; },
  async remove(m) { const d = await dir(); for (const i of [0, 1]) { try { await d.removeEntry(m.name + '.' + i + '.log'); } catch (e) { if (e.name !== 'NotFoundError') throw e; } } },
};
const queue = [];
let running = false;
const answer = (r) => { if (Array.isArray(r)) postMessage(r[0], r[1]); else postMessage(r); };
const fail = (err) => postMessage({ err: String(err && err.name), msg: String(err && err.message) });
async function run() {
  running = true;
  while (queue.length) {
    const m = queue.shift();
    try { let r = m instanceof Uint8Array ? ops.append(m) : ops[m.op](m); if (r instanceof Promise) r = await r; answer(r); } catch (err) { fail(err); }
  }
  running = false;
}
onmessage = (e) => { queue.push(e.data); if (!running) run(); };
"#;

/// The replies awaited, oldest first: the worker answers every request once, in the order
/// posted, so a reply needs no id to find its request.
type Replies = Rc<RefCell<VecDeque<oneshot::Sender<Result<JsValue, StoreError>>>>>;

/// The store worker and its requests.
struct Channel {
    worker: Worker,
    url: String,
    replies: Replies,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(JsValue)>,
}

fn io(e: impl std::fmt::Debug) -> StoreError {
    StoreError::Io(format!("OPFS: {e:?}"))
}

fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// A reply as the worker posts it: a failure is a plain `{ err, msg }` object; anything else
/// (nothing, a flag, the files read as an array) is the answer itself.
fn reply_of(data: JsValue) -> Result<JsValue, StoreError> {
    if !data.is_object() || Array::is_array(&data) {
        return Ok(data);
    }
    match get(&data, "err").as_string() {
        Some(name) if name == "QuotaExceededError" => Err(StoreError::NoSpace),
        Some(name) => {
            Err(StoreError::Io(format!("OPFS: {name}: {}", get(&data, "msg").as_string().unwrap_or_default())))
        }
        None => Ok(data),
    }
}

impl Channel {
    fn start() -> Result<Channel, StoreError> {
        let opts = BlobPropertyBag::new();
        opts.set_type("text/javascript");
        let blob =
            Blob::new_with_str_sequence_and_options(&Array::of1(&JsValue::from_str(WORKER)), &opts).map_err(io)?;
        let url = Url::create_object_url_with_blob(&blob).map_err(io)?;
        let worker = Worker::new(&url).map_err(io)?;
        let replies: Replies = Rc::default();
        let r = replies.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            let Some(tx) = r.borrow_mut().pop_front() else { return };
            let _ = tx.send(reply_of(e.data()));
        });
        let r = replies.clone();
        let on_error = Closure::<dyn FnMut(JsValue)>::new(move |_| {
            // the worker did not start (a content security policy without blob: workers):
            // every request fails rather than waiting forever
            for tx in r.borrow_mut().drain(..) {
                let _ = tx.send(Err(StoreError::Io("OPFS: the storage worker failed".into())));
            }
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        Ok(Channel { worker, url, replies, _on_message: on_message, _on_error: on_error })
    }

    /// Posts request `op` (its fields in `fields`, `data` handed over without a copy) and
    /// returns its reply. Posting happens now; only the wait is deferred.
    fn call(
        &self,
        op: &str,
        fields: &[(&str, JsValue)],
        data: Option<&[u8]>,
    ) -> impl std::future::Future<Output = Result<JsValue, StoreError>> {
        let waiting = self.post(op, fields, data).map(|()| {
            let (tx, rx) = oneshot::channel();
            self.replies.borrow_mut().push_back(tx);
            rx
        });
        async move { waiting?.await.map_err(|_| StoreError::Io("OPFS: the storage worker went away".into()))? }
    }
}

impl Channel {
    /// An append, the request on every commit's path, is posted as its bytes alone (the
    /// worker takes a bare array for one); other requests as `{ op, ...fields, data? }`.
    fn post(&self, op: &str, fields: &[(&str, JsValue)], data: Option<&[u8]>) -> Result<(), StoreError> {
        let array = data.map(Uint8Array::from);
        let msg: JsValue = match &array {
            Some(a) if op == "append" => a.clone().into(),
            _ => {
                let msg = Object::new();
                let set = |k: &str, v: &JsValue| Reflect::set(&msg, &JsValue::from_str(k), v).map(drop).map_err(io);
                set("op", &JsValue::from_str(op))?;
                for (k, v) in fields {
                    set(k, v)?;
                }
                if let Some(a) = &array {
                    set("data", a)?;
                }
                msg.into()
            }
        };
        match &array {
            Some(a) => self.worker.post_message_with_transfer(&msg, &Array::of1(&a.buffer())).map_err(io),
            None => self.worker.post_message(&msg).map_err(io),
        }
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.worker.terminate();
        let _ = Url::revoke_object_url(&self.url);
    }
}

/// Whether this browser gives dedicated workers `FileSystemSyncAccessHandle` (asked of a
/// worker, since a page cannot see it). Remembered for the page's life.
pub async fn available() -> bool {
    thread_local!(static KNOWN: Cell<Option<bool>> = const { Cell::new(None) });
    if let Some(known) = KNOWN.with(Cell::get) {
        return known;
    }
    let yes = match Channel::start() {
        Ok(ch) => ch.call("probe", &[], None).await.is_ok_and(|v| v.is_truthy()),
        Err(_) => false,
    };
    KNOWN.with(|k| k.set(Some(yes)));
    yes
}

/// Deletes bus `name`'s files (close the bus first).
pub async fn delete(name: &str) -> Result<(), StoreError> {
    Channel::start()?.call("remove", &[("name", JsValue::from_str(&file_name(name)))], None).await.map(drop)
}

/// The files' name for a bus name (OPFS names cannot hold `/` or `\0`, so it is encoded).
fn file_name(bus: &str) -> String {
    bus.bytes().map(|b| format!("{b:02x}")).collect()
}

/// One bus's store: the worker holding its files, and the live records.
pub struct Opfs {
    ch: Channel,
    state: RefCell<State>,
    /// Bytes in the file being appended to.
    len: Cell<usize>,
    gen: Cell<u64>,
}

impl Opfs {
    /// Opens (creating if needed) bus `name`'s files; [`Opfs::load`] reads them.
    pub async fn open(name: &str) -> Result<Opfs, StoreError> {
        let ch = Channel::start()?;
        ch.call("open", &[("name", JsValue::from_str(&file_name(name)))], None).await?;
        Ok(Opfs { ch, state: RefCell::default(), len: Cell::new(0), gen: Cell::new(0) })
    }

    /// Reads the files back (recovery): the newest whole file is put in charge, cut to its
    /// last whole frame. Returns what was dropped, as warnings.
    pub async fn load(&self) -> Result<Vec<String>, StoreError> {
        let files = self.ch.call("read", &[], None).await?;
        // one copy into the module's memory; the records are slices of it from here on
        let read = |i: u32| -> Bytes {
            Reflect::get_u32(&files, i).map(|a| Bytes::from(Uint8Array::new(&a).to_vec())).unwrap_or_default()
        };
        let (a, b) = (read(0), read(1));
        let mut warnings = Vec::new();
        match opfs_log::choose([&a, &b]) {
            Some((file, r)) => {
                let total = if file == 0 { a.len() } else { b.len() };
                if r.valid_len < total {
                    warnings.push(format!(
                        "OPFS store: dropped a torn or corrupt tail of {} bytes (never acknowledged)",
                        total - r.valid_len
                    ));
                }
                let fields = [("file", JsValue::from(file as u32)), ("len", JsValue::from(r.valid_len as f64))];
                self.ch.call("use", &fields, None).await?;
                self.len.set(r.valid_len);
                self.gen.set(r.gen);
                *self.state.borrow_mut() = r.state;
            }
            None => {
                if !a.is_empty() || !b.is_empty() {
                    warnings.push("OPFS store: no readable file; starting empty".into());
                }
                self.ch.call("use", &[("file", JsValue::from(0u32)), ("len", JsValue::from(0u32))], None).await?;
                *self.state.borrow_mut() = State::default();
                self.gen.set(0);
                self.compact().await?;
            }
        }
        Ok(warnings)
    }

    /// Appends one commit and waits for its flush; compacts when the log has grown.
    pub async fn write(&self, batch: Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let frame = Bytes::from(batch.frame());
        // posted first, so the worker's write+flush starts before the page updates its copy
        // (nothing reads the state before this returns)
        let appended = self.ch.call("append", &[], Some(&frame));
        self.state.borrow_mut().apply_batch(&frame);
        self.len.set(self.len.get() + frame.len());
        drop(frame);
        if let Err(e) = appended.await {
            // the worker cut the refused write off: go back to what the files hold
            let _ = self.load().await;
            return Err(e);
        }
        if self.len.get() > COMPACT_MIN && self.len.get() > 4 * self.state.borrow().live() {
            // the commit is flushed whatever happens here: a compaction that fails leaves
            // the file in charge as it was (the new one is never whole)
            if let Err(e) = self.compact().await {
                web_sys::console::warn_1(&JsValue::from_str(&format!("edgebus: OPFS compaction failed: {e}")));
                let _ = self.load().await;
            }
        }
        Ok(())
    }

    /// Writes the live records into the idle file as the next generation.
    async fn compact(&self) -> Result<(), StoreError> {
        let gen = self.gen.get() + 1;
        let snapshot = self.state.borrow().snapshot(gen);
        self.gen.set(gen);
        self.len.set(snapshot.len());
        self.ch.call("compact", &[], Some(&snapshot)).await.map(drop)
    }

    /// The live records.
    pub fn state(&self) -> Ref<'_, State> {
        self.state.borrow()
    }

    /// Closes the files (before the store's lock is freed, so the next owner can open them).
    pub async fn close(&self) {
        let _ = self.ch.call("close", &[], None).await;
    }
}
