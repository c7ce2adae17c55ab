// `make demo`: the whole product on one machine. A real control plane (etcd, kube-apiserver,
// controller-manager, scheduler) with the loopback kubelet running engine simulators as pods, the
// CRD and the chart's RBAC, the operator (under its ServiceAccount's token) feeding a router
// process, a 2P1D DisaggCluster from docs/examples, a short and a long request traced through the
// pods, a scale to 2P2D by editing the resource; then it stays up for kubectl until Ctrl-C
// (or exits with --once). Everything it started is stopped on exit, Ctrl-C and failure.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseAllDocuments } from 'yaml';
import type { DisaggCluster } from '../../operator/src/api/types.js';
import {
  OPERATOR_NS,
  OPERATOR_SA,
  RULES_PATH,
  getDisagg,
  isReady,
  promptOfTokens,
  routerConfig,
  startE2eEnv,
  type E2eEnv,
  type OperatorProc,
  type RouterProc,
} from '../../operator/test/support/e2e-env.js';
import { REPO_ROOT } from '../cluster/bins.js';
import { freePort } from '../cluster/ports.js';
import { sleep, waitFor } from '../cluster/wait.js';
import {
  describeLegs,
  estimateStringTokens,
  legsMatchPath,
  traceRequest,
  type EngineRef,
} from './request-trace.js';

const HELP = `Usage: make demo [DEMO_ARGS="..."]   (or: node --import tsx test/demo/cluster-demo.ts [flags])

  --once            exit (and tear everything down) after the scale step instead of waiting for Ctrl-C
  --port N          the router's OpenAI port (default: a free port)
  --manifest FILE   the DisaggCluster to apply (default docs/examples/sim-nixl-2p1d.yaml)
  --namespace NS    namespace to apply it in (default: default)
  --help            this text

Set DISAGG_CLUSTER_KEEP=1 to keep the work dirs (every component's log) after exit.`;

const DEFAULT_MANIFEST = join(REPO_ROOT, 'docs', 'examples', 'sim-nixl-2p1d.yaml');
const READY_TIMEOUT_MS = 300_000; // engines start with tsx on 2 busy cores
const MAX_TOKENS = 16;
const SHORT_PROMPT = 'Hello there';
const LONG_PROMPT_TOKENS = 400;

const t0 = Date.now();
function say(msg = ''): void {
  const stamp = `[demo ${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s]`;
  for (const line of msg.split('\n')) process.stdout.write(`${stamp} ${line}\n`);
}

interface Target {
  namespace: string;
  name: string;
  model: string;
  connector: string;
  threshold: number;
  prefill: number;
  decode: number;
}

/** The DisaggCluster of the manifest: what the demo waits for and sends requests to. */
function readTarget(file: string, namespace: string): Target {
  const docs = parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS() as unknown);
  const dc = docs.find((d): d is DisaggCluster => (d as { kind?: string } | null)?.kind === 'DisaggCluster');
  if (!dc) throw new Error(`${file} has no DisaggCluster`);
  return {
    namespace: dc.metadata.namespace ?? namespace,
    name: dc.metadata.name!,
    model: dc.spec.model.servedName,
    connector: dc.spec.connector.type,
    threshold: dc.spec.routing?.threshold ?? 0,
    prefill: dc.spec.prefill.replicas,
    decode: dc.spec.decode.replicas,
  };
}

const topology = (p: number, d: number): string => `${p}P${d}D`;

/** `kubectl get disagg NAME` without the AGE column, so a repeat prints only on a change. */
async function disaggTable(env: E2eEnv, t: Target): Promise<string> {
  const r = await env.cluster.kubectl(['get', 'disagg', t.name, '-n', t.namespace], { allowFailure: true });
  if (r.code !== 0) return r.stderr.trim();
  return r.stdout
    .trimEnd()
    .split('\n')
    .map((l) => l.replace(/\s+\S+$/, ''))
    .join('\n');
}

/** Prints the table whenever it changes until the cluster is Ready with `want` at `generation`. */
async function waitReady(env: E2eEnv, t: Target, want: string, generation: number): Promise<void> {
  say(`waiting for Ready with topology ${want} (\`kubectl get disagg ${t.name}\` on every change):`);
  let last = '';
  let lastStatus: unknown;
  try {
    await waitFor(
      `${t.namespace}/${t.name} Ready ${want}`,
      async () => {
        const table = await disaggTable(env, t);
        if (table !== last) {
          say(table.replace(/^/gm, '  '));
          last = table;
        }
        const c = await getDisagg(env.cluster, t.namespace, t.name);
        lastStatus = c?.status;
        return c !== undefined && isReady(c, want, generation);
      },
      { timeoutMs: READY_TIMEOUT_MS, intervalMs: 500 },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\nlast status: ${JSON.stringify(lastStatus, null, 2)}`);
  }
  const final = await disaggTable(env, t); // the status may have moved on since the last table
  if (final !== last) say(final.replace(/^/gm, '  '));
  say(`topology: ${want} (Ready)`);
}

function engineRefs(env: E2eEnv, t: Target): EngineRef[] {
  return env.cluster
    .kubelet!.engines()
    .filter((e) => e.namespace === t.namespace && e.name.startsWith(`${t.name}-`))
    .map((e) => ({ name: e.name, url: e.url }));
}

async function sendAndTrace(env: E2eEnv, router: RouterProc, t: Target, label: string, prompt: string) {
  const estimate = estimateStringTokens(prompt);
  const relation = t.threshold === 0 || estimate >= t.threshold ? '>=' : '<';
  say(
    `${label} request: ~${estimate} estimated tokens (${relation} threshold ${t.threshold}), ` +
      `POST ${router.url}/v1/completions stream max_tokens ${MAX_TOKENS}`,
  );
  const r = await traceRequest({
    routerUrl: router.url,
    cluster: `${t.namespace}/${t.name}`,
    model: t.model,
    prompt,
    maxTokens: MAX_TOKENS,
    engines: () => engineRefs(env, t),
    label: `demo-${label}`,
  });
  if (r.status !== 200) throw new Error(`${label} request failed: HTTP ${r.status} ${r.text}`);
  say(
    `  router: HTTP ${r.status}, x-request-id ${r.requestId}, ${r.tokens} tokens: ${JSON.stringify(r.text)}`,
  );
  say(
    `  ${label} request: path ${r.routerPath}: ${describeLegs(r.legs)}; TTFT ${fmtMs(r.ttftMs)}, total ${fmtMs(r.totalMs)}`,
  );
  if (!legsMatchPath(r.routerPath, r.legs, t.connector)) {
    throw new Error(
      `the engines' logs do not match path ${r.routerPath}: ${JSON.stringify(r.legs)} (router metric vs /sim/requests)`,
    );
  }
  return r;
}

const fmtMs = (ms: number | undefined): string => (ms === undefined ? '-' : `${ms.toFixed(0)} ms`);

async function showRouterEndpoints(router: RouterProc, t: Target): Promise<void> {
  const cfg = await routerConfig(router);
  const c = cfg?.config.clusters.find((x) => x.name === `${t.namespace}/${t.name}`);
  if (!c) return say('router: no configuration for the cluster yet');
  say(`router configuration (GET /admin/config on ${router.adminSocket}), hash ${cfg!.hash}:`);
  for (const [pool, eps] of [
    ['prefill', c.prefill.endpoints],
    ['decode', c.decode.endpoints],
  ] as const) {
    for (const e of eps) say(`  ${pool.padEnd(8)} ${e.id.padEnd(44)} ${e.url}`);
  }
}

async function showPods(env: E2eEnv, t: Target): Promise<void> {
  const r = await env.cluster.kubectl([
    'get',
    'pods',
    '-n',
    t.namespace,
    '-l',
    `disagg.dev/cluster=${t.name}`,
    '-L',
    'disagg.dev/role',
    '-o',
    'wide',
  ]);
  say(`$ kubectl get pods -l disagg.dev/cluster=${t.name} -L disagg.dev/role -o wide`);
  // NOMINATED NODE / READINESS GATES are always <none> here
  const rows = r.stdout
    .trimEnd()
    .split('\n')
    .map((l) => l.split(/\s{2,}/).filter((_, i) => i < 7 || i > 8));
  say(alignColumns(rows).replace(/^/gm, '  '));
}

function alignColumns(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('   ')
        .trimEnd(),
    )
    .join('\n');
}

function showProcesses(env: E2eEnv): void {
  say('processes (each in its own process group; all are stopped on exit):');
  for (const p of [...env.cluster.processes(), ...env.registry.list()]) say(`  pid ${p.pid}  ${p.name}`);
}

function showPokeHelp(env: E2eEnv, router: RouterProc, operator: OperatorProc, t: Target): void {
  const ns = t.namespace === 'default' ? '' : ` -n ${t.namespace}`;
  say(
    [
      '',
      'The cluster stays up until Ctrl-C. In another shell, paste these three lines, then poke at it:',
      '',
      `  export KUBECONFIG=${env.cluster.kubeconfigPath}`,
      `  export PATH=${env.cluster.binDir}:$PATH`,
      `  export ROUTER=${router.url}`,
      '',
      `  kubectl get disagg,deploy,pods${ns} -o wide`,
      `  kubectl describe disagg ${t.name}${ns}`,
      `  curl -s -w '\\n' $ROUTER/v1/completions -H 'content-type: application/json' \\`,
      `    -d '{"model":"${t.model}","prompt":"Hello there","max_tokens":8}'`,
      `  kubectl patch disagg ${t.name}${ns} --type=merge -p '{"spec":{"routing":{"threshold":0}}}'`,
      `  curl -s $ROUTER/metrics | grep -E '^router_(requests_total|routing_decisions_total)'`,
      `  curl -s http://127.0.0.1:${operator.metricsPort}/metrics | grep ^disagg_`,
      `  curl -s --unix-socket ${router.adminSocket} http://router/admin/config`,
      `  tail -f ${join(env.workDir, 'operator-demo.log')}`,
      '',
      'Changes to the DisaggCluster are printed below as they happen. Ctrl-C stops everything.',
    ].join('\n'),
  );
}

function logTail(path: string, lines = 12): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** The kubelet's lines, except its reports of the engines going away while everything stops. */
function quietWhileStopping(line: string): void {
  if (stopping === undefined && !interrupted) say(`  ${line}`);
}

let env: E2eEnv | undefined;
let interrupted = false;
let stopping: Promise<void> | undefined;

function stopAll(): Promise<void> {
  stopping ??= (async () => {
    if (!env) return;
    say('stopping the operator, the router, the engines and the control plane ...');
    await env.stop();
    say('all stopped');
  })();
  return stopping;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      once: { type: 'boolean', default: false },
      port: { type: 'string' },
      manifest: { type: 'string', default: DEFAULT_MANIFEST },
      namespace: { type: 'string', default: 'default' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const manifest = resolve(values.manifest);
  const t = readTarget(manifest, values.namespace);
  const port = values.port === undefined ? undefined : Number(values.port);
  if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) {
    throw new Error('--port must be a port number');
  }

  say(
    'starting the control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, loopback kubelet',
  );
  env = await startE2eEnv({ log: (l) => say(`  ${l}`), kubelet: { log: quietWhileStopping } });
  const cluster = env.cluster;
  say(`work dirs (logs): ${cluster.workDir}/logs and ${env.workDir}`);
  say(
    `installed the CRD (crds/disagg.dev_disaggclusters.yaml) and RBAC: ServiceAccount ${OPERATOR_NS}/${OPERATOR_SA}`,
  );
  say(`  bound to a ClusterRole with the chart's rules (${RULES_PATH.slice(REPO_ROOT.length + 1)})`);

  say('starting the router (npm run router) ...');
  const router = await env.startRouter('demo', port ? { port, kvNotifyPort: await freePort() } : undefined);
  say(`  router ${router.url} (pid ${router.proc.pid}), admin socket ${router.adminSocket}`);
  say(`starting the operator (npm run operator) as system:serviceaccount:${OPERATOR_NS}:${OPERATOR_SA} ...`);
  const operator = await env.startOperator('demo', router);
  say(
    `  operator pid ${operator.proc.pid}, metrics http://127.0.0.1:${operator.metricsPort}/metrics, ` +
      `kubeconfig ${env.saKubeconfig}`,
  );

  const rel = manifest.startsWith(REPO_ROOT) ? manifest.slice(REPO_ROOT.length + 1) : manifest;
  say(`$ kubectl apply -n ${t.namespace} -f ${rel}`);
  const applied = await cluster.kubectl(['apply', '-n', t.namespace, '-f', manifest], { allowFailure: true });
  if (applied.code !== 0) throw new Error(`kubectl apply failed:\n${applied.stderr.trim()}`);
  say(applied.stdout.trimEnd().replace(/^/gm, '  '));
  await waitReady(env, t, topology(t.prefill, t.decode), 1);
  await showPods(env, t);
  await showRouterEndpoints(router, t);

  await sendAndTrace(env, router, t, 'short', SHORT_PROMPT);
  await sendAndTrace(env, router, t, 'long', promptOfTokens(LONG_PROMPT_TOKENS));

  const scaled = { ...t, decode: t.decode + 1 };
  const patch = JSON.stringify({ spec: { decode: { replicas: scaled.decode } } });
  say(`scaling to ${topology(scaled.prefill, scaled.decode)} by editing the resource:`);
  say(`$ kubectl patch disagg ${t.name} -n ${t.namespace} --type=merge -p '${patch}'`);
  const patched = await cluster.kubectl([
    'patch',
    'disagg',
    t.name,
    '-n',
    t.namespace,
    '--type=merge',
    '-p',
    patch,
  ]);
  say(`  ${patched.stdout.trim()}`);
  await waitReady(env, scaled, topology(scaled.prefill, scaled.decode), 2);
  await showPods(env, scaled);
  await showRouterEndpoints(router, scaled);
  say('two long requests on the new topology (round robin over the decoders):');
  for (const label of ['long-1', 'long-2']) {
    await sendAndTrace(env, router, scaled, label, promptOfTokens(LONG_PROMPT_TOKENS));
  }
  showProcesses(env);

  if (values.once) {
    say('--once: done');
    return 0;
  }
  showPokeHelp(env, router, operator, scaled);
  let last = await disaggTable(env, scaled);
  for (;;) {
    await sleep(2000);
    const table = await disaggTable(env, scaled).catch(() => last);
    if (table !== last) say(table.replace(/^/gm, '  '));
    last = table;
  }
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (interrupted) {
      process.exit(130); // a second Ctrl-C: the exit handlers still SIGKILL every process group
    }
    interrupted = true;
    process.stdout.write('\n');
    say(`${signal}: stopping everything ...`);
    // The harness's own handler (test/cluster/processes.ts) closes every process registry too.
    void stopAll().then(() => process.exit(130));
  });
}

main()
  .then(async (code) => {
    await stopAll();
    process.exit(code);
  })
  .catch(async (err: unknown) => {
    if (interrupted) return;
    say(`FAILED: ${err instanceof Error ? err.message : String(err)}`);
    if (env) {
      for (const name of ['operator-demo', 'router-demo']) {
        say(`end of ${name}.log:\n${logTail(join(env.workDir, `${name}.log`))}`);
      }
      say('(DISAGG_CLUSTER_KEEP=1 keeps every log after exit)');
      showProcesses(env);
    }
    await stopAll();
    process.exit(1);
  });
