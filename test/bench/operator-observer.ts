// What the operator benchmark watches:
// - the router's configuration, polled with GET /admin/config over its admin socket; every new
//   configuration is dated by the router's own `appliedAt` (when it started routing by it), so the
//   polling interval only matters when two configurations land between two polls (counted);
// - the kubelet's Ready transitions, at the moment the loopback kubelet decides them (its log line,
//   in this process, millisecond clock); the Ready condition's lastTransitionTime is the same moment
//   truncated to whole seconds, so it is kept only as a cross-check;
// - the pods, through a watch (creation and deletion as this process sees them).
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import { Client } from 'undici';
import { ListWatch } from '../cluster/list-watch.js';
import { sleep } from '../cluster/wait.js';

interface AdminConfig {
  generation: number;
  hash: string;
  appliedAt: string;
  config: {
    clusters: Array<{
      name: string;
      prefill: { endpoints: Array<{ id: string }> };
      decode: { endpoints: Array<{ id: string }> };
    }>;
  };
}

export interface Topology {
  prefill: number;
  decode: number;
}

export class RouterConfigObserver {
  private readonly client: Client;
  private running = false;
  private loop: Promise<void> | undefined;
  private lastHash = '';
  private lastGeneration: number | undefined;
  private current = new Set<string>();
  private readonly membership = new Map<string, Array<{ at: number; in: boolean }>>();
  private readonly topology = new Map<string, Array<{ at: number } & Topology>>();
  /** Configurations applied between two polls, never seen (their endpoints are dated by the next one). */
  missedGenerations = 0;
  configs = 0;
  polls = 0;
  errors = 0;
  private readonly pollGaps: number[] = [];

  constructor(
    socketPath: string,
    private readonly pollMs = 10,
  ) {
    this.client = new Client('http://router-admin', { socketPath, pipelining: 1 });
  }

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    await this.client.close();
  }

  /** Time between the starts of consecutive polls (ms): the resolution when configurations are missed. */
  pollIntervals(): number[] {
    return [...this.pollGaps];
  }

  /** Whether the endpoint is in the router's current configuration. */
  routes(id: string): boolean {
    return this.current.has(id);
  }

  /** The first moment at or after `after` when the router routed to `id` (undefined: not yet). */
  routedAt(id: string, after: number): number | undefined {
    const events = this.membership.get(id) ?? [];
    let inAtAfter = false;
    for (const e of events) {
      if (e.at <= after) inAtAfter = e.in;
      else if (inAtAfter) return after;
      else if (e.in) return e.at;
    }
    return inAtAfter ? after : undefined;
  }

  /** The first moment after `after` when the router stopped routing to `id` (undefined: not yet). */
  removedAt(id: string, after: number): number | undefined {
    return (this.membership.get(id) ?? []).find((e) => !e.in && e.at >= after)?.at;
  }

  /** The first moment at or after `after` when the router's entry for `cluster` had this topology. */
  topologyAt(cluster: string, after: number, want: Topology): number | undefined {
    const events = this.topology.get(cluster) ?? [];
    let before: Topology | undefined;
    for (const e of events) {
      if (e.at <= after) before = e;
      else {
        if (before && same(before, want)) return after;
        if (same(e, want)) return e.at;
      }
    }
    return before && same(before, want) ? after : undefined;
  }

  currentTopology(cluster: string): Topology | undefined {
    return this.topology.get(cluster)?.at(-1);
  }

  routedCount(): number {
    return this.current.size;
  }

  private async run(): Promise<void> {
    let lastStart: number | undefined;
    while (this.running) {
      const start = Date.now();
      if (lastStart !== undefined) this.pollGaps.push(start - lastStart);
      lastStart = start;
      try {
        const res = await this.client.request({ path: '/admin/config', method: 'GET' });
        const text = await res.body.text();
        this.polls++;
        if (res.statusCode === 200) this.ingest(JSON.parse(text) as AdminConfig);
      } catch {
        this.errors++;
      }
      await sleep(this.pollMs);
    }
  }

  private ingest(doc: AdminConfig): void {
    if (doc.hash === this.lastHash) return;
    this.lastHash = doc.hash;
    this.configs++;
    if (this.lastGeneration !== undefined && doc.generation > this.lastGeneration + 1) {
      this.missedGenerations += doc.generation - this.lastGeneration - 1;
    }
    this.lastGeneration = doc.generation;
    const at = Date.parse(doc.appliedAt);
    const next = new Set<string>();
    const seenClusters = new Set<string>();
    for (const c of doc.config.clusters) {
      seenClusters.add(c.name);
      for (const e of [...c.prefill.endpoints, ...c.decode.endpoints]) next.add(e.id);
      this.noteTopology(c.name, at, {
        prefill: c.prefill.endpoints.length,
        decode: c.decode.endpoints.length,
      });
    }
    for (const name of this.topology.keys()) {
      if (!seenClusters.has(name)) this.noteTopology(name, at, { prefill: 0, decode: 0 });
    }
    for (const id of next) if (!this.current.has(id)) this.noteMembership(id, at, true);
    for (const id of this.current) if (!next.has(id)) this.noteMembership(id, at, false);
    this.current = next;
  }

  private noteMembership(id: string, at: number, isIn: boolean): void {
    const list = this.membership.get(id) ?? [];
    list.push({ at, in: isIn });
    this.membership.set(id, list);
  }

  private noteTopology(cluster: string, at: number, t: Topology): void {
    const list = this.topology.get(cluster) ?? [];
    const last = list.at(-1);
    if (!last || !same(last, t)) list.push({ at, ...t });
    this.topology.set(cluster, list);
  }
}

const same = (a: Topology, b: Topology): boolean => a.prefill === b.prefill && a.decode === b.decode;

export interface ReadyEvent {
  /** `<namespace>/<pod>`, the router's endpoint id. */
  id: string;
  /** When the loopback kubelet turned the pod Ready (ms). */
  at: number;
}

/**
 * Ready transitions from the loopback kubelet's log lines (`pod <ns>/<name> ready=true|false`), and
 * the moments the API server answered its status PATCH (`pod <ns>/<name> status persisted ready=...`).
 */
export class KubeletReadyLog {
  readonly ready: ReadyEvent[] = [];
  readonly notReady: ReadyEvent[] = [];
  /** Status patches with Ready=True that the API server answered (persisted). */
  readonly persistedReady: ReadyEvent[] = [];

  onLine = (line: string): void => {
    const persisted = /\bpod (\S+\/\S+) status persisted ready=true\b/.exec(line);
    if (persisted) {
      this.persistedReady.push({ id: persisted[1]!, at: Date.now() });
      return;
    }
    const m = /\bpod (\S+\/\S+) ready=(true|false)\b/.exec(line);
    if (!m) return;
    (m[2] === 'true' ? this.ready : this.notReady).push({ id: m[1]!, at: Date.now() });
  };

  /** When the API server answered the first Ready=True status patch sent for the transition at `kubeletAt`. */
  persistedAt(id: string, kubeletAt: number): number | undefined {
    return this.persistedReady.find((e) => e.id === id && e.at >= kubeletAt)?.at;
  }

  since(t: number): ReadyEvent[] {
    return this.ready.filter((e) => e.at >= t);
  }

  /** When the pod next turned not Ready after `after` (undefined: it stayed Ready). */
  nextNotReady(id: string, after: number): number | undefined {
    return this.notReady.find((e) => e.id === id && e.at > after)?.at;
  }
}

export interface PodSeen {
  id: string;
  cluster: string;
  role: string;
  /** When this process first saw the pod. */
  createdSeenAt: number;
  /** Ready condition's lastTransitionTime (whole seconds) of the latest Ready=True. */
  readyConditionAt?: number;
  /** When this process saw its deletionTimestamp (deletion started). */
  deletedAt?: number;
  /** When the pod object disappeared. */
  goneAt?: number;
}

/** Every pod with the cluster label, as a watch sees it. */
export class PodTracker {
  readonly pods = new Map<string, PodSeen>();
  /** Ready transitions as the watch delivers them here (the operator's informer gets them about then). */
  readonly readySeen: ReadyEvent[] = [];
  private readonly wasReady = new Set<string>();
  private readonly watch: ListWatch<V1Pod>;

  constructor(kc: KubeConfig) {
    this.watch = new ListWatch<V1Pod>(kc, '/api/v1/pods?labelSelector=disagg.dev%2Fcluster', {
      onUpsert: (p) => this.upsert(p),
      onDelete: (p) => {
        const seen = this.pods.get(idOf(p));
        if (seen) {
          seen.deletedAt ??= Date.now();
          seen.goneAt = Date.now();
        }
      },
    });
  }

  start(): Promise<void> {
    return this.watch.start();
  }

  stop(): Promise<void> {
    return this.watch.stop();
  }

  /** When the watch delivered the Ready transition the kubelet made at `kubeletAt`. */
  readySeenAt(id: string, kubeletAt: number): number | undefined {
    return this.readySeen.find((e) => e.id === id && e.at >= kubeletAt)?.at;
  }

  /** Pods of a cluster (`<ns>/<name>`) that are not deleted. */
  live(cluster: string): PodSeen[] {
    return [...this.pods.values()].filter((p) => p.cluster === cluster && p.deletedAt === undefined);
  }

  private upsert(p: V1Pod): void {
    const id = idOf(p);
    const seen =
      this.pods.get(id) ??
      ({
        id,
        cluster: `${p.metadata?.namespace}/${p.metadata?.labels?.['disagg.dev/cluster'] ?? ''}`,
        role: p.metadata?.labels?.['disagg.dev/role'] ?? '',
        createdSeenAt: Date.now(),
      } satisfies PodSeen);
    this.pods.set(id, seen);
    const ready = p.status?.conditions?.find((c) => c.type === 'Ready' && c.status === 'True');
    if (ready?.lastTransitionTime) seen.readyConditionAt = new Date(ready.lastTransitionTime).getTime();
    if (ready && !this.wasReady.has(id)) this.readySeen.push({ id, at: Date.now() });
    if (ready) this.wasReady.add(id);
    else this.wasReady.delete(id);
    if (p.metadata?.deletionTimestamp) seen.deletedAt ??= Date.now();
  }
}

const idOf = (p: V1Pod): string => `${p.metadata?.namespace}/${p.metadata?.name}`;
