// Scaling by editing the DisaggCluster, under a steady request stream: 1P1D -> 2P2D -> 1P1D. New
// pods receive traffic; pods that go stop receiving it before they terminate (the operator takes
// them out of the router first, then lets the Deployment delete them); no request fails.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { Watch } from '@kubernetes/client-node';
import type { Pod } from '../../operator/src/api/types.js';
import {
  complete,
  exampleDocs,
  isReady,
  promptOfTokens,
  simRequests,
  startE2eEnv,
  steadyStream,
  toApplyInput,
  waitForStatus,
  type E2eEnv,
  type RouterProc,
  type SimRequest,
} from '../../operator/test/support/e2e-env.js';
import { waitFor } from '../cluster/wait.js';

jest.setTimeout(600_000);

const NS = 'scaling';
const NAME = 'sim-scale';
const MODEL = 'sim-llama';

interface PodHistory {
  name: string;
  role: string;
  url?: string;
  deletedAt?: number;
  drainingSince?: number;
  requests: SimRequest[];
}

describe('operator end to end: scaling under load', () => {
  let env: E2eEnv;
  let router: RouterProc;
  const history = new Map<string, PodHistory>();
  let observing = true;
  let observer: Promise<void>;

  /** Watches the pods (deletion, drain marks) and polls every engine's request log while the test runs. */
  async function observe(): Promise<void> {
    const watch = new Watch(env.cluster.kubeConfig);
    const onEvent = (_type: string, p: Pod) => {
      const name = p.metadata.name!;
      const h = history.get(name) ?? {
        name,
        role: p.metadata.labels?.['disagg.dev/role'] ?? '',
        requests: [],
      };
      history.set(name, h);
      // deletionTimestamp is the deadline (request + grace); the event's arrival is when deletion began.
      if (p.metadata.deletionTimestamp && h.deletedAt === undefined) h.deletedAt = Date.now();
      const since = p.metadata.annotations?.['disagg.dev/draining-since'];
      if (since && h.drainingSince === undefined) h.drainingSince = Date.parse(since);
    };
    const req = await watch.watch(
      `/api/v1/namespaces/${NS}/pods`,
      { labelSelector: `disagg.dev/cluster=${NAME}` },
      onEvent,
      () => undefined,
    );
    while (observing) {
      await Promise.all(
        env.cluster.kubelet!.engines().map(async (e) => {
          const h = history.get(e.name);
          if (!h || e.namespace !== NS || h.deletedAt !== undefined) return;
          h.requests = await simRequests(e.url).catch(() => h.requests);
        }),
      );
      await new Promise((r) => setTimeout(r, 100));
    }
    req.abort();
  }

  const scale = (prefill: number, decode: number) =>
    env.cluster.kubectl([
      'patch',
      'disagg',
      NAME,
      '-n',
      NS,
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { prefill: { replicas: prefill }, decode: { replicas: decode } } }),
    ]);
  const livePods = async (): Promise<string[]> =>
    (
      await env.cluster.kubectl([
        'get',
        'pods',
        '-n',
        NS,
        '-l',
        `disagg.dev/cluster=${NAME}`,
        '-o',
        'jsonpath={.items[*].metadata.name}',
      ])
    ).stdout
      .split(/\s+/)
      .filter(Boolean);

  beforeAll(async () => {
    env = await startE2eEnv();
    await env.cluster.kubectl(['create', 'namespace', NS]);
    router = await env.startRouter('router-s');
    await env.startOperator('router-s', router);
    const docs = exampleDocs('sim-nixl-2p1d.yaml');
    const c = docs[0] as {
      metadata: { name: string };
      spec: { prefill: { replicas: number }; decode: { replicas: number } };
    };
    c.metadata.name = NAME;
    c.spec.prefill.replicas = 1;
    c.spec.decode.replicas = 1;
    await env.cluster.kubectl(['apply', '-n', NS, '-f', '-'], { input: toApplyInput([c]) });
    await waitForStatus(env.cluster, NS, NAME, 'Ready 1P1D', (x) => isReady(x, '1P1D', 1), 180_000);
    observer = observe();
  });
  afterAll(async () => {
    observing = false;
    await observer;
    await env?.stop();
  });

  test('1P1D -> 2P2D -> 1P1D with no failed request, traffic on new pods, none on pods about to go', async () => {
    const long = promptOfTokens(300);
    let i = 0;
    // Alternate DPD (long) and direct (short) requests.
    const stream = steadyStream(
      () => complete(router.url, MODEL, i++ % 2 === 0 ? `${long} ${i}` : `hi ${i}`, 6),
      3,
    );
    await new Promise((r) => setTimeout(r, 1500));
    const initial = await livePods();

    await scale(2, 2);
    await waitForStatus(env.cluster, NS, NAME, 'Ready 2P2D', (x) => isReady(x, '2P2D', 2), 180_000);
    const grown = await livePods();
    const added = grown.filter((p) => !initial.includes(p));
    expect(added).toHaveLength(2);
    await waitFor(
      'the new pods served requests',
      () => added.every((p) => (history.get(p)?.requests.length ?? 0) > 0),
      { timeoutMs: 30_000 },
    );

    await scale(1, 1);
    const shrunk = await waitForStatus(
      env.cluster,
      NS,
      NAME,
      'Ready 1P1D, observed generation 3',
      (x) => isReady(x, '1P1D', 3),
      120_000,
    );
    await waitFor('only two pods left', async () => (await livePods()).length === 2, { timeoutMs: 120_000 });
    await new Promise((r) => setTimeout(r, 1000));
    const results = await stream.stop();

    const failed = results.filter((r) => r.status !== 200);
    const byStatus = results.reduce<Record<number, number>>(
      (m, r) => ({ ...m, [r.status]: (m[r.status] ?? 0) + 1 }),
      {},
    );
    expect({ byStatus, firstFailures: failed.slice(0, 3) }).toEqual({
      byStatus: { 200: results.length },
      firstFailures: [],
    });
    expect(results.length).toBeGreaterThan(50);
    expect(shrunk.status?.prefill).toMatchObject({ routableEndpoints: 1 });

    const removed = [...history.values()].filter((h) => h.deletedAt !== undefined);
    expect(removed.map((h) => h.role).sort()).toEqual(['decode', 'prefill']);
    for (const h of removed) {
      // Marked draining (left the router) before deletion, with the drain period in between.
      expect(h.drainingSince).toBeDefined();
      expect(h.deletedAt! - h.drainingSince!).toBeGreaterThanOrEqual(3000 - 1000);
      const lastRequest = Math.max(0, ...h.requests.map((r) => r.ts));
      // No request started on it after the router was told to stop (small allowance for the push).
      expect({ pod: h.name, lateBy: Math.max(0, lastRequest - (h.drainingSince! + 1000)) }).toEqual({
        pod: h.name,
        lateBy: 0,
      });
      expect(lastRequest).toBeLessThan(h.deletedAt!);
      expect(h.requests.every((r) => r.status === 200)).toBe(true);
    }
  });
});
