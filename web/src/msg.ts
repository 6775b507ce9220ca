// Received messages: one at a time (`Msg`) or packed in batches (`MsgBatch`).

import type { Bus } from "./bus.js";
import { MsgHdrs, td, type Payload, type RawExtra, type RawMsg } from "./types.js";

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

