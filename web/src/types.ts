// Values shared by every part of the package: payloads and their encoding, message headers,
// and the shapes the wasm side hands over.

export type Payload = Uint8Array | string;

export const te = new TextEncoder();
export const td = new TextDecoder();

export function encode(data?: Payload): Uint8Array {
  if (data === undefined) return new Uint8Array(0);
  return typeof data === "string" ? te.encode(data) : data;
}

/** How a header name is looked up (nats.js `Match`). */
export const Match = {
  /** The name exactly as given. */
  Exact: 0,
  /** The name in MIME canonical form (`x-trace-id` → `X-Trace-Id`). */
  CanonicalMIME: 1,
  /** Any case. */
  IgnoreCase: 2,
} as const;
export type Match = (typeof Match)[keyof typeof Match];

/** `x-trace-id` → `X-Trace-Id` (Go's `CanonicalMIMEHeaderKey`, as nats.js has it). */
export function canonicalMIMEHeaderKey(k: string): string {
  return k
    .split("-")
    .map((p) => (p ? p[0].toUpperCase() + p.slice(1).toLowerCase() : p))
    .join("-");
}

/** Message headers (nats.js `MsgHdrs`): names case-preserved, repeats allowed. Lookups
 *  without a `match` take the exact name if the message has it, else any case of it, so
 *  `get("x-trace-id")` finds `X-Trace-Id` (pass `Match.Exact` for nats.js's strict default). */
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
  /** Whether stored name `n` answers a lookup of `k`. */
  private matcher(k: string, match?: Match): (n: string) => boolean {
    if (match === Match.Exact) return (n) => n === k;
    if (match === Match.CanonicalMIME) {
      const c = canonicalMIMEHeaderKey(k);
      return (n) => n === c;
    }
    if (match === undefined && this.entries.some(([n]) => n === k)) return (n) => n === k;
    const lk = k.toLowerCase();
    return (n) => n.toLowerCase() === lk;
  }
  get(k: string, match?: Match): string {
    const m = this.matcher(k, match);
    return this.entries.find(([n]) => m(n))?.[1] ?? "";
  }
  /** The last value of `k` (nats.js `last`). */
  last(k: string, match?: Match): string {
    const v = this.values(k, match);
    return v.length ? v[v.length - 1] : "";
  }
  has(k: string, match?: Match): boolean {
    const m = this.matcher(k, match);
    return this.entries.some(([n]) => m(n));
  }
  values(k: string, match?: Match): string[] {
    const m = this.matcher(k, match);
    return this.entries.filter(([n]) => m(n)).map(([, v]) => v);
  }
  set(k: string, v: string): void {
    this.delete(k);
    this.append(k, v);
  }
  append(k: string, v: string): void {
    this.entries.push([k, v]);
  }
  delete(k: string, match: Match = Match.Exact): void {
    const m = this.matcher(k, match);
    this.entries = this.entries.filter(([n]) => !m(n));
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


export interface RawMsg {
  subject: string;
  reply?: string;
  data: Uint8Array;
  headers?: [string, string][];
  status?: number;
  description?: string;
}

/** What the wasm side sends along with a message besides subject and payload. */
export interface RawExtra {
  reply?: string;
  headers?: [string, string][];
  status?: number;
  description?: string;
}

/** The wasm side's subscription callback: a batch of messages per call. */
export type RawBatchCallback = (data: Uint8Array, ends: Uint32Array, subjects: string | string[], extras?: (RawExtra | undefined)[]) => void;


async function* iterateArray<T>(items: T[]): AsyncGenerator<T> {
  yield* items;
}

/** An array as an async iterable (listings are answered whole, iterated as in nats.js). */
export function iterate<T>(items: T[]): AsyncIterable<T> {
  return iterateArray(items);
}

// ---- JetStream API shapes (nats.js v3 `@nats-io/jetstream` names) -------------------------
// The JSON the engine answers with, field for field as nats-server sends it. Durations are
// nanoseconds (`Nanos`), times RFC 3339 strings.

/** Nanoseconds. */
export type Nanos = number;

/** A JetStream API error as the reply carries it. */
export interface ApiError {
  code: number;
  err_code: number;
  description: string;
}

/** How a stream retains messages (`"limits"`, `"interest"`, `"workqueue"`). */
export const RetentionPolicy = { Limits: "limits", Interest: "interest", Workqueue: "workqueue" } as const;
export type RetentionPolicy = (typeof RetentionPolicy)[keyof typeof RetentionPolicy];

/** Which messages a full stream gives up: the oldest, or the new one. */
export const DiscardPolicy = { Old: "old", New: "new" } as const;
export type DiscardPolicy = (typeof DiscardPolicy)[keyof typeof DiscardPolicy];

/** `"file"` (IndexedDB when the bus persists) or `"memory"`. */
export const StorageType = { File: "file", Memory: "memory" } as const;
export type StorageType = (typeof StorageType)[keyof typeof StorageType];

export const DeliverPolicy = {
  All: "all",
  Last: "last",
  New: "new",
  StartSequence: "by_start_sequence",
  StartTime: "by_start_time",
  LastPerSubject: "last_per_subject",
} as const;
export type DeliverPolicy = (typeof DeliverPolicy)[keyof typeof DeliverPolicy];

/** `FlowControl` is what a durable sourcing consumer (API level 4) reports: acked by the
 * answers to its flow-control requests, not per message. */
export const AckPolicy = { None: "none", All: "all", Explicit: "explicit", FlowControl: "flow_control", NotSet: "" } as const;
export type AckPolicy = (typeof AckPolicy)[keyof typeof AckPolicy];

export const ReplayPolicy = { Instant: "instant", Original: "original" } as const;
export type ReplayPolicy = (typeof ReplayPolicy)[keyof typeof ReplayPolicy];

export interface StreamConsumerLimits {
  inactive_threshold?: Nanos;
  max_ack_pending?: number;
}

/** A stream's `subject_transform` (nats.js `SubjectTransformConfig`): captured messages
 *  are stored under `dest` mapped from `src`. */
export interface SubjectTransformConfig {
  src: string;
  dest: string;
}

/** A stream's `republish` (nats.js `Republish`): each stored message is copied to `dest`. */
export interface Republish {
  src?: string;
  dest: string;
  headers_only?: boolean;
}

/** nats.js `PersistMode`. */
export const PersistMode = { Default: "default", Async: "async" } as const;
export type PersistMode = (typeof PersistMode)[keyof typeof PersistMode];

/** What `streams.update` may change (nats.js `StreamUpdateConfig`). */
export interface StreamUpdateConfig {
  subjects: string[];
  description?: string;
  max_msgs_per_subject: number;
  max_msgs: number;
  max_age: Nanos;
  max_bytes: number;
  max_msg_size: number;
  discard: DiscardPolicy;
  discard_new_per_subject: boolean;
  no_ack?: boolean;
  duplicate_window: Nanos;
  allow_rollup_hdrs: boolean;
  num_replicas: number;
  deny_delete: boolean;
  deny_purge: boolean;
  allow_direct: boolean;
  mirror_direct: boolean;
  metadata?: Record<string, string>;
  consumer_limits?: StreamConsumerLimits;
  subject_delete_marker_ttl?: Nanos;
  allow_msg_ttl?: boolean;
  placement?: unknown;
  republish?: Republish;
  subject_transform?: SubjectTransformConfig;
  compression?: "none" | "s2";
  mirror?: unknown;
  sources?: unknown[];
  /** Messages may be scheduled (`Nats-Schedule`). */
  allow_msg_schedules?: boolean;
  /** Atomic batches (`js.startBatch`). */
  allow_atomic?: boolean;
  /** Fast-ingest batches (`js.startFastIngest`). */
  allow_batched?: boolean;
}

/** A stream's configuration (nats.js `StreamConfig`); `streams.add` takes a `Partial` of
 *  it with a `name`, the engine fills in the defaults. */
export interface StreamConfig extends StreamUpdateConfig {
  name: string;
  retention: RetentionPolicy;
  storage: StorageType;
  max_consumers: number;
  sealed: boolean;
  first_seq?: number;
  /** A counter stream (`Nats-Incr`); fixed at creation. */
  allow_msg_counter?: boolean;
  /** Accepted for file streams; edgebus writes every stream the default way (stronger). */
  persist_mode?: PersistMode;
}

export interface LostStreamData {
  msgs: number[] | null;
  bytes: number;
}

/** A stream's counts (nats.js `StreamState`). */
export interface StreamState {
  messages: number;
  bytes: number;
  first_seq: number;
  first_ts: string;
  last_seq: number;
  last_ts: string;
  num_deleted: number;
  deleted?: number[];
  lost?: LostStreamData;
  consumer_count: number;
  num_subjects?: number;
  subjects?: Record<string, number>;
}

/** `streams.info` / `streams.add` / `streams.list` (nats.js `StreamInfo`). */
export interface StreamInfo {
  config: StreamConfig;
  /** When the stream was created (RFC 3339). */
  created: string;
  state: StreamState;
  ts?: string;
}

export interface StreamInfoRequestOptions {
  deleted_details: boolean;
  subjects_filter: string;
}

/** `streams.purge` options: up to a sequence, keeping the last `keep`, or by subject. */
export type PurgeOpts = { filter?: string; seq: number } | { filter?: string; keep: number } | { filter: string };

export interface Success {
  success: boolean;
}

export interface PurgeResponse extends Success {
  purged: number;
}

/** `streams.getMessage` query: by sequence, or the last on a subject. */
export type MsgRequest = { seq: number } | { last_by_subj: string };

/** What `consumers.update` may change (nats.js `ConsumerUpdateConfig`). */
export interface ConsumerUpdateConfig {
  description?: string;
  ack_wait?: Nanos;
  max_deliver?: number;
  sample_freq?: string;
  max_ack_pending?: number;
  max_waiting?: number;
  headers_only?: boolean;
  deliver_subject?: string;
  max_batch?: number;
  max_expires?: Nanos;
  inactive_threshold?: Nanos;
  backoff?: Nanos[];
  max_bytes?: number;
  num_replicas?: number;
  mem_storage?: boolean;
  filter_subject?: string;
  filter_subjects?: string[];
  metadata?: Record<string, string>;
}

/** A consumer's configuration (nats.js `ConsumerConfig`); `consumers.add` takes a
 *  `Partial` of it. With `deliver_subject` it is a push consumer. */
export interface ConsumerConfig extends ConsumerUpdateConfig {
  ack_policy: AckPolicy;
  deliver_policy: DeliverPolicy;
  deliver_group?: string;
  durable_name?: string;
  name?: string;
  flow_control?: boolean;
  idle_heartbeat?: Nanos;
  opt_start_seq?: number;
  opt_start_time?: string;
  rate_limit_bps?: number;
  replay_policy: ReplayPolicy;
  pause_until?: string;
  /** Priority groups of a pull consumer (nats.js `priority_groups`, needs a policy). */
  priority_groups?: string[];
  priority_policy?: PriorityPolicy;
  /** How long a pin lives without pulls from the pinned client (`pinned_client`). */
  priority_timeout?: Nanos;
}

/** nats.js `PriorityPolicy`. */
export type PriorityPolicy = "none" | "overflow" | "pinned_client" | "prioritized";

/** One entry of `ConsumerInfo.priority_groups`. */
export interface PriorityGroupState {
  group: string;
  pinned_client_id?: string;
  pinned_ts: string;
}

/** What `consumers.pause` / `consumers.resume` answer. */
export interface ConsumerPauseResponse {
  paused: boolean;
  pause_until: string;
  pause_remaining?: Nanos;
}

export interface SequenceInfo {
  consumer_seq: number;
  stream_seq: number;
  last_active?: string;
}

/** `consumers.info` / `consumers.add` / `consumers.list` (nats.js `ConsumerInfo`). */
export interface ConsumerInfo {
  stream_name: string;
  name: string;
  created: string;
  config: ConsumerConfig;
  delivered: SequenceInfo;
  ack_floor: SequenceInfo;
  num_ack_pending: number;
  num_redelivered: number;
  num_waiting: number;
  num_pending: number;
  push_bound?: boolean;
  paused?: boolean;
  pause_remaining?: Nanos;
  ts?: string;
  priority_groups?: PriorityGroupState[];
}

/** A listing (nats.js `Lister`): iterate it with `for await`, or take the items page by
 *  page with `next()` (the page's engine answers a listing whole: one page, then `[]`). */
export class Lister<T> implements AsyncIterable<T> {
  private done = false;

  /** @internal */
  constructor(private readonly load: () => Promise<T[]>) {}

  async next(): Promise<T[]> {
    if (this.done) return [];
    this.done = true;
    return this.load();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    yield* await this.next();
  }
}
