// The package loads in Node (no browser): the built web/dist imported as a plain ES module,
// the wasm passed as bytes (Node's fetch does not read file: URLs), a memory bus walked
// through the API (fixtures/exercise.js). Needs `bash web/build.sh`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { REPO } from "./server.mjs";
import { EXPECTED, exercise } from "./fixtures/exercise.js";

const DIST = path.join(REPO, "web", "dist", "index.js");
const WASM = path.join(REPO, "web", "pkg", "edgebus_wasm_bg.wasm");

test("in Node: open a memory bus and use pub/sub, request/reply, JetStream and KV", async () => {
  assert.ok(existsSync(DIST) && existsSync(WASM), "web/dist or web/pkg is missing: run bash web/build.sh");
  const edgebus = await import(pathToFileURL(DIST).href);
  const r = await exercise(edgebus, { name: "node", storage: "memory", wasm: readFileSync(WASM) });
  const { storage, ...rest } = r;
  assert.equal(storage, "memory");
  assert.deepEqual(rest, EXPECTED);
});
