// The router in front of a real vLLM prefill/decode pair (CPU build, NixlConnector). Every answer is
// compared with the same request answered by one engine alone (greedy, deterministic), and the path a
// request took is proven by the engines' own metrics: the prefiller's finished-request count and the
// decoder's prompt tokens by source (external_kv_transfer = pulled over NIXL, local_compute = here).
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { startRouter, type RunningRouter } from '../../router/src/server.js';
import { configDoc, type ClusterSpec } from '../../router/test/support/cluster.js';
import { metricValue, postJson, postSse, waitFor } from '../../router/test/support/http.js';
import {
  call,
  counts,
  delta,
  freshPrompt,
  LONG_CHARS,
  reference,
  requestBody,
  SHORT_CHARS,
  pathOf,
  type Api,
} from './support.js';
import { MAX_MODEL_LEN, SERVED_MODEL, startNixlPair, type NixlPair, engineLogDir } from './vllm-engine.js';

jest.setTimeout(240_000);

const THRESHOLD = 64;
let pair: NixlPair;
let router: RunningRouter;
let generation = 1;

function cluster(extra: Partial<ClusterSpec> = {}): ClusterSpec {
  return {
    name: 'default/real',
    models: [SERVED_MODEL],
    connector: 'nixl',
    routingThreshold: THRESHOLD,
    prefill: [pair.prefill],
    decode: [pair.decode],
    policies: { prefillTimeouts: { firstByteMs: 120_000 }, decodeTimeouts: { firstByteMs: 120_000 } },
    ...extra,
  };
}

function apply(extra: Partial<ClusterSpec> = {}): void {
  const r = router.applyConfig(configDoc([cluster(extra)], ++generation));
  expect(r.ok).toBe(true);
}

const logs = engineLogDir('real-nixl');

beforeAll(async () => {
  pair = await startNixlPair({ logDir: logs.path, prefix: 'nixl' });
  router = await startRouter({ kvNotifyPort: 0, logLevel: 'silent', engineStatsIntervalMs: 250 });
  apply();
}, 420_000);

afterAll(async () => {
  await router?.stop({ graceMs: 1000 });
  await pair?.stop();
  logs.remove();
});

async function routerPath(run: () => Promise<unknown>): Promise<'dpd' | 'direct'> {
  const before = await (await fetch(`${router.url}/metrics`)).text();
  await run();
  const after = await (await fetch(`${router.url}/metrics`)).text();
  const d = (path: string): number =>
    metricValue(after, 'router_requests_total', { path }) -
    metricValue(before, 'router_requests_total', { path });
  expect(d('dpd') + d('direct')).toBe(1);
  return d('dpd') === 1 ? 'dpd' : 'direct';
}

describe('answers through the router equal one engine greedy answer, on the path the threshold picks', () => {
  const cases: Array<[Api, boolean, 'long' | 'short']> = [];
  for (const api of ['completions', 'chat'] as const)
    for (const stream of [false, true])
      for (const size of ['long', 'short'] as const) cases.push([api, stream, size]);

  it.each(cases)('%s stream=%s %s prompt', async (api, stream, size) => {
    const prompt = freshPrompt(size === 'long' ? LONG_CHARS : SHORT_CHARS);
    const body = requestBody(api, prompt, stream ? { stream: true } : {});
    const [p0, d0] = await Promise.all([counts(pair.prefill), counts(pair.decode)]);
    let got!: Awaited<ReturnType<typeof call>>;
    const path = await routerPath(async () => (got = await call(router.url, api, body)));
    const [p1, d1] = await Promise.all([counts(pair.prefill), counts(pair.decode)]);
    expect(got.status).toBe(200);
    const ref = await reference(pair.prefill, api, body);
    expect(ref.status).toBe(200);
    expect(got.text).toBe(ref.text);
    expect(got.text.length).toBeGreaterThan(0);
    const p = delta(p1, p0);
    const d = delta(d1, d0);
    if (size === 'long') {
      expect(path).toBe('dpd');
      expect(p.finished).toBe(1); // the prefill leg ran on the prefiller
      expect(d.external).toBeGreaterThan(THRESHOLD); // the decoder pulled the prompt's KV
      expect(d.local).toBeLessThan(d.external);
    } else {
      expect(path).toBe('direct');
      expect(p.finished).toBe(0);
      expect(d.external).toBe(0);
      expect(d.local).toBeGreaterThan(0);
    }
    expect(d.finished).toBe(1);
  });

  it.each([
    ['long', 400],
    ['short', 8],
  ] as const)('a %s token-id prompt', async (size, n) => {
    // token ids of fresh text, from the engine's own tokenizer
    const tok = await postJson(`${pair.decode.url}/tokenize`, {
      model: SERVED_MODEL,
      prompt: freshPrompt(LONG_CHARS),
      add_special_tokens: true,
    });
    const ids = (tok.json!['tokens'] as number[]).slice(0, n);
    const body = requestBody('completions', ids);
    const d0 = await counts(pair.decode);
    let got!: Awaited<ReturnType<typeof call>>;
    const path = await routerPath(async () => (got = await call(router.url, 'completions', body)));
    const d = delta(await counts(pair.decode), d0);
    expect(got.status).toBe(200);
    expect(got.text).toBe((await reference(pair.prefill, 'completions', body)).text);
    // the router estimates a token-id prompt by its length: 400 ids are DPD, 8 are direct
    expect(path).toBe(size === 'long' ? 'dpd' : 'direct');
    expect(d.external > 0).toBe(size === 'long');
  });
});

describe('edge cases', () => {
  it('a first token that is a stop: the prefiller still returns kv_transfer_params; the answer is the stop', async () => {
    const prompt = freshPrompt(LONG_CHARS);
    const first = await call(
      pair.decode.url,
      'completions',
      requestBody('completions', prompt, { max_tokens: 1 }),
    );
    expect(first.status).toBe(200);
    const stopText = first.text;
    expect(stopText.length).toBeGreaterThan(0);
    // the prefill leg as the router sends it, straight to the prefiller: vLLM 0.32 returns full params
    const leg = await postJson(`${pair.prefill.url}/v1/completions`, {
      ...requestBody('completions', prompt, { stop: [stopText] }),
      max_tokens: 1,
      kv_transfer_params: { do_remote_decode: true, do_remote_prefill: false },
    });
    expect(leg.status).toBe(200);
    expect((leg.json!['choices'] as Array<Record<string, unknown>>)[0]!['finish_reason']).toBe('stop');
    expect(leg.json!['kv_transfer_params']).toEqual(expect.objectContaining({ do_remote_prefill: true }));
    for (const stream of [false, true]) {
      // the same prompt (its first token is the stop), so the decode leg finds it in its prefix cache:
      // what is checked here is the answer, the KV path is checked above
      const body = requestBody('completions', prompt, { stop: [stopText], stream });
      const ref = await reference(pair.prefill, 'completions', body);
      expect(ref.finishReason).toBe('stop');
      expect(ref.text).toBe('');
      const got = await call(router.url, 'completions', body);
      expect(got.status).toBe(200);
      expect(got.text).toBe(ref.text);
      expect(got.finishReason).toBe('stop');
    }
  });

  it('max_tokens: 1 on the DPD path', async () => {
    const body = requestBody('chat', freshPrompt(LONG_CHARS), { max_tokens: 1 });
    let got!: Awaited<ReturnType<typeof call>>;
    expect(await routerPath(async () => (got = await call(router.url, 'chat', body)))).toBe('dpd');
    expect(got.status).toBe(200);
    expect(got.finishReason).toBe('length');
    expect(got.text).toBe((await reference(pair.prefill, 'chat', body)).text);
  });

  it('no max_tokens: the decoder applies its own default (the rest of the context), as one engine does', async () => {
    const body = requestBody('completions', freshPrompt(LONG_CHARS));
    delete body['max_tokens'];
    let got!: Awaited<ReturnType<typeof call>>;
    expect(await routerPath(async () => (got = await call(router.url, 'completions', body)))).toBe('dpd');
    const ref = await reference(pair.prefill, 'completions', body);
    expect(got.status).toBe(200);
    expect(got.text).toBe(ref.text);
    const u = got.json!['usage'] as Record<string, number>;
    expect(u['prompt_tokens'] + u['completion_tokens']).toBeLessThanOrEqual(MAX_MODEL_LEN);
    expect(u['completion_tokens']).toBeGreaterThan(12);
  });

  it.each(['dpd', 'direct'] as const)(
    'n: 2 with temperature 0.8 on the %s path: two choices',
    async (path) => {
      const prompt = freshPrompt(path === 'dpd' ? LONG_CHARS : SHORT_CHARS);
      const body = requestBody('completions', prompt, { n: 2, temperature: 0.8, seed: 7 });
      let got!: Awaited<ReturnType<typeof call>>;
      expect(await routerPath(async () => (got = await call(router.url, 'completions', body)))).toBe(path);
      expect(got.status).toBe(200);
      const choices = got.json!['choices'] as Array<Record<string, unknown>>;
      expect(choices.map((c) => c['index']).sort()).toEqual([0, 1]);
      for (const c of choices) expect(typeof c['text']).toBe('string');
    },
  );

  it.each(['dpd', 'direct'] as const)(
    "a prompt over max_model_len: the engine's 400 passed through (%s)",
    async (path) => {
      // a prompt of ~1600 real tokens; for the direct case the threshold is raised past its estimate
      const prompt = freshPrompt(7000);
      if (path === 'direct') apply({ routingThreshold: 1_000_000 });
      try {
        const body = requestBody('completions', prompt);
        const ref = await reference(pair.decode, 'completions', body);
        let got!: Awaited<ReturnType<typeof call>>;
        expect(await routerPath(async () => (got = await call(router.url, 'completions', body)))).toBe(path);
        expect(ref.status).toBe(400);
        expect(got.status).toBe(400);
        const err = got.json!['error'] as Record<string, unknown>;
        expect(err).toEqual(ref.json!['error'] as Record<string, unknown>);
        expect(String(err['message'])).toMatch(/maximum context length|max_model_len|too long/i);
      } finally {
        if (path === 'direct') apply();
      }
    },
  );
});

describe('client abort mid-stream', () => {
  it.each(['dpd', 'direct'] as const)(
    'on the %s path both engines are idle again within 5 s',
    async (path) => {
      const body = requestBody('completions', freshPrompt(path === 'dpd' ? LONG_CHARS : SHORT_CHARS), {
        stream: true,
        max_tokens: 600,
        ignore_eos: true,
      });
      const ac = new AbortController();
      let seen = 0;
      const done = postSse(router.url + pathOf('completions'), body, {
        signal: ac.signal,
        onPayload: () => {
          if (++seen === 3) ac.abort();
        },
      }).catch(() => undefined);
      await waitFor('three chunks', () => seen >= 3, 120_000);
      await done;
      const t0 = Date.now();
      await waitFor(
        'no running request on either engine',
        async () => {
          const [p, d] = await Promise.all([counts(pair.prefill), counts(pair.decode)]);
          return p.running === 0 && d.running === 0;
        },
        5_000,
      );
      expect(Date.now() - t0).toBeLessThanOrEqual(5_000);
    },
  );
});

describe('least_loaded with the real vllm:* metrics', () => {
  it('moves short requests away from an engine busy with a long generation', async () => {
    // both engines can serve a direct request; the decoder is kept busy straight from the test
    apply({ loadBalancing: 'least_loaded', decode: [pair.decode, pair.prefill] });
    const ac = new AbortController();
    const BUSY = 4;
    let stop = false;
    try {
      // four workers keep re-issuing long generations to the decoder, so its queue never drains
      // while the short requests are placed (one generation of the tiny model lasts only seconds)
      const busy = Array.from({ length: BUSY }, async () => {
        while (!stop) {
          await postSse(
            pair.decode.url + pathOf('completions'),
            requestBody('completions', freshPrompt(SHORT_CHARS), {
              stream: true,
              max_tokens: 1000,
              ignore_eos: true,
            }),
            { signal: ac.signal },
          ).catch(() => undefined);
        }
      });
      await waitFor('the decoder runs them', async () => (await counts(pair.decode)).running >= BUSY, 60_000);
      const scraped = async (url: string) =>
        metricValue(await (await fetch(`${router.url}/metrics`)).text(), 'router_engine_scraped_load', {
          url,
        });
      await waitFor(
        'the router scraped that load',
        async () => (await scraped(pair.decode.url)) >= BUSY - 1,
        10_000,
      );
      const p0 = await counts(pair.prefill);
      for (let i = 0; i < 4; i++) {
        const r = await call(router.url, 'completions', requestBody('completions', freshPrompt(SHORT_CHARS)));
        expect(r.status).toBe(200);
      }
      const p1 = await counts(pair.prefill);
      expect(delta(p1, p0).finished).toBe(4); // the idle engine took all of them
      stop = true;
      ac.abort();
      await Promise.all(busy);
    } finally {
      stop = true;
      ac.abort();
      apply();
    }
  });
});
