// Leader election on a coordination.k8s.io/v1 Lease, the client-go algorithm: a candidate takes
// the lease when its holder has not renewed it for leaseDurationSeconds (measured on our own clock
// from when we last saw the record change, so clock skew between replicas does not matter); the
// leader renews every retryPeriod and steps down if it could not renew for renewDeadline. Unlike
// controller-runtime, stepping down does not exit the process: the replica keeps feeding its
// router and becomes a candidate again (an API server restart must not restart the operator).
import { isConflict, isNotFound, type KubeApi } from './kube-client.js';

export interface Lease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: {
    name: string;
    namespace: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: OwnerReference[];
  };
  spec: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

/** The Pod a Lease belongs to: when the pod is deleted, the garbage collector deletes the Lease. */
export interface OwnerReference {
  apiVersion: 'v1';
  kind: 'Pod';
  name: string;
  uid: string;
}

/**
 * This replica's Pod (POD_NAME and POD_UID from the downward API, set by the chart) as the owner of
 * Leases in its own namespace; undefined elsewhere. Without it, `helm uninstall` would leave the
 * Leases behind: the chart's RBAC and ServiceAccount go at the same moment as the pods, so a
 * stopping operator can no longer delete them itself.
 */
export function podOwner(
  namespace: string,
  env: NodeJS.ProcessEnv = process.env,
): OwnerReference | undefined {
  const { POD_NAME: name, POD_UID: uid, POD_NAMESPACE: podNs } = env;
  if (!name || !uid || podNs !== namespace) return undefined;
  return { apiVersion: 'v1', kind: 'Pod', name, uid };
}

export interface LeaderElectionOptions {
  api: KubeApi;
  namespace: string;
  name: string;
  identity: string;
  /** How long a lease is valid after its last renewal (controller-runtime default 15 s). */
  leaseDurationMs?: number;
  /** How long the leader keeps trying to renew before it steps down (default 10 s). */
  renewDeadlineMs?: number;
  /** Interval between acquire/renew attempts (default 2 s). */
  retryPeriodMs?: number;
  now?: () => number;
  /** Set on the Lease by whoever holds it (see podOwner). */
  owner?: OwnerReference;
  onStartedLeading?: () => void;
  onStoppedLeading?: () => void;
  onError?: (err: unknown) => void;
}

/** Kubernetes MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export const leasePath = (namespace: string, name?: string): string =>
  `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases${name ? `/${name}` : ''}`;

export class LeaderElector {
  private leader = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private observedRecord = '';
  private observedAt = 0;
  private lastRenewAt = 0;
  private lastLease: Lease | undefined;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly now: () => number;

  constructor(private readonly opts: LeaderElectionOptions) {
    this.leaseDurationMs = opts.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = opts.retryPeriodMs ?? 2_000;
    this.now = opts.now ?? Date.now;
  }

  isLeader(): boolean {
    return this.leader;
  }

  /** Starts the acquire/renew loop. */
  start(): void {
    this.stopped = false;
    void this.loop();
  }

  /** One acquire-or-renew step; exposed for tests. */
  async step(): Promise<void> {
    const ok = await this.tryAcquireOrRenew().catch((err: unknown) => {
      this.opts.onError?.(err);
      return false;
    });
    const now = this.now();
    if (ok) {
      this.lastRenewAt = now;
      if (!this.leader) {
        this.leader = true;
        this.opts.onStartedLeading?.();
      }
    } else if (this.leader && now - this.lastRenewAt >= this.renewDeadlineMs) {
      this.leader = false;
      this.opts.onStoppedLeading?.();
    }
  }

  /** Stops the loop and, if leading, gives the lease up so another replica takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (!this.leader) return;
    this.leader = false;
    this.opts.onStoppedLeading?.();
    const lease = this.lastLease;
    if (!lease) return;
    const now = microTime(this.now());
    await this.opts.api
      .replace(leasePath(this.opts.namespace, this.opts.name), {
        ...lease,
        spec: {
          ...lease.spec,
          holderIdentity: '',
          leaseDurationSeconds: 1,
          renewTime: now,
          acquireTime: now,
        },
      })
      .catch((err: unknown) => this.opts.onError?.(err));
  }

  private async loop(): Promise<void> {
    if (this.stopped) return;
    await this.step();
    if (this.stopped) return;
    // Jitter keeps candidates from retrying in lockstep.
    const delay = this.leader ? this.retryPeriodMs : this.retryPeriodMs * (1 + Math.random() * 0.2);
    this.timer = setTimeout(() => void this.loop(), delay);
  }

  /** The holder owns the Lease, so it goes with the last holder's pod. */
  private ownerRefs(): { ownerReferences?: OwnerReference[] } {
    return this.opts.owner ? { ownerReferences: [this.opts.owner] } : {};
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { api, namespace, name, identity } = this.opts;
    const now = this.now();
    const fresh = (transitions: number, acquireTime: string): Lease['spec'] => ({
      holderIdentity: identity,
      leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
      acquireTime,
      renewTime: microTime(now),
      leaseTransitions: transitions,
    });
    let lease: Lease;
    try {
      lease = await api.get<Lease>(leasePath(namespace, name));
    } catch (err) {
      if (!isNotFound(err)) throw err;
      const created = await api.create<Lease>(leasePath(namespace), {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name, namespace, ...this.ownerRefs() },
        spec: fresh(0, microTime(now)),
      });
      this.lastLease = created;
      return true;
    }
    const record = JSON.stringify(lease.spec ?? {});
    if (record !== this.observedRecord) {
      this.observedRecord = record;
      this.observedAt = now;
    }
    const holder = lease.spec?.holderIdentity ?? '';
    const durationMs = (lease.spec?.leaseDurationSeconds ?? Math.ceil(this.leaseDurationMs / 1000)) * 1000;
    if (holder && holder !== identity && this.observedAt + durationMs > now) return false;
    const transitions = (lease.spec?.leaseTransitions ?? 0) + (holder === identity ? 0 : 1);
    const acquireTime =
      holder === identity && lease.spec?.acquireTime ? lease.spec.acquireTime : microTime(now);
    try {
      this.lastLease = await api.replace<Lease>(leasePath(namespace, name), {
        ...lease,
        metadata: { ...lease.metadata, ...this.ownerRefs() },
        spec: fresh(transitions, acquireTime),
      });
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
    this.observedRecord = JSON.stringify(this.lastLease.spec ?? {});
    this.observedAt = now;
    return true;
  }
}
