// The bus's link to a server (`bus.connect`): options, status events, the `Link` handle.

import type { Bus } from "./bus.js";
import { Feed } from "./feed.js";

export interface ConnectOptions {
  /** Subjects (wildcards allowed) whose local publishes go to the server. While the link is
   *  down they wait in the outbox (in IndexedDB with `storage: "indexeddb"`), each stamped
   *  with a `Nats-Msg-Id` so a stream on the server drops a resent one. */
  export?: string[];
  /** Subjects the server's publishes on come into the page. */
  import?: string[];
  user?: string;
  pass?: string;
  token?: string;
  /** Connection name shown by the server (default: the bus name). */
  name?: string;
  /** Milliseconds before the first retry (default 250); doubles with jitter up to... */
  reconnectDelayMin?: number;
  /** ...this (default 5000). */
  reconnectDelayMax?: number;
  /** Milliseconds between keepalive PINGs while connected (default 120000, as nats.js). */
  pingInterval?: number;
  /** PINGs left unanswered before the link counts as dead and reconnects (default 2). */
  maxPingOut?: number;
  /** Milliseconds a connection attempt may take up to the server's first PONG before it is
   *  abandoned and retried (default 20000). */
  timeout?: number;
}

/** A change of the link's state, with the outbox size at that moment. */
export interface LinkStatus {
  /** `outbox`: the outbox grew or drained; `rejected`: an exported publish was over the
   *  server's `max_payload`, so it was not sent (and not confirmed). */
  type: "connected" | "disconnected" | "reconnecting" | "closed" | "outbox" | "rejected";
  /** Publishes kept until the server confirms them. */
  outbox: number;
  url: string;
  /** `connected`: the server's name. */
  server?: string;
  /** `disconnected`, `reconnecting`: why, if known; `closed`: why the link gave up (the
   *  server refused the credentials twice in a row, as nats.js stops); `rejected`: the
   *  limit it broke. */
  error?: string;
  /** `closed` after refused credentials: the same reason as an `AuthorizationError`. */
  err?: Error;
  /** `reconnecting`: milliseconds until the attempt, and its number. */
  delay?: number;
  attempt?: number;
  /** `rejected`: the publish's subject, its size (headers and payload) and the limit. */
  subject?: string;
  size?: number;
  max?: number;
}

export interface LinkInfo {
  url: string;
  state: "connected" | "connecting" | "reconnecting" | "disconnected" | "closed";
  server: string;
  outbox: number;
  sent: number;
  received: number;
  reconnects: number;
  exports: string[];
  imports: string[];
  error: string | null;
}

/** Status events as an async iterator (or a callback); `stop()` ends it. */
export class StatusWatcher extends Feed<LinkStatus> {
  constructor(
    private readonly listeners: Set<StatusWatcher>,
    callback?: (s: LinkStatus) => void,
  ) {
    super(callback, "status");
    listeners.add(this);
  }

  /** @internal */
  push(s: LinkStatus): void {
    this.deliver(s);
  }

  stop(): void {
    if (this.end()) this.listeners.delete(this);
  }
}

/** The bus's link to a server (see `Bus.connect`). */
export class Link {
  /** @internal */
  constructor(private readonly bus: Bus) {}

  /** `{ url, state, server, outbox, sent, received, reconnects, exports, imports, error }`. */
  info(): LinkInfo {
    return this.bus.raw.linkInfo();
  }
  /** Status events (connected, disconnected, reconnecting, closed, outbox, rejected) with
   *  the outbox size. */
  status(opts: { callback?: (s: LinkStatus) => void } = {}): StatusWatcher {
    return this.bus.status(opts);
  }
  /** Resolves true once every kept publish was confirmed by the server (false on timeout). */
  flush(opts: { timeout?: number } = {}): Promise<boolean> {
    return this.bus.raw.linkFlush(opts.timeout);
  }
  /** Ends the link; the outbox stays stored for the next `connect`. */
  async close(): Promise<void> {
    await this.bus.raw.linkClose();
    if (this.bus.link === this) this.bus.link = null;
  }
}

/** A stream publish waiting for the end of the current task, to go with the others. */
