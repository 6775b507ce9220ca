// The page's per-message fast path in headless Chromium: plain publishes are queued in the
// page and cross into WebAssembly together, and still behave as if each crossed alone: order
// kept across subjects and against subscribe/unsubscribe, requests, stream captures and
// close; a reused buffer published twice gives two messages; a bad subject or a payload over
// maxPayload still throws from publish() itself. Needs `bash web/build.sh` first.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { openPackagePage } from "./page.mjs";

let page;
let pageErrors = [];
let closePage;

before(async () => {
  ({ page, errors: pageErrors, close: closePage } = await openPackagePage("/fastpath-test.html"));
});

after(async () => {
  if (closePage) await closePage();
});

test("queued publishes keep their order across subjects, buffers and subscription changes", async () => {
  const r = await page.evaluate(async () => {
    const { open } = window.edgebus;
    const bus = await open({ name: "fp-order", storage: "memory" });
    const all = [];
    bus.subscribe("o.>", { callback: (_e, m) => all.push(`${m.subject}:${m.string()}`) });
    // the first publish on a subject goes straight through, the rest are queued
    for (let i = 0; i < 3; i++) {
      bus.publish("o.a", `a${i}`);
      bus.publish("o.b", `b${i}`);
    }
    const buf = new Uint8Array([49]);
    bus.publish("o.a", buf);
    buf[0] = 50;
    bus.publish("o.a", buf);
    bus.publish("o.a", undefined);
    // a subscription made after a queued publish does not get it; one ended after a
    // queued publish still does
    const late = [];
    bus.subscribe("o.a", { callback: (_e, m) => late.push(m.string()) });
    const early = [];
    const ending = bus.subscribe("o.b", { callback: (_e, m) => early.push(m.string()) });
    bus.publish("o.b", "last-for-ending");
    ending.unsubscribe();
    bus.publish("o.b", "after-unsubscribe");
    bus.publish("o.a", "late");
    // more than one hand-over's worth (4096) in one task, order kept
    const many = [];
    bus.subscribe("o.m", { callback: (_e, m) => many.push(Number(m.string())) });
    for (let i = 0; i < 10000; i++) bus.publish("o.m", `${i}`);
    await bus.close();
    const inOrder = many.length === 10000 && many.every((v, i) => v === i);
    return { all: all.filter((s) => !s.startsWith("o.m:")), late, early, inOrder };
  });
  assert.deepEqual(r.all, [
    "o.a:a0", "o.b:b0", "o.a:a1", "o.b:b1", "o.a:a2", "o.b:b2",
    "o.a:1", "o.a:2", "o.a:", "o.b:last-for-ending", "o.b:after-unsubscribe", "o.a:late",
  ]);
  assert.deepEqual(r.late, ["late"]);
  assert.deepEqual(r.early, ["last-for-ending"]);
  assert.equal(r.inOrder, true);
  assert.deepEqual(pageErrors, []);
});

test("publish() still throws for a bad subject and a payload over maxPayload, and after close", async () => {
  const r = await page.evaluate(async () => {
    const { open, MaxPayloadError, InvalidSubjectError } = window.edgebus;
    const bus = await open({ name: "fp-errors", storage: "memory", maxPayload: 64 });
    const got = [];
    bus.subscribe("e.a", { callback: (_e, m) => got.push(m.data.length) });
    const name = (f) => {
      try {
        f();
        return "no error";
      } catch (e) {
        return e.name;
      }
    };
    bus.publish("e.a", "x"); // the subject is known good from here on
    const out = {
      atLimit: name(() => bus.publish("e.a", new Uint8Array(64))),
      bytes: name(() => bus.publish("e.a", new Uint8Array(65))),
      // 22 characters, 66 bytes in UTF-8
      text: name(() => bus.publish("e.a", "é".repeat(33))),
      wildcard: name(() => bus.publish("e.*", "x")),
      empty: name(() => bus.publish("", "x")),
      classes: [MaxPayloadError, InvalidSubjectError].every((c) => typeof c === "function"),
    };
    try {
      bus.publish("e.a", new Uint8Array(65));
    } catch (e) {
      out.isMax = e instanceof MaxPayloadError;
    }
    await bus.close();
    out.afterClose = name(() => bus.publish("e.a", "x"));
    out.got = got;
    return out;
  });
  assert.equal(r.atLimit, "no error");
  assert.equal(r.bytes, "MaxPayloadError");
  assert.equal(r.text, "MaxPayloadError");
  assert.equal(r.wildcard, "InvalidSubjectError");
  assert.equal(r.empty, "InvalidSubjectError");
  assert.equal(r.isMax, true);
  assert.notEqual(r.afterClose, "no error");
  // only the two accepted publishes arrived
  assert.deepEqual(r.got, [1, 64]);
  assert.deepEqual(pageErrors, []);
});

test("requests, flush and stream captures see every queued publish first", async () => {
  const r = await page.evaluate(async () => {
    const { open } = window.edgebus;
    const bus = await open({ name: "fp-see", storage: "memory" });
    let count = 0;
    bus.subscribe("c.x", { callback: () => count++ });
    bus.subscribe("svc.count", { callback: (_e, m) => m.respond(`${count}`) });
    const jsm = await bus.jetstreamManager();
    await jsm.streams.add({ name: "FP", subjects: ["s.>"] });
    for (let i = 0; i < 5; i++) bus.publish("c.x", "x");
    const seen = (await bus.request("svc.count")).string();
    for (let i = 0; i < 7; i++) bus.publish("s.x", `${i}`);
    const stored = (await jsm.streams.info("FP")).state.messages;
    for (let i = 0; i < 3; i++) bus.publish("c.x", "x");
    await bus.flush();
    const afterFlush = count;
    await bus.close();
    return { seen, stored, afterFlush };
  });
  assert.equal(r.seen, "5");
  assert.equal(r.stored, 7);
  assert.equal(r.afterFlush, 8);
  assert.deepEqual(pageErrors, []);
});
