// A de-duplicating work queue with per-key exponential backoff (client-go semantics): a key is
// queued at most once, never processed by two workers at once, and a key added while it is being
// processed is processed again afterwards. The clock (timers) is injectable for tests.

export interface WorkQueueHooks {
  /** Queue length changed (workqueue_depth). */
  depth?: (n: number) => void;
  added?: () => void;
  retried?: () => void;
  /** Seconds a key waited in the queue before a worker took it. */
  waited?: (seconds: number) => void;
}

export interface Timers {
  setTimeout: (fn: () => void, ms: number) => unknown;
  clearTimeout: (handle: unknown) => void;
  now: () => number;
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  now: () => Date.now(),
};

export interface WorkQueueOptions {
  /** First retry delay of a failing key (controller-runtime: 5 ms). */
  baseDelayMs?: number;
  /** Longest retry delay (controller-runtime: 1000 s; shorter here so a fix shows up sooner). */
  maxDelayMs?: number;
  hooks?: WorkQueueHooks;
  timers?: Timers;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly delayed = new Map<string, { at: number; handle: unknown }>();
  private readonly addedAt = new Map<string, number>();
  private waiters: Array<(key: string | undefined) => void> = [];
  private shuttingDown = false;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly hooks: WorkQueueHooks;
  private readonly timers: Timers;

  constructor(opts: WorkQueueOptions = {}) {
    this.baseDelayMs = opts.baseDelayMs ?? 5;
    this.maxDelayMs = opts.maxDelayMs ?? 300_000;
    this.hooks = opts.hooks ?? {};
    this.timers = opts.timers ?? realTimers;
  }

  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.hooks.added?.();
    this.dirty.add(key);
    this.addedAt.set(key, this.timers.now());
    // Picked up again by done() when the current processing finishes.
    if (this.processing.has(key)) return;
    const waiter = this.waiters.shift();
    if (waiter) this.hand(key, waiter);
    else {
      this.queue.push(key);
      this.hooks.depth?.(this.queue.length);
    }
  }

  /** Adds the key after a delay; an earlier pending delay for the same key wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) return this.add(key);
    const at = this.timers.now() + delayMs;
    const pending = this.delayed.get(key);
    if (pending && pending.at <= at) return;
    if (pending) this.timers.clearTimeout(pending.handle);
    const handle = this.timers.setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, delayMs);
    this.delayed.set(key, { at, handle });
  }

  /** Re-adds a failed key after its backoff: base * 2^failures, capped. */
  addRateLimited(key: string): void {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    this.hooks.retried?.();
    this.addAfter(key, this.backoffMs(n));
  }

  backoffMs(failures: number): number {
    return Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.min(failures, 40));
  }

  /** Clears the key's failure count after a success. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** The next key; resolves undefined once the queue is shut down. */
  get(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    const key = this.queue.shift();
    if (key !== undefined) {
      this.hooks.depth?.(this.queue.length);
      return Promise.resolve(this.take(key));
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Marks the key processed; if it was added meanwhile it goes back in the queue. */
  done(key: string): void {
    this.processing.delete(key);
    if (!this.dirty.has(key) || this.shuttingDown) return;
    const waiter = this.waiters.shift();
    if (waiter) this.hand(key, waiter);
    else {
      this.queue.push(key);
      this.hooks.depth?.(this.queue.length);
    }
  }

  len(): number {
    return this.queue.length;
  }

  shutDown(): void {
    this.shuttingDown = true;
    for (const { handle } of this.delayed.values()) this.timers.clearTimeout(handle);
    this.delayed.clear();
    for (const w of this.waiters.splice(0)) w(undefined);
  }

  private take(key: string): string {
    this.dirty.delete(key);
    this.processing.add(key);
    const t = this.addedAt.get(key);
    if (t !== undefined) this.hooks.waited?.((this.timers.now() - t) / 1000);
    this.addedAt.delete(key);
    return key;
  }

  private hand(key: string, waiter: (key: string | undefined) => void): void {
    waiter(this.take(key));
  }
}
