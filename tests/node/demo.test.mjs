// The demo / inspector page (web/index.html) against the real server, in headless Chromium:
// it renders (screenshot in tests/artifacts/demo.png), links to the server, and its publish /
// subscribe controls work — including with a native TCP client on the other side.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { CHROMIUM, CHROMIUM_ARGS } from "./page.mjs";
import { connect } from "@nats-io/transport-node";
import { REPO, startServer } from "./server.mjs";
import { serve } from "../../web/serve.mjs";

const WEB = path.join(REPO, "web");
const ARTIFACTS = path.join(REPO, "tests", "artifacts");

let httpServer;
let browser;
let srv;

before(async () => {
  assert.ok(existsSync(path.join(WEB, "dist", "index.js")), "web/dist is missing: run bash web/build.sh");
  httpServer = await serve({ root: WEB, port: 0 });
  srv = await startServer();
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
});

after(async () => {
  if (browser) await browser.close();
  if (srv) await srv.stop();
  if (httpServer) await new Promise((r) => httpServer.close(r));
});

test("the demo page renders, links to the server, and its publish/subscribe controls work", async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  const name = `demo-test-${Date.now()}`;
  const url = `http://127.0.0.1:${httpServer.address().port}/?ws=${encodeURIComponent(srv.wsUrl)}` +
    `&nats=${encodeURIComponent(srv.url)}&name=${name}&storage=memory`;
  await page.goto(url);
  await page.waitForFunction(() => window.inspectorReady === true, null, { timeout: 30000 });
  await page.waitForFunction(() => document.getElementById("link-pill").dataset.state === "connected", null, { timeout: 60000 });

  // Publish from the page's controls: the page's own "demo.>" subscription logs it, and a
  // native client on the server's TCP port receives it over the link.
  const nc = await connect({ servers: srv.url });
  const native = [];
  nc.subscribe("demo.>", { callback: (_e, m) => native.push(`${m.subject}=${m.string()}`) });
  await nc.flush();
  await page.fill("#pub-subject", "demo.greeting");
  await page.fill("#pub-data", "hello from the inspector");
  await page.click("#pub-send");
  await page.waitForFunction(() => document.getElementById("msg-log").textContent.includes("hello from the inspector"));
  const deadline = Date.now() + 30000;
  while (!native.includes("demo.greeting=hello from the inspector") && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(native.includes("demo.greeting=hello from the inspector"), JSON.stringify(native));

  // A native publish shows up in the page's log; a native request is answered by the page.
  nc.publish("demo.native", "hello from Node");
  await page.waitForFunction(() => document.getElementById("msg-log").textContent.includes("hello from Node"), null, { timeout: 30000 });
  const echo = await nc.request("demo.echo", "ping", { timeout: 10000 });
  assert.equal(echo.string(), "echo from the page: ping");

  // A stream and a KV value appear in the inspector's tables.
  await page.click("#stream-add");
  await page.waitForFunction(() => document.getElementById("streams").textContent.includes("DEMO"), null, { timeout: 30000 });
  await page.click("#kv-put");
  await page.waitForFunction(() => document.getElementById("kv-buckets").textContent.includes("dark"), null, { timeout: 30000 });

  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, "demo.png"), fullPage: true });
  await nc.close();
  await page.close();
  assert.deepEqual(errors, []);
});
