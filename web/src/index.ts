// edgebus: a NATS bus inside the page. A thin layer over the wasm exports (pkg/), shaped
// like nats.js v3 so NATS users feel at home. All the work happens in WebAssembly.

import init, { open as wasmOpen, deleteStorage as wasmDeleteStorage, Bus as WasmBus } from "../pkg/edgebus_wasm.js";

export type Payload = Uint8Array | string;

const te = new TextEncoder();
const td = new TextDecoder();

function encode(data?: Payload): Uint8Array {
  if (data === undefined) return new Uint8Array(0);
  return typeof data === "string" ? te.encode(data) : data;
}

// ---- loading ------------------------------------------------------------------------------

let loading: Promise<unknown> | null = null;

/** Loads the wasm module once (from `wasm` if given, else next to the bindings). */
export function load(wasm?: string | URL | BufferSource): Promise<unknown> {
  loading ??= init(wasm === undefined ? undefined : { module_or_path: wasm });
  return loading;
}

export interface OpenOptions {
  /** Bus name; with IndexedDB storage, also the database the bus is kept in. */
  name?: string;
  /** `"indexeddb"`: streams, consumers and KV survive reloads. `"memory"` (default): not. */
  storage?: "indexeddb" | "memory";
  /** Where to load `edgebus_wasm_bg.wasm` from, if not next to the bindings. */
  wasm?: string | URL | BufferSource;
}

/** Opens a bus; with `storage: "indexeddb"` everything stored earlier is read back first. */
export async function open(opts: OpenOptions = {}): Promise<Bus> {
  await load(opts.wasm);
  const raw = await wasmOpen({ name: opts.name, storage: opts.storage });
  return new Bus(raw);
}

/** Deletes what bus `name` stored in IndexedDB (close it first). */
export async function deleteStorage(name: string): Promise<void> {
  await load();
  await wasmDeleteStorage(name);
}

// ---- errors -------------------------------------------------------------------------------

/** Errors carry a `name` as in nats.js: `TimeoutError`, `NoRespondersError`,
 *  `JetStreamApiError` (with `code` and `err_code`), `ClosedConnectionError`,
 *  `InvalidSubjectError`, `InvalidArgumentError`, `StorageError`. */
export interface BusError extends Error {
  code?: number;
  err_code?: number;
}

export function isNoResponders(e: unknown): boolean {
  return e instanceof Error && e.name === "NoRespondersError";
}

export function isTimeout(e: unknown): boolean {
  return e instanceof Error && e.name === "TimeoutError";
}

// ---- headers & messages -------------------------------------------------------------------

/** Message headers (nats.js `MsgHdrs`): names case-preserved, repeats allowed. */
export class MsgHdrs implements Iterable<[string, string[]]> {
  code = 0;
  description = "";
  private entries: [string, string][] = [];

  static fromPairs(pairs: [string, string][], code = 0, description = ""): MsgHdrs {
    const h = new MsgHdrs();
    h.entries = pairs.map(([k, v]) => [k, v]);
    h.code = code;
    h.description = description;
    return h;
  }
  get hasError(): boolean {
    return this.code >= 300;
  }
  get status(): string {
    return `${this.code} ${this.description}`.trim();
  }
  get(k: string): string {
    return this.entries.find(([n]) => n === k)?.[1] ?? "";
  }
  has(k: string): boolean {
    return this.entries.some(([n]) => n === k);
  }
  values(k: string): string[] {
    return this.entries.filter(([n]) => n === k).map(([, v]) => v);
  }
  set(k: string, v: string): void {
    this.delete(k);
    this.append(k, v);
  }
  append(k: string, v: string): void {
    this.entries.push([k, v]);
  }
  delete(k: string): void {
    this.entries = this.entries.filter(([n]) => n !== k);
  }
  keys(): string[] {
    return [...new Set(this.entries.map(([n]) => n))];
  }
  toPairs(): [string, string][] {
    return this.entries.map(([k, v]) => [k, v]);
  }
  *[Symbol.iterator](): Iterator<[string, string[]]> {
    for (const k of this.keys()) yield [k, this.values(k)];
  }
}

/** New, empty headers (nats.js `headers()`). */
export function headers(): MsgHdrs {
  return new MsgHdrs();
}

interface RawMsg {
  subject: string;
  reply?: string;
  data: Uint8Array;
  headers?: [string, string][];
  status?: number;
  description?: string;
}

/** What the wasm side sends along with a message besides subject and payload. */
interface RawExtra {
  reply?: string;
  headers?: [string, string][];
  status?: number;
  description?: string;
}

/** The wasm side's subscription callback: a batch of messages per call. */
type RawBatchCallback = (data: Uint8Array, ends: Uint32Array, subjects: string | string[], extras?: (RawExtra | undefined)[]) => void;

export interface PublishOptions {
  reply?: string;
  headers?: MsgHdrs;
}

/** A received message. */
export class Msg {
  readonly subject: string;
  readonly reply: string;
  readonly data: Uint8Array;
  readonly headers?: MsgHdrs;
  protected readonly bus: Bus;

  constructor(bus: Bus, raw: RawMsg) {
    this.bus = bus;
    this.subject = raw.subject;
    this.reply = raw.reply ?? "";
    this.data = raw.data;
    if (raw.headers || raw.status) {
      this.headers = MsgHdrs.fromPairs(raw.headers ?? [], raw.status ?? 0, raw.description ?? "");
    }
  }
  string(): string {
    return td.decode(this.data);
  }
  json<T = unknown>(): T {
    return JSON.parse(this.string()) as T;
  }
  /** Replies to a request; false when the message had no reply subject. */
  respond(data?: Payload, opts: { headers?: MsgHdrs } = {}): boolean {
    if (!this.reply) return false;
    this.bus.publish(this.reply, data, { headers: opts.headers });
    return true;
  }
}

/** Messages delivered together to a `subscribeBatch` callback: the payloads sit back to
 *  back in one buffer (`data`, message `i` ending at `ends[i]`), so a batch costs one call
 *  from WebAssembly however many messages it holds. `Msg` objects are made only on demand. */
export class MsgBatch implements Iterable<Msg> {
  /** @internal */
  constructor(
    private readonly bus: Bus,
    /** Every payload, back to back. */
    readonly data: Uint8Array,
    /** `ends[i]`: where payload `i` ends in `data`. */
    readonly ends: Uint32Array,
    private readonly subjects: string | string[],
    private readonly extras?: (RawExtra | undefined)[],
  ) {}

  /** Number of messages. */
  get length(): number {
    return this.ends.length;
  }
  /** Payload bytes of every message together. */
  get byteLength(): number {
    return this.ends.length ? this.ends[this.ends.length - 1] : 0;
  }
  subject(i: number): string {
    return typeof this.subjects === "string" ? this.subjects : this.subjects[i];
  }
  /** Payload `i`, a view into `data` (no copy). */
  payload(i: number): Uint8Array {
    if (this.ends.length === 1) return this.data;
    return this.data.subarray(i === 0 ? 0 : this.ends[i - 1], this.ends[i]);
  }
  /** Message `i` as a `Msg` (reply, headers and `respond` included). */
  msg(i: number): Msg {
    const x = this.extras?.[i];
    return new Msg(this.bus, {
      subject: this.subject(i),
      data: this.payload(i),
      reply: x?.reply,
      headers: x?.headers,
      status: x?.status,
      description: x?.description,
    });
  }
  *[Symbol.iterator](): Iterator<Msg> {
    for (let i = 0; i < this.ends.length; i++) yield this.msg(i);
  }
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

// ---- the link to a server -----------------------------------------------------------------

export interface ConnectOptions {
  /** Subjects (wildcards allowed) whose local publishes go to the server. While the link is
   *  down they wait in the outbox (in IndexedDB with `storage: "indexeddb"`), each stamped
   *  with a `Nats-Msg-Id` so a stream on the server drops a resent one. */
  export?: string[];
  /** Subjects the server's publishes on come into the page. */
  import?: string[];
  user?: string;
  pass?: string;
  token?: string;
  /** Connection name shown by the server (default: the bus name). */
  name?: string;
  /** Milliseconds before the first retry (default 250); doubles with jitter up to... */
  reconnectDelayMin?: number;
  /** ...this (default 5000). */
  reconnectDelayMax?: number;
  /** Milliseconds between keepalive PINGs while connected (default 120000, as nats.js). */
  pingInterval?: number;
  /** PINGs left unanswered before the link counts as dead and reconnects (default 2). */
  maxPingOut?: number;
  /** Milliseconds a connection attempt may take up to the server's first PONG before it is
   *  abandoned and retried (default 20000). */
  timeout?: number;
}

/** A change of the link's state, with the outbox size at that moment. */
export interface LinkStatus {
  type: "connected" | "disconnected" | "reconnecting" | "closed";
  /** Publishes kept until the server confirms them. */
  outbox: number;
  url: string;
  /** `connected`: the server's name. */
  server?: string;
  /** `disconnected`: why, if known. */
  error?: string;
  /** `reconnecting`: milliseconds until the attempt, and its number. */
  delay?: number;
  attempt?: number;
}

export interface LinkInfo {
  url: string;
  state: "connected" | "connecting" | "reconnecting" | "disconnected";
  server: string;
  outbox: number;
  sent: number;
  received: number;
  reconnects: number;
  exports: string[];
  imports: string[];
  error: string | null;
}

/** Status events as an async iterator (or a callback); `stop()` ends it. */
export class StatusWatcher implements AsyncIterable<LinkStatus> {
  private queue: LinkStatus[] = [];
  private waiting: ((r: IteratorResult<LinkStatus>) => void)[] = [];
  private stopped = false;

  constructor(
    private readonly listeners: Set<StatusWatcher>,
    private readonly callback?: (s: LinkStatus) => void,
  ) {
    listeners.add(this);
  }

  /** @internal */
  push(s: LinkStatus): void {
    if (this.stopped) return;
    if (this.callback) {
      try {
        this.callback(s);
      } catch (e) {
        console.error("edgebus: status callback threw", e);
      }
      return;
    }
    const w = this.waiting.shift();
    if (w) w({ value: s, done: false });
    else this.queue.push(s);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.listeners.delete(this);
    for (const w of this.waiting.splice(0)) w({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<LinkStatus> {
    return {
      next: () => {
        const s = this.queue.shift();
        if (s) return Promise.resolve({ value: s, done: false });
        if (this.stopped) return Promise.resolve({ value: undefined, done: true });
        return new Promise((r) => this.waiting.push(r));
      },
      return: () => {
        this.stop();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

/** The bus's link to a server (see `Bus.connect`). */
export class Link {
  /** @internal */
  constructor(private readonly bus: Bus) {}

  /** `{ url, state, server, outbox, sent, received, reconnects, exports, imports, error }`. */
  info(): LinkInfo {
    return this.bus.raw.linkInfo();
  }
  /** Status events (connected, disconnected, reconnecting, closed) with the outbox size. */
  status(opts: { callback?: (s: LinkStatus) => void } = {}): StatusWatcher {
    return this.bus.status(opts);
  }
  /** Resolves true once every kept publish was confirmed by the server (false on timeout). */
  flush(opts: { timeout?: number } = {}): Promise<boolean> {
    return this.bus.raw.linkFlush(opts.timeout);
  }
  /** Ends the link; the outbox stays stored for the next `connect`. */
  async close(): Promise<void> {
    await this.bus.raw.linkClose();
    if (this.bus.link === this) this.bus.link = null;
  }
}

/** A stream publish waiting for the end of the current task, to go with the others. */
interface QueuedPublish {
  subject: string;
  data: Uint8Array;
  resolve: (ack: PubAck) => void;
  reject: (e: unknown) => void;
}

export class Bus {
  private subs = new Set<Subscription>();
  /** @internal Stream publishes made in this task, sent together at its end (see `jsQueue`). */
  private jsQueued: QueuedPublish[] = [];
  private statusListeners = new Set<StatusWatcher>();
  /** The current link to a server, if any. */
  link: Link | null = null;

  /** @internal */
  constructor(readonly raw: WasmBus) {}

  /** `{ name, storage, streams, consumers, subscriptions }`. */
  info(): { name: string; storage: string; streams: number; consumers: number; subscriptions: number } {
    return this.raw.info();
  }

  /** @internal Queues a stream publish. Publishes made in the same task (e.g. many
   *  `js.publish` promises started before the first is awaited) cross into WebAssembly in one
   *  call and are stored together, so one IndexedDB commit covers them. */
  jsQueue(subject: string, data: Uint8Array): Promise<PubAck> {
    return new Promise((resolve, reject) => {
      this.jsQueued.push({ subject, data, resolve, reject });
      if (this.jsQueued.length === 1) queueMicrotask(() => this.jsFlush());
    });
  }

  /** @internal Sends the queued stream publishes (before anything else is published, so
   *  the order of publishes is the order of calls). */
  jsFlush(): void {
    const q = this.jsQueued;
    if (q.length === 0) return;
    this.jsQueued = [];
    if (q.length === 1) {
      this.raw.jsPublish(q[0].subject, q[0].data, undefined).then(q[0].resolve, q[0].reject);
      return;
    }
    const ends = new Uint32Array(q.length);
    let total = 0;
    for (let i = 0; i < q.length; i++) ends[i] = total += q[i].data.length;
    const data = new Uint8Array(total);
    for (let i = 0; i < q.length; i++) data.set(q[i].data, i === 0 ? 0 : ends[i - 1]);
    const subjects = q.map((p) => p.subject).join("\n");
    this.raw.jsPublishMany(subjects, data, ends).then(
      ([acks, errors]: [(PubAck | null)[], (Error | undefined)[] | undefined]) => {
        for (let i = 0; i < q.length; i++) {
          const e = errors?.[i];
          if (e) q[i].reject(e);
          else q[i].resolve(acks[i] as PubAck);
        }
      },
      (e: unknown) => {
        for (const p of q) p.reject(e);
      },
    );
  }

  publish(subject: string, data?: Payload, opts?: PublishOptions): void {
    this.jsFlush();
    const o = opts && (opts.reply || opts.headers) ? { reply: opts.reply, headers: opts.headers?.toPairs() } : undefined;
    this.raw.publish(subject, encode(data), o);
  }

  /** Publishes every payload on `subject`, in order: the same as calling `publish` for each,
   *  but it crosses into WebAssembly once for the whole array, and subscribers get the
   *  messages in batches. Payloads already packed back to back (`{ data, ends }`, as a
   *  `MsgBatch` holds them) go as they are. */
  publishMany(subject: string, payloads: Payload[] | { data: Uint8Array; ends: Uint32Array }): void {
    this.jsFlush();
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
    this.jsFlush();
    const raw = await this.raw.request(subject, encode(data), { timeout: opts.timeout, headers: opts.headers?.toPairs() });
    return new Msg(this, raw);
  }

  /** Links the bus to a NATS server's WebSocket port (an edgebus server or nats-server):
   *  imported subjects reach local subscribers, local publishes on exported subjects reach
   *  the server (kept in the outbox while offline), requests work both ways. Resolves once
   *  the stored outbox is loaded; connecting and reconnecting happen in the background:
   *  watch `status()`. */
  async connect(url: string, opts: ConnectOptions = {}): Promise<Link> {
    await this.raw.connect(url, opts, (s: LinkStatus) => {
      for (const w of [...this.statusListeners]) w.push(s);
    });
    this.link = new Link(this);
    return this.link;
  }

  /** The link's status events, as an async iterator or through `callback`. */
  status(opts: { callback?: (s: LinkStatus) => void } = {}): StatusWatcher {
    return new StatusWatcher(this.statusListeners, opts.callback);
  }

  /** Resolves once everything stored is durable in IndexedDB and every ack went out. */
  flush(): Promise<void> {
    this.jsFlush();
    return this.raw.flush();
  }

  /** Drains every subscription, then closes. */
  async drain(): Promise<void> {
    await Promise.all([...this.subs].map((s) => s.drain()));
    await this.close();
  }

  async close(): Promise<void> {
    this.jsFlush();
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
    return new JetStreamClient(this);
  }

  async jetstreamManager(): Promise<JetStreamManager> {
    return new JetStreamManager(this);
  }

  /** Opens KV bucket `bucket`, creating it (with `opts`) if it does not exist. */
  async kv(bucket: string, opts: KvOptions = {}): Promise<KV> {
    await this.raw.kvBind(bucket, opts);
    return new KV(this, bucket);
  }
}

// ---- JetStream ----------------------------------------------------------------------------

export interface PubAck {
  stream: string;
  seq: number;
  duplicate?: boolean;
}

export interface JetStreamPublishOptions {
  msgID?: string;
  expect?: { lastMsgID?: string; streamName?: string; lastSequence?: number; lastSubjectSequence?: number };
  headers?: MsgHdrs;
  timeout?: number;
}

export interface DeliveryInfo {
  stream: string;
  consumer: string;
  redeliveryCount: number;
  streamSequence: number;
  deliverySequence: number;
  timestampNanos: number;
  pending: number;
  redelivered: boolean;
}

/** A message from a consumer, with the ack protocol. */
export class JsMsg extends Msg {
  readonly info: DeliveryInfo;

  constructor(bus: Bus, raw: RawMsg) {
    super(bus, raw);
    const t = this.reply.split(".");
    const n = t.length;
    this.info = {
      stream: t[2] ?? "",
      consumer: t[3] ?? "",
      redeliveryCount: Number(t[n - 5] ?? 1),
      streamSequence: Number(t[n - 4] ?? 0),
      deliverySequence: Number(t[n - 3] ?? 0),
      timestampNanos: Number(t[n - 2] ?? 0),
      pending: Number(t[n - 1] ?? 0),
      redelivered: Number(t[n - 5] ?? 1) > 1,
    };
  }
  get seq(): number {
    return this.info.streamSequence;
  }
  get redelivered(): boolean {
    return this.info.redelivered;
  }
  ack(): void {
    this.respond("+ACK");
  }
  /** Asks for redelivery, after `delay` milliseconds if given. */
  nak(delay?: number): void {
    this.respond(delay ? `-NAK ${JSON.stringify({ delay: delay * 1_000_000 })}` : "-NAK");
  }
  /** Resets the ack wait ("still working"). */
  working(): void {
    this.respond("+WPI");
  }
  /** Never redeliver. */
  term(reason?: string): void {
    this.respond(reason ? `+TERM ${reason}` : "+TERM");
  }
  /** Acks and waits for the server to confirm. */
  async ackAck(opts: { timeout?: number } = {}): Promise<boolean> {
    await this.bus.request(this.reply, "+ACK", opts);
    return true;
  }
}

export interface FetchOptions {
  max_messages?: number;
  /** Milliseconds (default 30000). */
  expires?: number;
  no_wait?: boolean;
}

/** A pull consumer (nats.js `Consumer`). */
export class Consumer {
  constructor(
    private readonly bus: Bus,
    readonly stream: string,
    readonly name: string,
  ) {}

  /** Up to `max_messages` messages, as an async iterable (and an array via `messages`). */
  async fetch(opts: FetchOptions = {}): Promise<AsyncIterable<JsMsg> & { messages: JsMsg[] }> {
    const raw: RawMsg[] = await this.bus.raw.fetch(this.stream, this.name, opts);
    const messages = raw.map((m) => new JsMsg(this.bus, m));
    return {
      messages,
      async *[Symbol.asyncIterator]() {
        yield* messages;
      },
    };
  }

  /** The next message, or null if none arrived before `expires` (default 30 s). */
  async next(opts: { expires?: number } = {}): Promise<JsMsg | null> {
    const raw: RawMsg[] = await this.bus.raw.fetch(this.stream, this.name, { max_messages: 1, expires: opts.expires });
    return raw.length ? new JsMsg(this.bus, raw[0]) : null;
  }

  info(): Promise<any> {
    return this.bus.raw.jsApi(`CONSUMER.INFO.${this.stream}.${this.name}`, undefined);
  }
}

export class JetStreamClient {
  readonly consumers = {
    get: async (stream: string, name: string): Promise<Consumer> => {
      await this.bus.raw.jsApi(`CONSUMER.INFO.${stream}.${name}`, undefined);
      return new Consumer(this.bus, stream, name);
    },
  };

  constructor(private readonly bus: Bus) {}

  /** Publishes to a stream; resolves once the message is durable. Publishes started in the
   *  same task without options go to the bus together (one IndexedDB commit for all). */
  publish(subject: string, data?: Payload, opts: JetStreamPublishOptions = {}): Promise<PubAck> {
    if (!(opts.msgID || opts.expect || opts.headers || opts.timeout) && !subject.includes("\n")) {
      return this.bus.jsQueue(subject, encode(data));
    }
    this.bus.jsFlush();
    const o = { msgID: opts.msgID, expect: opts.expect, headers: opts.headers?.toPairs(), timeout: opts.timeout };
    return this.bus.raw.jsPublish(subject, encode(data), o);
  }
}

/** Stream and consumer management (nats.js `JetStreamManager`), configs as in the JSON API. */
export class JetStreamManager {
  readonly streams = {
    add: (cfg: { name: string; [k: string]: unknown }) => this.api(`STREAM.CREATE.${cfg.name}`, cfg),
    update: (name: string, cfg: Record<string, unknown>) => this.api(`STREAM.UPDATE.${name}`, { ...cfg, name }),
    info: (name: string) => this.api(`STREAM.INFO.${name}`),
    delete: async (name: string) => (await this.api(`STREAM.DELETE.${name}`)).success === true,
    purge: (name: string, opts?: { filter?: string; seq?: number; keep?: number }) =>
      this.api(`STREAM.PURGE.${name}`, opts),
    names: async (): Promise<string[]> => (await this.api("STREAM.NAMES", {})).streams ?? [],
    list: async (): Promise<any[]> => (await this.api("STREAM.LIST", {})).streams ?? [],
    getMessage: (name: string, q: { seq?: number; last_by_subj?: string }) => this.api(`STREAM.MSG.GET.${name}`, q),
    deleteMessage: async (name: string, seq: number) =>
      (await this.api(`STREAM.MSG.DELETE.${name}`, { seq })).success === true,
  };
  readonly consumers = {
    add: (stream: string, cfg: { durable_name?: string; name?: string; [k: string]: unknown }) => {
      const name = cfg.name ?? cfg.durable_name;
      const api = name ? `CONSUMER.CREATE.${stream}.${name}` : `CONSUMER.CREATE.${stream}`;
      return this.api(api, { stream_name: stream, config: cfg });
    },
    info: (stream: string, name: string) => this.api(`CONSUMER.INFO.${stream}.${name}`),
    delete: async (stream: string, name: string) =>
      (await this.api(`CONSUMER.DELETE.${stream}.${name}`)).success === true,
    list: async (stream: string): Promise<any[]> => (await this.api(`CONSUMER.LIST.${stream}`, {})).consumers ?? [],
  };

  constructor(private readonly bus: Bus) {}

  private api(api: string, body?: unknown): Promise<any> {
    this.bus.jsFlush();
    return this.bus.raw.jsApi(api, body);
  }
}

// ---- KV -----------------------------------------------------------------------------------

export interface KvOptions {
  /** Values kept per key (1–64, default 1). */
  history?: number;
  /** Age limit of values in milliseconds. */
  ttl?: number;
  maxBytes?: number;
  maxValueSize?: number;
  /** "file" (IndexedDB when the bus persists; default) or "memory". */
  storage?: "file" | "memory";
}

interface RawEntry {
  bucket: string;
  key: string;
  value: Uint8Array;
  revision: number;
  created: number;
  operation: "PUT" | "DEL" | "PURGE";
  length: number;
  delta?: number;
}

export class KvEntry {
  readonly bucket: string;
  readonly key: string;
  readonly value: Uint8Array;
  readonly revision: number;
  readonly created: Date;
  readonly operation: "PUT" | "DEL" | "PURGE";
  readonly length: number;
  readonly delta?: number;

  constructor(raw: RawEntry) {
    this.bucket = raw.bucket;
    this.key = raw.key;
    this.value = raw.value;
    this.revision = raw.revision;
    this.created = new Date(raw.created);
    this.operation = raw.operation;
    this.length = raw.length;
    this.delta = raw.delta;
  }
  string(): string {
    return td.decode(this.value);
  }
  json<T = unknown>(): T {
    return JSON.parse(this.string()) as T;
  }
}

/** A live watch: iterate it for entries, `stop()` to end it. */
export class KvWatcher implements AsyncIterable<KvEntry> {
  private queue: KvEntry[] = [];
  private waiting: ((r: IteratorResult<KvEntry>) => void)[] = [];
  private stopped = false;
  /** @internal */
  handle?: { sid: number; consumer: string; bucket: string };

  constructor(
    private readonly bus: Bus,
    private readonly callback?: (e: KvEntry) => void,
  ) {}

  /** @internal */
  push(e: KvEntry): void {
    if (this.stopped) return;
    if (this.callback) {
      this.callback(e);
      return;
    }
    const w = this.waiting.shift();
    if (w) w({ value: e, done: false });
    else this.queue.push(e);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const w of this.waiting.splice(0)) w({ value: undefined, done: true });
    if (this.handle) await this.bus.raw.kvUnwatch(this.handle.bucket, this.handle.sid, this.handle.consumer);
  }

  [Symbol.asyncIterator](): AsyncIterator<KvEntry> {
    return {
      next: () => {
        const e = this.queue.shift();
        if (e) return Promise.resolve({ value: e, done: false });
        if (this.stopped) return Promise.resolve({ value: undefined, done: true });
        return new Promise((r) => this.waiting.push(r));
      },
      return: async () => {
        await this.stop();
        return { value: undefined, done: true };
      },
    };
  }
}

async function* iterate<T>(items: T[]): AsyncGenerator<T> {
  yield* items;
}

/** A KV bucket (nats.js `KV`). Writes resolve once durable. */
export class KV {
  constructor(
    private readonly bus: Bus,
    readonly bucket: string,
  ) {}

  /** The current entry, a given revision, or null (missing or deleted). */
  async get(key: string, opts: { revision?: number } = {}): Promise<KvEntry | null> {
    const raw: RawEntry | null = await this.bus.raw.kvGet(this.bucket, key, opts.revision);
    return raw ? new KvEntry(raw) : null;
  }

  /** Stores a value; resolves with its revision. `previousSeq`: only if still at it. */
  put(key: string, value: Payload, opts: { previousSeq?: number } = {}): Promise<number> {
    this.bus.jsFlush();
    return this.bus.raw.kvPut(this.bucket, key, encode(value), opts.previousSeq);
  }

  /** Stores a value only if the key has none (or was deleted). */
  create(key: string, value: Payload): Promise<number> {
    this.bus.jsFlush();
    return this.bus.raw.kvCreate(this.bucket, key, encode(value));
  }

  /** Stores a value only if the key is still at `version`. */
  update(key: string, value: Payload, version: number): Promise<number> {
    this.bus.jsFlush();
    return this.bus.raw.kvPut(this.bucket, key, encode(value), version);
  }

  /** Deletes the key (its history is kept). */
  async delete(key: string): Promise<void> {
    this.bus.jsFlush();
    await this.bus.raw.kvDelete(this.bucket, key, false);
  }

  /** Deletes the key and all its history. */
  async purge(key: string): Promise<void> {
    this.bus.jsFlush();
    await this.bus.raw.kvDelete(this.bucket, key, true);
  }

  /** Keys holding a value (optionally matching a wildcard filter). */
  async keys(filter?: string): Promise<AsyncIterable<string>> {
    return iterate<string>(await this.bus.raw.kvKeys(this.bucket, filter));
  }

  /** Every kept revision of `key` (default: every key), oldest first. */
  async history(opts: { key?: string } = {}): Promise<AsyncIterable<KvEntry>> {
    const raw: RawEntry[] = await this.bus.raw.kvHistory(this.bucket, opts.key ?? ">");
    return iterate(raw.map((r) => new KvEntry(r)));
  }

  /** Watches keys (default all): current values first (`include: "last"`), or the whole
   *  history (`"all"`), or only new changes (`"updates"`). */
  async watch(
    opts: { key?: string; include?: "last" | "all" | "updates"; callback?: (e: KvEntry) => void } = {},
  ): Promise<KvWatcher> {
    const w = new KvWatcher(this.bus, opts.callback);
    w.handle = await this.bus.raw.kvWatch(this.bucket, opts.key ?? ">", opts.include ?? "last", (e: RawEntry) =>
      w.push(new KvEntry(e)),
    );
    return w;
  }

  /** Deletes the bucket and everything in it. */
  async destroy(): Promise<boolean> {
    await this.bus.raw.kvDestroy(this.bucket);
    return true;
  }
}
