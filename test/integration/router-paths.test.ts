// Direct and NIXL paths end to end: router in-process, engines as simulator processes.
import { afterAll, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { startRouter, type RunningRouter } from '../../router/src/server.js';
import { configDoc } from '../../router/test/support/cluster.js';
import {
  completionText,
  getJson,
  metricValue,
  postJson,
  postSse,
  streamText,
  waitFor,
} from '../../router/test/support/http.js';
import { startEngine, type RunningEngine } from '../sim/harness.js';

jest.setTimeout(120_000);

const LONG_PROMPT = 'The quick brown fox jumps over the lazy dog. '.repeat(40); // ~450 estimated tokens
const SHORT_PROMPT = 'Hi there';

let prefill: RunningEngine;
let decode: RunningEngine;
let reference: RunningEngine;
let router: RunningRouter;

beforeAll(async () => {
  // The prefiller listens on 127.0.0.2 but advertises vLLM's default side channel host "localhost":
  // a decoder can only pull its blocks if the router replaces that loopback host.
  [prefill, decode, reference] = await Promise.all([
    startEngine({ host: '127.0.0.2', role: 'prefill', connector: 'nixl', itlMs: 1 }),
    startEngine({ role: 'decode', connector: 'nixl', itlMs: 1 }),
    startEngine({ connector: 'none' }),
  ]);
  router = await startRouter({ kvNotifyPort: 0, logLevel: 'silent' });
  const r = router.applyConfig(
    configDoc([{ connector: 'nixl', routingThreshold: 64, prefill: [prefill], decode: [decode] }]),
  );
  expect(r.ok).toBe(true);
});

afterAll(async () => {
  await router?.stop();
  await Promise.all([prefill?.stop(), decode?.stop(), reference?.stop()]);
});

beforeEach(async () => {
  await Promise.all([prefill.reset(), decode.reset()]);
});

describe('direct path', () => {
  it('sends a short request to a decoder untouched and returns its answer', async () => {
    const body = { model: 'sim-model', prompt: SHORT_PROMPT, max_tokens: 5, temperature: 0 };
    const viaRouter = await postJson(`${router.url}/v1/completions`, body, { 'x-request-id': 'direct-1' });
    const straight = await postJson(`${reference.url}/v1/completions`, body);
    expect(viaRouter.status).toBe(200);
    expect(viaRouter.headers['x-request-id']).toBe('direct-1');
    expect(completionText(viaRouter.json)).toBe(completionText(straight.json));
    const log = await decode.requests();
    expect(log).toEqual([
      expect.objectContaining({
        id: 'direct-1',
        leg: 'direct',
        kvSource: 'local',
        maxTokens: 5,
        stream: false,
        status: 200,
      }),
    ]);
    expect(await prefill.requests()).toEqual([]);
  });

  it('passes a stream through chunk by chunk, as text/event-stream', async () => {
    // The engine sends two events and then stalls with the connection open: the client must
    // already hold those events, which a buffering router could not deliver.
    await decode.setFaults({ stallAfterChunks: 2 });
    const controller = new AbortController();
    const seen: string[] = [];
    const done = postSse(
      `${router.url}/v1/chat/completions`,
      {
        model: 'sim-model',
        messages: [{ role: 'user', content: SHORT_PROMPT }],
        max_tokens: 8,
        stream: true,
      },
      { signal: controller.signal, onPayload: (p) => seen.push(p) },
    ).catch(() => undefined);
    await waitFor('two streamed events', () => seen.length >= 2);
    expect(JSON.parse(seen[0]!).choices[0].delta.role).toBe('assistant');
    controller.abort();
    await done;
    await decode.setFaults({ stallAfterChunks: null });

    const full = await postSse(`${router.url}/v1/completions`, {
      model: 'sim-model',
      prompt: SHORT_PROMPT,
      max_tokens: 4,
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(full.status).toBe(200);
    expect(String(full.headers['content-type'])).toMatch(/^text\/event-stream/);
    expect(full.done).toBe(true);
    expect(full.chunks.at(-1)!['usage']).toMatchObject({ completion_tokens: 4 });
  });

  it('strips a client kv_transfer_params on the direct path', async () => {
    const r = await postJson(`${router.url}/v1/completions`, {
      prompt: SHORT_PROMPT,
      max_tokens: 2,
      kv_transfer_params: {
        do_remote_prefill: true,
        remote_block_ids: [1],
        remote_engine_id: 'x',
        remote_request_id: 'y',
        remote_host: '127.0.0.1',
        remote_port: 1,
      },
    });
    expect(r.status).toBe(200);
    expect((await decode.requests())[0]).toMatchObject({ leg: 'direct', kvSource: 'local' });
  });
});

describe('DPD over NIXL', () => {
  it('prefills remotely and the decoder really pulls the blocks (completion, not streamed)', async () => {
    const body = { model: 'sim-model', prompt: LONG_PROMPT, max_tokens: 6, min_tokens: 2 };
    const r = await postJson(`${router.url}/v1/completions`, body, { 'x-request-id': 'nixl-1' });
    expect(r.status).toBe(200);
    const straight = await postJson(`${reference.url}/v1/completions`, body);
    expect(completionText(r.json)).toBe(completionText(straight.json));

    const [p] = await prefill.requests();
    const [d] = await decode.requests();
    expect(p).toMatchObject({ id: 'nixl-1', leg: 'prefill', maxTokens: 1, stream: false, status: 200 });
    expect(d).toMatchObject({ id: 'nixl-1', leg: 'decode', kvSource: 'nixl', maxTokens: 6, status: 200 });
    // The loopback side-channel host was replaced by the prefill endpoint's host.
    expect(p!.kvTransferParams).toMatchObject({ remote_host: 'localhost' });
    expect(
      metricValue(
        await (await fetch(`${router.url}/metrics`)).text(),
        'router_nixl_remote_host_rewrites_total',
      ),
    ).toBeGreaterThan(0);
  });

  it('streams chat through the decoder after a remote prefill', async () => {
    const messages = [{ role: 'user', content: LONG_PROMPT }];
    const r = await postSse(`${router.url}/v1/chat/completions`, {
      messages,
      max_completion_tokens: 5,
      stream: true,
    });
    expect(r.status).toBe(200);
    expect(String(r.headers['content-type'])).toMatch(/^text\/event-stream/);
    expect(r.done).toBe(true);
    const straight = await postJson(`${reference.url}/v1/chat/completions`, {
      messages,
      max_completion_tokens: 5,
    });
    expect(streamText(r.chunks)).toBe(completionText(straight.json));
    expect((await decode.requests())[0]).toMatchObject({ leg: 'decode', kvSource: 'nixl', stream: true });
    expect((await prefill.requests())[0]).toMatchObject({ leg: 'prefill', stream: false, maxTokens: 1 });
  });

  it('keeps an absent max_tokens absent on the decode leg', async () => {
    const r = await postJson(`${router.url}/v1/completions`, { prompt: LONG_PROMPT });
    expect(r.status).toBe(200);
    const [d] = await decode.requests();
    // The simulator's default (16) applies only when the decode leg carries no max_tokens.
    expect(d).toMatchObject({ leg: 'decode', kvSource: 'nixl', maxTokens: 16, status: 200 });
  });

  it('never forwards a client kv_transfer_params to the prefill', async () => {
    const r = await postJson(`${router.url}/v1/completions`, {
      prompt: LONG_PROMPT,
      max_tokens: 3,
      kv_transfer_params: { do_remote_prefill: true, remote_host: '203.0.113.9' },
    });
    expect(r.status).toBe(200);
    expect((await decode.requests())[0]).toMatchObject({ kvSource: 'nixl', status: 200 });
  });
});

describe('service endpoints', () => {
  it('serves /health, /ready, /v1/models and /metrics', async () => {
    expect((await getJson(`${router.url}/health`)).status).toBe(200);
    const ready = await getJson(`${router.url}/ready`);
    expect(ready.status).toBe(200);
    expect(ready.json['routableClusters']).toEqual(['default/sim']);
    const models = await getJson(`${router.url}/v1/models`);
    expect(models.json).toMatchObject({ object: 'list', data: [{ id: 'sim-model', object: 'model' }] });
    const metrics = await (await fetch(`${router.url}/metrics`)).text();
    for (const name of [
      'router_requests_total',
      'router_estimated_prompt_tokens_bucket',
      'router_routing_decisions_total',
      'router_prefill_duration_seconds_bucket',
      'router_time_to_first_token_seconds_bucket',
      'router_request_duration_seconds_bucket',
      'router_in_flight_requests',
      'router_config_generation',
      'router_config_last_apply_timestamp_seconds',
    ]) {
      expect(metrics).toContain(name);
    }
    expect(metricValue(metrics, 'router_requests_total', { path: 'dpd', status: '200' })).toBeGreaterThan(0);
    expect(metricValue(metrics, 'router_requests_total', { path: 'direct', status: '200' })).toBeGreaterThan(
      0,
    );
    expect(metricValue(metrics, 'router_config_generation')).toBe(1);
  });

  it('is not ready without a config', async () => {
    const bare = await startRouter({ kvNotifyPort: 0, logLevel: 'silent' });
    try {
      const ready = await getJson(`${bare.url}/ready`);
      expect(ready.status).toBe(503);
      expect((await getJson(`${bare.url}/health`)).status).toBe(200);
      const r = await postJson(`${bare.url}/v1/completions`, { prompt: 'x' });
      expect(r.status).toBe(503);
      expect(r.json).toMatchObject({ error: { code: 'NOT_CONFIGURED' } });
    } finally {
      await bare.stop();
    }
  });
});
