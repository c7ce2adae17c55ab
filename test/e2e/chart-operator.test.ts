// The chart and the operator together on the full-tier control plane: `helm install` creates the CRD
// and the RBAC objects; the operator and router then run as local processes with a token of the
// chart-installed ServiceAccount (so only the chart's RBAC, enforced by the API server, lets them
// work) and the chart's own operator flags, and reconcile docs/examples/sim-nixl-2p1d.yaml until a
// long request is served prefill -> decode by the simulated engines.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { REPO_ROOT } from '../cluster/bins.js';
import { startControlPlane, type Cluster } from '../cluster/control-plane.js';
import { freePorts } from '../cluster/ports.js';
import { ProcessRegistry, type ManagedProcess } from '../cluster/processes.js';
import { waitFor } from '../cluster/wait.js';
import { CHART_DIR, HelmSandbox } from '../integration/chart-helm.js';
import {
  complete,
  condition,
  exampleDocs,
  isReady,
  promptOfTokens,
  routerConfig,
  simRequests,
  toApplyInput,
  waitForStatus,
  type RouterProc,
} from '../../operator/test/support/e2e-env.js';

jest.setTimeout(600_000);

const NS = 'disagg-system';
const RELEASE = 'disagg';
const SA = `${RELEASE}-disagg-operator`; // the chart's fullname: ServiceAccount, Lease id
const SERVING = 'serving';
const REPLICA = 'chart-op-0';

const tsxNode = (script: string): string[] => ['--import', 'tsx', join(REPO_ROOT, script)];
const tail = (path: string): string => {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-30).join('\n');
  } catch {
    return '(no log)';
  }
};

describe('the operator under the chart-installed ServiceAccount', () => {
  let cluster: Cluster;
  let registry: ProcessRegistry;
  let saKubeconfig: string;
  let router: RouterProc;
  let operator: ManagedProcess;
  let operatorLog: string;
  let installed = false;
  const helm = new HelmSandbox();
  const helmKube = (args: string[]) => helm.run([...args, '--kubeconfig', cluster.kubeconfigPath]);

  const engineUrl = (pod: string): string => {
    const e = cluster.kubelet!.engines().find((x) => x.name === pod && x.namespace === SERVING);
    if (!e) throw new Error(`no engine for pod ${pod}`);
    return e.url;
  };
  const podsOf = async (role: string): Promise<string[]> => {
    const out = await cluster.kubectl([
      'get',
      'pods',
      '-n',
      SERVING,
      '-l',
      `disagg.dev/cluster=sim-nixl,disagg.dev/role=${role}`,
      '-o',
      'jsonpath={.items[*].metadata.name}',
    ]);
    return out.stdout.split(/\s+/).filter(Boolean).sort();
  };

  /** The router as the chart's router container runs it, on loopback with an admin socket in workDir. */
  const startRouter = async (workDir: string): Promise<RouterProc> => {
    const [port, kvNotifyPort] = (await freePorts(2)) as [number, number];
    const adminSocket = join(workDir, `${REPLICA}.sock`);
    let listening = false;
    const proc = registry.spawn(`router-${REPLICA}`, process.execPath, {
      args: [
        ...tsxNode('router/src/main.ts'),
        '--host=127.0.0.1',
        `--port=${port}`,
        `--admin-socket=${adminSocket}`,
        `--replica-id=${REPLICA}`,
        '--kv-notify-host=127.0.0.1',
        `--kv-notify-port=${kvNotifyPort}`,
        '--engine-stats-interval-ms=500',
      ],
      cwd: REPO_ROOT,
      logPath: join(workDir, 'router.log'),
      onStdoutLine: (line) => {
        if (line.includes('"router listening"')) listening = true;
      },
    });
    await waitFor('router listening', () => listening || undefined, {
      timeoutMs: 60_000,
      abort: proc.exited.then((c) => {
        throw new Error(`router exited (${c}): ${tail(proc.logPath)}`);
      }),
    });
    const self: RouterProc = {
      replicaId: REPLICA,
      url: `http://127.0.0.1:${port}`,
      port,
      adminSocket,
      kvNotifyPort,
      kvNotifyAddress: `tcp://127.0.0.1:${kvNotifyPort}`,
      proc,
      restart: () => Promise.reject(new Error('not restarted in this test')),
    };
    return self;
  };

  beforeAll(async () => {
    cluster = await startControlPlane({ tier: 'full', kubelet: { readinessPeriodMs: 500 } });
    const workDir = mkdtempSync(join(tmpdir(), 'chart-operator-e2e-'));
    registry = new ProcessRegistry(workDir, process.env.DISAGG_CLUSTER_KEEP !== '1');
    // replicaCount=0: the chart's own pod (the operator image) is not run; the local processes are it.
    const r = await helmKube([
      'install',
      RELEASE,
      CHART_DIR,
      '--namespace',
      NS,
      '--create-namespace',
      '--set',
      'replicaCount=0',
    ]);
    if (r.code !== 0) throw new Error(`helm install failed: ${r.stderr}`);
    installed = true;
    await cluster.kubectl([
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      'crd/disaggclusters.disagg.dev',
    ]);
    saKubeconfig = await cluster.serviceAccountKubeconfig(NS, SA);
    await cluster.kubectl(['create', 'namespace', SERVING]);

    router = await startRouter(workDir);
    operatorLog = join(workDir, 'operator.log');
    let up = false;
    // The chart's operator args (values.yaml defaults), with loopback addresses and free ports.
    operator = registry.spawn(`operator-${REPLICA}`, process.execPath, {
      args: [
        ...tsxNode('operator/src/main.ts'),
        `--kubeconfig=${saKubeconfig}`,
        `--router-admin-socket=${router.adminSocket}`,
        '--resync-period=30s',
        '--workers=2',
        `--replica-id=${REPLICA}`,
        `--kv-notify-address=${router.kvNotifyAddress}`,
        '--leader-elect=true',
        `--leader-election-namespace=${NS}`,
        `--leader-election-id=${SA}`,
        '--leader-election-lease-duration=15s',
        '--leader-election-renew-deadline=10s',
        '--leader-election-retry-period=2s',
        '--bind-address=127.0.0.1',
        '--metrics-port=0',
        '--health-port=0',
        '--log-level=info',
      ],
      cwd: REPO_ROOT,
      logPath: operatorLog,
      onStdoutLine: (line) => {
        if (line.includes('"operator listening"')) up = true;
      },
    });
    await waitFor('operator listening', () => up || undefined, {
      timeoutMs: 60_000,
      abort: operator.exited.then((c) => {
        throw new Error(`operator exited (${c}): ${tail(operatorLog)}`);
      }),
    });
  });

  afterAll(async () => {
    await registry?.close(5000);
    if (installed) {
      const r = await helmKube(['uninstall', RELEASE, '--namespace', NS]);
      if (r.code !== 0) console.error(`helm uninstall failed: ${r.stderr}`);
    }
    await cluster?.stop();
    helm.dispose();
  });

  test('the operator acts as the chart ServiceAccount, bound by the chart ClusterRole', async () => {
    const who = await cluster.kubectl(['--kubeconfig', saKubeconfig, 'auth', 'whoami', '-o', 'json']);
    expect(
      (JSON.parse(who.stdout) as { status: { userInfo: { username: string } } }).status.userInfo,
    ).toEqual(expect.objectContaining({ username: `system:serviceaccount:${NS}:${SA}` }));
    const binding = JSON.parse(
      (await cluster.kubectl(['get', 'clusterrolebinding', SA, '-o', 'json'])).stdout,
    ) as { roleRef: { name: string }; subjects: unknown[] };
    expect(binding.roleRef.name).toBe(SA);
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: SA, namespace: NS }]);
    // The chart's Deployment exists but runs nothing here (replicaCount=0).
    const deploy = await cluster.kubectl(['get', 'deploy', SA, '-n', NS, '-o', 'jsonpath={.spec.replicas}']);
    expect(deploy.stdout).toBe('0');
  });

  test('it wins the Lease the chart names in the release namespace', async () => {
    const holder = await waitFor(
      'leader lease held',
      async () => {
        const r = await cluster.kubectl(
          ['get', 'lease', SA, '-n', NS, '-o', 'jsonpath={.spec.holderIdentity}'],
          { allowFailure: true },
        );
        return r.code === 0 && r.stdout ? r.stdout : undefined;
      },
      { timeoutMs: 60_000 },
    );
    expect(holder).toBe(REPLICA);
  });

  test('docs/examples/sim-nixl-2p1d.yaml becomes Ready 2P1D with owned Deployments', async () => {
    await cluster.kubectl(['apply', '-n', SERVING, '-f', '-'], {
      input: toApplyInput(exampleDocs('sim-nixl-2p1d.yaml')),
    });
    const c = await waitForStatus(
      cluster,
      SERVING,
      'sim-nixl',
      'Ready 2P1D',
      (x) => isReady(x, '2P1D', 1),
      180_000,
    );
    expect(c.status).toMatchObject({
      topology: '2P1D',
      prefill: { replicas: 2, readyReplicas: 2, routableEndpoints: 2 },
      decode: { replicas: 1, readyReplicas: 1, routableEndpoints: 1 },
    });
    expect(condition(c, 'RouterConfigured')).toMatchObject({ status: 'True' });
    for (const role of ['prefill', 'decode']) {
      const d = JSON.parse(
        (await cluster.kubectl(['get', 'deploy', '-n', SERVING, `sim-nixl-${role}`, '-o', 'json'])).stdout,
      ) as {
        metadata: {
          ownerReferences?: Array<{ kind: string; name: string; uid: string; controller: boolean }>;
        };
      };
      expect(d.metadata.ownerReferences).toEqual([
        expect.objectContaining({
          kind: 'DisaggCluster',
          name: 'sim-nixl',
          uid: c.metadata!.uid,
          controller: true,
        }),
      ]);
    }
  });

  test("the router's /admin/config holds the cluster with 2 prefill and 1 decode endpoints", async () => {
    const cfg = await waitFor(
      'router configured with sim-nixl',
      async () => {
        const v = await routerConfig(router);
        const c = v?.config.clusters.find((x) => x.name === `${SERVING}/sim-nixl`);
        return c && c.prefill.endpoints.length === 2 && c.decode.endpoints.length === 1 ? c : undefined;
      },
      { timeoutMs: 30_000 },
    );
    const urls = [...cfg.prefill.endpoints, ...cfg.decode.endpoints].map((e) => e.url);
    const engines = [...(await podsOf('prefill')), ...(await podsOf('decode'))].map(engineUrl);
    expect(urls.sort()).toEqual(engines.sort());
  });

  test('a long request through the router is served prefill -> decode (in the simulators’ own logs)', async () => {
    const prefill = await podsOf('prefill');
    const [decode] = await podsOf('decode');
    const count = async () => ({
      p: await Promise.all(prefill.map((p) => simRequests(engineUrl(p)))),
      d: await simRequests(engineUrl(decode!)),
    });
    const before = await count();
    const r = await complete(router.url, 'sim-llama', promptOfTokens(400));
    expect({ status: r.status, body: r.status === 200 ? '' : r.body }).toEqual({ status: 200, body: '' });
    const after = await count();
    const newPrefill = after.p.flatMap((log, i) => log.slice(before.p[i]!.length));
    expect(newPrefill.map((x) => [x.leg, x.status])).toEqual([['prefill', 200]]);
    expect(after.d.slice(before.d.length).map((x) => [x.leg, x.kvSource, x.status])).toEqual([
      ['decode', 'nixl', 200],
    ]);
    // The operator never hit a Forbidden: the chart's rules are all it needed.
    expect(readFileSync(operatorLog, 'utf8')).not.toMatch(/forbidden/i);
  });
});
