// Errors, named as nats.js names them.

/** Errors carry a `name` as in nats.js: `TimeoutError`, `NoRespondersError`,
 *  `JetStreamApiError` (with `code` and `err_code`), `ClosedConnectionError`,
 *  `InvalidSubjectError`, `InvalidArgumentError`, `StorageError`. */
export interface BusError extends Error {
  code?: number;
  err_code?: number;
}

export function isNoResponders(e: unknown): boolean {
  return e instanceof Error && e.name === "NoRespondersError";
}

export function isTimeout(e: unknown): boolean {
  return e instanceof Error && e.name === "TimeoutError";
}

