// Fast-ingest batches in the page with nats.js v3's names (`js.startFastIngest`, streams with
// `allow_batched`), in headless Chromium: the engine serves the reply-subject protocol, the
// package paces the publisher. 500 messages paced by flow acks, stored once and in order,
// acknowledged as one batch, still there after a reload (IndexedDB and OPFS); two batches at
// once on one stream; a gap
// reported by `gaps()` (the batch goes on with `allowGaps`, ends without it); a batch from a
// client tab of a shared bus, read back there by a pinned `consume()`.
// Needs `bash web/build.sh`.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { openPackagePage, openTabs, STORAGES } from "./page.mjs";

let page;
let pageErrors = [];
let closePage;
let browser;
let base;

before(async () => {
  ({ page, errors: pageErrors, close: closePage, browser, base } = await openPackagePage("/fastingest-test.html"));
});

after(async () => {
  if (closePage) await closePage();
});

for (const storage of STORAGES) {
  test(`a fast batch of 500: paced, acked whole, stored once in order, kept across a reload (${storage})`, async () => {
    const name = `fast-${storage}`;
    const r = await page.evaluate(async ({ name, storage }) => {
      await window.edgebus.deleteStorage(name).catch(() => {});
      const bus = await window.edgebus.open({ name, storage });
      const js = bus.jetstream();
      const jsm = await bus.jetstreamManager();
      await jsm.streams.add({ name: "F", subjects: ["f.>"], allow_batched: true });
      const fi = await js.startFastIngest("f.0", "0", { allowGaps: false, ackInterval: 10, maxOutstandingAcks: 1 });
      // each add resolves once the window (10 x 1) has room: never more than that unacked
      let widest = 0;
      let lastAck = 0;
      let backwards = false;
      for (let i = 1; i < 499; i++) {
        const p = await fi.add(`f.${i % 5}`, String(i));
        widest = Math.max(widest, p.batchSeq - p.ackSeq);
        if (p.ackSeq < lastAck) backwards = true;
        lastAck = p.ackSeq;
      }
      const ping = await fi.ping();
      const ack = await fi.last("f.last", "499");
      const done = await fi.done();
      const after = await fi.add("f.x", "late").then(() => "accepted", (e) => e.message);
      const info = await jsm.streams.info("F");
      await bus.close();
      return { batch: fi.batch, widest, lastAck, backwards, ping, ack, done, after, messages: info.state.messages };
    }, { name, storage });
    assert.ok(r.widest < 10, `less than one ack interval unacknowledged (saw ${r.widest})`);
    assert.ok(r.lastAck >= 480, `flow acks moved the window along (last ${r.lastAck})`);
    assert.equal(r.backwards, false);
    assert.equal(r.ping.batchSeq, 499);
    assert.ok(r.ping.ackSeq <= 499 && r.ping.ackSeq >= r.lastAck);
    assert.deepEqual(r.ack, { stream: "F", seq: 500, batch: r.batch, count: 500 });
    assert.deepEqual(r.done, r.ack);
    assert.equal(r.after, "batch closed");
    assert.equal(r.messages, 500);

    await page.reload();
    await page.waitForFunction(() => window.ready === true);
    const kept = await page.evaluate(async ({ name, storage }) => {
      const bus = await window.edgebus.open({ name, storage });
      const jsm = await bus.jetstreamManager();
      const info = await jsm.streams.info("F");
      await jsm.consumers.add("F", { durable_name: "read", ack_policy: "none" });
      const c = await bus.jetstream().consumers.get("F", "read");
      const seen = [];
      while (seen.length < 500) {
        const got = await c.fetch({ max_messages: 100, expires: 5000 });
        if (got.messages.length === 0) break;
        for (const m of got.messages) seen.push([m.seq, m.string()]);
      }
      await bus.close();
      await window.edgebus.deleteStorage(name);
      return { messages: info.state.messages, last: info.state.last_seq, seen };
    }, { name, storage });
    assert.equal(kept.messages, 500);
    assert.equal(kept.last, 500);
    assert.deepEqual(kept.seen, Array.from({ length: 500 }, (_, i) => [i + 1, String(i)]));
    assert.deepEqual(pageErrors, []);
  });
}

test("two fast batches at once on one stream: each paced and acked whole, every message stored once", async () => {
  const r = await page.evaluate(async () => {
    const bus = await window.edgebus.open({ name: "fast-two", storage: "memory" });
    const js = bus.jetstream();
    const jsm = await bus.jetstreamManager();
    await jsm.streams.add({ name: "W", subjects: ["w.>"], allow_batched: true });
    const run = async (who) => {
      const fi = await js.startFastIngest(`w.${who}`, `${who}0`, { allowGaps: false, ackInterval: 20, maxOutstandingAcks: 1 });
      let widest = 0;
      for (let i = 1; i < 299; i++) {
        const p = await fi.add(`w.${who}`, `${who}${i}`);
        widest = Math.max(widest, p.batchSeq - p.ackSeq);
      }
      const ack = await fi.last(`w.${who}`, `${who}299`);
      return { widest, count: ack.count, mine: ack.batch === fi.batch };
    };
    const [a, b] = await Promise.all([run("a"), run("b")]);
    const info = await jsm.streams.info("W", { subjects_filter: ">" });
    await bus.close();
    return { a, b, messages: info.state.messages, subjects: info.state.subjects };
  });
  for (const x of [r.a, r.b]) {
    assert.equal(x.count, 300);
    assert.ok(x.mine);
    assert.ok(x.widest < 20, `within one ack interval (saw ${x.widest})`);
  }
  assert.equal(r.messages, 600);
  assert.deepEqual(r.subjects, { "w.a": 300, "w.b": 300 });
  assert.deepEqual(pageErrors, []);
});

test("gaps: reported and skipped with allowGaps, the end of the batch without", async () => {
  const r = await page.evaluate(async () => {
    const bus = await window.edgebus.open({ name: "fast-gaps", storage: "memory" });
    const js = bus.jetstream();
    const jsm = await bus.jetstreamManager();
    await jsm.streams.add({ name: "G", subjects: ["g.>"], allow_batched: true });
    // a message lost on the way: sequence 3 never reaches the stream, 4 does (sent the way
    // a client whose message 3 was dropped would send it)
    const lose = (fi, mode, seq, op = 1) =>
      bus.publish("g.m", String(seq), { reply: `_INBOX.${fi.batch}.10.${mode}.${seq}.${op}.$FI` });
    const collect = async (fi) => {
      const gaps = [];
      for await (const g of fi.gaps()) gaps.push(g);
      return gaps;
    };

    const ok = await js.startFastIngest("g.m", "1", { allowGaps: true });
    const okGaps = collect(ok);
    await ok.add("g.m", "2");
    lose(ok, "ok", 4);
    const okPing = await ok.ping();
    const okStored = (await jsm.streams.info("G")).state.messages;
    // the batch went on past the gap: its end-of-batch comes after 4
    lose(ok, "ok", 5, 3);
    const okAck = await ok.done();

    const fail = await js.startFastIngest("g.m", "a", { allowGaps: false });
    const failGaps = collect(fail);
    await fail.add("g.m", "b");
    lose(fail, "fail", 4);
    const failAck = await fail.done();
    const failAfter = await fail.add("g.m", "c").then(() => "accepted", (e) => e.message);
    const total = (await jsm.streams.info("G")).state.messages;
    await bus.close();
    return { okGaps: await okGaps, okPing, okStored, okAck, failGaps: await failGaps, failAck, failAfter, total };
  });
  assert.deepEqual(r.okGaps, [{ lastSeq: 3, seq: 4 }]);
  assert.equal(r.okStored, 3, "1, 2 and 4 stored: the gap skipped");
  assert.equal(r.okPing.batchSeq, 2);
  assert.equal(r.okAck.count, 4);
  assert.deepEqual(r.failGaps, [{ lastSeq: 3, seq: 4 }]);
  assert.equal(r.failAck.count, 2, "the batch ended at the gap with what it had");
  assert.equal(r.failAfter, "batch closed");
  assert.equal(r.total, 5);
  assert.deepEqual(pageErrors, []);
});

test("a stream without allow_batched refuses the batch's first message", async () => {
  const r = await page.evaluate(async () => {
    const bus = await window.edgebus.open({ name: "fast-off", storage: "memory" });
    const jsm = await bus.jetstreamManager();
    await jsm.streams.add({ name: "N", subjects: ["n.>"] });
    const out = await bus
      .jetstream()
      .startFastIngest("n.1", "x", { allowGaps: false })
      .then(() => "started", (e) => [e.name, e.err_code]);
    const bad = await bus.jetstream().startFastIngest("n.1", "x", { allowGaps: false, inboxPrefix: "a.*" }).then(() => "started", (e) => e.name);
    await bus.close();
    return { out, bad };
  });
  assert.deepEqual(r.out, ["JetStreamApiError", 10205]);
  assert.equal(r.bad, "InvalidArgumentError");
  assert.deepEqual(pageErrors, []);
});

test("a client tab of a shared bus: its fast batch reaches the leader's engine, its pinned consume() reads it back", async () => {
  const { context, pages, errors } = await openTabs(browser, `${base}/fastingest-test.html`, 2);
  try {
    await pages[0].evaluate(async () => {
      await window.edgebus.deleteStorage("fast-tabs").catch(() => {});
      window.bus = await window.edgebus.open({ name: "fast-tabs", storage: "indexeddb" });
    });
    const r = await pages[1].evaluate(async () => {
      const bus = await window.edgebus.open({ name: "fast-tabs", storage: "indexeddb" });
      const role = bus.info().role;
      const js = bus.jetstream();
      const jsm = await bus.jetstreamManager();
      await jsm.streams.add({ name: "T", subjects: ["t.>"], allow_batched: true });
      await jsm.consumers.add("T", { durable_name: "w", ack_policy: "explicit", priority_groups: ["G"], priority_policy: "pinned_client" });
      const fi = await js.startFastIngest("t.x", "0", { allowGaps: false, ackInterval: 10 });
      for (let i = 1; i < 199; i++) await fi.add("t.x", String(i));
      const ack = await fi.last("t.x", "199");
      const seen = [];
      const pins = new Set();
      const c = await js.consumers.get("T", "w");
      for await (const m of await c.consume({ group: "G", max_messages: 50 })) {
        seen.push(m.string());
        pins.add(m.headers?.get("Nats-Pin-Id"));
        m.ack();
        if (seen.length === 200) break;
      }
      return { role, ack: [ack.seq, ack.count, ack.batch === fi.batch], inOrder: seen.every((d, i) => d === String(i)), count: seen.length, pins: pins.size };
    });
    const leader = await pages[0].evaluate(async () => {
      const jsm = await window.bus.jetstreamManager();
      const info = await jsm.streams.info("T");
      const role = window.bus.info().role;
      await window.bus.close();
      return [role, info.state.messages];
    });
    assert.equal(r.role, "client");
    assert.deepEqual(r.ack, [200, 200, true]);
    assert.equal(r.count, 200);
    assert.ok(r.inOrder, "read back in the order published");
    assert.equal(r.pins, 1, "one pin for the whole consume()");
    assert.deepEqual(leader, ["leader", 200]);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});
