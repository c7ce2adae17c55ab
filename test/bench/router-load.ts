// Parent side of the load generator: forks router-load-worker.ts and runs jobs on it.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { LoadJob, LoadResult, StallReport, WorkerReply } from './router-load-types.js';

const WORKER = fileURLToPath(new URL('./router-load-worker.ts', import.meta.url));

export class LoadGenerator {
  private constructor(
    private readonly child: ChildProcess,
    private readonly replies: WorkerReply[],
    private readonly waiters: Array<() => void>,
  ) {}

  /** `nodeFlags`: extra node flags for the generator process (e.g. a larger young generation). */
  static async start(nodeFlags: string[] = []): Promise<LoadGenerator> {
    const child = fork(WORKER, [], {
      execArgv: [...nodeFlags, '--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const replies: WorkerReply[] = [];
    const waiters: Array<() => void> = [];
    child.on('message', (m: WorkerReply) => {
      replies.push(m);
      for (const w of waiters.splice(0)) w();
    });
    const gen = new LoadGenerator(child, replies, waiters);
    await gen.next('ready');
    return gen;
  }

  get pid(): number {
    return this.child.pid!;
  }

  private next<T extends WorkerReply['type']>(type: T): Promise<Extract<WorkerReply, { type: T }>> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const i = this.replies.findIndex((r) => r.type === type || r.type === 'error');
        if (i >= 0) {
          const r = this.replies.splice(i, 1)[0]!;
          if (r.type === 'error') reject(new Error(`load generator: ${r.message}`));
          else resolve(r as Extract<WorkerReply, { type: T }>);
          return;
        }
        if (this.child.exitCode !== null) return reject(new Error('load generator exited'));
        this.waiters.push(check);
      };
      check();
    });
  }

  async run(job: Exclude<LoadJob, { kind: 'stall' }>): Promise<LoadResult> {
    this.child.send({ type: 'job', job });
    return (await this.next('result')).result;
  }

  async stall(job: Extract<LoadJob, { kind: 'stall' }>): Promise<StallReport> {
    this.child.send({ type: 'job', job });
    return (await this.next('stalled')).report;
  }

  async release(): Promise<number> {
    this.child.send({ type: 'release' });
    return (await this.next('released')).count;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.disconnect();
    const force = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(force);
  }
}
