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
