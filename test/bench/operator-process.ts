// The operator under test as its own OS process, from the compiled build (what the image runs) or
// with tsx, with the ServiceAccount kubeconfig of the e2e set-up (so it runs with the chart's RBAC).
import { join } from 'node:path';
import type { E2eEnv, RouterProc } from '../../operator/test/support/e2e-env.js';
import { REPO_ROOT } from '../cluster/bins.js';
import { buildInto } from './build.js';
import type { ManagedProcess } from '../cluster/processes.js';
import { waitFor } from '../cluster/wait.js';

export type OperatorRuntime = 'dist' | 'tsx';

/** Where the benchmark compiles the operator: its own directory, so it never races `npm run build`'s dist/. */
export const BUILD_DIR = join(REPO_ROOT, '.bench', 'operator-build');

/** `tsc -p tsconfig.build.json` (the same build as `npm run build`) into BUILD_DIR; returns main.js. */
export async function buildOperator(): Promise<string> {
  return join(await buildInto(BUILD_DIR), 'operator', 'src', 'main.js');
}

export interface OperatorProcess {
  pid: number;
  runtime: OperatorRuntime;
  metricsPort: number;
  proc: ManagedProcess;
  metrics(): Promise<string>;
}

export async function startOperatorProcess(
  env: E2eEnv,
  router: RouterProc,
  opts: { runtime: OperatorRuntime; mainJs?: string; args: string[]; nodeFlags?: string[] },
): Promise<OperatorProcess> {
  const entry =
    opts.runtime === 'dist'
      ? [opts.mainJs ?? join(BUILD_DIR, 'operator', 'src', 'main.js')]
      : ['--import', 'tsx', join(REPO_ROOT, 'operator', 'src', 'main.ts')];
  let ports: { healthPort: number; metricsPort: number } | undefined;
  const logPath = join(env.workDir, `operator-bench.log`);
  const proc = env.registry.spawn('operator-bench', process.execPath, {
    args: [
      ...(opts.nodeFlags ?? []),
      ...entry,
      `--kubeconfig=${env.saKubeconfig}`,
      `--router-admin-socket=${router.adminSocket}`,
      `--replica-id=${router.replicaId}`,
      `--kv-notify-address=${router.kvNotifyAddress}`,
      '--leader-election-namespace=disagg-system',
      '--bind-address=127.0.0.1',
      '--metrics-port=0',
      '--health-port=0',
      ...opts.args,
    ],
    cwd: REPO_ROOT,
    logPath,
    onStdoutLine: (line) => {
      if (line.includes('"operator listening"')) ports = JSON.parse(line) as typeof ports;
    },
  });
  const p = await waitFor('operator listening', () => ports, {
    timeoutMs: 120_000,
    abort: proc.exited.then((c) => {
      throw new Error(`operator exited (${c}); see ${logPath}`);
    }),
  });
  return {
    pid: proc.pid,
    runtime: opts.runtime,
    metricsPort: p.metricsPort,
    proc,
    metrics: async () => (await fetch(`http://127.0.0.1:${p.metricsPort}/metrics`)).text(),
  };
}

/** Sum of a metric's samples whose labels include the given ones (shared with the router's tests). */
export { metricValue as metricSum } from '../../router/test/support/http.js';
