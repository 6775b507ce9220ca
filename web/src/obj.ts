// Object stores (nats.js v3 `@nats-io/obj` shapes: `Objm`, `ObjectStore`) over the core's
// object store, run in the page's engine. Objects go in and come out chunk by chunk.

import type { Bus } from "./bus.js";
import { Feed } from "./feed.js";
import { Lister, type RawExtra, type StorageType } from "./types.js";

export interface ObjectStoreOptions {
  description?: string;
  /** Age limit of objects in milliseconds. */
  ttl?: number;
  maxBytes?: number;
  /** "file" (IndexedDB when the bus persists; default) or "memory". */
  storage?: StorageType;
}

/** What `put` is told about an object. */
export interface ObjectStoreMeta {
  name: string;
  description?: string;
}

interface RawLink {
  bucket: string;
  name?: string;
}

interface RawInfo {
  name: string;
  description?: string;
  bucket: string;
  nuid: string;
  size: number;
  mtime: string;
  chunks: number;
  digest: string;
  deleted?: boolean;
  options?: { link?: RawLink; max_chunk_size?: number };
  headers?: Record<string, string[]>;
  metadata?: Record<string, string>;
}

/** An object's description (nats.js `ObjectInfo`). */
export class ObjectInfo {
  readonly name: string;
  readonly description: string;
  readonly bucket: string;
  readonly nuid: string;
  readonly size: number;
  readonly mtime: string;
  readonly chunks: number;
  /** `SHA-256=<base64url>`, as every NATS client computes it. */
  readonly digest: string;
  readonly deleted: boolean;
  readonly options?: { link?: RawLink; max_chunk_size?: number };
  readonly metadata?: Record<string, string>;

  /** @internal */
  constructor(raw: RawInfo) {
    this.name = raw.name;
    this.description = raw.description ?? "";
    this.bucket = raw.bucket;
    this.nuid = raw.nuid;
    this.size = raw.size;
    this.mtime = raw.mtime;
    this.chunks = raw.chunks;
    this.digest = raw.digest;
    this.deleted = raw.deleted ?? false;
    this.options = raw.options;
    this.metadata = raw.metadata;
  }
  isLink(): boolean {
    return this.options?.link !== undefined;
  }
}

/** What `get` answers: the description and the data as a stream; `error` settles once the
 *  stream ended (`null`) or failed (a missing chunk or a digest that does not match). */
export interface ObjectResult {
  info: ObjectInfo;
  data: ReadableStream<Uint8Array>;
  error: Promise<Error | null>;
}

export interface ObjectStoreStatus {
  bucket: string;
  description: string;
  /** Nanoseconds, as in the stream config. */
  ttl: number;
  storage: StorageType;
  sealed: boolean;
  /** Bytes stored. */
  size: number;
  backingStore: "JetStream";
}

function status(raw: Omit<ObjectStoreStatus, "backingStore">): ObjectStoreStatus {
  return { ...raw, backingStore: "JetStream" };
}

/** Object store manager (nats.js `Objm`): `new Objm(bus)` or `bus.objm()`. */
export class Objm {
  constructor(private readonly bus: Bus) {}

  /** Opens store `name`, creating it (with `opts`) if it does not exist. */
  async create(name: string, opts: ObjectStoreOptions = {}): Promise<ObjectStore> {
    this.bus.jsFlush();
    await this.bus.engine.objBind(name, opts, true);
    return new ObjectStore(this.bus, name);
  }

  /** Opens an existing store (rejects when there is none). */
  async open(name: string): Promise<ObjectStore> {
    await this.bus.engine.objBind(name, undefined, false);
    return new ObjectStore(this.bus, name);
  }

  /** The status of every store (a nats.js `Lister`: `for await`, or `next()`). */
  list(): Lister<ObjectStoreStatus> {
    return new Lister(async () => ((await this.bus.engine.objStores()) as Omit<ObjectStoreStatus, "backingStore">[]).map(status));
  }
}

/** Object descriptions as they change: iterate it, `stop()` to end it. */
export class ObjectWatcher extends Feed<ObjectInfo> {
  /** @internal */
  handle?: { sid: number; consumer: string; stream: string };

  /** @internal */
  constructor(
    private readonly bus: Bus,
    private readonly ignoreDeletes: boolean,
  ) {
    super(undefined, "object watch");
  }

  /** @internal */
  push(raw: RawInfo): void {
    if (this.stopped || (raw.deleted && this.ignoreDeletes)) return;
    this.deliver(new ObjectInfo(raw));
  }

  async stop(): Promise<void> {
    if (!this.end()) return;
    if (this.handle) {
      this.bus.raw.unsubscribe(this.handle.sid, undefined);
      await this.bus.raw.jsApi(`CONSUMER.DELETE.${this.handle.stream}.${this.handle.consumer}`, undefined).catch(() => {});
    }
  }
}

/** An object store (nats.js `ObjectStore`). Writes resolve once durable. */
export class ObjectStore {
  constructor(
    private readonly bus: Bus,
    readonly name: string,
  ) {}

  /** Stores an object from a stream of bytes (or bytes), 128 KiB per chunk; replaces an
   *  object of the same name once complete. */
  async put(meta: ObjectStoreMeta, data: ReadableStream<Uint8Array> | Uint8Array | null): Promise<ObjectInfo> {
    this.bus.jsFlush();
    // Queued stream publishes reach the engine in a task of their own: let it run first.
    await Promise.resolve();
    const up = this.bus.engine.objPut(this.name, { name: meta.name, description: meta.description });
    try {
      if (data instanceof Uint8Array) {
        up.write(data);
      } else if (data) {
        const reader = data.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          up.write(value);
        }
      }
    } catch (e) {
      up.abort();
      up.free();
      throw e;
    }
    try {
      return new ObjectInfo(await up.finish());
    } finally {
      up.free();
    }
  }

  /** Stores an object from bytes. */
  putBlob(meta: ObjectStoreMeta, data: Uint8Array | null): Promise<ObjectInfo> {
    return this.put(meta, data);
  }

  /** The object (a link followed) as a stream of its chunks, or null when missing. */
  async get(name: string): Promise<ObjectResult | null> {
    const d = await this.bus.engine.objGet(this.name, name);
    if (!d) return null;
    let settle!: (e: Error | null) => void;
    const error = new Promise<Error | null>((r) => (settle = r));
    const end = (e: Error | null) => {
      settle(e);
      d.free();
    };
    const data = new ReadableStream<Uint8Array>({
      pull(c) {
        try {
          const chunk = d.next();
          if (chunk) {
            c.enqueue(chunk);
          } else {
            c.close();
            end(null);
          }
        } catch (e) {
          c.error(e);
          end(e as Error);
        }
      },
      cancel() {
        end(null);
      },
    });
    return { info: new ObjectInfo(d.info()), data, error };
  }

  /** The whole object, or null when missing; rejects if its digest does not match. */
  async getBlob(name: string): Promise<Uint8Array | null> {
    const r = await this.get(name);
    if (!r) return null;
    const parts: Uint8Array[] = [];
    const reader = r.data.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
    }
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  /** The object's description (`deleted` set for a deleted one), or null when missing. */
  async info(name: string): Promise<ObjectInfo | null> {
    const raw: RawInfo | null = await this.bus.engine.objInfo(this.name, name);
    return raw ? new ObjectInfo(raw) : null;
  }

  /** The live objects' descriptions, by name. */
  async list(): Promise<ObjectInfo[]> {
    const raw: RawInfo[] = await this.bus.engine.objList(this.name);
    return raw.map((r) => new ObjectInfo(r));
  }

  /** Deletes the object (its chunks are purged). */
  delete(name: string): Promise<{ success: boolean; purged: number }> {
    this.bus.jsFlush();
    return this.bus.engine.objDelete(this.name, name);
  }

  /** Makes `name` a link to object `info` (of this store or another). */
  async link(name: string, info: ObjectInfo): Promise<ObjectInfo> {
    this.bus.jsFlush();
    return new ObjectInfo(await this.bus.engine.objLink(this.name, name, info.bucket, info.name));
  }

  /** Makes `name` a link to the whole store `store`. */
  async linkStore(name: string, store: ObjectStore): Promise<ObjectInfo> {
    this.bus.jsFlush();
    return new ObjectInfo(await this.bus.engine.objLinkStore(this.name, name, store.name));
  }

  /** Descriptions as they change (`includeHistory`: every current one first). */
  async watch(opts: { includeHistory?: boolean; ignoreDeletes?: boolean } = {}): Promise<ObjectWatcher> {
    const w = new ObjectWatcher(this.bus, opts.ignoreDeletes ?? false);
    const cb = (data: Uint8Array, ends: Uint32Array, _subjects: string | string[], extras?: (RawExtra | undefined)[]) => {
      const td = new TextDecoder();
      for (let i = 0; i < ends.length; i++) {
        if (extras?.[i]?.status) continue;
        w.push(JSON.parse(td.decode(data.subarray(i === 0 ? 0 : ends[i - 1], ends[i]))) as RawInfo);
      }
    };
    w.handle = await this.bus.engine.objWatch(this.name, opts.includeHistory ?? false, cb);
    return w;
  }

  async status(): Promise<ObjectStoreStatus> {
    return status(await this.bus.engine.objStatus(this.name));
  }

  /** Deletes the store and every object in it. */
  destroy(): Promise<boolean> {
    return this.bus.engine.objDestroy(this.name);
  }
}
