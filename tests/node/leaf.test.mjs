// A browser on the edge (issue 15): edgebus as a leaf node of a 3-node nats-server cluster,
// and in headless Chromium (a) nats.ws connected to the leaf over WebSocket and (b) the
// `edgebus` page bus linked to the leaf (bus.connect, importing a subject), each receiving
// what a client on hub node 2 publishes, and (a) answering that client's request. Each test
// runs first with nats-server 2.14 as the leaf (proving the test), then with edgebus.
// Needs the release server and, for (b), `bash web/build.sh`.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { readFileSync } from "node:fs";
import path from "node:path";
import { connect, nuid } from "@nats-io/transport-node";
import { startServer, freePort, HOST, REPO } from "./server.mjs";
import { launch, PACKAGE_PAGE, requirePackage, serveOn } from "./page.mjs";

const NATS_WS_BUNDLE = path.join(REPO, "tests", "node", "node_modules", "nats.ws", "esm", "nats.js");
const WS_PAGE = `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head>
<body><script type="module">
  import * as nats from "/nats.js";
  window.nats = nats;
  window.ready = true;
</script></body></html>`;

let hub = [];
let browser;
let page;
let pageErrors = [];
let wsSite;
let pkgSite;
let pkgBase;
let atHub;

/** Serves the nats.ws test page and the nats.ws ESM bundle (as JavaScript). */
function serveNatsWs() {
  const bundle = readFileSync(NATS_WS_BUNDLE);
  const srv = http.createServer((req, res) => {
    if (req.url === "/") res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(WS_PAGE);
    else if (req.url === "/nats.js") res.writeHead(200, { "content-type": "text/javascript" }).end(bundle);
    else res.writeHead(404).end();
  });
  return new Promise((resolve) => srv.listen(0, HOST, () => resolve(srv)));
}

async function leafCount() {
  let n = 0;
  for (const node of hub) {
    const r = await fetch(`http://${HOST}:${node.httpPort}/leafz`);
    n += (await r.json()).leafnodes;
  }
  return n;
}

async function waitFor(check, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    assert.ok(Date.now() < deadline, `timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Publishes probes from the hub until the page has seen one (its interest crossed the
 *  cluster and the leaf link), then a marker; returns once the page has the marker, so what
 *  is published next is the next thing the page sees; returns how many it has seen. */
async function crossed(subject, seen) {
  await waitFor(async () => {
    atHub.publish(subject, "probe");
    await atHub.flush();
    return (await seen()).includes("probe");
  }, 20000, `interest on ${subject} crossing the link`);
  atHub.publish(subject, "marker");
  await waitFor(async () => (await seen()).includes("marker"), 5000, "the marker");
  return (await seen()).length;
}

before(async () => {
  requirePackage();
  const clusterPorts = [await freePort(), await freePort(), await freePort()];
  const leafPorts = [await freePort(), await freePort(), await freePort()];
  for (let i = 0; i < 3; i++) {
    const routes = clusterPorts.filter((_, j) => j !== i).map((p) => `nats-route://${HOST}:${p}`).join(", ");
    hub.push(await startServer(`server_name: hub${i + 1}
cluster { name: hub, listen: "${HOST}:${clusterPorts[i]}", routes: [ ${routes} ] }
leafnodes { listen: "${HOST}:${leafPorts[i]}", authorization { user: leaf, password: s3cret } }
`, { kind: "nats-server" }));
  }
  hub.leafPorts = leafPorts;
  atHub = await connect({ servers: hub[1].url, reconnect: false, timeout: 5000 });
  wsSite = await serveNatsWs();
  ({ server: pkgSite, base: pkgBase } = await serveOn({ "/leaf-test.html": PACKAGE_PAGE }));
  ({ browser, page, errors: pageErrors } = await launch());
});

after(async () => {
  if (browser) await browser.close();
  if (atHub && !atHub.isClosed()) await atHub.close();
  if (wsSite) wsSite.close();
  if (pkgSite) await new Promise((r) => pkgSite.close(r));
  for (const node of hub) await node.stop();
});

for (const kind of ["nats-server", "edgebus"]) {
  test(`a browser on the edge (${kind} as the leaf): nats.ws and the page bus receive what a cluster client publishes`, async () => {
    const leaf = await startServer(`server_name: edge
leafnodes { remotes: [ { urls: ["nats-leaf://leaf:s3cret@${HOST}:${hub.leafPorts[0]}"] } ], reconnect: "250ms" }
`, { kind });
    try {
      await waitFor(async () => (await leafCount()) === 1, 15000, `the leaf linked\n${leaf.log()}`);

      // (a) nats.ws in the page, connected to the leaf's WebSocket port
      await page.goto(`http://${HOST}:${wsSite.address().port}/`);
      await page.waitForFunction(() => window.ready === true);
      const down = `edge.down.${nuid.next()}`;
      const svc = `edge.svc.${nuid.next()}`;
      await page.evaluate(async ([url, down, svc]) => {
        const nats = window.nats;
        const sc = nats.StringCodec();
        window.nc = await nats.connect({ servers: url, reconnect: false, timeout: 5000 });
        window.got = [];
        const sub = window.nc.subscribe(down);
        (async () => { for await (const m of sub) window.got.push(sc.decode(m.data)); })();
        const service = window.nc.subscribe(svc);
        (async () => { for await (const m of service) m.respond(sc.encode(`edge:${sc.decode(m.data)}`)); })();
        await window.nc.flush();
      }, [leaf.wsUrl, down, svc]);
      let seen = await crossed(down, () => page.evaluate(() => window.got));
      for (let i = 0; i < 20; i++) atHub.publish(down, `m${i}`);
      atHub.publish(down, "end");
      await atHub.flush();
      await waitFor(async () => (await page.evaluate(() => window.got)).includes("end"), 5000, "20 messages");
      assert.deepEqual((await page.evaluate(() => window.got)).slice(seen),
        [...Array.from({ length: 20 }, (_, i) => `m${i}`), "end"]);
      const reply = await atHub.request(svc, "ping", { timeout: 5000 });
      assert.equal(reply.string(), "edge:ping");
      await page.evaluate(() => window.nc.close());

      // (b) the edgebus page bus, linked to the leaf and importing a subject tree
      await page.goto(`${pkgBase}/leaf-test.html`);
      await page.waitForFunction(() => window.ready === true);
      const tree = `edge.bus.${nuid.next()}`;
      await page.evaluate(async ([url, tree]) => {
        const bus = await window.edgebus.open({ name: `leaf-${Date.now()}` });
        window.bus = bus;
        window.got = [];
        bus.subscribe(`${tree}.>`, { callback: (_e, m) => window.got.push(m.string()) });
        await bus.connect(url, { import: [`${tree}.>`], reconnectDelayMin: 50, reconnectDelayMax: 400 });
      }, [leaf.wsUrl, tree]);
      seen = await crossed(`${tree}.x`, () => page.evaluate(() => window.got));
      for (let i = 0; i < 20; i++) atHub.publish(`${tree}.x`, `b${i}`);
      atHub.publish(`${tree}.x`, "end");
      await atHub.flush();
      await waitFor(async () => (await page.evaluate(() => window.got)).includes("end"), 5000, "20 messages on the bus");
      assert.deepEqual((await page.evaluate(() => window.got)).slice(seen),
        [...Array.from({ length: 20 }, (_, i) => `b${i}`), "end"]);
      await page.evaluate(() => window.bus.close());
      assert.deepEqual(pageErrors, []);
    } finally {
      await leaf.stop();
      await waitFor(async () => (await leafCount()) === 0, 15000, "the leaf gone");
    }
  });
}
