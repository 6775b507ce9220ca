// JetStream in the page (nats.js shapes): publish with acks, pull consumers, stream and
// consumer management through the \$JS.API.

import { checkName, storedMsg } from "../pkg/edgebus_wasm.js";
import type { Bus } from "./bus.js";
import { JetStreamApiError } from "./errors.js";
import { Msg } from "./msg.js";
import { encode, MsgHdrs, td, type Payload, type RawMsg } from "./types.js";

/** The engine's name rule (stream, consumer), checked before the request is made: a name is
 *  a token of the API subject, and a bad one would only time out. Returns `name`. */
function named(context: string, name: string | undefined): string {
  checkName(context, name ?? "");
  return name ?? "";
}

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
    const m = storedMsg(message) as { subject: string; seq: number; time: string; data: Uint8Array; headers: [string, string][] };
    this.subject = m.subject;
    this.seq = m.seq;
    this.data = m.data;
    this.timestamp = m.time;
    this.header = MsgHdrs.fromPairs(m.headers);
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
      await this.bus.raw.jsApi(`CONSUMER.INFO.${named("stream", stream)}.${named("durable", name)}`, undefined);
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
    add: async (cfg: { name: string; [k: string]: unknown }) => this.api(`STREAM.CREATE.${named("stream", cfg.name)}`, cfg),
    update: async (name: string, cfg: Record<string, unknown>) =>
      this.api(`STREAM.UPDATE.${named("stream", name)}`, { ...cfg, name }),
    info: async (name: string) => this.api(`STREAM.INFO.${named("stream", name)}`),
    delete: async (name: string) => (await this.api(`STREAM.DELETE.${named("stream", name)}`)).success === true,
    purge: async (name: string, opts?: { filter?: string; seq?: number; keep?: number }) =>
      this.api(`STREAM.PURGE.${named("stream", name)}`, opts),
    names: async (): Promise<string[]> => (await this.api("STREAM.NAMES", {})).streams ?? [],
    list: async (): Promise<any[]> => (await this.api("STREAM.LIST", {})).streams ?? [],
    /** The stored message (`seq`, or the last on `last_by_subj`), or null if there is none
     *  (as nats.js). */
    getMessage: async (name: string, q: { seq?: number; last_by_subj?: string }): Promise<StoredMsg | null> => {
      try {
        const r = await this.api(`STREAM.MSG.GET.${named("stream", name)}`, q);
        return new StoredMsg(r.message);
      } catch (e) {
        if (e instanceof JetStreamApiError && e.err_code === NO_MESSAGE_FOUND) return null;
        throw e;
      }
    },
    deleteMessage: async (name: string, seq: number) =>
      (await this.api(`STREAM.MSG.DELETE.${named("stream", name)}`, { seq })).success === true,
  };
  readonly consumers = {
    add: async (stream: string, cfg: { durable_name?: string; name?: string; [k: string]: unknown }) => {
      named("stream", stream);
      const name = cfg.name ?? cfg.durable_name;
      // nats.js's contexts: `durable` for a durable name, `name` for a consumer name.
      if (cfg.durable_name) named("durable", cfg.durable_name);
      if (cfg.name) named("name", cfg.name);
      const api = name ? `CONSUMER.CREATE.${stream}.${name}` : `CONSUMER.CREATE.${stream}`;
      return this.api(api, { stream_name: stream, config: cfg });
    },
    info: async (stream: string, name: string) =>
      this.api(`CONSUMER.INFO.${named("stream", stream)}.${named("durable", name)}`),
    delete: async (stream: string, name: string) =>
      (await this.api(`CONSUMER.DELETE.${named("stream", stream)}.${named("durable", name)}`)).success === true,
    list: async (stream: string): Promise<any[]> =>
      (await this.api(`CONSUMER.LIST.${named("stream", stream)}`, {})).consumers ?? [],
  };

  constructor(private readonly bus: Bus) {}

  private async api(api: string, body?: unknown): Promise<any> {
    this.bus.jsFlush();
    return this.bus.raw.jsApi(api, body);
  }
}

