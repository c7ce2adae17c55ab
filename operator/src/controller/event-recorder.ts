// Kubernetes Events (core/v1) about a DisaggCluster. Repeats of the same event within the
// aggregation window bump `count` on the existing Event instead of creating a new one.
import { randomBytes } from 'node:crypto';
import type { DisaggCluster } from '../api/types.js';
import type { PlannedEvent } from '../plan/planner.js';
import type { KubeApi } from './kube-client.js';

export const COMPONENT = 'disagg-operator';

interface Seen {
  name: string;
  count: number;
  lastMs: number;
}

export class EventRecorder {
  private readonly seen = new Map<string, Seen>();

  constructor(
    private readonly api: KubeApi,
    private readonly instance: string,
    private readonly onError: (err: unknown) => void = () => undefined,
    private readonly windowMs = 10 * 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  async record(cluster: DisaggCluster, event: PlannedEvent): Promise<void> {
    const ns = cluster.metadata.namespace!;
    const key = `${cluster.metadata.uid}|${event.type}|${event.reason}|${event.message}`;
    const nowMs = this.now();
    const ts = new Date(nowMs).toISOString().replace(/\.\d{3}Z$/, 'Z');
    this.prune(nowMs);
    const prev = this.seen.get(key);
    try {
      if (prev && nowMs - prev.lastMs <= this.windowMs) {
        prev.count++;
        prev.lastMs = nowMs;
        await this.api.mergePatch(`/api/v1/namespaces/${ns}/events/${prev.name}`, {
          count: prev.count,
          lastTimestamp: ts,
        });
        return;
      }
      const name = `${cluster.metadata.name}.${randomBytes(8).toString('hex')}`;
      this.seen.set(key, { name, count: 1, lastMs: nowMs });
      await this.api.create(`/api/v1/namespaces/${ns}/events`, {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name, namespace: ns },
        involvedObject: {
          apiVersion: cluster.apiVersion,
          kind: cluster.kind,
          name: cluster.metadata.name,
          namespace: ns,
          uid: cluster.metadata.uid,
        },
        type: event.type,
        reason: event.reason,
        message: event.message.slice(0, 1024),
        source: { component: COMPONENT },
        reportingComponent: COMPONENT,
        reportingInstance: this.instance,
        firstTimestamp: ts,
        lastTimestamp: ts,
        count: 1,
      });
    } catch (err) {
      // A lost event must not fail the reconcile; forget it so the next one is created afresh.
      this.seen.delete(key);
      this.onError(err);
    }
  }

  private prune(nowMs: number): void {
    if (this.seen.size < 512) return;
    for (const [k, v] of this.seen) if (nowMs - v.lastMs > this.windowMs) this.seen.delete(k);
  }
}
