// Values shared by every part of the package: payloads and their encoding, message headers,
// and the shapes the wasm side hands over.

export type Payload = Uint8Array | string;

export const te = new TextEncoder();
export const td = new TextDecoder();

export function encode(data?: Payload): Uint8Array {
  if (data === undefined) return new Uint8Array(0);
  return typeof data === "string" ? te.encode(data) : data;
}

/** Message headers (nats.js `MsgHdrs`): names case-preserved, repeats allowed. */
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
  get(k: string): string {
    return this.entries.find(([n]) => n === k)?.[1] ?? "";
  }
  has(k: string): boolean {
    return this.entries.some(([n]) => n === k);
  }
  values(k: string): string[] {
    return this.entries.filter(([n]) => n === k).map(([, v]) => v);
  }
  set(k: string, v: string): void {
    this.delete(k);
    this.append(k, v);
  }
  append(k: string, v: string): void {
    this.entries.push([k, v]);
  }
  delete(k: string): void {
    this.entries = this.entries.filter(([n]) => n !== k);
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
