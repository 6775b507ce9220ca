// One set of KV and object-store scenarios (fixtures/kvobj-scenarios.js), run twice: against
// edgebus-server with the official clients (@nats-io/kv and @nats-io/obj over
// @nats-io/transport-node), whose behaviour defines the rules, and against the page's own
// API in headless Chromium (the core's KV and object store in WebAssembly). Then objects
// put in a page with IndexedDB storage must come back after a reload. Needs
// `cargo build --release -p edgebus-server` and `bash web/build.sh`.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { connect, nuid } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { Objm } from "@nats-io/obj";
import { startServer } from "./server.mjs";
import { launch, PACKAGE_PAGE, requirePackage, serveOn, STORAGES } from "./page.mjs";
import { SCENARIOS, PERSIST, pattern } from "./fixtures/kvobj-scenarios.js";

const SOURCE = readFileSync(new URL("./fixtures/kvobj-scenarios.js", import.meta.url), "utf8");

let server;
let nc;
let httpServer;
let browser;
let page;
let pageErrors = [];
const results = { server: {}, page: {} };

before(async () => {
  requirePackage();
  server = await startServer("", { jetstream: true });
  nc = await connect({ servers: server.url, reconnect: false, timeout: 5000 });
  let base;
  ({ server: httpServer, base } = await serveOn({ "/kvobj-test.html": PACKAGE_PAGE }));
  ({ browser, page, errors: pageErrors } = await launch());
  await page.goto(`${base}/kvobj-test.html`);
  await page.waitForFunction(() => window.ready === true);
});

after(async () => {
  if (browser) await browser.close();
  if (httpServer) await new Promise((r) => httpServer.close(r));
  if (nc && !nc.isClosed()) await nc.close().catch(() => {});
  if (server) await server.stop();
});

/** The scenario's host on the server: the official clients. */
function serverHost() {
  const kvm = new Kvm(nc);
  const objm = new Objm(nc);
  return {
    name: (p) => `${p}_${nuid.next().slice(-10).toLowerCase()}`,
    kv: (name, opts) => kvm.create(name, opts),
    os: (name, opts) => objm.create(name, opts),
  };
}

/** Runs scenario `name` (or the persistence step `step`) in the page, on a fresh bus. */
function inPage(args) {
  return page.evaluate(async ({ src, scenario, step, bucket, storage, busName }) => {
    const mod = await import(URL.createObjectURL(new Blob([src], { type: "text/javascript" })));
    const { open } = window.edgebus;
    const bus = await open({ name: busName, storage });
    let n = 0;
    const h = {
      name: (p) => `${p}_${++n}`,
      kv: (name, opts) => bus.kv(name, opts),
      os: (name, opts) => bus.objm().create(name, opts),
    };
    try {
      return scenario ? await mod.SCENARIOS[scenario](h) : await mod.PERSIST[step](h, bucket);
    } finally {
      await bus.close();
    }
  }, { src: SOURCE, storage: "memory", busName: "kvobj", ...args });
}

for (const name of Object.keys(SCENARIOS)) {
  test(`server (official clients): ${name}`, async () => {
    results.server[name] = await SCENARIOS[name](serverHost());
  });
  test(`page: ${name}`, async () => {
    results.page[name] = await inPage({ scenario: name });
    assert.deepEqual(pageErrors, []);
  });
}

test("both hosts reject a watch key with > not last", () => {
  const name = "kv: watch (current values, then updates; history; > only last)";
  for (const host of ["server", "page"]) {
    const message = results[host][name]?.badWatch ?? "";
    assert.doesNotMatch(message, /timed out/, `${host}: refused, not merely silent`);
    assert.match(message, /./, `${host}: rejected with a message`);
    console.log(`${host}: ${message}`);
  }
});

test("the page computes the digest nats.js computed for the same bytes", () => {
  const name = "obj: multi-chunk put/get, info digest, list, delete";
  const expected = "SHA-256=" + createHash("sha256").update(pattern(300 * 1024, 7)).digest("base64url") + "=";
  assert.equal(results.server[name]?.digest, expected, "nats.js's digest (stored by the server)");
  assert.equal(results.page[name]?.digest, expected, "the page's digest");
});

for (const storage of STORAGES) {
  test(`page: objects survive a reload with ${storage} storage`, async () => {
    await page.evaluate(() => window.edgebus.deleteStorage("kvobj-persist"));
    const args = { storage, busName: "kvobj-persist", bucket: "keep" };
    const put = await inPage({ ...args, step: "before" });
    await page.reload();
    await page.waitForFunction(() => window.ready === true);
    const back = await inPage({ ...args, step: "after" });
    assert.equal(back.digest, put.digest);
    assert.equal(back.chunks, 3);
    assert.deepEqual(back.names, ["kept.bin"], "the deleted object stays deleted");
    await page.evaluate(() => window.edgebus.deleteStorage("kvobj-persist"));
    assert.deepEqual(pageErrors, []);
  });
}

test("page: KV and object writes keep their call order with queued js.publish calls", async () => {
  const r = await page.evaluate(async () => {
    const bus = await window.edgebus.open({ name: "order", storage: "memory" });
    const kv = await bus.kv("ord");
    const js = bus.jetstream();
    // js.publish waits for the end of the task to go with other publishes; the KV put made
    // after it must still be stored after it.
    const queued = js.publish("$KV.ord.k", "from-js");
    const put = kv.put("k", "from-kv");
    const [ack, rev] = await Promise.all([queued, put]);
    const last = (await kv.get("k")).string();
    // and the same for an object put behind a queued publish on its stream
    const os = await bus.objm().create("ordobj");
    const queuedObj = js.publish("$O.ordobj.C.marker", "m");
    const info = await os.putBlob({ name: "x" }, new TextEncoder().encode("data"));
    const objAck = await queuedObj;
    const st = await os.status();
    await bus.close();
    return { ack: ack.seq, rev, last, objAck: objAck.seq, objSize: info.size, sealed: st.sealed };
  });
  assert.deepEqual(r, { ack: 1, rev: 2, last: "from-kv", objAck: 1, objSize: 4, sealed: false });
  assert.deepEqual(pageErrors, []);
});
