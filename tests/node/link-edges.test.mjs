// The link's edges (issue 12), in headless Chromium against the real server (edgebus-server,
// or nats-server with EDGEBUS_SERVER_CMD=nats-server):
//  - a publish over the server's max_payload (1MB in its config; the page's own limit raised
//    to 4 MiB) is rejected visibly: a `rejected` status event with the reason, never sent,
//    never counted as confirmed; the publish after it (a marker) reaches a nats.js
//    subscriber on the server, the oversized one never does;
//  - `outbox` status events show the outbox grow while offline and drain once connected;
//  - a wrong token: every `reconnecting` event carries the reason, and after the second
//    refusal in a row the link stops (nats.js's rule) with a `closed` event whose `err` is an
//    AuthorizationError.
// Needs `bash web/build.sh` and the release server.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { startServer } from "./server.mjs";
import { launch, PACKAGE_PAGE, requirePackage, serveOn } from "./page.mjs";

let httpServer;
let browser;
let page;
let base;
let pageErrors = [];

before(async () => {
  requirePackage();
  ({ server: httpServer, base } = await serveOn({ "/link-edges.html": PACKAGE_PAGE }));
  ({ browser, page, errors: pageErrors } = await launch());
});

after(async () => {
  if (browser) await browser.close();
  if (httpServer) await new Promise((r) => httpServer.close(r));
});

async function open() {
  await page.goto(`${base}/link-edges.html`);
  await page.waitForFunction(() => window.ready === true);
}

test("a link publish over the server's max_payload is rejected with a status event, never sent nor confirmed", async (t) => {
  const srv = await startServer("max_payload: 1MB\n");
  t.after(() => srv.stop());
  const nc = await connect({ servers: srv.url });
  t.after(() => nc.close());
  const got = [];
  const sub = nc.subscribe("big.>", { callback: (_, m) => got.push(`${m.subject}:${m.data.length}`) });
  await nc.flush();

  await open();
  const r = await page.evaluate(async (wsUrl) => {
    const { open } = window.edgebus;
    const bus = await open({ name: "link-big", maxPayload: 4 << 20 });
    const events = [];
    bus.status({ callback: (s) => events.push(s) });
    const link = await bus.connect(wsUrl, { export: ["big.>"], reconnectDelayMin: 50, reconnectDelayMax: 200 });
    while (!events.some((e) => e.type === "connected")) await new Promise((res) => setTimeout(res, 20));
    bus.publish("big.1", new Uint8Array(2 << 20)); // over the server's 1 MiB
    bus.publish("big.marker", "m");
    const flushed = await link.flush({ timeout: 30000 });
    const info = link.info();
    const out = {
      flushed,
      outbox: info.outbox,
      state: info.state,
      sent: info.sent,
      rejected: events.filter((e) => e.type === "rejected").map((e) => [e.subject, e.size >= 2 << 20, e.max, e.error]),
      disconnected: events.some((e) => e.type === "disconnected"),
    };
    await bus.close();
    return out;
  }, srv.wsUrl);
  // The marker went after the big one: once it arrived, the big one would have too.
  while (!got.includes("big.marker:1")) await new Promise((res) => setTimeout(res, 20));
  sub.unsubscribe();
  assert.deepEqual(got, ["big.marker:1"], "the oversized publish never reached the server");
  assert.equal(r.rejected.length, 1, JSON.stringify(r.rejected));
  const [subject, sizeOver, max, error] = r.rejected[0];
  assert.deepEqual([subject, sizeOver, max], ["big.1", true, 1048576]);
  assert.match(error, /maximum payload exceeded: \d+ > 1048576/);
  assert.equal(r.disconnected, false, "the server never saw it, so never closed the connection");
  assert.equal(r.sent, 1, "only the marker counts as sent");
  assert.equal(r.flushed, true);
  assert.equal(r.outbox, 0);
  assert.deepEqual(pageErrors, []);
});

test("outbox status events: the outbox grows while offline and drains once the server confirms", async (t) => {
  const srv = await startServer();
  t.after(() => srv.stop());
  await srv.stop(); // offline first
  await open();
  const wsUrl = srv.wsUrl;
  await page.evaluate(async (wsUrl) => {
    const { open } = window.edgebus;
    const bus = await open({ name: "link-outbox" });
    window.events = [];
    bus.status({ callback: (s) => window.events.push(s) });
    window.bus = bus;
    await bus.connect(wsUrl, { export: ["ob.>"], reconnectDelayMin: 50, reconnectDelayMax: 200 });
    for (let i = 1; i <= 3; i++) bus.publish(`ob.${i}`, `m${i}`);
  }, wsUrl);
  await page.waitForFunction(() => window.events.some((e) => e.type === "outbox" && e.outbox === 3));
  await srv.restart();
  await page.waitForFunction(() => window.events.some((e) => e.type === "connected"), null, { timeout: 60000 });
  await page.waitForFunction(() => {
    const ob = window.events.filter((e) => e.type === "outbox");
    return ob.length > 0 && ob[ob.length - 1].outbox === 0;
  }, null, { timeout: 60000 });
  const sizes = await page.evaluate(async () => {
    const ob = window.events.filter((e) => e.type === "outbox").map((e) => e.outbox);
    await window.bus.close();
    return ob;
  });
  assert.deepEqual(sizes.slice(0, 3), [1, 2, 3], "one event per growth");
  assert.equal(sizes[sizes.length - 1], 0, "drained");
  assert.deepEqual(pageErrors, []);
});

test("a wrong token: each attempt reports the reason; after two refusals in a row the link stops with an AuthorizationError", async (t) => {
  const srv = await startServer(`authorization { token: s3cret }\n`);
  t.after(() => srv.stop());
  await open();
  const r = await page.evaluate(async (wsUrl) => {
    const { open, AuthorizationError } = window.edgebus;
    const bus = await open({ name: "link-auth" });
    const events = [];
    bus.status({ callback: (s) => events.push(s) });
    await bus.connect(wsUrl, { token: "wrong", reconnectDelayMin: 50, reconnectDelayMax: 200 });
    while (!events.some((e) => e.type === "closed")) await new Promise((res) => setTimeout(res, 20));
    const closed = events.find((e) => e.type === "closed");
    const out = {
      types: events.map((e) => e.type),
      reconnectErrors: events.filter((e) => e.type === "reconnecting").map((e) => e.error),
      closedError: closed.error,
      isAuthError: closed.err instanceof AuthorizationError,
      state: bus.link.info().state,
      infoError: bus.link.info().error,
    };
    await bus.close();
    return out;
  }, srv.wsUrl);
  assert.deepEqual(r.types, ["disconnected", "reconnecting", "closed"], JSON.stringify(r.types));
  assert.equal(r.reconnectErrors.length, 1);
  for (const e of r.reconnectErrors) assert.match(e, /Authorization Violation/i);
  assert.match(r.closedError, /Authorization Violation/i);
  assert.equal(r.isAuthError, true);
  assert.equal(r.state, "closed");
  assert.match(r.infoError, /Authorization Violation/i);
  assert.deepEqual(pageErrors, []);
});
