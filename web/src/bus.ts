// The bus: loading the module, opening a bus, publish/subscribe/request, and the doors to
// JetStream, KV, the object store and the link.

import type { Bus as WasmBus } from "../pkg/edgebus_wasm.js";
import { doors, full, wasm } from "./bindings.js";
import { AuthorizationError, errorClasses } from "./errors.js";
import type { JetStreamClient, JetStreamManager, PubAck } from "./jetstream.js";
import type { KV, KvOptions } from "./kv.js";
import { Link, StatusWatcher, type ConnectOptions, type LinkStatus } from "./link.js";
import { Msg, MsgBatch } from "./msg.js";
import type { Objm } from "./obj.js";
import { PublishQueue } from "./pubqueue.js";
import { estimate, persist, type StorageEstimate } from "./storage.js";
import { encode, type MsgHdrs, type Payload, type RawBatchCallback, type RawExtra } from "./types.js";

// ---- loading ------------------------------------------------------------------------------

let loading: Promise<unknown> | null = null;

/** Loads the wasm module once (from `module` if given, else next to the bindings). */
export function load(module?: string | URL | BufferSource): Promise<unknown> {
  const b = wasm();
  loading ??= b.default(module === undefined ? undefined : { module_or_path: module }).then((exports) => {
    // From now on every error from the wasm side is an instance of its class.
    b.setErrorClasses(errorClasses);
    return exports;
  });
  return loading;
}

export interface OpenOptions {
  /** Bus name; with IndexedDB storage, also the database the bus is kept in. */
  name?: string;
  /** `"indexeddb"` or `"opfs"` (the Origin Private File System, written by a dedicated
   *  worker the bus starts): streams, consumers and KV survive reloads, and the bus is shared
   *  by every tab and worker of the origin that opens this name (one leads, the others are
   *  its clients). `"auto"`: OPFS where the browser offers it, else IndexedDB. `"memory"`
   *  (default): nothing persists. */
  storage?: "indexeddb" | "opfs" | "auto" | "memory";
  /** With persisted storage, `false` refuses to share: `open` rejects with a
   *  `StorageLockedError` while another tab or worker has the bus. Default `true`. */
  share?: boolean;
  /** Where to load `edgebus_wasm_bg.wasm` from, if not next to the bindings. */
  wasm?: string | URL | BufferSource;
  /** Largest message (headers and payload) in bytes; a larger publish throws
   *  `MaxPayloadError`. Default 1 MiB, as nats-server. */
  maxPayload?: number;
  /** Bytes the bus's file streams (IndexedDB) may hold in all (nats-server's
   *  `max_file_store`): a stream whose `max_bytes` does not fit is refused (10047), a
   *  publish once they hold it gets `StorageQuotaError` (10023). Default: no limit. */
  maxFileStore?: number;
  /** The same for memory streams (nats-server's `max_memory_store`; 10028 at create). */
  maxMemoryStore?: number;
  /** Asks the browser to keep the bus's data under storage pressure
   *  (`navigator.storage.persist()`); `bus.storage()` tells whether it agreed. */
  persist?: boolean;
}

/** Opens a bus; with `storage: "indexeddb"` everything stored earlier is read back first.
 *  The stored bus has one owner, its leader: a tab or worker opening it while another one
 *  leads becomes its client (see `info().role`), and takes over when the leader goes. */
export async function open(opts: OpenOptions = {}): Promise<Bus> {
  await load(opts.wasm);
  const raw = await wasm().open({ name: opts.name, storage: opts.storage, share: opts.share });
  if (opts.maxPayload !== undefined) raw.setMaxPayload(opts.maxPayload);
  if (opts.maxFileStore !== undefined || opts.maxMemoryStore !== undefined) {
    raw.setStoreLimits(opts.maxMemoryStore ?? 0, opts.maxFileStore ?? 0);
  }
  if (opts.persist) await persist();
  return new Bus(raw);
}

/** Deletes what bus `name` stored in IndexedDB (close it first). */
export async function deleteStorage(name: string): Promise<void> {
  await load();
  await full("deleteStorage")(name);
}

export interface PublishOptions {
  reply?: string;
  headers?: MsgHdrs;
}

// ---- subscriptions ------------------------------------------------------------------------

export interface SubscriptionOptions {
  queue?: string;
  /** Called for each message; without it, iterate the subscription. */
  callback?: (err: Error | null, msg: Msg) => void;
  /** Unsubscribe after this many messages. */
  max?: number;
  /** @internal Set by `subscribeBatch`. */
  batch?: (err: Error | null, batch: MsgBatch) => void;
}

export interface BatchSubscriptionOptions {
  queue?: string;
  /** Called with every batch of messages (in order; a batch holds up to 4096 messages or
   *  about 1 MiB of payload). */
  callback: (err: Error | null, batch: MsgBatch) => void;
  /** Unsubscribe after this many messages. */
  max?: number;
}

/** A subscription: an async iterator of messages, or callback-driven. */
export class Subscription implements AsyncIterable<Msg> {
  private queue: Msg[] = [];
  private waiting: ((r: IteratorResult<Msg>) => void)[] = [];
  private done = false;
  private received = 0;
  private resolveClosed!: () => void;
  /** Resolves when the subscription ends. */
  readonly closed: Promise<void> = new Promise((r) => (this.resolveClosed = r));
  sid = 0;

  constructor(
    private readonly bus: Bus,
    private readonly subject: string,
    private readonly opts: SubscriptionOptions,
  ) {}

  /** @internal */
  deliverBatch(b: MsgBatch): void {
    if (this.opts.batch) {
      if (this.done) return;
      this.received += b.length;
      try {
        this.opts.batch(null, b);
      } catch (e) {
        console.error("edgebus: subscription callback threw", e);
      }
      if (this.opts.max && this.received >= this.opts.max) this.finish();
      return;
    }
    for (let i = 0; i < b.length && !this.done; i++) this.deliver(b.msg(i));
  }

  /** @internal */
  deliver(m: Msg): void {
    if (this.done) return;
    this.received++;
    if (this.opts.callback) {
      try {
        this.opts.callback(null, m);
      } catch (e) {
        console.error("edgebus: subscription callback threw", e);
      }
    } else {
      const w = this.waiting.shift();
      if (w) w({ value: m, done: false });
      else this.queue.push(m);
    }
    if (this.opts.max && this.received >= this.opts.max) this.finish();
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    for (const w of this.waiting.splice(0)) w({ value: undefined, done: true });
    this.resolveClosed();
  }

  getSubject(): string {
    return this.subject;
  }
  getReceived(): number {
    return this.received;
  }
  isClosed(): boolean {
    return this.done;
  }
  /** Ends now, or after `max` messages in total. */
  unsubscribe(max?: number): void {
    if (this.done) return;
    this.bus.raw.unsubscribe(this.sid, max);
    if (max && max > this.received) {
      this.opts.max = max;
    } else {
      this.finish();
    }
  }
  /** Ends the subscription once queued messages were handed out. */
  async drain(): Promise<void> {
    this.bus.raw.unsubscribe(this.sid, undefined);
    if (this.queue.length === 0) this.finish();
    else this.done = false;
    await this.closed.catch(() => {});
  }
  /** @internal */
  close(): void {
    this.finish();
  }

  [Symbol.asyncIterator](): AsyncIterator<Msg> {
    return {
      next: () => {
        const m = this.queue.shift();
        if (m) {
          if (this.queue.length === 0 && this.bus.raw.isClosed()) this.finish();
          return Promise.resolve({ value: m, done: false });
        }
        if (this.done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((r) => this.waiting.push(r));
      },
      return: () => {
        this.unsubscribe();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

// ---- the bus ------------------------------------------------------------------------------

export interface RequestOptions {
  /** Milliseconds (default 5000). */
  timeout?: number;
  headers?: MsgHdrs;
}

/** Stream publishes made in one task, as parallel lists (one object per publish fewer: the
 *  page makes one per publish anyway, its promise). */
class QueuedPublishes {
  subjects: string[] = [];
  data: Uint8Array[] = [];
  resolve: ((ack: PubAck) => void)[] = [];
  reject: ((e: unknown) => void)[] = [];
  get length(): number {
    return this.subjects.length;
  }
}

export class Bus {
  private subs = new Set<Subscription>();
  /** @internal Stream publishes made in this task, sent together at its end (see `jsQueue`). */
  private jsQueued = new QueuedPublishes();
  /** Plain publishes made in this task, sent together at its end (see `publish`). At most
   *  one of the two queues holds anything: queueing into one sends the other first. */
  private queued = new PublishQueue();
  /** Subjects the broker took a publish on: a publish on one of them can only be refused
   *  for its size, which `queued` checks against `maxPayload`. The subject rules stay in the
   *  core; this only remembers its verdicts (bounded: reply inboxes come and go). */
  private published = new Set<string>();
  private readonly maxPayload: number;
  /** Set by `close()`: from then on every publish goes straight to the bus, which throws
   *  once it is closed. */
  private closing = false;
  private statusListeners = new Set<StatusWatcher>();
  /** The current link to a server, if any. */
  link: Link | null = null;

  /** The wasm side. */
  private readonly wasm: WasmBus;

  /** @internal */
  constructor(raw: WasmBus) {
    this.wasm = raw;
    this.maxPayload = raw.maxPayload();
    // a bus shared between tabs: the leader's link reports to every context, and the
    // leader runs the engine calls of the others (see remote.ts; the full entry's only:
    // the core module's buses are never shared)
    raw.linkStatus((s: LinkStatus | { type: "leader" }) => (s.type === "leader" ? this.lead() : this.linkStatus(s)));
    const role = raw.info().role;
    if (role === "leader") this.lead();
    if (role === "client") this.remote = doors("a shared bus").remoteEngine(this);
  }

  /** This context leads a shared bus (from `open`, or taking over): it serves the engine
   *  calls of the others. */
  private lead(): void {
    this.remote = null;
    doors("a shared bus").lead(this);
  }

  /** A client context's engine calls, sent to the leader (see remote.ts); `null` once this
   *  context leads. */
  private remote: WasmBus | null = null;

  /** @internal What runs on the store's engine (KV, the object store, pull fetches): this
   *  context's own, or, in a client of another context's bus, the leader's. */
  get engine(): WasmBus {
    const raw = this.raw;
    return this.remote ?? raw;
  }

  /** Hands a link status event to every watcher. */
  private linkStatus(s: LinkStatus): void {
    // The link gave up on credentials the server refused: an error the app can act on.
    if (s.type === "closed" && s.error) s.err = new AuthorizationError(s.error);
    for (const w of [...this.statusListeners]) w.push(s);
  }

  /** @internal The wasm side (kept out of the published types: see tsconfig's
   *  stripInternal), with every queued publish sent first: whatever is asked of it sees the
   *  publishes made before, as when each crossed on its own. */
  get raw(): WasmBus {
    this.jsFlush();
    return this.wasm;
  }

  /** `{ name, storage, role, streams, consumers, subscriptions }`; `role` says whether this
   *  context leads a bus shared between tabs, is a client of the leader, or is alone. */
  info(): { name: string; storage: string; role: "leader" | "client" | "alone"; streams: number; consumers: number; subscriptions: number } {
    return this.raw.info();
  }

  /** @internal Queues a stream publish. Publishes made in the same task (e.g. many
   *  `js.publish` promises started before the first is awaited) cross into WebAssembly in one
   *  call and are stored together, so one IndexedDB commit covers them. */
  jsQueue(subject: string, data: Uint8Array): Promise<PubAck> {
    this.sendQueued();
    const q = this.jsQueued;
    if (q.length === 0) queueMicrotask(() => this.jsFlush());
    q.subjects.push(subject);
    q.data.push(data);
    return new Promise((resolve, reject) => {
      q.resolve.push(resolve);
      q.reject.push(reject);
    });
  }

  /** @internal Sends the queued publishes, plain and stream (before anything else reaches
   *  the wasm bus, so the order of publishes is the order of calls). */
  jsFlush(): void {
    this.sendQueued();
    const q = this.jsQueued;
    const n = q.length;
    if (n === 0) return;
    this.jsQueued = new QueuedPublishes();
    if (n === 1) {
      this.wasm.jsPublish(q.subjects[0], q.data[0], undefined).then(q.resolve[0], q.reject[0]);
      return;
    }
    const ends = new Uint32Array(n);
    let total = 0;
    for (let i = 0; i < n; i++) ends[i] = total += q.data[i].length;
    const data = new Uint8Array(total);
    for (let i = 0; i < n; i++) data.set(q.data[i], i === 0 ? 0 : ends[i - 1]);
    this.wasm.jsPublishMany(q.subjects.join("\n"), data, ends).then(
      ([acks, errors]: [(PubAck | null)[], (Error | undefined)[] | undefined]) => {
        for (let i = 0; i < n; i++) {
          const e = errors?.[i];
          if (e) q.reject[i](e);
          else q.resolve[i](acks[i] as PubAck);
        }
      },
      (e: unknown) => {
        for (const reject of q.reject) reject(e);
      },
    );
  }

  /** Publishes a message. A plain publish (no reply, no headers) on a subject the bus took
   *  before is queued and crosses into WebAssembly with the others of the task; anything
   *  else goes at once, so a bad subject or a payload over `maxPayload` throws here. */
  publish(subject: string, data?: Payload, opts?: PublishOptions): void {
    if (!opts?.reply && !opts?.headers && !this.closing && this.published.has(subject)) {
      if (this.jsQueued.length) this.jsFlush();
      const was = this.queued.length;
      if (this.queued.push(subject, data, this.maxPayload)) {
        if (this.queued.full) this.sendQueued();
        else if (was === 0) queueMicrotask(() => this.sendQueued());
        return;
      }
    }
    const o = opts && (opts.reply || opts.headers) ? { reply: opts.reply, headers: opts.headers?.toPairs() } : undefined;
    this.raw.publish(subject, encode(data), o);
    if (this.published.size >= 1024) this.published.clear();
    this.published.add(subject);
  }

  /** Hands the queued plain publishes to the wasm bus in one call. */
  private sendQueued(): void {
    const q = this.queued.take();
    if (!q) return;
    try {
      this.wasm.publishRuns(q.subjects, q.runs, q.data, q.ends);
    } catch (e) {
      // Every queued message passed the checks the bus makes (subject known good, payload
      // within maxPayload), so this is a bug, not the caller's error: say it loudly.
      console.error("edgebus: queued publishes refused", e);
    }
  }

  /** Publishes every payload on `subject`, in order: the same as calling `publish` for each,
   *  but it crosses into WebAssembly once for the whole array, and subscribers get the
   *  messages in batches. Payloads already packed back to back (`{ data, ends }`, as a
   *  `MsgBatch` holds them) go as they are. */
  publishMany(subject: string, payloads: Payload[] | { data: Uint8Array; ends: Uint32Array }): void {
    if (!Array.isArray(payloads)) {
      this.raw.publishMany(subject, payloads.data, payloads.ends);
      return;
    }
    const parts = payloads.map(encode);
    const ends = new Uint32Array(parts.length);
    let total = 0;
    for (let i = 0; i < parts.length; i++) ends[i] = total += parts[i].length;
    const data = new Uint8Array(total);
    for (let i = 0; i < parts.length; i++) data.set(parts[i], i === 0 ? 0 : ends[i - 1]);
    this.raw.publishMany(subject, data, ends);
  }

  subscribe(subject: string, opts: SubscriptionOptions = {}): Subscription {
    const sub = new Subscription(this, subject, opts);
    const cb: RawBatchCallback = (data, ends, subjects, extras) =>
      sub.deliverBatch(new MsgBatch(this, data, ends, subjects, extras));
    sub.sid = this.raw.subscribe(subject, opts.queue, cb);
    if (opts.max) this.raw.unsubscribe(sub.sid, opts.max);
    this.subs.add(sub);
    sub.closed.then(() => this.subs.delete(sub));
    return sub;
  }

  /** Subscribes with a callback that gets messages in batches (`MsgBatch`): one call per
   *  batch rather than per message, the fastest way to take a high message rate. */
  subscribeBatch(subject: string, opts: BatchSubscriptionOptions): Subscription {
    return this.subscribe(subject, { queue: opts.queue, max: opts.max, batch: opts.callback });
  }

  async request(subject: string, data?: Payload, opts: RequestOptions = {}): Promise<Msg> {
    const raw = await this.raw.request(subject, encode(data), { timeout: opts.timeout, headers: opts.headers?.toPairs() });
    return new Msg(this, raw);
  }

  /** Links the bus to a NATS server's WebSocket port (an edgebus server or nats-server):
   *  imported subjects reach local subscribers, local publishes on exported subjects reach
   *  the server (kept in the outbox while offline), requests work both ways. Resolves once
   *  the stored outbox is loaded; connecting and reconnecting happen in the background:
   *  watch `status()`. A bus shared between tabs has one link, its leader's: called in a
   *  client context, the leader makes it; whichever context leads next re-creates it. */
  async connect(url: string, opts: ConnectOptions = {}): Promise<Link> {
    await this.raw.connect(url, opts, (s: LinkStatus) => this.linkStatus(s));
    this.link = new Link(this);
    return this.link;
  }

  /** The link's status events, as an async iterator or through `callback`. */
  status(opts: { callback?: (s: LinkStatus) => void } = {}): StatusWatcher {
    return new StatusWatcher(this.statusListeners, opts.callback);
  }

  /** The origin's storage use and quota, as the browser counts them, and whether it keeps
   *  the data under pressure (see `open({ persist })`). */
  storage(): Promise<StorageEstimate> {
    return estimate();
  }

  /** Resolves once everything stored is durable in IndexedDB and every ack went out. */
  flush(): Promise<void> {
    return this.raw.flush();
  }

  /** Drains every subscription, then closes. */
  async drain(): Promise<void> {
    await Promise.all([...this.subs].map((s) => s.drain()));
    await this.close();
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.raw.close();
    for (const s of this.subs) s.close();
    this.subs.clear();
    for (const w of [...this.statusListeners]) w.stop();
    this.link = null;
  }

  isClosed(): boolean {
    return this.raw.isClosed();
  }

  /** A fresh inbox subject. */
  newInbox(): string {
    return this.raw.newInbox();
  }

  jetstream(): JetStreamClient {
    return doors("jetstream").jetstream(this);
  }

  async jetstreamManager(): Promise<JetStreamManager> {
    return doors("jetstreamManager").jetstreamManager(this);
  }

  /** Opens KV bucket `bucket`, creating it (with `opts`) if it does not exist. */
  async kv(bucket: string, opts: KvOptions = {}): Promise<KV> {
    full("checkBucket")(bucket);
    await this.engine.kvBind(bucket, opts);
    return doors("kv").kv(this, bucket);
  }

  /** The object store manager (the same as `new Objm(bus)`). */
  objm(): Objm {
    return doors("objm").objm(this);
  }
}

