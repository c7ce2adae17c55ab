// Looks inside the router process while it is under load, without changing its code: GC pauses
// and event-loop delay through its inspector, and time spent waiting for a CPU from
// /proc/PID/schedstat. Tells "the router's code is slow" apart from "the router was not running".
import { readFileSync } from 'node:fs';
import type { Inspector } from './router-inspector.js';

export interface ProbeReading {
  gcCount: number;
  gcTotalMs: number;
  gcMaxMs: number;
  /**
   * Event-loop delay, ms: how late the 10 ms sampling timer fired. monitorEventLoopDelay records
   * the whole interval between firings, so the resolution is subtracted (an idle loop reads ~0-2 ms).
   */
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  /** Time the router was runnable but waiting for a CPU, ms. */
  runQueueWaitMs: number;
  /** Involuntary context switches (the kernel took the CPU away). */
  involuntarySwitches: number;
}

const START = `(() => {
  const { PerformanceObserver, monitorEventLoopDelay } = process.getBuiltinModule('node:perf_hooks');
  const p = (globalThis.__routerBenchProbe ??= {});
  p.gc?.disconnect();
  p.loop?.disable();
  p.pauses = [];
  p.gc = new PerformanceObserver((list) => { for (const e of list.getEntries()) p.pauses.push(e.duration); });
  p.gc.observe({ entryTypes: ['gc'] });
  p.loop = monitorEventLoopDelay({ resolution: 10 });
  p.loop.enable();
  return 'ok';
})()`;

const READ = `(() => {
  const p = globalThis.__routerBenchProbe;
  p.loop.disable();
  const out = {
    gcCount: p.pauses.length,
    gcTotalMs: p.pauses.reduce((a, b) => a + b, 0),
    gcMaxMs: p.pauses.reduce((a, b) => Math.max(a, b), 0),
    loopDelayP99Ms: Math.max(0, p.loop.percentile(99) / 1e6 - 10),
    loopDelayMaxMs: Math.max(0, p.loop.max / 1e6 - 10),
  };
  p.gc.disconnect();
  return JSON.stringify(out);
})()`;

function schedstat(pid: number): { waitNs: number } {
  try {
    const [, wait] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
    return { waitNs: wait ?? 0 };
  } catch {
    return { waitNs: 0 };
  }
}

function involuntary(pid: number): number {
  try {
    const m = /^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

export class RouterProbe {
  private wait0 = 0;
  private invol0 = 0;

  constructor(
    private readonly inspector: Inspector,
    private readonly pid: number,
  ) {}

  async start(): Promise<void> {
    await this.inspector.evaluate(START);
    this.wait0 = schedstat(this.pid).waitNs;
    this.invol0 = involuntary(this.pid);
  }

  async read(): Promise<ProbeReading> {
    const inside = JSON.parse(await this.inspector.evaluate(READ)) as Omit<
      ProbeReading,
      'runQueueWaitMs' | 'involuntarySwitches'
    >;
    return {
      ...inside,
      runQueueWaitMs: (schedstat(this.pid).waitNs - this.wait0) / 1e6,
      involuntarySwitches: involuntary(this.pid) - this.invol0,
    };
  }
}
