// Atomic batch publish (nats.js v3's `js.startBatch`, ADR-50): messages staged by the stream
// under one `Nats-Batch-Id`, stored all together when the last one commits, or not at all.
// The staging, checks and commit are the core's; this only numbers the messages.

import type { Bus } from "./bus.js";
import { JetStreamApiError } from "./errors.js";
import type { JetStreamClient, JetStreamPublishOptions, PubAck, StreamExpectations } from "./jetstream.js";
import { MsgHdrs, type Payload } from "./types.js";

/** The commit's acknowledgement: the last message's, with the batch id and its size. */
export interface BatchAck extends PubAck {
  batch: string;
  count: number;
}

/** A message's options in a batch (no `msgID`: the server refuses it in a batch's checks
 *  only when duplicated; `ack` waits for the server to have staged it). */
export interface BatchMessageOptions {
  headers?: MsgHdrs;
  expect?: Partial<Omit<StreamExpectations, "lastMsgID">>;
  ack?: boolean;
  timeout?: number;
}

/** The header each expectation is sent as (as `js.publish` sends them). */
const EXPECT: [keyof StreamExpectations, string][] = [
  ["streamName", "Nats-Expected-Stream"],
  ["lastSequence", "Nats-Expected-Last-Sequence"],
  ["lastSubjectSequence", "Nats-Expected-Last-Subject-Sequence"],
  ["lastMsgID", "Nats-Expected-Last-Msg-Id"],
];

/** Sets a publish's `msgID` and expectations on `h` as headers, for the messages that go
 *  out as plain publishes (a batch's), not through the bus's `jsPublish`. */
export function setPublishHeaders(h: MsgHdrs, opts: Pick<JetStreamPublishOptions, "msgID" | "expect">): MsgHdrs {
  if (opts.msgID) h.set("Nats-Msg-Id", opts.msgID);
  for (const [k, name] of EXPECT) {
    const v = opts.expect?.[k];
    if (v !== undefined) h.set(name, String(v));
  }
  return h;
}

/** An open batch (nats.js `Batch`). */
export class Batch {
  /** @internal */
  constructor(
    private readonly bus: Bus,
    private readonly js: JetStreamClient,
    readonly id: string,
    private n = 0,
  ) {}

  /** How many messages the batch has so far. */
  get count(): number {
    return this.n;
  }

  private headers(opts: BatchMessageOptions): MsgHdrs {
    const h = MsgHdrs.fromPairs(opts.headers?.toPairs() ?? []);
    h.set("Nats-Batch-Id", this.id);
    h.set("Nats-Batch-Sequence", String(++this.n));
    return h;
  }

  /** Stages the next message; with `ack`, resolves once the stream has staged it (rejects
   *  with the stream's error, which abandons the batch). */
  add(subject: string, payload?: Payload, opts: BatchMessageOptions = {}): void | Promise<void> {
    const h = setPublishHeaders(this.headers(opts), { expect: opts.expect });
    if (!opts.ack) {
      this.bus.publish(subject, payload, { headers: h });
      return;
    }
    return this.bus.request(subject, payload, { headers: h, timeout: opts.timeout }).then((m) => {
      if (m.data.length === 0) return;
      const e = (m.json() as { error?: { code: number; err_code: number; description: string } }).error;
      if (e) {
        const err = new JetStreamApiError(e.description);
        err.code = e.code;
        err.err_code = e.err_code;
        throw err;
      }
    });
  }

  /** Publishes the last message and commits the batch: resolves with the ack once all of it
   *  is stored, rejects (nothing stored) with the stream's error. */
  async commit(subject: string, payload?: Payload, opts: Omit<BatchMessageOptions, "ack"> = {}): Promise<BatchAck> {
    const h = this.headers(opts);
    h.set("Nats-Batch-Commit", "1");
    const o: JetStreamPublishOptions = { headers: h, expect: opts.expect, timeout: opts.timeout };
    return (await this.js.publish(subject, payload, o)) as BatchAck;
  }
}

/** Starts a batch with its first message (staged, acknowledged) — `js.startBatch`. */
export async function startBatch(
  bus: Bus,
  js: JetStreamClient,
  subject: string,
  payload?: Payload,
  opts: Omit<BatchMessageOptions, "ack"> = {},
): Promise<Batch> {
  const id = bus.newInbox().split(".").pop() ?? "";
  const b = new Batch(bus, js, id);
  await b.add(subject, payload, { ...opts, ack: true });
  return b;
}

/** An open batch taken up again — `js.resumeBatch`, not in nats.js: a persisted bus keeps the
 *  staged messages of an open batch across a reload (nats-server drops open batches when it
 *  stops), so an app that saved the batch's `id` and `count` continues it after the reload. */
export function resumeBatch(bus: Bus, js: JetStreamClient, id: string, count: number): Batch {
  return new Batch(bus, js, id, count);
}
