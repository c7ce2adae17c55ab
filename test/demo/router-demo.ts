// `npm run demo`: a simulated 2P:1D NIXL cluster (plus a 1P:1D LMCache one) behind the router
// process. Sends a short and a long request, prints which path each took (router metrics + what
// each engine saw) and its timing, then stops everything - also on Ctrl-C and on failure.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { stringify as toYaml } from 'yaml';
import { startRouterProcess, type RouterProcess } from '../bench/router-process.js';
import { getText, increasedSeries, metricSum, timedStream } from '../bench/router-http.js';
import { startEngine, type EngineOptions, type RunningEngine } from '../sim/harness.js';

const HELP = `Usage: npm run demo -- [--threshold N] [--no-lmcache] [--json]

  --threshold N   routing threshold in estimated prompt tokens (default 256)
  --no-lmcache    skip the LMCache round (NIXL only)
  --json          also print one JSON line {"event":"demo-result",...} at the end`;

// Engine timing of a mid-size model on one node, so DPD vs direct differences are visible.
const LATENCY: EngineOptions = {
  prefillMsPerToken: 0.2,
  itlMs: 15,
  kvTransferMsPerToken: 0.02,
  interferenceFactor: 0.5,
};
const NIXL_MODEL = 'demo-model';
const LMCACHE_MODEL = 'demo-model-lmcache';
const MAX_TOKENS = 16;
const SHORT_PROMPT = 'Write one sentence about the sea.';
const LONG_PROMPT =
  'Summarise the following report. ' +
  'The harbour authority recorded the tides, the wind and the ships that came and went each day. '.repeat(60);

type Path = 'direct' | 'dpd' | 'fallback' | 'none';

interface Leg {
  engine: string;
  leg: string;
  kvSource: string;
  status: number;
}

interface RoundResult {
  name: string;
  connector: 'nixl' | 'lmcache';
  estimatedTokens: number;
  expectedPath: Path;
  path: Path;
  legs: Leg[];
  ttftMs: number | undefined;
  totalMs: number;
  prefillLegMs: number | undefined;
  tokens: number;
  ok: boolean;
}

const t0 = Date.now();
function say(msg: string): void {
  process.stdout.write(`[demo ${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${msg}\n`);
}

const cleanups: Array<() => Promise<void>> = [];
let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    say('stopping the router and the engines ...');
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    say('all stopped');
  })();
  return cleaning;
}

function estimateTokens(text: string): number {
  return Math.floor(text.length / 4); // the router's estimator for a plain string prompt
}

async function startEngines(
  what: string,
  specs: Array<{ id: string } & EngineOptions>,
): Promise<Map<string, RunningEngine>> {
  say(`starting ${what} ...`);
  const engines = await Promise.all(
    specs.map(async ({ id, ...opts }) => {
      const e = await startEngine({ host: '127.0.0.1', logLevel: 'warn', ...LATENCY, ...opts });
      cleanups.push(() => e.stop());
      return [id, e] as const;
    }),
  );
  for (const [id, e] of engines) {
    const extra =
      e.nixlSideChannelPort !== null
        ? `, NIXL side channel :${e.nixlSideChannelPort}`
        : e.lmcacheInitPorts.length > 0
          ? `, LMCache receiver init :${e.lmcacheInitPorts.join(',')} alloc :${e.lmcacheAllocPorts.join(',')}`
          : '';
    say(`  ${id.padEnd(10)} ${e.url} (pid ${e.pid}${extra})`);
  }
  return new Map(engines);
}

function clusterDoc(
  name: string,
  connector: 'nixl' | 'lmcache',
  model: string,
  threshold: number,
  engines: Map<string, RunningEngine>,
): Record<string, unknown> {
  const ids = [...engines.keys()];
  return {
    name,
    models: [model],
    connector,
    routingThreshold: threshold,
    loadBalancing: 'round_robin',
    prefill: {
      endpoints: ids
        .filter((id) => id.startsWith('prefill'))
        .map((id) => ({ id, url: engines.get(id)!.url })),
    },
    decode: {
      endpoints: ids
        .filter((id) => id.startsWith('decode'))
        .map((id) => {
          const e = engines.get(id)!;
          return connector === 'lmcache'
            ? {
                id,
                url: e.url,
                lmcache: {
                  receiverHost: e.host,
                  initPorts: e.lmcacheInitPorts,
                  allocPorts: e.lmcacheAllocPorts,
                },
              }
            : { id, url: e.url, nixl: { sideChannelHost: e.host, sideChannelPort: e.nixlSideChannelPort } };
        }),
    },
    policies: { prefillFailurePolicy: 'fail' },
  };
}

async function waitForModel(router: RouterProcess, model: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const models = await getText(`${router.url}/v1/models`).catch(() => '');
    if (models.includes(`"${model}"`)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the router did not pick up the config for ${model} within 20 s`);
}

async function runRound(
  router: RouterProcess,
  engines: Map<string, RunningEngine>,
  round: {
    name: string;
    connector: 'nixl' | 'lmcache';
    cluster: string;
    model: string;
    threshold: number;
    prompt: string;
    chat?: boolean;
  },
): Promise<RoundResult> {
  const estimate = estimateTokens(round.prompt);
  const expectedPath: Path = round.threshold === 0 || estimate >= round.threshold ? 'dpd' : 'direct';
  const relation = estimate >= round.threshold ? '>=' : '<';
  say(
    `${round.name} request: ~${estimate} estimated tokens (${relation} threshold ${round.threshold}), ` +
      `${round.chat ? 'chat' : 'completion'}, stream, max_tokens ${MAX_TOKENS} ...`,
  );
  const requestId = `demo-${round.name}-${randomUUID().slice(0, 8)}`;
  const before = await getText(`${router.url}/metrics`);
  const body = round.chat
    ? { model: round.model, messages: [{ role: 'user', content: round.prompt }] }
    : { model: round.model, prompt: round.prompt };
  const reply = await timedStream(
    `${router.url}${round.chat ? '/v1/chat/completions' : '/v1/completions'}`,
    { ...body, max_tokens: MAX_TOKENS, stream: true },
    { 'x-request-id': requestId },
  );
  const after = await getText(`${router.url}/metrics`);
  if (reply.status !== 200 || !reply.done) {
    throw new Error(
      `${round.name} request failed: HTTP ${reply.status} ${reply.body || '(stream ended early)'}`,
    );
  }

  const series = increasedSeries(before, after, 'router_requests_total').filter(
    (s) => s['cluster'] === round.cluster,
  );
  const path = (series[0]?.['path'] ?? 'none') as Path;
  const prefillSum = (text: string): number =>
    metricSum(text, 'router_prefill_duration_seconds_sum', { cluster: round.cluster });
  const prefillLegMs = path === 'dpd' ? (prefillSum(after) - prefillSum(before)) * 1000 : undefined;
  const legs: Leg[] = [];
  for (const [id, engine] of engines) {
    for (const r of await engine.requests()) {
      if (r.id === requestId) legs.push({ engine: id, leg: r.leg, kvSource: r.kvSource, status: r.status });
    }
  }
  legs.sort((a, b) => (a.leg === 'prefill' ? -1 : b.leg === 'prefill' ? 1 : 0));
  const kvPulled = legs.some((l) => l.leg === 'decode' && l.kvSource === round.connector);
  const ok =
    path === expectedPath &&
    (path === 'direct'
      ? legs.length === 1 && legs[0]!.leg === 'direct'
      : legs.some((l) => l.leg === 'prefill') && kvPulled);

  const describe =
    path === 'direct'
      ? `${legs.map((l) => l.engine).join(', ')} served it directly (prompt computed locally)`
      : legs
          .map((l) =>
            l.leg === 'prefill'
              ? `${l.engine} prefilled it (max_tokens 1)`
              : `${l.engine} decoded it with KV from ${l.kvSource === 'local' ? 'a local recompute' : l.kvSource.toUpperCase()}`,
          )
          .join(' -> ');
  say(`  path: ${path}${path === 'dpd' ? ` (${round.connector})` : ''}: ${describe}`);
  say(
    `  timing: TTFT ${fmtMs(reply.ttftMs)}, total ${fmtMs(reply.totalMs)}, ${reply.tokenEvents} tokens` +
      (prefillLegMs !== undefined ? `; prefill leg ${fmtMs(prefillLegMs)} (router metric)` : ''),
  );
  if (!ok)
    say(`  UNEXPECTED: expected path ${expectedPath}${expectedPath === 'dpd' ? ' with a KV pull' : ''}`);
  return {
    name: round.name,
    connector: round.connector,
    estimatedTokens: estimate,
    expectedPath,
    path,
    legs,
    ttftMs: reply.ttftMs,
    totalMs: reply.totalMs,
    prefillLegMs,
    tokens: reply.tokenEvents,
    ok,
  };
}

function fmtMs(ms: number | undefined): string {
  return ms === undefined ? '-' : `${ms.toFixed(0)} ms`;
}

function printSummary(results: RoundResult[]): void {
  const rows = [
    ['request', 'est. tokens', 'path', 'legs', 'TTFT', 'total'],
    ...results.map((r) => [
      r.name,
      String(r.estimatedTokens),
      r.path === 'dpd' ? `dpd/${r.connector}` : r.path,
      r.legs.map((l) => (l.leg === 'direct' ? l.engine : `${l.engine}:${l.leg}`)).join(' -> '),
      fmtMs(r.ttftMs),
      fmtMs(r.totalMs),
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  say('summary:');
  for (const row of rows) say(`  ${row.map((c, i) => c.padEnd(widths[i]!)).join('  ')}`);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      threshold: { type: 'string', default: '256' },
      'no-lmcache': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const threshold = Number(values.threshold);
  if (!Number.isInteger(threshold) || threshold < 0) throw new Error('--threshold must be an integer >= 0');
  const withLmcache = !values['no-lmcache'];

  const dir = await mkdtemp(path.join(tmpdir(), 'disagg-demo-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const nixl = await startEngines('the NIXL cluster: 2 prefill + 1 decode engine simulators', [
    {
      id: 'prefill-0',
      role: 'prefill',
      connector: 'nixl',
      model: NIXL_MODEL,
      nixlSideChannelHost: '127.0.0.1',
    },
    {
      id: 'prefill-1',
      role: 'prefill',
      connector: 'nixl',
      model: NIXL_MODEL,
      nixlSideChannelHost: '127.0.0.1',
    },
    {
      id: 'decode-0',
      role: 'decode',
      connector: 'nixl',
      model: NIXL_MODEL,
      nixlSideChannelHost: '127.0.0.1',
    },
  ]);

  const configFile = path.join(dir, 'router.yaml');
  const clusters = [clusterDoc('nixl', 'nixl', NIXL_MODEL, threshold, nixl)];
  await writeFile(configFile, toYaml({ generation: 1, clusters, peers: [] }));
  say(`starting the router process (--config ${configFile}, threshold ${threshold} tokens) ...`);
  const router = await startRouterProcess({
    args: ['--config', configFile, '--kv-notify-host', '127.0.0.1', '--replica-id', 'demo'],
  });
  cleanups.push(() => router.stop());
  say(
    `  router     ${router.url} (pid ${router.pid}, LMCache notifications on tcp://127.0.0.1:${router.kvNotifyPort})`,
  );

  const results: RoundResult[] = [];
  const nixlRound = { connector: 'nixl' as const, cluster: 'nixl', model: NIXL_MODEL, threshold };
  results.push(await runRound(router, nixl, { ...nixlRound, name: 'short', prompt: SHORT_PROMPT }));
  results.push(await runRound(router, nixl, { ...nixlRound, name: 'long', prompt: LONG_PROMPT }));

  let pids = [router.pid, ...[...nixl.values()].map((e) => e.pid)];
  if (withLmcache) {
    const lmcache = await startEngines('the LMCache cluster: 1 prefill + 1 decode engine simulator', [
      {
        id: 'prefill-0',
        role: 'prefill',
        connector: 'lmcache',
        model: LMCACHE_MODEL,
        lmcacheProxyHost: '127.0.0.1',
        lmcacheProxyPort: router.kvNotifyPort,
      },
      { id: 'decode-0', role: 'decode', connector: 'lmcache', model: LMCACHE_MODEL },
    ]);
    pids = [...pids, ...[...lmcache.values()].map((e) => e.pid)];
    say('adding the LMCache cluster to the config file (the router re-reads it; SIGHUP to be prompt) ...');
    clusters.push(clusterDoc('lmcache', 'lmcache', LMCACHE_MODEL, threshold, lmcache));
    await writeFile(configFile, toYaml({ generation: 2, clusters, peers: [] }));
    process.kill(router.pid, 'SIGHUP');
    await waitForModel(router, LMCACHE_MODEL);
    results.push(
      await runRound(router, lmcache, {
        name: 'long-chat',
        connector: 'lmcache',
        cluster: 'lmcache',
        model: LMCACHE_MODEL,
        threshold,
        prompt: LONG_PROMPT,
        chat: true,
      }),
    );
  }

  printSummary(results);
  const allOk = results.every((r) => r.ok);
  if (values.json) {
    process.stdout.write(
      `${JSON.stringify({ event: 'demo-result', ok: allOk, threshold, pids, results })}\n`,
    );
  }
  return allOk ? 0 : 1;
}

let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    say(`${signal}: interrupted`);
    void cleanup().then(() => process.exit(130));
  });
}

main()
  .then(async (code) => {
    await cleanup();
    process.exit(interrupted ? 130 : code);
  })
  .catch(async (err: unknown) => {
    if (interrupted) return;
    say(`FAILED: ${err instanceof Error ? err.message : String(err)}`);
    await cleanup();
    process.exit(1);
  });
