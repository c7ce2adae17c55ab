// The simulator held to the real engine: the same requests go to a real vLLM prefiller (CPU build,
// NixlConnector kv_producer) and to the simulator, and every answer's JSON shape (keys, types,
// nesting) must be the same, field by field. Error bodies must also agree on status, type, param and
// wording (numbers aside: the two tokenizers differ). Drift in either fails here.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { getJson, postJson, postSse } from '../../router/test/support/http.js';
import { startEngine, type RunningEngine } from '../sim/harness.js';
import { shapeDiff, shapeOf, shapeOfAll } from './json-shape.js';
import { freshPrompt, LONG_CHARS, pathOf, requestBody, type Api } from './support.js';
import { MAX_MODEL_LEN, SERVED_MODEL, startVllm, type RealEngine, engineLogDir } from './vllm-engine.js';

jest.setTimeout(180_000);

let real: RealEngine;
let sim: RunningEngine;

const logs = engineLogDir('real-parity');

beforeAll(async () => {
  [real, sim] = await Promise.all([
    startVllm({ role: 'kv_producer', cpu: 0, logDir: logs.path, name: 'parity-prefill' }),
    startEngine({ model: SERVED_MODEL, connector: 'nixl', role: 'prefill', maxModelLen: MAX_MODEL_LEN }),
  ]);
}, 420_000);

afterAll(async () => {
  await Promise.all([real?.stop(), sim?.stop()]);
  logs.remove();
});

const bothJson = async (path: string, body: unknown) =>
  Promise.all([postJson(real.url + path, body), postJson(sim.url + path, body)]);

function expectSameShape(realValue: unknown, simValue: unknown): void {
  expect(shapeDiff(shapeOf(realValue), shapeOf(simValue))).toEqual([]);
}

describe('answers', () => {
  it.each(['completions', 'chat'] as const)('%s, not streamed', async (api: Api) => {
    const body = requestBody(api, freshPrompt(200), { max_tokens: 4 });
    const [r, s] = await bothJson(pathOf(api), body);
    expect([r.status, s.status]).toEqual([200, 200]);
    expectSameShape(r.json, s.json);
  });

  type ChunkKind = 'role' | 'content' | 'final' | 'usage';
  const kindOf = (c: Record<string, unknown>): ChunkKind => {
    const choices = c['choices'] as Array<Record<string, unknown>>;
    if (choices.length === 0) return 'usage';
    const ch = choices[0]!;
    if ((ch['delta'] as Record<string, unknown> | undefined)?.['role'] !== undefined) return 'role';
    return ch['finish_reason'] === null ? 'content' : 'final';
  };

  it.each([
    ['completions', false],
    ['completions', true],
    ['chat', false],
    ['chat', true],
  ] as const)('%s streamed, include_usage=%s: every kind of chunk', async (api, usage) => {
    const body = requestBody(api, freshPrompt(200), {
      max_tokens: 6,
      stream: true,
      ...(usage ? { stream_options: { include_usage: true } } : {}),
    });
    const [r, s] = await Promise.all([
      postSse(real.url + pathOf(api), body),
      postSse(sim.url + pathOf(api), body),
    ]);
    expect([r.done, s.done]).toEqual([true, true]);
    for (const kind of ['role', 'content', 'final', 'usage'] as const) {
      const rk = r.chunks.filter((c) => kindOf(c) === kind);
      const sk = s.chunks.filter((c) => kindOf(c) === kind);
      expect({ kind, sim: sk.length > 0 }).toEqual({ kind, sim: rk.length > 0 });
      if (rk.length > 0)
        expect({ kind, diff: shapeDiff(shapeOfAll(rk), shapeOfAll(sk)) }).toEqual({ kind, diff: [] });
    }
  });

  it('the NIXL prefill leg: kv_transfer_params with list-of-lists block ids and every key', async () => {
    const body = {
      ...requestBody('completions', freshPrompt(LONG_CHARS), { max_tokens: 1 }),
      kv_transfer_params: {
        do_remote_decode: true,
        do_remote_prefill: false,
        remote_engine_id: null,
        remote_block_ids: null,
        remote_host: null,
        remote_port: null,
      },
    };
    const [r, s] = await bothJson('/v1/completions', body);
    expect([r.status, s.status]).toEqual([200, 200]);
    expectSameShape(r.json, s.json);
    const rp = r.json!['kv_transfer_params'] as Record<string, unknown>;
    const sp = s.json!['kv_transfer_params'] as Record<string, unknown>;
    expect(Object.keys(sp)).toEqual(Object.keys(rp)); // same keys, same order
    expect(Array.isArray((rp['remote_block_ids'] as unknown[])[0])).toBe(true);
    for (const k of [
      'do_remote_prefill',
      'do_remote_decode',
      'transfer_mode',
      'tp_size',
      'dcp_size',
      'pp_size',
    ]) {
      expect({ k, v: sp[k] }).toEqual({ k, v: rp[k] });
    }
    expect(rp['remote_num_tokens']).toBe((r.json!['usage'] as Record<string, number>)['prompt_tokens']);
    expect(sp['remote_num_tokens']).toBe((s.json!['usage'] as Record<string, number>)['prompt_tokens']);
  });

  it('a prefill leg whose one token is a stop still returns the params (finish_reason stop)', async () => {
    const prompt = freshPrompt(LONG_CHARS);
    const legOf = async (e: { url: string }) => {
      const first = await postJson(
        `${e.url}/v1/completions`,
        requestBody('completions', prompt, { max_tokens: 1 }),
      );
      const stop = (first.json!['choices'] as Array<Record<string, string>>)[0]!['text']!;
      return postJson(`${e.url}/v1/completions`, {
        ...requestBody('completions', prompt, { max_tokens: 1, stop: [stop] }),
        kv_transfer_params: { do_remote_decode: true, do_remote_prefill: false },
      });
    };
    const [r, s] = await Promise.all([legOf(real), legOf(sim)]);
    for (const a of [r, s]) {
      const c = (a.json!['choices'] as Array<Record<string, unknown>>)[0]!;
      expect(c['finish_reason']).toBe('stop');
      expect(typeof c['stop_reason']).toBe('string');
      expect(a.json!['kv_transfer_params']).toEqual(expect.objectContaining({ do_remote_prefill: true }));
    }
    expectSameShape(r.json, s.json);
  });

  it('/v1/models', async () => {
    const [r, s] = await Promise.all([getJson(`${real.url}/v1/models`), getJson(`${sim.url}/v1/models`)]);
    expectSameShape(r.json, s.json);
    const [rm, sm] = [r.json, s.json].map((j) => (j!['data'] as Array<Record<string, unknown>>)[0]!);
    expect(sm!['max_model_len']).toBe(rm!['max_model_len']);
    expect(sm!['id']).toBe(rm!['id']);
  });
});

describe('errors', () => {
  const prompt = (chars: number) => freshPrompt(chars);
  const cases: Array<[string, string, () => Record<string, unknown>]> = [
    [
      'unknown model',
      '/v1/completions',
      () => ({ ...requestBody('completions', 'hi'), model: 'no-such-model' }),
    ],
    ['max_tokens 0', '/v1/completions', () => requestBody('completions', 'hi', { max_tokens: 0 })],
    ['no prompt', '/v1/completions', () => ({ model: SERVED_MODEL, max_tokens: 3 })],
    [
      'stream_options without stream',
      '/v1/chat/completions',
      () => requestBody('chat', 'hi', { stream_options: { include_usage: true } }),
    ],
    [
      'min_tokens over max_tokens',
      '/v1/completions',
      () => requestBody('completions', 'hi', { max_tokens: 2, min_tokens: 5 }),
    ],
    [
      'max_tokens over max_model_len',
      '/v1/completions',
      () => requestBody('completions', 'hi', { max_tokens: 5000 }),
    ],
    ['prompt over max_model_len', '/v1/completions', () => requestBody('completions', prompt(9000))],
  ];
  const wording = (m: unknown) => String(m).replace(/\d+/g, 'N');

  it.each(cases)('%s: same status, type, param and wording', async (_name, path, body) => {
    const b = body();
    const [r, s] = await bothJson(path, b);
    expect(s.status).toBe(r.status);
    expect(r.status).toBeGreaterThanOrEqual(400);
    expectSameShape(r.json, s.json);
    const [re, se] = [r.json, s.json].map((j) => j!['error'] as Record<string, unknown>);
    expect({ type: se!['type'], param: se!['param'], code: se!['code'] }).toEqual({
      type: re!['type'],
      param: re!['param'],
      code: re!['code'],
    });
    expect(wording(se!['message'])).toBe(wording(re!['message']));
  });
});

describe('limits', () => {
  it('prompt + max_tokens over max_model_len (each alone fits): max_tokens is clamped to the room left', async () => {
    const [r, s] = await bothJson(
      '/v1/completions',
      requestBody('completions', freshPrompt(1200), { max_tokens: 1000 }),
    );
    expect([r.status, s.status]).toEqual([200, 200]);
    for (const a of [r, s]) {
      const u = a.json!['usage'] as Record<string, number>;
      expect(u['total_tokens']).toBe(MAX_MODEL_LEN);
      expect(u['completion_tokens']).toBeLessThan(1000);
    }
  });
});

describe('/metrics', () => {
  const families = (text: string): Map<string, Set<string>> => {
    const out = new Map<string, Set<string>>();
    for (const line of text.split('\n')) {
      const m = /^(vllm:[a-z_]+)(?:\{([^}]*)\})? /.exec(line);
      if (!m) continue;
      const labels = new Set(
        (m[2] ?? '')
          .split(',')
          .filter(Boolean)
          .map((kv) => kv.split('=')[0]!),
      );
      out.set(m[1]!, labels);
    }
    return out;
  };

  it('every vllm:* family the simulator exports exists on the real engine with the same label names', async () => {
    const [r, s] = await Promise.all([real.metrics(), sim.metrics()]);
    const rf = families(r);
    const sf = families(s);
    expect(sf.size).toBeGreaterThanOrEqual(7);
    for (const [name, labels] of sf) {
      expect({ name, labels: [...(rf.get(name) ?? ['<missing on the real engine>'])].sort() }).toEqual({
        name,
        labels: [...labels].sort(),
      });
    }
    for (const routerReads of ['vllm:num_requests_running', 'vllm:num_requests_waiting']) {
      expect(rf.has(routerReads) && sf.has(routerReads)).toBe(true);
    }
  });

  it('the label values the tier reads: prompt token sources and finished reasons', async () => {
    const values = (text: string, name: string, label: string): string[] =>
      [
        ...new Set(
          text
            .split('\n')
            .filter((l) => l.startsWith(`${name}{`))
            .map((l) => new RegExp(`${label}="([^"]*)"`).exec(l)?.[1] ?? ''),
        ),
      ].sort();
    const [r, s] = await Promise.all([real.metrics(), sim.metrics()]);
    for (const [name, label] of [
      ['vllm:prompt_tokens_by_source_total', 'source'],
      ['vllm:request_success_total', 'finished_reason'],
    ] as const) {
      expect(values(s, name, label)).toEqual(values(r, name, label));
    }
  });
});
