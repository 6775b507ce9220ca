// A module Web Worker that imports the package the way an app's worker would and runs the
// shared API walk on request: postMessage({ storage }) → { ok, result } or { ok: false, error }.
import * as edgebus from "/web/dist/index.js";
import { exercise } from "/tests/node/fixtures/exercise.js";

self.onmessage = async (e) => {
  const { storage, name } = e.data;
  try {
    const result = await exercise(edgebus, { storage, name });
    self.postMessage({ ok: true, result, indexedDB: typeof indexedDB !== "undefined" });
  } catch (err) {
    self.postMessage({ ok: false, error: String(err?.stack || err) });
  }
};
