// The page's consumer controls (nats.js v3 names): `jsm.consumers.pause` / `resume` hold and
// release a pull consumer, `unpin` drops a pinned client and refuses an unknown group with
// nats-server's error; the package loaded in Node on a memory bus (the same core as every
// host). Needs `bash web/build.sh`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { REPO } from "./server.mjs";

const DIST = path.join(REPO, "web", "dist", "index.js");
const WASM = path.join(REPO, "web", "pkg", "edgebus_wasm_bg.wasm");

test("jsm.consumers.pause, resume and unpin", async () => {
  assert.ok(existsSync(DIST) && existsSync(WASM), "web/dist or web/pkg is missing: run bash web/build.sh");
  const edgebus = await import(pathToFileURL(DIST).href);
  const bus = await edgebus.open({ name: "controls", storage: "memory", wasm: readFileSync(WASM) });
  try {
    const jsm = await bus.jetstreamManager();
    await jsm.streams.add({ name: "W", subjects: ["w.>"] });
    await jsm.consumers.add("W", { durable_name: "p", ack_policy: "explicit" });
    const js = bus.jetstream();
    await js.publish("w.a", "work");

    const until = new Date(Date.now() + 3_600_000);
    const paused = await jsm.consumers.pause("W", "p", until);
    assert.equal(paused.paused, true);
    assert.ok(paused.pause_remaining > 0);
    const info = await jsm.consumers.info("W", "p");
    assert.equal(info.paused, true);
    // RFC 3339 as Go prints it: trailing zeros of the fraction dropped
    assert.equal(info.config.pause_until, until.toISOString().replace(/\.?0*Z$/, "Z"));
    const c = await js.consumers.get("W", "p");
    // nothing while paused: the fetch ends by its expiry (the consumer holds the message)
    assert.deepEqual((await c.fetch({ max_messages: 1, expires: 300 })).messages, []);
    const resumed = await jsm.consumers.resume("W", "p");
    assert.equal(resumed.paused, false);
    const got = (await c.fetch({ max_messages: 1, expires: 5000 })).messages.map((m) => m.string());
    assert.deepEqual(got, ["work"]);

    await jsm.consumers.add("W", {
      durable_name: "g",
      ack_policy: "explicit",
      priority_groups: ["G"],
      priority_policy: "pinned_client",
    });
    const g = await jsm.consumers.info("W", "g");
    assert.equal(g.config.priority_timeout, 120_000_000_000);
    assert.deepEqual(g.priority_groups, [{ group: "G", pinned_ts: "0001-01-01T00:00:00Z" }]);
    await jsm.consumers.unpin("W", "g", "G");
    await assert.rejects(jsm.consumers.unpin("W", "g", "X"), (e) => e.err_code === 10160);
  } finally {
    await bus.close();
  }
});
