// `node --import tsx test/demo/threshold-sweep.ts`: what the routing threshold trades, measured
// against engine simulators behind the router. For each prompt length it sends the same long
// request direct (the decoder prefills it) and disaggregated (the prefiller does, KV moves over
// NIXL), while short background streams keep decoding on the decoder, and prints a table: TTFT of
// the long request each way, and the inter-token latency the background streams saw meanwhile.
// The engines follow the simulator's latency model (test/sim/latency-model.ts), set by the flags.
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { startRouter, type RunningRouter } from '../../router/src/server.js';
import { timedStream } from '../bench/router-http.js';
import { startEngine, type EngineOptions, type RunningEngine } from '../sim/harness.js';

const HELP = `Usage: node --import tsx test/demo/threshold-sweep.ts [flags]

  --lengths a,b,...              prompt lengths in estimated tokens (default 64,256,1024,4096)
  --samples N                    long requests per length and mode (default 5)
  --background N                 concurrent short streams on the decoder (default 4)
  --prefill-ms-per-token X       engine prefill cost (default 0.1: ~10k tokens/s)
  --itl-ms X                     inter-token latency of a decode step (default 15)
  --kv-transfer-ms-per-token X   NIXL transfer cost (default 0.005)
  --interference-factor X        decode step slowdown per prefill running on the same engine (default 1)
  --json                         also print one JSON line with every measurement`;

const MODEL = 'sweep-model';
const FOREGROUND_MAX_TOKENS = 8;
const BACKGROUND_MAX_TOKENS = 64;

interface Row {
  tokens: number;
  ttftDirectMs: number;
  ttftDpdMs: number;
  bgItlDirect: ReturnType<typeof itlStats>;
  bgItlDpd: ReturnType<typeof itlStats>;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** A prompt the router estimates at exactly n tokens (chars / 4). */
const promptOf = (n: number): string =>
  'lorem ipsum dolor sit amet '.repeat(Math.ceil((n * 4) / 27) + 1).slice(0, n * 4);

/** Short streams that keep the decoder busy; records every gap between two tokens, with its end time. */
function backgroundStreams(routerUrl: string, n: number) {
  const gaps: Array<{ at: number; ms: number }> = [];
  let running = true;
  const one = async (): Promise<void> => {
    const res = await request(`${routerUrl}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, prompt: 'Hi', max_tokens: BACKGROUND_MAX_TOKENS, stream: true }),
    });
    let last: number | undefined;
    for await (const chunk of res.body) {
      const now = performance.now();
      // one token per SSE event; the simulator writes each as soon as it is generated
      const events = (chunk as Buffer)
        .toString('utf8')
        .split('\n\n')
        .filter((e) => e.includes('"text"'));
      for (let i = 0; i < events.length; i++) {
        if (last !== undefined && i === 0) gaps.push({ at: now, ms: now - last });
        last = now;
      }
    }
  };
  const errors: string[] = [];
  const loops = Array.from({ length: n }, async () => {
    while (running) {
      await one().catch((err: Error) => {
        errors.push(err.message);
        running = false;
      });
    }
  });
  return {
    gapsWithin: (windows: Array<[number, number]>): number[] =>
      gaps.filter((g) => windows.some(([from, to]) => g.at >= from && g.at <= to)).map((g) => g.ms),
    stop: async () => {
      running = false;
      await Promise.all(loops);
      if (errors.length > 0) throw new Error(`background stream failed: ${errors[0]}`);
    },
  };
}

function routerConfig(prefill: RunningEngine, decode: RunningEngine, threshold: number) {
  return {
    generation: threshold,
    clusters: [
      {
        name: 'sweep',
        models: [MODEL],
        connector: 'nixl' as const,
        routingThreshold: threshold,
        prefill: { endpoints: [{ id: 'prefill-0', url: prefill.url }] },
        decode: { endpoints: [{ id: 'decode-0', url: decode.url }] },
      },
    ],
    peers: [],
  };
}

async function measure(
  router: RunningRouter,
  engines: { prefill: RunningEngine; decode: RunningEngine },
  tokens: number,
  mode: 'direct' | 'dpd',
  o: { samples: number; background: number },
): Promise<{ ttftMs: number; itl: number[] }> {
  // The long prompt is exactly `tokens`: threshold `tokens` sends it DPD, `tokens + 1` direct.
  const applied = router.applyConfig(
    routerConfig(engines.prefill, engines.decode, mode === 'dpd' ? tokens : tokens + 1),
  );
  if (!applied.ok) throw new Error(`config rejected: ${JSON.stringify(applied)}`);
  const bg = backgroundStreams(router.url, o.background);
  await new Promise((r) => setTimeout(r, 300)); // streams under way before the first long request
  const ttfts: number[] = [];
  // While the long prompt is being prefilled (send -> first token): where a local prefill interferes.
  const prefillWindows: Array<[number, number]> = [];
  const before = (await engines.prefill.requests()).length;
  for (let i = 0; i < o.samples; i++) {
    const sentAt = performance.now();
    const r = await timedStream(`${router.url}/v1/completions`, {
      model: MODEL,
      prompt: promptOf(tokens),
      max_tokens: FOREGROUND_MAX_TOKENS,
      stream: true,
    });
    if (r.status !== 200 || r.ttftMs === undefined)
      throw new Error(`long request failed: ${r.status} ${r.body}`);
    ttfts.push(r.ttftMs);
    prefillWindows.push([sentAt, sentAt + r.ttftMs]);
  }
  await bg.stop();
  const prefills = (await engines.prefill.requests()).length - before;
  if (prefills !== (mode === 'dpd' ? o.samples : 0)) {
    throw new Error(`expected ${mode} for ${tokens} tokens, but the prefiller saw ${prefills} requests`);
  }
  return { ttftMs: median(ttfts), itl: bg.gapsWithin(prefillWindows) };
}

const itlStats = (xs: number[]) => ({
  mean: xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN,
  max: xs.length ? Math.max(...xs) : NaN,
  n: xs.length,
});
const f0 = (x: number): string => x.toFixed(0);
const itlCell = (s: ReturnType<typeof itlStats>): string =>
  s.n === 0 ? 'no token in the window' : `${f0(s.mean)} / ${f0(s.max)}`;

function printTable(rows: Row[], latency: EngineOptions): void {
  const lines = [
    `Engine model: prefill ${latency.prefillMsPerToken} ms/token, ITL ${latency.itlMs} ms, ` +
      `KV transfer ${latency.kvTransferMsPerToken} ms/token, interference factor ${latency.interferenceFactor}`,
    '',
    '| prompt tokens | TTFT direct (ms) | TTFT DPD (ms) | DPD - direct (ms) | decoder ITL while it prefills, direct: mean / max (ms) | decoder ITL while the prefiller prefills, DPD: mean / max (ms) |',
    '| ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.tokens} | ${f0(r.ttftDirectMs)} | ${f0(r.ttftDpdMs)} | ${r.ttftDpdMs >= r.ttftDirectMs ? '+' : ''}${f0(r.ttftDpdMs - r.ttftDirectMs)} | ` +
        `${itlCell(r.bgItlDirect)} | ${itlCell(r.bgItlDpd)} |`,
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      lengths: { type: 'string', default: '64,256,1024,4096' },
      samples: { type: 'string', default: '5' },
      background: { type: 'string', default: '4' },
      'prefill-ms-per-token': { type: 'string', default: '0.1' },
      'itl-ms': { type: 'string', default: '15' },
      'kv-transfer-ms-per-token': { type: 'string', default: '0.005' },
      'interference-factor': { type: 'string', default: '1' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return;
  }
  const lengths = values.lengths.split(',').map(Number);
  if (lengths.some((n) => !Number.isInteger(n) || n < 1))
    throw new Error('--lengths takes positive integers');
  const latency: EngineOptions = {
    prefillMsPerToken: Number(values['prefill-ms-per-token']),
    itlMs: Number(values['itl-ms']),
    kvTransferMsPerToken: Number(values['kv-transfer-ms-per-token']),
    interferenceFactor: Number(values['interference-factor']),
  };
  const o = { samples: Number(values.samples), background: Number(values.background) };
  const common: EngineOptions = {
    host: '127.0.0.1',
    model: MODEL,
    connector: 'nixl',
    nixlSideChannelHost: '127.0.0.1',
    maxModelLen: 2 * Math.max(...lengths) + 1024, // the simulator's tokenizer counts more than chars/4
    logLevel: 'error',
    ...latency,
  };
  const stops: Array<() => Promise<void>> = [];
  try {
    process.stderr.write('[sweep] starting a prefill and a decode engine simulator and the router ...\n');
    const [prefill, decode] = await Promise.all([
      startEngine({ ...common, role: 'prefill' }),
      startEngine({ ...common, role: 'decode' }),
    ]);
    stops.push(
      () => prefill.stop(),
      () => decode.stop(),
    );
    const router = await startRouter({
      host: '127.0.0.1',
      port: 0,
      adminSocket: null,
      kvNotifyHost: '127.0.0.1',
      kvNotifyPort: 0,
      logLevel: 'error',
      handleSignals: false,
      config: routerConfig(prefill, decode, 0),
    });
    stops.unshift(() => router.stop({ graceMs: 1000 }));
    const rows: Row[] = [];
    for (const tokens of lengths) {
      process.stderr.write(`[sweep] ${tokens} tokens: direct, then DPD ...\n`);
      const direct = await measure(router, { prefill, decode }, tokens, 'direct', o);
      const dpd = await measure(router, { prefill, decode }, tokens, 'dpd', o);
      rows.push({
        tokens,
        ttftDirectMs: direct.ttftMs,
        ttftDpdMs: dpd.ttftMs,
        bgItlDirect: itlStats(direct.itl),
        bgItlDpd: itlStats(dpd.itl),
      });
    }
    printTable(rows, latency);
    if (values.json)
      process.stdout.write(`${JSON.stringify({ event: 'threshold-sweep', latency, ...o, rows })}\n`);
  } finally {
    for (const stop of stops) await stop().catch(() => undefined);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`threshold-sweep: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
