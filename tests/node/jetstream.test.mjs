// JetStream with the Node.js client (@nats-io/jetstream 3.x over @nats-io/transport-node)
// against a JetStream-enabled server under test.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { connect, nuid } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, AckPolicy, DeliverPolicy, JetStreamApiError } from "@nats-io/jetstream";
import { startServer } from "./server.mjs";

let server;
const open = [];

async function client() {
  const nc = await connect({ servers: server.url, reconnect: false, timeout: 5000 });
  open.push(nc);
  return nc;
}

/** A fresh stream `S_<id>` on `s_<id>.>`; returns { name, prefix, nc, jsm, js }. */
async function freshStream(extra = {}) {
  const nc = await client();
  const jsm = await jetstreamManager(nc);
  const id = nuid.next().slice(-10).toLowerCase();
  const name = `NS_${id.toUpperCase()}`;
  const prefix = `ns_${id}`;
  await jsm.streams.add({ name, subjects: [`${prefix}.>`], ...extra });
  return { name, prefix, nc, jsm, js: jetstream(nc) };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(check, ms = 10000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v || Date.now() > deadline) return v;
    await sleep(25);
  }
}

before(async () => {
  server = await startServer("", { jetstream: true });
});

after(async () => {
  for (const nc of open) {
    if (!nc.isClosed()) await nc.close().catch(() => {});
  }
  if (server) await server.stop();
});

test("streams.add, info and publish acks", async () => {
  const { name, prefix, jsm, js } = await freshStream({ max_msgs_per_subject: 5 });
  const info = await jsm.streams.info(name);
  assert.equal(info.config.name, name);
  assert.deepEqual(info.config.subjects, [`${prefix}.>`]);
  assert.equal(info.state.messages, 0);

  const acks = [];
  for (let i = 0; i < 4; i++) acks.push(await js.publish(`${prefix}.p.${i % 2}`, `v${i}`));
  assert.deepEqual(acks.map((a) => a.seq), [1, 2, 3, 4]);
  assert.ok(acks.every((a) => a.stream === name && !a.duplicate));

  const dup1 = await js.publish(`${prefix}.p.x`, "once", { msgID: "only-once" });
  const dup2 = await js.publish(`${prefix}.p.x`, "once", { msgID: "only-once" });
  assert.equal(dup1.seq, 5);
  assert.equal(dup2.seq, 5);
  assert.equal(dup2.duplicate, true);

  await assert.rejects(
    js.publish(`${prefix}.p.0`, "late", { expect: { lastSequence: 2 } }),
    (err) => err instanceof JetStreamApiError && err.code === 10071,
  );

  const state = (await jsm.streams.info(name)).state;
  assert.equal(state.messages, 5);
  assert.equal(state.last_seq, 5);
  const m = await jsm.streams.getMessage(name, { seq: 3 });
  assert.equal(m.subject, `${prefix}.p.0`);
  assert.equal(m.string(), "v2");
});

test("consumer.consume() receives live messages and acks them", async () => {
  const { name, prefix, jsm, js } = await freshStream();
  await jsm.consumers.add(name, { durable_name: "live", ack_policy: AckPolicy.Explicit });
  const consumer = await js.consumers.get(name, "live");
  const messages = await consumer.consume({ max_messages: 10, expires: 2000 });
  const got = [];
  const done = (async () => {
    for await (const m of messages) {
      got.push({ data: m.string(), seq: m.seq, subject: m.subject, redelivered: m.redelivered });
      await m.ackAck();
      if (got.length === 6) break;
    }
  })();
  // Published after the consumer is already waiting.
  for (let i = 0; i < 6; i++) await js.publish(`${prefix}.live`, `l${i}`);
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`consume got only ${got.length} messages`)), 15000);
  });
  try {
    await Promise.race([done, timeout]);
  } finally {
    clearTimeout(timer);
    messages.stop();
  }
  assert.deepEqual(got.map((g) => g.data), ["l0", "l1", "l2", "l3", "l4", "l5"]);
  assert.deepEqual(got.map((g) => g.seq), [1, 2, 3, 4, 5, 6]);
  assert.ok(got.every((g) => g.subject === `${prefix}.live` && !g.redelivered));

  const info = await until(async () => {
    const ci = await jsm.consumers.info(name, "live");
    return ci.ack_floor.stream_seq === 6 ? ci : null;
  });
  assert.ok(info, "acks never reached the ack floor");
  assert.equal(info.num_ack_pending, 0);
  assert.equal(info.num_pending, 0);
});

test("consumer.fetch() returns a bounded batch", async () => {
  const { name, prefix, jsm, js } = await freshStream();
  for (let i = 0; i < 5; i++) await js.publish(`${prefix}.f.${i}`, `f${i}`);
  await jsm.consumers.add(name, {
    durable_name: "batcher", ack_policy: AckPolicy.Explicit, filter_subject: `${prefix}.f.*`,
  });
  const consumer = await js.consumers.get(name, "batcher");

  const first = [];
  for await (const m of await consumer.fetch({ max_messages: 3, expires: 2000 })) {
    first.push(m.string());
    m.ack();
  }
  assert.deepEqual(first, ["f0", "f1", "f2"]);

  // Asks for more than is there: gets the rest when the request expires.
  const rest = [];
  for await (const m of await consumer.fetch({ max_messages: 10, expires: 1500 })) {
    rest.push({ data: m.string(), streamSeq: m.info.streamSequence, pending: m.info.pending });
    await m.ackAck();
  }
  assert.deepEqual(rest.map((r) => r.data), ["f3", "f4"]);
  assert.deepEqual(rest.map((r) => r.streamSeq), [4, 5]);
  assert.equal(rest.at(-1).pending, 0);

  const ci = await jsm.consumers.info(name, "batcher");
  assert.equal(ci.delivered.stream_seq, 5);
  assert.equal(ci.num_pending, 0);
});

test("consumer.next() one at a time, null when nothing arrives", async () => {
  const { name, prefix, jsm, js } = await freshStream();
  await js.publish(`${prefix}.n`, "first");
  await js.publish(`${prefix}.n`, "second");
  await jsm.consumers.add(name, {
    durable_name: "stepper", ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All,
  });
  const consumer = await js.consumers.get(name, "stepper");

  const a = await consumer.next({ expires: 2000 });
  assert.ok(a);
  assert.equal(a.string(), "first");
  a.nak();
  // The naked message comes back with a second delivery count.
  const again = [];
  for (let i = 0; i < 2; i++) {
    const m = await consumer.next({ expires: 3000 });
    assert.ok(m, "expected a message");
    again.push({ data: m.string(), count: m.info.deliveryCount });
    await m.ackAck();
  }
  assert.deepEqual(again.map((x) => x.data).sort(), ["first", "second"]);
  assert.equal(again.find((x) => x.data === "first").count, 2);

  const none = await consumer.next({ expires: 1000 });
  assert.equal(none, null);

  await js.publish(`${prefix}.n`, "third");
  const c = await consumer.next({ expires: 3000 });
  assert.equal(c?.string(), "third");
  assert.equal(c.info.streamSequence, 3);
  await c.ackAck();
});
