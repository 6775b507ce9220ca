// KV (@nats-io/kv 3.x) and object store (@nats-io/obj 3.x) with the Node.js client
// against a JetStream-enabled server under test. Buckets get unique names.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { connect, nuid } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm, KvWatchInclude } from "@nats-io/kv";
import { take as takeFrom } from "./fixtures/kvobj-scenarios.js";
import { Objm } from "@nats-io/obj";
import { startServer } from "./server.mjs";

let server;
const open = [];

async function client() {
  const nc = await connect({ servers: server.url, reconnect: false, timeout: 5000 });
  open.push(nc);
  return nc;
}

const uniq = (p) => `${p}_${nuid.next().slice(-10).toLowerCase()}`;
const enc = (s) => new TextEncoder().encode(s);
const dec = (b) => new TextDecoder().decode(b);

// A QueuedIterator can only be iterated once: keep one iterator per watcher.
const iterators = new WeakMap();

/** The next `count` items from an async iterable (one iterator per iterable, so successive
 *  calls continue where the last stopped), failing after `ms`. */
function take(iter, count, ms = 5000) {
  if (!iterators.has(iter)) iterators.set(iter, iter[Symbol.asyncIterator]());
  return takeFrom(iterators.get(iter), count, ms);
}

async function collect(iter) {
  const out = [];
  for await (const v of iter) out.push(v);
  return out;
}

/** Deterministic bytes that differ from chunk to chunk. */
function pattern(size, seed) {
  const out = new Uint8Array(size);
  let block = createHash("sha256").update(`seed-${seed}`).digest();
  for (let off = 0; off < size; off += block.length) {
    block = createHash("sha256").update(block).digest();
    out.set(block.subarray(0, Math.min(block.length, size - off)), off);
  }
  return out;
}

const sha256Digest = (data) =>
  "SHA-256=" + createHash("sha256").update(data).digest("base64").replace(/\+/g, "-").replace(/\//g, "_");

before(async () => {
  server = await startServer("", { jetstream: true });
});

after(async () => {
  for (const nc of open) {
    if (!nc.isClosed()) await nc.close().catch(() => {});
  }
  if (server) await server.stop();
});

test("Kvm create/open, put/get/create/update/delete/purge", async () => {
  const nc = await client();
  const name = uniq("nkv");
  const kv = await new Kvm(nc).create(name, { history: 5 });

  const jsm = await jetstreamManager(nc);
  const si = await jsm.streams.info(`KV_${name}`);
  assert.deepEqual(si.config.subjects, [`$KV.${name}.>`]);
  assert.equal(si.config.max_msgs_per_subject, 5);
  assert.equal(si.config.allow_rollup_hdrs, true);

  const r1 = await kv.put("a.b", "one");
  const r2 = await kv.put("a.b", "two");
  assert.deepEqual([r1, r2], [1, 2]);

  // A second handle opened on the same bucket.
  const kv2 = await new Kvm(nc).open(name);
  const e = await kv2.get("a.b");
  assert.equal(e.string(), "two");
  assert.equal(e.revision, 2);
  assert.equal(e.operation, "PUT");
  assert.equal((await kv2.get("a.b", { revision: 1 })).string(), "one");
  assert.equal(await kv2.get("missing"), null);

  // create: refused while the key holds a value.
  const rc = await kv.create("solo", "x");
  await assert.rejects(kv.create("solo", "y"), /wrong last sequence|exists/i);

  // update: compare-and-set on the revision.
  const ru = await kv.update("solo", "x2", rc);
  await assert.rejects(kv.update("solo", "stale", rc), /wrong last sequence/i);
  assert.equal((await kv.get("solo")).string(), "x2");

  // delete leaves a DEL entry; create works again afterwards.
  await kv.delete("solo");
  const deleted = await kv.get("solo");
  assert.equal(deleted.operation, "DEL");
  assert.equal(deleted.length, 0);
  const rc2 = await kv.create("solo", "reborn");
  assert.ok(rc2 > ru);
  assert.equal((await kv.get("solo")).string(), "reborn");

  // purge collapses the key's history to one PURGE entry.
  await kv.put("a.b", "three");
  await kv.purge("a.b");
  const purged = await kv.get("a.b");
  assert.equal(purged.operation, "PURGE");
  const hist = await collect(await kv.history({ key: "a.b" }));
  assert.deepEqual(hist.map((h) => h.operation), ["PURGE"]);
  await kv.create("a.b", "after purge");
  assert.equal((await kv.get("a.b")).string(), "after purge");

  const status = await kv.status();
  assert.equal(status.bucket, name);
  assert.equal(status.history, 5);
});

test("keys() and history()", async () => {
  const nc = await client();
  const kv = await new Kvm(nc).create(uniq("nkvk"), { history: 4 });
  for (let i = 0; i < 6; i++) await kv.put("counter", `${i}`);
  await kv.put("users.ann", "a");
  await kv.put("users.bob", "b");
  await kv.put("cfg", "c");
  await kv.delete("cfg");

  const keys = await collect(await kv.keys());
  assert.deepEqual(keys.sort(), ["counter", "users.ann", "users.bob"]);
  const users = await collect(await kv.keys("users.*"));
  assert.deepEqual(users.sort(), ["users.ann", "users.bob"]);

  const hist = await collect(await kv.history({ key: "counter" }));
  assert.deepEqual(hist.map((h) => h.string()), ["2", "3", "4", "5"]);
  assert.deepEqual(hist.map((h) => h.revision), [3, 4, 5, 6]);
  const cfgHist = await collect(await kv.history({ key: "cfg" }));
  assert.deepEqual(cfgHist.map((h) => h.operation), ["PUT", "DEL"]);
});

test("watch(): initial values then live updates, deletes included", async () => {
  const nc = await client();
  const kv = await new Kvm(nc).create(uniq("nkvw"), { history: 3 });
  await kv.put("x", "x1");
  await kv.put("y", "y1");
  await kv.put("x", "x2");

  const w = await kv.watch();
  const initial = await take(w, 2);
  assert.deepEqual(initial.map((e) => [e.key, e.string(), e.revision]), [["y", "y1", 2], ["x", "x2", 3]]);
  assert.equal(initial[0].isUpdate, false);

  const r = await kv.put("z", "z1");
  await kv.delete("y");
  await kv.purge("x");
  const live = await take(w, 3);
  assert.deepEqual(live.map((e) => [e.key, e.operation]), [["z", "PUT"], ["y", "DEL"], ["x", "PURGE"]]);
  assert.deepEqual(live.map((e) => e.revision), [r, r + 1, r + 2]);
  assert.ok(live.every((e) => e.isUpdate));
  w.stop();

  // Updates only, filtered to one key.
  const wz = await kv.watch({ key: "z", include: KvWatchInclude.UpdatesOnly });
  await kv.put("y", "ignored: other key");
  await kv.put("z", "z2");
  const [only] = await take(wz, 1);
  assert.deepEqual([only.key, only.string(), only.isUpdate], ["z", "z2", true]);
  wz.stop();

  // All history of a key, ignoring deletes.
  const wh = await kv.watch({ key: "y", include: KvWatchInclude.AllHistory, ignoreDeletes: true });
  const hist = await take(wh, 2);
  assert.deepEqual(hist.map((e) => e.string()), ["y1", "ignored: other key"]);
  wh.stop();
});

test("Objm: 2 MiB blob round trip, info, list, delete", async () => {
  const nc = await client();
  const name = uniq("nobj");
  const os = await new Objm(nc).create(name);
  const data = pattern(2 * 1024 * 1024, 3);

  const info = await os.putBlob({ name: "blobs/two.bin", description: "two MiB" }, data);
  assert.equal(info.size, data.length);
  assert.equal(info.chunks, 16);
  assert.equal(info.digest, sha256Digest(data));

  const back = await os.getBlob("blobs/two.bin");
  assert.equal(back.length, data.length);
  assert.ok(Buffer.from(back).equals(Buffer.from(data)), "blob differs");

  const meta = await os.info("blobs/two.bin");
  assert.equal(meta.name, "blobs/two.bin");
  assert.equal(meta.description, "two MiB");
  assert.equal(meta.size, data.length);
  assert.equal(meta.digest, sha256Digest(data));
  assert.equal(await os.info("nothing"), null);
  assert.equal(await os.get("nothing"), null);

  await os.putBlob({ name: "small.txt" }, enc("hello"));
  const listed = await os.list();
  assert.deepEqual(listed.map((o) => o.name).sort(), ["blobs/two.bin", "small.txt"]);

  const jsm = await jetstreamManager(nc);
  const before = (await jsm.streams.info(`OBJ_${name}`)).state.messages;
  assert.equal(before, 16 + 1 + 1 + 1);
  await os.delete("blobs/two.bin");
  assert.equal(await os.getBlob("blobs/two.bin"), null);
  const after = (await jsm.streams.info(`OBJ_${name}`)).state.messages;
  assert.equal(after, 1 + 1 + 1); // small chunk + small meta + deleted meta
  assert.deepEqual((await os.list()).map((o) => o.name), ["small.txt"]);
  assert.equal(dec(await os.getBlob("small.txt")), "hello");
});

test("Objm: a link is followed by get", async () => {
  const nc = await client();
  const os = await new Objm(nc).create(uniq("nobjl"));
  const data = pattern(300_000, 9);
  const target = await os.putBlob({ name: "target.bin" }, data);
  const link = await os.link("alias", target);
  assert.deepEqual(link.options.link, { bucket: target.bucket, name: "target.bin" });

  const viaLink = await os.getBlob("alias");
  assert.ok(viaLink && Buffer.from(viaLink).equals(Buffer.from(data)), "link did not resolve to the target's bytes");
  const linkInfo = await os.info("alias");
  assert.equal(linkInfo.options.link.name, "target.bin");

  // A streamed get through the link also verifies the digest.
  const res = await os.get("alias");
  const chunks = [];
  for await (const c of res.data) chunks.push(c);
  assert.ok(Buffer.concat(chunks).equals(Buffer.from(data)));
  assert.ok(!(await res.error), "streamed get reported an error");

  // Links to links are refused by the client.
  await assert.rejects(os.link("alias2", linkInfo));
});
