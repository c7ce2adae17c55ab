// Shared set-up of the operator end-to-end tests (test/e2e/operator-*.test.ts): a full-tier control
// plane with the loopback kubelet, the CRD, the operator's ServiceAccount bound to exactly the chart's
// ClusterRole rules, and real router and operator processes (the operator uses the ServiceAccount
// token, never admin, so a missing RBAC verb fails a test).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { REPO_ROOT } from '../../../test/cluster/bins.js';
import {
  startControlPlane,
  type Cluster,
  type ControlPlaneOptions,
} from '../../../test/cluster/control-plane.js';
import { freePorts } from '../../../test/cluster/ports.js';
import { ProcessRegistry, type ManagedProcess } from '../../../test/cluster/processes.js';
import { waitFor } from '../../../test/cluster/wait.js';
import type { Condition, DisaggCluster } from '../../src/api/types.js';

export const OPERATOR_NS = 'disagg-system';
export const OPERATOR_SA = 'disagg-operator';
export const CRD_PATH = join(REPO_ROOT, 'crds', 'disagg.dev_disaggclusters.yaml');
export const RULES_PATH = join(REPO_ROOT, 'charts', 'disagg-operator', 'files', 'clusterrole-rules.yaml');
export const EXAMPLES = join(REPO_ROOT, 'docs', 'examples');

export interface RouterProc {
  replicaId: string;
  url: string;
  port: number;
  adminSocket: string;
  kvNotifyPort: number;
  kvNotifyAddress: string;
  proc: ManagedProcess;
  /** Starts it again with the same ports and socket (after a crash). */
  restart(): Promise<RouterProc>;
}

export interface OperatorProc {
  replicaId: string;
  proc: ManagedProcess;
  healthPort: number;
  metricsPort: number;
  metrics(): Promise<string>;
  logs(): string;
}

export interface E2eEnv {
  cluster: Cluster;
  workDir: string;
  saKubeconfig: string;
  registry: ProcessRegistry;
  startRouter(replicaId: string, ports?: { port: number; kvNotifyPort: number }): Promise<RouterProc>;
  startOperator(replicaId: string, router: RouterProc, extraArgs?: string[]): Promise<OperatorProc>;
  stop(): Promise<void>;
}

const tsxNode = (script: string): string[] => ['--import', 'tsx', join(REPO_ROOT, script)];

export async function startE2eEnv(opts: Partial<ControlPlaneOptions> = {}): Promise<E2eEnv> {
  const cluster = await startControlPlane({
    tier: 'full',
    ...opts,
    kubelet: { readinessPeriodMs: 500, ...opts.kubelet },
  });
  const workDir = mkdtempSync(join(tmpdir(), 'operator-e2e-'));
  const registry = new ProcessRegistry(workDir, process.env.DISAGG_CLUSTER_KEEP !== '1');
  try {
    await cluster.kubectl(['apply', '--server-side', '-f', CRD_PATH]);
    await cluster.kubectl([
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      'crd/disaggclusters.disagg.dev',
    ]);
    await cluster.kubectl(['apply', '-f', '-'], { input: rbacManifests() });
    const saKubeconfig = await cluster.serviceAccountKubeconfig(OPERATOR_NS, OPERATOR_SA);

    const startRouter = async (
      replicaId: string,
      fixed?: { port: number; kvNotifyPort: number },
    ): Promise<RouterProc> => {
      const [port, kvNotifyPort] = fixed ? [fixed.port, fixed.kvNotifyPort] : await freePorts(2);
      const adminSocket = join(workDir, `${replicaId}.sock`);
      let listening!: () => void;
      const ready = new Promise<void>((r) => (listening = r));
      const proc = registry.spawn(`router-${replicaId}`, process.execPath, {
        args: [
          ...tsxNode('router/src/main.ts'),
          '--host=127.0.0.1',
          `--port=${port}`,
          `--admin-socket=${adminSocket}`,
          `--replica-id=${replicaId}`,
          '--kv-notify-host=127.0.0.1',
          `--kv-notify-port=${kvNotifyPort}`,
          '--engine-stats-interval-ms=500',
        ],
        cwd: REPO_ROOT,
        logPath: join(workDir, `router-${replicaId}.log`),
        onStdoutLine: (line) => {
          if (line.includes('"router listening"')) listening();
        },
      });
      await waitFor(
        `router ${replicaId} listening`,
        async () => await Promise.race([ready.then(() => true), sleepFalse(100)]),
        {
          timeoutMs: 60_000,
          abort: proc.exited.then((c) => {
            throw new Error(`router ${replicaId} exited (${c}): ${tail(proc.logPath)}`);
          }),
        },
      );
      const self: RouterProc = {
        replicaId,
        url: `http://127.0.0.1:${port}`,
        port,
        adminSocket,
        kvNotifyPort,
        kvNotifyAddress: `tcp://127.0.0.1:${kvNotifyPort}`,
        proc,
        restart: () => startRouter(replicaId, { port, kvNotifyPort }),
      };
      return self;
    };

    const startOperator = async (
      replicaId: string,
      router: RouterProc,
      extraArgs: string[] = [],
    ): Promise<OperatorProc> => {
      let ports: { healthPort: number; metricsPort: number } | undefined;
      const logPath = join(workDir, `operator-${replicaId}.log`);
      const proc = registry.spawn(`operator-${replicaId}`, process.execPath, {
        args: [
          ...tsxNode('operator/src/main.ts'),
          `--kubeconfig=${saKubeconfig}`,
          `--router-admin-socket=${router.adminSocket}`,
          `--replica-id=${replicaId}`,
          `--kv-notify-address=${router.kvNotifyAddress}`,
          `--leader-election-namespace=${OPERATOR_NS}`,
          '--bind-address=127.0.0.1',
          '--metrics-port=0',
          '--health-port=0',
          '--resync-period=10s',
          ...extraArgs,
        ],
        cwd: REPO_ROOT,
        logPath,
        onStdoutLine: (line) => {
          if (line.includes('"operator listening"')) ports = JSON.parse(line) as typeof ports;
        },
      });
      const p = await waitFor(`operator ${replicaId} listening`, () => ports, {
        timeoutMs: 60_000,
        abort: proc.exited.then((c) => {
          throw new Error(`operator ${replicaId} exited (${c}): ${tail(logPath)}`);
        }),
      });
      return {
        replicaId,
        proc,
        healthPort: p.healthPort,
        metricsPort: p.metricsPort,
        metrics: async () => (await fetch(`http://127.0.0.1:${p.metricsPort}/metrics`)).text(),
        logs: () => readFileSync(logPath, 'utf8'),
      };
    };

    return {
      cluster,
      workDir,
      saKubeconfig,
      registry,
      startRouter,
      startOperator,
      stop: async () => {
        await registry.close(5000);
        await cluster.stop();
      },
    };
  } catch (err) {
    await registry.close(1000);
    await cluster.stop();
    throw err;
  }
}

function sleepFalse(ms: number): Promise<false> {
  return new Promise((r) => setTimeout(() => r(false), ms));
}

function tail(path: string, lines = 30): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Namespace, ServiceAccount, ClusterRole from the chart's rules file, and the binding. */
export function rbacManifests(): string {
  const rules = parseYaml(readFileSync(RULES_PATH, 'utf8')) as unknown[];
  const docs = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: OPERATOR_NS } },
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: OPERATOR_SA, namespace: OPERATOR_NS } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'disagg-operator-e2e' },
      rules,
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'disagg-operator-e2e' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'disagg-operator-e2e' },
      subjects: [{ kind: 'ServiceAccount', name: OPERATOR_SA, namespace: OPERATOR_NS }],
    },
  ];
  return docs.map((d) => JSON.stringify(d)).join('\n---\n');
}

/** The documents of an example manifest, optionally edited before they are applied. */
export function exampleDocs(file: string): Array<Record<string, unknown>> {
  return parseAllDocuments(readFileSync(join(EXAMPLES, file), 'utf8'))
    .map((d) => d.toJS() as Record<string, unknown> | null)
    .filter((d): d is Record<string, unknown> => d !== null);
}

export const toApplyInput = (docs: unknown[]): string => docs.map((d) => JSON.stringify(d)).join('\n---\n');

export async function getDisagg(
  cluster: Cluster,
  ns: string,
  name: string,
): Promise<DisaggCluster | undefined> {
  const r = await cluster.kubectl(['get', 'disagg', name, '-n', ns, '-o', 'json'], { allowFailure: true });
  return r.code === 0 ? (JSON.parse(r.stdout) as DisaggCluster) : undefined;
}

export const condition = (c: DisaggCluster | undefined, type: string): Condition | undefined =>
  c?.status?.conditions?.find((x) => x.type === type);

/** Waits until the cluster's status satisfies check; the last status is in the timeout error. */
export async function waitForStatus(
  cluster: Cluster,
  ns: string,
  name: string,
  what: string,
  check: (c: DisaggCluster) => boolean,
  timeoutMs = 90_000,
): Promise<DisaggCluster> {
  let last: DisaggCluster | undefined;
  try {
    return await waitFor(
      `${ns}/${name}: ${what}`,
      async () => {
        last = await getDisagg(cluster, ns, name);
        return last && check(last) ? last : undefined;
      },
      { timeoutMs, intervalMs: 300 },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\nlast status: ${JSON.stringify(last?.status)}`);
  }
}

export const isReady = (c: DisaggCluster, topology: string, generation?: number): boolean =>
  condition(c, 'Ready')?.status === 'True' &&
  c.status?.topology === topology &&
  (generation === undefined || c.status?.observedGeneration === generation);

export interface RouterConfigView {
  hash: string;
  config: {
    clusters: Array<{
      name: string;
      prefill: { endpoints: Array<{ id: string; url: string }> };
      decode: { endpoints: Array<{ id: string; url: string }> };
    }>;
    peers: Array<{ id: string; notifyAddress: string }>;
  };
}

/** GET /admin/config over the router's Unix socket. */
export async function routerConfig(router: RouterProc): Promise<RouterConfigView | undefined> {
  const { Client } = await import('undici');
  const client = new Client('http://router-admin', { socketPath: router.adminSocket });
  try {
    const res = await client.request({ path: '/admin/config', method: 'GET' });
    const text = await res.body.text();
    return res.statusCode === 200 ? (JSON.parse(text) as RouterConfigView) : undefined;
  } catch {
    return undefined;
  } finally {
    await client.close();
  }
}

export interface SimRequest {
  id: string;
  leg: 'prefill' | 'decode' | 'direct';
  kvSource?: string;
  status: number;
  promptTokens: number;
  ts: number;
}

export async function simRequests(url: string): Promise<SimRequest[]> {
  const res = await fetch(`${url}/sim/requests`);
  const body = (await res.json()) as SimRequest[] | { requests: SimRequest[] };
  return Array.isArray(body) ? body : body.requests;
}

export interface CompletionResult {
  status: number;
  body: string;
}

export async function complete(
  routerUrl: string,
  model: string,
  prompt: string,
  maxTokens = 4,
): Promise<CompletionResult> {
  const res = await fetch(`${routerUrl}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, prompt, max_tokens: maxTokens }),
    signal: AbortSignal.timeout(60_000),
  });
  const body = await res.text();
  // Who answered, when it is not the router's JSON (diagnoses port clashes on a shared machine).
  const origin =
    res.status === 200
      ? ''
      : ` [content-type: ${res.headers.get('content-type')}, x-powered-by: ${res.headers.get('x-powered-by')}]`;
  return { status: res.status, body: body + origin };
}

/** A prompt of about n tokens for the sim tokenizer and the router estimator (chars/4). */
export const promptOfTokens = (n: number): string =>
  'lorem ipsum dolor sit amet '.repeat(Math.ceil((n * 4) / 27)).slice(0, n * 4);

/** Repeats a request as fast as it completes until stop() and reports every outcome. */
export function steadyStream(send: () => Promise<CompletionResult>, concurrency = 2) {
  const results: Array<{ at: number; status: number; body: string }> = [];
  let running = true;
  const loops = Array.from({ length: concurrency }, async () => {
    while (running) {
      try {
        const r = await send();
        results.push({ at: Date.now(), status: r.status, body: r.status === 200 ? '' : r.body });
      } catch (err) {
        results.push({ at: Date.now(), status: 0, body: String(err) });
      }
    }
  });
  return {
    results,
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return results;
    },
  };
}
