// A pull consumer's `consume()` (nats.js v3 `ConsumerMessages` of a pull consumer): pulls one
// after another, each with the priority-group options (`group`, `min_pending`,
// `min_ack_pending`, `priority`) and the consumer's pin, so a pinned client keeps its pin
// across pulls and a standby one takes it over when it moves. The engine serves the pulls
// (`Consumer.pull`); this only loops, reports pins as nats.js does, and ends on a pull the
// engine refuses.

import { Feed } from "./feed.js";
import { InvalidArgumentError, PullStatusError } from "./errors.js";
import type { Consumer, JsMsg } from "./jetstream.js";
import type { PriorityGroupOptions } from "./jetstream.js";
import { Notifications, type ConsumerNotification } from "./push.js";

/** `consume()` options of a pull consumer (nats.js `ConsumeMessages` / `ConsumeBytes`). */
export interface ConsumeOptions extends PriorityGroupOptions {
  /** The most messages one pull asks for, and the most kept waiting for the iterator
   *  (default 100); not with `max_bytes`. */
  max_messages?: number;
  /** The most bytes kept waiting for the iterator, each message counted as the server counts
   *  it (subject, reply, headers, payload); not with `max_messages`. A message larger than
   *  what is left ends `consume()` with the server's 409. */
  max_bytes?: number;
  /** Pull again once the iterator holds this many messages or fewer (default: three
   *  quarters of `max_messages`, as nats.js). */
  threshold_messages?: number;
  /** Pull again once the iterator holds this many bytes or fewer (default: three quarters
   *  of `max_bytes`). */
  threshold_bytes?: number;
  /** How long a pull waits for a message, in milliseconds (default 30000). */
  expires?: number;
  /** Accepted as nats.js takes it; the engine is in the page, so there is no connection
   *  whose silence heartbeats would reveal. */
  idle_heartbeat?: number;
  /** Called for each message; without it, iterate the returned `PullConsumerMessages`. */
  callback?: (m: JsMsg) => void;
}

/** @internal nats.js refuses a pull limited both by count and by bytes. */
export function onlyOneLimit(o: { max_messages?: number; max_bytes?: number }): void {
  if (o.max_messages && o.max_bytes) {
    throw new InvalidArgumentError("max_messages and max_bytes are mutually exclusive");
  }
}

/** The 409 that ends a pull whose next message is larger than the bytes left to it. */
function tooBig(s: { code: number; description: string }): boolean {
  return s.code === 409 && s.description.toLowerCase() === "message size exceeds maxbytes";
}

/** A message's size as the server counts it against a pull's `max_bytes`: subject, reply,
 *  payload and the header block as it is written (`NATS/1.0`, `name: value` lines, a blank line). */
function size(m: JsMsg): number {
  let n = m.subject.length + m.reply.length + m.data.length;
  if (m.headers) {
    n += 12;
    for (const [k, v] of m.headers.toPairs()) n += k.length + v.length + 4;
  }
  return n;
}

/** The messages of a pull consumer's `consume()`: iterate them (or get them through the
 *  callback); `close()` stops pulling. A pull still open when it closes is answered later;
 *  what it then brings is handed back (`nak`) for another client rather than dropped. */
export class PullConsumerMessages extends Feed<JsMsg> {
  private listeners: Notifications[] = [];
  private room: (() => void) | null = null;
  private error: Error | undefined;
  private resolveClosed!: (e: void | Error) => void;
  private readonly whenClosed = new Promise<void | Error>((r) => (this.resolveClosed = r));
  private readonly max: number;
  private readonly maxBytes: number;
  /** Pull again once the iterator holds no more than these. */
  private readonly refillMsgs: number;
  private readonly refillBytes: number;
  /** What the iterator holds, in bytes (`size`). */
  private heldBytes = 0;
  /** The `max_bytes` of the last pull. */
  private askedBytes = 0;

  /** @internal */
  constructor(
    private readonly consumer: Consumer,
    private readonly opts: ConsumeOptions,
  ) {
    onlyOneLimit(opts);
    super(opts.callback, "pull consumer");
    this.max = Math.max(1, opts.max_messages ?? 100);
    this.maxBytes = Math.max(0, opts.max_bytes ?? 0);
    // below the limit by at least one, or a pull could ask for nothing
    this.refillMsgs = Math.min(opts.threshold_messages ?? Math.round(this.max * 0.75), this.max - 1);
    this.refillBytes = Math.min(opts.threshold_bytes ?? Math.round(this.maxBytes * 0.75), this.maxBytes - 1);
    void this.run();
  }

  /** Whether the iterator holds too much to pull more now. */
  private get full(): boolean {
    if (this.opts.callback) return false;
    return this.backlog > this.refillMsgs || (this.maxBytes > 0 && this.heldBytes > this.refillBytes);
  }

  /** A pull's limits: at most `messages`, and no more than the iterator has room for. */
  private limits(messages: number): { max_messages: number; max_bytes?: number } {
    const max_messages = Math.min(messages, this.max - this.backlog);
    if (this.maxBytes === 0) return { max_messages };
    this.askedBytes = this.maxBytes - this.heldBytes;
    return { max_messages, max_bytes: this.askedBytes };
  }

  private notify(n: ConsumerNotification): void {
    for (const l of this.listeners) l.push(n);
  }

  /** Pulls what is there at once, or waits for one message, again and again. */
  private async run(): Promise<void> {
    const o = this.opts;
    const group = { group: o.group, min_pending: o.min_pending, min_ack_pending: o.min_ack_pending, priority: o.priority };
    try {
      while (!this.stopped) {
        // an iterator that does not keep up: wait until it has taken some
        while (this.full && !this.stopped) {
          await new Promise<void>((r) => (this.room = r));
        }
        if (this.stopped) break;
        let got = await this.consumer.pull({ ...group, ...this.limits(this.max), no_wait: true });
        this.report(got);
        if (got.messages.length === 0 && !got.status && !this.stopped) {
          got = await this.consumer.pull({ ...group, ...this.limits(1), expires: o.expires ?? 30_000 });
          this.report(got);
        }
        if (this.stopped) {
          for (const m of got.messages) m.nak();
          break;
        }
        for (const m of got.messages) this.deliver(m);
        if (got.status && tooBig(got.status) && (got.messages.length > 0 || this.askedBytes < this.maxBytes)) {
          // the next message did not fit in what was left of `max_bytes`: pull again when
          // there is more room (as nats.js goes on); one larger than all of it ends below
          if (got.messages.length === 0 && this.maxBytes - this.heldBytes <= this.askedBytes) {
            await new Promise<void>((r) => (this.room = r));
          }
          continue;
        }
        // a refused pull (400), a consumer deleted under it (409) or gone (503), a message
        // larger than `max_bytes` (409): pulling again would only be refused again
        if (got.status) this.finish(new PullStatusError(got.status.code, got.status.description));
      }
    } catch (e) {
      if (!this.stopped) this.finish(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private report(got: { pinned?: string; unpinned?: boolean }): void {
    if (got.unpinned) this.notify({ type: "consumer_unpinned" });
    if (got.pinned) this.notify({ type: "consumer_pinned", id: got.pinned });
  }

  protected override queued(m: JsMsg): void {
    this.heldBytes += size(m);
  }

  protected override taken(m: JsMsg): void {
    this.heldBytes -= size(m);
    if (!this.full) this.wake();
  }

  /** Lets the pulling loop go on (it waits while the iterator holds too much). */
  private wake(): void {
    const r = this.room;
    this.room = null;
    r?.();
  }

  private finish(err?: Error): void {
    if (!this.end()) return;
    this.error = err;
    this.wake();
    for (const l of this.listeners.splice(0)) l.stop();
    this.resolveClosed(err);
  }

  /** What happens while consuming: the pin given (`consumer_pinned`) and lost
   *  (`consumer_unpinned`), as nats.js reports them. */
  status(): AsyncIterable<ConsumerNotification> {
    const n = new Notifications();
    if (this.stopped) n.stop();
    else this.listeners.push(n);
    return n;
  }

  stop(): void {
    this.finish();
  }

  /** Stops pulling; resolves as `closed()` does. */
  close(): Promise<void | Error> {
    this.finish();
    return this.whenClosed;
  }

  /** Resolves when consuming ended: with the error that ended it (a `PullStatusError` for a
   *  refused pull: 400 bad request, 409 consumer deleted, 503 no such consumer), or nothing
   *  when it was closed. */
  closed(): Promise<void | Error> {
    return this.whenClosed;
  }

  /** The error that ended consuming, if one did. */
  get lastError(): Error | undefined {
    return this.error;
  }
}
