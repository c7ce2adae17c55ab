// Faults on the real control plane: an engine dies or hangs, a router restarts, the API server
// restarts, the leader is killed or shut down. Two operator replicas, each with its own router,
// short lease timings (6s/4s/1s) so takeovers are quick to observe.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import {
  complete,
  exampleDocs,
  getDisagg,
  isReady,
  promptOfTokens,
  routerConfig,
  startE2eEnv,
  toApplyInput,
  waitForStatus,
  type E2eEnv,
  type OperatorProc,
  type RouterProc,
} from '../../operator/test/support/e2e-env.js';
import { waitFor } from '../cluster/wait.js';

jest.setTimeout(900_000);

const NS = 'faults';
const NAME = 'sim-faults';
const MODEL = 'sim-llama';
const LEASE = [
  '--leader-election-lease-duration=6s',
  '--leader-election-renew-deadline=4s',
  '--leader-election-retry-period=1s',
  '--resync-period=5s',
];

describe('operator end to end: faults', () => {
  let env: E2eEnv;
  const routers: Record<string, RouterProc> = {};
  const operators: Record<string, OperatorProc> = {};

  const decodeIds = async (router: RouterProc): Promise<string[]> =>
    (
      (await routerConfig(router))?.config.clusters.find((c) => c.name === `${NS}/${NAME}`)?.decode
        .endpoints ?? []
    )
      .map((e) => e.id)
      .sort();
  const leaderOf = async (): Promise<string[]> => {
    const out: string[] = [];
    for (const [id, op] of Object.entries(operators)) {
      if (op.proc.hasExited) continue;
      const m = await op.metrics().catch(() => '');
      if (/leader_election_master_status\{name="disagg-operator"\} 1/.test(m)) out.push(id);
    }
    return out;
  };
  const decodePods = async (): Promise<string[]> =>
    (
      await env.cluster.kubectl([
        'get',
        'pods',
        '-n',
        NS,
        '-l',
        `disagg.dev/cluster=${NAME},disagg.dev/role=decode`,
        '--field-selector=status.phase=Running',
        '-o',
        'jsonpath={.items[*].metadata.name}',
      ])
    ).stdout
      .split(/\s+/)
      .filter(Boolean)
      .sort();

  beforeAll(async () => {
    env = await startE2eEnv({ kubelet: { readinessPeriodMs: 500, restartBackoffMs: 2000 } });
    await env.cluster.kubectl(['create', 'namespace', NS]);
    for (const id of ['op-a', 'op-b']) routers[id] = await env.startRouter(id);
    for (const id of ['op-a', 'op-b']) operators[id] = await env.startOperator(id, routers[id]!, LEASE);
    const docs = exampleDocs('sim-nixl-2p1d.yaml');
    const c = docs[0] as {
      metadata: { name: string };
      spec: { prefill: { replicas: number }; decode: { replicas: number } };
    };
    c.metadata.name = NAME;
    c.spec.prefill.replicas = 1;
    c.spec.decode.replicas = 2;
    await env.cluster.kubectl(['apply', '-n', NS, '-f', '-'], { input: toApplyInput([c]) });
    await waitForStatus(env.cluster, NS, NAME, 'Ready 1P2D', (x) => isReady(x, '1P2D', 1), 180_000);
  });
  afterAll(async () => {
    await env?.stop();
  });

  test('an engine that dies leaves the pools within a probe period and rejoins when it is back', async () => {
    const [victim] = await decodePods();
    const id = `${NS}/${victim}`;
    await waitFor('both decoders routed', async () => (await decodeIds(routers['op-a']!)).length === 2, {
      timeoutMs: 30_000,
    });
    const t0 = Date.now();
    env.cluster.kubelet!.killEngine(victim!, NS);
    await waitFor(`${id} left router op-a`, async () => !(await decodeIds(routers['op-a']!)).includes(id), {
      timeoutMs: 30_000,
      intervalMs: 50,
    });
    const leftAfterMs = Date.now() - t0;
    process.stdout.write(`engine death -> out of the router pools in ${leftAfterMs} ms\n`);
    // Requests keep working on the remaining decoder meanwhile.
    for (let i = 0; i < 4; i++)
      expect((await complete(routers['op-a']!.url, MODEL, `hi ${i}`)).status).toBe(200);
    // The kubelet restarts the engine; the pod becomes Ready and routable again.
    await waitFor(`${id} back in router op-a`, async () => (await decodeIds(routers['op-a']!)).includes(id), {
      timeoutMs: 60_000,
    });
    await waitForStatus(env.cluster, NS, NAME, 'Ready 1P2D again', (x) => isReady(x, '1P2D'));
  });

  test('a hung engine (readiness fails) leaves the pools; resumed, it returns', async () => {
    const [, victim] = await decodePods();
    const id = `${NS}/${victim}`;
    env.cluster.kubelet!.hangEngine(victim!, NS);
    await waitFor(`${id} left router op-b`, async () => !(await decodeIds(routers['op-b']!)).includes(id), {
      timeoutMs: 30_000,
    });
    const c = await waitForStatus(
      env.cluster,
      NS,
      NAME,
      'not Ready while hung',
      (x) => x.status?.topology === '1P1D',
    );
    expect(c.status?.decode).toMatchObject({ readyReplicas: 1, routableEndpoints: 1 });
    env.cluster.kubelet!.resumeEngine(victim!, NS);
    await waitFor(`${id} back`, async () => (await decodeIds(routers['op-b']!)).includes(id), {
      timeoutMs: 30_000,
    });
  });

  test('a restarted router gets its configuration back within a resync period', async () => {
    const r = routers['op-a']!;
    r.proc.signal('SIGKILL');
    await r.proc.exited;
    routers['op-a'] = await r.restart();
    const t0 = Date.now();
    await waitFor(
      'restarted router configured',
      async () => (await decodeIds(routers['op-a']!)).length === 2,
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    process.stdout.write(
      `router restart -> configuration back in ${Date.now() - t0} ms (resync period 5 s)\n`,
    );
    expect((await complete(routers['op-a']!.url, MODEL, promptOfTokens(200))).status).toBe(200);
    const peers = (await routerConfig(routers['op-a']!))?.config.peers.map((p) => p.id);
    expect(peers).toEqual(['op-a', 'op-b']);
  });

  test('the API server restarts: the operators resume without restarting', async () => {
    const pids = Object.values(operators).map((o) => o.proc.pid);
    await env.cluster.restartApiServer({ downMs: 3000 });
    // A change after the outage is picked up: the watches came back.
    await env.cluster.kubectl([
      'patch',
      'disagg',
      NAME,
      '-n',
      NS,
      '--type=merge',
      '-p',
      '{"spec":{"routing":{"threshold":32}}}',
    ]);
    const generation = (await getDisagg(env.cluster, NS, NAME))!.metadata.generation!;
    await waitForStatus(
      env.cluster,
      NS,
      NAME,
      `observed generation ${generation}`,
      (x) => isReady(x, '1P2D', generation),
      60_000,
    );
    for (const r of Object.values(routers)) {
      await waitFor(
        `${r.replicaId} has the new threshold`,
        async () => {
          const cfg = await routerConfig(r);
          return (
            (
              cfg?.config.clusters.find((c) => c.name === `${NS}/${NAME}`) as
                { routingThreshold?: number } | undefined
            )?.routingThreshold === 32
          );
        },
        { timeoutMs: 30_000 },
      );
    }
    expect(Object.values(operators).map((o) => [o.proc.pid, o.proc.hasExited])).toEqual(
      pids.map((p) => [p, false]),
    );
    expect(await leaderOf()).toHaveLength(1);
    const m = await operators['op-a']!.metrics();
    expect(m).toMatch(
      /disagg_informer_lifecycle_events_total\{resource="[a-z]+",event="(restart|connect)"\} [1-9]/,
    );
  });

  test('the leader is killed: the other replica takes over within the lease time and writes status', async () => {
    const [leader] = await waitFor(
      'one leader',
      async () => {
        const l = await leaderOf();
        return l.length === 1 ? l : undefined;
      },
      { timeoutMs: 30_000 },
    );
    const other = leader === 'op-a' ? 'op-b' : 'op-a';
    const t0 = Date.now();
    operators[leader!]!.proc.signal('SIGKILL');
    await operators[leader!]!.proc.exited;
    await waitFor(`${other} leads`, async () => (await leaderOf()).includes(other), {
      timeoutMs: 30_000,
      intervalMs: 100,
    });
    const tookMs = Date.now() - t0;
    process.stdout.write(`leader killed -> ${other} took over in ${tookMs} ms (lease 6 s)\n`);
    expect(tookMs).toBeLessThan(6000 + 1000 + 3000); // lease + retry period + scheduling slack on 2 cores
    // The new leader writes: scale decode to 1 and see it done.
    await env.cluster.kubectl([
      'patch',
      'disagg',
      NAME,
      '-n',
      NS,
      '--type=merge',
      '-p',
      '{"spec":{"decode":{"replicas":1}}}',
    ]);
    const generation = (await getDisagg(env.cluster, NS, NAME))!.metadata.generation!;
    await waitForStatus(
      env.cluster,
      NS,
      NAME,
      'Ready 1P1D from the new leader',
      (x) => isReady(x, '1P1D', generation),
      90_000,
    );
    // Bring the killed replica back as a follower.
    operators[leader!] = await env.startOperator(leader!, routers[leader!]!, LEASE);
    await waitFor(
      'its router is fed again although it does not lead',
      async () => (await decodeIds(routers[leader!]!)).length === 1,
      { timeoutMs: 30_000 },
    );
    expect(await leaderOf()).toEqual([other]);
  });

  test('SIGTERM releases the lease: the other replica leads at once', async () => {
    const [leader] = await leaderOf();
    const other = leader === 'op-a' ? 'op-b' : 'op-a';
    const t0 = Date.now();
    await operators[leader!]!.proc.stop(10_000);
    const lease = JSON.parse(
      (await env.cluster.kubectl(['get', 'lease', '-n', 'disagg-system', 'disagg-operator', '-o', 'json']))
        .stdout,
    ) as {
      spec: { holderIdentity?: string };
    };
    expect([undefined, '', other]).toContain(lease.spec.holderIdentity);
    await waitFor(`${other} leads`, async () => (await leaderOf()).includes(other), {
      timeoutMs: 30_000,
      intervalMs: 100,
    });
    const tookMs = Date.now() - t0;
    process.stdout.write(`leader SIGTERM -> ${other} took over in ${tookMs} ms\n`);
    // Well under the 6 s lease: it did not wait for expiry.
    expect(tookMs).toBeLessThan(5000);
    // The stopped replica left membership: the remaining router's peers drop it.
    await waitFor(
      'peer list shrinks',
      async () => (await routerConfig(routers[other]!))?.config.peers.map((p) => p.id).join() === other,
      { timeoutMs: 30_000 },
    );
  });
});
