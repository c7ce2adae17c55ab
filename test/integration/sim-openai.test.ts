// The simulator's OpenAI surface behaves like vLLM's: SSE framing, usage, validation errors in OpenAI shape,
// deterministic tokenization shared by all engines, /metrics under vLLM's names, and a request log.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { startEngine, stopAll, type RunningEngine } from '../sim/harness.js';
import { metricValue, postJson, postSse, waitFor } from '../sim/http-client.js';

jest.setTimeout(120_000);

let a: RunningEngine;
let b: RunningEngine;

beforeAll(async () => {
  [a, b] = await Promise.all([
    startEngine({ model: 'sim-a' }),
    startEngine({ model: 'sim-a', host: '127.0.0.3' }),
  ]);
});

afterAll(async () => {
  await stopAll();
});

type Chunk = {
  object: string;
  choices: Array<{
    text?: string;
    delta?: { role?: string; content?: string };
    finish_reason: string | null;
  }>;
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null;
};

describe('streaming', () => {
  test('completions stream: text/event-stream, one chunk per token, finish on the last, usage chunk, [DONE]', async () => {
    const r = await postSse(`${a.url}/v1/completions`, {
      model: 'sim-a',
      prompt: 'stream me',
      max_tokens: 4,
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(r.status).toBe(200);
    expect(r.contentType).toMatch(/^text\/event-stream/);
    expect(r.raw.endsWith('data: [DONE]\n\n')).toBe(true);
    const events = r.events.slice(0, -1) as Chunk[];
    const tokens = events.filter((e) => e.choices.length > 0);
    expect(tokens).toHaveLength(4);
    expect(tokens.every((e) => e.object === 'text_completion')).toBe(true);
    expect(tokens.map((e) => e.choices[0]!.finish_reason)).toEqual([null, null, null, 'length']);
    const last = events[events.length - 1]!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toEqual({ prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 });

    // Same text as the non-streaming answer.
    const whole = await postJson<{ choices: Array<{ text: string }> }>(`${a.url}/v1/completions`, {
      prompt: 'stream me',
      max_tokens: 4,
    });
    expect(tokens.map((e) => e.choices[0]!.text).join('')).toBe(whole.body.choices[0]!.text);
  });

  test('without include_usage there is no usage chunk', async () => {
    const r = await postSse(`${a.url}/v1/completions`, { prompt: 'x', max_tokens: 2, stream: true });
    const events = r.events.slice(0, -1) as Chunk[];
    expect(events).toHaveLength(2);
    expect(events.every((e) => e.usage === undefined)).toBe(true);
  });

  test('chat stream opens with the assistant role chunk and carries content deltas', async () => {
    const r = await postSse(`${a.url}/v1/chat/completions`, {
      messages: [{ role: 'user', content: 'hello' }],
      max_completion_tokens: 3,
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(r.contentType).toMatch(/^text\/event-stream/);
    expect(r.events[r.events.length - 1]).toBe('[DONE]');
    const events = r.events.slice(0, -1) as Chunk[];
    expect(events[0]!.object).toBe('chat.completion.chunk');
    expect(events[0]!.choices[0]!.delta).toEqual({ role: 'assistant', content: '' });
    const content = events.slice(1, 4);
    expect(content.every((e) => typeof e.choices[0]!.delta!.content === 'string')).toBe(true);
    expect(content[2]!.choices[0]!.finish_reason).toBe('length');
    expect(events[4]!.usage?.completion_tokens).toBe(3);
  });
});

describe('non-streaming shapes', () => {
  test('completion and chat bodies', async () => {
    const c = await postJson<Record<string, unknown>>(
      `${a.url}/v1/completions`,
      { prompt: [11, 12, 13], max_tokens: 2 },
      { 'x-request-id': 'shape-1' },
    );
    expect(c.status).toBe(200);
    expect(c.headers.get('content-type')).toMatch(/application\/json/);
    expect(c.body).toMatchObject({
      id: 'cmpl-shape-1',
      object: 'text_completion',
      model: 'sim-a',
      usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
      kv_transfer_params: null,
    });
    const chat = await postJson<Record<string, unknown>>(`${a.url}/v1/chat/completions`, {
      model: 'sim-a',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 2,
    });
    expect(chat.body).toMatchObject({
      object: 'chat.completion',
      choices: [{ index: 0, message: { role: 'assistant' }, finish_reason: 'length' }],
    });
  });

  test('output is deterministic across engines and requests', async () => {
    const body = { prompt: 'Deterministic output please', max_tokens: 8 };
    const [x, y] = await Promise.all([
      postJson(`${a.url}/v1/completions`, body),
      postJson(`${b.url}/v1/completions`, body),
    ]);
    expect(x.body.choices).toEqual(y.body.choices);
  });

  test('a missing max_tokens uses the engine default, never 0', async () => {
    const r = await postJson<{ usage: { completion_tokens: number } }>(`${a.url}/v1/completions`, {
      prompt: 'x',
    });
    expect(r.status).toBe(200);
    expect(r.body.usage.completion_tokens).toBe(16);
  });
});

describe('validation like vLLM', () => {
  test.each([
    ['max_tokens 0', { prompt: 'x', max_tokens: 0 }, /max_tokens must be at least 1/],
    ['max_tokens -1', { prompt: 'x', max_tokens: -1 }, /max_tokens must be at least 1/],
    ['min_tokens > max_tokens', { prompt: 'x', max_tokens: 2, min_tokens: 3 }, /min_tokens/],
    [
      'stream_options without stream',
      { prompt: 'x', stream_options: { include_usage: true } },
      /stream=True/,
    ],
    [
      'max_tokens over max_model_len',
      { prompt: 'x', max_tokens: 100000 },
      /cannot be greater than max_model_len/,
    ],
    ['no prompt', { max_tokens: 2 }, /prompt/],
  ])('%s -> 400 in OpenAI error shape', async (_name, body, message) => {
    const r = await postJson<{ error: { message: string; type: string; code: number } }>(
      `${a.url}/v1/completions`,
      body,
    );
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ type: 'BadRequestError', code: 400 });
    expect(r.body.error.message).toMatch(message);
  });

  test('max_completion_tokens 0 on chat -> 400', async () => {
    const r = await postJson(`${a.url}/v1/chat/completions`, {
      messages: [{ role: 'user', content: 'x' }],
      max_completion_tokens: 0,
    });
    expect(r.status).toBe(400);
  });

  test('unknown model -> 404 NotFoundError', async () => {
    const r = await postJson<{ error: Record<string, unknown> }>(`${a.url}/v1/completions`, {
      model: 'nope',
      prompt: 'x',
    });
    expect(r.status).toBe(404);
    expect(r.body.error).toMatchObject({ type: 'NotFoundError', code: 404 });
    expect(r.body.error.message).toMatch(/nope/);
  });

  test('malformed JSON -> 400', async () => {
    const r = await postJson<{ error: { code: number } }>(`${a.url}/v1/chat/completions`, '{"messages": [');
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe(400);
  });
});

describe('tokenize, models, health', () => {
  test('/tokenize: same text -> same tokens on every engine; token lists pass through; messages use the template', async () => {
    const text = 'Tokenize this sentence, deterministically: 42 times!';
    const [x, y] = await Promise.all([
      postJson<{ tokens: number[]; count: number; max_model_len: number }>(`${a.url}/tokenize`, {
        prompt: text,
      }),
      postJson<{ tokens: number[] }>(`${b.url}/tokenize`, { model: 'sim-a', prompt: text }),
    ]);
    expect(x.body.tokens).toEqual(y.body.tokens);
    expect(x.body.count).toBe(x.body.tokens.length);
    // Roughly the chars/4 rule a router's estimator uses.
    expect(x.body.count).toBeGreaterThanOrEqual(Math.floor(text.length / 5));
    expect(x.body.count).toBeLessThanOrEqual(text.length);
    const ids = await postJson<{ tokens: number[] }>(`${a.url}/tokenize`, { prompt: [7, 8, 9] });
    expect(ids.body.tokens).toEqual([7, 8, 9]);
    const msgs = [{ role: 'user', content: text }];
    const chat = await postJson<{ tokens: number[] }>(`${a.url}/tokenize`, { messages: msgs });
    expect(chat.body.tokens.length).toBeGreaterThan(x.body.tokens.length);
    const completion = await postJson<{ usage: { prompt_tokens: number } }>(`${a.url}/v1/chat/completions`, {
      messages: msgs,
      max_tokens: 1,
    });
    expect(completion.body.usage.prompt_tokens).toBe(chat.body.tokens.length);
  });

  test('/v1/models lists the served model; /health is 200', async () => {
    const m = await (await fetch(`${a.url}/v1/models`)).json();
    expect(m).toMatchObject({ object: 'list', data: [{ id: 'sim-a', object: 'model' }] });
    expect((await fetch(`${a.url}/health`)).status).toBe(200);
  });

  test('/health is 503 during --startup-ms', async () => {
    const slow = await startEngine({ startupMs: 60_000 });
    try {
      expect((await fetch(`${slow.url}/health`)).status).toBe(503);
      expect((await postJson(`${slow.url}/v1/completions`, { prompt: 'x' })).status).toBe(503);
    } finally {
      await slow.stop();
    }
  });
});

describe('client abort', () => {
  test('a client that goes away mid-generation is logged as 499 and frees its sequence slot', async () => {
    const slow = await startEngine({ itlMs: 50 });
    try {
      const ac = new AbortController();
      const pending = fetch(`${slow.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': 'abort-1' },
        body: JSON.stringify({ prompt: 'long one', max_tokens: 200 }),
        signal: ac.signal,
      });
      await waitFor(async () => metricValue(await slow.metrics(), 'vllm:num_requests_running') === 1);
      ac.abort();
      await expect(pending).rejects.toThrow();
      await waitFor(async () => (await slow.requests()).find((r) => r.id === 'abort-1')?.status === 499);
      expect(metricValue(await slow.metrics(), 'vllm:num_requests_running')).toBe(0);
      expect(metricValue(await slow.metrics(), 'vllm:generation_tokens_total')).toBeLessThan(200);
    } finally {
      await slow.stop();
    }
  });
});

describe('metrics and request log', () => {
  test('/metrics exposes vLLM names and counts tokens', async () => {
    await a.reset();
    await postJson(`${a.url}/v1/completions`, { prompt: [1, 2, 3, 4, 5], max_tokens: 3 });
    const text = await a.metrics();
    for (const name of [
      'vllm:num_requests_running',
      'vllm:num_requests_waiting',
      'vllm:kv_cache_usage_perc',
      'vllm:prompt_tokens_total',
      'vllm:generation_tokens_total',
    ]) {
      expect(text).toMatch(new RegExp(`^${name}\\{model_name="sim-a"`, 'm'));
    }
    expect(metricValue(text, 'vllm:prompt_tokens_total')).toBe(5);
    expect(metricValue(text, 'vllm:generation_tokens_total')).toBe(3);
    expect(metricValue(text, 'vllm:num_requests_running')).toBe(0);
  });

  test('/sim/requests logs id, path, leg, kvSource, model, tokens, stream and status; reset clears it', async () => {
    await postJson(
      `${a.url}/v1/chat/completions`,
      { messages: [{ role: 'user', content: 'log me' }], max_tokens: 2 },
      {
        'x-request-id': 'log-1',
      },
    );
    await postJson(`${a.url}/v1/completions`, { prompt: 'x', max_tokens: 0 }, { 'x-request-id': 'log-bad' });
    const log = await a.requests();
    const e = log.find((r) => r.id === 'log-1');
    expect(e).toMatchObject({
      path: '/v1/chat/completions',
      leg: 'direct',
      kvSource: 'local',
      model: 'sim-a',
      maxTokens: 2,
      stream: false,
      status: 200,
    });
    expect(e!.promptTokens).toBeGreaterThan(0);
    expect(typeof e!.ts).toBe('number');
    await a.reset();
    expect(await a.requests()).toEqual([]);
  });
});
