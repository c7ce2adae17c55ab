// `npm run cluster -- up|down|status`: keeps a test cluster running in the background for poking
// with kubectl/helm. `up` starts a detached daemon (`serve`) that owns the cluster, waits until it
// reports ready, and ends with two lines to paste: export KUBECONFIG=... and export PATH=....
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startControlPlane, type Tier } from './control-plane.js';
import { SIMULATOR_ENGINE, TINY_ENGINE } from './loopback-kubelet.js';
import { isAlive, readProcessList, signalGroup } from './processes.js';
import { nodeImages } from '../node/chart-on-node.js';
import { startRealNode } from '../node/real-node.js';
import { sleep } from './wait.js';

const RUN_DIR = join(
  process.env.DISAGG_CACHE_DIR ||
    join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'disagg-operator'),
  'run',
);
const files = {
  pid: join(RUN_DIR, 'daemon.pid'),
  state: join(RUN_DIR, 'state.json'),
  log: join(RUN_DIR, 'daemon.log'),
  kubeconfig: join(RUN_DIR, 'kubeconfig'),
};
const UP_TIMEOUT_MS = 180_000;

interface State {
  pid: number;
  tier: Tier;
  nodes: number;
  engine: string;
  startedAt: string;
  timings: Record<string, number>;
  kubeconfig: string;
  binDir: string;
  apiserverUrl: string;
  workDir: string;
  /** `--node real`: the namespace holder every command must enter. */
  holderPid?: number;
}

interface UpArgs {
  tier: Tier;
  nodes: number;
  engine: 'sim' | 'tiny';
  /** loopback: the loopback kubelet (pods as processes); real: kubelet + containerd in namespaces. */
  node: 'loopback' | 'real';
}

function parseArgs(argv: string[]): UpArgs {
  const out: UpArgs = { tier: 'full', nodes: 1, engine: 'sim', node: 'loopback' };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2);
    const value = (): string => inline ?? argv[++i] ?? '';
    if (flag === '--tier') {
      const t = value();
      if (t !== 'full' && t !== 'apiserver') throw new Error(`--tier must be full or apiserver, not ${t}`);
      out.tier = t;
    } else if (flag === '--nodes') {
      out.nodes = Number(value());
      if (!Number.isInteger(out.nodes) || out.nodes < 1)
        throw new Error('--nodes must be a positive integer');
    } else if (flag === '--engine') {
      const e = value();
      if (e !== 'sim' && e !== 'tiny') throw new Error(`--engine must be sim or tiny, not ${e}`);
      out.engine = e;
    } else if (flag === '--node') {
      const n = value();
      if (n !== 'loopback' && n !== 'real') throw new Error(`--node must be loopback or real, not ${n}`);
      out.node = n;
    } else {
      throw new Error(`unknown flag ${argv[i]}`);
    }
  }
  return out;
}

function readState(): State | undefined {
  try {
    return JSON.parse(readFileSync(files.state, 'utf8')) as State;
  } catch {
    return undefined;
  }
}

function daemonPid(): number | undefined {
  try {
    const pid = Number(readFileSync(files.pid, 'utf8').trim());
    return pid > 0 && isAlive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

function clearRunFiles(): void {
  for (const f of [files.pid, files.state, files.kubeconfig]) rmSync(f, { force: true });
}

function printExports(state: State): void {
  if (state.holderPid) {
    // the real node lives in a network + mount namespace of its own: enter it to use it
    console.log(
      '# the real node runs in its own network + mount namespace; a shell inside it (kubectl, helm, crictl):',
    );
    console.log(
      `nsenter -t ${state.holderPid} -m -n -- env KUBECONFIG=${state.kubeconfig} PATH=${state.binDir}:$PATH bash`,
    );
    console.log(
      `# or one command: nsenter -t ${state.holderPid} -m -n -- ${state.binDir.split(':')[1]}/kubectl --kubeconfig=${state.kubeconfig} get pods -A`,
    );
    console.log(
      '# Services (10.0.0.0/24) and pods (10.88.0.0/24) answer inside that namespace, e.g. curl http://<ClusterIP>:8000/v1/models',
    );
    return;
  }
  console.log(`export KUBECONFIG=${state.kubeconfig}`);
  console.log(`export PATH=${state.binDir}:$PATH`);
}

function describeTimings(t: Record<string, number>): string {
  const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
  const steps = Object.entries(t)
    .filter(([k]) => k !== 'cluster ready')
    .map(([k, v]) => `  ${s(v).padStart(7)}  ${k}`);
  return [...steps, `cluster ready in ${s(t['cluster ready'] ?? 0)}`].join('\n');
}

async function up(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const running = daemonPid();
  const state = readState();
  if (running && state) {
    console.log(
      `the ${state.tier} tier is already running (daemon pid ${running}); \`npm run cluster -- down\` stops it`,
    );
    printExports(state);
    return 0;
  }
  if (running) {
    console.error(
      `a cluster daemon (pid ${running}) is starting or stuck; run \`npm run cluster -- down\` first`,
    );
    return 1;
  }
  mkdirSync(RUN_DIR, { recursive: true });
  clearRunFiles();
  const t0 = Date.now();
  const logFd = openSync(files.log, 'w');
  const daemon = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(import.meta.url), 'serve', ...argv],
    { detached: true, stdio: ['ignore', logFd, logFd], cwd: process.cwd(), env: process.env },
  );
  daemon.unref();
  writeFileSync(files.pid, String(daemon.pid));
  // Ctrl-C while waiting: do not leave a half-started cluster behind
  process.once('SIGINT', () => {
    if (daemon.pid && isAlive(daemon.pid)) process.kill(daemon.pid, 'SIGTERM');
    clearRunFiles();
    process.exit(130);
  });
  console.log(`starting the ${args.tier} tier (daemon pid ${daemon.pid}, log ${files.log})`);
  for (;;) {
    const s = readState();
    if (s) {
      console.log(describeTimings(s.timings));
      console.log(`(${((Date.now() - t0) / 1000).toFixed(1)} s including the daemon's own start)`);
      printExports(s);
      return 0;
    }
    if (!isAlive(daemon.pid ?? 0) || Date.now() - t0 > UP_TIMEOUT_MS) {
      console.error(`cluster did not start; end of ${files.log}:`);
      console.error(readFileSync(files.log, 'utf8').trimEnd().split('\n').slice(-30).join('\n'));
      if (daemon.pid && isAlive(daemon.pid)) process.kill(daemon.pid, 'SIGTERM');
      clearRunFiles();
      return 1;
    }
    await sleep(200);
  }
}

/** The daemon: owns the cluster until SIGTERM/SIGINT (whose handlers tear it down and exit). */
async function serve(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  if (args.node === 'real') return serveRealNode();
  const cluster = await startControlPlane({
    tier: args.tier,
    nodes: args.nodes,
    kubelet: { engine: args.engine === 'sim' ? SIMULATOR_ENGINE : TINY_ENGINE },
    log: (line) => console.log(line),
  });
  copyFileSync(cluster.kubeconfigPath, files.kubeconfig);
  const state: State = {
    pid: process.pid,
    tier: args.tier,
    nodes: args.tier === 'full' ? args.nodes : 0,
    engine: args.engine,
    startedAt: new Date().toISOString(),
    timings: cluster.timings,
    kubeconfig: files.kubeconfig,
    binDir: cluster.binDir,
    apiserverUrl: cluster.apiserverUrl,
    workDir: cluster.workDir,
  };
  process.on('exit', () => {
    // only our own files: a newer `up` may have replaced them
    if (readState()?.pid === process.pid) clearRunFiles();
  });
  writeFileSync(files.state, JSON.stringify(state, null, 2));
  await new Promise(() => undefined); // until a signal handler exits the process
  return 0;
}

/** `up --node real`: control plane + containerd + kubelet + kube-proxy, the project's images imported. */
async function serveRealNode(): Promise<number> {
  const node = await startRealNode({ log: (line) => console.log(line), images: nodeImages() });
  const state: State = {
    pid: process.pid,
    tier: 'full',
    nodes: 1,
    engine: 'containerd',
    startedAt: new Date().toISOString(),
    timings: { ...node.timings, 'cluster ready': node.timings['default ServiceAccount'] ?? 0 },
    kubeconfig: node.kubeconfig,
    binDir: node.path,
    apiserverUrl: 'https://127.0.0.1:6443 (inside the node namespace)',
    workDir: node.dir,
    holderPid: node.holderPid,
  };
  process.on('exit', () => {
    if (readState()?.pid === process.pid) clearRunFiles();
  });
  writeFileSync(files.state, JSON.stringify(state, null, 2));
  await new Promise(() => undefined); // the registry's signal handlers tear the node down and exit
  return 0;
}

async function down(): Promise<number> {
  const pid = daemonPid();
  const state = readState();
  if (!pid) {
    // the daemon is gone; its reaper cleans up within a second, but be sure
    if (state) for (const p of readProcessList(state.workDir)) signalGroup(p.pid, 'SIGKILL');
    clearRunFiles();
    console.log('no cluster running');
    return 0;
  }
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + (state?.holderPid ? 180_000 : 30_000); // a real node removes its pods first
  while (isAlive(pid) && Date.now() < deadline) await sleep(200);
  if (isAlive(pid)) {
    process.kill(pid, 'SIGKILL');
    if (state) for (const p of readProcessList(state.workDir)) signalGroup(p.pid, 'SIGKILL');
  }
  if (state) rmSync(state.workDir, { recursive: true, force: true });
  clearRunFiles();
  console.log(`cluster stopped (daemon pid ${pid})`);
  return 0;
}

async function status(): Promise<number> {
  const pid = daemonPid();
  const state = readState();
  if (!pid || !state) {
    console.log(pid ? `cluster daemon ${pid} is still starting (log ${files.log})` : 'no cluster running');
    return pid ? 0 : 1;
  }
  const upS = Math.round((Date.now() - Date.parse(state.startedAt)) / 1000);
  console.log(`${state.tier} cluster, up ${upS} s, daemon pid ${pid}, engine ${state.engine}`);
  console.log(`apiserver ${state.apiserverUrl}, work dir ${state.workDir}`);
  for (const p of readProcessList(state.workDir)) {
    console.log(`  ${String(p.pid).padStart(7)}  ${isAlive(p.pid) ? 'running' : 'gone   '}  ${p.name}`);
  }
  printExports(state);
  return 0;
}

const [command, ...rest] = process.argv.slice(2);
const commands: Record<string, (argv: string[]) => Promise<number>> = { up, down, status, serve };
const run = commands[command ?? ''];
if (!run) {
  console.error(
    'usage: npm run cluster -- up [--tier full|apiserver] [--nodes N] [--engine sim|tiny] [--node loopback|real] | down | status',
  );
  process.exit(2);
}
run(rest).then(
  (code) => {
    if (command !== 'serve') process.exit(code);
  },
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
