// A client that disconnects aborts every upstream leg still open, on both legs.
import { afterAll, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { startRouter, type RunningRouter } from '../../router/src/server.js';
import { configDoc } from '../../router/test/support/cluster.js';
import { metricValue, postJson, postSse, waitFor } from '../../router/test/support/http.js';
import { startEngine, type RunningEngine } from '../sim/harness.js';

jest.setTimeout(120_000);

const LONG = 'A client may leave at any moment and the engines must notice. '.repeat(30);

let router: RunningRouter;
let prefill: RunningEngine;
let decode: RunningEngine;
let lmPrefill: RunningEngine;
let lmDecode: RunningEngine;

beforeAll(async () => {
  router = await startRouter({ kvNotifyPort: 0, kvNotifyHost: '127.0.0.1', logLevel: 'silent' });
  [prefill, decode, lmPrefill, lmDecode] = await Promise.all([
    startEngine({ role: 'prefill', connector: 'nixl' }),
    startEngine({ role: 'decode', connector: 'nixl', itlMs: 50 }),
    startEngine({
      model: 'lm-model',
      role: 'prefill',
      connector: 'lmcache',
      lmcacheProxyHost: '127.0.0.1',
      lmcacheProxyPort: router.kvNotifyPort,
      lmcacheNotifyDelayMs: 60_000,
    }),
    startEngine({ model: 'lm-model', role: 'decode', connector: 'lmcache' }),
  ]);
  router.applyConfig(
    configDoc([
      { name: 'nixl', models: ['sim-model'], connector: 'nixl', prefill: [prefill], decode: [decode] },
      {
        name: 'lmcache',
        models: ['lm-model'],
        connector: 'lmcache',
        prefill: [lmPrefill],
        decode: [lmDecode],
        // Short, with fallback: a router that kept waiting would decode after 500 ms.
        policies: { kvReadyTimeoutMs: 500 },
      },
    ]),
  );
});

afterAll(async () => {
  await router?.stop();
  await Promise.all([prefill, decode, lmPrefill, lmDecode].map((e) => e?.stop()));
});

beforeEach(async () => {
  await Promise.all([prefill, decode, lmPrefill, lmDecode].map((e) => e.reset()));
});

async function inFlight(): Promise<number> {
  return metricValue(await (await fetch(`${router.url}/metrics`)).text(), 'router_in_flight_requests');
}

describe('client abort', () => {
  it('aborts the prefill leg and never sends the decode', async () => {
    await prefill.setFaults({ hang: true });
    const controller = new AbortController();
    const pending = postJson(
      `${router.url}/v1/completions`,
      { model: 'sim-model', prompt: LONG, max_tokens: 5 },
      {},
      controller.signal,
    ).catch((e: Error) => e);
    await waitFor('the prefill to arrive', async () => (await prefill.requests()).length === 1);
    controller.abort();
    await pending;
    await waitFor('the prefill leg to be aborted', async () => (await prefill.requests())[0]?.status === 499);
    expect(await decode.requests()).toEqual([]);
    await waitFor('no leg in flight', async () => (await inFlight()) === 0);
  });

  it('aborts the decode leg mid-stream', async () => {
    const controller = new AbortController();
    let chunks = 0;
    const pending = postSse(
      `${router.url}/v1/completions`,
      { model: 'sim-model', prompt: LONG, max_tokens: 500, stream: true },
      {
        signal: controller.signal,
        onPayload: () => {
          if (++chunks === 2) controller.abort();
        },
      },
    ).catch((e: Error) => e);
    await pending;
    await waitFor('the decode leg to be aborted', async () => (await decode.requests())[0]?.status === 499);
    expect((await prefill.requests())[0]).toMatchObject({ status: 200 });
    await waitFor('no leg in flight', async () => (await inFlight()) === 0);
    const m = await (await fetch(`${router.url}/metrics`)).text();
    expect(metricValue(m, 'router_client_aborts_total')).toBeGreaterThanOrEqual(2);
  });

  it('LMCache: stops waiting for KV and never sends the decode', async () => {
    const controller = new AbortController();
    const pending = postSse(
      `${router.url}/v1/completions`,
      { model: 'lm-model', prompt: LONG, max_tokens: 5, stream: true },
      { signal: controller.signal, onPayload: () => controller.abort() },
    );
    // The first token arrived (the prefill finished), then the client left.
    expect((await pending).payloads.length).toBeGreaterThanOrEqual(1);
    // Give a wrongly continuing router time to time out and send the decode leg.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await lmDecode.requests()).toEqual([]);
    expect((await lmPrefill.requests())[0]).toMatchObject({ leg: 'prefill', status: 200 });
    // It stopped waiting at once rather than running into the KV-ready timeout.
    const m = await (await fetch(`${router.url}/metrics`)).text();
    expect(metricValue(m, 'router_kv_ready_timeouts_total')).toBe(0);
    await waitFor('no leg in flight', async () => (await inFlight()) === 0);
  });
});
