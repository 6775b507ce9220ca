// The inspector of the in-page bus (web/index.html). Plain ESM over the package's build.
// Query parameters: ws=<server WebSocket URL> (default ws://<this host>:8080), name=<bus name>
// (default "demo"), storage=memory|indexeddb (default indexeddb), connect=0 (do not link),
// nats=<the server's TCP URL, for the native-client snippet>.
import { open } from "./dist/index.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const wsDefault = params.get("ws") || `ws://${location.hostname || "127.0.0.1"}:8080`;
const name = params.get("name") || "demo";
const natsUrl = params.get("nats") || "nats://127.0.0.1:4222";
const storage = params.get("storage") === "memory" ? "memory" : "indexeddb";
const list = (s) => s.split(",").map((x) => x.trim()).filter(Boolean);
const time = () => new Date().toLocaleTimeString([], { hour12: false });

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function row(cells, cls) {
  const tr = el("tr", undefined, cls);
  for (const c of cells) tr.append(el("td", String(c)));
  return tr;
}

const bus = await open({ name, storage });
window.bus = bus; // for the console (and the tests)
$("bus-info").textContent = `bus "${name}" · ${storage} · in this page`;
$("link-url").value = wsDefault;

// ---- link ---------------------------------------------------------------------------------

function logEvent(s) {
  const li = el("li");
  const what = { connected: `to ${s.url}`, disconnected: s.error || "", reconnecting: `in ${s.delay} ms` }[s.type] ?? "";
  li.append(el("span", `${time()} `), el("b", s.type), el("span", ` ${what} · outbox ${s.outbox}`));
  $("link-events").prepend(li);
  while ($("link-events").children.length > 50) $("link-events").lastChild.remove();
}
bus.status({ callback: logEvent });

async function connect() {
  if (bus.link) await bus.link.close();
  try {
    await bus.connect($("link-url").value.trim(), {
      export: list($("link-export").value),
      import: list($("link-import").value),
      reconnectDelayMax: 3000,
    });
  } catch (e) {
    $("link-detail").textContent = e.message;
  }
  refreshLink();
}
$("link-connect").onclick = connect;
$("link-close").onclick = async () => {
  if (bus.link) await bus.link.close();
  refreshLink();
};

function refreshLink() {
  const info = bus.link?.info();
  const state = info?.state ?? "disconnected";
  $("link-pill").dataset.state = info ? state : "disconnected";
  const server = info?.server && info.server.length > 18 ? `${info.server.slice(0, 16)}…` : info?.server;
  $("link-state").textContent = info ? `${state}${server ? ` · ${server}` : ""}` : "not linked";
  $("outbox").textContent = String(info?.outbox ?? 0);
  $("link-detail").textContent = info
    ? `sent ${info.sent} · received ${info.received}${info.error && state !== "connected" ? ` · ${info.error}` : ""}`
    : "";
  $("native-hint").textContent =
    `# a native client on the server's TCP port (nats-py):\n` +
    `import asyncio, nats\n` +
    `async def show(m): print(m.subject, m.data)\n` +
    `async def main():\n` +
    `    nc = await nats.connect("${natsUrl}")\n` +
    `    await nc.subscribe("demo.>", cb=show)      # what the page publishes\n` +
    `    await nc.publish("demo.native", b"hello from Python")  # shows up in the page\n` +
    `    print((await nc.request("demo.echo", b"hi")).data)  # answered by the page\n` +
    `    await asyncio.sleep(60)\n` +
    `asyncio.run(main())`;
}

// ---- publish / subscribe --------------------------------------------------------------------

function logMsg(subject, data) {
  const tbody = $("msg-log");
  tbody.querySelector(".empty")?.remove();
  tbody.prepend(row([time(), subject, data]));
  while (tbody.children.length > 200) tbody.lastChild.remove();
}
$("msg-log").append(row(["", "no messages yet: subscribe, then publish", ""], "empty"));

function addSub(subject) {
  let sub;
  try {
    sub = bus.subscribe(subject, { callback: (_e, m) => logMsg(m.subject, m.string()) });
  } catch (e) {
    $("pub-result").textContent = e.message;
    return;
  }
  const li = el("li", subject);
  const x = el("button", "×");
  x.title = "unsubscribe";
  x.onclick = () => {
    sub.unsubscribe();
    li.remove();
  };
  li.append(x);
  $("sub-list").append(li);
}
$("sub-add").onclick = () => addSub($("sub-subject").value.trim());

$("pub-send").onclick = () => {
  try {
    bus.publish($("pub-subject").value.trim(), $("pub-data").value);
    $("pub-result").textContent = `published at ${time()}`;
  } catch (e) {
    $("pub-result").textContent = e.message;
  }
};
$("pub-request").onclick = async () => {
  $("pub-result").textContent = "waiting for a reply…";
  try {
    const m = await bus.request($("pub-subject").value.trim(), $("pub-data").value, { timeout: 3000 });
    $("pub-result").textContent = `reply: ${m.string()}`;
  } catch (e) {
    $("pub-result").textContent = `${e.name}: ${e.message}`;
  }
};
// A responder in the page, so requests from native clients have someone to answer.
bus.subscribe("demo.echo", { callback: (_e, m) => m.respond(`echo from the page: ${m.string()}`) });

// ---- streams, consumers, KV -------------------------------------------------------------------

const jsm = await bus.jetstreamManager();
$("stream-add").onclick = async () => {
  try {
    const info = await jsm.streams.add({ name: $("stream-name").value.trim(), subjects: list($("stream-subjects").value) });
    $("stream-result").textContent = `created ${info.config.name}`;
  } catch (e) {
    $("stream-result").textContent = e.message;
  }
  refreshStores();
};
$("kv-put").onclick = async () => {
  try {
    const kv = await bus.kv($("kv-bucket").value.trim(), { history: 5 });
    const rev = await kv.put($("kv-key").value.trim(), $("kv-value").value);
    $("kv-result").textContent = `revision ${rev}`;
  } catch (e) {
    $("kv-result").textContent = e.message;
  }
  refreshStores();
};

let refreshing = false;
async function refreshStores() {
  if (refreshing) return;
  refreshing = true;
  try {
    const streams = await jsm.streams.list().next();
    const tbody = $("streams");
    const rows = [];
    for (const s of streams) {
      const consumers = await jsm.consumers.list(s.config.name).next();
      const names = consumers.map((c) => `${c.name} (${c.num_pending} pending)`).join(", ") || "—";
      rows.push(row([s.config.name, (s.config.subjects ?? []).join(" "), s.state.messages, s.state.bytes, names]));
    }
    if (!rows.length) rows.push(row(["no streams yet", "", "", "", ""], "empty"));
    tbody.replaceChildren(...rows);

    const buckets = [];
    for (const s of streams.filter((s) => s.config.name.startsWith("KV_"))) {
      const bucket = s.config.name.slice(3);
      const kv = await bus.kv(bucket);
      const div = el("div", undefined, "bucket");
      div.append(el("h3", `${bucket} · ${s.state.messages} values kept`));
      const table = el("table", undefined, "grid");
      table.append(el("thead"));
      table.tHead.append(row(["key", "value", "revision"]));
      const body = el("tbody");
      for await (const key of await kv.keys()) {
        const e = await kv.get(key);
        if (e) body.append(row([key, e.string(), e.revision]));
      }
      if (!body.children.length) body.append(row(["(empty)", "", ""], "empty"));
      table.append(body);
      div.append(table);
      buckets.push(div);
    }
    if (!buckets.length) buckets.push(el("p", "no buckets yet: put a value", "hint"));
    $("kv-buckets").replaceChildren(...buckets);
  } catch (e) {
    console.warn("edgebus inspector:", e);
  } finally {
    refreshing = false;
  }
}

setInterval(() => {
  refreshLink();
  refreshStores();
}, 1000);
refreshLink();
refreshStores();
addSub("demo.>");
if (params.get("connect") !== "0") connect();
window.inspectorReady = true;
