// Storage pressure and store limits in the page (issue 12, "Storage pressure"), in headless
// Chromium:
//  - the origin's quota made small through the DevTools protocol
//    (Storage.overrideQuotaForOrigin): a publish and a KV put the browser refuses to store
//    reject with StorageQuotaError, nothing refused is acknowledged, the stream in memory is
//    the stream a reopen reads back, and once there is room again the bus carries on;
//  - bus.storage() reports the browser's usage and quota, open({ persist }) asks for
//    persistence;
//  - open({ maxFileStore, maxMemoryStore }): nats-server's max_file_store/max_memory_store,
//    with its errors (10047 / 10028 at create, 10023 on the publish past the limit).
// Needs `bash web/build.sh`.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { CHROMIUM, CHROMIUM_ARGS, PACKAGE_PAGE, requirePackage, serveOn, STORAGE } from "./page.mjs";

let httpServer;
let context;
let page;
let base;
let cdp;
let profile;

before(async () => {
  requirePackage();
  ({ server: httpServer, base } = await serveOn({ "/storage.html": PACKAGE_PAGE }));
  // A profile on disk: an off-the-record context (launch()'s) keeps IndexedDB in memory,
  // where usage does not grow and no quota is ever met. StaticStorageQuota off: Chromium
  // otherwise reports usage + 10 GiB as the quota (whatever it enforces), so that
  // estimate() tells nothing about the browsing mode.
  profile = mkdtempSync(path.join(os.tmpdir(), "edgebus-quota-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS, "--disable-features=StaticStorageQuota"],
  });
  page = context.pages()[0] ?? (await context.newPage());
  await page.goto(`${base}/storage.html`);
  await page.waitForFunction(() => window.ready === true);
  cdp = await context.newCDPSession(page);
});

after(async () => {
  if (context) await context.close();
  if (httpServer) await new Promise((r) => httpServer.close(r));
  if (profile) rmSync(profile, { recursive: true, force: true });
});

/** Sets the origin's quota (bytes); `null` gives the browser's own back. */
async function quota(bytes) {
  const params = bytes === null ? { origin: base } : { origin: base, quotaSize: bytes };
  await cdp.send("Storage.overrideQuotaForOrigin", params);
}

test("quota exhausted: refused writes reject with StorageQuotaError, nothing refused is acknowledged or kept", async () => {
  // room for the bus and some 16 KiB messages, not for 400 of them (Chromium reads the
  // quota when IndexedDB opens the origin's store: it is set before the bus opens)
  // OPFS: Chromium grants a sync access handle's file room in steps of at least 1 MiB, so
  // its store needs a few MiB to open at all
  const small = STORAGE === "opfs" ? 4 * 1024 * 1024 : 512 * 1024;
  await quota(small);
  const start = await page.evaluate(async (storage) => {
    const { open, deleteStorage } = window.edgebus;
    await deleteStorage("quota-1");
    const bus = await open({ name: "quota-1", storage, persist: true });
    const jsm = await bus.jetstreamManager();
    await jsm.streams.add({ name: "Q", subjects: ["q.>"] });
    window.kv = await bus.kv("settings");
    await window.kv.put("theme", "dark");
    window.bus = bus;
    return bus.storage();
  }, STORAGE);
  assert.ok(start.usage > 0 && start.usage < small, JSON.stringify(start));
  assert.equal(start.quota, small, "bus.storage() reports the origin's quota");
  assert.equal(typeof start.persisted, "boolean");

  const filled = await page.evaluate(async () => {
    const { StorageQuotaError, JetStreamApiError } = window.edgebus;
    const bus = window.bus;
    const js = bus.jetstream();
    const acked = [];
    let error = null;
    for (let i = 1; i <= 400 && !error; i++) {
      try {
        // random bytes: Chromium compresses what IndexedDB stores
        acked.push((await js.publish("q.x", crypto.getRandomValues(new Uint8Array(16 * 1024)))).seq);
      } catch (e) {
        error = { name: e.name, quota: e instanceof StorageQuotaError, api: e instanceof JetStreamApiError, code: e.code, err_code: e.err_code, message: e.message };
      }
    }
    let kvError = null;
    try {
      const big = new Uint8Array(512 * 1024);
      for (let at = 0; at < big.length; at += 65536) crypto.getRandomValues(big.subarray(at, at + 65536));
      await window.kv.put("theme", big);
    } catch (e) {
      kvError = { name: e.name, err_code: e.err_code };
    }
    // publishes made together go in one commit: refused together
    const together = await Promise.allSettled(
      Array.from({ length: 20 }, () => js.publish("q.x", crypto.getRandomValues(new Uint8Array(16 * 1024)))),
    );
    const batch = [...new Set(together.map((r) => (r.status === "rejected" ? r.reason.name : "acked")))];
    const info = await (await bus.jetstreamManager()).streams.info("Q");
    const theme = (await window.kv.get("theme")).string();
    return { acked, error, kvError, batch, state: { messages: info.state.messages, last: info.state.last_seq }, theme };
  });
  assert.ok(filled.acked.length > 0 && filled.acked.length < 400, `${filled.acked.length} acked before the quota`);
  assert.deepEqual(filled.acked, filled.acked.map((_, i) => i + 1), "acks are 1..n");
  assert.deepEqual(filled.error, {
    name: "StorageQuotaError",
    quota: true,
    api: true,
    code: 503,
    err_code: 10023,
    message: `insufficient resources: the browser refused to store (${STORAGE === "opfs" ? "OPFS" : "IndexedDB"} quota exceeded)`,
  });
  assert.deepEqual(filled.kvError, { name: "StorageQuotaError", err_code: 10023 });
  assert.deepEqual(filled.batch, ["StorageQuotaError"], "every publish of the refused commit is rejected");
  const n = filled.acked.length;
  assert.deepEqual(filled.state, { messages: n, last: n }, "the stream in memory holds what was acknowledged, no more");
  assert.equal(filled.theme, "dark", "the refused KV put left the value it replaced");

  // room again: the bus carries on where the acks left it, and a reopen reads the same
  await quota(null);
  const after = await page.evaluate(async (storage) => {
    const { open } = window.edgebus;
    const ack = await window.bus.jetstream().publish("q.x", "after");
    await window.kv.put("theme", "light");
    await window.bus.close();
    const bus = await open({ name: "quota-1", storage });
    const jsm = await bus.jetstreamManager();
    const info = await jsm.streams.info("Q");
    const last = await jsm.streams.getMessage("Q", { seq: info.state.last_seq });
    const theme = (await (await bus.kv("settings")).get("theme")).string();
    await bus.close();
    return { seq: ack.seq, messages: info.state.messages, last: info.state.last_seq, data: last.string(), theme };
  }, STORAGE);
  assert.deepEqual(after, { seq: n + 1, messages: n + 1, last: n + 1, data: "after", theme: "light" });
});

test("maxFileStore / maxMemoryStore: nats-server's store limits with its errors", async () => {
  const got = await page.evaluate(async () => {
    const { open, StorageQuotaError, JetStreamApiError } = window.edgebus;
    const bus = await open({ name: "limits-1", maxFileStore: 10_000, maxMemoryStore: 5_000 });
    const jsm = await bus.jetstreamManager();
    const js = bus.jetstream();
    const fail = async (f) => {
      try {
        await f();
        return "no error";
      } catch (e) {
        return { name: e.name, api: e instanceof JetStreamApiError, code: e.code, err_code: e.err_code, message: e.message };
      }
    };
    const out = {};
    out.fileReservation = await fail(() => jsm.streams.add({ name: "BIG", subjects: ["big"], max_bytes: 20_000 }));
    out.memoryReservation = await fail(() => jsm.streams.add({ name: "MEM", subjects: ["mem"], storage: "memory", max_bytes: 8_000 }));
    await jsm.streams.add({ name: "L", subjects: ["l.>"] });
    let stored = 0;
    let refusal = null;
    for (let i = 0; i < 50 && !refusal; i++) {
      try {
        await js.publish("l.x", new Uint8Array(1000));
        stored++;
      } catch (e) {
        refusal = { name: e.name, quota: e instanceof StorageQuotaError, code: e.code, err_code: e.err_code, message: e.message };
      }
    }
    out.stored = stored;
    out.refusal = refusal;
    out.messages = (await jsm.streams.info("L")).state.messages;
    await bus.close();
    return out;
  });
  assert.deepEqual(got.fileReservation, {
    name: "JetStreamApiError", api: true, code: 500, err_code: 10047, message: "insufficient storage resources available",
  });
  assert.deepEqual(got.memoryReservation, {
    name: "JetStreamApiError", api: true, code: 500, err_code: 10028, message: "insufficient memory resources available",
  });
  assert.ok(got.stored >= 9 && got.stored <= 11, `${got.stored} 1000-byte messages under a 10000-byte limit`);
  assert.deepEqual(got.refusal, { name: "StorageQuotaError", quota: true, code: 503, err_code: 10023, message: "insufficient resources" });
  assert.equal(got.messages, got.stored);
});
