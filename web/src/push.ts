// Push consumers (nats.js v3 `PushConsumer`): the engine sends a consumer's messages to its
// `deliver_subject`; `consume()` subscribes there, answers flow control, reports heartbeats,
// and for an ordered consumer recreates it from the last stream sequence when a delivery is
// missing, as nats.js does.

import type { Bus, Subscription } from "./bus.js";
import { InvalidArgumentError } from "./errors.js";
import { Feed } from "./feed.js";
import { JsMsg } from "./jetstream.js";
import type { Msg } from "./msg.js";
import type { ConsumerConfig, ConsumerInfo, DeliverPolicy, ReplayPolicy } from "./types.js";

/** Options of an ordered push consumer (nats.js `OrderedPushConsumerOptions`). */
export interface OrderedPushConsumerOptions {
  name_prefix: string;
  filter_subjects: string[] | string;
  deliver_policy: DeliverPolicy;
  opt_start_seq: number;
  opt_start_time: string;
  replay_policy: ReplayPolicy;
  /** Nanoseconds. */
  inactive_threshold: number;
  headers_only: boolean;
  deliver_prefix: string;
}

/** `consume()` options (nats.js `PushConsumerOptions`). */
export interface PushConsumerOptions {
  /** Called for each message; without it, iterate the returned `ConsumerMessages`. */
  callback?: (m: JsMsg) => void;
  /** Stop when the consumer is deleted (default: keep the subscription). */
  abort_on_missing_resource?: boolean;
}

/** What `status()` reports while consuming (a subset of nats.js `ConsumerNotification`). */
export type ConsumerNotification =
  | { type: "heartbeat"; lastConsumerSequence: number; lastStreamSequence: number }
  | { type: "flow_control" }
  | { type: "ordered_consumer_recreated"; name: string }
  | { type: "consumer_deleted"; code: number; description: string }
  | { type: "consumer_pinned"; id: string }
  | { type: "consumer_unpinned" };

/** Nanoseconds in a millisecond. */
const MS = 1_000_000;

/** @internal A consumer's status events, for push and pull consumers alike. */
export class Notifications extends Feed<ConsumerNotification> {
  constructor() {
    super(undefined, "consumer status");
  }
  /** @internal */
  push(n: ConsumerNotification): void {
    this.deliver(n);
  }
  stop(): void {
    this.end();
  }
}

/** The messages of a running `consume()` (nats.js `ConsumerMessages`): iterate them (or get
 *  them through the callback); `close()` ends the subscription. */
export class ConsumerMessages extends Feed<JsMsg> {
  private sub?: Subscription;
  private listeners: Notifications[] = [];
  private received = 0;
  private resolveClosed!: () => void;
  private readonly whenClosed = new Promise<void>((r) => (this.resolveClosed = r));

  /** @internal */
  constructor(
    private readonly consumer: PushConsumer,
    private readonly opts: PushConsumerOptions,
  ) {
    super(opts.callback, "push consumer");
  }

  /** @internal Subscribes to `subject` (replacing an earlier subscription). */
  listen(bus: Bus, subject: string, queue?: string): void {
    this.sub?.unsubscribe();
    this.sub = bus.subscribe(subject, { queue, callback: (_e, m) => this.onMsg(subject, m) });
  }

  private onMsg(subject: string, m: Msg): void {
    if (this.stopped || this.sub?.getSubject() !== subject) return;
    const h = m.headers;
    if (h && h.code > 0) {
      if (h.code === 100 && m.reply) {
        // a flow-control request: answering it lets the engine send on
        m.respond();
        this.notify({ type: "flow_control" });
      } else if (h.code === 100) {
        const lastConsumerSequence = Number(h.get("Nats-Last-Consumer") || 0);
        const lastStreamSequence = Number(h.get("Nats-Last-Stream") || 0);
        this.notify({ type: "heartbeat", lastConsumerSequence, lastStreamSequence });
        const stalled = h.get("Nats-Consumer-Stalled");
        if (stalled) this.consumer.bus.publish(stalled);
        this.consumer.onHeartbeat(this, lastConsumerSequence);
      } else if (h.code === 409) {
        this.notify({ type: "consumer_deleted", code: h.code, description: h.description });
        if (this.opts.abort_on_missing_resource) void this.close();
      }
      return;
    }
    const jm = new JsMsg(this.consumer.bus, {
      subject: m.subject,
      reply: m.reply,
      data: m.data,
      headers: h?.toPairs(),
    });
    if (!this.consumer.inOrder(this, jm)) return;
    this.received++;
    this.deliver(jm);
  }

  /** @internal */
  notify(n: ConsumerNotification): void {
    for (const l of this.listeners) l.push(n);
  }

  /** Messages received so far. */
  getReceived(): number {
    return this.received;
  }

  /** Notifications (heartbeats, flow control, an ordered consumer's recreation). */
  status(): AsyncIterable<ConsumerNotification> {
    const n = new Notifications();
    this.listeners.push(n);
    return n;
  }

  stop(): void {
    if (!this.end()) return;
    this.sub?.unsubscribe();
    for (const l of this.listeners) l.stop();
    this.consumer.stopped(this);
    this.resolveClosed();
  }

  /** Stops consuming; resolves once stopped. */
  async close(): Promise<void> {
    this.stop();
    return this.whenClosed;
  }

  /** Resolves once consuming stopped. */
  closed(): Promise<void> {
    return this.whenClosed;
  }
}

/** Creates generation `serial` of an ordered consumer: its own name and deliver subject, so
 *  messages still on their way to an earlier generation are told apart. */
function createOrdered(
  bus: Bus,
  stream: string,
  o: { prefix: string; deliver: string },
  serial: number,
  config: Partial<ConsumerConfig>,
): Promise<ConsumerInfo> {
  const name = `${o.prefix}_${serial}`;
  const cfg = { ...config, name, deliver_subject: `${o.deliver}.${serial}` };
  return bus.raw.jsApi(`CONSUMER.CREATE.${stream}.${name}`, { stream_name: stream, config: cfg });
}

/** A push consumer (nats.js `PushConsumer`): from `js.consumers.getPushConsumer()`. */
export class PushConsumer {
  private running?: ConsumerMessages;
  /** Ordered consumers: where delivery stands, to notice a missing message. */
  private cursor = { stream_seq: 0, deliver_seq: 0 };
  private serial = 1;

  private constructor(
    /** @internal */
    readonly bus: Bus,
    readonly stream: string,
    private info_: ConsumerInfo,
    private readonly ordered?: { prefix: string; deliver: string; base: Partial<ConsumerConfig> },
  ) {}

  /** @internal A durable push consumer (its info says where it delivers). */
  static durable(bus: Bus, info: ConsumerInfo): PushConsumer {
    return new PushConsumer(bus, info.stream_name, info);
  }

  /** @internal Creates an ordered push consumer: ephemeral, no acks, flow control, and
   *  recreated from the last stream sequence seen if a delivery goes missing. */
  static async ordered(bus: Bus, stream: string, opts: Partial<OrderedPushConsumerOptions>): Promise<PushConsumer> {
    const prefix = opts.name_prefix ?? `oc_${bus.newInbox().split(".").pop()}`;
    const deliver = opts.deliver_prefix ?? bus.newInbox();
    const filters = opts.filter_subjects === undefined ? [] : [opts.filter_subjects].flat();
    const base: Partial<ConsumerConfig> = {
      deliver_policy: opts.deliver_policy ?? "all",
      replay_policy: opts.replay_policy ?? "instant",
      headers_only: opts.headers_only,
      ...(opts.opt_start_seq ? { opt_start_seq: opts.opt_start_seq } : {}),
      ...(opts.opt_start_time ? { opt_start_time: opts.opt_start_time } : {}),
      ...(filters.length === 1 ? { filter_subject: filters[0] } : filters.length > 1 ? { filter_subjects: filters } : {}),
      ack_policy: "none",
      max_deliver: 1,
      mem_storage: true,
      num_replicas: 1,
      flow_control: true,
      idle_heartbeat: 30_000 * MS,
      inactive_threshold: opts.inactive_threshold ?? 300_000 * MS,
    };
    const o = { prefix, deliver, base };
    const c = new PushConsumer(bus, stream, await createOrdered(bus, stream, o, 1, base), o);
    c.cursor.stream_seq = opts.opt_start_seq ? opts.opt_start_seq - 1 : 0;
    return c;
  }

  get name(): string {
    return this.info_.name;
  }

  /** Starts delivery: messages arrive through the callback or by iterating the result. */
  async consume(opts: PushConsumerOptions = {}): Promise<ConsumerMessages> {
    if (this.running) throw new InvalidArgumentError("consumer already started");
    // in a client of a shared bus the subscription is mirrored at the leader, whose
    // engine delivers to it as to any other (see tabs.rs)
    const { deliver_subject, deliver_group } = this.info_.config;
    if (!deliver_subject) throw new InvalidArgumentError("deliver_subject is not set, not a push consumer");
    const msgs = new ConsumerMessages(this, opts);
    this.running = msgs;
    msgs.listen(this.bus, deliver_subject, deliver_group);
    return msgs;
  }

  /** @internal Whether an ordered consumer's message is the next one; recreates the
   *  consumer from the last stream sequence when it is not. Other consumers take all. */
  inOrder(msgs: ConsumerMessages, m: JsMsg): boolean {
    if (!this.ordered) return true;
    if (m.info.deliverySequence !== this.cursor.deliver_seq + 1) {
      void this.reset(msgs);
      return false;
    }
    this.cursor.deliver_seq = m.info.deliverySequence;
    this.cursor.stream_seq = m.info.streamSequence;
    return true;
  }

  /** @internal An ordered consumer whose heartbeat says more was delivered than arrived. */
  onHeartbeat(msgs: ConsumerMessages, lastConsumerSequence: number): void {
    if (this.ordered && lastConsumerSequence > this.cursor.deliver_seq) void this.reset(msgs);
  }

  private async reset(msgs: ConsumerMessages): Promise<void> {
    const o = this.ordered;
    if (!o || msgs !== this.running) return;
    const old = this.info_.name;
    this.serial++;
    this.cursor.deliver_seq = 0;
    const config = { ...o.base, deliver_policy: "by_start_sequence" as const, opt_start_seq: this.cursor.stream_seq + 1 };
    delete config.opt_start_time;
    msgs.listen(this.bus, `${o.deliver}.${this.serial}`);
    this.bus.raw.jsApi(`CONSUMER.DELETE.${this.stream}.${old}`, undefined).catch(() => {});
    this.info_ = await createOrdered(this.bus, this.stream, o, this.serial, config);
    msgs.notify({ type: "ordered_consumer_recreated", name: this.info_.name });
  }

  /** @internal */
  stopped(msgs: ConsumerMessages): void {
    if (this.running !== msgs) return;
    this.running = undefined;
  }

  /** The consumer's info (`cached`: as last fetched). */
  async info(cached = false): Promise<ConsumerInfo> {
    if (!cached) this.info_ = await this.bus.raw.jsApi(`CONSUMER.INFO.${this.stream}.${this.info_.name}`, undefined);
    return this.info_;
  }

  async delete(): Promise<boolean> {
    this.running?.stop();
    return (await this.bus.raw.jsApi(`CONSUMER.DELETE.${this.stream}.${this.info_.name}`, undefined)).success === true;
  }

  isPullConsumer(): boolean {
    return false;
  }
  isPushConsumer(): boolean {
    return true;
  }
}
