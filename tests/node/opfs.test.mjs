// What only the OPFS store has (the shared suites run for it through *.opfs.test.mjs), in
// headless Chromium:
//  - garbage after the last whole record (a torn or corrupt tail) is dropped on open, every
//    acknowledged message is kept, and later writes land where a reopen reads them;
//  - the tab's renderer crashing (CDP Page.crash) with 256 publishes in flight: every
//    acknowledged message is there after reopening in a new tab;
//  - the log is compacted as it grows, and the compacted store reads back the same;
//  - storage "auto" picks OPFS in Chromium.
// Needs `bash web/build.sh`.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch, PACKAGE_PAGE, requirePackage, serveOn } from "./page.mjs";

let httpServer;
let browser;
let base;

before(async () => {
  requirePackage();
  ({ server: httpServer, base } = await serveOn({ "/opfs-test.html": PACKAGE_PAGE }));
  ({ browser } = await launch());
});

after(async () => {
  if (browser) await browser.close();
  if (httpServer) await new Promise((r) => httpServer.close(r));
});

async function newTab(context) {
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${base}/opfs-test.html`);
  await page.waitForFunction(() => window.ready === true);
  return { page, errors };
}

/** Every message of stream `stream` in bus `name`, by sequence (opens and closes the bus). */
function readBack(page, name, stream) {
  return page.evaluate(async ({ name, stream }) => {
    const bus = await window.edgebus.open({ name, storage: "opfs" });
    const jsm = await bus.jetstreamManager();
    const info = await jsm.streams.info(stream);
    const stored = {};
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      try {
        stored[seq] = (await jsm.streams.getMessage(stream, { seq })).string();
      } catch {
        // a gap
      }
    }
    await bus.close();
    return { messages: info.state.messages, last: info.state.last_seq, stored };
  }, { name, stream });
}

/** Sizes of the store's files (the bus's name is hex-encoded in them). */
function fileSizes(page) {
  return page.evaluate(async () => {
    const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle("edgebus");
    const sizes = {};
    for await (const [name, handle] of dir.entries()) sizes[name] = (await handle.getFile()).size;
    return sizes;
  });
}

test("opfs: a torn or corrupt tail is dropped on open; acknowledged messages are kept and later writes read back", async () => {
  const context = await browser.newContext();
  const { page, errors } = await newTab(context);
  const acked = await page.evaluate(async () => {
    const { open, deleteStorage } = window.edgebus;
    await deleteStorage("torn");
    const bus = await open({ name: "torn", storage: "opfs" });
    const jsm = await bus.jetstreamManager();
    await jsm.streams.add({ name: "T", subjects: ["t.>"] });
    const js = bus.jetstream();
    const acks = [];
    for (let i = 1; i <= 20; i++) acks.push((await js.publish("t.x", `m${i}`)).seq);
    await Promise.all(Array.from({ length: 30 }, (_, i) => js.publish("t.y", `n${i}`)));
    await bus.close();
    return acks;
  });
  assert.deepEqual(acked, Array.from({ length: 20 }, (_, i) => i + 1));
  const sizes = await fileSizes(page);
  // garbage after the records of both files, as a write torn by a crash would leave: a
  // plausible frame header (length, checksum) and then noise
  await page.evaluate(async () => {
    const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle("edgebus");
    for await (const [, handle] of dir.entries()) {
      const size = (await handle.getFile()).size;
      const w = await handle.createWritable({ keepExistingData: true });
      const junk = new Uint8Array(777);
      new DataView(junk.buffer).setUint32(0, 500, true);
      for (let i = 8; i < junk.length; i++) junk[i] = (i * 31) & 0xff;
      await w.write({ type: "write", position: size, data: junk });
      await w.close();
    }
  });
  const grown = await fileSizes(page);
  for (const [f, size] of Object.entries(sizes)) assert.equal(grown[f], size + 777, `${f} got the garbage`);

  const back = await readBack(page, "torn", "T");
  assert.equal(back.messages, 50);
  for (let i = 1; i <= 20; i++) assert.equal(back.stored[i], `m${i}`);
  // the tail was cut off: a write after the reopen is read back by the next one
  await page.evaluate(async () => {
    const bus = await window.edgebus.open({ name: "torn", storage: "opfs" });
    await bus.jetstream().publish("t.z", "after the repair");
    await bus.close();
  });
  const again = await readBack(page, "torn", "T");
  assert.equal(again.messages, 51);
  assert.equal(again.stored[51], "after the repair");
  await page.evaluate(() => window.edgebus.deleteStorage("torn"));
  assert.deepEqual(errors, []);
  await context.close();
});

test("opfs: the renderer crashes with 256 publishes in flight; every acknowledged message is there after reopening", async () => {
  const context = await browser.newContext();
  const { page } = await newTab(context);
  const acked = [];
  await page.exposeFunction("reportAck", (seq, data) => acked.push({ seq, data }));
  await page.evaluate(async () => {
    const { open, deleteStorage } = window.edgebus;
    await deleteStorage("crash");
    window.bus = await open({ name: "crash", storage: "opfs" });
    const jsm = await window.bus.jetstreamManager();
    await jsm.streams.add({ name: "C", subjects: ["c.>"] });
    const js = window.bus.jetstream();
    let next = 0;
    // 256 publishers, each publishing again as soon as its ack came
    for (let w = 0; w < 256; w++) {
      (async () => {
        for (;;) {
          const data = `d${next++}`;
          const ack = await js.publish("c.x", data);
          await window.reportAck(ack.seq, data);
        }
      })();
    }
  });
  while (acked.length < 3000) await new Promise((r) => setTimeout(r, 20));
  const cdp = await context.newCDPSession(page);
  const crashed = new Promise((r) => page.once("crash", r));
  cdp.send("Page.crash").catch(() => {}); // never answered: the session goes with the renderer
  await crashed;
  const seen = acked.length;

  const { page: fresh, errors } = await newTab(context);
  const back = await readBack(fresh, "crash", "C");
  const missing = acked.filter(({ seq, data }) => back.stored[seq] !== data);
  assert.deepEqual(missing.slice(0, 5), [], `${missing.length} of ${acked.length} acknowledged messages lost`);
  assert.ok(back.messages >= seen, `${back.messages} stored, ${seen} acknowledged`);
  await fresh.evaluate(() => window.edgebus.deleteStorage("crash"));
  assert.deepEqual(errors, []);
  await context.close();
});

test("opfs: the log is compacted as it grows and reads back the same; storage \"auto\" is OPFS here", async () => {
  const context = await browser.newContext();
  const { page, errors } = await newTab(context);
  const r = await page.evaluate(async () => {
    const { open, deleteStorage } = window.edgebus;
    await deleteStorage("compact");
    const bus = await open({ name: "compact", storage: "auto" });
    const storage = bus.info().storage;
    const kv = await bus.kv("big", { history: 1 });
    const value = new Uint8Array(8 * 1024);
    // 2500 puts of 8 KiB over one key: 20 MiB written, one value live
    for (let i = 0; i < 2500; i++) {
      value[0] = i & 0xff;
      value[1] = i >> 8;
      await kv.put("k", value);
    }
    await bus.close();
    return { storage };
  });
  assert.equal(r.storage, "opfs");
  const sizes = await fileSizes(page);
  const total = Object.values(sizes).reduce((a, b) => a + b, 0);
  assert.ok(total < 18 * 1024 * 1024, `compacted: ${JSON.stringify(sizes)} (20 MiB written)`);
  const last = await page.evaluate(async () => {
    const bus = await window.edgebus.open({ name: "compact", storage: "opfs" });
    const e = await (await bus.kv("big")).get("k");
    const out = { n: e.value[0] | (e.value[1] << 8), revision: e.revision, len: e.value.length };
    await bus.close();
    await window.edgebus.deleteStorage("compact");
    return out;
  });
  assert.deepEqual(last, { n: 2499, revision: 2500, len: 8192 });
  assert.deepEqual(errors, []);
  await context.close();
});
