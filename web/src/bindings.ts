// The wasm bindings the package runs on, chosen by the entry point the app imports: the full
// module (`edgebus`, pkg/) or the core NATS + link one (`edgebus/core`, pkg-core/, built
// without JetStream, KV and the object store). Only the entry imports a glue module, so a
// page loads one of the two; everything else reaches the bindings through here.

import type * as Full from "../pkg/edgebus_wasm.js";
import type { Bus as WasmBus } from "../pkg/edgebus_wasm.js";
import type { Bus } from "./bus.js";
import type { JetStreamClient, JetStreamManager } from "./jetstream.js";
import type { KV } from "./kv.js";
import type { Objm } from "./obj.js";

/** What the package calls outside a `Bus`; the JetStream helpers are the full module's only. */
export interface Bindings {
  default: typeof Full.default;
  open: typeof Full.open;
  setErrorClasses: typeof Full.setErrorClasses;
  deleteStorage?: typeof Full.deleteStorage;
  checkBucket?: typeof Full.checkBucket;
  checkName?: typeof Full.checkName;
  storedMsg?: typeof Full.storedMsg;
  pcgConfig?: typeof Full.pcgConfig;
  pcgMemberPlan?: typeof Full.pcgMemberPlan;
  pcgElasticStream?: typeof Full.pcgElasticStream;
  pcgSameGroup?: typeof Full.pcgSameGroup;
  pcgChangeMembers?: typeof Full.pcgChangeMembers;
}

/** How a `Bus` makes its JetStream, KV and object-store handles: given by the full entry
 *  only, so the core entry loads none of their modules. */
export interface Doors {
  jetstream(bus: Bus): JetStreamClient;
  jetstreamManager(bus: Bus): JetStreamManager;
  kv(bus: Bus, bucket: string): KV;
  objm(bus: Bus): Objm;
  /** The leader of a bus shared between tabs serves the engine calls of the others; a
   *  client sends them (`remote.ts`). Buses are shared in the full module only (the core
   *  one has no store to share), so the core entry loads none of it. */
  lead(bus: Bus): void;
  remoteEngine(bus: Bus): WasmBus;
}

let current: Bindings | null = null;
let currentDoors: Doors | null = null;

/** Set once by the entry point, before anything else runs. */
export function setBindings(b: Bindings, d?: Doors): void {
  current ??= b;
  currentDoors ??= d ?? null;
}

/** The JetStream, KV and object-store handles; the core entry has none, and says so. */
export function doors(what: string): Doors {
  if (!currentDoors) throw new Error(`edgebus/core has no JetStream, KV or object store (${what}): import "edgebus"`);
  return currentDoors;
}

export function wasm(): Bindings {
  if (!current) throw new Error("edgebus: no wasm bindings (import \"edgebus\" or \"edgebus/core\")");
  return current;
}

/** A helper of the full module; the core-only build has none, and says so. */
export type FullHelper =
  | "deleteStorage"
  | "checkBucket"
  | "checkName"
  | "storedMsg"
  | "pcgConfig"
  | "pcgMemberPlan"
  | "pcgElasticStream"
  | "pcgSameGroup"
  | "pcgChangeMembers";

export function full<K extends FullHelper>(name: K): NonNullable<Bindings[K]> {
  const f = wasm()[name];
  if (!f) throw new Error(`edgebus/core has no JetStream, KV or object store (${name}): import "edgebus"`);
  return f as NonNullable<Bindings[K]>;
}
