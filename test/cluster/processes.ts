// Child processes of a test cluster: each runs in its own process group so that stopping it also
// stops anything it forked; every live group is listed in <workDir>/processes.json so the reaper
// (and `cluster down`) can kill them even if this Node process dies without running its handlers.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ProcessInfo {
  name: string;
  pid: number;
}

export interface ManagedProcess extends ProcessInfo {
  child: ChildProcess;
  layer: number;
  logPath: string;
  /** Resolves with the exit code (or the signal name) once the process is gone. */
  exited: Promise<number | string>;
  /** True once `exited` resolved. */
  readonly hasExited: boolean;
  /** SIGTERM the group, then SIGKILL after graceMs; resolves when the leader is gone. */
  stop(graceMs?: number): Promise<void>;
  /** Sends a signal to the whole group (SIGKILL, SIGSTOP, SIGCONT...). */
  signal(sig: NodeJS.Signals): void;
}

export interface SpawnOptions {
  args?: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  logPath: string;
  /** Called with each complete stdout line (the log file still gets everything). */
  onStdoutLine?: (line: string) => void;
  /** close() stops higher layers first (e.g. engines 100, controllers 2, apiserver 1, etcd 0). Default 100. */
  layer?: number;
}

/** Sends sig to process group pgid; a group that is already gone is not an error. */
export function signalGroup(pgid: number, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, sig);
    return true;
  } catch {
    return false;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The processes of one cluster. Keeps processes.json current and, while any registry is open,
 * kills every group and removes every work dir on exit, SIGINT and SIGTERM.
 */
export class ProcessRegistry {
  private readonly live = new Map<number, ManagedProcess>();
  private closed = false;

  constructor(
    readonly workDir: string,
    private readonly removeWorkDir = true,
    /** Teardown steps around close() (the real node removes its pod sandboxes before its daemons stop). */
    readonly hooks: {
      beforeClose?: () => Promise<void>;
      afterClose?: () => void;
      closeTimeoutMs?: number;
    } = {},
  ) {
    openRegistries.add(this);
    installExitHandlers();
    this.persist();
  }

  spawn(name: string, command: string, opts: SpawnOptions): ManagedProcess {
    if (this.closed) throw new Error(`cannot start ${name}: cluster is stopping`);
    const logFd = openSync(opts.logPath, 'a');
    const wantLines = opts.onStdoutLine !== undefined;
    const child = spawn(command, opts.args ?? [], {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      detached: true, // own process group: stop() reaches grandchildren too
      stdio: ['ignore', wantLines ? 'pipe' : logFd, logFd],
    });
    closeSync(logFd);
    if (child.pid === undefined) {
      // spawn failure surfaces as an 'error' event; make it synchronous for callers
      throw new Error(`failed to start ${name} (${command})`);
    }
    const pid = child.pid;
    if (wantLines && child.stdout) {
      const out = openSync(opts.logPath, 'a');
      let buf = '';
      child.stdout.on('data', (chunk: Buffer) => {
        writeFileSync(out, chunk);
        buf += chunk.toString('utf8');
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          opts.onStdoutLine?.(line);
        }
      });
      child.stdout.on('close', () => closeSync(out));
    }
    let hasExited = false;
    const exited = new Promise<number | string>((resolve) => {
      child.on('exit', (code, sig) => {
        hasExited = true;
        resolve(code ?? sig ?? -1);
      });
      child.on('error', () => {
        hasExited = true;
        resolve(-1);
      });
    });
    const proc: ManagedProcess = {
      name,
      pid,
      child,
      layer: opts.layer ?? 100,
      logPath: opts.logPath,
      exited,
      get hasExited() {
        return hasExited;
      },
      signal: (sig) => {
        signalGroup(pid, sig);
      },
      stop: async (graceMs = 5000) => {
        signalGroup(pid, 'SIGTERM');
        signalGroup(pid, 'SIGCONT'); // a SIGSTOPped (hung) process only sees SIGTERM once resumed
        const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
        signalGroup(pid, 'SIGKILL'); // leftovers in the group
      },
    };
    this.live.set(pid, proc);
    this.persist();
    void exited.then(() => {
      // the group may outlive its leader; only forget it once the group is empty
      if (!signalGroup(pid, 0)) {
        this.live.delete(pid);
        this.persist();
      }
    });
    return proc;
  }

  list(): ProcessInfo[] {
    return [...this.live.values()].map(({ name, pid }) => ({ name, pid }));
  }

  /** Stops every process, layer by layer from the top, then removes the work dir. */
  async close(graceMs = 5000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.hooks.beforeClose?.().catch(() => undefined);
    // in layers: kube-apiserver drains its watches for up to 60 s while clients remain, and
    // shuts down quickly only while etcd still answers
    const layers = [...new Set([...this.live.values()].map((p) => p.layer))].sort((a, b) => b - a);
    for (const layer of layers) {
      await Promise.all([...this.live.values()].filter((p) => p.layer === layer).map((p) => p.stop(graceMs)));
    }
    this.killAllSync();
    this.hooks.afterClose?.();
    openRegistries.delete(this);
  }

  /** Last-resort cleanup that can run inside an 'exit' handler (no awaiting there). */
  killAllSync(): void {
    for (const pid of this.live.keys()) signalGroup(pid, 'SIGKILL');
    this.live.clear();
    if (this.removeWorkDir) rmSync(this.workDir, { recursive: true, force: true });
    else this.persist();
  }

  private persist(): void {
    if (this.closed && this.removeWorkDir) return;
    try {
      writeFileSync(join(this.workDir, 'processes.json'), JSON.stringify(this.list()));
    } catch {
      // the work dir is being removed
    }
  }
}

/** Reads processes.json of a work dir (used by the reaper and `cluster down`). */
export function readProcessList(workDir: string): ProcessInfo[] {
  try {
    return JSON.parse(readFileSync(join(workDir, 'processes.json'), 'utf8')) as ProcessInfo[];
  } catch {
    return [];
  }
}

const openRegistries = new Set<ProcessRegistry>();
let handlersInstalled = false;

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => {
    for (const r of openRegistries) r.killAllSync();
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      const code = 128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1);
      const timeoutMs = Math.max(5000, ...[...openRegistries].map((r) => r.hooks.closeTimeoutMs ?? 0));
      void Promise.race([
        Promise.all([...openRegistries].map((r) => r.close(2000))),
        new Promise((r) => setTimeout(r, timeoutMs)),
      ]).finally(() => process.exit(code));
    });
  }
}

// Runs detached beside the cluster: if the Node process owning the cluster disappears without
// cleaning up (SIGKILL, crash of a jest worker), it kills the recorded groups and removes the dir.
const REAPER_SOURCE = `
const fs = require('node:fs'), path = require('node:path');
const [owner, dir] = process.argv.slice(1);
const zombie = (pid) => { try { const st = fs.readFileSync('/proc/' + pid + '/stat', 'utf8'); return st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3) === 'Z'; } catch { return false; } };
const alive = (pid) => { try { process.kill(pid, 0); } catch (e) { return e.code === 'EPERM'; } return !zombie(pid); };
const timer = setInterval(() => {
  if (!fs.existsSync(dir)) { clearInterval(timer); return; }
  if (alive(Number(owner))) return;
  let list = [];
  try { list = JSON.parse(fs.readFileSync(path.join(dir, 'processes.json'), 'utf8')); } catch {}
  for (const p of list) { try { process.kill(-p.pid, 'SIGKILL'); } catch {} }
  fs.rmSync(dir, { recursive: true, force: true });
  clearInterval(timer);
}, 1000);
`;

/** Starts the reaper for workDir, owned by the current process (an owner that is a zombie counts as gone). */
export function startReaper(workDir: string): void {
  const child = spawn(process.execPath, ['-e', REAPER_SOURCE, String(process.pid), workDir], {
    detached: true,
    stdio: 'ignore',
  });
  child.unref();
}
