// KV buckets (nats.js `KV` shapes) over the core's KV, run in the page's engine.

import type { Bus } from "./bus.js";
import { Feed } from "./feed.js";
import { encode, iterate, td, type Payload, type StorageType, type StreamInfo } from "./types.js";

/** Bucket options (the part of nats.js `KvOptions` that applies in a page). */
export interface KvOptions {
  description?: string;
  /** Values kept per key (1–64, default 1). */
  history?: number;
  /** Age limit of values in milliseconds. */
  ttl?: number;
  maxBytes?: number;
  maxValueSize?: number;
  /** "file" (IndexedDB when the bus persists; default) or "memory". */
  storage?: StorageType;
}

/** A bucket's settings and counts (nats.js `KvStatus`), from its stream. */
export interface KvStatus {
  bucket: string;
  description: string;
  /** Values stored (every kept revision and delete marker). */
  values: number;
  history: number;
  /** Milliseconds (0: none). */
  ttl: number;
  max_bytes: number;
  maxValueSize: number;
  storage: StorageType;
  replicas: number;
  /** Bytes stored. */
  size: number;
  backingStore: "JetStream";
  streamInfo: StreamInfo;
  metadata?: Record<string, string>;
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

/** A key's value at one revision (nats.js `KvEntry`). */
export class KvEntry {
  readonly bucket: string;
  readonly key: string;
  /** The key as stored (the page applies no key codec: the same as `key`). */
  readonly rawKey: string;
  readonly value: Uint8Array;
  readonly revision: number;
  readonly created: Date;
  readonly operation: "PUT" | "DEL" | "PURGE";
  readonly length: number;
  readonly delta?: number;

  constructor(raw: RawEntry) {
    this.bucket = raw.bucket;
    this.key = raw.key;
    this.rawKey = raw.key;
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
export class KvWatcher extends Feed<KvEntry> {
  /** @internal */
  handle?: { sid: number; consumer: string; bucket: string };

  constructor(
    private readonly bus: Bus,
    callback?: (e: KvEntry) => void,
  ) {
    super(callback, "KV watch");
  }

  /** @internal */
  push(e: KvEntry): void {
    this.deliver(e);
  }

  async stop(): Promise<void> {
    if (!this.end()) return;
    if (this.handle) await this.bus.engine.kvUnwatch(this.handle.bucket, this.handle.sid, this.handle.consumer);
  }
}

/** A KV bucket (nats.js `KV`). Writes resolve once durable. */
export class KV {
  constructor(
    private readonly bus: Bus,
    readonly bucket: string,
  ) {}

  /** The current entry, a given revision, or null (missing or deleted). */
  async get(key: string, opts: { revision?: number } = {}): Promise<KvEntry | null> {
    const raw: RawEntry | null = await this.bus.engine.kvGet(this.bucket, key, opts.revision);
    return raw ? new KvEntry(raw) : null;
  }

  /** Stores a value; resolves with its revision. `previousSeq`: only if still at it. */
  put(key: string, value: Payload, opts: { previousSeq?: number } = {}): Promise<number> {
    this.bus.jsFlush();
    return this.bus.engine.kvPut(this.bucket, key, encode(value), opts.previousSeq);
  }

  /** Stores a value only if the key has none (or was deleted). */
  create(key: string, value: Payload): Promise<number> {
    this.bus.jsFlush();
    return this.bus.engine.kvCreate(this.bucket, key, encode(value));
  }

  /** Stores a value only if the key is still at `version`. */
  update(key: string, value: Payload, version: number): Promise<number> {
    this.bus.jsFlush();
    return this.bus.engine.kvPut(this.bucket, key, encode(value), version);
  }

  /** Deletes the key (its history is kept). */
  async delete(key: string): Promise<void> {
    this.bus.jsFlush();
    await this.bus.engine.kvDelete(this.bucket, key, false);
  }

  /** Deletes the key and all its history. */
  async purge(key: string): Promise<void> {
    this.bus.jsFlush();
    await this.bus.engine.kvDelete(this.bucket, key, true);
  }

  /** Keys holding a value (optionally matching a wildcard filter). */
  async keys(filter?: string): Promise<AsyncIterable<string>> {
    return iterate<string>(await this.bus.engine.kvKeys(this.bucket, filter));
  }

  /** Every kept revision of `key` (default: every key), oldest first. */
  async history(opts: { key?: string } = {}): Promise<AsyncIterable<KvEntry>> {
    const raw: RawEntry[] = await this.bus.engine.kvHistory(this.bucket, opts.key ?? ">");
    return iterate(raw.map((r) => new KvEntry(r)));
  }

  /** Watches keys (default all; `>` only as the last token): current values first
   *  (`include: "last"`, nats.js `""`), or the whole history (`"all"`, nats.js `"history"`),
   *  or only new changes (`"updates"`). */
  async watch(
    opts: { key?: string; include?: "last" | "all" | "updates" | "" | "history"; callback?: (e: KvEntry) => void } = {},
  ): Promise<KvWatcher> {
    const w = new KvWatcher(this.bus, opts.callback);
    w.handle = await this.bus.engine.kvWatch(this.bucket, opts.key ?? ">", opts.include ?? "last", (e: RawEntry) =>
      w.push(new KvEntry(e)),
    );
    return w;
  }

  /** The bucket's settings and counts. */
  async status(): Promise<KvStatus> {
    this.bus.jsFlush();
    const si: StreamInfo = await this.bus.raw.jsApi(`STREAM.INFO.KV_${this.bucket}`, undefined);
    const c = si.config;
    return {
      bucket: this.bucket,
      description: c.description ?? "",
      values: si.state.messages,
      history: c.max_msgs_per_subject,
      ttl: Math.floor(c.max_age / 1_000_000),
      max_bytes: c.max_bytes,
      maxValueSize: c.max_msg_size,
      storage: c.storage,
      replicas: c.num_replicas,
      size: si.state.bytes,
      backingStore: "JetStream",
      streamInfo: si,
      metadata: c.metadata,
    };
  }

  /** Deletes the bucket and everything in it. */
  async destroy(): Promise<boolean> {
    await this.bus.engine.kvDestroy(this.bucket);
    return true;
  }
}

