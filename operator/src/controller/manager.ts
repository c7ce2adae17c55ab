// Wires the operator: informers -> work queue -> workers -> reconciler, the router pusher and
// membership (every replica), leader election (only the leader writes), periodic resync.
// Pod and cluster events also feed the router directly, so routing never queues behind API writes.
import { LABEL_CLUSTER, LABEL_MANAGED_BY, MANAGED_BY } from '../api/labels.js';
import {
  GROUP,
  KIND,
  PLURAL,
  VERSION,
  keyOf,
  type Deployment,
  type DisaggCluster,
  type Pod,
} from '../api/types.js';
import { errorMessage, type Logger } from '../observability/logger.js';
import { CONTROLLER_NAME, type OperatorMetrics } from '../observability/metrics.js';
import { EventRecorder } from './event-recorder.js';
import { ResilientInformer, type IndexFn, type InformerLifecycleEvent } from './informer.js';
import type { KubeApi, ListWatchApi } from './kube-client.js';
import { LeaderElector, type OwnerReference } from './leader-election.js';
import { Membership } from './membership.js';
import { ownerUidIndex, podClusterIndex } from './indexes.js';
import { Reconciler, type IndexedStore } from './reconciler.js';
import { RouterConfigPusher } from './router-pusher.js';
import { WorkQueue } from './workqueue.js';

export interface ManagerOptions {
  api: KubeApi & ListWatchApi;
  /** Lease calls get their own client with a short timeout (see main.ts). */
  leaseApi: KubeApi;
  /** Empty = all namespaces. */
  namespaces: string[];
  routerAdminSocket: string;
  resyncPeriodMs: number;
  workers: number;
  replicaId: string;
  /** tcp://host:port of this replica's router notification socket, advertised to peers. */
  kvNotifyAddress?: string;
  leaderElection: {
    enabled: boolean;
    namespace: string;
    id: string;
    leaseDurationMs: number;
    renewDeadlineMs: number;
    retryPeriodMs: number;
  };
  /** This replica's Pod, owner of its Leases (podOwner()); absent outside a pod. */
  leaseOwner?: OwnerReference;
  log: Logger;
  metrics: OperatorMetrics;
}

/** Several informers (one per watched namespace) read as one cache. */
class MultiStore<T extends { metadata?: object }> implements IndexedStore<T> {
  constructor(private readonly informers: ResilientInformer<T>[]) {}
  list(namespace?: string): T[] {
    return this.informers.flatMap((i) => i.list(namespace));
  }
  byIndex(value: string): T[] {
    return this.informers.length === 1
      ? this.informers[0]!.byIndex(value)
      : this.informers.flatMap((i) => i.byIndex(value));
  }
  get(name: string, namespace?: string): T | undefined {
    for (const i of this.informers) {
      const o = i.get(name, namespace);
      if (o) return o;
    }
    return undefined;
  }
}

export class Manager {
  readonly queue: WorkQueue;
  readonly pusher: RouterConfigPusher;
  readonly elector: LeaderElector | undefined;
  readonly membership: Membership;
  private readonly informers: Array<{ start(): Promise<void>; stop(): Promise<void>; hasSynced(): boolean }> =
    [];
  private readonly clusterStore: MultiStore<DisaggCluster>;
  private readonly reconciler: Reconciler;
  private resyncTimer: NodeJS.Timeout | undefined;
  private workers: Promise<void>[] = [];
  private leading: boolean;
  private stopping = false;
  /** Direct router feeding starts once every cache listed (a partial cache would drop endpoints). */
  private feeding = false;
  private readonly routerDirty = new Set<string>();
  private routerFlush: NodeJS.Immediate | undefined;

  constructor(private readonly opts: ManagerOptions) {
    const { metrics, log } = opts;
    const name = CONTROLLER_NAME;
    this.queue = new WorkQueue({
      hooks: {
        depth: (n) => metrics.queueDepth.set({ name }, n),
        added: () => metrics.queueAdds.inc({ name }),
        retried: () => metrics.queueRetries.inc({ name }),
        waited: (s) => metrics.queueLatency.observe({ name }, s),
      },
    });
    metrics.queueDepth.set({ name }, 0);
    metrics.maxConcurrentReconciles.set({ controller: name }, opts.workers);
    metrics.activeWorkers.set({ controller: name }, 0);

    this.leading = !opts.leaderElection.enabled;
    metrics.leaderStatus.set({ name: opts.leaderElection.id }, this.leading ? 1 : 0);
    if (opts.leaderElection.enabled) {
      this.elector = new LeaderElector({
        api: opts.leaseApi,
        namespace: opts.leaderElection.namespace,
        name: opts.leaderElection.id,
        identity: opts.replicaId,
        leaseDurationMs: opts.leaderElection.leaseDurationMs,
        renewDeadlineMs: opts.leaderElection.renewDeadlineMs,
        retryPeriodMs: opts.leaderElection.retryPeriodMs,
        owner: opts.leaseOwner,
        onStartedLeading: () => {
          this.leading = true;
          metrics.leaderStatus.set({ name: opts.leaderElection.id }, 1);
          log.info('Became leader', { lease: opts.leaderElection.id, identity: opts.replicaId });
          this.enqueueAll(); // the previous leader may have left work half done
        },
        onStoppedLeading: () => {
          this.leading = false;
          metrics.leaderStatus.set({ name: opts.leaderElection.id }, 0);
          log.warn('Stopped leading', { lease: opts.leaderElection.id, identity: opts.replicaId });
        },
        onError: (err) => log.debug('Leader election attempt failed', { error: errorMessage(err) }),
      });
    }

    let lastPushError: string | undefined;
    this.pusher = new RouterConfigPusher({
      socketPath: opts.routerAdminSocket,
      onStateChanged: (keys) => keys.forEach((k) => this.queue.add(k)),
      onPushed: (result, info) => {
        metrics.routerPushes.inc({ result });
        if (result === 'success') log.info('Pushed router configuration', { hash: info.hash });
        if (result === 'success' || result === 'unchanged') lastPushError = undefined;
        else {
          // Retries repeat the same failure; say it once at warn level.
          log.log(info.error === lastPushError ? 'debug' : 'warn', 'Router configuration push failed', {
            result,
            error: info.error,
          });
          lastPushError = info.error;
        }
      },
    });

    this.membership = new Membership({
      api: opts.leaseApi,
      namespace: opts.leaderElection.namespace,
      replicaId: opts.replicaId,
      notifyAddress: opts.kvNotifyAddress,
      leaseDurationMs: opts.leaderElection.leaseDurationMs,
      periodMs: opts.leaderElection.retryPeriodMs,
      owner: opts.leaseOwner,
      onPeersChanged: (peers) => {
        metrics.routerPeers.set(peers.length);
        log.info('Router peers changed', { peers });
        this.pusher.setPeers(peers);
      },
      onError: (err) => log.warn('Membership lease update failed', { error: errorMessage(err) }),
    });

    const paths = (group: string, resource: string): string[] =>
      opts.namespaces.length === 0
        ? [`${group}/${resource}`]
        : opts.namespaces.map((ns) => `${group}/namespaces/${ns}/${resource}`);
    const lifecycle = (resource: string) => (event: InformerLifecycleEvent, err?: unknown) => {
      metrics.informerEvents.inc({ resource, event });
      if (event === 'error')
        log.warn('Informer stopped; restarting with backoff', { resource, error: errorMessage(err) });
      else if (event === 'restart') log.info('Restarting informer', { resource });
    };
    const make = <T extends { metadata?: object }>(
      resource: string,
      group: string,
      labelSelector?: string,
      indexFn?: IndexFn<T>,
    ) =>
      paths(group, resource).map(
        (path) =>
          new ResilientInformer<T>(
            opts.api,
            {
              resource,
              path,
              labelSelector,
              onLifecycle: lifecycle(resource),
              onHandlerError: (err) =>
                log.error('Informer event handler failed', { resource, error: errorMessage(err) }),
            },
            indexFn,
          ),
      );
    const clusterInformers = make<DisaggCluster>(PLURAL, `/apis/${GROUP}/${VERSION}`);
    const podInformers = make<Pod>('pods', '/api/v1', LABEL_CLUSTER, podClusterIndex);
    const deploymentInformers = make<Deployment>(
      'deployments',
      '/apis/apps/v1',
      `${LABEL_MANAGED_BY}=${MANAGED_BY}`,
      ownerUidIndex,
    );
    this.informers.push(...clusterInformers, ...podInformers, ...deploymentInformers);

    this.clusterStore = new MultiStore(clusterInformers);
    for (const i of clusterInformers) {
      const enqueue = (c: DisaggCluster) => {
        this.queue.add(keyOf(c));
        this.refreshRouter(keyOf(c));
      };
      i.on({ onAdd: enqueue, onUpdate: enqueue, onDelete: enqueue });
    }
    for (const i of podInformers) {
      const enqueue = (p: Pod) => {
        const cluster = p.metadata.labels?.[LABEL_CLUSTER];
        if (!cluster) return;
        this.queue.add(`${p.metadata.namespace}/${cluster}`);
        this.refreshRouter(`${p.metadata.namespace}/${cluster}`);
      };
      i.on({ onAdd: enqueue, onUpdate: enqueue, onDelete: enqueue });
    }
    for (const i of deploymentInformers) {
      const enqueue = (d: Deployment) => {
        const owner = d.metadata.ownerReferences?.find((o) => o.controller && o.kind === KIND);
        if (owner) this.queue.add(`${d.metadata.namespace}/${owner.name}`);
      };
      i.on({ onAdd: enqueue, onUpdate: enqueue, onDelete: enqueue });
    }

    const recorder = new EventRecorder(opts.api, opts.replicaId, (err) =>
      log.warn('Could not record event', { error: errorMessage(err) }),
    );
    this.reconciler = new Reconciler({
      api: opts.api,
      clusters: this.clusterStore,
      pods: new MultiStore(podInformers),
      deployments: new MultiStore(deploymentInformers),
      pusher: this.pusher,
      recorder,
      isLeader: () => this.leading,
      now: () => new Date(),
      log,
      metrics,
    });
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** All informers listed at least once. */
  hasSynced(): boolean {
    return this.informers.every((i) => i.hasSynced());
  }

  async start(): Promise<void> {
    const { log } = this.opts;
    await Promise.all(this.informers.map((i) => i.start()));
    this.feeding = true; // the workers' first reconciles feed every cluster already queued
    this.membership.start();
    this.elector?.start();
    for (let w = 0; w < this.opts.workers; w++) this.workers.push(this.work());
    this.scheduleResync();
    log.info('Operator started', {
      namespaces: this.opts.namespaces.length ? this.opts.namespaces : 'all',
      replicaId: this.opts.replicaId,
      leaderElection: this.opts.leaderElection.enabled,
    });
  }

  /** Stops work, releases the lease (another replica takes over at once) and leaves membership. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    this.queue.shutDown();
    this.feeding = false;
    if (this.routerFlush) clearImmediate(this.routerFlush);
    await Promise.all(this.workers);
    await this.elector?.stop();
    await this.membership.stop();
    await Promise.all(this.informers.map((i) => i.stop()));
    await this.pusher.stop();
  }

  enqueueAll(): void {
    for (const c of this.clusterStore.list()) this.queue.add(keyOf(c));
  }

  /** Feeds the cluster's router entry after this batch of watch events (one recompute per cluster). */
  private refreshRouter(key: string): void {
    if (!this.feeding) return;
    this.routerDirty.add(key);
    this.routerFlush ??= setImmediate(() => {
      this.routerFlush = undefined;
      const keys = [...this.routerDirty];
      this.routerDirty.clear();
      for (const k of keys) {
        try {
          this.reconciler.refreshRouter(k);
        } catch (err) {
          // The queued reconcile computes the same entry and retries with backoff.
          this.opts.log.warn('Could not refresh the router entry', { key: k, error: errorMessage(err) });
        }
      }
    });
  }

  private scheduleResync(): void {
    // Jitter so replicas do not resync in lockstep.
    const delay = this.opts.resyncPeriodMs * (0.9 + Math.random() * 0.2);
    this.resyncTimer = setTimeout(() => {
      this.opts.log.debug('Resync');
      this.enqueueAll();
      this.pusher.resync();
      this.scheduleResync();
    }, delay);
    this.resyncTimer.unref();
  }

  private async work(): Promise<void> {
    const { metrics, log } = this.opts;
    const controller = CONTROLLER_NAME;
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      metrics.activeWorkers.inc({ controller });
      const end = metrics.reconcileTime.startTimer({ controller });
      const started = Date.now();
      try {
        const result = await this.reconciler.reconcile(key);
        this.queue.forget(key);
        if (result.requeueAfterMs !== undefined) {
          this.queue.addAfter(key, result.requeueAfterMs);
          metrics.reconcileTotal.inc({ controller, result: 'requeue_after' });
        } else {
          metrics.reconcileTotal.inc({ controller, result: 'success' });
        }
      } catch (err) {
        metrics.reconcileTotal.inc({ controller, result: 'error' });
        metrics.reconcileErrors.inc({ controller });
        log.warn('Reconcile failed; retrying with backoff', {
          key,
          error: errorMessage(err),
          retries: this.queue.numRequeues(key),
        });
        this.queue.addRateLimited(key);
      } finally {
        end();
        metrics.workDuration.observe({ name: controller }, (Date.now() - started) / 1000);
        metrics.activeWorkers.dec({ controller });
        this.queue.done(key);
      }
    }
  }
}
