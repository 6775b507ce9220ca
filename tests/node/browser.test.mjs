// nats.ws in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core)
// exchanging messages through the server with a Node TCP client.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { CHROMIUM, openNatsWsPage, pollUntil } from "./page.mjs";
import { connect, nuid } from "@nats-io/transport-node";
import { startServer, REPO } from "./server.mjs";

const ARTIFACTS = path.join(REPO, "tests", "artifacts");

// nats.ws 1.x ships a self-contained ESM bundle: the page imports it as is.

const PAGE = `<!doctype html>
<html>
<head>
<meta charset="utf-8">
<title>edgebus browser test</title>
<link rel="icon" href="data:,">
<style>
  body { font: 15px/1.4 sans-serif; margin: 2em; }
  li.ok::before { content: "\\2714  "; color: #080; }
  li.fail::before { content: "\\2718  "; color: #a00; }
</style>
</head>
<body>
<h1>edgebus: nats.ws in Chromium</h1>
<p id="conn">not connected</p>
<ul id="log"></ul>
<script type="module">
  import * as nats from "/nats.js";
  const sc = nats.StringCodec();
  const got = {};
  window.bus = {
    async connect(url) {
      window.nc = await nats.connect({ servers: url, reconnect: false, timeout: 5000 });
      document.getElementById("conn").textContent = "connected to " + url + " (server " + window.nc.info.server_id.slice(0, 12) + "…)";
    },
    async publish(subject, text) {
      window.nc.publish(subject, sc.encode(text));
      await window.nc.flush();
    },
    async subscribe(subject) {
      got[subject] = [];
      const sub = window.nc.subscribe(subject);
      (async () => { for await (const m of sub) got[subject].push(sc.decode(m.data)); })();
      await window.nc.flush();
    },
    received(subject) { return got[subject] || []; },
    async request(subject, text) {
      const m = await window.nc.request(subject, sc.encode(text), { timeout: 5000 });
      return sc.decode(m.data);
    },
    note(text, ok) {
      const li = document.createElement("li");
      li.className = ok ? "ok" : "fail";
      li.textContent = text;
      document.getElementById("log").appendChild(li);
    },
    async close() { await window.nc.close(); },
  };
  window.ready = true;
</script>
</body>
</html>
`;

let server;
let web;
let browser;
let page;
let tcp;
const pageErrors = [];

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} missing: apt-get install -y chromium (tests/setup.sh does it)`);
  server = await startServer();
  ({ web, browser, page } = await openNatsWsPage(PAGE, server, pageErrors));
  tcp = await connect({ servers: server.url, reconnect: false, timeout: 5000 });
});

after(async () => {
  try {
    if (page) {
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, "browser.png"), fullPage: true });
      await page.evaluate(() => window.bus.close()).catch(() => {});
    }
  } finally {
    if (browser) await browser.close();
    if (tcp && !tcp.isClosed()) await tcp.close();
    if (web) web.close();
    if (server) await server.stop();
  }
});

test("browser publishes, TCP subscriber receives", async () => {
  const subject = `br.up.${nuid.next()}`;
  const sub = tcp.subscribe(subject, { max: 3 });
  await tcp.flush();
  for (const text of ["one", "two", "three"]) {
    await page.evaluate(([s, t]) => window.bus.publish(s, t), [subject, text]);
  }
  const got = [];
  const timer = setTimeout(() => sub.unsubscribe(), 5000);
  for await (const m of sub) got.push(m.string());
  clearTimeout(timer);
  assert.deepEqual(got, ["one", "two", "three"]);
  await page.evaluate(() => window.bus.note("browser → TCP: 3 messages", true));
});

test("TCP publishes, browser receives", async () => {
  const subject = `br.down.${nuid.next()}`;
  await page.evaluate((s) => window.bus.subscribe(s), subject);
  for (let i = 0; i < 5; i++) tcp.publish(subject, `m${i}`);
  await tcp.flush();
  const got = await pollUntil(async () => {
    const r = await page.evaluate((s) => window.bus.received(s), subject);
    return r.length >= 5 ? r : null;
  });
  assert.deepEqual(got, ["m0", "m1", "m2", "m3", "m4"]);
  await page.evaluate(() => window.bus.note("TCP → browser: 5 messages", true));
});

test("browser request answered by a TCP responder", async () => {
  const subject = `br.svc.${nuid.next()}`;
  const sub = tcp.subscribe(subject, {
    callback: (err, msg) => {
      if (!err) msg.respond(`answer to ${msg.string()}`);
    },
  });
  await tcp.flush();
  const reply = await page.evaluate((s) => window.bus.request(s, "question"), subject);
  assert.equal(reply, "answer to question");
  sub.unsubscribe();
  await page.evaluate(() => window.bus.note("browser request → TCP responder → reply", true));
});

test("no errors in the page", () => {
  assert.deepEqual(pageErrors, []);
});
