// The link's basic promise, checked the same way for each entry point that has a link
// (`edgebus` and `edgebus/core`): nats-py publishes on imported subjects reach the page, and
// requests cross the link both ways.
import assert from "node:assert/strict";
import { startServer } from "./server.mjs";
import { natsPy } from "./py/natspy.mjs";

/** Runs the check in `page` (already showing an entry that sets `window.edgebus`), after
 *  `open()` (re)loads it; `openOptions` are the bus's `open` options. */
export async function linkCarriesBothWays(t, { page, open, openOptions, pageErrors }) {
  const srv = await startServer();
  t.after(() => srv.stop());
  const py = await natsPy(srv.url);
  t.after(() => py.close());
  await py.call("respond", { subject: "svc.>", prefix: "python:" }); // flushed: the server has the SUB
  await open();
  await page.evaluate(async ([wsUrl, opts]) => {
    const bus = await window.edgebus.open(opts);
    window.bus = bus;
    window.got = [];
    window.events = [];
    bus.subscribe("prices.>", { callback: (_e, m) => window.got.push(`${m.subject}=${m.string()}`) });
    bus.subscribe("prices.ask", { callback: (_e, m) => m.respond(`page:${m.string()}`) });
    bus.status({ callback: (s) => window.events.push(s.type) });
    await bus.connect(wsUrl, { import: ["prices.>"], export: ["svc.>"], reconnectDelayMin: 50, reconnectDelayMax: 400 });
  }, [srv.wsUrl, openOptions]);
  // "connected" follows the PONG to the handshake PING, sent after the link's SUBs: the
  // server has them, so a publish from another connection now reaches the page.
  await page.waitForFunction(() => window.events.includes("connected"), null, { timeout: 60000, polling: 50 });

  await py.call("publish", { subject: "prices.eu", data: "1.5" });
  await py.call("publish", { subject: "prices.us", data: "1.7" });
  await page.waitForFunction(() => window.got.length >= 2, null, { timeout: 60000, polling: 50 });
  assert.deepEqual(await page.evaluate(() => window.got), ["prices.eu=1.5", "prices.us=1.7"]);

  const reply = await page.evaluate(async () => (await window.bus.request("svc.time", "hi", { timeout: 10000 })).string());
  assert.equal(reply, "python:hi");
  const fromPage = await py.call("request", { subject: "prices.ask", data: "q", timeout: 10 });
  assert.equal(fromPage.data, "page:q");

  const info = await page.evaluate(() => window.bus.link.info());
  assert.equal(info.state, "connected");
  assert.equal(info.outbox, 0);
  await page.evaluate(() => window.bus.close());
  assert.deepEqual(pageErrors, []);
}
