// DPD over LMCache end to end: tokenize, prefill with disagg_spec, KV push + ZeroMQ ProxyNotif to
// the router, first token at once, decode of tokens + [first token], chat conversion.
import { afterAll, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { startRouter, type RunningRouter } from '../../router/src/server.js';
import { configDoc } from '../../router/test/support/cluster.js';
import {
  completionText,
  metricValue,
  postJson,
  postSse,
  streamText,
} from '../../router/test/support/http.js';
import { startEngine, type RunningEngine } from '../sim/harness.js';

jest.setTimeout(120_000);

const PROMPT = 'Disaggregated prefill moves the KV cache from one engine to another. '.repeat(20);
const MESSAGES = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: PROMPT },
];

let router: RunningRouter;
let prefill: RunningEngine;
let decode: RunningEngine;
let reference: RunningEngine;

beforeAll(async () => {
  router = await startRouter({
    kvNotifyPort: 0,
    kvNotifyHost: '127.0.0.1',
    replicaId: 'router-a',
    logLevel: 'silent',
  });
  [prefill, decode, reference] = await Promise.all([
    startEngine({
      role: 'prefill',
      connector: 'lmcache',
      lmcacheProxyHost: '127.0.0.1',
      lmcacheProxyPort: router.kvNotifyPort,
    }),
    // Two TP ranks: the router must wait for two notifications.
    startEngine({ role: 'decode', connector: 'lmcache', tpSize: 2 }),
    startEngine({ connector: 'none' }),
  ]);
  const r = router.applyConfig(
    configDoc([
      {
        connector: 'lmcache',
        routingThreshold: 32,
        prefill: [prefill],
        decode: [decode],
        policies: { kvReadyTimeoutMs: 20_000 },
      },
    ]),
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

async function legs(): Promise<{ p: Record<string, unknown>; d: Record<string, unknown> }> {
  const [p] = await prefill.requests();
  const [d] = await decode.requests();
  return { p: p as unknown as Record<string, unknown>, d: d as unknown as Record<string, unknown> };
}

describe('DPD over LMCache', () => {
  it('serves a completion (not streamed) from the decoder with KV pushed by the prefiller', async () => {
    const body = { model: 'sim-model', prompt: PROMPT, max_tokens: 6 };
    const r = await postJson(`${router.url}/v1/completions`, body, { 'x-request-id': 'lm-1' });
    expect(r.status).toBe(200);
    const straight = await postJson(`${reference.url}/v1/completions`, body);
    expect(completionText(r.json)).toBe(completionText(straight.json));
    const promptTokens = (straight.json['usage'] as Record<string, number>)['prompt_tokens'];
    expect(r.json['usage']).toMatchObject({
      prompt_tokens: promptTokens,
      completion_tokens: 6,
      total_tokens: promptTokens + 6,
    });
    const { p, d } = await legs();
    expect(p).toMatchObject({
      id: 'lm-1',
      leg: 'prefill',
      path: '/v1/completions',
      maxTokens: 1,
      stream: false,
      promptTokens,
    });
    expect(String(p['lmcacheReqId'])).toMatch(/^router-a_[0-9a-f-]{36}$/);
    expect(d).toMatchObject({
      id: 'lm-1',
      leg: 'decode',
      kvSource: 'lmcache',
      path: '/v1/completions',
      maxTokens: 5,
      promptTokens: promptTokens + 1,
    });
    const metrics = await (await fetch(`${router.url}/metrics`)).text();
    expect(
      metricValue(metrics, 'router_kv_notifications_total', { outcome: 'delivered' }),
    ).toBeGreaterThanOrEqual(2);
  });

  it('streams a completion: first token first, then the decoder stream, then [DONE]', async () => {
    const body = { prompt: PROMPT, max_tokens: 5, stream: true, stream_options: { include_usage: true } };
    const r = await postSse(`${router.url}/v1/completions`, body);
    expect(r.status).toBe(200);
    expect(String(r.headers['content-type'])).toMatch(/^text\/event-stream/);
    expect(r.done).toBe(true);
    const straight = await postJson(`${reference.url}/v1/completions`, { prompt: PROMPT, max_tokens: 5 });
    expect(streamText(r.chunks)).toBe(completionText(straight.json));
    // One id for the whole stream; usage from the client's view.
    expect(new Set(r.chunks.map((c) => c['id'])).size).toBe(1);
    expect(r.chunks.at(-1)!['usage']).toMatchObject({ completion_tokens: 5 });
    const { d } = await legs();
    expect(d).toMatchObject({ kvSource: 'lmcache', stream: true, maxTokens: 4 });
  });

  it('serves chat (streamed): tokenized through /tokenize, role chunk first, chunks converted', async () => {
    const r = await postSse(`${router.url}/v1/chat/completions`, {
      messages: MESSAGES,
      max_completion_tokens: 4,
      stream: true,
    });
    expect(r.status).toBe(200);
    expect(r.done).toBe(true);
    expect(r.chunks[0]).toMatchObject({
      object: 'chat.completion.chunk',
      choices: [{ delta: { role: 'assistant' } }],
    });
    for (const c of r.chunks) expect(c['object']).toBe('chat.completion.chunk');
    const straight = await postJson(`${reference.url}/v1/chat/completions`, {
      messages: MESSAGES,
      max_completion_tokens: 4,
    });
    expect(streamText(r.chunks)).toBe(completionText(straight.json));
    const last = r.chunks.at(-1)!['choices'] as Array<Record<string, unknown>>;
    expect(last[0]!['finish_reason']).toBe('length');
    const { p, d } = await legs();
    expect(p).toMatchObject({ leg: 'prefill', path: '/v1/completions' });
    expect(d).toMatchObject({ leg: 'decode', kvSource: 'lmcache', path: '/v1/completions', maxTokens: 3 });
  });

  it('serves chat (not streamed) as one chat.completion', async () => {
    const r = await postJson(`${router.url}/v1/chat/completions`, { messages: MESSAGES, max_tokens: 3 });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({
      object: 'chat.completion',
      choices: [{ message: { role: 'assistant' }, finish_reason: 'length' }],
    });
    const straight = await postJson(`${reference.url}/v1/chat/completions`, {
      messages: MESSAGES,
      max_tokens: 3,
    });
    expect(completionText(r.json)).toBe(completionText(straight.json));
    expect((await legs()).d).toMatchObject({ kvSource: 'lmcache', maxTokens: 2 });
  });

  it('takes token-id prompts without tokenizing and leaves a missing max_tokens absent (not 0 or -1)', async () => {
    const ids = Array.from({ length: 80 }, (_, i) => 1000 + i);
    const r = await postJson(`${router.url}/v1/completions`, { prompt: ids });
    expect(r.status).toBe(200);
    // The simulator's default length (16) applies: the decode leg carried no max_tokens.
    expect((r.json['usage'] as Record<string, number>)['completion_tokens']).toBe(17);
    expect((await legs()).d).toMatchObject({ kvSource: 'lmcache', maxTokens: 16, promptTokens: 81 });
  });

  it('answers from the prefill alone when the client wants one token', async () => {
    const r = await postSse(`${router.url}/v1/completions`, { prompt: PROMPT, max_tokens: 1, stream: true });
    expect(r.done).toBe(true);
    expect(streamText(r.chunks).length).toBeGreaterThan(0);
    expect(await decode.requests()).toEqual([]);
  });
});

describe('KV-ready notifications', () => {
  let slowPrefill: RunningEngine;
  beforeAll(async () => {
    slowPrefill = await startEngine({
      role: 'prefill',
      connector: 'lmcache',
      lmcacheProxyHost: '127.0.0.1',
      lmcacheProxyPort: router.kvNotifyPort,
      lmcacheNotifyDelayMs: 60_000,
    });
  });
  afterAll(async () => {
    await slowPrefill?.stop();
  });

  it('times out waiting: policy fail ends the stream with an error event', async () => {
    router.applyConfig(
      configDoc(
        [
          {
            connector: 'lmcache',
            prefill: [slowPrefill],
            decode: [decode],
            policies: { kvReadyTimeoutMs: 300, prefillFailurePolicy: 'fail' },
          },
        ],
        2,
      ),
    );
    const r = await postSse(`${router.url}/v1/completions`, { prompt: PROMPT, max_tokens: 4, stream: true });
    expect(r.chunks.at(-1)).toMatchObject({ error: { code: 'KV_READY_TIMEOUT' } });
    expect(r.payloads.at(-1)).toBe('[DONE]'); // after the error event, as vLLM does
    const whole = await postJson(`${router.url}/v1/completions`, { prompt: PROMPT, max_tokens: 4 });
    expect(whole.status).toBe(504);
    expect(whole.json).toMatchObject({ error: { code: 'KV_READY_TIMEOUT', type: 'timeout_error' } });
    expect(await decode.requests()).toEqual([]);
  });

  it('times out waiting: policy fallback decodes anyway (the decoder recomputes)', async () => {
    router.applyConfig(
      configDoc(
        [
          {
            connector: 'lmcache',
            prefill: [slowPrefill],
            decode: [decode],
            policies: { kvReadyTimeoutMs: 300 },
          },
        ],
        3,
      ),
    );
    const r = await postJson(`${router.url}/v1/completions`, { prompt: PROMPT, max_tokens: 4 });
    expect(r.status).toBe(200);
    expect((await decode.requests())[0]).toMatchObject({ leg: 'decode', kvSource: 'local' });
  });

  it('sends the first token before the KV wait ends and before the decode starts', async () => {
    router.applyConfig(
      configDoc(
        [
          {
            connector: 'lmcache',
            prefill: [slowPrefill],
            decode: [decode],
            policies: { kvReadyTimeoutMs: 3_000 },
          },
        ],
        5,
      ),
    );
    let decodesAtFirstToken: Promise<unknown[]> | undefined;
    const r = await postSse(
      `${router.url}/v1/completions`,
      { prompt: PROMPT, max_tokens: 4, stream: true },
      { onPayload: () => (decodesAtFirstToken ??= decode.requests()) },
    );
    expect(r.done).toBe(true);
    expect(await decodesAtFirstToken).toEqual([]);
    expect(await decode.requests()).toHaveLength(1);
  });

  it('forwards a notification that reached the wrong replica to the owner', async () => {
    // Router B owns the requests; the prefiller pushes its notifications to router A.
    const b = await startRouter({
      kvNotifyPort: 0,
      kvNotifyHost: '127.0.0.1',
      replicaId: 'router-b',
      logLevel: 'silent',
    });
    try {
      const peers = [
        { id: 'router-a', notifyAddress: router.kvNotifyAddress },
        { id: 'router-b', notifyAddress: b.kvNotifyAddress },
      ];
      const doc = configDoc(
        [
          {
            connector: 'lmcache',
            prefill: [prefill],
            decode: [decode],
            policies: { kvReadyTimeoutMs: 20_000, prefillFailurePolicy: 'fail' },
          },
        ],
        4,
        peers,
      );
      expect(router.applyConfig(doc).ok).toBe(true);
      expect(b.applyConfig(doc).ok).toBe(true);
      const r = await postJson(`${b.url}/v1/completions`, { prompt: PROMPT, max_tokens: 3 });
      expect(r.status).toBe(200);
      expect((await decode.requests())[0]).toMatchObject({ kvSource: 'lmcache' });
      const aMetrics = await (await fetch(`${router.url}/metrics`)).text();
      expect(
        metricValue(aMetrics, 'router_kv_notifications_total', { outcome: 'forwarded' }),
      ).toBeGreaterThanOrEqual(2);
      const bMetrics = await (await fetch(`${b.url}/metrics`)).text();
      expect(metricValue(bMetrics, 'router_kv_notifications_total', { outcome: 'delivered' })).toBe(2);
    } finally {
      await b.stop();
    }
  });
});
