// The package in a module Web Worker (headless Chromium): the worker imports edgebus as an
// app's worker would, opens a bus with memory storage and with IndexedDB (which workers
// have), and walks the API (fixtures/exercise.js): pub/sub, request/reply, a JetStream
// publish with dedup, a pull fetch, KV put/get, and for IndexedDB a reopen.
// Needs `bash web/build.sh`.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { REPO } from "./server.mjs";
import { EXPECTED } from "./fixtures/exercise.js";
import { serve } from "../../web/serve.mjs";

const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

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
const pageErrors = [];

before(async () => {
  assert.ok(existsSync(path.join(REPO, "web", "dist", "index.js")), "web/dist is missing: run bash web/build.sh");
  // The repository root, so the worker script and the package are both same-origin.
  httpServer = await serve({ root: REPO, port: 0, pages: { "/worker-test.html": PAGE } });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  page = await browser.newPage();
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  await page.goto(`http://127.0.0.1:${httpServer.address().port}/worker-test.html`);
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
