// The package in a Vite app (tests/vite-app: edgebus as a file: dependency on web/, vite
// pinned in its package-lock.json, installed by tests/setup.sh): `vite build` must resolve
// the package through its exports and bundle the wasm; the built app, served as static
// files, runs the shared API walk (fixtures/exercise.js) on an IndexedDB bus in headless
// Chromium. The same app under Vite's dev server too. Needs `bash web/build.sh`.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { CHROMIUM, CHROMIUM_ARGS } from "./page.mjs";
import { REPO, freePort } from "./server.mjs";
import { EXPECTED } from "./fixtures/exercise.js";
import { serve } from "../../web/serve.mjs";

const APP = path.join(REPO, "tests", "vite-app");
const VITE = path.join(APP, "node_modules", "vite", "bin", "vite.js");

const outDir = mkdtempSync(path.join(os.tmpdir(), "edgebus-vite-"));
let httpServer;
let browser;
let dev;

after(async () => {
  if (dev && dev.exitCode === null) {
    const gone = new Promise((r) => dev.once("exit", r));
    dev.kill("SIGTERM");
    await gone;
  }
  if (browser) await browser.close();
  if (httpServer) await new Promise((r) => httpServer.close(r));
  rmSync(outDir, { recursive: true, force: true });
});

function viteBuild() {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [VITE, "build", "--outDir", outDir, "--emptyOutDir"], {
      cwd: APP,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let log = "";
    child.stdout.on("data", (d) => { log += d; });
    child.stderr.on("data", (d) => { log += d; });
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve(log) : reject(new Error(`vite build exited ${code}:\n${log}`))));
  });
}

/** Loads the app at `url` and checks what the walk reported. */
async function checkApp(url) {
  browser ??= await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("requestfailed", (r) => errors.push(`request failed: ${r.url()}`));
  page.on("response", (r) => { if (r.status() >= 400) errors.push(`${r.status()} ${r.url()}`); });
  await page.goto(url);
  await page.waitForFunction(() => window.result !== undefined, null, { timeout: 60000 });
  const r = await page.evaluate(() => window.result);
  assert.equal(r.ok, true, r.error);
  const { storage, reopened, ...rest } = r.result;
  assert.equal(storage, "indexeddb");
  assert.deepEqual(rest, EXPECTED);
  assert.deepEqual(reopened, { messages: 2, theme: "dark" });
  assert.match(await page.textContent("#out"), /"ok": true/);
  assert.deepEqual(errors, []);
  await page.close();
}

test("vite build bundles edgebus (and its wasm); the built app runs a bus in Chromium", async () => {
  assert.ok(existsSync(path.join(REPO, "web", "dist", "index.js")), "web/dist is missing: run bash web/build.sh");
  assert.ok(existsSync(VITE), "vite is not installed in tests/vite-app: run bash tests/setup.sh");
  await viteBuild();
  const assets = readdirSync(path.join(outDir, "assets"));
  assert.ok(assets.some((f) => f.endsWith(".wasm")), `the wasm is among the built assets: ${assets}`);

  httpServer = await serve({ root: outDir, port: 0 });
  await checkApp(`http://127.0.0.1:${httpServer.address().port}/`);
});

test("the same app runs under Vite's dev server", async () => {
  assert.ok(existsSync(VITE), "vite is not installed in tests/vite-app: run bash tests/setup.sh");
  const port = await freePort();
  // No colours: with CI set, vite's colour library turns them on even without a terminal,
  // and the port in its banner is then wrapped in escape codes.
  dev = spawn(process.execPath, [VITE, "--host", "127.0.0.1", "--port", String(port), "--strictPort"], {
    cwd: APP,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" },
  });
  let log = "";
  const ready = new Promise((resolve, reject) => {
    const seen = (d) => {
      log += d;
      // eslint-disable-next-line no-control-regex
      if (log.replace(/\x1b\[[0-9;]*m/g, "").includes(`127.0.0.1:${port}`)) resolve();
    };
    dev.stdout.on("data", seen);
    dev.stderr.on("data", seen);
    dev.once("exit", (code) => reject(new Error(`vite exited ${code}:\n${log}`)));
  });
  let timer;
  await Promise.race([ready, new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`vite dev server not ready:\n${log}`)), 60000);
  })]).finally(() => clearTimeout(timer));
  await checkApp(`http://127.0.0.1:${port}/`);
});
