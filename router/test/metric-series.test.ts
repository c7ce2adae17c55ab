// Per-endpoint metric series follow the config: a removed endpoint's series go on the next apply,
// so cardinality tracks the live pods, not every pod ever seen (issue 13 #10).
import { describe, expect, it } from '@jest/globals';
import { startRouter } from '../src/server.js';

const doc = (generation: number, ids: string[]) => ({
  generation,
  clusters: [
    {
      name: 'default/m',
      models: ['m'],
      connector: 'nixl',
      routingThreshold: 0,
      prefill: { endpoints: [] },
      decode: { endpoints: ids.map((id) => ({ id, url: `http://127.0.0.1:${id === 'pod-a' ? 9 : 10}` })) },
    },
  ],
});

describe('per-endpoint series', () => {
  it('are dropped once their endpoint leaves the config; live ones and in-flight gauges stay', async () => {
    const router = await startRouter({ kvNotifyPort: 0, logLevel: 'silent' });
    try {
      expect(router.applyConfig(doc(1, ['pod-a', 'pod-b'])).ok).toBe(true);
      router.metrics.upstreamErrors.inc({ endpoint: 'pod-a', role: 'decode', kind: 'connect' });
      router.metrics.upstreamErrors.inc({ endpoint: 'pod-b', role: 'decode', kind: 'connect' });
      router.metrics.inFlight.set({ endpoint: 'pod-a', role: 'decode' }, 1); // still serving
      router.metrics.engineLoad.set({ url: 'http://127.0.0.1:9' }, 3);
      expect(router.applyConfig(doc(2, ['pod-b'])).ok).toBe(true);
      const series = async (): Promise<string> => router.metrics.registry.metrics();
      for (
        let i = 0;
        i < 50 && (await series()).includes('router_upstream_errors_total{endpoint="pod-a"');
        i++
      ) {
        await new Promise((r) => setTimeout(r, 10));
      }
      const text = await series();
      expect(text).not.toMatch(/router_upstream_errors_total\{endpoint="pod-a"/);
      expect(text).toMatch(/router_upstream_errors_total\{endpoint="pod-b"/);
      expect(text).not.toMatch(/router_engine_scraped_load\{url="http:\/\/127\.0\.0\.1:9"\}/);
      expect(text).toMatch(/router_in_flight_requests\{endpoint="pod-a",role="decode"\} 1/);
    } finally {
      await router.stop({ graceMs: 100 });
    }
  });
});
