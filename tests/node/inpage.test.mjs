// The npm package `edgebus` (web/: the wasm build + its TypeScript layer) in headless
// Chromium: a bus inside the page, no server. Checks pub/sub and request/reply in the page,
// then that stream messages, KV values and consumer positions survive a page reload
// (IndexedDB). Needs `bash web/build.sh` first (tests/setup.sh runs it).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { STORAGES, openPackagePage } from "./page.mjs";

let page;
let pageErrors = [];
let closePage;

before(async () => {
  ({ page, errors: pageErrors, close: closePage } = await openPackagePage("/inpage-test.html"));
});

after(async () => {
  if (closePage) await closePage();
});

test("pub/sub, queue groups and request/reply inside the page", async () => {
  const r = await page.evaluate(async () => {
    const { open, headers } = window.edgebus;
    const bus = await open({ name: "mem", storage: "memory" });
    const out = {};
    // callback subscription with a wildcard, and headers
    const seen = [];
    bus.subscribe("orders.*", { callback: (_err, m) => seen.push([m.subject, m.string(), m.headers?.get("X-Id") ?? ""]) });
    // async-iterator subscription that ends after 2 messages
    const sub = bus.subscribe("orders.new", { max: 2 });
    const iterated = (async () => { const got = []; for await (const m of sub) got.push(m.string()); return got; })();
    const h = headers();
    h.set("X-Id", "7");
    bus.publish("orders.new", "a", { headers: h });
    bus.publish("orders.new", "b");
    bus.publish("orders.old", "c");
    out.seen = seen;
    out.iterated = await iterated;
    // queue group: each message to exactly one member
    const counts = [0, 0, 0];
    for (let i = 0; i < 3; i++) bus.subscribe("work", { queue: "q", callback: () => counts[i]++ });
    for (let i = 0; i < 30; i++) bus.publish("work", String(i));
    // deliveries are asynchronous, as in nats.js (plain publishes cross into wasm together)
    await bus.flush();
    out.queueTotal = counts.reduce((a, b) => a + b, 0);
    // request/reply
    bus.subscribe("svc.echo", { callback: (_e, m) => m.respond("echo:" + m.string()) });
    out.reply = (await bus.request("svc.echo", "hi", { timeout: 1000 })).string();
    try {
      await bus.request("nobody.home", "x", { timeout: 1000 });
      out.noResponders = "no error";
    } catch (e) {
      out.noResponders = e.name;
    }
    out.info = bus.info();
    await bus.close();
    out.closed = bus.isClosed();
    return out;
  });
  assert.deepEqual(r.seen, [["orders.new", "a", "7"], ["orders.new", "b", ""], ["orders.old", "c", ""]]);
  assert.deepEqual(r.iterated, ["a", "b"]);
  assert.equal(r.queueTotal, 30);
  assert.equal(r.reply, "echo:hi");
  assert.equal(r.noResponders, "NoRespondersError");
  assert.equal(r.info.storage, "memory");
  assert.equal(r.closed, true);
  assert.deepEqual(pageErrors, []);
});

for (const storage of STORAGES) {
  test(`stream messages, KV values and consumer positions survive a reload (${storage})`, async () => {
    const before = await page.evaluate(async (storage) => {
      const { open, deleteStorage } = window.edgebus;
      await deleteStorage("e2e");
      const bus = await open({ name: "e2e", storage });
      const jsm = await bus.jetstreamManager();
      await jsm.streams.add({ name: "ORDERS", subjects: ["orders.>"] });
      await jsm.consumers.add("ORDERS", { durable_name: "worker", ack_policy: "explicit" });
      const js = bus.jetstream();
      const acks = [];
      for (let i = 1; i <= 5; i++) acks.push((await js.publish(`orders.${i}`, `order ${i}`, { msgID: `id-${i}` })).seq);
      const c = await js.consumers.get("ORDERS", "worker");
      const first = await c.next({ expires: 1000 });
      first.ack();
      const kv = await bus.kv("settings", { history: 5 });
      await kv.put("theme", "dark");
      await kv.put("theme", "light");
      await kv.create("lang", "en");
      await kv.put("tmp", "x");
      await kv.delete("tmp");
      await bus.flush(); // consumer position and everything else durable
      return { acks, first: first.string() };
    }, storage);
    assert.deepEqual(before, { acks: [1, 2, 3, 4, 5], first: "order 1" });

    await page.reload();
    await page.waitForFunction(() => window.ready === true);

    const afterReload = await page.evaluate(async (storage) => {
      const { open } = window.edgebus;
      const bus = await open({ name: "e2e", storage });
      const jsm = await bus.jetstreamManager();
      const info = await jsm.streams.info("ORDERS");
      const c = await bus.jetstream().consumers.get("ORDERS", "worker");
      const batch = await c.fetch({ max_messages: 10, expires: 1000 });
      const rest = [];
      for await (const m of batch) { rest.push(m.string()); m.ack(); }
      const kv = await bus.kv("settings");
      const theme = await kv.get("theme");
      const history = [];
      for await (const e of await kv.history({ key: "theme" })) history.push(e.string());
      const keys = [];
      for await (const k of await kv.keys()) keys.push(k);
      // dedup window survived too: the same msgID is a duplicate
      const dup = await bus.jetstream().publish("orders.1", "order 1", { msgID: "id-1" });
      await bus.close();
      return {
        messages: info.state.messages, rest, theme: theme.string(), themeRev: theme.revision,
        history, keys: keys.sort(), tmp: null, lang: null, dup: dup.duplicate === true,
      };
    }, storage);
    assert.equal(afterReload.messages, 5);
    assert.deepEqual(afterReload.rest, ["order 2", "order 3", "order 4", "order 5"]);
    assert.equal(afterReload.theme, "light");
    assert.equal(afterReload.themeRev, 2);
    assert.deepEqual(afterReload.history, ["dark", "light"]);
    assert.deepEqual(afterReload.keys, ["lang", "theme"]);
    assert.equal(afterReload.dup, true);
    assert.deepEqual(pageErrors, []);
  });
}
