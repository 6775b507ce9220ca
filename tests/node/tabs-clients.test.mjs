// A client tab of a shared bus (see tabs.test.mjs) does what the leader does:
//  - the server link: `bus.connect` in a client asks the leader (one WebSocket per origin),
//    status events reach every tab, and when the leader's renderer crashes the tab that
//    takes over re-creates the link with the same options and the stored outbox: a nats-py
//    client on the real server reads every publish exactly once;
//  - KV, pull fetch and the object store, sent to the leader's engine (web/src/remote.ts);
//  - per-subscription interest: what a client does not subscribe never crosses to it
//    (counted on its link to the leader).
// Needs `bash web/build.sh` and the release server (tests/setup.sh does both).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "./server.mjs";
import { natsPy } from "./py/natspy.mjs";
import { launch, PACKAGE_PAGE, openTabs, requirePackage, serveOn } from "./page.mjs";

let httpServer;
let browser;
let base;

before(async () => {
  requirePackage();
  // the same loopback origin as the server (see link.test.mjs)
  ({ server: httpServer, base } = await serveOn({ "/tabs-clients-test.html": PACKAGE_PAGE }));
  ({ browser } = await launch());
});

after(async () => {
  if (browser) await browser.close();
  if (httpServer) await new Promise((r) => httpServer.close(r));
});

/** `count` tabs of one origin showing the test page. */
function tabs(count) {
  return openTabs(browser, `${base}/tabs-clients-test.html`, count);
}

/** Opens bus `name` in each page in turn as `window.bus` (the first leads), recording its
 *  link status events in `window.events`. */
async function openAll(pages, name) {
  await pages[0].evaluate((name) => window.edgebus.deleteStorage(name), name);
  for (const page of pages) {
    await page.evaluate(async (name) => {
      window.bus = await window.edgebus.open({ name, storage: "indexeddb" });
      window.events = [];
      window.bus.status({ callback: (s) => window.events.push(s) });
    }, name);
  }
}

const role = (page) => page.evaluate(() => window.bus.info().role);

/** Waits in the page until a status event matching `pred` (source text) was recorded. */
function waitEvent(page, pred) {
  return page.waitForFunction(`window.events.some(${pred})`, null, { timeout: 60000, polling: 50 });
}

test("the server link across a leader crash: connect from a client tab, status in every tab, the new leader re-creates the link and the outbox reaches the server exactly once", async (t) => {
  const srv = await startServer("", { jetstream: true });
  t.after(() => srv.stop());
  let py = await natsPy(srv.url);
  await py.call("stream_add", { name: "ORDERS", subjects: ["orders.>"] });

  const { context, pages, errors } = await tabs(2);
  const [a, b] = pages;
  await openAll(pages, "tabs-link");
  assert.deepEqual([await role(a), await role(b)], ["leader", "client"]);

  // the client asks; the leader makes the one link
  await b.evaluate((url) => window.bus.connect(url, { export: ["orders.>"], reconnectDelayMin: 50, reconnectDelayMax: 200 }), srv.wsUrl);
  await waitEvent(a, `(e) => e.type === "connected"`);
  await waitEvent(b, `(e) => e.type === "connected"`);
  assert.equal(await a.evaluate(() => window.bus.raw.linkInfo().url), srv.wsUrl);

  for (let i = 1; i <= 5; i++) await b.evaluate((i) => window.bus.publish(`orders.${i}`, `order ${i}`), i);
  assert.equal(await a.evaluate(() => window.bus.raw.linkFlush(30000)), true);

  // server down: what the client publishes now waits in the leader's stored outbox
  await py.close();
  await srv.stop();
  await waitEvent(b, `(e) => e.type === "reconnecting"`);
  await b.evaluate(async () => {
    for (let i = 6; i <= 10; i++) window.bus.publish(`orders.${i}`, `order ${i}`);
    await window.bus.flush(); // the leader took them
  });
  await a.evaluate(() => window.bus.flush()); // the outbox is in IndexedDB
  await waitEvent(b, `(e) => e.type === "outbox" && e.outbox === 5`);

  const cdp = await context.newCDPSession(a);
  const crashed = new Promise((r) => a.once("crash", r));
  cdp.send("Page.crash").catch(() => {}); // never answered: the session goes with the renderer
  await crashed;
  await b.waitForFunction(() => window.bus.info().role === "leader", null, { timeout: 10000, polling: 50 });
  // b's link now: the same server, the outbox it inherited
  await b.waitForFunction(() => window.bus.raw.linkInfo()?.outbox === 5, null, { timeout: 10000, polling: 50 });

  await srv.restart();
  await b.evaluate(() => window.bus.publish("orders.11", "order 11"));
  assert.equal(await b.evaluate(() => window.bus.link.flush({ timeout: 60000 })), true);
  const info = await b.evaluate(() => window.bus.link.info());
  assert.equal(info.state, "connected");
  assert.equal(info.url, srv.wsUrl);

  py = await natsPy(srv.url);
  t.after(() => py.close());
  const r = await py.call("stream_read", { stream: "ORDERS", subject: "orders.>", expect: 11 });
  assert.deepEqual(r.messages.map((m) => `${m.subject}=${m.data}`),
    Array.from({ length: 11 }, (_, i) => `orders.${i + 1}=order ${i + 1}`));
  assert.equal(r.pending, 0, "no message twice");
  assert.equal(r.stream_messages, 11);

  await b.evaluate(async () => { await window.bus.close(); await window.edgebus.deleteStorage("tabs-link"); });
  assert.deepEqual(errors, []);
  await context.close();
});

test("KV in a client tab: put in b, get in a, a watch in each tab sees the other's writes; compare-and-set is the leader's rule", async () => {
  const { context, pages, errors } = await tabs(2);
  const [a, b] = pages;
  await openAll(pages, "tabs-kv");
  assert.equal(await role(b), "client");
  for (const page of pages) {
    await page.evaluate(async () => {
      window.kv = await window.bus.kv("settings", { history: 5 });
      window.seen = [];
      window.watcher = await window.kv.watch({ include: "updates" });
      (async () => { for await (const e of window.watcher) window.seen.push(`${e.key}=${e.string()}@${e.revision}`); })();
    });
  }
  const put = await b.evaluate(async () => {
    const r1 = await window.kv.put("theme", "dark");
    const r2 = await window.kv.put("lang", "fr");
    let cas;
    try {
      await window.kv.update("theme", "light", r1); // theme is still at r1, whatever lang did
      cas = "ok";
    } catch (e) {
      cas = e.name;
    }
    let stale;
    try {
      await window.kv.create("theme", "x");
      stale = "ok";
    } catch (e) {
      stale = `${e.name}:${e.err_code}`;
    }
    return { r1, r2, cas, stale, keys: (await Array.fromAsync(await window.kv.keys())).sort() };
  });
  assert.deepEqual(put, { r1: 1, r2: 2, cas: "ok", stale: "JetStreamApiError:10071", keys: ["lang", "theme"] });
  assert.equal(await a.evaluate(async () => (await window.kv.get("theme")).string()), "light");
  await a.evaluate(() => window.kv.put("lang", "de"));
  const want = ["theme=dark@1", "lang=fr@2", "theme=light@3", "lang=de@4"];
  for (const page of pages) {
    await page.waitForFunction((n) => window.seen.length >= n, want.length, { timeout: 10000, polling: 50 });
    assert.deepEqual(await page.evaluate(() => window.seen), want);
  }
  const history = await b.evaluate(async () => (await Array.fromAsync(await window.kv.history({ key: "lang" }))).map((e) => e.string()));
  assert.deepEqual(history, ["fr", "de"]);
  for (const page of [b, a]) await page.evaluate(async () => { await window.watcher.stop(); await window.bus.close(); });
  await a.evaluate(() => window.edgebus.deleteStorage("tabs-kv"));
  assert.deepEqual(errors, []);
  await context.close();
});

test("pull fetch and the object store in a client tab", async () => {
  const { context, pages, errors } = await tabs(2);
  const [a, b] = pages;
  await openAll(pages, "tabs-fetch");
  assert.equal(await role(b), "client");
  await a.evaluate(async () => {
    const jsm = await window.bus.jetstreamManager();
    await jsm.streams.add({ name: "S", subjects: ["s.>"], storage: "file" });
    await jsm.consumers.add("S", { durable_name: "c", ack_policy: "explicit" });
    const js = window.bus.jetstream();
    for (let i = 1; i <= 3; i++) await js.publish(`s.${i}`, `m${i}`);
  });
  const fetched = await b.evaluate(async () => {
    const c = await window.bus.jetstream().consumers.get("S", "c");
    const batch = await c.fetch({ max_messages: 2, expires: 2000 });
    const got = [];
    for (const m of batch.messages) {
      got.push(`${m.subject}=${m.string()}#${m.info.streamSequence}`);
      await m.ackAck();
    }
    const next = await c.next({ expires: 2000 });
    got.push(`${next.subject}=${next.string()}`);
    next.ack();
    await window.bus.flush();
    const info = await c.info();
    return { got, pending: info.num_pending, ackPending: info.num_ack_pending };
  });
  assert.deepEqual(fetched, { got: ["s.1=m1#1", "s.2=m2#2", "s.3=m3"], pending: 0, ackPending: 0 });

  // an object larger than one call carries, put in the client, read in both tabs
  const size = 700 * 1024;
  const put = await b.evaluate(async (size) => {
    const os = await window.bus.objm().create("files");
    const data = new Uint8Array(size);
    for (let i = 0; i < size; i++) data[i] = (i * 7) % 251;
    const info = await os.put({ name: "blob.bin" }, data);
    const back = await os.getBlob("blob.bin");
    const list = (await os.list()).map((o) => o.name);
    return { size: info.size, same: back.length === size && back.every((x, i) => x === (i * 7) % 251), list };
  }, size);
  assert.deepEqual(put, { size, same: true, list: ["blob.bin"] });
  const inA = await a.evaluate(async () => {
    const os = await window.bus.objm().open("files");
    const back = await os.getBlob("blob.bin");
    return back.length;
  });
  assert.equal(inA, size);
  for (const page of [b, a]) await page.evaluate(() => window.bus.close());
  await a.evaluate(() => window.edgebus.deleteStorage("tabs-fetch"));
  assert.deepEqual(errors, []);
  await context.close();
});

test("per-subscription interest: a publish no subscriber of a client tab wants never crosses to it; overlapping subscriptions get one copy each; a request nobody serves gets no-responders in every tab", async () => {
  const { context, pages, errors } = await tabs(2);
  const [a, b] = pages;
  await openAll(pages, "tabs-interest");
  assert.equal(await role(b), "client");
  /** Messages the client's connection got from the leader so far (its link's counter). */
  const crossed = () => b.evaluate(() => window.bus.raw.linkInfo().received);
  await b.evaluate(() => {
    window.got = { only: 0, wild: 0, exact: 0, marker: 0 };
    window.subs = {
      only: window.bus.subscribe("b.only", { callback: () => window.got.only++ }),
      wild: window.bus.subscribe("d.>", { callback: () => window.got.wild++ }),
      exact: window.bus.subscribe("d.x", { callback: () => window.got.exact++ }),
      marker: window.bus.subscribe("marker", { callback: () => window.got.marker++ }),
    };
    return window.bus.flush();
  });
  // a request in b round-trips through the leader: its SUBs are in place after it
  await a.evaluate(() => window.bus.subscribe("ping", { callback: (_e, m) => m.respond("pong") }));
  assert.equal(await b.evaluate(async () => (await window.bus.request("ping")).string()), "pong");

  const before = await crossed();
  await a.evaluate(() => {
    for (let i = 0; i < 1000; i++) window.bus.publish("nobody.x", "x");
    window.bus.publish("b.only", "1");
    window.bus.publish("d.x", "1");
    window.bus.publish("marker", "1");
  });
  await b.waitForFunction(() => window.got.marker === 1, null, { timeout: 10000, polling: 20 });
  assert.deepEqual(await b.evaluate(() => window.got), { only: 1, wild: 1, exact: 1, marker: 1 });
  // b.only, d.x (one copy for its two subscriptions) and the marker: not the 1000
  assert.equal(await crossed() - before, 3);

  // once b unsubscribes, b.only stays in the leader's tab
  await b.evaluate(() => { window.subs.only.unsubscribe(); return window.bus.request("ping"); });
  const after = await crossed();
  await a.evaluate(() => {
    for (let i = 0; i < 100; i++) window.bus.publish("b.only", "x");
    window.bus.publish("marker", "2");
  });
  await b.waitForFunction(() => window.got.marker === 2, null, { timeout: 10000, polling: 20 });
  assert.equal(await crossed() - after, 1);
  assert.equal(await b.evaluate(() => window.got.only), 1);

  // nobody subscribes it in any tab: a request fails fast in both
  for (const page of [a, b]) {
    const r = await page.evaluate(() => window.bus.request("nobody.here", "?", { timeout: 5000 }).then(() => "answered", (e) => e.name));
    assert.equal(r, "NoRespondersError");
  }

  for (const page of [b, a]) await page.evaluate(() => window.bus.close());
  await a.evaluate(() => window.edgebus.deleteStorage("tabs-interest"));
  assert.deepEqual(errors, []);
  await context.close();
});

test("after a hand-over the new leader serves the engine calls: KV from a client of the tab that took over", async () => {
  const { context, pages, errors } = await tabs(3);
  const [a, b, c] = pages;
  await openAll(pages, "tabs-takeover");
  assert.deepEqual([await role(a), await role(b), await role(c)], ["leader", "client", "client"]);
  await b.evaluate(async () => { window.kv = await window.bus.kv("k"); await window.kv.put("x", "from b"); });
  await a.close();
  const roles = async () => [await role(b), await role(c)].sort().join(",");
  while ((await roles()) !== "client,leader") await new Promise((r) => setTimeout(r, 50));
  const [leader, client] = (await role(b)) === "leader" ? [b, c] : [c, b];
  const got = await client.evaluate(async () => {
    const kv = await window.bus.kv("k");
    await kv.put("y", "after");
    return [(await kv.get("x")).string(), (await kv.get("y")).string()];
  });
  assert.deepEqual(got, ["from b", "after"]);
  assert.equal(await leader.evaluate(async () => (await (await window.bus.kv("k")).get("y")).string()), "after");
  for (const page of [client, leader]) await page.evaluate(() => window.bus.close());
  await b.evaluate(() => window.edgebus.deleteStorage("tabs-takeover"));
  assert.deepEqual(errors, []);
  await context.close();
});
