// The package's small entry point, `edgebus/core` (web/dist/core.js over web/pkg-core/, the
// wasm module built without JetStream, KV and the object store), in headless Chromium:
//  (a) the page loads the core module, never the full one, nor the package's JetStream, KV and
//      object-store modules, and the entry exports no JetStream, KV or object-store API;
//  (b) core NATS in the page: subjects with wildcards, a queue group, request/reply;
//  (c) the link to the real server: a nats-py publish on an imported subject reaches the page,
//      a page request on an exported subject is answered by a Python responder, and a Python
//      request is answered by a page subscriber.
// Needs `bash web/build.sh` and the release server (tests/setup.sh does both).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import path from "node:path";
import { linkCarriesBothWays } from "./linkcheck.mjs";
import { launch, serveOn, WEB } from "./page.mjs";

const CORE_PAGE = `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head>
<body><script type="module">
  import * as edgebus from "/dist/core.js";
  window.edgebus = edgebus;
  window.ready = true;
</script></body></html>`;

let httpServer;
let browser;
let page;
let base;
let pageErrors = [];

before(async () => {
  assert.ok(existsSync(path.join(WEB, "dist", "core.js")) && existsSync(path.join(WEB, "pkg-core", "edgebus_wasm_bg.wasm")),
    "web/dist/core.js and web/pkg-core are missing: run bash web/build.sh");
  // the same loopback origin as the server (Chromium's local network access checks)
  ({ server: httpServer, base } = await serveOn({ "/core-test.html": CORE_PAGE }));
  ({ browser, page, errors: pageErrors } = await launch());
});

after(async () => {
  if (browser) await browser.close();
  if (httpServer) await new Promise((r) => httpServer.close(r));
});

async function open() {
  await page.goto(`${base}/core-test.html`);
  await page.waitForFunction(() => window.ready === true);
}

test("edgebus/core loads the core-only module and exports no JetStream, KV or object store", async () => {
  await open();
  const seen = await page.evaluate(async () => {
    const bus = await window.edgebus.open({ name: "core-a" });
    const info = bus.info();
    let jetstream = "";
    try {
      bus.jetstream();
    } catch (e) {
      jetstream = e.message;
    }
    await bus.close();
    let stored = "";
    try {
      await window.edgebus.open({ name: "core-a", storage: "indexeddb" });
    } catch (e) {
      stored = `${e instanceof window.edgebus.InvalidArgumentError}: ${e.message}`;
    }
    const paths = performance.getEntriesByType("resource").map((e) => new URL(e.name).pathname);
    const wasm = paths.filter((p) => p.endsWith(".wasm"));
    const scripts = paths.filter((p) => /\/(jetstream|kv|obj|push)\.js$/.test(p));
    const e = window.edgebus;
    return { wasm, scripts, info, jetstream, stored, missing: ["JetStreamManager", "JetStreamClient", "KV", "Objm", "ObjectStore"].filter((k) => !(k in e)) };
  });
  assert.deepEqual(seen.wasm, ["/pkg-core/edgebus_wasm_bg.wasm"]);
  // the JetStream, KV and object-store modules stay unloaded; asking for them says why
  assert.deepEqual(seen.scripts, []);
  assert.match(seen.jetstream, /edgebus\/core has no JetStream/);
  // nothing is stored without JetStream's store: asking for IndexedDB is refused, not ignored
  assert.equal(seen.stored, 'true: storage "indexeddb": only "memory" in edgebus/core');
  assert.equal(seen.info.storage, "memory");
  assert.equal(seen.info.role, "alone");
  assert.deepEqual(seen.missing, ["JetStreamManager", "JetStreamClient", "KV", "Objm", "ObjectStore"]);
  assert.deepEqual(pageErrors, []);
});

test("edgebus/core: pub/sub with wildcards, a queue group, request/reply in the page", async () => {
  await open();
  const r = await page.evaluate(async () => {
    const { open, headers, NoRespondersError } = window.edgebus;
    const bus = await open({ name: "core-b" });
    const got = [];
    bus.subscribe("orders.*", { callback: (_e, m) => got.push(`*:${m.subject}=${m.string()}`) });
    bus.subscribe("orders.>", { callback: (_e, m) => got.push(`>:${m.subject}=${m.string()}:${m.headers?.get("x-k") ?? ""}`) });
    const queue = [];
    for (const name of ["q1", "q2"]) bus.subscribe("work", { queue: "workers", callback: () => queue.push(name) });
    bus.subscribe("svc.echo", { callback: (_e, m) => m.respond(`echo:${m.string()}`) });
    const h = headers();
    h.set("X-K", "v");
    bus.publish("orders.1", "a");
    bus.publish("orders.eu.2", "b", { headers: h });
    for (let i = 0; i < 10; i++) bus.publish("work", String(i));
    const reply = (await bus.request("svc.echo", "hi", { timeout: 5000 })).string();
    let noResponders = null;
    try {
      await bus.request("svc.none", "x", { timeout: 5000 });
    } catch (e) {
      noResponders = e instanceof NoRespondersError;
    }
    await bus.flush();
    await bus.close();
    return { got, queue: queue.length, reply, noResponders };
  });
  assert.deepEqual(r.got.sort(), ["*:orders.1=a", ">:orders.1=a:", ">:orders.eu.2=b:v"]);
  assert.equal(r.queue, 10);
  assert.equal(r.reply, "echo:hi");
  assert.equal(r.noResponders, true);
  assert.deepEqual(pageErrors, []);
});

test("edgebus/core: the link to the server carries publishes and requests both ways", (t) =>
  linkCarriesBothWays(t, { page, open, openOptions: { name: "core-c" }, pageErrors }));
