// `npm run bench:operator`: how fast the operator turns cluster changes into router configuration,
// and what it costs, on the real control plane (etcd, kube-apiserver, controller-manager,
// scheduler), the loopback kubelet, a real router process and the operator under its ServiceAccount.
// Measures pod Ready -> routed and CR edit -> new topology routed (p50/p99) with 1 and with 50
// DisaggClusters x 8 pods, and the operator's RSS and CPU. Prints progress and tables, writes
// .bench/operator-bench.json. See docs/benchmarks.md.
import { statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startE2eEnv, type E2eEnv } from '../../operator/test/support/e2e-env.js';
import { REPO_ROOT } from '../cluster/bins.js';
import { sleep } from '../cluster/wait.js';
import { KubeletReadyLog, PodTracker, RouterConfigObserver } from './operator-observer.js';
import { newestSnapshot, renderHeap, summarizeHeapSnapshot, type HeapSummary } from './operator-heap.js';
import { latestProfile, renderProfile, summarizeProfile, type ProfileSummary } from './operator-profile.js';
import { buildOperator, startOperatorProcess, type OperatorRuntime } from './operator-process.js';
import {
  TARGETS,
  cpuTable,
  latencyTable,
  readyVerdicts,
  rssVerdict,
  usageTable,
  verdictLines,
  type LatencyRow,
} from './operator-report.js';
import {
  runScenario,
  teardownScenario,
  type BenchContext,
  type ReadyOutcomes,
  type ScenarioResult,
  type ScenarioSpec,
} from './operator-scenario.js';
import { summarize } from './stats.js';
import { CpuLedger, ProcessUsage } from './operator-usage.js';
import type { EngineKind } from './operator-workload.js';
import { runBench } from './run-bench.js';

const HELP = `Usage: npm run bench:operator -- [options]

  --clusters N          DisaggClusters in the scale scenario (default 50)
  --prefill N           prefill pods per cluster (default 4)
  --decode N            decode pods per cluster (default 4)
  --rounds N            scale-up/scale-down edit rounds per scenario (default 15)
  --idle-s N            quiet seconds per scenario for the at-rest CPU/RSS (default 35: one 30 s resync)
  --engine-one E        engine of the 1-cluster scenario: sim (the simulator, default) or tiny
  --engine-scale E      engine of the scale scenario: tiny (default) or sim (about 40 MB and 0.5 s CPU per pod)
  --runtime R           operator from the compiled build (dist, default) or with tsx
  --resync-period D     operator --resync-period (default 30s, its own default)
  --probe-period-ms N   loopback kubelet readiness probe period (default 1000)
  --probe-timeout-ms N  loopback kubelet readiness probe timeout (default 1000, a kubelet's default)
  --poll-ms N           pause between GET /admin/config polls (default 25)
  --node-flags LIST     extra node flags for the operator, comma-separated (e.g. --max-semi-space-size=2)
  --heap-snapshot       at the end, write a heap snapshot of the operator and list what fills it
  --profile             CPU-profile the operator (node --cpu-prof) and list its hot spots
  --pace-ms N           scale scenario: create a cluster every N ms (default 2000)
  --burst               scale scenario: create every cluster at once (a start storm; see docs)
  --skip LIST           skip scenarios: one,scale
  --quick               smoke run: 5 clusters, 2 rounds, 5 s quiet period
  --out FILE            JSON results (default .bench/operator-bench.json)`;

interface Options {
  clusters: number;
  prefill: number;
  decode: number;
  rounds: number;
  idleS: number;
  engineOne: EngineKind;
  engineScale: EngineKind;
  runtime: OperatorRuntime;
  resyncPeriod: string;
  probePeriodMs: number;
  probeTimeoutMs: number;
  pollMs: number;
  skip: Set<string>;
  nodeFlags: string[];
  profile: boolean;
  burst: boolean;
  paceMs: number;
  heapSnapshot: boolean;
  out: string;
}

const CPU_GROUPS = ['operator', 'router', 'apiserver', 'etcd', 'controllers', 'bench+kubelet', 'engines'];
const PROFILE_DIR = path.join(REPO_ROOT, '.bench', 'operator-profile');

const t0 = Date.now();
function say(msg: string): void {
  process.stdout.write(`[bench ${String(Math.round((Date.now() - t0) / 1000)).padStart(4)}s] ${msg}\n`);
}

function parseOptions(): Options | undefined {
  const { values } = parseArgs({
    options: {
      clusters: { type: 'string', default: '50' },
      prefill: { type: 'string', default: '4' },
      decode: { type: 'string', default: '4' },
      rounds: { type: 'string', default: '15' },
      'idle-s': { type: 'string', default: '35' },
      'engine-one': { type: 'string', default: 'sim' },
      'engine-scale': { type: 'string', default: 'tiny' },
      runtime: { type: 'string', default: 'dist' },
      'resync-period': { type: 'string', default: '30s' },
      'probe-period-ms': { type: 'string', default: '1000' },
      'poll-ms': { type: 'string', default: '25' },
      'probe-timeout-ms': { type: 'string', default: '1000' },
      skip: { type: 'string', default: '' },
      'node-flags': { type: 'string', default: '' },
      profile: { type: 'boolean', default: false },
      burst: { type: 'boolean', default: false },
      'heap-snapshot': { type: 'boolean', default: false },
      'pace-ms': { type: 'string', default: '2000' },
      quick: { type: 'boolean', default: false },
      out: { type: 'string', default: path.join(REPO_ROOT, '.bench', 'operator-bench.json') },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return undefined;
  }
  const int = (name: keyof typeof values, min: number): number => {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}`);
    return n;
  };
  const oneOf = <T extends string>(name: keyof typeof values, allowed: readonly T[]): T => {
    const v = String(values[name]);
    if (!allowed.includes(v as T)) throw new Error(`--${name} must be one of ${allowed.join(', ')}`);
    return v as T;
  };
  const quick = values.quick;
  return {
    clusters: quick ? Math.min(5, int('clusters', 1)) : int('clusters', 1),
    prefill: int('prefill', 1),
    decode: int('decode', 1),
    rounds: quick ? Math.min(2, int('rounds', 0)) : int('rounds', 0),
    idleS: quick ? 5 : int('idle-s', 0),
    engineOne: oneOf('engine-one', ['sim', 'tiny'] as const),
    engineScale: oneOf('engine-scale', ['sim', 'tiny'] as const),
    runtime: oneOf('runtime', ['dist', 'tsx'] as const),
    resyncPeriod: String(values['resync-period']),
    probePeriodMs: int('probe-period-ms', 50),
    pollMs: int('poll-ms', 0),
    probeTimeoutMs: int('probe-timeout-ms', 50),
    skip: new Set(
      String(values.skip)
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean),
    ),
    nodeFlags: String(values['node-flags'])
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean),
    profile: values.profile,
    burst: values.burst,
    heapSnapshot: values['heap-snapshot'],
    paceMs: quick ? 500 : int('pace-ms', 0),
    out: path.resolve(String(values.out)),
  };
}

const cleanups: Array<() => Promise<void>> = [];
async function cleanup(): Promise<void> {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
}

function mergeOutcomes(list: ReadyOutcomes[]): ReadyOutcomes {
  return {
    samples: list.flatMap((o) => o.samples),
    alreadyRouted: list.reduce((a, o) => a + o.alreadyRouted, 0),
    endedBeforeRouted: list.flatMap((o) => o.endedBeforeRouted),
    neverRouted: list.flatMap((o) => o.neverRouted),
  };
}

function latencyRows(r: ScenarioResult): LatencyRow[] {
  const scenario = `${r.clusters} cluster${r.clusters > 1 ? 's' : ''} x ${r.podsPerCluster} pods (${r.engine})`;
  const ups = r.edits.filter((e) => e.direction === 'up');
  const downs = r.edits.filter((e) => e.direction === 'down');
  const readyRows = (metric: string, o: ReadyOutcomes): LatencyRow[] => [
    {
      scenario,
      metric,
      summary: summarize(o.samples.map((x) => x.readyToRoutedMs)),
      targetMs: TARGETS.readyToRoutedP99Ms,
    },
    {
      scenario,
      metric: '  of which Ready -> pod watch event',
      summary: summarize(o.samples.flatMap((x) => x.readyToWatchMs ?? [])),
    },
    {
      scenario,
      metric: '  of which watch event -> routed',
      summary: summarize(o.samples.flatMap((x) => x.watchToRoutedMs ?? [])),
    },
    {
      scenario,
      metric: '  of which kubelet Ready -> status persisted',
      summary: summarize(o.samples.flatMap((x) => x.readyToPersistedMs ?? [])),
    },
    {
      scenario,
      metric: '  Ready persisted -> routed',
      summary: summarize(o.samples.flatMap((x) => x.persistedToRoutedMs ?? [])),
      targetMs: TARGETS.readyToRoutedP99Ms,
    },
  ];
  const pods = r.clusters * r.podsPerCluster;
  const bringUp =
    r.bringUp.mode === 'burst' || r.clusters === 1
      ? `bring-up (${pods} pods at once)`
      : `bring-up (${pods} pods, a cluster at a time)`;
  return [
    ...readyRows(`pod Ready -> routed, ${bringUp}`, r.bringUp.ready),
    ...readyRows('pod Ready -> routed, scale-up edits', mergeOutcomes(ups.flatMap((e) => e.ready ?? []))),
    {
      scenario,
      metric: 'edit -> topology routed, scale-up (+1P +1D)',
      summary: summarize(ups.map((e) => e.editToRoutedMs)),
    },
    {
      scenario,
      metric: '  of which edit -> new pods Ready',
      summary: summarize(ups.map((e) => e.editToPodsReadyMs ?? NaN)),
    },
    {
      scenario,
      metric: 'edit -> topology routed, scale-down (-1P -1D)',
      summary: summarize(downs.map((e) => e.editToRoutedMs)),
    },
  ];
}

/** The snapshot file once its size stopped changing (V8 writes it in pieces). */
async function waitForSnapshot(since: number): Promise<string> {
  let lastSize = -1;
  for (let i = 0; i < 600; i++) {
    await sleep(1000);
    const f = newestSnapshot(PROFILE_DIR, since);
    if (!f) continue;
    const size = statSync(f).size;
    if (size > 0 && size === lastSize) return f;
    lastSize = size;
  }
  throw new Error('no heap snapshot written within 10 minutes');
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
  };
  say(
    `machine: ${machine.cpus} cores (${machine.cpuModel}), ${machine.memGB} GB, Node ${machine.node}, ` +
      `load average ${machine.loadAvgAtStart.join(' ')}`,
  );
  const mainJs =
    opts.runtime === 'dist'
      ? await (say('compiling the operator (tsconfig.build.json) ...'), buildOperator())
      : undefined;

  const readyLog = new KubeletReadyLog();
  const maxPods = opts.clusters * (opts.prefill + opts.decode + 1) + 20;
  say(
    `starting the control plane (full tier, ${Math.ceil(maxPods / 250)} loopback kubelet node(s), probe every ${opts.probePeriodMs} ms, timeout ${opts.probeTimeoutMs} ms) ...`,
  );
  const env: E2eEnv = await startE2eEnv({
    nodes: Math.ceil(maxPods / 250),
    kubelet: {
      readinessPeriodMs: opts.probePeriodMs,
      probeTimeoutMs: opts.probeTimeoutMs,
      log: readyLog.onLine,
    },
  });
  cleanups.push(() => env.stop());
  const router = await env.startRouter('bench');
  say(
    `router pid ${router.proc.pid}; starting the operator (${opts.runtime === 'dist' ? `compiled: node ${path.relative(REPO_ROOT, mainJs!)}` : 'node --import tsx operator/src/main.ts'}) ...`,
  );
  await mkdir(PROFILE_DIR, { recursive: true });
  const operator = await startOperatorProcess(env, router, {
    runtime: opts.runtime,
    mainJs,
    args: [`--resync-period=${opts.resyncPeriod}`],
    nodeFlags: [
      ...opts.nodeFlags,
      ...(opts.profile ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : []),
      ...(opts.heapSnapshot ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${PROFILE_DIR}`] : []),
    ],
  });
  const usage = new ProcessUsage(operator.pid);
  cleanups.push(async () => usage.stop());
  const observer = new RouterConfigObserver(router.adminSocket, opts.pollMs);
  observer.start();
  cleanups.push(() => observer.stop());
  const pods = new PodTracker(env.cluster.kubeConfig);
  await pods.start();
  cleanups.push(() => pods.stop());
  const ledger = new CpuLedger(() => {
    const groupOf = (name: string): string | undefined =>
      name === 'kube-apiserver'
        ? 'apiserver'
        : name === 'etcd'
          ? 'etcd'
          : name.startsWith('kube-')
            ? 'controllers'
            : name.startsWith('engine ')
              ? 'engines'
              : undefined;
    return [
      { group: 'operator', pid: operator.pid },
      { group: 'router', pid: router.proc.pid },
      { group: 'bench+kubelet', pid: process.pid },
      ...env.cluster.processes().flatMap((p) => {
        const group = groupOf(p.name);
        return group ? [{ group, pid: p.pid }] : [];
      }),
    ];
  });
  const enterPhase = (name: string): void => {
    usage.enter(name);
    ledger.enter(name, os.loadavg()[0]!);
  };
  const ctx: BenchContext = { env, router, operator, usage, observer, readyLog, pods, say, enterPhase };
  enterPhase('no clusters');
  await sleep(5000);
  say(
    `operator pid ${operator.pid} up; at rest with no clusters: RSS ${usage.latest()?.rssMB.toFixed(0)} MB`,
  );

  const specs: ScenarioSpec[] = [];
  const base = { prefill: opts.prefill, decode: opts.decode, rounds: opts.rounds, idleS: opts.idleS };
  if (!opts.skip.has('one')) {
    specs.push({
      ...base,
      id: 'one',
      label: '1 cluster',
      clusters: 1,
      engine: opts.engineOne,
      dataPathCheck: opts.engineOne === 'sim',
      bringUpTimeoutS: 300,
      burst: true,
      paceMs: 0,
    });
  }
  if (!opts.skip.has('scale')) {
    specs.push({
      ...base,
      id: 'scale',
      label: `${opts.clusters} clusters`,
      clusters: opts.clusters,
      engine: opts.engineScale,
      dataPathCheck: false,
      bringUpTimeoutS: 1800,
      burst: opts.burst,
      paceMs: opts.paceMs,
    });
  }
  const results: ScenarioResult[] = [];
  for (const [i, spec] of specs.entries()) {
    results.push(await runScenario(ctx, spec));
    if (i < specs.length - 1) {
      say(`${spec.label}: deleting its namespace before the next scenario ...`);
      enterPhase(`${spec.label}: teardown`);
      await teardownScenario(ctx, spec);
    }
  }
  ledger.enter('end', os.loadavg()[0]!);
  usage.stop();
  let heap: HeapSummary | undefined;
  if (opts.heapSnapshot) {
    say('writing a heap snapshot of the operator (SIGUSR2) ...');
    const since = Date.now();
    process.kill(operator.pid, 'SIGUSR2');
    heap = await waitForSnapshot(since).then((f) => summarizeHeapSnapshot(f));
  }
  let profile: ProfileSummary | undefined;
  if (opts.profile) {
    // the profile is written when the process exits: stop it the way Kubernetes does (SIGTERM)
    await operator.proc.stop(20_000);
    const file = latestProfile(PROFILE_DIR);
    if (file) profile = summarizeProfile(file, REPO_ROOT);
  }

  const rows = results.flatMap(latencyRows);
  const phases = usage.phases();
  const scaleResult = results.find((r) => r.clusters > 1);
  const scaleRss = Math.max(
    0,
    ...phases.filter((p) => scaleResult && p.phase.startsWith(scaleResult.label)).map((p) => p.rssMaxMB),
  );
  const verdicts = [
    ...readyVerdicts(rows),
    ...(scaleResult
      ? [rssVerdict(`${scaleResult.clusters} clusters x ${scaleResult.podsPerCluster} pods`, scaleRss)]
      : []),
  ];
  const intervals = summarize(observer.pollIntervals());
  const runtimeLabel =
    (opts.runtime === 'dist'
      ? 'compiled build: node .bench/operator-build/operator/src/main.js (tsc -p tsconfig.build.json)'
      : 'node --import tsx operator/src/main.ts') +
    (opts.nodeFlags.length ? ` ${opts.nodeFlags.join(' ')}` : '');
  const engineNote = results.some((r) => r.engine === 'tiny')
    ? '\nEngines: "tiny" = the loopback kubelet\'s minimal /health engine (annotation disagg.dev/loopback-engine: tiny),\n' +
      'used where 400 simulator processes would not fit 2 cores; the operator sees the same pods either way.'
    : '';
  process.stdout.write(
    `\nConvergence (router configuration polled over its admin socket; each configuration dated by the router's appliedAt;\n` +
      `Ready = the moment the loopback kubelet turned the pod's Ready condition True):\n\n${latencyTable(rows)}\n${engineNote}\n\n` +
      `Operator process (${runtimeLabel}; /proc/${operator.pid}/stat and status, sampled every second):\n\n${usageTable(phases)}\n` +
      `peak RSS (VmHWM) ${usage.peakMB().toFixed(0)} MB\n\n` +
      `CPU by process group, % of one core (the machine has ${machine.cpus}; other work on it shows in the load):\n\n` +
      `${cpuTable(ledger.phases, CPU_GROUPS)}\n\n` +
      `Router polls: ${observer.polls}, configurations seen ${observer.configs}, missed between polls ${observer.missedGenerations}, ` +
      `poll interval p50 ${intervals.p50} ms / p99 ${intervals.p99} ms\n\n${verdictLines(verdicts)}\n`,
  );
  for (const r of results) {
    const ups = r.edits.filter((e) => e.dataPath);
    if (ups.length) {
      const served = ups.reduce((a, e) => a + e.dataPath!.newPodsServed, 0);
      const newPods = ups.reduce((a, e) => a + e.dataPath!.newPods, 0);
      const failed = ups.reduce((a, e) => a + e.dataPath!.failed, 0);
      process.stdout.write(
        `${r.label}: requests after each scale-up reached ${served}/${newPods} new pods; ${failed} failed\n`,
      );
    }
    const dw = r.edits.reduce((a, e) => a + (e.deletedWhileRouted ?? 0), 0);
    const all = mergeOutcomes([r.bringUp.ready, ...r.edits.flatMap((e) => e.ready ?? [])]);
    process.stdout.write(
      `${r.label}: pods deleted while still routed: ${dw}; Ready clock cross-check ${r.readyClockCheck.consistent}/${r.readyClockCheck.checked}; ` +
        `Ready spells that ended before the pod was routed: ${all.endedBeforeRouted.length}` +
        `${all.endedBeforeRouted.length ? ` (ready for p50 ${summarize(all.endedBeforeRouted.map((x) => x.readyForMs)).p50} ms)` : ''}; ` +
        `Ready again while still routed: ${all.alreadyRouted}; never routed: ${all.neverRouted.length}; ` +
        `kubelet not-Ready transitions: ${readyLog.notReady.filter((e) => e.id.startsWith(`${r.namespace}/`)).length}\n`,
    );
  }
  if (heap) process.stdout.write(`\n${renderHeap(heap)}\n`);
  if (profile) process.stdout.write(`\n${renderProfile(profile)}\n`);
  const loadAvgAtEnd = os.loadavg().map((x) => Number(x.toFixed(2)));
  process.stdout.write(`\nload average at the end: ${loadAvgAtEnd.join(' ')}\n`);

  await mkdir(path.dirname(opts.out), { recursive: true });
  const json = {
    date: new Date().toISOString(),
    machine: { ...machine, loadAvgAtEnd },
    options: { ...opts, skip: [...opts.skip] },
    measured: {
      ready:
        "loopback kubelet's Ready transition (ms clock, same moment as the Ready condition's lastTransitionTime, which has whole seconds)",
      routed:
        "router's appliedAt of the first configuration (GET /admin/config over the admin socket) listing the pod / the new pool sizes",
      edit: 'just before the merge patch of spec.prefill.replicas and spec.decode.replicas is sent',
      operator:
        opts.runtime === 'dist'
          ? 'compiled build (tsc -p tsconfig.build.json), node main.js'
          : 'node --import tsx',
    },
    targets: verdicts,
    latency: rows.map((r) => ({ scenario: r.scenario, metric: r.metric, ...r.summary })),
    operatorUsage: { phases, peakRssMB: usage.peakMB() },
    cpuByProcessGroup: ledger.phases,
    routerObserver: {
      polls: observer.polls,
      configs: observer.configs,
      missedGenerations: observer.missedGenerations,
      errors: observer.errors,
      pollIntervalMs: intervals,
    },
    scenarios: results,
    ...(profile ? { profile } : {}),
    ...(heap ? { heap } : {}),
  };
  await writeFile(opts.out, `${JSON.stringify(json, null, 2)}\n`);
  say(`results written to ${path.relative(process.cwd(), opts.out)}`);
  return 0;
}

runBench(main, cleanup, say);
