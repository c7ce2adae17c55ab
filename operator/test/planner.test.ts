import { describe, expect, it } from '@jest/globals';
import { validateRouterConfig } from '../../router/src/config/index.js';
import { ANN_HTTP_PORT, ANN_NIXL_PORT, LABEL_CLUSTER, LABEL_ROLE } from '../src/api/labels.js';
import type { Condition, Pod } from '../src/api/types.js';
import { plan, type PlanInput, type RouterState } from '../src/plan/planner.js';
import { aCluster, aDeployment, aPod, secondsAfter, T0 } from './fixtures.js';

const cond = (conds: Condition[] | undefined, type: string): Condition =>
  conds!.find((c) => c.type === type)!;

/** Plans once, then again as if the router acknowledged that entry (the steady state). */
function planAcked(input: Omit<PlanInput, 'router' | 'now'> & { now?: Date }) {
  const now = input.now ?? T0;
  const first = plan({ ...input, router: {}, now });
  const router: RouterState = {
    ackedEntryKey: first.routerEntryKey,
    ackedEndpointIds: [...first.routerEntry.prefill.endpoints, ...first.routerEntry.decode.endpoints].map(
      (e) => e.id,
    ),
    ackedHash: 'cafe0123',
  };
  return { first, second: plan({ ...input, router, now }), router };
}

const readyPool = (prefill: number, decode: number): Pod[] => [
  ...Array.from({ length: prefill }, (_, i) =>
    aPod()
      .named(`llama-prefill-${i}`)
      .role('prefill')
      .nixlPort()
      .ready(`10.0.1.${i + 1}`)
      .build(),
  ),
  ...Array.from({ length: decode }, (_, i) =>
    aPod()
      .named(`llama-decode-${i}`)
      .role('decode')
      .nixlPort()
      .ready(`10.0.2.${i + 1}`)
      .build(),
  ),
];

describe('desired Deployments', () => {
  it('runs one Deployment per template pool with the pod contract, env and owner reference', () => {
    const cluster = aCluster()
      .prefill(2)
      .decode(1)
      .templateEnv('decode', 'VLLM_NIXL_SIDE_CHANNEL_PORT', '1')
      .build();
    const p = plan({ cluster, pods: [], deployments: [], router: {}, now: T0 });
    expect(p.deployments.map((d) => [d.metadata.name, d.spec.replicas])).toEqual([
      ['llama-prefill', 2],
      ['llama-decode', 1],
    ]);
    const decode = p.deployments[1]!;
    expect(decode.metadata.ownerReferences).toEqual([
      {
        apiVersion: 'disagg.dev/v1alpha1',
        kind: 'DisaggCluster',
        name: 'llama',
        uid: 'uid-llama',
        controller: true,
      },
    ]);
    expect(decode.spec.selector.matchLabels).toEqual({ [LABEL_CLUSTER]: 'llama', [LABEL_ROLE]: 'decode' });
    expect(decode.spec.template.metadata?.labels).toEqual({
      app: 'vllm',
      [LABEL_CLUSTER]: 'llama',
      [LABEL_ROLE]: 'decode',
    });
    expect(decode.spec.template.metadata?.annotations).toEqual({
      [ANN_HTTP_PORT]: '8000',
      [ANN_NIXL_PORT]: '5600',
    });
    // The operator's value replaces the template's, so the pod contract always holds.
    expect(decode.spec.template.spec.containers[0]!.env).toEqual([
      { name: 'VLLM_NIXL_SIDE_CHANNEL_HOST', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      { name: 'VLLM_NIXL_SIDE_CHANNEL_PORT', value: '5600' },
    ]);
  });

  it('injects LMCache peer env into decoders and the KV-notification address into prefillers', () => {
    const cluster = aCluster().lmcache([7300, 7301], [7400, 7401], 'router-notify.ops.svc').build();
    const [prefill, decode] = plan({ cluster, pods: [], deployments: [], router: {}, now: T0 }).deployments;
    expect(prefill!.spec.template.spec.containers[0]!.env).toEqual([
      { name: 'LMCACHE_PD_PROXY_HOST', value: 'router-notify.ops.svc' },
      { name: 'LMCACHE_PD_PROXY_PORT', value: '7500' },
    ]);
    expect(decode!.spec.template.spec.containers[0]!.env).toEqual([
      { name: 'LMCACHE_PD_PEER_HOST', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      { name: 'LMCACHE_PD_PEER_INIT_PORT', value: '7300,7301' },
      { name: 'LMCACHE_PD_PEER_ALLOC_PORT', value: '7400,7401' },
    ]);
    expect(decode!.spec.template.metadata?.annotations).toMatchObject({
      'disagg.dev/lmcache-init-ports': '7300,7301',
      'disagg.dev/lmcache-alloc-ports': '7400,7401',
    });
  });

  it('runs nothing for adopted pools and deletes a Deployment left from an earlier template', () => {
    const cluster = aCluster()
      .adopt('decode', { matchLabels: { app: 'd' } })
      .build();
    const p = plan({
      cluster,
      pods: [],
      deployments: [aDeployment('llama-decode', 1), aDeployment('llama-prefill', 1)],
      router: {},
      now: T0,
    });
    expect(p.deployments.map((d) => d.metadata.name)).toEqual(['llama-prefill']);
    expect(p.deleteDeployments).toEqual(['llama-decode']);
  });

  it('reports a Deployment whose replicas it changes as a ScaledPool event', () => {
    const cluster = aCluster().prefill(1).decode(3).build();
    const p = plan({
      cluster,
      pods: readyPool(1, 1),
      deployments: [aDeployment('llama-decode', 1), aDeployment('llama-prefill', 1)],
      router: {},
      now: T0,
    });
    expect(p.events).toContainEqual(
      expect.objectContaining({
        reason: 'ScaledPool',
        message: expect.stringContaining('llama-decode from 1 to 3'),
      }),
    );
    expect(p.events.filter((e) => e.reason === 'ScaledPool')).toHaveLength(1);
  });
});

describe('router entry', () => {
  it('lists routable pods in the router type, which the router accepts', () => {
    const cluster = aCluster().prefill(2).decode(1).threshold(512).build();
    const pods = [
      ...readyPool(2, 1),
      aPod().named('llama-decode-x').role('decode').nixlPort().notReady().build(),
    ];
    const p = plan({ cluster, pods, deployments: [], router: {}, now: T0 });
    expect(p.routerEntry).toEqual({
      name: 'serving/llama',
      models: ['meta-llama/Llama-3.1-8B-Instruct'],
      connector: 'nixl',
      routingThreshold: 512,
      loadBalancing: 'round_robin',
      prefill: {
        endpoints: [
          { id: 'serving/llama-prefill-0', url: 'http://10.0.1.1:8000' },
          { id: 'serving/llama-prefill-1', url: 'http://10.0.1.2:8000' },
        ],
      },
      decode: {
        endpoints: [
          {
            id: 'serving/llama-decode-0',
            url: 'http://10.0.2.1:8000',
            nixl: { sideChannelHost: '10.0.2.1', sideChannelPort: 5600 },
          },
        ],
      },
      policies: { prefillFailurePolicy: 'fallback' },
    });
    const validated = validateRouterConfig({ clusters: [p.routerEntry] });
    expect(validated.ok).toBe(true);
  });

  it('passes routing timeouts through and LMCache decoders carry their registry', () => {
    const cluster = aCluster().lmcache().build();
    cluster.spec.routing = {
      ...cluster.spec.routing,
      prefillTimeouts: { firstByteMs: 1000 },
      kvReadyTimeoutMs: 5000,
    };
    const pods = [
      aPod().named('p').role('prefill').ready('10.0.0.1').build(),
      aPod().named('d').role('decode').lmcachePorts().ready('10.0.0.2').build(),
    ];
    const p = plan({ cluster, pods, deployments: [], router: {}, now: T0 });
    expect(p.routerEntry.policies).toEqual({
      prefillFailurePolicy: 'fallback',
      prefillTimeouts: { firstByteMs: 1000 },
      kvReadyTimeoutMs: 5000,
    });
    expect(p.routerEntry.decode.endpoints[0]).toMatchObject({
      lmcache: { receiverHost: '10.0.0.2', initPorts: [7300], allocPorts: [7400] },
    });
    expect(validateRouterConfig({ clusters: [p.routerEntry] }).ok).toBe(true);
  });

  it('the entry key is stable across pod order', () => {
    const cluster = aCluster().prefill(2).decode(2).build();
    const pods = readyPool(2, 2);
    const a = plan({ cluster, pods, deployments: [], router: {}, now: T0 });
    const b = plan({ cluster, pods: [...pods].reverse(), deployments: [], router: {}, now: T0 });
    expect(a.routerEntryKey).toBe(b.routerEntryKey);
  });
});

describe('status', () => {
  it('steady state: Ready, counts, topology 2P1D, acknowledged hash', () => {
    const cluster = aCluster().prefill(2).decode(1).build();
    const { first, second } = planAcked({ cluster, pods: readyPool(2, 1), deployments: [] });
    expect(cond(first.status.conditions, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'RouterNotConfigured',
    });
    expect(cond(first.status.conditions, 'RouterConfigured')).toMatchObject({
      status: 'False',
      reason: 'PushPending',
    });
    const s = second.status;
    expect(s.topology).toBe('2P1D');
    expect(s.observedGeneration).toBe(1);
    expect(s.prefill).toEqual({ replicas: 2, readyReplicas: 2, routableEndpoints: 2 });
    expect(s.decode).toEqual({ replicas: 1, readyReplicas: 1, routableEndpoints: 1 });
    expect(s.router?.acknowledgedHash).toBe('cafe0123');
    expect(cond(s.conditions, 'Ready')).toMatchObject({
      status: 'True',
      reason: 'AllEndpointsRoutable',
      observedGeneration: 1,
    });
    expect(cond(s.conditions, 'Progressing')).toMatchObject({ status: 'False', reason: 'Stable' });
    expect(cond(s.conditions, 'Degraded')).toMatchObject({ status: 'False', reason: 'AsExpected' });
    expect(cond(s.conditions, 'RouterConfigured')).toMatchObject({
      status: 'True',
      reason: 'ConfigAcknowledged',
    });
  });

  it('planning again from its own status changes nothing (status patches only on change)', () => {
    const cluster = aCluster().prefill(1).decode(1).build();
    const { second, router } = planAcked({ cluster, pods: readyPool(1, 1), deployments: [] });
    const again = plan({
      cluster: { ...cluster, status: second.status },
      pods: readyPool(1, 1),
      deployments: [],
      router,
      now: secondsAfter(T0, 60),
    });
    expect(again.status).toEqual(second.status);
    expect(again.events).toEqual([]);
  });

  it('keeps lastTransitionTime while a condition keeps its status', () => {
    const cluster = aCluster()
      .condition({ type: 'Ready', status: 'False', lastTransitionTime: '2025-01-01T00:00:00Z' })
      .build();
    const p = plan({ cluster, pods: [], deployments: [], router: {}, now: T0 });
    expect(cond(p.status.conditions, 'Ready').lastTransitionTime).toBe('2025-01-01T00:00:00Z');
    expect(cond(p.status.conditions, 'Degraded').lastTransitionTime).toBe('2026-01-01T00:00:00Z');
  });

  it('while pods start: Progressing ScalingUp, Ready EndpointsNotRoutable with counts', () => {
    const cluster = aCluster().prefill(2).decode(2).build();
    const pods = [...readyPool(1, 1), aPod().role('decode').nixlPort().notReady().build()];
    const s = plan({ cluster, pods, deployments: [], router: {}, now: T0 }).status;
    expect(cond(s.conditions, 'Progressing')).toMatchObject({ status: 'True', reason: 'ScalingUp' });
    expect(cond(s.conditions, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'EndpointsNotRoutable',
      message: '1/2 prefill and 1/2 decode endpoints routable',
    });
    expect(s.decode).toEqual({ replicas: 2, readyReplicas: 1, routableEndpoints: 1 });
  });

  it('no decoder routable: Ready False NoRoutableDecoders; both pools at 0: ScaledToZero', () => {
    const s = plan({
      cluster: aCluster().build(),
      pods: readyPool(1, 0),
      deployments: [],
      router: {},
      now: T0,
    }).status;
    expect(cond(s.conditions, 'Ready').reason).toBe('NoRoutableDecoders');
    const z = plan({
      cluster: aCluster().prefill(0).decode(0).build(),
      pods: [],
      deployments: [],
      router: {},
      now: T0,
    }).status;
    expect(cond(z.conditions, 'Ready').reason).toBe('ScaledToZero');
    expect(z.topology).toBe('0P0D');
  });

  it('a bad port annotation: Degraded InvalidPodPorts naming the pod, one Warning event, the rest still served', () => {
    const cluster = aCluster().prefill(1).decode(2).build();
    const pods = [
      ...readyPool(1, 1),
      aPod().named('llama-decode-bad').role('decode').annotation(ANN_NIXL_PORT, 'abc').ready().build(),
    ];
    const p = plan({ cluster, pods, deployments: [], router: {}, now: T0 });
    const degraded = cond(p.status.conditions, 'Degraded');
    expect(degraded).toMatchObject({ status: 'True', reason: 'InvalidPodPorts' });
    expect(degraded.message).toContain(`pod serving/llama-decode-bad: annotation ${ANN_NIXL_PORT}="abc"`);
    expect(p.routerEntry.decode.endpoints.map((e) => e.id)).toEqual(['serving/llama-decode-0']);
    expect(p.events.filter((e) => e.reason === 'InvalidPodPorts')).toEqual([
      { type: 'Warning', reason: 'InvalidPodPorts', message: expect.stringContaining('llama-decode-bad') },
    ]);
    // Reported once: the next plan sees the problem in its status and emits nothing new.
    const again = plan({
      cluster: { ...cluster, status: p.status },
      pods,
      deployments: [],
      router: {},
      now: T0,
    });
    expect(again.events.filter((e) => e.reason === 'InvalidPodPorts')).toEqual([]);
  });

  it('a router that rejects the config or is unreachable: RouterConfigured False with that reason, Degraded, Warning event', () => {
    const cluster = aCluster().build();
    const failure = {
      reason: 'ConfigRejected' as const,
      message: 'The router rejected the configuration: clusters[0].models: ...',
    };
    const p = plan({ cluster, pods: readyPool(1, 1), deployments: [], router: { failure }, now: T0 });
    expect(cond(p.status.conditions, 'RouterConfigured')).toMatchObject({
      status: 'False',
      reason: 'ConfigRejected',
    });
    expect(cond(p.status.conditions, 'Degraded')).toMatchObject({ status: 'True', reason: 'ConfigRejected' });
    expect(cond(p.status.conditions, 'Ready').reason).toBe('RouterNotConfigured');
    expect(p.events).toContainEqual(
      expect.objectContaining({ type: 'Warning', reason: 'RouterConfigFailed' }),
    );
  });

  it('an apply failure is Degraded ApplyFailed', () => {
    const p = plan({
      cluster: aCluster().build(),
      pods: [],
      deployments: [],
      router: {},
      applyError: 'deployments.apps is forbidden',
      now: T0,
    });
    expect(cond(p.status.conditions, 'Degraded')).toMatchObject({
      reason: 'ApplyFailed',
      message: 'deployments.apps is forbidden',
    });
  });

  it('keeps the acknowledged hash while only other clusters change the router config', () => {
    const cluster = aCluster().build();
    const { second, router } = planAcked({ cluster, pods: readyPool(1, 1), deployments: [] });
    const later = plan({
      cluster: { ...cluster, status: second.status },
      pods: readyPool(1, 1),
      deployments: [],
      router: { ...router, ackedHash: 'beef9999' },
      now: secondsAfter(T0, 5),
    });
    expect(later.status).toEqual(second.status);
  });
});
