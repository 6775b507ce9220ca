// Fast-ingest batch publish (nats.js v3's `startFastIngest`, ADR-50, streams with
// `allow_batched`): each message is stored when it arrives, nothing is staged; the stream
// paces the publisher with flow acks and reports lost messages as gaps. The control
// information rides in each message's reply subject,
// `<inboxPrefix>.<batch>.<ackInterval>.<ok|fail>.<seq>.<op>.$FI`, which the engine reads and
// answers on (core `jetstream::fast_batch`); this side numbers the messages, keeps the
// publish window and reads the answers, as nats.js does.

import type { Bus, Subscription } from "./bus.js";
import { ClosedConnectionError, InvalidArgumentError, JetStreamApiError, TimeoutError } from "./errors.js";
import { setPublishHeaders, type BatchAck } from "./batch.js";
import type { JetStreamPublishOptions } from "./jetstream.js";
import type { Msg } from "./msg.js";
import { MsgHdrs, type Payload } from "./types.js";

/** How a fast batch runs (nats.js `FastIngestOptions`). */
export interface FastIngestOptions {
  /** A flow ack every this many messages, asked of the stream, which may lower it as it
   *  goes (default 10). */
  ackInterval: number;
  /** `true`: the batch goes on past lost messages (reported by `gaps()`); `false`: a gap
   *  ends it. Required: the caller chooses. */
  allowGaps: boolean;
  /** The reply inbox is `<inboxPrefix>.<batch>.>` (default `_INBOX`; no wildcards or
   *  whitespace). */
  inboxPrefix: string;
  /** How many ack intervals may be unacknowledged (1 to 3, default 2): `add()` waits for a
   *  flow ack beyond `ackInterval * maxOutstandingAcks` messages. */
  maxOutstandingAcks: number;
}

/** `startFastIngest`'s options: `allowGaps` and the first message's publish options. */
export type FastIngestStartOptions = { allowGaps: boolean } & Partial<FastIngestOptions> & JetStreamPublishOptions;

/** Where a batch stands (nats.js `FastIngestProgress`). */
export interface FastIngestProgress {
  /** This message's batch sequence (1-based). */
  batchSeq: number;
  /** The highest batch sequence the stream acknowledged so far. */
  ackSeq: number;
}

/** A lost range of batch sequences, `[lastSeq, seq)`. */
export interface FastIngestGap {
  lastSeq: number;
  seq: number;
}

const Op = { Start: 0, Append: 1, Final: 2, EOB: 3, Ping: 4 } as const;
type OpValue = (typeof Op)[keyof typeof Op];

/** nats.js's error for a call on a batch that has ended. */
const BATCH_CLOSED = "batch closed";

/** What the stream answers on a message's reply subject. */
interface Answer {
  type?: "ack" | "gap" | "err";
  seq?: number;
  msgs?: number;
  last_seq?: number;
  batch?: string;
  stream?: string;
  count?: number;
  duplicate?: boolean;
  error?: { code: number; err_code: number; description: string };
}

interface Waiter<T> {
  seq: number;
  op: OpValue;
  resolve(v: T): void;
  reject(e: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/** The gaps a batch reports, as an async iterable that ends with the batch. */
class Gaps implements AsyncIterable<FastIngestGap> {
  private queue: FastIngestGap[] = [];
  private waiting: ((r: IteratorResult<FastIngestGap>) => void)[] = [];
  private done = false;
  push(g: FastIngestGap): void {
    const w = this.waiting.shift();
    if (w) w({ value: g, done: false });
    else this.queue.push(g);
  }
  stop(): void {
    this.done = true;
    for (const w of this.waiting.splice(0)) w({ value: undefined, done: true });
  }
  [Symbol.asyncIterator](): AsyncIterator<FastIngestGap> {
    return {
      next: () => {
        const g = this.queue.shift();
        if (g) return Promise.resolve({ value: g, done: false });
        if (this.done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((r) => this.waiting.push(r));
      },
    };
  }
}

/** An open fast-ingest batch (nats.js `FastIngest`). */
export class FastIngest {
  /** The batch's id, in every reply subject and in the final ack's `batch`. */
  readonly batch: string;
  private seq = 0;
  private acked = 0;
  private ackInterval: number;
  private readonly gapMode: "ok" | "fail";
  private readonly sub: Subscription;
  private readonly waiters = new Map<string, Waiter<FastIngestProgress> | Waiter<BatchAck>>();
  private started: Waiter<void> | null = null;
  private readonly pings = new Map<string, Promise<FastIngestProgress>>();
  private closed = false;
  private readonly gapFeed = new Gaps();
  private resolveDone!: (a: BatchAck) => void;
  private rejectDone!: (e: Error) => void;
  private readonly whenDone = new Promise<BatchAck>((res, rej) => {
    this.resolveDone = res;
    this.rejectDone = rej;
  });

  /** @internal */
  constructor(
    private readonly bus: Bus,
    private readonly subject: string,
    private readonly o: FastIngestOptions,
    private readonly timeout: number,
  ) {
    // nobody may await done(): its rejection is reported through the calls that fail
    this.whenDone.catch(() => {});
    this.batch = bus.newInbox().split(".").pop() ?? "";
    this.ackInterval = o.ackInterval;
    this.gapMode = o.allowGaps ? "ok" : "fail";
    this.sub = bus.subscribe(`${o.inboxPrefix}.${this.batch}.>`, { callback: (_e, m) => this.onAnswer(m) });
  }

  private reply(op: OpValue, seq: number): string {
    return `${this.o.inboxPrefix}.${this.batch}.${this.o.ackInterval}.${this.gapMode}.${seq}.${op}.$FI`;
  }

  private send(subject: string, payload: Payload | undefined, reply: string, opts?: JetStreamPublishOptions): void {
    const h = opts && (opts.headers || opts.msgID || opts.expect) ? setPublishHeaders(MsgHdrs.fromPairs(opts.headers?.toPairs() ?? []), opts) : undefined;
    this.bus.publish(subject, payload, { reply, headers: h });
  }

  /** Waits for the answer to `reply`, ending the batch if it does not come in time. */
  private wait<T>(reply: string, seq: number, op: OpValue, ms: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => this.close(new TimeoutError(`fast batch: no answer to message ${seq}`)), ms);
      const w: Waiter<T> = { seq, op, resolve, reject, timer };
      if (op === Op.Start) this.started = w as unknown as Waiter<void>;
      else this.waiters.set(reply, w as unknown as Waiter<FastIngestProgress>);
    });
  }

  /** @internal Publishes the first message; resolves once the stream answered it. */
  start(payload: Payload | undefined, opts: JetStreamPublishOptions): Promise<void> {
    this.seq = 1;
    const reply = this.reply(Op.Start, 1);
    const p = this.wait<void>(reply, 1, Op.Start, opts.timeout ?? this.timeout);
    return this.sent(this.subject, payload, reply, opts, p);
  }

  private onAnswer(m: Msg): void {
    let a: Answer;
    try {
      a = m.json<Answer>();
    } catch {
      this.close(new JetStreamApiError("fast batch: unreadable answer"));
      return;
    }
    if (a.error) {
      // a refused message (`type: "err"`, or a pub ack with an error) ends the batch
      const e = new JetStreamApiError(a.error.description);
      e.code = a.error.code;
      e.err_code = a.error.err_code;
      this.close(e);
      return;
    }
    if (typeof a.batch === "string") {
      this.finish(m.subject, { stream: a.stream ?? "", seq: a.seq ?? 0, batch: a.batch, count: a.count ?? 0, ...(a.duplicate ? { duplicate: true } : {}) });
      return;
    }
    if (a.type === "gap") {
      this.gapFeed.push({ lastSeq: a.last_seq ?? 0, seq: a.seq ?? 0 });
      return;
    }
    if (typeof a.msgs === "number") this.ackInterval = a.msgs;
    if (typeof a.seq === "number" && a.seq > this.acked) this.acked = a.seq;
    this.settleStart();
    const exact = this.waiters.get(m.subject);
    if (exact && (exact.op === Op.Append || exact.op === Op.Ping)) {
      this.waiters.delete(m.subject);
      clearTimeout(exact.timer);
      (exact as Waiter<FastIngestProgress>).resolve({ batchSeq: exact.seq, ackSeq: this.acked });
    }
    // the window moved: adds waiting for room go on
    for (const [r, w] of this.waiters) {
      if (w.op === Op.Append && w.seq - this.acked < this.window()) {
        this.waiters.delete(r);
        clearTimeout(w.timer);
        (w as Waiter<FastIngestProgress>).resolve({ batchSeq: w.seq, ackSeq: this.acked });
      }
    }
  }

  private window(): number {
    return this.ackInterval * this.o.maxOutstandingAcks;
  }

  private settleStart(): void {
    const s = this.started;
    this.started = null;
    if (s) {
      clearTimeout(s.timer);
      s.resolve();
    }
  }

  /** The batch committed: the ack to whoever ended it, progress to the rest. */
  private finish(subject: string, ack: BatchAck): void {
    this.settleStart();
    for (const [r, w] of this.waiters) {
      clearTimeout(w.timer);
      if (w.op === Op.Final || w.op === Op.EOB) {
        if (r === subject) (w as Waiter<BatchAck>).resolve(ack);
        else w.reject(new Error(BATCH_CLOSED));
      } else {
        (w as Waiter<FastIngestProgress>).resolve({ batchSeq: w.seq, ackSeq: this.acked });
      }
    }
    this.waiters.clear();
    this.closed = true;
    this.resolveDone(ack);
    this.gapFeed.stop();
    this.sub.unsubscribe();
  }

  private close(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    const s = this.started;
    this.started = null;
    if (s) {
      clearTimeout(s.timer);
      s.reject(err);
    }
    for (const w of this.waiters.values()) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.waiters.clear();
    this.rejectDone(err);
    this.gapFeed.stop();
    this.sub.unsubscribe();
  }

  private refuseClosed<T>(): Promise<T> | null {
    if (this.closed) return Promise.reject(new ClosedConnectionError(BATCH_CLOSED));
    if (this.bus.isClosed()) {
      this.close(new ClosedConnectionError("the bus is closed"));
      return Promise.reject(new ClosedConnectionError(BATCH_CLOSED));
    }
    return null;
  }

  /** Publishes the next message; resolves at once while the window has room, else at the
   *  flow ack that makes room. */
  add(subject: string, payload?: Payload, opts?: JetStreamPublishOptions): Promise<FastIngestProgress> {
    const closed = this.refuseClosed<FastIngestProgress>();
    if (closed) return closed;
    const seq = ++this.seq;
    const reply = this.reply(Op.Append, seq);
    if (seq - this.acked < this.window()) {
      return this.sent(subject, payload, reply, opts, Promise.resolve({ batchSeq: seq, ackSeq: this.acked }));
    }
    const p = this.wait<FastIngestProgress>(reply, seq, Op.Append, opts?.timeout ?? this.timeout);
    return this.sent(subject, payload, reply, opts, p);
  }

  /** Publishes one message of the batch and returns `answer`; a publish the bus refuses (a
   *  bad subject, over `maxPayload`) rejects instead, and the batch ends as nothing
   *  follows a message that never left. */
  private sent<T>(subject: string, payload: Payload | undefined, reply: string, opts: JetStreamPublishOptions | undefined, answer: Promise<T>): Promise<T> {
    try {
      this.send(subject, payload, reply, opts);
    } catch (e) {
      answer.catch(() => {});
      const err = e instanceof Error ? e : new Error(String(e));
      this.close(err);
      return Promise.reject(err);
    }
    return answer;
  }

  /** Publishes the last message and commits the batch; resolves with the final ack. */
  last(subject: string, payload?: Payload, opts?: JetStreamPublishOptions): Promise<BatchAck> {
    const closed = this.refuseClosed<BatchAck>();
    if (closed) return closed;
    const seq = ++this.seq;
    const reply = this.reply(Op.Final, seq);
    const p = this.wait<BatchAck>(reply, seq, Op.Final, opts?.timeout ?? this.timeout);
    return this.sent(subject, payload, reply, opts, p);
  }

  /** Commits the batch without another message (an empty end-of-batch marker). */
  end(opts?: JetStreamPublishOptions): Promise<BatchAck> {
    const closed = this.refuseClosed<BatchAck>();
    if (closed) return closed;
    const seq = ++this.seq;
    const reply = this.reply(Op.EOB, seq);
    const p = this.wait<BatchAck>(reply, seq, Op.EOB, opts?.timeout ?? this.timeout);
    return this.sent(this.subject, undefined, reply, opts, p);
  }

  /** Asks the stream where the batch stands (and keeps it from idling out): a fresh
   *  progress, where `add()` gives what the client last heard. */
  ping(timeout = this.timeout): Promise<FastIngestProgress> {
    const closed = this.refuseClosed<FastIngestProgress>();
    if (closed) return closed;
    const reply = this.reply(Op.Ping, this.seq);
    // one ping per sequence: the stream answers that reply subject once
    const same = this.pings.get(reply);
    if (same) return same;
    const p = this.wait<FastIngestProgress>(reply, this.seq, Op.Ping, timeout);
    this.pings.set(reply, p);
    const forget = () => this.pings.delete(reply);
    p.then(forget, forget);
    return this.sent(this.subject, undefined, reply, undefined, p);
  }

  /** Resolves with the final ack when the batch ends (`last`, `end`, or the stream ending
   *  it on a gap), rejects if it failed. */
  done(): Promise<BatchAck> {
    return this.whenDone;
  }

  /** The gaps the stream reports; the iteration ends with the batch. */
  gaps(): AsyncIterable<FastIngestGap> {
    return this.gapFeed;
  }
}

/** `js.startFastIngest`: checks the options, publishes the first message. */
export async function startFastIngest(
  bus: Bus,
  subject: string,
  payload: Payload | undefined,
  opts: FastIngestStartOptions,
): Promise<FastIngest> {
  const { ackInterval, allowGaps, inboxPrefix, maxOutstandingAcks, ...publish } = opts;
  if (typeof allowGaps !== "boolean") throw new InvalidArgumentError("allowGaps must be true or false");
  const prefix = inboxPrefix ?? "_INBOX";
  if (!prefix || /[\s*>]/.test(prefix)) {
    throw new InvalidArgumentError(`inboxPrefix must be non-empty, no wildcards or whitespace (got "${prefix}")`);
  }
  const o: FastIngestOptions = {
    ackInterval: Math.max(1, Math.floor(ackInterval ?? 10)),
    allowGaps,
    inboxPrefix: prefix,
    maxOutstandingAcks: Math.min(3, Math.max(1, maxOutstandingAcks ?? 2)),
  };
  const fi = new FastIngest(bus, subject, o, publish.timeout ?? 5000);
  await fi.start(payload, publish);
  return fi;
}
