// The router benchmark's measurements: fixed-rate latency (and TTFT) with interleaved rounds,
// closed-loop maximum throughput with CPU accounting, RSS under stalled streams, CPU profiles.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { RunningEngine } from '../sim/harness.js';
import { metricSum } from './router-http.js';
import type { LoadGenerator } from './router-load.js';
import type { LoadJob, LoadResult } from './router-load-types.js';
import { connectInspector, type Inspector } from './router-inspector.js';
import type { ProbeReading, RouterProbe } from './router-probe.js';
import {
  allocationSites,
  hotSpots,
  newestProfile,
  type AllocationSite,
  type HotSpot,
} from './router-profile.js';
import { cpuSeconds, machineBusySeconds, rssBytes, type RouterProcess } from './router-process.js';
import { median, summarize, type Summary } from './stats.js';

export const MODEL = 'bench';
/** Served by an engine that emits a token every 100 ms (the memory measurement's slow streams). */
export const SLOW_MODEL = 'bench-slow';
/** DPD at or above this estimate: the short body is below it, the long body above. */
export const THRESHOLD = 64;
export const SHORT_BODY = { model: MODEL, prompt: 'Say hello to the benchmark.', max_tokens: 8 };
export const LONG_BODY = {
  model: MODEL,
  prompt: 'The router classifies this prompt as long enough to disaggregate. '.repeat(5),
  max_tokens: 8,
};
export const STREAM_TOKENS = 16;

export type TargetName = 'engine' | 'router-direct' | 'router-dpd';
export const TARGETS: TargetName[] = ['engine', 'router-direct', 'router-dpd'];
export const TARGET_LABEL: Record<TargetName, string> = {
  engine: 'engine (no router)',
  'router-direct': 'router, direct path',
  'router-dpd': 'router, DPD/NIXL',
};

export interface Cluster {
  decoders: RunningEngine[];
  prefillers: RunningEngine[];
  slow: RunningEngine;
  configFile: string;
}

export interface Settings {
  /** A round during which other processes used more cores than this is run again. */
  maxOtherCores: number;
  noisyRetries: number;
  durationMs: number;
  rounds: number;
  warmupMs: number;
  /** Fixed-rate warm-up of the engines and the direct path before the first measurement. */
  warmupRateMs: number;
  concurrency: number;
  stallStreams: number;
  deepStallStreams: number;
}

export interface BenchContext {
  gen: LoadGenerator;
  cluster: Cluster;
  settings: Settings;
  say: (msg: string) => void;
  startRouter(nodeFlags?: string[]): Promise<RouterProcess>;
  repoRoot: string;
}

export interface Phase {
  target: TargetName;
  completed: number;
  errors: Record<string, number>;
  windowMs: number;
  latency: Summary;
  service: Summary;
  ttft?: Summary;
  scheduleLagP99: number;
  loadgenCpuS: number;
  wallS: number;
  /** Cores used by processes outside the benchmark meanwhile (noise), averaged over the rounds. */
  backgroundCores?: number;
  /** Rounds run again because other processes were busy, and rounds kept although they were. */
  repeatedRounds?: number;
  noisyRounds?: number;
  inside?: RouterInside;
  routerCpuS?: number;
  /** Router CPU per request sent (warm-up included), ms. */
  routerCpuMsPerRequest?: number;
  /** p50/p99 of the phase's main metric (latency, or TTFT for streams) in each interleaved round. */
  rounds: Array<{ p50: number; p99: number }>;
  /** Added over the engine in the same round, median over the rounds (router targets only). */
  addedP50Median?: number;
  addedP99Median?: number;
}

export interface ThroughputRow extends Phase {
  reqPerS: number;
  engineCores: number;
  loadgenCores: number;
  routerCores?: number;
  reqPerSPerRouterCore?: number;
}

export interface MemoryResult {
  streams: number;
  started: number;
  failed: number;
  /** Router RSS as the OS reports it (max over a few samples). */
  baselineRssMB: number;
  peakRssMB: number;
  afterReleaseRssMB: number;
  growthMB: number;
  perStreamKB: number;
  /** Live JS heap + external (Buffer) bytes after a forced full GC: what the router really holds. */
  baselineLiveMB: number;
  stalledLiveMB: number;
  livePerStreamKB: number;
  deep?: {
    streams: number;
    started: number;
    baselineLiveMB: number;
    stalledLiveMB: number;
    livePerStreamKB: number;
    rssPerStreamKB: number;
    /** What the engines generated per stream before backpressure stopped them. */
    generatedPerStreamMB: number;
  };
}

export interface ProfileResult {
  path: 'router-direct' | 'router-dpd';
  file: string;
  reqPerS: number;
  hotSpots: HotSpot[];
  /** Sampled heap allocation at 1000 req/s (garbage included), per request. */
  allocation?: { bytesPerRequest: number; sites: AllocationSite[] };
}

/**
 * CPU used on this machine by processes that are not part of the benchmark (other jobs): the
 * machine's busy time minus the router's, the engines', the generator's and this process's.
 */
export class BackgroundCpu {
  private busy0 = 0;
  private ours0 = 0;
  private wall0 = 0;

  constructor(private readonly pids: () => number[]) {}

  private ours(): number {
    const self = process.cpuUsage();
    return this.pids().reduce((a, p) => a + cpuSeconds(p), 0) + (self.user + self.system) / 1e6;
  }

  start(): void {
    this.busy0 = machineBusySeconds();
    this.ours0 = this.ours();
    this.wall0 = performance.now();
  }

  /** Average cores used by other processes since start(). */
  cores(): number {
    const wallS = (performance.now() - this.wall0) / 1000;
    const other = machineBusySeconds() - this.busy0 - (this.ours() - this.ours0);
    return Math.max(0, other / Math.max(wallS, 0.001));
  }
}

export function benchPids(ctx: BenchContext, router?: RouterProcess): number[] {
  const { cluster } = ctx;
  return [
    ...(router ? [router.pid] : []),
    ctx.gen.pid,
    cluster.slow.pid,
    ...cluster.decoders.map((e) => e.pid),
    ...cluster.prefillers.map((e) => e.pid),
  ];
}

export function errorCount(p: { errors: Record<string, number> }): number {
  return Object.values(p.errors).reduce((a, b) => a + b, 0);
}

export function ms(n: number | undefined, digits = 2): string {
  return n === undefined || Number.isNaN(n) ? '-' : n.toFixed(digits);
}

export function targetUrls(target: TargetName, cluster: Cluster, router: RouterProcess): string[] {
  // The baseline spreads over the same decoders the router balances across.
  return target === 'engine' ? cluster.decoders.map((e) => e.url) : [router.url];
}

export function bodyFor(target: TargetName, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ ...(target === 'router-dpd' ? LONG_BODY : SHORT_BODY), ...extra });
}

function toPhase(target: TargetName, r: LoadResult, wallS: number, routerCpuS?: number): Phase {
  return {
    target,
    completed: r.completed,
    errors: r.errors,
    windowMs: r.windowMs,
    latency: summarize(r.latenciesMs),
    service: summarize(r.serviceMs),
    ...(r.ttftMs.length ? { ttft: summarize(r.ttftMs) } : {}),
    scheduleLagP99: summarize(r.scheduleLagMs).p99,
    loadgenCpuS: r.cpuSeconds,
    wallS,
    ...(routerCpuS !== undefined ? { routerCpuS } : {}),
    rounds: [],
  };
}

function merge(parts: LoadResult[]): LoadResult {
  const errors: Record<string, number> = {};
  for (const p of parts) for (const [k, v] of Object.entries(p.errors)) errors[k] = (errors[k] ?? 0) + v;
  return {
    completed: parts.reduce((a, p) => a + p.completed, 0),
    errors,
    windowMs: parts.reduce((a, p) => a + p.windowMs, 0),
    latenciesMs: parts.flatMap((p) => p.latenciesMs),
    serviceMs: parts.flatMap((p) => p.serviceMs),
    ttftMs: parts.flatMap((p) => p.ttftMs),
    scheduleLagMs: parts.flatMap((p) => p.scheduleLagMs),
    cpuSeconds: parts.reduce((a, p) => a + p.cpuSeconds, 0),
  };
}

/** An open-loop job on `/v1/completions` (64 keep-alive connections per target, no warm-up unless given). */
function rateJob(
  targets: string[],
  body: string,
  rate: number,
  durationMs: number,
  extra: { stream?: boolean; warmupMs?: number } = {},
): Extract<LoadJob, { kind: 'rate' }> {
  const { stream = false, warmupMs = 0 } = extra;
  return {
    kind: 'rate',
    targets,
    path: '/v1/completions',
    body,
    stream,
    rate,
    warmupMs,
    durationMs,
    connections: 64,
  };
}

/**
 * Before anything is measured: every target closed loop (JIT, pools, keep-alive sockets), then the
 * engine and the direct path at a fixed rate for a while. Engines and router size their heaps in
 * their first ~10,000 requests, and the first measured round used to carry those GCs (an engine
 * baseline p99 of 10 ms against 1.6-1.8 ms in every later round).
 */
export async function warmUp(ctx: BenchContext, router: RouterProcess, probe?: RouterProbe): Promise<void> {
  for (const target of TARGETS) {
    const r = await ctx.gen.run({
      kind: 'closed',
      targets: targetUrls(target, ctx.cluster, router),
      path: '/v1/completions',
      body: bodyFor(target),
      concurrency: 8,
      warmupMs: 0,
      durationMs: 2000,
    });
    if (r.completed === 0) throw new Error(`${target}: no request succeeded (${JSON.stringify(r.errors)})`);
  }
  if (ctx.settings.warmupRateMs <= 0) return;
  for (const target of ['engine', 'router-direct'] as const) {
    // The probe's first use in the router (its observers, the snippet's compile) belongs here too.
    if (target !== 'engine') await probe?.start();
    const urls = targetUrls(target, ctx.cluster, router);
    await ctx.gen.run(rateJob(urls, bodyFor(target), 1000, ctx.settings.warmupRateMs));
    if (target !== 'engine') await probe?.read();
  }
}

/** Fixed-rate rounds, the three targets interleaved so drifting background load hits them alike. */
interface RoundRun {
  result: LoadResult;
  routerCpuS: number;
  wallS: number;
  otherCores: number;
  probe?: ProbeReading;
}

/** What happened inside the router during a phase (router targets only). */
export interface RouterInside {
  gcCount: number;
  gcTotalMs: number;
  gcMaxMs: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  /** Time the router waited for a CPU, per request. */
  runQueueWaitMsPerRequest: number;
  involuntarySwitchesPerRequest: number;
}

function insideOf(runs: RoundRun[], requests: number): RouterInside | undefined {
  const probes = runs.map((r) => r.probe).filter((p): p is ProbeReading => p !== undefined);
  if (probes.length === 0) return undefined;
  return {
    gcCount: probes.reduce((a, p) => a + p.gcCount, 0),
    gcTotalMs: probes.reduce((a, p) => a + p.gcTotalMs, 0),
    gcMaxMs: Math.max(...probes.map((p) => p.gcMaxMs)),
    loopDelayP99Ms: Math.max(...probes.map((p) => p.loopDelayP99Ms)),
    loopDelayMaxMs: Math.max(...probes.map((p) => p.loopDelayMaxMs)),
    runQueueWaitMsPerRequest: probes.reduce((a, p) => a + p.runQueueWaitMs, 0) / Math.max(1, requests),
    involuntarySwitchesPerRequest:
      probes.reduce((a, p) => a + p.involuntarySwitches, 0) / Math.max(1, requests),
  };
}

/**
 * Fixed-rate rounds, the three targets interleaved so drifting background load hits them alike.
 * A round during which other processes used more than `maxOtherCores` is run again (up to
 * `noisyRetries` times); the last try is kept either way, and counted as noisy.
 */
export async function fixedRate(
  ctx: BenchContext,
  router: RouterProcess,
  rate: number,
  stream: boolean,
  probe?: RouterProbe,
): Promise<Record<TargetName, Phase>> {
  const { settings } = ctx;
  const kept: Record<TargetName, RoundRun[]> = { engine: [], 'router-direct': [], 'router-dpd': [] };
  const background = new BackgroundCpu(() => benchPids(ctx, router));
  let repeated = 0;
  let noisy = 0;
  for (let round = 1; round <= settings.rounds; round++) {
    for (let attempt = 0; ; attempt++) {
      const runs = {} as Record<TargetName, RoundRun>;
      for (const target of TARGETS) {
        const cpu0 = cpuSeconds(router.pid);
        const w0 = performance.now();
        background.start();
        if (target !== 'engine') await probe?.start();
        const result = await ctx.gen.run(
          rateJob(
            targetUrls(target, ctx.cluster, router),
            bodyFor(target, stream ? { stream: true, max_tokens: STREAM_TOKENS } : {}),
            rate,
            settings.durationMs,
            { stream, warmupMs: settings.warmupMs },
          ),
        );
        const run: RoundRun = {
          result,
          routerCpuS: cpuSeconds(router.pid) - cpu0,
          wallS: (performance.now() - w0) / 1000,
          otherCores: background.cores(),
          ...(probe && target !== 'engine' ? { probe: await probe.read() } : {}),
        };
        runs[target] = run;
        const s = summarize(stream ? result.ttftMs : result.latenciesMs);
        ctx.say(
          `  ${stream ? 'stream ' : ''}${rate}/s round ${round}/${settings.rounds} ${TARGET_LABEL[target].padEnd(20)} ` +
            `${stream ? 'TTFT ' : ''}p50 ${ms(s.p50)} ms, p99 ${ms(s.p99)} ms (${result.completed} ok, ` +
            `${errorCount(result)} failed; other processes ${run.otherCores.toFixed(2)} cores)`,
        );
      }
      const busiest = Math.max(...TARGETS.map((t) => runs[t].otherCores));
      const quiet = busiest <= settings.maxOtherCores;
      if (quiet || attempt >= settings.noisyRetries) {
        if (!quiet) noisy++;
        for (const t of TARGETS) kept[t].push(runs[t]);
        break;
      }
      repeated++;
      ctx.say(`  round ${round} again: other processes used up to ${busiest.toFixed(2)} cores meanwhile`);
    }
  }
  const main = (r: LoadResult): Summary => summarize(stream ? r.ttftMs : r.latenciesMs);
  const engineRounds = kept.engine.map((k) => main(k.result));
  const sentPerRound = rate * ((settings.warmupMs + settings.durationMs) / 1000);
  const out = {} as Record<TargetName, Phase>;
  for (const t of TARGETS) {
    const runs = kept[t];
    const routerCpuS = runs.reduce((a, k) => a + k.routerCpuS, 0);
    const wallS = runs.reduce((a, k) => a + k.wallS, 0);
    const phase = toPhase(
      t,
      merge(runs.map((k) => k.result)),
      wallS,
      t === 'engine' ? undefined : routerCpuS,
    );
    const rounds = runs.map((k) => main(k.result));
    phase.rounds = rounds.map((s) => ({ p50: s.p50, p99: s.p99 }));
    phase.backgroundCores = runs.reduce((a, k) => a + k.otherCores, 0) / Math.max(1, runs.length);
    phase.repeatedRounds = repeated;
    phase.noisyRounds = noisy;
    if (t !== 'engine') {
      phase.routerCpuMsPerRequest = (routerCpuS * 1000) / (sentPerRound * runs.length);
      const inside = insideOf(runs, sentPerRound * runs.length);
      if (inside) phase.inside = inside;
      // Paired with the engine round run just before it, so both saw the same background.
      phase.addedP50Median = median(rounds.map((s, i) => s.p50 - engineRounds[i]!.p50));
      phase.addedP99Median = median(rounds.map((s, i) => s.p99 - engineRounds[i]!.p99));
    }
    out[t] = phase;
  }
  return out;
}

export async function maxThroughput(
  ctx: BenchContext,
  router: RouterProcess,
): Promise<Record<TargetName, ThroughputRow>> {
  const { settings, cluster } = ctx;
  const out = {} as Record<TargetName, ThroughputRow>;
  const enginePids = [...cluster.decoders, ...cluster.prefillers].map((e) => e.pid);
  const engineCpu = (): number => enginePids.reduce((a, p) => a + cpuSeconds(p), 0);
  const background = new BackgroundCpu(() => benchPids(ctx, router));
  for (let i = 0, attempt = 0; i < TARGETS.length;) {
    const target = TARGETS[i]!;
    const cpu0 = cpuSeconds(router.pid);
    const eng0 = engineCpu();
    const w0 = performance.now();
    background.start();
    const r = await ctx.gen.run({
      kind: 'closed',
      targets: targetUrls(target, cluster, router),
      path: '/v1/completions',
      body: bodyFor(target),
      concurrency: settings.concurrency,
      warmupMs: settings.warmupMs,
      durationMs: Math.max(settings.durationMs, 2000) * 1.5,
    });
    const wallS = (performance.now() - w0) / 1000;
    const backgroundCores = background.cores();
    if (backgroundCores > settings.maxOtherCores && attempt < settings.noisyRetries) {
      attempt++;
      ctx.say(
        `  ${TARGET_LABEL[target]} again: other processes used ${backgroundCores.toFixed(2)} cores meanwhile`,
      );
      continue;
    }
    i++;
    attempt = 0;
    const routerCpuS = cpuSeconds(router.pid) - cpu0;
    const engineCores = (engineCpu() - eng0) / wallS;
    const reqPerS = r.completed / (r.windowMs / 1000);
    const isRouter = target !== 'engine';
    const routerCores = routerCpuS / wallS;
    out[target] = {
      ...toPhase(target, r, wallS, isRouter ? routerCpuS : undefined),
      reqPerS,
      engineCores,
      loadgenCores: r.cpuSeconds / wallS,
      backgroundCores,
      ...(isRouter ? { routerCores, reqPerSPerRouterCore: reqPerS / routerCores } : {}),
    };
    ctx.say(
      `  closed loop x${settings.concurrency} ${TARGET_LABEL[target].padEnd(20)} ${reqPerS.toFixed(0)} req/s` +
        (isRouter
          ? `, router ${routerCores.toFixed(2)} cores -> ${(reqPerS / routerCores).toFixed(0)} req/s per router core`
          : '') +
        `, engines ${engineCores.toFixed(2)} cores, load generator ${(r.cpuSeconds / wallS).toFixed(2)} cores,` +
        ` other processes ${backgroundCores.toFixed(2)} cores (${errorCount(r)} failed)`,
    );
  }
  return out;
}

const MB = 1024 * 1024;
const sleep = (msec: number): Promise<void> => new Promise((r) => setTimeout(r, msec));

/** RSS sampled for `msec`: the lowest and highest reading. */
async function sampleRss(pid: number, msec: number): Promise<{ min: number; max: number }> {
  let min = Infinity;
  let max = 0;
  const end = Date.now() + msec;
  do {
    const v = rssBytes(pid);
    min = Math.min(min, v);
    max = Math.max(max, v);
    await sleep(250);
  } while (Date.now() < end);
  return { min, max };
}

async function generatedTokens(engines: RunningEngine[]): Promise<number> {
  let sum = 0;
  for (const e of engines) sum += metricSum(await e.metrics(), 'vllm:generation_tokens_total');
  return sum;
}

/** Bytes of one streamed token event, measured on a real stream through the router. */
async function bytesPerStreamToken(router: RouterProcess): Promise<number> {
  const res = await fetch(`${router.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...SHORT_BODY, max_tokens: 200, stream: true }),
  });
  return (await res.text()).length / 200;
}

async function liveBytes(inspector: Inspector): Promise<number> {
  await inspector.collectGarbage();
  const m = await inspector.memoryUsage();
  return m.heapUsed + m.external;
}

async function waitForInspector(router: RouterProcess): Promise<Inspector> {
  for (let i = 0; i < 100 && !router.inspectorUrl; i++) await sleep(50);
  if (!router.inspectorUrl) throw new Error('the router did not print its inspector URL');
  return connectInspector(router.inspectorUrl);
}

export async function memory(ctx: BenchContext): Promise<MemoryResult> {
  const { gen, settings } = ctx;
  // A fresh router: earlier phases must not leave heap slack that hides what the streams cost.
  // The inspector lets us force a full GC, so live bytes can be told apart from garbage.
  const router = await ctx.startRouter(['--inspect=127.0.0.1:0']);
  const inspector = await waitForInspector(router);
  try {
    ctx.say(`  fresh router process pid ${router.pid}; warming it up with short streams ...`);
    const warmBody = JSON.stringify({ ...SHORT_BODY, model: SLOW_MODEL, max_tokens: 2, stream: true });
    await gen.run(rateJob([router.url], warmBody, 200, 3000, { stream: true }));
    await sleep(1000);
    const baseLive = await liveBytes(inspector);
    const base = await sampleRss(router.pid, 2000);
    ctx.say(
      `  router RSS before: ${(base.max / MB).toFixed(1)} MB (live heap + buffers ${(baseLive / MB).toFixed(1)} MB); ` +
        `opening ${settings.stallStreams} streams that stop reading ...`,
    );
    // Outlasts the measurement: the slow engine sends a token every 100 ms.
    const stallBody = JSON.stringify({ ...SHORT_BODY, model: SLOW_MODEL, max_tokens: 5000, stream: true });
    const report = await gen.stall({
      kind: 'stall',
      target: router.url,
      path: '/v1/completions',
      body: stallBody,
      count: settings.stallStreams,
    });
    ctx.say(
      `  ${report.started} streams started, ${report.failed} failed` +
        `${report.failed ? ` (first status ${report.firstStatus})` : ''}; sampling RSS for 10 s ...`,
    );
    const during = await sampleRss(router.pid, 10_000);
    const stalledLive = await liveBytes(inspector);
    await gen.release();
    await sleep(3000);
    const after = rssBytes(router.pid);
    const growth = during.max - base.max;
    const started = Math.max(1, report.started);
    const result: MemoryResult = {
      streams: settings.stallStreams,
      started: report.started,
      failed: report.failed,
      baselineRssMB: base.max / MB,
      peakRssMB: during.max / MB,
      afterReleaseRssMB: after / MB,
      growthMB: growth / MB,
      perStreamKB: growth / 1024 / started,
      baselineLiveMB: baseLive / MB,
      stalledLiveMB: stalledLive / MB,
      livePerStreamKB: (stalledLive - baseLive) / 1024 / started,
    };
    ctx.say(
      `  RSS ${result.baselineRssMB.toFixed(1)} -> ${result.peakRssMB.toFixed(1)} MB with ${report.started} stalled streams ` +
        `(${result.perStreamKB.toFixed(1)} KB per stream; live ${result.livePerStreamKB.toFixed(1)} KB per stream); ` +
        `${result.afterReleaseRssMB.toFixed(1)} MB after release`,
    );
    if (settings.deepStallStreams > 0) result.deep = await deepStall(ctx, router, inspector);
    return result;
  } finally {
    inspector.close();
    await router.stop(5_000);
  }
}

/**
 * Zero-latency engines write as fast as they may: once the kernel's socket buffers are full only
 * the router's backpressure can stop them, so what they generated vs what the router holds shows it.
 */
async function deepStall(
  ctx: BenchContext,
  router: RouterProcess,
  inspector: Inspector,
): Promise<NonNullable<MemoryResult['deep']>> {
  const n = ctx.settings.deepStallStreams;
  const baseLive = await liveBytes(inspector);
  const baseRss = rssBytes(router.pid);
  const tokens0 = await generatedTokens(ctx.cluster.decoders);
  ctx.say(`  deep stall: ${n} zero-latency streams of up to 1,000,000 tokens that stop reading ...`);
  const body = JSON.stringify({ ...SHORT_BODY, max_tokens: 1_000_000, stream: true });
  const deep = await ctx.gen.stall({
    kind: 'stall',
    target: router.url,
    path: '/v1/completions',
    body,
    count: n,
  });
  // Done once the engines stop generating: backpressure has reached them.
  let last = -1;
  let tokens = tokens0;
  let peakRss = baseRss;
  for (let i = 0; i < 60 && tokens !== last; i++) {
    last = tokens;
    await sleep(1000);
    peakRss = Math.max(peakRss, rssBytes(router.pid));
    tokens = await generatedTokens(ctx.cluster.decoders);
  }
  const live = await liveBytes(inspector);
  const sseBytesPerToken = await bytesPerStreamToken(router);
  await ctx.gen.release();
  const started = Math.max(1, deep.started);
  const out = {
    streams: n,
    started: deep.started,
    baselineLiveMB: baseLive / MB,
    stalledLiveMB: live / MB,
    livePerStreamKB: (live - baseLive) / 1024 / started,
    rssPerStreamKB: (peakRss - baseRss) / 1024 / started,
    generatedPerStreamMB: ((tokens - tokens0) * sseBytesPerToken) / MB / started,
  };
  ctx.say(
    `  deep stall: the engines generated ${out.generatedPerStreamMB.toFixed(1)} MB per stream, then blocked; the router ` +
      `holds ${out.livePerStreamKB.toFixed(0)} KB live per stream (RSS grew ${out.rssPerStreamKB.toFixed(0)} KB per stream)`,
  );
  return out;
}

/**
 * One CPU-profiled router per path (samples from start-up and warm-up left out), and a sampling
 * heap profile through the inspector at 1000 req/s: what each request allocates, and where.
 */
export async function profile(ctx: BenchContext): Promise<ProfileResult[]> {
  const out: ProfileResult[] = [];
  for (const target of ['router-direct', 'router-dpd'] as const) {
    const dir = path.join(ctx.repoRoot, '.bench', 'profile', target);
    await mkdir(dir, { recursive: true });
    const router = await ctx.startRouter(['--cpu-prof', '--cpu-prof-dir', dir, '--inspect=127.0.0.1:0']);
    const job = {
      kind: 'closed' as const,
      targets: [router.url],
      path: '/v1/completions',
      body: bodyFor(target),
      concurrency: ctx.settings.concurrency,
      warmupMs: 0,
    };
    await ctx.gen.run({ ...job, durationMs: 2000 });
    const fromUs = Number(process.hrtime.bigint() / 1000n);
    const r = await ctx.gen.run({ ...job, durationMs: Math.max(ctx.settings.durationMs, 5000) });
    const toUs = Number(process.hrtime.bigint() / 1000n);
    const inspector = await waitForInspector(router);
    let allocation: ProfileResult['allocation'];
    try {
      await inspector.send('HeapProfiler.startSampling', {
        samplingInterval: 1024,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      });
      const a = await ctx.gen.run(rateJob([router.url], bodyFor(target), 1000, 3000));
      const sampled = (await inspector.send('HeapProfiler.stopSampling')) as {
        profile: { head: Parameters<typeof allocationSites>[0] };
      };
      allocation = allocationSites(sampled.profile.head, a.completed + errorCount(a), ctx.repoRoot);
    } finally {
      inspector.close();
    }
    // The CPU profile is written when the router exits cleanly.
    await router.stop(30_000);
    const file = await newestProfile(dir);
    const reqPerS = r.completed / (r.windowMs / 1000);
    out.push({
      path: target,
      file: path.relative(ctx.repoRoot, file),
      reqPerS,
      hotSpots: hotSpots(file, ctx.repoRoot, { fromUs, toUs }),
      allocation,
    });
    ctx.say(
      `  ${TARGET_LABEL[target]}: ${reqPerS.toFixed(0)} req/s while CPU-profiled; ` +
        `${(allocation.bytesPerRequest / 1024).toFixed(1)} KB allocated per request; ${path.relative(ctx.repoRoot, file)}`,
    );
  }
  return out;
}
