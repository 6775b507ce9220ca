// `websocket { compression: true }` with a real client: headless Chromium offers
// permessage-deflate on every WebSocket, so the browser's own WebSocket and nats.ws in the
// page negotiate it, and 20 KB messages go both ways (the server inflates what Chromium
// compresses; Chromium inflates the server's compressed messages, which a browser gets in
// continuation frames of 4096 bytes). Runs against nats-server as well.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { openNatsWsPage, pollUntil } from "./page.mjs";
import { connect, nuid } from "@nats-io/transport-node";
import { startServer } from "./server.mjs";

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head>
<body><script type="module">
  import * as nats from "/nats.js";
  const got = {};
  window.bus = {
    // a bare WebSocket: what the server answered to the browser's offer, and the INFO
    async raw(url) {
      const ws = new WebSocket(url);
      ws.binaryType = "arraybuffer";
      const first = await new Promise((resolve, reject) => {
        ws.onmessage = (e) => resolve(new TextDecoder().decode(e.data));
        ws.onerror = () => reject(new Error("websocket error"));
      });
      const extensions = ws.extensions;
      ws.close();
      return { extensions, first: first.slice(0, 5) };
    },
    async connect(url) {
      window.nc = await nats.connect({ servers: url, reconnect: false, timeout: 5000 });
    },
    async publish(subject, text) {
      window.nc.publish(subject, new TextEncoder().encode(text));
      await window.nc.flush();
    },
    async subscribe(subject) {
      got[subject] = [];
      const sub = window.nc.subscribe(subject);
      (async () => { for await (const m of sub) got[subject].push(new TextDecoder().decode(m.data)); })();
      await window.nc.flush();
    },
    received(subject) { return got[subject] || []; },
    async close() { await window.nc.close(); },
  };
  window.ready = true;
</script></body></html>`;

let server, web, browser, page, tcp;
const pageErrors = [];

/** 20 KB of text that deflates to more than 4096 bytes (so a browser gets it in pieces). */
function bigText(seed) {
  let x = seed, out = "";
  while (out.length < 20000) {
    x = (x * 1103515245 + 12345) >>> 0;
    out += String.fromCharCode(33 + (x >>> 16) % 90);
  }
  return out;
}

before(async () => {
  server = await startServer("", { wsExtra: "  compression: true\n" });
  ({ web, browser, page } = await openNatsWsPage(PAGE, server, pageErrors));
  tcp = await connect({ servers: server.url, reconnect: false, timeout: 5000 });
});

after(async () => {
  try {
    if (page) await page.evaluate(() => window.bus.close()).catch(() => {});
  } finally {
    if (browser) await browser.close();
    if (tcp && !tcp.isClosed()) await tcp.close();
    if (web) web.close();
    if (server) await server.stop();
  }
});

test("Chromium's offer is answered with permessage-deflate and the INFO inflates", async () => {
  const r = await page.evaluate((url) => window.bus.raw(url), server.wsUrl);
  assert.deepEqual(r, {
    extensions: "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
    first: "INFO ",
  });
});

test("20 KB from the browser (compressed by Chromium) reaches a TCP subscriber", async () => {
  const subject = `z.up.${nuid.next()}`;
  const sub = tcp.subscribe(subject, { max: 2 });
  await tcp.flush();
  const texts = [bigText(1), "small"];
  for (const t of texts) await page.evaluate(([s, x]) => window.bus.publish(s, x), [subject, t]);
  const got = [];
  const timer = setTimeout(() => sub.unsubscribe(), 5000);
  for await (const m of sub) got.push(m.string());
  clearTimeout(timer);
  assert.deepEqual(got, texts);
});

test("20 KB from TCP reaches the browser (compressed, in 4096-byte frames)", async () => {
  const subject = `z.down.${nuid.next()}`;
  await page.evaluate((s) => window.bus.subscribe(s), subject);
  const texts = [bigText(2), "x".repeat(30000), "small"];
  for (const t of texts) tcp.publish(subject, t);
  await tcp.flush();
  const got = await pollUntil(async () => {
    const r = await page.evaluate((s) => window.bus.received(s), subject);
    return r.length >= texts.length ? r : null;
  });
  assert.deepEqual(got, texts);
});

test("no errors in the page", () => {
  assert.deepEqual(pageErrors, []);
});
