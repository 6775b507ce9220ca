// Partitioned consumer groups (Kafka's consumer groups on JetStream), laid out as Synadia's
// orbit `pcgroups` library lays them out: the same KV buckets and keys, config JSON, streams
// and consumer names, so page members and orbit members can share a group. The rules (the
// configs' checks, which partitions a member owns, the stream and consumer configs) are the
// core's (`edgebus_core::pcgroups`, through the wasm helpers); this file makes the requests
// and runs each member's loop.

import { full } from "./bindings.js";
import type { Bus } from "./bus.js";
import { InvalidArgumentError, JetStreamApiError } from "./errors.js";
import { Consumer, JetStreamManager, type JsMsg } from "./jetstream.js";
import type { KV, KvEntry, KvWatcher } from "./kv.js";
import type { ConsumerConfig, MsgHdrs } from "./types.js";

export type ConsumerGroupKind = "static" | "elastic";

export interface MemberMapping {
  member: string;
  partitions: number[];
}

/** An elastic group's filter on its stream, and which `*` wildcards (1-based) make the key. */
export interface PartitioningFilter {
  filter: string;
  partitioning_wildcards: number[];
}

export interface StaticConsumerGroupConfig {
  /** The number of partitions (so the most members receiving at once). */
  max_members: number;
  filters?: string[];
  members?: string[];
  member_mappings?: MemberMapping[];
}

export interface ElasticConsumerGroupConfig {
  max_members: number;
  partitioning_filters?: PartitioningFilter[];
  /** orbit's spelling. */
  max_buffered_msg?: number;
  max_buffered_bytes?: number;
  members?: string[];
  member_mappings?: MemberMapping[];
}

type AnyConfig = StaticConsumerGroupConfig | ElasticConsumerGroupConfig;

/** What the core says a member does under a config. */
interface MemberPlan {
  stream: string;
  consumer: string;
  filters: string[];
  config: Partial<ConsumerConfig> | null;
  group: string;
  /** Nanoseconds. */
  expires: number;
}

const BUCKETS: Record<ConsumerGroupKind, string> = {
  static: "static-consumer-groups",
  elastic: "elastic-consumer-groups",
};
/** nats-server's `JSConsumerWQConsumerNotUniqueErr`: another member still holds a partition. */
const WQ_NOT_UNIQUE = 10100;
const CONSUMER_NOT_FOUND = 10014;
const CONSUMER_EXISTS = 10148;
const CONSUMER_EXISTS_OTHER = 10105;
/** How long a member waits before trying again to create its consumer (milliseconds). */
const RETRY_MS = 100;

const key = (stream: string, group: string) => `${stream}.${group}`;
const apiCode = (e: unknown) => (e instanceof JetStreamApiError ? e.err_code : 0);

/** A message of a group: its subject as published (the partition token stripped). */
export class ConsumerGroupMsg {
  readonly subject: string;
  constructor(readonly msg: JsMsg) {
    const dot = msg.subject.indexOf(".");
    this.subject = dot < 0 ? msg.subject : msg.subject.slice(dot + 1);
  }
  get data(): Uint8Array {
    return this.msg.data;
  }
  get headers(): MsgHdrs | undefined {
    return this.msg.headers;
  }
  get seq(): number {
    return this.msg.seq;
  }
  string(): string {
    return this.msg.string();
  }
  ack(): void {
    this.msg.ack();
  }
  nak(delay?: number): void {
    this.msg.nak(delay);
  }
  working(): void {
    this.msg.working();
  }
  term(reason?: string): void {
    this.msg.term(reason);
  }
}

/** A member's consumption: `stop()` ends it; `closed()` resolves when it ended, with the
 *  error that ended it (null: stopped, or the group was deleted). */
export interface ConsumerGroupContext {
  stop(): void;
  closed(): Promise<Error | null>;
}

/** Static and elastic partitioned consumer groups on this bus (orbit's functions). */
export class ConsumerGroups {
  constructor(private readonly bus: Bus) {}

  private jsm(): JetStreamManager {
    return new JetStreamManager(this.bus);
  }

  private bucket(kind: ConsumerGroupKind): Promise<KV> {
    return this.bus.kv(BUCKETS[kind], { storage: "file" });
  }

  /** Stores a checked config, or accepts the stored one when it is the same group. */
  private async store(kind: ConsumerGroupKind, stream: string, group: string, cfg: AnyConfig): Promise<string> {
    const json = full("pcgConfig")(kind, JSON.stringify(cfg));
    const kv = await this.bucket(kind);
    const old = await kv.get(key(stream, group));
    if (old) {
      if (!full("pcgSameGroup")(kind, old.string(), json)) {
        throw new InvalidArgumentError(
          `the existing ${kind} consumer group config can not be updated to the requested one, delete the group first`,
        );
      }
      return old.string();
    }
    await kv.create(key(stream, group), json);
    return json;
  }

  /** A static group on `stream`, whose subjects already begin with the partition number. */
  async createStatic(stream: string, group: string, cfg: StaticConsumerGroupConfig): Promise<StaticConsumerGroupConfig> {
    await this.jsm().streams.info(stream);
    return JSON.parse(await this.store("static", stream, group, cfg));
  }

  /** Deletes a static group: its config, then its members' consumers. */
  async deleteStatic(stream: string, group: string): Promise<void> {
    await (await this.bucket("static")).delete(key(stream, group));
    const jsm = this.jsm();
    for (const c of await jsm.consumers.list(stream).next()) {
      if (!c.name.startsWith(`${group}-`)) continue;
      // its member may have deleted it already, on seeing the config go
      await jsm.consumers.delete(stream, c.name).catch((e) => {
        if (apiCode(e) !== CONSUMER_NOT_FOUND) throw e;
      });
    }
  }

  /** An elastic group: its config (no members yet) and its work-queue stream
   *  `<stream>-<group>`, which sources `stream` through the partitioning transform. An
   *  existing work queue of that name is taken as the group's (filled some other way). */
  async createElastic(
    stream: string,
    group: string,
    cfg: Omit<ElasticConsumerGroupConfig, "members" | "member_mappings">,
  ): Promise<ElasticConsumerGroupConfig> {
    const jsm = this.jsm();
    const origin = await jsm.streams.info(stream);
    const json = await this.store("elastic", stream, group, cfg);
    const sc = JSON.parse(
      full("pcgElasticStream")(stream, group, json, origin.config.storage ?? "file", origin.config.num_replicas ?? 1),
    );
    try {
      await jsm.streams.add(sc);
    } catch (e) {
      const have = await jsm.streams.info(sc.name).catch(() => null);
      if (String(have?.config.retention) !== "workqueue") throw e;
    }
    return JSON.parse(json);
  }

  /** Deletes an elastic group: its config, then its stream (and so its consumers). */
  async deleteElastic(stream: string, group: string): Promise<void> {
    await (await this.bucket("elastic")).delete(key(stream, group));
    await this.jsm().streams.delete(`${stream}-${group}`);
  }

  /** A group's config, or null. */
  async getConfig(kind: ConsumerGroupKind, stream: string, group: string): Promise<AnyConfig | null> {
    const e = await (await this.bucket(kind)).get(key(stream, group));
    return e ? JSON.parse(full("pcgConfig")(kind, e.string())) : null;
  }

  /** The groups on `stream`. */
  async list(kind: ConsumerGroupKind, stream: string): Promise<string[]> {
    const names: string[] = [];
    for await (const k of await (await this.bucket(kind)).keys(`${stream}.*`)) names.push(k.slice(stream.length + 1));
    return names;
  }

  private async changeMembers(stream: string, group: string, add: string[], drop: string[]): Promise<string[]> {
    const kv = await this.bucket("elastic");
    const e = await kv.get(key(stream, group));
    if (!e) throw new InvalidArgumentError(`no elastic consumer group ${group} on ${stream}`);
    const json = full("pcgChangeMembers")(e.string(), JSON.stringify(add), JSON.stringify(drop));
    await kv.update(key(stream, group), json, e.revision);
    return (JSON.parse(json) as ElasticConsumerGroupConfig).members ?? [];
  }

  /** Adds members to an elastic group; resolves with the membership. */
  addMembers(stream: string, group: string, members: string[]): Promise<string[]> {
    return this.changeMembers(stream, group, members, []);
  }

  /** Drops members from an elastic group; resolves with the membership. */
  deleteMembers(stream: string, group: string, members: string[]): Promise<string[]> {
    return this.changeMembers(stream, group, [], members);
  }

  /** Gives an elastic group's partitions by hand (replacing its member list). */
  async setMemberMappings(stream: string, group: string, mappings: MemberMapping[]): Promise<void> {
    const kv = await this.bucket("elastic");
    const e = await kv.get(key(stream, group));
    if (!e) throw new InvalidArgumentError(`no elastic consumer group ${group} on ${stream}`);
    const cfg = { ...(e.json() as ElasticConsumerGroupConfig), members: [], member_mappings: mappings };
    await kv.update(key(stream, group), full("pcgConfig")("elastic", JSON.stringify(cfg)), e.revision);
  }

  /** Makes the member's pinned instance step down (another instance takes over). */
  async stepDown(kind: ConsumerGroupKind, stream: string, group: string, member: string): Promise<void> {
    const s = kind === "static" ? stream : `${stream}-${group}`;
    const c = kind === "static" ? `${group}-${member}` : member;
    await this.jsm().consumers.unpin(s, c, "PCG");
  }

  /** Consumes as `member` of a group, calling `callback` for each message, one at a time
   *  (acknowledge in it; the next message waits for it to return). An elastic member follows
   *  membership changes: when its partitions change it lets go of its consumer only between
   *  messages, so a key is never handled by two members at once. `template` is a consumer
   *  config (`ack_wait` sets the timings). */
  async consume(
    kind: ConsumerGroupKind,
    stream: string,
    group: string,
    member: string,
    callback: (m: ConsumerGroupMsg) => void | Promise<void>,
    template: Partial<ConsumerConfig> = {},
  ): Promise<ConsumerGroupContext> {
    const kv = await this.bucket(kind);
    const entry = await kv.get(key(stream, group));
    if (!entry) throw new InvalidArgumentError(`no ${kind} consumer group ${group} on ${stream}`);
    const m = new Member(this.bus, kind, stream, group, member, callback, JSON.stringify(template), entry);
    if (kind === "static" && !m.plan.config) {
      throw new InvalidArgumentError("the member name is not in the current static consumer group membership");
    }
    await m.start(kv);
    return m;
  }
}

/** One member instance's loop. */
class Member implements ConsumerGroupContext {
  plan: MemberPlan;
  private config: string;
  /** A config written since the loop last looked (null: deleted). */
  private pending: string | null | undefined;
  private consumer: Consumer | null = null;
  private watcher?: KvWatcher;
  private stopped = false;
  private ended!: Promise<Error | null>;
  private wake: () => void = () => {};

  constructor(
    private readonly bus: Bus,
    private readonly kind: ConsumerGroupKind,
    private readonly stream: string,
    private readonly group: string,
    private readonly name: string,
    private readonly callback: (m: ConsumerGroupMsg) => void | Promise<void>,
    private readonly template: string,
    entry: KvEntry,
  ) {
    this.config = entry.string();
    this.plan = this.planFor(this.config);
  }

  private planFor(config: string): MemberPlan {
    return JSON.parse(full("pcgMemberPlan")(this.kind, this.stream, this.group, this.name, config, this.template));
  }

  async start(kv: KV): Promise<void> {
    this.watcher = await kv.watch({
      key: key(this.stream, this.group),
      include: "updates",
      callback: (e) => {
        this.pending = e.operation === "PUT" ? e.string() : null;
        this.wake();
      },
    });
    this.ended = this.run().finally(() => this.watcher?.stop());
  }

  stop(): void {
    this.stopped = true;
    this.wake();
  }

  closed(): Promise<Error | null> {
    return this.ended;
  }

  /** Waits `ms`, or less if the config changes or the member is stopped. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private async run(): Promise<Error | null> {
    const jsm = new JetStreamManager(this.bus);
    try {
      while (!this.stopped) {
        if (this.pending !== undefined) {
          const next = this.pending;
          this.pending = undefined;
          const why = await this.follow(jsm, next);
          if (why !== undefined) return why;
        }
        if (!this.consumer) {
          if (!this.plan.config) {
            await this.pause(this.plan.expires / 1e6);
            continue;
          }
          if (!(await this.create(jsm))) {
            await this.pause(RETRY_MS);
            continue;
          }
        }
        await this.pull();
      }
      return null;
    } catch (e) {
      return e instanceof Error ? e : new Error(String(e));
    }
  }

  /** Takes a new config: undefined to go on, or why consumption ends. */
  private async follow(jsm: JetStreamManager, next: string | null): Promise<Error | null | undefined> {
    if (next === null) {
      await this.letGo(jsm, this.kind === "static");
      return null;
    }
    if (this.kind === "static") {
      if (next === this.config) return undefined;
      await this.letGo(jsm, true);
      return new Error("static consumer group config watcher received a change in the configuration, terminating");
    }
    let plan: MemberPlan;
    try {
      plan = this.planFor(next);
      if (!full("pcgSameGroup")("elastic", this.config, next)) {
        throw new Error("max number of members, buffered messages, filter or partitioning wildcards changed");
      }
    } catch (e) {
      await this.letGo(jsm, false);
      return new Error(`elastic consumer group config watcher received a bad change in the configuration: ${e}`);
    }
    this.config = next;
    const same = JSON.stringify(plan.filters) === JSON.stringify(this.plan.filters);
    this.plan = plan;
    // new partitions may hold messages before where the consumer is: start it again
    if (!same) await this.letGo(jsm, true);
    return undefined;
  }

  /** Stops using the member's consumer; the pinned instance (or `always`) deletes it. */
  private async letGo(jsm: JetStreamManager, always: boolean): Promise<void> {
    const c = this.consumer;
    this.consumer = null;
    if (!c) return;
    if (always || c.pinId) {
      await jsm.consumers.delete(c.stream, c.name).catch((e) => {
        if (apiCode(e) !== CONSUMER_NOT_FOUND) throw e;
      });
    }
  }

  /** Creates the member's consumer; false when it must try again later. */
  private async create(jsm: JetStreamManager): Promise<boolean> {
    const { stream, consumer, config } = this.plan;
    try {
      // "create", never "update": an updated consumer keeps its position, and would skip
      // what its new partitions hold before it
      this.bus.jsFlush();
      await this.bus.raw.jsApi(`CONSUMER.CREATE.${stream}.${consumer}`, { stream_name: stream, config, action: "create" });
    } catch (e) {
      const code = apiCode(e);
      if (code === WQ_NOT_UNIQUE) return false;
      if (code !== CONSUMER_EXISTS && code !== CONSUMER_EXISTS_OTHER) throw e;
      // left behind with other filters (by an instance that went away): replace it
      await jsm.consumers.delete(stream, consumer).catch(() => false);
      return false;
    }
    this.consumer = new Consumer(this.bus, stream, consumer);
    return true;
  }

  /** One pull; its messages handled one at a time, all of them (one left unacked while the
   *  consumer goes on would let a later message of its key overtake it): a config change
   *  is followed after the batch. */
  private async pull(): Promise<void> {
    const c = this.consumer;
    if (!c) return;
    const max = Math.max(1, Number(this.plan.config?.max_ack_pending ?? 0) || 1);
    const got = await c.fetch({ max_messages: Math.min(max, 100), expires: this.plan.expires / 1e6, group: this.plan.group });
    if (got.messages.length === 0) {
      // an idle elastic consumer goes after `inactive_threshold`: notice, and make it again
      await c.info().catch((e) => {
        if (apiCode(e) !== CONSUMER_NOT_FOUND) throw e;
        if (this.consumer === c) this.consumer = null;
      });
      return;
    }
    for (const m of got.messages) {
      if (this.stopped || this.consumer !== c) return;
      await this.callback(new ConsumerGroupMsg(m));
    }
  }
}
