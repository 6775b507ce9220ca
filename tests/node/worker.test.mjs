// The package in a module Web Worker (headless Chromium): the worker imports edgebus as an
// app's worker would, opens a bus with memory storage and with IndexedDB (which workers
// have), and walks the API (fixtures/exercise.js): pub/sub, request/reply, a JetStream
// publish with dedup, a pull fetch, KV put/get, and for IndexedDB a reopen.
// Needs `bash web/build.sh`.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { REPO } from "./server.mjs";
import { EXPECTED } from "./fixtures/exercise.js";
import { launch, requirePackage, serveOn } from "./page.mjs";

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head>
<body><script>
  // One worker per run; resolves with what it posted back, rejects on a load error.
  window.runWorker = (storage, name) => new Promise((resolve, reject) => {
    const w = new Worker("/tests/node/worker/bus-worker.js", { type: "module" });
    w.onmessage = (e) => { w.terminate(); resolve(e.data); };
    w.onerror = (e) => { w.terminate(); reject(new Error("worker error: " + (e.message || "failed to load"))); };
    w.postMessage({ storage, name });
  });
</script></body></html>`;

let httpServer;
let browser;
let page;
let pageErrors = [];

before(async () => {
  requirePackage();
  // The repository root, so the worker script and the package are both same-origin.
  const { server, base } = await serveOn({ "/worker-test.html": PAGE }, REPO);
  httpServer = server;
  ({ browser, page, errors: pageErrors } = await launch());
  await page.goto(`${base}/worker-test.html`);
});

after(async () => {
  if (browser) await browser.close();
  if (httpServer) await new Promise((r) => httpServer.close(r));
});

test("a module worker runs a memory bus: pub/sub, request/reply, JetStream, KV", async () => {
  const r = await page.evaluate(() => window.runWorker("memory", "worker-mem"));
  assert.equal(r.ok, true, r.error);
  const { storage, ...rest } = r.result;
  assert.equal(storage, "memory");
  assert.deepEqual(rest, EXPECTED);
  assert.deepEqual(pageErrors, []);
});

test("a module worker runs an IndexedDB bus, and a reopened bus has the stream and KV back", async () => {
  const r = await page.evaluate(() => window.runWorker("indexeddb", "worker-idb"));
  assert.equal(r.ok, true, r.error);
  assert.equal(r.indexedDB, true);
  const { storage, reopened, ...rest } = r.result;
  assert.equal(storage, "indexeddb");
  assert.deepEqual(rest, EXPECTED);
  assert.deepEqual(reopened, { messages: 2, theme: "dark" });
  assert.deepEqual(pageErrors, []);
});
