// The Node.js NATS client (@nats-io/transport-node 3.x) against the server under test.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { connect, headers, NoRespondersError, RequestError, nuid } from "@nats-io/transport-node";
import { startServer } from "./server.mjs";

let server;
const open = [];

async function client(opts = {}) {
  const nc = await connect({ servers: server.url, reconnect: false, timeout: 5000, ...opts });
  open.push(nc);
  return nc;
}

/** Reads up to `count` messages from `sub`, giving up after `ms`. */
async function take(sub, count, ms = 3000) {
  const got = [];
  if (count === 0) return got;
  const timer = setTimeout(() => sub.unsubscribe(), ms);
  for await (const m of sub) {
    got.push(m);
    if (got.length >= count) break;
  }
  clearTimeout(timer);
  return got;
}

before(async () => {
  server = await startServer();
});

after(async () => {
  for (const nc of open) {
    if (!nc.isClosed()) await nc.close().catch(() => {});
  }
  if (server) await server.stop();
});

test("publish/subscribe keeps order", async () => {
  const [pub, subc] = [await client(), await client()];
  const subject = `n.ord.${nuid.next()}`;
  const sub = subc.subscribe(subject);
  await subc.flush();
  for (let i = 0; i < 200; i++) pub.publish(subject, `m${i}`);
  await pub.flush();
  const got = await take(sub, 200);
  assert.deepEqual(got.map((m) => m.string()), Array.from({ length: 200 }, (_, i) => `m${i}`));
  assert.equal(got[0].subject, subject);
});

test("wildcard subscriptions", async () => {
  const nc = await client();
  const id = nuid.next();
  const star = nc.subscribe(`n.w.${id}.*`);
  const tail = nc.subscribe(`n.w.${id}.>`);
  await nc.flush();
  nc.publish(`n.w.${id}.a`, "1");
  nc.publish(`n.w.${id}.a.b`, "2");
  nc.publish(`n.x.${id}.a`, "3");
  await nc.flush();
  const s = await take(star, 2, 500);
  const t = await take(tail, 3, 500);
  assert.deepEqual(s.map((m) => m.subject), [`n.w.${id}.a`]);
  assert.deepEqual(t.map((m) => m.subject), [`n.w.${id}.a`, `n.w.${id}.a.b`]);
});

test("request/reply", async () => {
  const [req, svc] = [await client(), await client()];
  const subject = `n.svc.${nuid.next()}`;
  const sub = svc.subscribe(subject, {
    callback: (err, msg) => {
      if (!err) msg.respond(`re:${msg.string()}`);
    },
  });
  await svc.flush();
  for (let i = 0; i < 10; i++) {
    const reply = await req.request(subject, `q${i}`, { timeout: 3000 });
    assert.equal(reply.string(), `re:q${i}`);
  }
  sub.unsubscribe();
});

test("queue group: each message to exactly one member", async () => {
  const members = [await client(), await client(), await client()];
  const pub = await client();
  const subject = `n.q.${nuid.next()}`;
  const counts = [0, 0, 0];
  const seen = new Map();
  members.forEach((nc, i) => {
    nc.subscribe(subject, {
      queue: "workers",
      callback: (err, msg) => {
        if (err) return;
        counts[i]++;
        seen.set(msg.string(), (seen.get(msg.string()) || 0) + 1);
      },
    });
  });
  for (const nc of members) await nc.flush();
  const total = 150;
  for (let i = 0; i < total; i++) pub.publish(subject, String(i));
  await pub.flush();
  const deadline = Date.now() + 5000;
  while (counts.reduce((a, b) => a + b) < total && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  for (const nc of members) await nc.flush(); // anything extra would have arrived by now
  assert.equal(counts.reduce((a, b) => a + b), total);
  assert.equal(seen.size, total);
  assert.ok([...seen.values()].every((n) => n === 1), "a message went to two members");
  assert.ok(counts.every((n) => n > 0), `a member got nothing: ${counts}`);
});

test("headers round trip", async () => {
  const [pub, subc] = [await client(), await client()];
  const subject = `n.h.${nuid.next()}`;
  const sub = subc.subscribe(subject);
  await subc.flush();
  const h = headers();
  h.set("X-Trace", "abc-123");
  h.append("X-Multi", "one");
  h.append("X-Multi", "two");
  pub.publish(subject, "payload", { headers: h });
  await pub.flush();
  const [m] = await take(sub, 1);
  assert.ok(m, "no message");
  assert.equal(m.string(), "payload");
  assert.equal(m.headers.get("X-Trace"), "abc-123");
  assert.deepEqual(m.headers.values("X-Multi"), ["one", "two"]);
});

test("request without responders fails fast with no-responders", async () => {
  const nc = await client();
  const started = Date.now();
  await assert.rejects(nc.request(`n.nobody.${nuid.next()}`, "x", { timeout: 8000 }), (err) => {
    const noResponders = err instanceof NoRespondersError ||
      (err instanceof RequestError && err.isNoResponders && err.isNoResponders()) ||
      err?.cause instanceof NoRespondersError;
    assert.ok(noResponders, `unexpected error ${err?.name}: ${err?.message}`);
    return true;
  });
  assert.ok(Date.now() - started < 4000, "no-responders took as long as a timeout");
});

test("drain delivers pending messages and closes", async () => {
  const pub = await client();
  const drainer = await client();
  const subject = `n.d.${nuid.next()}`;
  const handled = [];
  drainer.subscribe(subject, {
    callback: (err, msg) => {
      if (!err) handled.push(msg.string());
    },
  });
  await drainer.flush();
  for (let i = 0; i < 50; i++) pub.publish(subject, String(i));
  await pub.flush();
  await drainer.drain();
  assert.ok(drainer.isClosed());
  assert.deepEqual(handled, Array.from({ length: 50 }, (_, i) => String(i)));
  const status = await drainer.closed();
  assert.equal(status, undefined, `closed with error ${status}`);
});
