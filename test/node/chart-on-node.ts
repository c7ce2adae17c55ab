// Steps shared by the real-node e2e test and `make demo NODE=real`: the chart's pods, a
// DisaggCluster's status, a client pod and the requests it sends to the router Service.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../cluster/bins.js';
import { waitFor } from '../cluster/wait.js';
import type { RealNode } from './real-node.js';

export const CHART = join(REPO_ROOT, 'charts', 'disagg-operator');
export const SIM_EXAMPLE = join(REPO_ROOT, 'docs', 'examples', 'sim-nixl-2p1d.yaml');
export const SIM_IMAGE = 'docker.io/disagg-dev/engine-sim:dev';

/** The images the node imports: pause, the simulator, the project (built by `make node-images`). */
export function nodeImages(): string[] {
  const dir = execFileSync(
    'bash',
    [join(REPO_ROOT, 'test', 'node', 'images', 'build-images.sh'), '--print-dir'],
    {
      encoding: 'utf8',
    },
  ).trim();
  return ['pause', 'engine-sim', 'disagg-operator'].map((i) => join(dir, `${i}.tar`));
}

export interface PodJson {
  metadata: { name: string; uid: string; labels?: Record<string, string>; deletionTimestamp?: string };
  status: {
    phase: string;
    podIP?: string;
    containerStatuses?: Array<{ name: string; ready: boolean; restartCount: number; started?: boolean }>;
  };
}

export async function pods(node: RealNode, ns: string, selector: string): Promise<PodJson[]> {
  const args = ['get', 'pods', '-n', ns, '-o', 'json', ...(selector ? ['-l', selector] : [])];
  return (JSON.parse((await node.kubectl(args)).stdout) as { items: PodJson[] }).items;
}

export const allReady = (p: PodJson): boolean =>
  !p.metadata.deletionTimestamp &&
  p.status.phase === 'Running' &&
  (p.status.containerStatuses ?? []).every((c) => c.ready);

export interface Release {
  name: string;
  ns: string;
  /** The chart's fullname: Deployment, Services and the leader Lease are called so. */
  fullname: string;
}

export const release = (name: string, ns: string): Release => ({
  name,
  ns,
  fullname: `${name}-disagg-operator`,
});

export const operatorPods = (node: RealNode, r: Release): Promise<PodJson[]> =>
  pods(node, r.ns, `app.kubernetes.io/instance=${r.name},app.kubernetes.io/name=disagg-operator`);

/** The chart's Deployment rolled out: `replicas` pods of the newest template, all Ready, no old ones. */
export async function rolledOut(node: RealNode, r: Release, replicas: number): Promise<void> {
  await node.kubectl(['rollout', 'status', `deployment/${r.fullname}`, '-n', r.ns, '--timeout=300s'], {
    timeoutMs: 320_000,
  });
  await waitFor(
    `${replicas} operator pods, all 2/2 Ready`,
    async () => {
      const ps = await operatorPods(node, r);
      return ps.length === replicas && ps.every(allReady);
    },
    { timeoutMs: 120_000, intervalMs: 1000 },
  );
}

export async function disaggReady(
  node: RealNode,
  ns: string,
  name: string,
  topology: string,
): Promise<boolean> {
  const r = await node.kubectl(['get', 'disagg', name, '-n', ns, '-o', 'json'], { allowFailure: true });
  if (r.code !== 0) return false;
  const c = JSON.parse(r.stdout) as {
    status?: { topology?: string; conditions?: Array<{ type: string; status: string }> };
  };
  return (
    c.status?.topology === topology &&
    c.status.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') === true
  );
}

/** A long-running pod of the simulator image that `requestsFrom` execs the client script in. */
export async function startClientPod(node: RealNode, ns = 'default'): Promise<void> {
  const client = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'client', namespace: ns },
    spec: {
      containers: [
        {
          name: 'client',
          image: SIM_IMAGE,
          imagePullPolicy: 'Never',
          command: ['node', '-e', 'setInterval(() => {}, 1 << 30)'],
        },
      ],
    },
  };
  await node.kubectl(['apply', '-f', '-'], { input: JSON.stringify(client) });
  await waitFor(
    'client pod Running',
    async () => (await pods(node, ns, '')).some((p) => p.metadata.name === 'client' && allReady(p)),
    { timeoutMs: 120_000, intervalMs: 500 },
  );
}

export interface Outcome {
  status: number;
  done?: boolean;
  path?: string;
  body?: string;
}

const CLIENT = readFileSync(join(REPO_ROOT, 'test', 'node', 'client-requests.mjs'), 'utf8');

/** Runs client-requests.mjs in the client pod against the release's Service (or ROUTER_POD). */
export async function requestsFrom(
  node: RealNode,
  r: Release,
  env: Record<string, string>,
  ns = 'default',
): Promise<Record<string, Outcome>> {
  const ip = (await node.kubectl(['get', 'svc', r.fullname, '-n', r.ns, '-o', 'jsonpath={.spec.clusterIP}']))
    .stdout;
  const vars = Object.entries({ ROUTER: `http://${ip}:8000`, ...env }).map(([k, v]) => `${k}=${v}`);
  const out = await node.kubectl([
    'exec',
    'client',
    '-n',
    ns,
    '--',
    'env',
    ...vars,
    'node',
    '--input-type=module',
    '-e',
    CLIENT,
  ]);
  return JSON.parse(out.stdout.trim().split('\n').at(-1)!) as Record<string, Outcome>;
}
