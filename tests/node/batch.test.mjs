// The page's batch paths in headless Chromium: publishMany, subscribeBatch and the batches
// that feed plain subscriptions, requests answered through the shared inbox (timeouts, no
// responders), and js.publish bursts that go to the engine in one call (acks in order, one
// error per failed publish, durable in IndexedDB). Needs `bash web/build.sh` first.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { openPackagePage } from "./page.mjs";

let page;
let pageErrors = [];
let closePage;

before(async () => {
  ({ page, errors: pageErrors, close: closePage } = await openPackagePage("/batch-test.html"));
});

after(async () => {
  if (closePage) await closePage();
});

test("publishMany reaches batch and plain subscribers in order, with max honoured", async () => {
  const r = await page.evaluate(async () => {
    const { open, headers } = window.edgebus;
    const bus = await open({ name: "batch-mem", storage: "memory" });
    const batches = [];
    bus.subscribeBatch("b.*", {
      callback: (_e, b) => batches.push([...Array(b.length).keys()].map((i) => `${b.subject(i)}=${new TextDecoder().decode(b.payload(i))}`)),
    });
    const plain = [];
    bus.subscribe("b.x", { callback: (_e, m) => plain.push(m.string()) });
    const limited = [];
    const sub = bus.subscribeBatch("b.x", { max: 3, callback: (_e, b) => { for (const m of b) limited.push(m.string()); } });
    bus.publishMany("b.x", ["1", "2", new Uint8Array([51]), ""]);
    bus.publish("b.y", "5");
    // messages with a reply and headers come through a batch with their extras
    const h = headers();
    h.set("X-K", "v");
    const extras = [];
    bus.subscribe("b.z", { callback: (_e, m) => extras.push([m.reply, m.headers?.get("X-K"), m.string()]) });
    bus.publish("b.z", "6", { reply: "r.1", headers: h });
    // a MsgBatch republished as it is
    const copied = [];
    bus.subscribeBatch("copy", { callback: (_e, b) => copied.push(b.length, b.byteLength) });
    bus.subscribeBatch("src", { callback: (_e, b) => bus.publishMany("copy", b) });
    bus.publishMany("src", ["aa", "bbb"]);
    await bus.close();
    return { batches, plain, limited, closed: sub.isClosed(), extras, copied };
  });
  // three subscriptions share b.x: each still gets the four messages as one batch
  assert.deepEqual(r.batches, [["b.x=1", "b.x=2", "b.x=3", "b.x="], ["b.y=5"], ["b.z=6"]]);
  assert.deepEqual(r.plain, ["1", "2", "3", ""]);
  assert.deepEqual(r.limited, ["1", "2", "3"]);
  assert.equal(r.closed, true);
  assert.deepEqual(r.extras, [["r.1", "v", "6"]]);
  assert.deepEqual(r.copied, [2, 5]);
  assert.deepEqual(pageErrors, []);
});

test("requests: replies, no responders and timeouts through the shared inbox", async () => {
  const r = await page.evaluate(async () => {
    const { open, isNoResponders, isTimeout } = window.edgebus;
    const bus = await open({ name: "batch-req", storage: "memory" });
    bus.subscribe("svc.echo", { callback: (_e, m) => m.respond(`echo ${m.string()}`) });
    bus.subscribe("svc.silent", { callback: () => {} });
    const replies = await Promise.all([1, 2, 3].map((i) => bus.request("svc.echo", `${i}`).then((m) => m.string())));
    const none = await bus.request("svc.nobody", "x").catch((e) => isNoResponders(e));
    const slow = await bus.request("svc.silent", "x", { timeout: 150 }).catch((e) => isTimeout(e));
    // a long timeout first, then a short one: the short one must not wait for the long one
    const long = bus.request("svc.silent", "x", { timeout: 5000 }).catch((e) => e.name);
    const short = await bus.request("svc.silent", "x", { timeout: 100 }).catch((e) => e.name);
    await bus.close();
    return { replies, none, slow, short, long: await long };
  });
  assert.deepEqual(r.replies, ["echo 1", "echo 2", "echo 3"]);
  assert.equal(r.none, true);
  assert.equal(r.slow, true);
  assert.equal(r.short, "TimeoutError");
  assert.equal(r.long, "ClosedConnectionError", "closing the bus ends a pending request");
});

test("a burst of js.publish calls is stored together, acks in order, failures per publish", async () => {
  const r = await page.evaluate(async () => {
    const { open, deleteStorage } = window.edgebus;
    await deleteStorage("batch-js");
    let bus = await open({ name: "batch-js", storage: "indexeddb" });
    const jsm = await bus.jetstreamManager();
    await jsm.streams.add({ name: "BURST", subjects: ["burst.>"], storage: "file" });
    const js = bus.jetstream();
    const outcomes = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        js.publish(i === 7 ? "nostream.x" : `burst.${i % 3}`, `m${i}`).then((a) => a.seq, (e) => e.name)),
    );
    // a publish with options goes on its own, after the queued ones
    const withId = await js.publish("burst.id", "x", { msgID: "one" });
    await bus.close();
    bus = await open({ name: "batch-js", storage: "indexeddb" });
    const info = await (await bus.jetstreamManager()).streams.info("BURST");
    await bus.close();
    await deleteStorage("batch-js");
    return { outcomes, withId: withId.seq, messages: info.state.messages };
  });
  const expected = [];
  let seq = 0;
  for (let i = 0; i < 300; i++) expected.push(i === 7 ? "NoRespondersError" : ++seq);
  assert.deepEqual(r.outcomes, expected);
  assert.equal(r.withId, 300);
  assert.equal(r.messages, 300, "every acknowledged publish is back after reopening");
});

// A burst goes to the engine in one call, without a request per publish, only when nothing
// else would receive it: a subscriber on the subject still gets every message, and a publish
// the broker refuses (over maxPayload) still fails alone.
test("a js.publish burst still reaches other subscribers and fails per publish", async () => {
  const r = await page.evaluate(async () => {
    const { open, deleteStorage } = window.edgebus;
    await deleteStorage("batch-direct");
    let bus = await open({ name: "batch-direct", storage: "indexeddb", maxPayload: 1024 });
    const jsm = await bus.jetstreamManager();
    await jsm.streams.add({ name: "DIRECT", subjects: ["direct.>"], storage: "file" });
    const js = bus.jetstream();
    const burst = (n, subject, big = -1) =>
      Promise.all(
        Array.from({ length: n }, (_, i) =>
          js.publish(subject, i === big ? new Uint8Array(2048) : `m${i}`).then((a) => a.seq, (e) => e.name)),
      );
    const alone = await burst(100, "direct.a");
    const seen = [];
    const sub = bus.subscribe("direct.>", { callback: (_e, m) => seen.push(m.string()) });
    const watched = await burst(50, "direct.b");
    await bus.flush();
    sub.unsubscribe();
    const refused = await burst(20, "direct.c", 5);
    await bus.close();
    bus = await open({ name: "batch-direct", storage: "indexeddb" });
    const info = await (await bus.jetstreamManager()).streams.info("DIRECT");
    await bus.close();
    await deleteStorage("batch-direct");
    return { alone, watched, seen, refused, messages: info.state.messages };
  });
  const seqs = (from, n) => Array.from({ length: n }, (_, i) => from + i);
  assert.deepEqual(r.alone, seqs(1, 100));
  assert.deepEqual(r.watched, seqs(101, 50));
  assert.deepEqual(r.seen, Array.from({ length: 50 }, (_, i) => `m${i}`), "the subscriber got every message of the burst");
  assert.deepEqual(r.refused, [...seqs(151, 5), "MaxPayloadError", ...seqs(156, 14)]);
  assert.equal(r.messages, 169, "every acknowledged publish is back after reopening");
});

// A burst for a stream that never acks (no_ack) goes as requests, gathered together: closing
// the bus ends every one of them, none hangs.
test("a js.publish burst waiting for replies ends when the bus closes", async () => {
  const r = await page.evaluate(async () => {
    const { open } = window.edgebus;
    const bus = await open({ name: "batch-noack", storage: "memory" });
    const jsm = await bus.jetstreamManager();
    await jsm.streams.add({ name: "QUIET", subjects: ["quiet.>"], no_ack: true });
    const js = bus.jetstream();
    const pending = Promise.all(Array.from({ length: 5 }, (_, i) => js.publish("quiet.x", `m${i}`).then((a) => a.seq, (e) => e.name)));
    await new Promise((res) => setTimeout(res, 50));
    await bus.close();
    return await pending;
  });
  assert.deepEqual(r, Array(5).fill("ClosedConnectionError"));
});
