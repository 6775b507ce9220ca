/** Values the bus pushes to the page — KV changes, object changes, link status events —
 *  handed to a callback, or queued for an async iterator until it asks. `stop()` ends the
 *  feed: iterations waiting for a value finish, and nothing more is delivered. The watchers
 *  differ only in what they push and what stopping releases, so they share this. */
export abstract class Feed<T> implements AsyncIterable<T> {
  private queue: T[] = [];
  private waiting: ((r: IteratorResult<T>) => void)[] = [];
  protected stopped = false;

  protected constructor(
    private readonly callback: ((v: T) => void) | undefined,
    /** Names the feed in the log line for a callback that throws. */
    private readonly what: string,
  ) {}

  /** Hands `v` to the callback or the next iteration (queued until one asks). */
  protected deliver(v: T): void {
    if (this.stopped) return;
    if (this.callback) {
      try {
        this.callback(v);
      } catch (e) {
        console.error(`edgebus: ${this.what} callback threw`, e);
      }
      return;
    }
    const w = this.waiting.shift();
    if (w) w({ value: v, done: false });
    else {
      this.queue.push(v);
      this.queued(v);
    }
  }

  /** Marks the feed stopped and finishes waiting iterations; false if it already was. */
  protected end(): boolean {
    if (this.stopped) return false;
    this.stopped = true;
    for (const w of this.waiting.splice(0)) w({ value: undefined, done: true });
    return true;
  }

  abstract stop(): void | Promise<void>;

  /** How many values wait for an iteration to take them (a producer that pulls its values,
   *  like a pull consumer, waits while there are many). */
  protected get backlog(): number {
    return this.queue.length;
  }

  /** Called when a value waits in the queue for an iteration. */
  protected queued(_v: T): void {}

  /** Called when an iteration takes queued value `v`. */
  protected taken(_v: T): void {}

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.queue.length > 0) {
          const value = this.queue.shift() as T;
          this.taken(value);
          return Promise.resolve({ value, done: false });
        }
        if (this.stopped) return Promise.resolve({ value: undefined, done: true });
        return new Promise((r) => this.waiting.push(r));
      },
      return: async () => {
        await this.stop();
        return { value: undefined, done: true };
      },
    };
  }
}
