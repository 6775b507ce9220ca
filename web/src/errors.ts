// Errors, as nats.js v3 names and shapes them: every error the bus throws or rejects with is
// an instance of one of these classes (the wasm side makes it so, see `errorClasses`), and
// its `name` is the class name.

/** The bus (or the link) is closed. */
export class ClosedConnectionError extends Error {
  constructor(message = "closed connection", opts?: ErrorOptions) {
    super(message, opts);
    this.name = "ClosedConnectionError";
  }
}

/** A request got no reply in time. */
export class TimeoutError extends Error {
  constructor(message = "timeout", opts?: ErrorOptions) {
    super(message, opts);
    this.name = "TimeoutError";
  }
}

/** Nobody is subscribed to a request's subject (the `503` status). */
export class NoRespondersError extends Error {
  constructor(message = "no responders", opts?: ErrorOptions) {
    super(message, opts);
    this.name = "NoRespondersError";
  }
}

/** A subject or queue that cannot be used. */
export class InvalidSubjectError extends Error {
  constructor(message = "invalid subject", opts?: ErrorOptions) {
    super(message, opts);
    this.name = "InvalidSubjectError";
  }
}

/** Options or an argument that cannot be used. */
export class InvalidArgumentError extends Error {
  constructor(message = "invalid argument", opts?: ErrorOptions) {
    super(message, opts);
    this.name = "InvalidArgumentError";
  }
}

/** A stream, consumer or bucket name that cannot be used (checked before any request). */
export class InvalidNameError extends Error {
  constructor(message = "invalid name", opts?: ErrorOptions) {
    super(message, opts);
    this.name = "InvalidNameError";
  }
}

/** A publish larger than the bus's `max_payload` (`open({ maxPayload })`, 1 MiB by default
 *  as nats-server): `size` and `max` in bytes. */
export class MaxPayloadError extends Error {
  size = 0;
  max = 0;
  constructor(message = "maximum payload exceeded", opts?: ErrorOptions) {
    super(message, opts);
    this.name = "MaxPayloadError";
  }
}

/** The browser's storage failed (IndexedDB). */
export class StorageError extends Error {
  constructor(message = "storage error", opts?: ErrorOptions) {
    super(message, opts);
    this.name = "StorageError";
  }
}

/** Another tab or worker of this origin owns the stored bus of this name: only one context
 *  writes a store (a Web Lock held for the owner's life). */
export class StorageLockedError extends Error {
  constructor(message = "storage in use by another tab or worker", opts?: ErrorOptions) {
    super(message, opts);
    this.name = "StorageLockedError";
  }
}

/** This context is a client of the bus's leader (another tab or worker owns the store):
 *  a call that needs the store's engine reached this context's own. The package sends
 *  every such call to the leader, so only a call made on the wasm bindings directly gets
 *  it. */
export class NotLeaderError extends Error {
  constructor(message = "this context is a client of the bus's leader", opts?: ErrorOptions) {
    super(message, opts);
    this.name = "NotLeaderError";
  }
}

/** A JetStream API error reply: `code` is the status (e.g. 404), `err_code` JetStream's own
 *  code (e.g. 10059 stream not found), both as the server sent them. */
export class JetStreamApiError extends Error {
  code = 0;
  err_code = 0;
  constructor(message = "jetstream api error", opts?: ErrorOptions) {
    super(message, opts);
    this.name = "JetStreamApiError";
  }
  /** The reply's status code (what nats.js v3 calls `status`). */
  get status(): number {
    return this.code;
  }
  /** The reply's error as the API carries it (nats.js `apiError()`). */
  apiError(): { code: number; err_code: number; description: string } {
    return { code: this.code, err_code: this.err_code, description: this.message };
  }
}

/** A status that ended a pull: a `400` (a bad request: no group, a wrong one…), a `409`
 *  (the consumer was deleted, too many pulls waiting…) or a `503` (no such consumer), as
 *  nats-server words it; `code` is the status. `fetch()` rejects with it on a 400,
 *  `consume()` ends with it on any of them. */
export class PullStatusError extends JetStreamApiError {
  constructor(code: number, description: string) {
    super(description || `pull ended with status ${code}`);
    this.name = "PullStatusError";
    this.code = code;
  }
}

/** No room to store a write (`err_code` 10023, "insufficient resources"): the bus's store
 *  limit (`open({ maxFileStore, maxMemoryStore })`) is reached, or the browser refused to
 *  store it (its quota for the origin, `QuotaExceededError`). Nothing it refused was
 *  acknowledged, and the stream is as it was before: see `bus.storage()` for the quota. */
export class StorageQuotaError extends JetStreamApiError {
  constructor(message = "insufficient resources", opts?: ErrorOptions) {
    super(message, opts);
    this.name = "StorageQuotaError";
  }
}

/** The link's server refused the credentials (see the link's `closed` status). */
export class AuthorizationError extends Error {
  constructor(message = "authorization violation", opts?: ErrorOptions) {
    super(message, opts);
    this.name = "AuthorizationError";
  }
}

/** @internal Every class by its `name`, handed to the wasm side once it is loaded. */
export const errorClasses = {
  ClosedConnectionError,
  TimeoutError,
  NoRespondersError,
  InvalidSubjectError,
  InvalidArgumentError,
  InvalidNameError,
  MaxPayloadError,
  StorageError,
  StorageLockedError,
  NotLeaderError,
  JetStreamApiError,
  StorageQuotaError,
  AuthorizationError,
};

/** Any error the bus throws (spelled out: `errorClasses` is kept out of the published
 *  types). */
export type BusError =
  | ClosedConnectionError
  | TimeoutError
  | NoRespondersError
  | InvalidSubjectError
  | InvalidArgumentError
  | InvalidNameError
  | MaxPayloadError
  | StorageError
  | StorageLockedError
  | JetStreamApiError
  | StorageQuotaError
  | AuthorizationError;

export function isNoResponders(e: unknown): boolean {
  return e instanceof Error && e.name === "NoRespondersError";
}

export function isTimeout(e: unknown): boolean {
  return e instanceof Error && e.name === "TimeoutError";
}
