// Real engines dying under the router: a SIGKILLed prefiller (its whole process group, EngineCore
// included) is served around under `fallback` and answered 503 under `fail`; with the decoder killed
// too, every request gets a clear 503. The router stays up throughout.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { startRouter, type RunningRouter } from '../../router/src/server.js';
import { configDoc } from '../../router/test/support/cluster.js';
import { getJson, metricValue } from '../../router/test/support/http.js';
import { call, counts, delta, freshPrompt, LONG_CHARS, requestBody, SHORT_CHARS } from './support.js';
import { SERVED_MODEL, startNixlPair, type NixlPair, engineLogDir } from './vllm-engine.js';

jest.setTimeout(240_000);

let pair: NixlPair;
let router: RunningRouter;
let generation = 1;

function apply(prefillFailurePolicy: 'fallback' | 'fail'): void {
  const doc = configDoc(
    [
      {
        name: 'default/real-faults',
        models: [SERVED_MODEL],
        connector: 'nixl',
        routingThreshold: 64,
        prefill: [pair.prefill],
        decode: [pair.decode],
        policies: { prefillFailurePolicy, prefillTimeouts: { connectMs: 2000, firstByteMs: 120_000 } },
      },
    ],
    ++generation,
  );
  expect(router.applyConfig(doc).ok).toBe(true);
}

const routerMetrics = async (): Promise<string> => (await fetch(`${router.url}/metrics`)).text();

const logs = engineLogDir('real-faults');

beforeAll(async () => {
  pair = await startNixlPair({ logDir: logs.path, prefix: 'faults' });
  router = await startRouter({ kvNotifyPort: 0, logLevel: 'silent' });
  apply('fallback');
}, 420_000);

afterAll(async () => {
  await router?.stop({ graceMs: 1000 });
  await pair?.stop();
  logs.remove();
});

describe('engines killed', () => {
  it('before any fault, a long request is disaggregated', async () => {
    const d0 = await counts(pair.decode);
    const r = await call(router.url, 'completions', requestBody('completions', freshPrompt(LONG_CHARS)));
    expect(r.status).toBe(200);
    expect(delta(await counts(pair.decode), d0).external).toBeGreaterThan(0);
  });

  it('prefiller killed, policy fallback: the long request is served direct by the decoder', async () => {
    await pair.prefill.kill();
    const before = await routerMetrics();
    const d0 = await counts(pair.decode);
    const body = requestBody('completions', freshPrompt(LONG_CHARS));
    const r = await call(router.url, 'completions', body);
    const d = delta(await counts(pair.decode), d0);
    expect(r.status).toBe(200);
    expect(r.text.length).toBeGreaterThan(0);
    expect(d.finished).toBe(1);
    expect(d.external).toBe(0); // no KV came over NIXL: the decoder prefilled it
    expect(d.local).toBeGreaterThan(64);
    const after = await routerMetrics();
    expect(metricValue(after, 'router_fallbacks_total') - metricValue(before, 'router_fallbacks_total')).toBe(
      1,
    );
  });

  it('prefiller killed, policy fail: 503 with the reason; short requests still served', async () => {
    apply('fail');
    const r = await call(router.url, 'completions', requestBody('completions', freshPrompt(LONG_CHARS)));
    expect(r.status).toBe(503);
    const err = r.json!['error'] as Record<string, unknown>;
    expect(err['code']).toBe('PREFILL_UNAVAILABLE');
    expect(String(err['message'])).toMatch(/prefill/i);
    const short = await call(router.url, 'completions', requestBody('completions', freshPrompt(SHORT_CHARS)));
    expect(short.status).toBe(200);
  });

  it('decoder killed too: a clear 503 on both paths, and the router stays up', async () => {
    apply('fallback');
    await pair.decode.kill();
    for (const [size, stream] of [
      [SHORT_CHARS, false],
      [SHORT_CHARS, true],
      [LONG_CHARS, false],
    ] as const) {
      const r = await call(
        router.url,
        'completions',
        requestBody('completions', freshPrompt(size), { stream }),
      );
      expect(r.status).toBe(503);
      if (!stream) {
        const err = r.json!['error'] as Record<string, unknown>;
        expect(String(err['code'])).toMatch(/^(DECODE_UNAVAILABLE|PREFILL_UNAVAILABLE)$/);
        expect(String(err['message']).length).toBeGreaterThan(10);
      }
    }
    expect((await getJson(`${router.url}/health`)).status).toBe(200);
  });
});
