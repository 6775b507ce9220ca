// The package's published types compile in a strict TypeScript app without skipLibCheck
// (issue 12: the generated bindings' `Symbol.dispose` broke that), and name the managers'
// results as nats.js v3 does (tests/node/types/app.ts). Needs `bash web/build.sh`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { requirePackage, WEB } from "./page.mjs";

const TSC = path.join(WEB, "node_modules", ".bin", "tsc");
const APP = path.join(path.dirname(new URL(import.meta.url).pathname), "types", "tsconfig.json");

test("a strict app compiles against the built package's types (tsc --strict --noEmit, no skipLibCheck)", async () => {
  requirePackage();
  assert.ok(existsSync(TSC), `${TSC} missing: npm ci in web/`);
  const out = await new Promise((resolve) => {
    execFile(TSC, ["-p", APP], (err, stdout, stderr) => resolve({ code: err ? err.code : 0, text: stdout + stderr }));
  });
  assert.equal(out.code, 0, out.text);
});
