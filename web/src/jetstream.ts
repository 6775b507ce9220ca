// JetStream in the page (nats.js shapes): publish with acks, pull consumers, stream and
// consumer management through the \$JS.API.

import { full } from "./bindings.js";
import type { Bus } from "./bus.js";
import { InvalidArgumentError, JetStreamApiError, PullStatusError } from "./errors.js";
import { Msg } from "./msg.js";
import { resumeBatch, startBatch, type Batch, type BatchMessageOptions } from "./batch.js";
import { DirectStreamAPI } from "./direct.js";
import { ConsumerGroups } from "./pcgroups.js";
import { PushConsumer, type OrderedPushConsumerOptions } from "./push.js";
import { onlyOneLimit, PullConsumerMessages, type ConsumeOptions } from "./pull.js";
import { startFastIngest, type FastIngest, type FastIngestStartOptions } from "./fastingest.js";
import {
  encode,
  Lister,
  MsgHdrs,
  td,
  type ConsumerConfig,
  type ConsumerInfo,
  type ConsumerPauseResponse,
  type ConsumerUpdateConfig,
  type MsgRequest,
  type Payload,
  type PurgeOpts,
  type PurgeResponse,
  type RawMsg,
  type StreamConfig,
  type StreamInfo,
  type StreamInfoRequestOptions,
  type StreamUpdateConfig,
  type Success,
} from "./types.js";

/** The engine's name rule (stream, consumer), checked before the request is made: a name is
 *  a token of the API subject, and a bad one would only time out. Returns `name`. */
function named(context: string, name: string | undefined): string {
  full("checkName")(context, name ?? "");
  return name ?? "";
}

/** What a direct get's reply adds to the stored message's own headers. */
const DIRECT_HEADERS = new Set(["Nats-Stream", "Nats-Subject", "Nats-Sequence", "Nats-Time-Stamp", "Nats-Num-Pending", "Nats-Last-Sequence", "Nats-UpTo-Sequence"]);

/** A message read from a stream (nats.js `StoredMsg`). */
export class StoredMsg {
  readonly subject: string;
  readonly seq: number;
  readonly data: Uint8Array;
  readonly header: MsgHdrs;
  /** The time it was stored, as the server wrote it (RFC 3339). */
  readonly timestamp: string;

  /** @internal From a `STREAM.MSG.GET` reply's `message`. */
  constructor(message: unknown) {
    const m = full("storedMsg")(message) as { subject: string; seq: number; time: string; data: Uint8Array; headers: [string, string][] };
    this.subject = m.subject;
    this.seq = m.seq;
    this.data = m.data;
    this.timestamp = m.time;
    this.header = MsgHdrs.fromPairs(m.headers);
  }
  /** @internal From a direct get's reply (the stream's headers say where it was stored). */
  static fromDirect(m: Msg): StoredMsg {
    const h = m.headers;
    const own = MsgHdrs.fromPairs((h?.toPairs() ?? []).filter(([k]) => !DIRECT_HEADERS.has(k)));
    return Object.assign(Object.create(StoredMsg.prototype) as StoredMsg, {
      subject: h?.get("Nats-Subject") ?? "",
      seq: Number(h?.get("Nats-Sequence") ?? 0),
      data: m.data,
      timestamp: h?.get("Nats-Time-Stamp") ?? "",
      header: own,
    });
  }
  get time(): Date {
    return new Date(Date.parse(this.timestamp));
  }
  string(): string {
    return td.decode(this.data);
  }
  json<T = unknown>(): T {
    return JSON.parse(this.string()) as T;
  }
}

/** JetStream's `err_code` for "no message found". */
const NO_MESSAGE_FOUND = 10037;

/** A stream publish's acknowledgement (nats.js `PubAck`); `duplicate` is set only when the
 *  stream had the message already (`msgID` within the duplicate window). */
export interface PubAck {
  stream: string;
  seq: number;
  duplicate?: boolean;
  /** A counter stream's total after this increment (`Nats-Incr`), as a decimal string. */
  val?: string;
  /** An atomic batch's commit: its id and how many messages it stored. */
  batch?: string;
  count?: number;
}

/** What a stream publish may expect of the stream (nats.js `StreamExpectations`). */
export interface StreamExpectations {
  lastMsgID: string;
  streamName: string;
  lastSequence: number;
  lastSubjectSequence: number;
}

export interface JetStreamPublishOptions {
  msgID?: string;
  expect?: Partial<StreamExpectations>;
  headers?: MsgHdrs;
  timeout?: number;
}

/** Where a consumer's message stands, from its ack subject (nats.js `DeliveryInfo`). */
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

/** A pull's priority-group options (nats.js `OverflowOptions` / `PrioritizedOptions`). */
export interface PriorityGroupOptions {
  /** The priority group to pull in (a consumer with `priority_groups` needs one). */
  group?: string;
  /** `overflow`: served only while the consumer has at least this many messages pending. */
  min_pending?: number;
  /** `overflow`: served only while at least this many acks are outstanding. */
  min_ack_pending?: number;
  /** `prioritized`: 0 (served first) to 9. */
  priority?: number;
}

export interface FetchOptions extends PriorityGroupOptions {
  /** The most messages (default 100); not with `max_bytes`. */
  max_messages?: number;
  /** The most bytes, counted as the server counts a message (subject, reply, headers,
   *  payload); not with `max_messages`. A first message larger than this ends the pull with
   *  a 409 status. */
  max_bytes?: number;
  /** Milliseconds (default 30000). */
  expires?: number;
  no_wait?: boolean;
}

/** `next()`'s options: how long to wait, and the priority group to pull in. */
export type NextOptions = Omit<FetchOptions, "max_messages" | "no_wait">;

/** What `fetch` answers: the messages as an async iterable, and as an array. */
export type FetchedMessages = AsyncIterable<JsMsg> & { messages: JsMsg[] };

/** A pull consumer (nats.js `Consumer`). */
export class Consumer {
  constructor(
    private readonly bus: Bus,
    readonly stream: string,
    readonly name: string,
  ) {}

  /** The pin this consumer was given in a `pinned_client` group (`Nats-Pin-Id`), sent with
   *  every pull in that group until the server refuses it (423), as nats.js's consume does. */
  pinId = "";

  /** @internal One pull: its messages, and the status that ended it if it was not a plain
   *  "no more" (404/408). A 423 forgets the pin; a pull in a pinned group that is given one
   *  keeps it (`unpinned` / `pinned` say when either happened). */
  async pull(opts: FetchOptions): Promise<{ messages: JsMsg[]; status?: { code: number; description: string }; pinned?: string; unpinned?: boolean }> {
    const pinned = opts.group !== undefined && opts.min_pending === undefined && opts.min_ack_pending === undefined;
    const o = pinned && this.pinId ? { ...opts, id: this.pinId } : opts;
    const raw: RawMsg[] = await this.bus.engine.fetch(this.stream, this.name, o);
    const last = raw[raw.length - 1];
    let status: { code: number; description: string } | undefined;
    let unpinned = false;
    if (last?.status) {
      raw.pop();
      if (last.status === 423) {
        // unpinned (or another client holds the pin): pull without it next time
        this.pinId = "";
        unpinned = true;
      } else {
        status = { code: last.status, description: last.description ?? "" };
      }
    }
    const messages = raw.map((m) => new JsMsg(this.bus, m));
    let given: string | undefined;
    if (pinned && !this.pinId) {
      this.pinId = messages[0]?.headers?.get("Nats-Pin-Id") ?? "";
      if (this.pinId) given = this.pinId;
    }
    return { messages, status, pinned: given, unpinned };
  }

  /** Up to `max_messages` messages, as an async iterable (and an array via `messages`).
   *  Rejects with a `PullStatusError` when the server refuses the pull (400). */
  async fetch(opts: FetchOptions = {}): Promise<FetchedMessages> {
    onlyOneLimit(opts);
    const { messages, status } = await this.pull(opts);
    if (status?.code === 400) throw new PullStatusError(status.code, status.description);
    return {
      messages,
      async *[Symbol.asyncIterator]() {
        yield* messages;
      },
    };
  }

  /** The next message, or null if none arrived before `expires` (default 30 s). */
  async next(opts: NextOptions = {}): Promise<JsMsg | null> {
    const got = await this.fetch({ ...opts, max_messages: 1 });
    return got.messages[0] ?? null;
  }

  /** Messages as they come (nats.js `consume`): pulls again as each pull ends, with the
   *  priority-group options on every pull and the pin kept across them. */
  async consume(opts: ConsumeOptions = {}): Promise<PullConsumerMessages> {
    return new PullConsumerMessages(this, opts);
  }

  info(): Promise<ConsumerInfo> {
    return this.bus.raw.jsApi(`CONSUMER.INFO.${this.stream}.${this.name}`, undefined);
  }

  /** Deletes the consumer. */
  async delete(): Promise<boolean> {
    return (await this.bus.raw.jsApi(`CONSUMER.DELETE.${this.stream}.${this.name}`, undefined)).success === true;
  }

  isPullConsumer(): boolean {
    return true;
  }
  isPushConsumer(): boolean {
    return false;
  }
}

export class JetStreamClient {
  readonly consumers = {
    /** A pull consumer that exists. */
    get: async (stream: string, name: string): Promise<Consumer> => {
      await this.bus.raw.jsApi(`CONSUMER.INFO.${named("stream", stream)}.${named("durable", name)}`, undefined);
      return new Consumer(this.bus, stream, name);
    },
    /** A push consumer: the durable `name` (which must have a `deliver_subject`), or,
     *  without a name (or with options), an ordered consumer made when `consume()` starts. */
    getPushConsumer: async (stream: string, name?: string | Partial<OrderedPushConsumerOptions>): Promise<PushConsumer> => {
      named("stream", stream);
      if (typeof name === "string") {
        const info: ConsumerInfo = await this.bus.raw.jsApi(`CONSUMER.INFO.${stream}.${named("durable", name)}`, undefined);
        if (!info.config.deliver_subject) {
          throw new InvalidArgumentError(`consumer ${name} is a pull consumer (no deliver_subject)`);
        }
        return PushConsumer.durable(this.bus, info);
      }
      return PushConsumer.ordered(this.bus, stream, name ?? {});
    },
  };

  /** Partitioned consumer groups (orbit's `pcgroups`, same layout). */
  readonly consumerGroups: ConsumerGroups;

  constructor(private readonly bus: Bus) {
    this.consumerGroups = new ConsumerGroups(bus);
  }

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

  /** Starts an atomic batch with its first message (nats.js v3 `startBatch`); the stream
   *  needs `allow_atomic`. */
  startBatch(subject: string, data?: Payload, opts: Omit<BatchMessageOptions, "ack"> = {}): Promise<Batch> {
    this.bus.jsFlush();
    return startBatch(this.bus, this, subject, data, opts);
  }

  /** Starts a fast-ingest batch (`allow_batched` streams) with its first message (nats.js
   *  v3 `startFastIngest`): each message is stored as it arrives, paced by the stream's flow
   *  acks; `last()` or `end()` commits. Resolves once the stream took the first message. */
  startFastIngest(subject: string, data: Payload | undefined, opts: FastIngestStartOptions): Promise<FastIngest> {
    this.bus.jsFlush();
    return startFastIngest(this.bus, subject, data, opts);
  }

  /** Continues open batch `id`, which has `count` messages staged, after a reload: a persisted
   *  bus (IndexedDB, OPFS) keeps open batches; their 10 s idle timer restarts at the reload. */
  resumeBatch(id: string, count: number): Batch {
    return resumeBatch(this.bus, this, id, count);
  }
}

/** `streams.add`'s argument: a stream config with a name, the rest defaulted. */
export type StreamConfigRequest = Partial<StreamConfig> & { name: string };

/** Stream management (nats.js `StreamAPI`). */
export interface StreamAPI {
  add(cfg: StreamConfigRequest): Promise<StreamInfo>;
  update(name: string, cfg: Partial<StreamUpdateConfig>): Promise<StreamInfo>;
  info(name: string, opts?: Partial<StreamInfoRequestOptions>): Promise<StreamInfo>;
  delete(name: string): Promise<boolean>;
  purge(name: string, opts?: PurgeOpts): Promise<PurgeResponse>;
  names(subject?: string): Lister<string>;
  list(subject?: string): Lister<StreamInfo>;
  /** The stored message, or null if there is none (as nats.js). */
  getMessage(name: string, query: MsgRequest): Promise<StoredMsg | null>;
  deleteMessage(name: string, seq: number): Promise<boolean>;
  /** The name of the stream that captures `subject` (rejects when none does). */
  find(subject: string): Promise<string>;
}

/** Consumer management (nats.js `ConsumerAPI`). */
export interface ConsumerAPI {
  add(stream: string, cfg: Partial<ConsumerConfig>): Promise<ConsumerInfo>;
  update(stream: string, name: string, cfg: Partial<ConsumerUpdateConfig>): Promise<ConsumerInfo>;
  info(stream: string, name: string): Promise<ConsumerInfo>;
  delete(stream: string, name: string): Promise<boolean>;
  list(stream: string): Lister<ConsumerInfo>;
  /** Holds deliveries until `until` (nats.js `pause`); resumes by itself then. */
  pause(stream: string, name: string, until: Date): Promise<ConsumerPauseResponse>;
  /** Ends a pause now (nats.js `resume`). */
  resume(stream: string, name: string): Promise<ConsumerPauseResponse>;
  /** Drops the pinned client of a `pinned_client` group (nats.js `unpin`). */
  unpin(stream: string, name: string, group: string): Promise<void>;
}

/** Stream and consumer management (nats.js `JetStreamManager`), configs as in the JSON API. */
export class JetStreamManager {
  readonly streams: StreamAPI = {
    add: (cfg) => this.api(`STREAM.CREATE.${named("stream", cfg.name)}`, cfg),
    update: (name, cfg) => this.api(`STREAM.UPDATE.${named("stream", name)}`, { ...cfg, name }),
    info: (name, opts) => this.api(`STREAM.INFO.${named("stream", name)}`, opts),
    delete: async (name) => (await this.api<Success>(`STREAM.DELETE.${named("stream", name)}`)).success === true,
    purge: (name, opts) => this.api(`STREAM.PURGE.${named("stream", name)}`, opts),
    names: (subject) =>
      new Lister(async () => (await this.api<{ streams: string[] | null }>("STREAM.NAMES", subject ? { subject } : {})).streams ?? []),
    list: (subject) =>
      new Lister(async () => (await this.api<{ streams: StreamInfo[] | null }>("STREAM.LIST", subject ? { subject } : {})).streams ?? []),
    getMessage: async (name, q) => {
      try {
        const r = await this.api<{ message: unknown }>(`STREAM.MSG.GET.${named("stream", name)}`, q);
        return new StoredMsg(r.message);
      } catch (e) {
        if (e instanceof JetStreamApiError && e.err_code === NO_MESSAGE_FOUND) return null;
        throw e;
      }
    },
    deleteMessage: async (name, seq) =>
      (await this.api<Success>(`STREAM.MSG.DELETE.${named("stream", name)}`, { seq })).success === true,
    find: async (subject) => {
      const names = (await this.api<{ streams: string[] | null }>("STREAM.NAMES", { subject })).streams ?? [];
      if (names.length !== 1) throw new JetStreamApiError("no stream matches subject");
      return names[0];
    },
  };
  readonly consumers: ConsumerAPI = {
    add: (stream, cfg) => {
      named("stream", stream);
      const name = cfg.name ?? cfg.durable_name;
      // nats.js's contexts: `durable` for a durable name, `name` for a consumer name.
      if (cfg.durable_name) named("durable", cfg.durable_name);
      if (cfg.name) named("name", cfg.name);
      const api = name ? `CONSUMER.CREATE.${stream}.${name}` : `CONSUMER.CREATE.${stream}`;
      return this.api(api, { stream_name: stream, config: cfg });
    },
    update: async (stream, name, cfg) => {
      const info = await this.consumers.info(stream, name);
      const config = { ...info.config, ...cfg };
      return this.api(`CONSUMER.CREATE.${stream}.${name}`, { stream_name: stream, config, action: "update" });
    },
    info: (stream, name) => this.api(`CONSUMER.INFO.${named("stream", stream)}.${named("durable", name)}`),
    delete: async (stream, name) =>
      (await this.api<Success>(`CONSUMER.DELETE.${named("stream", stream)}.${named("durable", name)}`)).success === true,
    list: (stream) => {
      named("stream", stream);
      return new Lister(
        async () => (await this.api<{ consumers: ConsumerInfo[] | null }>(`CONSUMER.LIST.${stream}`, {})).consumers ?? [],
      );
    },
    pause: (stream, name, until) =>
      this.api(`CONSUMER.PAUSE.${named("stream", stream)}.${named("durable", name)}`, {
        pause_until: until.toISOString(),
      }),
    // nats.js resumes by pausing until the epoch, which has passed
    resume: (stream, name) => this.consumers.pause(stream, name, new Date(0)),
    unpin: async (stream, name, group) => {
      await this.api(`CONSUMER.UNPIN.${named("stream", stream)}.${named("durable", name)}`, { group });
    },
  };

  /** Direct gets of many messages (nats.js `jsm.direct`). */
  readonly direct: DirectStreamAPI;

  constructor(private readonly bus: Bus) {
    this.direct = new DirectStreamAPI(bus);
  }

  /** A client sharing this manager's bus (nats.js `jsm.jetstream()`). */
  jetstream(): JetStreamClient {
    return new JetStreamClient(this.bus);
  }

  private async api<T>(api: string, body?: unknown): Promise<T> {
    this.bus.jsFlush();
    return this.bus.raw.jsApi(api, body) as Promise<T>;
  }
}
