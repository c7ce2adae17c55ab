import { describe, expect, it } from '@jest/globals';
import { ANN_DRAINING_SINCE, ANN_POD_DELETION_COST } from '../src/api/labels.js';
import type { Pod } from '../src/api/types.js';
import { discoverPod } from '../src/discovery/pod-endpoints.js';
import { plan, planRouterEntry, type RouterState } from '../src/plan/planner.js';
import { planScaleDown } from '../src/plan/scale-down.js';
import { aCluster, aDeployment, aPod, secondsAfter, T0 } from './fixtures.js';

const decodePod = (name: string, minute: number) =>
  aPod()
    .named(name)
    .role('decode')
    .nixlPort()
    .createdAt(secondsAfter(T0, minute * 60));
const disc = (pods: Pod[]) => pods.map((p) => discoverPod(p, 'decode', 'nixl'));
const excludesAll = () => true;

describe('choosing the pods that go', () => {
  it('prefers pods not routed to, then the youngest', () => {
    const pods = [
      decodePod('old', 1).ready().build(),
      decodePod('young', 3).ready().build(),
      decodePod('sick', 2).notReady().build(),
    ];
    const one = planScaleDown({
      pods: disc(pods),
      desired: 2,
      drainSeconds: 30,
      now: T0,
      routerExcludes: excludesAll,
    });
    expect([...one.draining]).toEqual(['serving/sick']);
    const two = planScaleDown({
      pods: disc(pods),
      desired: 1,
      drainSeconds: 30,
      now: T0,
      routerExcludes: excludesAll,
    });
    expect([...two.draining].sort()).toEqual(['serving/sick', 'serving/young']);
  });

  it('keeps a decision once made: an already draining pod stays the victim', () => {
    const pods = [
      decodePod('old', 1).ready().drainingSince(T0).build(),
      decodePod('young', 3).ready().build(),
    ];
    const p = planScaleDown({
      pods: disc(pods),
      desired: 1,
      drainSeconds: 30,
      now: T0,
      routerExcludes: excludesAll,
    });
    expect([...p.draining]).toEqual(['serving/old']);
  });

  it('ignores terminating pods and does nothing when there is no excess', () => {
    const pods = [decodePod('a', 1).ready().build(), decodePod('b', 2).ready().terminating().build()];
    const p = planScaleDown({
      pods: disc(pods),
      desired: 1,
      drainSeconds: 30,
      now: T0,
      routerExcludes: excludesAll,
    });
    expect(p).toEqual({ replicas: 1, draining: new Set(), patches: [], notes: [] });
  });
});

describe('drain steps', () => {
  const pods2 = (victim: (b: ReturnType<typeof decodePod>) => ReturnType<typeof decodePod>) => [
    decodePod('keep', 1).ready().build(),
    victim(decodePod('go', 2).ready()).build(),
  ];

  it('step 1: marks the victim draining and keeps the replica', () => {
    const p = planScaleDown({
      pods: disc(pods2((b) => b)),
      desired: 1,
      drainSeconds: 30,
      now: T0,
      routerExcludes: excludesAll,
    });
    expect(p.replicas).toBe(2);
    expect(p.patches).toEqual([{ name: 'go', annotations: { [ANN_DRAINING_SINCE]: T0.toISOString() } }]);
    expect(p.notes[0]).toMatchObject({ reason: 'DrainingPod' });
  });

  it('step 2 waits for the router to drop the pod, then for drainSeconds, then sets the deletion cost', () => {
    const pods = disc(pods2((b) => b.drainingSince(T0)));
    const stillRouted = planScaleDown({
      pods,
      desired: 1,
      drainSeconds: 30,
      now: secondsAfter(T0, 60),
      routerExcludes: () => false,
    });
    expect(stillRouted).toMatchObject({ replicas: 2, patches: [] });
    expect(stillRouted.requeueAfterMs).toBeUndefined();

    const early = planScaleDown({
      pods,
      desired: 1,
      drainSeconds: 30,
      now: secondsAfter(T0, 10),
      routerExcludes: excludesAll,
    });
    expect(early).toMatchObject({ replicas: 2, patches: [], requeueAfterMs: 20_000 });

    const due = planScaleDown({
      pods,
      desired: 1,
      drainSeconds: 30,
      now: secondsAfter(T0, 30),
      routerExcludes: excludesAll,
    });
    expect(due.replicas).toBe(2);
    expect(due.patches).toEqual([{ name: 'go', annotations: { [ANN_POD_DELETION_COST]: '-1000000' } }]);
  });

  it('a victim that is not Ready needs no drain time', () => {
    const pods = [
      decodePod('keep', 1).ready().build(),
      decodePod('sick', 2).notReady().drainingSince(T0).build(),
    ];
    const p = planScaleDown({
      pods: disc(pods),
      desired: 1,
      drainSeconds: 300,
      now: T0,
      routerExcludes: excludesAll,
    });
    expect(p.patches).toEqual([{ name: 'sick', annotations: { [ANN_POD_DELETION_COST]: '-1000000' } }]);
  });

  it('step 3: once the cost is visible, the Deployment drops the replica', () => {
    const pods = disc(pods2((b) => b.drainingSince(T0).drainedCost()));
    const p = planScaleDown({
      pods,
      desired: 1,
      drainSeconds: 30,
      now: secondsAfter(T0, 31),
      routerExcludes: excludesAll,
    });
    expect(p).toMatchObject({ replicas: 1, patches: [] });
    expect([...p.draining]).toEqual(['serving/go']);
  });

  it('scaling back up cancels the drain and returns the pod to the pool', () => {
    const pods = disc(pods2((b) => b.drainingSince(T0).drainedCost()));
    const p = planScaleDown({ pods, desired: 2, drainSeconds: 30, now: T0, routerExcludes: excludesAll });
    expect(p.replicas).toBe(2);
    expect(p.draining.size).toBe(0);
    expect(p.patches).toEqual([
      { name: 'go', annotations: { [ANN_DRAINING_SINCE]: null, [ANN_POD_DELETION_COST]: null } },
    ]);
    expect(p.notes[0]).toMatchObject({ reason: 'DrainCancelled' });
  });
});

describe('scale-down through the planner', () => {
  it('2D -> 1D: the router loses the pod before the Deployment is lowered', () => {
    const cluster = aCluster().prefill(1).decode(1).drainSeconds(5).build();
    const base = [aPod().named('p').role('prefill').ready().build(), decodePod('d-old', 1).ready().build()];
    const deployments = [aDeployment('llama-prefill', 1), aDeployment('llama-decode', 2)];
    const routerWith = (ids: string[], key = 'old'): RouterState => ({
      ackedEntryKey: key,
      ackedEndpointIds: ids,
      ackedHash: 'h',
    });

    // Reconcile 1: d-new is chosen; it leaves the entry at once; the Deployment keeps 2.
    const r1 = plan({
      cluster,
      pods: [...base, decodePod('d-new', 2).ready().build()],
      deployments,
      router: routerWith(['serving/p', 'serving/d-old', 'serving/d-new']),
      now: T0,
    });
    expect(r1.routerEntry.decode.endpoints.map((e) => e.id)).toEqual(['serving/d-old']);
    expect(r1.deployments.find((d) => d.metadata.name === 'llama-decode')!.spec.replicas).toBe(2);
    expect(r1.podPatches).toEqual([
      { name: 'd-new', annotations: { [ANN_DRAINING_SINCE]: T0.toISOString() } },
    ]);
    const progressing = r1.status.conditions!.find((c) => c.type === 'Progressing')!;
    expect(progressing).toMatchObject({ status: 'True', reason: 'DrainingPods' });
    expect(r1.events.map((e) => e.reason)).toContain('DrainingPod');

    // Reconcile 2: the router acknowledged the entry without it; drain time not over yet.
    const draining = decodePod('d-new', 2).ready().drainingSince(T0);
    const acked = routerWith(['serving/p', 'serving/d-old'], r1.routerEntryKey);
    const r2 = plan({
      cluster,
      pods: [...base, draining.build()],
      deployments,
      router: acked,
      now: secondsAfter(T0, 2),
    });
    expect(r2.requeueAfterMs).toBe(3000);
    expect(r2.podPatches).toEqual([]);
    expect(r2.status.conditions!.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True' });

    // Reconcile 3: drained: cost set; reconcile 4: cost visible, replicas lowered.
    const r3 = plan({
      cluster,
      pods: [...base, draining.build()],
      deployments,
      router: acked,
      now: secondsAfter(T0, 5),
    });
    expect(r3.podPatches).toEqual([{ name: 'd-new', annotations: { [ANN_POD_DELETION_COST]: '-1000000' } }]);
    expect(r3.deployments.find((d) => d.metadata.name === 'llama-decode')!.spec.replicas).toBe(2);
    const r4 = plan({
      cluster,
      pods: [...base, draining.drainedCost().build()],
      deployments,
      router: acked,
      now: secondsAfter(T0, 6),
    });
    expect(r4.deployments.find((d) => d.metadata.name === 'llama-decode')!.spec.replicas).toBe(1);
    expect(r4.events).toContainEqual(expect.objectContaining({ reason: 'ScaledPool' }));
  });

  it('an unreachable router does not block the drain (it routes nowhere)', () => {
    const cluster = aCluster().decode(1).drainSeconds(0).build();
    const pods = [decodePod('a', 1).ready().build(), decodePod('b', 2).ready().drainingSince(T0).build()];
    const p = plan({
      cluster,
      pods,
      deployments: [],
      router: { failure: { reason: 'PushFailed', message: 'connect ENOENT' } },
      now: T0,
    });
    expect(p.podPatches).toEqual([{ name: 'b', annotations: { [ANN_POD_DELETION_COST]: '-1000000' } }]);
  });

  it('with no acknowledgement yet the drain waits (the router may hold an older config)', () => {
    const cluster = aCluster().decode(1).drainSeconds(0).build();
    const pods = [decodePod('a', 1).ready().build(), decodePod('b', 2).ready().drainingSince(T0).build()];
    const p = plan({ cluster, pods, deployments: [], router: {}, now: T0 });
    expect(p.podPatches).toEqual([]);
  });
});

describe('the router entry fed straight from watch events', () => {
  const router: RouterState = { ackedEntryKey: 'x', ackedEndpointIds: [] };
  const cases: Array<[string, () => ReturnType<typeof aCluster>, () => Pod[]]> = [
    ['no excess', () => aCluster().prefill(0).decode(2), () => [decodePod('a', 1).ready().build()]],
    [
      'a new victim (not yet annotated) is left out at once',
      () => aCluster().prefill(0).decode(1),
      () => [decodePod('old', 1).ready().build(), decodePod('young', 2).ready().build()],
    ],
    [
      'a pod marked draining-since is left out',
      () => aCluster().prefill(0).decode(1),
      () => [decodePod('young', 2).ready().build(), decodePod('old', 1).ready().drainingSince(T0).build()],
    ],
    [
      'a marked pod rejoins when the desired count rises again',
      () => aCluster().prefill(0).decode(2),
      () => [decodePod('young', 2).ready().build(), decodePod('old', 1).ready().drainingSince(T0).build()],
    ],
    [
      'adopted pools are never drained',
      () =>
        aCluster()
          .prefill(0)
          .decode(1)
          .adopt('decode', { matchLabels: { app: 'vllm' } }),
      () => [
        decodePod('a', 1).label('app', 'vllm').ready().build(),
        decodePod('b', 2).label('app', 'vllm').ready().build(),
      ],
    ],
  ];
  it.each(cases)('equals the planner entry: %s', (_name, cluster, pods) => {
    const c = cluster().build();
    const ps = pods();
    const full = plan({
      cluster: c,
      pods: ps,
      deployments: [aDeployment('llama-decode', 2)],
      router,
      now: T0,
    });
    const alone = planRouterEntry(c, ps);
    expect(alone.routerEntry).toEqual(full.routerEntry);
    expect(alone.routerEntryKey).toBe(full.routerEntryKey);
  });

  it('leaves draining-since pods out of the entry', () => {
    const c = aCluster().prefill(0).decode(1).build();
    const { routerEntry } = planRouterEntry(c, [
      decodePod('young', 2).ready().build(),
      decodePod('old', 1).ready().drainingSince(T0).build(),
    ]);
    expect(routerEntry.decode.endpoints.map((e) => e.id)).toEqual(['serving/young']);
  });
});
