// Programmatic harness: starts the simulator CLI as a real child process and stops it again.
// Children die with the harness: stop()/stopAll(), an exit hook, and --exit-with-parent (stdin EOF).
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { EngineRole, Connector } from './config.js';
import type { SimRequest } from './requests-log.js';

export type { SimRequest } from './requests-log.js';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const REPO_ROOT = path.resolve(path.dirname(MAIN), '..', '..');

export interface EngineOptions {
  host?: string;
  port?: number;
  model?: string;
  role?: EngineRole;
  connector?: Connector;
  tpSize?: number;
  maxModelLen?: number;
  defaultMaxTokens?: number;
  /** Advertised NIXL side-channel host (vLLM default "localhost"). */
  nixlSideChannelHost?: string;
  /** Defaults to 0 (a free port) here, unlike the CLI's 5600, so parallel tests never collide. */
  nixlSideChannelPort?: number;
  kvLeaseMs?: number;
  /** Defaults to free ports (one per TP rank) for LMCache decoders. */
  lmcacheInitPorts?: number[];
  lmcacheAllocPorts?: number[];
  lmcachePeerHost?: string;
  lmcacheProxyHost?: string;
  lmcacheProxyPort?: number;
  lmcacheNotifyDelayMs?: number;
  prefillMsPerToken?: number;
  itlMs?: number;
  maxNumSeqs?: number;
  kvTransferMsPerToken?: number;
  interferenceFactor?: number;
  startupMs?: number;
  failRate?: number;
  failStatus?: number;
  hang?: boolean;
  dropAfterChunks?: number;
  stallAfterChunks?: number;
  logLevel?: string;
  /** Extra environment for the child (e.g. VLLM_NIXL_SIDE_CHANNEL_HOST). */
  env?: Record<string, string>;
  extraArgs?: string[];
  /** How long to wait for the listening line (default 60 s: the machine may be busy). */
  startTimeoutMs?: number;
}

export interface FaultPatch {
  failRate?: number;
  failStatus?: number;
  hang?: boolean;
  dropAfterChunks?: number | null;
  stallAfterChunks?: number | null;
}

export interface RunningEngine {
  url: string;
  host: string;
  port: number;
  pid: number;
  nixlSideChannelPort: number | null;
  lmcacheInitPorts: number[];
  lmcacheAllocPorts: number[];
  requests(): Promise<SimRequest[]>;
  metrics(): Promise<string>;
  setFaults(f: FaultPatch): Promise<void>;
  reset(): Promise<void>;
  stop(): Promise<void>;
  kill(signal?: NodeJS.Signals): void;
  /** Last lines the child wrote to stderr (for failure messages). */
  stderr(): string;
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}

// Optional flag pairs: [option key, CLI flag].
const FLAG_OF: Array<[keyof EngineOptions, string]> = [
  ['model', '--model'],
  ['role', '--role'],
  ['connector', '--connector'],
  ['tpSize', '--tp-size'],
  ['maxModelLen', '--max-model-len'],
  ['defaultMaxTokens', '--default-max-tokens'],
  ['nixlSideChannelHost', '--nixl-side-channel-host'],
  ['kvLeaseMs', '--kv-lease-ms'],
  ['lmcachePeerHost', '--lmcache-peer-host'],
  ['lmcacheProxyHost', '--lmcache-proxy-host'],
  ['lmcacheProxyPort', '--lmcache-proxy-port'],
  ['lmcacheNotifyDelayMs', '--lmcache-notify-delay-ms'],
  ['prefillMsPerToken', '--prefill-ms-per-token'],
  ['itlMs', '--itl-ms'],
  ['maxNumSeqs', '--max-num-seqs'],
  ['kvTransferMsPerToken', '--kv-transfer-ms-per-token'],
  ['interferenceFactor', '--interference-factor'],
  ['startupMs', '--startup-ms'],
  ['failRate', '--fail-rate'],
  ['failStatus', '--fail-status'],
  ['dropAfterChunks', '--drop-after-chunks'],
  ['stallAfterChunks', '--stall-after-chunks'],
  ['logLevel', '--log-level'],
];

export function engineArgs(opts: EngineOptions): string[] {
  const args = ['--host', opts.host ?? '127.0.0.1', '--port', String(opts.port ?? 0), '--exit-with-parent'];
  for (const [key, flag] of FLAG_OF) {
    const v = opts[key];
    if (v !== undefined) args.push(flag, String(v));
  }
  if (opts.hang) args.push('--hang');
  if (opts.connector === 'nixl') args.push('--nixl-side-channel-port', String(opts.nixlSideChannelPort ?? 0));
  const tp = opts.tpSize ?? 1;
  const isReceiver = opts.connector === 'lmcache' && opts.role !== 'prefill';
  const init = opts.lmcacheInitPorts ?? (isReceiver ? Array<number>(tp).fill(0) : undefined);
  const alloc = opts.lmcacheAllocPorts ?? (isReceiver ? Array<number>(tp).fill(0) : undefined);
  if (init) args.push('--lmcache-init-ports', init.join(','));
  if (alloc) args.push('--lmcache-alloc-ports', alloc.join(','));
  return [...args, ...(opts.extraArgs ?? [])];
}

interface ListeningLine {
  event: string;
  url: string;
  port: number;
  nixlSideChannelPort: number | null;
  lmcacheInitPorts: number[];
  lmcacheAllocPorts: number[];
}

export async function startEngine(opts: EngineOptions = {}): Promise<RunningEngine> {
  installExitHook();
  const host = opts.host ?? '127.0.0.1';
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...engineArgs(opts)], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  running.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', () => running.delete(child));

  const stderrLines: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    stderrLines.push(line);
    if (stderrLines.length > 200) stderrLines.shift();
  });
  const stdout = createInterface({ input: child.stdout! });

  let info: ListeningLine;
  try {
    info = await new Promise<ListeningLine>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`engine sim did not start in time\n${stderrLines.join('\n')}`)),
        opts.startTimeoutMs ?? 60_000,
      );
      stdout.on('line', (line) => {
        try {
          const msg = JSON.parse(line) as ListeningLine;
          if (msg.event === 'listening') {
            clearTimeout(timer);
            resolve(msg);
          }
        } catch {
          // Not the listening line; keep reading (stdout keeps draining so the child never blocks).
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`engine sim exited with ${code} before listening\n${stderrLines.join('\n')}`));
      });
    });
  } catch (e) {
    child.kill('SIGKILL');
    await exited;
    throw e;
  }

  const url = info.url;
  const getJson = async <T>(p: string, init?: RequestInit): Promise<T> => {
    const r = await fetch(url + p, init);
    if (!r.ok) throw new Error(`${p}: HTTP ${r.status} ${await r.text()}`);
    return (await r.json()) as T;
  };
  const post = (body: unknown): RequestInit => ({
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

  return {
    url,
    host,
    port: info.port,
    pid: child.pid!,
    nixlSideChannelPort: info.nixlSideChannelPort,
    lmcacheInitPorts: info.lmcacheInitPorts,
    lmcacheAllocPorts: info.lmcacheAllocPorts,
    requests: () => getJson<SimRequest[]>('/sim/requests'),
    metrics: async () => (await fetch(url + '/metrics')).text(),
    setFaults: async (f) => {
      await getJson('/sim/faults', post(f));
    },
    reset: async () => {
      await getJson('/sim/reset', post({}));
    },
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const force = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.kill('SIGTERM');
      await exited;
      clearTimeout(force);
    },
    kill: (signal: NodeJS.Signals = 'SIGKILL') => {
      child.kill(signal);
    },
    stderr: () => stderrLines.join('\n'),
  };
}

/** Stops every engine this process started (for afterAll). */
export async function stopAll(): Promise<void> {
  await Promise.all(
    [...running].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const force = setTimeout(() => child.kill('SIGKILL'), 5000);
          child.once('exit', () => {
            clearTimeout(force);
            resolve();
          });
          child.kill('SIGTERM');
        }),
    ),
  );
}
