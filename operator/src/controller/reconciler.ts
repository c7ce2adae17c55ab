// One reconcile of one DisaggCluster: gather (from the informer caches) -> plan (pure) -> feed
// this replica's router -> apply (leader only: server-side apply, pod annotations, status patch
// only when it changed, events). Level-triggered: it reads the whole current state every time.
// refreshRouter() is the router feed alone (no API I/O), called straight from watch events.
import {
  PLURAL,
  GROUP,
  POOL_ROLES,
  VERSION,
  type Deployment,
  type DisaggCluster,
  type Pod,
} from '../api/types.js';
import { canonicalJson } from '../../../router/src/config/index.js';
import { plan, planRouterEntry, type Plan } from '../plan/planner.js';
import type { ClusterEntry } from '../plan/router-entry.js';
import { errorMessage, type Logger } from '../observability/logger.js';
import type { OperatorMetrics } from '../observability/metrics.js';
import type { EventRecorder } from './event-recorder.js';
import { isNotFound, type KubeApi } from './kube-client.js';
import type { RouterConfigPusher } from './router-pusher.js';

export const FIELD_MANAGER = 'disagg-operator';

export interface ObjectStore<T> {
  list(namespace?: string): T[];
  get(name: string, namespace?: string): T | undefined;
}

/** A cache with one index (indexes.ts): pods by `namespace/cluster`, Deployments by owner uid. */
export interface IndexedStore<T> extends ObjectStore<T> {
  byIndex(value: string): T[];
}

export interface ReconcilerDeps {
  api: KubeApi;
  clusters: ObjectStore<DisaggCluster>;
  /** Indexed by podClusterIndex. */
  pods: IndexedStore<Pod>;
  /** Indexed by ownerUidIndex. */
  deployments: IndexedStore<Deployment>;
  pusher: Pick<RouterConfigPusher, 'setEntry' | 'removeEntry' | 'stateOf'>;
  recorder: Pick<EventRecorder, 'record'>;
  isLeader: () => boolean;
  now: () => Date;
  log: Logger;
  metrics?: OperatorMetrics;
}

export interface ReconcileResult {
  requeueAfterMs?: number;
}

const deploymentPath = (ns: string, name: string) => `/apis/apps/v1/namespaces/${ns}/deployments/${name}`;
const statusPath = (ns: string, name: string) =>
  `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${PLURAL}/${name}/status`;

export class Reconciler {
  /** Last apply error per cluster, reported in status until an apply succeeds. */
  private readonly applyErrors = new Map<string, string>();
  /** What we last applied per Deployment and the generation it produced, to skip no-op applies. */
  private readonly applied = new Map<string, { desiredKey: string; generation: number | undefined }>();

  constructor(private readonly deps: ReconcilerDeps) {}

  /**
   * Recomputes the cluster's router entry from the caches and hands it to the pusher: every
   * replica, leader or not, with no API call, so routing never waits behind other clusters' writes.
   */
  refreshRouter(key: string): void {
    const [ns, name] = splitKey(key);
    const cluster = this.deps.clusters.get(name, ns);
    if (!cluster || cluster.metadata.deletionTimestamp) return this.forget(key);
    const { routerEntry, routerEntryKey } = planRouterEntry(cluster, this.clusterPods(ns, name));
    this.feed(key, cluster, routerEntry, routerEntryKey);
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const { deps } = this;
    const [ns, name] = splitKey(key);
    const cluster = deps.clusters.get(name, ns);
    if (!cluster || cluster.metadata.deletionTimestamp) {
      this.forget(key);
      this.applyErrors.delete(key);
      return {};
    }
    const pods = this.clusterPods(ns, name);
    const deployments = deps.deployments
      .byIndex(cluster.metadata.uid ?? '')
      .filter((d) => d.metadata.namespace === ns);
    const input = {
      cluster,
      pods,
      deployments,
      router: deps.pusher.stateOf(key),
      applyError: this.applyErrors.get(key),
      now: deps.now(),
    };
    const p = plan(input);
    // Usually a no-op (the watch event already fed it); kept so a reconcile is complete on its own.
    this.feed(key, cluster, p.routerEntry, p.routerEntryKey);
    if (!deps.isLeader()) return { requeueAfterMs: p.requeueAfterMs };

    let applyError: unknown;
    try {
      await this.apply(cluster, p);
      this.applyErrors.delete(key);
    } catch (err) {
      applyError = err;
      this.applyErrors.set(key, errorMessage(err));
    }
    // Status reflects this attempt's outcome (an apply failure shows as Degraded ApplyFailed).
    const final =
      applyError !== undefined || input.applyError !== undefined
        ? plan({ ...input, applyError: this.applyErrors.get(key) })
        : p;
    await this.patchStatus(cluster, final);
    // Independent API writes; the recorder reports its own failures and never throws.
    await Promise.all(final.events.map((e) => deps.recorder.record(cluster, e)));
    if (applyError !== undefined) throw applyError;
    return { requeueAfterMs: p.requeueAfterMs };
  }

  private clusterPods(ns: string, name: string): Pod[] {
    return this.deps.pods.byIndex(`${ns}/${name}`);
  }

  private feed(key: string, cluster: DisaggCluster, entry: ClusterEntry, entryKey: string): void {
    const { deps } = this;
    const [namespace, name] = splitKey(key);
    deps.pusher.setEntry(key, entry, cluster.metadata.creationTimestamp ?? '', entryKey);
    for (const role of POOL_ROLES)
      deps.metrics?.routableEndpoints.set({ namespace, cluster: name, role }, entry[role].endpoints.length);
  }

  /** Children go by owner-reference garbage collection; the router forgets the cluster now. */
  private forget(key: string): void {
    const [ns, name] = splitKey(key);
    this.deps.pusher.removeEntry(key);
    for (const role of POOL_ROLES) this.deps.metrics?.routableEndpoints.remove(ns, name, role);
  }

  private async apply(cluster: DisaggCluster, p: Plan): Promise<void> {
    const { api, log } = this.deps;
    const ns = cluster.metadata.namespace!;
    for (const patch of p.podPatches) {
      try {
        await api.mergePatch(
          `/api/v1/namespaces/${ns}/pods/${patch.name}`,
          { metadata: { annotations: patch.annotations } },
          FIELD_MANAGER,
        );
        log.info('Annotated pod', { namespace: ns, pod: patch.name, annotations: patch.annotations });
      } catch (err) {
        if (!isNotFound(err)) throw err; // a pod deleted meanwhile needs nothing
      }
    }
    for (const d of p.deployments) {
      const path = deploymentPath(ns, d.metadata.name!);
      const desiredKey = canonicalJson(d);
      const cached = this.deps.deployments.get(d.metadata.name!, ns);
      const last = this.applied.get(path);
      if (cached && last && last.desiredKey === desiredKey && last.generation === cached.metadata.generation)
        continue;
      const result = await api.apply<Deployment>(path, d, FIELD_MANAGER);
      this.applied.set(path, { desiredKey, generation: result?.metadata?.generation });
      if (!cached || cached.spec.replicas !== d.spec.replicas) {
        log.info(cached ? 'Scaled Deployment' : 'Applied Deployment', {
          namespace: ns,
          deployment: d.metadata.name,
          replicas: d.spec.replicas,
        });
      }
    }
    for (const name of p.deleteDeployments) {
      try {
        await api.delete(deploymentPath(ns, name), { propagationPolicy: 'Background' });
        log.info('Deleted Deployment', { namespace: ns, deployment: name });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
  }

  private async patchStatus(cluster: DisaggCluster, p: Plan): Promise<void> {
    if (canonicalJson(p.status) === canonicalJson(cluster.status ?? {})) return;
    try {
      await this.deps.api.mergePatch(
        statusPath(cluster.metadata.namespace!, cluster.metadata.name!),
        { status: p.status },
        FIELD_MANAGER,
      );
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}

/** A merge patch from old to next: keys next no longer has become null (merge patch deletes them). */
export function withRemovals(old: object, next: object): Record<string, unknown> {
  const out: Record<string, unknown> = { ...(next as Record<string, unknown>) };
  for (const [k, v] of Object.entries(old)) {
    const n = (next as Record<string, unknown>)[k];
    if (n === undefined) out[k] = null;
    else if (isPlainObject(v) && isPlainObject(n)) out[k] = withRemovals(v, n);
  }
  return out;
}

const isPlainObject = (v: unknown): v is object => typeof v === 'object' && v !== null && !Array.isArray(v);

export function splitKey(key: string): [string, string] {
  const i = key.indexOf('/');
  return [key.slice(0, i), key.slice(i + 1)];
}
