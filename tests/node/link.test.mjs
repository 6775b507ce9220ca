// The in-page bus linked to the real server over WebSocket (bus.connect), in headless
// Chromium, with a real nats-py client (tests/node/py/natspy.py) on the server's side:
//  (a) offline-first: with the server down, 100 publishes on an exported subject (50, a page
//      reload, 50 more) wait in the IndexedDB outbox; once the server is back (same ports,
//      same store) a nats-py pull consumer on the server's stream reads exactly those 100,
//      in order, no duplicates;
//  (b) a nats-py publish on an imported subject reaches the page, a page request is answered
//      by a Python responder, and a Python request is answered by a page subscriber;
//  (c) keepalive and connect timeout: the server is paused (SIGSTOP: sockets stay open, it
//      says nothing); the link notices the missing PONGs, abandons attempts that get no
//      INFO in time, and once the server is continued every publish arrives exactly once;
//  (d) user/pass over the link.
// Needs `bash web/build.sh` and the release server (tests/setup.sh does both). Runs against
// nats-server too: EDGEBUS_SERVER_CMD=nats-server.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "./server.mjs";
import { natsPy } from "./py/natspy.mjs";
import { linkCarriesBothWays } from "./linkcheck.mjs";
import { launch, PACKAGE_PAGE, requirePackage, serveOn } from "./page.mjs";

let httpServer;
let browser;
let page;
let base;
let srv;
let pageErrors = [];

before(async () => {
  requirePackage();
  // Served from the same loopback origin as the server: Chromium's local network access
  // checks block a page of unknown origin from opening ws://127.0.0.1.
  ({ server: httpServer, base } = await serveOn({ "/link-test.html": PACKAGE_PAGE }));
  srv = await startServer("", { jetstream: true });
  ({ browser, page, errors: pageErrors } = await launch());
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

/** Waits in the page until a status event matching `pred` (source text) was recorded. */
async function waitEvent(pred, ms = 60000) {
  await page.waitForFunction(`window.events.some(${pred})`, null, { timeout: ms, polling: 50 });
}

/** The stream as a nats-py pull consumer reads it: exactly `n` orders `${prefix}.1..n`, in
 *  order, each with its own Nats-Msg-Id, and nothing after them. */
async function assertStream(py, stream, subject, prefix, n) {
  const r = await py.call("stream_read", { stream, subject, expect: n });
  assert.deepEqual(r.messages.map((m) => `${m.subject}=${m.data}`),
    Array.from({ length: n }, (_, i) => `${prefix}.${i + 1}=order ${i + 1}`));
  assert.deepEqual(r.messages.map((m) => m.seq), Array.from({ length: n }, (_, i) => i + 1));
  const ids = new Set(r.messages.map((m) => m.headers["Nats-Msg-Id"]));
  assert.equal(ids.size, n, "every message has its own Nats-Msg-Id");
  assert.ok(![...ids].includes(undefined) && ![...ids].includes(""));
  assert.equal(r.pending, 0, "no message after the expected ones");
  assert.equal(r.stream_messages, n);
}

test("offline: 100 publishes wait in the IndexedDB outbox (across a reload) and reach the server's stream exactly once, in order", async (t) => {
  let py = await natsPy(srv.url);
  await py.call("stream_add", { name: "ORDERS", subjects: ["orders.>"] });
  await py.close();
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

  // The server's view, through nats-py: exactly the 100, in order, each with its Nats-Msg-Id.
  py = await natsPy(srv.url);
  t.after(() => py.close());
  await assertStream(py, "ORDERS", "orders.>", "orders", 100);
  await page.evaluate(() => window.bus.close());
  assert.deepEqual(pageErrors, []);
});

test("online: nats-py publishes on imported subjects reach the page, requests cross the link both ways", (t) =>
  linkCarriesBothWays(t, { page, open, openOptions: { name: "link-b", storage: "memory" }, pageErrors }));

test("keepalive and connect timeout: a paused server is detected, attempts without INFO are abandoned, nothing is lost or doubled", async (t) => {
  const srv = await startServer("", { jetstream: true });
  t.after(() => srv.stop());
  let py = await natsPy(srv.url);
  await py.call("stream_add", { name: "JOBS", subjects: ["jobs.>"] });
  await py.close();
  await open();

  await page.evaluate(async (wsUrl) => {
    const { open } = window.edgebus;
    const bus = await open({ name: "link-ka", storage: "memory" });
    window.bus = bus;
    window.events = [];
    bus.status({ callback: (s) => window.events.push({ ...s, t: performance.now() }) });
    await bus.connect(wsUrl, {
      export: ["jobs.>"], pingInterval: 300, maxPingOut: 2, timeout: 1500,
      reconnectDelayMin: 50, reconnectDelayMax: 300,
    });
  }, srv.wsUrl);
  await waitEvent(`(e) => e.type === "connected"`);
  const online = await page.evaluate(async () => {
    for (let i = 1; i <= 20; i++) window.bus.publish(`jobs.${i}`, `order ${i}`);
    return window.bus.link.flush({ timeout: 60000 });
  });
  assert.equal(online, true, "confirmed while the server was running");
  const mark = await page.evaluate(() => { window.mark = window.events.length; return window.mark; });

  await srv.pause(); // every thread stopped: nothing published from here on is answered
  let resumed = false;
  t.after(() => { if (!resumed) srv.resume(); });
  // Written to a socket nobody reads: unconfirmed, so kept and sent again later.
  await page.evaluate(() => { for (let i = 21; i <= 100; i++) window.bus.publish(`jobs.${i}`, `order ${i}`); });
  await waitEvent(`(e, i) => i >= window.mark && e.type === "disconnected"`);
  const down = await page.evaluate(() => window.events.slice(window.mark).find((e) => e.type === "disconnected"));
  assert.match(down.error ?? "", /stale connection/);
  // A reconnect attempt reaches the paused server's listen queue and hears nothing back:
  // abandoned after `timeout`, and retried.
  await page.waitForFunction(() => /within 1500 ms/.test(window.bus.link.info().error ?? ""), null,
    { timeout: 60000, polling: 50 });
  assert.equal(await page.evaluate(() => window.bus.link.info().outbox), 80);

  srv.resume();
  resumed = true;
  const drained = await page.evaluate(() => window.bus.link.flush({ timeout: 60000 }));
  assert.equal(drained, true, "the outbox drained once the server was continued");
  const events = await page.evaluate(() => window.events.slice(window.mark).map((e) => e.type));
  const iDown = events.indexOf("disconnected");
  const iRetry = events.indexOf("reconnecting", iDown);
  const iUp = events.indexOf("connected", iRetry);
  assert.ok(iDown >= 0 && iRetry > iDown && iUp > iRetry, `disconnected -> reconnecting -> connected: ${events}`);
  assert.ok(events.filter((e) => e === "reconnecting").length >= 2, `a timed-out attempt was retried: ${events}`);

  // Messages written to the stale socket may reach the server too, once it runs again; the
  // resent copies carry the same Nats-Msg-Id, so the stream keeps one of each.
  py = await natsPy(srv.url);
  t.after(() => py.close());
  await assertStream(py, "JOBS", "jobs.>", "jobs", 100);
  await page.evaluate(() => window.bus.close());
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

test("no responders: a page request on an exported subject nobody serves fails with NoRespondersError (the link connects with echo off)", async (t) => {
  const srv = await startServer();
  t.after(() => srv.stop());
  await open();
  const outcome = await page.evaluate(async (wsUrl) => {
    const { open } = window.edgebus;
    const bus = await open({ name: "link-nr", storage: "memory" });
    window.events = [];
    bus.status({ callback: (s) => window.events.push(s) });
    await bus.connect(wsUrl, { export: ["void.>"], reconnectDelayMin: 50, reconnectDelayMax: 400 });
    while (!window.events.some((e) => e.type === "connected")) await new Promise((r) => setTimeout(r, 20));
    try {
      // a timeout would end this after 60 s with a TimeoutError instead
      await bus.request("void.nobody", "hi", { timeout: 60000 });
      return "answered";
    } catch (e) {
      return e.name;
    } finally {
      await bus.close();
    }
  }, srv.wsUrl);
  assert.equal(outcome, "NoRespondersError");
  assert.deepEqual(pageErrors, []);
});
