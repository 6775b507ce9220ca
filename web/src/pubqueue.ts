// Plain publishes held in the page and handed to WebAssembly together: crossing into wasm
// (and out again with the deliveries) costs far more than routing a 16-byte message, so one
// crossing per task carries every publish the task made, and subscribers get them back in
// batches.

import { te } from "./types.js";

/** Messages or payload bytes after which the queue is handed over at once (the size of
 *  one delivery batch, see `wasm/src/bus/dispatch.rs`), so a long loop of publishes does
 *  not hold an unbounded copy of them. */
const MAX_MSGS = 4096;
const MAX_BYTES = 1 << 20;

/** What one hand-over carries: `Bus.publishRuns`'s arguments (see `wasm/src/bus.rs`). */
export interface Runs {
  /** One subject per run, separated by spaces. */
  subjects: string;
  /** `runs[r]`: the number of messages up to the end of run `r`. */
  runs: Uint32Array;
  data: Uint8Array;
  ends: Uint32Array;
}

/** Payloads copied back to back as they are published (a caller may reuse its buffer right
 *  after `publish` returns), grouped in runs of one subject. */
export class PublishQueue {
  private buf = new Uint8Array(64 * 1024);
  private used = 0;
  private ends: number[] = [];
  private subjects: string[] = [];
  private runs: number[] = [];

  get length(): number {
    return this.ends.length;
  }

  /** Whether the queue should be handed over now rather than at the end of the task. */
  get full(): boolean {
    return this.ends.length >= MAX_MSGS || this.used >= MAX_BYTES;
  }

  /** Queues one message; false (nothing queued) when its payload is over `max` bytes
   *  (0: no limit), which the caller then publishes directly so the broker refuses it. */
  push(subject: string, data: Uint8Array | string | undefined, max: number): boolean {
    let n: number;
    if (data === undefined) {
      n = 0;
    } else if (typeof data === "string") {
      this.reserve(data.length * 3);
      n = te.encodeInto(data, this.buf.subarray(this.used)).written;
      if (max > 0 && n > max) return false;
    } else {
      n = data.length;
      if (max > 0 && n > max) return false;
      this.reserve(n);
      this.buf.set(data, this.used);
    }
    this.used += n;
    this.ends.push(this.used);
    if (this.subjects.length === 0 || this.subjects[this.subjects.length - 1] !== subject) {
      this.subjects.push(subject);
      this.runs.push(this.ends.length);
    } else {
      this.runs[this.runs.length - 1] = this.ends.length;
    }
    return true;
  }

  /** Everything queued, in order, leaving the queue empty; null when it was empty. `data`
   *  is a view of the queue's buffer, which the next `push` overwrites: hand it over at
   *  once (wasm-bindgen copies it into the module's memory on the call). */
  take(): Runs | null {
    if (this.ends.length === 0) return null;
    const out: Runs = {
      subjects: this.subjects.length === 1 ? this.subjects[0] : this.subjects.join(" "),
      runs: Uint32Array.from(this.runs),
      data: this.buf.subarray(0, this.used),
      ends: Uint32Array.from(this.ends),
    };
    this.used = 0;
    this.ends = [];
    this.subjects = [];
    this.runs = [];
    return out;
  }

  private reserve(n: number): void {
    if (this.used + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.used + n));
    next.set(this.buf.subarray(0, this.used));
    this.buf = next;
  }
}
