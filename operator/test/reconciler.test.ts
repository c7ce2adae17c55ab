import { describe, expect, it } from '@jest/globals';
import type { Deployment, DisaggCluster, Pod } from '../src/api/types.js';
import { KubeApiError } from '../src/controller/kube-client.js';
import { ownerUidIndex, podClusterIndex } from '../src/controller/indexes.js';
import { Reconciler, withRemovals, type IndexedStore } from '../src/controller/reconciler.js';
import { createLogger } from '../src/observability/logger.js';
import type { PlannedEvent, RouterState } from '../src/plan/planner.js';
import type { ClusterEntry } from '../src/plan/router-entry.js';
import { FakeKube } from './fake-kube.js';
import { aCluster, aPod, NS, T0 } from './fixtures.js';

class Store<T extends { metadata: { name?: string; namespace?: string } }> implements IndexedStore<T> {
  constructor(
    public items: T[] = [],
    private readonly indexFn: (o: T) => string[] = () => [],
  ) {}
  /** Counts full scans: a reconcile reads its cluster's objects through the index. */
  lists = 0;
  /** Index lookups made: [value, objects found]. */
  lookups: Array<[string, number]> = [];
  byIndex(value: string): T[] {
    const found = this.items.filter((i) => this.indexFn(i).includes(value));
    this.lookups.push([value, found.length]);
    return found;
  }
  list(namespace?: string): T[] {
    this.lists++;
    return this.items.filter((i) => !namespace || i.metadata.namespace === namespace);
  }
  get(name: string, namespace?: string): T | undefined {
    return this.items.find((i) => i.metadata.name === name && i.metadata.namespace === namespace);
  }
}

class FakePusher {
  entries = new Map<string, ClusterEntry>();
  states = new Map<string, RouterState>();
  setEntry(key: string, entry: ClusterEntry): void {
    this.entries.set(key, entry);
  }
  removeEntry(key: string): void {
    this.entries.delete(key);
  }
  stateOf(key: string): RouterState {
    return this.states.get(key) ?? {};
  }
}

function setup(opts: { leader?: boolean; cluster?: DisaggCluster; pods?: Pod[] } = {}) {
  const api = new FakeKube();
  const cluster = opts.cluster ?? aCluster().prefill(1).decode(1).build();
  const clusters = new Store<DisaggCluster>([cluster]);
  const pods = new Store<Pod>(opts.pods ?? [], podClusterIndex);
  const deployments = new Store<Deployment>([], ownerUidIndex);
  const pusher = new FakePusher();
  const events: PlannedEvent[] = [];
  let leader = opts.leader ?? true;
  const reconciler = new Reconciler({
    api,
    clusters,
    pods,
    deployments,
    pusher,
    recorder: { record: async (_c, e) => void events.push(e) },
    isLeader: () => leader,
    now: () => T0,
    log: createLogger('silent'),
  });
  return {
    api,
    cluster,
    clusters,
    pods,
    deployments,
    pusher,
    events,
    reconciler,
    setLeader: (l: boolean) => (leader = l),
  };
}

const key = `${NS}/llama`;

describe('reconciler', () => {
  it('as leader: applies Deployments with server-side apply, patches status, feeds the router', async () => {
    const { api, pusher, reconciler } = setup();
    await reconciler.reconcile(key);
    expect(api.writesTo('apply').map((w) => w.path)).toEqual([
      `/apis/apps/v1/namespaces/${NS}/deployments/llama-prefill`,
      `/apis/apps/v1/namespaces/${NS}/deployments/llama-decode`,
    ]);
    const status = api.writesTo('mergePatch', '/status');
    expect(status).toHaveLength(1);
    expect(status[0]!.path).toBe(`/apis/disagg.dev/v1alpha1/namespaces/${NS}/disaggclusters/llama/status`);
    expect(pusher.entries.get(key)?.name).toBe(key);
  });

  it('a replica that is not the leader feeds its router but writes nothing', async () => {
    const { api, pusher, reconciler } = setup({ leader: false });
    await reconciler.reconcile(key);
    expect(api.writes).toEqual([]);
    expect(pusher.entries.has(key)).toBe(true);
  });

  it('patches status only when it changed, and skips an apply it already made', async () => {
    const { api, clusters, deployments, reconciler } = setup();
    await reconciler.reconcile(key);
    // The caches catch up with what was written.
    const stored = (
      await api.get<{ status: DisaggCluster['status'] }>(
        `/apis/disagg.dev/v1alpha1/namespaces/${NS}/disaggclusters/llama`,
      )
    ).status;
    clusters.items[0] = { ...clusters.items[0]!, status: stored };
    deployments.items = await Promise.all(
      ['llama-prefill', 'llama-decode'].map((n) =>
        api.get<Deployment>(`/apis/apps/v1/namespaces/${NS}/deployments/${n}`),
      ),
    );
    const before = api.writes.length;
    await reconciler.reconcile(key);
    expect(api.writes.slice(before)).toEqual([]);
  });

  it('an apply failure shows as Degraded ApplyFailed and fails the reconcile (so it is retried)', async () => {
    const { api, reconciler, events } = setup();
    const apply = api.apply.bind(api);
    api.apply = async () => {
      throw new KubeApiError(403, 'Forbidden', 'deployments.apps "llama-prefill" is forbidden');
    };
    await expect(reconciler.reconcile(key)).rejects.toThrow('forbidden');
    const patched = api.writesTo('mergePatch', '/status')[0]!.body as { status: DisaggCluster['status'] };
    expect(patched.status!.conditions!.find((c) => c.type === 'Degraded')).toMatchObject({
      status: 'True',
      reason: 'ApplyFailed',
    });
    expect(events.map((e) => e.reason)).toContain('ApplyFailed');
    api.apply = apply;
    await reconciler.reconcile(key);
    const last = api.writesTo('mergePatch', '/status').at(-1)!.body as { status: DisaggCluster['status'] };
    expect(last.status!.conditions!.find((c) => c.type === 'Degraded')?.reason).not.toBe('ApplyFailed');
  });

  it('patches the annotations of pods chosen for scale-down and ignores pods already gone', async () => {
    const pods = [
      aPod().named('llama-decode-a').role('decode').nixlPort().ready().build(),
      aPod().named('llama-decode-b').role('decode').nixlPort().ready().build(),
    ];
    const { api, reconciler } = setup({ pods });
    await reconciler.reconcile(key);
    const patches = api.writesTo('mergePatch', '/pods/');
    expect(patches).toHaveLength(1);
    expect(patches[0]!.body).toEqual({
      metadata: { annotations: { 'disagg.dev/draining-since': T0.toISOString() } },
    });
  });

  it('a status field the plan no longer has is removed (merge patch null), so patches settle', () => {
    expect(
      withRemovals(
        { topology: '1P1D', router: { acknowledgedHash: 'a', entryHash: 'b' }, gone: 1 },
        { topology: '2P1D', router: { acknowledgedHash: 'c' } },
      ),
    ).toEqual({
      topology: '2P1D',
      router: { acknowledgedHash: 'c', entryHash: null },
      gone: null,
    });
  });

  it('refreshRouter feeds the router from the caches with no API call, leader or not', () => {
    for (const leader of [true, false]) {
      const pods = [
        aPod().named('llama-decode-a').role('decode').nixlPort().ready().build(),
        aPod().named('llama-decode-b').role('decode').nixlPort().ready().drainingSince(T0).build(),
        aPod().named('other').cluster('mistral').role('decode').nixlPort().ready().build(),
      ];
      const { api, pusher, reconciler } = setup({ leader, pods });
      reconciler.refreshRouter(key);
      expect(api.writes).toEqual([]);
      // The draining pod is left out, as the reconcile would: scale-down drains stay correct.
      expect(pusher.entries.get(key)?.decode.endpoints.map((e) => e.id)).toEqual([`${NS}/llama-decode-a`]);
    }
  });

  it('refreshRouter computes the same entry as the reconcile', async () => {
    const pods = [
      aPod().named('llama-decode-a').role('decode').nixlPort().ready().build(),
      aPod().named('llama-decode-b').role('decode').nixlPort().ready().build(),
      aPod().named('llama-prefill-a').role('prefill').ready().build(),
    ];
    const { pusher, reconciler } = setup({ pods });
    reconciler.refreshRouter(key);
    const fed = pusher.entries.get(key);
    pusher.entries.clear();
    await reconciler.reconcile(key);
    expect(pusher.entries.get(key)).toEqual(fed);
    expect(fed?.decode.endpoints).toHaveLength(1);
  });

  it('refreshRouter removes a deleted cluster from the router', async () => {
    const { clusters, pusher, reconciler } = setup();
    reconciler.refreshRouter(key);
    expect(pusher.entries.has(key)).toBe(true);
    clusters.items = [];
    reconciler.refreshRouter(key);
    expect(pusher.entries.has(key)).toBe(false);
  });

  it('records all planned events of a reconcile without waiting for each in turn', async () => {
    // Two pods with bad ports: two Warning events in one plan.
    const pods = ['a', 'b'].map((n) =>
      aPod()
        .named(`llama-decode-${n}`)
        .role('decode')
        .annotation('disagg.dev/nixl-side-channel-port', 'x')
        .ready()
        .build(),
    );
    const { api, reconciler } = setup({ pods });
    let started = 0;
    const release: Array<() => void> = [];
    const recorder = {
      record: () => {
        started++;
        return new Promise<void>((r) => release.push(r));
      },
    };
    (reconciler as unknown as { deps: { recorder: typeof recorder } }).deps.recorder = recorder;
    const done = reconciler.reconcile(key);
    const until = Date.now() + 2000;
    while (started < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    expect(started).toBeGreaterThanOrEqual(2);
    release.forEach((r) => r());
    await done;
    expect(api.writesTo('mergePatch', '/status')).toHaveLength(1);
  });

  it("reads its cluster's pods and Deployments through the cache indexes, never scanning the namespace", async () => {
    const pods = [
      aPod().named('llama-decode-a').role('decode').nixlPort().ready().build(),
      aPod().named('other').cluster('mistral').role('decode').nixlPort().ready().build(),
    ];
    const { api, pods: podStore, deployments, pusher, reconciler } = setup({ pods });
    await reconciler.reconcile(key);
    deployments.items = await Promise.all(
      ['llama-prefill', 'llama-decode'].map((n) =>
        api.get<Deployment>(`/apis/apps/v1/namespaces/${NS}/deployments/${n}`),
      ),
    );
    deployments.lookups = [];
    await reconciler.reconcile(key);
    reconciler.refreshRouter(key);
    expect(podStore.lists + deployments.lists).toBe(0);
    expect(pusher.entries.get(key)?.decode.endpoints.map((e) => e.id)).toEqual([`${NS}/llama-decode-a`]);
    expect(deployments.lookups).toEqual([['uid-llama', 2]]);
  });

  it('a deleted cluster leaves the router config', async () => {
    const { clusters, pusher, reconciler } = setup();
    await reconciler.reconcile(key);
    clusters.items = [];
    await reconciler.reconcile(key);
    expect(pusher.entries.has(key)).toBe(false);
  });
});
