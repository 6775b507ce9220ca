// Direct gets of many messages at once (nats.js v3 `jsm.direct.getBatch` /
// `getLastMessagesFor`): one `$JS.API.DIRECT.GET` request answered by a message per stored
// message, then an end-of-batch status (204). The stream answers it (core `direct.rs`);
// this collects the replies.

import type { Bus } from "./bus.js";
import { JetStreamApiError, TimeoutError } from "./errors.js";
import { StoredMsg } from "./jetstream.js";

interface Limits {
  /** The most messages to send. */
  batch?: number;
  max_bytes?: number;
  /** Only messages on this subject (filter). */
  next_by_subj?: string;
}

/** From a sequence or a time on (nats.js `DirectBatchOptions`). */
export type DirectBatchOptions = Limits & ({ seq: number; start_time?: never } | { start_time: Date | string; seq?: never });

/** The last message on each subject of `multi_last`, as of a sequence or time (nats.js
 *  `DirectLastFor`). */
export interface DirectLastFor extends Limits {
  multi_last: string[];
  up_to_seq?: number;
  up_to_time?: Date | string;
}

/** The messages, as an async iterable and an array. */
export type DirectBatch = AsyncIterable<StoredMsg> & { messages: StoredMsg[] };

const REQUEST_TIMEOUT_MS = 5_000;

function time(t: Date | string | undefined): string | undefined {
  return t instanceof Date ? t.toISOString() : t;
}

function batch(messages: StoredMsg[]): DirectBatch {
  return {
    messages,
    async *[Symbol.asyncIterator]() {
      yield* messages;
    },
  };
}

/** Sends the request and gathers the replies up to the end-of-batch status. */
function collect(bus: Bus, stream: string, body: object): Promise<DirectBatch> {
  const inbox = bus.newInbox();
  const got: StoredMsg[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sub.unsubscribe();
      reject(new TimeoutError(`direct get from ${stream}: no end of batch`));
    }, REQUEST_TIMEOUT_MS);
    const sub = bus.subscribe(inbox, {
      callback: (_err, m) => {
        const code = m.headers?.code ?? 0;
        if (code === 0) {
          got.push(StoredMsg.fromDirect(m));
          // a reply without Nats-Num-Pending answers a single get: there is no end marker
          if (m.headers?.has("Nats-Num-Pending")) return;
        }
        clearTimeout(timer);
        sub.unsubscribe();
        // 204: end of batch; 404: nothing (more) matches
        if (code === 0 || code === 204 || code === 404) {
          resolve(batch(got));
          return;
        }
        const e = new JetStreamApiError(m.headers?.description || `direct get failed (${code})`);
        e.code = code;
        reject(e);
      },
    });
    bus.publish(`$JS.API.DIRECT.GET.${stream}`, JSON.stringify(body), { reply: inbox });
  });
}

/** nats.js v3's `DirectStreamAPI` batch calls (the stream needs `allow_direct`). */
export class DirectStreamAPI {
  /** @internal */
  constructor(private readonly bus: Bus) {}

  /** Messages from `seq` (or `start_time`) on (at most `batch`, default 1024), optionally
   *  on one subject. */
  getBatch(stream: string, opts: DirectBatchOptions): Promise<DirectBatch> {
    this.bus.jsFlush();
    const { start_time, ...rest } = opts;
    // nats.js's default batch size
    return collect(this.bus, stream, { ...rest, batch: opts.batch || 1024, start_time: time(start_time) });
  }

  /** The last message on each of the subjects (wildcards allowed). */
  getLastMessagesFor(stream: string, opts: DirectLastFor): Promise<DirectBatch> {
    this.bus.jsFlush();
    const { up_to_time, ...rest } = opts;
    return collect(this.bus, stream, { ...rest, up_to_time: time(up_to_time) });
  }
}
