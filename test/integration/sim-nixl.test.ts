// The simulator enforces vLLM's NIXL handshake: a decode leg really pulls the prefiller's held blocks,
// and anything a wrong router could send (bogus, reused, expired, unreachable params) fails the request.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { startEngine, stopAll, type RunningEngine } from '../sim/harness.js';
import { metricValue, postJson, postSse, waitFor } from '../sim/http-client.js';

jest.setTimeout(120_000);

// vLLM 0.32: one block-id list per KV-cache group
type KvParams = Record<string, unknown> & { remote_block_ids: number[][] };
interface Completion {
  choices: Array<{ text: string; finish_reason: string }>;
  kv_transfer_params: KvParams | null;
  error?: { message: string; type: string; code: number };
}

const PROMPT = 'Explain disaggregated prefill and decode in a few short words please';
const NIXL_PREFILL_PARAMS = {
  do_remote_decode: true,
  do_remote_prefill: false,
  remote_engine_id: null,
  remote_block_ids: null,
  remote_host: null,
  remote_port: null,
};

let prefiller: RunningEngine;
let decoder: RunningEngine;
let farPrefiller: RunningEngine; // listens on 127.0.0.2 but advertises vLLM's default "localhost"

async function prefill(engine: RunningEngine, prompt = PROMPT, id = 'req-1'): Promise<KvParams> {
  const r = await postJson<Completion>(
    `${engine.url}/v1/completions`,
    { model: 'm', prompt, max_tokens: 1, stream: false, kv_transfer_params: NIXL_PREFILL_PARAMS },
    { 'x-request-id': id },
  );
  expect(r.status).toBe(200);
  expect(r.body.choices[0]!.finish_reason).toBe('length');
  return r.body.kv_transfer_params!;
}

function decode(params: unknown, prompt = PROMPT, id = 'req-1') {
  return postJson<Completion>(
    `${decoder.url}/v1/completions`,
    { model: 'm', prompt, max_tokens: 6, kv_transfer_params: params },
    { 'x-request-id': id },
  );
}

beforeAll(async () => {
  [prefiller, decoder, farPrefiller] = await Promise.all([
    startEngine({ model: 'm', role: 'prefill', connector: 'nixl', kvLeaseMs: 60_000 }),
    startEngine({ model: 'm', role: 'decode', connector: 'nixl' }),
    startEngine({ host: '127.0.0.2', model: 'm', role: 'prefill', connector: 'nixl', kvLeaseMs: 400 }),
  ]);
});

afterAll(async () => {
  await stopAll();
});

describe('NIXL prefill leg', () => {
  test('returns vLLM-shaped kv_transfer_params and holds the blocks', async () => {
    const p = await prefill(prefiller);
    expect(p).toMatchObject({
      do_remote_prefill: true,
      do_remote_decode: false,
      remote_host: 'localhost',
      remote_port: prefiller.nixlSideChannelPort,
      tp_size: 1,
    });
    expect(typeof p.remote_engine_id).toBe('string');
    expect(typeof p.remote_request_id).toBe('string');
    expect(p.remote_block_ids).toHaveLength(1);
    expect(p.remote_block_ids[0]!.length).toBeGreaterThan(0);
    expect(p.remote_block_ids[0]!.every((b) => Number.isInteger(b))).toBe(true);
    const m = await prefiller.metrics();
    expect(metricValue(m, 'sim_nixl_leases_created_total')).toBeGreaterThanOrEqual(1);
    expect(metricValue(m, 'vllm:kv_cache_usage_perc')).toBeGreaterThan(0);
  });

  test('rejects stream:true', async () => {
    const r = await postJson<Completion>(`${prefiller.url}/v1/completions`, {
      model: 'm',
      prompt: PROMPT,
      max_tokens: 1,
      stream: true,
      kv_transfer_params: NIXL_PREFILL_PARAMS,
    });
    expect(r.status).toBe(400);
    expect(r.body.error?.message).toMatch(/streaming/);
  });

  test('a decode-role engine refuses prefill legs', async () => {
    const r = await postJson<Completion>(`${decoder.url}/v1/completions`, {
      prompt: PROMPT,
      max_tokens: 1,
      kv_transfer_params: NIXL_PREFILL_PARAMS,
    });
    expect(r.status).toBe(400);
  });
});

describe('NIXL decode leg', () => {
  test('a valid prefill -> decode pulls the blocks once, and the output matches a direct run', async () => {
    const params = await prefill(prefiller, PROMPT, 'pd-ok');
    const r = await decode(params, PROMPT, 'pd-ok');
    expect(r.status).toBe(200);
    const log = await decoder.requests();
    expect(log.find((e) => e.id === 'pd-ok')).toMatchObject({ leg: 'decode', kvSource: 'nixl', status: 200 });
    const pLog = await prefiller.requests();
    expect(pLog.find((e) => e.id === 'pd-ok')).toMatchObject({ leg: 'prefill', status: 200 });
    expect(
      metricValue(await prefiller.metrics(), 'sim_nixl_reads_served_total', 'result="ok"'),
    ).toBeGreaterThanOrEqual(1);

    const direct = await postJson<Completion>(`${decoder.url}/v1/completions`, {
      prompt: PROMPT,
      max_tokens: 6,
    });
    expect(r.body.choices[0]!.text).toBe(direct.body.choices[0]!.text);

    // The blocks were freed by the pull: the same params cannot be used twice.
    const again = await decode(params, PROMPT, 'pd-again');
    expect(again.status).toBe(500);
    expect(again.body.error?.message).toMatch(/unknown or expired/);
  });

  test.each([
    [
      'wrong engine id',
      (p: KvParams) => ({ ...p, remote_engine_id: 'not-the-prefiller' }),
      /engine id mismatch/,
    ],
    [
      'unknown request id',
      (p: KvParams) => ({ ...p, remote_request_id: 'cmpl-bogus' }),
      /unknown or expired/,
    ],
    [
      'wrong block ids',
      (p: KvParams) => ({ ...p, remote_block_ids: p.remote_block_ids.map((g) => g.map((b) => b + 9999)) }),
      /do not match/,
    ],
    ['wrong side-channel port', (p: KvParams) => ({ ...p, remote_port: decoder.port }), /./],
  ])('%s fails the decode (kv_load_failure_policy=fail)', async (_name, mutate, message) => {
    const params = await prefill(prefiller);
    const r = await decode(mutate(params));
    expect(r.status).toBe(500);
    expect(r.body.error).toMatchObject({ type: 'InternalServerError', code: 500 });
    expect(r.body.error?.message).toMatch(message);
    expect(r.body.error?.message).toMatch(/KV transfer failed/);
  });

  test('a prompt whose token count differs from the prefilled one fails', async () => {
    const params = await prefill(prefiller);
    const r = await decode(params, PROMPT + ' and some more words');
    expect(r.status).toBe(500);
    expect(r.body.error?.message).toMatch(/tokens but the prefilled KV covers/);
  });

  test('incomplete params are ignored like vLLM does: local prefill, counted', async () => {
    const r = await decode({ do_remote_prefill: true, remote_block_ids: [1, 2] }, PROMPT, 'incomplete');
    expect(r.status).toBe(200);
    const log = await decoder.requests();
    expect(log.find((e) => e.id === 'incomplete')).toMatchObject({ leg: 'decode', kvSource: 'local' });
    expect(metricValue(await decoder.metrics(), 'sim_nixl_invalid_params_total')).toBeGreaterThanOrEqual(1);
  });
});

describe('NIXL chat', () => {
  test('a chat prefill leg returns params and a streaming chat decode leg pulls them', async () => {
    const messages = [{ role: 'user', content: 'Tell me about KV caches in detail' }];
    const p = await postJson<Completion>(
      `${prefiller.url}/v1/chat/completions`,
      { model: 'm', messages, max_tokens: 1, stream: false, kv_transfer_params: NIXL_PREFILL_PARAMS },
      { 'x-request-id': 'chat-1' },
    );
    expect(p.status).toBe(200);
    expect(p.body.kv_transfer_params?.do_remote_prefill).toBe(true);
    const d = await postSse(
      `${decoder.url}/v1/chat/completions`,
      { model: 'm', messages, max_tokens: 4, stream: true, kv_transfer_params: p.body.kv_transfer_params },
      { 'x-request-id': 'chat-1' },
    );
    expect(d.status).toBe(200);
    expect(d.events[d.events.length - 1]).toBe('[DONE]');
    expect((await decoder.requests()).find((e) => e.id === 'chat-1')).toMatchObject({
      path: '/v1/chat/completions',
      kvSource: 'nixl',
      stream: true,
    });
  });

  test('a streaming decode whose pull fails answers 500 JSON before any SSE byte', async () => {
    const d = await postSse(`${decoder.url}/v1/completions`, {
      prompt: PROMPT,
      max_tokens: 4,
      stream: true,
      kv_transfer_params: {
        do_remote_prefill: true,
        remote_engine_id: 'x',
        remote_request_id: 'y',
        remote_block_ids: [1],
        remote_host: '127.0.0.1',
        remote_port: prefiller.nixlSideChannelPort,
      },
    });
    expect(d.status).toBe(500);
    expect(d.contentType).toMatch(/application\/json/);
  });
});

describe('NIXL across hosts and leases', () => {
  test('the default remote_host "localhost" is unreachable for a prefiller on 127.0.0.2', async () => {
    const params = await prefill(farPrefiller, PROMPT, 'far-1');
    expect(params.remote_host).toBe('localhost');
    const r = await decode(params, PROMPT, 'far-1');
    expect(r.status).toBe(500);
    // The same params pointed at the prefiller's real address work (what a correct router rewrites).
    const fixed = await decode({ ...params, remote_host: '127.0.0.2' }, PROMPT, 'far-2');
    expect(fixed.status).toBe(200);
    expect((await decoder.requests()).find((e) => e.id === 'far-2')?.kvSource).toBe('nixl');
  });

  test('an unpulled lease expires, is counted, and its params then fail', async () => {
    const params = await prefill(farPrefiller, PROMPT, 'lease');
    await waitFor(
      async () => metricValue(await farPrefiller.metrics(), 'sim_nixl_leases_expired_total') >= 1,
      20_000,
    );
    const r = await decode({ ...params, remote_host: '127.0.0.2' }, PROMPT, 'lease');
    expect(r.status).toBe(500);
    expect(r.body.error?.message).toMatch(/unknown or expired/);
  });
});
