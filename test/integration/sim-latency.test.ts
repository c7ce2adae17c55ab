// The latency model: prefill cost per token, ITL slowed by concurrent prefills, KV-transfer cost, and the
// max-num-seqs limit with a FIFO waiting queue visible in vllm:num_requests_waiting.
// Timing assertions are lower bounds only (a busy machine can be slower, never faster).
import { afterAll, describe, expect, jest, test } from '@jest/globals';
import { decodeStepMs, kvTransferMs, prefillMs, Scheduler } from '../sim/latency-model.js';
import { startEngine, stopAll } from '../sim/harness.js';
import { metricValue, postJson, waitFor } from '../sim/http-client.js';

jest.setTimeout(120_000);

afterAll(async () => {
  await stopAll();
});

const settings = {
  prefillMsPerToken: 2,
  itlMs: 10,
  maxNumSeqs: 2,
  kvTransferMsPerToken: 0.5,
  interferenceFactor: 1.5,
};

describe('latency model (pure)', () => {
  test('costs scale with tokens; running prefills slow decode steps', () => {
    expect(prefillMs(settings, 100)).toBe(200);
    expect(kvTransferMs(settings, 100)).toBe(50);
    expect(decodeStepMs(settings, 0)).toBe(10);
    expect(decodeStepMs(settings, 2)).toBe(40);
  });

  test('scheduler admits maxNumSeqs, queues the rest FIFO, counts running prefills', async () => {
    const s = new Scheduler(() => settings);
    const a = await s.acquire(1);
    const b = await s.acquire(1);
    const order: string[] = [];
    const c = s.acquire(1).then((slot) => (order.push('c'), slot));
    const d = s.acquire(1).then((slot) => (order.push('d'), slot));
    await Promise.resolve();
    expect([s.numRunning, s.numWaiting]).toEqual([2, 2]);
    a.release();
    (await c).release();
    b.release();
    (await d).release();
    expect(order).toEqual(['c', 'd']);
    expect([s.numRunning, s.numWaiting, s.blocksInUse]).toEqual([0, 0, 0]);

    const slow = new Scheduler(() => ({ ...settings, prefillMsPerToken: 5 }));
    const running = slow.prefill(40);
    expect(slow.numPrefilling).toBe(1);
    expect(decodeStepMs(settings, slow.numPrefilling)).toBe(25);
    await running;
    expect(slow.numPrefilling).toBe(0);
  });

  test('an aborted waiter leaves the queue', async () => {
    const s = new Scheduler(() => ({ ...settings, maxNumSeqs: 1 }));
    const a = await s.acquire(1);
    const ac = new AbortController();
    const waiting = s.acquire(1, ac.signal);
    expect(s.numWaiting).toBe(1);
    ac.abort();
    await expect(waiting).rejects.toThrow('aborted');
    expect(s.numWaiting).toBe(0);
    a.release();
    expect(s.numRunning).toBe(0);
  });
});

describe('latency model in a running engine', () => {
  test('prefill time per token and ITL bound the request time from below', async () => {
    const e = await startEngine({ prefillMsPerToken: 10, itlMs: 20 });
    const t0 = Date.now();
    const r = await postJson(`${e.url}/v1/completions`, {
      prompt: Array.from({ length: 50 }, (_, i) => i + 5),
      max_tokens: 11,
    });
    expect(r.status).toBe(200);
    // 50 tokens * 10 ms prefill + 10 decode steps * 20 ms.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(700);
    await e.stop();
  });

  test('max-num-seqs 1: a second request waits (vllm:num_requests_waiting) until the first finishes', async () => {
    const e = await startEngine({ maxNumSeqs: 1, itlMs: 50 });
    const first = postJson(`${e.url}/v1/completions`, { prompt: 'one', max_tokens: 40 });
    await waitFor(async () => metricValue(await e.metrics(), 'vllm:num_requests_running') === 1);
    const second = postJson(`${e.url}/v1/completions`, { prompt: 'two', max_tokens: 2 });
    await waitFor(async () => metricValue(await e.metrics(), 'vllm:num_requests_waiting') === 1);
    expect((await first).status).toBe(200);
    expect((await second).status).toBe(200);
    const m = await e.metrics();
    expect(metricValue(m, 'vllm:num_requests_running') + metricValue(m, 'vllm:num_requests_waiting')).toBe(0);
    await e.stop();
  });

  test('a NIXL decode pays the KV transfer time per token', async () => {
    const [p, d] = await Promise.all([
      startEngine({ role: 'prefill', connector: 'nixl' }),
      startEngine({ role: 'decode', connector: 'nixl', kvTransferMsPerToken: 20 }),
    ]);
    const prompt = Array.from({ length: 40 }, (_, i) => i + 7);
    const pre = await postJson<{ kv_transfer_params: unknown }>(`${p.url}/v1/completions`, {
      prompt,
      max_tokens: 1,
      kv_transfer_params: { do_remote_decode: true },
    });
    const t0 = Date.now();
    const r = await postJson(`${d.url}/v1/completions`, {
      prompt,
      max_tokens: 1,
      kv_transfer_params: pre.body.kv_transfer_params,
    });
    expect(r.status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(800);
    await Promise.all([p.stop(), d.stop()]);
  });
});
