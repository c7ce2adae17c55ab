import { describe, expect, it } from '@jest/globals';
import { WorkQueue, type Timers } from '../src/controller/workqueue.js';

/** Manual timers: advance() fires what is due. */
class FakeTimers implements Timers {
  t = 0;
  private pending: Array<{ at: number; fn: () => void; id: number }> = [];
  private seq = 0;
  setTimeout = (fn: () => void, ms: number): unknown => {
    const id = ++this.seq;
    this.pending.push({ at: this.t + ms, fn, id });
    return id;
  };
  clearTimeout = (h: unknown): void => {
    this.pending = this.pending.filter((p) => p.id !== h);
  };
  now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
    const due = this.pending.filter((p) => p.at <= this.t).sort((a, b) => a.at - b.at);
    this.pending = this.pending.filter((p) => p.at > this.t);
    due.forEach((p) => p.fn());
  }
}

describe('work queue', () => {
  it('de-duplicates a key added many times before it is processed', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.len()).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
  });

  it('never hands the same key to two workers; a key added while processing comes back after done()', async () => {
    const q = new WorkQueue();
    q.add('a');
    const first = await q.get();
    q.add('a'); // an event arrives mid-reconcile
    expect(q.len()).toBe(0);
    let second: string | undefined;
    const waiting = q.get().then((k) => (second = k));
    await Promise.resolve();
    expect(second).toBeUndefined();
    q.done(first!);
    await waiting;
    expect(second).toBe('a');
  });

  it('wakes a waiting worker on add', async () => {
    const q = new WorkQueue();
    const got = q.get();
    q.add('x');
    expect(await got).toBe('x');
  });

  it('backs off per key exponentially up to the cap, and forget() resets it', () => {
    const timers = new FakeTimers();
    const q = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 100, timers });
    expect([0, 1, 2, 3, 4, 5].map((n) => q.backoffMs(n))).toEqual([10, 20, 40, 80, 100, 100]);
    q.addRateLimited('a');
    q.addRateLimited('b');
    q.addRateLimited('b');
    expect(q.numRequeues('b')).toBe(2);
    timers.advance(9);
    expect(q.len()).toBe(0);
    timers.advance(1);
    expect(q.len()).toBe(2); // a after 10 ms, b's earlier pending 10 ms delay wins over its 20 ms
    q.forget('b');
    expect(q.numRequeues('b')).toBe(0);
  });

  it('addAfter keeps the earliest of two delays', () => {
    const timers = new FakeTimers();
    const q = new WorkQueue({ timers });
    q.addAfter('a', 1000);
    q.addAfter('a', 100);
    q.addAfter('a', 5000);
    timers.advance(100);
    expect(q.len()).toBe(1);
  });

  it('reports depth and waiting time through hooks', async () => {
    const timers = new FakeTimers();
    const depths: number[] = [];
    const waits: number[] = [];
    const q = new WorkQueue({
      timers,
      hooks: { depth: (n) => depths.push(n), waited: (s) => waits.push(s) },
    });
    q.add('a');
    timers.advance(250);
    await q.get();
    expect(depths).toEqual([1, 0]);
    expect(waits).toEqual([0.25]);
  });

  it('shutDown releases waiting workers and ignores new keys', async () => {
    const q = new WorkQueue();
    const waiting = q.get();
    q.shutDown();
    expect(await waiting).toBeUndefined();
    q.add('a');
    expect(q.len()).toBe(0);
  });
});
