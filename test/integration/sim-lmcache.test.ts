// The simulator enforces LMCache's disaggregated-prefill protocol: the prefiller pushes KV into the decoder's
// receiver ports and sends one msgpack ProxyNotif per TP rank over ZeroMQ; the decoder decodes from pushed
// KV only when it arrived, and otherwise recomputes (counted).
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import * as zmq from 'zeromq';
import { decode as msgpackDecode } from '@msgpack/msgpack';
import { startEngine, stopAll, type RunningEngine } from '../sim/harness.js';
import { metricValue, postJson } from '../sim/http-client.js';

jest.setTimeout(120_000);

interface Completion {
  choices: Array<{ text: string; finish_reason: string }>;
  usage: { prompt_tokens: number; completion_tokens: number };
  kv_transfer_params: { first_tok?: number } | null;
  error?: { message: string; code: number };
}

let prefiller: RunningEngine;
let decoder: RunningEngine;
let pull: zmq.Pull;
let proxyPort: number;
const received: Buffer[] = [];

async function tokenize(body: Record<string, unknown>): Promise<number[]> {
  const r = await postJson<{ tokens: number[]; count: number }>(`${decoder.url}/tokenize`, body);
  expect(r.status).toBe(200);
  expect(r.body.count).toBe(r.body.tokens.length);
  return r.body.tokens;
}

function disaggSpec(reqId: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ret_first_tok: true,
    disagg_spec: {
      req_id: reqId,
      receiver_host: '127.0.0.1',
      receiver_init_port: decoder.lmcacheInitPorts,
      receiver_alloc_port: decoder.lmcacheAllocPorts,
      ...over,
    },
  };
}

async function notificationsFor(reqId: string, count: number): Promise<Buffer[]> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const mine = received.filter((b) => (msgpackDecode(b) as { req_id?: string }).req_id === reqId);
    if (mine.length >= count) return mine;
    if (Date.now() > deadline) throw new Error(`got ${mine.length}/${count} notifications for ${reqId}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  pull = new zmq.Pull({ linger: 0 });
  await pull.bind('tcp://127.0.0.1:*');
  proxyPort = Number(pull.lastEndpoint!.split(':').pop());
  void (async () => {
    try {
      for await (const [msg] of pull) received.push(Buffer.from(msg!));
    } catch {
      // Socket closed in afterAll.
    }
  })();
  [prefiller, decoder] = await Promise.all([
    startEngine({
      model: 'm',
      role: 'prefill',
      connector: 'lmcache',
      lmcacheProxyHost: '127.0.0.1',
      lmcacheProxyPort: proxyPort,
    }),
    startEngine({ model: 'm', role: 'decode', connector: 'lmcache', tpSize: 2 }),
  ]);
});

afterAll(async () => {
  await stopAll();
  pull?.close();
});

describe('LMCache prefill leg', () => {
  test('listening line reports one init and one alloc port per TP rank', () => {
    expect(decoder.lmcacheInitPorts).toHaveLength(2);
    expect(decoder.lmcacheAllocPorts).toHaveLength(2);
    expect(decoder.lmcacheInitPorts.every((p) => p > 0)).toBe(true);
  });

  test('pushes KV, sends one exact msgpack ProxyNotif per rank, returns first_tok; the decoder uses the KV', async () => {
    const tokens = await tokenize({ prompt: 'The quick brown fox jumps over the lazy dog again and again' });
    const p = await postJson<Completion>(
      `${prefiller.url}/v1/completions`,
      {
        model: 'm',
        prompt: tokens,
        max_tokens: 1,
        stream: false,
        kv_transfer_params: disaggSpec('replicaA_1'),
      },
      { 'x-request-id': 'lm-1' },
    );
    expect(p.status).toBe(200);
    const firstTok = p.body.kv_transfer_params?.first_tok;
    expect(Number.isInteger(firstTok)).toBe(true);

    const notifs = await notificationsFor('replicaA_1', 2);
    // msgspec's tagged struct: a 2-entry map, tag first: {"type": "ProxyNotif", "req_id": "replicaA_1"}.
    const expected = Buffer.from([
      0x82,
      0xa4,
      ...Buffer.from('type'),
      0xaa,
      ...Buffer.from('ProxyNotif'),
      0xa6,
      ...Buffer.from('req_id'),
      0xaa,
      ...Buffer.from('replicaA_1'),
    ]);
    for (const n of notifs) expect(n.equals(expected)).toBe(true);
    expect(msgpackDecode(notifs[0]!)).toEqual({ type: 'ProxyNotif', req_id: 'replicaA_1' });
    expect(metricValue(await decoder.metrics(), 'sim_lmcache_kv_received_total')).toBeGreaterThanOrEqual(2);

    const d = await postJson<Completion>(
      `${decoder.url}/v1/completions`,
      { model: 'm', prompt: [...tokens, firstTok], max_tokens: 5, stream: false },
      { 'x-request-id': 'lm-1' },
    );
    expect(d.status).toBe(200);
    const entry = (await decoder.requests()).find((e) => e.id === 'lm-1');
    expect(entry).toMatchObject({ leg: 'decode', kvSource: 'lmcache', status: 200 });

    // First token + decoded continuation == what a direct request generates.
    const direct = await postJson<Completion>(`${decoder.url}/v1/completions`, {
      prompt: tokens,
      max_tokens: 6,
    });
    expect(p.body.choices[0]!.text + d.body.choices[0]!.text).toBe(direct.body.choices[0]!.text);
  });

  test('a decode whose KV never arrived recomputes locally and is counted', async () => {
    const before = metricValue(await decoder.metrics(), 'sim_lmcache_local_recomputes_total');
    const tokens = await tokenize({ prompt: 'nobody pushed anything for this prompt' });
    const d = await postJson<Completion>(
      `${decoder.url}/v1/completions`,
      { prompt: [...tokens, 101], max_tokens: 3 },
      { 'x-request-id': 'lm-miss' },
    );
    expect(d.status).toBe(200);
    expect((await decoder.requests()).find((e) => e.id === 'lm-miss')).toMatchObject({
      leg: 'decode',
      kvSource: 'local',
    });
    expect(metricValue(await decoder.metrics(), 'sim_lmcache_local_recomputes_total')).toBe(before + 1);
  });

  test('KV pushed to only one of two ranks is not enough: recompute', async () => {
    const tokens = await tokenize({ prompt: 'half of the ranks only got the cache here' });
    const p = await postJson<Completion>(`${prefiller.url}/v1/completions`, {
      prompt: tokens,
      max_tokens: 1,
      kv_transfer_params: disaggSpec('replicaA_half', {
        receiver_init_port: decoder.lmcacheInitPorts.slice(0, 1),
        receiver_alloc_port: decoder.lmcacheAllocPorts.slice(0, 1),
      }),
    });
    expect(p.status).toBe(200);
    await notificationsFor('replicaA_half', 1);
    await postJson(
      `${decoder.url}/v1/completions`,
      { prompt: [...tokens, p.body.kv_transfer_params!.first_tok], max_tokens: 2 },
      { 'x-request-id': 'lm-half' },
    );
    expect((await decoder.requests()).find((e) => e.id === 'lm-half')?.kvSource).toBe('local');
  });

  test('a chat prompt tokenized via /tokenize {messages} matches the chat template the engine applies', async () => {
    const messages = [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: [{ type: 'text', text: 'Say hello to the world' }] },
    ];
    const tokens = await tokenize({ messages });
    const chat = await postJson<Completion>(`${decoder.url}/v1/chat/completions`, {
      messages,
      max_tokens: 1,
    });
    expect(chat.body.usage.prompt_tokens).toBe(tokens.length);
    const p = await postJson<Completion>(`${prefiller.url}/v1/completions`, {
      prompt: tokens,
      max_tokens: 1,
      kv_transfer_params: disaggSpec('replicaA_chat'),
    });
    expect(p.status).toBe(200);
    await notificationsFor('replicaA_chat', 2);
    await postJson(
      `${decoder.url}/v1/completions`,
      { prompt: [...tokens, p.body.kv_transfer_params!.first_tok], max_tokens: 3 },
      { 'x-request-id': 'lm-chat' },
    );
    expect((await decoder.requests()).find((e) => e.id === 'lm-chat')?.kvSource).toBe('lmcache');
  });

  test('with a notify delay, a decode sent before the notification recomputes; one sent after uses the KV', async () => {
    const slow = await startEngine({
      model: 'm',
      role: 'prefill',
      connector: 'lmcache',
      lmcacheProxyHost: '127.0.0.1',
      lmcacheProxyPort: proxyPort,
      lmcacheNotifyDelayMs: 2000,
    });
    try {
      for (const [reqId, waitForNotif] of [
        ['replicaA_early', false],
        ['replicaA_late', true],
      ] as const) {
        const tokens = await tokenize({ prompt: `a prompt for ${reqId} with several words in it` });
        const p = await postJson<Completion>(`${slow.url}/v1/completions`, {
          prompt: tokens,
          max_tokens: 1,
          kv_transfer_params: disaggSpec(reqId),
        });
        expect(p.status).toBe(200);
        if (waitForNotif) await notificationsFor(reqId, 2);
        await postJson(
          `${decoder.url}/v1/completions`,
          { prompt: [...tokens, p.body.kv_transfer_params!.first_tok], max_tokens: 2 },
          { 'x-request-id': reqId },
        );
        const entry = (await decoder.requests()).find((e) => e.id === reqId);
        expect(entry?.kvSource).toBe(waitForNotif ? 'lmcache' : 'local');
      }
    } finally {
      await slow.stop();
    }
  });

  test.each([
    ['no req_id', { req_id: undefined }],
    ['no receiver_host', { receiver_host: undefined }],
    ['no init ports', { receiver_init_port: undefined }],
    ['no alloc ports', { receiver_alloc_port: [] }],
  ])('a disagg_spec with %s is rejected with 400', async (_name, over) => {
    const r = await postJson<Completion>(`${prefiller.url}/v1/completions`, {
      prompt: [5, 6, 7],
      max_tokens: 1,
      kv_transfer_params: disaggSpec('bad', over),
    });
    expect(r.status).toBe(400);
    expect(r.body.error?.message).toMatch(/disagg_spec/);
  });

  test('swapped init/alloc ports fail the push: 500 and no notification', async () => {
    const r = await postJson<Completion>(`${prefiller.url}/v1/completions`, {
      prompt: [9, 8, 7, 6],
      max_tokens: 1,
      kv_transfer_params: disaggSpec('replicaA_swapped', {
        receiver_init_port: decoder.lmcacheAllocPorts,
        receiver_alloc_port: decoder.lmcacheInitPorts,
      }),
    });
    expect(r.status).toBe(500);
    expect(r.body.error?.message).toMatch(/LMCache KV push failed/);
    await new Promise((res) => setTimeout(res, 300));
    expect(received.some((b) => (msgpackDecode(b) as { req_id: string }).req_id === 'replicaA_swapped')).toBe(
      false,
    );
  });
});
