// `helm install` for real: a real node (kubelet + containerd + runc + CNI + kube-proxy + CoreDNS)
// runs the chart's operator pod (operator + router sidecar) from the image built from the
// Dockerfile, in a namespace that enforces the restricted Pod Security Standard; a DisaggCluster of
// simulator containers is routed through the chart's Service from a client pod, scaled, failed
// over, upgraded and uninstalled; then the node is stopped and must leave nothing behind.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { waitFor } from '../cluster/wait.js';
import {
  CHART,
  disaggReady,
  nodeImages,
  operatorPods,
  pods,
  release,
  requestsFrom,
  rolledOut,
  SIM_EXAMPLE,
  startClientPod,
} from './chart-on-node.js';
import { leftovers, startRealNode, type RealNode } from './real-node.js';

jest.setTimeout(600_000);

const REL = release('demo', 'disagg');
let node: RealNode;
let stopped = false;

const patchSim = (spec: object) =>
  node.kubectl([
    'patch',
    'disagg',
    'sim-nixl',
    '-n',
    'default',
    '--type=merge',
    '-p',
    JSON.stringify({ spec }),
  ]);
const simReady = (topology: string) =>
  waitFor(`sim-nixl Ready ${topology}`, () => disaggReady(node, 'default', 'sim-nixl', topology), {
    timeoutMs: 240_000,
    intervalMs: 1000,
  });
const expectAll200 = (r: Record<string, { status: number }>, who = 'service') => {
  for (const [k, v] of Object.entries(r))
    expect({ who, k, v }).toEqual({ who, k, v: expect.objectContaining({ status: 200 }) });
};

beforeAll(async () => {
  node = await startRealNode({ log: (l) => process.stderr.write(`${l}\n`), images: nodeImages() });
}, 300_000);

afterAll(async () => {
  if (!stopped) await node?.stop();
});

describe('the chart on a real node', () => {
  it('helm install into a restricted namespace: the operator pod runs both containers, probes passing', async () => {
    await node.kubectl(['create', 'namespace', REL.ns]);
    await node.kubectl(['label', 'namespace', REL.ns, 'pod-security.kubernetes.io/enforce=restricted']);
    const r = await node.helm(['install', REL.name, CHART, '-n', REL.ns, '--set', 'image.pullPolicy=Never']);
    expect(r.stdout).toMatch(/STATUS: deployed/);
    // the router stays unready until a DisaggCluster has a decoder; the operator is ready on its own
    const [pod] = await waitFor(
      'operator container ready, router started',
      async () => {
        const ps = await operatorPods(node, REL);
        const ok =
          ps.length === 1 && ps[0]!.status.containerStatuses?.find((c) => c.name === 'operator')?.ready;
        return ok ? ps : undefined;
      },
      { timeoutMs: 180_000, intervalMs: 1000 },
    );
    expect(pod!.status.containerStatuses!.find((c) => c.name === 'router')!.started).toBe(true);
    for (const c of pod!.status.containerStatuses!)
      expect({ c: c.name, restarts: c.restartCount }).toEqual({ c: c.name, restarts: 0 });
    // the pod runs as the chart says: non-root, read-only root filesystem
    const probe = 'try{require("fs").writeFileSync("/x","")}catch(e){console.log(process.getuid(), e.code)}';
    const id = await node.kubectl([
      'exec',
      '-n',
      REL.ns,
      pod!.metadata.name,
      '-c',
      'router',
      '--',
      'node',
      '-e',
      probe,
    ]);
    expect(id.stdout.trim()).toBe('65532 EROFS');
  });

  it('a sim DisaggCluster: engine pods run as containers; the operator pod becomes 2/2 Ready; helm test passes', async () => {
    await node.kubectl(['apply', '-n', 'default', '-f', '-'], { input: readFileSync(SIM_EXAMPLE, 'utf8') });
    await simReady('2P1D');
    const engines = await pods(node, 'default', 'disagg.dev/cluster=sim-nixl');
    expect(engines).toHaveLength(3);
    for (const p of engines) expect(p.status.podIP).toMatch(/^10\.88\.0\./);
    await rolledOut(node, REL, 1);
    const t = await node.helm(['test', REL.name, '-n', REL.ns, '--timeout', '3m'], { allowFailure: true });
    expect(t.stdout + t.stderr).toMatch(/Phase:\s+Succeeded/);
  });

  it('requests from a client pod to the router Service: direct and DPD, stream and not', async () => {
    await startClientPod(node);
    expect(await requestsFrom(node, REL, { MODEL: 'sim-llama' })).toEqual({
      'direct-json': { status: 200, path: 'direct' },
      'direct-stream': { status: 200, done: true, path: 'direct' },
      'dpd-json': { status: 200, path: 'dpd' },
      'dpd-stream': { status: 200, done: true, path: 'dpd' },
    });
  });

  it('kubectl patch scales the decode pool up and down (drained), requests keep succeeding', async () => {
    await patchSim({ decode: { replicas: 2 } });
    await simReady('2P2D');
    expect(await pods(node, 'default', 'disagg.dev/cluster=sim-nixl,disagg.dev/role=decode')).toHaveLength(2);
    await patchSim({ decode: { replicas: 1 } });
    // while the removed decoder drains, every request still succeeds
    expectAll200(await requestsFrom(node, REL, { MODEL: 'sim-llama', ROUNDS: '5' }));
    await simReady('2P1D');
    await waitFor(
      'one decode pod left',
      async () =>
        (await pods(node, 'default', 'disagg.dev/cluster=sim-nixl,disagg.dev/role=decode')).filter(
          (p) => !p.metadata.deletionTimestamp,
        ).length === 1,
      { timeoutMs: 120_000, intervalMs: 1000 },
    );
  });

  it('replicaCount 2 with leader election: the leader pod deleted, the other takes over, every router routes', async () => {
    const u = await node.helm([
      'upgrade',
      REL.name,
      CHART,
      '-n',
      REL.ns,
      '--reuse-values',
      '--set',
      'replicaCount=2',
      '--set',
      'operator.leaderElection.enabled=true',
    ]);
    expect(u.stdout).toMatch(/STATUS: deployed/);
    await rolledOut(node, REL, 2);
    // the leader-election Lease is named after the release; router membership Leases sit beside it
    const lease = async (): Promise<string> =>
      (
        await node.kubectl(
          ['get', 'lease', REL.fullname, '-n', REL.ns, '-o', 'jsonpath={.spec.holderIdentity}'],
          { allowFailure: true },
        )
      ).stdout.trim();
    const holder = await waitFor('a leader', async () => (await lease()) || undefined, { timeoutMs: 60_000 });
    const leaderPod = (await operatorPods(node, REL)).find((p) => p.metadata.name === holder);
    expect(leaderPod).toBeDefined();
    await node.kubectl(['delete', 'pod', leaderPod!.metadata.name, '-n', REL.ns, '--wait=false']);
    await waitFor(
      'a new leader',
      async () => {
        const h = await lease();
        return h && h !== leaderPod!.metadata.name ? h : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 1000 },
    );
    // a topology change under the new leader reaches every router: the survivor and the replacement
    await patchSim({ prefill: { replicas: 1 } });
    await simReady('1P1D');
    await rolledOut(node, REL, 2);
    for (const p of await operatorPods(node, REL)) {
      expectAll200(
        await requestsFrom(node, REL, { MODEL: 'sim-llama', ROUTER_POD: p.status.podIP! }),
        p.metadata.name,
      );
    }
  });

  it('helm upgrade with a changed value rolls the pods; helm uninstall removes everything but the CRD', async () => {
    const before = new Set((await operatorPods(node, REL)).map((p) => p.metadata.uid));
    await node.helm([
      'upgrade',
      REL.name,
      CHART,
      '-n',
      REL.ns,
      '--reuse-values',
      '--set',
      'router.logLevel=debug',
    ]);
    await rolledOut(node, REL, 2);
    expect((await operatorPods(node, REL)).filter((p) => before.has(p.metadata.uid))).toEqual([]);
    await node.kubectl(['delete', 'disagg', 'sim-nixl', '-n', 'default', '--wait=true', '--timeout=120s']);
    await node.helm(['uninstall', REL.name, '-n', REL.ns, '--wait', '--timeout', '3m']);
    // helm --wait returns once deletion is under way; pods leave after their grace period
    await waitFor(
      'nothing of the release left in its namespace',
      async () =>
        (
          await node.kubectl([
            'get',
            'deploy,rs,pod,svc,sa,role,rolebinding,configmap,pdb,networkpolicy',
            '-n',
            REL.ns,
            '-l',
            `app.kubernetes.io/instance=${REL.name}`,
            '-o',
            'name',
          ])
        ).stdout.trim() === '' &&
        // leader and router-membership Leases carry no release label: none may be left at all
        (await node.kubectl(['get', 'lease', '-n', REL.ns, '-o', 'name'])).stdout.trim() === '',
      { timeoutMs: 120_000, intervalMs: 1000 },
    ).catch(async (e: Error) => {
      throw new Error(
        `${e.message}: ${(await node.kubectl(['get', 'all,lease,sa,cm', '-n', REL.ns, '-o', 'name'])).stdout}`,
      );
    });
    const cluster = await node.kubectl([
      'get',
      'clusterrole,clusterrolebinding',
      '-l',
      `app.kubernetes.io/instance=${REL.name}`,
      '-o',
      'name',
    ]);
    expect(cluster.stdout.trim()).toBe('');
    expect(
      (await node.kubectl(['get', 'crd', 'disaggclusters.disagg.dev', '-o', 'name'])).stdout.trim(),
    ).toBe('customresourcedefinition.apiextensions.k8s.io/disaggclusters.disagg.dev');
  });

  it('stop() leaves no process, mount, network namespace, interface or cgroup behind', async () => {
    const netns = readlinkSync(`/proc/${node.holderPid}/ns/net`);
    const hostLinks = execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' });
    expect(hostLinks).not.toMatch(/cni-disagg0|veth/); // the node's bridge and veths were never on the host
    stopped = true;
    await node.stop();
    expect(leftovers(node.dir, netns)).toEqual([]);
    expect(execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' })).toBe(hostLinks);
  });
});
