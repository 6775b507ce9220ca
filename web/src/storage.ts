// The browser's storage for the bus: how much the origin uses and may use, and whether its
// data survives the browser's clean-ups (the StorageManager API).

/** What `bus.storage()` reports (bytes, from `navigator.storage.estimate()`). */
export interface StorageEstimate {
  /** Bytes this origin stores (every IndexedDB database, caches, …: the browser's count). */
  usage: number;
  /** Bytes the browser lets this origin store; a commit past it is refused. */
  quota: number;
  /** Whether the browser keeps the origin's data under storage pressure (`persist`). */
  persisted: boolean;
}

/** The StorageManager, where this context has one (not in Node, nor on plain http:
 *  origins other than localhost). */
function manager(): StorageManager | undefined {
  return typeof navigator === "object" ? navigator.storage : undefined;
}

/** Asks the browser to keep the origin's data under storage pressure; whether it agreed. */
export async function persist(): Promise<boolean> {
  const m = manager();
  return m?.persist ? m.persist() : false;
}

/** The origin's usage and quota (zeros where the browser cannot tell). */
export async function estimate(): Promise<StorageEstimate> {
  const m = manager();
  if (!m?.estimate) return { usage: 0, quota: 0, persisted: false };
  const [e, persisted] = await Promise.all([m.estimate(), m.persisted ? m.persisted() : Promise.resolve(false)]);
  return { usage: e.usage ?? 0, quota: e.quota ?? 0, persisted };
}
