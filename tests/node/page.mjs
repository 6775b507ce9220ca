// What the browser tests share: Debian's Chromium, launched headless the same way each time,
// and a page that imports the package from web/ as a web app would.
import assert from "node:assert/strict";
import http from "node:http";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { HOST, REPO } from "./server.mjs";
import { serve } from "../../web/serve.mjs";

export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
export const WEB = path.join(REPO, "web");

/** The persisted storages, each running the same page tests. */
export const STORAGES = ["indexeddb", "opfs"];
/** The storage a whole storage suite runs with: `indexeddb`, or what a wrapper
 *  (`*.opfs.test.mjs`) set before importing the suite, so one file serves both. */
export const STORAGE = globalThis.EDGEBUS_STORAGE ?? "indexeddb";

/** A blank page that imports the package and sets `window.edgebus` and `window.ready`. */
export const PACKAGE_PAGE = `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head>
<body><script type="module">
  import * as edgebus from "/dist/index.js";
  window.edgebus = edgebus;
  window.ready = true;
</script></body></html>`;

/** Fails early, with the fix, when the package has not been built. */
export function requirePackage() {
  assert.ok(existsSync(path.join(WEB, "dist", "index.js")) && existsSync(path.join(WEB, "pkg", "edgebus_wasm_bg.wasm")),
    "web/dist and web/pkg are missing: run bash web/build.sh");
}

/** Serves `root` (default web/) plus `pages` on a free loopback port. */
export async function serveOn(pages, root = WEB) {
  const server = await serve({ root, port: 0, pages });
  return { server, base: `http://127.0.0.1:${server.address().port}` };
}

/** Headless Chromium showing the package page at `file` (served with web/), once the page
 *  says it is ready (`window.ready`); `close()` ends the browser and the HTTP server. */
export async function openPackagePage(file) {
  requirePackage();
  const { server, base } = await serveOn({ [file]: PACKAGE_PAGE });
  const { browser, page, errors } = await launch();
  const close = async () => {
    await browser.close();
    await new Promise((r) => server.close(r));
  };
  try {
    await page.goto(`${base}${file}`);
    await page.waitForFunction(() => window.ready === true);
  } catch (e) {
    await close();
    throw e;
  }
  return { browser, page, errors, base, close };
}

/** Headless Chromium with one page; the page's uncaught errors are collected in `errors`. */
export async function launch() {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} missing: apt-get install -y chromium (tests/setup.sh does it)`);
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  return { browser, page, errors };
}

/** `count` tabs of one origin showing `url` (one browser context: they share IndexedDB,
 *  OPFS and Web Locks), each ready; page errors are collected in `errors`. */
export async function openTabs(browser, url, count) {
  const context = await browser.newContext();
  const pages = [];
  const errors = [];
  for (let i = 0; i < count; i++) {
    const page = await context.newPage();
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(url);
    await page.waitForFunction(() => window.ready === true);
    pages.push(page);
  }
  return { context, pages, errors };
}

/** nats.ws's browser build, for pages that use it as a web app would. */
const NATS_WS_BUNDLE = path.join(REPO, "tests", "node", "node_modules", "nats.ws", "esm", "nats.js");

/** Serves `html` at `/` (and `/index.html`) and nats.ws at `/nats.js` on a free loopback
 *  port; resolves to the listening `http.Server`. */
export function serveNatsWsPage(html) {
  const bundle = readFileSync(NATS_WS_BUNDLE);
  const srv = http.createServer((req, res) => {
    if (req.url === "/" || req.url === "/index.html") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(html);
    } else if (req.url === "/nats.js") {
      res.writeHead(200, { "content-type": "text/javascript" });
      res.end(bundle);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  return new Promise((resolve) => srv.listen(0, HOST, () => resolve(srv)));
}

/** Polls `check` every 25 ms until it returns something truthy or `ms` have passed; returns
 *  its last value (the caller asserts on it, with its own message). */
export async function pollUntil(check, ms = 5000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A headless Chromium page loading `html` (served with nats.ws, see `serveNatsWsPage`),
 *  once it set `window.ready`, with its `window.bus` connected to `server` over WebSocket.
 *  Page errors go into `errors`. */
export async function openNatsWsPage(html, server, errors) {
  const web = await serveNatsWsPage(html);
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  const page = await browser.newPage();
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`http://${HOST}:${web.address().port}/`);
  await page.waitForFunction(() => window.ready === true, null, { timeout: 10000 });
  await page.evaluate((url) => window.bus.connect(url), server.wsUrl);
  return { web, browser, page };
}
