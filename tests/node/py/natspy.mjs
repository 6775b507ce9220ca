// Drives tests/node/py/natspy.py, a real nats-py client, from a Node test: `call(op, args)`
// sends one command and resolves with its answer; messages on its subscriptions are queued
// per subscription name and taken with `next(name)`.
import { spawn } from "node:child_process";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PYTHON = process.env.PYTHON || "python3";

/** Starts the helper and connects it to `url` (nats://…). */
export async function natsPy(url) {
  const child = spawn(PYTHON, [path.join(HERE, "natspy.py")], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => { stderr = (stderr + d).slice(-4000); });
  const pending = new Map();
  const queues = new Map();
  const waiters = new Map();
  let exited = null;
  let nextId = 1;

  const queue = (name) => {
    if (!queues.has(name)) queues.set(name, []);
    return queues.get(name);
  };
  const failAll = (why) => {
    for (const { reject } of pending.values()) reject(new Error(why));
    pending.clear();
    for (const ws of waiters.values()) for (const w of ws.splice(0)) w.reject(new Error(why));
  };
  child.on("exit", (code, sig) => {
    exited = { code, sig };
    failAll(`natspy.py exited (${code ?? sig}): ${stderr}`);
  });
  createInterface({ input: child.stdout }).on("line", (line) => {
    let m;
    try { m = JSON.parse(line); } catch { return; }
    if (m.event === "msg") {
      const ws = waiters.get(m.sub);
      const w = ws?.shift();
      if (w) w.resolve(m);
      else queue(m.sub).push(m);
      return;
    }
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if ("error" in m) p.reject(new Error(`natspy ${p.op}: ${m.error}`));
    else p.resolve(m.ok);
  });

  const call = (op, args = {}) => new Promise((resolve, reject) => {
    if (exited) return reject(new Error(`natspy.py is gone (${JSON.stringify(exited)}): ${stderr}`));
    const id = nextId++;
    pending.set(id, { resolve, reject, op });
    child.stdin.write(`${JSON.stringify({ id, op, ...args })}\n`);
  });

  /** The next message on subscription `name` (waits up to `ms`). */
  const next = (name, ms = 30000) => {
    const q = queue(name);
    if (q.length) return Promise.resolve(q.shift());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const ws = waiters.get(name) || [];
        const i = ws.indexOf(w);
        if (i >= 0) ws.splice(i, 1);
        reject(new Error(`no message on ${name} within ${ms} ms`));
      }, ms);
      const w = {
        resolve: (m) => { clearTimeout(timer); resolve(m); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      };
      if (!waiters.has(name)) waiters.set(name, []);
      waiters.get(name).push(w);
    });
  };

  const close = async () => {
    if (exited) return;
    try { await call("close"); } catch { /* already failing */ }
    child.stdin.end();
    await new Promise((r) => (exited ? r() : child.once("exit", r)));
  };

  await call("connect", { url });
  return { call, next, close, queued: (name) => queue(name).length };
}
