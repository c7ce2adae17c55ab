// least_loaded uses live engine stats: load the router cannot see (requests sent to an engine by
// someone else) must still steer traffic away, through the scraped vllm:num_requests_* gauges.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { startRouter, type RunningRouter } from '../../router/src/server.js';
import { configDoc } from '../../router/test/support/cluster.js';
import { metricValue, postJson, postSse, waitFor } from '../../router/test/support/http.js';
import { startEngine, type RunningEngine } from '../sim/harness.js';

jest.setTimeout(120_000);

let router: RunningRouter;
let prefill: RunningEngine;
let busy: RunningEngine;
let idle: RunningEngine;

beforeAll(async () => {
  [prefill, busy, idle] = await Promise.all([
    startEngine({ role: 'prefill', connector: 'nixl' }),
    startEngine({ role: 'decode', connector: 'nixl', itlMs: 50 }),
    startEngine({ role: 'decode', connector: 'nixl', itlMs: 50 }),
  ]);
  router = await startRouter({ kvNotifyPort: 0, engineStatsIntervalMs: 100, logLevel: 'silent' });
});

afterAll(async () => {
  await router?.stop();
  await Promise.all([prefill?.stop(), busy?.stop(), idle?.stop()]);
});

async function decodersUsed(n: number, body: Record<string, unknown>): Promise<string[]> {
  await Promise.all([busy.reset(), idle.reset()]);
  for (let i = 0; i < n; i++) {
    const r = await postJson(`${router.url}/v1/completions`, body);
    expect(r.status).toBe(200);
  }
  const onBusy = (await busy.requests()).map(() => 'busy');
  const onIdle = (await idle.requests()).map(() => 'idle');
  return [...onBusy, ...onIdle].sort();
}

describe('least_loaded', () => {
  it('sends traffic to the engine whose scraped queue is shorter', async () => {
    const background = new AbortController();
    // Four long streams straight to one engine, past the router.
    const streams = Array.from({ length: 4 }, () =>
      postSse(
        `${busy.url}/v1/completions`,
        { prompt: 'hold a slot', max_tokens: 2000, stream: true },
        { signal: background.signal },
      ).catch(() => undefined),
    );
    try {
      await waitFor(
        'the busy engine to report 4 running',
        async () => metricValue(await busy.metrics(), 'vllm:num_requests_running') >= 4,
      );

      router.applyConfig(
        configDoc(
          [
            {
              connector: 'nixl',
              routingThreshold: 1_000_000,
              loadBalancing: 'least_loaded',
              prefill: [prefill],
              decode: [busy, idle],
            },
          ],
          1,
        ),
      );
      // Wait until the router has scraped both engines.
      await waitFor('a scrape of both engines', async () => {
        const m = await (await fetch(`${router.url}/metrics`)).text();
        return (
          metricValue(m, 'router_engine_scraped_load', { url: busy.url }) >= 4 &&
          m.includes(`router_engine_scraped_load{url="${idle.url}"}`)
        );
      });
      expect(await decodersUsed(6, { prompt: 'short', max_tokens: 1 })).toEqual(Array(6).fill('idle'));

      // The same traffic under round_robin alternates: the difference is the live stats.
      router.applyConfig(
        configDoc(
          [
            {
              connector: 'nixl',
              routingThreshold: 1_000_000,
              loadBalancing: 'round_robin',
              prefill: [prefill],
              decode: [busy, idle],
            },
          ],
          2,
        ),
      );
      expect(await decodersUsed(6, { prompt: 'short', max_tokens: 1 })).toEqual([
        ...Array(3).fill('busy'),
        ...Array(3).fill('idle'),
      ]);
    } finally {
      background.abort();
      await Promise.all(streams);
    }
  });
});
