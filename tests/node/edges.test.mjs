// The page's edges (issue 12, "Edges done right"), in headless Chromium, and the same checks
// with nats.js against the server (edgebus-server, or nats-server with
// EDGEBUS_SERVER_CMD=nats-server) where the behaviour is nats.js's:
//  - names: a bad stream/consumer/bucket name fails at once with nats.js's InvalidNameError
//    and message, an empty one says "stream name required" (no internal subject);
//  - `jsm.streams.getMessage()` gives a stored message (Uint8Array data, headers), null when
//    there is none; header lookup ignores case;
//  - error classes: `instanceof` works, the JetStream `code`/`err_code` are kept;
//  - the page's max_payload: 1 MiB by default (as nats-server), `open({ maxPayload })`.
// Needs `bash web/build.sh` (and the release server for the nats.js half).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { connect, headers, Match } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, JetStreamApiError } from "@nats-io/jetstream";
import { startServer } from "./server.mjs";
import { launch, PACKAGE_PAGE, requirePackage, serveOn } from "./page.mjs";

let httpServer;
let browser;
let page;
let base;
let srv;

before(async () => {
  requirePackage();
  ({ server: httpServer, base } = await serveOn({ "/edges.html": PACKAGE_PAGE }));
  ({ browser, page } = await launch());
  await page.goto(`${base}/edges.html`);
  await page.waitForFunction(() => window.ready === true);
});

after(async () => {
  if (browser) await browser.close();
  if (srv) await srv.stop();
  if (httpServer) await new Promise((r) => httpServer.close(r));
});

/** The checks both clients answer alike. `lib`: `{ jsm, js, headers, ignoreCase,
 *  JetStreamApiError }`. Runs in
 *  Node (nats.js) and, as source text, in the page (edgebus). */
async function nameAndMessageChecks(lib) {
  const { jsm, js } = lib;
  const out = {};
  const fail = async (f) => {
    try {
      await f();
      return "no error";
    } catch (e) {
      return { name: e.name, message: e.message };
    }
  };
  out.badStream = await fail(() => jsm.streams.add({ name: "bad.name", subjects: ["bad.x"] }));
  out.badStreamStar = await fail(() => jsm.streams.info("a*b"));
  out.emptyStream = await fail(() => jsm.streams.add({ name: "", subjects: ["empty.x"] }));
  out.badConsumer = await fail(() => jsm.consumers.info("EDGES", "c.1"));

  await jsm.streams.add({ name: "EDGES", subjects: ["edges.>"] });
  const h = lib.headers();
  h.set("X-Trace-Id", "t-1");
  await js.publish("edges.a", new TextEncoder().encode("hello"), { headers: h });
  const sm = await jsm.streams.getMessage("EDGES", { seq: 1 });
  out.stored = {
    subject: sm.subject,
    seq: sm.seq,
    dataIsBytes: sm.data instanceof Uint8Array,
    data: new TextDecoder().decode(sm.data),
    trace: sm.header.get("X-Trace-Id"),
    traceAnyCase: sm.header.get("x-trace-id", lib.ignoreCase),
    hasTime: sm.time instanceof Date && !Number.isNaN(sm.time.getTime()),
  };
  out.missing = await jsm.streams.getMessage("EDGES", { seq: 99 });
  const e = await (async () => {
    try {
      await jsm.streams.info("NOPE");
    } catch (err) {
      return err;
    }
  })();
  // nats.js names this one StreamNotFoundError, a JetStreamApiError subclass; the page keeps
  // JetStreamApiError as its name.
  out.notFound = {
    isApiError: e instanceof lib.JetStreamApiError,
    message: e.message,
    status: e.status,
    apiErrCode: e.apiError().err_code,
  };
  await jsm.streams.delete("EDGES");
  return out;
}

const WANT = {
  badStream: { name: "InvalidNameError", message: "stream name ('bad.name') cannot contain '.'" },
  badStreamStar: { name: "InvalidNameError", message: "stream name ('a*b') cannot contain '*'" },
  badConsumer: { name: "InvalidNameError", message: "durable name ('c.1') cannot contain '.'" },
  stored: { subject: "edges.a", seq: 1, dataIsBytes: true, data: "hello", trace: "t-1", traceAnyCase: "t-1", hasTime: true },
  missing: null,
  notFound: { isApiError: true, message: "stream not found", status: 404, apiErrCode: 10059 },
};

function assertChecks(got, who) {
  for (const [k, v] of Object.entries(WANT)) assert.deepEqual(got[k], v, `${who}: ${k}`);
  // nats.js throws a plain Error for this one; the message is the same.
  assert.equal(got.emptyStream.message, "stream name required", `${who}: emptyStream`);
  assert.ok(!got.emptyStream.message.includes("$JS"), "no internal subject in the message");
}

test("nats.js against the server: names, getMessage, header case, API errors", async () => {
  srv = await startServer("", { jetstream: true });
  const nc = await connect({ servers: srv.url });
  try {
    const got = await nameAndMessageChecks({
      jsm: await jetstreamManager(nc),
      js: jetstream(nc),
      headers,
      ignoreCase: Match.IgnoreCase,
      JetStreamApiError,
    });
    assertChecks(got, "nats.js");
  } finally {
    await nc.close();
  }
});

test("the page: the same names, getMessage, header case and API errors as nats.js", async () => {
  const got = await page.evaluate(async (src) => {
    const { open, headers, Match, JetStreamApiError } = window.edgebus;
    const bus = await open({ name: "edges-1" });
    const check = eval(`(${src})`);
    try {
      return await check({ jsm: await bus.jetstreamManager(), js: bus.jetstream(), headers, ignoreCase: Match.IgnoreCase, JetStreamApiError });
    } finally {
      await bus.close();
    }
  }, nameAndMessageChecks.toString());
  assertChecks(got, "page");
  assert.equal(got.emptyStream.name, "InvalidNameError");
});

test("the page: error classes work with instanceof and keep code/err_code; header lookup ignores case by default", async () => {
  const got = await page.evaluate(async () => {
    const eb = window.edgebus;
    const bus = await eb.open({ name: "edges-2" });
    const out = {};
    const catching = async (f) => {
      try {
        await f();
      } catch (e) {
        return e;
      }
      return null;
    };
    const nr = await catching(() => bus.request("nobody.here", "x"));
    out.noResponders = [nr instanceof eb.NoRespondersError, nr instanceof Error, nr.name];
    bus.subscribe("slow.svc", { callback: () => {} }); // never answers
    const to = await catching(() => bus.request("slow.svc", "x", { timeout: 50 }));
    out.timeout = [to instanceof eb.TimeoutError, to.name];
    const jsm = await bus.jetstreamManager();
    const api = await catching(() => jsm.streams.info("NOPE"));
    out.api = [api instanceof eb.JetStreamApiError, api.name, api.code, api.err_code, api.status];
    const bad = await catching(() => jsm.streams.add({ name: "x y" }));
    out.badName = [bad instanceof eb.InvalidNameError, bad.name, bad.message];
    const bucket = await catching(() => bus.kv("bad.bucket"));
    out.badBucket = [bucket instanceof eb.InvalidNameError, bucket.message];
    const subj = await catching(() => bus.publish("a..b", "x"));
    out.badSubject = [subj instanceof eb.InvalidSubjectError, subj.name];
    await bus.close();
    const closed = await catching(() => bus.publish("a", "x"));
    out.closed = [closed instanceof eb.ClosedConnectionError, closed.name];

    const h = eb.headers();
    h.append("X-Trace-Id", "t-9");
    h.append("x-trace-id", "t-10");
    out.headers = [
      h.get("X-Trace-Id"), // the exact name first
      h.get("x-trace-id"),
      eb.MsgHdrs.fromPairs([["X-Trace-Id", "only"]]).get("x-trace-id"),
      eb.MsgHdrs.fromPairs([["X-Trace-Id", "only"]]).get("x-trace-id", eb.Match.Exact),
      eb.MsgHdrs.fromPairs([["X-Trace-Id", "only"]]).get("x-TRACE-id", eb.Match.CanonicalMIME),
      h.values("X-TRACE-ID"),
      h.has("x-TRACE-id"),
    ];
    return out;
  });
  assert.deepEqual(got.noResponders, [true, true, "NoRespondersError"]);
  assert.deepEqual(got.timeout, [true, "TimeoutError"]);
  assert.deepEqual(got.api, [true, "JetStreamApiError", 404, 10059, 404]);
  assert.deepEqual(got.badName, [true, "InvalidNameError", "stream name ('x y') cannot contain ' '"]);
  assert.deepEqual(got.badBucket, [true, "invalid bucket name: bad.bucket"]);
  assert.deepEqual(got.badSubject, [true, "InvalidSubjectError"]);
  assert.deepEqual(got.closed, [true, "ClosedConnectionError"]);
  assert.deepEqual(got.headers, ["t-9", "t-10", "only", "", "only", ["t-9", "t-10"], true]);
});

test("the page's max_payload: 1 MiB by default (MaxPayloadError, nothing delivered), raised by open({ maxPayload })", async () => {
  const got = await page.evaluate(async () => {
    const eb = window.edgebus;
    const run = async (opts) => {
      const bus = await eb.open({ name: "edges-mp", ...opts });
      const seen = [];
      bus.subscribe("big.>", { callback: (_, m) => seen.push(`${m.subject}:${m.data.length}`) });
      const out = {};
      const MiB = 1 << 20;
      bus.publish("big.at", new Uint8Array(MiB));
      try {
        bus.publish("big.over", new Uint8Array(2 * MiB));
        out.over = "accepted";
      } catch (e) {
        out.over = [e instanceof eb.MaxPayloadError, e.name, e.message, e.size, e.max];
      }
      try {
        bus.publishMany("big.many", [new Uint8Array(1), new Uint8Array(2 * MiB)]);
        out.many = "accepted";
      } catch (e) {
        out.many = [e instanceof eb.MaxPayloadError];
      }
      const r = await (async () => {
        try {
          await bus.request("big.req", new Uint8Array(2 * MiB), { timeout: 1000 });
          return "answered";
        } catch (e) {
          return e.name;
        }
      })();
      out.request = r;
      // A marker: everything published before it was routed by the time it arrives.
      bus.publish("big.marker", "m");
      await new Promise((res) => {
        const t = setInterval(() => {
          if (seen.includes("big.marker:1")) {
            clearInterval(t);
            res();
          }
        }, 5);
      });
      out.seen = seen;
      await bus.close();
      return out;
    };
    return { byDefault: await run({}), raised: await run({ maxPayload: 4 << 20 }) };
  });
  const MiB = 1 << 20;
  assert.deepEqual(got.byDefault.over, [true, "MaxPayloadError", `maximum payload exceeded: ${2 * MiB} > ${MiB}`, 2 * MiB, MiB]);
  assert.deepEqual(got.byDefault.many, [true], "a batch with one payload over the limit is refused whole");
  assert.equal(got.byDefault.request, "MaxPayloadError");
  assert.deepEqual(got.byDefault.seen, [`big.at:${MiB}`, "big.marker:1"]);
  assert.equal(got.raised.over, "accepted");
  assert.equal(got.raised.many, "accepted");
  assert.deepEqual(got.raised.seen, [`big.at:${MiB}`, `big.over:${2 * MiB}`, "big.many:1", `big.many:${2 * MiB}`, `big.req:${2 * MiB}`, "big.marker:1"]);
});
