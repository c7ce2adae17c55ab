// One scenario of the operator benchmark: N DisaggClusters of P prefill + D decode pods brought up
// at once (every pod's Ready -> routed), a quiet period (resync included), then edit rounds: one
// cluster at a time is scaled to P+1/D+1 and back, timing edit -> new topology routed and each new
// pod's Ready -> routed.
import { kubeRequest } from '../cluster/rest.js';
import { sleep } from '../cluster/wait.js';
import {
  complete,
  promptOfTokens,
  simRequests,
  type E2eEnv,
  type RouterProc,
} from '../../operator/test/support/e2e-env.js';
import type { KubeletReadyLog, PodTracker, ReadyEvent, RouterConfigObserver } from './operator-observer.js';
import { metricSum, type OperatorProcess } from './operator-process.js';
import type { ProcessUsage } from './operator-usage.js';
import {
  clusterKey,
  createCluster,
  createNamespace,
  scaleCluster,
  type ClusterShape,
  type EngineKind,
} from './operator-workload.js';

export interface BenchContext {
  env: E2eEnv;
  router: RouterProc;
  operator: OperatorProcess;
  usage: ProcessUsage;
  observer: RouterConfigObserver;
  readyLog: KubeletReadyLog;
  pods: PodTracker;
  say: (msg: string) => void;
  /** Starts a measurement phase (operator RSS/CPU and the machine's CPU per process group). */
  enterPhase: (name: string) => void;
}

export interface ScenarioSpec {
  id: string;
  label: string;
  clusters: number;
  prefill: number;
  decode: number;
  engine: EngineKind;
  rounds: number;
  idleS: number;
  /** Send requests after each scale-up and check they land on the new pods (simulator engines only). */
  dataPathCheck: boolean;
  bringUpTimeoutS: number;
  /** Create every cluster at once (a start storm) instead of one every paceMs. */
  burst: boolean;
  paceMs: number;
}

export interface ReadySample {
  id: string;
  /** Kubelet's Ready -> first router configuration listing the pod. */
  readyToRoutedMs: number;
  /** Kubelet's Ready -> the watch in this process delivers it (kubelet status patch + API server + watch). */
  readyToWatchMs?: number;
  /** That watch event -> routed (the operator's informer, queue, reconcile and push, and the router's apply). */
  watchToRoutedMs?: number;
  /** Kubelet's Ready -> the API server answered its status PATCH (the kubelet's queue and the write). */
  readyToPersistedMs?: number;
  /** Ready persisted -> routed: from when the API server had it (no operator can see it earlier). */
  persistedToRoutedMs?: number;
}

export interface EditSample {
  cluster: string;
  direction: 'up' | 'down';
  /** Edit sent -> first router configuration with the new pool sizes. */
  editToRoutedMs: number;
  /** Scale-up: edit -> the last new pod seen / Ready (where the time goes besides the operator). */
  editToPodsCreatedMs?: number;
  editToPodsReadyMs?: number;
  /** Scale-up: each new pod's Ready -> routed. */
  ready?: ReadyOutcomes;
  /** Scale-down: pods that were still routed when their deletion started (should be 0). */
  deletedWhileRouted?: number;
  dataPath?: { requests: number; failed: number; newPods: number; newPodsServed: number };
}

export interface ScenarioResult {
  label: string;
  namespace: string;
  engine: EngineKind;
  clusters: number;
  podsPerCluster: number;
  bringUp: { seconds: number; mode: 'paced' | 'burst'; ready: ReadyOutcomes };
  edits: EditSample[];
  /** Ready events whose kubelet time falls in [condition lastTransitionTime, +1 s): the clocks agree. */
  readyClockCheck: { checked: number; consistent: number };
  operatorMetrics: Record<string, number>;
}

async function until(
  ctx: BenchContext,
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  progress?: () => string,
): Promise<void> {
  const start = Date.now();
  let printed = start;
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    if (progress && Date.now() - printed >= 5000) {
      printed = Date.now();
      ctx.say(`  ${progress()}`);
    }
    await sleep(50);
  }
}

function usageNow(ctx: BenchContext, since: { at: number; cpuS: number } | undefined): string {
  const s = ctx.usage.latest();
  if (!s) return 'operator gone?';
  const cpu =
    since && s.at > since.at
      ? ` CPU ${((100 * (s.cpuS - since.cpuS)) / ((s.at - since.at) / 1000)).toFixed(0)}%`
      : '';
  return `operator RSS ${s.rssMB.toFixed(0)} MB${cpu}`;
}

export async function runScenario(ctx: BenchContext, spec: ScenarioSpec): Promise<ScenarioResult> {
  const { env, observer, readyLog, pods, say } = ctx;
  const kc = env.cluster.kubeConfig;
  const ns = `bench-${spec.id}`;
  const shapes: ClusterShape[] = Array.from({ length: spec.clusters }, (_, i) => ({
    namespace: ns,
    name: `c${String(i).padStart(2, '0')}`,
    model: `${spec.id}-model-${i}`,
    prefill: spec.prefill,
    decode: spec.decode,
    engine: spec.engine,
  }));
  const perCluster = spec.prefill + spec.decode;
  const total = spec.clusters * perCluster;
  await createNamespace(kc, ns);

  // ---- bring-up
  ctx.enterPhase(`${spec.label}: bring-up`);
  const pace = spec.burst || spec.clusters === 1 ? 'at once' : `one every ${spec.paceMs} ms`;
  say(
    `${spec.label}: creating ${spec.clusters} DisaggCluster(s) of ${spec.prefill}P${spec.decode}D ${pace} (${total} pods, ${spec.engine} engines) ...`,
  );
  const t0 = Date.now();
  let created = 0;
  const creating = spec.burst
    ? Promise.all(shapes.map((s) => createCluster(kc, s))).then(() => (created = shapes.length))
    : (async () => {
        for (const s of shapes) {
          await createCluster(kc, s);
          created++;
          if (created < shapes.length) await sleep(spec.paceMs);
        }
      })();
  let creationError: unknown;
  creating.catch((err: unknown) => (creationError = err));
  const inNs = (id: string): boolean => id.startsWith(`${ns}/`);
  let last = ctx.usage.latest();
  await until(
    ctx,
    `${spec.label}: every cluster routed at ${spec.prefill}P${spec.decode}D`,
    () => {
      if (creationError) throw creationError;
      return (
        created === shapes.length &&
        shapes.every((s) => {
          const t = observer.currentTopology(clusterKey(s));
          return t?.prefill === s.prefill && t.decode === s.decode;
        })
      );
    },
    spec.bringUpTimeoutS * 1000,
    () => {
      const podsCreated = [...pods.pods.values()].filter((p) => inNs(p.id)).length;
      const ready = new Set(
        readyLog
          .since(t0)
          .filter((e) => inNs(e.id))
          .map((e) => e.id),
      ).size;
      const routed = [...pods.pods.values()].filter((p) => inNs(p.id) && observer.routes(p.id)).length;
      const line =
        `bring-up ${((Date.now() - t0) / 1000).toFixed(0)} s: clusters ${created}/${shapes.length}, ` +
        `pods created ${podsCreated}/${total}, Ready ${ready}, routed ${routed}; ${usageNow(ctx, last)}`;
      last = ctx.usage.latest();
      return line;
    },
  );
  const bringUpS = (Date.now() - t0) / 1000;
  const bringUpReady = readyOutcomes(
    ctx,
    readyLog.since(t0).filter((x) => inNs(x.id)),
  );
  say(`${spec.label}: all ${total} pods routed after ${bringUpS.toFixed(1)} s; ${usageNow(ctx, undefined)}`);

  // ---- quiet period: what the operator costs when nothing changes (a resync falls in it)
  ctx.enterPhase(`${spec.label}: steady`);
  say(`${spec.label}: ${spec.idleS} s with nothing changing (operator CPU/RSS at rest) ...`);
  await sleep(spec.idleS * 1000);

  // ---- edit rounds
  ctx.enterPhase(`${spec.label}: edits`);
  const edits: EditSample[] = [];
  for (let r = 0; r < spec.rounds; r++) {
    const s = shapes[r % shapes.length]!;
    const key = clusterKey(s);
    const before = new Set(pods.live(key).map((p) => p.id));
    const up = { prefill: s.prefill + 1, decode: s.decode + 1 };
    const tUp = await scaleCluster(kc, s, up.prefill, up.decode);
    await until(
      ctx,
      `${key} routed at ${up.prefill}P${up.decode}D`,
      () => observer.topologyAt(key, tUp, up) !== undefined,
      300_000,
    );
    const routedUp = observer.topologyAt(key, tUp, up)!;
    const fresh = pods.live(key).filter((p) => !before.has(p.id));
    const freshIds = new Set(fresh.map((p) => p.id));
    const readyEvents = readyLog.since(tUp).filter((e) => freshIds.has(e.id));
    const sample: EditSample = {
      cluster: key,
      direction: 'up',
      editToRoutedMs: routedUp - tUp,
      editToPodsCreatedMs: Math.max(...fresh.map((p) => p.createdSeenAt)) - tUp,
      editToPodsReadyMs: Math.max(...readyEvents.map((e) => e.at)) - tUp,
      ready: readyOutcomes(ctx, readyEvents),
    };
    if (spec.dataPathCheck) sample.dataPath = await checkDataPath(ctx, s, freshIds);
    edits.push(sample);

    const tDown = await scaleCluster(kc, s, s.prefill, s.decode);
    const down = { prefill: s.prefill, decode: s.decode };
    await until(
      ctx,
      `${key} routed at ${down.prefill}P${down.decode}D`,
      () => observer.topologyAt(key, tDown, down) !== undefined,
      300_000,
    );
    const routedDown = observer.topologyAt(key, tDown, down)!;
    // the drained pods go: wait until they are gone, so the next round starts from the same state
    await until(
      ctx,
      `${key} back to ${perCluster} pods`,
      () => pods.live(key).length === perCluster,
      300_000,
    );
    const victims = [...pods.pods.values()].filter(
      (p) => p.cluster === key && p.deletedAt !== undefined && p.deletedAt >= tDown,
    );
    await until(
      ctx,
      `${key}: deleted pods gone`,
      () => victims.every((p) => p.goneAt !== undefined),
      300_000,
    );
    edits.push({
      cluster: key,
      direction: 'down',
      editToRoutedMs: routedDown - tDown,
      deletedWhileRouted: victims.filter((p) => {
        const out = observer.removedAt(p.id, tDown);
        return out === undefined || out > p.deletedAt!;
      }).length,
    });
    say(
      `${spec.label}: round ${r + 1}/${spec.rounds} ${key}: edit -> routed up ${routedUp - tUp} ms ` +
        `(new pods Ready after ${sample.editToPodsReadyMs} ms; Ready -> routed ${sample.ready!.samples.map((x) => x.readyToRoutedMs).join(', ')} ms), ` +
        `down ${routedDown - tDown} ms${sample.dataPath ? `; requests on new pods ${sample.dataPath.newPodsServed}/${sample.dataPath.newPods}, failed ${sample.dataPath.failed}` : ''}`,
    );
  }

  // ---- cross-check of the Ready moments against the pods' Ready condition (whole seconds)
  const readyClockCheck = { checked: 0, consistent: 0 };
  const lastReady = new Map<string, number>();
  for (const e of readyLog.since(t0)) if (inNs(e.id)) lastReady.set(e.id, e.at);
  for (const [id, at] of lastReady) {
    const cond = pods.pods.get(id)?.readyConditionAt;
    if (cond === undefined) continue;
    readyClockCheck.checked++;
    if (at >= cond && at < cond + 1000 + 50) readyClockCheck.consistent++;
  }

  const text = await ctx.operator.metrics();
  const reconciles = metricSum(text, 'controller_runtime_reconcile_time_seconds_count');
  return {
    label: spec.label,
    namespace: ns,
    engine: spec.engine,
    clusters: spec.clusters,
    podsPerCluster: perCluster,
    bringUp: { seconds: bringUpS, mode: spec.burst ? 'burst' : 'paced', ready: bringUpReady },
    edits,
    readyClockCheck,
    operatorMetrics: {
      reconciles,
      reconcileErrors: metricSum(text, 'controller_runtime_reconcile_errors_total'),
      reconcileMeanMs: (1000 * metricSum(text, 'controller_runtime_reconcile_time_seconds_sum')) / reconciles,
      queueWaitMeanMs:
        (1000 * metricSum(text, 'workqueue_queue_duration_seconds_sum')) /
        metricSum(text, 'workqueue_queue_duration_seconds_count'),
      routerPushesSuccess: metricSum(text, 'disagg_router_config_push_total', { result: 'success' }),
      routerPushesUnchanged: metricSum(text, 'disagg_router_config_push_total', { result: 'unchanged' }),
      routerPushesFailed:
        metricSum(text, 'disagg_router_config_push_total', { result: 'rejected' }) +
        metricSum(text, 'disagg_router_config_push_total', { result: 'unreachable' }),
      heapUsedMB: metricSum(text, 'nodejs_heap_size_used_bytes') / 1024 ** 2,
      workqueueDepth: metricSum(text, 'workqueue_depth'),
    },
  };
}

export interface ReadyOutcomes {
  samples: ReadySample[];
  /** Ready transitions of pods the router still listed from an earlier Ready spell (nothing to converge). */
  alreadyRouted: number;
  /** Ready spells that ended (the kubelet turned the pod not Ready) before the router listed the pod. */
  endedBeforeRouted: Array<{ id: string; readyForMs: number }>;
  /** Ready and never routed by the end of the scenario. */
  neverRouted: string[];
}

/** Each Ready transition: how long until the router listed the pod, split at the pod watch event. */
function readyOutcomes(ctx: BenchContext, events: ReadyEvent[]): ReadyOutcomes {
  const out: ReadyOutcomes = { samples: [], alreadyRouted: 0, endedBeforeRouted: [], neverRouted: [] };
  for (const e of events) {
    const routed = ctx.observer.routedAt(e.id, e.at);
    const ended = ctx.readyLog.nextNotReady(e.id, e.at);
    if (routed === e.at) out.alreadyRouted++;
    else if (routed !== undefined && (ended === undefined || routed <= ended)) {
      const sample: ReadySample = { id: e.id, readyToRoutedMs: routed - e.at };
      const seen = ctx.pods.readySeenAt(e.id, e.at);
      if (seen !== undefined && seen <= routed) {
        sample.readyToWatchMs = seen - e.at;
        sample.watchToRoutedMs = routed - seen;
      }
      const persisted = ctx.readyLog.persistedAt(e.id, e.at);
      if (persisted !== undefined && persisted <= routed) {
        sample.readyToPersistedMs = persisted - e.at;
        sample.persistedToRoutedMs = routed - persisted;
      }
      out.samples.push(sample);
    } else if (ended !== undefined) out.endedBeforeRouted.push({ id: e.id, readyForMs: ended - e.at });
    else out.neverRouted.push(e.id);
  }
  return out;
}

/** Requests through the router land on the new pods: as many short (direct) and long (DPD) requests as twice the pools. */
async function checkDataPath(
  ctx: BenchContext,
  s: ClusterShape,
  freshIds: ReadonlySet<string>,
): Promise<NonNullable<EditSample['dataPath']>> {
  const n = 2 * (Math.max(s.prefill, s.decode) + 1);
  const long = promptOfTokens(200);
  const results = await Promise.all(
    Array.from({ length: n }, (_, i) => [
      complete(ctx.router.url, s.model, `hi ${i}`, 2),
      complete(ctx.router.url, s.model, `${long} ${i}`, 2),
    ]).flat(),
  );
  const engines = ctx.env.cluster.kubelet!.engines().filter((e) => freshIds.has(`${e.namespace}/${e.name}`));
  let served = 0;
  for (const e of engines) if ((await simRequests(e.url).catch(() => [])).length > 0) served++;
  return {
    requests: results.length,
    failed: results.filter((r) => r.status !== 200).length,
    newPods: freshIds.size,
    newPodsServed: served,
  };
}

/** Deletes the scenario's namespace (its clusters and pods) and waits until its pods are gone and unrouted. */
export async function teardownScenario(
  ctx: BenchContext,
  spec: ScenarioSpec,
  timeoutMs = 300_000,
): Promise<void> {
  const ns = `bench-${spec.id}`;
  await kubeRequest(ctx.env.cluster.kubeConfig, { method: 'DELETE', path: `/api/v1/namespaces/${ns}` });
  await until(
    ctx,
    `namespace ${ns} emptied`,
    () => ![...ctx.pods.pods.values()].some((p) => p.id.startsWith(`${ns}/`) && p.goneAt === undefined),
    timeoutMs,
  );
}
