// Starts the router as its own OS process (`router/src/main.ts`), the way a pod runs it, and
// stops it again. Used by the demo and the benchmark; /proc gives its CPU time and RSS.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const MAIN = path.join(REPO_ROOT, 'router', 'src', 'main.ts');

export interface RouterProcessOptions {
  /** Router flags (see `npm run router -- --help`); --host/--port/--admin-socket/--kv-notify-port default to loopback, free ports and no socket. */
  args: string[];
  /** Extra node flags, e.g. ['--cpu-prof', '--cpu-prof-dir', DIR]. */
  nodeFlags?: string[];
  /** A compiled `router/src/main.js` to run (what the image runs); without it, main.ts under tsx. */
  mainJs?: string;
  /** Called with every stdout/stderr line (the router logs JSON to stdout). */
  onLine?: (line: string) => void;
  startTimeoutMs?: number;
}

export interface RouterProcess {
  url: string;
  port: number;
  kvNotifyPort: number;
  pid: number;
  /** ws:// URL of the V8 inspector when started with --inspect. */
  inspectorUrl: string | undefined;
  /** SIGTERM, then SIGKILL after graceMs (the router drains for up to 20 s itself). */
  stop(graceMs?: number): Promise<void>;
  /** Last lines the router wrote (for failure messages). */
  output(): string;
}

const running = new Set<ChildProcess>();
let hookInstalled = false;

function installExitHook(): void {
  if (hookInstalled) return;
  hookInstalled = true;
  // The router has no --exit-with-parent: never leave it behind when this process exits.
  process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}

function withDefault(args: string[], flag: string, value: string): string[] {
  return args.includes(flag) ? [] : [flag, value];
}

export async function startRouterProcess(opts: RouterProcessOptions): Promise<RouterProcess> {
  const level = opts.args[opts.args.indexOf('--log-level') + 1];
  if (opts.args.includes('--log-level') && level !== 'info' && level !== 'debug') {
    // The "router listening" line that tells us the port is logged at info.
    throw new Error('startRouterProcess needs --log-level info or debug');
  }
  installExitHook();
  const args = [
    ...withDefault(opts.args, '--host', '127.0.0.1'),
    ...withDefault(opts.args, '--port', '0'),
    ...withDefault(opts.args, '--admin-socket', ''),
    ...withDefault(opts.args, '--kv-notify-port', '0'),
    ...opts.args,
  ];
  const entry = opts.mainJs ? [opts.mainJs] : ['--import', 'tsx', MAIN];
  const child = spawn(process.execPath, [...(opts.nodeFlags ?? []), ...entry, ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', () => running.delete(child));

  const tail: string[] = [];
  let inspectorUrl: string | undefined;
  const remember = (line: string): void => {
    inspectorUrl ??= /Debugger listening on (ws:\/\/\S+)/.exec(line)?.[1];
    tail.push(line);
    if (tail.length > 100) tail.shift();
    opts.onLine?.(line);
  };
  createInterface({ input: child.stderr! }).on('line', remember);
  const stdout = createInterface({ input: child.stdout! });
  stdout.on('line', remember);

  let ready: { port: number; kvNotifyPort: number };
  try {
    ready = await new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`router did not start in time\n${tail.join('\n')}`)),
        opts.startTimeoutMs ?? 60_000,
      );
      stdout.on('line', (line) => {
        let msg: { msg?: unknown; port?: unknown; kvNotifyPort?: unknown };
        try {
          msg = JSON.parse(line) as typeof msg;
        } catch {
          return;
        }
        if (msg.msg === 'router listening' && typeof msg.port === 'number') {
          clearTimeout(timer);
          resolve({ port: msg.port, kvNotifyPort: Number(msg.kvNotifyPort) });
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`router exited (${code ?? signal}) before listening\n${tail.join('\n')}`));
      });
    });
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    throw err;
  }

  let stopping: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${ready.port}`,
    port: ready.port,
    kvNotifyPort: ready.kvNotifyPort,
    pid: child.pid!,
    get inspectorUrl() {
      return inspectorUrl;
    },
    stop: (graceMs = 25_000) => {
      stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const force = setTimeout(() => child.kill('SIGKILL'), graceMs);
        child.kill('SIGTERM');
        await exited;
        clearTimeout(force);
      })();
      return stopping;
    },
    output: () => tail.join('\n'),
  };
}

const CLOCK_TICKS_PER_S = 100; // USER_HZ, 100 on every Linux architecture Node supports

/** User + system CPU seconds a process has used so far (Linux /proc); 0 once it is gone. */
export function cpuSeconds(pid: number): number {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return 0;
  }
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
}

/** CPU seconds the whole machine has been busy (all cores; user, nice, system, irq, softirq, steal). */
export function machineBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  return (f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!) / CLOCK_TICKS_PER_S;
}

/** Resident set size in bytes (Linux /proc). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}

/** True while the process exists (signal 0 probes without sending anything). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Pins a process and all its threads to the given CPUs (`taskset -a -p -c LIST PID`); false when
 * taskset is missing or refuses (the caller reports the layout it really got).
 */
export function pinToCpus(pid: number, cpus: string): boolean {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
