// The in-page bus linked to the real server over WebSocket (bus.connect), in headless
// Chromium, with a Node TCP client on the other side:
//  (a) offline-first: with the server down, 100 publishes on an exported subject (50, a page
//      reload, 50 more) wait in the IndexedDB outbox; once the server is back (same ports,
//      same store) the server's stream holds exactly those 100, in order, no duplicates;
//  (b) a TCP publish on an imported subject reaches the page, a page request is answered by
//      a TCP responder, and a TCP request is answered by a page subscriber.
// Needs `bash web/build.sh` and the release server (tests/setup.sh does both).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager, jetstream } from "@nats-io/jetstream";
import { REPO, startServer } from "./server.mjs";
import { serve } from "../../web/serve.mjs";

const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
const WEB = path.join(REPO, "web");

// A blank page on the static server's origin that imports the package as a web app would.
const PAGE = `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head>
<body><script type="module">
  import * as edgebus from "/dist/index.js";
  window.edgebus = edgebus;
  window.ready = true;
</script></body></html>`;

let httpServer;
let browser;
let page;
let base;
let srv;
const pageErrors = [];

before(async () => {
  assert.ok(existsSync(path.join(WEB, "dist", "index.js")) && existsSync(path.join(WEB, "pkg", "edgebus_wasm_bg.wasm")),
    "web/dist and web/pkg are missing: run bash web/build.sh");
  // Served from the same loopback origin as the server: Chromium's local network access
  // checks block a page of unknown origin from opening ws://127.0.0.1.
  httpServer = await serve({ root: WEB, port: 0, pages: { "/link-test.html": PAGE } });
  base = `http://127.0.0.1:${httpServer.address().port}`;
  srv = await startServer("", { jetstream: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  page = await browser.newPage();
  page.on("pageerror", (e) => pageErrors.push(String(e)));
});

after(async () => {
  if (browser) await browser.close();
  if (srv) await srv.stop();
  if (httpServer) await new Promise((r) => httpServer.close(r));
});

async function open() {
  await page.goto(`${base}/link-test.html`);
  await page.waitForFunction(() => window.ready === true);
}

async function until(fn, what, ms = 60000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test("offline: 100 publishes wait in the IndexedDB outbox (across a reload) and reach the server's stream exactly once, in order", async () => {
  const nc = await connect({ servers: srv.url });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "ORDERS", subjects: ["orders.>"] });
  await nc.close();
  await srv.stop();

  await open();
  const wsUrl = srv.wsUrl;
  const first = await page.evaluate(async (wsUrl) => {
    const { open, deleteStorage } = window.edgebus;
    await deleteStorage("link-a");
    const bus = await open({ name: "link-a", storage: "indexeddb" });
    window.events = [];
    bus.status({ callback: (s) => window.events.push(s) });
    const link = await bus.connect(wsUrl, { export: ["orders.>"], reconnectDelayMin: 50, reconnectDelayMax: 400 });
    for (let i = 1; i <= 50; i++) bus.publish(`orders.${i}`, `order ${i}`);
    await bus.flush(); // the outbox is in IndexedDB
    while (!window.events.some((e) => e.type === "reconnecting")) await new Promise((r) => setTimeout(r, 50));
    const info = link.info();
    await bus.close();
    return { outbox: info.outbox, state: info.state, events: window.events.map((e) => e.type) };
  }, wsUrl);
  assert.equal(first.outbox, 50);
  assert.notEqual(first.state, "connected");
  assert.ok(first.events.includes("disconnected") || first.events.includes("reconnecting"), JSON.stringify(first.events));

  await page.reload();
  await page.waitForFunction(() => window.ready === true);
  const second = await page.evaluate(async (wsUrl) => {
    const { open } = window.edgebus;
    const bus = await open({ name: "link-a", storage: "indexeddb" });
    window.bus = bus;
    window.events = [];
    bus.status({ callback: (s) => window.events.push(s) });
    const link = await bus.connect(wsUrl, { export: ["orders.>"], reconnectDelayMin: 50, reconnectDelayMax: 400 });
    const reloaded = link.info().outbox;
    for (let i = 51; i <= 100; i++) bus.publish(`orders.${i}`, `order ${i}`);
    await bus.flush();
    return { reloaded, outbox: link.info().outbox };
  }, wsUrl);
  assert.deepEqual(second, { reloaded: 50, outbox: 100 });

  await srv.restart();
  const drained = await page.evaluate(() => window.bus.link.flush({ timeout: 60000 }));
  assert.equal(drained, true, "the outbox drained once the server was back");
  const status = await page.evaluate(() => ({ info: window.bus.link.info(), events: window.events }));
  assert.equal(status.info.state, "connected");
  assert.equal(status.info.outbox, 0);
  const connected = status.events.filter((e) => e.type === "connected");
  assert.ok(connected.length >= 1 && connected[0].outbox === 100, JSON.stringify(status.events));

  // The server's view: exactly the 100, in order, each with its Nats-Msg-Id.
  const nc2 = await connect({ servers: srv.url });
  const jsm2 = await jetstreamManager(nc2);
  const info = await jsm2.streams.info("ORDERS");
  assert.equal(info.state.messages, 100);
  const c = await jetstream(nc2).consumers.get("ORDERS");
  const got = [];
  const ids = new Set();
  const iter = await c.fetch({ max_messages: 100, expires: 5000 });
  for await (const m of iter) {
    got.push(`${m.subject}=${m.string()}`);
    ids.add(m.headers?.get("Nats-Msg-Id"));
    if (got.length === 100) break;
  }
  assert.deepEqual(got, Array.from({ length: 100 }, (_, i) => `orders.${i + 1}=order ${i + 1}`));
  assert.equal(ids.size, 100);
  assert.ok(![...ids].includes(undefined) && ![...ids].includes(""));
  await nc2.close();
  await page.evaluate(() => window.bus.close());
  assert.deepEqual(pageErrors, []);
});

test("online: imported subjects reach the page, requests cross the link both ways", async (t) => {
  const srv = await startServer();
  t.after(() => srv.stop());
  await open();
  const nc = await connect({ servers: srv.url });
  nc.subscribe("svc.>", { callback: (_e, m) => m.respond(`native:${m.string()}`) });
  await nc.flush();

  await page.evaluate(async (wsUrl) => {
    const { open } = window.edgebus;
    const bus = await open({ name: "link-b", storage: "memory" });
    window.bus = bus;
    window.got = [];
    bus.subscribe("prices.>", { callback: (_e, m) => window.got.push(`${m.subject}=${m.string()}`) });
    bus.subscribe("prices.ask", { callback: (_e, m) => m.respond(`page:${m.string()}`) });
    window.connected = false;
    bus.status({ callback: (s) => { if (s.type === "connected") window.connected = true; } });
    await bus.connect(wsUrl, { import: ["prices.>"], export: ["svc.>"], reconnectDelayMin: 50, reconnectDelayMax: 400 });
  }, srv.wsUrl);
  await page.waitForFunction(() => window.connected === true, null, { timeout: 60000 });

  nc.publish("prices.eu", "1.5");
  nc.publish("prices.us", "1.7");
  await nc.flush();
  await until(() => page.evaluate(() => window.got.length >= 2), "imported messages in the page");
  assert.deepEqual(await page.evaluate(() => window.got), ["prices.eu=1.5", "prices.us=1.7"]);

  const reply = await page.evaluate(async () => (await window.bus.request("svc.time", "hi", { timeout: 10000 })).string());
  assert.equal(reply, "native:hi");

  const fromPage = await nc.request("prices.ask", "q", { timeout: 10000 });
  assert.equal(fromPage.string(), "page:q");

  const info = await page.evaluate(() => window.bus.link.info());
  assert.equal(info.state, "connected");
  assert.equal(info.outbox, 0);
  await page.evaluate(() => window.bus.close());
  await nc.close();
  assert.deepEqual(pageErrors, []);
});

test("credentials: user/pass get the link in, a wrong password is reported and retried", async (t) => {
  const srv = await startServer(`authorization { user: app, password: s3cret }\n`);
  t.after(() => srv.stop());
  await open();
  const r = await page.evaluate(async (wsUrl) => {
    const { open } = window.edgebus;
    const wait = (events, type) => new Promise((resolve) => {
      const check = () => (events.some((e) => e.type === type) ? resolve() : setTimeout(check, 50));
      check();
    });
    const good = await open({ name: "link-auth-ok" });
    const okEvents = [];
    good.status({ callback: (s) => okEvents.push(s) });
    await good.connect(wsUrl, { user: "app", pass: "s3cret", export: ["x.>"] });
    await wait(okEvents, "connected");
    const bad = await open({ name: "link-auth-bad" });
    const badEvents = [];
    bad.status({ callback: (s) => badEvents.push(s) });
    await bad.connect(wsUrl, { user: "app", pass: "wrong", reconnectDelayMin: 50, reconnectDelayMax: 200 });
    await wait(badEvents, "reconnecting");
    const out = {
      ok: good.link.info().state,
      bad: bad.link.info().state,
      badError: badEvents.find((e) => e.type === "disconnected")?.error ?? "",
      badConnected: badEvents.some((e) => e.type === "connected"),
    };
    await good.close();
    await bad.close();
    return out;
  }, srv.wsUrl);
  assert.equal(r.ok, "connected");
  assert.notEqual(r.bad, "connected");
  assert.equal(r.badConnected, false);
  assert.match(r.badError, /Authorization Violation/i);
  assert.deepEqual(pageErrors, []);
});
