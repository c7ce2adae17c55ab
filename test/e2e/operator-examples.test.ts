// The operator end to end on a real control plane (full tier: controller-manager, scheduler,
// loopback kubelet running simulated engines), with two operator replicas, each feeding its own
// real router process, running under the chart's ClusterRole through a ServiceAccount token.
// Traffic is checked in the simulators' own request logs, not from the router's word.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { waitFor } from '../cluster/wait.js';
import {
  complete,
  condition,
  exampleDocs,
  getDisagg,
  isReady,
  promptOfTokens,
  routerConfig,
  simRequests,
  toApplyInput,
  waitForStatus,
  type E2eEnv,
  type OperatorProc,
  type RouterProc,
} from '../../operator/test/support/e2e-env.js';
import { startE2eEnv } from '../../operator/test/support/e2e-env.js';

jest.setTimeout(600_000);

const NS = 'serving';
const LONG = promptOfTokens(400);
const SHORT = 'Hello there';

describe('operator end to end: examples, routing, status, deletion', () => {
  let env: E2eEnv;
  let routerA: RouterProc;
  let routerB: RouterProc;
  let opA: OperatorProc;
  let opB: OperatorProc;

  const engineUrl = (pod: string): string => {
    const e = env.cluster.kubelet!.engines().find((x) => x.name === pod && x.namespace === NS);
    if (!e) throw new Error(`no engine for pod ${pod}`);
    return e.url;
  };
  const podsOf = async (cluster: string, role: string): Promise<string[]> => {
    const out = await env.cluster.kubectl([
      'get',
      'pods',
      '-n',
      NS,
      '-l',
      `disagg.dev/cluster=${cluster},disagg.dev/role=${role}`,
      '-o',
      'jsonpath={.items[*].metadata.name}',
    ]);
    return out.stdout.split(/\s+/).filter(Boolean).sort();
  };
  const routerHas = async (router: RouterProc, name: string, prefill: number, decode: number) => {
    const cfg = await routerConfig(router);
    const c = cfg?.config.clusters.find((x) => x.name === name);
    return c !== undefined && c.prefill.endpoints.length === prefill && c.decode.endpoints.length === decode;
  };

  beforeAll(async () => {
    env = await startE2eEnv();
    await env.cluster.kubectl(['create', 'namespace', NS]);
    [routerA, routerB] = await Promise.all([env.startRouter('router-a'), env.startRouter('router-b')]);
    opA = await env.startOperator('router-a', routerA);
    opB = await env.startOperator('router-b', routerB);
  });
  afterAll(async () => {
    await env?.stop();
  });

  test('NIXL 2P1D from docs/examples becomes Ready with the right counts and printer columns', async () => {
    await env.cluster.kubectl(['apply', '-n', NS, '-f', '-'], {
      input: toApplyInput(exampleDocs('sim-nixl-2p1d.yaml')),
    });
    const c = await waitForStatus(
      env.cluster,
      NS,
      'sim-nixl',
      'Ready 2P1D',
      (x) => isReady(x, '2P1D', 1),
      180_000,
    );
    expect(c.status).toMatchObject({
      observedGeneration: 1,
      prefill: { replicas: 2, readyReplicas: 2, routableEndpoints: 2 },
      decode: { replicas: 1, readyReplicas: 1, routableEndpoints: 1 },
    });
    expect(condition(c, 'RouterConfigured')).toMatchObject({ status: 'True', reason: 'ConfigAcknowledged' });
    expect(condition(c, 'Degraded')).toMatchObject({ status: 'False', reason: 'AsExpected' });
    expect(c.status?.router?.acknowledgedHash).toMatch(/^[0-9a-f]{16}$/);
    const table = (await env.cluster.kubectl(['get', 'disagg', '-n', NS, 'sim-nixl'])).stdout
      .trim()
      .split('\n');
    expect(table[1]!.split(/\s+/).slice(0, 7)).toEqual(['sim-nixl', '2P1D', '2', '1', '64', 'nixl', 'True']);
    // Both replicas feed their own router.
    await waitFor(
      'both routers configured',
      async () =>
        (await routerHas(routerA, `${NS}/sim-nixl`, 2, 1)) &&
        (await routerHas(routerB, `${NS}/sim-nixl`, 2, 1)),
      { timeoutMs: 30_000 },
    );
    // The Deployment carries the pod contract.
    const deploy = JSON.parse(
      (await env.cluster.kubectl(['get', 'deploy', '-n', NS, 'sim-nixl-decode', '-o', 'json'])).stdout,
    ) as {
      metadata: { ownerReferences: Array<{ kind: string; name: string; controller: boolean }> };
      spec: {
        template: {
          metadata: { annotations: Record<string, string> };
          spec: { containers: Array<{ env: Array<{ name: string }> }> };
        };
      };
    };
    expect(deploy.metadata.ownerReferences).toEqual([
      expect.objectContaining({ kind: 'DisaggCluster', name: 'sim-nixl', controller: true }),
    ]);
    expect(deploy.spec.template.metadata.annotations).toMatchObject({
      'disagg.dev/http-port': '8000',
      'disagg.dev/nixl-side-channel-port': '5600',
    });
    expect(deploy.spec.template.spec.containers[0]!.env.map((e) => e.name)).toEqual([
      'VLLM_NIXL_SIDE_CHANNEL_HOST',
      'VLLM_NIXL_SIDE_CHANNEL_PORT',
    ]);
  });

  test('a long request goes prefill -> decode through the right pods; a short one goes direct', async () => {
    const prefill = await podsOf('sim-nixl', 'prefill');
    const [decode] = await podsOf('sim-nixl', 'decode');
    const before = async () => ({
      p: (await Promise.all(prefill.map((p) => simRequests(engineUrl(p))))).flat(),
      d: await simRequests(engineUrl(decode!)),
    });
    const b = await before();
    // Twice through router A (its round robin covers both prefillers), once through router B.
    for (const router of [routerA, routerA, routerB]) {
      const r = await complete(router.url, 'sim-llama', LONG);
      expect(r.status).toBe(200);
    }
    let a = await before();
    expect(a.p.length - b.p.length).toBe(3);
    expect(a.p.every((x) => x.leg === 'prefill' && x.status === 200)).toBe(true);
    const newDecodes = a.d.slice(b.d.length);
    expect(newDecodes.map((x) => [x.leg, x.kvSource])).toEqual([
      ['decode', 'nixl'],
      ['decode', 'nixl'],
      ['decode', 'nixl'],
    ]);
    // Round robin over both prefillers.
    const perPrefiller = await Promise.all(
      prefill.map(async (p) => (await simRequests(engineUrl(p))).filter((x) => x.leg === 'prefill').length),
    );
    expect(perPrefiller.every((n) => n >= 1)).toBe(true);

    const r = await complete(routerA.url, 'sim-llama', SHORT);
    expect(r.status).toBe(200);
    const after = await before();
    expect(after.p.length).toBe(a.p.length);
    expect(after.d.slice(a.d.length).map((x) => x.leg)).toEqual(['direct']);
    a = after;
  });

  test('LMCache 1P2D with two router replicas: requests succeed whichever replica gets the KV notification', async () => {
    const docs = exampleDocs('sim-lmcache-1p2d.yaml');
    // Every prefiller notifies router A; requests through router B must be forwarded there.
    (docs[0]!.spec as { connector: { lmcache: { kvNotifyPort: number } } }).connector.lmcache.kvNotifyPort =
      routerA.kvNotifyPort;
    await env.cluster.kubectl(['apply', '-n', NS, '-f', '-'], { input: toApplyInput(docs) });
    await waitForStatus(env.cluster, NS, 'sim-lmcache', 'Ready 1P2D', (x) => isReady(x, '1P2D'), 180_000);
    await waitFor(
      'both routers know each other as peers',
      async () =>
        ((await routerConfig(routerA))?.config.peers.length ?? 0) === 2 &&
        ((await routerConfig(routerB))?.config.peers.length ?? 0) === 2,
      { timeoutMs: 30_000 },
    );
    await waitFor(
      'both routers configured',
      async () =>
        (await routerHas(routerA, `${NS}/sim-lmcache`, 1, 2)) &&
        (await routerHas(routerB, `${NS}/sim-lmcache`, 1, 2)),
      { timeoutMs: 30_000 },
    );
    const decoders = await podsOf('sim-lmcache', 'decode');
    const before = (await Promise.all(decoders.map((d) => simRequests(engineUrl(d))))).flat().length;
    for (let i = 0; i < 4; i++) {
      for (const router of [routerB, routerA]) {
        const r = await complete(router.url, 'sim-lmcache-llama', LONG + i, 6);
        expect({ via: router.replicaId, status: r.status, body: r.status === 200 ? '' : r.body }).toEqual({
          via: router.replicaId,
          status: 200,
          body: '',
        });
      }
    }
    const logs = (await Promise.all(decoders.map((d) => simRequests(engineUrl(d))))).flat();
    expect(logs.length - before).toBe(8);
    const decodeLegs = logs.filter((x) => x.leg !== 'direct').slice(-8);
    expect(decodeLegs.every((x) => x.kvSource === 'lmcache')).toBe(true);
    // Both decoders got work (round robin over the pool).
    const perDecoder = await Promise.all(decoders.map(async (d) => (await simRequests(engineUrl(d))).length));
    expect(perDecoder.every((n) => n > 0)).toBe(true);
  });

  test('adopted pods: selector pools are routed to without the operator running anything', async () => {
    await env.cluster.kubectl(['apply', '-n', NS, '-f', '-'], {
      input: toApplyInput(exampleDocs('sim-adopted.yaml')),
    });
    await waitForStatus(env.cluster, NS, 'sim-adopted', 'Ready 1P1D', (x) => isReady(x, '1P1D'), 180_000);
    const owned = await env.cluster.kubectl([
      'get',
      'deploy',
      '-n',
      NS,
      '-l',
      'disagg.dev/cluster=sim-adopted',
      '-o',
      'name',
    ]);
    expect(owned.stdout.trim()).toBe('');
    const r = await complete(routerA.url, 'sim-byo', LONG);
    expect(r.status).toBe(200);
    const decode = (
      await env.cluster.kubectl([
        'get',
        'pods',
        '-n',
        NS,
        '-l',
        'tier=decode',
        '-o',
        'jsonpath={.items[0].metadata.name}',
      ])
    ).stdout;
    expect((await simRequests(engineUrl(decode))).map((x) => [x.leg, x.kvSource])).toContainEqual([
      'decode',
      'nixl',
    ]);
  });

  test('a bad port annotation is reported in status and events, and the pod leaves the router until fixed', async () => {
    const decode = (
      await env.cluster.kubectl([
        'get',
        'pods',
        '-n',
        NS,
        '-l',
        'tier=decode',
        '-o',
        'jsonpath={.items[0].metadata.name}',
      ])
    ).stdout;
    const generation = (await getDisagg(env.cluster, NS, 'sim-adopted'))!.metadata.generation;
    await env.cluster.kubectl([
      'annotate',
      'pod',
      '-n',
      NS,
      decode,
      '--overwrite',
      'disagg.dev/nixl-side-channel-port=fifty',
    ]);
    const c = await waitForStatus(
      env.cluster,
      NS,
      'sim-adopted',
      'Degraded InvalidPodPorts',
      (x) => condition(x, 'Degraded')?.reason === 'InvalidPodPorts',
    );
    expect(condition(c, 'Degraded')?.message).toContain(
      `pod ${NS}/${decode}: annotation disagg.dev/nixl-side-channel-port="fifty" is not a port number`,
    );
    expect(condition(c, 'Ready')).toMatchObject({ status: 'False', reason: 'NoRoutableDecoders' });
    expect(c.status?.topology).toBe('1P0D');
    expect(c.metadata.generation).toBe(generation); // the spec is untouched
    await waitFor('router A dropped the pod', () => routerHas(routerA, `${NS}/sim-adopted`, 1, 0), {
      timeoutMs: 30_000,
    });
    const events = await env.cluster.kubectl([
      'get',
      'events',
      '-n',
      NS,
      '--field-selector',
      'involvedObject.name=sim-adopted,reason=InvalidPodPorts',
      '-o',
      'jsonpath={.items[*].message}',
    ]);
    expect(events.stdout).toContain('disagg.dev/nixl-side-channel-port="fifty"');

    await env.cluster.kubectl([
      'annotate',
      'pod',
      '-n',
      NS,
      decode,
      '--overwrite',
      'disagg.dev/nixl-side-channel-port=5601',
    ]);
    await waitForStatus(
      env.cluster,
      NS,
      'sim-adopted',
      'Ready again',
      (x) => isReady(x, '1P1D') && condition(x, 'Degraded')?.status === 'False',
    );
  });

  test('two clusters may not serve the same model: the newer one is refused in status', async () => {
    const docs = exampleDocs('sim-nixl-2p1d.yaml');
    const dup = docs[0] as {
      metadata: { name: string };
      spec: { prefill: { replicas: number }; decode: { replicas: number } };
    };
    dup.metadata.name = 'sim-dup';
    dup.spec.prefill.replicas = 0;
    await env.cluster.kubectl(['apply', '-n', NS, '-f', '-'], { input: toApplyInput([dup]) });
    const c = await waitForStatus(
      env.cluster,
      NS,
      'sim-dup',
      'ModelConflict',
      (x) => condition(x, 'RouterConfigured')?.reason === 'ModelConflict',
    );
    expect(condition(c, 'RouterConfigured')?.message).toBe(
      `Model sim-llama is already served by ${NS}/sim-nixl (created earlier); change spec.model.servedName`,
    );
    expect((await routerConfig(routerA))?.config.clusters.map((x) => x.name)).not.toContain(`${NS}/sim-dup`);
    await env.cluster.kubectl(['delete', 'disagg', '-n', NS, 'sim-dup', '--wait=true']);
  });

  test('deleting a DisaggCluster removes its Deployments, pods and router configuration', async () => {
    await env.cluster.kubectl(['delete', 'disagg', '-n', NS, 'sim-nixl', '--wait=true']);
    await waitFor(
      'Deployments garbage-collected',
      async () =>
        (
          await env.cluster.kubectl([
            'get',
            'deploy',
            '-n',
            NS,
            '-l',
            'disagg.dev/cluster=sim-nixl',
            '-o',
            'name',
          ])
        ).stdout.trim() === '',
      { timeoutMs: 60_000 },
    );
    for (const router of [routerA, routerB]) {
      await waitFor(
        `${router.replicaId} forgot the cluster`,
        async () => !(await routerConfig(router))?.config.clusters.some((c) => c.name === `${NS}/sim-nixl`),
        { timeoutMs: 30_000 },
      );
    }
    const r = await complete(routerA.url, 'sim-llama', SHORT);
    expect(r.status).not.toBe(200);
    await waitFor(
      'pods gone',
      async () =>
        (await podsOf('sim-nixl', 'decode')).length === 0 &&
        (await podsOf('sim-nixl', 'prefill')).length === 0,
      { timeoutMs: 90_000 },
    );
  });

  test('the operators expose controller-runtime metrics and exactly one is the leader', async () => {
    const [ma, mb] = await Promise.all([opA.metrics(), opB.metrics()]);
    for (const m of [ma, mb]) {
      expect(m).toMatch(
        /controller_runtime_reconcile_total\{controller="disaggcluster",result="success"\} \d+/,
      );
      expect(m).toContain('controller_runtime_reconcile_time_seconds_bucket');
      expect(m).toContain('workqueue_depth{name="disaggcluster"}');
      expect(m).toMatch(/disagg_router_config_push_total\{result="success"\} [1-9]/);
    }
    const leader = (m: string) =>
      Number(/leader_election_master_status\{name="disagg-operator"\} (\d)/.exec(m)?.[1]);
    expect(leader(ma) + leader(mb)).toBe(1);
    expect((await fetch(`http://127.0.0.1:${opA.healthPort}/readyz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${opB.healthPort}/healthz`)).status).toBe(200);
    // Logs are JSON lines.
    const firstLine = opA.logs().split('\n')[0]!;
    expect(JSON.parse(firstLine)).toHaveProperty('msg');
  });
});
