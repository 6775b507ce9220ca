// Push consumers' consume() in the page (issue 12, "Edges done right"), checked against
// nats.js on the server: the same scenario runs in both and must give the same answers.
//  - a durable push consumer (deliver_subject, explicit acks, a filter) delivers its
//    messages to consume(), and the acks move its ack floor;
//  - an ordered push consumer delivers the whole stream in order, across the engine's flow
//    control (the page answers its requests: 2100 messages pass the 2048-message window);
//  - the typed managers' listings are nats.js `Lister`s (for await, next());
//  - the page's engine starts a push consumer when its subscriber appears (as the server does).
// Needs `bash web/build.sh` (and the release server, or EDGEBUS_SERVER_CMD=nats-server).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { startServer } from "./server.mjs";
import { launch, PACKAGE_PAGE, requirePackage, serveOn } from "./page.mjs";

let httpServer;
let browser;
let page;
let base;
let srv;

before(async () => {
  requirePackage();
  ({ server: httpServer, base } = await serveOn({ "/push.html": PACKAGE_PAGE }));
  ({ browser, page } = await launch());
  await page.goto(`${base}/push.html`);
  await page.waitForFunction(() => window.ready === true);
});

after(async () => {
  if (browser) await browser.close();
  if (srv) await srv.stop();
  if (httpServer) await new Promise((r) => httpServer.close(r));
});

/** Runs in Node (nats.js) and, as source text, in the page (edgebus). */
async function pushChecks({ jsm, js }) {
  const out = {};
  await jsm.streams.add({ name: "PUSH", subjects: ["push.>"] });
  const acks = [];
  for (let i = 1; i <= 1500; i++) acks.push(js.publish(`push.${i % 3}`, new TextEncoder().encode(`m${i}`)));
  out.published = (await Promise.all(acks)).length;

  await jsm.consumers.add("PUSH", {
    durable_name: "pd",
    ack_policy: "explicit",
    deliver_subject: "deliver.pd",
    filter_subject: "push.1",
  });
  const pc = await js.consumers.getPushConsumer("PUSH", "pd");
  out.kind = [pc.isPushConsumer(), pc.isPullConsumer()];
  const msgs = await pc.consume();
  const got = [];
  for await (const m of msgs) {
    got.push(`${m.subject}:${m.string()}:${m.seq}`);
    m.ack();
    if (got.length === 500) break;
  }
  out.durable = { count: got.length, first: got[0], last: got[got.length - 1] };
  const ci = await jsm.consumers.info("PUSH", "pd");
  // nats-server moves a filtered consumer's ack floor past the last stream message (1500)
  // lazily: 1498 (the last acked) or 1500, depending on timing
  const floor = ci.ack_floor.stream_seq;
  out.durableInfo = { floorPastLastAck: floor >= 1498 && floor <= 1500, pending: ci.num_pending, ackPending: ci.num_ack_pending };

  const oc = await js.consumers.getPushConsumer("PUSH");
  const om = await oc.consume();
  let n = 0;
  let inOrder = true;
  for await (const m of om) {
    n++;
    if (m.seq !== n || m.string() !== `m${n}`) inOrder = false;
    if (n === 1500) break;
  }
  out.ordered = { n, inOrder };

  const names = [];
  for await (const s of jsm.streams.names()) names.push(s);
  const listed = [];
  for await (const s of jsm.streams.list()) listed.push(`${s.config.name}:${s.state.messages}`);
  const consumers = (await jsm.consumers.list("PUSH").next()).map((c) => c.name).filter((c) => c === "pd");
  out.listings = { names, listed, consumers };
  out.deleted = await jsm.streams.delete("PUSH");
  return out;
}

const WANT = {
  published: 1500,
  kind: [true, false],
  durable: { count: 500, first: "push.1:m1:1", last: "push.1:m1498:1498" },
  durableInfo: { floorPastLastAck: true, pending: 0, ackPending: 0 },
  ordered: { n: 1500, inOrder: true },
  listings: { names: ["PUSH"], listed: ["PUSH:1500"], consumers: ["pd"] },
  deleted: true,
};

test("nats.js against the server: durable and ordered push consumers, listings", async () => {
  srv = await startServer("", { jetstream: true });
  const nc = await connect({ servers: srv.url });
  try {
    const got = await pushChecks({ jsm: await jetstreamManager(nc), js: jetstream(nc) });
    assert.deepEqual(got, WANT);
  } finally {
    await nc.close();
  }
});

test("the page: the same push consumers and listings as nats.js, and flow control answered", async () => {
  const got = await page.evaluate(async (src) => {
    const { open } = window.edgebus;
    const bus = await open({ name: "push-1" });
    const check = eval(`(${src})`);
    try {
      return await check({ jsm: await bus.jetstreamManager(), js: bus.jetstream() });
    } finally {
      await bus.close();
    }
  }, pushChecks.toString());
  assert.deepEqual(got, WANT);

  // the page's own view of the ordered consumer: flow-control requests answered (the engine
  // asks after 1024 unanswered messages and stops at 2048: the stored 2100 take two
  // requests), a consumer recreated when a delivery is missing
  const status = await page.evaluate(async () => {
    const { open } = window.edgebus;
    const bus = await open({ name: "push-2" });
    const jsm = await bus.jetstreamManager();
    const js = bus.jetstream();
    await jsm.streams.add({ name: "FC", subjects: ["fc.>"] });
    await Promise.all(Array.from({ length: 2100 }, (_, i) => js.publish("fc.x", `${i + 1}`)));
    const oc = await js.consumers.getPushConsumer("FC", { filter_subjects: "fc.>" });
    const seen = [];
    const notes = [];
    const done = new Promise((resolve) => {
      oc.consume({
        callback: (m) => {
          seen.push(m.seq);
          if (seen.length === 2100) resolve();
        },
      }).then((msgs) => {
        (async () => {
          for await (const n of msgs.status()) notes.push(n.type);
        })();
        window.msgs = msgs;
      });
    });
    await done;
    const info = await oc.info();
    await window.msgs.close();
    await bus.close();
    return {
      count: seen.length,
      inOrder: seen.every((s, i) => s === i + 1),
      flowControl: notes.filter((t) => t === "flow_control").length,
      config: { ack: info.config.ack_policy, fc: info.config.flow_control, mem: info.config.mem_storage },
    };
  });
  assert.deepEqual(status, { count: 2100, inOrder: true, flowControl: 2, config: { ack: "none", fc: true, mem: true } });
});

test("the page: a durable push consumer needs a deliver_subject", async () => {
  const got = await page.evaluate(async () => {
    const { open, InvalidArgumentError } = window.edgebus;
    const bus = await open({ name: "push-3" });
    const jsm = await bus.jetstreamManager();
    await jsm.streams.add({ name: "PULL", subjects: ["pull.>"] });
    await jsm.consumers.add("PULL", { durable_name: "p", ack_policy: "explicit" });
    try {
      await bus.jetstream().consumers.getPushConsumer("PULL", "p");
      return "no error";
    } catch (e) {
      return { isArg: e instanceof InvalidArgumentError, message: e.message };
    } finally {
      await bus.close();
    }
  });
  assert.deepEqual(got, { isArg: true, message: "consumer p is a pull consumer (no deliver_subject)" });
});

// nats.js (and this package's ordered consumer) create the push consumer before consume()
// subscribes its deliver subject, so the engine first finds nobody listening. nats-server
// starts delivering when the subscription arrives; the page's engine used to wait for its
// 50 ms interest poll. Here the page's clock is paused (Playwright's fake timers), so the
// poll never comes: the stored message must reach consume() before a marker published
// right after it, or not at all.
test("the page: an ordered push consumer delivers as soon as consume() subscribes, not at the interest poll", async () => {
  const p = await browser.newPage();
  try {
    await p.clock.install();
    await p.goto(`${base}/push.html`);
    await p.waitForFunction(() => window.ready === true);
    await p.evaluate(async () => {
      // in memory: with IndexedDB the engine's output waits for its commit, which the
      // marker (routed by the bus alone) does not
      const bus = await window.edgebus.open({ name: "push-4", storage: "memory" });
      const jsm = await bus.jetstreamManager();
      await jsm.streams.add({ name: "OC", subjects: ["oc.>"] });
      await bus.jetstream().publish("oc.1", "one");
      window.bus = bus;
    });
    // from here on no page timer fires unless the test runs the clock
    await p.clock.pauseAt(Date.now() + 60_000);
    const seen = await p.evaluate(async () => {
      const bus = window.bus;
      const seen = [];
      const marked = new Promise((resolve) => {
        bus.subscribe("marker", { callback: () => { seen.push("marker"); resolve(); } });
      });
      const oc = await bus.jetstream().consumers.getPushConsumer("OC");
      const msgs = await oc.consume({ callback: (m) => seen.push(`oc:${m.string()}`) });
      bus.publish("marker");
      await marked;
      window.msgs = msgs;
      return seen;
    });
    assert.deepEqual(seen, ["oc:one", "marker"]);
    await p.clock.resume();
    await p.evaluate(async () => {
      await window.msgs.close();
      await window.bus.close();
    });
  } finally {
    await p.close();
  }
});
