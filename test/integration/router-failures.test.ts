// Failure behaviour: status mapping, retries before the first byte, per-leg timeouts, mid-stream
// failures, prefill failure policy, request validation and empty pools.
import { createServer } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { startRouter, type RunningRouter } from '../../router/src/server.js';
import { clusterDoc, configDoc, type ClusterSpec } from '../../router/test/support/cluster.js';
import { metricValue, postJson, postSse } from '../../router/test/support/http.js';
import { startEngine, type RunningEngine } from '../sim/harness.js';

jest.setTimeout(120_000);

const LONG = 'Every failure needs a clear answer and a metric to count it. '.repeat(30);
const SHORT = 'Hello';

let router: RunningRouter;
let prefill: RunningEngine;
let d1: RunningEngine;
let d2: RunningEngine;
let dead: RunningEngine;

/** An address nothing listens on: connecting is refused. */
async function deadEngine(): Promise<RunningEngine> {
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  return { url: `http://127.0.0.1:${port}`, host: '127.0.0.1', port } as RunningEngine;
}

function apply(spec: Partial<ClusterSpec>, generation = 1): void {
  const r = router.applyConfig(
    configDoc(
      [{ connector: 'nixl', routingThreshold: 64, prefill: [prefill], decode: [d1], ...spec }],
      generation,
    ),
  );
  if (!r.ok) throw new Error(r.errors.join('\n'));
}

async function metrics(): Promise<string> {
  return (await fetch(`${router.url}/metrics`)).text();
}

beforeAll(async () => {
  [prefill, d1, d2] = await Promise.all([
    startEngine({ role: 'prefill', connector: 'nixl' }),
    startEngine({ role: 'decode', connector: 'nixl' }),
    startEngine({ role: 'decode', connector: 'nixl' }),
  ]);
  dead = await deadEngine();
  router = await startRouter({ kvNotifyPort: 0, maxBodyBytes: 64 * 1024, logLevel: 'silent' });
});

afterAll(async () => {
  await router?.stop();
  await Promise.all([prefill?.stop(), d1?.stop(), d2?.stop()]);
});

beforeEach(async () => {
  await Promise.all([prefill.reset(), d1.reset(), d2.reset()]);
  apply({});
});

describe('upstream errors', () => {
  it('passes a 4xx through with its status and body', async () => {
    const body = { prompt: SHORT, max_tokens: 100_000 };
    const viaRouter = await postJson(`${router.url}/v1/completions`, body);
    const straight = await postJson(`${d1.url}/v1/completions`, body);
    expect(straight.status).toBe(400);
    expect(viaRouter.status).toBe(400);
    expect(viaRouter.json).toEqual(straight.json);
    // On the DPD path too: a prefill 4xx is the request's fault, so no fallback hides it.
    const dpd = await postJson(`${router.url}/v1/completions`, {
      model: 'no-such-model',
      prompt: LONG,
      max_tokens: 2,
    });
    expect(dpd.status).toBe(404);
    expect(JSON.stringify(dpd.json)).toContain('no-such-model');
    expect((await d1.requests()).filter((r) => r.leg !== 'direct')).toEqual([]);
  });

  it('maps an upstream 5xx to 502 in OpenAI error shape, never inside a 200', async () => {
    await d1.setFaults({ failRate: 1, failStatus: 500 });
    const r = await postJson(`${router.url}/v1/completions`, { prompt: SHORT, max_tokens: 2 });
    expect(r.status).toBe(502);
    expect(r.json).toEqual({
      error: {
        message: expect.stringContaining('injected failure'),
        type: 'upstream_error',
        param: null,
        code: 'DECODE_UPSTREAM_ERROR',
      },
    });
    const s = await postSse(`${router.url}/v1/completions`, { prompt: SHORT, max_tokens: 2, stream: true });
    expect(s.status).toBe(502);
  });

  it('maps a refused connection to 503 and a first-byte timeout to 504', async () => {
    apply({ decode: [dead] });
    const refused = await postJson(`${router.url}/v1/completions`, { prompt: SHORT, max_tokens: 2 });
    expect(refused.status).toBe(503);
    expect(refused.json).toMatchObject({
      error: { code: 'DECODE_UNAVAILABLE', type: 'service_unavailable_error' },
    });

    apply({ policies: { decodeTimeouts: { firstByteMs: 400 } } });
    await d1.setFaults({ hang: true });
    const hung = await postJson(`${router.url}/v1/completions`, { prompt: SHORT, max_tokens: 2 });
    expect(hung.status).toBe(504);
    expect(hung.json).toMatchObject({ error: { code: 'DECODE_TIMEOUT', type: 'timeout_error' } });
    const m = await metrics();
    expect(
      metricValue(m, 'router_upstream_errors_total', { role: 'decode', kind: 'connect' }),
    ).toBeGreaterThan(0);
    expect(
      metricValue(m, 'router_upstream_errors_total', { role: 'decode', kind: 'first_byte_timeout' }),
    ).toBeGreaterThan(0);
  });

  it('retries on another endpoint before the first byte (connect error, 503)', async () => {
    apply({ decode: [dead, d1], prefill: [dead, prefill] });
    for (let i = 0; i < 4; i++) {
      const direct = await postJson(`${router.url}/v1/completions`, { prompt: SHORT, max_tokens: 2 });
      expect(direct.status).toBe(200);
      const dpd = await postJson(`${router.url}/v1/completions`, { prompt: LONG, max_tokens: 2 });
      expect(dpd.status).toBe(200);
    }
    expect((await d1.requests()).filter((r) => r.kvSource === 'nixl')).toHaveLength(4);
    apply({ decode: [d2, d1] });
    await d2.setFaults({ failRate: 1, failStatus: 503 });
    for (let i = 0; i < 2; i++) {
      expect((await postJson(`${router.url}/v1/completions`, { prompt: SHORT, max_tokens: 2 })).status).toBe(
        200,
      );
    }
    const m = await metrics();
    expect(metricValue(m, 'router_retries_total', { role: 'decode' })).toBeGreaterThanOrEqual(5);
    expect(metricValue(m, 'router_retries_total', { role: 'prefill' })).toBeGreaterThanOrEqual(2);
  });
});

describe('failures after the first byte', () => {
  it('ends the stream with an SSE error event when the upstream drops mid-stream', async () => {
    await d1.setFaults({ dropAfterChunks: 2 });
    const before = await metrics();
    const r = await postSse(`${router.url}/v1/completions`, { prompt: SHORT, max_tokens: 10, stream: true });
    expect(r.status).toBe(200);
    expect(r.chunks).toHaveLength(3);
    // as vLLM ends a stream it cannot finish: the error event, then [DONE]
    expect(r.chunks.at(-1)).toMatchObject({ error: { code: 'DECODE_STREAM_INTERRUPTED', param: null } });
    expect(r.payloads.slice(-2).map((p) => p.startsWith('{"error"') || p)).toEqual([true, '[DONE]']);
    // recorded as the failure it was, not as the 200 the client saw first
    const after = await metrics();
    const count = (m: string, status: string) => metricValue(m, 'router_requests_total', { status });
    expect(count(after, '502') - count(before, '502')).toBe(1);
    expect(count(after, '200') - count(before, '200')).toBe(0);
    // Non-streamed: nothing was sent yet, so the client gets a real error status.
    const whole = await postJson(`${router.url}/v1/completions`, { prompt: SHORT, max_tokens: 10 });
    expect(whole.status).toBe(502);
  });

  it('ends a DPD stream with an SSE error event when the decoder stalls past the idle timeout', async () => {
    apply({ policies: { decodeTimeouts: { idleMs: 400 } } });
    await d1.setFaults({ stallAfterChunks: 2 });
    const r = await postSse(`${router.url}/v1/chat/completions`, {
      messages: [{ role: 'user', content: LONG }],
      max_tokens: 10,
      stream: true,
    });
    expect(r.status).toBe(200);
    expect(r.chunks[0]).toMatchObject({ object: 'chat.completion.chunk' });
    expect(r.chunks.at(-1)).toMatchObject({ error: { code: 'DECODE_TIMEOUT', type: 'timeout_error' } });
    expect(r.payloads.at(-1)).toBe('[DONE]');
  });
});

describe('prefill failure policy', () => {
  it('fallback: a failed prefill sends the request direct to a decoder and counts it', async () => {
    await prefill.setFaults({ failRate: 1, failStatus: 500 });
    const before = metricValue(await metrics(), 'router_fallbacks_total', { reason: 'prefill_failed' });
    const r = await postJson(`${router.url}/v1/completions`, { prompt: LONG, max_tokens: 3 });
    expect(r.status).toBe(200);
    expect(await d1.requests()).toEqual([
      expect.objectContaining({ leg: 'direct', kvSource: 'local', maxTokens: 3 }),
    ]);
    const m = await metrics();
    expect(metricValue(m, 'router_fallbacks_total', { reason: 'prefill_failed' })).toBe(before + 1);
    expect(metricValue(m, 'router_requests_total', { path: 'fallback', status: '200' })).toBeGreaterThan(0);
  });

  it('fallback also covers a prefill that hangs past its first-byte timeout', async () => {
    apply({ policies: { prefillTimeouts: { firstByteMs: 400 } } });
    await prefill.setFaults({ hang: true });
    const r = await postSse(`${router.url}/v1/completions`, { prompt: LONG, max_tokens: 3, stream: true });
    expect(r.status).toBe(200);
    expect(r.done).toBe(true);
    expect((await d1.requests())[0]).toMatchObject({ leg: 'direct' });
  });

  it('fail: a failed prefill returns the error and never reaches a decoder', async () => {
    apply({ policies: { prefillFailurePolicy: 'fail' } });
    await prefill.setFaults({ failRate: 1, failStatus: 500 });
    const r = await postJson(`${router.url}/v1/completions`, { prompt: LONG, max_tokens: 3 });
    expect(r.status).toBe(502);
    expect(r.json).toMatchObject({ error: { code: 'PREFILL_UPSTREAM_ERROR' } });
    apply({ prefill: [dead], policies: { prefillFailurePolicy: 'fail' } });
    const refused = await postJson(`${router.url}/v1/completions`, { prompt: LONG, max_tokens: 3 });
    expect(refused.status).toBe(503);
    expect(refused.json).toMatchObject({ error: { code: 'PREFILL_UNAVAILABLE' } });
    expect(await d1.requests()).toEqual([]);
  });
});

describe('request validation and routing errors', () => {
  it('rejects bodies over the limit (413) and malformed JSON (400)', async () => {
    const big = await postJson(`${router.url}/v1/completions`, { prompt: 'x'.repeat(100 * 1024) });
    expect(big.status).toBe(413);
    expect(big.json).toMatchObject({ error: { code: 'BODY_TOO_LARGE', type: 'invalid_request_error' } });
    const bad = await postJson(`${router.url}/v1/completions`, '{"prompt": "unterminated');
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ error: { code: 'MALFORMED_JSON' } });
    const notObject = await postJson(`${router.url}/v1/completions`, '[1,2]');
    expect(notObject.status).toBe(400);
    expect(notObject.json).toMatchObject({ error: { code: 'BODY_NOT_OBJECT' } });
    expect((await postJson(`${router.url}/v1/nope`, {})).status).toBe(404);
  });

  it('serves the generation routes spelled with a query string or a trailing slash (through Express)', async () => {
    for (const path of ['/v1/completions?trace=1', '/v1/completions/']) {
      const r = await postJson(`${router.url}${path}`, { prompt: 'hi', max_tokens: 2 });
      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({ object: 'text_completion' });
    }
    const big = await postJson(`${router.url}/v1/completions?x=1`, { prompt: 'x'.repeat(100 * 1024) });
    expect(big.status).toBe(413);
    expect(big.json).toMatchObject({ error: { code: 'BODY_TOO_LARGE' } });
  });

  it('routes by model with several clusters: missing model 400, unknown model 404', async () => {
    const r = router.applyConfig({
      generation: 9,
      clusters: [
        clusterDoc({
          name: 'a',
          models: ['sim-model'],
          connector: 'nixl',
          routingThreshold: 64,
          prefill: [prefill],
          decode: [d1],
        }),
        clusterDoc({
          name: 'b',
          models: ['other-model'],
          connector: 'nixl',
          routingThreshold: 64,
          prefill: [],
          decode: [d2],
        }),
      ],
    });
    expect(r.ok).toBe(true);
    const missing = await postJson(`${router.url}/v1/completions`, { prompt: SHORT });
    expect(missing.status).toBe(400);
    expect(missing.json).toMatchObject({
      error: { code: 'MODEL_REQUIRED', message: expect.stringContaining('sim-model') },
    });
    const unknown = await postJson(`${router.url}/v1/completions`, { model: 'gpt-5', prompt: SHORT });
    expect(unknown.status).toBe(404);
    expect(unknown.json).toMatchObject({ error: { code: 'MODEL_NOT_FOUND', type: 'invalid_request_error' } });
    const ok = await postJson(`${router.url}/v1/completions`, {
      model: 'sim-model',
      prompt: SHORT,
      max_tokens: 2,
    });
    expect(ok.status).toBe(200);
    expect(await d1.requests()).toHaveLength(1);
    expect(await d2.requests()).toHaveLength(0);
  });

  it('answers 503 naming the empty pool', async () => {
    apply({ decode: [] });
    const noDecoder = await postJson(`${router.url}/v1/completions`, { prompt: SHORT });
    expect(noDecoder.status).toBe(503);
    expect(noDecoder.json).toMatchObject({
      error: { code: 'NO_DECODER', message: expect.stringContaining('decode pool of cluster default/sim') },
    });
    apply({ prefill: [], policies: { prefillFailurePolicy: 'fail' } });
    const noPrefiller = await postJson(`${router.url}/v1/completions`, { prompt: LONG });
    expect(noPrefiller.status).toBe(503);
    expect(noPrefiller.json).toMatchObject({
      error: {
        code: 'NO_PREFILLER',
        message: expect.stringContaining('prefill pool of cluster default/sim'),
      },
    });
    // Under the default policy the decoder serves it alone, counted as a fallback.
    apply({ prefill: [] });
    const served = await postJson(`${router.url}/v1/completions`, { prompt: LONG, max_tokens: 2 });
    expect(served.status).toBe(200);
    expect(metricValue(await metrics(), 'router_fallbacks_total', { reason: 'no_prefiller' })).toBe(1);
  });
});
