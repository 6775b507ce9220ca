// edgebus/core: the bus with core NATS (publish, subscribe, queue groups, request/reply) and
// the link to a server, over a wasm module built without JetStream, KV and the object store
// (pkg-core/, a fraction of the full module's size). Import "edgebus" for those.

import * as bindings from "../pkg-core/edgebus_wasm.js";
import { setBindings, type Bindings } from "./bindings.js";

// The core module has the full module's shape minus the JetStream helpers (which
// `Bindings` marks optional) and minus the JetStream methods of its `Bus`, which the package
// only calls from the JetStream, KV and object-store classes this entry does not export.
setBindings(bindings as unknown as Bindings);

export { load, open, Bus, Subscription } from "./bus.js";
export type { OpenOptions, PublishOptions, RequestOptions, SubscriptionOptions, BatchSubscriptionOptions } from "./bus.js";
export {
  isNoResponders,
  isTimeout,
  ClosedConnectionError,
  TimeoutError,
  NoRespondersError,
  InvalidSubjectError,
  InvalidArgumentError,
  MaxPayloadError,
  AuthorizationError,
} from "./errors.js";
export type { BusError } from "./errors.js";
export { MsgHdrs, headers, Match, canonicalMIMEHeaderKey } from "./types.js";
export type { Payload } from "./types.js";
export { Msg, MsgBatch } from "./msg.js";
export { Link, StatusWatcher } from "./link.js";
export type { ConnectOptions, LinkStatus, LinkInfo } from "./link.js";
