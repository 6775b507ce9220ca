// Partitioned consumer groups in the page (`js.consumerGroups`, orbit's layout) and the pull
// options for priority groups, in headless Chromium on a bus inside the page. The group test
// is the issue's: per-key order kept across four members while a fifth joins and one leaves
// mid-stream. Needs `bash web/build.sh`.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { openPackagePage } from "./page.mjs";

let page;
let pageErrors = [];
let closePage;

before(async () => {
  ({ page, errors: pageErrors, close: closePage } = await openPackagePage("/pcg-test.html"));
});

after(async () => {
  if (closePage) await closePage();
});

test("elastic group: per-key order across members while one joins and one leaves", async () => {
  const r = await page.evaluate(async () => {
    const { open } = window.edgebus;
    const bus = await open({ name: "pcg", storage: "memory" });
    const js = bus.jetstream();
    const jsm = await bus.jetstreamManager();
    const cg = js.consumerGroups;
    await jsm.streams.add({ name: "orders", subjects: ["orders.*"] });
    // createElastic makes the group's work queue `orders-cg`, sourcing `orders` through
    // the partitioning transform, as orbit does.
    const created = await cg.createElastic("orders", "cg", {
      max_members: 8, partitioning_filters: [{ filter: "orders.*", partitioning_wildcards: [1] }],
    });
    const stored = (await (await bus.kv("elastic-consumer-groups")).get("orders.cg")).json();
    await cg.addMembers("orders", "cg", ["m1", "m2", "m3", "m4"]);

    const KEYS = 12, PER = 30;
    const got = {};          // key -> values in the order handled
    const inHand = {};       // key -> member handling it now
    const overlaps = [];
    const byMember = {};     // member -> [phase, count]
    let phase = "start";
    let handled = 0;
    let waiter = null;
    const handler = (member) => async (m) => {
      const key = m.subject;
      if (inHand[key]) overlaps.push(`${member} got ${key}:${m.string()} while ${inHand[key]} has one`);
      inHand[key] = member;
      await new Promise((res) => setTimeout(res, 0)); // the work takes a turn of the event loop
      (got[key] ??= []).push(Number(m.string()));
      const counts = (byMember[member] ??= {});
      counts[phase] = (counts[phase] ?? 0) + 1;
      delete inHand[key];
      m.ack();
      handled++;
      if (waiter && handled >= waiter.n) waiter.resolve();
    };
    const reach = (n) => handled >= n ? Promise.resolve() : new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`stuck at ${handled} of ${n}`)), 60_000);
      waiter = { n, resolve: () => { clearTimeout(t); resolve(); } };
    });
    const template = { ack_wait: 2_000_000_000, max_ack_pending: 1 };
    const members = {};
    for (const name of ["m1", "m2", "m3", "m4", "m5"]) {
      members[name] = await cg.consume("elastic", "orders", "cg", name, handler(name), template);
    }
    const publish = async (from, to) => {
      for (let i = from; i < to; i++) for (let k = 0; k < KEYS; k++) await js.publish(`orders.k${k}`, String(i));
    };
    await publish(0, 10);
    await reach(KEYS * 5);
    phase = "joined";
    await cg.addMembers("orders", "cg", ["m5"]);
    await publish(10, 20);
    await reach(KEYS * 12);
    phase = "left";
    const after = await cg.deleteMembers("orders", "cg", ["m2"]);
    await publish(20, PER);
    await reach(KEYS * PER);
    for (const c of Object.values(members)) c.stop();
    const closed = await Promise.all(Object.values(members).map((c) => c.closed()));
    const consumers = (await jsm.consumers.list("orders-cg").next()).map((c) => [c.name, c.config.filter_subjects]);
    const queue = (await jsm.streams.info("orders-cg")).config;
    await bus.close();
    return { queue: [queue.retention, queue.sources?.map((s) => s.name)], created, stored, got, overlaps, byMember, after, closed: closed.map(String), consumers, KEYS, PER };
  });
  assert.deepEqual(r.created, { max_members: 8, partitioning_filters: [{ filter: "orders.*", partitioning_wildcards: [1] }] });
  assert.deepEqual(r.stored, r.created, "orbit's JSON under orbit's key");
  assert.deepEqual(r.queue, ["workqueue", ["orders"]], "the group's work queue sources the stream");
  assert.deepEqual(r.overlaps, [], "one message of a key in hand at a time");
  const want = Array.from({ length: r.PER }, (_, i) => i);
  assert.equal(Object.keys(r.got).length, r.KEYS);
  for (const [key, values] of Object.entries(r.got)) assert.deepEqual(values, want, `${key}: every message once, in order`);
  assert.ok(r.byMember.m5?.joined || r.byMember.m5?.left, "the member that joined took partitions");
  // a member that leaves finishes the pull it has open (one message with max_ack_pending 1),
  // then lets go
  assert.ok((r.byMember.m2?.left ?? 0) <= 1, `the member that left handled ${r.byMember.m2?.left} more`);
  const afterLeaving = Object.values(r.byMember).reduce((n, c) => n + (c.left ?? 0), 0);
  assert.ok(afterLeaving >= r.KEYS * (r.PER - 12) - 1, "the others took over its partitions");
  assert.ok(!r.byMember.m5?.start, "nothing before it joined");
  assert.deepEqual([...r.after].sort(), ["m1", "m3", "m4", "m5"]);
  assert.deepEqual(r.closed, ["null", "null", "null", "null", "null"]);
  assert.deepEqual(pageErrors, []);
});

test("static group: each member gets its partitions; deleting the group ends consumption", async () => {
  const r = await page.evaluate(async () => {
    const { open } = window.edgebus;
    const bus = await open({ name: "pcg-static", storage: "memory" });
    const js = bus.jetstream();
    const jsm = await bus.jetstreamManager();
    const cg = js.consumerGroups;
    // orbit's static_stream_setup.sh: the stream itself puts the partition first
    await jsm.streams.add({
      name: "foo", subjects: ["foo.*"],
      subject_transform: { src: "foo.*", dest: "{{partition(4,1)}}.foo.{{wildcard(1)}}" },
    });
    await cg.createStatic("foo", "cg", { max_members: 4, members: ["m1", "m2"] });
    let notMember = null;
    try {
      await cg.consume("static", "foo", "cg", "m3", () => {});
    } catch (e) {
      notMember = e.message;
    }
    const got = { m1: [], m2: [] };
    let n = 0;
    let done;
    const all = new Promise((res) => (done = res));
    const handler = (member) => (m) => {
      got[member].push([m.subject, m.string(), m.msg.subject.split(".")[0]]);
      m.ack();
      if (++n === 12) done();
    };
    const ctx = {};
    for (const m of ["m1", "m2"]) ctx[m] = await cg.consume("static", "foo", "cg", m, handler(m), { ack_wait: 2_000_000_000 });
    for (let i = 0; i < 3; i++) for (const k of ["a", "b", "c", "d"]) await js.publish(`foo.${k}`, `${k}${i}`);
    await all;
    const consumers = (await jsm.consumers.list("foo").next()).map((c) => [c.name, c.config.filter_subjects]).sort();
    await cg.deleteStatic("foo", "cg");
    const closed = await Promise.all([ctx.m1.closed(), ctx.m2.closed()]);
    const left = (await jsm.consumers.list("foo").next()).length;
    const config = await cg.getConfig("static", "foo", "cg");
    await bus.close();
    return { notMember, got, consumers, closed: closed.map(String), left, config };
  });
  assert.equal(r.notMember, "the member name is not in the current static consumer group membership");
  assert.deepEqual(r.consumers, [["cg-m1", ["0.>", "1.>"]], ["cg-m2", ["2.>", "3.>"]]]);
  for (const [member, parts] of [["m1", ["0", "1"]], ["m2", ["2", "3"]]]) {
    for (const [, , p] of r.got[member]) assert.ok(parts.includes(p), `${member} got partition ${p}`);
  }
  // per key, in order, the partition token stripped from the subject
  const byKey = {};
  for (const [subject, v] of [...r.got.m1, ...r.got.m2]) (byKey[subject] ??= []).push(v);
  assert.deepEqual(Object.keys(byKey).sort(), ["foo.a", "foo.b", "foo.c", "foo.d"]);
  for (const [subject, vs] of Object.entries(byKey)) {
    const k = subject.slice(4);
    assert.deepEqual(vs, [`${k}0`, `${k}1`, `${k}2`]);
  }
  assert.deepEqual(r.closed, ["null", "null"]);
  assert.equal(r.left, 0, "the members' consumers are gone");
  assert.equal(r.config, null);
  assert.deepEqual(pageErrors, []);
});
