// Several tabs (and a worker) of one origin opening one bus name with IndexedDB storage share
// one bus: the store's one writer (a Web Lock held for the owner's life) leads, every other
// context is its client over a BroadcastChannel, and when the leader goes the next one takes
// the store over. No tab's acknowledged message is ever overwritten, lost or acknowledged
// twice. Needs `bash web/build.sh` first (tests/setup.sh runs it).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch, PACKAGE_PAGE, openTabs, requirePackage, serveOn, STORAGE } from "./page.mjs";

const PER_TAB = 300;

let httpServer;
let browser;
let base;

before(async () => {
  requirePackage();
  ({ server: httpServer, base } = await serveOn({ "/tabs-test.html": PACKAGE_PAGE }));
  ({ browser } = await launch());
});

after(async () => {
  if (browser) await browser.close();
  if (httpServer) await new Promise((r) => httpServer.close(r));
});

/** `count` tabs of one origin showing the test page. */
function tabs(count) {
  return openTabs(browser, `${base}/tabs-test.html`, count);
}

async function reload(page) {
  await page.reload();
  await page.waitForFunction(() => window.ready === true);
}

/** Opens bus `name` in the page as `window.bus`; resolves with the error's name if it failed. */
function openIn(page, name, opts = {}) {
  return page.evaluate(async ({ name, opts, storage }) => {
    try {
      window.bus = await window.edgebus.open({ name, storage, ...opts });
      return null;
    } catch (e) {
      window.openError = { name: e.name, message: e.message };
      return e.name;
    }
  }, { name, opts, storage: STORAGE });
}

const role = (page) => page.evaluate(() => window.bus.info().role);

/** Every message of stream `S` in the page's bus, as `{ [seq]: payload }`. */
function readStream(page) {
  return page.evaluate(async () => {
    const jsm = await window.bus.jetstreamManager();
    const total = (await jsm.streams.info("S")).state.messages;
    await jsm.consumers.add("S", { durable_name: "check", ack_policy: "none" });
    const c = await window.bus.jetstream().consumers.get("S", "check");
    const stored = {};
    let got = 0;
    while (got < total) {
      const batch = await c.fetch({ max_messages: total - got, expires: 2000 });
      if (batch.messages.length === 0) break;
      for (const m of batch.messages) stored[m.info.streamSequence] = m.string();
      got += batch.messages.length;
    }
    return { total, stored };
  });
}


/** Creates stream `S` (once: the others find it) and publishes `n` messages from every tab at
 *  the same time; resolves with every acknowledgement `{ seq, data }`. */
async function publishFromAll(pages, n) {
  const published = await Promise.all(pages.map((p, tab) => p.evaluate(async ({ tab, n }) => {
    const jsm = await window.bus.jetstreamManager();
    await jsm.streams.add({ name: "S", subjects: ["s.>"], storage: "file" });
    const js = window.bus.jetstream();
    const acks = [];
    for (let i = 0; i < n; i++) {
      const data = `tab${tab}-${i}`;
      const ack = await js.publish(`s.${tab}`, data);
      acks.push({ seq: ack.seq, data });
    }
    return acks;
  }, { tab, n })));
  return published.flat();
}

for (const count of [2, 3]) {
  test(`${count} tabs open one ${STORAGE} bus and publish into one stream at once: one leads, every ack is kept once`, async () => {
    const name = `tabs-share-${count}`;
    const { context, pages, errors } = await tabs(count);
    await pages[0].evaluate((name) => window.edgebus.deleteStorage(name), name);
    // all open before any writes; on a bus that is not shared the later ones are refused
    // (StorageLockedError) or, without the lock, overwrite each other's acknowledged messages
    const opened = await Promise.all(pages.map((p) => openIn(p, name)));
    assert.deepEqual(opened, pages.map(() => null), `open results: ${JSON.stringify(opened)}`);
    const roles = await Promise.all(pages.map(role));
    assert.deepEqual(roles.filter((r) => r === "leader").length, 1, `roles: ${roles}`);
    assert.deepEqual(roles.filter((r) => r === "client").length, count - 1, `roles: ${roles}`);

    const acked = await publishFromAll(pages, PER_TAB);
    assert.equal(acked.length, PER_TAB * count);
    // nothing acknowledged twice: every ack has its own sequence
    assert.equal(new Set(acked.map((a) => a.seq)).size, acked.length, "two acks with one sequence");

    for (const p of pages) await reload(p);
    assert.equal(await openIn(pages[0], name), null);
    const { total, stored } = await readStream(pages[0]);
    const missing = acked.filter(({ seq, data }) => stored[seq] !== data);
    assert.deepEqual(missing.slice(0, 5), [], `${missing.length} of ${acked.length} acknowledged messages lost`);
    assert.equal(total, acked.length);
    await pages[0].evaluate(async (name) => { await window.bus.close(); await window.edgebus.deleteStorage(name); }, name);
    assert.deepEqual(errors, []);
    await context.close();
  });
}

test("one bus across tabs: a subscription in one tab gets another tab's publish, a request is answered in another tab", async () => {
  const { context, pages, errors } = await tabs(3);
  const [a, b, c] = pages;
  await a.evaluate(() => window.edgebus.deleteStorage("tabs-msgs"));
  for (const p of pages) assert.equal(await openIn(p, "tabs-msgs"), null);
  assert.deepEqual(await Promise.all(pages.map(role)), ["leader", "client", "client"]);
  // b and c collect `chat.>` until the marker `chat.end`
  for (const p of [b, c]) {
    await p.evaluate(() => {
      window.got = new Promise((resolve) => {
        const seen = [];
        window.bus.subscribe("chat.>", { callback: (_e, m) => {
          if (m.subject === "chat.end") resolve(seen); else seen.push(`${m.subject}:${m.string()}`);
        } });
      });
      window.bus.subscribe("svc.echo", { queue: "echo", callback: (_e, m) => m.respond(`${window.tabName}:${m.string()}`) });
    });
  }
  await b.evaluate(() => { window.tabName = "b"; });
  await c.evaluate(() => { window.tabName = "c"; });
  await b.evaluate(() => window.bus.flush());
  await c.evaluate(() => window.bus.flush());
  await a.evaluate(() => { window.bus.publish("chat.a", "from a"); });
  await c.evaluate(async () => { window.bus.publish("chat.c", "from c"); await window.bus.flush(); });
  await a.evaluate(() => { window.bus.publish("chat.end", ""); });
  const gotB = await b.evaluate(() => window.got);
  const gotC = await c.evaluate(() => window.got);
  assert.deepEqual(gotB, ["chat.a:from a", "chat.c:from c"]);
  // a tab gets its own publish once (the leader does not echo it back); its own arrives
  // locally, so it may come before a's
  assert.deepEqual(gotC.sort(), ["chat.a:from a", "chat.c:from c"]);

  // a request from the leader tab, and from a client tab, answered in the other client tabs
  const fromA = await a.evaluate(async () => (await window.bus.request("svc.echo", "ping-a", { timeout: 3000 })).string());
  assert.match(fromA, /^[bc]:ping-a$/);
  await b.evaluate(() => window.bus.subscribe("svc.only-b", { callback: (_e, m) => m.respond(`b:${m.string()}`) }));
  await b.evaluate(() => window.bus.flush());
  const fromC = await c.evaluate(async () => (await window.bus.request("svc.only-b", "ping-c", { timeout: 3000 })).string());
  assert.equal(fromC, "b:ping-c");

  // a fetch in the leader tab delivers a stored message to the leader's inbox under the
  // stream's subject: a subscriber on that subject in another tab must not get it again
  await b.evaluate(() => {
    window.gotJs = new Promise((resolve) => {
      const seen = [];
      window.bus.subscribe("js.>", { callback: (_e, m) => {
        if (m.subject === "js.end") resolve(seen); else seen.push(`${m.subject}:${m.string()}`);
      } });
    });
  });
  await a.evaluate(async () => {
    const jsm = await window.bus.jetstreamManager();
    await jsm.streams.add({ name: "J", subjects: ["js.>"], storage: "file" });
    await window.bus.jetstream().publish("js.1", "stored");
    await jsm.consumers.add("J", { durable_name: "c", ack_policy: "explicit" });
    const c = await window.bus.jetstream().consumers.get("J", "c");
    const batch = await c.fetch({ max_messages: 1, expires: 2000 });
    for (const m of batch.messages) m.ack();
    window.bus.publish("js.end", "");
  });
  assert.deepEqual(await b.evaluate(() => window.gotJs), ["js.1:stored"]);
  for (const p of [c, b, a]) await p.evaluate(() => window.bus.close());
  await a.evaluate(() => window.edgebus.deleteStorage("tabs-msgs"));
  assert.deepEqual(errors, []);
  await context.close();
});

for (const kill of ["close", "crash"]) {
  test(`the leader tab goes mid-stream (${kill === "close" ? "page.close() without bus.close()" : "renderer crash via CDP"}): the other tab takes over, keeps publishing, nothing acknowledged is lost`, async () => {
    const name = `tabs-kill-${kill}`;
    const { context, pages } = await tabs(2);
    const [a, b] = pages;
    await a.evaluate((name) => window.edgebus.deleteStorage(name), name);
    assert.equal(await openIn(a, name), null);
    assert.equal(await openIn(b, name), null);
    assert.deepEqual([await role(a), await role(b)], ["leader", "client"]);
    // both publish in a loop and report each ack as it comes; a publish in flight when the
    // leader goes may fail (with a typed error, counted), never hang
    const acked = [];
    const failures = [];
    for (const [tab, p] of [["a", a], ["b", b]]) {
      await p.exposeFunction("reportAck", (seq, data) => acked.push({ seq, data, tab }));
      await p.exposeFunction("reportFailure", (name) => failures.push(name));
    }
    await a.evaluate(async () => {
      const jsm = await window.bus.jetstreamManager();
      await jsm.streams.add({ name: "S", subjects: ["s.>"], storage: "file" });
    });
    for (const [tab, p] of [["a", a], ["b", b]]) {
      await p.evaluate((tab) => {
        const js = window.bus.jetstream();
        window.stopped = false;
        window.publishing = (async () => {
          for (let i = 0; !window.stopped; i++) {
            const data = `${tab}-${i}`;
            try {
              const ack = await js.publish(`s.${tab}`, data);
              await window.reportAck(ack.seq, data);
            } catch (e) {
              await window.reportFailure(e.name);
            }
          }
        })();
      }, tab);
    }
    const count = (tab) => acked.filter((x) => x.tab === tab).length;
    while (count("a") < 100 || count("b") < 100) await new Promise((r) => setTimeout(r, 20));

    if (kill === "close") {
      await a.close();
    } else {
      const cdp = await context.newCDPSession(a);
      const crashed = new Promise((r) => a.once("crash", r));
      cdp.send("Page.crash").catch(() => {}); // never answered: the session goes with the renderer
      await crashed;
    }
    const atKill = count("b");
    // b carries on: its publishes keep being acknowledged, now by itself as the leader
    while (count("b") < atKill + 100) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await role(b), "leader");
    await b.evaluate(async () => { window.stopped = true; await window.publishing; });
    assert.ok(failures.every((f) => f === "TimeoutError"), `failures: ${failures}`);
    assert.equal(new Set(acked.map((x) => x.seq)).size, acked.length, "two acks with one sequence");

    const { stored } = await readStream(b);
    const missing = acked.filter(({ seq, data }) => stored[seq] !== data);
    assert.deepEqual(missing.slice(0, 5), [], `${missing.length} of ${acked.length} acknowledged messages lost`);
    await b.evaluate(async (name) => { await window.bus.close(); await window.edgebus.deleteStorage(name); }, name);
    await context.close();
  });
}

test("publishes a client made that the old leader never confirmed reach the stream when the client takes over", async () => {
  const { context, pages, errors } = await tabs(2);
  const [a, b] = pages;
  await a.evaluate(() => window.edgebus.deleteStorage("tabs-outbox"));
  assert.equal(await openIn(a, "tabs-outbox"), null);
  assert.equal(await openIn(b, "tabs-outbox"), null);
  await a.evaluate(async () => {
    const jsm = await window.bus.jetstreamManager();
    await jsm.streams.add({ name: "S", subjects: ["s.>"], storage: "file" });
  });
  // the leader stops answering (its script paused in the debugger, its lock still held): b's
  // plain publishes wait in its link's outbox, unconfirmed; then the leader goes and b takes over
  const cdp = await context.newCDPSession(a);
  await cdp.send("Debugger.enable");
  await cdp.send("Debugger.pause");
  const pending = await b.evaluate(() => {
    for (let i = 0; i < 20; i++) window.bus.publish("s.plain", `plain-${i}`);
    return window.bus.raw.linkInfo().outbox;
  });
  assert.equal(pending, 20);
  await a.close();
  await b.waitForFunction(() => window.bus.info().role === "leader");
  const { stored } = await readStream(b);
  assert.deepEqual(Object.values(stored), Array.from({ length: 20 }, (_, i) => `plain-${i}`));
  await b.evaluate(async () => { await window.bus.close(); await window.edgebus.deleteStorage("tabs-outbox"); });
  assert.deepEqual(errors, []);
  await context.close();
});

test("a dedicated worker and a tab share one bus: messages, requests and the stream both ways", async () => {
  const { context, pages, errors } = await tabs(1);
  const [page] = pages;
  await page.evaluate(() => window.edgebus.deleteStorage("tabs-worker"));
  assert.equal(await openIn(page, "tabs-worker"), null);
  const r = await page.evaluate(async (storage) => {
    const jsm = await window.bus.jetstreamManager();
    await jsm.streams.add({ name: "S", subjects: ["s.>"], storage: "file" });
    const fromWorker = new Promise((resolve) => {
      window.bus.subscribe("w.hello", { callback: (_e, m) => resolve(m.string()) });
    });
    await window.bus.flush();
    const code = `
      import * as edgebus from "${location.origin}/dist/index.js";
      const bus = await edgebus.open({ name: "tabs-worker", storage: "${storage}" });
      bus.subscribe("w.echo", { callback: (_e, m) => m.respond("worker:" + m.string()) });
      await bus.flush();
      const ack = await bus.jetstream().publish("s.w", "from the worker");
      bus.publish("w.hello", "hello from the worker");
      await bus.flush();
      postMessage({ role: bus.info().role, seq: ack.seq, stream: ack.stream });`;
    const url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
    const worker = new Worker(url, { type: "module" });
    const ready = await new Promise((resolve, reject) => {
      worker.onmessage = (e) => resolve(e.data);
      worker.onerror = (e) => reject(new Error("worker: " + e.message));
    });
    const hello = await fromWorker;
    const reply = (await window.bus.request("w.echo", "ping", { timeout: 3000 })).string();
    const info = await jsm.streams.info("S");
    worker.terminate();
    return { ready, hello, reply, messages: info.state.messages, role: window.bus.info().role };
  }, STORAGE);
  assert.deepEqual(r, {
    ready: { role: "client", seq: 1, stream: "S" },
    hello: "hello from the worker",
    reply: "worker:ping",
    messages: 1,
    role: "leader",
  });
  await page.evaluate(async () => { await window.bus.close(); await window.edgebus.deleteStorage("tabs-worker"); });
  assert.deepEqual(errors, []);
  await context.close();
});

test("a client tab: JetStream requests, KV, the server link, fetch and push consume reach the leader (tabs-clients.test.mjs has more); share: false refuses with StorageLockedError", async () => {
  const { context, pages, errors } = await tabs(2);
  const [a, b] = pages;
  await a.evaluate(() => window.edgebus.deleteStorage("tabs-client"));
  assert.equal(await openIn(a, "tabs-client"), null);
  assert.equal(await openIn(b, "tabs-client", { share: false }), "StorageLockedError");
  assert.match(await b.evaluate(() => window.openError.message), /tabs-client.*another tab or worker/);
  // a client's store limits wait until it leads (its engine has no store)
  assert.equal(await openIn(b, "tabs-client", { maxFileStore: 1 << 20 }), null);
  const r = await b.evaluate(async () => {
    const out = { role: window.bus.info().role };
    for (const [what, call] of [["kv", () => window.bus.kv("settings")], ["connect", () => window.bus.connect("ws://127.0.0.1:1")]]) {
      try {
        await call();
        out[what] = "no error";
        if (what === "connect") await window.bus.link.close();
      } catch (e) {
        out[what] = `${e.name}:${e instanceof window.edgebus.NotLeaderError}`;
      }
    }
    return out;
  });
  assert.deepEqual(r, { role: "client", kv: "no error", connect: "no error" });
  // JetStream requests (publish, the managers, getMessage), pulls and push consumers reach
  // the leader's engine
  await a.evaluate(async () => {
    const jsm = await window.bus.jetstreamManager();
    await jsm.streams.add({ name: "S", subjects: ["s.>"], storage: "file" });
    await jsm.consumers.add("S", { durable_name: "c", ack_policy: "none" });
    await jsm.consumers.add("S", { durable_name: "p", ack_policy: "none", deliver_subject: "push.p" });
  });
  const js = await b.evaluate(async () => {
    const out = { seq: (await window.bus.jetstream().publish("s.b", "from b")).seq };
    const jsm = await window.bus.jetstreamManager();
    out.stored = (await jsm.streams.getMessage("S", { seq: 1 })).string();
    const c = await window.bus.jetstream().consumers.get("S", "c");
    try {
      const batch = await c.fetch({ max_messages: 1, expires: 1000 });
      out.fetch = batch.messages.map((m) => m.string());
    } catch (e) {
      out.fetch = e.name;
    }
    const pc = await window.bus.jetstream().consumers.getPushConsumer("S", "p");
    const msgs = await pc.consume();
    for await (const m of msgs) {
      out.consume = `${m.subject}=${m.string()}`;
      m.ack();
      break;
    }
    return out;
  });
  assert.deepEqual(js, { seq: 1, stored: "from b", fetch: ["from b"], consume: "s.b=from b" });
  for (const p of [b, a]) await p.evaluate(() => window.bus.close());
  await a.evaluate(() => window.edgebus.deleteStorage("tabs-client"));
  assert.deepEqual(errors, []);
  await context.close();
});

test(`without navigator.locks, ${STORAGE} storage is refused (memory storage still opens)`, async () => {
  const { context, pages, errors } = await tabs(1);
  const r = await pages[0].evaluate(async (storage) => {
    Object.defineProperty(Navigator.prototype, "locks", { get: () => undefined, configurable: true });
    const out = {};
    try {
      await window.edgebus.open({ name: "tabs-nolocks", storage });
      out.idb = "opened";
    } catch (e) {
      out.idb = e.name;
      out.message = e.message;
    }
    const mem = await window.edgebus.open({ name: "tabs-nolocks", storage: "memory" });
    out.memory = mem.info().storage;
    await mem.close();
    return out;
  }, STORAGE);
  assert.equal(r.idb, "StorageError");
  assert.match(r.message, /navigator\.locks/);
  assert.equal(r.memory, "memory");
  assert.deepEqual(errors, []);
  await context.close();
});
