// `npm run bench:router`: the router's overhead, side by side in one run against the same
// zero-latency engine simulators: straight to the engines vs through the router (direct path) vs
// through the router (DPD path, NIXL). Router, engines and load generator are separate processes.
// Prints progress and a table, writes .bench/router-bench.json. See docs/benchmarks.md.
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { stringify as toYaml } from 'yaml';
import { startEngine, type EngineOptions, type RunningEngine } from '../sim/harness.js';
import { getText, metricSum } from './router-http.js';
import { LoadGenerator } from './router-load.js';
import {
  BackgroundCpu,
  MODEL,
  SLOW_MODEL,
  STREAM_TOKENS,
  THRESHOLD,
  fixedRate,
  maxThroughput,
  memory,
  profile,
  warmUp,
  type BenchContext,
  type Cluster,
  type Settings,
} from './router-measure.js';
import { connectInspector } from './router-inspector.js';
import { RouterProbe } from './router-probe.js';
import { buildInto } from './build.js';
import { pinToCpus, startRouterProcess, type RouterProcess } from './router-process.js';
import { renderReport, verdicts, type BenchResults } from './router-report.js';
import { runBench } from './run-bench.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const HELP = `Usage: npm run bench:router -- [options]

  --rates LIST            fixed request rates for the latency table (default 200,500,1000,2000)
  --duration-s N          measured seconds per target per round (default 6)
  --rounds N              interleaved rounds per rate (default 5)
  --warmup-s N            unmeasured seconds before each measurement (default 1)
  --warmup-rate-s N       before the first measurement, seconds at 1000 req/s to the engines and to the
                          direct path, so no round carries the processes' heap sizing (default 8)
  --stream-rate N         request rate of the TTFT measurement (default 500)
  --concurrency N         closed-loop clients for maximum throughput (default 32)
  --decoders N            decode engine processes (default 2)
  --prefillers N          prefill engine processes (default 2)
  --stall-streams N       concurrent stalled streams for the memory measurement (default 1000)
  --deep-stall-streams N  streams pushed until backpressure reaches the engine (default 20)
  --skip LIST             skip parts: latency,ttft,throughput,memory
  --profile               also run a CPU-profiled router per path and list its hot spots
  --max-other-cores X     run a round again when other processes used more than X cores (default 0.3)
  --noisy-retries N       at most this many repeats per round (default 3)
  --wait-quiet-s N        first wait up to N s for other processes to use < 0.3 cores (default 0)
  --router-node-flags=S   extra node flags for every router process, space-separated (e.g. "--trace-gc");
                          the routers' output goes to .bench/router-*.log
  --cpu-layout L          split (default with 2+ cores): every router on the last core, the engines, the
                          load generator and this process on the others, so the router under test is not
                          preempted by its own load; shared: no pinning (everything competes for all cores)
  --runtime dist|tsx      run the router from the compiled build (default, what the image runs) or under tsx
  --quick                 short smoke run (1 round of 2 s, 200 stalled streams)
  --out FILE              JSON results (default .bench/router-bench.json)`;

interface Options extends Settings {
  waitQuietS: number;
  rates: number[];
  streamRate: number;
  decoders: number;
  prefillers: number;
  skip: Set<string>;
  profile: boolean;
  runtime: 'dist' | 'tsx';
  cpuLayout: 'split' | 'shared';
  routerNodeFlags: string[];
  out: string;
}

const t0 = Date.now();
function say(msg: string): void {
  process.stdout.write(`[bench ${String(Math.round((Date.now() - t0) / 1000)).padStart(4)}s] ${msg}\n`);
}

function parseOptions(): Options | undefined {
  const { values } = parseArgs({
    options: {
      rates: { type: 'string', default: '200,500,1000,2000' },
      'duration-s': { type: 'string', default: '6' },
      rounds: { type: 'string', default: '5' },
      'warmup-s': { type: 'string', default: '1' },
      'warmup-rate-s': { type: 'string', default: '8' },
      'stream-rate': { type: 'string', default: '500' },
      concurrency: { type: 'string', default: '32' },
      decoders: { type: 'string', default: '2' },
      prefillers: { type: 'string', default: '2' },
      'stall-streams': { type: 'string', default: '1000' },
      'deep-stall-streams': { type: 'string', default: '20' },
      skip: { type: 'string', default: '' },
      profile: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      runtime: { type: 'string', default: 'dist' },
      'router-node-flags': { type: 'string', default: '' },
      'cpu-layout': { type: 'string', default: os.cpus().length >= 2 ? 'split' : 'shared' },
      'wait-quiet-s': { type: 'string', default: '0' },
      'max-other-cores': { type: 'string', default: '0.3' },
      'noisy-retries': { type: 'string', default: '3' },
      out: { type: 'string', default: path.join(REPO_ROOT, '.bench', 'router-bench.json') },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return undefined;
  }
  const num = (name: keyof typeof values, min: number): number => {
    const n = Number(values[name]);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}`);
    return n;
  };
  const quick = values.quick;
  if (values.runtime !== 'dist' && values.runtime !== 'tsx') throw new Error('--runtime must be dist or tsx');
  const layout = values['cpu-layout'];
  if (layout !== 'split' && layout !== 'shared') throw new Error('--cpu-layout must be split or shared');
  if (layout === 'split' && os.cpus().length < 2) throw new Error('--cpu-layout split needs 2 or more cores');
  return {
    runtime: values.runtime,
    cpuLayout: layout,
    routerNodeFlags: String(values['router-node-flags']).split(/\s+/).filter(Boolean),
    rates: String(values.rates)
      .split(',')
      .map((x) => Number(x.trim()))
      .filter((n) => n > 0),
    durationMs: (quick ? 2 : num('duration-s', 0.5)) * 1000,
    rounds: quick ? 1 : Math.round(num('rounds', 1)),
    warmupMs: (quick ? 0.5 : num('warmup-s', 0)) * 1000,
    warmupRateMs: (quick ? 1 : num('warmup-rate-s', 0)) * 1000,
    waitQuietS: num('wait-quiet-s', 0),
    maxOtherCores: num('max-other-cores', 0),
    noisyRetries: quick ? 0 : Math.round(num('noisy-retries', 0)),
    streamRate: num('stream-rate', 1),
    concurrency: Math.round(num('concurrency', 1)),
    decoders: Math.round(num('decoders', 1)),
    prefillers: Math.round(num('prefillers', 1)),
    stallStreams: Math.round(quick ? Math.min(200, num('stall-streams', 1)) : num('stall-streams', 1)),
    deepStallStreams: Math.round(
      quick ? Math.min(5, num('deep-stall-streams', 0)) : num('deep-stall-streams', 0),
    ),
    skip: new Set(
      String(values.skip)
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean),
    ),
    profile: values.profile,
    out: path.resolve(String(values.out)),
  };
}

// ---------------------------------------------------------------- processes

const cleanups: Array<() => Promise<void>> = [];
async function cleanup(): Promise<void> {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
}

// The load side (engines and generator) runs with a 64 MB young generation: their own scavenges
// are rarer, and each one is a stall that lands in the engine baseline and the router phases
// alike, i.e. noise in "added" (the router runs with its defaults, as in a pod).
const LOAD_SIDE_NODE_FLAGS = ['--max-semi-space-size=64'];

async function startCluster(opts: Options): Promise<Cluster> {
  // Zero latency: every millisecond measured is the harness, the engines' HTTP stack or the router.
  const zero: EngineOptions = {
    host: '127.0.0.1',
    model: MODEL,
    connector: 'nixl',
    nixlSideChannelHost: '127.0.0.1',
    maxNumSeqs: 100_000,
    maxModelLen: 10_000_000,
    logLevel: 'error',
    env: { NODE_OPTIONS: LOAD_SIDE_NODE_FLAGS.join(' ') },
  };
  say(`starting ${opts.decoders} decode + ${opts.prefillers} prefill engine simulators (zero latency) ...`);
  const [decoders, prefillers, slow] = await Promise.all([
    Promise.all(Array.from({ length: opts.decoders }, () => startEngine({ ...zero, role: 'decode' }))),
    Promise.all(Array.from({ length: opts.prefillers }, () => startEngine({ ...zero, role: 'prefill' }))),
    // Slow streams for the memory measurement: a token every 100 ms.
    startEngine({ ...zero, model: SLOW_MODEL, role: 'decode', itlMs: 100 }),
  ]);
  for (const e of [...decoders, ...prefillers, slow]) cleanups.push(() => e.stop());
  const dir = path.join(REPO_ROOT, '.bench');
  await mkdir(dir, { recursive: true });
  const configFile = path.join(dir, 'router-bench-config.yaml');
  const endpoint = (e: RunningEngine, id: string): Record<string, unknown> => ({
    id,
    url: e.url,
    nixl: { sideChannelHost: e.host, sideChannelPort: e.nixlSideChannelPort },
  });
  const config = {
    generation: 1,
    clusters: [
      {
        name: 'bench',
        models: [MODEL],
        connector: 'nixl',
        routingThreshold: THRESHOLD,
        loadBalancing: 'round_robin',
        prefill: { endpoints: prefillers.map((e, i) => ({ id: `prefill-${i}`, url: e.url })) },
        decode: { endpoints: decoders.map((e, i) => endpoint(e, `decode-${i}`)) },
      },
      {
        name: 'slow',
        models: [SLOW_MODEL],
        connector: 'nixl',
        routingThreshold: 1_000_000,
        loadBalancing: 'round_robin',
        prefill: { endpoints: [] },
        decode: { endpoints: [endpoint(slow, 'slow-0')] },
      },
    ],
    peers: [],
  };
  await writeFile(configFile, toYaml(config));
  return { decoders, prefillers, slow, configFile };
}

/** How every router of this run is launched: compiled or tsx, extra node flags, where its output goes. */
interface RouterLaunch {
  mainJs: string | undefined;
  /** CPUs every router is pinned to (`--cpu-layout split`), or undefined. */
  routerCpus: string | undefined;
  nodeFlags: string[];
  logDir: string;
}

let routersStarted = 0;
async function startRouter(
  cluster: Cluster,
  launch: RouterLaunch,
  nodeFlags: string[] = [],
): Promise<RouterProcess> {
  const log = createWriteStream(path.join(launch.logDir, `router-${++routersStarted}.log`));
  const router = await startRouterProcess({
    args: ['--config', cluster.configFile],
    nodeFlags: [...launch.nodeFlags, ...nodeFlags],
    mainJs: launch.mainJs,
    onLine: (line) => log.write(`${line}\n`),
  });
  if (launch.routerCpus && !pinToCpus(router.pid, launch.routerCpus)) {
    throw new Error(
      `could not pin the router to CPU ${launch.routerCpus} (taskset); use --cpu-layout shared`,
    );
  }
  cleanups.push(async () => {
    await router.stop(5_000);
    log.end();
  });
  return router;
}

/** Background CPU over 3 s windows until below QUIET_CORES or `maxS` passed; returns the last reading. */
async function waitForQuiet(maxS: number): Promise<number> {
  const QUIET_CORES = 0.3;
  const deadline = Date.now() + maxS * 1000;
  const bg = new BackgroundCpu(() => []);
  for (;;) {
    bg.start();
    await new Promise((r) => setTimeout(r, 3000));
    const cores = bg.cores();
    if (cores < QUIET_CORES || Date.now() >= deadline) return cores;
    say(`waiting for a quieter machine: other processes use ${cores.toFixed(2)} cores`);
  }
}

async function routerProbe(router: RouterProcess): Promise<RouterProbe> {
  for (let i = 0; i < 100 && !router.inspectorUrl; i++) await new Promise((r) => setTimeout(r, 50));
  if (!router.inspectorUrl) throw new Error('the router did not print its inspector URL');
  const inspector = await connectInspector(router.inspectorUrl);
  cleanups.push(async () => inspector.close());
  return new RouterProbe(inspector, router.pid);
}

async function main(): Promise<number> {
  const opts = parseOptions();
  if (!opts) return 0;
  const machine = {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memGB: Math.round(os.totalmem() / 1024 ** 3),
    node: process.version,
    kernel: os.release(),
    loadAvgAtStart: os.loadavg().map((x) => Number(x.toFixed(2))),
    otherProcessesCoresAtStart: 0,
  };
  say(
    `machine: ${machine.cpus} cores (${machine.cpuModel}), ${machine.memGB} GB, Node ${machine.node}, ` +
      `load average ${machine.loadAvgAtStart.join(' ')}`,
  );
  const quiet = await waitForQuiet(opts.waitQuietS);
  machine.otherProcessesCoresAtStart = Number(quiet.toFixed(2));
  say(`other processes on this machine use ${quiet.toFixed(2)} cores right now`);
  const cores = os.cpus().length;
  const launch: RouterLaunch = {
    mainJs: undefined,
    routerCpus: opts.cpuLayout === 'split' ? String(cores - 1) : undefined,
    nodeFlags: opts.routerNodeFlags,
    logDir: path.dirname(opts.out),
  };
  await mkdir(launch.logDir, { recursive: true });
  if (opts.runtime === 'dist') {
    say('compiling the router (tsc -p tsconfig.build.json) ...');
    const build = await buildInto(path.join(REPO_ROOT, '.bench', 'router-build'));
    launch.mainJs = path.join(build, 'router', 'src', 'main.js');
  }
  const cluster = await startCluster(opts);
  const gen = await LoadGenerator.start(LOAD_SIDE_NODE_FLAGS);
  cleanups.push(() => gen.stop());
  if (opts.cpuLayout === 'split') {
    // The load and the engines get the other cores; the router under test gets the last one.
    const others = cores === 2 ? '0' : `0-${cores - 2}`;
    const pids = [
      process.pid,
      gen.pid,
      ...[...cluster.decoders, ...cluster.prefillers, cluster.slow].map((e) => e.pid),
    ];
    for (const pid of pids) {
      if (!pinToCpus(pid, others)) throw new Error('could not pin with taskset; use --cpu-layout shared');
    }
    say(
      `CPU layout: routers on CPU ${launch.routerCpus}; engines, load generator and benchmark on CPU ${others}`,
    );
  }
  const ctx: BenchContext = {
    gen,
    cluster,
    settings: opts,
    say,
    startRouter: (nodeFlags) => startRouter(cluster, launch, nodeFlags),
    repoRoot: REPO_ROOT,
  };
  // The inspector lets the probe read GC pauses and event-loop delay inside the router.
  const router = await startRouter(cluster, launch, ['--inspect=127.0.0.1:0']);
  const probe = await routerProbe(router);
  say(`router process pid ${router.pid} at ${router.url}; load generator pid ${gen.pid}; warming up ...`);
  await warmUp(ctx, router, probe);
  const warm = await getText(`${router.url}/metrics`);
  // The bodies must take the paths their rows are named after.
  if (metricSum(warm, 'router_requests_total', { path: 'dpd', status: '200' }) === 0)
    throw new Error('the long body did not take the DPD path');
  if (metricSum(warm, 'router_requests_total', { path: 'direct', status: '200' }) === 0)
    throw new Error('the short body did not take the direct path');

  const results: BenchResults = {
    streamRate: opts.streamRate,
    streamTokens: STREAM_TOKENS,
    concurrency: opts.concurrency,
  };
  if (!opts.skip.has('latency')) {
    say(
      `latency at fixed rates (${opts.rounds} rounds x ${opts.durationMs / 1000} s per target, interleaved) ...`,
    );
    results.latency = {};
    for (const rate of opts.rates) results.latency[rate] = await fixedRate(ctx, router, rate, false, probe);
  }
  if (!opts.skip.has('ttft')) {
    say(`time to first token: streams of ${STREAM_TOKENS} tokens at ${opts.streamRate} req/s ...`);
    results.ttft = await fixedRate(ctx, router, opts.streamRate, true, probe);
  }
  if (!opts.skip.has('throughput')) {
    say(`maximum throughput (closed loop, ${opts.concurrency} concurrent requests) ...`);
    results.throughput = await maxThroughput(ctx, router);
  }
  const seen = await getText(`${router.url}/metrics`);
  const routerRequests = {
    direct: metricSum(seen, 'router_requests_total', { path: 'direct' }),
    dpd: metricSum(seen, 'router_requests_total', { path: 'dpd' }),
    fallback: metricSum(seen, 'router_requests_total', { path: 'fallback' }),
    nixlKvParamsMissing: metricSum(seen, 'router_nixl_kv_params_missing_total'),
  };
  say(
    `router counted ${routerRequests.direct} direct, ${routerRequests.dpd} DPD, ${routerRequests.fallback} fallback requests` +
      ` (${routerRequests.nixlKvParamsMissing} prefills without kv_transfer_params)`,
  );
  await router.stop(10_000);

  if (!opts.skip.has('memory')) {
    say(`router memory with ${opts.stallStreams} stalled streams ...`);
    results.memory = await memory(ctx);
  }
  if (opts.profile) {
    say('CPU profile of the router under closed-loop load, one router per path ...');
    results.profile = await profile(ctx);
  }

  process.stdout.write(`${renderReport(results)}\n`);
  const loadAvgAtEnd = os.loadavg().map((x) => Number(x.toFixed(2)));
  process.stdout.write(`\nload average at the end: ${loadAvgAtEnd.join(' ')}\n`);
  await mkdir(path.dirname(opts.out), { recursive: true });
  const json = {
    machine: { ...machine, loadAvgAtEnd },
    options: { ...opts, skip: [...opts.skip] },
    date: new Date().toISOString(),
    routerRequests,
    targets: verdicts(results),
    ...results,
  };
  await writeFile(opts.out, `${JSON.stringify(json, null, 2)}\n`);
  say(`results written to ${path.relative(process.cwd(), opts.out)}`);
  return 0;
}

runBench(main, cleanup, say);
