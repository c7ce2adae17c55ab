// Router replicas find each other through one Lease per operator replica: it carries the address
// of that replica's router KV-ready notification socket and is renewed like a heartbeat. The live
// set becomes the `peers` of every router's configuration, so an LMCache notification that lands
// on the wrong replica is forwarded to the one its req_id names.
import type { RouterPeer } from '../../../router/src/config/index.js';
import { isNotFound, type KubeApi } from './kube-client.js';
import { leasePath, microTime, type Lease, type OwnerReference } from './leader-election.js';

export const LABEL_ROUTER_MEMBER = 'disagg.dev/router-member';
export const ANN_NOTIFY_ADDRESS = 'disagg.dev/kv-notify-address';

export interface MembershipOptions {
  api: KubeApi;
  namespace: string;
  /** This replica's router id (the router's --replica-id). */
  replicaId: string;
  /** tcp://host:port of this replica's router notification socket; undefined = not advertised. */
  notifyAddress?: string;
  /** A member that has not renewed for this long is gone. */
  leaseDurationMs?: number;
  /** Renew and re-list interval. */
  periodMs?: number;
  now?: () => number;
  /** This replica's Pod: the garbage collector deletes the member Lease with it. */
  owner?: OwnerReference;
  onPeersChanged?: (peers: RouterPeer[]) => void;
  onError?: (err: unknown) => void;
}

export const memberLeaseName = (replicaId: string): string => `disagg-router-${replicaId}`.slice(0, 253);

/** Live members from their leases: renewed within their duration, with a well-formed address. */
export function livePeers(leases: readonly Lease[], nowMs: number): RouterPeer[] {
  const peers: RouterPeer[] = [];
  for (const l of leases) {
    const address = l.metadata.annotations?.[ANN_NOTIFY_ADDRESS];
    const id = l.spec.holderIdentity;
    const renewed = Date.parse(l.spec.renewTime ?? '');
    const durationMs = (l.spec.leaseDurationSeconds ?? 0) * 1000;
    if (!address || !id || !Number.isFinite(renewed) || renewed + durationMs < nowMs) continue;
    if (!/^tcp:\/\/[^:]+:\d+$/.test(address) || !/^[a-zA-Z0-9-]+$/.test(id)) continue;
    peers.push({ id, notifyAddress: address });
  }
  return peers.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

export class Membership {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private peersKey = '';
  private peers: RouterPeer[] = [];
  private readonly now: () => number;

  constructor(private readonly opts: MembershipOptions) {
    this.now = opts.now ?? Date.now;
  }

  current(): RouterPeer[] {
    return this.peers;
  }

  start(): void {
    void this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (!this.opts.notifyAddress) return;
    await this.opts.api
      .delete(leasePath(this.opts.namespace, memberLeaseName(this.opts.replicaId)))
      .catch((err: unknown) => {
        if (!isNotFound(err)) this.opts.onError?.(err);
      });
  }

  /** Renews our lease and re-reads everyone's; exposed for tests. */
  async step(): Promise<void> {
    if (this.opts.notifyAddress) await this.renew();
    const list = await this.opts.api.list<Lease>(leasePath(this.opts.namespace), {
      labelSelector: `${LABEL_ROUTER_MEMBER}=true`,
    });
    const peers = livePeers(list.items, this.now());
    const key = JSON.stringify(peers);
    if (key !== this.peersKey) {
      this.peersKey = key;
      this.peers = peers;
      this.opts.onPeersChanged?.(peers);
    }
  }

  private async loop(): Promise<void> {
    if (this.stopped) return;
    await this.step().catch((err: unknown) => this.opts.onError?.(err));
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.loop(), this.opts.periodMs ?? 2_000);
  }

  private async renew(): Promise<void> {
    const { api, namespace, replicaId, notifyAddress } = this.opts;
    const name = memberLeaseName(replicaId);
    const body: Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name,
        namespace,
        labels: { [LABEL_ROUTER_MEMBER]: 'true' },
        annotations: { [ANN_NOTIFY_ADDRESS]: notifyAddress! },
        ...(this.opts.owner ? { ownerReferences: [this.opts.owner] } : {}),
      },
      spec: {
        holderIdentity: replicaId,
        leaseDurationSeconds: Math.ceil((this.opts.leaseDurationMs ?? 15_000) / 1000),
        renewTime: microTime(this.now()),
      },
    };
    try {
      const existing = await api.get<Lease>(leasePath(namespace, name));
      await api.replace(leasePath(namespace, name), {
        ...body,
        metadata: { ...body.metadata, resourceVersion: existing.metadata.resourceVersion },
      });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await api.create(leasePath(namespace), body);
    }
  }
}
