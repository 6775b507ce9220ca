// The app imports edgebus by its package name, as any app would; Vite resolves it through
// the package's exports and bundles the wasm it finds via new URL(..., import.meta.url).
import * as edgebus from "edgebus";
import { exercise } from "../../node/fixtures/exercise.js";

const out = document.getElementById("out");
window.result = exercise(edgebus, { name: "vite-app", storage: "indexeddb" }).then(
  (result) => ({ ok: true, result }),
  (err) => ({ ok: false, error: String(err?.stack || err) }),
);
window.result.then((r) => { out.textContent = JSON.stringify(r, null, 2); });
