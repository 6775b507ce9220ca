// A pull consumer's `consume()` (nats.js v3 `ConsumerMessages` of a pull consumer): pulls one
// after another, each with the priority-group options (`group`, `min_pending`,
// `min_ack_pending`, `priority`) and the consumer's pin, so a pinned client keeps its pin
// across pulls and a standby one takes it over when it moves. The engine serves the pulls
// (`Consumer.pull`); this only loops, reports pins as nats.js does, and ends on a pull the
// engine refuses.

import { Feed } from "./feed.js";
import { PullStatusError } from "./errors.js";
import type { Consumer, JsMsg, PriorityGroupOptions } from "./jetstream.js";
import { Notifications, type ConsumerNotification } from "./push.js";

/** `consume()` options of a pull consumer (nats.js `ConsumeMessages`). */
export interface ConsumeOptions extends PriorityGroupOptions {
  /** The most messages one pull asks for, and the most kept waiting for the iterator
   *  (default 100). */
  max_messages?: number;
  /** How long a pull waits for a message, in milliseconds (default 30000). */
  expires?: number;
  /** Called for each message; without it, iterate the returned `PullConsumerMessages`. */
  callback?: (m: JsMsg) => void;
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

  /** @internal */
  constructor(
    private readonly consumer: Consumer,
    private readonly opts: ConsumeOptions,
  ) {
    super(opts.callback, "pull consumer");
    this.max = Math.max(1, opts.max_messages ?? 100);
    void this.run();
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
        while (!this.opts.callback && this.backlog >= this.max && !this.stopped) {
          await new Promise<void>((r) => (this.room = r));
        }
        if (this.stopped) break;
        let got = await this.consumer.pull({ ...group, max_messages: this.max - this.backlog, no_wait: true });
        this.report(got);
        if (got.messages.length === 0 && !got.status && !this.stopped) {
          got = await this.consumer.pull({ ...group, max_messages: 1, expires: o.expires ?? 30_000 });
          this.report(got);
        }
        if (this.stopped) {
          for (const m of got.messages) m.nak();
          break;
        }
        for (const m of got.messages) this.deliver(m);
        // a refused pull (400), a consumer deleted under it (409) or gone (503): pulling
        // again would only be refused again
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

  protected override taken(): void {
    const r = this.room;
    this.room = null;
    r?.();
  }

  private finish(err?: Error): void {
    if (!this.end()) return;
    this.error = err;
    this.taken();
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
