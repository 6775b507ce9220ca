// A pull consumer's `consume()` in priority groups, with nats.js v3's option names, in
// headless Chromium on a bus inside the page: two clients of one `pinned_client` consumer
// (one pinned, one standing by; after `jsm.consumers.unpin` the pin moves to the other and
// the first is told), `overflow`'s `min_pending` (nothing served below it), `prioritized`'s
// `priority`, the iterator holding at most `max_messages`, and a pull the server refuses
// ending `consume()` / rejecting `fetch()` with its status.
// Needs `bash web/build.sh`.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { openPackagePage } from "./page.mjs";

let page;
let pageErrors = [];
let closePage;

before(async () => {
  ({ page, errors: pageErrors, close: closePage } = await openPackagePage("/pullconsume-test.html"));
  // `until(pred)`: resolves when `pred()` holds, checked again at every `tick()`
  await page.evaluate(() => {
    const checks = [];
    window.tick = () => {
      for (const c of checks.splice(0)) c();
    };
    window.until = (pred) =>
      new Promise((resolve) => {
        const check = () => (pred() ? resolve() : checks.push(check));
        check();
      });
  });
});

after(async () => {
  if (closePage) await closePage();
});

test("two clients of a pinned_client consumer: one pinned, the pin moves on unpin", async () => {
  const r = await page.evaluate(async () => {
    const bus = await window.edgebus.open({ name: "pinned", storage: "memory" });
    const js = bus.jetstream();
    const jsm = await bus.jetstreamManager();
    await jsm.streams.add({ name: "P", subjects: ["p.>"] });
    await jsm.consumers.add("P", { durable_name: "w", ack_policy: "explicit", priority_groups: ["G"], priority_policy: "pinned_client" });
    const got = { a: [], b: [] };
    const notes = { a: [], b: [] };
    const client = async (who) => {
      const c = await js.consumers.get("P", "w");
      // the default expiry (30 s): no pull of a ends by time while the test runs, so which
      // client pulls first after the unpin is decided by the pulls, not by a clock
      const msgs = await c.consume({
        group: "G",
        callback: (m) => {
          got[who].push([m.string(), m.headers?.get("Nats-Pin-Id")]);
          m.ack();
          window.tick();
        },
      });
      (async () => {
        for await (const n of msgs.status()) {
          notes[who].push(n.type);
          window.tick();
        }
      })();
      return { c, msgs };
    };
    const a = await client("a");
    for (let i = 0; i < 3; i++) await js.publish("p.x", String(i));
    await window.until(() => got.a.length === 3);
    const b = await client("b");
    // b stands by: every message goes to a, the pinned one
    for (let i = 3; i < 6; i++) await js.publish("p.x", String(i));
    await window.until(() => got.a.length === 6);
    const pinA = a.c.pinId;
    await jsm.consumers.unpin("P", "w", "G");
    for (let i = 6; i < 9; i++) await js.publish("p.x", String(i));
    await window.until(() => got.a.length + got.b.length === 9);
    // a's pull still carrying the old pin is refused (423) when it next comes up
    await window.until(() => notes.a.includes("consumer_unpinned"));
    const pinB = b.c.pinId;
    await a.msgs.close();
    await b.msgs.close();
    await bus.close();
    return { got, notes, pinA, pinB, aAfter: a.c.pinId };
  });
  assert.deepEqual(r.got.a.map(([d]) => d), ["0", "1", "2", "3", "4", "5"]);
  assert.ok(r.pinA && r.got.a.every(([, pin]) => pin === r.pinA), "a's messages all carry its pin");
  assert.deepEqual(r.got.b.map(([d]) => d), ["6", "7", "8"]);
  assert.ok(r.pinB && r.pinB !== r.pinA, "a new pin, b's");
  assert.ok(r.got.b.every(([, pin]) => pin === r.pinB));
  assert.equal(r.notes.a[0], "consumer_pinned");
  assert.ok(r.notes.a.includes("consumer_unpinned"));
  assert.deepEqual(r.notes.b, ["consumer_pinned"]);
  assert.equal(r.aAfter, "", "a forgot the old pin");
  assert.deepEqual(pageErrors, []);
});

test("overflow: a consume with min_pending is served only from that backlog on", async () => {
  const r = await page.evaluate(async () => {
    const bus = await window.edgebus.open({ name: "overflow", storage: "memory" });
    const js = bus.jetstream();
    const jsm = await bus.jetstreamManager();
    await jsm.streams.add({ name: "O", subjects: ["o.>"] });
    await jsm.consumers.add("O", { durable_name: "ovf", ack_policy: "explicit", priority_groups: ["O"], priority_policy: "overflow" });
    const got = [];
    const c = await js.consumers.get("O", "ovf");
    const msgs = await c.consume({
      group: "O",
      min_pending: 5,
      expires: 1000,
      callback: (m) => {
        got.push(m.string());
        window.tick();
      },
    });
    for (let i = 0; i < 4; i++) await js.publish("o.x", String(i));
    // 4 pending: the consumer holds them all, none handed out
    const below = await jsm.consumers.info("O", "ovf");
    const early = got.length;
    await js.publish("o.x", "4");
    await window.until(() => got.length >= 1);
    const first = got[0];
    await msgs.close();
    // a pull without the threshold is served at once
    const next = await c.next({ group: "O", expires: 1000 });
    await bus.close();
    return { pending: below.num_pending, ackPending: below.num_ack_pending, early, first, next: next?.string() };
  });
  assert.equal(r.pending, 4);
  assert.equal(r.ackPending, 0);
  assert.equal(r.early, 0);
  assert.equal(r.first, "0");
  assert.equal(r.next, "1");
  assert.deepEqual(pageErrors, []);
});

test("prioritized: the waiting pull of the lower priority number is served first", async () => {
  const r = await page.evaluate(async () => {
    const bus = await window.edgebus.open({ name: "prioritized", storage: "memory" });
    const js = bus.jetstream();
    const jsm = await bus.jetstreamManager();
    await jsm.streams.add({ name: "Q", subjects: ["q.>"] });
    await jsm.consumers.add("Q", { durable_name: "w", ack_policy: "explicit", priority_groups: ["P"], priority_policy: "prioritized" });
    const got = [];
    const run = async (who, priority) =>
      (await js.consumers.get("Q", "w")).consume({
        group: "P",
        priority,
        callback: (m) => {
          got.push([who, m.string()]);
          m.ack();
          window.tick();
        },
      });
    const low = await run("low", 5);
    const high = await run("high", 0);
    // one message at a time, each once both clients have a pull waiting
    for (let i = 0; i < 3; i++) {
      while ((await jsm.consumers.info("Q", "w")).num_waiting < 2);
      await js.publish("q.x", String(i));
      await window.until(() => got.length === i + 1);
    }
    await low.close();
    await high.close();
    await bus.close();
    return got;
  });
  assert.deepEqual(r, [["high", "0"], ["high", "1"], ["high", "2"]]);
  assert.deepEqual(pageErrors, []);
});

test("consume() as an iterator: every message in order, at most max_messages held", async () => {
  const r = await page.evaluate(async () => {
    const bus = await window.edgebus.open({ name: "iterate", storage: "memory" });
    const js = bus.jetstream();
    const jsm = await bus.jetstreamManager();
    await jsm.streams.add({ name: "I", subjects: ["i.>"] });
    await jsm.consumers.add("I", { durable_name: "w", ack_policy: "explicit" });
    for (let i = 0; i < 7; i++) await js.publish("i.x", String(i));
    const msgs = await (await js.consumers.get("I", "w")).consume({ max_messages: 2 });
    const seen = [];
    let mostOut = 0;
    for await (const m of msgs) {
      seen.push(m.string());
      m.ack();
      // what the consumer handed out and is not acked yet: the iterator's backlog
      const info = await jsm.consumers.info("I", "w");
      mostOut = Math.max(mostOut, info.num_ack_pending);
      if (seen.length === 7) break;
    }
    await msgs.closed();
    await bus.close();
    return { seen, mostOut };
  });
  assert.deepEqual(r.seen, ["0", "1", "2", "3", "4", "5", "6"]);
  assert.ok(r.mostOut <= 2, `no more than max_messages handed out ahead (saw ${r.mostOut})`);
  assert.deepEqual(pageErrors, []);
});

test("a pull the server refuses: consume() ends with its status (400, 409 deleted, 503 gone), fetch() rejects on a 400", async () => {
  const r = await page.evaluate(async () => {
    const bus = await window.edgebus.open({ name: "refused", storage: "memory" });
    const js = bus.jetstream();
    const jsm = await bus.jetstreamManager();
    await jsm.streams.add({ name: "R", subjects: ["r.>"] });
    await jsm.consumers.add("R", { durable_name: "g", ack_policy: "explicit", priority_groups: ["G"], priority_policy: "pinned_client" });
    const c = await js.consumers.get("R", "g");
    // a pinned_client consumer needs a group in every pull
    const ended = await (await c.consume({ expires: 1000 })).closed();
    const fetched = await c.fetch({ max_messages: 1, expires: 1000 }).then(() => "served", (e) => e);
    const wrongGroup = await c.fetch({ max_messages: 1, group: "X", expires: 1000 }).then(() => "served", (e) => [e.code, e.message]);
    // the consumer deleted while a pull waits, and a consume() of one that is gone
    await jsm.consumers.add("R", { durable_name: "gone", ack_policy: "explicit" });
    const doomed = await (await js.consumers.get("R", "gone")).consume({ callback: () => {} });
    while ((await jsm.consumers.info("R", "gone")).num_waiting < 1);
    await jsm.consumers.delete("R", "gone");
    const deleted = await doomed.closed();
    const missing = await (await new window.edgebus.Consumer(bus, "R", "gone").consume({ callback: () => {} })).closed();
    await bus.close();
    return {
      ended: [ended?.name, ended?.code, ended?.message, ended instanceof window.edgebus.PullStatusError],
      fetched: [fetched.name, fetched.code, fetched instanceof window.edgebus.JetStreamApiError],
      wrongGroup,
      deleted: [deleted?.name, deleted?.code, deleted?.message],
      missing: [missing?.name, missing?.code],
    };
  });
  assert.deepEqual(r.ended, ["PullStatusError", 400, "Bad Request - Priority Group missing", true]);
  assert.deepEqual(r.fetched, ["PullStatusError", 400, true]);
  assert.deepEqual(r.wrongGroup, [400, "Bad Request - Invalid Priority Group"]);
  assert.deepEqual(r.deleted, ["PullStatusError", 409, "Consumer Deleted"]);
  assert.deepEqual(r.missing, ["PullStatusError", 503]);
  assert.deepEqual(pageErrors, []);
});

test("max_bytes: fetch and consume() limited by bytes, not with max_messages, and a message larger than all of it ends consume() with the server's 409", async () => {
  const r = await page.evaluate(async () => {
    const bus = await window.edgebus.open({ name: "bytes", storage: "memory" });
    const js = bus.jetstream();
    const jsm = await bus.jetstreamManager();
    await jsm.streams.add({ name: "B", subjects: ["b.>"] });
    await jsm.consumers.add("B", { durable_name: "w", ack_policy: "explicit" });
    const payload = (i) => String(i).padStart(100, "-");
    for (let i = 0; i < 9; i++) await js.publish("b.x", payload(i));
    const c = await js.consumers.get("B", "w");
    const both = await c.fetch({ max_messages: 2, max_bytes: 350 }).then(() => "served", (e) => [e.name, e instanceof window.edgebus.InvalidArgumentError]);
    const bothConsume = await c.consume({ max_messages: 2, max_bytes: 350 }).then(() => "served", (e) => e.name);
    // each message is over 100 bytes: no more than 3 fit in 350
    const fetched = (await c.fetch({ max_bytes: 350, expires: 1000 })).messages;
    for (const m of fetched) m.ack();
    const msgs = await c.consume({ max_bytes: 350 });
    const seen = fetched.map((m) => m.string().replace(/^-+/, ""));
    let mostOut = 0;
    for await (const m of msgs) {
      seen.push(m.string().replace(/^-+/, ""));
      m.ack();
      const info = await jsm.consumers.info("B", "w");
      mostOut = Math.max(mostOut, info.num_ack_pending);
      // the last of the nine taken: now one that can never fit
      if (seen.length === 9) await js.publish("b.x", "x".repeat(1000));
    }
    const ended = await msgs.closed();
    await bus.close();
    return {
      both,
      bothConsume,
      fetched: fetched.length,
      seen,
      mostOut,
      ended: [ended?.name, ended?.code, ended?.message],
    };
  });
  assert.deepEqual(r.both, ["InvalidArgumentError", true]);
  assert.equal(r.bothConsume, "InvalidArgumentError");
  assert.ok(r.fetched >= 1 && r.fetched <= 3, `fetch({ max_bytes: 350 }) brought ${r.fetched} messages of over 100 bytes`);
  assert.deepEqual(r.seen, ["0", "1", "2", "3", "4", "5", "6", "7", "8"]);
  assert.ok(r.mostOut >= 1 && r.mostOut <= 3, `no more than 350 bytes handed out ahead (saw ${r.mostOut} messages)`);
  assert.deepEqual(r.ended, ["PullStatusError", 409, "Message Size Exceeds MaxBytes"]);
  assert.deepEqual(pageErrors, []);
});
