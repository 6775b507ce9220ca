// The in-page half of the browser benchmark (loaded by page.html, driven by run.mjs).
// Every function times itself with performance.now() inside the page, so the Playwright
// round trips that start and read a measurement are not counted.
import * as edgebus from "/dist/index.js";
import * as nats from "/nats.js";

const PAYLOAD = new Uint8Array(16).fill(120);
const now = () => performance.now();
const rate = (n, ms) => (n * 1000) / ms;

/** Runs `op` `n` times with at most `window` calls unresolved at once. */
async function inFlight(n, window, op) {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      await op();
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, n) }, worker));
}

/** A fresh persisted bus, `storage` "indexeddb" or "opfs" (whatever an earlier run left under
 *  the name is deleted). */
async function freshBus(name, storage) {
  await edgebus.deleteStorage(name);
  return edgebus.open({ name, storage });
}

// ---- edgebus in the page -----------------------------------------------------------------

/** Publish -> subscribe on one exact subject, 16 B, one publish call per message (the
 *  nats.js-shaped API) or `batch` messages per `publishMany` call. */
async function edgePubSub(n, batch) {
  const bus = await edgebus.open({ name: "bench-pubsub", storage: "memory" });
  let got = 0;
  let bytes = 0;
  const done = new Promise((resolve) => {
    if (batch > 1 && bus.subscribeBatch) {
      bus.subscribeBatch("bench.ps", {
        callback: (_e, b) => {
          got += b.length;
          bytes += b.byteLength;
          if (got >= n) resolve();
        },
      });
    } else {
      bus.subscribe("bench.ps", {
        callback: (_e, m) => {
          got++;
          bytes += m.data.length;
          if (got >= n) resolve();
        },
      });
    }
  });
  const t0 = now();
  if (batch > 1 && bus.publishMany) {
    const payloads = Array.from({ length: batch }, () => PAYLOAD);
    for (let i = 0; i < n; i += batch) bus.publishMany("bench.ps", i + batch <= n ? payloads : payloads.slice(0, n - i));
  } else {
    for (let i = 0; i < n; i++) bus.publish("bench.ps", PAYLOAD);
  }
  await done;
  const ms = now() - t0;
  await bus.close();
  if (bytes !== n * PAYLOAD.length) throw new Error(`edgebus pub/sub: ${bytes} bytes for ${n} messages`);
  return rate(n, ms);
}

/** In-page request/reply: `n` sequential requests to a responder subscribed in the same
 *  page; the median round trip in microseconds. */
async function edgeRequest(n) {
  const bus = await edgebus.open({ name: "bench-rr", storage: "memory" });
  bus.subscribe("bench.rr", { callback: (_e, m) => m.respond(PAYLOAD) });
  const r = await requestLatency(n, () => bus.request("bench.rr", PAYLOAD));
  await bus.close();
  return r;
}

/** Microseconds per call of `op`, called `n` times in sequence, after a warm-up of at least
 *  n / 10 calls and one second (the first round of a run, in a page just loaded, came out
 *  1.5-2x the others after n / 10 or n / 2 calls alone, a few hundred milliseconds: the
 *  engine is still compiling then): the median over groups of 100 calls, as the page's
 *  clock ticks in 100 µs steps unless the page is cross-origin isolated. */
async function requestLatency(n, op) {
  const group = 100;
  const warm = now() + 1000;
  for (let i = 0; i < n / 10 || now() < warm; i++) await op();
  const us = [];
  for (let g = 0; g < n / group; g++) {
    const t0 = now();
    for (let i = 0; i < group; i++) {
      const m = await op();
      if (m.data.length !== 16) throw new Error(`reply of ${m.data.length} bytes`);
    }
    us.push(((now() - t0) * 1000) / group);
  }
  us.sort((a, b) => a - b);
  return us[us.length >> 1];
}

/** JetStream publish into a persisted stream, each ack after its commit (IndexedDB) or flush
 *  (OPFS). */
async function edgeJsPublish(n, window, tag, storage = "indexeddb") {
  const name = `bench-js-${storage}-${tag}`;
  const bus = await freshBus(name, storage);
  const jsm = await bus.jetstreamManager();
  await jsm.streams.add({ name: "BJS", subjects: ["bjs.>"], storage: "file" });
  const js = bus.jetstream();
  let acked = 0;
  const t0 = now();
  await inFlight(n, window, async () => {
    const ack = await js.publish("bjs.x", PAYLOAD);
    if (ack.seq > 0) acked++;
  });
  const ms = now() - t0;
  const info = await jsm.streams.info("BJS");
  await bus.close();
  await edgebus.deleteStorage(name);
  if (acked !== n || info.state.messages !== n) throw new Error(`edgebus js: ${acked} acks, ${info.state.messages} stored`);
  return rate(n, ms);
}

/** KV put then get, sequential (each awaited), persisted bucket. */
async function edgeKv(n, tag, storage = "indexeddb") {
  const name = `bench-kv-${storage}-${tag}`;
  const bus = await freshBus(name, storage);
  const kv = await bus.kv("bench", { history: 1 });
  const r = await kvPutGet(kv, n, "edgebus");
  await bus.close();
  await edgebus.deleteStorage(name);
  return r;
}

/** `n` sequential puts, then `n` sequential gets of the same keys; rates of each. Both
 *  clients' KV handles have the same put/get shape. */
async function kvPutGet(kv, n, who) {
  const keys = Array.from({ length: n }, (_, i) => `k${i % 1000}`);
  let t0 = now();
  for (let i = 0; i < n; i++) await kv.put(keys[i], PAYLOAD);
  const put = rate(n, now() - t0);
  t0 = now();
  for (let i = 0; i < n; i++) {
    const e = await kv.get(keys[i]);
    if (!e || e.value.length !== 16) throw new Error(`${who} kv get ${keys[i]}: ${e}`);
  }
  return { put, get: rate(n, now() - t0) };
}

/** The worker `opfsFlush` and `opfsRoundTrip` start: a dedicated worker from a `Blob` URL, as
 *  the OPFS store's is (`wasm/src/opfs.rs`), holding one `FileSystemSyncAccessHandle` in the
 *  same OPFS directory. `{ n, size }` times `n` write+flush calls in a loop inside the worker;
 *  `{ open: true }` opens the file and then appends and flushes each array posted to it,
 *  answering each once flushed, until `{ close: true }`. */
const FLUSH_WORKER = `
let f = null, dir = null, at = 0;
const open = async () => {
  const root = await navigator.storage.getDirectory();
  dir = await root.getDirectoryHandle("edgebus", { create: true });
  const fh = await dir.getFileHandle("bench-flush.bin", { create: true });
  f = await fh.createSyncAccessHandle();
  f.truncate(0);
  at = 0;
};
const close = async () => { f.truncate(0); f.flush(); f.close(); f = null; await dir.removeEntry("bench-flush.bin"); };
const append = (b) => { f.write(b, { at }); at += b.length; f.flush(); };
onmessage = async (e) => {
  const m = e.data;
  try {
    if (m instanceof Uint8Array) { append(m); postMessage(null); return; }
    if (m.open) { await open(); postMessage({}); return; }
    if (m.close) { await close(); postMessage({}); return; }
    await open();
    const b = new Uint8Array(m.size).fill(7);
    for (let i = 0; i < Math.min(100, m.n); i++) append(b);
    const t0 = performance.now();
    for (let i = 0; i < m.n; i++) append(b);
    const ms = performance.now() - t0;
    await close();
    postMessage({ ms });
  } catch (err) {
    postMessage({ err: String(err) });
  }
};`;

/** Runs `body(ask)` against a fresh flush worker; `ask(msg, transfer)` posts and waits for the
 *  answer (the worker answers every message once, in order). */
async function withFlushWorker(body) {
  const url = URL.createObjectURL(new Blob([FLUSH_WORKER], { type: "text/javascript" }));
  const worker = new Worker(url);
  const waiting = [];
  let failed = null;
  worker.onmessage = (e) => waiting.shift()(e.data);
  worker.onerror = (e) => { failed = new Error(`flush worker: ${e.message}`); for (const w of waiting.splice(0)) w({ err: failed.message }); };
  const ask = (msg, transfer) => new Promise((resolve, reject) => {
    if (failed) return reject(failed);
    waiting.push((r) => (r && r.err ? reject(new Error(`flush worker: ${r.err}`)) : resolve(r)));
    worker.postMessage(msg, transfer ?? []);
  });
  try {
    return await body(ask);
  } finally {
    worker.terminate();
    URL.revokeObjectURL(url);
  }
}

/** Raw `write`+`flush` calls per second on a sync access handle (`size` bytes each, appended),
 *  timed inside the worker: the floor under every OPFS commit, which is one write and one
 *  flush, without the page's work and the two `postMessage` hops of a commit. */
async function opfsFlush(n, size = 64) {
  return withFlushWorker(async (ask) => rate(n, (await ask({ n, size })).ms));
}

/** The same write+flush asked of the worker from the page, one at a time: a fresh `size`-byte
 *  array transferred, the answer awaited, as the OPFS store's append is (one per commit). What
 *  a sequential OPFS publish cannot go below with the store in a worker, with nothing of
 *  edgebus in it. */
async function opfsRoundTrip(n, size = 64) {
  return withFlushWorker(async (ask) => {
    await ask({ open: true });
    const one = () => {
      const b = new Uint8Array(size).fill(7);
      return ask(b, [b.buffer]);
    };
    for (let i = 0; i < Math.min(100, n); i++) await one();
    const t0 = now();
    for (let i = 0; i < n; i++) await one();
    const ms = now() - t0;
    await ask({ close: true });
    return rate(n, ms);
  });
}

/** Writes a persisted stream of `n` 16 B messages for the cold-open measurement. */
async function coldPrepare(n, storage = "indexeddb") {
  const bus = await freshBus(`bench-cold-${storage}`, storage);
  const jsm = await bus.jetstreamManager();
  await jsm.streams.add({ name: "COLD", subjects: ["cold.>"], storage: "file" });
  const js = bus.jetstream();
  const t0 = now();
  let i = 0;
  await inFlight(n, 1024, () => js.publish(`cold.${i++ % 100}`, PAYLOAD));
  const ms = now() - t0;
  const info = await jsm.streams.info("COLD");
  await bus.close();
  if (info.state.messages !== n) throw new Error(`cold stream holds ${info.state.messages} of ${n}`);
  return ms;
}

/** Milliseconds from `open()` until the stream's info and last message were read. Run it
 *  first thing after a reload, so nothing of the bus is warm. */
async function coldOpen(n, storage = "indexeddb") {
  const t0 = now();
  const bus = await edgebus.open({ name: `bench-cold-${storage}`, storage });
  const jsm = await bus.jetstreamManager();
  const info = await jsm.streams.info("COLD");
  const last = await jsm.streams.getMessage("COLD", { seq: info.state.last_seq });
  const ms = now() - t0;
  await bus.close();
  if (info.state.messages !== n || !last) throw new Error(`cold open: ${info.state.messages} of ${n} messages`);
  return ms;
}

// ---- nats.ws -> nats-server over WebSocket (the alternative) -------------------------------

let nc = null;

async function natsConnect(url) {
  nc = await nats.connect({ servers: url, reconnect: false, timeout: 5000 });
}

async function natsClose() {
  if (nc) await nc.close();
  nc = null;
}

async function natsPubSub(n) {
  let got = 0;
  let bytes = 0;
  let resolve;
  const done = new Promise((r) => (resolve = r));
  const sub = nc.subscribe("bench.ps", {
    callback: (_e, m) => {
      got++;
      bytes += m.data.length;
      if (got >= n) resolve();
    },
  });
  await nc.flush();
  const t0 = now();
  for (let i = 0; i < n; i++) {
    nc.publish("bench.ps", PAYLOAD);
    // Yield now and then so the socket drains as a real publisher's would.
    if (i % 5000 === 4999) await new Promise((r) => setTimeout(r, 0));
  }
  await done;
  const ms = now() - t0;
  sub.unsubscribe();
  if (bytes !== n * PAYLOAD.length) throw new Error(`nats.ws pub/sub: ${bytes} bytes for ${n} messages`);
  return rate(n, ms);
}

async function natsJsPublish(n, window, storage, tag) {
  const jsm = await nc.jetstreamManager();
  const name = `BJS_${tag}`;
  await jsm.streams.add({ name, subjects: [`bjs.${tag}.>`], storage });
  const js = nc.jetstream();
  let acked = 0;
  const t0 = now();
  await inFlight(n, window, async () => {
    const ack = await js.publish(`bjs.${tag}.x`, PAYLOAD);
    if (ack.seq > 0) acked++;
  });
  const ms = now() - t0;
  const info = await jsm.streams.info(name);
  await jsm.streams.delete(name);
  if (acked !== n || info.state.messages !== n) throw new Error(`nats.ws js: ${acked} acks, ${info.state.messages} stored`);
  return rate(n, ms);
}

/** nats.ws: the same request/reply, the responder on the same connection via nats-server. */
async function natsRequest(n) {
  const sub = nc.subscribe("bench.rr", { callback: (_e, m) => m.respond(PAYLOAD) });
  await nc.flush();
  const r = await requestLatency(n, () => nc.request("bench.rr", PAYLOAD));
  sub.unsubscribe();
  return r;
}

async function natsKv(n, tag) {
  const js = nc.jetstream();
  const bucket = `bench_${tag}`;
  const kv = await js.views.kv(bucket, { history: 1 });
  const r = await kvPutGet(kv, n, "nats.ws");
  await kv.destroy();
  return r;
}

window.bench = {
  edgePubSub,
  edgeRequest,
  edgeJsPublish,
  edgeKv,
  coldPrepare,
  coldOpen,
  opfsFlush,
  opfsRoundTrip,
  natsConnect,
  natsClose,
  natsPubSub,
  natsRequest,
  natsJsPublish,
  natsKv,
  // Lets the runner measure a build from before the batch API too.
  hasBatchApi: () => typeof edgebus.Bus.prototype.publishMany === "function",
};
window.ready = true;
