// The Node half of the differential test (js-diff.test.mjs): playing the script over TCP,
// normalising replies, and finding the first difference between two transcripts.
//
// Run by hand against any server (nats-server included), printing every step that differs
// from the edgebus server:
//   node tests/node/js-diff-lib.mjs nats://127.0.0.1:4222 nats://127.0.0.1:4223 [settle ms]
// (each server with JetStream on and no streams; `settle` waits after each step's marker,
// since nats-server answers API requests from more than one goroutine, so its marker may
// overtake a step's last reply).
import path from "node:path";
import { fileURLToPath } from "node:url";
import { connect, headers as natsHeaders } from "@nats-io/transport-node";
import { runScript, plainMsg } from "./fixtures/js-script.js";

/** Plays the script through a server at `url` with the Node client. */
export async function playOverTcp(url, opts) {
  const nc = await connect({ servers: url });
  try {
    const bus = {
      subscribe(subject, onMsg) {
        const sub = nc.subscribe(subject, {
          callback: (_err, m) => {
            const pairs = [];
            if (m.headers) for (const [k, vs] of m.headers) for (const v of vs) pairs.push([k, v]);
            onMsg({
              subject: m.subject, reply: m.reply, status: m.headers?.code, description: m.headers?.description,
              headers: pairs, data: m.string(),
            });
          },
        });
        return () => sub.unsubscribe();
      },
      publish(subject, data, { reply, headers }) {
        let h;
        if (headers) {
          h = natsHeaders();
          for (const [k, v] of headers) h.append(k, v);
        }
        nc.publish(subject, data, { reply, headers: h });
      },
    };
    const results = await runScript(bus, opts);
    await nc.flush();
    return results;
  } finally {
    await nc.close();
  }
}

/** RFC 3339 in UTC, as the engine writes times: a placeholder replaces only a well-formed one,
 *  so a missing or malformed time still differs. */
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/;

/**
 * JSON fields that legitimately differ between two hosts playing the same script: each one
 * is a wall-clock reading, and the two hosts play the script at different moments, with
 * different clocks (the server reads the system clock in nanoseconds, the page `Date.now()`
 * in milliseconds):
 * - `created`: when a stream or consumer was made (stream and consumer info);
 * - `ts`: when the info reply was made;
 * - `first_ts` / `last_ts`: the times of a stream's first and last stored messages;
 * - `time`: a stored message's time (`STREAM.MSG.GET`);
 * - `last_active`: when a consumer last delivered or saw an ack.
 * Nothing else is normalised: server ids, names and the API level are not in these replies,
 * and every count, sequence, size and error must match.
 */
const TIME_KEYS = new Set(["created", "ts", "first_ts", "last_ts", "time", "last_active"]);

/** The header carrying a stored message's time on direct gets: a clock reading, as above. */
const TIME_HEADER = "Nats-Time-Stamp";

/** A copy of `v` with every time field replaced by a placeholder. */
function scrub(v) {
  if (Array.isArray(v)) return v.map(scrub);
  if (v && typeof v === "object") {
    const out = {};
    for (const [k, x] of Object.entries(v)) out[k] = TIME_KEYS.has(k) && RFC3339.test(x) ? "<time>" : scrub(x);
    return out;
  }
  return v;
}

/**
 * One reply with the clock readings replaced by placeholders: the JSON fields above, the
 * `Nats-Time-Stamp` header, and the timestamp token of an ack subject
 * (`$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time ns>.<pending>`),
 * the stored message's time in nanoseconds.
 */
export function normalise(m) {
  const headers = m.headers.map(([k, v]) => [k, k === TIME_HEADER && RFC3339.test(v) ? "<time>" : v]);
  let reply = m.reply;
  const t = reply.split(".");
  if (t[0] === "$JS" && t[1] === "ACK" && t.length === 9 && /^\d+$/.test(t[7])) {
    t[7] = "<time>";
    reply = t.join(".");
  }
  return { ...m, reply, headers, body: scrub(m.body) };
}

/** The steps' replies as plain, normalised data. */
export const transcript = (results) =>
  results.map(({ name, replies }) => ({ name, replies: replies.map((m) => normalise(plainMsg(m))) }));

/** Where two transcripts first differ: `{ step, path, a, b }`, or null. */
export function firstDifference(ta, tb) {
  return differences(ta, tb, true)[0] ?? null;
}

/** Every leaf where two transcripts differ, step by step (`first`: stop at the first). */
export function differences(ta, tb, first = false) {
  const out = [];
  for (let i = 0; i < Math.max(ta.length, tb.length); i++) {
    const step = ta[i]?.name ?? tb[i]?.name;
    diffValue(ta[i]?.replies, tb[i]?.replies, "replies", (d) => out.push({ step, ...d }), first);
    if (first && out.length) break;
  }
  return out;
}

/** Reports each differing leaf of `a` and `b` to `report`; true once one was reported and
 *  `first` asks to stop there. */
function diffValue(a, b, path, report, first) {
  const isObj = (v) => v !== null && typeof v === "object";
  if (isObj(a) && isObj(b) && Array.isArray(a) === Array.isArray(b)) {
    const keys = Array.isArray(a) ? [...Array(Math.max(a.length, b.length)).keys()] : new Set([...Object.keys(a), ...Object.keys(b)]);
    let found = false;
    for (const k of keys) {
      const p = Array.isArray(a) ? `${path}[${k}]` : `${path}.${k}`;
      if (diffValue(a[k], b[k], p, report, first)) {
        found = true;
        if (first) return true;
      }
    }
    return found;
  }
  if (Object.is(a, b)) return false;
  report({ path, a: JSON.stringify(a), b: JSON.stringify(b) });
  return true;
}

// The hand run: node js-diff-lib.mjs <edgebus url> <other url> [settle ms]
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [edgebus, other, settle] = process.argv.slice(2);
  const settleMs = Number(settle || 0);
  const a = transcript(await playOverTcp(edgebus, { settleMs }));
  const b = transcript(await playOverTcp(other, { settleMs }));
  for (const d of differences(a, b)) console.log(`${d.step}: ${d.path}\n  edgebus: ${d.a}\n  other:   ${d.b}`);
}
