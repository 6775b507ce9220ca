// The differential test: one JetStream / KV script (fixtures/js-script.js) played through the
// edgebus server (the Node client over TCP) and through the page's bus (the wasm build in
// headless Chromium), every reply compared. Both hosts run the same core broker and engine, so
// a reply that differs is a bug in one host; the test names the step. Needs the release
// server (cargo build --release -p edgebus-server) and `bash web/build.sh`.
//
// EDGEBUS_DIFF_DUMP=<prefix> writes both transcripts (normalised) as JSON, one file per page
// storage (<prefix>.memory.json, <prefix>.indexeddb.json), for reading by hand.
// The same script can be played against nats-server by hand (see tests/node/js-diff-lib.mjs).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { startServer, REPO } from "./server.mjs";
import { launch, requirePackage, serveOn } from "./page.mjs";
import { STEPS } from "./fixtures/js-script.js";
import { playOverTcp, transcript, firstDifference } from "./js-diff-lib.mjs";

// The page imports the package and the script from the repository root, as a web app would.
const DIFF_PAGE = `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head>
<body><script type="module">
  import * as edgebus from "/web/dist/index.js";
  import * as script from "/tests/node/fixtures/js-script.js";
  window.edgebus = edgebus;
  window.script = script;
  window.ready = true;
</script></body></html>`;

let server;
let httpServer;
let browser;
let page;
let pageErrors = [];

before(async () => {
  requirePackage();
  server = await startServer("", { jetstream: true });
  let base;
  ({ server: httpServer, base } = await serveOn({ "/js-diff.html": DIFF_PAGE }, REPO));
  ({ browser, page, errors: pageErrors } = await launch());
  await page.goto(`${base}/js-diff.html`);
  await page.waitForFunction(() => window.ready === true);
});

after(async () => {
  if (browser) await browser.close();
  if (httpServer) await new Promise((r) => httpServer.close(r));
  if (server) await server.stop();
});

/** Plays the script through a fresh bus in the page, with `storage` ("memory", "indexeddb"). */
async function playInPage(storage) {
  return page.evaluate(async (storage) => {
    const { open, deleteStorage, headers } = window.edgebus;
    const name = `js-diff-${storage}`;
    if (storage === "indexeddb") await deleteStorage(name);
    const bus = await open({ name, storage });
    const transport = {
      subscribe(subject, onMsg) {
        const sub = bus.subscribe(subject, {
          callback: (_err, m) => onMsg({
            subject: m.subject, reply: m.reply, status: m.headers?.code, description: m.headers?.description,
            headers: m.headers ? m.headers.toPairs() : [], data: m.string(),
          }),
        });
        return () => sub.unsubscribe();
      },
      publish(subject, data, { reply, headers: pairs }) {
        let h;
        if (pairs) {
          h = headers();
          for (const [k, v] of pairs) h.append(k, v);
        }
        bus.publish(subject, data, { reply, headers: h });
      },
    };
    try {
      return await window.script.runScript(transport);
    } finally {
      await bus.close();
    }
  }, storage);
}

let fromServer;

/** The server's transcript, played once for both page variants. */
async function serverTranscript() {
  fromServer ??= transcript(await playOverTcp(server.url));
  return fromServer;
}

/** Plays the script in the page with `storage` and compares it with the server's. */
async function compareWithPage(storage) {
  const a = await serverTranscript();
  const b = transcript(await playInPage(storage));
  if (process.env.EDGEBUS_DIFF_DUMP) {
    writeFileSync(`${process.env.EDGEBUS_DIFF_DUMP}.${storage}.json`, JSON.stringify({ server: a, page: b }, null, 1));
  }
  assert.equal(a.length, STEPS.length);
  assert.equal(b.length, STEPS.length);
  const diff = firstDifference(a, b);
  assert.equal(diff, null, diff && `step "${diff.step}" differs at ${diff.path}:\n  server: ${diff.a}\n  page:   ${diff.b}`);
  // The script must have exercised what it claims: a step with no reply at all would compare
  // equal on both sides however wrong it is, so only acks without a reply may be empty.
  for (let i = 0; i < STEPS.length; i++) {
    if (STEPS[i].reply === false) continue;
    assert.ok(a[i].replies.length > 0, `step "${STEPS[i].name}" got no reply`);
  }
  assert.deepEqual(pageErrors, []);
}

test("every JetStream and KV reply is the same from the server and from the page (memory)", () => compareWithPage("memory"));

// With IndexedDB the page holds acks and other engine output until the commit that makes
// them durable: the replies and their order must still be the server's.
test("every JetStream and KV reply is the same from the server and from the page (IndexedDB)", () => compareWithPage("indexeddb"));
