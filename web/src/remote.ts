// The engine from a client context of a shared bus. KV, the object store and pull fetches
// run on the engine directly in the context that owns the store (see wasm/src/bus/direct.rs);
// a client of the bus's leader (another tab or worker owns it, see wasm/src/tabs.rs) has no
// store, so it sends each such call to the leader as a request over its connection, and the
// leader runs the same wasm method on its engine and replies. Every rule stays the core's,
// in the leader; this file only carries arguments, results, errors and callbacks.

import type { Bus as WasmBus } from "../pkg/edgebus_wasm.js";
import { errorClasses, InvalidArgumentError } from "./errors.js";
import type { Msg } from "./msg.js";

/** Calls go to `$EB.CALL.<method>`; only the leader answers them. */
const CALL = "$EB.CALL.";

/** The wasm methods that need the store's engine, and so the leader. */
const ENGINE = new Set([
  "kvBind", "kvGet", "kvPut", "kvCreate", "kvDelete", "kvKeys", "kvHistory", "kvWatch", "kvUnwatch", "kvDestroy",
  "objBind", "objStores", "objStatus", "objInfo", "objList", "objDelete", "objLink", "objLinkStore", "objWatch",
  "objDestroy", "fetch",
]);

/** Largest piece of an object a client sends in one call: well under the bus's default
 *  1 MiB `maxPayload` once base64-encoded. */
const PIECE = 256 * 1024;

/** What the remote side needs of the bus (kept narrow: bus.ts imports this file). */
export interface CallBus {
  readonly raw: WasmBus;
  request(subject: string, data: Uint8Array, opts: { timeout?: number }): Promise<Msg>;
  subscribe(subject: string, opts: { callback: (err: Error | null, m: Msg) => void }): { sid: number; unsubscribe(): void };
  publish(subject: string, data: Uint8Array): void;
  newInbox(): string;
}

// ---- encoding: JSON, with typed arrays as base64 and callbacks as inboxes ------------------

function b64(u: Uint8Array): string {
  let s = "";
  for (let i = 0; i < u.length; i += 0x8000) s += String.fromCharCode(...u.subarray(i, i + 0x8000));
  return btoa(s);
}

function unb64(s: string): Uint8Array {
  const b = atob(s);
  const u = new Uint8Array(b.length);
  for (let i = 0; i < b.length; i++) u[i] = b.charCodeAt(i);
  return u;
}

const te = new TextEncoder();
const tdec = new TextDecoder();

/** @internal */
export function pack(v: unknown): Uint8Array {
  return te.encode(
    JSON.stringify(v, (_k, x: unknown) => {
      if (x instanceof Uint8Array) return { $b: b64(x) };
      if (x instanceof Uint32Array) return { $b: b64(new Uint8Array(x.buffer, x.byteOffset, x.byteLength)), $t: 32 };
      return x;
    }),
  );
}

/** @internal */
export function unpack(data: Uint8Array): unknown {
  return JSON.parse(tdec.decode(data), (_k, x: unknown) => {
    if (x && typeof x === "object" && typeof (x as { $b?: unknown }).$b === "string") {
      const u = unb64((x as { $b: string }).$b);
      return (x as { $t?: number }).$t === 32 ? new Uint32Array(u.buffer, 0, u.length / 4) : u;
    }
    return x;
  });
}

/** An error as it crosses: its class name, message and JetStream codes. */
interface WireError {
  name: string;
  message: string;
  code?: number;
  err_code?: number;
}

function toWire(e: unknown): WireError {
  const err = e as Partial<WireError>;
  return { name: err?.name ?? "Error", message: err?.message ?? String(e), code: err?.code, err_code: err?.err_code };
}

function fromWire(w: WireError): Error {
  const cls = (errorClasses as Record<string, new (m: string) => Error>)[w.name] ?? Error;
  const e = new cls(w.message) as Error & { code?: number; err_code?: number };
  if (w.code !== undefined) e.code = w.code;
  if (w.err_code !== undefined) e.err_code = w.err_code;
  return e;
}

// ---- the leader's side ---------------------------------------------------------------------

interface Upload {
  write(d: Uint8Array): void;
  finish(): Promise<unknown>;
  abort(): void;
  free(): void;
}
interface Download {
  info(): unknown;
  next(): Uint8Array | undefined;
  free(): void;
}

/** Runs the calls clients send, on this context's engine: made when this context comes to
 *  lead (a client subscribes nothing here, so the calls cross to the leader only). */
export class Leader {
  private uploads = new Map<string, Upload>();

  constructor(private readonly bus: CallBus) {
    bus.subscribe(`${CALL}*`, { callback: (_e, m) => void this.serve(m) });
  }

  private async serve(m: Msg): Promise<void> {
    if (!m.reply) return;
    let out: { ok?: unknown; error?: WireError };
    try {
      out = { ok: await this.run(m.subject.slice(CALL.length), unpack(m.data) as unknown[]) };
    } catch (e) {
      out = { error: toWire(e) };
    }
    try {
      this.bus.publish(m.reply, pack(out));
    } catch (e) {
      // too large for one message, most likely: the caller gets the reason, not a timeout
      this.bus.publish(m.reply, pack({ error: toWire(e) }));
    }
  }

  private async run(method: string, args: unknown[]): Promise<unknown> {
    const raw = this.bus.raw as unknown as Record<string, (...a: unknown[]) => unknown>;
    switch (method) {
      case "objPutOpen": {
        const [id, bucket, meta] = args as [string, string, unknown];
        this.uploads.set(id, raw.objPut(bucket, meta) as Upload);
        return null;
      }
      case "objPutWrite": {
        this.upload(args[0]).write(args[1] as Uint8Array);
        return null;
      }
      case "objPutEnd": {
        const [id, abort] = args as [string, boolean];
        const up = this.upload(id);
        this.uploads.delete(id);
        try {
          if (abort) up.abort();
          else return await up.finish();
        } finally {
          up.free();
        }
        return null;
      }
      case "objGetAll": {
        const d = (await raw.objGet(args[0], args[1])) as Download | null;
        if (!d) return null;
        try {
          const chunks: Uint8Array[] = [];
          for (let c = d.next(); c; c = d.next()) chunks.push(c);
          return { info: d.info(), chunks };
        } finally {
          d.free();
        }
      }
    }
    if (!ENGINE.has(method)) throw new InvalidArgumentError(`not a call a client makes: ${method}`);
    // a callback travels as the caller's inbox: each call of it becomes a message there
    const call = args.map((a) => {
      const inbox = (a as { $cb?: string } | null)?.$cb;
      return typeof inbox === "string" ? (...cb: unknown[]) => this.bus.publish(inbox, pack(cb)) : a;
    });
    return await raw[method](...call);
  }

  private upload(id: unknown): Upload {
    const up = this.uploads.get(id as string);
    if (!up) throw new InvalidArgumentError("the upload is gone (the bus's leader changed)");
    return up;
  }
}

// ---- a client's side -----------------------------------------------------------------------

/** The engine methods of the wasm bus, each sent to the leader. */
export function remoteEngine(bus: CallBus): WasmBus {
  // a call in flight when the leader goes gets no reply: TimeoutError after this
  const call = async (method: string, args: unknown[], timeout = 10_000): Promise<unknown> => {
    const m = await bus.request(CALL + method, pack(args), { timeout });
    const r = unpack(m.data) as { ok?: unknown; error?: WireError };
    if (r.error) throw fromWire(r.error);
    return r.ok;
  };
  // a watch's subscription here (by its sid) and its handler's sid in the leader
  const watches = new Map<number, { leader: number; sub: { unsubscribe(): void } }>();
  const special: Record<string, (...a: unknown[]) => unknown> = {
    fetch: (stream, consumer, opts) =>
      // the reply comes when the pull ends: allow for its `expires` (nats.js's default 30 s)
      call("fetch", [stream, consumer, opts], ((opts as { expires?: number })?.expires ?? 30_000) + 10_000),
    kvUnwatch: (bucket, sid, consumer) => {
      const w = watches.get(sid as number);
      watches.delete(sid as number);
      w?.sub.unsubscribe();
      return call("kvUnwatch", [bucket, w?.leader ?? -1, consumer]);
    },
    objPut: (bucket, meta) => {
      const id = bus.newInbox();
      const sent: Promise<unknown>[] = [call("objPutOpen", [id, bucket, meta])];
      const end = async (abort: boolean) => {
        await Promise.all(sent);
        return call("objPutEnd", [id, abort]);
      };
      return {
        write: (d: Uint8Array) => {
          for (let at = 0; at < d.length; at += PIECE) sent.push(call("objPutWrite", [id, d.slice(at, at + PIECE)]));
        },
        finish: () => end(false),
        abort: () => void end(true).catch(() => {}),
        free: () => {},
      };
    },
    objGet: async (bucket, name) => {
      const r = (await call("objGetAll", [bucket, name])) as { info: unknown; chunks: Uint8Array[] } | null;
      if (!r) return null;
      let i = 0;
      return { info: () => r.info, next: () => r.chunks[i++], free: () => {} };
    },
  };
  return new Proxy({} as WasmBus, {
    get: (_t, method: string | symbol) => {
      if (typeof method !== "string") return undefined;
      // anything else (`then`, `toJSON`, ...) is not there, as on a plain object
      if (special[method]) return special[method];
      if (!ENGINE.has(method)) return undefined;
      return async (...args: unknown[]) => {
        const cbs = args.map((a) => (typeof a === "function" ? a : null));
        if (!cbs.some(Boolean)) return call(method, args);
        // a callback: its calls come back as messages on an inbox of this context
        const inbox = bus.newInbox();
        const fn = cbs.find(Boolean) as (...a: unknown[]) => void;
        const sub = bus.subscribe(inbox, { callback: (_e, m) => fn(...(unpack(m.data) as unknown[])) });
        try {
          const handle = (await call(method, args.map((a) => (typeof a === "function" ? { $cb: inbox } : a)))) as { sid: number };
          // the handle names this context's subscription (a watcher's stop unsubscribes
          // it here); the leader's is remembered for kvUnwatch
          watches.set(sub.sid, { leader: handle.sid, sub });
          return { ...handle, sid: sub.sid };
        } catch (e) {
          sub.unsubscribe();
          throw e;
        }
      };
    },
  });
}
