// Several tabs of one origin and one bus name with IndexedDB storage: the store has exactly
// one writer (a Web Lock held for the owner's life), so no tab's acknowledged message is ever
// overwritten by another's. Needs `bash web/build.sh` first (tests/setup.sh runs it).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch, PACKAGE_PAGE, requirePackage, serveOn } from "./page.mjs";

const PER_TAB = 500;

let httpServer;
let browser;
let base;

before(async () => {
  requirePackage();
  ({ server: httpServer, base } = await serveOn({ "/tabs-test.html": PACKAGE_PAGE }));
  ({ browser } = await launch());
});

after(async () => {
  if (browser) await browser.close();
  if (httpServer) await new Promise((r) => httpServer.close(r));
});

/** `count` tabs of one origin (one browser context: they share IndexedDB and Web Locks). */
async function tabs(count) {
  const context = await browser.newContext();
  const pages = [];
  const errors = [];
  for (let i = 0; i < count; i++) {
    const page = await context.newPage();
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(`${base}/tabs-test.html`);
    await page.waitForFunction(() => window.ready === true);
    pages.push(page);
  }
  return { context, pages, errors };
}

async function reload(page) {
  await page.reload();
  await page.waitForFunction(() => window.ready === true);
}

/** Opens bus `name` in the page as `window.bus`; resolves with the error's name if it failed. */
function openIn(page, name) {
  return page.evaluate(async (name) => {
    try {
      window.bus = await window.edgebus.open({ name, storage: "indexeddb" });
      return null;
    } catch (e) {
      window.openError = { name: e.name, message: e.message };
      return e.name;
    }
  }, name);
}

/** Every message of stream `S` in the page's bus, as `{ [seq]: payload }`. */
function readStream(page) {
  return page.evaluate(async () => {
    const jsm = await window.bus.jetstreamManager();
    const total = (await jsm.streams.info("S")).state.messages;
    await jsm.consumers.add("S", { durable_name: "check", ack_policy: "none" });
    const c = await window.bus.jetstream().consumers.get("S", "check");
    const stored = {};
    let got = 0;
    while (got < total) {
      const batch = await c.fetch({ max_messages: total - got, expires: 2000 });
      if (batch.messages.length === 0) break;
      for (const m of batch.messages) stored[m.info.streamSequence] = m.string();
      got += batch.messages.length;
    }
    return { total, stored };
  });
}

test("two tabs publishing into one IndexedDB stream: every acknowledged message survives reloading both", async () => {
  const { context, pages, errors } = await tabs(2);
  const [a, b] = pages;
  await a.evaluate(() => window.edgebus.deleteStorage("tabs-two"));
  // both open before either writes: with two writers, each would hold its own copy of the
  // stream and overwrite the other's blocks
  const opened = await Promise.all(pages.map((p) => openIn(p, "tabs-two")));
  const published = await Promise.all(pages.map((p, tab) => p.evaluate(async ({ tab, n }) => {
    if (!window.bus) return [];
    const jsm = await window.bus.jetstreamManager();
    await jsm.streams.add({ name: "S", subjects: ["s.>"], storage: "file" });
    const js = window.bus.jetstream();
    const acks = [];
    for (let i = 0; i < n; i++) {
      const data = `tab${tab}-${i}`;
      const ack = await js.publish(`s.${tab}`, data);
      acks.push({ seq: ack.seq, data });
    }
    return acks;
  }, { tab, n: PER_TAB })));

  const acked = published.flat();
  for (const p of pages) await reload(p);
  assert.equal(await openIn(a, "tabs-two"), null);
  const { total, stored } = await readStream(a);
  const missing = acked.filter(({ seq, data }) => stored[seq] !== data);
  assert.deepEqual(missing.slice(0, 5), [], `${missing.length} of ${acked.length} acknowledged messages lost`);
  assert.equal(total, acked.length);
  // exactly one owner; the other was refused with the typed error, not silently let in
  assert.equal(opened.filter((e) => e === null).length, 1, `open results: ${JSON.stringify(opened)}`);
  assert.deepEqual(opened.filter((e) => e !== null), ["StorageLockedError"]);
  assert.equal(acked.length, PER_TAB);
  await a.evaluate(async () => { await window.bus.close(); await window.edgebus.deleteStorage("tabs-two"); });
  assert.deepEqual(errors, []);
  await context.close();
});

test("the store passes to the next tab when its owner closes the bus or the owner's tab goes away", async () => {
  const { context, pages, errors } = await tabs(3);
  const [a, b, c] = pages;
  await a.evaluate(() => window.edgebus.deleteStorage("tabs-handover"));
  assert.equal(await openIn(a, "tabs-handover"), null);
  const seqA = await a.evaluate(async () => {
    const jsm = await window.bus.jetstreamManager();
    await jsm.streams.add({ name: "S", subjects: ["s.>"], storage: "file" });
    return (await window.bus.jetstream().publish("s.a", "from a")).seq;
  });
  assert.equal(await openIn(b, "tabs-handover"), "StorageLockedError");
  const message = await b.evaluate(() => window.openError.message);
  assert.match(message, /tabs-handover.*another tab or worker/);

  // a polite close frees the store at once
  await a.evaluate(() => window.bus.close());
  assert.equal(await openIn(b, "tabs-handover"), null);
  const seqB = await b.evaluate(async () => (await window.bus.jetstream().publish("s.b", "from b")).seq);
  assert.equal(await openIn(c, "tabs-handover"), "StorageLockedError");

  // a tab that goes away without closing its bus frees it too
  await b.close();
  assert.equal(await openIn(c, "tabs-handover"), null);
  const { stored } = await readStream(c);
  assert.deepEqual(stored, { [seqA]: "from a", [seqB]: "from b" });
  await c.evaluate(async () => { await window.bus.close(); await window.edgebus.deleteStorage("tabs-handover"); });
  assert.deepEqual(errors, []);
  await context.close();
});

test("the owner's tab crashes mid-stream: the next tab takes the store with every acknowledged message", async () => {
  const { context, pages } = await tabs(2);
  const [a, b] = pages;
  await a.evaluate(() => window.edgebus.deleteStorage("tabs-crash"));
  assert.equal(await openIn(a, "tabs-crash"), null);
  assert.equal(await openIn(b, "tabs-crash"), "StorageLockedError");
  // acknowledged messages are reported back as they come; the rest keep publishing when the
  // renderer dies
  const acked = [];
  await a.exposeFunction("reportAck", (seq, data) => acked.push({ seq, data }));
  await a.evaluate(async () => {
    const jsm = await window.bus.jetstreamManager();
    await jsm.streams.add({ name: "S", subjects: ["s.>"], storage: "file" });
    const js = window.bus.jetstream();
    (async () => {
      for (let i = 0; ; i++) {
        const data = `a-${i}`;
        const ack = await js.publish("s.a", data);
        await window.reportAck(ack.seq, data);
      }
    })();
    // some acknowledged before the crash
    while ((await window.bus.jetstreamManager().then((m) => m.streams.info("S"))).state.messages < 100) {
      await new Promise((r) => setTimeout(r, 10));
    }
  });
  const cdp = await context.newCDPSession(a);
  const crashed = new Promise((r) => a.once("crash", r));
  cdp.send("Page.crash").catch(() => {}); // never answered: the session goes with the renderer
  await crashed;
  assert.ok(acked.length >= 100, `only ${acked.length} acknowledged before the crash`);

  // the crashed tab's lock is freed with its process; b may have to ask more than once
  let opened = await openIn(b, "tabs-crash");
  while (opened === "StorageLockedError") opened = await openIn(b, "tabs-crash");
  assert.equal(opened, null);
  const { stored } = await readStream(b);
  const missing = acked.filter(({ seq, data }) => stored[seq] !== data);
  assert.deepEqual(missing.slice(0, 5), [], `${missing.length} of ${acked.length} acknowledged messages lost`);
  await b.evaluate(async () => { await window.bus.close(); await window.edgebus.deleteStorage("tabs-crash"); });
  await context.close();
});

test("without navigator.locks, IndexedDB storage is refused (memory storage still opens)", async () => {
  const { context, pages, errors } = await tabs(1);
  const r = await pages[0].evaluate(async () => {
    Object.defineProperty(Navigator.prototype, "locks", { get: () => undefined, configurable: true });
    const out = {};
    try {
      await window.edgebus.open({ name: "tabs-nolocks", storage: "indexeddb" });
      out.idb = "opened";
    } catch (e) {
      out.idb = e.name;
      out.message = e.message;
    }
    const mem = await window.edgebus.open({ name: "tabs-nolocks", storage: "memory" });
    out.memory = mem.info().storage;
    await mem.close();
    return out;
  });
  assert.equal(r.idb, "StorageError");
  assert.match(r.message, /navigator\.locks/);
  assert.equal(r.memory, "memory");
  assert.deepEqual(errors, []);
  await context.close();
});
