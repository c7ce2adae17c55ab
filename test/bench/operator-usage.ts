// CPU time and memory of one process from /proc (Linux): the operator's RSS and CPU at scale.
// Sampled once a second into labelled phases, so a phase's CPU is the tick difference over its
// wall time and its RSS is the largest sample in it.
import { readFileSync } from 'node:fs';

/** USER_HZ: /proc/<pid>/stat counts CPU time in these ticks; 100 on every Linux Node supports. */
const TICKS_PER_SECOND = 100;

export interface ProcSample {
  at: number;
  /** utime + stime in seconds. */
  cpuS: number;
  rssMB: number;
  /** Peak RSS so far (VmHWM). */
  hwmMB: number;
}

export function readProcSample(pid: number): ProcSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may contain spaces and parentheses: the fields we want follow the last ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string): number =>
      Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return {
      at: Date.now(),
      cpuS: ticks / TICKS_PER_SECOND,
      rssMB: kb('VmRSS') / 1024,
      hwmMB: kb('VmHWM') / 1024,
    };
  } catch {
    return undefined; // the process is gone
  }
}

export interface PhaseUsage {
  phase: string;
  seconds: number;
  /** Average CPU over the phase, in % of one core. */
  cpuPercent: number;
  cpuSeconds: number;
  rssStartMB: number;
  rssEndMB: number;
  rssMaxMB: number;
  samples: number;
}

export class ProcessUsage {
  private readonly samples: Array<ProcSample & { phase: string }> = [];
  private phase = 'start';
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly pid: number,
    intervalMs = 1000,
  ) {
    this.take();
    this.timer = setInterval(() => this.take(), intervalMs);
    this.timer.unref();
  }

  /** Starts a new phase (with a sample at its boundary, so phases share their edges). */
  enter(phase: string): void {
    this.take();
    this.phase = phase;
    this.take();
  }

  latest(): ProcSample | undefined {
    return this.samples.at(-1);
  }

  stop(): void {
    this.take();
    clearInterval(this.timer);
  }

  phases(): PhaseUsage[] {
    const names = [...new Set(this.samples.map((s) => s.phase))];
    return names.flatMap((phase) => {
      const s = this.samples.filter((x) => x.phase === phase);
      if (s.length < 2) return [];
      const first = s[0]!;
      const last = s.at(-1)!;
      const seconds = (last.at - first.at) / 1000;
      const cpuSeconds = last.cpuS - first.cpuS;
      return [
        {
          phase,
          seconds,
          cpuPercent: seconds > 0 ? (100 * cpuSeconds) / seconds : Number.NaN,
          cpuSeconds,
          rssStartMB: first.rssMB,
          rssEndMB: last.rssMB,
          rssMaxMB: Math.max(...s.map((x) => x.rssMB)),
          samples: s.length,
        },
      ];
    });
  }

  peakMB(): number {
    return Math.max(0, ...this.samples.map((s) => s.hwmMB).filter(Number.isFinite));
  }

  private take(): void {
    const s = readProcSample(this.pid);
    if (s) this.samples.push({ ...s, phase: this.phase });
  }
}

export interface CpuPhase {
  phase: string;
  seconds: number;
  /** % of one core per group of processes. */
  cpuPercent: Record<string, number>;
  /** 1-minute load average at the end of the phase. */
  loadAvg: number;
}

/**
 * Where the machine's CPU went in each phase, per group of processes (operator, router, API
 * server, engines...): the benchmark shares 2 cores with everything it measures.
 */
export class CpuLedger {
  private readonly last = new Map<number, number>();
  private phase = 'start';
  private phaseStart = Date.now();
  readonly phases: CpuPhase[] = [];

  constructor(private readonly members: () => Array<{ group: string; pid: number }>) {
    this.collect();
  }

  enter(phase: string, loadAvg: number): void {
    const seconds = (Date.now() - this.phaseStart) / 1000;
    const used = this.collect();
    if (seconds > 0) {
      const cpuPercent: Record<string, number> = {};
      for (const [group, s] of used) cpuPercent[group] = (100 * s) / seconds;
      this.phases.push({ phase: this.phase, seconds, cpuPercent, loadAvg });
    }
    this.phase = phase;
    this.phaseStart = Date.now();
  }

  /** CPU seconds per group since the previous call (a process first seen counts from its start). */
  private collect(): Map<string, number> {
    const used = new Map<string, number>();
    for (const { group, pid } of this.members()) {
      const s = readProcSample(pid);
      if (!s) continue;
      used.set(group, (used.get(group) ?? 0) + s.cpuS - (this.last.get(pid) ?? 0));
      this.last.set(pid, s.cpuS);
    }
    return used;
  }
}
