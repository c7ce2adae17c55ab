// The planner: one DisaggCluster, its pods and Deployments, and what its router acknowledged, in;
// desired Deployments, pod annotation patches, the router entry, the status and events out.
//
// Pure and level-triggered: it never remembers anything between calls; everything it needs to
// continue a multi-step change (a scale-down drain) is read back from the objects themselves.
// The clock is an input. Invariants:
//   - the router entry lists only routable pods that are not chosen to go (scale-down.ts);
//   - a Deployment's replicas never drop below the pods the router may still use;
//   - status changes only when something observable changed (lastTransitionTime is kept).
import { createHash } from 'node:crypto';
import { CONDITION, EVENT, REASON } from '../api/conditions.js';
import {
  DEFAULTS,
  POOL_ROLES,
  type Condition,
  type Deployment,
  type DisaggCluster,
  type DisaggClusterStatus,
  type Pod,
  type PoolRole,
  type PoolStatus,
} from '../api/types.js';
import { discoverEndpoints, type ClusterDiscovery, type PodProblem } from '../discovery/pod-endpoints.js';
import { canonicalJson } from '../../../router/src/config/index.js';
import { findCondition, setCondition, type ConditionInput } from './conditions.js';
import { deploymentName, desiredDeployment } from './deployments.js';
import { routerEntry as routerEntryOf, type ClusterEntry } from './router-entry.js';
import { chooseVictims, planScaleDown, type PodAnnotationPatch } from './scale-down.js';

/** What this replica's router last did with this cluster's entry (from the config pusher). */
export interface RouterState {
  /** canonicalJson of the entry in the last configuration the router acknowledged. */
  ackedEntryKey?: string;
  /** Endpoint ids in that acknowledged entry. */
  ackedEndpointIds?: readonly string[];
  /** The hash the router answered with for that configuration. */
  ackedHash?: string;
  /** Why the current entry is not acknowledged, when known. */
  failure?: { reason: 'PushFailed' | 'ConfigRejected' | 'ModelConflict'; message: string };
}

export interface PlanInput {
  cluster: DisaggCluster;
  /** Pods labelled disagg.dev/cluster=<name> in the cluster's namespace. */
  pods: readonly Pod[];
  /** Deployments the operator runs for this cluster (from its cache). */
  deployments: readonly Deployment[];
  router: RouterState;
  /** The last apply error of this cluster, reported until an apply succeeds. */
  applyError?: string;
  now: Date;
}

export interface PlannedEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface Plan {
  /** Deployments to server-side apply, one per template pool. */
  deployments: Deployment[];
  /** Names of Deployments of pools that no longer have a template. */
  deleteDeployments: string[];
  podPatches: PodAnnotationPatch[];
  routerEntry: ClusterEntry;
  /** canonicalJson(routerEntry), compared with RouterState.ackedEntryKey. */
  routerEntryKey: string;
  status: DisaggClusterStatus;
  events: PlannedEvent[];
  requeueAfterMs?: number;
}

const MAX_LISTED_PROBLEMS = 5;

/**
 * The router entry alone, as plan() computes it: it depends only on the cluster and its pods
 * (not on the router's state, the Deployments or the clock), so every replica can feed its router
 * straight from a watch event without waiting for a reconcile.
 */
export function planRouterEntry(
  cluster: DisaggCluster,
  pods: readonly Pod[],
): { routerEntry: ClusterEntry; routerEntryKey: string } {
  const discovery = discoverEndpoints(cluster, pods);
  const draining = new Set<string>();
  for (const role of POOL_ROLES) {
    const pool = cluster.spec[role];
    if (!pool.template) continue; // adopted pools are never scaled down by the operator
    for (const p of chooseVictims(discovery[role].pods, pool.replicas)) draining.add(p.id);
  }
  const routerEntry = routerEntryOf(cluster, discovery, draining);
  return { routerEntry, routerEntryKey: canonicalJson(routerEntry) };
}

export function plan(input: PlanInput): Plan {
  const { cluster, now } = input;
  const generation = cluster.metadata.generation;
  const discovery = discoverEndpoints(cluster, input.pods);
  const events: PlannedEvent[] = [];
  const deployments: Deployment[] = [];
  const deleteDeployments: string[] = [];
  const podPatches: PodAnnotationPatch[] = [];
  const draining = new Set<string>();
  let requeueAfterMs: number | undefined;
  const acked = new Set(input.router.ackedEndpointIds ?? []);
  const routerUnreachable = input.router.failure?.reason === 'PushFailed';
  const scaling: Partial<Record<PoolRole, 'up' | 'down'>> = {};

  for (const role of POOL_ROLES) {
    const pool = cluster.spec[role];
    const existing = input.deployments.find((d) => d.metadata.name === deploymentName(cluster, role));
    if (!pool.template) {
      if (existing) deleteDeployments.push(existing.metadata.name!);
      continue;
    }
    const sd = planScaleDown({
      pods: discovery[role].pods,
      desired: pool.replicas,
      drainSeconds: pool.drainSeconds ?? DEFAULTS.drainSeconds,
      now,
      // An unreachable router routes nowhere; otherwise wait until its config no longer lists the pod.
      routerExcludes: (id) =>
        routerUnreachable || (input.router.ackedEntryKey !== undefined && !acked.has(id)),
    });
    sd.draining.forEach((id) => draining.add(id));
    podPatches.push(...sd.patches);
    for (const n of sd.notes) events.push({ type: 'Normal', reason: EVENT[n.reason], message: n.message });
    if (sd.requeueAfterMs !== undefined)
      requeueAfterMs = Math.min(requeueAfterMs ?? Infinity, sd.requeueAfterMs);
    const live = discovery[role].pods.filter((p) => !p.terminating).length;
    if (live < pool.replicas) scaling[role] = 'up';
    else if (live > pool.replicas) scaling[role] = 'down';
    deployments.push(desiredDeployment(cluster, role, sd.replicas));
    const before = existing?.spec.replicas;
    if (before !== undefined && before !== sd.replicas) {
      events.push({
        type: 'Normal',
        reason: EVENT.ScaledPool,
        message: `Scaled Deployment ${deploymentName(cluster, role)} from ${before} to ${sd.replicas} replicas (desired ${pool.replicas})`,
      });
    }
  }

  const entry = routerEntryOf(cluster, discovery, draining);
  const entryKey = canonicalJson(entry);
  const status = planStatus(input, discovery, entry, entryKey, draining, scaling);
  events.push(...transitionEvents(input, discovery.problems, status));
  if (generation !== undefined) status.observedGeneration = generation;

  const out: Plan = {
    deployments,
    deleteDeployments,
    podPatches,
    routerEntry: entry,
    routerEntryKey: entryKey,
    status,
    events,
  };
  if (requeueAfterMs !== undefined) out.requeueAfterMs = Math.ceil(requeueAfterMs);
  return out;
}

function poolStatus(discovery: ClusterDiscovery, role: PoolRole, routable: number): PoolStatus {
  const live = discovery[role].pods.filter((p) => !p.terminating);
  return {
    replicas: live.length,
    readyReplicas: live.filter((p) => p.ready).length,
    routableEndpoints: routable,
  };
}

function listProblems(problems: readonly PodProblem[]): string {
  const shown = problems.slice(0, MAX_LISTED_PROBLEMS).map((p) => p.message);
  const more = problems.length - shown.length;
  return shown.join('; ') + (more > 0 ? `; and ${more} more` : '');
}

function planStatus(
  input: PlanInput,
  discovery: ClusterDiscovery,
  entry: ClusterEntry,
  entryKey: string,
  draining: ReadonlySet<string>,
  scaling: Partial<Record<PoolRole, 'up' | 'down'>>,
): DisaggClusterStatus {
  const { cluster, router, now } = input;
  const previous = cluster.status?.conditions;
  const generation = cluster.metadata.generation;
  const routableP = entry.prefill.endpoints.length;
  const routableD = entry.decode.endpoints.length;
  const desiredP = cluster.spec.prefill.replicas;
  const desiredD = cluster.spec.decode.replicas;
  const acked = router.ackedEntryKey === entryKey;
  const entryHash = shortHash(entryKey);
  // Keep the first hash that carried this entry, so other clusters' changes do not touch our status.
  const oldRouter = cluster.status?.router;
  const ackedHash = !acked
    ? oldRouter?.acknowledgedHash
    : oldRouter?.entryHash === entryHash && oldRouter.acknowledgedHash
      ? oldRouter.acknowledgedHash
      : router.ackedHash;

  // RouterConfigured: the leader's router acknowledged exactly the entry computed now.
  const routerCond: ConditionInput = acked
    ? {
        type: CONDITION.RouterConfigured,
        status: 'True',
        reason: REASON.ConfigAcknowledged,
        message: `The router acknowledged configuration ${ackedHash ?? ''} with ${routableP} prefill and ${routableD} decode endpoints`,
      }
    : router.failure
      ? {
          type: CONDITION.RouterConfigured,
          status: 'False',
          reason: router.failure.reason,
          message: router.failure.message,
        }
      : {
          type: CONDITION.RouterConfigured,
          status: 'False',
          reason: REASON.PushPending,
          message: 'Waiting for the router to acknowledge the current configuration',
        };

  // Degraded: things a person has to fix; first match wins, in this order.
  const degradedRules: Array<() => ConditionInput | undefined> = [
    // Pods the operator cannot route to because of their own declarations.
    () => {
      const bad = discovery.problems.filter((p) => p.reason === 'InvalidPodPorts');
      return bad.length
        ? {
            type: CONDITION.Degraded,
            status: 'True',
            reason: REASON.InvalidPodPorts,
            message: listProblems(bad),
          }
        : undefined;
    },
    // Adopted pods both selectors claim.
    () => {
      const amb = discovery.problems.filter((p) => p.reason === 'AmbiguousPodRole');
      return amb.length
        ? {
            type: CONDITION.Degraded,
            status: 'True',
            reason: REASON.AmbiguousPodRole,
            message: listProblems(amb),
          }
        : undefined;
    },
    // A write to the API server failed (RBAC, admission, a name taken).
    () =>
      input.applyError
        ? { type: CONDITION.Degraded, status: 'True', reason: REASON.ApplyFailed, message: input.applyError }
        : undefined,
    // The router refuses or cannot get the configuration: it routes with a stale one.
    () =>
      !acked && router.failure
        ? {
            type: CONDITION.Degraded,
            status: 'True',
            reason: router.failure.reason,
            message: router.failure.message,
          }
        : undefined,
  ];
  const degraded = degradedRules.reduce<ConditionInput | undefined>(
    (found, rule) => found ?? rule(),
    undefined,
  ) ?? {
    type: CONDITION.Degraded,
    status: 'False',
    reason: REASON.AsExpected,
    message: 'No problems found',
  };

  const counts = `${routableP}/${desiredP} prefill and ${routableD}/${desiredD} decode endpoints routable`;
  const notReady = POOL_ROLES.some((role) => discovery[role].pods.some((p) => !p.terminating && !p.ready));
  let progressing: ConditionInput;
  if (draining.size > 0) {
    progressing = {
      type: CONDITION.Progressing,
      status: 'True',
      reason: REASON.DrainingPods,
      message: `Draining ${[...draining].sort().join(', ')} before scale-down`,
    };
  } else if (scaling.prefill === 'up' || scaling.decode === 'up') {
    progressing = { type: CONDITION.Progressing, status: 'True', reason: REASON.ScalingUp, message: counts };
  } else if (scaling.prefill === 'down' || scaling.decode === 'down') {
    progressing = {
      type: CONDITION.Progressing,
      status: 'True',
      reason: REASON.ScalingDown,
      message: counts,
    };
  } else if (notReady) {
    progressing = {
      type: CONDITION.Progressing,
      status: 'True',
      reason: REASON.PodsStarting,
      message: counts,
    };
  } else {
    progressing = { type: CONDITION.Progressing, status: 'False', reason: REASON.Stable, message: counts };
  }

  // Ready: serving at the desired topology with the router configured.
  let ready: ConditionInput;
  if (desiredP === 0 && desiredD === 0) {
    ready = {
      type: CONDITION.Ready,
      status: 'False',
      reason: REASON.ScaledToZero,
      message: 'Both pools are scaled to 0',
    };
  } else if (routableD === 0) {
    ready = { type: CONDITION.Ready, status: 'False', reason: REASON.NoRoutableDecoders, message: counts };
  } else if (routableP < desiredP || routableD < desiredD) {
    ready = { type: CONDITION.Ready, status: 'False', reason: REASON.EndpointsNotRoutable, message: counts };
  } else if (!acked) {
    ready = {
      type: CONDITION.Ready,
      status: 'False',
      reason: REASON.RouterNotConfigured,
      message: `${counts}, but ${routerCond.message.charAt(0).toLowerCase()}${routerCond.message.slice(1)}`,
    };
  } else {
    ready = { type: CONDITION.Ready, status: 'True', reason: REASON.AllEndpointsRoutable, message: counts };
  }

  const conditions: Condition[] = [ready, progressing, degraded, routerCond].map((c) =>
    setCondition(previous, c, generation, now),
  );
  const status: DisaggClusterStatus = {
    topology: `${routableP}P${routableD}D`,
    prefill: poolStatus(discovery, 'prefill', routableP),
    decode: poolStatus(discovery, 'decode', routableD),
    conditions,
  };
  if (ackedHash)
    status.router = { acknowledgedHash: ackedHash, entryHash: acked ? entryHash : oldRouter?.entryHash };
  if (status.router && status.router.entryHash === undefined) delete status.router.entryHash;
  return status;
}

/** Events for things that changed since the last status, so a steady state emits nothing. */
function transitionEvents(
  input: PlanInput,
  problems: readonly PodProblem[],
  status: DisaggClusterStatus,
): PlannedEvent[] {
  const events: PlannedEvent[] = [];
  const old = input.cluster.status;
  const oldDegraded = findCondition(old?.conditions, CONDITION.Degraded);
  for (const p of problems) {
    if (oldDegraded?.status === 'True' && oldDegraded.message.includes(p.message)) continue;
    events.push({ type: 'Warning', reason: EVENT[p.reason], message: p.message });
  }
  const newRouter = findCondition(status.conditions, CONDITION.RouterConfigured)!;
  const oldRouter = findCondition(old?.conditions, CONDITION.RouterConfigured);
  if (newRouter.status === 'True' && status.router?.entryHash !== old?.router?.entryHash) {
    events.push({ type: 'Normal', reason: EVENT.RouterConfigured, message: newRouter.message });
  }
  if (
    newRouter.status === 'False' &&
    newRouter.reason !== REASON.PushPending &&
    (oldRouter?.reason !== newRouter.reason || oldRouter.message !== newRouter.message)
  ) {
    events.push({ type: 'Warning', reason: EVENT.RouterConfigFailed, message: newRouter.message });
  }
  const oldApply = findCondition(old?.conditions, CONDITION.Degraded);
  if (
    input.applyError &&
    !(oldApply?.reason === REASON.ApplyFailed && oldApply.message === input.applyError)
  ) {
    events.push({ type: 'Warning', reason: EVENT.ApplyFailed, message: input.applyError });
  }
  return events;
}

function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}
