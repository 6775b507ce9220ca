// A web app written against the package's published types (web/dist/*.d.ts): every manager
// and result as nats.js v3 names it. It is only type-checked (tsc --strict --noEmit, no
// skipLibCheck; types.test.mjs), never run, so each line states what a user may rely on.
import {
  open,
  headers,
  Lister,
  JetStreamApiError,
  StorageQuotaError,
  PullStatusError,
  type BatchAck,
  type ConsumeOptions,
  type FastIngest,
  type FastIngestProgress,
  type PullConsumerMessages,
  type Bus,
  type ConsumerConfig,
  type ConsumerInfo,
  type ConsumerMessages,
  type JsMsg,
  type KvEntry,
  type KvStatus,
  type ObjectInfo,
  type PubAck,
  type PushConsumer,
  type StorageEstimate,
  type StoredMsg,
  type StreamConfig,
  type StreamInfo,
  type StreamState,
} from "edgebus";

export async function app(): Promise<void> {
  const bus: Bus = await open({ name: "app", storage: "indexeddb", persist: true, maxFileStore: 1 << 20, maxMemoryStore: 1 << 20 });
  const jsm = await bus.jetstreamManager();
  const js = bus.jetstream();

  const cfg: Partial<StreamConfig> & { name: string } = { name: "ORDERS", subjects: ["orders.>"], max_msgs: 1000 };
  const si: StreamInfo = await jsm.streams.add(cfg);
  const state: StreamState = si.state;
  const last: number = state.last_seq;
  const updated: StreamInfo = await jsm.streams.update("ORDERS", { max_msgs: 2000 });
  const storage: "file" | "memory" = updated.config.storage;
  const names: Lister<string> = jsm.streams.names();
  for await (const n of names) n.toUpperCase();
  for await (const s of jsm.streams.list()) s.config.subjects.join(",");
  const page: StreamInfo[] = await jsm.streams.list().next();

  const h = headers();
  h.set("X-Trace-Id", "1");
  const ack: PubAck = await js.publish("orders.1", "hello", { msgID: "1", headers: h, expect: { streamName: "ORDERS" } });
  const seq: number = ack.seq;
  const sm: StoredMsg | null = await jsm.streams.getMessage("ORDERS", { seq });
  if (sm) sm.header.get("x-trace-id") + sm.string() + sm.time.toISOString();
  const purged: number = (await jsm.streams.purge("ORDERS", { keep: 1 })).purged;

  const ccfg: Partial<ConsumerConfig> = { durable_name: "worker", ack_policy: "explicit", deliver_subject: "push.worker" };
  const ci: ConsumerInfo = await jsm.consumers.add("ORDERS", ccfg);
  const pending: number = ci.num_pending + ci.delivered.stream_seq;
  for await (const c of jsm.consumers.list("ORDERS")) c.config.ack_policy;

  const pc: PushConsumer = await js.consumers.getPushConsumer("ORDERS", "worker");
  const msgs: ConsumerMessages = await pc.consume();
  for await (const m of msgs) {
    const jm: JsMsg = m;
    jm.ack();
    break;
  }
  for await (const n of msgs.status()) if (n.type === "heartbeat") n.lastStreamSequence;
  await msgs.close();
  const ordered = await (await js.consumers.getPushConsumer("ORDERS")).consume({ callback: (m) => m.string() });
  await ordered.closed();

  const kv = await bus.kv("profile", { history: 5 });
  const rev: number = await kv.put("name", "ada");
  const e: KvEntry | null = await kv.get("name");
  const status: KvStatus = await kv.status();
  if (e) e.string() + e.rawKey + status.values;

  const os = await bus.objm().create("files");
  const oi: ObjectInfo = await os.putBlob({ name: "a.txt" }, new TextEncoder().encode("a"));
  for await (const st of bus.objm().list()) st.bucket + st.size;
  const infos: ObjectInfo[] = await os.list();
  const est: StorageEstimate = await bus.storage();
  const free: number = est.quota - est.usage;
  try {
    await kv.put("big", new Uint8Array(1 << 20));
  } catch (err) {
    if (err instanceof StorageQuotaError) err.err_code;
    else if (err instanceof JetStreamApiError) err.apiError().description;
  }
  void [last, page, purged, pending, rev, oi.digest, free, storage, infos];
  await bus.close();
}

/** Fast-ingest batches and pulls in priority groups, with nats.js v3's names. */
export async function ingestAndPull(bus: Bus): Promise<void> {
  const js = bus.jetstream();
  const jsm = await bus.jetstreamManager();
  await jsm.streams.add({ name: "FAST", subjects: ["fast.>"], allow_batched: true });
  const fi: FastIngest = await js.startFastIngest("fast.1", "first", { allowGaps: false, ackInterval: 50, maxOutstandingAcks: 2 });
  const p: FastIngestProgress = await fi.add("fast.2", "second", { msgID: "2" });
  for await (const g of fi.gaps()) g.lastSeq + g.seq;
  const fresh: FastIngestProgress = await fi.ping();
  const ack: BatchAck = await fi.last("fast.3", "third");
  const same: BatchAck = await fi.done();
  const viaEnd: Promise<BatchAck> = (await js.startFastIngest("fast.x", undefined, { allowGaps: true })).end();

  await jsm.consumers.add("FAST", { durable_name: "w", ack_policy: "explicit", priority_groups: ["G"], priority_policy: "pinned_client" });
  await jsm.consumers.unpin("FAST", "w", "G");
  const c = await js.consumers.get("FAST", "w");
  const opts: ConsumeOptions = { group: "G", max_messages: 10, expires: 5000 };
  const msgs: PullConsumerMessages = await c.consume(opts);
  for await (const n of msgs.status()) {
    if (n.type === "consumer_pinned") n.id.length;
    if (n.type === "consumer_unpinned") break;
  }
  for await (const m of msgs) {
    m.ack();
    break;
  }
  const ended: void | Error = await msgs.close();
  if (ended instanceof PullStatusError) ended.code;
  await c.consume({ group: "O", min_pending: 100, callback: (m: JsMsg) => m.ack() });
  const m: JsMsg | null = await c.next({ group: "P", priority: 1, expires: 1000 });
  const fetched = await c.fetch({ group: "O", min_ack_pending: 5, max_messages: 5 });
  void [p, fresh, ack.batch + ack.count, same, viaEnd, m, fetched.messages.length];
}
