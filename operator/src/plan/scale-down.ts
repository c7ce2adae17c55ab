// Scale-down without cutting requests: a pod leaves the router before the Deployment may delete it.
//
// When a template pool has more live pods than desired, the planner picks the pods that will go
// (the victims) and walks each one through three steps, one reconcile at a time:
//   1. mark it `disagg.dev/draining-since: <now>`: from then on every operator replica leaves it
//      out of its router's configuration;
//   2. once the router acknowledged a configuration without it and `drainSeconds` passed (requests
//      already on it finish), set `controller.kubernetes.io/pod-deletion-cost` very low on it;
//   3. once that cost is visible in the cache, lower the Deployment's replicas: the ReplicaSet
//      controller deletes the lowest-cost pods first, so exactly the drained pods go.
// Until a victim finishes step 3 the Deployment keeps a replica for it. Invariant: a pod the
// router may still send to is never the one the ReplicaSet deletes (not-ready pods, which the
// ReplicaSet prefers anyway, are chosen first and are not routed to). If the desired count rises
// again, marks are removed and the pods rejoin the pools.
import { ANN_DRAINING_SINCE, ANN_POD_DELETION_COST, DRAINED_POD_DELETION_COST } from '../api/labels.js';
import type { DiscoveredPod } from '../discovery/pod-endpoints.js';

export interface PodAnnotationPatch {
  /** Pod name (same namespace as the cluster). */
  name: string;
  /** null removes the annotation. */
  annotations: Record<string, string | null>;
}

export interface ScaleDownInput {
  /** The pool's pods, terminating ones included (they are skipped). */
  pods: readonly DiscoveredPod[];
  desired: number;
  drainSeconds: number;
  now: Date;
  /**
   * Whether this router no longer routes to the pod: true when its last acknowledged configuration
   * for the cluster does not list it (or it is unreachable, so it routes nowhere).
   */
  routerExcludes: (podId: string) => boolean;
}

export interface ScaleDownPlan {
  /** What the Deployment's spec.replicas should be now. */
  replicas: number;
  /** Pod ids to leave out of the router configuration. */
  draining: Set<string>;
  patches: PodAnnotationPatch[];
  /** Human-readable notes for events: [reason, message]. */
  notes: Array<{ reason: 'DrainingPod' | 'DrainedPod' | 'DrainCancelled'; message: string }>;
  /** When a drain timer expires, relative to now. */
  requeueAfterMs?: number;
}

const drainingSince = (p: DiscoveredPod): string | undefined =>
  p.pod.metadata.annotations?.[ANN_DRAINING_SINCE];
const hasDrainedCost = (p: DiscoveredPod): boolean =>
  p.pod.metadata.annotations?.[ANN_POD_DELETION_COST] === DRAINED_POD_DELETION_COST;

/**
 * The order victims are chosen in: pods already draining (keep a decision once made), then pods
 * the router does not use (not routable), then the youngest, like the ReplicaSet controller.
 */
export function victimOrder(a: DiscoveredPod, b: DiscoveredPod): number {
  const rank = (p: DiscoveredPod): number => (drainingSince(p) ? 0 : p.routable ? 2 : 1);
  if (rank(a) !== rank(b)) return rank(a) - rank(b);
  const ta = a.pod.metadata.creationTimestamp ?? '';
  const tb = b.pod.metadata.creationTimestamp ?? '';
  if (ta !== tb) return ta < tb ? 1 : -1;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

/** The pods that go when the pool has more live pods than desired; they are left out of the router. */
export function chooseVictims(pods: readonly DiscoveredPod[], desired: number): DiscoveredPod[] {
  const live = pods.filter((p) => !p.terminating);
  const excess = Math.max(0, live.length - desired);
  return excess === 0 ? [] : [...live].sort(victimOrder).slice(0, excess);
}

export function planScaleDown(input: ScaleDownInput): ScaleDownPlan {
  const { desired, now } = input;
  const live = input.pods.filter((p) => !p.terminating);
  const plan: ScaleDownPlan = { replicas: desired, draining: new Set(), patches: [], notes: [] };
  const victims = new Set(chooseVictims(input.pods, desired));

  for (const p of live) {
    if (victims.has(p) || (!drainingSince(p) && !hasDrainedCost(p))) continue;
    plan.patches.push({
      name: p.pod.metadata.name!,
      annotations: { [ANN_DRAINING_SINCE]: null, [ANN_POD_DELETION_COST]: null },
    });
    plan.notes.push({
      reason: 'DrainCancelled',
      message: `Returned pod ${p.id} to the pool: the desired replicas rose again`,
    });
  }

  let deletable = 0;
  for (const p of victims) {
    plan.draining.add(p.id);
    const since = drainingSince(p);
    if (!since) {
      plan.patches.push({
        name: p.pod.metadata.name!,
        annotations: { [ANN_DRAINING_SINCE]: now.toISOString() },
      });
      plan.notes.push({
        reason: 'DrainingPod',
        message: `Removed pod ${p.id} from the router before scale-down`,
      });
      continue;
    }
    const elapsedMs = now.getTime() - Date.parse(since);
    // A pod that is not Ready serves nothing worth waiting for.
    const waitMs = p.ready ? input.drainSeconds * 1000 - (Number.isFinite(elapsedMs) ? elapsedMs : 0) : 0;
    if (!input.routerExcludes(p.id)) continue; // the next acknowledgement re-enqueues us
    if (waitMs > 0) {
      plan.requeueAfterMs = Math.min(plan.requeueAfterMs ?? Infinity, waitMs);
      continue;
    }
    if (!hasDrainedCost(p)) {
      plan.patches.push({
        name: p.pod.metadata.name!,
        annotations: { [ANN_POD_DELETION_COST]: DRAINED_POD_DELETION_COST },
      });
      plan.notes.push({
        reason: 'DrainedPod',
        message: `Drained pod ${p.id}; the Deployment may delete it now`,
      });
      continue;
    }
    deletable++;
  }
  plan.replicas = desired + victims.size - deletable;
  return plan;
}
