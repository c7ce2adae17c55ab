// The full tier: Deployments become real, serving processes on loopback pod IPs, and the
// loopback kubelet follows the pod lifecycle (scale down, delete, engine crash and hang).
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { AppsV1Api, CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { existsSync } from 'node:fs';
import { startControlPlane, type Cluster } from './control-plane.js';
import { ENGINE_ANNOTATION } from './loopback-kubelet.js';
import { isAlive } from './processes.js';
import { waitFor } from './wait.js';

jest.setTimeout(240_000);

const NS = 'kubelet-test';
const HTTP_PORT = 8123;
const WAIT = { timeoutMs: 90_000, intervalMs: 250 };

function isReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  return { status: res.status, body: await res.text() };
}

async function answers(url: string): Promise<boolean> {
  return get(url).then(
    (r) => r.status === 200,
    () => false,
  );
}

describe('loopback kubelet, full tier', () => {
  let cluster: Cluster;
  let core: CoreV1Api;
  let apps: AppsV1Api;

  const pods = async (): Promise<V1Pod[]> =>
    (await core.listNamespacedPod({ namespace: NS, labelSelector: 'app=tiny' })).items;
  const livePods = async (): Promise<V1Pod[]> => (await pods()).filter((p) => !p.metadata?.deletionTimestamp);
  const readyPods = (n: number): Promise<V1Pod[]> =>
    waitFor(
      `${n} Running Ready pods`,
      async () => {
        const all = await pods();
        const ok = all.filter(
          (p) => p.status?.phase === 'Running' && isReady(p) && !p.metadata?.deletionTimestamp,
        );
        return all.length === n && ok.length === n ? ok : undefined;
      },
      WAIT,
    );
  const pod = async (name: string): Promise<V1Pod> => core.readNamespacedPod({ name, namespace: NS });

  beforeAll(async () => {
    cluster = await startControlPlane({
      tier: 'full',
      nodes: 2,
      kubelet: { restartBackoffMs: 500 }, // default engine: the simulator; "tiny" pods pick the fixture
    });
    core = cluster.kubeConfig.makeApiClient(CoreV1Api);
    apps = cluster.kubeConfig.makeApiClient(AppsV1Api);
    await core.createNamespace({ body: { metadata: { name: NS } } });
    await apps.createNamespacedDeployment({
      namespace: NS,
      body: {
        metadata: { name: 'tiny' },
        spec: {
          replicas: 3,
          selector: { matchLabels: { app: 'tiny' } },
          template: {
            metadata: {
              labels: { app: 'tiny' },
              annotations: { 'disagg.dev/http-port': String(HTTP_PORT), [ENGINE_ANNOTATION]: 'tiny' },
            },
            spec: {
              terminationGracePeriodSeconds: 5,
              containers: [
                {
                  name: 'engine',
                  image: 'vllm/vllm-openai:latest',
                  args: ['--model', 'tiny-model', '--served-as', '$(POD_NAME)'],
                  env: [
                    { name: 'ROLE', value: 'decode' },
                    { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
                    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                    { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
                  ],
                },
              ],
            },
          },
        },
      },
    });
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  test('nodes are Ready with a loopback pod CIDR', async () => {
    const nodes = (await core.listNode()).items;
    expect(nodes.map((n) => n.metadata?.name).sort()).toEqual(['loopback-0', 'loopback-1']);
    for (const n of nodes) {
      expect(n.spec?.podCIDR).toMatch(/^127\.\d+\.0\.0\/16$/);
      expect(n.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    }
    const lease = await cluster.kubectl([
      '-n',
      'kube-node-lease',
      'get',
      'lease',
      'loopback-0',
      '-o',
      'json',
    ]);
    expect(JSON.parse(lease.stdout).spec.holderIdentity).toBe('loopback-0');
  });

  test('a Deployment of 3 becomes 3 Running Ready pods whose engines answer on their pod IPs', async () => {
    const ready = await readyPods(3);
    const ips = ready.map((p) => p.status?.podIP ?? '');
    expect(new Set(ips).size).toBe(3);
    const cidrs = new Map(
      (await core.listNode()).items.map((n) => [n.metadata?.name, n.spec?.podCIDR ?? '']),
    );
    for (const p of ready) {
      const ip = p.status?.podIP ?? '';
      // inside the /16 of the node it runs on
      expect(ip.split('.').slice(0, 2)).toEqual(cidrs.get(p.spec?.nodeName)?.split('.').slice(0, 2));
      expect(p.status?.podIPs).toEqual([{ ip }]);
      expect(p.status?.hostIP).toBe('127.0.0.1');
      expect(p.status?.containerStatuses?.[0]).toMatchObject({ name: 'engine', ready: true, started: true });
      expect(await get(`http://${ip}:${HTTP_PORT}/health`)).toEqual({ status: 200, body: 'ok' });
      // the container's args and env, resolved like a kubelet, plus --host/--port
      const info = JSON.parse((await get(`http://${ip}:${HTTP_PORT}/info`)).body) as {
        argv: string[];
        env: Record<string, string>;
      };
      const name = p.metadata?.name ?? '';
      expect(info.argv).toEqual([
        '--model',
        'tiny-model',
        '--served-as',
        name,
        '--host',
        ip,
        '--port',
        String(HTTP_PORT),
      ]);
      expect(info.env).toMatchObject({ ROLE: 'decode', POD_IP: ip, POD_NAME: name, POD_NAMESPACE: NS });
    }
    const engines = cluster.kubelet?.engines() ?? [];
    expect(engines.filter((e) => e.namespace === NS && e.ready).length).toBe(3);
  });

  test('an engine killed turns its pod NotReady, then it restarts and the pod is Ready again', async () => {
    const [victim] = await readyPods(3);
    const name = victim.metadata?.name ?? '';
    const url = `http://${victim.status?.podIP}:${HTTP_PORT}/health`;
    cluster.kubelet?.killEngine(name, NS);
    await waitFor('pod NotReady after the kill', async () => !isReady(await pod(name)), WAIT);
    const back = await waitFor(
      'pod Ready again after the restart',
      async () => {
        const p = await pod(name);
        return isReady(p) ? p : undefined;
      },
      WAIT,
    );
    expect(back.status?.containerStatuses?.[0].restartCount).toBe(1);
    expect(back.status?.containerStatuses?.[0].lastState?.terminated?.reason).toBe('Error');
    expect(back.status?.podIP).toBe(victim.status?.podIP);
    expect(await answers(url)).toBe(true);
  });

  test('a hung engine turns its pod NotReady until resumed', async () => {
    const [victim] = await readyPods(3);
    const name = victim.metadata?.name ?? '';
    cluster.kubelet?.hangEngine(name, NS);
    await waitFor('pod NotReady while hung', async () => !isReady(await pod(name)), WAIT);
    expect(await answers(`http://${victim.status?.podIP}:${HTTP_PORT}/health`)).toBe(false);
    cluster.kubelet?.resumeEngine(name, NS);
    await waitFor('pod Ready after resume', async () => isReady(await pod(name)), WAIT);
  });

  test('deleting a pod stops its engine and the ReplicaSet replaces it', async () => {
    const before = await readyPods(3);
    const victim = before[0];
    const name = victim.metadata?.name ?? '';
    const engine = cluster.kubelet?.engines().find((e) => e.name === name);
    expect(engine?.pid).toBeDefined();
    await core.deleteNamespacedPod({ name, namespace: NS });
    await waitFor(
      'the deleted pod to be gone',
      async () => !(await pods()).some((p) => p.metadata?.name === name),
      WAIT,
    );
    expect(isAlive(engine?.pid ?? 0)).toBe(false);
    const after = await readyPods(3);
    const names = after.map((p) => p.metadata?.name);
    expect(names).not.toContain(name);
    for (const p of after) expect(await answers(`http://${p.status?.podIP}:${HTTP_PORT}/health`)).toBe(true);
  });

  test('scaling to 1 stops two engines', async () => {
    const before = await readyPods(3);
    const enginesBefore = cluster.kubelet?.engines().filter((e) => e.namespace === NS) ?? [];
    await cluster.kubectl(['-n', NS, 'scale', 'deployment/tiny', '--replicas=1']);
    const [survivor] = await readyPods(1);
    expect((await livePods()).length).toBe(1);
    const stopped = enginesBefore.filter((e) => e.name !== survivor.metadata?.name);
    expect(stopped.length).toBe(2);
    for (const e of stopped) {
      expect(isAlive(e.pid ?? 0)).toBe(false);
      expect(await answers(`${e.url}/health`)).toBe(false);
    }
    expect(before.length).toBe(3);
    expect(await answers(`http://${survivor.status?.podIP}:${HTTP_PORT}/health`)).toBe(true);
  });

  test('pods without an engine annotation run the engine simulator, which serves the model', async () => {
    await apps.createNamespacedDeployment({
      namespace: NS,
      body: {
        metadata: { name: 'sim' },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: 'sim' } },
          template: {
            metadata: { labels: { app: 'sim', 'disagg.dev/role': 'decode' } },
            spec: {
              containers: [
                {
                  name: 'vllm',
                  image: 'vllm/vllm-openai:latest',
                  args: ['--model', 'harness-model', '--role', 'decode'],
                  ports: [{ name: 'http', containerPort: 8000 }],
                },
              ],
            },
          },
        },
      },
    });
    const simPods = await waitFor(
      '2 Ready simulator pods',
      async () => {
        const list = (await core.listNamespacedPod({ namespace: NS, labelSelector: 'app=sim' })).items;
        return list.length === 2 && list.every(isReady) ? list : undefined;
      },
      WAIT,
    );
    for (const p of simPods) {
      const base = `http://${p.status?.podIP}:8000`;
      const models = JSON.parse((await get(`${base}/v1/models`)).body) as { data: { id: string }[] };
      expect(models.data.map((m) => m.id)).toContain('harness-model');
      const res = await fetch(`${base}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'harness-model', prompt: 'hello', max_tokens: 3 }),
        signal: AbortSignal.timeout(10_000),
      });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { choices: unknown[] }).choices.length).toBe(1);
    }
  });

  test('a readiness change during an API server outage reaches the API once it is back', async () => {
    const [victim] = await readyPods(1);
    const name = victim.metadata?.name ?? '';
    const restarted = cluster.restartApiServer({ downMs: 6000 });
    await waitFor(
      'kube-apiserver to be down',
      () => cluster.kubectl(['get', '--raw=/readyz'], { allowFailure: true }).then((r) => r.code !== 0),
      WAIT,
    );
    cluster.kubelet?.hangEngine(name, NS);
    await waitFor(
      'the kubelet to see the hung engine',
      () => cluster.kubelet?.engines().some((e) => e.name === name && !e.ready),
      WAIT,
    );
    await restarted;
    await waitFor('pod NotReady in the API after the outage', async () => !isReady(await pod(name)), WAIT);
    cluster.kubelet?.resumeEngine(name, NS);
    await waitFor('pod Ready after resume', async () => isReady(await pod(name)), WAIT);
  });

  test('stop() ends the control plane and every engine and removes the work dir', async () => {
    const pids = cluster.processes().map((p) => p.pid);
    const names = cluster.processes().map((p) => p.name);
    expect(names).toEqual(
      expect.arrayContaining(['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler']),
    );
    expect(names.some((n) => n.startsWith(`engine ${NS}/`))).toBe(true);
    await cluster.stop();
    expect(pids.filter(isAlive)).toEqual([]);
    expect(existsSync(cluster.workDir)).toBe(false);
  });
});
