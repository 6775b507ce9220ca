// The NATS 2.11–2.14 JetStream features through the page's API with nats.js v3's names, in
// headless Chromium on a bus inside the page: pull options for priority groups (the pin id
// kept and dropped on a 423), `js.startBatch`, counters (`Nats-Incr`), `jsm.direct.getBatch`
// / `getLastMessagesFor`, a scheduled message that fires after a reload (IndexedDB), and an
// open batch continued after a reload (IndexedDB and OPFS).
// Needs `bash web/build.sh`.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { openPackagePage } from "./page.mjs";

let page;
let pageErrors = [];
let closePage;

before(async () => {
  ({ page, errors: pageErrors, close: closePage } = await openPackagePage("/jsf-test.html"));
});

after(async () => {
  if (closePage) await closePage();
});

test("fetch in a pinned_client group keeps its pin, drops it on 423; overflow's min_pending", async () => {
  const r = await page.evaluate(async () => {
    const bus = await window.edgebus.open({ name: "prio", storage: "memory" });
    const js = bus.jetstream();
    const jsm = await bus.jetstreamManager();
    await jsm.streams.add({ name: "P", subjects: ["p.>"] });
    for (let i = 0; i < 4; i++) await js.publish("p.x", String(i));
    await jsm.consumers.add("P", { durable_name: "pin", ack_policy: "explicit", priority_groups: ["G"], priority_policy: "pinned_client" });
    const c = await js.consumers.get("P", "pin");
    const out = {};
    const first = await c.fetch({ max_messages: 1, group: "G", expires: 5000 });
    first.messages.forEach((m) => m.ack());
    out.firstPin = first.messages[0].headers.get("Nats-Pin-Id");
    out.kept = c.pinId;
    const second = await c.fetch({ max_messages: 1, group: "G", expires: 5000 });
    second.messages.forEach((m) => m.ack());
    out.secondPin = second.messages[0].headers.get("Nats-Pin-Id");
    await jsm.consumers.unpin("P", "pin", "G");
    // the old pin is refused (423): nothing, and the pin is forgotten
    const refused = await c.fetch({ max_messages: 1, group: "G", expires: 5000 });
    out.refused = [refused.messages.length, c.pinId];
    const again = await c.fetch({ max_messages: 1, group: "G", expires: 5000 });
    out.newPin = again.messages[0].headers.get("Nats-Pin-Id");
    out.newKept = c.pinId;

    await jsm.consumers.add("P", { durable_name: "ovf", ack_policy: "explicit", priority_groups: ["O"], priority_policy: "overflow" });
    const o = await js.consumers.get("P", "ovf");
    // 4 pending: a pull asking for at least 2 is served, one asking for 10 is not
    out.served = (await o.fetch({ max_messages: 1, group: "O", min_pending: 2, expires: 5000 })).messages.map((m) => m.string());
    out.notServed = (await o.fetch({ max_messages: 1, group: "O", min_pending: 10, no_wait: true })).messages.length;
    await bus.close();
    return out;
  });
  assert.ok(r.firstPin, "a pinned delivery carries Nats-Pin-Id");
  assert.equal(r.kept, r.firstPin);
  assert.equal(r.secondPin, r.firstPin, "the next pull sent the pin and kept it");
  assert.deepEqual(r.refused, [0, ""]);
  assert.ok(r.newPin && r.newPin !== r.firstPin);
  assert.equal(r.newKept, r.newPin);
  assert.deepEqual(r.served, ["0"]);
  assert.equal(r.notServed, 0);
  assert.deepEqual(pageErrors, []);
});

test("js.startBatch: staged out of sight, committed whole, or refused whole", async () => {
  const r = await page.evaluate(async () => {
    const bus = await window.edgebus.open({ name: "batch", storage: "memory" });
    const js = bus.jetstream();
    const jsm = await bus.jetstreamManager();
    await jsm.streams.add({ name: "B", subjects: ["b.>"], allow_atomic: true });
    const b = await js.startBatch("b.a", "1");
    b.add("b.b", "2");
    await b.add("b.c", "3", { ack: true });
    const before = (await jsm.streams.info("B")).state.messages;
    const ack = await b.commit("b.d", "4");
    const afterCommit = (await jsm.streams.info("B")).state.messages;
    // an expectation that does not hold is found at the commit, which stores nothing
    const bad = await js.startBatch("b.a", "x", { expect: { lastSequence: 1 } });
    bad.add("b.b", "y");
    let refused = null;
    try {
      await bad.commit("b.c", "z");
    } catch (e) {
      refused = [e.name, e.err_code];
    }
    const last = (await jsm.streams.info("B")).state.messages;
    await bus.close();
    return { id: b.id, count: b.count, before, ack, afterCommit, refused, last };
  });
  assert.equal(r.before, 0, "nothing visible before the commit");
  assert.deepEqual(r.ack, { stream: "B", seq: 4, batch: r.id, count: 4 });
  assert.equal(r.count, 4);
  assert.equal(r.afterCommit, 4);
  assert.deepEqual(r.refused, ["JetStreamApiError", 10071]);
  assert.equal(r.last, 4);
  assert.deepEqual(pageErrors, []);
});

test("counters: Nats-Incr adds up, the ack carries the total", async () => {
  const r = await page.evaluate(async () => {
    const { open, headers } = window.edgebus;
    const bus = await open({ name: "counters", storage: "memory" });
    const js = bus.jetstream();
    const jsm = await bus.jetstreamManager();
    await jsm.streams.add({ name: "C", subjects: ["c.>"], allow_msg_counter: true });
    const incr = async (by) => {
      const h = headers();
      h.set("Nats-Incr", by);
      return (await js.publish("c.hits", undefined, { headers: h })).val;
    };
    const vals = [await incr("+5"), await incr("-2"), await incr("100000000000000000000000")];
    const stored = (await jsm.streams.getMessage("C", { last_by_subj: "c.hits" })).json();
    await bus.close();
    return { vals, stored };
  });
  assert.deepEqual(r.vals, ["5", "3", "100000000000000000000003"]);
  assert.deepEqual(r.stored, { val: "100000000000000000000003" });
  assert.deepEqual(pageErrors, []);
});

test("jsm.direct.getBatch and getLastMessagesFor", async () => {
  const r = await page.evaluate(async () => {
    const bus = await window.edgebus.open({ name: "direct", storage: "memory" });
    const js = bus.jetstream();
    const jsm = await bus.jetstreamManager();
    await jsm.streams.add({ name: "D", subjects: ["d.>"], allow_direct: true });
    for (const [s, v] of [["d.a", "1"], ["d.b", "2"], ["d.a", "3"], ["d.c", "4"], ["d.b", "5"]]) await js.publish(s, v);
    const from2 = await jsm.direct.getBatch("D", { seq: 2, batch: 2 });
    const onA = [];
    for await (const m of await jsm.direct.getBatch("D", { seq: 1, next_by_subj: "d.a" })) onA.push([m.seq, m.string()]);
    const lasts = await jsm.direct.getLastMessagesFor("D", { multi_last: ["d.a", "d.b"] });
    const upTo = await jsm.direct.getLastMessagesFor("D", { multi_last: ["d.*"], up_to_seq: 3 });
    await bus.close();
    const show = (b) => b.messages.map((m) => [m.subject, m.seq, m.string()]);
    return { from2: show(from2), onA, lasts: show(lasts), upTo: show(upTo) };
  });
  assert.deepEqual(r.from2, [["d.b", 2, "2"], ["d.a", 3, "3"]]);
  assert.deepEqual(r.onA, [[1, "1"], [3, "3"]]);
  assert.deepEqual(r.lasts, [["d.a", 3, "3"], ["d.b", 5, "5"]]);
  assert.deepEqual(r.upTo, [["d.b", 2, "2"], ["d.a", 3, "3"]]);
  assert.deepEqual(pageErrors, []);
});

test("a scheduled message survives a reload (IndexedDB) and fires on its target", async () => {
  const at = new Date(Date.now() + 1500).toISOString();
  await page.evaluate(async (at) => {
    await window.edgebus.deleteStorage("sched").catch(() => {});
    const { open, headers } = window.edgebus;
    const bus = await open({ name: "sched", storage: "indexeddb" });
    const jsm = await bus.jetstreamManager();
    await jsm.streams.add({ name: "S", subjects: ["s.>"], allow_msg_schedules: true });
    await jsm.consumers.add("S", { durable_name: "t", ack_policy: "explicit", filter_subject: "s.target" });
    const h = headers();
    h.set("Nats-Schedule", `@at ${at}`);
    h.set("Nats-Schedule-Target", "s.target");
    await bus.jetstream().publish("s.later", "after reload", { headers: h });
    await bus.close();
  }, at);
  await page.reload();
  await page.waitForFunction(() => window.ready === true);
  const r = await page.evaluate(async () => {
    const bus = await window.edgebus.open({ name: "sched", storage: "indexeddb" });
    const c = await bus.jetstream().consumers.get("S", "t");
    const m = await c.next({ expires: 20_000 });
    const out = m ? [m.subject, m.string(), m.headers?.get("Nats-Scheduler")] : null;
    m?.ack();
    await bus.close();
    await window.edgebus.deleteStorage("sched");
    return out;
  });
  assert.deepEqual(r, ["s.target", "after reload", "s.later"]);
  assert.deepEqual(pageErrors, []);
});

for (const storage of ["indexeddb", "opfs"]) {
  test(`an open batch survives a reload (${storage}) and commits whole`, async () => {
    const name = `batch-${storage}`;
    const before = await page.evaluate(async ({ name, storage }) => {
      await window.edgebus.deleteStorage(name).catch(() => {});
      const bus = await window.edgebus.open({ name, storage });
      const jsm = await bus.jetstreamManager();
      await jsm.streams.add({ name: "B", subjects: ["b.>"], allow_atomic: true });
      const js = bus.jetstream();
      const b = await js.startBatch("b.x", "one");
      await b.add("b.x", "two", { ack: true });
      const idle = await js.startBatch("b.y", "abandoned");
      const seen = (await jsm.streams.info("B")).state.messages;
      // no close: the reload is all the page gets
      return { id: b.id, count: b.count, idle: idle.id, seen };
    }, { name, storage });
    assert.equal(before.seen, 0, "staged messages are invisible");
    await page.reload();
    await page.waitForFunction(() => window.ready === true);
    const r = await page.evaluate(async ({ name, storage, id, count }) => {
      const bus = await window.edgebus.open({ name, storage });
      const js = bus.jetstream();
      const jsm = await bus.jetstreamManager();
      const out = { before: (await jsm.streams.info("B")).state.messages };
      const ack = await js.resumeBatch(id, count).commit("b.x", "three");
      out.ack = [ack.seq, ack.count, ack.batch === id];
      out.msgs = [];
      for (let seq = 1; seq <= 3; seq++) out.msgs.push((await jsm.streams.getMessage("B", { seq })).string());
      // a second commit of the same id finds no open batch: it was stored once, whole
      out.again = await js.resumeBatch(id, count + 1).commit("b.x", "four").then(() => "committed", (e) => e.err_code);
      out.after = (await jsm.streams.info("B")).state.messages;
      await bus.close();
      await window.edgebus.deleteStorage(name);
      return out;
    }, { name, storage, id: before.id, count: before.count });
    assert.equal(before.count, 2);
    assert.deepEqual(r, { before: 0, ack: [3, 3, true], msgs: ["one", "two", "three"], again: 10176, after: 3 });
    assert.deepEqual(pageErrors, []);
  });
}
